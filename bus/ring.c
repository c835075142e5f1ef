/* messenger: the lock-free ring.
 *
 * Fast path (how one record moves):
 *   - Each side keeps its own position privately (p_tail, c_head). The consumer learns that a
 *     record is there from the record's own tag (one line it must read anyway); it never reads
 *     the producer's position. The producer reads the consumer's published head only when its
 *     cached copy says the ring is full.
 *   - The consumer publishes head once per poll() batch, or per release() when records are
 *     consumed one by one (one store to a line only it writes).
 *   - No shared line is written by both sides on the fast path.
 *
 * Sleeping without lost wake-ups and without a fence per record: see wait.h.
 */
#include "ring_internal.h"

#include <stdlib.h>

static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

size_t msgr_ring_footprint(uint64_t capacity)
{
    if (!is_pow2(capacity) || capacity < MSGR_RING_MIN_CAPACITY ||
        capacity > MSGR_RING_MAX_CAPACITY)
        return 0;
    return (size_t)(MSGR_RING_HDR_SIZE + capacity);
}

size_t msgr_ring_max_payload(uint64_t capacity)
{
    if (!msgr_ring_footprint(capacity))
        return 0;
    uint64_t m = capacity / 2 - sizeof(msgr__rec);
    return (size_t)(m < MSGR_RING_MAX_PAYLOAD ? m : MSGR_RING_MAX_PAYLOAD);
}

static int opts_size_ok(const msgr_ring_opts *o)
{
    return !o || o->size_of == 0 || o->size_of >= sizeof(msgr_ring_opts);
}

static int handle_new(msgr__ring_hdr *h, const msgr_ring_opts *opts, msgr_ring **out)
{
    msgr_ring *r = msgr_os_aligned_alloc(MSGR__LINE, sizeof *r);
    if (!r)
        return MSGR_ENOMEM;
    memset(r, 0, sizeof *r);
    r->hdr = h;
    r->data = (uint8_t *)h + MSGR_RING_HDR_SIZE;
    r->cap = h->capacity;
    r->mask = h->capacity - 1;
    r->salt = h->salt;
    r->flags = h->flags;
    r->trailer = (h->flags & MSGR_RING_CHECKSUM) ? 16 : 0;
    r->max_payload = msgr_ring_max_payload(h->capacity) - r->trailer;
    msgr__wait_policy_init(&r->wait);
    r->claim_timeout = opts && opts->claim_timeout_ns > 0 ? opts->claim_timeout_ns : 1000000000;
    msgr__ring_producer_init(r);
    /* Acquire: positions were published with release by their owners. */
    r->p_tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    r->c_head = atomic_load_explicit(&h->head, memory_order_acquire);
    r->c_published = r->c_head;
    atomic_store_explicit(&r->p_head_cache, r->c_head, memory_order_relaxed);
    *out = r;
    return 0;
}

int msgr_ring_create(void *mem, size_t mem_size, const msgr_ring_opts *opts, msgr_ring **out)
{
    if (!mem || !opts || !out || ((uintptr_t)mem & 63) || !opts_size_ok(opts))
        return MSGR_EINVAL;
    if (opts->flags & ~(MSGR_RING_MPSC | MSGR_RING_CHECKSUM))
        return MSGR_EINVAL;
    size_t need = msgr_ring_footprint(opts->capacity);
    if (need == 0)
        return MSGR_EINVAL;
    if (mem_size < need)
        return MSGR_ERANGE;
    msgr__ring_hdr *h = mem;
    memset(h, 0, sizeof *h);
    /* A fresh data area must not hold anything that could pass for a record: tags are salted
     * with the ring's position, and the salt is new, so stale bytes never match (record.h). */
    h->version = MSGR__RING_VERSION;
    h->hdr_size = MSGR_RING_HDR_SIZE;
    h->capacity = opts->capacity;
    h->salt = msgr_os_random64() & ~MSGR__REC_FLAGS;
    h->schema = opts->schema;
    h->flags = opts->flags;
    h->creator_pid = msgr_os_pid();
    for (uint32_t i = 0; i < MSGR__RING_SLOTS; i++)
        atomic_store_explicit(&h->slots[i].pos, MSGR__RPOS_NONE, memory_order_relaxed);
    /* Release: publishes the identity fields; pairs with the acquire in msgr_ring_attach(). */
    atomic_store_explicit(&h->magic, MSGR__RING_MAGIC, memory_order_release);
    return handle_new(h, opts, out);
}

int msgr_ring_attach(void *mem, size_t mem_size, const msgr_ring_opts *opts, msgr_ring **out)
{
    if (!mem || !out || ((uintptr_t)mem & 63) || !opts_size_ok(opts))
        return MSGR_EINVAL;
    if (mem_size < MSGR_RING_HDR_SIZE)
        return MSGR_ERANGE;
    msgr__ring_hdr *h = mem;
    if (atomic_load_explicit(&h->magic, memory_order_acquire) != MSGR__RING_MAGIC)
        return MSGR_ENOTMSGR;
    if (h->version != MSGR__RING_VERSION)
        return MSGR_EVERSION;
    if (h->hdr_size != MSGR_RING_HDR_SIZE || (h->flags & ~(MSGR_RING_MPSC | MSGR_RING_CHECKSUM)) ||
        (h->salt & MSGR__REC_FLAGS))
        return MSGR_ECORRUPT;
    size_t need = msgr_ring_footprint(h->capacity);
    if (need == 0)
        return MSGR_ECORRUPT;
    if (mem_size < need)
        return MSGR_ERANGE;
    uint64_t head = atomic_load_explicit(&h->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    if ((head & 15) || (tail & 15) || head > tail || tail - head > h->capacity)
        return MSGR_ECORRUPT;
    if (opts && opts->schema && opts->schema != h->schema)
        return MSGR_ESCHEMA;
    return handle_new(h, opts, out);
}

uint64_t msgr_ring_capacity(const msgr_ring *r) { return r ? r->cap : 0; }
uint32_t msgr_ring_flags(const msgr_ring *r) { return r ? r->flags : 0; }
uint64_t msgr_ring_schema(const msgr_ring *r) { return r ? r->hdr->schema : 0; }

void msgr_ring_set_wait(msgr_ring *r, uint32_t spins, uint32_t yields)
{
    if (r) {
        r->wait.spins = spins;
        r->wait.yields = yields;
    }
}

void msgr_ring_set_linger(msgr_ring *r, unsigned min_batch, uint32_t pauses)
{
    if (r) {
        r->linger_min = min_batch;
        r->linger_pauses = msgr__linger_pauses(min_batch, pauses);
        r->last_batch = 0;
    }
}

void msgr_ring_close(msgr_ring *r)
{
    if (!r)
        return;
    if (r->flags & MSGR_RING_MPSC)
        msgr__ring_release_slots(r);
    msgr_os_aligned_free(r);
}

uint64_t msgr_ring_lingers(const msgr_ring *r)
{
    return r ? atomic_load_explicit(&r->lingers, memory_order_relaxed) : 0;
}

int msgr_ring_stats_get(const msgr_ring *r, msgr_ring_stats *out)
{
    if (!r || !out)
        return MSGR_EINVAL;
    const msgr__ring_hdr *h = r->hdr;
    out->head = atomic_load_explicit(&h->head, memory_order_acquire);
    out->tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    out->capacity = r->cap;
    out->consumer_sleeping = atomic_load_explicit(&h->cons_wait.waiting, memory_order_relaxed);
    out->producers_sleeping = atomic_load_explicit(&h->prod_wait.waiting, memory_order_relaxed);
    out->claims_repaired = atomic_load_explicit(&h->repaired, memory_order_relaxed);
    out->records_corrupt = atomic_load_explicit(&h->corrupt, memory_order_relaxed);
    out->producer_slots = 0;
    out->pad_ = 0;
    for (uint32_t i = 0; i < MSGR__RING_SLOTS; i++)
        out->producer_slots += atomic_load_explicit(&h->slots[i].pid, memory_order_relaxed) != 0;
    return 0;
}
