/* ring_peer: a separately started program for the process tests. It attaches to a ring by the
 * name of its shared-memory region (the ring sits at the region's base) and then:
 *   ring_peer NAME produce COUNT   sends COUNT verifiable messages as producer id 1
 *   ring_peer NAME consume COUNT   receives COUNT messages of producer id 0, verifies each
 *   ring_peer NAME wake            waits until the consumer sleeps, then sends one message
 *   ring_peer NAME claim           claims 100 bytes and never commits (to be killed)
 * Exit status 0 means success; anything else is printed on stderr. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "ring_peer: %s: %s\n", what, msgr_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return fail("usage: ring_peer NAME produce|consume|wake [COUNT]", MSGR_EINVAL);
    uint64_t count = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    msgr_region *g;
    msgr_ring *r;
    int rc = msgr_region_open_shm(argv[1], &g);
    if (rc)
        return fail("open_shm", rc);
    if ((rc = msgr_ring_attach(msgr_region_base(g), msgr_region_size(g), NULL, &r)))
        return fail("attach", rc);
    char buf[1024];
    if (strcmp(argv[2], "produce") == 0) {
        for (uint64_t seq = 0; seq < count; seq++) {
            size_t len = tu_len(1, seq, 256);
            tu_fill(buf, 1, seq, len);
            if ((rc = msgr_ring_send_wait(r, (uint16_t)seq, buf, len, 20000000000ll)))
                return fail("send", rc);
        }
    } else if (strcmp(argv[2], "consume") == 0) {
        uint64_t sum = 0;
        for (uint64_t seq = 0; seq < count; seq++) {
            msgr_msg info;
            int n = msgr_ring_recv_wait(r, buf, sizeof buf, &info, 20000000000ll);
            if (n < 0)
                return fail("recv", n);
            size_t len = tu_len(0, seq, 256);
            if ((size_t)n != len || info.type != (uint16_t)seq || tu_check(buf, 0, seq, len, &sum))
                return fail("message damaged or out of order", MSGR_ECORRUPT);
        }
    } else if (strcmp(argv[2], "wake") == 0) {
        msgr_ring_stats st;
        do { /* await the consumer's announcement that it sleeps */
            msgr_ring_stats_get(r, &st);
            sched_yield();
        } while (!st.consumer_sleeping);
        if ((rc = msgr_ring_send(r, 77, "from another process", 21)))
            return fail("send", rc);
    } else if (strcmp(argv[2], "claim") == 0) {
        msgr_claim c;
        if ((rc = msgr_ring_claim(r, 100, &c)))
            return fail("claim", rc);
        memset(c.data, 0x5a, 100);
        for (;;)
            pause();
    } else {
        return fail("unknown mode", MSGR_EINVAL);
    }
    msgr_ring_close(r);
    msgr_region_close(g);
    return 0;
}
