/* messenger: the ring's shared header (internal). MSGR_RING_HDR_SIZE bytes, then the data.
 *
 *     0  identity (read-only after creation): magic, version, capacity, salt, flags, schema
 *   128  producer line: tail   (written by producers only)
 *   256  consumer line: head   (written by the consumer only)
 *   384  consumer-wait line: cons_wait (flag written by the consumer when it parks, futex word)
 *   512  producer-wait line: prod_wait (count of parked producers, futex word)
 *   640  reserved (pid table for dead-producer detection) up to 1024
 *
 * Lines written by different sides are 128 bytes apart: x86 prefetches lines in pairs, so
 * 64-byte separation still makes the two sides fight over one pair.
 */
#ifndef MSGR_RING_LAYOUT_H
#define MSGR_RING_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "msgr/ring.h"
#include "wait.h"

#define MSGR__RING_MAGIC 0x31474e5252534d4dull /* "MMSRRNG1" little-endian */
#define MSGR__RING_VERSION 1u
#define MSGR__LINE 128

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
    uint8_t reserved[MSGR_RING_HDR_SIZE - 5 * MSGR__LINE];
} msgr__ring_hdr;

_Static_assert(sizeof(msgr__ring_hdr) == MSGR_RING_HDR_SIZE, "ring header size");
_Static_assert(offsetof(msgr__ring_hdr, tail) == 128, "producer line at 128");
_Static_assert(offsetof(msgr__ring_hdr, head) == 256, "consumer line at 256");
_Static_assert(offsetof(msgr__ring_hdr, cons_wait) == 384, "consumer-wait line at 384");
_Static_assert(offsetof(msgr__ring_hdr, prod_wait) == 512, "producer-wait line at 512");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free to be shared");

#endif
