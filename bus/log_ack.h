/* messenger: acknowledging a log reader's records from another thread (internal: the
 * runtime's explicit acknowledgements). */
#ifndef MSGR_LOG_ACK_H
#define MSGR_LOG_ACK_H

#include "msgr/log.h"

#include <stdatomic.h>

/* msgr_log_ack without the check against the reader's read position (that position belongs
 * to the reading thread): for records the reader has handed out. Touches only the group's
 * shared position (one acknowledging thread at a time: the caller's lock), reader fields that
 * never change after open, and what producers share. */
int msgr__log_ack_from(msgr_log_reader *rd, const msgr_msg *m);

/* Puts m (the last record read) back: the next read returns it again. Reading thread only. */
void msgr__log_unread(msgr_log_reader *rd, const msgr_msg *m);

/* Waits up to timeout_ns (< 0: no limit) until a record can be read, without taking it.
 * 0, MSGR_EAGAIN / MSGR_ETIMEDOUT, or msgr_log_read's errors. Reading thread only. */
int msgr__log_wait_readable(msgr_log_reader *rd, int64_t timeout_ns);

/* Waits until a record can be read, without taking it (0), or until *cancel is non-zero
 * (MSGR_ECANCELED): for a helper that waits on the reading thread's behalf while that thread
 * does not read. Every sleep is bounded by the claim timeout, as a read's. */
int msgr__log_wait_readable_or_cancel(msgr_log_reader *rd, _Atomic uint32_t *cancel);

/* After setting *cancel: wakes a reader sleeping for data in log (any thread). */
void msgr__log_wake_readers(msgr_log *log);

#endif
