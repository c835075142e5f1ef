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
#include "ring_layout.h"
#include "record.h"
#include "claim.h"
#include "msgr/error.h"
#include "../src/os.h"

#include <stdlib.h>
#include <string.h>

struct msgr_ring {
    /* read-only after attach */
    msgr__ring_hdr *hdr;
    uint8_t *data;
    uint64_t cap;
    uint64_t mask;
    uint64_t salt;
    uint64_t max_payload;
    uint32_t flags;
    msgr__wait_policy wait;
    /* producer side (SPSC: private; MPSC: unused except the head cache) */
    _Alignas(MSGR__LINE) uint64_t p_tail;
    _Atomic uint64_t p_head_cache; /* consumer head last seen; shared by producer threads */
    /* consumer side */
    _Alignas(MSGR__LINE) uint64_t c_head;
    uint64_t c_published;
    uint32_t linger_min, linger_pauses; /* msgr_ring_set_linger */
    uint32_t last_batch; /* records the last poll handed over if it ran dry, else UINT32_MAX */
    _Atomic uint64_t lingers;           /* polls that paused first (msgr_ring_lingers) */
};

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

static int handle_new(msgr__ring_hdr *h, msgr_ring **out)
{
    msgr_ring *r = aligned_alloc(MSGR__LINE, (sizeof *r + MSGR__LINE - 1) / MSGR__LINE * MSGR__LINE);
    if (!r)
        return MSGR_ENOMEM;
    memset(r, 0, sizeof *r);
    r->hdr = h;
    r->data = (uint8_t *)h + MSGR_RING_HDR_SIZE;
    r->cap = h->capacity;
    r->mask = h->capacity - 1;
    r->salt = h->salt;
    r->flags = h->flags;
    r->max_payload = msgr_ring_max_payload(h->capacity);
    msgr__wait_policy_init(&r->wait);
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
    if (opts->flags & ~MSGR_RING_MPSC)
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
    /* Release: publishes the identity fields; pairs with the acquire in msgr_ring_attach(). */
    atomic_store_explicit(&h->magic, MSGR__RING_MAGIC, memory_order_release);
    return handle_new(h, out);
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
    if (h->hdr_size != MSGR_RING_HDR_SIZE || (h->flags & ~MSGR_RING_MPSC) ||
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
    return handle_new(h, out);
}

void msgr_ring_close(msgr_ring *r) { free(r); }

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

/* ---- shared helpers ---- */

static inline msgr__rec *rec_at(const msgr_ring *r, uint64_t pos)
{
    return (msgr__rec *)(r->data + (pos & r->mask));
}

/* Writes and publishes a padding record of `bytes` (>= 16) at pos. */
static void write_skip(msgr_ring *r, uint64_t pos, uint64_t bytes, memory_order mo)
{
    msgr__rec *s = rec_at(r, pos);
    s->len = (uint32_t)(bytes - sizeof(msgr__rec));
    s->type = 0;
    s->source = 0;
    atomic_store_explicit(&s->tag, (pos | MSGR__REC_COMMITTED | MSGR__REC_SKIP) ^ r->salt, mo);
}

/* Reads the consumer's published head and checks it against our position. */
static inline int load_head(const msgr_ring *r, uint64_t pos, uint64_t *head)
{
    /* A2: acquire pairs with R2 in publish_head(): the consumer finished reading the space
     * below head before publishing it, so we may overwrite it. */
    uint64_t h = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
    if (h > pos || pos - h > r->cap || (h & 15))
        return MSGR_ECORRUPT;
    *head = h;
    return 0;
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

static int claim_mpsc(msgr_ring *r, uint64_t size, size_t len, msgr_claim *c)
{
    msgr__ring_hdr *h = r->hdr;
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
            if (pos + need - head > r->cap)
                return MSGR_EAGAIN;
        }
        /* Relaxed CAS: it only reserves bytes; the payload is published by the record's
         * release tag (R1), and the space's reuse was checked with the acquire A2 above. On
         * failure pos is reloaded and the check repeats. */
        if (atomic_compare_exchange_weak_explicit(&h->tail, &pos, pos + need,
                                                  memory_order_relaxed, memory_order_relaxed)) {
            claim_fill(r, pos, pad, size, len, c);
            return 0;
        }
    }
}

int msgr_ring_claim(msgr_ring *r, size_t len, msgr_claim *c)
{
    if (!r || !c)
        return MSGR_EINVAL;
    if (len > r->max_payload)
        return MSGR_EMSGSIZE;
    uint64_t size = msgr__rec_size(len);
    return (r->flags & MSGR_RING_MPSC) ? claim_mpsc(r, size, len, c)
                                       : claim_spsc(r, size, len, c);
}

int msgr_ring_commit(msgr_ring *r, msgr_claim *c)
{
    if (!r || !c)
        return MSGR_EINVAL;
    uint64_t asz = msgr__rec_size(c->len);
    if (c->len > c->claimed_ || asz > c->size_)
        return MSGR_EINVAL;
    if (asz < c->size_) /* committed shorter than claimed: the rest becomes padding */
        write_skip(r, c->pos_ + asz, c->size_ - asz, memory_order_relaxed);
    msgr__rec *rec = rec_at(r, c->pos_);
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
    /* D1 (wait.h): wake the consumer if it announced that it sleeps. */
    msgr__wake_waiters(&r->wait, &r->hdr->cons_wait, 0);
    c->size_ = 0; /* a second commit of the same claim is refused */
    return 0;
}

int msgr_ring_abort(msgr_ring *r, msgr_claim *c)
{
    if (!r || !c || c->size_ < sizeof(msgr__rec))
        return MSGR_EINVAL;
    /* R1 (padding): the consumer steps over it; pairs with A1 in msgr_ring_peek(). */
    write_skip(r, c->pos_, c->size_, memory_order_release);
    if (!(r->flags & MSGR_RING_MPSC))
        atomic_store_explicit(&r->hdr->tail, c->pos_ + c->size_, memory_order_release);
    msgr__wake_waiters(&r->wait, &r->hdr->cons_wait, 0); /* it may wait for this position */
    c->size_ = 0;
    return 0;
}

typedef struct { size_t len; msgr_claim *c; } claim_args;

static int try_claim(void *r, void *arg)
{
    claim_args *a = arg;
    return msgr_ring_claim(r, a->len, a->c);
}

int msgr_ring_claim_wait(msgr_ring *r, size_t len, msgr_claim *c, int64_t timeout_ns)
{
    if (!r || !c)
        return MSGR_EINVAL;
    int rc = msgr_ring_claim(r, len, c);
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    claim_args a = {len, c};
    return msgr__wait_until(&r->wait, try_claim, r, &a, timeout_ns, &r->hdr->prod_wait, 1, 0);
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

/* ---- consumer side ---- */

static inline void publish_head(msgr_ring *r)
{
    r->c_published = r->c_head;
    /* R2: release: our reads of the freed records happen before producers reuse the space;
     * pairs with A2 in load_head(). */
    atomic_store_explicit(&r->hdr->head, r->c_head, memory_order_release);
    msgr__wake_waiters(&r->wait, &r->hdr->prod_wait, 1); /* D1 (wait.h), producers' side */
}

static inline int peek_one(msgr_ring *r, msgr_msg *m)
{
    for (;;) {
        uint64_t pos = r->c_head;
        msgr__rec *rec = rec_at(r, pos);
        /* A1: acquire pairs with R1 in msgr_ring_commit()/claim_fill(): the header fields and
         * payload are visible once the tag is. */
        uint64_t t = atomic_load_explicit(&rec->tag, memory_order_acquire) ^ r->salt;
        if ((t & ~MSGR__REC_FLAGS) != pos || !(t & MSGR__REC_COMMITTED)) {
            if (r->c_published != pos)
                publish_head(r); /* going idle: hand freed space back now */
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
        m->data = rec + 1;
        m->len = (uint32_t)len;
        m->type = rec->type;
        m->source = rec->source;
        m->pos_ = pos;
        m->size_ = (uint32_t)msgr__rec_size(len);
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

int msgr_ring_peek_wait(msgr_ring *r, msgr_msg *m, int64_t timeout_ns)
{
    int rc = msgr_ring_peek(r, m);
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    /* A lingering consumer also looks less often while it waits (msgr_ring_set_linger). */
    return msgr__wait_until(&r->wait, try_peek, r, m, timeout_ns, &r->hdr->cons_wait, 0,
                            r->linger_pauses);
}

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
    return 0;
}
