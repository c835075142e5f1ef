/* messenger: waiting for another thread or process without losing wake-ups (internal).
 *
 * A waiter spins (pause instructions, backing off between looks), then yields, then sleeps on
 * a futex word in shared memory. The side that makes progress (a committer, a consumer freeing
 * space) must notice a sleeper: "store progress; load waiting" against "store waiting; load
 * progress" is Dekker's pattern and needs a StoreLoad barrier on both sides. A full fence on
 * every message would cost most of the throughput, so the barrier is asymmetric: the progress
 * side only stops the compiler (msgr__fast_side_barrier) and the rare side about to sleep runs
 * msgr_os_heavy_barrier() (Linux membarrier GLOBAL_EXPEDITED), which makes every running thread
 * of every registered process execute a full barrier. Where that is unavailable both sides use
 * a seq_cst fence. Sleepers sleep on an eventcount word whose value they read before
 * announcing themselves, so a wake between the announcement and the sleep is never lost.
 */
#ifndef MSGR_WAIT_H
#define MSGR_WAIT_H

#include <stdatomic.h>
#include <stdint.h>

#include "os/os.h"

/* Lives in shared memory: who waits, and the word they sleep on. */
typedef struct msgr__waitq {
    _Atomic uint32_t waiting; /* a flag (one waiter) or a count (several) */
    _Atomic uint32_t futex;   /* eventcount: bumped by every wake */
} msgr__waitq;

/* Longest linger a handle accepts, in pause instructions (a few ms): a pause loop does not
 * look at the clock, so this bounds how far a timed wait can overshoot. */
#define MSGR__LINGER_MAX_PAUSES 65536u

/* The pauses a linger setting (msgr_ring_set_linger, msgr_log_reader_set_linger) keeps:
 * none when min_batch is 0 (off), at most MSGR__LINGER_MAX_PAUSES. */
static inline uint32_t msgr__linger_pauses(unsigned min_batch, uint32_t pauses)
{
    if (!min_batch)
        return 0;
    return pauses < MSGR__LINGER_MAX_PAUSES ? pauses : MSGR__LINGER_MAX_PAUSES;
}

/* n CPU pause instructions: backing off without looking at shared memory. */
static inline void msgr__pause_n(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        msgr_os_cpu_relax();
}

/* Process-local: how a handle waits. */
typedef struct msgr__wait_policy {
    uint32_t spins;   /* looks before yielding; UINT32_MAX: never sleep, no back-off */
    uint32_t yields;  /* sched_yield rounds before sleeping */
    int fast_barrier; /* msgr_os_fast_barrier_register() said yes */
} msgr__wait_policy;

/* Default policy (4096 looks, 64 yields); registers this process for the asymmetric barrier. */
void msgr__wait_policy_init(msgr__wait_policy *p);

/* Returns MSGR_EAGAIN while the condition does not hold, anything else ends the wait. */
typedef int (*msgr__try_fn)(void *self, void *arg);

/* Called just before each sleep: the longest the sleep may last (< 0: until woken; 0: do not
 * sleep, try again now). For a wait whose waker may be dead (a claim whose producer was
 * killed), so that the sleeper looks again at least that often. */
typedef int64_t (*msgr__cap_fn)(void *self, void *arg);

/* Runs try(self, arg) until it stops returning MSGR_EAGAIN or timeout_ns passes (< 0: never;
 * MSGR_ETIMEDOUT). The caller has just tried once. `counter`: q->waiting counts waiters
 * instead of being a flag. `look_pauses`: while spinning, pauses between looks when more than
 * the default 8 (a lingering consumer: each look reads the line a producer is writing).
 * `cap` (may be NULL) bounds each sleep. */
int msgr__wait_until(const msgr__wait_policy *p, msgr__try_fn try, void *self, void *arg,
                     int64_t timeout_ns, msgr__waitq *q, int counter, uint32_t look_pauses,
                     msgr__cap_fn cap);

/* Progress side, after publishing progress: barrier, then wake sleepers if any announced
 * themselves. D1: pairs with D2 in msgr__wait_until(): either we see the waiter's announcement
 * or the waiter's re-check after its heavy barrier sees our progress. */
static inline void msgr__wake_waiters(const msgr__wait_policy *p, msgr__waitq *q, int all)
{
    if (p->fast_barrier)
        atomic_signal_fence(memory_order_seq_cst);
    else
        atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&q->waiting, memory_order_relaxed)) {
        /* The RMW changes the word the waiter sleeps on, so a waiter between reading it and
         * sleeping returns at once (the futex compares first). */
        atomic_fetch_add_explicit(&q->futex, 1, memory_order_seq_cst);
        msgr_os_futex_wake(&q->futex, all ? INT32_MAX : 1);
    }
}

#endif
