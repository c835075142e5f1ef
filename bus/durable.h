/* messenger: a small durable position in shared or persisted memory (internal).
 *
 * Written to one of two slots, each with a generation number and a CRC32C; a reader takes the
 * valid slot with the higher generation, so a torn update (a crash, or power loss with pages
 * landing in any order) is never believed. One writer at a time; any number of readers. Used
 * for log consumer groups' acknowledgements and journal readers' positions.
 */
#ifndef MSGR_DURABLE_H
#define MSGR_DURABLE_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct msgr__durable_slot {
    _Atomic uint64_t gen;
    _Atomic uint64_t pos;
    _Atomic uint32_t crc;
    uint32_t pad;
} msgr__durable_slot;

typedef struct msgr__durable {
    msgr__durable_slot slot[2];
} msgr__durable;
_Static_assert(sizeof(msgr__durable) == 48, "durable position is 48 bytes");

/* The position last set (0 if never). A4: acquire pairs with R4 in msgr__durable_set(): what
 * the writer did before setting it happened before anything the reader does after. */
uint64_t msgr__durable_get(const msgr__durable *d);

/* Sets the position, overwriting the older slot so the newer stays valid meanwhile. */
void msgr__durable_set(msgr__durable *d, uint64_t pos);

#endif
