/* messenger: a named entry with a durable position and a live owner, in shared or persisted
 * memory (internal): a log's consumer group, a journal's reader.
 *
 * A table of these lies in a file every process maps. An entry is free (state 0), being made
 * (1) or ready (2); a ready entry has a name (1..47 characters), a position written through
 * durable.h (torn writes are never believed), and at most one owner at a time: the process
 * (pid plus start time, so a reused pid is not taken for it) that reads under that name now.
 */
#ifndef MSGR_NAMED_H
#define MSGR_NAMED_H

#include <stdatomic.h>
#include <stdint.h>

#include "durable.h"

#define MSGR__NAME_LEN_MAX 47u

typedef struct msgr__named_entry {
    _Atomic uint32_t state;       /* 0 free, 1 being made, 2 ready */
    _Atomic int32_t owner;        /* pid of the process using it now, or 0; -pid while that
                                     process is taking it (owner_start not yet its own) */
    _Atomic uint64_t owner_start; /* that process's start time */
    char name[MSGR__NAME_LEN_MAX + 1];
    msgr__durable pos;            /* the durable position (durable.h) */
    uint8_t pad[128 - 64 - sizeof(msgr__durable)];
} msgr__named_entry;
_Static_assert(sizeof(msgr__named_entry) == 128, "a named entry is 128 bytes");

/* 1 if name is a valid entry name (1..47 characters), else 0. */
int msgr__named_ok(const char *name);

/* The ready entry called `name` among the n at e, or a free one made ready under that name at
 * position first(arg): first looked up by name, then made, so two processes making one name at
 * once may make two only if both looked before either published (the second is then found by
 * name from then on, and the first stays unused). A new entry's position is clamped to
 * first(arg) read again after it is published, so a first that moved meanwhile (space
 * reclaimed, segments deleted) is never left behind. Returns its index or MSGR_ENOSPC. */
int msgr__named_find_or_make(msgr__named_entry *e, uint32_t n, const char *name,
                             uint64_t (*first)(void *), void *arg);

/* Takes ownership of entry e for the process (pid, start): MSGR_EBUSY if a live process
 * (this one included) owns it, else 0. A dead owner's entry is taken over. */
int msgr__named_own(msgr__named_entry *e, int32_t pid, uint64_t start);

/* The pid of e's live owner, or 0 when it has none (never owned, released, or its owner is
 * dead). Reads only. */
int32_t msgr__named_owner(const msgr__named_entry *e);

/* Gives ownership up. */
void msgr__named_release(msgr__named_entry *e);

#endif
