/* messenger: waiting for a ring's records on the consumer's behalf (internal: the runtime's
 * pollable descriptors use it). While the consumer does not read, one helper thread may wait
 * for the next record without taking it; the consumer cancels that wait before it reads
 * again, so the ring still has one reader at a time. */
#ifndef MSGR_RING_NOTIFY_H
#define MSGR_RING_NOTIFY_H

#include "msgr/ring.h"

#include <stdatomic.h>

/* Waits until a record can be read (0), *cancel is non-zero (MSGR_ECANCELED) or timeout_ns
 * passes (< 0: never). A producer killed mid-claim is handled as in msgr_ring_peek_wait. */
int msgr__ring_wait_readable(msgr_ring *r, _Atomic uint32_t *cancel, int64_t timeout_ns);

/* After setting *cancel: wakes a msgr__ring_wait_readable sleeping on r (any thread). */
void msgr__ring_wake_reader(msgr_ring *r);

#endif
