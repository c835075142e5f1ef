/* A program built against an installed messenger through pkg-config: two workers on threads
 * pass a counter back and forth; the exit status says whether every round came back. */
#include <stdint.h>
#include <stdio.h>

#define MSGR_APP hello
#define MSGR_APP_MESSAGES(M, F) M(Ball, 1, F(uint64_t, n))
#define MSGR_APP_WORKERS(W) W(left) W(right)
#define MSGR_APP_ROUTES(R) R(left, Ball, right, on_ball_right) R(right, Ball, left, on_ball_left)
#include <msgr_app.h>

#define ROUNDS 1000
static uint64_t last, rounds;

void on_ball_right(msgr_ctx *ctx, const hello_Ball *b)
{
    hello_Ball r = {.n = b->n + 1};
    hello_send_Ball(ctx, &r);
}

void on_ball_left(msgr_ctx *ctx, const hello_Ball *b)
{
    last = b->n;
    if (++rounds < ROUNDS) {
        hello_Ball r = {.n = b->n + 1};
        hello_send_Ball(ctx, &r);
    } else {
        msgr_bus_signal_stop(msgr_ctx_bus(ctx));
    }
}

int main(void)
{
    msgr_bus *bus;
    int rc = msgr_bus_open(hello_app(), NULL, &bus);
    if (rc == 0)
        rc = msgr_bus_start(bus);
    msgr_ctx *left;
    if (rc == 0)
        rc = msgr_bus_ctx(bus, hello_W_left, &left);
    hello_Ball b = {.n = 0};
    if (rc == 0 && (rc = hello_send_Ball(left, &b)) == 0)
        rc = msgr_bus_join(bus, 10000000000ll);
    msgr_bus_close(bus);
    if (rc < 0 || rounds != ROUNDS || last != 2 * ROUNDS - 1) {
        fprintf(stderr, "hello: %s (%s), last ball %llu\n", msgr_strerror(rc), msgr_last_error(),
                (unsigned long long)last);
        return 1;
    }
    printf("hello: %d rounds\n", ROUNDS);
    return 0;
}
