/* ring_bench's modules (benchmark code only): what one file defines and another uses.
 *   ring_bench_run.c     one case: ring throughput (threads, processes), the file log, latency
 *   ring_bench_slices.c  interleaved slices (ring against the logs, linger settings)
 *   ring_bench.c         placements, the table, the command line
 */
#ifndef MSGR_RING_BENCH_H
#define MSGR_RING_BENCH_H

#include "bench_util.h"

#include <messenger.h>

#define CAPACITY (1u << 22) /* 4 MiB data area per ring */

void die(const char *what, int rc); /* fails the benchmark with msgr_strerror(rc) */

/* Control block shared by all participants (lives in the region after the rings). */
typedef struct {
    bench_start start;
} control;

typedef struct {
    const char *bench, *transport, *mode;
    int producers;
    size_t size;
    double msgs_s, gb_s;
    double p50, p99, p999; /* < 0: not measured */
    uint32_t sync;         /* file transport: msgr_sync */
    int place;             /* placement() both probes around the run agreed on, or -1 */
} result;

/* Placements of the two vCPUs (ring_bench.c): one core's two hardware threads, two cores close
 * by, two far apart, told apart by a cache line's round trip between them. */
enum { NPLACES = 3 };
extern const char *const place_name[NPLACES];
extern const char *const place_short[NPLACES];
int placement(double rtt_ns); /* the placement a round trip says, or -1 between them */
int placement_now(void);

/* Runs fn(arg) between two placement probes; r->place says where it ran (-1: the probes
 * disagree, or the round trip was between placements). */
#define WITH_PLACEMENT(r, call)                                                                  \
    do {                                                                                         \
        int before_ = placement_now();                                                           \
        (r) = (call);                                                                            \
        int after_ = placement_now();                                                            \
        (r).place = before_ == after_ ? before_ : -1;                                            \
    } while (0)

/* ring_bench_run.c */
/* The zero-copy consumers' linger (msgr_ring_set_linger): (256, 512) by default, a throughput
 * setting: each look at an empty ring reads the line the producer writes next, and bigger
 * batches mean fewer such looks per record. --linger sets it; --filter linger compares. */
extern unsigned g_linger_min, g_linger_pauses;

typedef struct {
    uint64_t next[4];
    uint64_t got;
    size_t size;
    uint32_t errors;
} check;
void take_from_ring(msgr_ring *ring, check *k, uint64_t count);

typedef struct {
    size_t size;
    uint64_t next, bad;
    msgr_msg last;
} file_check;
void take_from_log(msgr_log_reader *rd, file_check *k, uint64_t count);

void log_path(char *buf, size_t n);  /* $BENCH_DIR (default /tmp), one name per process */
msgr_region *region_for(int rings); /* anonymous, prefaulted, room for `rings` rings */
void *ring_mem(msgr_region *g, int i);
result run_file(uint32_t sync, int zero_copy, size_t size, uint64_t count);
result run_latency(size_t size, uint64_t count);
int cmp_rate(const void *a, const void *b);
result median_throughput(const char *transport, int zc, int producers, size_t size,
                         uint64_t count, int repeat);

/* ring_bench_slices.c */
void interleaved(int slices, uint64_t per_slice, int csv);
void linger_slices(int rounds, uint64_t per_slice, int csv);

#endif
