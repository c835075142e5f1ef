/* Broadcast fan-outs in the runtime: one write, N handlers. Each of four workers gets every
 * Big message once, in order and intact, interleaved in order with the copied Small messages;
 * the inboxes are too small to hold a copy of Big at all, so only the ring can have carried it.
 * Between threads and between processes; a destination started after the messages were sent
 * still gets them; stopping with abandon releases the ring. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "fanout.def.h"

#define INBOX (1u << 12) /* 4 KiB: a 16 KiB Big cannot be copied into it */

/* Per worker, in shared memory (forked children count here too). */
typedef struct {
    _Atomic uint64_t big, small, bad;
    uint64_t next_big, next_small, last_kind; /* written by the worker's one thread */
} tally;
static tally *tallies;

static void setup(void)
{
    tallies = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(tallies, MAP_FAILED);
    memset(tallies, 0, 4096);
}

TestSuite(fanout, .init = setup, .timeout = 120);

void fo_on_big(msgr_ctx *ctx, const Big *m)
{
    tally *t = &tallies[msgr_ctx_worker(ctx)];
    if (m->seq != t->next_big || m->body[0] != (uint8_t)m->seq ||
        m->body[sizeof m->body - 1] != (uint8_t)(m->seq * 7) || t->next_small != m->seq)
        atomic_fetch_add(&t->bad, 1); /* each Big n arrives after Small n-1, before Small n */
    t->next_big = m->seq + 1;
    atomic_fetch_add(&t->big, 1);
}

void fo_on_small(msgr_ctx *ctx, const Small *m)
{
    tally *t = &tallies[msgr_ctx_worker(ctx)];
    if (m->seq != t->next_small || t->next_big != m->seq + 1)
        atomic_fetch_add(&t->bad, 1);
    t->next_small = m->seq + 1;
    atomic_fetch_add(&t->small, 1);
}

/* Big n (typed sender or typed claim, alternately), then Small n. */
static void send_all(msgr_ctx *ctx, uint64_t n)
{
    static Big big;
    for (uint64_t i = 0; i < n; i++) {
        if (i & 1) { /* claimed in the ring, written in place once */
            msgr_out out;
            Big *m = NULL;
            cr_assert_eq(fo_claim_Big(ctx, &out, &m), 0, "%s", msgr_last_error());
            m->seq = i;
            m->body[0] = (uint8_t)i;
            m->body[sizeof m->body - 1] = (uint8_t)(i * 7);
            cr_assert_eq(fo_commit_Big(ctx, &out), 0, "%s", msgr_last_error());
        } else {
            big.seq = i;
            big.body[0] = (uint8_t)i;
            big.body[sizeof big.body - 1] = (uint8_t)(i * 7);
            cr_assert_eq(fo_send_Big(ctx, &big), 0, "%s", msgr_last_error());
        }
        Small s = {.seq = i};
        cr_assert_eq(fo_send_Small(ctx, &s), 0, "%s", msgr_last_error());
    }
}

static void expect_all(uint64_t n)
{
    for (uint32_t w = fo_W_r0; w <= fo_W_r3; w++) {
        cr_assert_eq(atomic_load(&tallies[w].big), n, "worker %u: %llu Big of %llu", w,
                     (unsigned long long)atomic_load(&tallies[w].big), (unsigned long long)n);
        cr_assert_eq(atomic_load(&tallies[w].small), n, "worker %u: Small", w);
        cr_assert_eq(atomic_load(&tallies[w].bad), 0, "worker %u: out of order or damaged", w);
    }
}

Test(fanout, one_write_reaches_four_handlers_between_threads)
{
    msgr_bus_opts o = {.inbox_capacity = INBOX, .broadcast_capacity = 1 << 17};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(fo_app(), &o, &b), 0, "%s", msgr_last_error());
    cr_assert_eq(msgr_bus_start(b), 0);
    msgr_ctx *ctx;
    cr_assert_eq(msgr_bus_ctx(b, fo_W_src, &ctx), 0);
    uint64_t n = tu_scaled(20000);
    send_all(ctx, n);
    msgr_stop_report rep;
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, 20000000000ll, &rep), 0);
    expect_all(n);
    msgr_counters c;
    cr_assert_eq(msgr_bus_counters(b, fo_W_r2, &c), 0);
    cr_assert_eq(c.received, 2 * n);
    cr_assert_eq(c.dropped, 0);
    msgr_bus_close(b);
}

Test(fanout, readers_in_other_processes_and_started_late)
{
    char name[64];
    snprintf(name, sizeof name, "/msgr-fanout-%d", (int)getpid());
    const char *const run_src[] = {"src", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = INBOX,
                       .broadcast_capacity = 1 << 18, .run = run_src, .flags = MSGR_BUS_FRESH};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(fo_app(), &o, &b), 0, "%s", msgr_last_error());
    /* Not started: src only sends, from this thread (and a process with threads may not fork
     * children that start their own under TSan). */
    msgr_ctx *ctx;
    cr_assert_eq(msgr_bus_ctx(b, fo_W_src, &ctx), 0);
    /* Sent before any reader's process exists: the messages wait for them (the ring holds
     * 16 of them: the rest are sent once the readers run and free space). */
    uint64_t early = 8, n = tu_scaled(4000);
    send_all(ctx, early);
    static const char *const names[] = {"r0", "r1", "r2", "r3"};
    pid_t kids[4];
    for (int k = 0; k < 4; k++) {
        kids[k] = fork();
        cr_assert_geq(kids[k], 0);
        if (kids[k] == 0) {
            const char *const run[] = {names[k], NULL};
            msgr_bus_opts co = o;
            co.run = run;
            co.flags = 0;
            msgr_bus *c;
            if (msgr_bus_open(fo_app(), &co, &c) || msgr_bus_start(c))
                _exit(2);
            uint64_t until = tu_now_ns() + 60000000000ull;
            while (atomic_load(&tallies[fo_W_r0 + k].small) < n && tu_now_ns() < until)
                tu_sleep_ms(1);
            msgr_bus_close(c);
            _exit(0);
        }
    }
    for (uint64_t i = early; i < n; i++) {
        static Big big;
        big.seq = i;
        big.body[0] = (uint8_t)i;
        big.body[sizeof big.body - 1] = (uint8_t)(i * 7);
        cr_assert_eq(fo_send_Big(ctx, &big), 0, "%s", msgr_last_error());
        Small s = {.seq = i};
        cr_assert_eq(fo_send_Small(ctx, &s), 0, "%s", msgr_last_error());
    }
    for (int k = 0; k < 4; k++) {
        int st;
        cr_assert_eq(waitpid(kids[k], &st, 0), kids[k]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader process %d: %#x", k, st);
    }
    expect_all(n);
    msgr_bus_close(b);
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
}

Test(fanout, abandoning_releases_the_ring)
{
    msgr_bus_opts o = {.inbox_capacity = INBOX, .broadcast_capacity = 1 << 17};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(fo_app(), &o, &b), 0, "%s", msgr_last_error());
    msgr_ctx *ctx;
    cr_assert_eq(msgr_bus_ctx(b, fo_W_src, &ctx), 0);
    /* Nobody runs yet: 7 fit in the ring (128 KiB, 16 KiB each with its header). */
    static Big big;
    for (int i = 0; i < 7; i++)
        cr_assert_eq(fo_send_Big(ctx, &big), 0, "%s", msgr_last_error());
    cr_assert_eq(msgr_bus_start(b), 0);
    msgr_stop_report rep;
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_ABANDON, 10000000000ll, &rep), 0);
    /* Discarded, not handled; their ring records were released with them, so the ring takes
     * a full load again at once. */
    cr_assert_eq(msgr_bus_start(b), 0);
    for (int i = 0; i < 7; i++)
        cr_assert_eq(fo_send_Big(ctx, &big), 0, "ring space came back: %s", msgr_last_error());
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, 10000000000ll, &rep), 0);
    msgr_bus_close(b);
}

Test(fanout, a_bus_with_other_fan_outs_is_refused)
{
    char name[64];
    snprintf(name, sizeof name, "/msgr-fanout-x-%d", (int)getpid());
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = INBOX,
                       .flags = MSGR_BUS_FRESH};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(fo_app(), &o, &b), 0, "%s", msgr_last_error());
    /* The same application without its B line: same messages and workers, no ring. */
    msgr_app other = *fo_app();
    other.n_broadcasts = 0;
    msgr_bus *c;
    o.flags = 0;
    cr_assert_eq(msgr_bus_open(&other, &o, &c), MSGR_ESCHEMA);
    cr_assert(strstr(msgr_last_error(), "broadcast") != NULL, "%s", msgr_last_error());
    msgr_bus_close(b);
    msgr_region_unlink_shm(name);
}

/* White-box: the bus header's layout version (bus_internal.h). A bus written by a newer
 * library is refused naming both versions; a version-2 header (no broadcast rings) that claims
 * broadcast rings is corrupt. */
#include "bus_internal.h"

Test(fanout, layout_versions_are_checked)
{
    char name[64];
    snprintf(name, sizeof name, "/msgr-fanout-v-%d", (int)getpid());
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = INBOX,
                       .flags = MSGR_BUS_FRESH};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(fo_app(), &o, &b), 0, "%s", msgr_last_error());
    msgr_bus_close(b);
    msgr_region *g;
    cr_assert_eq(msgr_region_open_shm(name, &g), 0);
    msgr__bus_hdr *h = msgr_region_base(g);
    cr_assert_eq(h->version, MSGR__BUS_VERSION);
    cr_assert_eq(h->n_bcast, 1);
    o.flags = 0;
    h->version = 99;
    cr_assert_eq(msgr_bus_open(fo_app(), &o, &b), MSGR_EVERSION);
    cr_assert(strstr(msgr_last_error(), "99") != NULL, "%s", msgr_last_error());
    h->version = 2;
    cr_assert_eq(msgr_bus_open(fo_app(), &o, &b), MSGR_ECORRUPT);
    h->version = MSGR__BUS_VERSION;
    cr_assert_eq(msgr_bus_open(fo_app(), &o, &b), 0, "%s", msgr_last_error());
    msgr_bus_close(b);
    msgr_region_close(g);
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
}
