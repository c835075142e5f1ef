/* messenger: the record format inside a ring's data area (internal).
 *
 *   position p (16-aligned)
 *   +----------------------+----------+--------+--------+-------------------------+
 *   | tag (8): commit word | len (4)  | type(2)|source 2| payload, padded to 16   |
 *   +----------------------+----------+--------+--------+-------------------------+
 *
 * tag == ((p | flags) ^ salt) once the record is committed, where p is the record's full 64-bit
 * position and salt a random number fixed when the ring was made. The consumer at position p
 * accepts a record only if its tag says exactly p, so bytes left from an earlier lap (an old
 * payload or an old header at the same offset) never pass for a new record: an old header names
 * an older position, and an old payload would have to contain a value derived from the secret
 * salt. Positions are multiples of 16, which frees the low four bits for flags.
 */
#ifndef MSGR_RECORD_H
#define MSGR_RECORD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MSGR__REC_COMMITTED 0x1u /* set in every written tag */
#define MSGR__REC_SKIP      0x2u /* padding: the consumer steps over it */
#define MSGR__REC_FLAGS     0xfull

typedef struct msgr__rec {
    _Atomic uint64_t tag;
    uint32_t len;
    uint16_t type;
    uint16_t source;
} msgr__rec;

_Static_assert(sizeof(msgr__rec) == 16, "record header is 16 bytes");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared");

/* A record's len, type and source as the 8 bytes they occupy after its tag (the ring's and
 * the log's record headers agree there): what record checksums cover besides the payload. */
static inline uint64_t msgr__rec_word1(uint32_t len, uint16_t type, uint16_t source)
{
    struct {
        uint32_t len;
        uint16_t type, source;
    } f = {len, type, source};
    _Static_assert(sizeof f == 8 && offsetof(msgr__rec, source) - offsetof(msgr__rec, len) == 6,
                   "len, type and source are 8 contiguous bytes in the record");
    uint64_t w1;
    memcpy(&w1, &f, 8);
    return w1;
}

/* A record checksum's seed: its position folded to 32 bits (positions are multiples of 16, so
 * bits 4 to 35 go in as they are). A position and the one a lap later never share a seed: the
 * lap adds 2^j (j >= 8) to pos >> 4, which flips bit j and any carry above it in the low word,
 * and a carry into the high word flips its bits from 0 up, which cannot cancel bits from j up. */
static inline uint32_t msgr__rec_seed(uint64_t pos)
{
    return (uint32_t)(pos >> 4) ^ (uint32_t)(pos >> 36);
}

/* Bytes a record with `len` payload bytes occupies. */
static inline uint64_t msgr__rec_size(uint64_t len)
{
    return sizeof(msgr__rec) + ((len + 15u) & ~(uint64_t)15u);
}

#endif
