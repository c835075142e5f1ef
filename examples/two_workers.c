/* two_workers: ping-pong between two workers on threads, over the embedded default bus
 * (anonymous shared memory). Prints round trips per second and latency percentiles, and checks
 * that every Pong answered the Ping it should.
 *
 *   two_workers [--rounds N] [--park]   (--park: default waiting instead of spinning workers)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pingpong.def.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct pinger_state {
    uint64_t rounds, next, bad;
    uint64_t *rtt; /* one sample per round trip */
} pinger_state;

static int done;
static Done result;

void on_start(msgr_ctx *ctx, const Start *m)
{
    pinger_state *s = msgr_ctx_user(ctx);
    s->rounds = m->rounds;
    s->next = 0;
    Ping p = {.seq = 0, .sent_ns = now_ns()};
    pingpong_send_Ping(ctx, &p);
}

void on_ping(msgr_ctx *ctx, const Ping *m)
{
    /* Zero-copy reply: claim the Pong in the pinger's inbox and fill it in place. */
    msgr_out out;
    Pong *p;
    if (pingpong_claim_Pong(ctx, &out, &p) == 0) {
        p->seq = m->seq;
        p->sent_ns = m->sent_ns;
        pingpong_commit_Pong(ctx, &out);
    }
}

void on_pong(msgr_ctx *ctx, const Pong *m)
{
    pinger_state *s = msgr_ctx_user(ctx);
    uint64_t t = now_ns();
    if (m->seq != s->next)
        s->bad++;
    s->rtt[s->next] = t - m->sent_ns;
    if (++s->next < s->rounds) {
        Ping p = {.seq = s->next, .sent_ns = t};
        pingpong_send_Ping(ctx, &p);
    } else {
        Done d = {.rounds = s->next, .bad = s->bad};
        pingpong_send_Done(ctx, &d);
    }
}

void on_done(msgr_ctx *ctx, const Done *m)
{
    (void)ctx;
    result = *m;
    done = 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "two_workers: %s: %s\n", what, msgr_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    uint64_t rounds = 2000000;
    int park = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--park"))
            park = 1;
        else {
            fprintf(stderr, "usage: two_workers [--rounds N] [--park]\n");
            return 2;
        }
    }
    if (rounds == 0)
        rounds = 1;
    pinger_state st = {.rtt = calloc(rounds, sizeof(uint64_t))};
    /* Embedded default: anonymous memory. Workers spin (a busy core each) unless --park. */
    const char *const drive[] = {"main", NULL}; /* `main` is driven by this thread, not started */
    msgr_bus_opts opts = {.spins = park ? 0 : UINT32_MAX, .drive = drive};
    msgr_bus *bus;
    int rc = msgr_bus_open(pingpong_app(), &opts, &bus);
    if (rc)
        return fail("open", rc);
    msgr_bus_set_user(bus, pingpong_W_pinger, &st);
    msgr_ctx *main_ctx;
    msgr_bus_ctx(bus, pingpong_W_main, &main_ctx);
    if ((rc = msgr_bus_start(bus)))
        return fail("start", rc);

    uint64_t t0 = now_ns();
    Start s = {.rounds = rounds};
    if ((rc = pingpong_send_Start(main_ctx, &s)) < 0)
        return fail("send Start", rc);
    while (!done) {
        rc = msgr_bus_poll_wait(bus, pingpong_W_main, 1, 30000000000ll);
        if (rc <= 0)
            return fail("waiting for Done", rc ? rc : MSGR_ETIMEDOUT);
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    msgr_stop_report rep;
    msgr_bus_stop(bus, MSGR_STOP_DRAIN, 1000000000, &rep);

    qsort(st.rtt, rounds, sizeof *st.rtt, cmp_u64);
    printf("two_workers: %lu round trips between two worker threads (%s)\n",
           (unsigned long)rounds, park ? "spin, then park" : "spinning");
    printf("%.0f round trips/s\n", (double)rounds / secs);
    printf("latency: p50 %lu ns  p99 %lu ns  p99.9 %lu ns  max %lu ns\n",
           (unsigned long)st.rtt[rounds / 2], (unsigned long)st.rtt[rounds * 99 / 100],
           (unsigned long)st.rtt[rounds * 999 / 1000], (unsigned long)st.rtt[rounds - 1]);
    msgr_counters c;
    msgr_bus_counters(bus, pingpong_W_ponger, &c);
    int ok = result.rounds == rounds && result.bad == 0 && c.received == rounds &&
             c.unrouted == 0 && c.rejected == 0;
    msgr_bus_close(bus);
    free(st.rtt);
    if (!ok) {
        fprintf(stderr, "two_workers: FAILED: %lu rounds, %lu out of order, ponger got %lu\n",
                (unsigned long)result.rounds, (unsigned long)result.bad,
                (unsigned long)c.received);
        return 1;
    }
    printf("ok: every Pong answered its Ping, in order\n");
    return 0;
}
