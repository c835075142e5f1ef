/* bench_compare: one producer to N readers (threads), each reader seeing every message.
 *   broadcast   one record per message in a broadcast ring, read in place by every reader
 *   ring-copies the fan-out without it: one SPSC ring per reader, the message written into
 *               each (what a route with N destinations costs)
 * Rows: bench "readers-N", transport as above. Every reader checks every message's tags and
 * order; the producer builds every byte once per record it writes. Threads are not pinned:
 * with more threads than CPUs, the spin-then-sleep waiting is part of what is measured. */
#define _GNU_SOURCE
#include "compare_run.h"

#include <messenger.h>
#include <pthread.h>

#define BC_CAP (4u << 20) /* data bytes of each ring: 64 records of 64 KiB in flight */
#define BC_MAX_READERS 8

typedef struct bc_run bc_run;

typedef struct {
    bc_run *run;
    int index;
    pthread_t th;
    msgr_bcast_reader *rd; /* broadcast */
    msgr_ring *ring;       /* ring-copies: this reader's ring */
    uint64_t got, bad;
} bc_reader;

struct bc_run {
    int readers, copies;
    size_t size;
    uint64_t count;
    msgr_bcast *b;
    msgr_ring *rings[BC_MAX_READERS];
    void *mem;
    bc_reader r[BC_MAX_READERS];
    bench_start start;
    _Atomic uint64_t end_ns;
};

static int on_msg(void *arg, const msgr_msg *m)
{
    bc_reader *r = arg;
    if (m->len != r->run->size || payload_tag(m->data, m->len) != r->got)
        r->bad++;
    r->got++;
    return 0;
}

static void *reader_main(void *arg)
{
    bc_reader *r = arg;
    bench_unpin();
    bench_check_in(&r->run->start);
    while (r->got < r->run->count) {
        int n = r->run->copies ? msgr_ring_poll(r->ring, on_msg, r, 256)
                               : msgr_bcast_poll(r->rd, on_msg, r, 256);
        if (n < 0)
            compare_fail("broadcast reader", msgr_strerror(n));
        if (n == 0) { /* wait the way each is meant to: spin, then sleep */
            msgr_msg m;
            int rc = r->run->copies ? msgr_ring_peek_wait(r->ring, &m, -1)
                                    : msgr_bcast_peek_wait(r->rd, &m, -1);
            if (rc)
                compare_fail("broadcast reader", msgr_strerror(rc));
        }
    }
    uint64_t now = bench_now_ns(), prev = atomic_load(&r->run->end_ns);
    while (now > prev && !atomic_compare_exchange_weak(&r->run->end_ns, &prev, now))
        ;
    return NULL;
}

static void produce(bc_run *run)
{
    for (uint64_t seq = 0; seq < run->count; seq++) {
        int n = run->copies ? run->readers : 1;
        for (int i = 0; i < n; i++) {
            msgr_claim c;
            int rc = run->copies ? msgr_ring_claim_wait(run->rings[i], run->size, &c, -1)
                                 : msgr_bcast_claim_wait(run->b, run->size, &c, -1);
            if (rc)
                compare_fail("broadcast producer", msgr_strerror(rc));
            payload_fill(c.data, seq, run->size);
            rc = run->copies ? msgr_ring_commit(run->rings[i], &c) : msgr_bcast_commit(run->b, &c);
            if (rc)
                compare_fail("broadcast producer", msgr_strerror(rc));
        }
    }
}

/* One timed run: messages/s (each message delivered to every reader). */
static double bc_once(int readers, int copies, size_t size, uint64_t count)
{
    bc_run *run = xmalloc(sizeof *run);
    memset(run, 0, sizeof *run);
    run->readers = readers;
    run->copies = copies;
    run->size = size;
    run->count = count;
    size_t each = copies ? msgr_ring_footprint(BC_CAP) : msgr_bcast_footprint(BC_CAP);
    size_t total = each * (size_t)(copies ? readers : 1);
    if (posix_memalign(&run->mem, 4096, total))
        compare_fail("broadcast", "out of memory");
    memset(run->mem, 0, total); /* first touch before the clock starts */
    int rc = 0;
    if (copies) {
        msgr_ring_opts o = {.capacity = BC_CAP};
        for (int i = 0; i < readers && !rc; i++)
            rc = msgr_ring_create((char *)run->mem + each * (size_t)i, each, &o, &run->rings[i]);
    } else {
        msgr_bcast_opts o = {.capacity = BC_CAP};
        rc = msgr_bcast_create(run->mem, each, &o, &run->b);
    }
    if (rc)
        compare_fail("broadcast setup", msgr_strerror(rc));
    for (int i = 0; i < readers; i++) {
        bc_reader *r = &run->r[i];
        r->run = run;
        r->index = i;
        if (copies)
            r->ring = run->rings[i];
        else if ((rc = msgr_bcast_join(run->b, &r->rd)))
            compare_fail("broadcast join", msgr_strerror(rc));
        if (pthread_create(&r->th, NULL, reader_main, r))
            compare_fail("pthread_create", "failed");
    }
    uint64_t t0 = bench_go(&run->start, (uint32_t)readers);
    produce(run);
    uint64_t bad = 0;
    for (int i = 0; i < readers; i++) {
        pthread_join(run->r[i].th, NULL);
        bad += run->r[i].bad;
        if (!copies)
            msgr_bcast_leave(run->r[i].rd);
        else
            msgr_ring_close(run->rings[i]);
    }
    double secs = (double)(atomic_load(&run->end_ns) - t0) / 1e9;
    msgr_bcast_close(run->b);
    free(run->mem);
    free(run);
    if (bad)
        compare_fail(copies ? "ring-copies" : "broadcast", "messages lost, reordered or damaged");
    return (double)count / (secs > 0 ? secs : 1e-9);
}

double broadcast_rate(int readers, int copies, size_t size)
{
    double r = bc_once(readers, copies, size, 200); /* calibration */
    uint64_t count = (uint64_t)(r * g_target_s);
    if (count < 200)
        count = 200;
    int runs = g_quick ? 1 : 3;
    double v[8];
    for (int i = 0; i < runs; i++)
        v[i] = bc_once(readers, copies, size, count);
    return bench_median(v, runs);
}

static const char *const READERS_BENCH[] = {"readers-1", "readers-2", "readers-3", "readers-4",
                                            "readers-5", "readers-6", "readers-7", "readers-8"};

void measure_broadcast(size_t size, int readers, int copies)
{
    const char *bench = READERS_BENCH[readers - 1];
    const char *tname = copies ? "ring-copies" : "broadcast";
    const char *mode = copies ? "copy" : "zero-copy";
    if (!row_selected(bench, tname, mode, 1, size))
        return;
    double r = broadcast_rate(readers, copies, size);
    add_row((row){bench, tname, mode, 1, size, r, r * (double)size / 1e9, -1, 0, 0, 0});
}
