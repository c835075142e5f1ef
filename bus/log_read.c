/* messenger: reading the persistent log: groups' readers, read, poll, linger and
 * acknowledgement. */
#include "log_internal.h"
#include "log_ack.h"
#include "hot.h"
#include "msgr/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- reading ---- */

/* A new group starts at the oldest retained record, so it misses nothing the log still holds. */
static uint64_t log_start(void *log)
{
    return atomic_load_explicit(&((msgr_log *)log)->hdr->start, memory_order_seq_cst);
}

int msgr_log_reader_open(msgr_log *log, const char *name, msgr_log_reader **out)
{
    if (!log || !out || !msgr__named_ok(name))
        return MSGR_EINVAL;
    int found = msgr__named_find_or_make(log->groups, log->hdr->max_groups, name, log_start, log);
    if (found < 0)
        return found;
    msgr__lgroup *g = &log->groups[found];
    int rc = msgr__named_own(g, log->pid, log->pid_start);
    if (rc)
        return rc;
    msgr_log_reader *rd = msgr__lalloc(sizeof *rd);
    if (!rd) {
        msgr__named_release(g);
        return MSGR_ENOMEM;
    }
    rd->log = log;
    rd->group = (uint32_t)found;
    rd->pos = msgr__durable_get(&g->pos);
    *out = rd;
    return 0;
}

void msgr_log_reader_close(msgr_log_reader *rd)
{
    if (!rd)
        return;
    msgr__named_release(&rd->log->groups[rd->group]);
    msgr_os_aligned_free(rd);
}

uint64_t msgr_log_seq(const msgr_msg *m) { return m ? m->pos_ : 0; }

uint64_t msgr_log_reader_acked(const msgr_log_reader *rd)
{
    return rd ? msgr__durable_get(&rd->log->groups[rd->group].pos) : 0;
}

uint64_t msgr_log_end(const msgr_log *log)
{
    return log ? atomic_load_explicit(&log->hdr->tail, memory_order_acquire) : 0;
}

/* The common case, a committed record right at the reader's position: 0, MSGR_ECORRUPT, or
 * 1 for anything else (read_once() looks further). */
MSGR_HOT int read_fast(msgr_log_reader *rd, msgr_msg *m)
{
    msgr_log *log = rd->log;
    uint64_t p = rd->pos;
    /* A1: acquire pairs with R1 in msgr_log_commit(). The length comes from the file: bounded
     * before use. */
    const msgr__lrec *fr = (const msgr__lrec *)(log->data + (p & log->mask));
    if ((atomic_load_explicit(&fr->tag, memory_order_acquire) ^ log->salt) !=
        (p | MSGR__L_COMMITTED))
        return 1;
    /* Below the oldest retained record only after msgr_log_clear() dropped what we had not
     * read: those records are gone (their space may be reused under us); read_once() resyncs.
     * A line written only when space is reclaimed: no transfer per record. */
    if (p < atomic_load_explicit(&log->hdr->start, memory_order_relaxed))
        return 1;
    uint64_t len = fr->len, size = msgr__lrec_size(len);
    if (len > log->max_payload || size > log->cap - (p & log->mask))
        return MSGR_ECORRUPT;
    msgr__lrec_msg(log, p, size, m);
    rd->pos = p + size;
    rd->misses = 0;
    rd->blocked_since = 0;
    return 0;
}

static int read_once(void *self, void *arg)
{
    msgr_log_reader *rd = self;
    msgr_msg *m = arg;
    msgr_log *log = rd->log;
    for (;;) {
        int rc = read_fast(rd, m);
        if (rc <= 0)
            return rc;
        uint64_t p = rd->pos;
        uint64_t start = atomic_load_explicit(&log->hdr->start, memory_order_acquire);
        if (p < start) {
            /* Dropped by msgr_log_clear(): go on from the group's new position. */
            uint64_t a = msgr__durable_get(&log->groups[rd->group].pos);
            rd->pos = a > start ? a : start;
            rd->blocked_since = 0;
            rd->misses = 0;
            continue;
        }
        uint32_t st = 0;
        /* Bounds are checked on every read; the CRC is not: a live reader takes a record whose
         * commit it observed in memory (the producer computed the CRC for after a crash, and
         * recovery and msgr_log_scan verify it). Checking it here too would cost a second CRC
         * per record, as much as the whole in-memory hand-off. */
        int64_t size = msgr__lrec_at(log, p, &st, 0);
        if (size < 0)
            return (int)size;
        if (size > 0 && (st & MSGR__L_COMMITTED)) {
            rd->blocked_since = 0;
            rd->misses = 0;
            if (st & MSGR__L_SKIP) {
                rd->pos = p + (uint64_t)size;
                continue;
            }
            msgr__lrec_msg(log, p, (uint64_t)size, m);
            rd->pos = p + (uint64_t)size;
            return 0;
        }
        /* Nothing committed at p: empty, or a claim in progress (maybe abandoned). The first
         * misses return at once: reading the tail (a line producers CAS) or the clock on every
         * empty look would slow the producers down; a claim is suspect only after a while. */
        if (++rd->misses < 1024)
            return MSGR_EAGAIN;
        if (p >= atomic_load_explicit(&log->hdr->tail, memory_order_acquire)) {
            rd->misses = 0;
            return MSGR_EAGAIN;
        }
        uint64_t now = msgr_os_now_ns();
        if (!rd->blocked_since)
            rd->blocked_since = now;
        if (now - rd->blocked_since < (uint64_t)log->claim_timeout || !msgr__lrepair(log, p))
            return MSGR_EAGAIN;
    }
}

static int read_wait(msgr_log_reader *rd, msgr_msg *m, int64_t timeout_ns);

int msgr_log_read(msgr_log_reader *rd, msgr_msg *m)
{
    return msgr_log_read_wait(rd, m, 0);
}

int msgr_log_read_wait(msgr_log_reader *rd, msgr_msg *m, int64_t timeout_ns)
{
    if (!rd || !m)
        return MSGR_EINVAL;
    int rc = read_once(rd, m);
    if (rc == 0)
        rd->run++;
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    /* Linger (msgr_log_reader_set_linger): caught up after a short run, so the next record is
     * being written in the line we would look at; each look would pull it across mid-write. */
    uint32_t run = rd->run;
    rd->run = 0;
    if (run < rd->linger_min) {
        msgr__pause_n(rd->linger_pauses);
        rd->lingers++;
        if ((rc = read_once(rd, m)) != MSGR_EAGAIN) {
            rd->run = rc == 0;
            return rc;
        }
    }
    rc = read_wait(rd, m, timeout_ns);
    rd->run = rc == 0;
    return rc;
}

int msgr_log_poll(msgr_log_reader *rd, msgr_ring_handler fn, void *arg, unsigned max)
{
    if (!rd || !fn)
        return MSGR_EINVAL;
    /* Linger, as msgr_ring_poll: right behind the producers last time, so pause first. */
    if (rd->last_batch < rd->linger_min) {
        msgr__pause_n(rd->linger_pauses);
        rd->lingers++;
    }
    unsigned n = 0;
    int rc = 0;
    msgr_msg m;
    while (n < max) {
        if ((rc = read_fast(rd, &m)) > 0)
            rc = read_once(rd, &m);
        if (rc)
            break;
        n++;
        if (fn(arg, &m))
            break;
    }
    rd->last_batch = rc == MSGR_EAGAIN ? n : UINT32_MAX; /* as msgr_ring_poll */
    rd->run = n; /* for msgr_log_read mixed in: records since a look found nothing, roughly */
    if (rc && rc != MSGR_EAGAIN && n == 0)
        return rc;
    return (int)n;
}

uint64_t msgr_log_reader_lingers(const msgr_log_reader *rd)
{
    return rd ? rd->lingers : 0;
}

void msgr_log_reader_set_linger(msgr_log_reader *rd, unsigned min_batch, uint32_t pauses)
{
    if (rd) {
        rd->linger_min = min_batch;
        rd->linger_pauses = msgr__linger_pauses(min_batch, pauses);
    }
}

/* The blocking part of msgr_log_read_wait(): the caller has just looked once. */
static int read_wait(msgr_log_reader *rd, msgr_msg *m, int64_t timeout_ns)
{
    int rc;
    /* Sleeps on data_wait.futex; woken by a commit. At least every claim_timeout it wakes and
     * looks again: a claim blocked by a dead producer is checked (and skipped), and a record
     * whose producer was killed between its commit and its wake is found. */
    msgr_log *log = rd->log;
    int64_t left = timeout_ns;
    for (;;) {
        int64_t slice = left < 0 || left > log->claim_timeout ? log->claim_timeout : left;
        rc = msgr__wait_until(&log->wait, read_once, rd, m, slice, &log->hdr->data_wait, 1,
                              rd->linger_pauses, NULL); /* sparser looks while lingering */
        if (rc != MSGR_ETIMEDOUT)
            return rc;
        if (left >= 0 && (left -= slice) <= 0)
            return MSGR_ETIMEDOUT;
        if ((rc = read_once(rd, m)) != MSGR_EAGAIN)
            return rc;
    }
}

int msgr_log_ack(msgr_log_reader *rd, const msgr_msg *m)
{
    if (!rd || !m || m->pos_ + m->size_ > rd->pos)
        return MSGR_EINVAL;
    return msgr__log_ack_from(rd, m);
}

int msgr__log_ack_from(msgr_log_reader *rd, const msgr_msg *m)
{
    msgr_log *log = rd->log;
    msgr__lgroup *g = &log->groups[rd->group];
    uint64_t to = m->pos_ + m->size_;
    if (to <= msgr__durable_get(&g->pos))
        return 0; /* already acknowledged */
    msgr__durable_set(&g->pos, to);
    int rc = msgr__lsync_after(log, g, sizeof *g);
    /* Producers reclaim space themselves (msgr__ladvance_start) when they find the log full;
     * sleeping ones only need a wake-up. D1 (wait.h). */
    msgr__wake_waiters(&log->wait, &log->hdr->space_wait, 1);
    return rc;
}

void msgr__log_unread(msgr_log_reader *rd, const msgr_msg *m) { rd->pos = m->pos_; }

int msgr__log_wait_readable(msgr_log_reader *rd, int64_t timeout_ns)
{
    msgr_msg m;
    int rc = msgr_log_read_wait(rd, &m, timeout_ns);
    if (rc == 0)
        msgr__log_unread(rd, &m);
    return rc;
}

typedef struct readable_args {
    msgr_msg m;
    _Atomic uint32_t *cancel;
} readable_args;

/* The flag is read after the waiter announced itself (D2 in wait.h); the canceller sets it
 * before its barrier and its look at the announcement (D1): one of them sees the other. */
static int try_readable(void *self, void *arg)
{
    readable_args *a = arg;
    if (atomic_load_explicit(a->cancel, memory_order_seq_cst))
        return MSGR_ECANCELED;
    return read_once(self, &a->m);
}

int msgr__log_wait_readable_or_cancel(msgr_log_reader *rd, _Atomic uint32_t *cancel)
{
    readable_args a = {.cancel = cancel};
    msgr_log *log = rd->log;
    int rc = try_readable(rd, &a);
    /* Sleeps on data_wait.futex (woken by a commit, or by msgr__log_wake_readers after a
     * cancel), at most a claim timeout at a time, as read_wait does. */
    while (rc == MSGR_EAGAIN || rc == MSGR_ETIMEDOUT)
        rc = msgr__wait_until(&log->wait, try_readable, rd, &a, log->claim_timeout,
                              &log->hdr->data_wait, 1, 0, NULL);
    if (rc == 0)
        msgr__log_unread(rd, &a.m);
    return rc;
}

void msgr__log_wake_readers(msgr_log *log) { msgr__wake_waiters(&log->wait, &log->hdr->data_wait, 1); }
