/* messenger: two-slot durable positions (see durable.h). */
#include "durable.h"
#include "crc32c.h"

static uint32_t slot_crc(uint64_t gen, uint64_t pos)
{
    uint64_t v[2] = {gen, pos};
    return msgr__crc32c(0, v, sizeof v);
}

uint64_t msgr__durable_get(const msgr__durable *d)
{
    uint64_t best_gen = 0, best = 0;
    for (int i = 0; i < 2; i++) {
        /* A4: acquire pairs with R4 in msgr__durable_set(). */
        uint64_t gen = atomic_load_explicit(&d->slot[i].gen, memory_order_acquire);
        uint64_t pos = atomic_load_explicit(&d->slot[i].pos, memory_order_relaxed);
        uint32_t crc = atomic_load_explicit(&d->slot[i].crc, memory_order_relaxed);
        if (crc == slot_crc(gen, pos) && gen >= best_gen) {
            best_gen = gen;
            best = pos;
        }
    }
    return best;
}

void msgr__durable_set(msgr__durable *d, uint64_t pos)
{
    uint64_t g0 = atomic_load_explicit(&d->slot[0].gen, memory_order_relaxed);
    uint64_t g1 = atomic_load_explicit(&d->slot[1].gen, memory_order_relaxed);
    uint64_t gen = (g0 > g1 ? g0 : g1) + 1;
    msgr__durable_slot *s = &d->slot[gen & 1];
    atomic_store_explicit(&s->gen, 0, memory_order_relaxed); /* invalid while being written */
    atomic_store_explicit(&s->pos, pos, memory_order_relaxed);
    atomic_store_explicit(&s->crc, slot_crc(gen, pos), memory_order_relaxed);
    /* R4: release publishes pos and crc, and what the writer did before; pairs with A4. */
    atomic_store_explicit(&s->gen, gen, memory_order_release);
}
