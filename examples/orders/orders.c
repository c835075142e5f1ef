/* orders: a small order-processing application on every kind of bus, checking itself.
 *
 *   orders [--orders N]                threads, anonymous shared memory
 *   orders --shm [--orders N]          two processes over named shared memory: this one runs
 *                                      main and gateway, a child runs stock, billing and audit
 *   orders --file DIR [--orders N]     the same over a file bus in DIR, and the child is
 *                                      SIGKILLed mid-run and started again: nothing is lost,
 *                                      what it had not finished is handled again (main
 *                                      counts each order once by its id)
 *
 * Every order must come back reserved, billed (qty * price) and audited (its receipt text),
 * each exactly once as main counts them; the exit status says whether it did.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "orders.def.h"

/* ---- the receipt codec: a NUL-free text, sent as its bytes ---- */

size_t Receipt_size(const Receipt *r) { return strlen(*r); }

int Receipt_encode(const Receipt *r, void *buf, size_t cap)
{
    size_t n = strlen(*r);
    if (n > cap)
        return MSGR_ERANGE;
    memcpy(buf, *r, n);
    return (int)n;
}

int Receipt_decode(const void *buf, size_t len, Receipt *out)
{
    *out = strndup(buf, len);
    return *out ? 0 : MSGR_ENOMEM;
}

void Receipt_free(Receipt *r) { free(*r); }

/* ---- the workers ---- */

void on_order(msgr_ctx *ctx, const Order *o)
{
    Checked c = {.id = o->id, .amount_cents = (uint64_t)o->qty * o->price_cents, .qty = o->qty};
    orders_send_Checked(ctx, &c); /* to stock and billing, both or neither */
}

void on_checked_stock(msgr_ctx *ctx, const Checked *c)
{
    Reserved r = {.id = c->id, .qty = c->qty};
    orders_send_Reserved(ctx, &r);
}

void on_checked_billing(msgr_ctx *ctx, const Checked *c)
{
    Billed b = {.id = c->id, .amount_cents = c->amount_cents};
    orders_send_Billed(ctx, &b);
    char text[96];
    snprintf(text, sizeof text, "receipt for order %llu: %llu.%02llu",
             (unsigned long long)c->id, (unsigned long long)(c->amount_cents / 100),
             (unsigned long long)(c->amount_cents % 100));
    Receipt r = text;
    orders_send_Receipt(ctx, &r);
}

void on_receipt(msgr_ctx *ctx, const Receipt *r)
{
    unsigned long long id = 0;
    if (sscanf(*r, "receipt for order %llu", &id) != 1)
        return; /* main will miss it and say so */
    Audited a = {.id = id, .receipt_bytes = strlen(*r)};
    orders_send_Audited(ctx, &a);
}

/* ---- main's tally: each order counted once per kind, whatever is redelivered ---- */

static uint64_t n_orders;
static unsigned char *seen; /* per order: bit 0 reserved, 1 billed, 2 audited */
static uint64_t complete, bad, dups;

static uint32_t qty_of(uint64_t id) { return (uint32_t)(1 + id % 7); }
static uint32_t price_of(uint64_t id) { return (uint32_t)(100 + id % 1000); }

static void mark(uint64_t id, unsigned bit, int ok)
{
    if (id >= n_orders || !ok) {
        bad++;
        return;
    }
    if (seen[id] & bit) {
        dups++; /* a redelivery after a crash: at-least-once, counted once */
        return;
    }
    seen[id] |= bit;
    if (seen[id] == 7)
        complete++;
}

void on_reserved(msgr_ctx *ctx, const Reserved *r)
{
    (void)ctx;
    mark(r->id, 1, r->qty == qty_of(r->id));
}

void on_billed(msgr_ctx *ctx, const Billed *b)
{
    (void)ctx;
    mark(b->id, 2, b->amount_cents == (uint64_t)qty_of(b->id) * price_of(b->id));
}

void on_audited(msgr_ctx *ctx, const Audited *a)
{
    (void)ctx;
    mark(a->id, 4, a->receipt_bytes > 20);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "orders: %s: %s (%s)\n", what, msgr_strerror(rc), msgr_last_error());
    return 1;
}

/* The back office (stock, billing, audit) in a process of its own, until the bus stops. */
static int back_office(const char *kind, const char *name)
{
    const char *const run[] = {"stock", "billing", "audit", NULL};
    msgr_bus_opts o = {.kind = !strcmp(kind, "file") ? MSGR_REGION_FILE : MSGR_REGION_SHM,
                       .name = name, .run = run, .inbox_capacity = 1 << 16};
    msgr_bus *bus;
    int rc = msgr_bus_open(orders_app(), &o, &bus);
    if (rc == 0 && (rc = msgr_bus_start(bus)) == 0)
        rc = msgr_bus_join(bus, 120000000000ll);
    msgr_bus_close(bus);
    return rc ? fail("back office", rc) : 0;
}

static pid_t start_back_office(const char *self, const char *kind, const char *name)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, "--back-office", kind, name, (char *)NULL);
        _exit(127);
    }
    return pid;
}

int main(int argc, char **argv)
{
    const char *mode = "threads", *dir = NULL;
    n_orders = 100000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--orders") && i + 1 < argc)
            n_orders = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--shm"))
            mode = "shm";
        else if (!strcmp(argv[i], "--file") && i + 1 < argc)
            mode = "file", dir = argv[++i];
        else if (!strcmp(argv[i], "--back-office") && i + 2 < argc)
            return back_office(argv[i + 1], argv[i + 2]);
        else {
            fprintf(stderr, "usage: orders [--orders N] [--shm | --file DIR]\n");
            return 2;
        }
    }
    seen = calloc(n_orders ? n_orders : 1, 1);
    char name[256];
    const char *const front[] = {"main", "gateway", NULL};
    const char *const drive[] = {"main", NULL};
    msgr_bus_opts o = {.drive = drive, .inbox_capacity = 1 << 16, .flags = MSGR_BUS_FRESH};
    if (!strcmp(mode, "shm")) {
        snprintf(name, sizeof name, "msgr-orders-%d", (int)getpid());
        o.kind = MSGR_REGION_SHM, o.name = name, o.run = front;
    } else if (!strcmp(mode, "file")) {
        snprintf(name, sizeof name, "%s/orders.bus", dir);
        o.kind = MSGR_REGION_FILE, o.name = name, o.run = front;
    }
    msgr_bus *bus;
    int rc = msgr_bus_open(orders_app(), &o, &bus);
    if (rc)
        return fail("open", rc);
    pid_t back = 0;
    if (o.run)
        back = start_back_office("/proc/self/exe", mode, name);
    if ((rc = msgr_bus_start(bus)))
        return fail("start", rc);
    msgr_ctx *ctx;
    msgr_bus_ctx(bus, orders_W_main, &ctx);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int restarted = 0;
    for (uint64_t id = 0; id < n_orders; id++) {
        Order ord = {.id = id, .qty = qty_of(id), .price_cents = price_of(id)};
        if ((rc = orders_send_Order(ctx, &ord)) < 0)
            return fail("send Order", rc);
        if ((id & 63) == 0)
            msgr_bus_poll(bus, orders_W_main, 256);
        if (back && !strcmp(mode, "file") && !restarted && id == n_orders / 2) {
            kill(back, SIGKILL); /* mid-run, whatever it was doing */
            waitpid(back, NULL, 0);
            back = start_back_office("/proc/self/exe", mode, name);
            restarted = 1;
        }
    }
    while (complete < n_orders) {
        rc = msgr_bus_poll_wait(bus, orders_W_main, 256, 20000000000ll);
        if (rc <= 0) {
            fprintf(stderr, "orders: waited 20 s with %llu of %llu orders complete\n",
                    (unsigned long long)complete, (unsigned long long)n_orders);
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    msgr_bus_stop(bus, MSGR_STOP_DRAIN, 10000000000ll, NULL); /* a joined back office stops too */
    int back_ok = 1;
    if (back) {
        int st;
        waitpid(back, &st, 0);
        back_ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    msgr_bus_close(bus);
    if (o.name)
        msgr_bus_destroy(orders_app(), &o);
    printf("orders (%s): %llu orders in %.3f s (%.0f orders/s): %llu complete, %llu wrong, "
           "%llu redelivered%s\n", mode, (unsigned long long)n_orders, s, n_orders / s,
           (unsigned long long)complete, (unsigned long long)bad, (unsigned long long)dups,
           restarted ? ", back office killed and restarted once" : "");
    if (complete != n_orders || bad || !back_ok) {
        fprintf(stderr, "orders: FAILED\n");
        return 1;
    }
    printf("ok: every order reserved, billed and audited once\n");
    return 0;
}
