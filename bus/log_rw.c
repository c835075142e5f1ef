/* messenger: the persistent log's hot paths: appending (claim, commit) and reading (read,
 * acknowledge), and the repair of claims whose producer died. */
#include "log_internal.h"
#include "msgr/error.h"

#include <stdlib.h>
#include <string.h>

/* ---- producer slots ---- */

/* This process's slot, taken on first use: a free one, or one whose owner is dead and holds
 * no claim (a dead owner's claim is evidence the repair needs; it is not overwritten). */
static int prod_slot(msgr_log *log)
{
    int s = atomic_load_explicit(&log->prod_slot, memory_order_acquire);
    if (s >= 0)
        return s;
    for (uint32_t i = 0; i < log->hdr->max_producers; i++) {
        msgr__lprod *p = &log->prods[i];
        int32_t pid = atomic_load_explicit(&p->pid, memory_order_acquire);
        int free_slot = pid == 0 ||
                        (!msgr_os_proc_alive(pid, atomic_load(&p->start)) &&
                         atomic_load(&p->claimed) == MSGR__NONE &&
                         atomic_load(&p->intent) == MSGR__NONE);
        if (!free_slot || !atomic_compare_exchange_strong(&p->pid, &pid, log->pid))
            continue;
        atomic_store(&p->start, log->pid_start);
        atomic_store(&p->intent, MSGR__NONE);
        atomic_store(&p->claimed, MSGR__NONE);
        atomic_store(&p->users, 1);
        int expect = -1;
        if (!atomic_compare_exchange_strong(&log->prod_slot, &expect, (int)i)) {
            /* another thread of this handle won the race: give ours back */
            atomic_store(&p->pid, 0);
            return expect;
        }
        return (int)i;
    }
    return MSGR_ENOSPC;
}

/* ---- appending ---- */

typedef struct {
    size_t len;
    msgr_claim *c;
} claim_args;

/* One attempt: MSGR_EAGAIN when the log is full. Several threads of one process share the
 * process's slot, so `intent`/`claimed` then name one of their claims: enough to attribute a
 * dead process's claims (all its threads died with it). */
static int claim_once(void *self, void *arg)
{
    msgr_log *log = self;
    claim_args *a = arg;
    msgr__log_hdr *h = log->hdr;
    if (atomic_load_explicit(&log->failed, memory_order_relaxed))
        return MSGR_EIO;
    int s = prod_slot(log);
    if (s < 0)
        return s;
    msgr__lprod *slot = &log->prods[s];
    uint64_t size = msgr__lrec_size(a->len);
    uint64_t pos = atomic_load_explicit(&h->tail, memory_order_acquire);
    for (;;) {
        uint64_t contig = log->cap - (pos & log->mask);
        uint64_t pad = size > contig ? contig : 0, need = pad + size;
        /* A5: acquire pairs with R5 in msgr__ladvance_start(): readers are done with the
         * space below start. */
        uint64_t start = atomic_load_explicit(&h->start, memory_order_acquire);
        if (pos < start || pos - start > log->cap) {
            pos = atomic_load_explicit(&h->tail, memory_order_acquire);
            if (pos < start || pos - start > log->cap)
                return MSGR_ECORRUPT;
            continue;
        }
        if (pos + need - start > log->cap) {
            msgr__ladvance_start(log);
            start = atomic_load_explicit(&h->start, memory_order_acquire);
            if (pos + need - start > log->cap)
                return MSGR_EAGAIN;
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
        msgr__lrec *r = (msgr__lrec *)(log->data + (p & log->mask));
        r->len = (uint32_t)a->len;
        /* Release: len is visible with the CLAIMED tag (a repair reads the claim's extent). */
        atomic_store_explicit(&r->tag, (p | MSGR__L_CLAIMED) ^ log->salt, memory_order_release);
        atomic_store_explicit(&slot->claimed, p, memory_order_relaxed);
        atomic_store_explicit(&slot->intent, MSGR__NONE, memory_order_relaxed);
        msgr_claim *c = a->c;
        c->data = r + 1;
        c->len = (uint32_t)a->len;
        c->type = 0;
        c->source = 0;
        c->pos_ = p;
        c->size_ = (uint32_t)size;
        c->claimed_ = (uint32_t)a->len;
        return 0;
    }
}

int msgr_log_claim(msgr_log *log, size_t len, msgr_claim *c, int64_t timeout_ns)
{
    if (!log || !c)
        return MSGR_EINVAL;
    if (len > log->max_payload)
        return MSGR_EMSGSIZE;
    claim_args a = {len, c};
    int rc = claim_once(log, &a);
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    return msgr__wait_until(&log->wait, claim_once, log, &a, timeout_ns, &log->hdr->space_wait,
                            1);
}

int msgr_log_commit(msgr_log *log, msgr_claim *c)
{
    if (!log || !c || c->len > c->claimed_ || c->size_ < MSGR__LREC_HDR)
        return MSGR_EINVAL;
    uint64_t p = c->pos_, asz = msgr__lrec_size(c->len);
    msgr__lrec *r = (msgr__lrec *)(log->data + (p & log->mask));
    if (asz < c->size_) /* committed shorter than claimed: the rest becomes padding */
        msgr__lwrite_skip(log, p + asz, c->size_ - asz);
    r->len = c->len;
    r->type = c->type;
    r->source = c->source;
    r->time_ns = msgr_os_now_ns();
    r->crc = msgr__lrec_crc(p, r, r + 1);
    /* R1: release publishes the payload and header written above; pairs with A1. */
    atomic_store_explicit(&r->tag, (p | MSGR__L_COMMITTED) ^ log->salt, memory_order_release);
    int s = atomic_load_explicit(&log->prod_slot, memory_order_relaxed);
    if (s >= 0) {
        uint64_t mine = p;
        atomic_compare_exchange_strong_explicit(&log->prods[s].claimed, &mine, MSGR__NONE,
                                                memory_order_relaxed, memory_order_relaxed);
    }
    c->size_ = 0; /* commits once */
    int rc = msgr__lsync_after(log, r, asz);
    msgr__wake_waiters(&log->wait, &log->hdr->data_wait, 1); /* D1 (wait.h), all groups */
    return rc;
}

int msgr_log_append(msgr_log *log, uint16_t type, const void *data, size_t len,
                    int64_t timeout_ns)
{
    msgr_claim c;
    if (!data && len)
        return MSGR_EINVAL;
    int rc = msgr_log_claim(log, len, &c, timeout_ns);
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
                msgr__lgroup_set_acked(g, atomic_load_explicit(&h->start, memory_order_acquire));
                atomic_store_explicit(&g->state, 2, memory_order_seq_cst);
                uint64_t s = atomic_load_explicit(&h->start, memory_order_seq_cst);
                if (msgr__lgroup_acked(g) < s)
                    msgr__lgroup_set_acked(g, s);
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
    msgr_log_reader *rd = calloc(1, sizeof *rd);
    if (!rd) {
        atomic_store(&g->owner, 0);
        return MSGR_ENOMEM;
    }
    rd->log = log;
    rd->group = (uint32_t)found;
    rd->pos = msgr__lgroup_acked(g);
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

/* The claim at pos has been unfinished for claim_timeout. If the process that made it is dead
 * (pid and start time) and no live producer could own pos, turn [pos, next record) into
 * padding. Returns 1 if repaired. */
static int repair(msgr_log *log, uint64_t pos)
{
    msgr__log_hdr *h = log->hdr;
    uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    int dead = 0;
    for (uint32_t i = 0; i < h->max_producers; i++) {
        msgr__lprod *p = &log->prods[i];
        int32_t pid = atomic_load_explicit(&p->pid, memory_order_acquire);
        if (!pid)
            continue;
        uint64_t in = atomic_load(&p->intent), cl = atomic_load(&p->claimed);
        int alive = msgr_os_proc_alive(pid, atomic_load(&p->start));
        if (alive && in != MSGR__NONE && in >= pos && in < tail)
            return 0; /* a live producer may be between its CAS and its header: wait */
        if ((in == pos || cl == pos) && !alive)
            dead = 1;
        if ((in == pos || cl == pos) && alive)
            return 0;
    }
    if (!dead)
        return 0;
    uint32_t st = 0;
    int64_t size = msgr__lrec_at(log, pos, &st, 0);
    uint64_t end;
    if (size > 0 && st == MSGR__L_CLAIMED)
        end = pos + (uint64_t)size;
    else {
        end = msgr__lscan_next(log, pos, tail);
        if (!end)
            end = tail;
    }
    if (end <= pos || end - pos < MSGR__LSKIP_MIN)
        return 0;
    msgr__lwrite_skip(log, pos, end - pos);
    return 1;
}

static int read_once(void *self, void *arg)
{
    msgr_log_reader *rd = self;
    msgr_msg *m = arg;
    msgr_log *log = rd->log;
    for (;;) {
        uint64_t p = rd->pos;
        uint32_t st = 0;
        int64_t size = msgr__lrec_at(log, p, &st, 1);
        if (size < 0)
            return (int)size;
        if (size > 0 && (st & MSGR__L_COMMITTED)) {
            rd->blocked_since = 0;
            if (st & MSGR__L_SKIP) {
                rd->pos = p + (uint64_t)size;
                continue;
            }
            const msgr__lrec *r = (const msgr__lrec *)(log->data + (p & log->mask));
            m->data = r + 1;
            m->len = r->len;
            m->type = r->type;
            m->source = r->source;
            m->pos_ = p;
            m->size_ = (uint32_t)size;
            rd->pos = p + (uint64_t)size;
            return 0;
        }
        /* Nothing committed at p. Empty, or a claim in progress (maybe abandoned). */
        if (p >= atomic_load_explicit(&log->hdr->tail, memory_order_acquire))
            return MSGR_EAGAIN;
        uint64_t now = msgr_os_now_ns();
        if (!rd->blocked_since)
            rd->blocked_since = now;
        if (now - rd->blocked_since < (uint64_t)log->claim_timeout || !repair(log, p))
            return MSGR_EAGAIN;
    }
}

int msgr_log_read(msgr_log_reader *rd, msgr_msg *m, int64_t timeout_ns)
{
    if (!rd || !m)
        return MSGR_EINVAL;
    int rc = read_once(rd, m);
    if (rc != MSGR_EAGAIN || timeout_ns == 0)
        return rc;
    /* While a claim is blocked, wake up at least every claim_timeout to check its owner. */
    msgr_log *log = rd->log;
    int64_t left = timeout_ns;
    for (;;) {
        int64_t slice = left < 0 || left > log->claim_timeout ? log->claim_timeout : left;
        rc = msgr__wait_until(&log->wait, read_once, rd, m, slice, &log->hdr->data_wait, 1);
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
    if (to <= msgr__lgroup_acked(g))
        return 0; /* already acknowledged */
    msgr__lgroup_set_acked(g, to);
    int rc = msgr__lsync_after(log, g, sizeof *g);
    /* Space may be free now for producers sleeping on a full log. */
    msgr__ladvance_start(log);
    msgr__wake_waiters(&log->wait, &log->hdr->space_wait, 1);
    return rc;
}
