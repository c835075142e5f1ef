/* messenger: the broadcast ring: one producer, up to 32 readers with a cursor each.
 *
 * Shared layout (MSGR_BCAST_HDR_SIZE bytes of header, then the data area):
 *   line 0      immutable: magic, version, capacity, schema
 *   line 1      tail: bytes ever committed (the producer writes it, readers read it)
 *   line 2      data_wait: readers sleep here for the tail to move (a count of sleepers)
 *   line 3      space_wait: the producer sleeps here for the slowest reader (a flag)
 *   line 4      counters: readers joined, detached, dropped
 *   lines 5..   one slot per reader: owner word, cursor, process start time
 * Records use the ring's 16-byte header (record.h) with tag = position | flags; a record that
 * would straddle the end of the data area is preceded by padding (MSGR__REC_SKIP).
 *
 * Fast path: the producer writes a record and publishes the tail (release); a reader learns of
 * it from the tail (acquire), reads in place, and publishes its own cursor (release) once per
 * batch. The producer reads the readers' cursors only when its cached limit (slowest cursor +
 * capacity, from its last scan) says the ring is full. No line is written by two parties.
 */
#include "bcast_internal.h"
#include "record.h"
#include "wait.h"
#include "msgr/bcast.h"
#include "msgr/error.h"
#include "os/error_detail.h"
#include "os/os.h"

#include <stdlib.h>
#include <string.h>

#define BC_MAGIC 0x54534143425247ull /* "GRBCAST" */
#define BC_VERSION 1u
#define BC_LINE 64u
#define BC_REPOLL_NS 1000000000 /* longest reader sleep: see cap_peek() */

/* Owner word of a slot: state in bits 0-1, a generation in bits 2-31 (bumped on every change
 * of hands, so a stale handle or a stale scan never mistakes a new reader for an old one), the
 * owner's pid in bits 32-63. */
#define BC_FREE 0u
#define BC_CLAIMING 1u /* being joined or detached: owned by whoever moved it here */
#define BC_JOINED 2u
#define BC_STATE(o) ((uint32_t)(o) & 3u)
#define BC_GEN(o) (((uint32_t)(o) >> 2) & 0x3fffffffu)
#define BC_PID(o) ((int32_t)((o) >> 32))
#define BC_OWNER(pid, gen, st) \
    ((uint64_t)(uint32_t)(pid) << 32 | (uint64_t)(((gen) & 0x3fffffffu) << 2) | (st))

typedef struct bc_slot {
    _Atomic uint64_t owner;
    _Atomic uint64_t cursor; /* the reader has released everything below this position */
    _Atomic uint64_t start;  /* owner's process start time; 0 while unknown */
    char pad_[BC_LINE - 24];
} bc_slot;

typedef struct bc_hdr {
    uint64_t magic;
    uint32_t version, hdr_size;
    uint64_t capacity, schema;
    char pad0_[BC_LINE - 32];
    _Atomic uint64_t tail;
    char pad1_[BC_LINE - 8];
    msgr__waitq data_wait;
    char pad2_[BC_LINE - sizeof(msgr__waitq)];
    msgr__waitq space_wait;
    char pad3_[BC_LINE - sizeof(msgr__waitq)];
    _Atomic uint32_t readers;
    uint32_t pad4_;
    _Atomic uint64_t detached, dropped;
    char pad5_[BC_LINE - 24];
    bc_slot slot[MSGR_BCAST_MAX_READERS];
} bc_hdr;

_Static_assert(sizeof(bc_hdr) <= MSGR_BCAST_HDR_SIZE, "broadcast header fits its size");
_Static_assert(sizeof(bc_slot) == BC_LINE, "one slot per cache line");

struct msgr_bcast {
    bc_hdr *hdr;
    uint8_t *data;
    uint64_t cap, mask, max_payload;
    msgr__wait_policy wait;
    int wait_set;   /* msgr_bcast_set_wait was called: no automatic policy */
    unsigned cpus;  /* online when the handle was made */
    int64_t liveness;
    uint64_t limit; /* producer: may write below this position (slowest cursor + capacity) */
};

struct msgr_bcast_reader {
    msgr_bcast *b;
    bc_slot *slot;
    uint64_t owner;  /* our owner word: anything else there means we were detached */
    uint64_t cursor; /* private: next record (published cursor <= this) */
    uint64_t tail;   /* the tail last read */
    msgr__wait_policy wait;
};

/* The data area's rules are the ring's: same capacities, same largest record. */
size_t msgr_bcast_footprint(uint64_t capacity)
{
    return msgr_ring_footprint(capacity) ? (size_t)(MSGR_BCAST_HDR_SIZE + capacity) : 0;
}

size_t msgr_bcast_max_payload(uint64_t capacity) { return msgr_ring_max_payload(capacity); }

static int opts_ok(const msgr_bcast_opts *o)
{
    return !o || ((o->size_of == 0 || o->size_of >= sizeof *o) && o->flags == 0);
}

static int handle_new(bc_hdr *h, const msgr_bcast_opts *o, msgr_bcast **out)
{
    msgr_bcast *b = msgr_os_aligned_alloc(BC_LINE, sizeof *b);
    if (!b)
        return MSGR_ENOMEM;
    memset(b, 0, sizeof *b);
    b->hdr = h;
    b->data = (uint8_t *)h + MSGR_BCAST_HDR_SIZE;
    b->cap = h->capacity;
    b->mask = h->capacity - 1;
    b->max_payload = msgr_bcast_max_payload(h->capacity);
    b->liveness = o && o->liveness_ns > 0 ? o->liveness_ns : 10000000;
    msgr__wait_policy_init(&b->wait);
    b->cpus = msgr_os_cpu_count();
    b->limit = 0; /* the first claim scans */
    *out = b;
    return 0;
}

int msgr_bcast_create(void *mem, size_t mem_size, const msgr_bcast_opts *opts, msgr_bcast **out)
{
    if (!mem || !opts || !out || ((uintptr_t)mem & 63) || !opts_ok(opts))
        return MSGR_EINVAL;
    size_t need = msgr_bcast_footprint(opts->capacity);
    if (!need)
        return msgr__fail(MSGR_EINVAL, "broadcast ring: capacity %llu is not a power of two "
                                       "in [%u, 2^40]",
                          (unsigned long long)opts->capacity, MSGR_RING_MIN_CAPACITY);
    if (mem_size < need)
        return msgr__fail(MSGR_ERANGE, "broadcast ring: %zu bytes of memory, %zu needed",
                          mem_size, need);
    bc_hdr *h = mem;
    memset(h, 0, sizeof *h);
    h->version = BC_VERSION;
    h->hdr_size = MSGR_BCAST_HDR_SIZE;
    h->capacity = opts->capacity;
    h->schema = opts->schema;
    /* Release: an attacher that sees the magic sees the header it guards. */
    atomic_store_explicit((_Atomic uint64_t *)&h->magic, BC_MAGIC, memory_order_release);
    return handle_new(h, opts, out);
}

int msgr_bcast_attach(void *mem, size_t mem_size, const msgr_bcast_opts *opts, msgr_bcast **out)
{
    if (!mem || !out || ((uintptr_t)mem & 63) || !opts_ok(opts) ||
        mem_size < MSGR_BCAST_HDR_SIZE)
        return MSGR_EINVAL;
    bc_hdr *h = mem;
    if (atomic_load_explicit((_Atomic uint64_t *)&h->magic, memory_order_acquire) != BC_MAGIC)
        return MSGR_ENOTMSGR;
    if (h->version != BC_VERSION || h->hdr_size != MSGR_BCAST_HDR_SIZE)
        return MSGR_EVERSION;
    uint64_t cap = h->capacity;
    size_t need = msgr_bcast_footprint(cap);
    if (!need)
        return msgr__fail(MSGR_ECORRUPT, "broadcast ring: header capacity %llu is invalid",
                          (unsigned long long)cap);
    if (mem_size < need)
        return msgr__fail(MSGR_ERANGE, "broadcast ring of %zu bytes in %zu bytes of memory",
                          need, mem_size);
    if (opts && opts->schema && opts->schema != h->schema)
        return msgr__fail(MSGR_ESCHEMA, "broadcast ring: schema %016llx, expected %016llx",
                          (unsigned long long)h->schema, (unsigned long long)opts->schema);
    return handle_new(h, opts, out);
}

void msgr_bcast_close(msgr_bcast *b) { msgr_os_aligned_free(b); }

uint64_t msgr_bcast_capacity(const msgr_bcast *b) { return b ? b->cap : 0; }

void msgr_bcast_set_wait(msgr_bcast *b, uint32_t spins, uint32_t yields)
{
    if (b) {
        b->wait.spins = spins;
        b->wait.yields = yields;
        b->wait_set = 1;
    }
}

/* ---- producer ---- */

/* The slowest joined reader's cursor (tail when none), into *min; how many are joined, or
 * MSGR_ECORRUPT for a cursor outside [tail - capacity, tail].
 * Join race: the seq_cst fence here pairs with the one in msgr_bcast_join(). Either this scan
 * sees the joiner's slot, or the joiner's tail load after its fence sees the tail stored before
 * this fence; every cursor this scan reads is at most that tail, so the limit computed from
 * them never lets the producer overwrite a position the joiner will read. */
static int scan_min(const msgr_bcast *b, uint64_t tail, uint64_t *min)
{
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t m = tail;
    int n = 0;
    for (unsigned i = 0; i < MSGR_BCAST_MAX_READERS; i++) {
        bc_slot *s = &b->hdr->slot[i];
        /* Acquire on both: a cursor's release by its reader means the reader is done with
         * everything below it, and the joiner's first cursor is published with its owner. */
        uint64_t o = atomic_load_explicit(&s->owner, memory_order_acquire);
        if (BC_STATE(o) != BC_JOINED)
            continue;
        uint64_t c = atomic_load_explicit(&s->cursor, memory_order_acquire);
        if (c > tail || tail - c > b->cap)
            return msgr__fail(MSGR_ECORRUPT,
                              "broadcast ring: reader %u's cursor %llu is outside [%llu, %llu]",
                              i, (unsigned long long)c,
                              (unsigned long long)(tail > b->cap ? tail - b->cap : 0),
                              (unsigned long long)tail);
        n++;
        if (c < m)
            m = c;
    }
    *min = m;
    return n;
}

int msgr_bcast_claim(msgr_bcast *b, size_t len, msgr_claim *c)
{
    if (!b || !c)
        return MSGR_EINVAL;
    if (len > b->max_payload)
        return msgr__fail(MSGR_EMSGSIZE, "broadcast ring: a %zu-byte record, at most %llu",
                          len, (unsigned long long)b->max_payload);
    uint64_t size = msgr__rec_size(len);
    /* Relaxed: only the producer writes the tail. */
    uint64_t pos = atomic_load_explicit(&b->hdr->tail, memory_order_relaxed);
    uint64_t off = pos & b->mask;
    uint64_t pad = off + size > b->cap ? b->cap - off : 0;
    uint64_t end = pos + pad + size;
    if (end > b->limit) {
        uint64_t min;
        int n = scan_min(b, pos, &min);
        if (n < 0)
            return n;
        b->limit = min + b->cap;
        if (end > b->limit)
            return MSGR_EAGAIN;
    }
    if (pad) { /* published with the record, by the commit's tail store */
        msgr__rec *p = (msgr__rec *)(b->data + off);
        p->len = (uint32_t)(pad - sizeof(msgr__rec));
        p->type = p->source = 0;
        atomic_store_explicit(&p->tag, pos | MSGR__REC_COMMITTED | MSGR__REC_SKIP,
                              memory_order_relaxed);
        pos += pad;
    }
    c->data = b->data + (pos & b->mask) + sizeof(msgr__rec);
    c->len = (uint32_t)len;
    c->type = c->source = 0;
    c->pos_ = pos;
    c->size_ = (uint32_t)size;
    c->claimed_ = (uint32_t)len;
    return 0;
}

int msgr_bcast_commit(msgr_bcast *b, msgr_claim *c)
{
    if (!b || !c || !c->size_ || c->len > c->claimed_)
        return MSGR_EINVAL;
    msgr__rec *r = (msgr__rec *)(b->data + (c->pos_ & b->mask));
    r->len = c->len;
    r->type = c->type;
    r->source = c->source;
    atomic_store_explicit(&r->tag, c->pos_ | MSGR__REC_COMMITTED, memory_order_relaxed);
    /* Release: a reader that sees the new tail sees the record (and any padding before it). */
    atomic_store_explicit(&b->hdr->tail, c->pos_ + c->size_, memory_order_release);
    c->size_ = 0;
    if (!atomic_load_explicit(&b->hdr->readers, memory_order_relaxed))
        atomic_store_explicit(&b->hdr->dropped,
                              atomic_load_explicit(&b->hdr->dropped, memory_order_relaxed) + 1,
                              memory_order_relaxed); /* producer-only counter */
    msgr__wake_waiters(&b->wait, &b->hdr->data_wait, 1);
    return 0;
}

/* Gives up a dead reader's slot: CLAIMING (so no joiner takes it half-cleared), start time
 * cleared, then FREE with a new generation. Returns 1 if this call detached it. */
static int slot_release(bc_slot *s, uint64_t o)
{
    uint32_t gen = BC_GEN(o) + 1;
    if (!atomic_compare_exchange_strong_explicit(&s->owner, &o, BC_OWNER(0, gen, BC_CLAIMING),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return 0;
    atomic_store_explicit(&s->start, 0, memory_order_relaxed);
    /* Release: a joiner that takes the slot sees the cleared start time. */
    atomic_store_explicit(&s->owner, BC_OWNER(0, gen, BC_FREE), memory_order_release);
    return 1;
}

/* Detaches every joined reader at the slowest position whose process is gone. */
static int detach_dead(msgr_bcast *b)
{
    uint64_t tail = atomic_load_explicit(&b->hdr->tail, memory_order_relaxed), min;
    int n = scan_min(b, tail, &min), freed = 0;
    if (n <= 0)
        return 0;
    for (unsigned i = 0; i < MSGR_BCAST_MAX_READERS; i++) {
        bc_slot *s = &b->hdr->slot[i];
        uint64_t o = atomic_load_explicit(&s->owner, memory_order_acquire);
        if (BC_STATE(o) != BC_JOINED ||
            atomic_load_explicit(&s->cursor, memory_order_acquire) != min)
            continue;
        uint64_t start = atomic_load_explicit(&s->start, memory_order_relaxed);
        if (msgr_os_owner_alive(BC_PID(o), start))
            continue;
        if (slot_release(s, o)) {
            atomic_fetch_sub_explicit(&b->hdr->readers, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&b->hdr->detached, 1, memory_order_relaxed);
            freed++;
        }
    }
    return freed;
}

/* More threads than CPUs (the joined readers and the producer): one that spins while it waits
 * takes the CPU that the producer, or a reader with work, needs, so every added reader made the
 * ring slower (bench/README.md, "One producer to N readers"). So unless the user chose a
 * policy, a crowded ring's waiters do not spin: they yield a few times, then sleep. */
static msgr__wait_policy crowded_policy(const msgr_bcast *b, const msgr__wait_policy *p)
{
    msgr__wait_policy q = *p;
    if (!b->wait_set &&
        atomic_load_explicit(&b->hdr->readers, memory_order_relaxed) + 1 > b->cpus) {
        q.spins = 0;
        q.yields = 8;
    }
    return q;
}

typedef struct {
    size_t len;
    msgr_claim *c;
    uint64_t blocked_since;
} claim_args;

static int try_claim(void *self, void *arg)
{
    claim_args *a = arg;
    return msgr_bcast_claim(self, a->len, a->c);
}

/* Before the producer sleeps: a reader killed between its release and its wake leaves space
 * and nobody to wake us, and a dead reader holds its space for ever. So no sleep lasts longer
 * than the liveness interval, and after each interval spent waiting the readers at the slowest
 * position are checked (pid and start time) and the dead ones detached. */
static int64_t cap_claim(void *self, void *arg)
{
    msgr_bcast *b = self;
    claim_args *a = arg;
    uint64_t now = msgr_os_now_ns();
    if (!a->blocked_since)
        a->blocked_since = now;
    else if (now - a->blocked_since >= (uint64_t)b->liveness) {
        a->blocked_since = now;
        if (detach_dead(b))
            return 0; /* look again now */
    }
    return b->liveness;
}

int msgr_bcast_claim_wait(msgr_bcast *b, size_t len, msgr_claim *c, int64_t timeout_ns)
{
    int rc = msgr_bcast_claim(b, len, c);
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    claim_args a = {len, c, 0};
    /* Sleeps on space_wait.futex (a flag: one producer); woken by a reader publishing its
     * cursor (publish_cursor()). Bounded by the liveness interval: see cap_claim(). */
    msgr__wait_policy p = crowded_policy(b, &b->wait);
    return msgr__wait_until(&p, try_claim, b, &a, timeout_ns, &b->hdr->space_wait, 0, 0,
                            cap_claim);
}

int msgr_bcast_send(msgr_bcast *b, uint16_t type, const void *data, size_t len,
                    int64_t timeout_ns)
{
    if (!data && len)
        return MSGR_EINVAL;
    msgr_claim c;
    int rc = msgr_bcast_claim_wait(b, len, &c, timeout_ns);
    if (rc)
        return rc;
    if (len)
        memcpy(c.data, data, len);
    c.type = type;
    return msgr_bcast_commit(b, &c);
}

/* ---- readers ---- */

void (*msgr__bcast_join_hook)(void *arg);
void *msgr__bcast_join_hook_arg;

/* Joins slot s (FREE, generation in o) at the tail; 0, or 1 if another joiner took it. */
static int join_slot(msgr_bcast *b, bc_slot *s, uint64_t o, int32_t pid, uint64_t start,
                     msgr_bcast_reader *rd)
{
    uint32_t gen = BC_GEN(o) + 1;
    if (!atomic_compare_exchange_strong_explicit(&s->owner, &o, BC_OWNER(pid, gen, BC_CLAIMING),
                                                 memory_order_acq_rel, memory_order_relaxed))
        return 1;
    /* The slot is ours. First cursor: a tail we have seen (every scan that finds us joined
     * reads at least this, with the owner word's release/acquire). */
    uint64_t t0 = atomic_load_explicit(&b->hdr->tail, memory_order_acquire);
    atomic_store_explicit(&s->cursor, t0, memory_order_relaxed);
    atomic_store_explicit(&s->start, start, memory_order_relaxed);
    if (msgr__bcast_join_hook)
        msgr__bcast_join_hook(msgr__bcast_join_hook_arg);
    rd->owner = BC_OWNER(pid, gen, BC_JOINED);
    atomic_store_explicit(&s->owner, rd->owner, memory_order_release);
    atomic_fetch_add_explicit(&b->hdr->readers, 1, memory_order_relaxed);
    /* Pairs with the fence in scan_min(): see there. After it, the tail we read is a position
     * no limit computed without us reaches past, so we start there. */
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t t1 = atomic_load_explicit(&b->hdr->tail, memory_order_acquire);
    atomic_store_explicit(&s->cursor, t1, memory_order_release);
    rd->b = b;
    rd->slot = s;
    rd->cursor = rd->tail = t1;
    rd->wait = b->wait;
    return 0;
}

static msgr_bcast_reader *reader_new(void)
{
    msgr_bcast_reader *rd = msgr_os_aligned_alloc(BC_LINE, sizeof *rd);
    if (rd)
        memset(rd, 0, sizeof *rd);
    return rd;
}

static uint64_t self_start(int32_t pid)
{
    uint64_t start = 0;
    if (msgr_os_proc_start(pid, &start))
        start = 0; /* the liveness check then goes by the pid alone */
    return start;
}

int msgr_bcast_join(msgr_bcast *b, msgr_bcast_reader **out)
{
    if (!b || !out)
        return MSGR_EINVAL;
    msgr_bcast_reader *rd = reader_new();
    if (!rd)
        return MSGR_ENOMEM;
    int32_t pid = msgr_os_pid();
    uint64_t start = self_start(pid);
    for (unsigned i = 0; i < MSGR_BCAST_MAX_READERS; i++) {
        bc_slot *s = &b->hdr->slot[i];
        uint64_t o = atomic_load_explicit(&s->owner, memory_order_acquire);
        if (BC_STATE(o) == BC_FREE && join_slot(b, s, o, pid, start, rd) == 0) {
            *out = rd;
            return 0;
        }
    }
    msgr_os_aligned_free(rd);
    return msgr__fail(MSGR_ENOSPC, "broadcast ring: all %u reader slots are taken",
                      MSGR_BCAST_MAX_READERS);
}

int msgr__bcast_reader_at(msgr_bcast *b, unsigned slot, msgr_bcast_reader **out)
{
    if (!b || !out || slot >= MSGR_BCAST_MAX_READERS)
        return MSGR_EINVAL;
    msgr_bcast_reader *rd = reader_new();
    if (!rd)
        return MSGR_ENOMEM;
    int32_t pid = msgr_os_pid();
    uint64_t start = self_start(pid);
    bc_slot *s = &b->hdr->slot[slot];
    uint64_t o = atomic_load_explicit(&s->owner, memory_order_acquire);
    if (BC_STATE(o) == BC_FREE) {
        if (join_slot(b, s, o, pid, start, rd) == 0) {
            *out = rd;
            return 0;
        }
    } else if (BC_STATE(o) == BC_JOINED) {
        /* Taken over in place: the cursor stays where its last owner published it, so the
         * producer never sees it move back; the start time is cleared first so that no check
         * pairs our pid with the old owner's start. */
        uint64_t mine = BC_OWNER(pid, BC_GEN(o) + 1, BC_JOINED);
        atomic_store_explicit(&s->start, 0, memory_order_relaxed);
        if (atomic_compare_exchange_strong_explicit(&s->owner, &o, mine, memory_order_acq_rel,
                                                    memory_order_relaxed)) {
            atomic_store_explicit(&s->start, start, memory_order_relaxed);
            rd->b = b;
            rd->slot = s;
            rd->owner = mine;
            rd->cursor = rd->tail = atomic_load_explicit(&s->cursor, memory_order_acquire);
            rd->wait = b->wait;
            *out = rd;
            return 0;
        }
    }
    msgr_os_aligned_free(rd);
    return msgr__fail(MSGR_EBUSY, "broadcast ring: reader slot %u is changing hands", slot);
}

void msgr__bcast_reader_forget(msgr_bcast_reader *rd) { msgr_os_aligned_free(rd); }

/* The producer may wait for this cursor: publish it, then wake it if it sleeps. */
static void publish_cursor(msgr_bcast_reader *rd)
{
    atomic_store_explicit(&rd->slot->cursor, rd->cursor, memory_order_release);
    msgr__wake_waiters(&rd->wait, &rd->b->hdr->space_wait, 0);
}

void msgr_bcast_leave(msgr_bcast_reader *rd)
{
    if (!rd)
        return;
    if (slot_release(rd->slot, rd->owner)) {
        atomic_fetch_sub_explicit(&rd->b->hdr->readers, 1, memory_order_relaxed);
        msgr__wake_waiters(&rd->wait, &rd->b->hdr->space_wait, 0); /* it may wait for us */
    }
    msgr_os_aligned_free(rd);
}

int msgr_bcast_peek(msgr_bcast_reader *rd, msgr_msg *m)
{
    if (!rd || !m)
        return MSGR_EINVAL;
    msgr_bcast *b = rd->b;
    if (atomic_load_explicit(&rd->slot->owner, memory_order_relaxed) != rd->owner)
        return msgr__fail(MSGR_ESTATE, "broadcast reader was detached (judged dead)");
    for (;;) {
        uint64_t pos = rd->cursor;
        if (pos == rd->tail) {
            /* Acquire: pairs with the commit's release; the records below it are complete. */
            uint64_t t = atomic_load_explicit(&b->hdr->tail, memory_order_acquire);
            if (t < pos || t - pos > b->cap)
                return msgr__fail(MSGR_ECORRUPT,
                                  "broadcast ring: tail %llu, reader at %llu (capacity %llu)",
                                  (unsigned long long)t, (unsigned long long)pos,
                                  (unsigned long long)b->cap);
            if (t == pos)
                return MSGR_EAGAIN;
            rd->tail = t;
        }
        uint64_t off = pos & b->mask, avail = rd->tail - pos;
        const msgr__rec *r = (const msgr__rec *)(b->data + off);
        uint64_t tag = atomic_load_explicit(&r->tag, memory_order_relaxed);
        uint64_t len = r->len, size = msgr__rec_size(len);
        if ((tag & ~MSGR__REC_FLAGS) != pos || !(tag & MSGR__REC_COMMITTED) ||
            len > b->max_payload + (tag & MSGR__REC_SKIP ? b->cap : 0) || size > avail ||
            off + size > b->cap)
            return msgr__fail(MSGR_ECORRUPT,
                              "broadcast ring: bad record at position %llu (tag %llx, "
                              "length %llu, %llu bytes committed after it)",
                              (unsigned long long)pos, (unsigned long long)tag,
                              (unsigned long long)len, (unsigned long long)avail);
        if (tag & MSGR__REC_SKIP) {
            rd->cursor = pos + size;
            continue;
        }
        m->data = r + 1;
        m->len = (uint32_t)len;
        m->type = r->type;
        m->source = r->source;
        m->pos_ = pos;
        m->size_ = (uint32_t)size;
        return 0;
    }
}

static int try_peek(void *self, void *arg) { return msgr_bcast_peek(self, arg); }

/* Before a reader sleeps: a producer killed between its commit and its wake leaves a record
 * nobody announces, so no sleep lasts longer than BC_REPOLL_NS (an idle reader looks once a
 * second and sleeps again). */
static int64_t cap_peek(void *self, void *arg)
{
    (void)self;
    (void)arg;
    return BC_REPOLL_NS;
}

int msgr_bcast_peek_wait(msgr_bcast_reader *rd, msgr_msg *m, int64_t timeout_ns)
{
    int rc = msgr_bcast_peek(rd, m);
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    /* Sleeps on data_wait.futex (a count: several readers); woken by every commit
     * (msgr_bcast_commit). A reader killed asleep leaves the count raised: the producer then
     * makes one needless wake call per commit, and nobody waits longer. */
    msgr__wait_policy p = crowded_policy(rd->b, &rd->wait);
    return msgr__wait_until(&p, try_peek, rd, m, timeout_ns, &rd->b->hdr->data_wait, 1, 0,
                            cap_peek);
}

int msgr_bcast_release(msgr_bcast_reader *rd, const msgr_msg *m)
{
    if (!rd || !m || m->pos_ != rd->cursor || !m->size_)
        return MSGR_EINVAL;
    rd->cursor += m->size_;
    publish_cursor(rd);
    return 0;
}

int msgr_bcast_poll(msgr_bcast_reader *rd, msgr_ring_handler fn, void *arg, unsigned max)
{
    if (!rd || !fn)
        return MSGR_EINVAL;
    uint64_t before = rd->cursor;
    int n = 0, rc = 0;
    while ((unsigned)n < max) {
        msgr_msg m;
        rc = msgr_bcast_peek(rd, &m);
        if (rc)
            break;
        rd->cursor += m.size_;
        n++;
        if (fn(arg, &m))
            break;
    }
    if (rd->cursor != before)
        publish_cursor(rd); /* padding skipped counts too: its space is free */
    if (rc && rc != MSGR_EAGAIN)
        return n ? n : rc;
    return n;
}

int msgr_bcast_stats_get(const msgr_bcast *b, msgr_bcast_stats *out)
{
    if (!b || !out)
        return MSGR_EINVAL;
    memset(out, 0, sizeof *out);
    out->tail = atomic_load_explicit(&b->hdr->tail, memory_order_acquire);
    out->capacity = b->cap;
    int n = scan_min(b, out->tail, &out->min_head);
    if (n < 0)
        return n;
    out->readers = (uint32_t)n;
    out->detached = atomic_load_explicit(&b->hdr->detached, memory_order_relaxed);
    out->dropped = atomic_load_explicit(&b->hdr->dropped, memory_order_relaxed);
    return 0;
}
