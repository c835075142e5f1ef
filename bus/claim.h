/* messenger: filling the claim a producer gets back (internal), the same for the ring and the
 * log: only where the payload lies differs between their record formats. */
#ifndef MSGR_CLAIM_H
#define MSGR_CLAIM_H

#include <stddef.h>
#include <stdint.h>

#include "msgr/ring.h"

/* The claim of a record at pos taking `size` bytes, `len` of them payload at `data`; type and
 * source start at 0 for the producer to set. */
static inline void msgr__claim_set(msgr_claim *c, void *data, uint64_t pos, uint64_t size,
                                   size_t len)
{
    c->data = data;
    c->len = (uint32_t)len;
    c->type = 0;
    c->source = 0;
    c->pos_ = pos;
    c->size_ = (uint32_t)size;
    c->claimed_ = (uint32_t)len;
}

#endif
