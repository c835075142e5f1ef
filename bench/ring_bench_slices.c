/* ring_bench: interleaved slices, the same two threads taking turns between transports or
 * settings, so that each ratio compares like with like. */
#define _GNU_SOURCE
#include "ring_bench.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>

/* Interleaved slices, for the two figures a drifting host makes hard to read from the table:
 * the file log (sync none) against the anonymous ring, and the thread SPSC 64-byte figure
 * itself. The host moves the two vCPUs between placements and
 * speeds several times a second and every figure follows, so two runs a second apart do not
 * compare like with like. Here one producer thread and one consumer thread (pinned as in the
 * table) take turns every slice of a few milliseconds, zero-copy, 64 bytes, checking every
 * message as the table does: ring (anonymous memory), single-producer log, ring, log as any
 * number of producers may append (sync none, both), and again. Each file slice is compared
 * with the mean of the thread slices just before and after it, so both sides of a ratio ran in
 * the same host state. After each ring slice the two threads bounce a cache line (rtt_probe()),
 * and the figures are also reported by the placement that round trip says (placement()). */
enum { SLICE_KINDS = 4 }; /* ring, single-producer log, ring, multi-producer log */
enum { MAX_SLICES = 512 };

typedef struct {
    msgr_ring *ring;
    msgr_log *log[2];       /* [0] single-producer, [1] multi-producer */
    msgr_ring *by_linger[3]; /* linger_slices(): slice k goes to by_linger[k % 3] */
    uint64_t per_slice;
    int slices;
    int probe;                           /* interleaved(): a probe after every ring slice */
    _Alignas(128) _Atomic uint32_t go; /* slice number + 1, set by the consumer as it starts one */
    _Alignas(128) _Atomic uint64_t ball; /* rtt_probe(): odd from the consumer, even back */
} slices_job;

/* Cache-line round trips between the slices' two threads, after a ring slice: tells which
 * host state the slice ran in. The consumer makes `ball` odd, the producer thread makes it even again. */
enum { PROBE_BATCHES = 8, PROBE_TRIPS = 128 };

static void rtt_answer(slices_job *j)
{
    for (int i = 0; i < PROBE_BATCHES * PROBE_TRIPS; i++) {
        uint64_t v;
        /* acquire/release: each side sees the other's last store before it answers */
        while (!((v = atomic_load_explicit(&j->ball, memory_order_acquire)) & 1))
            __builtin_ia32_pause();
        atomic_store_explicit(&j->ball, v + 1, memory_order_release);
    }
}

/* Returns the median over batches of the mean round trip, in ns. */
static double rtt_probe(slices_job *j)
{
    double per[PROBE_BATCHES];
    uint64_t v = atomic_load_explicit(&j->ball, memory_order_relaxed);
    for (int b = 0; b < PROBE_BATCHES; b++) {
        uint64_t t0 = bench_now_ns();
        for (int i = 0; i < PROBE_TRIPS; i++) {
            atomic_store_explicit(&j->ball, v + 1, memory_order_release);
            v += 2;
            while (atomic_load_explicit(&j->ball, memory_order_acquire) != v)
                __builtin_ia32_pause();
        }
        per[b] = (double)(bench_now_ns() - t0) / PROBE_TRIPS;
    }
    return bench_median(per, PROBE_BATCHES);
}

/* Which log slice s goes to (-1: the ring). */
static int slice_log(int s)
{
    return (s & 1) ? (s % SLICE_KINDS) / 2 : -1;
}

/* Each transport numbers its messages on from its last slice. */
static void *slices_producer(void *arg)
{
    slices_job *j = arg;
    uint64_t per = j->per_slice, seq[3] = {0, 0, 0};
    int slices = j->slices;
    bench_pin_to(0);
    for (int k = 0; k < slices; k++) {
        /* acquire: pairs with the consumer's release; spins only between slices */
        while (atomic_load_explicit(&j->go, memory_order_acquire) != (uint32_t)k + 1)
            sched_yield();
        int lg = j->by_linger[0] ? -1 : slice_log(k);
        msgr_log *log = lg >= 0 ? j->log[lg] : NULL;
        msgr_ring *ring = j->by_linger[0] ? j->by_linger[k % 3] : j->ring;
        uint64_t *n = j->by_linger[0] ? &seq[k % 3] : &seq[lg + 1];
        for (uint64_t i = 0; i < per; i++, (*n)++) {
            msgr_claim c;
            int rc = log ? msgr_log_claim_wait(log, 64, &c, -1) : msgr_ring_claim_wait(ring, 64, &c, -1);
            if (rc)
                die("slices: claim", rc);
            memset((char *)c.data + 8, (int)*n, 56);
            memcpy(c.data, n, 8);
            if ((rc = log ? msgr_log_commit(log, &c) : msgr_ring_commit(ring, &c)))
                die("slices: commit", rc);
        }
        if (j->probe && !log)
            rtt_answer(j);
    }
    return NULL;
}

/* q-quantile (0..1) of n values; v is sorted in place. */
static double quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n ? v[(int)(q * (n - 1) + 0.5)] : 0;
}

/* Prints "median over n" of v[0..n), or "none". */
static void print_median(FILE *out, const char *label, double *v, int n, double scale,
                         const char *unit)
{
    if (n)
        fprintf(out, "; %s %.2f%s over %d", label, quantile(v, n, 0.5) / scale, unit, n);
    else
        fprintf(out, "; %s none", label);
}

/* Prints the file/thread ratios of one log's slices (kind 1 or 3): all of them, and by the
 * placement both neighbouring ring slices ran in (rtt: the probe after each ring slice). */
static void slice_ratios(FILE *out, const char *what, const double *rate, const double *rtt,
                         int slices, int kind)
{
    static double ratio[MAX_SLICES], file[MAX_SLICES], by[NPLACES][MAX_SLICES];
    int np = 0, nb[NPLACES] = {0};
    /* slices 0..3 warm up and are left out */
    for (int s = SLICE_KINDS + kind; s + 1 < slices; s += SLICE_KINDS) {
        double r = rate[s] / ((rate[s - 1] + rate[s + 1]) / 2);
        int pl = placement(rtt[s - 1]);
        file[np] = rate[s];
        ratio[np++] = r;
        if (pl >= 0 && pl == placement(rtt[s + 1]))
            by[pl][nb[pl]++] = r;
    }
    fprintf(out, "%s / thread (same host state): median %.2f over %d pairs (p25 %.2f, p75 %.2f; "
                 "file %.1f M msgs/s)", what, quantile(ratio, np, 0.5), np,
            quantile(ratio, np, 0.25), quantile(ratio, np, 0.75), quantile(file, np, 0.5) / 1e6);
    for (int p = 0; p < NPLACES; p++)
        print_median(out, place_name[p], by[p], nb[p], 1, "");
    fprintf(out, "\n");
}

void interleaved(int slices, uint64_t per_slice, int csv)
{
    /* a multiple of SLICE_KINDS, plus one: every file slice has a thread slice after it */
    slices = (slices > MAX_SLICES - 1 ? MAX_SLICES - 1 : slices) / SLICE_KINDS * SLICE_KINDS + 1;
    msgr_region *g = region_for(1);
    msgr_ring_opts ro = {.capacity = CAPACITY};
    slices_job *j = aligned_alloc(128, (sizeof *j + 127) / 128 * 128); /* go on its own line */
    if (!j)
        die("slices", MSGR_ENOMEM);
    memset(j, 0, sizeof *j);
    int rc = msgr_ring_create(ring_mem(g, 0), msgr_region_size(g), &ro, &j->ring);
    if (rc)
        die("ring_create", rc);
    msgr_ring_set_linger(j->ring, g_linger_min, g_linger_pauses);
    char path[2][80];
    msgr_log_reader *rd[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        log_path(path[i], sizeof path[i]);
        strcat(path[i], i ? ".mp" : ".sp");
        remove(path[i]);
        msgr_log_opts lo = {.capacity = CAPACITY, .sync = MSGR_SYNC_NONE,
                            .flags = i ? 0 : MSGR_LOG_SINGLE_PRODUCER};
        if ((rc = msgr_log_create(path[i], &lo, &j->log[i])) ||
            (rc = msgr_log_reader_open(j->log[i], "bench", &rd[i])))
            die("log", rc);
        msgr_log_reader_set_linger(rd[i], g_linger_min, g_linger_pauses);
    }
    j->per_slice = per_slice;
    j->slices = slices;
    j->probe = 1;
    pthread_t th;
    pthread_create(&th, NULL, slices_producer, j);
    bench_pin_to(1);
    static double rate[MAX_SLICES], rtt[MAX_SLICES];
    check k = {.size = 64};
    file_check fk[2] = {{.size = 64}, {.size = 64}};
    for (int s = 0; s < slices; s++) {
        uint64_t t0 = bench_now_ns();
        /* release: the slice starts after everything the consumer did for the last one */
        atomic_store_explicit(&j->go, (uint32_t)s + 1, memory_order_release);
        int lg = slice_log(s);
        if (lg >= 0)
            take_from_log(rd[lg], &fk[lg], per_slice);
        else
            take_from_ring(j->ring, &k, per_slice);
        rate[s] = (double)per_slice * 1e9 / (double)(bench_now_ns() - t0);
        if (lg < 0)
            rtt[s] = rtt_probe(j); /* the producer thread answers after its ring slice */
    }
    pthread_join(th, NULL);
    bench_unpin();
    for (int i = 0; i < 2; i++) {
        msgr_log_reader_close(rd[i]);
        msgr_log_close(j->log[i]);
        remove(path[i]);
    }
    msgr_ring_close(j->ring);
    msgr_region_close(g);
    free(j);
    if (k.errors || fk[0].bad || fk[1].bad)
        die("slices: messages out of order or damaged", MSGR_EIO);
    FILE *out = csv ? stderr : stdout; /* the CSV keeps its one header */
    fprintf(out, "\ninterleaved slices, zero-copy, 64 B, %d slices of %" PRIu64 " messages: ring, "
                 "file (single-producer log), ring, file (multi-producer log), in turn; sync none; "
                 "goal: file at least 0.50 of thread\n", slices, per_slice);
    slice_ratios(out, "file, single-producer", rate, rtt, slices, 1);
    slice_ratios(out, "file, multi-producer ", rate, rtt, slices, 3);
    static double th_all[MAX_SLICES], tfast[MAX_SLICES], cut[MAX_SLICES];
    int nt = 0, ntf = 0;
    for (int s = SLICE_KINDS; s < slices; s += 2)
        th_all[nt++] = rate[s];
    memcpy(cut, th_all, sizeof(double) * (size_t)nt);
    double tthird = quantile(cut, nt, 2.0 / 3);
    for (int i = 0; i < nt; i++)
        if (th_all[i] >= tthird)
            tfast[ntf++] = th_all[i];
    fprintf(out, "thread, zero-copy, 64 B: median %.1f M msgs/s over %d slices "
                 "(p25 %.1f, p75 %.1f); top third %.1f M\n", quantile(th_all, nt, 0.5) / 1e6, nt,
            quantile(th_all, nt, 0.25) / 1e6, quantile(th_all, nt, 0.75) / 1e6,
            quantile(tfast, ntf, 0.5) / 1e6);
    /* The same slices by the placement they ran in: the cache-line round trip measured right
     * after each. */
    static double by[NPLACES][MAX_SLICES], trips[MAX_SLICES];
    int nb[NPLACES] = {0}, nr = 0;
    for (int s = SLICE_KINDS; s < slices; s += 2) {
        int pl = placement(rtt[s]);
        trips[nr++] = rtt[s];
        if (pl >= 0)
            by[pl][nb[pl]++] = rate[s];
    }
    fprintf(out, "thread, zero-copy, 64 B, by placement (cache-line round trip after each slice, "
                 "median %.0f ns)", quantile(trips, nr, 0.5));
    for (int p = 0; p < NPLACES; p++)
        print_median(out, place_name[p], by[p], nb[p], 1e6, " M");
    fprintf(out, "\n");
}

/* Linger settings compared in the same host state: three rings, linger off, (32, 64) and the
 * bench's setting, take turns slice by slice between the same two threads (as interleaved());
 * each setting's slice is compared with the off slice of its own round. */
void linger_slices(int rounds, uint64_t per_slice, int csv)
{
    int slices = (rounds > MAX_SLICES / 3 ? MAX_SLICES / 3 : rounds) * 3;
    unsigned lmin[3] = {0, 32, g_linger_min}, lpause[3] = {0, 64, g_linger_pauses};
    msgr_region *g = region_for(3);
    msgr_ring_opts ro = {.capacity = CAPACITY};
    slices_job *j = aligned_alloc(128, (sizeof *j + 127) / 128 * 128);
    if (!j)
        die("slices", MSGR_ENOMEM);
    memset(j, 0, sizeof *j);
    for (int i = 0; i < 3; i++) {
        int rc = msgr_ring_create(ring_mem(g, i), msgr_ring_footprint(CAPACITY), &ro,
                                  &j->by_linger[i]);
        if (rc)
            die("ring_create", rc);
        msgr_ring_set_linger(j->by_linger[i], lmin[i], lpause[i]);
    }
    j->per_slice = per_slice;
    j->slices = slices;
    pthread_t th;
    pthread_create(&th, NULL, slices_producer, j);
    bench_pin_to(1);
    static double rate[MAX_SLICES];
    check k[3] = {{.size = 64}, {.size = 64}, {.size = 64}};
    for (int s = 0; s < slices; s++) {
        uint64_t t0 = bench_now_ns();
        atomic_store_explicit(&j->go, (uint32_t)s + 1, memory_order_release); /* as interleaved() */
        take_from_ring(j->by_linger[s % 3], &k[s % 3], per_slice);
        rate[s] = (double)per_slice * 1e9 / (double)(bench_now_ns() - t0);
    }
    pthread_join(th, NULL);
    bench_unpin();
    for (int i = 0; i < 3; i++)
        msgr_ring_close(j->by_linger[i]);
    msgr_region_close(g);
    free(j);
    if (k[0].errors || k[1].errors || k[2].errors)
        die("linger slices: messages out of order or damaged", MSGR_EIO);
    FILE *out = csv ? stderr : stdout;
    fprintf(out, "\nlinger, thread, zero-copy, 64 B, %d rounds of 3 slices of %" PRIu64
                 " messages (linger off, (32, 64), (%u, %u)), the first round left out\n",
            slices / 3, per_slice, lmin[2], lpause[2]);
    /* {setting, against}: each against off, and the bench's setting against (32, 64) */
    static const int pairs[4][2] = {{0, 0}, {1, 0}, {2, 0}, {2, 1}};
    for (int p = 0; p < 4; p++) {
        static double r[MAX_SLICES], ratio[MAX_SLICES];
        int a = pairs[p][0], b = pairs[p][1], n = 0;
        for (int s = 3; s < slices; s += 3) {
            r[n] = rate[s + a];
            ratio[n++] = rate[s + a] / rate[s + b];
        }
        double rm = quantile(r, n, 0.5) / 1e6, q1 = quantile(ratio, n, 0.25),
               q2 = quantile(ratio, n, 0.5), q3 = quantile(ratio, n, 0.75);
        if (p == 0)
            fprintf(out, "linger off: median %.1f M msgs/s\n", rm);
        else if (p < 3)
            fprintf(out, "linger (%u, %u): median %.1f M msgs/s; against off in the same round "
                         "%.2fx (p25 %.2f, p75 %.2f)\n", lmin[a], lpause[a], rm, q2, q1, q3);
        else
            fprintf(out, "linger (%u, %u) against (%u, %u) in the same round: %.2fx (p25 %.2f, "
                         "p75 %.2f)\n", lmin[a], lpause[a], lmin[b], lpause[b], q2, q1, q3);
    }
}
