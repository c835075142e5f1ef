/* messenger: a worker's pollable descriptor (notify.h says how it works).
 *
 * Sleeps here: the helper sleeps on `state` while not ARMED (woken by the poll that arms it
 * or by close; both change the word first, so a wake cannot fall between its look and its
 * sleep), and in the ring's wait while ARMED (woken by producers, or by a poll or close that
 * sets `cancel` first: see msgr__ring_wait_readable). A poll that takes the inbox back sleeps
 * on `state` until the helper leaves ARMED; the helper is a thread of this process, so
 * whatever kills it kills the sleeper too. A producer killed at any instant strands nobody:
 * the ring's wait bounds every sleep by the claim timeout, as for any consumer. */
#include "notify.h"
#include "../bus/log_ack.h"
#include "../bus/ring_notify.h"
#include "msgr/error.h"
#include "msgr/notify.h"

#include <stdlib.h>

enum { NOTIFY_IDLE, NOTIFY_ARMED, NOTIFY_READY, NOTIFY_QUIT };

/* The helper's wait while ARMED: for room in an explicit-acknowledgement window first (a full
 * window reads nothing), then for a record. ECANCELED when a poll or close takes it back. */
static int wait_readable(msgr__notify *n)
{
    msgr__inbox *in = n->in;
    if (in->ring)
        return msgr__ring_wait_readable(in->ring, &n->cancel, -1);
    /* Sleeps on the window's word: bumped by every acknowledgement and by a cancel (kick)
     * after the flag is set, so a change between the look and the sleep fails the compare. */
    while (in->acks && !atomic_load_explicit(&n->cancel, memory_order_seq_cst)) {
        uint32_t seen = atomic_load_explicit(msgr__acks_word(in->acks), memory_order_seq_cst);
        if (!msgr__acks_full(in->acks) || atomic_load_explicit(&n->cancel, memory_order_seq_cst))
            break;
        msgr_os_futex_wait(msgr__acks_word(in->acks), seen, -1);
    }
    return msgr__log_wait_readable_or_cancel(in->rd, &n->cancel);
}

/* After setting cancel: wakes the helper wherever it sleeps in wait_readable. */
static void wake_helper(msgr__notify *n)
{
    if (n->in->ring) {
        msgr__ring_wake_reader(n->in->ring);
        return;
    }
    if (n->in->acks)
        msgr__acks_kick(n->in->acks);
    msgr__log_wake_readers(n->in->log);
}

static void *helper(void *arg)
{
    msgr__notify *n = arg;
    for (;;) {
        uint32_t s = atomic_load_explicit(&n->state, memory_order_acquire);
        if (s == NOTIFY_QUIT)
            return NULL;
        if (s != NOTIFY_ARMED) {
            msgr_os_futex_wait(&n->state, s, -1);
            continue;
        }
        int rc = wait_readable(n);
        uint32_t armed = NOTIFY_ARMED;
        /* Leaving ARMED with release: the poll that takes the inbox back (acquire) sees every
         * write this thread made to the consumer's state inside the ring's wait. */
        if (rc == 0) {
            if (atomic_compare_exchange_strong_explicit(&n->state, &armed, NOTIFY_READY,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                atomic_fetch_add_explicit(&n->signals, 1, memory_order_relaxed);
                msgr_os_event_signal(n->ev);
            }
        } else {
            atomic_compare_exchange_strong_explicit(&n->state, &armed, NOTIFY_IDLE,
                                                    memory_order_acq_rel, memory_order_acquire);
        }
        msgr_os_futex_wake(&n->state, INT32_MAX);
    }
}

int msgr__notify_open(msgr__inbox *in, msgr__notify **out)
{
    if (!in->ring && !in->rd)
        return MSGR_ESTATE;
    msgr__notify *n = calloc(1, sizeof *n);
    if (!n)
        return MSGR_ENOMEM;
    n->in = in;
    int rc = msgr_os_event_open(&n->ev, &n->fd);
    if (rc) {
        free(n);
        return rc;
    }
    if ((rc = msgr_os_thread_start(&n->th, helper, n))) {
        msgr_os_event_close(n->ev);
        free(n);
        return rc;
    }
    *out = n;
    return 0;
}

void msgr__notify_before_read(msgr__notify *n)
{
    uint32_t s = atomic_load_explicit(&n->state, memory_order_acquire);
    if (s == NOTIFY_ARMED) {
        atomic_store_explicit(&n->cancel, 1, memory_order_seq_cst);
        wake_helper(n);
        while ((s = atomic_load_explicit(&n->state, memory_order_acquire)) == NOTIFY_ARMED)
            msgr_os_futex_wait(&n->state, NOTIFY_ARMED, -1);
    }
    if (s == NOTIFY_READY) {
        atomic_store_explicit(&n->state, NOTIFY_IDLE, memory_order_relaxed);
        msgr_os_event_drain(n->ev); /* after a wake-up only: never on a busy path */
    }
}

void msgr__notify_after_read(msgr__notify *n, int found)
{
    if (found)
        return; /* busy: nothing to do, no system call */
    /* Empty: the helper waits from now. Cancel is cleared by the one who arms (never by the
     * helper), so a cancel that came after the helper had already left cannot reach the
     * next wait. */
    atomic_store_explicit(&n->cancel, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&n->arms, 1, memory_order_relaxed);
    atomic_store_explicit(&n->state, NOTIFY_ARMED, memory_order_release);
    msgr_os_futex_wake(&n->state, 1);
}

void msgr__notify_close(msgr__notify *n)
{
    if (!n)
        return;
    atomic_store_explicit(&n->cancel, 1, memory_order_seq_cst);
    atomic_store_explicit(&n->state, NOTIFY_QUIT, memory_order_seq_cst);
    wake_helper(n);
    msgr_os_futex_wake(&n->state, INT32_MAX);
    msgr_os_thread_join(&n->th);
    msgr_os_event_close(n->ev);
    free(n);
}

/* ---- the public form, for a plain ring or log reader (msgr/notify.h) ---- */

struct msgr_notify {
    msgr__inbox in; /* only its ring, or its log and reader, are set */
    msgr__notify *n;
};

static int notify_new(msgr_ring *r, msgr_log *log, msgr_log_reader *rd, msgr_notify **out)
{
    msgr_notify *p = calloc(1, sizeof *p);
    if (!p)
        return MSGR_ENOMEM;
    p->in.ring = r;
    p->in.log = log;
    p->in.rd = rd;
    int rc = msgr__notify_open(&p->in, &p->n);
    if (rc) {
        free(p);
        return rc;
    }
    msgr__notify_after_read(p->n, 0); /* waiting from the start */
    *out = p;
    return 0;
}

int msgr_notify_ring(msgr_ring *r, msgr_notify **out)
{
    return r && out ? notify_new(r, NULL, NULL, out) : MSGR_EINVAL;
}

int msgr_notify_log(msgr_log *log, msgr_log_reader *rd, msgr_notify **out)
{
    return log && rd && out ? notify_new(NULL, log, rd, out) : MSGR_EINVAL;
}

intptr_t msgr_notify_fd(const msgr_notify *p) { return p ? p->n->fd : -1; }
void msgr_notify_before_read(msgr_notify *p) { msgr__notify_before_read(p->n); }
void msgr_notify_after_read(msgr_notify *p, int found) { msgr__notify_after_read(p->n, found); }

void msgr_notify_close(msgr_notify *p)
{
    if (!p)
        return;
    msgr__notify_close(p->n);
    free(p);
}
