/* Processes started separately (ring_peer), over named shared memory and a log file: what a
 * user of named buses relies on between unrelated programs. Written against the portable
 * process helpers of test_util.h, so the same tests run on Linux, under qemu and on Windows:
 *   - a million verified messages each way between two programs over a named ring;
 *   - a consumer parked in one process is woken by a send from another;
 *   - a producer killed inside its claim (SIGKILL, TerminateProcess) costs only that record;
 *   - a log file whose appender was killed inside its claim recovers, and appends go on. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "test_util.h"

#define COUNT 1000000
#define CAP (1u << 16)

TestSuite(peer, .timeout = 300);

static void peer_start(tu_proc *p, const char *a1, const char *a2, const char *a3)
{
    char prog[512];
    snprintf(prog, sizeof prog, "%s/ring_peer", tu_bin_dir());
    char *argv[] = {prog, (char *)a1, (char *)a2, (char *)a3, NULL};
    cr_assert_eq(tu_proc_start(p, argv), 0, "cannot start %s (set MSGR_TEST_BIN)", prog);
}

static void expect_exit_0(tu_proc *p)
{
    int st = tu_proc_wait(p);
    cr_assert_eq(st, 0, "ring_peer failed (status %d)", st);
}

/* A ring in new named shared memory; claim_timeout_ns bounds every sleep (wait.h). */
static msgr_region *named_ring(char *name, size_t n, uint32_t flags, int64_t claim_timeout_ns,
                               msgr_ring **r)
{
    snprintf(name, n, "msgr-test-%d-%llu", (int)tu_pid(), (unsigned long long)tu_now_ns());
    msgr_region *g;
    cr_assert_eq(msgr_region_create_shm(name, msgr_ring_footprint(CAP), NULL, &g), 0);
    msgr_ring_opts o = {.capacity = CAP, .flags = flags, .claim_timeout_ns = claim_timeout_ns};
    cr_assert_eq(msgr_ring_create(msgr_region_base(g), msgr_region_size(g), &o, r), 0);
    return g;
}

static void close_named(msgr_ring *r, msgr_region *g, const char *name)
{
    msgr_ring_close(r);
    msgr_region_close(g);
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
}

/* An hour: only a wake-up that really crosses the processes may end a sleep here. */
#define LONG_TIMEOUT 3600000000000ll

Test(peer, a_separate_program_attaches_by_name_and_sends_a_million)
{
    char name[64], num[32];
    msgr_ring *r;
    msgr_region *g = named_ring(name, sizeof name, 0, LONG_TIMEOUT, &r);
    uint64_t n = tu_scaled(COUNT), sum = 0;
    snprintf(num, sizeof num, "%llu", (unsigned long long)n);
    tu_proc p = {0};
    peer_start(&p, name, "produce", num);
    char buf[1024];
    for (uint64_t seq = 0; seq < n; seq++) {
        msgr_msg info;
        int k = msgr_ring_recv_wait(r, buf, sizeof buf, &info, 20000000000ll);
        cr_assert_geq(k, 0, "recv %llu: %s", (unsigned long long)seq, msgr_strerror(k));
        size_t len = tu_len(1, seq, 256);
        cr_assert(k == (int)len && info.type == (uint16_t)seq && !tu_check(buf, 1, seq, len, &sum),
                  "message %llu damaged or out of order", (unsigned long long)seq);
    }
    expect_exit_0(&p);
    close_named(r, g, name);
}

Test(peer, a_separate_program_attaches_by_name_and_receives_a_million)
{
    char name[64], num[32];
    msgr_ring *r;
    msgr_region *g = named_ring(name, sizeof name, 0, LONG_TIMEOUT, &r);
    uint64_t n = tu_scaled(COUNT);
    snprintf(num, sizeof num, "%llu", (unsigned long long)n);
    tu_proc p = {0};
    peer_start(&p, name, "consume", num);
    char buf[256];
    for (uint64_t seq = 0; seq < n; seq++) {
        size_t len = tu_len(0, seq, 256);
        tu_fill(buf, 0, seq, len);
        int rc = msgr_ring_send_wait(r, (uint16_t)seq, buf, len, 20000000000ll);
        cr_assert_eq(rc, 0, "send %llu: %s", (unsigned long long)seq, msgr_strerror(rc));
    }
    expect_exit_0(&p);
    close_named(r, g, name);
}

Test(peer, a_parked_consumer_is_woken_by_a_send_from_another_process, .timeout = 30)
{
    char name[64];
    msgr_ring *r;
    msgr_region *g = named_ring(name, sizeof name, 0, LONG_TIMEOUT, &r);
    msgr_ring_set_wait(r, 0, 0); /* park at once */
    tu_proc p = {0};
    peer_start(&p, name, "wake", "0");
    char buf[64];
    msgr_msg info;
    /* No limit: the peer sends only after it sees us asleep, so only a wake-up that crosses
     * the process boundary ends this wait; a lost one hangs until the test's timeout fails it. */
    int n = msgr_ring_recv_wait(r, buf, sizeof buf, &info, -1);
    cr_assert_eq(n, 21, "woken with the message: %s", n < 0 ? msgr_strerror(n) : "ok");
    cr_assert_str_eq(buf, "from another process");
    cr_assert_eq(info.type, 77);
    expect_exit_0(&p);
    close_named(r, g, name);
}

Test(peer, a_producer_killed_inside_its_claim_costs_only_that_record)
{
    const int64_t timeout = 100000000; /* claim timeout: 100 ms */
    char name[64];
    msgr_ring *r;
    msgr_region *g = named_ring(name, sizeof name, MSGR_RING_MPSC, timeout, &r);
    tu_proc p = {0};
    peer_start(&p, name, "claim", "0");
    msgr_ring_stats st;
    uint64_t t0 = tu_now_ns();
    do { /* await its claim: the tail moves and nothing is committed */
        msgr_ring_stats_get(r, &st);
        tu_yield();
        cr_assert_lt(tu_now_ns() - t0, 10000000000ull, "ring_peer never claimed");
    } while (st.tail == st.head);
    char buf[300];
    for (uint64_t i = 0; i < 10; i++) { /* committed behind the claim */
        size_t len = tu_len(3, i, 200);
        tu_fill(buf, 3, i, len);
        cr_assert_eq(msgr_ring_send_wait(r, (uint16_t)i, buf, len, 5000000000ll), 0);
    }
    tu_proc_kill(&p);
    cr_assert_eq(tu_proc_wait(&p), TU_KILLED);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < 10; i++) {
        msgr_msg info;
        int n = msgr_ring_recv_wait(r, buf, sizeof buf, &info, timeout + 1000000000ll);
        cr_assert_geq(n, 0, "record %llu: %s", (unsigned long long)i, msgr_strerror(n));
        size_t len = tu_len(3, i, 200);
        cr_assert(n == (int)len && info.type == (uint16_t)i && !tu_check(buf, 3, i, len, &sum),
                  "record %llu damaged or out of order", (unsigned long long)i);
    }
    cr_assert_eq(msgr_ring_recv(r, buf, sizeof buf, NULL), MSGR_EAGAIN, "nothing else");
    cr_assert_eq(msgr_ring_stats_get(r, &st), 0);
    cr_assert_eq(st.claims_repaired, 1, "the dead claim became padding");
    close_named(r, g, name);
}

Test(peer, a_log_whose_appender_was_killed_inside_its_claim_recovers)
{
    char path[256];
    snprintf(path, sizeof path, "%s/peer-%d.log", tu_bin_dir(), (int)tu_pid());
    remove(path);
    tu_proc p = {0};
    peer_start(&p, path, "logclaim", "100");
    /* The peer appends 100 records, claims one more and then makes PATH.claimed: await it. */
    char mark[300];
    snprintf(mark, sizeof mark, "%s.claimed", path);
    remove(mark);
    uint64_t t0 = tu_now_ns();
    FILE *f;
    while (!(f = fopen(mark, "r"))) {
        cr_assert_lt(tu_now_ns() - t0, 20000000000ull, "ring_peer never claimed");
        tu_yield();
    }
    fclose(f);
    remove(mark);
    tu_proc_kill(&p);
    cr_assert_eq(tu_proc_wait(&p), TU_KILLED);
    msgr_log *log;
    msgr_log_recovery rep;
    cr_assert_eq(msgr_log_open(path, NULL, &log, &rep), 0);
    cr_assert_eq(rep.recovered, 1, "nobody uses the log: this open recovers it");
    cr_assert_eq(rep.claims_skipped, 1, "the killed appender's claim is skipped");
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "check", &rd), 0);
    for (uint64_t i = 0; i < 100; i++) {
        msgr_msg m;
        cr_assert_eq(msgr_log_read(rd, &m), 0, "record %llu", (unsigned long long)i);
        uint64_t v;
        cr_assert_eq(m.len, 8);
        memcpy(&v, m.data, 8);
        cr_assert_eq(v, i, "record %llu in order", (unsigned long long)i);
        cr_assert_eq(msgr_log_ack(rd, &m), 0);
    }
    msgr_msg m;
    cr_assert_eq(msgr_log_read(rd, &m), MSGR_EAGAIN, "the killed claim is not a record");
    uint64_t v = 100;
    cr_assert_eq(msgr_log_append(log, 1, &v, 8), 0, "appends go on after recovery");
    cr_assert_eq(msgr_log_read(rd, &m), 0);
    cr_assert_eq(memcmp(m.data, &v, 8), 0);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
    remove(path);
}
