/* messenger: a worker's inbox, in memory (an MPSC ring in the bus region) or in a file (a
 * persistent log read by a group named after the worker) (internal). The runtime talks to
 * inboxes only through these calls, so workers, routing and stopping are the same for both. */
#ifndef MSGR_INBOX_H
#define MSGR_INBOX_H

#include "acks.h"
#include "msgr/log.h"
#include "msgr/ring.h"

typedef struct msgr__inbox {
    msgr_ring *ring;       /* memory bus */
    msgr_log *log;         /* file bus */
    msgr_log_reader *rd;   /* file bus, worker running in this process */
    msgr_msg held;         /* file bus: a record read by wait(), handed out by the next poll */
    int has_held;
    msgr__acks *acks;      /* file bus, explicit acknowledgement (msgr_bus_opts.manual_ack) */
} msgr__inbox;

int msgr__inbox_claim(msgr__inbox *in, size_t len, msgr_claim *c, int64_t timeout_ns);
int msgr__inbox_commit(msgr__inbox *in, msgr_claim *c);
int msgr__inbox_abort(msgr__inbox *in, msgr_claim *c);

/* Hands up to max records to fn in order. A file inbox acknowledges the batch after the
 * handlers returned (automatic acknowledgement): a crash before that redelivers it. */
int msgr__inbox_poll(msgr__inbox *in, msgr_ring_handler fn, void *arg, unsigned max);

/* Waits up to timeout_ns for a record without consuming it. 0, MSGR_ETIMEDOUT, or an error. */
int msgr__inbox_wait(msgr__inbox *in, int64_t timeout_ns);

/* 1 when nothing is queued (records being handled still count as queued). */
int msgr__inbox_empty(msgr__inbox *in);
uint64_t msgr__inbox_queued_bytes(msgr__inbox *in);
void msgr__inbox_set_wait(msgr__inbox *in, uint32_t spins, uint32_t yields);
void msgr__inbox_close(msgr__inbox *in);

#endif
