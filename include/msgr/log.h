/* messenger: the persistent log (a file-backed bus).
 *
 * A log is a ring of records in a file. Producers (any threads, any processes) append; named
 * consumer groups read in order and acknowledge. A record stays until every group has
 * acknowledged it; then its space is reused (garbage collection). With no group at all the log
 * keeps everything until it is full, then appends wait or fail (back-pressure).
 *
 * What survives what:
 *   - a crash (kill -9) of any process, at any instant: every committed record, in order; a
 *     group restarts after its last acknowledgement (at-least-once: a record handled but not
 *     yet acknowledged is delivered again). A producer killed between claim and commit loses
 *     only that record: after claim_timeout its claim is found abandoned (its process is gone;
 *     pid plus start time, so a reused pid is not mistaken for it) and skipped.
 *   - an operating-system crash or power loss: what the sync policy flushed (MSGR_SYNC_*).
 * Every record carries its sequence number and a CRC32C. Opening a log that no live process
 * uses validates it and repairs what a crash left: abandoned claims become padding, and the
 * log ends before the first record that is torn, zeroed, out of bounds or fails its CRC (the
 * report says what was discarded). A corrupt or foreign header is an error, never a crash.
 *
 * Sequence numbers are log positions: strictly increasing, unique for the life of the file,
 * not dense (they advance by record sizes). They order records and de-duplicate redeliveries.
 */
#ifndef MSGR_LOG_H
#define MSGR_LOG_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msgr_log msgr_log;
typedef struct msgr_log_reader msgr_log_reader;

/* Sync policies. none: survives process crashes (the page cache holds committed records);
 * batch: msync every batch_ms milliseconds or batch_records records (checked at commit);
 * always: msync before commit returns (and before an acknowledgement returns). */
typedef enum msgr_sync {
    MSGR_SYNC_NONE = 0,
    MSGR_SYNC_BATCH = 1,
    MSGR_SYNC_ALWAYS = 2,
} msgr_sync;

typedef struct msgr_log_opts {
    uint32_t size_of;         /* sizeof(msgr_log_opts), or 0 */
    uint32_t sync;            /* msgr_sync (create; stored in the file) */
    uint64_t capacity;        /* data bytes, a power of two (create); 0 means 16 MiB */
    uint32_t batch_ms;        /* batch policy: 0 means 10 ms */
    uint32_t batch_records;   /* batch policy: 0 means 1000 records */
    uint32_t max_groups;      /* consumer groups the file can hold (create); 0 means 16 */
    uint32_t max_producers;   /* processes-or-threads appending at once (create); 0 means 64 */
    int64_t claim_timeout_ns; /* when to check an unfinished claim's owner; 0 means 1 s */
    uint32_t mode;            /* file permissions (create); 0 means 0600 */
    uint32_t flags;           /* MSGR_LOG_SINGLE_PRODUCER (create; stored in the file) */
} msgr_log_opts;

/* A single-producer log (the file's counterpart of an SPSC ring): one handle at a time appends,
 * from one thread at a time, and it advances the tail with a plain store instead of a
 * compare-and-swap and keeps no per-claim record in shared memory (small appends are measurably
 * faster; bench/README.md). The handle takes the file's append lock at its first claim and keeps
 * it until closed; a claim through any other handle, in any process, fails with MSGR_EBUSY
 * meanwhile. A holder that dies leaves the lock to the next appender, and its unfinished
 * claims are skipped as in any log. Handles do not survive fork(): open the log again. */
#define MSGR_LOG_SINGLE_PRODUCER 0x1u

/* What opening found and repaired. */
typedef struct msgr_log_recovery {
    int recovered;            /* 1 if this open validated and repaired the log (no live user) */
    uint64_t records;         /* valid records found between the oldest retained and the end */
    uint64_t claims_skipped;  /* abandoned claims turned into padding */
    uint64_t bytes_discarded; /* bytes after the first invalid record, dropped */
    uint64_t end;             /* sequence number where the log now ends */
} msgr_log_recovery;

/* Creates a log file (fails with MSGR_EEXIST if it exists). Errors: MSGR_EINVAL (opts),
 * MSGR_ENOENT (directory), MSGR_EACCES, MSGR_ENOSPC / MSGR_EFBIG (the whole file is reserved
 * now, so a full disk shows here and never as a crash later). */
MSGR_API int msgr_log_create(const char *path, const msgr_log_opts *opts, msgr_log **out);

/* Opens an existing log; recovers it first if no live process uses it (rep may be NULL). If
 * another live process is recovering it, waits up to 10 claim timeouts (then MSGR_EBUSY).
 * Errors: MSGR_ENOENT, MSGR_EACCES, MSGR_ENOTMSGR (not a log), MSGR_EVERSION, MSGR_ECORRUPT
 * (header inconsistent), MSGR_ENOMEM, MSGR_EBUSY. */
MSGR_API int msgr_log_open(const char *path, const msgr_log_opts *opts, msgr_log **out,
                           msgr_log_recovery *rep);

/* Syncs (per policy), releases this process's producer slot and group ownerships, unmaps. */
MSGR_API void msgr_log_close(msgr_log *log);

/* ---- appending (thread-safe; any number of threads and processes, except in a
 * single-producer log: see MSGR_LOG_SINGLE_PRODUCER) ---- */

/* Claims space for a record of len bytes, or fails at once with MSGR_EAGAIN when the log is
 * full. Errors: MSGR_EMSGSIZE, MSGR_EIO (an earlier sync failed: reopen the log), MSGR_ENOSPC
 * (too many producers at once), MSGR_EBUSY (a single-producer log another live handle appends
 * to), MSGR_ECORRUPT. */
MSGR_API int msgr_log_claim(msgr_log *log, size_t len, msgr_claim *c);

/* As msgr_log_claim, but waits up to timeout_ns for space (< 0: no limit; 0: one try, then
 * MSGR_EAGAIN). Extra error: MSGR_ETIMEDOUT. */
MSGR_API int msgr_log_claim_wait(msgr_log *log, size_t len, msgr_claim *c, int64_t timeout_ns);

/* Commits a claimed record (c->len may be lowered); syncs per policy. Errors: MSGR_EINVAL,
 * MSGR_EIO (sync failed). */
MSGR_API int msgr_log_commit(msgr_log *log, msgr_claim *c);

/* Gives a claim up: it becomes padding readers skip. Errors: MSGR_EINVAL (not a live claim). */
MSGR_API int msgr_log_abandon(msgr_log *log, msgr_claim *c);

/* claim + copy + commit, without waiting (MSGR_EAGAIN when full). Errors as msgr_log_claim and
 * msgr_log_commit. */
MSGR_API int msgr_log_append(msgr_log *log, uint16_t type, const void *data, size_t len);

/* As msgr_log_append, waiting up to timeout_ns for space as msgr_log_claim_wait. */
MSGR_API int msgr_log_append_wait(msgr_log *log, uint16_t type, const void *data, size_t len,
                                  int64_t timeout_ns);

/* ---- reading (one reader per group at a time, across all processes) ---- */

/* Opens group `name` (1..47 characters), creating it at the oldest retained record if new.
 * Reading starts after the group's last acknowledgement. Errors: MSGR_EINVAL (name),
 * MSGR_EBUSY (a live process reads this group), MSGR_ENOSPC (group table full). */
MSGR_API int msgr_log_reader_open(msgr_log *log, const char *name, msgr_log_reader **out);

/* Next record after the last one read (not necessarily acknowledged), without waiting. m stays
 * valid until acknowledged. Bounds are checked; the CRC is checked at recovery and by
 * msgr_log_scan, not here. Errors: MSGR_EAGAIN (nothing new), MSGR_ECORRUPT (a record's length
 * is out of bounds: the log needs recovery). */
MSGR_API int msgr_log_read(msgr_log_reader *rd, msgr_msg *m);

/* As msgr_log_read, but waits up to timeout_ns (< 0: no limit; 0: one try, MSGR_EAGAIN) for a
 * record. Extra error: MSGR_ETIMEDOUT. */
MSGR_API int msgr_log_read_wait(msgr_log_reader *rd, msgr_msg *m, int64_t timeout_ns);

/* Hands up to max records after the last one read to fn, in order, without waiting: the batch
 * form of msgr_log_read (each record stays valid until acknowledged; acknowledge the batch's
 * last with msgr_log_ack, from fn or after). fn returning non-zero stops after that record.
 * Returns how many were handed over (0: nothing new), or MSGR_EINVAL / MSGR_ECORRUPT. A
 * reader is used by one thread at a time. */
MSGR_API int msgr_log_poll(msgr_log_reader *rd, msgr_ring_handler fn, void *arg, unsigned max);

/* Throughput over latency, as msgr_ring_set_linger: when a waiting read finds nothing after
 * fewer than min_batch records since it last found nothing, it first pauses `pauses` CPU pause
 * instructions, so producers move ahead and the reader stops reading the
 * line they are writing; while it waits it looks every `pauses` pauses instead of every 8. A
 * poll after one that found nothing more after fewer than min_batch records pauses the same way
 * (not after one cut short by its max or by the handler).
 * Off by default (0); `pauses` is capped at 65536. Not for a reader used from several threads. */
MSGR_API void msgr_log_reader_set_linger(msgr_log_reader *rd, unsigned min_batch, uint32_t pauses);

/* How many reads and polls of this reader paused first (msgr_log_reader_set_linger), for
 * tuning. From the reader's thread; 0 for NULL. */
MSGR_API uint64_t msgr_log_reader_lingers(const msgr_log_reader *rd);

/* The record's sequence number (its log position). */
MSGR_API uint64_t msgr_log_seq(const msgr_msg *m);

/* Acknowledges m and everything read before it: durable per the sync policy; space behind the
 * slowest group is reused. Errors: MSGR_EINVAL (not read by this reader), MSGR_EIO. */
MSGR_API int msgr_log_ack(msgr_log_reader *rd, const msgr_msg *m);

/* The group's acknowledged position and the log's end (next sequence number to be claimed):
 * equal when the group has nothing pending. */
MSGR_API uint64_t msgr_log_reader_acked(const msgr_log_reader *rd);
MSGR_API uint64_t msgr_log_end(const msgr_log *log);

/* Releases the group (its acknowledged position stays). NULL is accepted. */
MSGR_API void msgr_log_reader_close(msgr_log_reader *rd);

/* ---- inspection and maintenance ---- */

typedef struct msgr_log_group_info {
    char name[48];
    uint64_t acked;   /* sequence number of the next unacknowledged record */
    uint64_t lag;     /* committed records not yet acknowledged by the group */
    int32_t owner;    /* pid of the live reader, or 0 */
} msgr_log_group_info;

typedef struct msgr_log_stats {
    uint64_t capacity;
    uint32_t sync;
    uint32_t groups;      /* groups in use */
    uint64_t start;       /* oldest retained sequence number */
    uint64_t end;         /* next sequence number to be claimed */
    uint64_t records;     /* committed records between start and end */
    uint64_t pending;     /* records not yet acknowledged by the slowest group */
    uint32_t producers;   /* live producer slots */
    uint32_t max_groups, max_producers;
    uint32_t flags;       /* MSGR_LOG_SINGLE_PRODUCER */
    int32_t appender;     /* single-producer log: pid of the live append-lock holder, or 0 */
    uint32_t version;     /* file format: 3 (another is refused with MSGR_EVERSION) */
} msgr_log_stats;

/* Header, positions and counts. Reads only; safe while others run (a snapshot). */
MSGR_API int msgr_log_stats_get(msgr_log *log, msgr_log_stats *st);

/* Group i (0 <= i < max_groups) if in use: 0, or MSGR_ENOENT for an empty slot. */
MSGR_API int msgr_log_group_get(msgr_log *log, uint32_t i, msgr_log_group_info *g);

/* Scans committed records from sequence number `from` (0: the oldest retained): fills m with
 * the first record at or after *cursor and moves *cursor past it. Returns 0, MSGR_EAGAIN at the
 * end, MSGR_ECORRUPT. For dump tools; does not acknowledge anything. */
MSGR_API int msgr_log_scan(msgr_log *log, uint64_t *cursor, msgr_msg *m);

/* Drops everything pending, explicitly: every group jumps to the end of the committed records.
 * *dropped receives how many records the slowest group had not acknowledged. */
MSGR_API int msgr_log_clear(msgr_log *log, uint64_t *dropped);

/* Flushes everything to storage now, whatever the policy. Errors: MSGR_EIO. */
MSGR_API int msgr_log_sync(msgr_log *log);

#ifdef __cplusplus
}
#endif
#endif
