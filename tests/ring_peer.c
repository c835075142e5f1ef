/* ring_peer: a separately started program for the process tests. It attaches to a ring by the
 * name of its shared-memory region (the ring sits at the region's base) and then:
 *   ring_peer NAME produce COUNT   sends COUNT verifiable messages as producer id 1
 *   ring_peer NAME consume COUNT   receives COUNT messages of producer id 0, verifies each
 *   ring_peer NAME wake            waits until the consumer sleeps, then sends one message
 *   ring_peer NAME claim           claims 100 bytes and never commits (to be killed)
 *   ring_peer NAME hold            creates shared memory NAME with a ring and waits (to be killed)
 *   ring_peer NAME pub START COUNT TIMEOUT_MS
 *                                  sends numbers START.. (sizes 8..300; payload: the number
 *                                  as 8 little-endian bytes, then byte i = n*131 + i*7)
 *   ring_peer PATH logclaim COUNT  creates log file PATH, appends records 0..COUNT-1 (each its
 *                                  number, 8 bytes), claims one more, makes PATH.claimed and
 *                                  waits (to be killed)
 *   ring_peer PATH ipcwake         connects to the IPC listener at PATH, takes the region it is
 *                                  handed, attaches to the ring at its base, sends one message
 *                                  and waits (to be killed)
 *   ring_peer NAME sub TIMEOUT_MS [IDLE_MS]
 *                                  receives, verifies and prints each number on its own line
 *                                  before releasing it; stops after IDLE_MS with nothing new
 * TIMEOUT_MS: the handle's claim timeout (crash tests use a short one).
 * Exit status 0 means success; anything else is printed on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static int fail(const char *what, int rc)
{
    fprintf(stderr, "ring_peer: %s: %s\n", what, msgr_strerror(rc));
    return 1;
}

static unsigned char pattern(uint64_t n, size_t i) { return (unsigned char)(n * 131 + i * 7); }

static int numbered_pub(msgr_ring *r, uint64_t start, uint64_t count)
{
    uint64_t x = start | 1;
    for (uint64_t n = start; n < start + count; n++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = 8 + (size_t)(x % 293);
        msgr_claim c;
        int rc = msgr_ring_claim_wait(r, len, &c, 60000000000ll);
        if (rc)
            return fail("claim", rc);
        unsigned char *p = c.data;
        for (size_t i = 0; i < 8; i++)
            p[i] = (unsigned char)(n >> (8 * i));
        for (size_t i = 8; i < len; i++)
            p[i] = pattern(n, i);
        c.type = 1;
        if ((rc = msgr_ring_commit(r, &c)))
            return fail("commit", rc);
    }
    return 0;
}

static int numbered_sub(msgr_ring *r, int64_t idle_ns)
{
    for (;;) {
        msgr_msg m;
        int rc = msgr_ring_peek_wait(r, &m, idle_ns);
        if (rc == MSGR_ETIMEDOUT)
            return 0;
        if (rc)
            return fail("peek", rc);
        const unsigned char *p = m.data;
        uint64_t n = 0;
        int bad = m.len < 8 || m.type != 1;
        for (size_t i = 0; !bad && i < 8; i++)
            n |= (uint64_t)p[i] << (8 * i);
        for (size_t i = 8; !bad && i < m.len; i++)
            bad = p[i] != pattern(n, i);
        if (bad) {
            fprintf(stderr, "ring_peer: record at %llu (len %u) fails verification\n",
                    (unsigned long long)m.pos_, m.len);
            return 1;
        }
        /* Printed before released: a kill in between redelivers it, never loses it. */
        printf("%llu\n", (unsigned long long)n);
        fflush(stdout);
        if ((rc = msgr_ring_release(r, &m)))
            return fail("release", rc);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return fail("usage: ring_peer NAME produce|consume|wake [COUNT]", MSGR_EINVAL);
    uint64_t count = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    msgr_region *g;
    msgr_ring *r;
    int rc;
    if (!strcmp(argv[2], "hold")) {
        msgr_ring_opts ho = {.capacity = 4096};
        if ((rc = msgr_region_create_shm(argv[1], msgr_ring_footprint(4096), NULL, &g)) ||
            (rc = msgr_ring_create(msgr_region_base(g), msgr_region_size(g), &ho, &r)))
            return fail("create", rc);
        tu_sleep_forever();
    }
    if (!strcmp(argv[2], "logclaim")) {
        msgr_log *log;
        msgr_claim c;
        if ((rc = msgr_log_create(argv[1], NULL, &log)))
            return fail("log create", rc);
        for (uint64_t i = 0; i < count; i++)
            if ((rc = msgr_log_append(log, 1, &i, 8)))
                return fail("log append", rc);
        if ((rc = msgr_log_claim(log, 8, &c)))
            return fail("log claim", rc);
        memset(c.data, 0x5a, 8);
        char mark[4200];
        snprintf(mark, sizeof mark, "%s.claimed", argv[1]);
        FILE *f = fopen(mark, "w");
        if (!f)
            return fail("mark", MSGR_EIO);
        fclose(f);
        tu_sleep_forever();
    }
    if (!strcmp(argv[2], "ipcwake")) {
        msgr_ipc_conn *c;
        char note[16];
        if ((rc = msgr_ipc_connect(argv[1], NULL, &c)))
            return fail("connect", rc);
        if ((rc = msgr_ipc_recv_region(c, &g, note, sizeof note, 10000000000ll)) < 0)
            return fail("recv_region", rc);
        msgr_ring_opts ao = {0};
        if ((rc = msgr_ring_attach(msgr_region_base(g), msgr_region_size(g), &ao, &r)) ||
            (rc = msgr_ring_send(r, 77, "from another process", 21)))
            return fail("ring", rc);
        tu_sleep_forever();
    }
    if ((rc = msgr_region_open_shm(argv[1], &g)))
        return fail("open_shm", rc);
    msgr_ring_opts o = {0};
    if (!strcmp(argv[2], "pub") && argc > 5)
        o.claim_timeout_ns = (int64_t)strtoull(argv[5], NULL, 10) * 1000000;
    if (!strcmp(argv[2], "sub") && argc > 3)
        o.claim_timeout_ns = (int64_t)strtoull(argv[3], NULL, 10) * 1000000;
    if ((rc = msgr_ring_attach(msgr_region_base(g), msgr_region_size(g), &o, &r)))
        return fail("attach", rc);
    if ((!strcmp(argv[2], "pub") && argc > 4) || !strcmp(argv[2], "sub")) {
        rc = !strcmp(argv[2], "pub")
                 ? numbered_pub(r, strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10))
                 : numbered_sub(r, argc > 4 ? (int64_t)strtoull(argv[4], NULL, 10) * 1000000
                                            : -1);
        msgr_ring_close(r);
        msgr_region_close(g);
        return rc;
    }
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
            tu_yield();
        } while (!st.consumer_sleeping);
        if ((rc = msgr_ring_send(r, 77, "from another process", 21)))
            return fail("send", rc);
    } else if (strcmp(argv[2], "claim") == 0) {
        msgr_claim c;
        if ((rc = msgr_ring_claim(r, 100, &c)))
            return fail("claim", rc);
        memset(c.data, 0x5a, 100);
        tu_sleep_forever();
    } else {
        return fail("unknown mode", MSGR_EINVAL);
    }
    msgr_ring_close(r);
    msgr_region_close(g);
    return 0;
}
