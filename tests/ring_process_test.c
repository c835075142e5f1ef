/* Concurrency between processes: a forked child over anonymous shared memory, and a separately
 * started program (ring_peer) attaching by name; wake-ups across processes. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"


#define COUNT 1000000

static int recv_verified(msgr_ring *r, uint32_t id, uint64_t count)
{
    char buf[1024];
    uint64_t sum = 0;
    for (uint64_t seq = 0; seq < count; seq++) {
        msgr_msg info;
        int n = msgr_ring_recv_wait(r, buf, sizeof buf, &info, 20000000000ll);
        if (n < 0)
            return n;
        size_t len = tu_len(id, seq, 256);
        if ((size_t)n != len || info.type != (uint16_t)seq || tu_check(buf, id, seq, len, &sum))
            return MSGR_ECORRUPT;
    }
    return 0;
}

static int send_numbered(msgr_ring *r, uint32_t id, uint64_t count)
{
    char buf[256];
    for (uint64_t seq = 0; seq < count; seq++) {
        size_t len = tu_len(id, seq, 256);
        tu_fill(buf, id, seq, len);
        int rc = msgr_ring_send_wait(r, (uint16_t)seq, buf, len, 20000000000ll);
        if (rc)
            return rc;
    }
    return 0;
}

TestSuite(ring_process, .timeout = 300);

Test(ring_process, forked_child_exchanges_a_million_messages_each_way)
{
    uint64_t n = tu_scaled(COUNT);
    msgr_region *g;
    size_t fp = msgr_ring_footprint(1 << 16);
    cr_assert_eq(msgr_region_create_anon(2 * fp, NULL, &g), 0);
    msgr_ring_opts o = {.capacity = 1 << 16};
    msgr_ring *to_child, *to_parent;
    char *base = msgr_region_base(g);
    cr_assert_eq(msgr_ring_create(base, fp, &o, &to_child), 0);
    cr_assert_eq(msgr_ring_create(base + fp, fp, &o, &to_parent), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        /* The child attaches its own handles, as an unrelated user of the memory would. */
        msgr_ring *in, *out;
        int rc = msgr_ring_attach(base, fp, NULL, &in);
        if (!rc)
            rc = msgr_ring_attach(base + fp, fp, NULL, &out);
        if (!rc)
            rc = recv_verified(in, 0, n);
        if (!rc)
            rc = send_numbered(out, 1, n);
        _exit(rc ? 1 : 0);
    }
    int rc = send_numbered(to_child, 0, n);
    cr_assert_eq(rc, 0, "send: %s", msgr_strerror(rc));
    rc = recv_verified(to_parent, 1, n);
    cr_assert_eq(rc, 0, "recv: %s", msgr_strerror(rc));
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child verified every message");
    msgr_ring_close(to_child);
    msgr_ring_close(to_parent);
    msgr_region_close(g);
}

static pid_t spawn_peer(const char *name, const char *mode, uint64_t count)
{
    char prog[512], num[32];
    snprintf(prog, sizeof prog, "%s/ring_peer", tu_bin_dir());
    snprintf(num, sizeof num, "%lu", (unsigned long)count);
    char *argv[] = {prog, (char *)name, (char *)mode, num, NULL};
    pid_t pid;
    int rc = tu_spawn(&pid, argv);
    cr_assert_eq(rc, 0, "cannot start %s (set MSGR_TEST_BIN)", prog);
    return pid;
}

static void expect_exit_0(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "ring_peer failed (status %d)", st);
}

static msgr_region *named_ring(char *name, size_t n, msgr_ring **r)
{
    snprintf(name, n, "msgr-test-%d-%lu", (int)getpid(), (unsigned long)random());
    msgr_region *g;
    cr_assert_eq(msgr_region_create_shm(name, msgr_ring_footprint(1 << 16), NULL, &g), 0);
    /* A claim timeout of an hour: sleeps are bounded by it (against a waker killed before its
     * wake), and here only a wake-up that really crosses the processes may end one. */
    msgr_ring_opts o = {.capacity = 1 << 16, .claim_timeout_ns = 3600000000000ll};
    cr_assert_eq(msgr_ring_create(msgr_region_base(g), msgr_region_size(g), &o, r), 0);
    return g;
}

Test(ring_process, separate_program_attaches_by_name_and_sends_a_million)
{
    char name[64];
    msgr_ring *r;
    msgr_region *g = named_ring(name, sizeof name, &r);
    uint64_t n = tu_scaled(COUNT);
    pid_t pid = spawn_peer(name, "produce", n);
    int rc = recv_verified(r, 1, n);
    cr_assert_eq(rc, 0, "recv: %s", msgr_strerror(rc));
    expect_exit_0(pid);
    msgr_ring_close(r);
    msgr_region_close(g);
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
}

Test(ring_process, separate_program_attaches_by_name_and_receives_a_million)
{
    char name[64];
    msgr_ring *r;
    msgr_region *g = named_ring(name, sizeof name, &r);
    uint64_t n = tu_scaled(COUNT);
    pid_t pid = spawn_peer(name, "consume", n);
    int rc = send_numbered(r, 0, n);
    cr_assert_eq(rc, 0, "send: %s", msgr_strerror(rc));
    expect_exit_0(pid);
    msgr_ring_close(r);
    msgr_region_close(g);
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
}

Test(ring_process, parked_consumer_is_woken_by_a_send_from_another_process, .timeout = 30)
{
    char name[64];
    msgr_ring *r;
    msgr_region *g = named_ring(name, sizeof name, &r);
    msgr_ring_set_wait(r, 0, 0); /* park at once */
    pid_t pid = spawn_peer(name, "wake", 0);
    char buf[64];
    msgr_msg info;
    /* No limit: the peer sends only after it sees us asleep, so only a wake-up that crosses
     * the process boundary ends this wait; a lost one hangs until the test's timeout fails it. */
    int n = msgr_ring_recv_wait(r, buf, sizeof buf, &info, -1);
    cr_assert_eq(n, 21, "woken with the message: %s", n < 0 ? msgr_strerror(n) : "ok");
    cr_assert_str_eq(buf, "from another process");
    cr_assert_eq(info.type, 77);
    expect_exit_0(pid);
    msgr_ring_close(r);
    msgr_region_close(g);
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
}
