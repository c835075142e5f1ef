/* messenger: appending to the persistent log: producer slots (which claim is whose), the
 * single-producer append lock, and claim, commit, abandon and append. */
#include "log_internal.h"
#include "claim.h"
#include "hot.h"
#include "msgr/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- producer slots ---- */

/* The calling thread's slot for this handle, cached in thread-local storage; taken on first
 * use: a free one, or one whose owner is dead and holds no claim (a dead owner's claim is
 * evidence the repair needs; it is not overwritten). */
static MSGR_TLS uint64_t tl_log_id;
static MSGR_TLS int tl_slot = -1;

/* This thread's cached slot for this handle, or -1. */
static inline int cached_slot(const msgr_log *log)
{
    return tl_log_id == log->id ? tl_slot : -1;
}

/* The claim at p is committed or aborted: if it is this thread's latest, its slot (in a
 * single-producer log, this handle) no longer holds a claim. A thread holding several claims
 * at once names only its latest; all die together with the process. */
static inline void claim_done(msgr_log *log, uint64_t p)
{
    if (log->single) {
        if (log->sp_claim == p)
            log->sp_claim = MSGR__NONE;
        return;
    }
    int s = cached_slot(log);
    if (s >= 0 && atomic_load_explicit(&log->prods[s].claimed, memory_order_relaxed) == p)
        atomic_store_explicit(&log->prods[s].claimed, MSGR__NONE, memory_order_relaxed);
}

static int take_slot(msgr_log *log);

int msgr__lprod_slot(msgr_log *log)
{
    int s = cached_slot(log);
    if (s >= 0)
        return s;
    uintptr_t me = (uintptr_t)&tl_log_id; /* a thread-local's address names the thread */
    while (atomic_flag_test_and_set_explicit(&log->map_lock, memory_order_acquire))
        msgr_os_cpu_relax();
    for (uint32_t i = 0; i < log->n_map && s < 0; i++)
        if (log->map[i].thread == me)
            s = (int)log->map[i].slot;
    if (s < 0 && (s = take_slot(log)) >= 0 && log->n_map < log->hdr->max_producers) {
        log->map[log->n_map].thread = me;
        log->map[log->n_map].slot = (uint32_t)s;
        log->n_map++;
    }
    atomic_flag_clear_explicit(&log->map_lock, memory_order_release);
    if (s >= 0) {
        tl_log_id = log->id;
        tl_slot = s;
    }
    return s;
}

/* A free producer slot, taken for this process (see msgr__lprod_slot()). */
static int take_slot(msgr_log *log)
{
    for (uint32_t i = 0; i < log->hdr->max_producers; i++) {
        msgr__lprod *p = &log->prods[i];
        int32_t pid = atomic_load_explicit(&p->pid, memory_order_acquire);
        int free_slot = pid == 0 ||
                        (pid > 0 && pid != log->pid &&
                         !msgr__lslot_alive(pid, atomic_load(&p->start)) &&
                         atomic_load(&p->claimed) == MSGR__NONE &&
                         atomic_load(&p->intent) == MSGR__NONE);
        /* Taken in two steps, so that nobody ever sees our pid beside the dead owner's start
         * time (and takes us for dead): -pid while the start time is written, then pid. */
        if (!free_slot || !atomic_compare_exchange_strong(&p->pid, &pid, -log->pid))
            continue;
        atomic_store(&p->start, log->pid_start);
        atomic_store(&p->intent, MSGR__NONE);
        atomic_store(&p->claimed, MSGR__NONE);
        atomic_store_explicit(&p->pid, log->pid, memory_order_release);
        atomic_fetch_or(&log->mine[i / 64], 1ull << (i % 64));
        return (int)i;
    }
    return MSGR_ENOSPC;
}

void msgr__lrelease_slots(msgr_log *log)
{
    for (uint32_t i = 0; i < log->hdr->max_producers; i++) {
        if (!(atomic_load(&log->mine[i / 64]) & (1ull << (i % 64))))
            continue;
        msgr__lprod *p = &log->prods[i];
        uint64_t cl = atomic_load_explicit(&p->claimed, memory_order_relaxed);
        uint32_t st;
        /* Closed with a claim never committed: it becomes padding, so no reader waits on it. */
        if (cl != MSGR__NONE && msgr__lrec_at(log, cl, &st, 0) == 0)
            msgr__lwrite_skip(log, cl, atomic_load(&p->claimed_size));
        atomic_store_explicit(&p->claimed, MSGR__NONE, memory_order_relaxed);
        atomic_store_explicit(&p->intent, MSGR__NONE, memory_order_relaxed);
        atomic_store_explicit(&p->pid, 0, memory_order_release);
    }
    if (tl_log_id == log->id)
        tl_slot = -1;
}

/* ---- the single-producer append lock ---- */

int32_t msgr__lapp_holder(const msgr_log *log, uint64_t *from)
{
    const msgr__log_hdr *h = log->hdr;
    /* A6: acquire pairs with R6 in take_append(): the holder's start and from are read after
     * its pid, so they are its own or newer. */
    int32_t pid = atomic_load_explicit(&h->app_pid, memory_order_acquire);
    uint64_t start = atomic_load_explicit(&h->app_start, memory_order_acquire);
    if (from)
        *from = atomic_load_explicit(&h->app_from, memory_order_acquire);
    return msgr__lholder_alive(pid, start) ? pid : 0;
}

/* Takes the append lock for this handle: free, or held by a dead process. MSGR_EBUSY if a
 * live handle (another process, or another handle of this one) holds it. */
static int take_append(msgr_log *log)
{
    msgr__log_hdr *h = log->hdr;
    for (;;) {
        int32_t pid = atomic_load_explicit(&h->app_pid, memory_order_acquire);
        if (pid == log->pid) {
            /* Another handle of this process (ours would have sp_held), unless an earlier
             * process that had our pid died holding the lock (its start time differs). */
            uint64_t st = atomic_load_explicit(&h->app_start, memory_order_acquire);
            if (st == 0 || st == log->pid_start)
                return MSGR_EBUSY;
        } else if (pid && msgr__lapp_holder(log, NULL) == pid) {
            /* Busy, unless the lock changed hands while we looked (a release clears start
             * before pid, and a start of 0 is judged by pid alone): then look again. */
            if (atomic_load_explicit(&h->app_pid, memory_order_acquire) == pid)
                return MSGR_EBUSY;
            continue;
        }
        /* acq_rel: the previous holder's last tail store (released with its pid, or final
         * at its death) happens before our reads of the tail below. */
        if (!atomic_compare_exchange_strong_explicit(&h->app_pid, &pid, log->pid,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire))
            continue;
        atomic_store_explicit(&h->app_start, log->pid_start, memory_order_relaxed);
        uint64_t t = atomic_load_explicit(&h->tail, memory_order_acquire);
        /* R6: release: start is visible to whoever reads from (A6). A reader
         * that sees our pid with the previous holder's from only waits longer. */
        atomic_store_explicit(&h->app_from, t, memory_order_release);
        log->sp_tail = t;
        log->sp_held = 1;
        return 0;
    }
}

void msgr__lrelease_append(msgr_log *log)
{
    if (!log->sp_held)
        return;
    msgr__log_hdr *h = log->hdr;
    uint32_t st;
    /* Closed with a claim never committed: it becomes padding, so no reader waits on it. */
    if (log->sp_claim != MSGR__NONE && msgr__lrec_at(log, log->sp_claim, &st, 0) == 0)
        msgr__lwrite_skip(log, log->sp_claim, log->sp_claim_size);
    log->sp_claim = MSGR__NONE;
    atomic_store_explicit(&h->app_start, 0, memory_order_relaxed);
    /* Release: our tail stores and padding happen before the next holder's claims. */
    atomic_store_explicit(&h->app_pid, 0, memory_order_release);
    log->sp_held = 0;
}

/* ---- appending ---- */

typedef struct {
    size_t len;
    msgr_claim *c;
} claim_args;

/* Fills the claim for the record at p (size bytes, len of payload). */
static inline void claim_fill(msgr_log *log, uint64_t p, uint64_t size, size_t len,
                              msgr_claim *c)
{
    msgr__claim_set(c, (msgr__lrec *)(log->data + (p & log->mask)) + 1, p, size, len);
}

/* Bytes a claim of `size` at pos takes: the record, plus padding to the end of the data area
 * (*pad) when it would straddle it. */
static inline uint64_t claim_need(const msgr_log *log, uint64_t pos, uint64_t size,
                                  uint64_t *pad)
{
    uint64_t contig = log->cap - (pos & log->mask);
    *pad = size > contig ? contig : 0;
    return *pad + size;
}

/* [pos, pos + need) looked full: reclaims what every group has acknowledged and looks again.
 * 0, or MSGR_EAGAIN if it is still full. */
static int reclaim_for(msgr_log *log, uint64_t pos, uint64_t need)
{
    msgr__ladvance_start(log);
    /* A5: acquire pairs with R5 in msgr__ladvance_start(): readers are done with the space
     * below start. */
    uint64_t start = atomic_load_explicit(&log->hdr->start, memory_order_acquire);
    return pos + need - start > log->cap ? MSGR_EAGAIN : 0;
}

/* A single-producer log's claim: the tail is ours alone while we hold the append lock, so it
 * moves with a plain store, and the claim is recorded in this handle, not in shared memory:
 * a reader blocked by it judges it by the lock's holder (msgr__lrepair). */
MSGR_HOT int claim_single(msgr_log *log, const claim_args *a)
{
    msgr__log_hdr *h = log->hdr;
    if (!log->sp_held) {
        int rc = take_append(log);
        if (rc)
            return rc;
    }
    uint64_t size = msgr__lrec_size(a->len), pos = log->sp_tail, pad;
    uint64_t need = claim_need(log, pos, size, &pad);
    /* A5: as in reclaim_for(). */
    uint64_t start = atomic_load_explicit(&h->start, memory_order_acquire);
    if (pos - start > log->cap) /* from the file: start beyond our tail */
        return MSGR_ECORRUPT;
    if (pos + need - start > log->cap) {
        int rc = reclaim_for(log, pos, need);
        if (rc)
            return rc;
    }
    log->sp_tail = pos + need;
    /* Release: the padding and records of our earlier claims, then this reservation, for
     * whoever acquires the tail (a reader's repair, the next holder of the lock). */
    atomic_store_explicit(&h->tail, pos + need, memory_order_release);
    if (pad)
        msgr__lwrite_skip(log, pos, pad);
    log->sp_claim = pos + pad;
    log->sp_claim_size = (uint32_t)size;
    claim_fill(log, pos + pad, size, a->len, a->c);
    return 0;
}

/* One attempt: MSGR_EAGAIN when the log is full. Inline in msgr_log_claim_wait(), the hot path. */
MSGR_HOT int claim_try(msgr_log *log, const claim_args *a)
{
    msgr__log_hdr *h = log->hdr;
    if (atomic_load_explicit(&log->failed, memory_order_relaxed))
        return MSGR_EIO;
    if (log->single)
        return claim_single(log, a);
    int s = cached_slot(log);
    if (s < 0)
        s = msgr__lprod_slot(log);
    if (s < 0)
        return s;
    msgr__lprod *slot = &log->prods[s];
    uint64_t size = msgr__lrec_size(a->len);
    uint64_t pos = atomic_load_explicit(&h->tail, memory_order_acquire);
    for (;;) {
        uint64_t pad, need = claim_need(log, pos, size, &pad);
        /* A5: as in reclaim_for(). */
        uint64_t start = atomic_load_explicit(&h->start, memory_order_acquire);
        uint64_t used = pos - start; /* from the file: pos < start wraps to a huge value */
        if (used > log->cap) {
            pos = atomic_load_explicit(&h->tail, memory_order_acquire);
            if (pos - start > log->cap) {
                atomic_store_explicit(&slot->intent, MSGR__NONE, memory_order_relaxed);
                return MSGR_ECORRUPT;
            }
            continue;
        }
        if (used + need > log->cap) {
            int rc = reclaim_for(log, pos, need);
            if (rc) {
                /* An intent left from a lost compare-and-swap names another producer's
                 * position: a repair would take us for its owner and wait on us. */
                atomic_store_explicit(&slot->intent, MSGR__NONE, memory_order_relaxed);
                return rc;
            }
        }
        atomic_store_explicit(&slot->intent, pos, memory_order_relaxed);
        /* acq_rel: the intent above is visible to anyone who acquires the new tail (the
         * repair), and we see the space's previous contents as released by readers. */
        if (!atomic_compare_exchange_weak_explicit(&h->tail, &pos, pos + need,
                                                   memory_order_acq_rel, memory_order_acquire))
            continue;
        if (pad)
            msgr__lwrite_skip(log, pos, pad);
        uint64_t p = pos + pad;
        /* The claim's extent goes into our slot, not into the record (not even its length,
         * which commit writes): a reader waiting for this record keeps reading its line, and
         * a store there now would make the line cross between the cores twice per record. */
        atomic_store_explicit(&slot->claimed_size, (uint32_t)size, memory_order_relaxed);
        atomic_store_explicit(&slot->claimed, p, memory_order_release);
        atomic_store_explicit(&slot->intent, MSGR__NONE, memory_order_relaxed);
        claim_fill(log, p, size, a->len, a->c);
        return 0;
    }
}

static int claim_once(void *self, void *arg) { return claim_try(self, arg); }

/* A reader killed between acknowledging and waking us leaves free space and nobody to say so:
 * a producer waiting for space looks again at least every claim timeout. */
static int64_t cap_space(void *self, void *arg)
{
    (void)arg;
    return ((msgr_log *)self)->claim_timeout;
}

int msgr_log_claim_wait(msgr_log *log, size_t len, msgr_claim *c, int64_t timeout_ns)
{
    if (!log || !c)
        return MSGR_EINVAL;
    if (len > log->max_payload)
        return MSGR_EMSGSIZE;
    claim_args a = {len, c};
    int rc = claim_try(log, &a);
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    /* Sleeps on space_wait.futex; woken by an acknowledgement (msgr_log_ack()) or a clear;
     * bounded by cap_space(). */
    return msgr__wait_until(&log->wait, claim_once, log, &a, timeout_ns, &log->hdr->space_wait,
                            1, 0, cap_space);
}

int msgr_log_commit(msgr_log *log, msgr_claim *c)
{
    if (!log || !c || c->len > c->claimed_ || c->size_ < MSGR__LREC_HDR)
        return MSGR_EINVAL;
    uint64_t p = c->pos_, asz = msgr__lrec_size(c->len);
    msgr__lrec *r = (msgr__lrec *)(log->data + (p & log->mask));
    if (asz < c->size_) /* committed shorter than claimed: the rest becomes padding */
        msgr__lwrite_skip(log, p + asz, c->size_ - asz);
    /* len, type and source in one store (readers read them only after the tag says
     * committed), the same word the CRC takes. */
    uint64_t w1 = msgr__lrec_word1(c->len, c->type, c->source);
    memcpy(&r->len, &w1, 8);
    r->zero = 0;
    r->crc = msgr__crc32c_seeded(msgr__lrec_seed(p), w1, r + 1, c->len);
    /* R1: release publishes the payload and header written above; pairs with A1. */
    atomic_store_explicit(&r->tag, (p | MSGR__L_COMMITTED) ^ log->salt, memory_order_release);
    claim_done(log, p);
    c->size_ = 0; /* commits once */
    int rc = log->sync_none ? 0 : msgr__lsync_after(log, r, asz);
    msgr__wake_waiters(&log->wait, &log->hdr->data_wait, 1); /* D1 (wait.h), all groups */
    return rc;
}

int msgr_log_abandon(msgr_log *log, msgr_claim *c)
{
    if (!log || !c || c->size_ < MSGR__LREC_HDR)
        return MSGR_EINVAL;
    msgr__lwrite_skip(log, c->pos_, c->size_);
    claim_done(log, c->pos_);
    c->size_ = 0;
    msgr__wake_waiters(&log->wait, &log->hdr->data_wait, 1); /* a reader may wait right here */
    return 0;
}

int msgr_log_claim(msgr_log *log, size_t len, msgr_claim *c)
{
    return msgr_log_claim_wait(log, len, c, 0);
}

int msgr_log_append(msgr_log *log, uint16_t type, const void *data, size_t len)
{
    return msgr_log_append_wait(log, type, data, len, 0);
}

int msgr_log_append_wait(msgr_log *log, uint16_t type, const void *data, size_t len,
                         int64_t timeout_ns)
{
    msgr_claim c;
    if (!data && len)
        return MSGR_EINVAL;
    int rc = msgr_log_claim_wait(log, len, &c, timeout_ns);
    if (rc)
        return rc;
    if (len)
        memcpy(c.data, data, len);
    c.type = type;
    return msgr_log_commit(log, &c);
}
