/* bench_compare's modules (benchmark code only): what one file defines and another uses.
 *   compare_msgr.c    messenger as a transport (compare.h's table, six modes)
 *   compare_run.c     running a case (roles, throughput, latency, the floor) and the result rows
 *   compare_bcast.c   one producer to N readers: the broadcast ring against copies
 *   compare_goals.c   the goals, measured in pairs
 *   compare_report.c  CSV, markdown and plot output
 *   bench_compare.c   the command line and the order of the sweep
 */
#ifndef MSGR_BENCH_COMPARE_RUN_H
#define MSGR_BENCH_COMPARE_RUN_H

#include "bench_util.h"
#include "compare.h"

#include <stdio.h>
#include <stdlib.h>

/* compare_msgr.c */
#define N_MESSENGER 6
extern const transport messenger[N_MESSENGER];

/* compare_run.c: settings (set by main before the sweep) */
extern int g_quick, g_repeat;
extern const char *g_filter;
extern double g_target_s; /* one timed run */

/* compare_run.c: result rows, in run order; p50 < 0 marks a throughput row */
typedef struct {
    const char *bench, *transport, *mode;
    int producers;
    size_t size;
    double msgs_s, gb_s, p50, p99, p999, max;
} row;
extern row rows[1024];
extern size_t nrows;
extern char skipped[64][200]; /* one line per transport and reason */
extern size_t nskipped;
void add_row(row r); /* records and prints a row */
/* the case "bench,transport,mode,producers,size" passes --filter */
int row_selected(const char *bench, const char *tname, const char *mode, int producers,
                 size_t size);
const row *row_find(const char *bench, const char *tname, const char *mode, int producers,
                    size_t size);
int row_first_of_kind(size_t i);
const row *row_best(const char *bench, const char *tname, size_t size);

/* compare_run.c: running cases */
void on_alarm(int sig); /* SIGALRM: names the case that hung, then exits */
void await_flag(_Atomic uint32_t *f);
double throughput_once(const transport *t, void *const *shared, size_t size, int producers,
                       int pairs, uint64_t count);
double throughput_rate(const transport *t, const char *bench, size_t size, int producers,
                       int pairs, char *err, size_t errlen);
void measure_throughput(const transport *t, const char *bench, size_t size, int producers,
                        int pairs);
int latency_hist(const transport *t, size_t size, bench_hist *out, char *err, size_t errlen);
void measure_latency(const transport *t, size_t size);
void cacheline_hist(bench_hist *h);
void measure_cacheline(void);
void measure_memcpy(size_t size);

/* compare_bcast.c: one producer to `readers` reader threads, over a broadcast ring or (copies)
 * one ring per reader; messages/s (median of the runs), and the same as a table row. */
double broadcast_rate(int readers, int copies, size_t size);
void measure_broadcast(size_t size, int readers, int copies);

/* compare_goals.c */
typedef struct {
    const char *text;      /* what is compared */
    const char *peer;      /* the other side's transport (skipped when it is not built) */
    double need;           /* the ratio the goal asks for */
    int at_most;           /* 1: ratio must be <= need; 0: >= need */
    int ns;                /* 1: the two sides are round-trip times (ns), else messages/s */
    double ratio[16], mine[16], theirs[16];
    int n;
    char skipped[200];
} goal;
#define NGOALS 12
extern goal goals[NGOALS];
extern const transport *g_peers;
extern size_t g_npeers;
extern int g_rtt_remeasured; /* the round-trip goal's floor was measured again in a round */
int goal_holds(const goal *g, double median_ratio);
void measure_goals(int rounds);

/* compare_report.c */
#define NSIZES 6
extern const size_t sizes[NSIZES]; /* message sizes of the sweep */
void write_csv(const char *dir);
void write_markdown(const char *dir, const char *machine, const char *command);
void write_plots(const char *dir);
void machine_line(char *out, size_t n);

#endif
