/* messenger: the persistent log's records: checksums, padding, and telling what lies at a
 * position (a committed record, padding, an unfinished claim or garbage). */
#include "log_internal.h"
#include "crc32c.h"
#include "msgr/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- records ---- */

uint32_t msgr__lrec_crc(uint64_t pos, const msgr__lrec *r, const void *payload)
{
    uint64_t w1 = msgr__lrec_word1(r->len, r->type, r->source);
    return msgr__crc32c_seeded(msgr__lrec_seed(pos), w1, payload, r->len);
}

static uint32_t skip_crc(uint64_t pos, uint32_t size)
{
    struct {
        uint64_t pos;
        uint64_t size;
    } h = {pos, size};
    return msgr__crc32c(0, &h, sizeof h);
}

void msgr__lwrite_skip(msgr_log *log, uint64_t pos, uint64_t size)
{
    msgr__lskip *s = (msgr__lskip *)(log->data + (pos & log->mask));
    s->size = (uint32_t)size;
    s->crc = skip_crc(pos, (uint32_t)size);
    /* Release: size and crc are visible to whoever sees the tag (acquire in msgr__lrec_at). */
    atomic_store_explicit(&s->tag, (pos | MSGR__L_COMMITTED | MSGR__L_SKIP) ^ log->salt,
                          memory_order_release);
}

int64_t msgr__lrec_at(msgr_log *log, uint64_t pos, uint32_t *state, int how)
{
    int check_crc = how & MSGR__LREC_CRC;
    uint64_t off = pos & log->mask;
    if (pos & 15)
        return 0;
    msgr__lrec *r = (msgr__lrec *)(log->data + off);
    /* A1: acquire pairs with the release stores of tags in msgr_log_commit(), claim and
     * msgr__lwrite_skip(): the fields behind the tag are visible once it is. */
    uint64_t t = atomic_load_explicit(&r->tag, memory_order_acquire) ^ log->salt;
    if ((t & ~MSGR__L_FLAGS) != pos)
        return 0;
    uint32_t st = (uint32_t)(t & MSGR__L_FLAGS);
    uint64_t room = log->cap - off; /* nothing straddles the end */
    if (st == (MSGR__L_COMMITTED | MSGR__L_SKIP)) {
        const msgr__lskip *s = (const msgr__lskip *)r;
        if (s->size < MSGR__LSKIP_MIN || (s->size & 15) || s->size > room ||
            s->crc != skip_crc(pos, s->size))
            return MSGR_ECORRUPT;
        *state = st;
        return s->size;
    }
    if (st != MSGR__L_COMMITTED)
        return 0; /* a claim not yet committed carries no tag here (its slot has it) */
    if (room < MSGR__LREC_HDR || r->len > log->max_payload || msgr__lrec_size(r->len) > room)
        return MSGR_ECORRUPT;
    if (check_crc && r->crc != msgr__lrec_crc(pos, r, r + 1))
        return MSGR_ECORRUPT;
    *state = st;
    return (int64_t)msgr__lrec_size(r->len);
}

uint64_t msgr__lscan_next(msgr_log *log, uint64_t pos, uint64_t limit)
{
    for (uint64_t q = pos + 16; q < limit; q += 16) {
        uint32_t st;
        if (msgr__lrec_at(log, q, &st, MSGR__LREC_CRC) > 0)
            return q;
    }
    return 0;
}

void msgr__ladvance_start(msgr_log *log)
{
    msgr__log_hdr *h = log->hdr;
    uint64_t min = UINT64_MAX;
    for (uint32_t i = 0; i < h->max_groups; i++)
        if (atomic_load_explicit(&log->groups[i].state, memory_order_acquire) == 2) {
            uint64_t a = msgr__durable_get(&log->groups[i].pos);
            if (a < min)
                min = a;
        }
    if (min == UINT64_MAX)
        return; /* no group: keep everything (back-pressure when full) */
    uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    if (min > tail)
        min = tail;
    uint64_t cur = atomic_load_explicit(&h->start, memory_order_relaxed);
    /* R5: release forwards A4 (durable.h) to producers that acquire start (A5 in claim). Monotonic. */
    while (cur < min && !atomic_compare_exchange_weak_explicit(&h->start, &cur, min,
                                                               memory_order_release,
                                                               memory_order_relaxed))
        ;
}
