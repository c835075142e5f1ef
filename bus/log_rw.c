/* messenger: the persistent log's hot paths: appending (claim, commit) and reading (read,
 * acknowledge), and the repair of claims whose producer died. */
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
 * a reader blocked by it judges it by the lock's holder (repair()). */
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

/* ---- reading ---- */

static int name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    return n >= 1 && n <= 47;
}

int msgr_log_reader_open(msgr_log *log, const char *name, msgr_log_reader **out)
{
    if (!log || !out || !name_ok(name))
        return MSGR_EINVAL;
    msgr__log_hdr *h = log->hdr;
    int found = -1;
    for (int pass = 0; pass < 2 && found < 0; pass++)
        for (uint32_t i = 0; i < h->max_groups && found < 0; i++) {
            msgr__lgroup *g = &log->groups[i];
            uint32_t st = atomic_load_explicit(&g->state, memory_order_acquire);
            if (pass == 0 && st == 2 && strncmp(g->name, name, sizeof g->name) == 0)
                found = (int)i;
            uint32_t zero = 0;
            if (pass == 1 && st == 0 && atomic_compare_exchange_strong(&g->state, &zero, 1)) {
                /* New group: starts at the oldest retained record, so it misses nothing the
                 * log still holds. Published, then clamped to a start that moved meanwhile. */
                memset(g->name, 0, sizeof g->name);
                strncpy(g->name, name, sizeof g->name - 1);
                msgr__durable_set(&g->ack, atomic_load_explicit(&h->start, memory_order_acquire));
                atomic_store_explicit(&g->state, 2, memory_order_seq_cst);
                uint64_t s = atomic_load_explicit(&h->start, memory_order_seq_cst);
                if (msgr__durable_get(&g->ack) < s)
                    msgr__durable_set(&g->ack, s);
                found = (int)i;
            }
        }
    if (found < 0)
        return MSGR_ENOSPC;
    msgr__lgroup *g = &log->groups[found];
    int32_t owner = atomic_load_explicit(&g->owner, memory_order_acquire);
    if (owner && (owner == log->pid ||
                  msgr_os_proc_alive(owner, atomic_load(&g->owner_start))))
        return MSGR_EBUSY;
    if (!atomic_compare_exchange_strong(&g->owner, &owner, log->pid))
        return MSGR_EBUSY;
    atomic_store(&g->owner_start, log->pid_start);
    msgr_log_reader *rd = msgr__lalloc(sizeof *rd);
    if (!rd) {
        atomic_store(&g->owner, 0);
        return MSGR_ENOMEM;
    }
    rd->log = log;
    rd->group = (uint32_t)found;
    rd->pos = msgr__durable_get(&g->ack);
    *out = rd;
    return 0;
}

void msgr_log_reader_close(msgr_log_reader *rd)
{
    if (!rd)
        return;
    atomic_store_explicit(&rd->log->groups[rd->group].owner, 0, memory_order_release);
    free(rd);
}

uint64_t msgr_log_seq(const msgr_msg *m) { return m ? m->pos_ : 0; }

uint64_t msgr_log_reader_acked(const msgr_log_reader *rd)
{
    return rd ? msgr__durable_get(&rd->log->groups[rd->group].ack) : 0;
}

uint64_t msgr_log_end(const msgr_log *log)
{
    return log ? atomic_load_explicit(&log->hdr->tail, memory_order_acquire) : 0;
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

/* repair() in a single-producer log: the append lock's holder says whose claim pos is. */
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
static int repair(msgr_log *log, uint64_t pos)
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

/* The common case, a committed record right at the reader's position: 0, MSGR_ECORRUPT, or
 * 1 for anything else (read_once() looks further). */
MSGR_HOT int read_fast(msgr_log_reader *rd, msgr_msg *m)
{
    msgr_log *log = rd->log;
    uint64_t p = rd->pos;
    /* A1: acquire pairs with R1 in msgr_log_commit(). The length comes from the file: bounded
     * before use. */
    const msgr__lrec *fr = (const msgr__lrec *)(log->data + (p & log->mask));
    if ((atomic_load_explicit(&fr->tag, memory_order_acquire) ^ log->salt) !=
        (p | MSGR__L_COMMITTED))
        return 1;
    /* Below the oldest retained record only after msgr_log_clear() dropped what we had not
     * read: those records are gone (their space may be reused under us); read_once() resyncs.
     * A line written only when space is reclaimed: no transfer per record. */
    if (p < atomic_load_explicit(&log->hdr->start, memory_order_relaxed))
        return 1;
    uint64_t len = fr->len, size = msgr__lrec_size(len);
    if (len > log->max_payload || size > log->cap - (p & log->mask))
        return MSGR_ECORRUPT;
    msgr__lrec_msg(log, p, size, m);
    rd->pos = p + size;
    rd->misses = 0;
    rd->blocked_since = 0;
    return 0;
}

static int read_once(void *self, void *arg)
{
    msgr_log_reader *rd = self;
    msgr_msg *m = arg;
    msgr_log *log = rd->log;
    for (;;) {
        int rc = read_fast(rd, m);
        if (rc <= 0)
            return rc;
        uint64_t p = rd->pos;
        uint64_t start = atomic_load_explicit(&log->hdr->start, memory_order_acquire);
        if (p < start) {
            /* Dropped by msgr_log_clear(): go on from the group's new position. */
            uint64_t a = msgr__durable_get(&log->groups[rd->group].ack);
            rd->pos = a > start ? a : start;
            rd->blocked_since = 0;
            rd->misses = 0;
            continue;
        }
        uint32_t st = 0;
        /* Bounds are checked on every read; the CRC is not: a live reader takes a record whose
         * commit it observed in memory (the producer computed the CRC for after a crash, and
         * recovery and msgr_log_scan verify it). Checking it here too would cost a second CRC
         * per record, as much as the whole in-memory hand-off. */
        int64_t size = msgr__lrec_at(log, p, &st, 0);
        if (size < 0)
            return (int)size;
        if (size > 0 && (st & MSGR__L_COMMITTED)) {
            rd->blocked_since = 0;
            rd->misses = 0;
            if (st & MSGR__L_SKIP) {
                rd->pos = p + (uint64_t)size;
                continue;
            }
            msgr__lrec_msg(log, p, (uint64_t)size, m);
            rd->pos = p + (uint64_t)size;
            return 0;
        }
        /* Nothing committed at p: empty, or a claim in progress (maybe abandoned). The first
         * misses return at once: reading the tail (a line producers CAS) or the clock on every
         * empty look would slow the producers down; a claim is suspect only after a while. */
        if (++rd->misses < 1024)
            return MSGR_EAGAIN;
        if (p >= atomic_load_explicit(&log->hdr->tail, memory_order_acquire)) {
            rd->misses = 0;
            return MSGR_EAGAIN;
        }
        uint64_t now = msgr_os_now_ns();
        if (!rd->blocked_since)
            rd->blocked_since = now;
        if (now - rd->blocked_since < (uint64_t)log->claim_timeout || !repair(log, p))
            return MSGR_EAGAIN;
    }
}

static int read_wait(msgr_log_reader *rd, msgr_msg *m, int64_t timeout_ns);

int msgr_log_read(msgr_log_reader *rd, msgr_msg *m)
{
    return msgr_log_read_wait(rd, m, 0);
}

int msgr_log_read_wait(msgr_log_reader *rd, msgr_msg *m, int64_t timeout_ns)
{
    if (!rd || !m)
        return MSGR_EINVAL;
    int rc = read_once(rd, m);
    if (rc == 0)
        rd->run++;
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    /* Linger (msgr_log_reader_set_linger): caught up after a short run, so the next record is
     * being written in the line we would look at; each look would pull it across mid-write. */
    uint32_t run = rd->run;
    rd->run = 0;
    if (run < rd->linger_min) {
        msgr__pause_n(rd->linger_pauses);
        rd->lingers++;
        if ((rc = read_once(rd, m)) != MSGR_EAGAIN) {
            rd->run = rc == 0;
            return rc;
        }
    }
    rc = read_wait(rd, m, timeout_ns);
    rd->run = rc == 0;
    return rc;
}

int msgr_log_poll(msgr_log_reader *rd, msgr_ring_handler fn, void *arg, unsigned max)
{
    if (!rd || !fn)
        return MSGR_EINVAL;
    /* Linger, as msgr_ring_poll: right behind the producers last time, so pause first. */
    if (rd->last_batch < rd->linger_min) {
        msgr__pause_n(rd->linger_pauses);
        rd->lingers++;
    }
    unsigned n = 0;
    int rc = 0;
    msgr_msg m;
    while (n < max) {
        if ((rc = read_fast(rd, &m)) > 0)
            rc = read_once(rd, &m);
        if (rc)
            break;
        n++;
        if (fn(arg, &m))
            break;
    }
    rd->last_batch = rc == MSGR_EAGAIN ? n : UINT32_MAX; /* as msgr_ring_poll */
    rd->run = n; /* for msgr_log_read mixed in: records since a look found nothing, roughly */
    if (rc && rc != MSGR_EAGAIN && n == 0)
        return rc;
    return (int)n;
}

uint64_t msgr_log_reader_lingers(const msgr_log_reader *rd)
{
    return rd ? rd->lingers : 0;
}

void msgr_log_reader_set_linger(msgr_log_reader *rd, unsigned min_batch, uint32_t pauses)
{
    if (rd) {
        rd->linger_min = min_batch;
        rd->linger_pauses = msgr__linger_pauses(min_batch, pauses);
    }
}

/* The blocking part of msgr_log_read_wait(): the caller has just looked once. */
static int read_wait(msgr_log_reader *rd, msgr_msg *m, int64_t timeout_ns)
{
    int rc;
    /* Sleeps on data_wait.futex; woken by a commit. At least every claim_timeout it wakes and
     * looks again: a claim blocked by a dead producer is checked (and skipped), and a record
     * whose producer was killed between its commit and its wake is found. */
    msgr_log *log = rd->log;
    int64_t left = timeout_ns;
    for (;;) {
        int64_t slice = left < 0 || left > log->claim_timeout ? log->claim_timeout : left;
        rc = msgr__wait_until(&log->wait, read_once, rd, m, slice, &log->hdr->data_wait, 1,
                              rd->linger_pauses, NULL); /* sparser looks while lingering */
        if (rc != MSGR_ETIMEDOUT)
            return rc;
        if (left >= 0 && (left -= slice) <= 0)
            return MSGR_ETIMEDOUT;
        if ((rc = read_once(rd, m)) != MSGR_EAGAIN)
            return rc;
    }
}

int msgr_log_ack(msgr_log_reader *rd, const msgr_msg *m)
{
    if (!rd || !m || m->pos_ + m->size_ > rd->pos)
        return MSGR_EINVAL;
    msgr_log *log = rd->log;
    msgr__lgroup *g = &log->groups[rd->group];
    uint64_t to = m->pos_ + m->size_;
    if (to <= msgr__durable_get(&g->ack))
        return 0; /* already acknowledged */
    msgr__durable_set(&g->ack, to);
    int rc = msgr__lsync_after(log, g, sizeof *g);
    /* Producers reclaim space themselves (msgr__ladvance_start) when they find the log full;
     * sleeping ones only need a wake-up. D1 (wait.h). */
    msgr__wake_waiters(&log->wait, &log->hdr->space_wait, 1);
    return rc;
}
