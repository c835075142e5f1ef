/* messenger: the ring's handle and the helpers its files share (internal).
 *
 * The ring is split by concept: ring.c (making, attaching, closing, inspecting a handle),
 * ring_claim.c (the producer side and its MPSC slots), ring_read.c (the consumer side) and
 * ring_repair.c (turning a dead producer's unfinished claim into padding). The shared layout
 * and the dead-producer argument are in ring_layout.h; the fast path is described in ring.c.
 */
#ifndef MSGR_RING_INTERNAL_H
#define MSGR_RING_INTERNAL_H

#include "ring_layout.h"
#include "record.h"
#include "claim.h"
#include "hot.h"
#include "crc32c.h"
#include "msgr/error.h"
#include "os/os.h"

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
static inline uint32_t rec_crc(uint64_t pos, uint32_t len, uint16_t type, uint16_t source,
                        const void *payload)
{
    return msgr__crc32c_seeded(msgr__rec_seed(pos), msgr__rec_word1(len, type, source), payload,
                               len);
}

/* Writes and publishes a padding record of `bytes` (>= 16) at pos. */
static inline void write_skip(msgr_ring *r, uint64_t pos, uint64_t bytes, memory_order mo)
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

static inline void lock_handle(msgr_ring *r)
{
    while (atomic_flag_test_and_set_explicit(&r->lock, memory_order_acquire))
        msgr_os_cpu_relax();
}

static inline void unlock_handle(msgr_ring *r) { atomic_flag_clear_explicit(&r->lock, memory_order_release); }

/* Under the handle lock: this process's pid and start time, read again in a forked child. */
static inline void refresh_self(msgr_ring *r, uint32_t gen)
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
static inline int owner_alive(int32_t pid, uint64_t start)
{
    if (pid < 0) /* a slot being taken (slot_take()); INT32_MIN (shared memory) has no twin */
        return pid != INT32_MIN && msgr_os_pid_alive(-pid);
    return msgr_os_owner_alive(pid, start);
}

static inline int committed_at(const msgr_ring *r, uint64_t pos)
{
    /* A1 (see peek_one() in ring_read.c). */
    uint64_t t = atomic_load_explicit(&rec_at(r, pos)->tag, memory_order_acquire) ^ r->salt;
    return (t & ~MSGR__REC_FLAGS) == pos && (t & MSGR__REC_COMMITTED);
}

/* ring_claim.c */
void msgr__ring_producer_init(msgr_ring *r);
void msgr__ring_release_slots(msgr_ring *r);

/* ring_repair.c (slow paths) */
MSGR_COLD_SHARED int msgr__ring_repair_at(msgr_ring *r, uint64_t pos);
MSGR_COLD_SHARED int msgr__ring_consumer_stuck(msgr_ring *r, uint64_t pos);
MSGR_COLD_SHARED void msgr__ring_pad_own_claims(msgr_ring *r, msgr__rslot *mine, uint64_t sp);

#endif
