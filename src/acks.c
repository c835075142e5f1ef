/* messenger: explicit acknowledgement (acks.h says what it does).
 *
 * The window is a ring of the records handed out, in read order, each with its sequence
 * number and whether it is acknowledged. A lock (a spin on an atomic flag, yielding) guards it:
 * the reading thread appends, any thread acknowledges; it is held for a few loads and stores,
 * and across the log's acknowledgement (whose sync policy may write) and the side file's
 * rewrite when an acknowledgement lands beyond the prefix.
 *
 * Sleeps: a reader whose window is full sleeps on `acked` (a process-local futex word), which
 * every acknowledgement bumps and wakes after releasing the lock; the sleep is bounded by the
 * caller's timeout, and the acknowledging threads are threads of this process.
 *
 * The side file is a journal: a magic word, then one sequence number per acknowledgement that
 * landed beyond the prefix, appended (one write each). Entries at or behind the prefix are
 * harmless (reading starts after the prefix), so the journal is only compacted, rewritten
 * whole to what is beyond the prefix now, when it reaches JOURNAL_MAX entries. It is input from
 * an earlier run: its length is bounded, a torn last entry (a kill mid-append) is dropped, and
 * anything but the magic at its start is refused.
 */
#include "acks.h"
#include "../bus/log_ack.h"
#include "msgr/error.h"
#include "os/error_detail.h"
#include "os/os.h"

#include <stdlib.h>
#include <string.h>

#define SIDE_MAGIC 0x314b4341524753ull /* "SGRACK1" */
#define JOURNAL_MAX(a) (4u * (a)->cap)   /* entries before the journal is compacted */

typedef struct entry {
    msgr_msg m;
    uint64_t seq;
    int acked;
} entry;

struct msgr__acks {
    atomic_flag lock;
    msgr_log_reader *rd;
    uint32_t cap, head, count; /* the window: entries [head, head + count) mod cap */
    entry *e;
    uint64_t *pre;             /* acknowledged before a restart (JOURNAL_MAX entries at most) */
    uint32_t n_pre;
    uint64_t *scratch;         /* the compacted journal's image */
    char *path;
    intptr_t journal;          /* appending to the side file */
    uint32_t journaled;        /* entries in it */
    uint64_t last_read;        /* the newest sequence number the window took (0: none yet) */
    _Atomic uint32_t acked;    /* bumped by every acknowledgement: a full window sleeps on it */
};

static void lock(msgr__acks *a)
{
    while (atomic_flag_test_and_set_explicit(&a->lock, memory_order_acquire))
        msgr_os_yield();
}

static void unlock(msgr__acks *a) { atomic_flag_clear_explicit(&a->lock, memory_order_release); }

static int load_side(msgr__acks *a)
{
    size_t cap = 8 + 8 * (size_t)JOURNAL_MAX(a);
    uint8_t *buf = malloc(cap + 1);
    if (!buf)
        return MSGR_ENOMEM;
    int n = msgr_os_read_file(a->path, buf, cap + 1);
    int rc = 0;
    if (n == MSGR_ENOENT) {
        n = 0;
    } else if (n < 0) {
        rc = n;
    } else if (n > 0) {
        uint64_t magic = 0;
        memcpy(&magic, buf, n < 8 ? (size_t)n : 8);
        if (n < 8 || magic != SIDE_MAGIC || (size_t)n > cap) {
            rc = msgr__fail(MSGR_ECORRUPT, "acknowledgement file '%s' is not one (or is for a "
                            "window larger than %u)", a->path, a->cap);
        } else {
            a->n_pre = (uint32_t)((size_t)(n - 8) / 8); /* a torn last entry is dropped */
            memcpy(a->pre, buf + 8, 8 * (size_t)a->n_pre);
        }
    }
    free(buf);
    return rc;
}

/* Under the lock: rewrites the journal to the acknowledged entries beyond the prefix, and
 * appends to that from now on. */
static int compact(msgr__acks *a)
{
    uint64_t *p = a->scratch;
    uint32_t k = 0;
    for (uint32_t i = 0; i < a->count; i++) {
        entry *e = &a->e[(a->head + i) % a->cap];
        if (e->acked)
            p[1 + k++] = e->seq;
    }
    /* and what an earlier run acknowledged that has not been read again yet */
    for (uint32_t i = 0; i < a->n_pre; i++)
        if (a->pre[i] > a->last_read || (a->last_read == 0 && a->count == 0))
            p[1 + k++] = a->pre[i];
    p[0] = SIDE_MAGIC;
    msgr_os_append_close(a->journal);
    a->journal = -1;
    int rc = msgr_os_write_file(a->path, p, 8 + 8 * (size_t)k);
    if (rc == 0)
        rc = msgr_os_append_open(a->path, &a->journal);
    a->journaled = k;
    return rc;
}

/* Under the lock: records that seq, beyond the prefix, is acknowledged. */
static int journal_ack(msgr__acks *a, uint64_t seq)
{
    if (a->journal < 0 || a->journaled >= JOURNAL_MAX(a))
        return compact(a); /* it holds seq too: seq is marked acknowledged already */
    a->journaled++;
    return msgr_os_append(a->journal, &seq, sizeof seq);
}

int msgr__acks_open(msgr_log_reader *rd, uint32_t window, const char *path, msgr__acks **out)
{
    msgr__acks *a = calloc(1, sizeof *a);
    if (!a)
        return MSGR_ENOMEM;
    atomic_flag_clear(&a->lock);
    a->rd = rd;
    a->cap = window;
    a->journal = -1;
    a->e = calloc(window, sizeof *a->e);
    a->pre = calloc(JOURNAL_MAX(a), sizeof *a->pre);
    a->scratch = calloc(window + JOURNAL_MAX(a) + 1, sizeof *a->scratch);
    a->path = malloc(strlen(path) + 1);
    int rc = a->e && a->pre && a->scratch && a->path ? 0 : MSGR_ENOMEM;
    if (rc == 0) {
        strcpy(a->path, path);
        rc = load_side(a);
    }
    if (rc == 0 && a->n_pre) { /* go on appending to what is there */
        a->journaled = a->n_pre;
        rc = msgr_os_append_open(a->path, &a->journal);
    }
    if (rc) {
        msgr__acks_close(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* Under the lock: moves the log's position past the acknowledged prefix. */
static int advance(msgr__acks *a)
{
    entry *last = NULL;
    while (a->count && a->e[a->head].acked) {
        last = &a->e[a->head];
        a->head = (a->head + 1) % a->cap;
        a->count--;
    }
    return last ? msgr__log_ack_from(a->rd, &last->m) : 0;
}

static int was_acked_before(msgr__acks *a, uint64_t seq)
{
    for (uint32_t i = 0; i < a->n_pre; i++)
        if (a->pre[i] == seq)
            return 1;
    return 0;
}

int msgr__acks_poll(msgr__acks *a, msgr_ring_handler fn, void *arg, unsigned max)
{
    unsigned n = 0;
    int rc = 0;
    while (n < max) {
        msgr_msg m;
        /* The read position is this thread's alone; the window's lock is for the appends. */
        if ((rc = msgr_log_read(a->rd, &m)))
            break;
        if (m.type == 0) {
            /* The runtime's own record (a stop): handed out even to a full window, so a stop
             * always gets through, and never part of the window (nobody acknowledges it: a
             * later prefix covers it, and an earlier run's is ignored after a restart). */
            n++;
            if (fn(arg, &m))
                break;
            continue;
        }
        lock(a);
        if (a->count == a->cap) {
            unlock(a);
            msgr__log_unread(a->rd, &m);
            break; /* full: held back until something is acknowledged */
        }
        uint64_t seq = msgr_log_seq(&m);
        int pre = a->n_pre && was_acked_before(a, seq);
        a->e[(a->head + a->count) % a->cap] = (entry){m, seq, pre};
        a->count++;
        a->last_read = seq;
        if (pre)
            rc = advance(a);
        unlock(a);
        if (rc)
            return rc;
        if (pre)
            continue; /* acknowledged in an earlier run: not handed out again */
        int stop = fn(arg, &m);
        n++;
        if (stop)
            break;
    }
    if (rc && rc != MSGR_EAGAIN && n == 0)
        return rc;
    return (int)n;
}

int msgr__acks_ack(msgr__acks *a, uint64_t seq)
{
    lock(a);
    /* Sequence numbers grow in read order: a binary search over the window. */
    uint32_t lo = 0, hi = a->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a->e[(a->head + mid) % a->cap].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    entry *e = lo < a->count ? &a->e[(a->head + lo) % a->cap] : NULL;
    int rc;
    if (!e || e->seq != seq || e->acked) {
        rc = msgr__fail(MSGR_EINVAL, "sequence number %llu is not a message handed out and "
                        "not yet acknowledged", (unsigned long long)seq);
    } else {
        e->acked = 1;
        if (lo == 0)
            rc = advance(a); /* the prefix grows: the log's position says it */
        else
            rc = journal_ack(a, seq); /* beyond the prefix: the journal says it */
    }
    unlock(a);
    atomic_fetch_add_explicit(&a->acked, 1, memory_order_release);
    msgr_os_futex_wake(&a->acked, INT32_MAX);
    return rc;
}

int msgr__acks_wait_room(msgr__acks *a, int64_t timeout_ns)
{
    uint32_t seen = atomic_load_explicit(&a->acked, memory_order_acquire);
    lock(a);
    int full = a->count == a->cap;
    unlock(a);
    if (full)
        msgr_os_futex_wait(&a->acked, seen, timeout_ns);
    return 0;
}

uint32_t msgr__acks_outstanding(msgr__acks *a)
{
    lock(a);
    uint32_t n = a->count;
    unlock(a);
    return n;
}

int msgr__acks_full(msgr__acks *a) { return msgr__acks_outstanding(a) == a->cap; }

_Atomic uint32_t *msgr__acks_word(msgr__acks *a) { return &a->acked; }

void msgr__acks_kick(msgr__acks *a)
{
    atomic_fetch_add_explicit(&a->acked, 1, memory_order_seq_cst);
    msgr_os_futex_wake(&a->acked, INT32_MAX);
}

void msgr__acks_close(msgr__acks *a)
{
    if (!a)
        return;
    msgr_os_append_close(a->journal);
    free(a->e);
    free(a->pre);
    free(a->scratch);
    free(a->path);
    free(a);
}
