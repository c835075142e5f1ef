/* bench_compare: the results written out: CSV, the markdown tables and the plot data. */
#define _GNU_SOURCE
#include "compare_run.h"

#include <errno.h>
#include <sys/stat.h>
#include <sys/utsname.h>

/* ---- output ---- */

static FILE *open_out(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        compare_fail(path, strerror(errno));
    return f;
}

static void close_out(FILE *f, const char *dir, const char *name)
{
    if (fclose(f)) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        compare_fail(path, strerror(errno));
    }
}

void write_csv(const char *dir)
{
    FILE *f = open_out(dir, "latest.csv");
    fprintf(f, "%s\n", BENCH_CSV_HEADER);
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        bench_csv_row(f, r->bench, r->transport, r->mode, r->producers, r->size, r->msgs_s,
                      r->gb_s, r->p50, r->p99, r->p999);
    }
    close_out(f, dir, "latest.csv");
}

const size_t sizes[NSIZES] = {8, 64, 512, 4096, 65536, 1u << 20};

static const char *size_name(size_t s)
{
    static char buf[8][24];
    static int k;
    char *b = buf[k++ & 7];
    if (s >= (1u << 20))
        snprintf(b, 24, "%zu MiB", s >> 20);
    else if (s >= 1024)
        snprintf(b, 24, "%zu KiB", s >> 10);
    else
        snprintf(b, 24, "%zu B", s);
    return b;
}

static void md_rate(FILE *f, const row *r)
{
    if (!r)
        fprintf(f, " – |");
    else if (r->msgs_s >= 1e6)
        fprintf(f, " %.2f M |", r->msgs_s / 1e6);
    else
        fprintf(f, " %.1f k |", r->msgs_s / 1e3);
}

static void md_ratio(FILE *f, double a, double b)
{
    if (a > 0 && b > 0)
        fprintf(f, " %.1fx |", a / b);
    else
        fprintf(f, " – |");
}

typedef struct {
    const char *name;
    int processes;
} peer_kind;

/* The goals against the peers, from the paired rounds. */
static void md_goals(FILE *f)
{
    fprintf(f, "Each goal's two sides are measured back to back, in %d rounds (this machine "
               "drifts between fast and slow phases over minutes); the ratio is the median of "
               "the per-round ratios, with the smallest and largest. messenger and ck_ring count "
               "in their better mode (zero-copy or copy); each of their rounds is itself a run of "
               "interleaved slices (the four modes take turns every few milliseconds between the "
               "same two threads) whose ratio is the median over its own slices.\n\n"
               "| goal | median ratio | range | messenger (median) | other (median) | holds |\n"
               "|---|---:|---:|---:|---:|---|\n", goals[0].n);
    for (size_t i = 0; i < NGOALS; i++) {
        const goal *g = &goals[i];
        if (!g->n) {
            fprintf(f, "| %s | – | – | – | – | not measured: %s |\n", g->text, g->skipped);
            continue;
        }
        double lo = g->ratio[0], hi = g->ratio[0];
        for (int k = 1; k < g->n; k++) {
            lo = g->ratio[k] < lo ? g->ratio[k] : lo;
            hi = g->ratio[k] > hi ? g->ratio[k] : hi;
        }
        double m = bench_median(g->ratio, g->n);
        int holds = goal_holds(g, m);
        const char *unit = g->ns ? " ns" : " M/s";
        double scale = g->ns ? 1 : 1e6;
        fprintf(f, "| %s | %.2fx | %.2f–%.2f | %.*f%s | %.*f%s | %s |\n", g->text, m, lo, hi,
                g->ns ? 0 : 3, bench_median(g->mine, g->n) / scale, unit, g->ns ? 0 : 3,
                bench_median(g->theirs, g->n) / scale, unit, holds ? "yes" : "**no**");
    }
    fprintf(f, "\nThe round-trip goal's floor is the cache-line ping-pong just before and just "
               "after the round trips, averaged; a round whose two floors differed by more than "
               "1.5x (the host moved the vCPUs) was measured again: %d time(s) in this run.\n\n",
            g_rtt_remeasured);
}

void write_markdown(const char *dir, const char *machine, const char *command)
{
    FILE *f = open_out(dir, "latest.md");
    fprintf(f, "# bench_compare results\n\nMachine: %s. Command: `%s`.\n\n", machine, command);
    fprintf(f, "## Goals\n\n");
    md_goals(f);

    fprintf(f, "## Ratios against each peer\n\nmessenger in the same kind of setting as the peer "
               "(between processes: `process`; between threads: `thread`), better mode; "
               "throughput ratio = messenger / peer, latency ratio = peer p50 / messenger p50 "
               "(higher is better for messenger in both).\n\n"
               "| peer | between | 64 B msgs/s | ratio | 4 KiB msgs/s | ratio | 64 B RTT p50 | ratio |\n"
               "|---|---|---:|---:|---:|---:|---:|---:|\n");
    static const peer_kind pk[] = {{"pipe", 1},    {"uds", 1},     {"posix-mq", 1},
                                   {"zmq-ipc", 1}, {"nng-ipc", 1}, {"zmq-inproc", 0},
                                   {"ck_ring", 0}, {"atomic_queue", 0}, {"iceoryx", 1}};
    for (size_t i = 0; i < sizeof pk / sizeof *pk; i++) {
        const char *mine = pk[i].processes ? "process" : "thread";
        const row *p64 = row_best("throughput", pk[i].name, 64), *p4k = row_best("throughput", pk[i].name, 4096);
        const row *m64 = row_best("throughput", mine, 64), *m4k = row_best("throughput", mine, 4096);
        const row *pl = row_best("latency", pk[i].name, 64), *ml = row_best("latency", mine, 64);
        if (!p64 && !pl)
            continue;
        fprintf(f, "| %s | %s |", pk[i].name, pk[i].processes ? "processes" : "threads");
        md_rate(f, p64);
        md_ratio(f, m64 ? m64->msgs_s : 0, p64 ? p64->msgs_s : 0);
        md_rate(f, p4k);
        md_ratio(f, m4k ? m4k->msgs_s : 0, p4k ? p4k->msgs_s : 0);
        if (pl)
            fprintf(f, " %.0f ns |", pl->p50);
        else
            fprintf(f, " – |");
        md_ratio(f, pl ? pl->p50 : 0, ml ? ml->p50 : 0);
        fprintf(f, "\n");
    }

    fprintf(f, "\n## One producer to N readers (messages/s, each delivered to every reader)\n\n"
               "`broadcast`: one record in a broadcast ring, read in place by every reader; "
               "`ring-copies`: one ring per reader, the message written into each. Reader "
               "threads, unpinned.\n\n| transport | size | 1 reader | 2 | 4 | 8 | 4 vs 1 |\n"
               "|---|---:|---:|---:|---:|---:|---:|\n");
    static const char *const bc_t[] = {"broadcast", "ring-copies"};
    static const size_t bc_s[] = {64, 4096, 65536};
    for (size_t t = 0; t < 2; t++)
        for (size_t z = 0; z < 3; z++) {
            const row *one = row_find("readers-1", bc_t[t], t ? "copy" : "zero-copy", 1, bc_s[z]);
            if (!one)
                continue;
            fprintf(f, "| %s | %s |", bc_t[t], size_name(bc_s[z]));
            const row *four = NULL;
            for (int n = 1; n <= 8; n *= 2) {
                char bench[16];
                snprintf(bench, sizeof bench, "readers-%d", n);
                const row *r = row_find(bench, bc_t[t], t ? "copy" : "zero-copy", 1, bc_s[z]);
                md_rate(f, r);
                if (n == 4)
                    four = r;
            }
            if (four)
                fprintf(f, " %.2fx |\n", four->msgs_s / one->msgs_s);
            else
                fprintf(f, " – |\n");
        }

    fprintf(f, "\n## Throughput, 1 producer -> 1 consumer (messages/s)\n\n| transport | mode |");
    for (size_t s = 0; s < NSIZES; s++)
        fprintf(f, " %s |", size_name(sizes[s]));
    fprintf(f, "\n|---|---|");
    for (size_t s = 0; s < NSIZES; s++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
    for (size_t i = 0; i < nrows; i++) { /* one line per transport and mode, in run order */
        const row *r = &rows[i];
        if (strcmp(r->bench, "throughput") || r->producers != 1)
            continue;
        if (!row_first_of_kind(i))
            continue;
        fprintf(f, "| %s | %s |", r->transport, r->mode);
        for (size_t s = 0; s < NSIZES; s++)
            md_rate(f, row_find("throughput", r->transport, r->mode, 1, sizes[s]));
        fprintf(f, "\n");
    }

    fprintf(f, "\n## Several producers, and oversubscribed (messages/s, all producers together)\n\n"
               "`oversubscribed`: two independent producer -> consumer pairs at once, 4 busy "
               "workers on the machine's CPUs, unpinned.\n\n"
               "| bench | transport | mode | producers | size | msgs/s | GB/s |\n"
               "|---|---|---|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        if (r->p50 >= 0 || (r->producers == 1 && !strcmp(r->bench, "throughput")))
            continue;
        fprintf(f, "| %s | %s | %s | %d | %s |", r->bench, r->transport, r->mode, r->producers,
                size_name(r->size));
        md_rate(f, r);
        fprintf(f, " %.2f |\n", r->gb_s);
    }

    fprintf(f, "\n## Round trip, 64 bytes (ns)\n\n| transport | mode | p50 | p99 | p99.9 | max |\n"
               "|---|---|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        if (!strcmp(r->bench, "latency") && r->size == 64)
            fprintf(f, "| %s | %s | %.0f | %.0f | %.0f | %.0f |\n", r->transport, r->mode, r->p50,
                    r->p99, r->p999, r->max);
    }
    fprintf(f, "\n## Round trip p50 by size (ns)\n\n| transport | mode |");
    for (size_t s = 0; s < NSIZES; s++)
        fprintf(f, " %s |", size_name(sizes[s]));
    fprintf(f, "\n|---|---|");
    for (size_t s = 0; s < NSIZES; s++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        if (strcmp(r->bench, "latency") || r->size != 8)
            continue;
        fprintf(f, "| %s | %s |", r->transport, r->mode);
        for (size_t s = 0; s < NSIZES; s++) {
            const row *x = row_find("latency", r->transport, r->mode, 1, sizes[s]);
            if (x)
                fprintf(f, " %.0f |", x->p50);
            else
                fprintf(f, " – |");
        }
        fprintf(f, "\n");
    }
    if (nskipped) {
        fprintf(f, "\n## Skipped\n\n");
        for (size_t i = 0; i < nskipped; i++)
            fprintf(f, "- %s\n", skipped[i]);
    }
    close_out(f, dir, "latest.md");
}

/* Data and script for gnuplot (make bench-compare runs it when gnuplot is installed). */
void write_plots(const char *dir)
{
    FILE *d = open_out(dir, "throughput.dat"), *g = open_out(dir, "plot.gp");
    fprintf(g, "# written by bench_compare; run from the results directory\n"
               "set terminal pngcairo size 1100,650 noenhanced font ',10'\n"
               "set output 'throughput.png'\nset title 'Throughput, 1 producer -> 1 consumer'\n"
               "set logscale xy\nset xlabel 'message size (bytes)'\nset ylabel 'messages/s'\n"
               "set key outside right\nset grid\nset format y '%%.0e'\n"
               "set xtics ('8' 8, '64' 64, '512' 512, '4K' 4096, '64K' 65536, '1M' 1048576)\n"
               "plot ");
    int block = 0;
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        if (strcmp(r->bench, "throughput") || r->producers != 1 || !strcmp(r->transport, "memcpy"))
            continue;
        if (!row_first_of_kind(i))
            continue;
        for (size_t s = 0; s < NSIZES; s++) {
            const row *x = row_find("throughput", r->transport, r->mode, 1, sizes[s]);
            if (x)
                fprintf(d, "%zu %.0f %.4f\n", x->size, x->msgs_s, x->gb_s);
        }
        fprintf(d, "\n\n");
        int mine = !strcmp(r->transport, "thread") || !strcmp(r->transport, "process") ||
                   !strcmp(r->transport, "file");
        fprintf(g, "%s'throughput.dat' index %d using 1:2 with linespoints lw %d title '%s %s'",
                block ? ", \\\n     " : "", block, mine ? 3 : 1, r->transport, r->mode);
        block++;
    }
    if (!block)
        fprintf(g, "NaN notitle");
    fprintf(g, "\n");
    close_out(d, dir, "throughput.dat");

    d = open_out(dir, "latency.dat");
    fprintf(d, "transport p50 p99 p99.9 max\n");
    int any = 0;
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        if (!strcmp(r->bench, "latency") && r->size == 64) {
            fprintf(d, "%s/%s %.0f %.0f %.0f %.0f\n", r->transport, r->mode, r->p50, r->p99,
                    r->p999, r->max);
            any = 1;
        }
    }
    close_out(d, dir, "latency.dat");
    if (any)
        fprintf(g, "\nset output 'latency.png'\nset title 'Round trip, 64-byte messages'\n"
                   "unset logscale\nset logscale y\nset ylabel 'ns'\nunset xlabel\n"
                   "set format y '%%g'\nset xtics rotate by -40 autofreq\nset key inside top left\n"
                   "set style data histograms\nset style histogram clustered gap 1\n"
                   "set style fill solid 0.8 border -1\nset boxwidth 0.9\n"
                   "plot 'latency.dat' using 2:xtic(1) title 'p50', '' using 3 title 'p99', "
                   "'' using 4 title 'p99.9', '' using 5 title 'max'\n");
    close_out(g, dir, "plot.gp");
}

void machine_line(char *out, size_t n)
{
    struct utsname u;
    uname(&u);
    char model[128] = "unknown CPU";
    FILE *c = fopen("/proc/cpuinfo", "r");
    if (c) {
        char line[256];
        while (fgets(line, sizeof line, c))
            if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
                snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
                model[strcspn(model, "\n")] = 0;
                break;
            }
        fclose(c);
    }
    snprintf(out, n, "%s %s, %ld CPUs (%s)", u.sysname, u.release,
             sysconf(_SC_NPROCESSORS_ONLN), model);
}
