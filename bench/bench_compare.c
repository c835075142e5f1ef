/* bench_compare: messenger side by side with the IPC mechanisms users would pick instead,
 * and with the machine's floor, in one run.
 *
 * Workload, the same for every transport: messages of a fixed size (8 B .. 1 MiB); the producer
 * builds every byte of every message (a tag = producer << 56 | sequence at both ends, filler in
 * between) in place or in its own buffer, and hands it over; the consumer reads the tag at both
 * ends where the message lies (or from its receive buffer) and checks per-producer order, so a
 * transport that loses, reorders or tears a message fails the run instead of producing a number.
 *   throughput      1 producer -> 1 consumer (pinned to CPUs 0 and 1); messenger also 2 and 4
 *                   producers -> 1 consumer. Median of --repeat runs after a calibration run.
 *   oversubscribed  two independent producer -> consumer pairs at once (4 busy workers on this
 *                   2-CPU machine, unpinned); msgs_per_s is the sum. 64 bytes.
 *   latency         ping-pong, one message each way; round-trip percentiles from a log-linear
 *                   histogram (1/128 resolution) plus the exact maximum.
 *   floor           a cache line bounced between two threads (round trip in p50_ns) and memcpy
 *                   of each message size within one thread.
 *
 * Output: a table on stdout as it goes; in --out DIR (default bench/results): latest.csv (the
 * ring_bench header), latest.md (tables, ratios, goals, what was skipped and why) and
 * latency.dat / goals for plot.gp.
 *
 *   bench_compare [--quick] [--repeat N] [--no-pin] [--filter SUBSTRING] [--out DIR]
 */
#define _GNU_SOURCE
#include "compare_run.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>

void compare_fail(const char *who, const char *what)
{
    bench_fail(who, what);
}

char *unique_name(char *out, size_t n, const char *prefix, const char *suffix)
{
    static unsigned counter;
    snprintf(out, n, "%smsgr-bench-%d-%u%s", prefix, (int)getpid(), counter++, suffix);
    return out;
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        compare_fail("bench_compare", "out of memory");
    return p;
}

void set_err(char *err, size_t errlen, const char *what, int e)
{
    snprintf(err, errlen, "%s: %s", what, strerror(e));
}

int main(int argc, char **argv)
{
    const char *out = "bench/results";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            g_quick = 1;
        else if (!strcmp(argv[i], "--no-pin"))
            bench_pin = 0;
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            g_repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filter") && i + 1 < argc)
            g_filter = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "usage: bench_compare [--quick] [--repeat N] [--no-pin] "
                            "[--filter SUBSTRING] [--out DIR]\n"
                            "  --quick   one short run per case (under a minute)\n"
                            "  --filter  only cases whose 'bench,transport,mode,producers,size' "
                            "contains SUBSTRING\n");
            return 2;
        }
    }
    if (g_repeat <= 0)
        g_repeat = g_quick ? 1 : 3;
    if (g_repeat > 15)
        g_repeat = 15;
    g_target_s = g_quick ? 0.03 : 0.2;
    if (mkdir(out, 0755) && errno != EEXIST)
        compare_fail(out, strerror(errno));
    signal(SIGALRM, on_alarm);
    signal(SIGPIPE, SIG_IGN);

    char machine[512], command[256];
    machine_line(machine, sizeof machine);
    snprintf(command, sizeof command, "make bench-compare%s", g_quick ? "-quick" : "");
    printf("bench_compare: %s, %s run, median of %d\n\n%-14s %-13s %-9s %3s %8s %12s %9s\n",
           machine, g_quick ? "quick" : "full", g_repeat, "bench", "transport", "mode", "p",
           "size", "M msgs/s", "GB/s");

    const transport *peer;
    size_t npeers = peers_list(&peer);
    g_peers = peer;
    g_npeers = npeers;
    size_t nm = N_MESSENGER;

    measure_cacheline();
    for (size_t s = 0; s < NSIZES; s++)
        measure_memcpy(sizes[s]);
    for (size_t i = 0; i < nm + npeers; i++) {
        const transport *t = i < nm ? &messenger[i] : &peer[i - nm];
        for (size_t s = 0; s < NSIZES; s++)
            measure_throughput(t, "throughput", sizes[s], 1, 1);
    }
    for (size_t i = 0; i < nm; i++)
        for (int p = 2; p <= 4; p += 2)
            for (size_t s = 0; s < NSIZES; s++)
                measure_throughput(&messenger[i], "throughput", sizes[s], p, 1);
    for (size_t i = 0; i < nm + npeers; i++)
        measure_throughput(i < nm ? &messenger[i] : &peer[i - nm], "oversubscribed", 64, 1, 2);
    for (size_t i = 0; i < nm + npeers; i++) {
        const transport *t = i < nm ? &messenger[i] : &peer[i - nm];
        for (size_t s = 0; s < NSIZES; s++)
            measure_latency(t, sizes[s]);
    }
    static const size_t bc_sizes[] = {64, 4096, 65536};
    for (int copies = 0; copies < 2; copies++)
        for (size_t s = 0; s < sizeof bc_sizes / sizeof *bc_sizes; s++)
            for (int n = 1; n <= 8; n *= 2)
                measure_broadcast(bc_sizes[s], n, copies);
    if (!g_filter)
        measure_goals(g_quick ? 3 : 5);
    write_csv(out);
    write_markdown(out, machine, command);
    write_plots(out);
    printf("\nwrote %s/latest.csv, latest.md, plot.gp\n", out);
    return 0;
}
