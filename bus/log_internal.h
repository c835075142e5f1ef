/* messenger: the persistent log's file layout and handles (internal).
 *
 * File: region header (256 bytes, mmap/) | log header (hdr_size) | data (capacity bytes)
 *
 * Log header:
 *      0  identity: magic, version, sizes, salt, policy, flags (read-only after creation)
 *    128  tail: next position to claim (producers CAS it; a single-producer log's appender
 *         stores it), and the single-producer append lock: holder pid and start time, and
 *         the tail when it took the lock
 *    256  start: oldest retained position (moves forward when every group has acknowledged)
 *    384  data_wait: readers sleeping for new records
 *    512  space_wait: producers sleeping for space
 *    640  sync bookkeeping (batch policy), recovery lock
 *   1024  groups[max_groups] (128 bytes each), then producers[max_producers] (64 bytes each)
 *
 * Records (positions are multiples of 16; nothing straddles the end of the data area):
 *   record: tag u64 | len u32 | type u16 | source u16 | crc u32 | reserved u32 | u64 (zero) |
 *           payload, padded to 16
 *   skip:   tag u64 | size u32 (whole skip, >= 16) | crc u32            (padding, 16 bytes min)
 * tag = (position | state) ^ salt, state COMMITTED or COMMITTED|SKIP (a claim in progress has
 * no tag yet: its producer slot records position and size). A record is
 * taken only if its tag names its own position (stale bytes from an earlier lap never match)
 * and, once committed, its CRC32C matches (msgr__lrec_crc: seeded by the position, over the
 * header fields and the payload).
 */
#ifndef MSGR_LOG_INTERNAL_H
#define MSGR_LOG_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "msgr/log.h"
#include "record.h"
#include "crc32c.h"
#include "durable.h"
#include "named.h"
#include "msgr/region.h"
#include "wait.h"

#define MSGR__LOG_MAGIC 0x31474f4c52534d4dull /* "MMSRLOG1" little-endian */
/* The file format. 3, not 1: development builds wrote formats 1 and 2 (another record
 * checksum), and a library that knows only those refuses this one. */
#define MSGR__LOG_VERSION 3u
#define MSGR__LREC_HDR 32u
#define MSGR__LSKIP_MIN 16u
#define MSGR__L_COMMITTED 0x1u
#define MSGR__L_SKIP 0x2u
#define MSGR__L_FLAGS 0xfull
#define MSGR__NONE UINT64_MAX /* "no position" in producer slots */

typedef struct msgr__lrec {
    _Atomic uint64_t tag;
    uint32_t len;
    uint16_t type;
    uint16_t source;
    uint32_t crc;
    uint32_t reserved;
    uint64_t zero;  /* written 0; keeps the header at 32 bytes */
} msgr__lrec;
_Static_assert(sizeof(msgr__lrec) == MSGR__LREC_HDR, "log record header is 32 bytes");

typedef struct msgr__lskip {
    _Atomic uint64_t tag;
    uint32_t size;
    uint32_t crc;
} msgr__lskip;

/* A consumer group: a named entry whose position is its acknowledged position (named.h). */
typedef msgr__named_entry msgr__lgroup;

/* A producer slot, one per appending thread of a log handle: who may hold a claim, and which.
 * `intent` is stored before the CAS on tail and `claimed` after it, so a claim whose owner died
 * is always attributable. One writer (that thread), so plain stores do. */
typedef struct msgr__lprod {
    _Atomic int32_t pid;
    _Atomic uint32_t claimed_size; /* bytes of the claim at `claimed` */
    _Atomic uint64_t start;
    _Atomic uint64_t intent;
    _Atomic uint64_t claimed;
    uint8_t pad[64 - 32];
} msgr__lprod;
_Static_assert(sizeof(msgr__lprod) == 64, "producer slot is 64 bytes");

typedef struct msgr__log_hdr {
    _Atomic uint64_t magic;
    uint32_t version;
    uint32_t hdr_size;
    uint64_t capacity;
    uint64_t salt;
    uint32_t max_groups;
    uint32_t max_producers;
    uint32_t sync;
    uint32_t batch_ms;
    uint32_t batch_records;
    uint32_t flags; /* MSGR_LOG_SINGLE_PRODUCER (0 in files made before it existed) */
    uint64_t created_ns;
    uint8_t pad0[128 - 64];
    _Atomic uint64_t tail;
    /* The append lock of a single-producer log (0 pid: free). Written only when it changes
     * hands; read by appenders taking it and by readers judging an unfinished claim. */
    _Atomic int32_t app_pid;
    uint32_t app_pad;
    _Atomic uint64_t app_start; /* holder's start time (pid reuse); 0 while being taken */
    _Atomic uint64_t app_from;  /* tail when the holder took the lock */
    uint8_t pad1[128 - 32];
    _Atomic uint64_t start;
    uint8_t pad2[120];
    msgr__waitq data_wait;
    uint8_t pad3[120];
    msgr__waitq space_wait;
    uint8_t pad4[120];
    _Atomic uint64_t sync_pending;
    _Atomic uint64_t last_sync_ns;
    _Atomic uint64_t recovering_start; /* ... and that process's start time (pid reuse) */
    _Atomic int32_t recovering;        /* pid holding the recovery lock, or 0 */
    uint8_t pad5[1024 - 640 - 28];
} msgr__log_hdr;
_Static_assert(sizeof(msgr__log_hdr) == 1024, "log header (fixed part) is 1024 bytes");
_Static_assert(offsetof(msgr__log_hdr, tail) == 128, "tail line");
_Static_assert(offsetof(msgr__log_hdr, start) == 256, "start line");
_Static_assert(offsetof(msgr__log_hdr, data_wait) == 384, "data_wait line");
_Static_assert(offsetof(msgr__log_hdr, app_from) + 8 <= 256, "append lock in the tail line");

struct msgr_log {
    msgr_region *region;
    msgr__log_hdr *hdr;
    msgr__lgroup *groups;
    msgr__lprod *prods;
    uint8_t *data;
    uint64_t cap, mask, salt, max_payload;
    int64_t claim_timeout;
    msgr__wait_policy wait;
    uint64_t id;            /* unique per handle in this process (thread-local slot cache key) */
    _Atomic uint64_t *mine; /* bitmap of producer slots this handle's threads registered */
    /* Which slot each thread of this handle took (slow path, under map_lock): a thread that
     * moves between handles finds its slot again instead of taking a new one each time. */
    atomic_flag map_lock;
    uint32_t n_map;
    struct msgr__lthread { uintptr_t thread; uint32_t slot; } *map;
    _Atomic int failed;     /* a sync failed: refuse further commits (MSGR_EIO) */
    int32_t pid;
    uint64_t pid_start;
    int sync_none; /* the header's policy is MSGR_SYNC_NONE (commit skips the sync step) */
    int single;    /* MSGR_LOG_SINGLE_PRODUCER: appends go through the append lock */
    /* The single-producer appender's own state, on a line of its own: the reader threads of
     * this handle read the fields above on every record. */
    _Alignas(128) int sp_held; /* this handle holds the append lock */
    uint64_t sp_tail;          /* the tail as this appender last stored it */
    uint64_t sp_claim;         /* its latest claim not yet committed or aborted, or NONE */
    uint32_t sp_claim_size;
};

struct msgr_log_reader {
    msgr_log *log;
    uint32_t group;
    uint64_t pos;           /* next position to read */
    uint64_t blocked_since; /* when reading first found pos unfinished (0: not blocked) */
    uint32_t misses;        /* looks in a row that found nothing committed */
    uint32_t run;           /* records read since a read last found nothing */
    uint32_t last_batch;    /* records the last msgr_log_poll handed over if it ran dry */
    uint64_t lingers;       /* reads and polls that paused first (msgr_log_reader_lingers) */
    uint32_t linger_min, linger_pauses; /* msgr_log_reader_set_linger */
};

/* A zeroed allocation of whole 128-byte line pairs, aligned to them: a reader handle (written
 * by its consumer thread on every record) must not share a line with the log handle (read by
 * producer threads on every record), or each record costs a cache-line transfer. */
void *msgr__lalloc(size_t size);

/* Shared by the log's files. */
static inline uint64_t msgr__lrec_size(uint64_t len)
{
    return MSGR__LREC_HDR + ((len + 15u) & ~(uint64_t)15u);
}
/* The calling thread's producer slot (taken on first use; also taken at open, so that an
 * opener is visible to others before it looks for them). Index, or MSGR_ENOSPC. */
int msgr__lprod_slot(msgr_log *log);

/* Releases this handle's producer slots; an uncommitted claim left in one becomes padding. */
void msgr__lrelease_slots(msgr_log *log);

/* Describes the committed record at position p (size bytes, already bounds-checked) in m. */
static inline void msgr__lrec_msg(const msgr_log *log, uint64_t p, uint64_t size, msgr_msg *m)
{
    const msgr__lrec *r = (const msgr__lrec *)(log->data + (p & log->mask));
    m->data = r + 1;
    m->len = r->len;
    m->type = r->type;
    m->source = r->source;
    m->pos_ = p;
    m->size_ = (uint32_t)size;
}

/* The record's CRC32C: seeded by the position (msgr__lrec_seed), over len/type/source
 * (msgr__lrec_word1) and the payload. Commit computes the same from the values it stores:
 * reading back a header just stored would stall on store forwarding. */
uint32_t msgr__lrec_crc(uint64_t pos, const msgr__lrec *r, const void *payload);

/* A record's CRC seed (msgr__rec_seed: a position and the one a lap later never
 * share one, so the previous lap's record under a torn new tag fails its CRC). */
static inline uint32_t msgr__lrec_seed(uint64_t pos) { return msgr__rec_seed(pos); }

/* The record's len, type and source as the 8 bytes they occupy in its header. */
static inline uint64_t msgr__lrec_word1(uint32_t len, uint16_t type, uint16_t source)
{
    _Static_assert(offsetof(msgr__lrec, len) == offsetof(msgr__rec, len) &&
                   offsetof(msgr__lrec, source) == offsetof(msgr__rec, source),
                   "the log's record header has the ring's len, type and source");
    return msgr__rec_word1(len, type, source);
}

void msgr__lwrite_skip(msgr_log *log, uint64_t pos, uint64_t size);

/* Whether the holder of a lock recorded as (pid, start time) runs: pid and start time name one
 * process (a reused pid is not it); a start time of 0 means the holder is between taking the
 * lock and recording it, judged by its pid alone. */
static inline int msgr__lholder_alive(int32_t pid, uint64_t start)
{
    return msgr_os_owner_alive(pid, start);
}

/* Whether a producer slot's owner runs. A negative pid is an owner between taking the slot
 * and recording its start time (msgr__lprod_slot()), judged by its pid alone. */
static inline int msgr__lslot_alive(int32_t pid, uint64_t start)
{
    if (pid < 0) /* from the file: INT32_MIN has no positive twin */
        return pid != INT32_MIN && msgr_os_pid_alive(-pid);
    return pid > 0 && msgr_os_proc_alive(pid, start);
}

/* The single-producer append lock's live holder: its pid, or 0 when the lock is free or its
 * holder is dead (pid and start time; a start time of 0 means the holder is between taking
 * the lock and recording it, judged by its pid alone). *from: the tail when it took it. */
int32_t msgr__lapp_holder(const msgr_log *log, uint64_t *from);

/* Gives the append lock up if this handle holds it; its unfinished claim becomes padding. */
void msgr__lrelease_append(msgr_log *log);

/* Classifies the record at pos: returns its size and sets *state (COMMITTED or
 * COMMITTED|SKIP) if a committed record is there; 0 if none is; MSGR_ECORRUPT (negative) if
 * one is there but fails its bounds or (with `how` = MSGR__LREC_CRC) its CRC check. */
#define MSGR__LREC_CRC 1
int64_t msgr__lrec_at(msgr_log *log, uint64_t pos, uint32_t *state, int how);

/* First position in (pos, limit) where a valid record starts, or 0 if none. */
uint64_t msgr__lscan_next(msgr_log *log, uint64_t pos, uint64_t limit);

/* Moves start up to the slowest group's acknowledgement. */
void msgr__ladvance_start(msgr_log *log);

/* Applies the sync policy after a commit or an acknowledgement touching [addr, addr+len). */
int msgr__lsync_after(msgr_log *log, void *addr, size_t len);

/* Validates every record from start and repairs what a crash left (log_recover.c; see log.h).
 * Runs only when no live process uses the log, under the recovery lock. */
int msgr__lrecover(msgr_log *log, msgr_log_recovery *rep);

/* A reader held up at pos by a claim older than the claim timeout: pads it if its producer is
 * dead (or, in a single-producer log, the append lock's holder is). Returns 1 if it did. */
int msgr__lrepair(msgr_log *log, uint64_t pos);

#endif
