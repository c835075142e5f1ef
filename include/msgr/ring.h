/* messenger: the lock-free ring (bus layer).
 *
 * A ring carries variable-size records through memory that may be shared between threads,
 * between a process and its forked children, or between independent processes (place it in a
 * region: msgr_region_base() + offset). Every position lives in the shared header, so any process
 * may attach. Payloads are 16-byte aligned; a record never straddles the end of the data area.
 *
 * Zero-copy:   claim(len) -> write in place -> commit         (producer side)
 *              peek -> read in place -> release  /  poll()    (consumer side)
 * Copying:     send / recv, built on the above.
 *
 * Variants, fixed at creation: SPSC (one producer at a time) and MPSC (any number of producer
 * threads and processes; one consumer). In both, exactly one consumer at a time.
 * A full ring never overwrites unconsumed data: claim fails with MSGR_EAGAIN or waits.
 *
 * A producer that dies (SIGKILL at any instant) between claim and commit costs only its own
 * record. SPSC: an uncommitted claim is invisible and the next producer reuses its space.
 * MPSC: after the claim timeout (msgr_ring_opts) the consumer, or a producer waiting for space,
 * checks the claimant (pid and process start time; a zombie counts as dead) and turns the claim
 * into padding; records committed after it are kept. Up to 58 producing threads per ring at
 * once (each thread that claims takes a slot in the header until its handle is closed or its
 * process dies). A live but stalled producer holds up the records behind its claim.
 *
 * Thread-safety of a handle: SPSC: one producer thread and one consumer thread may use the same
 * handle concurrently. MPSC: any number of producer threads and one consumer thread may share it.
 * Calls that are neither producer nor consumer calls (attach, close, stats) are not concurrent.
 */
#ifndef MSGR_RING_H
#define MSGR_RING_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msgr_ring msgr_ring;

/* Ring flags (msgr_ring_opts.flags). */
#define MSGR_RING_SPSC 0x0u
#define MSGR_RING_MPSC 0x1u
/* Each record carries a CRC32C of its header fields and payload (16 bytes more per record, and
 * a CRC per send and per receive): a record damaged in shared memory by a broken or hostile
 * peer is counted (msgr_ring_stats.records_corrupt) and skipped, never delivered. Off by
 * default: without it, a peer that scribbles over payloads is delivered what it wrote (every
 * length and position is still bounds-checked). */
#define MSGR_RING_CHECKSUM 0x2u

/* Size of the ring's shared header; the data area follows it. */
#define MSGR_RING_HDR_SIZE 8192u
/* Smallest and largest data area (bytes; a power of two). */
#define MSGR_RING_MIN_CAPACITY 256u
#define MSGR_RING_MAX_CAPACITY (1ull << 40)
/* Bytes a record takes besides its payload (the record header). */
#define MSGR_RING_RECORD_OVERHEAD 16u
/* Largest payload of any ring (lengths are 32-bit and recv returns an int). */
#define MSGR_RING_MAX_PAYLOAD ((1u << 31) - 16u)
/* Payload alignment: every payload pointer is a multiple of this. */
#define MSGR_RING_ALIGN 16u

/* Creation and attach options. Zero-initialise, then set what you need. */
typedef struct msgr_ring_opts {
    uint32_t size_of;  /* sizeof(msgr_ring_opts), or 0 */
    uint32_t flags;    /* MSGR_RING_SPSC or MSGR_RING_MPSC, | MSGR_RING_CHECKSUM (create only) */
    uint64_t capacity; /* data bytes, a power of two (create only) */
    uint64_t schema;   /* application fingerprint: stored at create; checked at attach when
                          nonzero (MSGR_ESCHEMA if the ring's differs) */
    int64_t claim_timeout_ns; /* MPSC: how long a claim may stay unfinished before its owner's
                                 liveness is checked, for this handle; 0 means 1 s */
} msgr_ring_opts;

/* A claimed record (producer side). claim fills it; before commit the producer writes `len`
 * bytes or fewer at `data`, may lower `len`, and may set `type` and `source`. */
typedef struct msgr_claim {
    void *data;
    uint32_t len;
    uint16_t type;
    uint16_t source;
    uint64_t pos_;  /* private: record position */
    uint32_t size_; /* private: reserved bytes */
    uint32_t claimed_; /* private: length claimed */
} msgr_claim;

/* A record being read in place (consumer side); valid until released. */
typedef struct msgr_msg {
    const void *data;
    uint32_t len;
    uint16_t type;
    uint16_t source;
    uint64_t pos_;  /* private */
    uint32_t size_; /* private */
    uint32_t pad_;
} msgr_msg;

/* Called by msgr_ring_poll for each record, in order; return 0 to go on, nonzero to stop after
 * this record (it counts as consumed either way). `m` is valid only during the call. */
typedef int (*msgr_ring_handler)(void *arg, const msgr_msg *m);

/* Bytes of memory a ring with this capacity needs (header plus data), or 0 if the capacity is
 * not a power of two within [MSGR_RING_MIN_CAPACITY, MSGR_RING_MAX_CAPACITY]. */
MSGR_API size_t msgr_ring_footprint(uint64_t capacity);

/* Largest payload a ring of this capacity accepts: capacity / 2 - 16, at most
 * MSGR_RING_MAX_PAYLOAD (16 bytes less with MSGR_RING_CHECKSUM); 0 for an invalid capacity. */
MSGR_API size_t msgr_ring_max_payload(uint64_t capacity);

/* Formats a new ring in `mem` (64-byte aligned, mem_size >= footprint) and returns a handle.
 * The caller keeps owning `mem`; it must outlive every handle. Errors: MSGR_EINVAL (NULL,
 * misaligned, bad flags, capacity not a power of two or out of range), MSGR_ERANGE (mem_size
 * too small), MSGR_ENOMEM. Not concurrent with any other use of that memory. */
MSGR_API int msgr_ring_create(void *mem, size_t mem_size, const msgr_ring_opts *opts,
                              msgr_ring **out);

/* Attaches to a ring another thread or process created in `mem`, after validating its header
 * (opts may be NULL; its schema, when nonzero, must match). Errors: MSGR_EINVAL, MSGR_ENOTMSGR
 * (wrong magic), MSGR_EVERSION, MSGR_ECORRUPT (capacity not a power of two, positions or sizes
 * out of bounds), MSGR_ERANGE (ring larger than mem_size), MSGR_ESCHEMA, MSGR_ENOMEM. */
MSGR_API int msgr_ring_attach(void *mem, size_t mem_size, const msgr_ring_opts *opts,
                              msgr_ring **out);

/* Frees the handle (not the memory, not the ring's content). NULL is accepted. */
MSGR_API void msgr_ring_close(msgr_ring *r);

/* Capacity, flags and schema fingerprint of the ring. */
MSGR_API uint64_t msgr_ring_capacity(const msgr_ring *r);
MSGR_API uint32_t msgr_ring_flags(const msgr_ring *r);
MSGR_API uint64_t msgr_ring_schema(const msgr_ring *r);

/* Waiting policy of this handle: a waiting call looks `spins` times (8 pause instructions
 * apart), then yields the CPU `yields` times, then sleeps on a futex word in the shared header
 * until woken. Defaults: 4096 and 64. UINT32_MAX spins never sleeps and looks after every pause
 * (lowest latency, one busy core). Set before concurrent use. */
MSGR_API void msgr_ring_set_wait(msgr_ring *r, uint32_t spins, uint32_t yields);

/* ---- producer side ---- */

/* Reserves space for a record of `len` payload bytes. Errors: MSGR_EAGAIN (not enough free
 * space now), MSGR_EMSGSIZE (len above msgr_ring_max_payload), MSGR_EINVAL (NULL),
 * MSGR_ECORRUPT (shared positions out of bounds), MSGR_ENOSPC (MPSC: every producer slot is
 * held by a live thread). Claims must be committed in claim order. */
MSGR_API int msgr_ring_claim(msgr_ring *r, size_t len, msgr_claim *c);

/* As msgr_ring_claim, but waits up to timeout_ns (< 0: no limit) for space.
 * Extra error: MSGR_ETIMEDOUT. */
MSGR_API int msgr_ring_claim_wait(msgr_ring *r, size_t len, msgr_claim *c, int64_t timeout_ns);

/* Publishes a claimed record with c->len (at most the claimed length), c->type and c->source,
 * and wakes a sleeping consumer. Errors: MSGR_EINVAL (NULL, or len above the claimed length). */
MSGR_API int msgr_ring_commit(msgr_ring *r, msgr_claim *c);

/* Gives a claimed record up: it becomes padding that the consumer skips (the space is not
 * returned before the consumer passes it). Use when filling the claim failed. Errors:
 * MSGR_EINVAL (NULL, or a claim already committed or aborted). */
MSGR_API int msgr_ring_abandon(msgr_ring *r, msgr_claim *c);

/* Copies `len` bytes into a new record of type `type` (claim + memcpy + commit).
 * Errors as msgr_ring_claim. */
MSGR_API int msgr_ring_send(msgr_ring *r, uint16_t type, const void *data, size_t len);

/* As msgr_ring_send, waiting up to timeout_ns (< 0: no limit) for space. */
MSGR_API int msgr_ring_send_wait(msgr_ring *r, uint16_t type, const void *data, size_t len,
                                 int64_t timeout_ns);

/* ---- consumer side ---- */

/* Looks at the oldest unconsumed record without consuming it. Errors: MSGR_EAGAIN (empty),
 * MSGR_ECORRUPT (the record's length is out of bounds), MSGR_EINVAL (NULL). */
MSGR_API int msgr_ring_peek(msgr_ring *r, msgr_msg *m);

/* As msgr_ring_peek, but waits up to timeout_ns (< 0: no limit). Extra: MSGR_ETIMEDOUT. */
MSGR_API int msgr_ring_peek_wait(msgr_ring *r, msgr_msg *m, int64_t timeout_ns);

/* Consumes the record `m` returned by the last peek; its space is free for producers when this
 * returns. Errors: MSGR_EINVAL (m is not the oldest unconsumed record). */
MSGR_API int msgr_ring_release(msgr_ring *r, const msgr_msg *m);

/* Hands up to `max` records, in order, to `fn`, releasing them as one batch (their space is
 * free when poll returns). Returns how many
 * were handled (0 if empty), or MSGR_ECORRUPT / MSGR_EINVAL. */
MSGR_API int msgr_ring_poll(msgr_ring *r, msgr_ring_handler fn, void *arg, unsigned max);

/* Throughput over latency for msgr_ring_poll on this handle: when the previous poll ran the ring
 * dry after fewer than `min_batch` records (the consumer had caught up with the producers; a
 * batch cut short by `max` or by the handler does not count), the next poll
 * first pauses `pauses` times so the producers move ahead and fewer looks read the line they
 * are writing (`ring_bench --filter linger` compares settings; bench/README.md has figures).
 * msgr_ring_peek_wait then also looks every `pauses` pauses instead of every 8 while it waits.
 * Adds up to `pauses` pauses of latency per poll; min_batch 0 turns it off (the default);
 * `pauses` is capped at 65536. Consumer side, set before concurrent use. */
MSGR_API void msgr_ring_set_linger(msgr_ring *r, unsigned min_batch, uint32_t pauses);

/* How many polls of this handle paused first (msgr_ring_set_linger), for tuning: a count close
 * to the number of polls says the consumer keeps catching up. Any thread; 0 for NULL. */
MSGR_API uint64_t msgr_ring_lingers(const msgr_ring *r);

/* Copies the oldest record into buf and consumes it. Returns its length (>= 0), MSGR_EAGAIN if
 * empty, MSGR_EMSGSIZE if buf is too small (the record stays; info->len says what is needed).
 * info may be NULL; otherwise it receives len, type and source (data is set to buf). */
MSGR_API int msgr_ring_recv(msgr_ring *r, void *buf, size_t cap, msgr_msg *info);

/* As msgr_ring_recv, waiting up to timeout_ns (< 0: no limit). Extra: MSGR_ETIMEDOUT. */
MSGR_API int msgr_ring_recv_wait(msgr_ring *r, void *buf, size_t cap, msgr_msg *info,
                                 int64_t timeout_ns);

/* Positions, for inspection: bytes ever committed/reserved (tail) and released (head). The
 * values are a racy snapshot while others run. */
typedef struct msgr_ring_stats {
    uint64_t head;
    uint64_t tail;
    uint64_t capacity;
    uint32_t consumer_sleeping;
    uint32_t producers_sleeping;
    uint64_t claims_repaired; /* claims of dead producers turned into padding, ever */
    uint64_t records_corrupt; /* MSGR_RING_CHECKSUM: records that failed it, skipped */
    uint32_t producer_slots;  /* MPSC producer slots held (live or dead owners) */
    uint32_t pad_;
} msgr_ring_stats;
MSGR_API int msgr_ring_stats_get(const msgr_ring *r, msgr_ring_stats *out);

#ifdef __cplusplus
}
#endif
#endif
