/* messenger: the ring's shared header (internal). MSGR_RING_HDR_SIZE bytes, then the data.
 *
 *     0  identity (read-only after creation): magic, version, capacity, salt, flags, schema
 *   128  producer line: tail   (written by producers only)
 *   256  consumer line: head   (written by the consumer only)
 *   384  consumer-wait line: cons_wait (flag written by the consumer when it parks, futex word)
 *   512  producer-wait line: prod_wait (count of parked producers, futex word)
 *   640  repair line: the lock taken to turn a dead producer's claim into padding, and a count
 *   768  producer slots (MPSC): MSGR__RING_SLOTS x 128 bytes, one per producing thread
 *
 * Lines written by different sides are 128 bytes apart: x86 prefetches lines in pairs, so
 * 64-byte separation still makes the two sides fight over one pair. Producer slots are 128
 * bytes for the same reason: each is written by its own thread on every claim and commit, and
 * read by others only when a claim has been unfinished for the claim timeout.
 *
 * Dead producers (MPSC): a producer extends its slot's range over the space it is about to
 * reserve *before* the compare-and-swap on tail, and clears the range when it holds no claim;
 * so every unfinished claim in [head, tail) lies in its thread's range. Whoever finds the claim
 * at the consumer's position unfinished for the claim timeout (the consumer, or a producer
 * waiting for space) takes the repair lock; if no live slot's range holds the position and a
 * dead one's does (pid and start time; a zombie is dead), it writes a padding record from the
 * position to the next record boundary (a committed record, another range's start, or the
 * dead range's end). A claim in no range is repaired only when every registered producer is
 * dead (not expected: only a claim committed from another thread than its own). An SPSC ring
 * needs none of this: its
 * tail is published at commit, so a claim never committed is invisible and the next producer
 * reuses its space.
 */
#ifndef MSGR_RING_LAYOUT_H
#define MSGR_RING_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "msgr/ring.h"
#include "wait.h"

#define MSGR__RING_MAGIC 0x31474e5252534d4dull /* "MMSRRNG1" little-endian */
#define MSGR__RING_VERSION 2u
#define MSGR__LINE 128
#define MSGR__RING_SLOTS_AT 768u
#define MSGR__RING_SLOTS ((MSGR_RING_HDR_SIZE - MSGR__RING_SLOTS_AT) / 128u)
#define MSGR__RPOS_NONE UINT64_MAX

/* One producing thread's slot: [pos, pos + size) covers every claim the thread holds, from its
 * oldest to its latest (and the reservation it is about to try); pos NONE when it holds none.
 * Other threads' records may lie inside the range: it is only ever used to say "this live
 * thread may own that position". One writer, its thread; read by repairers. */
typedef struct msgr__rslot {
    _Atomic int32_t pid;   /* 0: free */
    _Atomic uint32_t count; /* claims the thread holds */
    _Atomic uint64_t start; /* the owner's process start time (pid reuse) */
    _Atomic uint64_t pos;
    _Atomic uint64_t size;  /* bytes from pos, wrap padding included */
    uint8_t pad1[128 - 32];
} msgr__rslot;
_Static_assert(sizeof(msgr__rslot) == 128, "producer slot is 128 bytes");

typedef struct msgr__ring_hdr {
    /* identity */
    _Atomic uint64_t magic; /* stored last at creation (release) */
    uint32_t version;
    uint32_t hdr_size;
    uint64_t capacity;
    uint64_t salt;
    uint64_t schema;
    uint32_t flags;
    int32_t creator_pid;
    uint8_t pad0[MSGR__LINE - 48];
    /* producer line */
    _Atomic uint64_t tail;
    uint8_t pad1[MSGR__LINE - 8];
    /* consumer line */
    _Atomic uint64_t head;
    uint8_t pad2[MSGR__LINE - 8];
    /* consumer-wait line: a flag (one consumer) and its futex word */
    msgr__waitq cons_wait;
    uint8_t pad3[MSGR__LINE - 8];
    /* producer-wait line: a count of sleeping producers and their futex word */
    msgr__waitq prod_wait;
    uint8_t pad4[MSGR__LINE - 8];
    /* repair line */
    _Atomic int32_t repair_pid;     /* holder of the repair lock, 0: free */
    uint32_t pad5;
    _Atomic uint64_t repair_start;  /* its start time, 0 while being taken */
    _Atomic uint64_t repaired;      /* claims turned into padding, ever */
    _Atomic uint64_t corrupt;       /* MSGR_RING_CHECKSUM: records that failed it, skipped */
    uint8_t pad6[MSGR__LINE - 32];
    msgr__rslot slots[MSGR__RING_SLOTS];
} msgr__ring_hdr;

_Static_assert(sizeof(msgr__ring_hdr) == MSGR_RING_HDR_SIZE, "ring header size");
_Static_assert(offsetof(msgr__ring_hdr, tail) == 128, "producer line at 128");
_Static_assert(offsetof(msgr__ring_hdr, head) == 256, "consumer line at 256");
_Static_assert(offsetof(msgr__ring_hdr, cons_wait) == 384, "consumer-wait line at 384");
_Static_assert(offsetof(msgr__ring_hdr, prod_wait) == 512, "producer-wait line at 512");
_Static_assert(offsetof(msgr__ring_hdr, repair_pid) == 640, "repair line at 640");
_Static_assert(offsetof(msgr__ring_hdr, slots) == MSGR__RING_SLOTS_AT, "slots at 768");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free to be shared");

#endif
