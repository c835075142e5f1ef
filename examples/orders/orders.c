/* orders: a small order-processing application on every kind of bus, checking itself.
 *
 *   orders [--orders N]                threads, anonymous shared memory
 *   orders --shm [--orders N]          two processes over named shared memory: this one runs
 *                                      main and gateway, a child runs stock, billing and audit
 *   orders --file DIR [--orders N]     the same over a file bus in DIR, both processes
 *                                      started by this one, which SIGKILLs each mid-run and
 *                                      starts it again: nothing is lost, what was not
 *                                      finished is handled again (main keeps its tally in a
 *                                      file, DIR/orders.tally, and counts each order once)
 *
 * Every order must come back reserved, billed (qty * price) and audited (its receipt text),
 * each exactly once as main counts them; the exit status says whether it did.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>

#include "../proc.h"

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
    char *s = malloc(len + 1);
    if (!s)
        return MSGR_ENOMEM;
    memcpy(s, buf, len);
    s[len] = 0;
    *out = s;
    return 0;
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

/* In a file of its own on a file bus, so a front process killed and started again goes on
 * where it was: next is the first order not yet sent (stored after the send: a kill between
 * the two sends that order again, and main counts the second copy as redelivered). The
 * supervisor reads next to time its kills; one front process writes at a time. */
typedef struct tally {
    _Atomic uint64_t next;
    uint64_t complete, bad, dups;
    unsigned char seen[]; /* per order: bit 0 reserved, 1 billed, 2 audited */
} tally;

static uint64_t n_orders;
static tally *t;

static uint32_t qty_of(uint64_t id) { return (uint32_t)(1 + id % 7); }
static uint32_t price_of(uint64_t id) { return (uint32_t)(100 + id % 1000); }

static void mark(uint64_t id, unsigned bit, int ok)
{
    if (id >= n_orders || !ok) {
        t->bad++;
        return;
    }
    if (t->seen[id] & bit) {
        t->dups++; /* a redelivery after a crash: at-least-once, counted once */
        return;
    }
    t->seen[id] |= bit;
    if (t->seen[id] == 7)
        t->complete++;
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

static msgr_region_kind kind_of(const char *mode)
{
    return !strcmp(mode, "file") ? MSGR_REGION_FILE : MSGR_REGION_SHM;
}

/* The back office (stock, billing, audit) in a process of its own, until the bus stops. */
static int back_office(const char *mode, const char *name)
{
    const char *const run[] = {"stock", "billing", "audit", NULL};
    msgr_bus_opts o = {.kind = kind_of(mode), .name = name, .run = run,
                       .inbox_capacity = 1 << 16};
    msgr_bus *bus;
    int rc = msgr_bus_open(orders_app(), &o, &bus);
    if (rc == 0 && (rc = msgr_bus_start(bus)) == 0)
        rc = msgr_bus_join(bus, 120000000000ll);
    msgr_bus_close(bus);
    return rc ? fail("back office", rc) : 0;
}

static char self_path[4096];

/* Another copy of this program in `role`; exits the example if it cannot start. */
static ex_proc spawn(const char *role, const char *mode, const char *name)
{
    char n[32];
    snprintf(n, sizeof n, "%llu", (unsigned long long)n_orders);
    char *args[] = {self_path, (char *)role, (char *)mode, (char *)name, "--orders", n, NULL};
    ex_proc p;
    if (ex_start(&p, args) != 0) {
        fprintf(stderr, "orders: cannot start %s\n", self_path);
        exit(1);
    }
    return p;
}

static int exited_ok(ex_proc *p) { return ex_wait(p, 1) == 0; }

/* main and gateway: sends the orders from t->next on and tallies the results until every order
 * is complete, then stops the whole bus (a back office joined to it returns). Threads mode runs
 * every worker here; shm mode starts the back office as a child; file mode is started (and
 * killed, and started again) by supervise(). */
static int front(const char *mode, const char *name)
{
    const char *const front_workers[] = {"main", "gateway", NULL};
    const char *const drive[] = {"main", NULL};
    msgr_bus_opts o = {.drive = drive, .inbox_capacity = 1 << 16};
    if (name)
        o.kind = kind_of(mode), o.name = name, o.run = front_workers;
    if (!strcmp(mode, "shm"))
        o.flags = MSGR_BUS_FRESH; /* file mode: the supervisor made it fresh */
    msgr_bus *bus;
    int rc = msgr_bus_open(orders_app(), &o, &bus);
    if (rc)
        return fail("open", rc);
    int has_back = !strcmp(mode, "shm");
    ex_proc back;
    if (has_back)
        back = spawn("--back-office", mode, name);
    if ((rc = msgr_bus_start(bus)))
        return fail("start", rc);
    msgr_ctx *ctx;
    msgr_bus_ctx(bus, orders_W_main, &ctx);
    for (uint64_t id = atomic_load(&t->next); id < n_orders; id++) {
        Order ord = {.id = id, .qty = qty_of(id), .price_cents = price_of(id)};
        if ((rc = orders_send_Order(ctx, &ord)) < 0)
            return fail("send Order", rc);
        atomic_store(&t->next, id + 1);
        if ((id & 63) == 0)
            msgr_bus_poll(bus, orders_W_main, 256);
    }
    while (t->complete < n_orders) {
        rc = msgr_bus_poll_wait(bus, orders_W_main, 256, 20000000000ll);
        if (rc <= 0) {
            fprintf(stderr, "orders: waited 20 s with %llu of %llu orders complete\n",
                    (unsigned long long)t->complete, (unsigned long long)n_orders);
            break;
        }
    }
    msgr_bus_stop(bus, MSGR_STOP_DRAIN, 10000000000ll, NULL); /* a joined back office stops too */
    int back_ok = has_back ? exited_ok(&back) : 1;
    msgr_bus_close(bus);
    if (!strcmp(mode, "shm"))
        msgr_bus_destroy(orders_app(), &o);
    return t->complete == n_orders && back_ok ? 0 : 1;
}

/* Waits until the front has sent `target` orders or exited (then 0). Polls the tally: the front
 * has no reason to tell anyone how far it is, and a kill timed a few ms late is as good. */
static int wait_progress(ex_proc *front_proc, int *front_ended, uint64_t target)
{
    for (int ms = 0; ms < 60000 && !*front_ended; ms++) {
        if (atomic_load(&t->next) >= target)
            return 1;
        if (ex_wait(front_proc, 0) != 1) {
            *front_ended = 1; /* exited (reaped here): nothing left to kill */
            return 0;
        }
        ex_sleep_ms(1);
    }
    return 0;
}

/* File mode: makes the bus fresh, starts front and back office, SIGKILLs the front a third of
 * the way and the back office halfway (each at whatever it was doing) and starts each again. */
static int supervise(const char *dir, int *restarts)
{
    char name[4096];
    snprintf(name, sizeof name, "%s/orders.bus", dir);
    const char *const none[] = {NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_FILE, .name = name, .run = none,
                       .inbox_capacity = 1 << 16, .flags = MSGR_BUS_FRESH};
    msgr_bus *bus;
    int rc = msgr_bus_open(orders_app(), &o, &bus);
    if (rc)
        return fail("open", rc);
    msgr_bus_close(bus); /* the bus stays: a file bus lives in its files */
    ex_proc fr = spawn("--front", "file", name), back = spawn("--back-office", "file", name);
    int front_ended = 0;
    if (wait_progress(&fr, &front_ended, n_orders / 3)) {
        ex_kill(&fr);
        ex_wait(&fr, 1);
        fr = spawn("--front", "file", name);
        ++*restarts;
    }
    if (wait_progress(&fr, &front_ended, n_orders / 2)) {
        ex_kill(&back);
        ex_wait(&back, 1);
        back = spawn("--back-office", "file", name);
        ++*restarts;
    }
    int ok = front_ended || exited_ok(&fr);
    ok &= exited_ok(&back);
    msgr_bus_destroy(orders_app(), &o);
    char p[4096];
    snprintf(p, sizeof p, "%s/orders.tally", dir);
    remove(p); /* still mapped here, for the report */
    return ok ? 0 : 1;
}

/* The tally: in memory, or in DIR/orders.tally, a messenger file region (shared, so it
 * outlives a killed front; made fresh by the supervisor). Kept mapped until the process ends. */
static msgr_region *tally_region;
static void unmap_tally(void) { msgr_region_close(tally_region); }

static int map_tally(const char *dir, int fresh)
{
    size_t bytes = sizeof(tally) + (n_orders ? n_orders : 1);
    if (!dir) {
        t = calloc(1, bytes);
        return t ? 0 : -1;
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/orders.tally", dir);
    msgr_region *g;
    msgr_region_opts ro = {.flags = MSGR_REGION_REPLACE};
    int rc = fresh ? msgr_region_create_file(p, bytes, &ro, &g) : msgr_region_open_file(p, &g);
    if (rc == 0 && msgr_region_size(g) < bytes)
        rc = MSGR_ECORRUPT;
    if (rc) {
        fprintf(stderr, "orders: %s: %s\n", p, msgr_strerror(rc));
        return -1;
    }
    t = msgr_region_base(g);
    tally_region = g;
    atexit(unmap_tally);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = "threads", *dir = NULL, *role = NULL, *name = NULL;
    n_orders = 100000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--orders") && i + 1 < argc)
            n_orders = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--shm"))
            mode = "shm";
        else if (!strcmp(argv[i], "--file") && i + 1 < argc)
            mode = "file", dir = argv[++i];
        else if ((!strcmp(argv[i], "--back-office") || !strcmp(argv[i], "--front")) &&
                 i + 2 < argc)
            role = argv[i], mode = argv[i + 1], name = argv[i + 2], i += 2;
        else {
            fprintf(stderr, "usage: orders [--orders N] [--shm | --file DIR]\n");
            return 2;
        }
    }
    ex_self_path(self_path, sizeof self_path, argv[0]);
    if (role && !strcmp(role, "--back-office"))
        return back_office(mode, name);
    if (role) { /* a front started by supervise(): its tally lies beside the bus */
        char d[4096];
        snprintf(d, sizeof d, "%s", name);
        char *slash = strrchr(d, '/');
        if (slash)
            *slash = 0;
        if (map_tally(slash ? d : ".", 0))
            return 1;
        return front(mode, name);
    }
    if (map_tally(dir, 1))
        return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int restarts = 0, rc;
    if (dir) {
        rc = supervise(dir, &restarts);
    } else {
        char shm[64];
        snprintf(shm, sizeof shm, "msgr-orders-%ld", ex_pid());
        rc = front(mode, !strcmp(mode, "shm") ? shm : NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("orders (%s): %llu orders in %.3f s (%.0f orders/s): %llu complete, %llu wrong, "
           "%llu redelivered%s\n", mode, (unsigned long long)n_orders, s, n_orders / s,
           (unsigned long long)t->complete, (unsigned long long)t->bad,
           (unsigned long long)t->dups,
           restarts == 2 ? ", front and back office each killed and restarted once" : "");
    if (rc || t->complete != n_orders || t->bad) {
        fprintf(stderr, "orders: FAILED\n");
        return 1;
    }
    printf("ok: every order reserved, billed and audited once\n");
    return 0;
}
