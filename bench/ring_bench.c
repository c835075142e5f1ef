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
#include "bench_util.h"

#include <messenger.h>

#include <inttypes.h>
#include <pthread.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#define CAPACITY (1u << 22) /* 4 MiB data area per ring */

static void die(const char *what, int rc)
{
    bench_fail(what, msgr_strerror(rc));
}

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

/* Placements of the two vCPUs, told apart by a cache line's round trip between them, without
 * a clock read per trip: one core's two hardware threads, two cores close by, two far apart
 * (thresholds below; bench/README.md gives typical figures). The host moves the vCPUs between them several times a minute, and every figure
 * follows, so the table says where each row ran. */
enum { NPLACES = 3 };
static const char *const place_name[NPLACES] = {"same core (under 50 ns)", "near (50-160 ns)",
                                                "far (300 ns or more)"};
static const char *const place_short[NPLACES] = {"core", "near", "far"};

/* The placement a round trip says, or -1 between them. */
static int placement(double rtt_ns)
{
    return rtt_ns < 50 ? 0 : rtt_ns < 160 ? 1 : rtt_ns >= 300 ? 2 : -1;
}

/* 2000 round trips between CPUs 0 and 1 (under a millisecond): the placement now. */
static int placement_now(void)
{
    double rtt = bench_line_pingpong(2000, NULL);
    return rtt < 0 ? -1 : placement(rtt);
}

/* Runs fn(arg) between two placement probes; r->place says where it ran (-1: the probes
 * disagree, or the round trip was between placements). */
#define WITH_PLACEMENT(r, call)                                                                  \
    do {                                                                                         \
        int before_ = placement_now();                                                           \
        (r) = (call);                                                                            \
        int after_ = placement_now();                                                            \
        (r).place = before_ == after_ ? before_ : -1;                                            \
    } while (0)

typedef struct {
    msgr_ring *ring; /* creator's handle; process peers attach their own */
    control *ctl;
    int zero_copy;
    size_t size;
    uint64_t count; /* per producer */
    int id;
    int producers;
} job;

static void *ring_mem(msgr_region *g, int i)
{
    return (char *)msgr_region_base(g) + (size_t)i * msgr_ring_footprint(CAPACITY);
}

static void start_line(control *c)
{
    bench_check_in(&c->start);
}

static void produce(job *j, msgr_ring *r, int producers)
{
    if (producers == 1)
        bench_pin_to(0);
    unsigned char *buf = malloc(j->size + 8);
    memset(buf, 0xab, j->size + 8);
    start_line(j->ctl);
    for (uint64_t seq = 0; seq < j->count; seq++) {
        uint64_t tagged = ((uint64_t)j->id << 56) | seq;
        if (j->zero_copy) {
            msgr_claim c;
            int rc = msgr_ring_claim_wait(r, j->size, &c, -1);
            if (rc)
                die("claim", rc);
            if (j->size > 8)
                memset((char *)c.data + 8, (int)seq, j->size - 8);
            memcpy(c.data, &tagged, j->size < 8 ? j->size : 8);
            c.source = (uint16_t)j->id;
            if ((rc = msgr_ring_commit(r, &c)))
                die("commit", rc);
        } else {
            memcpy(buf, &tagged, 8);
            int rc = msgr_ring_send_wait(r, (uint16_t)j->id, buf, j->size, -1);
            if (rc)
                die("send", rc);
        }
    }
    free(buf);
}

static void *producer_thread(void *arg)
{
    /* A private copy: the job array lives on the consumer's stack, and reading it on every
     * message while the consumer writes its tallies nearby would share a cache line. */
    job j = *(job *)arg;
    produce(&j, j.ring, j.producers);
    return NULL;
}

typedef struct {
    uint64_t next[4];
    uint64_t got;
    size_t size;
    uint32_t errors;
} check;

static void check_one(check *k, const void *data, size_t len, uint16_t src)
{
    uint64_t v = 0;
    if (len >= 8)
        memcpy(&v, data, 8);
    uint64_t id = v >> 56, seq = v & ((1ull << 56) - 1);
    if (len != k->size || (len >= 8 && (id != src || id >= 4 || seq != k->next[id])))
        k->errors++;
    else if (len >= 8)
        k->next[id]++;
    k->got++;
}

static int on_msg(void *arg, const msgr_msg *m)
{
    check_one(arg, m->data, m->len, m->source);
    return 0;
}

/* --linger MIN,PAUSES. (256, 512) against (32, 64), same-state slices (--filter linger):
 * 1.17-1.22x in fast and slow stretches alike: each look at an empty ring reads the line the
 * producer writes next, and bigger batches mean fewer such looks per record. */
static unsigned g_linger_min = 256, g_linger_pauses = 512;

/* The zero-copy consumer: polls batches until k has taken `count` more messages; when there
 * is none, waits for one. */
static void take_from_ring(msgr_ring *ring, check *k, uint64_t count)
{
    for (uint64_t target = k->got + count; k->got < target;) {
        int n = msgr_ring_poll(ring, on_msg, k, 256);
        if (n < 0)
            die("poll", n);
        msgr_msg m;
        int rc;
        if (n == 0 && (rc = msgr_ring_peek_wait(ring, &m, 5000000000ll)))
            die("peek_wait", rc);
    }
}

/* Consumes producers * count messages; returns elapsed ns from the start signal. */
static uint64_t consume(job *j, int producers)
{
    msgr_ring_set_linger(j->ring, g_linger_min, g_linger_pauses); /* used by poll (zero-copy) */
    check k = {.size = j->size};
    uint64_t total = (uint64_t)producers * j->count;
    unsigned char *buf = malloc(j->size + 8);
    uint64_t t0 = bench_go(&j->ctl->start, (uint32_t)producers);
    if (j->zero_copy)
        take_from_ring(j->ring, &k, total);
    while (k.got < total) {
        msgr_msg info;
        int rc = msgr_ring_recv_wait(j->ring, buf, j->size + 8, &info, 5000000000ll);
        if (rc < 0)
            die("recv", rc);
        check_one(&k, buf, (size_t)rc, info.type);
    }
    uint64_t dt = bench_now_ns() - t0;
    free(buf);
    if (k.errors) {
        fprintf(stderr, "ring_bench: %u messages out of order or damaged\n", k.errors);
        exit(1);
    }
    return dt;
}

static msgr_region *region_for(int rings)
{
    msgr_region *g;
    size_t bytes = (size_t)rings * msgr_ring_footprint(CAPACITY) + 4096;
    int rc = msgr_region_create_anon(bytes, NULL, &g);
    if (!rc) /* no first-touch page faults inside the timed loops (the latency run's p99) */
        rc = msgr_region_prefault(g);
    if (rc)
        die("region", rc);
    return g;
}

static result run_throughput(const char *transport, int zero_copy, int producers, size_t size,
                             uint64_t count)
{
    msgr_region *g = region_for(1);
    msgr_ring_opts o = {.capacity = CAPACITY, .flags = producers > 1 ? MSGR_RING_MPSC : 0};
    job base = {.zero_copy = zero_copy, .size = size, .count = count,
                .producers = producers};
    int rc = msgr_ring_create(ring_mem(g, 0), msgr_region_size(g), &o, &base.ring);
    if (rc)
        die("ring_create", rc);
    base.ctl = (control *)((char *)ring_mem(g, 1));
    memset(base.ctl, 0, sizeof *base.ctl);

    pthread_t th[4];
    pid_t pids[4];
    job jobs[4];
    for (int i = 0; i < producers; i++) {
        jobs[i] = base;
        jobs[i].id = i;
        if (strcmp(transport, "thread") == 0) {
            pthread_create(&th[i], NULL, producer_thread, &jobs[i]);
        } else {
            pids[i] = fork();
            if (pids[i] == 0) {
                msgr_ring *mine;
                if ((rc = msgr_ring_attach(ring_mem(g, 0), msgr_region_size(g), NULL, &mine)))
                    die("attach", rc);
                produce(&jobs[i], mine, producers);
                msgr_ring_close(mine);
                _exit(0);
            }
        }
    }
    if (producers == 1)
        bench_pin_to(1);
    uint64_t dt = consume(&base, producers);
    bench_unpin();
    for (int i = 0; i < producers; i++) {
        if (strcmp(transport, "thread") == 0)
            pthread_join(th[i], NULL);
        else {
            int st;
            waitpid(pids[i], &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st))
                die("producer process", MSGR_EIO);
        }
    }
    msgr_ring_close(base.ring);
    msgr_region_close(g);
    double secs = (double)dt / 1e9, msgs = (double)count * producers;
    result res = {"throughput", transport, zero_copy ? "zero-copy" : "copy", producers, size,
                  msgs / secs, msgs * (double)size / secs / 1e9, -1, -1, -1, 0, -1};
    return res;
}

/* ---- file transport: the persistent log ---- */

typedef struct {
    msgr_log *log;
    size_t size;
    uint64_t count;
    int zero_copy;
    control *ctl;
} file_job;

static void *file_producer(void *arg)
{
    /* A private copy, as producer_thread's: the job lives on the consumer's stack, next to the
     * tallies it writes for every record. */
    file_job mine = *(file_job *)arg, *j = &mine;
    bench_pin_to(0);
    unsigned char *buf = malloc(j->size + 8);
    memset(buf, 0xab, j->size + 8);
    start_line(j->ctl);
    for (uint64_t seq = 0; seq < j->count; seq++) {
        int rc;
        if (j->zero_copy) {
            msgr_claim c;
            if ((rc = msgr_log_claim_wait(j->log, j->size, &c, -1)))
                die("log claim", rc);
            if (j->size > 8)
                memset((char *)c.data + 8, (int)seq, j->size - 8);
            memcpy(c.data, &seq, j->size < 8 ? j->size : 8);
            rc = msgr_log_commit(j->log, &c);
        } else {
            memcpy(buf, &seq, 8);
            rc = msgr_log_append_wait(j->log, 0, buf, j->size, -1);
        }
        if (rc)
            die("log commit", rc);
    }
    free(buf);
    return NULL;
}

typedef struct {
    size_t size;
    uint64_t next, bad;
    msgr_msg last;
} file_check;

/* Record `next` carries its number in its first 8 bytes. */
static int file_check_one(void *arg, const msgr_msg *m)
{
    file_check *k = arg;
    uint64_t v = 0;
    memcpy(&v, m->data, k->size < 8 ? k->size : 8);
    k->bad += m->len != k->size || (k->size >= 8 && v != k->next);
    k->next++;
    k->last = *m;
    return 0;
}

/* The zero-copy consumer, as the ring's: a batch, then one acknowledgement for all of it (the
 * log's release); when there is none, waits for one record. Until `count` records. */
static void take_from_log(msgr_log_reader *rd, file_check *k, uint64_t count)
{
    int rc;
    for (uint64_t got = 0; got < count;) {
        int n = msgr_log_poll(rd, file_check_one, k, 256);
        if (n < 0)
            die("log poll", n);
        if (n == 0) {
            if ((rc = msgr_log_read_wait(rd, &k->last, 5000000000ll)))
                die("log read", rc);
            file_check_one(k, &k->last);
            n = 1;
        }
        if ((rc = msgr_log_ack(rd, &k->last)))
            die("log ack", rc);
        got += (uint64_t)n;
    }
}

/* The log file's path: $BENCH_DIR (default /tmp), one name per benchmark process. */
static void log_path(char *buf, size_t n)
{
    const char *dir = getenv("BENCH_DIR");
    snprintf(buf, n, "%s/ring_bench-%d.log", dir ? dir : "/tmp", (int)getpid());
}

static result run_file(uint32_t sync, int zero_copy, size_t size, uint64_t count)
{
    char path[64];
    log_path(path, sizeof path);
    remove(path);
    /* single-producer: the file's counterpart of the SPSC ring in the thread rows */
    msgr_log_opts o = {.capacity = CAPACITY, .sync = sync, .flags = MSGR_LOG_SINGLE_PRODUCER};
    msgr_log *log;
    int rc = msgr_log_create(path, &o, &log);
    if (rc)
        die("log create", rc);
    msgr_log_reader *rd = NULL;
    if ((rc = msgr_log_reader_open(log, "bench", &rd)))
        die("log reader", rc);
    msgr_log_reader_set_linger(rd, g_linger_min, g_linger_pauses); /* as the ring's consumer */
    control ctl = {0};
    file_job j = {log, size, count, zero_copy, &ctl};
    pthread_t th;
    pthread_create(&th, NULL, file_producer, &j);
    bench_pin_to(1);
    uint64_t t0 = bench_go(&ctl.start, 1);
    unsigned char *buf = malloc(size + 8);
    file_check k = {.size = size};
    if (zero_copy)
        take_from_log(rd, &k, count);
    for (uint64_t i = 0; i < count && !zero_copy; i++) {
        msgr_msg m;
        if ((rc = msgr_log_read_wait(rd, &m, 5000000000ll)))
            die("log read", rc);
        memcpy(buf, m.data, m.len);
        file_check_one(&k, &(msgr_msg){.data = buf, .len = m.len});
        if ((i & 15) == 15 || i + 1 == count)
            msgr_log_ack(rd, &m); /* acknowledges everything read so far */
    }
    uint64_t dt = bench_now_ns() - t0;
    bench_unpin();
    pthread_join(th, NULL);
    free(buf);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
    remove(path);
    if (k.bad)
        die("file: records out of order or damaged", MSGR_EIO);
    double secs = (double)dt / 1e9;
    result res = {"throughput", "file", zero_copy ? "zero-copy" : "copy", 1, size,
                  (double)count / secs, (double)count * (double)size / secs / 1e9, -1, -1, -1, 0, -1};
    res.sync = sync;
    return res;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static result run_latency(size_t size, uint64_t count)
{
    msgr_region *g = region_for(2);
    msgr_ring_opts o = {.capacity = CAPACITY};
    msgr_ring *ping, *pong;
    int rc = msgr_ring_create(ring_mem(g, 0), msgr_region_size(g), &o, &ping);
    if (!rc)
        rc = msgr_ring_create(ring_mem(g, 1), msgr_region_size(g), &o, &pong);
    if (rc)
        die("ring_create", rc);
    uint64_t warm = count / 10;
    pid_t pid = fork();
    if (pid == 0) { /* echo: spin on ping, answer on pong, zero-copy both ways */
        bench_pin_to(0);
        msgr_region_prefault(g); /* page tables are per process: a forked child faults anew */
        msgr_ring_set_wait(ping, UINT32_MAX, 0);
        msgr_ring_set_wait(pong, UINT32_MAX, 0);
        for (uint64_t i = 0; i < count + warm; i++) {
            msgr_msg m;
            msgr_claim c;
            if ((rc = msgr_ring_peek_wait(ping, &m, -1)) ||
                (rc = msgr_ring_claim_wait(pong, m.len, &c, -1)))
                die("echo", rc);
            memcpy(c.data, m.data, m.len);
            msgr_ring_release(ping, &m);
            msgr_ring_commit(pong, &c);
        }
        _exit(0);
    }
    msgr_ring_set_wait(ping, UINT32_MAX, 0);
    msgr_ring_set_wait(pong, UINT32_MAX, 0);
    bench_pin_to(1);
    uint64_t *rtt = malloc(count * sizeof *rtt);
    for (uint64_t i = 0; i < count + warm; i++) {
        msgr_claim c;
        msgr_msg m;
        uint64_t t0 = bench_now_ns();
        if ((rc = msgr_ring_claim_wait(ping, size, &c, -1)))
            die("claim", rc);
        memset(c.data, 0, size);
        memcpy(c.data, &i, 8);
        msgr_ring_commit(ping, &c);
        if ((rc = msgr_ring_peek_wait(pong, &m, -1)))
            die("peek", rc);
        uint64_t back;
        memcpy(&back, m.data, 8);
        msgr_ring_release(pong, &m);
        uint64_t t1 = bench_now_ns();
        if (back != i)
            die("latency: echo returned the wrong message", MSGR_EIO);
        if (i >= warm)
            rtt[i - warm] = t1 - t0;
    }
    int st;
    waitpid(pid, &st, 0);
    bench_unpin();
    qsort(rtt, count, sizeof *rtt, cmp_u64);
    result res = {"latency", "process", "zero-copy", 1, size, 0, 0,
                  (double)rtt[count / 2], (double)rtt[count * 99 / 100],
                  (double)rtt[count * 999 / 1000], 0, -1};
    res.msgs_s = 1e9 / res.p50; /* round trips/s at the median */
    res.gb_s = -1;
    free(rtt);
    msgr_ring_close(ping);
    msgr_ring_close(pong);
    msgr_region_close(g);
    return res;
}

static int cmp_rate(const void *a, const void *b)
{
    double x = ((const result *)a)->msgs_s, y = ((const result *)b)->msgs_s;
    return x < y ? -1 : x > y;
}

/* Runs a case `repeat` times after one discarded warm-up; returns the median run. */
static result median_throughput(const char *transport, int zc, int producers, size_t size,
                                uint64_t count, int repeat)
{
    result runs[16];
    run_throughput(transport, zc, producers, size, count / 4 + 1);
    for (int i = 0; i < repeat; i++)
        WITH_PLACEMENT(runs[i], run_throughput(transport, zc, producers, size, count));
    qsort(runs, (size_t)repeat, sizeof *runs, cmp_rate);
    return runs[repeat / 2];
}

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

static void interleaved(int slices, uint64_t per_slice, int csv)
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
static void linger_slices(int rounds, uint64_t per_slice, int csv)
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
