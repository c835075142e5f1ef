/* messenger: the IPC transport's frame header (internal; the same on every platform).
 *
 *   0        4        6        8
 *   +--------+--------+--------+------------------
 *   | length | kind   | magic  | length bytes of payload
 *   +--------+--------+--------+------------------
 * little-endian; kind 0 is data, 1 a region hand-over (its descriptor travels with the
 * header's bytes); magic "ms" catches a peer that does not speak the protocol at all.
 * Everything in a header comes from another process: checked before use.
 */
#ifndef MSGR_IPC_FRAME_H
#define MSGR_IPC_FRAME_H

#include "msgr/error.h"

#include <stddef.h>
#include <stdint.h>

#define MSGR__FRAME_HDR 8u
#define MSGR__FRAME_MAGIC 0x736du /* "ms" */
#define MSGR__FRAME_DATA 0u
#define MSGR__FRAME_REGION 1u

static inline void msgr__frame_put(uint8_t h[MSGR__FRAME_HDR], uint32_t len, uint16_t kind)
{
    for (int i = 0; i < 4; i++)
        h[i] = (uint8_t)(len >> (8 * i));
    h[4] = (uint8_t)kind;
    h[5] = (uint8_t)(kind >> 8);
    h[6] = (uint8_t)MSGR__FRAME_MAGIC;
    h[7] = (uint8_t)(MSGR__FRAME_MAGIC >> 8);
}

/* Decodes a received header: 0, MSGR_ECORRUPT (not a frame header) or MSGR_EMSGSIZE (longer
 * than max_frame). *len and *kind are set in every case where they could be read. */
static inline int msgr__frame_get(const uint8_t h[MSGR__FRAME_HDR], uint32_t max_frame,
                                  uint32_t *len, uint16_t *kind)
{
    *len = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    *kind = (uint16_t)(h[4] | h[5] << 8);
    if ((uint16_t)(h[6] | h[7] << 8) != MSGR__FRAME_MAGIC || *kind > MSGR__FRAME_REGION)
        return MSGR_ECORRUPT;
    return *len > max_frame ? MSGR_EMSGSIZE : 0;
}

#endif
