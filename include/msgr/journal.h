/* messenger: the journal: history kept in segment files, replayed by named readers.
 *
 * Where the log (msgr/log.h) holds what is still to be delivered, the journal keeps what
 * happened: every appended record gets a dense sequence number (0, 1, 2, ...) and a wall-clock
 * time, and stays until retention (by total size and by age) lets it go *and* every named
 * reader has passed it. Readers replay from their durable position, from any sequence number or
 * from a time. Storage is a directory: `meta` (settings, next sequence number, readers) and
 * segment files `seg-<first sequence number, 16 hex digits>`, each growing in place up to
 * segment_bytes; whole segments are deleted, never rewritten.
 *
 * Appending takes a lock in `meta` (held by a process id; a dead holder's lock is taken over),
 * so several processes may append. Each record carries a CRC32C; opening the journal checks the
 * newest segment and cuts it before the first record that fails (a crash mid-append).
 */
#ifndef MSGR_JOURNAL_H
#define MSGR_JOURNAL_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msgr_journal msgr_journal;
typedef struct msgr_journal_reader msgr_journal_reader;

typedef struct msgr_journal_opts {
    uint32_t size_of;       /* sizeof(msgr_journal_opts), or 0 */
    uint32_t max_readers;   /* creation: named readers the journal can hold; 0 means 16 */
    uint64_t segment_bytes; /* creation: largest segment file; 0 means 64 MiB (min 64 KiB) */
    uint64_t retain_bytes;  /* keep at least this much history; 0 means no size limit */
    uint64_t retain_ns;     /* keep history at least this long; 0 means no age limit */
    int64_t lock_timeout_ns; /* longest wait for another appender's lock; 0 means 10 s */
} msgr_journal_opts;

/* Opens the journal in directory `dir`, creating both if missing (mode 0700/0600). Retention
 * settings given here replace the stored ones when nonzero. Errors: MSGR_EINVAL, MSGR_EACCES,
 * MSGR_ENOTMSGR (a directory holding something else), MSGR_ECORRUPT, MSGR_ENOSPC, MSGR_EBUSY
 * (another live process held the append lock for lock_timeout_ns). */
MSGR_API int msgr_journal_open(const char *dir, const msgr_journal_opts *opts, msgr_journal **out);

/* Unmaps and frees (readers must be closed first). NULL is accepted. */
MSGR_API void msgr_journal_close(msgr_journal *j);

/* Appends a record; *seq (may be NULL) receives its sequence number. Thread-safe and
 * process-safe. Errors: MSGR_EMSGSIZE (larger than a segment), MSGR_ENOSPC, MSGR_EFBIG, MSGR_EIO,
 * MSGR_EBUSY (another appender held the lock for lock_timeout_ns). */
MSGR_API int msgr_journal_append(msgr_journal *j, uint16_t type, const void *data, size_t len,
                                 uint64_t *seq);

/* Next sequence number to be appended, and the oldest one still kept. */
MSGR_API uint64_t msgr_journal_next_seq(msgr_journal *j);
MSGR_API uint64_t msgr_journal_first_seq(msgr_journal *j);

/* Opens reader `name` (1..47 characters; one user at a time), positioned after its last
 * acknowledged record (a new reader starts at the oldest record kept). Errors: MSGR_EINVAL,
 * MSGR_ENOSPC (reader table full), MSGR_EBUSY. */
MSGR_API int msgr_journal_reader_open(msgr_journal *j, const char *name, msgr_journal_reader **out);

/* Moves the reader to sequence number `seq` (clamped to what is kept), or to the first record
 * stamped at or after `wall_ns` (nanoseconds since 1970). */
MSGR_API int msgr_journal_seek(msgr_journal_reader *rd, uint64_t seq);
MSGR_API int msgr_journal_seek_time(msgr_journal_reader *rd, uint64_t wall_ns);

/* The next record; m->data is valid until the next call on this reader. msgr_log_seq-like:
 * msgr_journal_seq(m) gives its sequence number.
 * Errors: MSGR_EAGAIN (at the end), MSGR_ECORRUPT (a record fails its checks). */
MSGR_API int msgr_journal_next(msgr_journal_reader *rd, msgr_msg *m);
MSGR_API uint64_t msgr_journal_seq(const msgr_msg *m);

/* Makes the reader's position durable just after m: the next open resumes there, and
 * segments wholly before the slowest reader become deletable. */
MSGR_API int msgr_journal_ack(msgr_journal_reader *rd, const msgr_msg *m);

MSGR_API void msgr_journal_reader_close(msgr_journal_reader *rd);

/* Deletes whole segments that every reader has passed and that retention no longer needs (also
 * done when a segment fills). *deleted (may be NULL) receives how many. Errors: MSGR_EBUSY
 * (another appender held the lock for lock_timeout_ns), MSGR_ENOMEM, or the directory
 * listing's error. */
MSGR_API int msgr_journal_gc(msgr_journal *j, uint32_t *deleted);

#ifdef __cplusplus
}
#endif
#endif
