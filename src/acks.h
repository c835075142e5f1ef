/* messenger: explicit acknowledgement for a worker on a file bus (internal).
 *
 * The worker's handlers see each message's sequence number (msgr_ctx_seq) and acknowledge it
 * later, from any thread, in any order (msgr_ack). The inbox keeps the messages handed out and
 * not yet acknowledged in a window, in read order; the log's group position advances past the
 * longest acknowledged prefix. Acknowledgements beyond the prefix are appended to a journal
 * beside the inbox ("<inbox>.acks", compacted now and then), so that after a restart exactly
 * the unacknowledged messages come back, in order. The window counts from the oldest message
 * not acknowledged; a full one holds the reader back. */
#ifndef MSGR_ACKS_H
#define MSGR_ACKS_H

#include "msgr/log.h"

#include <stdatomic.h>
#include <stdint.h>

typedef struct msgr__acks msgr__acks;

/* For reader rd, a window of `window` messages, acknowledgements kept in side file `path`
 * (read if present: those messages are not handed out again). */
int msgr__acks_open(msgr_log_reader *rd, uint32_t window, const char *path, msgr__acks **out);
/* Hands up to max records to fn; skips those acknowledged before a restart; stops at a full
 * window. Records handed out stay valid until acknowledged. Count, or a negative code. */
int msgr__acks_poll(msgr__acks *a, msgr_ring_handler fn, void *arg, unsigned max);
/* Acknowledges seq (any thread). MSGR_EINVAL: not handed out, or acknowledged already. */
int msgr__acks_ack(msgr__acks *a, uint64_t seq);
/* Waits up to timeout_ns while the window is full. 0 when there is room (or timeout). */
int msgr__acks_wait_room(msgr__acks *a, int64_t timeout_ns);
uint32_t msgr__acks_outstanding(msgr__acks *a);
/* For a helper waiting for room on the reader's behalf: 1 while the window is full; the word
 * every acknowledgement bumps (and wakes); kick bumps and wakes it too (after a cancel). */
int msgr__acks_full(msgr__acks *a);
_Atomic uint32_t *msgr__acks_word(msgr__acks *a);
void msgr__acks_kick(msgr__acks *a);
void msgr__acks_close(msgr__acks *a);

#endif
