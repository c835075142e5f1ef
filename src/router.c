/* messenger: the send path (delivery into a worker's inbox) and fingerprint helpers. */
#include "bus_internal.h"
#include "msgr/error.h"
#include "os/error_detail.h"

#include <stdio.h>
#include <string.h>

uint32_t msgr_ctx_worker(const msgr_ctx *ctx) { return ctx ? ctx->worker : UINT32_MAX; }
msgr_bus *msgr_ctx_bus(const msgr_ctx *ctx) { return ctx ? ctx->bus : NULL; }
void *msgr_ctx_user(const msgr_ctx *ctx) { return ctx ? ctx->user : NULL; }

void msgr__count_unrouted(msgr_ctx *ctx)
{
    if (ctx)
        msgr__count(&ctx->bus->wtab[ctx->worker].unrouted, 1);
}

static int check_dest(msgr_ctx *ctx, uint32_t dest, uint16_t id)
{
    if (!ctx || dest >= ctx->bus->app->n_workers || id == MSGR__CTL_STOP)
        return MSGR_EINVAL;
    /* A worker no process runs keeps its messages in its inbox; say so in the counters. */
    if (!atomic_load_explicit(&ctx->bus->wtab[dest].running, memory_order_relaxed))
        msgr__count(&ctx->bus->wtab[ctx->worker].to_absent, 1);
    return 0;
}

static int failed(msgr_ctx *ctx, int rc)
{
    msgr__count(&ctx->bus->wtab[ctx->worker].send_errors, 1);
    return rc;
}

static int owner_runs(const msgr_bus *b, uint32_t w)
{
    return msgr_os_owner_alive(atomic_load_explicit(&b->wtab[w].pid, memory_order_relaxed),
                               atomic_load_explicit(&b->wtab[w].start, memory_order_relaxed));
}

/* Whether the chain of workers blocked on full inboxes, starting at dest, comes back to me,
 * through workers whose processes live (a killed process leaves its mark behind). Fills the
 * chain's names into `why` when it does. */
static int waits_for_me(const msgr_bus *b, uint32_t me, uint32_t dest, char *why, size_t n)
{
    uint32_t d = dest, path[64], len = 0;
    for (uint32_t k = 0; k < b->app->n_workers && len < 64; k++) {
        path[len++] = d;
        uint32_t next = atomic_load_explicit(&b->wtab[d].blocked_on, memory_order_acquire);
        if (!next || next > b->app->n_workers)
            return 0;
        d = next - 1;
        if (d == me)
            break;
    }
    if (d != me)
        return 0;
    for (uint32_t i = 0; i < len; i++)
        if (!owner_runs(b, path[i]))
            return 0; /* a stale mark: that worker's process is dead */
    size_t at = (size_t)snprintf(why, n, "%s", b->app->worker_names[me]);
    for (uint32_t i = 0; i < len && at < n; i++)
        at += (size_t)snprintf(why + at, n - at, " -> %s", b->app->worker_names[path[i]]);
    if (at < n)
        snprintf(why + at, n - at, " -> %s", b->app->worker_names[me]);
    return 1;
}

/* dest's inbox is full. Waits for space up to the bus's send timeout, in slices, and never
 * silently for ever:
 *   - a worker the application drives itself (msgr_bus_poll, opts.drive), sending from the
 *     application's loop (not from one of its handlers), keeps dispatching its own inbox
 *     meanwhile, so main sending to a worker that replies to main cannot lock both;
 *   - each waiting sender marks whom it waits for in the bus's worker table (shared by every
 *     process); a sender whose chain of waits comes back to itself, and stays so for 200 ms
 *     (a mark can be stale for a moment), fails with MSGR_EDEADLK. */
static int claim_waiting(msgr_ctx *ctx, uint32_t dest, size_t len, msgr_claim *c)
{
    msgr_bus *b = ctx->bus;
    msgr__worker *w = &b->w[ctx->worker];
    /* Not from inside one of its own handlers: the record being handled is still at the head
     * of its inbox, and dispatching again would hand it out twice. */
    int drives = w->local && w->polled && !w->threaded && !w->in_send && !w->in_handler;
    uint64_t start = msgr_os_now_ns(), cycle_since = 0;
    uint64_t deadline = b->send_timeout < 0 ? UINT64_MAX : start + (uint64_t)b->send_timeout;
    _Atomic uint32_t *mark = &b->wtab[ctx->worker].blocked_on;
    /* Release: pairs with the acquire in waits_for_me(); only a hint, re-checked over time. A
     * worker that dispatches its inbox while it waits is no link of a cycle: not marked. */
    if (!drives)
        atomic_store_explicit(mark, dest + 1, memory_order_release);
    char why[256];
    int rc;
    for (;;) {
        if (drives) {
            w->in_send = 1;
            msgr__worker_poll(w, 64);
            w->in_send = 0;
        }
        uint64_t now = msgr_os_now_ns();
        int64_t slice = drives ? 1000000 : 20000000;
        if (deadline != UINT64_MAX && (int64_t)(deadline - now) < slice)
            slice = now >= deadline ? 0 : (int64_t)(deadline - now);
        rc = msgr__inbox_claim(&b->inbox[dest], len, c, slice);
        if (rc != MSGR_EAGAIN && rc != MSGR_ETIMEDOUT)
            break;
        now = msgr_os_now_ns();
        if (now >= deadline) {
            rc = MSGR_ETIMEDOUT;
            break;
        }
        if (drives || !waits_for_me(b, ctx->worker, dest, why, sizeof why))
            cycle_since = 0;
        else if (!cycle_since)
            cycle_since = now;
        else if (now - cycle_since >= 200000000u) {
            rc = msgr__fail(MSGR_EDEADLK, "a cycle of full inboxes: %s", why);
            break;
        }
    }
    if (!drives)
        atomic_store_explicit(mark, 0, memory_order_release);
    return rc;
}

static int claim_to(msgr_ctx *ctx, uint32_t dest, uint16_t id, size_t len, msgr_out *out)
{
    msgr_bus *b = ctx->bus;
    int rc = msgr__inbox_claim(&b->inbox[dest], len, &out->claim_, 0);
    if (rc == MSGR_EAGAIN && b->send_timeout != 0)
        rc = claim_waiting(ctx, dest, len, &out->claim_);
    if (rc)
        return failed(ctx, rc);
    out->data = out->claim_.data;
    out->dest = dest;
    out->id = id;
    out->claim_.type = id;
    out->claim_.source = (uint16_t)ctx->worker;
    return 0;
}

int msgr_claim_to(msgr_ctx *ctx, uint32_t dest, uint16_t id, size_t len, msgr_out *out)
{
    int rc = check_dest(ctx, dest, id);
    if (rc || !out)
        return rc ? rc : MSGR_EINVAL;
    return claim_to(ctx, dest, id, len, out);
}

int msgr__claim_ctl(msgr_ctx *ctx, uint32_t dest, size_t len, msgr_out *out)
{
    int rc = check_dest(ctx, dest, 1); /* any id but the control one: the checks only */
    return rc ? rc : claim_to(ctx, dest, MSGR__CTL_STOP, len, out);
}

int msgr_claim_first(msgr_ctx *ctx, uint32_t dest, uint16_t id, size_t len, msgr_out *out)
{
    int rc = check_dest(ctx, dest, id);
    if (rc || !out)
        return rc ? rc : MSGR_EINVAL;
    int k = msgr__bc_find(ctx->bus, ctx->worker, id, 0);
    if (k >= 0)
        return msgr__bc_claim(ctx, k, id, len, out);
    return claim_to(ctx, dest, id, len, out);
}

int msgr_commit(msgr_ctx *ctx, msgr_out *out)
{
    if (ctx && out && out->dest == MSGR__DEST_BCAST && out->pad_ < ctx->bus->n_bc)
        return msgr__bc_commit(ctx, out);
    if (!ctx || !out || out->dest >= ctx->bus->app->n_workers)
        return MSGR_EINVAL;
    int rc = msgr__inbox_commit(&ctx->bus->inbox[out->dest], &out->claim_);
    if (rc == 0) {
        msgr__count(&ctx->bus->sent[ctx->worker * ctx->bus->sent_stride + out->dest], 1);
    }
    return rc;
}

int msgr_abandon(msgr_ctx *ctx, msgr_out *out)
{
    if (ctx && out && out->dest == MSGR__DEST_BCAST)
        return 0; /* a ring claim that is never committed costs nothing */
    if (!ctx || !out || out->dest >= ctx->bus->app->n_workers)
        return MSGR_EINVAL;
    return msgr__inbox_abort(&ctx->bus->inbox[out->dest], &out->claim_);
}

int msgr_send_to(msgr_ctx *ctx, uint32_t dest, uint16_t id, const void *data, size_t len)
{
    msgr_out out;
    if (!data && len)
        return MSGR_EINVAL;
    int rc = msgr_claim_to(ctx, dest, id, len, &out);
    if (rc)
        return rc;
    if (len)
        memcpy(out.data, data, len);
    return msgr_commit(ctx, &out);
}

int msgr_send_encoded_to(msgr_ctx *ctx, uint32_t dest, uint16_t id, const void *msg,
                         msgr_size_fn size, msgr_encode_fn encode)
{
    if (!msg || !size || !encode)
        return MSGR_EINVAL;
    size_t n = size(msg);
    msgr_out out;
    int rc = msgr_claim_to(ctx, dest, id, n, &out);
    if (rc)
        return rc;
    int wrote = encode(msg, out.data, n);
    if (wrote < 0 || (size_t)wrote != n) {
        /* The size contract is broken: never publish a record with a hole or a truncation. */
        msgr_abandon(ctx, &out);
        return failed(ctx, wrote < 0 ? wrote : MSGR_ECODEC);
    }
    return msgr_commit(ctx, &out);
}

/* Claims `len` bytes for `id` in each of n destinations; on a failure gives the ones made up. */
static int claim_each(msgr_ctx *ctx, const uint32_t *dests, uint32_t n, uint16_t id, size_t len,
                      msgr_out *outs)
{
    for (uint32_t i = 0; i < n; i++) {
        int rc = msgr_claim_to(ctx, dests[i], id, len, &outs[i]);
        if (rc) {
            while (i--)
                msgr_abandon(ctx, &outs[i]);
            return rc;
        }
    }
    return 0;
}

#define MSGR__FANOUT_MAX 64 /* destinations of one message; more is refused (MSGR_ERANGE) */

int msgr_send_all_to(msgr_ctx *ctx, const uint32_t *dests, uint32_t n, uint16_t id,
                     const void *data, size_t len, msgr_size_fn size, msgr_encode_fn encode)
{
    msgr_out outs[MSGR__FANOUT_MAX];
    if (!ctx || !dests || !n || (!data && (len || encode)) || (!size != !encode))
        return MSGR_EINVAL;
    if (n > MSGR__FANOUT_MAX)
        return MSGR_ERANGE;
    int k = msgr__bc_find(ctx->bus, ctx->worker, id, n);
    if (k >= 0) /* a broadcast fan-out: written once */
        return msgr__bc_send(ctx, k, id, data, len, size, encode);
    if (encode)
        len = size(data);
    int rc = claim_each(ctx, dests, n, id, len, outs);
    if (rc)
        return rc; /* counted as a send error by msgr_claim_to; nobody got it */
    if (encode) {
        int wrote = encode(data, outs[0].data, len);
        if (wrote < 0 || (size_t)wrote != len) {
            for (uint32_t i = 0; i < n; i++)
                msgr_abandon(ctx, &outs[i]);
            return failed(ctx, wrote < 0 ? wrote : MSGR_ECODEC);
        }
        for (uint32_t i = 1; i < n; i++)
            memcpy(outs[i].data, outs[0].data, len);
    } else if (len) {
        for (uint32_t i = 0; i < n; i++)
            memcpy(outs[i].data, data, len);
    }
    for (uint32_t i = 0; i < n; i++)
        msgr_commit(ctx, &outs[i]); /* cannot fail for a claim made here */
    return 0;
}

int msgr_commit_all(msgr_ctx *ctx, msgr_out *out, const uint32_t *others, uint32_t n)
{
    msgr_out outs[MSGR__FANOUT_MAX];
    if (!ctx || !out || (n && !others))
        return MSGR_EINVAL;
    if (n > MSGR__FANOUT_MAX) {
        msgr_abandon(ctx, out);
        return MSGR_ERANGE;
    }
    if (out->dest == MSGR__DEST_BCAST) /* claimed in a broadcast ring (msgr_claim_first) */
        return msgr_commit(ctx, out);
    int rc = claim_each(ctx, others, n, out->id, out->claim_.len, outs);
    if (rc) {
        msgr_abandon(ctx, out);
        return rc;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (out->claim_.len)
            memcpy(outs[i].data, out->data, out->claim_.len);
        msgr_commit(ctx, &outs[i]);
    }
    return msgr_commit(ctx, out);
}

/* FNV-1a, 64-bit: small, stable across platforms, good enough to tell layouts apart. */
uint64_t msgr_fp_str(uint64_t h, const char *s)
{
    if (h == 0)
        h = 0xcbf29ce484222325ull;
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* terminator, so "ab"+"c" != "a"+"bc" */
}

uint64_t msgr_fp_u64(uint64_t h, uint64_t v)
{
    if (h == 0)
        h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 8; i++)
        h = (h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
    return h;
}
