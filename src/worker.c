/* messenger: workers: threads that wait on their inbox and dispatch, polling by the
 * application, and stopping (drain or abandon) with an exact account of what happened. */
#include "bus_internal.h"
#include "os/error_detail.h"
#include "msgr/error.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A manual_ack worker's message that no handler took: acknowledged here, or it would hold a
 * place in the window for ever. */
static void ack_untaken(msgr__worker *w, const msgr_msg *m)
{
    msgr__inbox *in = &w->ctx.bus->inbox[w->ctx.worker];
    if (in->acks)
        msgr__acks_ack(in->acks, msgr_log_seq(m));
}

int msgr__worker_handle(msgr__worker *w, const msgr_msg *m)
{
    msgr_bus *b = w->ctx.bus;
    w->cur_seq = b->file ? msgr_log_seq(m) : 0;
    if (m->type == MSGR__CTL_STOP) {
        if (m->len == sizeof(msgr__bc_ref)) { /* a broadcast fan-out's reference */
            uint64_t magic;
            memcpy(&magic, (const char *)m->data + offsetof(msgr__bc_ref, magic), 8);
            if (magic == MSGR__BC_REF_MAGIC)
                msgr__bc_take(w, m, 0);
            return 0;
        }
        uint64_t id = 0;
        if (m->len != sizeof id)
            return 0;
        memcpy(&id, m->data, sizeof id);
        if (id != b->run_id)
            return 0; /* from an earlier run of a file bus: ignored */
        w->stopping = 1;
        return 1; /* end the poll batch here; what follows stays queued */
    }
    return msgr__worker_dispatch(w, m);
}

int msgr__worker_dispatch(msgr__worker *w, const msgr_msg *m)
{
    msgr_bus *b = w->ctx.bus;
    msgr__worker_entry *e = &b->wtab[w->ctx.worker];
    /* seq_cst, as the store in msgr_bus_stop(): once the stopper has stored the flag and
     * read the dispatch counters, every check here that comes later in the single total order
     * sees it, so at most the message whose check came first is still handled. */
    if (atomic_load_explicit(&b->abandon, memory_order_seq_cst)) {
        atomic_fetch_add_explicit(&w->discarded, 1, memory_order_relaxed);
        msgr__count(&e->dropped, 1);
        ack_untaken(w, m);
        return 0; /* discarded and counted (msgr_bus_stop reports it as abandoned) */
    }
    w->in_handler++;
    int rc = b->app->dispatch[w->ctx.worker](&w->ctx, m->source, m->type, m->data, m->len);
    w->in_handler--;
    if (rc == 0)
        msgr__count(&e->received, 1);
    else if (rc == MSGR_ENOROUTE)
        msgr__count(&e->unhandled, 1);
    else
        msgr__count(&e->rejected, 1);
    if (rc)
        ack_untaken(w, m);
    /* seq_cst (a plain locked add on x86): ordered before this worker's next check of the
     * abandon flag, so a stopper that stored the flag after that check reads this count. */
    atomic_fetch_add_explicit(&w->dispatched, 1, memory_order_seq_cst);
    return 0;
}

static int handle_cb(void *arg, const msgr_msg *m) { return msgr__worker_handle(arg, m); }

int msgr__worker_poll(msgr__worker *w, unsigned max)
{
    return msgr__inbox_poll(&w->ctx.bus->inbox[w->ctx.worker], handle_cb, w, max);
}

static void *worker_main(void *arg)
{
    msgr__worker *w = arg;
    msgr__inbox *in = &w->ctx.bus->inbox[w->ctx.worker];
    while (!w->stopping) {
        int n = msgr__inbox_poll(in, handle_cb, w, 64);
        if (n < 0) {
            /* A corrupt inbox cannot be read past; count it and stop this worker. */
            msgr__count(&w->ctx.bus->wtab[w->ctx.worker].rejected, 1);
            break;
        }
        if (n == 0 && !w->stopping)
            /* Sleeps in the inbox (ring: cons_wait, log: data_wait, each bounded by the claim
             * timeout against a waker killed before its wake); stop sends a record, so this
             * returns once the bus is stopped. */
            msgr__inbox_wait(in, -1);
    }
    return NULL;
}

int msgr_bus_start(msgr_bus *b)
{
    if (!b)
        return MSGR_EINVAL;
    if (b->started)
        return MSGR_ESTATE;
    atomic_store_explicit(&b->abandon, 0, memory_order_relaxed);
    b->run_id = msgr_os_random64() | 1;
    for (uint32_t i = 0; i < b->app->n_workers; i++) /* running again after a stop */
        if (b->w[i].local && atomic_load_explicit(&b->wtab[i].pid, memory_order_relaxed) ==
                                 msgr_os_pid())
            atomic_store_explicit(&b->wtab[i].running, 1, memory_order_release);
    for (uint32_t i = 0; i < b->app->n_workers; i++) {
        msgr__worker *w = &b->w[i];
        if (!w->local || w->polled)
            continue;
        w->stopping = 0;
        if (b->spins || b->yields)
            msgr__inbox_set_wait(&b->inbox[i], b->spins, b->yields);
        int rc = msgr_os_thread_start(&w->thread, worker_main, w);
        if (rc) {
            b->started = 1;
            msgr_bus_stop(b, MSGR_STOP_ABANDON, 0, NULL);
            return rc;
        }
        w->threaded = 1;
    }
    b->started = 1;
    return 0;
}

int msgr_bus_poll(msgr_bus *b, uint32_t worker, unsigned max)
{
    if (!b || worker >= b->app->n_workers)
        return MSGR_EINVAL;
    msgr__worker *w = &b->w[worker];
    if (!w->local || w->threaded)
        return MSGR_ESTATE;
    w->polled = 1;
    if (!w->notify)
        return msgr__inbox_poll(&b->inbox[worker], handle_cb, w, max);
    msgr__notify_before_read(w->notify);
    int n = msgr__inbox_poll(&b->inbox[worker], handle_cb, w, max);
    msgr__notify_after_read(w->notify, n != 0);
    return n;
}

int msgr_bus_fd(msgr_bus *b, uint32_t worker, intptr_t *fd)
{
    if (!b || !fd || worker >= b->app->n_workers)
        return MSGR_EINVAL;
    msgr__worker *w = &b->w[worker];
    if (!w->local || w->threaded)
        return msgr__fail(MSGR_ESTATE, "worker '%s' does not run in this process, or runs on "
                          "a thread: drive it (msgr_bus_opts.drive)", b->app->worker_names[worker]);
    w->polled = 1;
    if (!w->notify) {
        int rc = msgr__notify_open(&b->inbox[worker], &w->notify);
        if (rc)
            return rc;
        /* Until the first poll finds the inbox empty, the application reads it. So that a
         * loop that waits first does not wait for ever on what is queued already: */
        msgr__notify_after_read(w->notify, 0);
    }
    *fd = w->notify->fd;
    return 0;
}

int msgr_bus_fd_stats(msgr_bus *b, uint32_t worker, uint64_t *arms, uint64_t *signals)
{
    if (!b || worker >= b->app->n_workers || !b->w[worker].notify)
        return MSGR_EINVAL;
    if (arms)
        *arms = atomic_load_explicit(&b->w[worker].notify->arms, memory_order_relaxed);
    if (signals)
        *signals = atomic_load_explicit(&b->w[worker].notify->signals, memory_order_relaxed);
    return 0;
}

int msgr_bus_poll_wait(msgr_bus *b, uint32_t worker, unsigned max, int64_t timeout_ns)
{
    if (!b || worker >= b->app->n_workers)
        return MSGR_EINVAL;
    msgr__worker *w = &b->w[worker];
    if (!w->local || w->threaded)
        return MSGR_ESTATE;
    if (w->notify)
        msgr__notify_before_read(w->notify);
    int rc = msgr__inbox_wait(&b->inbox[worker], timeout_ns);
    if (rc == MSGR_ETIMEDOUT || rc == MSGR_EAGAIN) {
        if (w->notify)
            msgr__notify_after_read(w->notify, 0);
        return 0;
    }
    if (rc)
        return rc;
    return msgr_bus_poll(b, worker, max);
}

/* Sum over local workers of one of their per-worker tallies. */
static uint64_t local_total(msgr_bus *b, size_t offset)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < b->app->n_workers; i++)
        if (b->w[i].local)
            n += atomic_load_explicit((_Atomic uint64_t *)((char *)&b->w[i] + offset),
                                      memory_order_seq_cst); /* see msgr_bus_stop() */
    return n;
}
#define DISPATCHED offsetof(msgr__worker, dispatched)
#define DISCARDED offsetof(msgr__worker, discarded)

/* Activity anywhere on the bus: every delivery counts in the sent matrix. */
static uint64_t sent_total(msgr_bus *b)
{
    uint64_t n = 0;
    for (uint32_t s = 0; s < b->app->n_workers; s++)
        for (uint32_t d = 0; d < b->app->n_workers; d++)
            n += atomic_load_explicit(&b->sent[s * b->sent_stride + d], memory_order_relaxed);
    return n;
}

static int local_inboxes_empty(msgr_bus *b)
{
    for (uint32_t i = 0; i < b->app->n_workers; i++) {
        if (b->w[i].threaded && !msgr__inbox_empty(&b->inbox[i]))
            return 0;
    }
    return 1;
}

/* Quiescent: every local inbox is empty (a record under a handler still counts: head moves
 * past it only after the handler returns) and nothing was sent anywhere during the sweep. */
static int quiescent(msgr_bus *b)
{
    uint64_t before = sent_total(b);
    if (!local_inboxes_empty(b))
        return 0;
    return sent_total(b) == before && local_inboxes_empty(b);
}

typedef struct {
    msgr_bus *b;
    uint32_t worker;
    uint64_t n;
} discard_state;

static int discard_cb(void *arg, const msgr_msg *m)
{
    discard_state *d = arg;
    /* Stop records are the runtime's, not messages; a broadcast reference stands for one. */
    int ref = m->type == MSGR__CTL_STOP && m->len == sizeof(msgr__bc_ref);
    if (ref)
        msgr__bc_take(&d->b->w[d->worker], m, 1); /* its ring record is released too */
    if (m->type != MSGR__CTL_STOP || ref) {
        d->n++;
        msgr__count(&d->b->wtab[d->worker].dropped, 1);
    }
    return 0;
}

/* Discards what is left in an inbox whose worker thread has ended; returns how many. */
static uint64_t discard_rest(msgr_bus *b, uint32_t i)
{
    discard_state d = {b, i, 0};
    while (msgr__inbox_poll(&b->inbox[i], discard_cb, &d, 256) > 0)
        ;
    return d.n;
}

int msgr_bus_stop(msgr_bus *b, msgr_stop_mode mode, int64_t timeout_ns, msgr_stop_report *rep)
{
    if (!b || (mode != MSGR_STOP_DRAIN && mode != MSGR_STOP_ABANDON))
        return MSGR_EINVAL;
    if (!b->started)
        return MSGR_ESTATE;
    /* Every message a local worker takes out from here on is either dispatched (drained) or
     * discarded (abandoned), each counted once, by the worker itself. */
    uint64_t start = local_total(b, DISPATCHED), discarded0 = local_total(b, DISCARDED);
    uint64_t abandoned = 0;
    if (mode == MSGR_STOP_DRAIN) {
        uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : msgr_os_now_ns() + (uint64_t)timeout_ns;
        uint64_t pause = 1000;
        while (!quiescent(b) && msgr_os_now_ns() < deadline) {
            msgr_os_sleep_ns(pause); /* polling a condition the workers do not signal */
            if (pause < 1000000)
                pause *= 2;
        }
    }
    /* From here on whatever a worker takes out is discarded and counted as abandoned. For
     * ABANDON the count of drained messages starts after the flag is stored (seq_cst, as the
     * check and the dispatch count in msgr__worker_handle()). In the single total order a
     * worker counts each message before its next check; so a message whose check came before
     * this store, except the last one, is already in the counts read just after it, and each
     * worker reports at most the message in hand as drained. */
    atomic_store_explicit(&b->abandon, 1, memory_order_seq_cst);
    if (mode == MSGR_STOP_ABANDON)
        start = local_total(b, DISPATCHED);
    for (uint32_t i = 0; i < b->app->n_workers; i++) {
        if (!b->w[i].threaded)
            continue;
        msgr_claim c;
        /* A stop record: wakes a sleeping worker and ends its loop. Space is always found
         * eventually because the worker keeps consuming (discarding) until it meets it. */
        if (msgr__inbox_claim(&b->inbox[i], sizeof b->run_id, &c, -1) == 0) {
            memcpy(c.data, &b->run_id, sizeof b->run_id);
            c.type = MSGR__CTL_STOP;
            msgr__inbox_commit(&b->inbox[i], &c);
        }
    }
    for (uint32_t i = 0; i < b->app->n_workers; i++) {
        msgr__worker *w = &b->w[i];
        if (!w->threaded)
            continue;
        msgr_os_thread_join(&w->thread);
        w->threaded = 0;
        abandoned += discard_rest(b, i);
    }
    abandoned += local_total(b, DISCARDED) - discarded0;
    atomic_store_explicit(&b->abandon, 0, memory_order_relaxed);
    b->started = 0;
    /* Not running any more (the counters say so to every process); joiners anywhere return. */
    for (uint32_t i = 0; i < b->app->n_workers; i++)
        if (b->w[i].local && atomic_load_explicit(&b->wtab[i].pid, memory_order_relaxed) ==
                                 msgr_os_pid())
            atomic_store_explicit(&b->wtab[i].running, 0, memory_order_release);
    msgr_bus_signal_stop(b);
    if (rep) {
        rep->drained = local_total(b, DISPATCHED) - start;
        rep->abandoned = abandoned;
    }
    return 0;
}

int msgr_bus_signal_stop(msgr_bus *b)
{
    if (!b)
        return MSGR_EINVAL;
    /* The RMW changes the word joiners sleep on, so one between reading it and sleeping
     * returns at once (the futex compares first). */
    atomic_fetch_add_explicit(&b->hdr->stops, 1, memory_order_seq_cst);
    msgr_os_futex_wake(&b->hdr->stops, INT32_MAX);
    return 0;
}

int msgr_bus_join(msgr_bus *b, int64_t timeout_ns)
{
    if (!b)
        return MSGR_EINVAL;
    uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : msgr_os_now_ns() + (uint64_t)timeout_ns;
    for (;;) {
        uint32_t now = atomic_load_explicit(&b->hdr->stops, memory_order_seq_cst);
        if (now != b->stops_seen)
            break;
        uint64_t t = msgr_os_now_ns();
        if (t >= deadline)
            return MSGR_ETIMEDOUT;
        /* Sleeps on the bus header's `stops`, which every stop or signal_stop bumps before
         * waking all sleepers; one killed between the two leaves the count changed and nobody
         * to wake us: so at most a second per sleep, then look again. */
        uint64_t left = deadline - t;
        msgr_os_futex_wait(&b->hdr->stops, now, left > 1000000000u ? 1000000000 : (int64_t)left);
    }
    b->stops_seen = atomic_load_explicit(&b->hdr->stops, memory_order_relaxed);
    if (b->started) {
        int64_t left = deadline == UINT64_MAX ? -1 : (int64_t)(deadline - msgr_os_now_ns());
        int rc = msgr_bus_stop(b, MSGR_STOP_DRAIN, left < 0 && deadline != UINT64_MAX ? 0 : left,
                               NULL);
        b->stops_seen = atomic_load_explicit(&b->hdr->stops, memory_order_relaxed);
        if (rc && rc != MSGR_ESTATE)
            return rc;
    }
    return 0;
}

uint64_t msgr_ctx_seq(const msgr_ctx *ctx)
{
    return ctx && ctx->bus ? ctx->bus->w[ctx->worker].cur_seq : 0;
}

int msgr_ctx_manual_ack(const msgr_ctx *ctx)
{
    if (!ctx || !ctx->bus || ctx->worker >= ctx->bus->app->n_workers)
        return MSGR_EINVAL;
    return ctx->bus->inbox[ctx->worker].acks != NULL;
}

int msgr_ack(msgr_ctx *ctx, uint64_t seq)
{
    if (!ctx || !ctx->bus || ctx->worker >= ctx->bus->app->n_workers)
        return MSGR_EINVAL;
    msgr__inbox *in = &ctx->bus->inbox[ctx->worker];
    if (!in->acks)
        return msgr__fail(MSGR_ESTATE, "worker '%s' does not acknowledge by itself "
                          "(msgr_bus_opts.manual_ack)", ctx->bus->app->worker_names[ctx->worker]);
    return msgr__acks_ack(in->acks, seq);
}
