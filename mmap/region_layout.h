/* messenger: the region header, as it lies at offset 0 of every mapping (internal).
 *
 *   0        8        12       16             24             32
 *   +--------+--------+--------+--------------+--------------+---------+----------------+
 *   | magic  | version| hdr_sz | size (usable)| max_size     | flags...| reserved -> 256 |
 *   +--------+--------+--------+--------------+--------------+---------+----------------+
 *   256: first usable byte (msgr_region_base)
 *
 * Shared with other processes and persisted in files: fixed-width fields, no pointers, and
 * everything read from it is validated before use (msgr__region_hdr_check).
 */
#ifndef MSGR_REGION_LAYOUT_H
#define MSGR_REGION_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "msgr/region.h"

#define MSGR__REGION_MAGIC 0x314745524752534dull /* "MSRGREG1" little-endian */
#define MSGR__REGION_VERSION 1u
#define MSGR__REGION_HDR_SIZE 256u

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to be shared");

typedef struct msgr__region_hdr {
    _Atomic uint64_t magic;    /* written last at creation (release), so a half-made region
                                  reads as "not a messenger region", never as garbage */
    uint32_t version;
    uint32_t hdr_size;
    _Atomic uint64_t size;     /* usable bytes backed now; only grows */
    uint64_t max_size;         /* usable bytes the region may grow to (== size if fixed) */
    uint32_t flags;            /* MSGR_REGION_GROWABLE */
    uint32_t kind;             /* msgr_region_kind at creation */
    int32_t creator_pid;
    uint32_t reserved0;
    uint64_t creator_start;    /* the creator's process start time (0 from older files) */
    uint8_t reserved[256 - 56];
} msgr__region_hdr;

_Static_assert(sizeof(msgr__region_hdr) == MSGR__REGION_HDR_SIZE, "region header is 256 bytes");
_Static_assert(offsetof(msgr__region_hdr, size) == 16, "region header layout");

/* Checks a header read from an object of `object_bytes` bytes. Returns 0 or MSGR_ENOTMSGR,
 * MSGR_EVERSION, MSGR_ECORRUPT. Reads only; does not trust any field. */
int msgr__region_hdr_check(const msgr__region_hdr *h, uint64_t object_bytes);

/* Validates a shared-memory name and writes "/name" into buf (MSGR_REGION_NAME_MAX + 2 bytes).
 * Returns 0, MSGR_EINVAL or MSGR_ENAMETOOLONG. */
int msgr__region_shm_name(const char *name, char *buf);

/* Shared by the platform files (region.c). */
int msgr__region_opts_check(const msgr_region_opts *o, uint64_t size, uint64_t *max_out);
void msgr__region_hdr_init(msgr__region_hdr *h, uint64_t usable, uint64_t max_usable,
                           uint32_t flags, msgr_region_kind kind);
/* Raises the header's usable size to `usable` (never lowers it), with release. */
void msgr__region_size_publish(msgr__region_hdr *h, uint64_t usable);
/* Writes every page of [map, map + bytes) without changing it (prefault by touching). */
void msgr__region_touch(uint8_t *map, uint64_t bytes);

/* Total mapping bytes for `size` usable bytes: header plus size, rounded up to the page size.
 * Returns 0 if size is 0 or too large. */
uint64_t msgr__region_total(uint64_t size);

#endif
