/* bench_compare: messenger as a transport: a ring in anonymous memory (threads), in named
 * shared memory (processes) and in a file, each zero-copy and copying. */
#define _GNU_SOURCE
#include "compare_run.h"

#include <messenger.h>

#include <sys/mman.h>


static void msgr_check(const char *what, int rc)
{
    if (rc)
        compare_fail(what, msgr_strerror(rc));
}

/* ---- messenger as a transport: ring in anonymous memory (threads), ring in named shared
 * memory (processes), persistent log file with sync none (processes) ---- */

enum { K_THREAD, K_PROCESS, K_FILE };

typedef struct {
    int kind, zero_copy;
    uint64_t capacity;
    size_t region_size;
    msgr_region *anon; /* K_THREAD */
    char name[128];    /* K_PROCESS: shm name; K_FILE: path prefix */
} m_shared;

typedef struct {
    m_shared *s;
    msgr_region *g;
    msgr_ring *tx, *rx;
    msgr_log *ltx, *lrx;
    msgr_log_reader *rd;
    msgr_msg last;
    unsigned unacked;
    uint64_t unacked_bytes;
    unsigned char *buf;
} m_ep;

static uint64_t m_capacity(size_t size)
{
    uint64_t c = 4u << 20; /* as ring_bench; room for 8 messages at the largest sizes */
    while (c < 8 * (uint64_t)size)
        c <<= 1;
    return c;
}

static void m_file_path(const m_shared *s, int dir, char *out, size_t n)
{
    snprintf(out, n, "%s.%s", s->name, dir ? "b2a" : "a2b");
}

static void *m_setup(int kind, int zc, size_t size, int producers, char *err, size_t errlen)
{
    m_shared *s = xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->zero_copy = zc;
    s->capacity = m_capacity(size);
    s->region_size = 2 * msgr_ring_footprint(s->capacity);
    int rc = 0;
    if (kind == K_FILE) {
        const char *dir = getenv("BENCH_DIR") ? getenv("BENCH_DIR") : "/tmp";
        char prefix[100];
        snprintf(prefix, sizeof prefix, "%s/", dir);
        unique_name(s->name, sizeof s->name, prefix, "");
        for (int d = 0; d < 2 && !rc; d++) {
            char path[160];
            m_file_path(s, d, path, sizeof path);
            remove(path);
            msgr_log_opts o = {.capacity = s->capacity, .sync = MSGR_SYNC_NONE};
            msgr_log *log;
            if (!(rc = msgr_log_create(path, &o, &log)))
                msgr_log_close(log);
        }
    } else {
        msgr_region *g;
        if (kind == K_THREAD) {
            rc = msgr_region_create_anon(s->region_size, NULL, &g);
        } else {
            unique_name(s->name, sizeof s->name, "/", "");
            msgr_region_unlink_shm(s->name);
            rc = msgr_region_create_shm(s->name, s->region_size, NULL, &g);
        }
        msgr_ring_opts o = {.capacity = s->capacity};
        for (int d = 0; d < 2 && !rc; d++) {
            o.flags = d == 0 && producers > 1 ? MSGR_RING_MPSC : 0;
            msgr_ring *r;
            char *mem = (char *)msgr_region_base(g) + d * msgr_ring_footprint(s->capacity);
            if (!(rc = msgr_ring_create(mem, msgr_ring_footprint(s->capacity), &o, &r)))
                msgr_ring_close(r);
        }
        /* page faults on first touch would otherwise land in the timed loop (a latency run
         * wraps the ring a few times: its first pass would make the p99); the threads of one
         * process share page tables, so once here serves every run of the case */
        if (kind == K_THREAD && !rc)
            rc = msgr_region_prefault(g);
        if (kind == K_THREAD)
            s->anon = g;
        else
            msgr_region_close(g); /* the segment stays until teardown unlinks it */
    }
    if (rc) {
        snprintf(err, errlen, "%s", msgr_strerror(rc));
        free(s);
        return NULL;
    }
    return s;
}

static void *m_thread_zc(size_t z, int p, char *e, size_t n) { return m_setup(K_THREAD, 1, z, p, e, n); }
static void *m_thread_cp(size_t z, int p, char *e, size_t n) { return m_setup(K_THREAD, 0, z, p, e, n); }
static void *m_proc_zc(size_t z, int p, char *e, size_t n) { return m_setup(K_PROCESS, 1, z, p, e, n); }
static void *m_proc_cp(size_t z, int p, char *e, size_t n) { return m_setup(K_PROCESS, 0, z, p, e, n); }
static void *m_file_zc(size_t z, int p, char *e, size_t n) { return m_setup(K_FILE, 1, z, p, e, n); }
static void *m_file_cp(size_t z, int p, char *e, size_t n) { return m_setup(K_FILE, 0, z, p, e, n); }

static void *m_open(void *shared, int side, int index)
{
    m_shared *s = shared;
    m_ep *e = xmalloc(sizeof *e);
    memset(e, 0, sizeof *e);
    e->s = s;
    int tx = side ? 1 : 0, rx = side ? 0 : 1;
    if (s->kind == K_FILE) {
        char path[160];
        m_file_path(s, tx, path, sizeof path);
        msgr_check("log open", msgr_log_open(path, NULL, &e->ltx, NULL));
        /* one reader per group: extra producers (index > 0) never receive */
        if (side == 1 || index == 0) {
            m_file_path(s, rx, path, sizeof path);
            msgr_check("log open", msgr_log_open(path, NULL, &e->lrx, NULL));
            msgr_check("log reader", msgr_log_reader_open(e->lrx, "bench", &e->rd));
            msgr_log_reader_set_linger(e->rd, 256, 512); /* as the ring's batch consumer */
        }
    } else {
        if (s->kind == K_THREAD)
            e->g = s->anon;
        else /* page tables are per process: each process prefaults its own mapping */
            msgr_check("shm open", msgr_region_open_shm(s->name, &e->g));
        if (s->kind == K_PROCESS)
            msgr_check("prefault", msgr_region_prefault(e->g));
        size_t fp = msgr_ring_footprint(s->capacity);
        char *base = msgr_region_base(e->g);
        msgr_check("ring attach", msgr_ring_attach(base + tx * fp, fp, NULL, &e->tx));
        msgr_check("ring attach", msgr_ring_attach(base + rx * fp, fp, NULL, &e->rx));
        msgr_ring_set_linger(e->rx, 256, 512); /* for the batch consumer (m_drain), as ring_bench */
    }
    return e;
}

static unsigned char *m_buf(m_ep *e, size_t size)
{
    if (!e->buf)
        e->buf = xmalloc(size);
    return e->buf;
}

static void m_put(void *ep, uint64_t tag, size_t size)
{
    m_ep *e = ep;
    msgr_claim c;
    if (e->s->kind == K_FILE) {
        if (e->s->zero_copy) {
            msgr_check("log claim", msgr_log_claim_wait(e->ltx, size, &c, -1));
            payload_fill(c.data, tag, size);
            msgr_check("log commit", msgr_log_commit(e->ltx, &c));
        } else {
            payload_fill(m_buf(e, size), tag, size);
            msgr_check("log append", msgr_log_append_wait(e->ltx, 0, e->buf, size, -1));
        }
    } else if (e->s->zero_copy) {
        msgr_check("claim", msgr_ring_claim_wait(e->tx, size, &c, -1));
        payload_fill(c.data, tag, size);
        msgr_check("commit", msgr_ring_commit(e->tx, &c));
    } else {
        payload_fill(m_buf(e, size), tag, size);
        msgr_check("send", msgr_ring_send_wait(e->tx, 0, e->buf, size, -1));
    }
}

static uint64_t m_get(void *ep, size_t size)
{
    m_ep *e = ep;
    msgr_msg m;
    uint64_t tag;
    if (e->s->kind == K_FILE) {
        msgr_check("log read", msgr_log_read_wait(e->rd, &m, -1));
        if (m.len != size)
            return TAG_BAD;
        if (e->s->zero_copy) {
            tag = payload_tag(m.data, size);
        } else {
            memcpy(m_buf(e, size), m.data, size);
            tag = payload_tag(e->buf, size);
        }
        e->last = m;
        e->unacked_bytes += size;
        /* every 16 records, or sooner for big ones: the producer waits for acknowledged space */
        if (++e->unacked == 16 || e->unacked_bytes >= e->s->capacity / 8) {
            msgr_check("log ack", msgr_log_ack(e->rd, &m));
            e->unacked = 0;
            e->unacked_bytes = 0;
        }
        return tag;
    }
    if (e->s->zero_copy) {
        msgr_check("peek", msgr_ring_peek_wait(e->rx, &m, -1));
        tag = m.len == size ? payload_tag(m.data, size) : TAG_BAD;
        msgr_check("release", msgr_ring_release(e->rx, &m));
        return tag;
    }
    int n = msgr_ring_recv_wait(e->rx, m_buf(e, size), size, &m, -1);
    if (n < 0)
        compare_fail("recv", msgr_strerror(n));
    return (size_t)n == size ? payload_tag(e->buf, size) : TAG_BAD;
}

typedef struct {
    uint64_t *tags;
    size_t size;
    unsigned n;
} m_batch;

static int m_on_msg(void *arg, const msgr_msg *m)
{
    m_batch *b = arg;
    b->tags[b->n++] = m->len == b->size ? payload_tag(m->data, b->size) : TAG_BAD;
    return 0;
}

/* Zero-copy ring consumer: msgr_ring_poll hands over a batch and releases it at once. */
static unsigned m_drain(void *ep, size_t size, uint64_t *tags, unsigned max)
{
    m_ep *e = ep;
    m_batch b = {tags, size, 0};
    for (;;) {
        int n = msgr_ring_poll(e->rx, m_on_msg, &b, max);
        if (n < 0)
            compare_fail("poll", msgr_strerror(n));
        if (n > 0)
            return b.n;
        msgr_msg m;
        msgr_check("peek", msgr_ring_peek_wait(e->rx, &m, -1)); /* wait for the next one */
    }
}

static void m_close(void *ep)
{
    m_ep *e = ep;
    if (e->s->kind == K_FILE) {
        if (e->rd && e->unacked)
            msgr_check("log ack", msgr_log_ack(e->rd, &e->last));
        msgr_log_reader_close(e->rd);
        msgr_log_close(e->ltx);
        if (e->lrx)
            msgr_log_close(e->lrx);
    } else {
        msgr_ring_close(e->tx);
        msgr_ring_close(e->rx);
        if (e->s->kind == K_PROCESS)
            msgr_region_close(e->g);
    }
    free(e->buf);
    free(e);
}

/* A latency-sensitive user keeps the receiving thread spinning (never sleeping), which also
 * makes it look after every pause instead of backing off (bus/wait.c); the default policy,
 * used for throughput, backs off between looks and sleeps after ~1 ms. */
static void m_tune_latency(void *ep)
{
    m_ep *e = ep;
    if (e->tx) {
        msgr_ring_set_wait(e->tx, UINT32_MAX, 0);
        msgr_ring_set_wait(e->rx, UINT32_MAX, 0);
    }
    if (e->rd) /* a ping-pong reader always follows a miss: the linger would be pure delay */
        msgr_log_reader_set_linger(e->rd, 0, 0);
}

static void m_teardown(void *shared)
{
    m_shared *s = shared;
    if (s->kind == K_THREAD) {
        msgr_region_close(s->anon);
    } else if (s->kind == K_PROCESS) {
        msgr_region_unlink_shm(s->name);
    } else {
        for (int d = 0; d < 2; d++) {
            char path[160];
            m_file_path(s, d, path, sizeof path);
            remove(path);
        }
    }
    free(s);
}

const transport messenger[N_MESSENGER] = {
    {"thread", "zero-copy", 0, 4, NULL, m_thread_zc, m_open, m_put, m_get, m_drain, m_close, m_teardown, m_tune_latency},
    {"thread", "copy", 0, 4, NULL, m_thread_cp, m_open, m_put, m_get, NULL, m_close, m_teardown, m_tune_latency},
    {"process", "zero-copy", 1, 4, NULL, m_proc_zc, m_open, m_put, m_get, m_drain, m_close, m_teardown, m_tune_latency},
    {"process", "copy", 1, 4, NULL, m_proc_cp, m_open, m_put, m_get, NULL, m_close, m_teardown, m_tune_latency},
    {"file", "zero-copy", 1, 4, NULL, m_file_zc, m_open, m_put, m_get, NULL, m_close, m_teardown, m_tune_latency},
    {"file", "copy", 1, 4, NULL, m_file_cp, m_open, m_put, m_get, NULL, m_close, m_teardown, m_tune_latency},
};

