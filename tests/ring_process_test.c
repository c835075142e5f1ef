/* Concurrency between processes: a forked child over anonymous shared memory. A separately
 * started program attaching by name is in peer_test.c (it runs on every platform). */
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
