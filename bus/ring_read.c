/* messenger: the ring's consumer side: peek, release, poll, the waiting reads. One consumer
 * per ring; its position is private and published once per batch (ring.c).
 */
#include "ring_internal.h"
#include "ring_notify.h"

/* ---- consumer side ---- */

static inline void publish_head(msgr_ring *r)
{
    r->c_published = r->c_head;
    /* R2: release: our reads of the freed records happen before producers reuse the space;
     * pairs with A2 in load_head(). */
    atomic_store_explicit(&r->hdr->head, r->c_head, memory_order_release);
    msgr__wake_waiters(&r->wait, &r->hdr->prod_wait, 1); /* D1 (wait.h), producers' side */
}

/* MSGR_RING_CHECKSUM: 1 if the record at pos fails its CRC (damaged in shared memory by a
 * broken or hostile peer: counted, never delivered), 0 if it is intact, MSGR_ECORRUPT if its
 * trailer lies beyond the data area. */
MSGR_COLD int trailer_bad(msgr_ring *r, uint64_t pos, const msgr__rec *rec, uint64_t len)
{
    if ((pos & r->mask) + msgr__rec_size(len) + r->trailer > r->cap)
        return MSGR_ECORRUPT;
    uint32_t want;
    memcpy(&want, (const uint8_t *)rec + msgr__rec_size(len), 4);
    if (rec_crc(pos, (uint32_t)len, rec->type, rec->source, rec + 1) == want)
        return 0;
    atomic_fetch_add_explicit(&r->hdr->corrupt, 1, memory_order_relaxed);
    return 1;
}

MSGR_HOT int peek_one(msgr_ring *r, msgr_msg *m)
{
    for (;;) {
        uint64_t pos = r->c_head;
        msgr__rec *rec = rec_at(r, pos);
        /* A1: acquire pairs with R1 in msgr_ring_commit()/claim_fill(): the header fields and
         * payload are visible once the tag is. */
        uint64_t t = atomic_load_explicit(&rec->tag, memory_order_acquire) ^ r->salt;
        if ((t & ~MSGR__REC_FLAGS) != pos || !(t & MSGR__REC_COMMITTED)) {
            /* Spinning for latency: also fetch the next record's second line now, so that the
             * record's two lines cross in parallel, not one after the other once the tag
             * shows. Not while waiting for throughput: it pulls a line the producer writes. */
            if (r->wait.spins == UINT32_MAX && (pos & r->mask) + 128 <= r->cap)
                __builtin_prefetch((const char *)rec + 64);
            if (r->c_published != pos)
                publish_head(r); /* going idle: hand freed space back now */
            /* Now and then (not on every empty look: the tail is a line producers write), see
             * whether a claim is stuck here, and repair it if its producer died. */
            if ((r->flags & MSGR_RING_MPSC) && ++r->c_misses >= 1024) {
                r->c_misses = 0;
                if (msgr__ring_consumer_stuck(r, pos) > 0)
                    continue;
            }
            return MSGR_EAGAIN;
        }
        uint64_t len = rec->len;
        uint64_t off = pos & r->mask;
        /* The length comes from shared memory: bound it before use. */
        if (len > r->cap || off + msgr__rec_size(len) > r->cap)
            return MSGR_ECORRUPT;
        if (t & MSGR__REC_SKIP) {
            r->c_head = pos + msgr__rec_size(len);
            continue;
        }
        if (len > r->max_payload)
            return MSGR_ECORRUPT;
        if (__builtin_expect(r->trailer != 0, 0)) {
            int bad = trailer_bad(r, pos, rec, len);
            if (bad < 0)
                return bad;
            if (bad) {
                r->c_head = pos + msgr__rec_size(len) + r->trailer;
                continue;
            }
        }
        m->data = rec + 1;
        m->len = (uint32_t)len;
        m->type = rec->type;
        m->source = rec->source;
        m->pos_ = pos;
        m->size_ = (uint32_t)(msgr__rec_size(len) + r->trailer);
        return 0;
    }
}

int msgr_ring_peek(msgr_ring *r, msgr_msg *m)
{
    if (!r || !m)
        return MSGR_EINVAL;
    return peek_one(r, m);
}

static inline void consume(msgr_ring *r, const msgr_msg *m)
{
    r->c_head = m->pos_ + m->size_;
}

int msgr_ring_release(msgr_ring *r, const msgr_msg *m)
{
    if (!r || !m || m->pos_ != r->c_head)
        return MSGR_EINVAL;
    consume(r, m);
    /* Publishing per release costs one store to a consumer-owned line (producers read it only
     * when the ring looks full), and keeps "release frees the space" literally true; poll()
     * is the batched path. */
    publish_head(r);
    return 0;
}

static int try_peek(void *r, void *arg) { return msgr_ring_peek(r, arg); }

/* Before the consumer sleeps. A producer killed between its commit and its wake leaves a
 * record and nobody to wake us: so no sleep lasts longer than the claim timeout (an idle
 * consumer wakes once per claim timeout, 1 s by default, and sleeps again). With a claim
 * unfinished at its position (MPSC), it sleeps at most until that claim has been unfinished for
 * the claim timeout, then checks its producer. */
static int64_t cap_peek(void *self, void *arg)
{
    msgr_ring *r = self;
    (void)arg;
    if (!(r->flags & MSGR_RING_MPSC))
        return r->claim_timeout;
    int st = msgr__ring_consumer_stuck(r, r->c_head);
    if (st > 0)
        return 0;
    if (st == 0)
        return r->claim_timeout;
    uint64_t waited = msgr_os_now_ns() - r->c_blocked_since;
    int64_t left = r->claim_timeout - (int64_t)waited;
    return left > 1000000 ? left : 1000000;
}

int msgr_ring_peek_wait(msgr_ring *r, msgr_msg *m, int64_t timeout_ns)
{
    int rc = msgr_ring_peek(r, m);
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    /* A lingering consumer also looks less often while it waits (msgr_ring_set_linger). */
    /* Sleeps on cons_wait.futex; woken by a commit (msgr_ring_commit()), an abort or a repair.
     * A producer killed before its commit leaves its claim unfinished, one killed between its
     * commit and its wake leaves a record unannounced: cap_peek() bounds every sleep by the
     * claim timeout, checks a claim stuck at our position, and the repair wakes us. */
    return msgr__wait_until(&r->wait, try_peek, r, m, timeout_ns, &r->hdr->cons_wait, 0,
                            r->linger_pauses, cap_peek);
}

typedef struct readable_args {
    msgr_msg m;
    _Atomic uint32_t *cancel;
} readable_args;

/* The cancel flag is read after the waiter announced itself and passed its barrier (D2 in
 * wait.h), and the canceller sets it before its own barrier and its look at the announcement
 * (msgr__ring_wake_reader: D1): either the waiter sees the flag, or the canceller sees the
 * waiter and changes the futex word under it, exactly as for a commit. */
static int try_readable(void *r, void *arg)
{
    readable_args *a = arg;
    if (atomic_load_explicit(a->cancel, memory_order_seq_cst))
        return MSGR_ECANCELED;
    return msgr_ring_peek(r, &a->m);
}

int msgr__ring_wait_readable(msgr_ring *r, _Atomic uint32_t *cancel, int64_t timeout_ns)
{
    readable_args a = {.cancel = cancel};
    int rc = try_readable(r, &a);
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    /* Sleeps on cons_wait.futex like msgr_ring_peek_wait (same wakers, same caps), and also
     * woken by msgr__ring_wake_reader. */
    return msgr__wait_until(&r->wait, try_readable, r, &a, timeout_ns, &r->hdr->cons_wait, 0,
                            0, cap_peek);
}

void msgr__ring_wake_reader(msgr_ring *r) { msgr__wake_waiters(&r->wait, &r->hdr->cons_wait, 1); }

int msgr_ring_poll(msgr_ring *r, msgr_ring_handler fn, void *arg, unsigned max)
{
    if (!r || !fn)
        return MSGR_EINVAL;
    /* Linger: the last poll found the consumer right behind the producers. Looking again at
     * once would read the line they are writing and make it cross between the cores once per
     * record; a pause lets them move ahead, so this poll takes a batch that spans whole lines. */
    if (r->last_batch < r->linger_min) {
        msgr__pause_n(r->linger_pauses);
        /* Relaxed load and store: only this consumer writes it; others may read it. */
        atomic_store_explicit(&r->lingers,
                              atomic_load_explicit(&r->lingers, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    }
    unsigned n = 0;
    int rc = 0;
    msgr_msg m;
    while (n < max) {
        rc = peek_one(r, &m);
        if (rc)
            break;
        int stop = fn(arg, &m);
        consume(r, &m);
        n++;
        if (stop)
            break;
    }
    if (r->c_published != r->c_head)
        publish_head(r);
    /* Caught up only if the ring ran dry: a batch cut short by max or by the handler says
     * nothing about the producers, and lingering after it would throttle a consumer whose max
     * is below min_batch. */
    r->last_batch = rc == MSGR_EAGAIN ? n : UINT32_MAX;
    if (rc && rc != MSGR_EAGAIN && n == 0)
        return rc;
    return (int)n;
}

int msgr_ring_recv_wait(msgr_ring *r, void *buf, size_t cap, msgr_msg *info, int64_t timeout_ns)
{
    msgr_msg m;
    if (!r || (!buf && cap))
        return MSGR_EINVAL;
    int rc = msgr_ring_peek_wait(r, &m, timeout_ns);
    if (rc)
        return rc;
    if (info) {
        *info = m;
        info->data = buf;
    }
    if (m.len > cap)
        return MSGR_EMSGSIZE;
    if (m.len)
        memcpy(buf, m.data, m.len);
    msgr_ring_release(r, &m);
    return (int)m.len;
}

int msgr_ring_recv(msgr_ring *r, void *buf, size_t cap, msgr_msg *info)
{
    return msgr_ring_recv_wait(r, buf, cap, info, 0);
}
