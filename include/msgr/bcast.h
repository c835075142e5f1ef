/* messenger: the broadcast ring (bus layer).
 *
 * One producer writes each record once; up to MSGR_BCAST_MAX_READERS readers read it in place,
 * each with its own cursor. Space is reused only behind the slowest reader, so the ring is
 * lossless: a slow reader holds the producer back (claim fails with MSGR_EAGAIN or waits) and is
 * never lapped, and no reader ever sees a record being overwritten. A reader whose process dies
 * (SIGKILL at any instant; a zombie counts as dead) is detached once it holds the producer back
 * for the liveness interval, so it cannot stall the others for ever.
 *
 * Like msgr_ring, the ring lives in memory the caller provides (threads, forked children, or a
 * region shared by unrelated processes); every position is in the shared header. A reader
 * receives the records committed after it joined, in order, each once. Records committed while
 * no reader is joined are dropped (counted in msgr_bcast_stats.dropped).
 *
 * Thread-safety: one producer thread at a time per ring (claim, commit, send); each reader
 * handle is used by one thread at a time; different readers run concurrently with each other
 * and with the producer. Attach, join, leave and close are not concurrent with other calls on
 * the same handle.
 */
#ifndef MSGR_BCAST_H
#define MSGR_BCAST_H

#include "export.h"
#include "ring.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msgr_bcast msgr_bcast;
typedef struct msgr_bcast_reader msgr_bcast_reader;

/* Readers one ring can have joined at once. */
#define MSGR_BCAST_MAX_READERS 32u
/* Size of the shared header; the data area follows it. */
#define MSGR_BCAST_HDR_SIZE 4096u

/* Creation and attach options. Zero-initialise, then set what you need. */
typedef struct msgr_bcast_opts {
    uint32_t size_of;  /* sizeof(msgr_bcast_opts), or 0 */
    uint32_t flags;    /* none yet: 0 */
    uint64_t capacity; /* data bytes, a power of two in [MSGR_RING_MIN_CAPACITY,
                          MSGR_RING_MAX_CAPACITY] (create only) */
    uint64_t schema;   /* application fingerprint: stored at create; checked at attach when
                          nonzero (MSGR_ESCHEMA if the ring's differs) */
    int64_t liveness_ns; /* for this handle's waiting producer: how long a reader may hold it
                            back before its process is checked; 0 means 10 ms */
} msgr_bcast_opts;

/* Bytes of memory a broadcast ring of this capacity needs, or 0 for an invalid capacity. */
MSGR_API size_t msgr_bcast_footprint(uint64_t capacity);

/* Largest payload a ring of this capacity accepts (capacity / 2 - 16), 0 if invalid. */
MSGR_API size_t msgr_bcast_max_payload(uint64_t capacity);

/* Formats a new broadcast ring in `mem` (64-byte aligned) and returns a handle; the caller keeps
 * owning `mem`, which must outlive every handle. Errors: MSGR_EINVAL (NULL, misaligned, flags,
 * capacity), MSGR_ERANGE (mem_size below the footprint), MSGR_ENOMEM. */
MSGR_API int msgr_bcast_create(void *mem, size_t mem_size, const msgr_bcast_opts *opts,
                               msgr_bcast **out);

/* Attaches to a broadcast ring created in `mem` by another thread or process, after checking
 * its header. Errors: MSGR_EINVAL, MSGR_ENOTMSGR, MSGR_EVERSION, MSGR_ECORRUPT (capacity or
 * positions out of bounds), MSGR_ERANGE (ring larger than mem_size), MSGR_ESCHEMA, MSGR_ENOMEM. */
MSGR_API int msgr_bcast_attach(void *mem, size_t mem_size, const msgr_bcast_opts *opts,
                               msgr_bcast **out);

/* Frees the handle (not the memory). Readers joined through it must have left. NULL is fine. */
MSGR_API void msgr_bcast_close(msgr_bcast *b);

/* Capacity of the ring's data area. */
MSGR_API uint64_t msgr_bcast_capacity(const msgr_bcast *b);

/* Waiting policy of this handle and of readers joined through it later, as msgr_ring_set_wait
 * (spins, then yields, then a futex sleep; UINT32_MAX spins never sleeps). */
MSGR_API void msgr_bcast_set_wait(msgr_bcast *b, uint32_t spins, uint32_t yields);

/* ---- producer side (one thread at a time) ---- */

/* Reserves space for a record of `len` payload bytes; fill c->data, set c->len (at most the
 * claimed length), c->type and c->source, then commit. A claim never committed is simply
 * reused by the next one. Errors: MSGR_EAGAIN (the slowest reader holds the space),
 * MSGR_EMSGSIZE, MSGR_EINVAL, MSGR_ECORRUPT (a reader's shared cursor is out of bounds). */
MSGR_API int msgr_bcast_claim(msgr_bcast *b, size_t len, msgr_claim *c);

/* As msgr_bcast_claim, but waits up to timeout_ns (< 0: no limit) for the readers to free
 * space, detaching readers whose process died. Extra error: MSGR_ETIMEDOUT. */
MSGR_API int msgr_bcast_claim_wait(msgr_bcast *b, size_t len, msgr_claim *c, int64_t timeout_ns);

/* Publishes the claimed record to every joined reader and wakes the sleeping ones.
 * Errors: MSGR_EINVAL (NULL, no claim, or c->len above the claimed length). */
MSGR_API int msgr_bcast_commit(msgr_bcast *b, msgr_claim *c);

/* claim_wait + memcpy + commit. Errors as msgr_bcast_claim_wait. */
MSGR_API int msgr_bcast_send(msgr_bcast *b, uint16_t type, const void *data, size_t len,
                             int64_t timeout_ns);

/* ---- reader side ---- */

/* Joins the ring as a new reader of this process, reading the records committed from now on.
 * The reader belongs to the calling process (its pid and start time are recorded for the
 * liveness check). Errors: MSGR_EINVAL, MSGR_ENOSPC (MSGR_BCAST_MAX_READERS already joined),
 * MSGR_ENOMEM. */
MSGR_API int msgr_bcast_join(msgr_bcast *b, msgr_bcast_reader **out);

/* Leaves the ring (the producer no longer waits for this reader) and frees the handle. NULL
 * is fine. */
MSGR_API void msgr_bcast_leave(msgr_bcast_reader *rd);

/* Looks at this reader's next record without consuming it. Errors: MSGR_EAGAIN (none yet),
 * MSGR_ECORRUPT (a record header or the shared tail is out of bounds), MSGR_ESTATE (this
 * reader was detached: its slot was given up as dead), MSGR_EINVAL. */
MSGR_API int msgr_bcast_peek(msgr_bcast_reader *rd, msgr_msg *m);

/* As msgr_bcast_peek, waiting up to timeout_ns (< 0: no limit). Extra: MSGR_ETIMEDOUT. */
MSGR_API int msgr_bcast_peek_wait(msgr_bcast_reader *rd, msgr_msg *m, int64_t timeout_ns);

/* Consumes the record the last peek returned; once every reader has, its space may be reused.
 * Errors: MSGR_EINVAL (m is not this reader's next record). */
MSGR_API int msgr_bcast_release(msgr_bcast_reader *rd, const msgr_msg *m);

/* Hands up to `max` records, in order, to `fn` (return nonzero to stop after a record), and
 * releases them as one batch. Returns how many were handled (0 if none), or an error as peek. */
MSGR_API int msgr_bcast_poll(msgr_bcast_reader *rd, msgr_ring_handler fn, void *arg,
                             unsigned max);

/* A racy snapshot, for inspection. */
typedef struct msgr_bcast_stats {
    uint64_t tail;     /* bytes ever committed */
    uint64_t min_head; /* the slowest joined reader's position (tail when none) */
    uint64_t capacity;
    uint32_t readers;  /* joined now */
    uint32_t pad_;
    uint64_t detached; /* readers detached because their process died, ever */
    uint64_t dropped;  /* records committed while no reader was joined, ever */
} msgr_bcast_stats;
MSGR_API int msgr_bcast_stats_get(const msgr_bcast *b, msgr_bcast_stats *out);

#ifdef __cplusplus
}
#endif
#endif
