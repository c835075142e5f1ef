/* messenger: the send path (delivery into a worker's inbox) and fingerprint helpers. */
#include "bus_internal.h"
#include "msgr/error.h"

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

int msgr_claim_to(msgr_ctx *ctx, uint32_t dest, uint16_t id, size_t len, msgr_out *out)
{
    int rc = check_dest(ctx, dest, id);
    if (rc || !out)
        return rc ? rc : MSGR_EINVAL;
    msgr_bus *b = ctx->bus;
    rc = msgr__inbox_claim(&b->inbox[dest], len, &out->claim_, b->send_timeout);
    if (rc)
        return failed(ctx, rc);
    out->data = out->claim_.data;
    out->dest = dest;
    out->id = id;
    out->claim_.type = id;
    out->claim_.source = (uint16_t)ctx->worker;
    return 0;
}

int msgr_commit(msgr_ctx *ctx, msgr_out *out)
{
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
