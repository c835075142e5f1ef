/* messenger: broadcast fan-outs. A fan-out route declared broadcast (MSGR_APP_BROADCASTS) is
 * served on a memory bus by one broadcast ring in the bus region: the sender writes the message
 * once into the ring and a 24-byte reference into each destination's inbox; a destination that
 * meets the reference reads the message in place in the ring and releases it there. Going
 * through the inboxes keeps everything the inbox gives: order with the sender's other messages,
 * wake-ups and pollable descriptors, stop and drain accounting, back-pressure.
 *
 * Each destination owns reader slot i of the ring (its place in route order), joined when the
 * bus is made, so messages wait in the ring for a worker whose process has not started yet,
 * exactly as they wait in its inbox. A worker's process takes its slot over where the previous
 * one left it (msgr__bcast_reader_at). A destination whose process is gone and that holds the
 * sender back for the liveness interval is detached; the references it then meets name records
 * it no longer has and are counted as dropped. A sender killed between the ring commit and its
 * references leaves a record no reference names: readers step over it at their next reference.
 * File buses keep copies (their inboxes are persistent logs; the ring is not).
 */
#include "bus_internal.h"
#include "../bus/bcast_internal.h"
#include "os/error_detail.h"
#include "msgr/error.h"

#include <stdlib.h>
#include <string.h>

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static uint64_t ring_bytes(uint64_t cap) { return align_up(msgr_bcast_footprint(cap), 4096); }

uint64_t msgr__bc_bytes(const msgr_app *app, int file, uint64_t cap, uint64_t end, uint64_t *off)
{
    *off = align_up(end, 4096);
    if (file || !app->n_broadcasts)
        return 0;
    return ring_bytes(cap) * app->n_broadcasts;
}

/* Where the inboxes end in b's region: the broadcast rings follow (msgr__bc_bytes). */
static uint64_t inboxes_end(const msgr_bus *b)
{
    const msgr__bus_hdr *h = msgr_region_base(b->region);
    uint64_t end = h->off_inboxes;
    for (uint32_t i = 0; i < b->app->n_workers; i++)
        end += align_up(msgr_ring_footprint(b->caps[i]), 4096);
    return end;
}

/* The fan-outs' fingerprint: who sends what to whom, in order. */
static uint64_t bc_fp(const msgr_bus *b)
{
    uint64_t h = msgr_fp_u64(0, b->n_bc);
    for (uint32_t k = 0; k < b->n_bc; k++) {
        h = msgr_fp_u64(h, b->app->broadcasts[k].from);
        h = msgr_fp_u64(h, b->app->broadcasts[k].id);
        for (uint32_t i = 0; i < b->bc_ndests[k]; i++)
            h = msgr_fp_u64(h, b->bc_dests[k * b->app->n_workers + i]);
    }
    return h;
}

/* The application's fan-outs, checked, into b's tables (nothing on a file bus). */
static int bc_tables(msgr_bus *b)
{
    const msgr_app *app = b->app;
    uint32_t nw = app->n_workers;
    b->n_bc = b->file ? 0 : app->n_broadcasts;
    if (!b->n_bc)
        return 0;
    if (!app->broadcasts || !app->route_dests)
        return MSGR_EINVAL;
    b->bc = calloc(b->n_bc, sizeof *b->bc);
    b->bc_ndests = calloc(b->n_bc, sizeof *b->bc_ndests);
    b->bc_dests = calloc((size_t)b->n_bc * nw, sizeof *b->bc_dests);
    b->bc_rd = calloc((size_t)b->n_bc * nw, sizeof *b->bc_rd);
    if (!b->bc || !b->bc_ndests || !b->bc_dests || !b->bc_rd)
        return MSGR_ENOMEM;
    for (uint32_t k = 0; k < b->n_bc; k++) {
        const msgr_app_broadcast *e = &app->broadcasts[k];
        if (e->from >= nw)
            return MSGR_EINVAL;
        uint32_t n = app->route_dests(e->from, e->id, &b->bc_dests[k * nw]);
        if (n == 0 || n > MSGR_BCAST_MAX_READERS)
            return msgr__fail(MSGR_EINVAL, "broadcast fan-out of message %u from '%s': %u "
                              "destinations (1 to %u)", e->id, app->worker_names[e->from], n,
                              MSGR_BCAST_MAX_READERS);
        for (uint32_t j = 0; j < k; j++)
            if (app->broadcasts[j].from == e->from && app->broadcasts[j].id == e->id)
                return msgr__fail(MSGR_EINVAL, "broadcast fan-out of message %u from '%s' is "
                                  "declared twice", e->id, app->worker_names[e->from]);
        b->bc_ndests[k] = n;
    }
    return 0;
}

int msgr__bc_format(msgr_bus *b, uint64_t cap)
{
    int rc = bc_tables(b);
    if (rc || !b->n_bc)
        return rc;
    char *base = msgr_region_base(b->region);
    msgr__bus_hdr *h = (msgr__bus_hdr *)base;
    uint64_t off, bytes = msgr__bc_bytes(b->app, b->file, cap, inboxes_end(b), &off);
    if (off + bytes > msgr_region_size(b->region))
        return MSGR_ERANGE;
    h->off_bcast = off;
    h->bcast_capacity = cap;
    h->n_bcast = b->n_bc;
    h->bcast_fp = bc_fp(b);
    msgr_bcast_opts o = {.capacity = cap};
    for (uint32_t k = 0; k < b->n_bc; k++) {
        if ((rc = msgr_bcast_create(base + off + k * ring_bytes(cap), ring_bytes(cap), &o,
                                    &b->bc[k])))
            return rc;
        /* Every destination's slot, joined now (by us, until its worker's process takes it). */
        for (uint32_t i = 0; i < b->bc_ndests[k]; i++) {
            msgr_bcast_reader *rd;
            if ((rc = msgr__bcast_reader_at(b->bc[k], i, &rd)))
                return rc;
            msgr__bcast_reader_forget(rd);
        }
    }
    return 0;
}

int msgr__bc_attach(msgr_bus *b)
{
    int rc = bc_tables(b);
    if (rc)
        return rc;
    char *base = msgr_region_base(b->region);
    const msgr__bus_hdr *h = (const msgr__bus_hdr *)base;
    if (h->n_bcast != b->n_bc || (b->n_bc && h->bcast_fp != bc_fp(b)))
        return msgr__fail(MSGR_ESCHEMA, "the bus has %u broadcast fan-out(s), this application "
                          "%u%s", h->n_bcast, b->n_bc,
                          h->n_bcast == b->n_bc ? " with other senders or destinations" : "");
    if (!b->n_bc)
        return 0;
    uint64_t cap = h->bcast_capacity, off = h->off_bcast;
    uint64_t want, bytes = msgr__bc_bytes(b->app, b->file, cap, inboxes_end(b), &want);
    if (!msgr_bcast_footprint(cap) || off != want || off + bytes > msgr_region_size(b->region))
        return msgr__fail(MSGR_ECORRUPT, "the bus's broadcast rings (at %llu, %llu bytes each) "
                          "do not fit its layout", (unsigned long long)off,
                          (unsigned long long)cap);
    msgr_bcast_opts o = {0};
    for (uint32_t k = 0; k < b->n_bc; k++)
        if ((rc = msgr_bcast_attach(base + off + k * ring_bytes(cap), ring_bytes(cap), &o,
                                    &b->bc[k])))
            return rc;
    return 0;
}

int msgr__bc_open_readers(msgr_bus *b)
{
    uint32_t nw = b->app->n_workers;
    for (uint32_t k = 0; k < b->n_bc; k++)
        for (uint32_t i = 0; i < b->bc_ndests[k]; i++) {
            uint32_t w = b->bc_dests[k * nw + i];
            if (!b->w[w].local || b->bc_rd[k * nw + w])
                continue;
            int rc = msgr__bcast_reader_at(b->bc[k], i, &b->bc_rd[k * nw + w]);
            if (rc)
                return msgr__fail(rc, "worker '%s': its place in the broadcast of message %u "
                                  "from '%s': %s", b->app->worker_names[w],
                                  b->app->broadcasts[k].id,
                                  b->app->worker_names[b->app->broadcasts[k].from],
                                  msgr_strerror(rc));
        }
    return 0;
}

void msgr__bc_close(msgr_bus *b)
{
    uint32_t nw = b->app->n_workers;
    for (uint32_t k = 0; b->bc && k < b->n_bc; k++) {
        /* Readers keep their slots: a later process running the worker resumes there. */
        for (uint32_t w = 0; b->bc_rd && w < nw; w++)
            msgr__bcast_reader_forget(b->bc_rd[k * nw + w]);
        msgr_bcast_close(b->bc[k]);
    }
    free(b->bc);
    free(b->bc_ndests);
    free(b->bc_dests);
    free(b->bc_rd);
}

int msgr__bc_find(const msgr_bus *b, uint32_t from, uint16_t id, uint32_t n)
{
    for (uint32_t k = 0; k < b->n_bc; k++)
        if (b->app->broadcasts[k].from == from && b->app->broadcasts[k].id == id &&
            (n == 0 || b->bc_ndests[k] == n))
            return (int)k;
    return -1;
}

int msgr__bc_claim(msgr_ctx *ctx, int k, uint16_t id, size_t len, msgr_out *out)
{
    msgr_bus *b = ctx->bus;
    /* The ring first: waiting for its space holds no inbox claim, so a destination is never
     * stuck behind our unfinished reference while we wait for it to read. */
    int rc = msgr_bcast_claim_wait(b->bc[k], len, &out->claim_, b->send_timeout);
    if (rc) {
        msgr__count(&b->wtab[ctx->worker].send_errors, 1);
        return rc;
    }
    out->data = out->claim_.data;
    out->dest = MSGR__DEST_BCAST;
    out->id = id;
    out->pad_ = (uint16_t)k;
    out->claim_.type = id;
    out->claim_.source = (uint16_t)ctx->worker;
    return 0;
}

int msgr__bc_commit(msgr_ctx *ctx, msgr_out *out)
{
    msgr_bus *b = ctx->bus;
    uint32_t k = out->pad_, nw = b->app->n_workers, n = b->bc_ndests[k];
    const uint32_t *dests = &b->bc_dests[k * nw];
    msgr_out refs[MSGR_BCAST_MAX_READERS];
    for (uint32_t i = 0; i < n; i++) {
        int rc = msgr__claim_ctl(ctx, dests[i], sizeof(msgr__bc_ref), &refs[i]);
        if (rc) {
            while (i--)
                msgr_abandon(ctx, &refs[i]);
            return rc; /* the ring claim is simply never committed */
        }
    }
    msgr__bc_ref ref = {k, out->id, 0, out->claim_.pos_, MSGR__BC_REF_MAGIC};
    msgr_bcast_commit(b->bc[k], &out->claim_); /* cannot fail for a claim made here */
    for (uint32_t i = 0; i < n; i++) {
        memcpy(refs[i].data, &ref, sizeof ref);
        msgr_commit(ctx, &refs[i]);
    }
    return 0;
}

int msgr__bc_send(msgr_ctx *ctx, int k, uint16_t id, const void *data, size_t len,
                  msgr_size_fn size, msgr_encode_fn encode)
{
    if (encode)
        len = size(data);
    msgr_out out;
    int rc = msgr__bc_claim(ctx, k, id, len, &out);
    if (rc)
        return rc;
    if (encode) {
        int wrote = encode(data, out.data, len);
        if (wrote < 0 || (size_t)wrote != len) {
            msgr__count(&ctx->bus->wtab[ctx->worker].send_errors, 1);
            return wrote < 0 ? wrote : MSGR_ECODEC;
        }
    } else if (len) {
        memcpy(out.data, data, len);
    }
    return msgr__bc_commit(ctx, &out);
}

int msgr__bc_take(msgr__worker *w, const msgr_msg *m, int discard)
{
    msgr_bus *b = w->ctx.bus;
    msgr__worker_entry *e = &b->wtab[w->ctx.worker];
    msgr__bc_ref ref;
    memcpy(&ref, m->data, sizeof ref);
    uint32_t nw = b->app->n_workers;
    msgr_bcast_reader *rd = ref.ring < b->n_bc ? b->bc_rd[ref.ring * nw + w->ctx.worker] : NULL;
    for (;;) {
        msgr_msg r;
        int rc = rd ? msgr_bcast_peek(rd, &r) : MSGR_EINVAL;
        if (rc == MSGR_ESTATE) { /* detached while our process was judged dead: rejoin */
            msgr_bcast_leave(rd);
            rd = NULL;
            b->bc_rd[ref.ring * nw + w->ctx.worker] = NULL;
            msgr__bc_open_readers(b);
            rd = b->bc_rd[ref.ring * nw + w->ctx.worker];
            rc = MSGR_EAGAIN; /* what it referred to is gone */
        }
        if (rc || r.pos_ > ref.pos) { /* not ours any more */
            msgr__count(&e->dropped, 1);
            return 1;
        }
        if (r.pos_ < ref.pos) { /* a record no reference of ours names: step over it */
            msgr_bcast_release(rd, &r);
            continue;
        }
        if (r.type != ref.id) {
            msgr__count(&e->rejected, 1);
            msgr_bcast_release(rd, &r);
            return 1;
        }
        rc = discard ? 0 : msgr__worker_dispatch(w, &r);
        msgr_bcast_release(rd, &r);
        return rc;
    }
}
