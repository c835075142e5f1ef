/* messenger: what a crash leaves in a log, and its repair: recovery of a log no live process
 * uses (every record validated, abandoned claims padded, the log ended before the first
 * damaged record), and the repair of one claim whose producer died while others run. */
#include "log_internal.h"
#include "crc32c.h"
#include "msgr/error.h"

#include <stdlib.h>
#include <string.h>

/* Validates every record from start and repairs what a crash left (see log.h). Runs only when
 * no live process uses the log, under the recovery lock. */
int msgr__lrecover(msgr_log *log, msgr_log_recovery *rep)
{
    msgr__log_hdr *h = log->hdr;
    uint64_t start = atomic_load_explicit(&h->start, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
    uint64_t p = start, limit = start + log->cap;
    /* Claims their (dead) producers recorded and never committed become padding first. */
    for (uint32_t i = 0; i < h->max_producers; i++) {
        msgr__lprod *s = &log->prods[i];
        uint64_t cl = atomic_load_explicit(&s->claimed, memory_order_relaxed);
        uint64_t size = atomic_load_explicit(&s->claimed_size, memory_order_relaxed);
        uint32_t st;
        if (cl != MSGR__NONE && atomic_load(&s->pid) && cl >= start && cl < tail &&
            !(cl & 15) && size >= MSGR__LREC_HDR && size <= log->cap - (cl & log->mask) &&
            cl + size <= tail && msgr__lrec_at(log, cl, &st, 0) == 0) {
            msgr__lwrite_skip(log, cl, size);
            rep->claims_skipped++;
        }
    }
    while (p < limit) {
        uint32_t st = 0;
        int64_t size = msgr__lrec_at(log, p, &st, MSGR__LREC_CRC);
        if (size > 0 && p + (uint64_t)size <= limit) {
            if (!(st & MSGR__L_SKIP))
                rep->records++;
            p += (uint64_t)size;
            continue;
        }
        if (size == 0 && p < tail) {
            /* Nothing valid starts here, but the tail says space was claimed: a producer died
             * between reserving and writing its header. Padding, if committed data follows. */
            uint64_t q = msgr__lscan_next(log, p, limit);
            if (q) {
                msgr__lwrite_skip(log, p, q - p);
                rep->claims_skipped++;
                p = q;
                continue;
            }
        }
        break; /* the end, or the first invalid record: everything after it is discarded */
    }
    rep->bytes_discarded = tail > p ? tail - p : 0;
    /* Reset what follows: a tag that names its own position would otherwise let a discarded
     * record come back when new records happen to end exactly where it started. */
    for (uint64_t q = p; q < limit; q += 16) {
        _Atomic uint64_t *t = (_Atomic uint64_t *)(log->data + (q & log->mask));
        uint64_t v = atomic_load_explicit(t, memory_order_relaxed) ^ log->salt;
        if ((v & ~MSGR__L_FLAGS) == q)
            atomic_store_explicit(t, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&h->tail, p, memory_order_release);
    rep->end = p;
    for (uint32_t i = 0; i < h->max_groups; i++) {
        msgr__lgroup *g = &log->groups[i];
        uint32_t state = atomic_load_explicit(&g->state, memory_order_relaxed);
        if (state == 1) /* creation interrupted */
            atomic_store_explicit(&g->state, 0, memory_order_relaxed);
        atomic_store_explicit(&g->owner, 0, memory_order_relaxed);
        if (state == 2) {
            uint64_t a = msgr__durable_get(&g->pos);
            if (a > p || a < start) /* clamp every position to the recovered log */
                msgr__durable_set(&g->pos, a > p ? p : start);
        }
    }
    /* The append lock: free, unless another handle of this process holds it (no other
     * process is alive; this one is). */
    if (atomic_load_explicit(&h->app_pid, memory_order_relaxed) != log->pid ||
        atomic_load_explicit(&h->app_start, memory_order_relaxed) != log->pid_start) {
        atomic_store_explicit(&h->app_start, 0, memory_order_relaxed);
        atomic_store_explicit(&h->app_pid, 0, memory_order_relaxed);
    }
    /* Slots of dead producers are freed. A live one other than ours can only be a process
     * that announced itself after we looked (it waits for the recovery lock and has claimed
     * nothing yet): its announcement stays, or its claims could never be attributed and its
     * slot would be handed to someone else. */
    for (uint32_t i = 0; i < h->max_producers; i++) {
        msgr__lprod *s = &log->prods[i];
        int32_t pid = atomic_load_explicit(&s->pid, memory_order_acquire);
        /* A free slot needs nothing, and must not be written: an opener may take it between
         * our load and a store (0 -> -pid -> pid), and storing 0 would wipe its announcement
         * (two openers at once). */
        if (pid == 0 || pid == log->pid ||
            msgr__lslot_alive(pid, atomic_load_explicit(&s->start, memory_order_relaxed)))
            continue;
        /* Dead: free it, unless an opener took it over since we looked (a blind store would
         * wipe its announcement). */
        if (!atomic_compare_exchange_strong(&s->pid, &pid, -log->pid))
            continue;
        atomic_store_explicit(&s->intent, MSGR__NONE, memory_order_relaxed);
        atomic_store_explicit(&s->claimed, MSGR__NONE, memory_order_relaxed);
        atomic_store_explicit(&s->pid, 0, memory_order_release);
    }
    /* Sleepers' counts: no live process used the log when we looked, so whoever announced
     * itself asleep was killed asleep (a late opener has not waited yet). A count left by
     * them would make every commit and acknowledgement pay for a futex wake. */
    atomic_store_explicit(&h->data_wait.waiting, 0, memory_order_relaxed);
    atomic_store_explicit(&h->space_wait.waiting, 0, memory_order_relaxed);
    rep->recovered = 1;
    return msgr_log_sync(log);
}

/* Turns the abandoned claim [pos, end) into padding, if it is one (at least a skip record).
 * Returns 1 if it did. */
static int pad_abandoned(msgr_log *log, uint64_t pos, uint64_t end)
{
    if (end <= pos || end - pos < MSGR__LSKIP_MIN)
        return 0;
    msgr__lwrite_skip(log, pos, end - pos);
    return 1;
}

/* msgr__lrepair() in a single-producer log: the append lock's holder says whose claim pos is. */
static int repair_single(msgr_log *log, uint64_t pos)
{
    /* The tail first (acquire: the loads below stay after it): a holder that takes the lock
     * after this load starts at or beyond it, so [pos, tail) can only hold earlier claims. */
    uint64_t tail = atomic_load_explicit(&log->hdr->tail, memory_order_acquire), from;
    int32_t holder = msgr__lapp_holder(log, &from);
    if (holder && pos >= from)
        return 0; /* the live holder's own claim: it commits or aborts it, or dies */
    /* An earlier holder's claim (dead, or closed with several claims open): padding up to the
     * next valid record, and never into the live holder's claims. */
    uint64_t limit = holder && from < tail ? from : tail;
    uint64_t end = msgr__lscan_next(log, pos, limit);
    return pad_abandoned(log, pos, end ? end : limit);
}

/* The claim at pos has been unfinished for claim_timeout. If the process that made it is dead
 * (pid and start time) and no live producer could own pos, turn [pos, next record) into
 * padding. Returns 1 if repaired. */
int msgr__lrepair(msgr_log *log, uint64_t pos)
{
    msgr__log_hdr *h = log->hdr;
    if (log->single)
        return repair_single(log, pos);
    uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    int dead = 0;
    uint64_t dead_size = 0;
    for (uint32_t i = 0; i < h->max_producers; i++) {
        msgr__lprod *p = &log->prods[i];
        int32_t pid = atomic_load_explicit(&p->pid, memory_order_acquire);
        if (!pid)
            continue;
        uint64_t in = atomic_load(&p->intent), cl = atomic_load(&p->claimed);
        int alive = msgr__lslot_alive(pid, atomic_load(&p->start));
        if (alive && in != MSGR__NONE && in >= pos && in < tail)
            return 0; /* a live producer may be between its CAS and its header: wait */
        if ((in == pos || cl == pos) && !alive) {
            dead = 1;
            if (cl == pos)
                dead_size = atomic_load(&p->claimed_size);
        }
        if ((in == pos || cl == pos) && alive)
            return 0;
    }
    if (!dead)
        return 0;
    uint64_t end;
    if (dead_size >= MSGR__LREC_HDR && dead_size <= log->cap - (pos & log->mask))
        end = pos + dead_size; /* the extent its slot recorded */
    else {
        end = msgr__lscan_next(log, pos, tail);
        if (!end)
            end = tail;
    }
    return pad_abandoned(log, pos, end);
}
