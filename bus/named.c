/* messenger: named entries with durable positions and live owners (see named.h). */
#include "named.h"
#include "os/os.h"
#include "msgr/error.h"

#include <limits.h>
#include <string.h>

int msgr__named_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= 1 && n <= MSGR__NAME_LEN_MAX;
}

int msgr__named_find_or_make(msgr__named_entry *e, uint32_t n, const char *name,
                             uint64_t (*first)(void *), void *arg)
{
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < n; i++) {
            /* A1: acquire pairs with R1 below: a ready entry's name and position are seen. */
            uint32_t st = atomic_load_explicit(&e[i].state, memory_order_acquire), zero = 0;
            if (pass == 0 && st == 2 && strncmp(e[i].name, name, sizeof e[i].name) == 0)
                return (int)i;
            if (pass == 1 && st == 0 && atomic_compare_exchange_strong(&e[i].state, &zero, 1)) {
                memset(e[i].name, 0, sizeof e[i].name);
                strncpy(e[i].name, name, sizeof e[i].name - 1);
                msgr__durable_set(&e[i].pos, first(arg));
                /* R1: publishes the name and position. Sequentially consistent with the
                 * re-read of first below, which a mover of first orders against its own look
                 * at the ready entries (it sees this one, or this one sees the moved first). */
                atomic_store_explicit(&e[i].state, 2, memory_order_seq_cst);
                uint64_t f = first(arg);
                if (msgr__durable_get(&e[i].pos) < f)
                    msgr__durable_set(&e[i].pos, f);
                return (int)i;
            }
        }
    return MSGR_ENOSPC;
}

/* Ownership is taken in two steps so that nobody judges a new owner by the previous owner's
 * start time: the owner word goes from the old value to -pid (a taker, judged by its pid
 * alone), then owner_start is stored, then owner becomes pid (R2, pairs with A2 below). */
static int32_t live_owner(const msgr__named_entry *e, int32_t *seen)
{
    /* A2: acquire pairs with R2: an owner seen as pid has its own start time stored. */
    int32_t owner = atomic_load_explicit(&e->owner, memory_order_acquire);
    uint64_t start = atomic_load_explicit(&e->owner_start, memory_order_relaxed);
    *seen = owner;
    if (owner < 0) /* from the file: INT32_MIN has no positive twin */
        return owner != INT32_MIN && msgr_os_pid_alive(-owner) ? -owner : 0;
    return msgr_os_owner_alive(owner, start) ? owner : 0;
}

int32_t msgr__named_owner(const msgr__named_entry *e)
{
    int32_t seen;
    return live_owner(e, &seen);
}

int msgr__named_own(msgr__named_entry *e, int32_t pid, uint64_t start)
{
    int32_t owner;
    if (live_owner(e, &owner) || owner == pid || owner == -pid)
        return MSGR_EBUSY;
    /* Only from the value judged dead (or free): a taker that came first wins. */
    if (!atomic_compare_exchange_strong(&e->owner, &owner, -pid))
        return MSGR_EBUSY;
    atomic_store_explicit(&e->owner_start, start, memory_order_relaxed);
    atomic_store_explicit(&e->owner, pid, memory_order_release); /* R2 */
    return 0;
}

void msgr__named_release(msgr__named_entry *e)
{
    atomic_store_explicit(&e->owner, 0, memory_order_release);
}
