/* messenger: the repair of a dead producer's unfinished claim (MPSC rings; the argument is in
 * ring_layout.h). Everything here is a slow path: it runs only when a claim has stayed
 * unfinished for the claim timeout, or when a handle closes with claims of its own unfinished.
 */
#include "ring_internal.h"

/* The repair lock (pid, start time) in the header: one repairer at a time, so that a claim is
 * never padded twice (a second padding written after the consumer passed the first would land
 * on a later lap's record). A holder that died is replaced. Returns 1 when taken. */
static int repair_lock(msgr_ring *r)
{
    msgr__ring_hdr *h = r->hdr;
    int32_t holder = atomic_load_explicit(&h->repair_pid, memory_order_acquire);
    if (holder && (holder == r->pid ||
                   owner_alive(holder, atomic_load_explicit(&h->repair_start,
                                                            memory_order_relaxed))))
        return 0; /* someone is at it */
    /* Acquire on success: the dead or finished holder's padding is visible to us. */
    if (!atomic_compare_exchange_strong_explicit(&h->repair_pid, &holder, r->pid,
                                                 memory_order_acquire, memory_order_relaxed))
        return 0;
    atomic_store_explicit(&h->repair_start, r->pid_start, memory_order_relaxed);
    return 1;
}

static void repair_unlock(msgr_ring *r)
{
    atomic_store_explicit(&r->hdr->repair_start, 0, memory_order_relaxed);
    /* Release: our padding before the next holder's checks. */
    atomic_store_explicit(&r->hdr->repair_pid, 0, memory_order_release);
}

/* Under the repair lock: whether the unfinished claim at pos may be padded, and up to where
 * (*end: the next record boundary). *slot: the dead range that holds pos, -1 if none does. */
static int abandoned_extent(msgr_ring *r, uint64_t pos, uint64_t tail, uint64_t *end, int *slot)
{
    msgr__ring_hdr *h = r->hdr;
    int dead = -1;
    uint64_t stop = tail;
    for (uint32_t i = 0; i < MSGR__RING_SLOTS; i++) {
        msgr__rslot *p = &h->slots[i];
        int32_t pid = atomic_load_explicit(&p->pid, memory_order_acquire);
        uint64_t sp = atomic_load_explicit(&p->pos, memory_order_relaxed);
        uint64_t sz = atomic_load_explicit(&p->size, memory_order_relaxed);
        if (!pid || sp == MSGR__RPOS_NONE)
            continue;
        if (sp > pos) {
            if (sp < stop)
                stop = sp; /* another thread's oldest claim starts there */
            continue;
        }
        if (pos - sp >= sz)
            continue;
        if (owner_alive(pid, atomic_load_explicit(&p->start, memory_order_relaxed)))
            return 0; /* a live producer may own it: it will finish it */
        if (dead < 0 || sp + sz < stop)
            stop = sp + sz; /* the dead thread's claims end there at the latest */
        dead = (int)i;
    }
    if (dead < 0) {
        /* In no range: only a claim finished from another thread leaves that, or a hostile
         * peer. Safe only when every registered producer is dead. */
        for (uint32_t i = 0; i < MSGR__RING_SLOTS; i++) {
            msgr__rslot *p = &h->slots[i];
            int32_t pid = atomic_load_explicit(&p->pid, memory_order_acquire);
            if (pid && owner_alive(pid, atomic_load_explicit(&p->start, memory_order_relaxed)))
                return 0;
        }
    }
    /* The claim ends at the first record that names its own position (stale bytes never name
     * a current position, record.h), or at `stop`. */
    for (uint64_t q = pos + 16; q < stop && q - pos < r->cap - (pos & r->mask); q += 16)
        if (committed_at(r, q)) {
            stop = q;
            break;
        }
    *end = stop;
    *slot = dead;
    return 1;
}

/* Turns the unfinished claim at pos into padding if its producer is dead. Any side may call it
 * (the consumer stuck at pos, a producer waiting for space behind it). Returns 1 when pos holds
 * a finished record now (repaired here or by its producer), else 0. */
MSGR_COLD_SHARED int msgr__ring_repair_at(msgr_ring *r, uint64_t pos)
{
    msgr__ring_hdr *h = r->hdr;
    if (!(r->flags & MSGR_RING_MPSC))
        return 0;
    lock_handle(r);
    refresh_self(r, atomic_load_explicit(&msgr_os_fork_generation, memory_order_relaxed));
    unlock_handle(r);
    if (!repair_lock(r))
        return 0;
    int done = 0;
    /* Acquire: a claim's slot entry is stored before the CAS that reserved it (R4 in
     * claim_mpsc()), so with the tail past pos its slot is visible. */
    uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&h->head, memory_order_acquire);
    uint64_t end = 0;
    int slot = -1;
    if (committed_at(r, pos))
        done = 1;
    else if (pos >= head && pos < tail && !(pos & 15) && tail - head <= r->cap &&
             abandoned_extent(r, pos, tail, &end, &slot)) {
        /* Never straddle the end of the data area: what lies beyond is padded next time. */
        uint64_t contig = r->cap - (pos & r->mask);
        uint64_t stop = end > tail ? tail : end;
        if (stop > pos + contig)
            stop = pos + contig;
        if (stop >= pos + 16 && !(stop & 15)) {
            write_skip(r, pos, stop - pos, memory_order_release); /* R1 (padding) */
            msgr__rslot *d = slot >= 0 ? &h->slots[slot] : NULL;
            if (d && stop >= atomic_load_explicit(&d->pos, memory_order_relaxed) +
                                 atomic_load_explicit(&d->size, memory_order_relaxed)) {
                atomic_store_explicit(&d->count, 0, memory_order_relaxed);
                atomic_store_explicit(&d->pos, MSGR__RPOS_NONE, memory_order_relaxed);
            }
            atomic_fetch_add_explicit(&h->repaired, 1, memory_order_relaxed);
            done = 1;
        }
    }
    repair_unlock(r);
    if (done)
        msgr__wake_waiters(&r->wait, &h->cons_wait, 0); /* D1: the consumer may sleep on it */
    return done;
}

/* The consumer found nothing committed at pos: 1 if it was a dead producer's claim, padded
 * now (look again); 0 if nothing is claimed there; -1 if a claim is unfinished (not for long
 * enough yet, or its owner lives). */
MSGR_COLD_SHARED int msgr__ring_consumer_stuck(msgr_ring *r, uint64_t pos)
{
    uint64_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
    if (tail <= pos) {
        r->c_blocked_since = 0;
        return 0;
    }
    uint64_t now = msgr_os_now_ns();
    if (!r->c_blocked_since || r->c_blocked_pos != pos) {
        r->c_blocked_pos = pos;
        r->c_blocked_since = now;
        return -1;
    }
    if (now - r->c_blocked_since < (uint64_t)r->claim_timeout)
        return -1;
    if (msgr__ring_repair_at(r, pos)) {
        r->c_blocked_since = 0;
        return 1;
    }
    r->c_blocked_since = now; /* its owner lives (or another repairer is at it): later */
    return -1;
}

/* Closing with claims unfinished: pads every unfinished claim in the slot's range that is
 * ours. Our range may also hold other threads' claims, so this goes record by record from the
 * consumer's position, under the repair lock, padding only what msgr__ring_repair_at() would find
 * abandoned if we were dead: we check that by the range alone (no other live range holds it). */
MSGR_COLD_SHARED void msgr__ring_pad_own_claims(msgr_ring *r, msgr__rslot *mine, uint64_t sp)
{
    msgr__ring_hdr *h = r->hdr;
    uint64_t sz = atomic_load_explicit(&mine->size, memory_order_relaxed);
    if (sz > r->cap || !repair_lock(r))
        return; /* left for a repair after we die */
    uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&h->head, memory_order_acquire);
    uint64_t p = head > sp ? head : sp, end = sp + sz;
    int padded = 0;
    while (p < end && p < tail && !(p & 15)) {
        uint64_t size = 0;
        msgr__rec *rec = rec_at(r, p);
        if (committed_at(r, p)) {
            size = msgr__rec_size(rec->len) + (is_skip(r, p) ? 0 : r->trailer);
        } else {
            int other = 0;
            for (uint32_t i = 0; i < MSGR__RING_SLOTS && !other; i++) {
                msgr__rslot *o = &h->slots[i];
                uint64_t op = atomic_load_explicit(&o->pos, memory_order_relaxed);
                other = o != mine && atomic_load_explicit(&o->pid, memory_order_acquire) &&
                        op != MSGR__RPOS_NONE && op <= p &&
                        p - op < atomic_load_explicit(&o->size, memory_order_relaxed);
            }
            if (other)
                break; /* maybe another thread's: stop here, a later repair decides */
            uint64_t q = p + 16, limit = r->cap - (p & r->mask);
            while (q < end && q < tail && q - p < limit && !committed_at(r, q))
                q += 16;
            write_skip(r, p, q - p, memory_order_release); /* R1 (padding) */
            padded = 1;
            size = q - p;
        }
        if (size < 16 || size > r->cap - (p & r->mask))
            break; /* out of bounds: leave it */
        p += size;
    }
    repair_unlock(r);
    if (padded)
        msgr__wake_waiters(&r->wait, &h->cons_wait, 0);
}
