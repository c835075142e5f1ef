/* bench_compare: running one case: the roles of a transport's sides in threads or processes,
 * throughput and latency runs, the rows they produce, and the machine's floor. */
#define _GNU_SOURCE
#include "compare_run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* ---- the driver ---- */

typedef struct {
    bench_start start;
    _Atomic uint32_t done[2];
    _Atomic uint64_t end_ns[2];
    _Atomic uint32_t errors;
    uint64_t budget_ns; /* latency: how long the pinger samples (at least 500 round trips) */
    bench_hist hist;    /* latency: written by the pinger, read after it has finished */
} control;

typedef struct {
    const transport *t;
    void *shared;
    control *ctl;
    int side, index, producers, pair, cpu;
    uint64_t count; /* per producer */
    size_t size;
} role;

/* Waits until n participants have checked in (opened their side). Sides that listen (side 1)
 * start and check in first, so that connecting sides find them at once instead of waiting for
 * a library's reconnect timer (zmq and nng retry after 100 ms). */
static void await_ready(control *c, uint32_t n)
{
    while (atomic_load_explicit(&c->start.ready, memory_order_acquire) < n)
        sched_yield();
}

void await_flag(_Atomic uint32_t *f)
{
    struct timespec ts = {0, 100000};
    while (!atomic_load_explicit(f, memory_order_acquire))
        nanosleep(&ts, NULL);
}

/* A participant's start: its CPU, its side of the channel (tuned for latency runs), then the
 * start line. Returns the endpoint. */
static void *role_open(const role *r, int side, int index, int latency)
{
    if (r->cpu >= 0)
        bench_pin_to(r->cpu);
    void *ep = r->t->open(r->shared, side, index);
    if (latency && r->t->tune_latency)
        r->t->tune_latency(ep);
    bench_check_in(&r->ctl->start);
    return ep;
}

static void run_producer(const role *r)
{
    void *ep = role_open(r, 0, r->index, 0);
    for (uint64_t seq = 0; seq < r->count; seq++)
        r->t->put(ep, (uint64_t)r->index << 56 | seq, r->size);
    /* Some peers drop what is still queued when a socket closes: close only after the consumer
     * has everything. */
    await_flag(&r->ctl->done[r->pair]);
    r->t->close(ep);
}

static void run_consumer(const role *r)
{
    void *ep = role_open(r, 1, 0, 0);
    uint64_t next[4] = {0}, got = 0, total = r->count * (uint64_t)r->producers, tags[256];
    uint32_t bad = 0;
    while (got < total) {
        unsigned n = 1;
        if (r->t->drain)
            n = r->t->drain(ep, r->size, tags, 256);
        else
            tags[0] = r->t->get(ep, r->size);
        for (unsigned i = 0; i < n; i++) {
            uint64_t p = tags[i] >> 56, seq = tags[i] & ((1ull << 56) - 1);
            if (p >= (uint64_t)r->producers || seq != next[p])
                bad++;
            else
                next[p]++;
        }
        got += n;
    }
    atomic_store_explicit(&r->ctl->end_ns[r->pair], bench_now_ns(), memory_order_relaxed);
    atomic_fetch_add_explicit(&r->ctl->errors, bad, memory_order_relaxed);
    /* release: the end time and error count are visible to whoever sees done */
    atomic_store_explicit(&r->ctl->done[r->pair], 1, memory_order_release);
    r->t->close(ep);
}

static void run_echo(const role *r)
{
    void *ep = role_open(r, 1, 0, 1);
    for (;;) {
        uint64_t tag = r->t->get(ep, r->size);
        if (tag == TAG_STOP)
            break;
        r->t->put(ep, tag, r->size);
    }
    atomic_store_explicit(&r->ctl->done[0], 1, memory_order_release);
    r->t->close(ep);
}

typedef struct {
    role r;
    void (*fn)(const role *);
    pthread_t th;
    pid_t pid;
} task;

static void *task_thread(void *arg)
{
    task *k = arg;
    k->fn(&k->r);
    return NULL;
}

static void task_start(task *k)
{
    if (!k->r.t->processes) {
        if (pthread_create(&k->th, NULL, task_thread, k))
            compare_fail("pthread_create", strerror(errno));
        return;
    }
    fflush(NULL);
    k->pid = fork();
    if (k->pid < 0)
        compare_fail("fork", strerror(errno));
    if (k->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a benchmark that dies takes its children along */
        k->fn(&k->r);
        _exit(0);
    }
}

/* Waits for every task. A process that fails fails the benchmark at once (its partners would
 * wait for it forever); they go with us (PR_SET_PDEATHSIG). Threads fail by exiting. */
static void tasks_finish(task *k, int n)
{
    if (!k[0].r.t->processes) {
        for (int i = 0; i < n; i++)
            pthread_join(k[i].th, NULL);
        return;
    }
    for (int left = n; left > 0; left--) {
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0)
            compare_fail("waitpid", strerror(errno));
        if (!WIFEXITED(st) || WEXITSTATUS(st))
            compare_fail(k[0].r.t->name, "a benchmark process failed");
    }
}

static control *control_new(void)
{
    control *c = mmap(NULL, sizeof *c, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (c == MAP_FAILED)
        compare_fail("mmap", strerror(errno));
    memset(c, 0, sizeof *c);
    return c;
}

static const char *g_case = ""; /* for the watchdog */

void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "bench_compare: a case ran past its time limit: ";
    ssize_t rc = write(2, msg, sizeof msg - 1);
    rc = write(2, g_case, strlen(g_case));
    rc = write(2, "\n", 1);
    (void)rc;
    _exit(1);
}

/* One throughput run over channels already set up (a case's runs reuse them, so only the
 * calibration run pays for first-touch page faults): `pairs` x (producers -> 1 consumer).
 * Returns messages/s. */
double throughput_once(const transport *t, void *const *shared, size_t size,
                              int producers, int pairs, uint64_t count)
{
    control *ctl = control_new();
    int pinned = bench_pin && pairs == 1 && producers == 1;
    task tasks[10];
    int n = 0;
    for (int p = 0; p < pairs; p++) {
        for (int i = 0; i < producers; i++)
            tasks[n++] = (task){{t, shared[p], ctl, 0, i, producers, p, pinned ? 0 : -1,
                                 count, size}, run_producer, 0, 0};
        tasks[n++] = (task){{t, shared[p], ctl, 1, 0, producers, p, pinned ? 1 : -1, count,
                             size}, run_consumer, 0, 0};
    }
    for (int i = 0; i < n; i++) /* consumers first */
        if (tasks[i].r.side == 1)
            task_start(&tasks[i]);
    await_ready(ctl, (uint32_t)pairs);
    for (int i = 0; i < n; i++)
        if (tasks[i].r.side == 0)
            task_start(&tasks[i]);
    uint64_t t0 = bench_go(&ctl->start, (uint32_t)n);
    tasks_finish(tasks, n);
    uint64_t end = 0;
    for (int p = 0; p < pairs; p++) {
        uint64_t e = atomic_load(&ctl->end_ns[p]);
        end = e > end ? e : end;
    }
    uint32_t errors = atomic_load(&ctl->errors);
    munmap(ctl, sizeof *ctl);
    if (errors) {
        char what[96];
        snprintf(what, sizeof what, "%s %s, %zu bytes", t->name, t->mode, size);
        compare_fail(what, "messages lost, reordered or damaged");
    }
    double secs = (double)(end - t0) / 1e9;
    return (double)count * producers * pairs / (secs > 0 ? secs : 1e-9);
}

/* ---- results ---- */

row rows[1024];
size_t nrows;
char skipped[64][200];
size_t nskipped;

void add_row(row r)
{
    if (nrows < sizeof rows / sizeof *rows)
        rows[nrows++] = r;
    if (r.p50 < 0)
        printf("%-14s %-13s %-9s %3d %8zu %12.3f %9.3f\n", r.bench, r.transport, r.mode,
               r.producers, r.size, r.msgs_s / 1e6, r.gb_s);
    else
        printf("%-14s %-13s %-9s %3d %8zu   p50 %.0f  p99 %.0f  p99.9 %.0f  max %.0f ns\n",
               r.bench, r.transport, r.mode, r.producers, r.size, r.p50, r.p99, r.p999, r.max);
    fflush(stdout);
}

static void add_skip(const transport *t, const char *bench, size_t size, const char *why)
{
    /* one line per transport and reason, not per size */
    char line[200];
    snprintf(line, sizeof line, "%s %s (%s): %s", t->name, t->mode, bench, why);
    for (size_t i = 0; i < nskipped; i++)
        if (!strcmp(skipped[i], line))
            return;
    if (nskipped < 64)
        snprintf(skipped[nskipped++], sizeof skipped[0], "%s", line);
    printf("%-14s %-13s %-9s %3s %8zu   skipped: %s\n", bench, t->name, t->mode, "", size, why);
}

const row *row_find(const char *bench, const char *tname, const char *mode, int producers,
                       size_t size)
{
    for (size_t i = 0; i < nrows; i++)
        if (!strcmp(rows[i].bench, bench) && !strcmp(rows[i].transport, tname) &&
            (!mode || !strcmp(rows[i].mode, mode)) && rows[i].producers == producers &&
            rows[i].size == size)
            return &rows[i];
    return NULL;
}

/* Whether rows[i] is the first 1-producer throughput row of its transport and mode (tables
 * and plots have one line per transport and mode, in run order). */
int row_first_of_kind(size_t i)
{
    const row *r = &rows[i];
    for (size_t j = 0; j < i; j++)
        if (!strcmp(rows[j].bench, "throughput") && rows[j].producers == 1 &&
            !strcmp(rows[j].transport, r->transport) && !strcmp(rows[j].mode, r->mode))
            return 0;
    return 1;
}

/* The better mode's row (messenger and ck_ring have two). */
const row *row_best(const char *bench, const char *tname, size_t size)
{
    const row *b = NULL;
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        if (strcmp(r->bench, bench) || strcmp(r->transport, tname) || r->producers != 1 ||
            r->size != size)
            continue;
        if (!b || (r->p50 < 0 ? r->msgs_s > b->msgs_s : r->p50 < b->p50))
            b = r;
    }
    return b;
}

/* ---- settings ---- */

int g_quick, g_repeat;
const char *g_filter;
double g_target_s;

int row_selected(const char *bench, const char *tname, const char *mode, int producers,
                    size_t size)
{
    char name[160];
    snprintf(name, sizeof name, "%s,%s,%s,%d,%zu", bench, tname, mode, producers, size);
    return !g_filter || strstr(name, g_filter);
}

/* Median messages/s of g_repeat runs after calibration; -1 with `err` when the transport
 * cannot carry this case. */
double throughput_rate(const transport *t, const char *bench, size_t size, int producers,
                              int pairs, char *err, size_t errlen)
{
    const char *why = t->unsupported ? t->unsupported(size) : NULL;
    if (why) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    char casename[160];
    snprintf(casename, sizeof casename, "%s %s %s, %d producer(s), %zu bytes", bench, t->name,
             t->mode, producers, size);
    void *shared[2] = {0};
    for (int p = 0; p < pairs; p++)
        if (!(shared[p] = t->setup(size, producers, err, errlen))) {
            if (p)
                t->teardown(shared[0]);
            return -1;
        }
    g_case = casename;
    alarm(120);
    /* Calibration (also the warm-up): runs growing 8x from a small count until one lasts an
     * eighth of the target, whose rate sets the count for ~g_target_s. */
    uint64_t count = size >= 65536 ? 16 : 256;
    double rate;
    for (;;) {
        uint64_t t0 = bench_now_ns();
        rate = throughput_once(t, shared, size, producers, pairs, count);
        if ((double)(bench_now_ns() - t0) / 1e9 >= g_target_s / 8 || count >= 5000000)
            break;
        count *= 8;
    }
    double want = rate * g_target_s / producers / pairs;
    count = want < 16 ? 16 : want > 5e7 ? 50000000 : (uint64_t)want;
    double runs[16];
    for (int i = 0; i < g_repeat; i++)
        runs[i] = throughput_once(t, shared, size, producers, pairs, count);
    alarm(0);
    for (int p = 0; p < pairs; p++)
        t->teardown(shared[p]);
    qsort(runs, (size_t)g_repeat, sizeof *runs, bench_cmp_double);
    return runs[g_repeat / 2];
}

void measure_throughput(const transport *t, const char *bench, size_t size, int producers,
                               int pairs)
{
    if (!row_selected(bench, t->name, t->mode, producers, size))
        return;
    char err[200] = "";
    double r = throughput_rate(t, bench, size, producers, pairs, err, sizeof err);
    if (r < 0)
        add_skip(t, bench, size, err);
    else
        add_row((row){bench, t->name, t->mode, producers * pairs, size, r, r * (double)size / 1e9,
                      -1, -1, -1, -1});
}

static void run_pinger(const role *r)
{
    void *ep = role_open(r, 0, 0, 1);
    bench_hist *h = &r->ctl->hist;
    uint64_t warm = 100, started = bench_now_ns();
    for (uint64_t i = 0; i < warm + r->count; i++) {
        if (i >= warm + 500 && bench_now_ns() - started > r->ctl->budget_ns)
            break;
        uint64_t t0 = bench_now_ns();
        r->t->put(ep, i, r->size);
        uint64_t back = r->t->get(ep, r->size);
        uint64_t t1 = bench_now_ns();
        if (back != i)
            atomic_fetch_add_explicit(&r->ctl->errors, 1, memory_order_relaxed);
        if (i >= warm)
            bench_hist_add(h, t1 - t0);
    }
    r->t->put(ep, TAG_STOP, r->size);
    await_flag(&r->ctl->done[0]); /* the echo has the stop message */
    r->t->close(ep);
}

/* Round trips into `out`; -1 with `err` when the transport cannot carry this case. */
int latency_hist(const transport *t, size_t size, bench_hist *out, char *err, size_t errlen)
{
    const char *why = t->unsupported ? t->unsupported(size) : NULL;
    if (why) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    void *shared = t->setup(size, 1, err, errlen);
    if (!shared)
        return -1;
    char casename[160];
    snprintf(casename, sizeof casename, "latency %s %s, %zu bytes", t->name, t->mode, size);
    g_case = casename;
    alarm(120);
    /* Both sides are tasks (threads, or processes: some peers cannot be used again in a child
     * once the parent has used them); the pinger fills the histogram in the control block. */
    control *ctl = control_new();
    ctl->budget_ns = (uint64_t)(g_target_s * 1.5e9);
    task tk[2] = {
        {{t, shared, ctl, 1, 0, 1, 0, bench_pin ? 1 : -1, 0, size}, run_echo, 0, 0},
        {{t, shared, ctl, 0, 0, 1, 0, bench_pin ? 0 : -1, g_quick ? 20000 : 200000, size},
         run_pinger, 0, 0}};
    task_start(&tk[0]);
    await_ready(ctl, 1);
    task_start(&tk[1]);
    bench_go(&ctl->start, 2);
    tasks_finish(tk, 2);
    alarm(0);
    t->teardown(shared);
    if (atomic_load(&ctl->errors))
        compare_fail(casename, "the echo returned another message");
    memcpy(out, &ctl->hist, sizeof *out);
    munmap(ctl, sizeof *ctl);
    return 0;
}

static row hist_row(const char *transport_name, const char *mode, size_t size, const bench_hist *h)
{
    double p50 = bench_hist_quantile(h, 0.5);
    return (row){"latency", transport_name, mode, 1, size, 1e9 / p50, -1, p50,
                 bench_hist_quantile(h, 0.99), bench_hist_quantile(h, 0.999), (double)h->max};
}

void measure_latency(const transport *t, size_t size)
{
    if (!row_selected("latency", t->name, t->mode, 1, size))
        return;
    char err[200] = "";
    bench_hist *h = xmalloc(sizeof *h);
    if (latency_hist(t, size, h, err, sizeof err))
        add_skip(t, "latency", size, err);
    else
        add_row(hist_row(t->name, t->mode, size, h));
    free(h);
}

/* ---- the floor ---- */

void cacheline_hist(bench_hist *h)
{
    memset(h, 0, sizeof *h);
    if (bench_line_pingpong(g_quick ? 50000 : 500000, h) < 0)
        compare_fail("cacheline", "cannot start the echo thread");
}

void measure_cacheline(void)
{
    if (!row_selected("latency", "cacheline", "floor", 1, 64))
        return;
    bench_hist *h = xmalloc(sizeof *h);
    cacheline_hist(h);
    add_row(hist_row("cacheline", "floor", 64, h));
    free(h);
}

/* Seconds for n copies of size bytes. */
static double copy_n(unsigned char *dst, const unsigned char *src, size_t size, uint64_t n)
{
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        memcpy(dst, src, size);
        __asm__ volatile("" : : "r"(dst) : "memory"); /* the copy must happen every time */
    }
    return (double)(bench_now_ns() - t0) / 1e9;
}

void measure_memcpy(size_t size)
{
    if (!row_selected("throughput", "memcpy", "floor", 1, size))
        return;
    /* page-aligned buffers: the best case a copy of this size gets on this machine */
    size_t span = (size + 4095) & ~(size_t)4095;
    unsigned char *src = aligned_alloc(4096, span), *dst = aligned_alloc(4096, span);
    if (!src || !dst)
        compare_fail("memcpy", "out of memory");
    memset(src, 1, size);
    memset(dst, 2, size);
    double runs[16];
    uint64_t n = 1000;
    for (;;) { /* grow the count until one run takes long enough to time */
        double secs = copy_n(dst, src, size, n);
        if (secs > g_target_s / 4 || n > (1ull << 40)) {
            n = (uint64_t)((double)n * g_target_s / (secs > 0 ? secs : 1e-9)) + 1;
            break;
        }
        n *= 4;
    }
    for (int r = 0; r < g_repeat; r++)
        runs[r] = (double)n / copy_n(dst, src, size, n);
    qsort(runs, (size_t)g_repeat, sizeof *runs, bench_cmp_double);
    double rate = runs[g_repeat / 2];
    add_row((row){"throughput", "memcpy", "floor", 1, size, rate, rate * (double)size / 1e9, -1,
                  -1, -1, -1});
    free(src);
    free(dst);
}
