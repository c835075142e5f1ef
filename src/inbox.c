/* messenger: worker inboxes over a ring (memory) or a log (file); see inbox.h. */
#include "inbox.h"
#include "../bus/log_ack.h"
#include "msgr/error.h"

int msgr__inbox_claim(msgr__inbox *in, size_t len, msgr_claim *c, int64_t timeout_ns)
{
    return in->ring ? msgr_ring_claim_wait(in->ring, len, c, timeout_ns)
                    : msgr_log_claim_wait(in->log, len, c, timeout_ns);
}

int msgr__inbox_commit(msgr__inbox *in, msgr_claim *c)
{
    return in->ring ? msgr_ring_commit(in->ring, c) : msgr_log_commit(in->log, c);
}

int msgr__inbox_abort(msgr__inbox *in, msgr_claim *c)
{
    return in->ring ? msgr_ring_abandon(in->ring, c) : msgr_log_abandon(in->log, c);
}

int msgr__inbox_poll(msgr__inbox *in, msgr_ring_handler fn, void *arg, unsigned max)
{
    if (in->ring)
        return msgr_ring_poll(in->ring, fn, arg, max);
    if (!in->rd)
        return MSGR_ESTATE;
    if (in->acks)
        return msgr__acks_poll(in->acks, fn, arg, max);
    unsigned n = 0;
    msgr_msg m;
    int rc = 0;
    while (n < max) {
        if (in->has_held) {
            m = in->held;
            in->has_held = 0;
        } else if ((rc = msgr_log_read_wait(in->rd, &m, 0)) != 0) {
            break;
        }
        int stop = fn(arg, &m);
        n++;
        /* Acknowledged once the handler returned: everything read so far. */
        int ack = msgr_log_ack(in->rd, &m);
        if (ack)
            return ack;
        if (stop)
            break;
    }
    if (rc && rc != MSGR_EAGAIN && n == 0)
        return rc;
    return (int)n;
}

int msgr__inbox_wait(msgr__inbox *in, int64_t timeout_ns)
{
    if (in->ring) {
        msgr_msg m;
        return msgr_ring_peek_wait(in->ring, &m, timeout_ns);
    }
    if (!in->rd)
        return MSGR_ESTATE;
    if (in->acks) {
        /* The window's reads are its own (a held record would bypass it): wait for room,
         * then for a record, without taking it. */
        msgr__acks_wait_room(in->acks, timeout_ns);
        int rc = msgr__log_wait_readable(in->rd, timeout_ns);
        return rc == MSGR_EAGAIN ? MSGR_ETIMEDOUT : rc;
    }
    if (in->has_held)
        return 0;
    int rc = msgr_log_read_wait(in->rd, &in->held, timeout_ns);
    if (rc == 0)
        in->has_held = 1;
    return rc == MSGR_EAGAIN ? MSGR_ETIMEDOUT : rc;
}

int msgr__inbox_empty(msgr__inbox *in)
{
    if (in->ring) {
        msgr_ring_stats st;
        msgr_ring_stats_get(in->ring, &st);
        return st.tail == st.head;
    }
    return !in->rd || msgr_log_reader_acked(in->rd) == msgr_log_end(in->log);
}

uint64_t msgr__inbox_queued_bytes(msgr__inbox *in)
{
    if (in->ring) {
        msgr_ring_stats st;
        msgr_ring_stats_get(in->ring, &st);
        return st.tail - st.head;
    }
    msgr_log_stats st;
    if (msgr_log_stats_get(in->log, &st))
        return 0;
    uint64_t min = st.end;
    for (uint32_t i = 0; i < st.max_groups; i++) {
        msgr_log_group_info g;
        if (msgr_log_group_get(in->log, i, &g) == 0 && g.acked < min)
            min = g.acked;
    }
    return st.end - min;
}

void msgr__inbox_set_wait(msgr__inbox *in, uint32_t spins, uint32_t yields)
{
    if (in->ring)
        msgr_ring_set_wait(in->ring, spins, yields);
}

void msgr__inbox_close(msgr__inbox *in)
{
    msgr__acks_close(in->acks);
    in->acks = NULL;
    msgr_log_reader_close(in->rd);
    msgr_log_close(in->log);
    msgr_ring_close(in->ring);
    in->rd = NULL;
    in->log = NULL;
    in->ring = NULL;
}
