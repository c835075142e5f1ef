/* The nano-services runtime: routing (every route of a 4-worker, 6-message definition,
 * fan-out included), unrouted and unhandled messages, workers not running anywhere, drain and
 * abandon, the schema fingerprint, and the serialized mode. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "rt.def.h"
#include "rt_schema_variants.h"

/* Each handler appends "<worker>:<message>:<seq>" facts to its worker's log; a worker's
 * handlers run on that worker's thread only, so each log has one writer. */
#define LOG_MAX 4096
typedef struct wlog {
    uint32_t n;
    char what[LOG_MAX][8];
    uint64_t seq[LOG_MAX];
} wlog;
static wlog logs[rt_N_WORKERS];
static _Atomic uint64_t slow_spin; /* extra work per M1, for the abandon test */

static void note(msgr_ctx *ctx, const char *what, uint64_t seq)
{
    wlog *l = &logs[msgr_ctx_worker(ctx)];
    if (l->n < LOG_MAX) {
        size_t k = strnlen(what, sizeof l->what[0] - 1);
        memcpy(l->what[l->n], what, k);
        l->what[l->n][k] = 0;
        l->seq[l->n++] = seq;
    }
}

static int seen_fd;
void a_on_m1(msgr_ctx *ctx, const M1 *m)
{
    note(ctx, "M1", m->seq);
    if (seen_fd > 0) { /* the restart test records every handling, one write each */
        char line[32];
        int k = snprintf(line, sizeof line, "%lu\n", (unsigned long)m->seq);
        if (write(seen_fd, line, (size_t)k) != k)
            abort();
    }
    for (uint64_t i = atomic_load(&slow_spin); i; i--)
        atomic_signal_fence(memory_order_seq_cst);
    M4 out = {.seq = m->seq};
    rt_send_M4(ctx, &out);
}
void b_on_m2(msgr_ctx *ctx, const M2 *m)
{
    note(ctx, "M2", m->seq + m->a + m->b);
    M5 out = {.seq = m->seq};
    rt_send_M5(ctx, &out);
}
void a_on_m3(msgr_ctx *ctx, const M3 *m)
{
    note(ctx, m->text, m->seq);
    M6 out = {.seq = m->seq, .origin = rt_W_a};
    rt_send_M6(ctx, &out);
}
void b_on_m3(msgr_ctx *ctx, const M3 *m) { note(ctx, m->text, m->seq); }
void sink_on_m4(msgr_ctx *ctx, const M4 *m) { note(ctx, "M4", m->seq); }
void sink_on_m5(msgr_ctx *ctx, const M5 *m) { note(ctx, "M5", m->seq); }
void b_on_m6(msgr_ctx *ctx, const M6 *m) { note(ctx, "M6a", m->seq + 1000 * m->origin); }
void sink_on_m6(msgr_ctx *ctx, const M6 *m) { note(ctx, "M6src", m->seq); }

/* ---- the serialized message: a length-prefixed list of strings ---- */
static int break_encoder;

size_t Names_size(const Names *m)
{
    size_t n = 4;
    for (uint32_t i = 0; i < m->n; i++)
        n += 4 + strlen(m->items[i]);
    return n;
}

int Names_encode(const Names *m, void *buf, size_t cap)
{
    unsigned char *p = buf;
    size_t at = 4;
    memcpy(p, &m->n, 4);
    for (uint32_t i = 0; i < m->n; i++) {
        uint32_t len = (uint32_t)strlen(m->items[i]);
        if (at + 4 + len > cap)
            return MSGR_ERANGE;
        memcpy(p + at, &len, 4);
        memcpy(p + at + 4, m->items[i], len);
        at += 4 + len;
    }
    return (int)at - (break_encoder ? 3 : 0); /* a broken encoder writes less than promised */
}

int Names_decode(const void *buf, size_t len, Names *out)
{
    const unsigned char *p = buf;
    if (len < 4)
        return MSGR_ECODEC;
    memcpy(&out->n, p, 4);
    if (out->n > (len - 4) / 4)
        return MSGR_ECODEC;
    out->items = calloc(out->n ? out->n : 1, sizeof *out->items);
    size_t at = 4;
    for (uint32_t i = 0; i < out->n; i++) {
        uint32_t l;
        if (at + 4 > len || (memcpy(&l, p + at, 4), l > len - at - 4)) {
            out->n = i;
            Names_free(out);
            return MSGR_ECODEC;
        }
        out->items[i] = strndup((const char *)p + at + 4, l);
        at += 4 + l;
    }
    return at == len ? 0 : (Names_free(out), MSGR_ECODEC);
}

void Names_free(Names *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        free(m->items[i]);
    free(m->items);
}

static char got_names[8][32];
static uint32_t got_n;
void sink_on_names(msgr_ctx *ctx, const Names *m)
{
    note(ctx, "Names", m->n);
    got_n = m->n;
    for (uint32_t i = 0; i < m->n && i < 8; i++)
        snprintf(got_names[i], sizeof got_names[i], "%s", m->items[i]);
}

/* ---- helpers ---- */

static msgr_bus *open_bus(const char *const *run)
{
    msgr_bus_opts o = {.run = run, .inbox_capacity = 1 << 22};
    msgr_bus *b;
    int rc = msgr_bus_open(rt_app(), &o, &b);
    cr_assert_eq(rc, 0, "open: %s", msgr_strerror(rc));
    return b;
}

static msgr_ctx *src_ctx(msgr_bus *b)
{
    msgr_ctx *c;
    cr_assert_eq(msgr_bus_ctx(b, rt_W_src, &c), 0);
    cr_assert_eq(msgr_bus_poll(b, rt_W_src, 0), 0, "src is driven by the test");
    return c;
}

static int count(uint32_t w, const char *what)
{
    int n = 0;
    for (uint32_t i = 0; i < logs[w].n; i++)
        n += strcmp(logs[w].what[i], what) == 0;
    return n;
}

static msgr_counters counters(msgr_bus *b, uint32_t w)
{
    msgr_counters c;
    cr_assert_eq(msgr_bus_counters(b, w, &c), 0);
    return c;
}

static void teardown(void);
TestSuite(runtime, .fini = teardown, .timeout = 60);

Test(runtime, every_route_delivers_to_its_handler_including_fan_out)
{
    msgr_bus *b = open_bus(NULL);
    msgr_ctx *src = src_ctx(b);
    cr_assert_eq(msgr_bus_start(b), 0);
    for (uint64_t i = 0; i < 100; i++) {
        M1 m1 = {.seq = i};
        M2 m2 = {.seq = i, .a = 1, .b = 2};
        M3 m3 = {.seq = i};
        M6 m6 = {.seq = i};
        strcpy(m3.text, "M3");
        cr_assert_eq(rt_send_M1(src, &m1), 0);
        cr_assert_eq(rt_send_M2(src, &m2), 0);
        cr_assert_eq(rt_send_M3(src, &m3), 0, "fan-out to a and b");
        cr_assert_eq(rt_send_M6(src, &m6), 0);
    }
    msgr_stop_report rep;
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, &rep), 0);
    cr_assert_eq(rep.abandoned, 0);
    /* a: M1 and M3 from src.  b: M2, M3 (fan-out), M6 from a.  sink: M4, M5, M6 from src. */
    cr_assert_eq(count(rt_W_a, "M1"), 100);
    cr_assert_eq(count(rt_W_a, "M3"), 100);
    cr_assert_eq(count(rt_W_b, "M2"), 100);
    cr_assert_eq(count(rt_W_b, "M3"), 100);
    cr_assert_eq(count(rt_W_b, "M6a"), 100, "M6 from a goes to b's handler");
    cr_assert_eq(count(rt_W_sink, "M4"), 100);
    cr_assert_eq(count(rt_W_sink, "M5"), 100);
    cr_assert_eq(count(rt_W_sink, "M6src"), 100, "M6 from src goes to sink's handler");
    for (uint32_t i = 0, k = 0; i < logs[rt_W_a].n; i++) /* per-route order kept */
        if (!strcmp(logs[rt_W_a].what[i], "M1"))
            cr_assert_eq(logs[rt_W_a].seq[i], k++);
    for (uint32_t i = 0, k = 0; i < logs[rt_W_b].n; i++) {
        if (!strcmp(logs[rt_W_b].what[i], "M2"))
            cr_assert_eq(logs[rt_W_b].seq[i], 3 + k++, "fields intact (seq + a + b), in order");
        if (!strcmp(logs[rt_W_b].what[i], "M6a"))
            cr_assert_geq(logs[rt_W_b].seq[i], 1000 * rt_W_a, "origin carried through");
    }
    cr_assert_eq(counters(b, rt_W_src).sent, 500);
    cr_assert_eq(counters(b, rt_W_a).received, 200);
    cr_assert_eq(counters(b, rt_W_b).received, 300);
    cr_assert_eq(counters(b, rt_W_sink).received, 300);
    msgr_bus_close(b);
}

Test(runtime, a_message_without_a_route_is_refused_and_counted)
{
    msgr_bus *b = open_bus(NULL);
    msgr_ctx *src = src_ctx(b);
    M4 m4 = {.seq = 1};
    cr_assert_eq(rt_send_M4(src, &m4), MSGR_ENOROUTE, "only a may send M4");
    M5 m5 = {.seq = 1};
    cr_assert_eq(rt_send_M5(src, &m5), MSGR_ENOROUTE);
    msgr_out out;
    M1 *p;
    msgr_ctx *sink;
    msgr_bus_ctx(b, rt_W_sink, &sink);
    cr_assert_eq(rt_claim_M1(sink, &out, &p), MSGR_ENOROUTE);
    cr_assert_eq(counters(b, rt_W_src).unrouted, 2);
    cr_assert_eq(counters(b, rt_W_sink).unrouted, 1);
    cr_assert_eq(counters(b, rt_W_src).sent, 0, "nothing was delivered");
    msgr_bus_close(b);
}

Test(runtime, a_message_a_worker_cannot_handle_is_counted_not_ignored)
{
    msgr_bus *b = open_bus(NULL);
    msgr_ctx *src = src_ctx(b);
    cr_assert_eq(msgr_bus_start(b), 0);
    M1 m1 = {.seq = 5};
    /* Bypass routing: sink has no handler for M1 from src. */
    cr_assert_eq(msgr_send_to(src, rt_W_sink, rt_MSG_M1, &m1, sizeof m1), 0);
    /* And a wrong length for a struct message is an error, not a misread. */
    cr_assert_eq(msgr_send_to(src, rt_W_a, rt_MSG_M1, &m1, 4), 0);
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, NULL), 0);
    cr_assert_eq(counters(b, rt_W_sink).unhandled, 1);
    cr_assert_eq(counters(b, rt_W_sink).received, 0);
    cr_assert_eq(counters(b, rt_W_a).rejected, 1);
    cr_assert_eq(count(rt_W_a, "M1"), 0);
    msgr_bus_close(b);
}

Test(runtime, messages_for_a_worker_not_running_anywhere_are_kept_and_counted)
{
    const char *const run[] = {"src", "a", NULL}; /* b and sink run nowhere */
    msgr_bus *b = open_bus(run);
    msgr_ctx *src = src_ctx(b);
    cr_assert_eq(msgr_bus_start(b), 0);
    M2 m2 = {.seq = 1};
    cr_assert_eq(rt_send_M2(src, &m2), 0);
    cr_assert_eq(counters(b, rt_W_src).to_absent, 1);
    cr_assert_gt(counters(b, rt_W_b).queued_bytes, 0, "kept in b's inbox");
    cr_assert_eq(counters(b, rt_W_b).queued, 1, "queue depth in messages");
    cr_assert_eq(counters(b, rt_W_b).running, 0);
    cr_assert_eq(counters(b, rt_W_a).running, 1);
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, NULL), 0);
    msgr_bus_close(b);
}

Test(runtime, drain_handles_everything_queued)
{
    const char *const run[] = {"src", "a", "sink", NULL};
    msgr_bus *b = open_bus(run);
    msgr_ctx *src = src_ctx(b);
    for (uint64_t i = 0; i < 3000; i++) { /* queued before the workers start */
        M1 m1 = {.seq = i};
        cr_assert_eq(rt_send_M1(src, &m1), 0);
    }
    cr_assert_eq(counters(b, rt_W_a).queued, 3000, "queue depth before the workers start");
    cr_assert_eq(msgr_bus_start(b), 0);
    msgr_stop_report rep;
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, &rep), 0);
    cr_assert_eq(rep.abandoned, 0);
    cr_assert_eq(counters(b, rt_W_a).queued, 0);
    cr_assert_eq(counters(b, rt_W_a).dropped, 0);
    cr_assert_eq(count(rt_W_a, "M1"), 3000);
    cr_assert_eq(count(rt_W_sink, "M4"), 3000, "and what they caused");
    cr_assert_leq(rep.drained, 6000);
    cr_assert_eq(counters(b, rt_W_a).queued_bytes, 0);
    cr_assert_eq(counters(b, rt_W_sink).queued_bytes, 0);
    msgr_bus_close(b);
}

Test(runtime, abandon_discards_what_is_queued_and_accounts_for_every_message)
{
    const char *const run[] = {"src", "a", NULL};
    msgr_bus *b = open_bus(run);
    msgr_ctx *src = src_ctx(b);
    atomic_store(&slow_spin, 20000);
    const uint64_t n = 4000;
    for (uint64_t i = 0; i < n; i++) {
        M1 m1 = {.seq = i};
        cr_assert_eq(rt_send_M1(src, &m1), 0);
    }
    cr_assert_eq(msgr_bus_start(b), 0);
    msgr_stop_report rep;
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_ABANDON, 0, &rep), 0);
    uint64_t handled = (uint64_t)count(rt_W_a, "M1");
    cr_assert_leq(rep.drained, 1, "at most the message in hand is finished");
    cr_assert_eq(handled + rep.abandoned, n, "handled %lu + abandoned %lu != %lu",
                 (unsigned long)handled, (unsigned long)rep.abandoned, (unsigned long)n);
    cr_assert_gt(rep.abandoned, 0, "with ~20k spins per message, most were still queued");
    cr_assert_eq(counters(b, rt_W_a).queued_bytes, 0, "nothing left behind");
    cr_assert_eq(counters(b, rt_W_a).queued, 0);
    cr_assert_eq(counters(b, rt_W_a).dropped, rep.abandoned, "dropped counter agrees");
    msgr_bus_close(b);
}

Test(runtime, typed_zero_copy_claim_and_commit)
{
    msgr_bus *b = open_bus(NULL);
    msgr_ctx *src = src_ctx(b);
    cr_assert_eq(msgr_bus_start(b), 0);
    msgr_out out;
    M3 *m = NULL;
    cr_assert_eq(rt_claim_M3(src, &out, &m), 0);
    m->seq = 77;
    strcpy(m->text, "M3");
    cr_assert_eq(rt_commit_M3(src, &out), 0, "fan-out: a copy for b, the claim for a");
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, NULL), 0);
    cr_assert_eq(count(rt_W_a, "M3"), 1);
    cr_assert_eq(count(rt_W_b, "M3"), 1);
    cr_assert_eq(logs[rt_W_b].seq[0], 77);
    msgr_bus_close(b);
}

Test(runtime, serialized_messages_round_trip_and_the_size_contract_is_enforced)
{
    msgr_bus *b = open_bus(NULL);
    msgr_ctx *src = src_ctx(b);
    cr_assert_eq(msgr_bus_start(b), 0);
    char *items[] = {"alpha", "", "a somewhat longer third string"};
    Names names = {.n = 3, .items = items};
    cr_assert_eq(rt_send_Names(src, &names), 0);
    break_encoder = 1;
    cr_assert_eq(rt_send_Names(src, &names), MSGR_ECODEC, "encoder wrote less than its size");
    break_encoder = 0;
    /* A corrupt encoding (claims 1000 strings) reaches the decoder: an error, no handler call. */
    uint32_t bogus[2] = {1000, 5};
    cr_assert_eq(msgr_send_to(src, rt_W_sink, rt_MSG_Names, bogus, sizeof bogus), 0);
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, NULL), 0);
    cr_assert_eq(count(rt_W_sink, "Names"), 1, "only the good one was handled");
    cr_assert_eq(got_n, 3);
    cr_assert_str_eq(got_names[0], "alpha");
    cr_assert_str_eq(got_names[1], "");
    cr_assert_str_eq(got_names[2], "a somewhat longer third string");
    cr_assert_eq(counters(b, rt_W_src).send_errors, 1, "the broken encoding");
    cr_assert_eq(counters(b, rt_W_sink).rejected, 1, "the corrupt one");
    msgr_bus_close(b);
}

static char test_shm[160]; /* the current test's shm name, removed by the suite's teardown */

static void shm_name(char *buf, size_t n)
{
    snprintf(buf, n, "msgr-rt-test-%d-%ld", (int)getpid(), random());
    snprintf(test_shm, sizeof test_shm, "%s", buf);
}

static void teardown(void)
{
    if (test_shm[0])
        msgr_region_unlink_shm(test_shm); /* also when an assertion failed */
}

Test(runtime, a_binary_with_another_layout_is_refused_and_adding_a_message_is_not)
{
    char name[64];
    shm_name(name, sizeof name);
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = 1 << 16};
    msgr_bus *b, *other;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    cr_assert_eq(msgr_bus_open(rt_v2_app(), &o, &other), MSGR_ESCHEMA);
    cr_assert(strstr(msgr_last_error(),
                     "message M2 (wire id 2): field 'a' is uint64_t here and uint32_t in the bus"),
              "said: %s", msgr_last_error());
    const char *const none[] = {NULL};
    o.run = none;
    cr_assert_eq(msgr_bus_open(rt_v3_app(), &o, &other), 0, "a new message type is compatible");
    msgr_bus_close(other);
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &other), 0, "the same definitions attach");
    msgr_bus_close(other);
    msgr_bus_close(b);
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
}

Test(runtime, a_worker_running_in_a_live_process_cannot_be_claimed_twice)
{
    char name[64];
    shm_name(name, sizeof name);
    const char *const run_a[] = {"a", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = 1 << 16,
                       .run = run_a};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    pid_t pid = fork();
    if (pid == 0) {
        msgr_bus *c;
        _exit(msgr_bus_open(rt_app(), &o, &c) == MSGR_EBUSY ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "another process got EBUSY for worker a");
    msgr_bus_close(b);
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
}

/* A process killed inside a typed zero-copy claim (claimed, written, never committed) costs
 * only that message: the receiving worker moves past the claim after the claim timeout and
 * every message sent after it is handled, in order. */
Test(runtime, a_process_killed_inside_a_typed_claim_costs_only_that_message)
{
    char name[64];
    shm_name(name, sizeof name);
    const char *const run[] = {"a", "b", "sink", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = 1 << 16,
                       .run = run};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    cr_assert_eq(msgr_bus_start(b), 0);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        const char *const run_src[] = {"src", NULL};
        msgr_bus_opts co = o;
        co.run = run_src;
        msgr_bus *c;
        msgr_ctx *ctx;
        msgr_out out;
        M1 *m;
        if (msgr_bus_open(rt_app(), &co, &c) || msgr_bus_ctx(c, rt_W_src, &ctx) ||
            rt_claim_M1(ctx, &out, &m))
            _exit(1);
        m->seq = 999; /* written in place, never committed */
        char one = 1;
        if (write(fds[1], &one, 1) != 1)
            _exit(1);
        tu_sleep_forever();
        _exit(0);
    }
    char one;
    cr_assert_eq(read(fds[0], &one, 1), 1, "the child holds its claim");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    msgr_ctx *src;
    cr_assert_eq(msgr_bus_ctx(b, rt_W_src, &src), 0);
    for (uint64_t i = 1; i <= 5; i++) {
        M1 m = {.seq = i};
        cr_assert_eq(rt_send_M1(src, &m), 0);
    }
    /* Waits for a's inbox to move past the dead claim (claim timeout: 1 s by default). */
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, 10000000000ll, NULL), 0);
    cr_assert_eq(count(rt_W_a, "M1"), 5, "every message after the dead claim");
    for (uint32_t i = 0; i < 5; i++)
        cr_assert_eq(logs[rt_W_a].seq[i], i + 1, "in order");
    msgr_bus_close(b);
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
}

/* A worker whose process was killed (and is a zombie until reaped) is not running: its
 * counters say so, and another process may run it. */
Test(runtime, a_worker_of_a_killed_process_is_not_running_and_can_be_taken_over)
{
    char name[64];
    shm_name(name, sizeof name);
    const char *const run_a[] = {"a", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = 1 << 16,
                       .run = run_a};
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        msgr_bus *c;
        if (msgr_bus_open(rt_app(), &o, &c))
            _exit(1);
        char one = 1;
        if (write(fds[1], &one, 1) != 1)
            _exit(1);
        tu_sleep_forever();
        _exit(0);
    }
    char one;
    cr_assert_eq(read(fds[0], &one, 1), 1, "the child runs worker a");
    const char *const none[] = {NULL};
    msgr_bus_opts watch = o;
    watch.run = none;
    msgr_bus *w;
    cr_assert_eq(msgr_bus_open(rt_app(), &watch, &w), 0);
    cr_assert_eq(counters(w, rt_W_a).running, 1);
    kill(pid, SIGKILL);
    uint64_t t0 = tu_now_ns();
    while (counters(w, rt_W_a).running) { /* a zombie: not reaped yet, already dead */
        cr_assert_lt(tu_now_ns() - t0, 10000000000ull, "still running after the kill");
        sched_yield();
    }
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0, "worker a taken over from the dead");
    cr_assert_eq(counters(w, rt_W_a).running, 1);
    cr_assert_eq(counters(w, rt_W_a).pid, getpid());
    waitpid(pid, NULL, 0);
    msgr_bus_close(b);
    msgr_bus_close(w);
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
}

/* N processes opening one new bus at once: one creates it, the others wait for it to be
 * formatted and attach (a file bus takes milliseconds to format: each inbox is a log file). */
static void open_together(uint32_t kind, int procs, int trials)
{
    char name[160];
    for (int trial = 0; trial < trials; trial++) {
        if (kind == MSGR_REGION_FILE) {
            snprintf(name, sizeof name, "/tmp/msgr-rt-together-%d.bus", (int)getpid());
            char p[200];
            unlink(name);
            for (uint32_t w = 0; w < rt_N_WORKERS; w++) {
                snprintf(p, sizeof p, "%s.%s", name, rt_app()->worker_names[w]);
                unlink(p);
            }
        } else {
            shm_name(name, sizeof name);
        }
        int go[2], res[2];
        cr_assert_eq(pipe(go), 0);
        cr_assert_eq(pipe(res), 0);
        pid_t kids[8];
        for (int k = 0; k < procs; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                close(go[1]);
                char c;
                if (read(go[0], &c, 1) != 0)
                    _exit(1);
                const char *const none[] = {NULL};
                msgr_bus_opts o = {.kind = kind, .name = name, .inbox_capacity = 1 << 16,
                                   .run = none};
                msgr_bus *b;
                int rc = msgr_bus_open(rt_app(), &o, &b);
                if (rc == 0)
                    msgr_bus_close(b);
                if (write(res[1], &rc, sizeof rc) != sizeof rc)
                    _exit(2);
                _exit(0);
            }
        }
        close(go[0]);
        close(go[1]);
        for (int k = 0; k < procs; k++) {
            int got;
            cr_assert_eq(read(res[0], &got, sizeof got), (ssize_t)sizeof got);
            cr_assert_eq(got, 0, "trial %d: an opener got %s", trial, msgr_strerror(got));
        }
        for (int k = 0; k < procs; k++)
            waitpid(kids[k], NULL, 0);
        close(res[0]);
        close(res[1]);
        if (kind == MSGR_REGION_SHM)
            msgr_region_unlink_shm(name);
    }
}

Test(runtime, two_then_eight_processes_open_one_new_file_bus_at_once, .timeout = 240)
{
    open_together(MSGR_REGION_FILE, 2, 100);
    open_together(MSGR_REGION_FILE, 8, 100);
}

Test(runtime, eight_processes_open_one_new_shm_bus_at_once, .timeout = 120)
{
    open_together(MSGR_REGION_SHM, 8, 100);
}

/* A bus whose creator died after making its region and before formatting it is re-made by
 * the next opener, not refused for ever. */
Test(runtime, a_bus_whose_creator_died_before_formatting_it_is_re_made)
{
    char name[64];
    shm_name(name, sizeof name);
    pid_t pid = fork();
    if (pid == 0) {
        msgr_region *g;
        _exit(msgr_region_create_shm(name, 1 << 20, NULL, &g) ? 1 : 0); /* then dies */
    }
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = 1 << 16};
    msgr_bus *b;
    int rc = msgr_bus_open(rt_app(), &o, &b);
    cr_assert_eq(rc, 0, "open: %s", msgr_strerror(rc));
    msgr_ctx *src = src_ctx(b);
    cr_assert_eq(msgr_bus_start(b), 0);
    M1 m = {.seq = 1};
    cr_assert_eq(rt_send_M1(src, &m), 0);
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, NULL), 0);
    cr_assert_eq(count(rt_W_a, "M1"), 1, "the re-made bus works");
    msgr_bus_close(b);
}

Test(runtime, worker_ids_by_name)
{
    cr_assert_eq(msgr_bus_worker_id(rt_app(), "src"), rt_W_src);
    cr_assert_eq(msgr_bus_worker_id(rt_app(), "sink"), rt_W_sink);
    cr_assert_eq(msgr_bus_worker_id(rt_app(), "nobody"), MSGR_ENOENT);
    cr_assert_eq(msgr_bus_worker_id(NULL, "a"), MSGR_EINVAL);
}

Test(runtime, running_is_cleared_by_stop_and_set_by_start)
{
    msgr_bus *b = open_bus(NULL);
    src_ctx(b);
    cr_assert_eq(msgr_bus_start(b), 0);
    cr_assert_eq(counters(b, rt_W_a).running, 1);
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, NULL), 0);
    cr_assert_eq(counters(b, rt_W_a).running, 0, "stopped: not running");
    cr_assert_eq(msgr_bus_start(b), 0);
    cr_assert_eq(counters(b, rt_W_a).running, 1);
    msgr_bus_close(b);
}

/* A process that only runs workers joins the bus; a stop signalled from another process ends
 * the join after its workers drained what they had. */
Test(runtime, join_returns_when_another_process_stops_the_bus)
{
    char name[64];
    shm_name(name, sizeof name);
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = 1 << 16};
    const char *const none[] = {NULL};
    o.run = none;
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    cr_assert_eq(msgr_bus_join(b, 10000000), MSGR_ETIMEDOUT, "nothing stopped it yet");
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        const char *const run[] = {"a", "b", "sink", NULL};
        msgr_bus_opts co = o;
        co.run = run;
        msgr_bus *c;
        if (msgr_bus_open(rt_app(), &co, &c) || msgr_bus_start(c))
            _exit(1);
        char one = 1;
        if (write(fds[1], &one, 1) != 1)
            _exit(1);
        int rc = msgr_bus_join(c, 30000000000ll);
        int handled = count(rt_W_a, "M1");
        msgr_bus_close(c);
        _exit(rc == 0 && handled == 100 ? 0 : 2);
    }
    char one;
    cr_assert_eq(read(fds[0], &one, 1), 1, "the child runs its workers");
    msgr_ctx *src;
    cr_assert_eq(msgr_bus_ctx(b, rt_W_src, &src), 0);
    for (uint64_t i = 0; i < 100; i++) {
        M1 m = {.seq = i};
        cr_assert_eq(rt_send_M1(src, &m), 0);
    }
    cr_assert_eq(msgr_bus_signal_stop(b), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "the child's join returned after draining all 100 (status %d)", st);
    msgr_bus_close(b);
}

/* MSGR_BUS_FRESH starts from an empty bus; without it the old messages are still there;
 * msgr_bus_destroy refuses a bus in use and removes every file of one that is not. */
Test(runtime, fresh_and_destroy)
{
    char bus[128];
    snprintf(bus, sizeof bus, "/tmp/msgr-rt-fresh-%d.bus", (int)getpid());
    const char *const none[] = {NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_FILE, .name = bus, .inbox_capacity = 1 << 16,
                       .run = none};
    msgr_bus_destroy(rt_app(), &o);
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    msgr_ctx *src;
    cr_assert_eq(msgr_bus_ctx(b, rt_W_src, &src), 0);
    M1 m = {.seq = 1};
    cr_assert_eq(rt_send_M1(src, &m), 0);
    cr_assert_eq(msgr_bus_destroy(rt_app(), &o), MSGR_EBUSY, "in use by this process");
    o.flags = MSGR_BUS_FRESH;
    msgr_bus *other;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &other), MSGR_EBUSY, "fresh, but in use");
    msgr_bus_close(b);
    o.flags = 0;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    cr_assert_eq(counters(b, rt_W_a).queued, 1, "the old message is still there");
    msgr_bus_close(b);
    o.flags = MSGR_BUS_FRESH;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    cr_assert_eq(counters(b, rt_W_a).queued, 0, "a fresh bus is empty");
    msgr_bus_close(b);
    cr_assert_eq(msgr_bus_destroy(rt_app(), &o), 0);
    char p[200];
    cr_assert_neq(access(bus, F_OK), 0, "the bus file is gone");
    snprintf(p, sizeof p, "%s.a", bus);
    cr_assert_neq(access(p, F_OK), 0, "and every inbox file");
    cr_assert_eq(msgr_bus_destroy(rt_app(), &o), 0, "destroying nothing is fine");
    o.kind = MSGR_REGION_ANON;
    cr_assert_eq(msgr_bus_destroy(rt_app(), &o), MSGR_EINVAL);
}

/* Changes the old fingerprint missed: a field's type (same size and offset) and a message's
 * wire id; and the refusal names the message. */
Test(runtime, a_changed_field_type_or_wire_id_is_refused_and_named)
{
    char name[64];
    shm_name(name, sizeof name);
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = 1 << 16};
    const char *const none[] = {NULL};
    o.run = none;
    msgr_bus *b, *other;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    cr_assert_eq(msgr_bus_open(rt_v4_app(), &o, &other), MSGR_ESCHEMA, "uint32_t -> float");
    cr_assert(strstr(msgr_last_error(),
                     "message M2 (wire id 2): field 'a' is float here and uint32_t in the bus"),
              "said: %s", msgr_last_error());
    cr_assert_eq(msgr_bus_open(rt_v5_app(), &o, &other), MSGR_ESCHEMA, "wire id 1 -> 9");
    cr_assert(strstr(msgr_last_error(), "M1 has wire id 9 here and 1 in the bus"), "said: %s",
              msgr_last_error());
    cr_assert_eq(msgr_bus_open(rt_v6_app(), &o, &other), MSGR_ESCHEMA, "a field added");
    cr_assert(strstr(msgr_last_error(), "message M6 (wire id 6): field 'hops' (uint64_t) is new "
                     "here; the bus has none after 'origin'"), "said: %s", msgr_last_error());
    cr_assert_eq(msgr_bus_open(rt_v7_app(), &o, &other), MSGR_ESCHEMA, "a field renamed");
    cr_assert(strstr(msgr_last_error(), "message M6 (wire id 6): field 2 is 'source' here and "
                     "'origin' in the bus"), "said: %s", msgr_last_error());
    msgr_bus_close(b);
    /* The other way round: the bus has the field this binary lacks; array types as written. */
    msgr_region_unlink_shm(name);
    shm_name(name, sizeof name);
    o.name = name;
    cr_assert_eq(msgr_bus_open(rt_v6_app(), &o, &b), 0);
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &other), MSGR_ESCHEMA, "a field removed");
    cr_assert(strstr(msgr_last_error(), "message M6 (wire id 6): the bus has a field 'hops' "
                     "(uint64_t) after the last one here"), "said: %s", msgr_last_error());
    msgr_bus_close(b);
    uint32_t n = 0;
    const msgr_app_field *f = NULL;
    for (uint32_t i = 0; i < rt_app()->n_messages; i++)
        if (rt_app()->messages[i].id == rt_MSG_M3)
            f = rt_app()->messages[i].fields(&n);
    cr_assert(f && n == 2 && strcmp(f[1].name, "text") == 0 && strcmp(f[1].type, "char[24]") == 0
              && f[1].offset == 8 && f[1].size == 24, "M3's field table");
}

Test(runtime, errors_name_the_worker_or_value_at_fault)
{
    const char *const run[] = {"a", "nobody", NULL};
    msgr_bus_opts o = {.run = run};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), MSGR_EINVAL);
    cr_assert(strstr(msgr_last_error(), "no worker named 'nobody'"), "said: %s",
              msgr_last_error());
    o = (msgr_bus_opts){.inbox_capacity = 3000};
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), MSGR_EINVAL);
    cr_assert(strstr(msgr_last_error(), "inbox_capacity 3000 is not a power of two"), "said: %s",
              msgr_last_error());
    /* A damaged inbox file of a file bus: its worker and path. */
    char bus[128], inbox[160];
    snprintf(bus, sizeof bus, "/tmp/msgr-rt-damaged-%d.bus", (int)getpid());
    snprintf(inbox, sizeof inbox, "%s.b", bus);
    const char *const none[] = {NULL};
    o = (msgr_bus_opts){.kind = MSGR_REGION_FILE, .name = bus, .inbox_capacity = 1 << 16,
                        .run = none, .flags = MSGR_BUS_FRESH};
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    msgr_bus_close(b);
    FILE *f = fopen(inbox, "r+");
    cr_assert_not_null(f);
    fwrite("garbage!", 1, 8, f); /* over the region's magic */
    fclose(f);
    o.flags = 0;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), MSGR_ENOTMSGR);
    cr_assert(strstr(msgr_last_error(), "inbox of worker 'b'") && strstr(msgr_last_error(), inbox),
              "said: %s", msgr_last_error());
    msgr_bus_destroy(rt_app(), &o);
}

static int fill_inbox(msgr_ctx *src, int m2)
{
    int n = 0;
    for (; n < 100000; n++) {
        int rc;
        if (m2) {
            M2 m = {.seq = (uint64_t)n};
            rc = rt_send_M2(src, &m);
        } else {
            M1 m = {.seq = (uint64_t)n};
            rc = rt_send_M1(src, &m);
        }
        if (rc < 0)
            break;
    }
    return n;
}

/* Each worker's inbox in its own size (opts.inbox_capacities); a second process attaching
 * finds the same sizes. */
Test(runtime, each_inbox_in_its_own_capacity)
{
    char name[64];
    shm_name(name, sizeof name);
    uint64_t caps[rt_N_WORKERS] = {0};
    caps[rt_W_a] = 1 << 12;
    caps[rt_W_b] = 1 << 16;
    const char *const none[] = {NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = 1 << 14,
                       .run = none, .send_timeout_ns = 1000000, .inbox_capacities = caps};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    msgr_ctx *src;
    cr_assert_eq(msgr_bus_ctx(b, rt_W_src, &src), 0);
    int to_a = fill_inbox(src, 0), to_b = fill_inbox(src, 1);
    cr_assert(to_a > 50 && to_a <= 4096 / 32, "a's 4 KiB inbox took %d", to_a);
    cr_assert(to_b > 1000 && to_b <= 65536 / 32, "b's 64 KiB inbox took %d", to_b);
    pid_t pid = fork();
    if (pid == 0) { /* attaches without the capacities: the bus has them */
        msgr_bus_opts co = {.kind = MSGR_REGION_SHM, .name = name, .run = none,
                            .send_timeout_ns = 1000000};
        msgr_bus *c;
        msgr_ctx *s2;
        if (msgr_bus_open(rt_app(), &co, &c) || msgr_bus_ctx(c, rt_W_src, &s2))
            _exit(1);
        M1 m = {.seq = 1};
        _exit(rt_send_M1(s2, &m) == MSGR_ETIMEDOUT ? 0 : 2); /* a's inbox is still full */
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    uint64_t bad[rt_N_WORKERS] = {0, 3000, 0, 0};
    msgr_bus_opts e = {.inbox_capacities = bad};
    msgr_bus *x;
    cr_assert_eq(msgr_bus_open(rt_app(), &e, &x), MSGR_EINVAL);
    cr_assert(strstr(msgr_last_error(), "worker 'a'"), "said: %s", msgr_last_error());
    msgr_bus_close(b);
}

Test(runtime, bad_arguments)
{
    msgr_bus *b;
    const char *const run[] = {"nobody", NULL};
    msgr_bus_opts o = {.run = run};
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), MSGR_EINVAL, "unknown worker in run");
    o = (msgr_bus_opts){.inbox_capacity = 1000};
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), MSGR_EINVAL, "capacity not a power of two");
    o = (msgr_bus_opts){.kind = MSGR_REGION_SHM};
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), MSGR_EINVAL, "shm without a name");
    cr_assert_eq(msgr_bus_open(NULL, NULL, &b), MSGR_EINVAL);
    cr_assert_eq(msgr_bus_open(rt_app(), NULL, NULL), MSGR_EINVAL);
    b = open_bus(NULL);
    msgr_ctx *c;
    cr_assert_eq(msgr_bus_ctx(b, 99, &c), MSGR_EINVAL);
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, 0, NULL), MSGR_ESTATE, "not started");
    cr_assert_eq(msgr_bus_start(b), 0);
    cr_assert_eq(msgr_bus_start(b), MSGR_ESTATE);
    cr_assert_eq(msgr_bus_poll(b, rt_W_a, 1), MSGR_ESTATE, "a runs on a thread");
    cr_assert_eq(msgr_bus_stop(b, 7, 0, NULL), MSGR_EINVAL);
    msgr_bus_close(b); /* stops (abandon) on the way out */
}

/* ---- the runtime on a file bus ---- */

static void file_paths(char *bus, size_t n)
{
    snprintf(bus, n, "/tmp/msgr-rt-file-%d-%ld.bus", (int)getpid(), random());
}

static void remove_bus_files(const char *bus)
{
    char p[300];
    unlink(bus);
    const char *names[] = {"src", "a", "b", "sink"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s.%s", bus, names[i]);
        unlink(p);
    }
}

Test(runtime, a_file_bus_delivers_and_keeps_nothing_acknowledged)
{
    char bus[200];
    file_paths(bus, sizeof bus);
    msgr_bus_opts o = {.kind = MSGR_REGION_FILE, .name = bus, .inbox_capacity = 1 << 16};
    msgr_bus *b;
    int rc = msgr_bus_open(rt_app(), &o, &b);
    cr_assert_eq(rc, 0, "open: %s", msgr_strerror(rc));
    msgr_ctx *src = src_ctx(b);
    cr_assert_eq(msgr_bus_start(b), 0);
    for (uint64_t i = 0; i < 500; i++) {
        M1 m = {.seq = i};
        cr_assert_eq(rt_send_M1(src, &m), 0);
    }
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, NULL), 0);
    cr_assert_eq(count(rt_W_a, "M1"), 500);
    cr_assert_eq(count(rt_W_sink, "M4"), 500);
    msgr_bus_close(b);
    /* Reopened: everything was acknowledged, so nothing is delivered again. */
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    src = src_ctx(b);
    cr_assert_eq(msgr_bus_start(b), 0);
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, NULL), 0);
    cr_assert_eq(count(rt_W_a, "M1"), 500, "no redelivery of acknowledged messages");
    cr_assert_eq(counters(b, rt_W_a).queued, 0);
    msgr_bus_close(b);
    remove_bus_files(bus);
}

/* The child's `a` handler also appends each sequence number to a file (one write each). */
static void restart_child(const char *bus, int seen)
{
    seen_fd = seen;
    const char *const run[] = {"a", "sink", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_FILE, .name = bus, .run = run};
    msgr_bus *b;
    if (msgr_bus_open(rt_app(), &o, &b) || msgr_bus_start(b))
        _exit(3);
    msgr_stop_report rep;
    if (msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, &rep)) /* handles everything queued, then stops */
        _exit(4);
    msgr_bus_close(b);
    _exit(0);
}

Test(runtime, a_file_bus_killed_and_restarted_processes_every_message_at_least_once)
{
    char bus[200], seen_path[240];
    file_paths(bus, sizeof bus);
    snprintf(seen_path, sizeof seen_path, "%s.seen", bus);
    const uint64_t n = 3000;
    const char *const run_src[] = {"src", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_FILE, .name = bus, .run = run_src,
                       .inbox_capacity = 1 << 20};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0);
    msgr_ctx *src = src_ctx(b);
    for (uint64_t i = 0; i < n; i++) { /* queued in a's inbox file; a runs nowhere yet */
        M1 m = {.seq = i};
        cr_assert_eq(rt_send_M1(src, &m), 0);
    }
    int seen = open(seen_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    atomic_store(&slow_spin, 200000); /* slow handlers, so the kill lands mid-way */
    pid_t first = fork();
    if (first == 0)
        restart_child(bus, seen);
    /* Await progress through the shared counters, then kill the worker process. */
    while (counters(b, rt_W_a).received < n / 4)
        sched_yield();
    kill(first, SIGKILL);
    int st;
    waitpid(first, &st, 0);
    uint64_t before = counters(b, rt_W_a).received;
    cr_assert_lt(before, n, "killed before it finished");
    atomic_store(&slow_spin, 0);
    pid_t second = fork();
    if (second == 0)
        restart_child(bus, seen); /* takes the dead process's workers over, resumes */
    waitpid(second, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "restarted run failed: %d", st);
    close(seen);
    /* Every message at least once; duplicates are the ones handled but not acknowledged. */
    char *hits = calloc(n, 1);
    FILE *f = fopen(seen_path, "r");
    uint64_t v, dups = 0, total = 0;
    while (fscanf(f, "%lu", &v) == 1) {
        cr_assert_lt(v, n);
        dups += hits[v]++ > 0;
        total++;
    }
    fclose(f);
    for (uint64_t i = 0; i < n; i++)
        cr_assert_gt(hits[i], 0, "message %lu never processed", (unsigned long)i);
    printf("restart test: %lu messages processed at least once (%lu before the kill), %lu "
           "duplicates seen\n", (unsigned long)n, (unsigned long)before, (unsigned long)dups);
    cr_assert_eq(counters(b, rt_W_a).queued, 0);
    free(hits);
    msgr_bus_close(b);
    remove_bus_files(bus);
    unlink(seen_path);
}

/* A bus made in a nameless region (MSGR_REGION_TRANSFERABLE) and handed over an IPC
 * connection to a process that never mapped it (forked before the region existed): that
 * process attaches with msgr_bus_opts.region and runs workers a and sink; everything sent here
 * is handled there, as over named shared memory. */
Test(runtime, a_bus_in_a_region_handed_over_a_connection_runs_workers_in_another_process)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/msgr-rt-region-%d.sock", (int)getpid());
    msgr_ipc_server *srv;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &srv), 0, "%s", msgr_last_error());
    pid_t kid = fork();
    if (kid == 0) {
        msgr_ipc_server_close(srv);
        msgr_ipc_conn *c;
        msgr_region *g;
        char note[16];
        if (msgr_ipc_connect(path, NULL, &c) ||
            msgr_ipc_recv_region(c, &g, note, sizeof note, 10000000000ll) < 0)
            _exit(1);
        const char *const run[] = {"a", "sink", NULL};
        msgr_bus_opts o = {.region = g, .run = run};
        msgr_bus *b;
        if (msgr_bus_open(rt_app(), &o, &b) || msgr_bus_start(b))
            _exit(2);
        int rc = msgr_bus_join(b, 30000000000ll);
        msgr_bus_close(b);
        msgr_region_close(g);
        msgr_ipc_close(c);
        _exit(rc ? 3 : 0);
    }
    const char *const run[] = {"src", NULL};
    msgr_bus_opts o = {.run = run, .inbox_capacity = 1 << 16};
    size_t bytes = msgr_bus_footprint(rt_app(), &o);
    cr_assert_gt(bytes, 0);
    msgr_region *g;
    msgr_region_opts ro = {.flags = MSGR_REGION_TRANSFERABLE};
    cr_assert_eq(msgr_region_create_anon(bytes, &ro, &g), 0);
    o.region = g;
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0, "%s", msgr_last_error());
    msgr_ipc_conn *c;
    cr_assert_eq(msgr_ipc_accept(srv, &c, 10000000000ll), 0);
    cr_assert_eq(msgr_ipc_send_region(c, g, "bus", 3), 0);
    msgr_ctx *src = src_ctx(b);
    for (uint64_t i = 0; i < 1000; i++) {
        M1 m1 = {.seq = i};
        cr_assert_eq(rt_send_M1(src, &m1), 0);
    }
    uint64_t t0 = tu_now_ns();
    while (counters(b, rt_W_sink).received < 1000) { /* the other process's counters, shared */
        cr_assert_lt(tu_now_ns() - t0, 20000000000ull, "the workers over there never got it all");
        tu_yield();
    }
    cr_assert_eq(counters(b, rt_W_a).received, 1000);
    cr_assert_eq(counters(b, rt_W_a).pid, (int32_t)kid, "worker a runs in the other process");
    msgr_bus_signal_stop(b);
    int st;
    cr_assert_eq(waitpid(kid, &st, 0), kid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the other process: status %d", st);
    msgr_bus_close(b);
    msgr_region_close(g); /* the bus left it to us */
    msgr_ipc_close(c);
    msgr_ipc_server_close(srv);
    /* too small a region is refused with the size it needs */
    msgr_region *small;
    cr_assert_eq(msgr_region_create_anon(4096, NULL, &small), 0);
    o.region = small;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), MSGR_ERANGE);
    cr_assert(strstr(msgr_last_error(), "msgr_bus_footprint"), "%s", msgr_last_error());
    msgr_region_close(small);
}

Test(runtime, a_registered_bus_is_opened_by_name_alone_wherever_it_lives)
{
    char reg_dir[128];
    snprintf(reg_dir, sizeof reg_dir, "/tmp/msgr-rt-registry-%d", (int)getpid());
    mkdir(reg_dir, 0700);
    setenv("MSGR_REGISTRY", reg_dir, 1);
    char name[64];
    shm_name(name, sizeof name);
    const char *const none[] = {NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .inbox_capacity = 1 << 16,
                       .flags = MSGR_BUS_REGISTER, .registry_name = "rt-orders"};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &b), 0, "%s", msgr_last_error());
    msgr_registry_entry e;
    cr_assert_eq(msgr_registry_lookup("rt-orders", &e), 0);
    cr_assert_str_eq(e.location, name);
    cr_assert_str_eq(e.app, rt_app()->name);
    cr_assert_eq(e.schema, msgr_app_schema(rt_app()));
    /* another process opens it knowing only the registered name, and is recorded there */
    pid_t pid = fork();
    if (pid == 0) {
        msgr_bus_opts by = {.name = "rt-orders", .run = none};
        msgr_bus *c;
        msgr_registry_entry in;
        int ok = msgr_bus_open(rt_app(), &by, &c) == 0 &&
                 msgr_region_kind_of(msgr_bus_region(c)) == MSGR_REGION_SHM &&
                 msgr_registry_lookup("rt-orders", &in) == 0 && in.n_procs == 2;
        msgr_bus_close(c);
        _exit(ok ? 0 : 1);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "opened by name in another process");
    /* the name held for another bus: refused, or that bus opened instead */
    char other[80];
    snprintf(other, sizeof other, "%s-other", name);
    msgr_bus_opts o2 = {.kind = MSGR_REGION_SHM, .name = other, .inbox_capacity = 1 << 16,
                        .flags = MSGR_BUS_REGISTER, .registry_name = "rt-orders", .run = none};
    msgr_bus *b2;
    cr_assert_eq(msgr_bus_open(rt_app(), &o2, &b2), MSGR_EEXIST);
    cr_assert(strstr(msgr_last_error(), name) != NULL, "names the holder: %s", msgr_last_error());
    o2.flags |= MSGR_BUS_ATTACH_REGISTERED;
    cr_assert_eq(msgr_bus_open(rt_app(), &o2, &b2), 0, "%s", msgr_last_error());
    msgr_region *probe;
    cr_assert_eq(msgr_region_open_shm(other, &probe), MSGR_ENOENT, "the other bus was never made");
    msgr_bus_close(b2);
    msgr_bus_close(b);
    cr_assert_eq(msgr_registry_lookup("rt-orders", &e), MSGR_ENOENT, "gone with its last process");
    msgr_bus_opts unknown = {.name = "rt-nobody"};
    cr_assert_eq(msgr_bus_open(rt_app(), &unknown, &b), MSGR_ENOENT);
    cr_assert(strstr(msgr_last_error(), "rt-nobody") != NULL, "%s", msgr_last_error());
    rmdir(reg_dir);
}

/* msgr_bus_on_close: the hook runs once, first thing in the close, while the bus still works
 * (it may still look at its workers and counters). */
static int hook_calls, hook_saw_running;
static msgr_bus *hook_bus;
static void on_close_hook(void *arg)
{
    hook_calls += arg == &hook_calls;
    msgr_counters c;
    hook_saw_running = msgr_bus_counters(hook_bus, rt_W_a, &c) == 0 && c.running;
}

Test(runtime, the_close_hook_runs_first_and_once)
{
    msgr_bus_opts o = {.inbox_capacity = 1 << 16};
    cr_assert_eq(msgr_bus_open(rt_app(), &o, &hook_bus), 0);
    cr_assert_eq(msgr_bus_on_close(hook_bus, on_close_hook, &hook_calls), 0);
    cr_assert_eq(msgr_bus_on_close(NULL, on_close_hook, NULL), MSGR_EINVAL);
    cr_assert_eq(msgr_bus_start(hook_bus), 0);
    msgr_bus_close(hook_bus);
    cr_assert_eq(hook_calls, 1);
    cr_assert(hook_saw_running, "the workers still ran when the hook was called");
}
