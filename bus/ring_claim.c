/* messenger: the ring's producer side: claims, commits, abandons, the waiting send, and the
 * MPSC producer slots that let a dead producer's claim be found (ring_layout.h).
 */
#include "ring_internal.h"

#include <stdlib.h>

/* The calling thread's producer slot for a handle (MPSC), cached: valid while the key names
 * the handle and no fork() happened since (the child is another process). */
static MSGR_TLS uint64_t tl_ring_id; /* 0 in a forked child (ring_fork_child()) */
static MSGR_TLS uint32_t tl_ring_slot;
static _Atomic uint64_t ring_ids;

/* In a forked child (only the forking thread exists there): its cached slot belongs to the
 * parent process. */
static void ring_fork_child(void) { tl_ring_id = 0; }

/* Called once per new handle: its id for the thread-local slot cache, and this process. */
void msgr__ring_producer_init(msgr_ring *r)
{
    r->id = atomic_fetch_add_explicit(&ring_ids, 1, memory_order_relaxed) + 1;
    atomic_flag_clear(&r->lock);
    msgr_os_fork_watch(ring_fork_child);
    r->self_gen = atomic_load_explicit(&msgr_os_fork_generation, memory_order_relaxed);
    r->pid = msgr_os_pid();
    msgr_os_proc_start(r->pid, &r->pid_start);
}

/* The calling thread's slot for this handle: found in the handle's map, or a free one taken
 * (free: never used, or its owner is dead and it names no claim: a dead owner's claim is the
 * evidence a repair needs). Index, or MSGR_ENOSPC. */
MSGR_COLD int slot_take(msgr_ring *r, uint32_t gen)
{
    msgr__ring_hdr *h = r->hdr;
    uintptr_t me = (uintptr_t)&tl_ring_id; /* a thread-local's address names the thread */
    int slot = MSGR_ENOSPC;
    lock_handle(r);
    refresh_self(r, gen);
    for (uint32_t i = 0; i < r->n_map && slot < 0; i++)
        if (r->map[i].thread == me)
            slot = (int)r->map[i].slot;
    for (uint32_t i = 0; i < MSGR__RING_SLOTS && slot < 0 && r->n_map < MSGR__RING_SLOTS; i++) {
        msgr__rslot *p = &h->slots[i];
        int32_t pid = atomic_load_explicit(&p->pid, memory_order_acquire);
        int free_slot = pid == 0 ||
                        (pid > 0 && pid != r->pid &&
                         atomic_load_explicit(&p->pos, memory_order_acquire) == MSGR__RPOS_NONE &&
                         !owner_alive(pid, atomic_load_explicit(&p->start, memory_order_relaxed)));
        /* Taken in two steps, so that nobody ever sees our pid beside the dead owner's start
         * time (and takes us for dead): -pid while the start time is written, then pid. */
        if (!free_slot || !atomic_compare_exchange_strong(&p->pid, &pid, -r->pid))
            continue;
        atomic_store_explicit(&p->start, r->pid_start, memory_order_relaxed);
        atomic_store_explicit(&p->pos, MSGR__RPOS_NONE, memory_order_relaxed);
        atomic_store_explicit(&p->count, 0, memory_order_relaxed);
        atomic_store_explicit(&p->pid, r->pid, memory_order_release);
        r->map[r->n_map].thread = me;
        r->map[r->n_map].slot = i;
        r->n_map++;
        slot = (int)i;
    }
    unlock_handle(r);
    if (slot >= 0) {
        tl_ring_id = r->id;
        tl_ring_slot = (uint32_t)slot;
    }
    return slot;
}

/* Gives this handle's producer slots back. A slot still naming a claim that is unfinished
 * (the thread never committed it) turns the claim into padding first: nobody else would, since
 * this process lives on. */
void msgr__ring_release_slots(msgr_ring *r)
{
    msgr__ring_hdr *h = r->hdr;
    lock_handle(r);
    uint32_t gen = atomic_load_explicit(&msgr_os_fork_generation, memory_order_relaxed);
    if (r->self_gen != gen)
        r->n_map = 0; /* a forked child closing its copy: the parent's slots are not ours */
    for (uint32_t i = 0; i < r->n_map; i++) {
        msgr__rslot *p = &h->slots[r->map[i].slot];
        uint64_t sp = atomic_load_explicit(&p->pos, memory_order_relaxed);
        if (sp != MSGR__RPOS_NONE)
            msgr__ring_pad_own_claims(r, p, sp);
        atomic_store_explicit(&p->count, 0, memory_order_relaxed);
        atomic_store_explicit(&p->pos, MSGR__RPOS_NONE, memory_order_relaxed);
        /* Release: the padding above before the slot can be taken again. */
        atomic_store_explicit(&p->pid, 0, memory_order_release);
    }
    r->n_map = 0;
    unlock_handle(r);
    if (tl_ring_id == r->id)
        tl_ring_id = 0;
}

/* ---- producer side ---- */

/* Space needed at pos for a record of `size` bytes: the record, plus padding to the end of the
 * data area when it would straddle it. */
static inline uint64_t space_needed(const msgr_ring *r, uint64_t pos, uint64_t size,
                                    uint64_t *pad)
{
    uint64_t contig = r->cap - (pos & r->mask);
    *pad = size > contig ? contig : 0;
    return *pad + size;
}

/* Fills the claim and writes the padding record, if any. pos is where padding (or the record)
 * starts; the caller owns [pos, pos + pad + size). */
static inline void claim_fill(msgr_ring *r, uint64_t pos, uint64_t pad, uint64_t size,
                              size_t len, msgr_claim *c)
{
    if (pad) {
        /* Relaxed would do for SPSC (the record's release tag orders it), but in MPSC another
         * producer's record may follow and be committed first; release makes the padding
         * visible by itself. R1 (padding): pairs with A1 in msgr_ring_peek(). */
        write_skip(r, pos, pad, memory_order_release);
        pos += pad;
    }
    msgr__claim_set(c, r->data + (pos & r->mask) + sizeof(msgr__rec), pos, size, len);
}

static int claim_spsc(msgr_ring *r, uint64_t size, size_t len, msgr_claim *c)
{
    uint64_t pos = r->p_tail, pad, head;
    uint64_t need = space_needed(r, pos, size, &pad);
    /* A3: the cache forwards A2's synchronisation to whichever producer thread reads it
     * (pairs with R3 below); on x86 both are plain moves. */
    head = atomic_load_explicit(&r->p_head_cache, memory_order_acquire);
    if (pos + need - head > r->cap) {
        int rc = load_head(r, pos, &head);
        if (rc)
            return rc;
        /* R3: pairs with A3. */
        atomic_store_explicit(&r->p_head_cache, head, memory_order_release);
        if (pos + need - head > r->cap)
            return MSGR_EAGAIN;
    }
    r->p_tail = pos + need;
    claim_fill(r, pos, pad, size, len, c);
    return 0;
}

MSGR_HOT int claim_mpsc(msgr_ring *r, msgr__rslot *slot, uint64_t size, size_t len,
                        msgr_claim *c)
{
    msgr__ring_hdr *h = r->hdr;
    /* The slot's range covers this thread's claims; a failed attempt puts it back. */
    uint32_t held = atomic_load_explicit(&slot->count, memory_order_relaxed);
    uint64_t was_pos = MSGR__RPOS_NONE, was_size = 0;
    if (held) {
        was_pos = atomic_load_explicit(&slot->pos, memory_order_relaxed);
        was_size = atomic_load_explicit(&slot->size, memory_order_relaxed);
    }
    uint64_t pos = atomic_load_explicit(&h->tail, memory_order_relaxed);
    for (;;) {
        uint64_t pad, head;
        uint64_t need = space_needed(r, pos, size, &pad);
        /* A3: see claim_spsc(). Without it a producer thread could reuse space another
         * thread saw freed, with no happens-before from the consumer's last reads. */
        head = atomic_load_explicit(&r->p_head_cache, memory_order_acquire);
        if (head > pos || pos + need - head > r->cap) {
            /* A2: acquire pairs with R2 in publish_head() (see load_head()). */
            head = atomic_load_explicit(&h->head, memory_order_acquire);
            if (head > pos) {
                /* Our tail is stale (others reserved and the consumer moved on): reload. Only
                 * a head beyond a fresh tail is impossible, hence corrupt. */
                pos = atomic_load_explicit(&h->tail, memory_order_relaxed);
                if (head > pos)
                    return MSGR_ECORRUPT;
                continue;
            }
            if (pos - head > r->cap || (head & 15))
                return MSGR_ECORRUPT;
            atomic_store_explicit(&r->p_head_cache, head, memory_order_release); /* R3 */
            if (pos + need - head > r->cap) {
                atomic_store_explicit(&slot->size, was_size, memory_order_relaxed);
                atomic_store_explicit(&slot->pos, was_pos, memory_order_relaxed);
                return MSGR_EAGAIN;
            }
        }
        /* The reservation we are about to try goes into our slot's range first, so that
         * whoever finds it unfinished later can tell whose it may be (a thread killed right
         * after the CAS has covered it already). Our own line: no other thread writes it. */
        if (was_pos == MSGR__RPOS_NONE || pos < was_pos) {
            atomic_store_explicit(&slot->size, need, memory_order_relaxed);
            atomic_store_explicit(&slot->pos, pos, memory_order_relaxed);
        } else {
            atomic_store_explicit(&slot->size, pos + need - was_pos, memory_order_relaxed);
        }
        /* R4: release orders the slot stores above before the reservation; pairs with the
         * acquire load of tail in msgr__ring_repair_at(). It only reserves bytes: the payload is published
         * by the record's release tag (R1), and the space's reuse was checked with the acquire
         * A2 above. On failure pos is reloaded and the check repeats. */
        if (atomic_compare_exchange_weak_explicit(&h->tail, &pos, pos + need,
                                                  memory_order_release, memory_order_relaxed)) {
            claim_fill(r, pos, pad, size, len, c);
            atomic_store_explicit(&slot->count, held + 1, memory_order_relaxed);
            return 0;
        }
    }
}

/* The first claim of this thread through this handle (or after another handle's): takes or
 * finds its slot, then claims. */
MSGR_COLD int claim_mpsc_slow(msgr_ring *r, uint64_t size, size_t len, msgr_claim *c)
{
    int si = slot_take(r, atomic_load_explicit(&msgr_os_fork_generation, memory_order_relaxed));
    if (si < 0)
        return si;
    return claim_mpsc(r, &r->hdr->slots[si], size, len, c);
}

/* A claim of the calling thread is committed or aborted: when it holds none any more, its
 * slot's range is cleared. After the tag store: killed in between, the range covers a
 * finished record, which a repair leaves alone. A claim must be finished on the thread that
 * made it (another thread has no count to lower). */
static inline void slot_release_one(msgr__rslot *slot)
{
    uint32_t held = atomic_load_explicit(&slot->count, memory_order_relaxed);
    if (!held)
        return;
    atomic_store_explicit(&slot->count, held - 1, memory_order_relaxed);
    if (held == 1)
        atomic_store_explicit(&slot->pos, MSGR__RPOS_NONE, memory_order_relaxed);
}

MSGR_COLD void slot_done_slow(msgr_ring *r)
{
    int si = slot_take(r, atomic_load_explicit(&msgr_os_fork_generation, memory_order_relaxed));
    if (si >= 0)
        slot_release_one(&r->hdr->slots[si]);
}

MSGR_HOT void slot_done(msgr_ring *r)
{
    if (__builtin_expect(tl_ring_id == r->id, 1))
        slot_release_one(&r->hdr->slots[tl_ring_slot]);
    else
        slot_done_slow(r);
}

int msgr_ring_claim(msgr_ring *r, size_t len, msgr_claim *c)
{
    if (!r || !c)
        return MSGR_EINVAL;
    if (len > r->max_payload)
        return MSGR_EMSGSIZE;
    uint64_t size = msgr__rec_size(len) + r->trailer;
    if (!(r->flags & MSGR_RING_MPSC))
        return claim_spsc(r, size, len, c);
    if (__builtin_expect(tl_ring_id != r->id, 0))
        return claim_mpsc_slow(r, size, len, c);
    return claim_mpsc(r, &r->hdr->slots[tl_ring_slot], size, len, c);
}

/* MSGR_RING_CHECKSUM: the record's CRC, in the 16 bytes after its payload. */
MSGR_COLD void write_trailer(const msgr_claim *c, msgr__rec *rec)
{
    uint32_t crc = rec_crc(c->pos_, c->len, c->type, c->source, c->data);
    memcpy((uint8_t *)rec + msgr__rec_size(c->len), &crc, 4);
}

int msgr_ring_commit(msgr_ring *r, msgr_claim *c)
{
    if (!r || !c)
        return MSGR_EINVAL;
    uint64_t asz = msgr__rec_size(c->len) + r->trailer;
    if (c->len > c->claimed_ || asz > c->size_)
        return MSGR_EINVAL;
    if (asz < c->size_) /* committed shorter than claimed: the rest becomes padding */
        write_skip(r, c->pos_ + asz, c->size_ - asz, memory_order_relaxed);
    msgr__rec *rec = rec_at(r, c->pos_);
    if (__builtin_expect(r->trailer != 0, 0))
        write_trailer(c, rec);
    rec->len = c->len;
    rec->type = c->type;
    rec->source = c->source;
    /* R1: release publishes the payload and header fields written above (and the padding);
     * pairs with A1 in msgr_ring_peek(). */
    atomic_store_explicit(&rec->tag, (c->pos_ | MSGR__REC_COMMITTED) ^ r->salt,
                          memory_order_release);
    if (!(r->flags & MSGR_RING_MPSC))
        /* Producer-owned line: kept for attach and stats, never read on the fast path. */
        atomic_store_explicit(&r->hdr->tail, c->pos_ + c->size_, memory_order_release);
    else
        slot_done(r);
    /* D1 (wait.h): wake the consumer if it announced that it sleeps. */
    msgr__wake_waiters(&r->wait, &r->hdr->cons_wait, 0);
    c->size_ = 0; /* a second commit of the same claim is refused */
    return 0;
}

int msgr_ring_abandon(msgr_ring *r, msgr_claim *c)
{
    if (!r || !c || c->size_ < sizeof(msgr__rec))
        return MSGR_EINVAL;
    /* R1 (padding): the consumer steps over it; pairs with A1 in msgr_ring_peek(). */
    write_skip(r, c->pos_, c->size_, memory_order_release);
    if (!(r->flags & MSGR_RING_MPSC))
        atomic_store_explicit(&r->hdr->tail, c->pos_ + c->size_, memory_order_release);
    else
        slot_done(r);
    msgr__wake_waiters(&r->wait, &r->hdr->cons_wait, 0); /* it may wait for this position */
    c->size_ = 0;
    return 0;
}

typedef struct {
    size_t len;
    msgr_claim *c;
    uint64_t blocked_head, blocked_since; /* MPSC: the head we wait behind, since when */
} claim_args;

static int try_claim(void *r, void *arg)
{
    claim_args *a = arg;
    return msgr_ring_claim(r, a->len, a->c);
}

/* Before a producer waiting for space sleeps (MPSC): the space may be held by a dead
 * producer's claim at the head, and a consumer asleep behind it is woken by nobody. So the
 * sleep is bounded by the claim timeout, and once the head has stayed put that long the claim
 * there is checked (msgr__ring_repair_at() wakes the consumer when it pads it). */
static int64_t cap_claim(void *self, void *arg)
{
    msgr_ring *r = self;
    claim_args *a = arg;
    if (!(r->flags & MSGR_RING_MPSC))
        return r->claim_timeout; /* a dead consumer's last wake may be lost: look again */
    uint64_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
    uint64_t now = msgr_os_now_ns();
    if (!a->blocked_since || head != a->blocked_head) {
        a->blocked_head = head;
        a->blocked_since = now;
    } else if (now - a->blocked_since >= (uint64_t)r->claim_timeout) {
        a->blocked_since = now;
        if (msgr__ring_repair_at(r, head))
            return 0; /* the consumer will free the space: look again soon */
    }
    return r->claim_timeout;
}

int msgr_ring_claim_wait(msgr_ring *r, size_t len, msgr_claim *c, int64_t timeout_ns)
{
    if (!r || !c)
        return MSGR_EINVAL;
    int rc = msgr_ring_claim(r, len, c);
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    claim_args a = {len, c, 0, 0};
    /* Sleeps on prod_wait.futex; woken by the consumer publishing its head (publish_head()).
     * A consumer killed between publishing and waking leaves free space and nobody to wake
     * us, and a dead producer's claim at the head holds space nobody else frees: so no sleep
     * lasts longer than the claim timeout, and the claim at the head is checked (cap_claim()). */
    return msgr__wait_until(&r->wait, try_claim, r, &a, timeout_ns, &r->hdr->prod_wait, 1, 0,
                            cap_claim);
}

int msgr_ring_send_wait(msgr_ring *r, uint16_t type, const void *data, size_t len,
                        int64_t timeout_ns)
{
    msgr_claim c;
    if (!data && len)
        return MSGR_EINVAL;
    int rc = msgr_ring_claim_wait(r, len, &c, timeout_ns);
    if (rc)
        return rc;
    if (len)
        memcpy(c.data, data, len);
    c.type = type;
    return msgr_ring_commit(r, &c);
}

int msgr_ring_send(msgr_ring *r, uint16_t type, const void *data, size_t len)
{
    return msgr_ring_send_wait(r, type, data, len, 0);
}
