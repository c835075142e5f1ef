/* messenger: a test hook inside msgr_bcast_join (internal; tests only). */
#ifndef MSGR_BCAST_HOOK_H
#define MSGR_BCAST_HOOK_H

/* When set, msgr_bcast_join calls it after reading its first tail and before publishing its
 * slot: the window where a producer's scan can miss the joiner. NULL in normal use. */
extern void (*msgr__bcast_join_hook)(void *arg);
extern void *msgr__bcast_join_hook_arg;

#endif
