/* ring_bench: running one case: ring throughput between threads or processes, zero-copy or
 * copying, the persistent log, and the process-to-process latency. */
#define _GNU_SOURCE
#include "ring_bench.h"

#include <pthread.h>
#include <sys/wait.h>

unsigned g_linger_min = 256, g_linger_pauses = 512;

typedef struct {
    msgr_ring *ring; /* creator's handle; process peers attach their own */
    control *ctl;
    int zero_copy;
    size_t size;
    uint64_t count; /* per producer */
    int id;
    int producers;
} job;

void *ring_mem(msgr_region *g, int i)
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

/* The zero-copy consumer: polls batches until k has taken `count` more messages; when there
 * is none, waits for one. */
void take_from_ring(msgr_ring *ring, check *k, uint64_t count)
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

msgr_region *region_for(int rings)
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
void take_from_log(msgr_log_reader *rd, file_check *k, uint64_t count)
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
void log_path(char *buf, size_t n)
{
    const char *dir = getenv("BENCH_DIR");
    snprintf(buf, n, "%s/ring_bench-%d.log", dir ? dir : "/tmp", (int)getpid());
}

result run_file(uint32_t sync, int zero_copy, size_t size, uint64_t count)
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

result run_latency(size_t size, uint64_t count)
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

int cmp_rate(const void *a, const void *b)
{
    double x = ((const result *)a)->msgs_s, y = ((const result *)b)->msgs_s;
    return x < y ? -1 : x > y;
}

/* Runs a case `repeat` times after one discarded warm-up; returns the median run. */
result median_throughput(const char *transport, int zc, int producers, size_t size,
                                uint64_t count, int repeat)
{
    result runs[16];
    run_throughput(transport, zc, producers, size, count / 4 + 1);
    for (int i = 0; i < repeat; i++)
        WITH_PLACEMENT(runs[i], run_throughput(transport, zc, producers, size, count));
    qsort(runs, (size_t)repeat, sizeof *runs, cmp_rate);
    return runs[repeat / 2];
}
