/* Helpers shared by the benchmark programs (ring_bench, bench_compare): clock, CPU pinning,
 * fatal errors, a start line for participants, a latency histogram, the CSV row format and the
 * machine's floor (a cache line bounced between two CPUs).
 * Benchmark code only: nothing here is part of the library. */
#ifndef MSGR_BENCH_UTIL_H
#define MSGR_BENCH_UTIL_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_CSV_HEADER "bench,transport,mode,producers,size,msgs_per_s,gb_per_s,p50_ns,p99_ns,p999_ns"

static int bench_pin = 1; /* --no-pin clears it */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pins the calling thread to one CPU when there are at least two (one producer, one consumer). */
static inline void bench_pin_to(int cpu)
{
    if (!bench_pin || sysconf(_SC_NPROCESSORS_ONLN) < 2)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static inline void bench_unpin(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < CPU_SETSIZE && i < sysconf(_SC_NPROCESSORS_ONLN); i++)
        CPU_SET(i, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* Prints "prog: what: why" and exits 1: a benchmark that cannot do its job stops loudly. */
static inline void bench_fail(const char *what, const char *why)
{
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, why);
    exit(1);
}

/* A start line in memory every participant sees (threads, or forked children when the block is
 * in MAP_SHARED memory): each participant checks in, then waits for the starter's go. */
typedef struct {
    _Atomic uint32_t ready;
    _Atomic uint32_t go;
} bench_start;

static inline void bench_check_in(bench_start *s)
{
    /* release: what the participant set up before checking in is visible to the starter */
    atomic_fetch_add_explicit(&s->ready, 1, memory_order_release);
    while (!atomic_load_explicit(&s->go, memory_order_acquire))
        sched_yield();
}

/* Waits until `n` participants checked in, then starts them; returns the start time. */
static inline uint64_t bench_go(bench_start *s, uint32_t n)
{
    while (atomic_load_explicit(&s->ready, memory_order_acquire) < n)
        sched_yield();
    uint64_t t0 = bench_now_ns();
    atomic_store_explicit(&s->go, 1, memory_order_release);
    return t0;
}

/* Latency histogram, log-linear: exact below 256 ns, then 128 buckets per power of two, so a
 * reported percentile is within 1/128 (< 1%) of a recorded value. The maximum is kept exactly. */
#define BENCH_HIST_SUB 7
#define BENCH_HIST_BUCKETS (256 + (64 - 8) * (1 << BENCH_HIST_SUB))

typedef struct {
    uint64_t count, max;
    uint32_t bucket[BENCH_HIST_BUCKETS];
} bench_hist;

static inline void bench_hist_add(bench_hist *h, uint64_t v)
{
    size_t i;
    if (v < 256) {
        i = (size_t)v;
    } else {
        int e = 63 - __builtin_clzll(v); /* 8..63 */
        i = 256 + (size_t)(e - 8) * (1u << BENCH_HIST_SUB) +
            (size_t)((v >> (e - BENCH_HIST_SUB)) & ((1u << BENCH_HIST_SUB) - 1));
    }
    h->bucket[i]++;
    h->count++;
    if (v > h->max)
        h->max = v;
}

/* The value at quantile q (0 < q <= 1): the middle of the bucket holding that sample. */
static inline double bench_hist_quantile(const bench_hist *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5), seen = 0;
    if (rank < 1)
        rank = 1;
    for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen < rank)
            continue;
        if (i < 256)
            return (double)i;
        size_t k = i - 256;
        int e = (int)(k >> BENCH_HIST_SUB) + 8;
        double width = (double)(1ull << (e - BENCH_HIST_SUB));
        double lo = (double)(1ull << e) + (double)(k & ((1u << BENCH_HIST_SUB) - 1)) * width;
        double mid = lo + width / 2;
        return mid > (double)h->max ? (double)h->max : mid;
    }
    return (double)h->max;
}

/* ---- the floor: one cache line bounced between CPU 0 and CPU 1 ---- */

typedef struct {
    _Alignas(128) _Atomic uint64_t line;
    uint64_t rounds;
} bench_pingpong;

/* The echo side, on CPU 1: answers each odd value with the next even one. acquire/release:
 * each side's store is the other side's signal; nothing else is shared. */
static inline void *bench_pong(void *arg)
{
    bench_pingpong *p = arg;
    bench_pin_to(1);
    for (uint64_t i = 0; i < p->rounds; i++) {
        while (atomic_load_explicit(&p->line, memory_order_acquire) != 2 * i + 1)
            __builtin_ia32_pause();
        atomic_store_explicit(&p->line, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

/* Bounces a cache line `rounds` times between CPU 0 (the caller) and CPU 1: where the host has
 * put the two vCPUs right now (a virtual machine's can change within a second).
 * Returns the mean round trip in ns, -1 if the echo thread cannot start. With h, also records
 * each round trip after the first 1000 (warm-up) in it. Leaves the caller unpinned. */
static inline double bench_line_pingpong(uint64_t rounds, bench_hist *h)
{
    static bench_pingpong p;
    p.rounds = rounds;
    atomic_store(&p.line, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, bench_pong, &p))
        return -1;
    bench_pin_to(0);
    uint64_t t0 = bench_now_ns(), last = t0;
    for (uint64_t i = 0; i < rounds; i++) {
        atomic_store_explicit(&p.line, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&p.line, memory_order_acquire) != 2 * i + 2)
            __builtin_ia32_pause();
        if (h) {
            uint64_t now = bench_now_ns();
            if (i >= 1000)
                bench_hist_add(h, now - last);
            last = now;
        }
    }
    uint64_t dt = bench_now_ns() - t0;
    pthread_join(th, NULL);
    bench_unpin();
    return (double)dt / (double)rounds;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n values (n <= 16; the mean of the middle two when n is even); v is not changed. */
static inline double bench_median(const double *v, int n)
{
    double tmp[16];
    memcpy(tmp, v, sizeof(double) * (size_t)n);
    qsort(tmp, (size_t)n, sizeof *tmp, bench_cmp_double);
    return !n ? 0 : n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* One CSV row under BENCH_CSV_HEADER; a negative figure leaves its field empty. */
static inline void bench_csv_row(FILE *f, const char *bench, const char *transport,
                                 const char *mode, int producers, size_t size, double msgs_s,
                                 double gb_s, double p50, double p99, double p999)
{
    const double v[5] = {msgs_s, gb_s, p50, p99, p999};
    fprintf(f, "%s,%s,%s,%d,%zu", bench, transport, mode, producers, size);
    for (int i = 0; i < 5; i++) {
        fputc(',', f);
        if (v[i] >= 0)
            fprintf(f, "%.*f", i == 1 ? 3 : 0, v[i]);
    }
    fputc('\n', f);
}

#endif
