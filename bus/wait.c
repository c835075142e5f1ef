/* messenger: spin, yield, then sleep without lost wake-ups (see wait.h). */
#include "wait.h"
#include "msgr/error.h"

void msgr__wait_policy_init(msgr__wait_policy *p)
{
    p->spins = 4096;
    p->yields = 64;
    p->fast_barrier = msgr_os_fast_barrier_register();
}

int msgr__wait_until(const msgr__wait_policy *p, msgr__try_fn try, void *self, void *arg,
                     int64_t timeout_ns, msgr__waitq *q, int counter, uint32_t look_pauses,
                     msgr__cap_fn cap)
{
    /* Callers have just tried once and seen MSGR_EAGAIN (and timeout_ns != 0): looking again
     * at once would only pull the line the other side is writing back into our cache. */
    int rc;
    uint64_t deadline = timeout_ns < 0 ? UINT64_MAX : msgr_os_now_ns() + (uint64_t)timeout_ns;
    /* Between looks, back off a few pauses: each look pulls the line the other side is writing
     * into our cache, and taking it back costs the writer a transfer. A handle that never
     * sleeps is asking for the lowest latency instead, so it looks after every pause (backing
     * off would add to every hand-off there). */
    uint32_t backoff = p->spins == UINT32_MAX ? 1 : 8, spins = p->spins;
    if (look_pauses > backoff && spins && spins != UINT32_MAX) { /* sparser looks, same time */
        spins = (uint32_t)((uint64_t)spins * backoff / look_pauses) + 1;
        backoff = look_pauses;
    }
    for (uint32_t i = 0; i < spins; i++) {
        msgr__pause_n(backoff);
        if ((rc = try(self, arg)) != MSGR_EAGAIN)
            return rc;
        if (((i & 255) == 255 || backoff > 8) && msgr_os_now_ns() >= deadline)
            return MSGR_ETIMEDOUT;
    }
    for (uint32_t i = 0; i < p->yields || p->spins == UINT32_MAX; i++) {
        msgr_os_yield();
        if ((rc = try(self, arg)) != MSGR_EAGAIN)
            return rc;
        if (msgr_os_now_ns() >= deadline)
            return MSGR_ETIMEDOUT;
    }
    for (;;) {
        /* D2: read the eventcount before announcing; any wake after this changes it. */
        uint32_t seq = atomic_load_explicit(&q->futex, memory_order_seq_cst);
        if (counter)
            atomic_fetch_add_explicit(&q->waiting, 1, memory_order_seq_cst);
        else
            atomic_store_explicit(&q->waiting, 1, memory_order_seq_cst);
        if (!p->fast_barrier || msgr_os_heavy_barrier() != 0)
            atomic_thread_fence(memory_order_seq_cst);
        rc = try(self, arg);
        if (rc == MSGR_EAGAIN) {
            uint64_t now = msgr_os_now_ns();
            if (now >= deadline)
                rc = MSGR_ETIMEDOUT;
            else {
                int64_t left = deadline == UINT64_MAX ? -1 : (int64_t)(deadline - now);
                int64_t most = cap ? cap(self, arg) : -1;
                if (most >= 0 && (left < 0 || most < left))
                    left = most;
                if (left != 0)
                    msgr_os_futex_wait(&q->futex, seq, left);
            }
        }
        if (counter)
            atomic_fetch_sub_explicit(&q->waiting, 1, memory_order_relaxed);
        else
            atomic_store_explicit(&q->waiting, 0, memory_order_relaxed);
        if (rc != MSGR_EAGAIN)
            return rc;
        if ((rc = try(self, arg)) != MSGR_EAGAIN)
            return rc;
    }
}
