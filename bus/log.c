/* messenger: the persistent log's file: creating, opening (with recovery when nobody else uses
 * it), closing, syncing, and inspection. Records are in log_record.c, appending in
 * log_append.c, reading in log_read.c, crash recovery and claim repair in log_recover.c. */
#include "log_internal.h"
#include "crc32c.h"
#include "msgr/error.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_CAPACITY (16u << 20)

static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

static uint64_t hdr_size_for(uint32_t groups, uint32_t prods)
{
    uint64_t n = sizeof(msgr__log_hdr) + 128ull * groups + 64ull * prods;
    return (n + 4095) / 4096 * 4096;
}

/* ---- sync ---- */

int msgr__lsync_after(msgr_log *log, void *addr, size_t len)
{
    msgr__log_hdr *h = log->hdr;
    int rc = 0;
    if (h->sync == MSGR_SYNC_NONE)
        return 0;
    if (h->sync == MSGR_SYNC_ALWAYS) {
        rc = msgr_os_msync(addr, len);
    } else if (h->sync == MSGR_SYNC_BATCH) {
        uint64_t n = atomic_fetch_add_explicit(&h->sync_pending, 1, memory_order_relaxed) + 1;
        uint64_t now = msgr_os_now_ns();
        uint64_t last = atomic_load_explicit(&h->last_sync_ns, memory_order_relaxed);
        if (n >= h->batch_records || now - last >= (uint64_t)h->batch_ms * 1000000u) {
            atomic_store_explicit(&h->sync_pending, 0, memory_order_relaxed);
            atomic_store_explicit(&h->last_sync_ns, now, memory_order_relaxed);
            rc = msgr_log_sync(log);
        }
    }
    if (rc)
        atomic_store_explicit(&log->failed, 1, memory_order_relaxed);
    return rc;
}

int msgr_log_sync(msgr_log *log)
{
    if (!log)
        return MSGR_EINVAL;
    /* The whole mapping: the kernel writes back only dirty pages. An error is final for this
     * handle (the kernel may have dropped the dirty state): reopen and recover. */
    int rc = msgr_os_msync(msgr_region_base(log->region), msgr_region_size(log->region));
    if (rc)
        atomic_store_explicit(&log->failed, 1, memory_order_relaxed);
    return rc;
}

/* ---- creating and opening ---- */

static int opts_ok(const msgr_log_opts *o)
{
    if (!o)
        return 1;
    if (o->size_of && o->size_of < sizeof(msgr_log_opts))
        return 0;
    if (o->sync > MSGR_SYNC_ALWAYS || o->max_groups > 4096 || o->max_producers > 4096 ||
        (o->flags & ~MSGR_LOG_SINGLE_PRODUCER))
        return 0;
    if (o->capacity && (!is_pow2(o->capacity) || o->capacity < 4096 ||
                        o->capacity > MSGR_RING_MAX_CAPACITY))
        return 0;
    return o->claim_timeout_ns >= 0;
}

void *msgr__lalloc(size_t size)
{
    size = (size + 127) / 128 * 128;
    void *p = msgr_os_aligned_alloc(128, size);
    if (p)
        memset(p, 0, size);
    return p;
}

static int handle_new(msgr_region *g, const msgr_log_opts *o, msgr_log **out)
{
    msgr_log *log = msgr__lalloc(sizeof *log);
    if (!log)
        return MSGR_ENOMEM;
    msgr__log_hdr *h = msgr_region_base(g);
    log->region = g;
    log->hdr = h;
    log->groups = (msgr__lgroup *)((char *)h + sizeof *h);
    log->prods = (msgr__lprod *)((char *)log->groups + 128ull * h->max_groups);
    log->data = (uint8_t *)h + h->hdr_size;
    log->cap = h->capacity;
    log->mask = h->capacity - 1;
    log->salt = h->salt;
    log->sync_none = h->sync == MSGR_SYNC_NONE; /* validated; fixed for the file's life */
    log->single = (h->flags & MSGR_LOG_SINGLE_PRODUCER) != 0;
    log->sp_claim = MSGR__NONE;
    log->max_payload = h->capacity / 2 - MSGR__LREC_HDR;
    if (log->max_payload > MSGR_RING_MAX_PAYLOAD)
        log->max_payload = MSGR_RING_MAX_PAYLOAD;
    log->claim_timeout = o && o->claim_timeout_ns ? o->claim_timeout_ns : 1000000000;
    msgr__wait_policy_init(&log->wait);
    static _Atomic uint64_t next_id = 1;
    log->id = atomic_fetch_add(&next_id, 1);
    log->mine = msgr__lalloc((h->max_producers + 63) / 64 * sizeof *log->mine);
    log->map = calloc(h->max_producers ? h->max_producers : 1, sizeof *log->map);
    atomic_flag_clear(&log->map_lock);
    if (!log->mine || !log->map) {
        msgr_os_aligned_free(log->mine);
        free(log->map);
        msgr_os_aligned_free(log);
        return MSGR_ENOMEM;
    }
    log->pid = msgr_os_pid();
    msgr_os_proc_start(log->pid, &log->pid_start);
    *out = log;
    return 0;
}

int msgr_log_create(const char *path, const msgr_log_opts *o, msgr_log **out)
{
    if (!path || !out || !opts_ok(o))
        return MSGR_EINVAL;
    uint64_t cap = o && o->capacity ? o->capacity : DEFAULT_CAPACITY;
    uint32_t groups = o && o->max_groups ? o->max_groups : 16;
    uint32_t prods = o && o->max_producers ? o->max_producers : 64;
    uint64_t hs = hdr_size_for(groups, prods);
    /* Filled in under a temporary name and then published: nobody ever opens a log whose
     * header is not written yet, even if we are killed midway. */
    msgr_region_opts ro = {.mode = o ? o->mode : 0, .flags = MSGR_REGION_PUBLISH_LATER};
    msgr_region *g;
    int rc = msgr_region_create_file(path, hs + cap, &ro, &g);
    if (rc)
        return rc;
    msgr__log_hdr *h = msgr_region_base(g);
    h->version = MSGR__LOG_VERSION;
    h->hdr_size = (uint32_t)hs;
    h->capacity = cap;
    h->salt = msgr_os_random64() & ~MSGR__L_FLAGS;
    h->max_groups = groups;
    h->max_producers = prods;
    h->sync = o ? o->sync : MSGR_SYNC_NONE;
    h->batch_ms = o && o->batch_ms ? o->batch_ms : 10;
    h->batch_records = o && o->batch_records ? o->batch_records : 1000;
    h->flags = o ? o->flags : 0;
    h->created_ns = msgr_os_now_ns();
    /* Release: the identity is complete for whoever sees the magic (acquire in validate()). */
    atomic_store_explicit(&h->magic, MSGR__LOG_MAGIC, memory_order_release);
    /* Announced in a producer slot before anyone can open it: an opener that finds no live
     * user recovers the log, and recovery must never run under an appender (it resets the
     * tail), so the creator must be visible from the first moment. */
    msgr_log *log = NULL;
    if ((rc = handle_new(g, o, &log)) == 0) {
        int s = msgr__lprod_slot(log);
        if (s < 0)
            rc = s;
        else if ((rc = msgr_os_msync(h, hs)) == 0)
            rc = msgr_region_publish(g);
        if (rc == 0) {
            *out = log;
            return 0;
        }
        msgr_log_close(log); /* closes the region too, removing the unpublished object */
        return rc;
    }
    msgr_region_close(g);
    return rc;
}

/* Checks a header found in a file of `size` usable bytes. Reads only; trusts nothing. */
static int validate(const msgr__log_hdr *h, uint64_t size)
{
    if (size < sizeof *h || atomic_load_explicit(&h->magic, memory_order_acquire) !=
                                MSGR__LOG_MAGIC)
        return MSGR_ENOTMSGR;
    if (h->version != MSGR__LOG_VERSION)
        return MSGR_EVERSION;
    if (!is_pow2(h->capacity) || h->capacity < 4096 || h->capacity > MSGR_RING_MAX_CAPACITY ||
        h->max_groups == 0 || h->max_groups > 4096 || h->max_producers == 0 ||
        h->max_producers > 4096 || h->hdr_size != hdr_size_for(h->max_groups, h->max_producers) ||
        h->hdr_size + h->capacity > size || h->sync > MSGR_SYNC_ALWAYS || (h->salt & 15) ||
        h->batch_records == 0 || (h->flags & ~MSGR_LOG_SINGLE_PRODUCER))
        return MSGR_ECORRUPT;
    uint64_t start = atomic_load_explicit(&h->start, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
    if ((start & 15) || (tail & 15) || start > tail || tail - start > h->capacity)
        return MSGR_ECORRUPT;
    return 0;
}

static int someone_alive(msgr_log *log)
{
    for (uint32_t i = 0; i < log->hdr->max_producers; i++) {
        msgr__lprod *p = &log->prods[i];
        int32_t pid = atomic_load_explicit(&p->pid, memory_order_acquire);
        if (pid && pid != log->pid && pid != -log->pid &&
            msgr__lslot_alive(pid, atomic_load_explicit(&p->start, memory_order_relaxed)))
            return 1;
    }
    for (uint32_t i = 0; i < log->hdr->max_groups; i++) {
        int32_t pid = msgr__named_owner(&log->groups[i]);
        if (pid && pid != log->pid)
            return 1;
    }
    return 0;
}

int msgr_log_open(const char *path, const msgr_log_opts *o, msgr_log **out,
                  msgr_log_recovery *rep)
{
    msgr_log_recovery dummy;
    if (!rep)
        rep = &dummy;
    memset(rep, 0, sizeof *rep);
    if (!path || !out || !opts_ok(o))
        return MSGR_EINVAL;
    msgr_region *g;
    int rc = msgr_region_open_file(path, &g);
    if (rc)
        return rc;
    if ((rc = validate(msgr_region_base(g), msgr_region_size(g)))) {
        msgr_region_close(g);
        return rc;
    }
    msgr_log *log;
    if ((rc = handle_new(g, o, &log))) {
        msgr_region_close(g);
        return rc;
    }
    msgr__log_hdr *h = log->hdr;
    /* Recovery must never run while anyone else uses the log (it rewrites the tail and resets
     * what follows the last valid record). So: (1) announce ourselves first, in a producer
     * slot, before looking for others; (2) take the recovery lock, waiting while a live
     * process holds it; (3) recover only if no other live process has announced itself. Two
     * openers racing both see each other and both skip recovery: safe, since the live repair
     * of abandoned claims still works; a later lone opener recovers. */
    int s = msgr__lprod_slot(log);
    if (s < 0)
        rc = s;
    /* How long to wait for a live recoverer: 10 claim timeouts (10 s by default), at least
     * 10 ms; then MSGR_EBUSY (the caller may retry). */
    uint64_t wait_ns = (uint64_t)log->claim_timeout * 10;
    wait_ns = wait_ns < 10000000 ? 10000000 : wait_ns > 10000000000ull ? 10000000000ull : wait_ns;
    uint64_t deadline = msgr_os_now_ns() + wait_ns;
    while (rc == 0) {
        int32_t holder = atomic_load_explicit(&h->recovering, memory_order_acquire);
        uint64_t hs = atomic_load(&h->recovering_start);
        if (holder != log->pid && msgr__lholder_alive(holder, hs)) {
            if (msgr_os_now_ns() >= deadline) { /* a live process stuck in recovery */
                rc = MSGR_EBUSY;
                break;
            }
            msgr_os_sleep_ns(1000000);
            continue;
        }
        if (!atomic_compare_exchange_strong_explicit(&h->recovering, &holder, log->pid,
                                                     memory_order_acq_rel, memory_order_acquire))
            continue;
        atomic_store(&h->recovering_start, log->pid_start); /* 0 until now (see above) */
        if (!someone_alive(log))
            rc = msgr__lrecover(log, rep);
        atomic_store(&h->recovering_start, 0);
        atomic_store_explicit(&h->recovering, 0, memory_order_release);
        break;
    }
    rep->end = atomic_load_explicit(&h->tail, memory_order_acquire);
    if (rc) {
        msgr_log_close(log);
        return rc;
    }
    *out = log;
    return 0;
}

void msgr_log_close(msgr_log *log)
{
    if (!log)
        return;
    if (log->hdr->sync != MSGR_SYNC_NONE && !atomic_load(&log->failed))
        msgr_log_sync(log);
    msgr__lrelease_append(log);
    msgr__lrelease_slots(log);
    msgr__ladvance_start(log); /* reclaim what was acknowledged (producers do it lazily) */
    msgr_region_close(log->region);
    msgr_os_aligned_free(log->mine);
    free(log->map);
    msgr_os_aligned_free(log);
}

/* ---- inspection and maintenance ---- */

/* Committed records in [from, to). */
/* Committed records in [from, to). An unfinished claim (being written, or left by a producer
 * that died) is stepped over to the next valid record: the records behind it count. */
static uint64_t count_records(msgr_log *log, uint64_t from, uint64_t to)
{
    uint64_t n = 0;
    while (from < to) {
        uint32_t st;
        int64_t size = msgr__lrec_at(log, from, &st, 0);
        if (size < 0)
            break;
        if (size == 0) {
            uint64_t next = msgr__lscan_next(log, from, to);
            if (!next)
                break;
            from = next;
            continue;
        }
        n += !(st & MSGR__L_SKIP);
        from += (uint64_t)size;
    }
    return n;
}

int msgr_log_stats_get(msgr_log *log, msgr_log_stats *st)
{
    if (!log || !st)
        return MSGR_EINVAL;
    msgr__log_hdr *h = log->hdr;
    memset(st, 0, sizeof *st);
    msgr__ladvance_start(log);
    st->capacity = h->capacity;
    st->sync = h->sync;
    st->max_groups = h->max_groups;
    st->max_producers = h->max_producers;
    st->flags = h->flags;
    st->version = h->version;
    if (log->single)
        st->appender = msgr__lapp_holder(log, NULL);
    st->start = atomic_load_explicit(&h->start, memory_order_acquire);
    st->end = atomic_load_explicit(&h->tail, memory_order_acquire);
    st->records = count_records(log, st->start, st->end);
    uint64_t min = UINT64_MAX;
    for (uint32_t i = 0; i < h->max_groups; i++)
        if (atomic_load_explicit(&log->groups[i].state, memory_order_acquire) == 2) {
            st->groups++;
            uint64_t a = msgr__durable_get(&log->groups[i].pos);
            min = a < min ? a : min;
        }
    st->pending = count_records(log, min == UINT64_MAX ? st->start : min, st->end);
    for (uint32_t i = 0; i < h->max_producers; i++) {
        msgr__lprod *p = &log->prods[i];
        int32_t pid = atomic_load_explicit(&p->pid, memory_order_acquire);
        st->producers += pid && msgr__lslot_alive(pid, atomic_load(&p->start));
    }
    return 0;
}

int msgr_log_group_get(msgr_log *log, uint32_t i, msgr_log_group_info *gi)
{
    if (!log || !gi || i >= log->hdr->max_groups)
        return MSGR_EINVAL;
    msgr__lgroup *g = &log->groups[i];
    if (atomic_load_explicit(&g->state, memory_order_acquire) != 2)
        return MSGR_ENOENT;
    memcpy(gi->name, g->name, sizeof gi->name);
    gi->name[sizeof gi->name - 1] = 0;
    gi->acked = msgr__durable_get(&g->pos);
    gi->lag = count_records(log, gi->acked, atomic_load_explicit(&log->hdr->tail,
                                                                 memory_order_acquire));
    int32_t pid = atomic_load_explicit(&g->owner, memory_order_acquire);
    gi->owner = pid && msgr_os_proc_alive(pid, atomic_load(&g->owner_start)) ? pid : 0;
    return 0;
}

int msgr_log_scan(msgr_log *log, uint64_t *cursor, msgr_msg *m)
{
    if (!log || !cursor || !m)
        return MSGR_EINVAL;
    uint64_t start = atomic_load_explicit(&log->hdr->start, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&log->hdr->tail, memory_order_acquire);
    uint64_t p = start;
    while (p < tail) {
        uint32_t st;
        int64_t size = msgr__lrec_at(log, p, &st, MSGR__LREC_CRC);
        if (size < 0)
            return (int)size;
        if (size == 0)
            return MSGR_EAGAIN; /* not committed yet: the scan ends here */
        if (!(st & MSGR__L_SKIP) && p >= *cursor) {
            msgr__lrec_msg(log, p, (uint64_t)size, m);
            *cursor = p + (uint64_t)size;
            return 0;
        }
        p += (uint64_t)size;
    }
    return MSGR_EAGAIN;
}

int msgr_log_clear(msgr_log *log, uint64_t *dropped)
{
    if (!log)
        return MSGR_EINVAL;
    msgr__log_hdr *h = log->hdr;
    /* The end of committed data: stop before any claim still being written, whose space must
     * not be handed back while its producer writes. */
    uint64_t start = atomic_load_explicit(&h->start, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    uint64_t end = start;
    while (end < tail) {
        uint32_t st;
        int64_t size = msgr__lrec_at(log, end, &st, MSGR__LREC_CRC);
        if (size <= 0)
            break;
        end += (uint64_t)size;
    }
    uint64_t min = UINT64_MAX;
    for (uint32_t i = 0; i < h->max_groups; i++)
        if (atomic_load_explicit(&log->groups[i].state, memory_order_acquire) == 2) {
            uint64_t a = msgr__durable_get(&log->groups[i].pos);
            min = a < min ? a : min;
            if (a < end)
                msgr__durable_set(&log->groups[i].pos, end);
        }
    if (dropped)
        *dropped = count_records(log, min == UINT64_MAX ? start : min, end);
    uint64_t cur = start;
    while (cur < end && !atomic_compare_exchange_weak_explicit(&h->start, &cur, end,
                                                               memory_order_release,
                                                               memory_order_relaxed))
        ;
    msgr__wake_waiters(&log->wait, &h->space_wait, 1);
    return h->sync != MSGR_SYNC_NONE ? msgr_log_sync(log) : 0;
}
