/* messenger: reading a bus from outside, without its application's definitions
 * (msgr_bus_inspect; msgr stat and msgr top print it).
 *
 * The region is mapped and its header checked exactly as an attach checks it
 * (msgr__bus_layout_check): every count and offset bounded before use. Counters are relaxed
 * loads, a racy but torn-free snapshot, as msgr_bus_counters gives. Queue depth in bytes comes
 * from each inbox itself: a ring attached in place (its header checked too), or the inbox's log
 * file opened read-only for its group's lag. */
#include "bus_internal.h"
#include "msgr/error.h"
#include "msgr/registry.h"
#include "os/error_detail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void worker_counters(const char *base, const layout *l, const msgr__bus_hdr *h,
                            uint32_t w, msgr_counters *c)
{
    const msgr__worker_entry *e = (const msgr__worker_entry *)(base + l->off_workers) + w;
    _Atomic uint64_t *sent = (_Atomic uint64_t *)(base + l->off_sent);
    memset(c, 0, sizeof *c);
#define LOAD(f) c->f = atomic_load_explicit(&((msgr__worker_entry *)e)->f, memory_order_relaxed)
    LOAD(received);
    LOAD(unhandled);
    LOAD(rejected);
    LOAD(dropped);
    LOAD(unrouted);
    LOAD(send_errors);
    LOAD(to_absent);
#undef LOAD
    uint64_t in = 0;
    for (uint32_t s = 0; s < h->n_workers; s++) {
        in += atomic_load_explicit(&sent[s * l->sent_stride + w], memory_order_relaxed);
        c->sent += atomic_load_explicit(&sent[w * l->sent_stride + s], memory_order_relaxed);
    }
    uint64_t out = c->received + c->unhandled + c->rejected + c->dropped;
    c->queued = in > out ? in - out : 0;
    c->pid = atomic_load_explicit(&((msgr__worker_entry *)e)->pid, memory_order_relaxed);
    c->running = atomic_load_explicit(&((msgr__worker_entry *)e)->running, memory_order_relaxed) &&
                 msgr_os_owner_alive(c->pid, atomic_load_explicit(&((msgr__worker_entry *)e)->start,
                                                                  memory_order_relaxed));
}

/* Bytes queued in worker w's inbox: its ring in the region, or its log file. */
static uint64_t queued_bytes(const char *base, const layout *l, const uint64_t *caps, uint32_t w,
                             int file, const char *path, const char *wname)
{
    if (file) {
        char p[4096 + 64];
        snprintf(p, sizeof p, "%s.%s", path, wname);
        msgr_log *log;
        if (msgr_log_open(p, NULL, &log, NULL)) /* recovers a log nobody uses, as msgr stat */
            return 0;
        uint64_t lag = 0;
        msgr_log_stats st;
        if (msgr_log_stats_get(log, &st) == 0)
            for (uint32_t i = 0; i < st.max_groups; i++) {
                msgr_log_group_info g;
                if (msgr_log_group_get(log, i, &g) == 0 && strcmp(g.name, wname) == 0)
                    lag = st.end - g.acked;
            }
        msgr_log_close(log);
        return lag;
    }
    uint64_t off = l->off_inboxes;
    for (uint32_t i = 0; i < w; i++)
        off += (msgr_ring_footprint(caps[i]) + 4095) / 4096 * 4096;
    msgr_ring *r;
    if (msgr_ring_attach((char *)base + off, msgr_ring_footprint(caps[w]), NULL, &r))
        return 0;
    msgr_ring_stats st;
    msgr_ring_stats_get(r, &st);
    msgr_ring_close(r);
    return st.tail - st.head;
}

int msgr_bus_inspect(uint32_t kind, const char *name, msgr_bus_info *info,
                     msgr_bus_worker_info *workers, uint32_t max)
{
    if (!name || !info || (!workers && max))
        return MSGR_EINVAL;
    msgr_registry_entry *e = NULL;
    if (kind == 0 || kind == MSGR_REGION_ANON) { /* a registered name */
        if (!(e = malloc(sizeof *e)))
            return MSGR_ENOMEM;
        int rc = msgr_registry_lookup(name, e);
        if (rc) {
            free(e);
            return rc;
        }
        kind = e->kind;
        name = e->location;
    }
    if (kind != MSGR_REGION_SHM && kind != MSGR_REGION_FILE) {
        free(e);
        return MSGR_EINVAL;
    }
    msgr_region *r;
    int rc = kind == MSGR_REGION_SHM ? msgr_region_open_shm(name, &r)
                                     : msgr_region_open_file(name, &r);
    uint64_t *caps = rc ? NULL : calloc(65535, sizeof *caps);
    if (!rc && !caps)
        rc = MSGR_ENOMEM;
    if (rc) {
        if (!caps && rc == MSGR_ENOMEM)
            msgr_region_close(r);
        free(e);
        return rc;
    }
    const char *base = msgr_region_base(r);
    const msgr__bus_hdr *h = (const msgr__bus_hdr *)base;
    layout l;
    int file = kind == MSGR_REGION_FILE;
    rc = msgr__bus_layout_check(base, msgr_region_size(r), file, caps, 65535, &l);
    if (rc == 0) {
        memset(info, 0, sizeof *info);
        memcpy(info->app, h->app, sizeof info->app - 1);
        info->kind = kind;
        info->n_workers = h->n_workers;
        info->n_messages = h->n_messages;
        info->inbox_capacity = h->inbox_capacity;
        const msgr__worker_entry *we = (const msgr__worker_entry *)(base + l.off_workers);
        for (uint32_t i = 0; i < h->n_workers && i < max; i++) {
            msgr_bus_worker_info *w = &workers[i];
            memset(w, 0, sizeof *w);
            memcpy(w->name, we[i].name, sizeof w->name - 1);
            w->inbox_capacity = caps[i];
            worker_counters(base, &l, h, i, &w->c);
            w->c.queued_bytes = queued_bytes(base, &l, caps, i, file, name, w->name);
        }
    }
    free(caps);
    msgr_region_close(r);
    free(e);
    return rc;
}
