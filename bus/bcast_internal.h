/* messenger: the broadcast ring's internal entry points (the runtime's fan-out, and tests). */
#ifndef MSGR_BCAST_INTERNAL_H
#define MSGR_BCAST_INTERNAL_H

#include "msgr/bcast.h"

/* A reader in a given slot, for a reader that outlives its process (a runtime worker's place
 * in a fan-out ring): a joined slot is taken over where its last owner left it (its published
 * cursor), so nothing is lost across a restart; a free slot is joined at the tail. Errors:
 * MSGR_EINVAL, MSGR_EBUSY (the slot is changing hands), MSGR_ENOMEM. */
int msgr__bcast_reader_at(msgr_bcast *b, unsigned slot, msgr_bcast_reader **out);

/* Frees the handle but keeps its slot joined (msgr_bcast_leave gives the slot up). */
void msgr__bcast_reader_forget(msgr_bcast_reader *rd);

/* When set, msgr_bcast_join calls it after reading its first tail and before publishing its
 * slot: the window where a producer's scan can miss the joiner. NULL in normal use (tests). */
extern void (*msgr__bcast_join_hook)(void *arg);
extern void *msgr__bcast_join_hook_arg;

#endif
