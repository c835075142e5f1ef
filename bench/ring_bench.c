/* ring_bench: throughput and latency of the messenger ring.
 *
 * Throughput: 1 producer (SPSC ring) or 2 producers (MPSC ring) into 1 consumer, between
 * threads or between processes (fork, anonymous shared memory), zero-copy or copying.
 *   zero-copy: the producer claims, fills every payload byte in place, commits; the consumer
 *              polls in batches and reads the sequence number in place.
 *   copy:      the producer sends from its own buffer (memcpy in); the consumer receives into
 *              its own buffer (memcpy out).
 * Every message carries (producer, sequence); the consumer checks per-producer order and the
 * total, so a broken ring fails the benchmark instead of producing a number.
 * File: the same through a persistent log file (msgr_log) with sync `none` or `batch`, one
 * producer thread (a single-producer log, as the thread rows' ring is SPSC), one consumer thread
 * reading as a group: zero-copy takes batches
 * (msgr_log_poll) and acknowledges each once, copy reads one at a time and acknowledges every 16.
 * The log file goes in $BENCH_DIR (default /tmp).
 * Latency: 64-byte ping-pong between two processes over two rings, both sides spinning;
 * round-trip percentiles from every sample (sorted, not averaged).
 *
 * Each case runs --repeat times (default 3; 1 with --smoke) after a discarded warm-up, and the
 * median run is reported: this machine is shared and a single run can be off by 3x.
 * With one producer, producer and consumer are pinned to CPUs 0 and 1 (--no-pin to disable).
 *
 * Last, interleaved slices: ring, single-producer log and multi-producer log (sync none),
 * zero-copy, 64 bytes, in turn every few milliseconds in the same two threads, so that each
 * ratio compares like with like (see interleaved()).
 *
 * The zero-copy consumers (ring and log) linger: msgr_ring_set_linger(256, 512), a throughput
 * setting (--linger 0 turns it off; --filter linger compares settings in interleaved slices).
 *
 *   ring_bench [--smoke] [--csv] [--repeat N] [--no-pin] [--filter SUBSTRING]
 *              [--linger MIN[,PAUSES]]
 */
#define _GNU_SOURCE
#include "ring_bench.h"

#include <messenger.h>

#include <inttypes.h>
#include <pthread.h>
#include <sys/utsname.h>
#include <sys/wait.h>

void die(const char *what, int rc)
{
    bench_fail(what, msgr_strerror(rc));
}

/* Placements are told apart without a clock read per trip (thresholds below; bench/README.md
 * gives typical figures). The host moves the vCPUs between them several times a minute, and
 * every figure follows, so the table says where each row ran. */
const char *const place_name[NPLACES] = {"same core (under 50 ns)", "near (50-160 ns)",
                                         "far (300 ns or more)"};
const char *const place_short[NPLACES] = {"core", "near", "far"};

/* The placement a round trip says, or -1 between them. */
int placement(double rtt_ns)
{
    return rtt_ns < 50 ? 0 : rtt_ns < 160 ? 1 : rtt_ns >= 300 ? 2 : -1;
}

/* 2000 round trips between CPUs 0 and 1 (under a millisecond): the placement now. */
int placement_now(void)
{
    double rtt = bench_line_pingpong(2000, NULL);
    return rtt < 0 ? -1 : placement(rtt);
}

static void print_row(const result *r, int csv)
{
    static const char *syncs[] = {"none", "batch", "always"};
    char transport[32];
    snprintf(transport, sizeof transport, "%s", r->transport);
    if (!csv && !strcmp(r->transport, "file"))
        snprintf(transport, sizeof transport, "file/%s", syncs[r->sync % 3]);
    if (csv) {
        /* The CSV keeps transport = file; the sync policy goes into the mode column. */
        char mode[48];
        snprintf(mode, sizeof mode, "%s%s%s", r->mode, strcmp(r->transport, "file") ? "" : "/sync-",
                 strcmp(r->transport, "file") ? "" : syncs[r->sync % 3]);
        if (r->p50 < 0)
            bench_csv_row(stdout, r->bench, r->transport, mode, r->producers, r->size, r->msgs_s,
                          r->gb_s, -1, -1, -1);
        else
            bench_csv_row(stdout, r->bench, r->transport, mode, r->producers, r->size, -1, -1,
                          r->p50, r->p99, r->p999);
    } else if (r->p50 < 0) {
        printf("%-10s %-11s %-9s %9d %8zu %12.2f %9.2f  %s\n", r->bench, transport, r->mode,
               r->producers, r->size, r->msgs_s / 1e6, r->gb_s,
               r->place >= 0 ? place_short[r->place] : "mixed");
    } else {
        printf("%-10s %-11s %-9s %9d %8zu   p50 %.0f ns  p99 %.0f ns  p99.9 %.0f ns  %s\n",
               r->bench, transport, r->mode, r->producers, r->size, r->p50, r->p99, r->p999,
               r->place >= 0 ? place_short[r->place] : "mixed");
    }
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int smoke = 0, csv = 0, repeat = 0;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--smoke"))
            smoke = 1;
        else if (!strcmp(argv[i], "--csv"))
            csv = 1;
        else if (!strcmp(argv[i], "--no-pin"))
            bench_pin = 0;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            filter = argv[++i];
        else if (!strcmp(argv[i], "--linger") && i + 1 < argc) {
            g_linger_pauses = 64;
            if (sscanf(argv[++i], "%u,%u", &g_linger_min, &g_linger_pauses) < 1) {
                fprintf(stderr, "ring_bench: --linger MIN[,PAUSES]\n");
                return 2;
            }
        }
        else {
            fprintf(stderr, "usage: ring_bench [--smoke] [--csv] [--repeat N] [--no-pin] "
                            "[--filter SUBSTRING] [--linger MIN[,PAUSES]]\n");
            return 2;
        }
    }
    if (repeat <= 0)
        repeat = smoke ? 1 : 3;
    if (repeat > 15)
        repeat = 15;
    static const size_t sizes[] = {8, 64, 512, 4096, 65536};
    static const char *transports[] = {"thread", "process"};
    struct utsname u;
    uname(&u);
    if (csv)
        printf("%s\n", BENCH_CSV_HEADER);
    else
        printf("ring_bench: %s %s, %ld cpus, ring %u KiB, %s run, median of %d; placement: where "
               "the median run ran (core, near, far: a cache-line round trip before and after it; "
               "mixed: they differ)\n\n"
               "%-10s %-11s %-9s %9s %8s %12s %9s  %s\n",
               u.sysname, u.release, sysconf(_SC_NPROCESSORS_ONLN), CAPACITY / 1024,
               smoke ? "smoke" : "full", repeat, "bench", "transport", "mode", "producers", "size",
               "M msgs/s", "GB/s", "placement");
    for (int t = 0; t < 2; t++)
        for (int p = 1; p <= 2; p++)
            for (int zc = 1; zc >= 0; zc--)
                for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                    size_t size = sizes[s];
                    char name[128];
                    snprintf(name, sizeof name, "throughput,%s,%s,%d,%zu", transports[t],
                             zc ? "zero-copy" : "copy", p, size);
                    if (filter && !strstr(name, filter))
                        continue;
                    /* Enough messages for ~0.3-1 s at full speed; far fewer for smoke. */
                    uint64_t budget = smoke ? (256ull << 20) : (4ull << 30);
                    uint64_t count = budget / (size + 16);
                    uint64_t cap = smoke ? 2000000 : 20000000;
                    if (count > cap)
                        count = cap;
                    result r = median_throughput(transports[t], zc, p, size,
                                                 count / (uint64_t)p, repeat);
                    print_row(&r, csv);
                }
    for (uint32_t sync = MSGR_SYNC_NONE; sync <= MSGR_SYNC_BATCH; sync++)
        for (int zc = 1; zc >= 0; zc--)
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                size_t size = sizes[s];
                char name[128];
                snprintf(name, sizeof name, "throughput,file,%s/sync-%s,1,%zu",
                         zc ? "zero-copy" : "copy", sync ? "batch" : "none", size);
                if (filter && !strstr(name, filter))
                    continue;
                uint64_t budget = smoke ? (128ull << 20) : (2ull << 30);
                uint64_t count = budget / (size + 32);
                /* batch syncs run at ~1 M records/s: fewer records keep the run short */
                uint64_t cap = smoke ? (sync ? 100000 : 1000000) : (sync ? 1000000 : 10000000);
                if (count > cap)
                    count = cap;
                result runs[16];
                run_file(sync, zc, size, count / 4 + 1);
                for (int i = 0; i < repeat; i++)
                    WITH_PLACEMENT(runs[i], run_file(sync, zc, size, count));
                qsort(runs, (size_t)repeat, sizeof *runs, cmp_rate);
                print_row(&runs[repeat / 2], csv);
            }
    if (!filter || strstr("latency,process,zero-copy,1,64", filter)) {
        result r;
        WITH_PLACEMENT(r, run_latency(64, smoke ? 100000 : 1000000));
        print_row(&r, csv);
    }
    if (!filter || strstr("interleaved file-vs-anonymous", filter))
        interleaved(smoke ? 25 : 301, smoke ? 50000 : 200000, csv);
    if (filter && strstr("linger", filter)) /* only when asked: not part of the table */
        linger_slices(60, 200000, csv);
    return 0;
}
