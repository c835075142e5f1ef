/* bench_compare only: atomic_queue (a C++ header library) behind a C interface, so peers.c can
 * measure it like the other peers. One single-producer single-consumer queue (aq_depth()
 * entries: 1024, or 32 for pointers to messages over 4 KiB): pointers (the zero-copy mode: the
 * producer fills a slot it owns and passes its address) or whole messages of 8, 64, 512 or
 * 4096 bytes by value (the copy mode). */
#ifndef MSGR_BENCH_ATOMIC_QUEUE_ADAPTER_H
#define MSGR_BENCH_ATOMIC_QUEUE_ADAPTER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aq_queue aq_queue;

/* A queue of pointers to messages of `size` bytes, or (by_value) of the messages themselves
 * (8, 64, 512 or 4096 bytes). NULL if it cannot be made. */
aq_queue *aq_new(size_t size, int by_value);
/* 1 if queued (by value: the size bytes at entry; pointers: the pointer entry), 0 if full. */
int aq_try_push(aq_queue *q, const void *entry);
/* 1 if taken (by value: into out; pointers: stored at *(void **)out), 0 if empty. */
int aq_try_pop(aq_queue *q, void *out);
void aq_free(aq_queue *q);
unsigned aq_depth(const aq_queue *q);

#ifdef __cplusplus
}
#endif

#endif
