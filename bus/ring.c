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
#include "hot.h"
#include "crc32c.h"
#include "msgr/error.h"
#include "os/os.h"

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
    uint64_t trailer;      /* MSGR_RING_CHECKSUM: 16 bytes after each payload hold its CRC32C */
    uint32_t flags;
    msgr__wait_policy wait;
    int64_t claim_timeout; /* when an unfinished claim's owner is checked (ns) */
    uint64_t id;           /* unique per handle in this process (thread-local slot cache key) */
    /* Slow-path state of the MPSC producer slots, under `lock`: this process (refreshed after
     * fork), and which slot each of this handle's threads took. */
    atomic_flag lock;
    uint32_t self_gen;     /* msgr_os_fork_generation when pid was read */
    int32_t pid;
    uint64_t pid_start;
    uint32_t n_map;
    struct { uintptr_t thread; uint32_t slot; } map[MSGR__RING_SLOTS];
    /* producer side (SPSC: private; MPSC: unused except the head cache) */
    _Alignas(MSGR__LINE) uint64_t p_tail;
    _Atomic uint64_t p_head_cache; /* consumer head last seen; shared by producer threads */
    /* consumer side */
    _Alignas(MSGR__LINE) uint64_t c_head;
    uint64_t c_published;
    uint32_t linger_min, linger_pauses; /* msgr_ring_set_linger */
    uint32_t last_batch; /* records the last poll handed over if it ran dry, else UINT32_MAX */
    _Atomic uint64_t lingers;           /* polls that paused first (msgr_ring_lingers) */
    uint32_t c_misses;     /* empty looks since the last check for a stuck claim */
    uint64_t c_blocked_pos, c_blocked_since; /* where and since when the consumer is stuck */
};

/* The calling thread's producer slot for a handle (MPSC), cached: valid while the key names
 * the handle and no fork() happened since (the child is another process). */
static MSGR_TLS uint64_t tl_ring_id; /* 0 in a forked child (ring_fork_child()) */
static MSGR_TLS uint32_t tl_ring_slot;
static _Atomic uint64_t ring_ids;

/* In a forked child (only the forking thread exists there): its cached slot belongs to the
 * parent process. */
static void ring_fork_child(void) { tl_ring_id = 0; }

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
    r->trailer = (h->flags & MSGR_RING_CHECKSUM) ? 16 : 0;
    r->max_payload = msgr_ring_max_payload(h->capacity) - r->trailer;
    msgr__wait_policy_init(&r->wait);
    r->claim_timeout = opts && opts->claim_timeout_ns > 0 ? opts->claim_timeout_ns : 1000000000;
    r->id = atomic_fetch_add_explicit(&ring_ids, 1, memory_order_relaxed) + 1;
    atomic_flag_clear(&r->lock);
    msgr_os_fork_watch(ring_fork_child);
    r->self_gen = atomic_load_explicit(&msgr_os_fork_generation, memory_order_relaxed);
    r->pid = msgr_os_pid();
    msgr_os_proc_start(r->pid, &r->pid_start);
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

/* ---- shared helpers ---- */

static inline msgr__rec *rec_at(const msgr_ring *r, uint64_t pos)
{
    return (msgr__rec *)(r->data + (pos & r->mask));
}

static inline int is_skip(const msgr_ring *r, uint64_t pos)
{
    return ((atomic_load_explicit(&rec_at(r, pos)->tag, memory_order_relaxed) ^ r->salt) &
            MSGR__REC_SKIP) != 0;
}

/* MSGR_RING_CHECKSUM: a record's CRC32C, seeded by its position (so a record copied to another
 * place fails), over len/type/source and the payload. */
static uint32_t rec_crc(uint64_t pos, uint32_t len, uint16_t type, uint16_t source,
                        const void *payload)
{
    return msgr__crc32c_seeded(msgr__rec_seed(pos), msgr__rec_word1(len, type, source), payload,
                               len);
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

/* ---- producer slots and the repair of dead producers' claims (MPSC; ring_layout.h) ---- */

static void lock_handle(msgr_ring *r)
{
    while (atomic_flag_test_and_set_explicit(&r->lock, memory_order_acquire))
        msgr_os_cpu_relax();
}

static void unlock_handle(msgr_ring *r) { atomic_flag_clear_explicit(&r->lock, memory_order_release); }

/* Under the handle lock: this process's pid and start time, read again in a forked child. */
static void refresh_self(msgr_ring *r, uint32_t gen)
{
    if (r->self_gen == gen)
        return;
    r->self_gen = gen;
    r->pid = msgr_os_pid();
    msgr_os_proc_start(r->pid, &r->pid_start);
    r->n_map = 0; /* the parent's threads are not ours */
}

/* Whether a recorded owner runs: pid and start time name one process; a start time of 0 (the
 * repair lock being taken) or a negative pid (a slot being taken) is judged by the pid alone. */
static int owner_alive(int32_t pid, uint64_t start)
{
    if (pid < 0) /* a slot being taken (slot_take()); INT32_MIN (shared memory) has no twin */
        return pid != INT32_MIN && msgr_os_pid_alive(-pid);
    return msgr_os_owner_alive(pid, start);
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

static inline int committed_at(const msgr_ring *r, uint64_t pos)
{
    /* A1 (see peek_one()). */
    uint64_t t = atomic_load_explicit(&rec_at(r, pos)->tag, memory_order_acquire) ^ r->salt;
    return (t & ~MSGR__REC_FLAGS) == pos && (t & MSGR__REC_COMMITTED);
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
MSGR_COLD int repair_at(msgr_ring *r, uint64_t pos)
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
MSGR_COLD int consumer_stuck(msgr_ring *r, uint64_t pos)
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
    if (repair_at(r, pos)) {
        r->c_blocked_since = 0;
        return 1;
    }
    r->c_blocked_since = now; /* its owner lives (or another repairer is at it): later */
    return -1;
}

/* Closing with claims unfinished: pads every unfinished claim in the slot's range that is
 * ours. Our range may also hold other threads' claims, so this goes record by record from the
 * consumer's position, under the repair lock, padding only what repair_at() would find
 * abandoned if we were dead: we check that by the range alone (no other live range holds it). */
static void pad_own_claims(msgr_ring *r, msgr__rslot *mine, uint64_t sp)
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

/* Gives this handle's producer slots back. A slot still naming a claim that is unfinished
 * (the thread never committed it) turns the claim into padding first: nobody else would, since
 * this process lives on. */
static void release_slots(msgr_ring *r)
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
            pad_own_claims(r, p, sp);
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

void msgr_ring_close(msgr_ring *r)
{
    if (!r)
        return;
    if (r->flags & MSGR_RING_MPSC)
        release_slots(r);
    free(r);
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
         * acquire load of tail in repair_at(). It only reserves bytes: the payload is published
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
 * there is checked (repair_at() wakes the consumer when it pads it). */
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
        if (repair_at(r, head))
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
            if (r->c_published != pos)
                publish_head(r); /* going idle: hand freed space back now */
            /* Now and then (not on every empty look: the tail is a line producers write), see
             * whether a claim is stuck here, and repair it if its producer died. */
            if ((r->flags & MSGR_RING_MPSC) && ++r->c_misses >= 1024) {
                r->c_misses = 0;
                if (consumer_stuck(r, pos) > 0)
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
    int st = consumer_stuck(r, r->c_head);
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
    out->claims_repaired = atomic_load_explicit(&h->repaired, memory_order_relaxed);
    out->records_corrupt = atomic_load_explicit(&h->corrupt, memory_order_relaxed);
    out->producer_slots = 0;
    out->pad_ = 0;
    for (uint32_t i = 0; i < MSGR__RING_SLOTS; i++)
        out->producer_slots += atomic_load_explicit(&h->slots[i].pid, memory_order_relaxed) != 0;
    return 0;
}
