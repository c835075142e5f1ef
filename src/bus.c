/* messenger: the root object: create or attach a bus, check the schema, claim workers. */
#include "bus_internal.h"
#include "msgr/error.h"
#include "msgr/bcast.h"
#include "msgr/registry.h"
#include "os/error_detail.h"

#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#define DEFAULT_INBOX (1u << 20)

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }


/* Fields of all zero-copy messages of the application: the length of the bus's field table. */
static uint32_t app_fields(const msgr_app *app)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < app->n_messages; i++) {
        uint32_t k = 0;
        if (app->messages[i].fields)
            app->messages[i].fields(&k);
        n += k;
    }
    return n;
}

/* Bytes of the bus region an inbox of this capacity takes (none for a file bus: its inboxes
 * are log files). */
static uint64_t inbox_bytes(uint64_t cap, int file)
{
    return file ? 0 : align_up(msgr_ring_footprint(cap), 4096);
}

/* The layout for an application of this shape (n_fields: its field table's length), the
 * default capacity `cap` and, when `caps` is not NULL, one capacity per worker (caps[i], each
 * valid): inboxes lie one after another, each in its own size. */
static layout layout_for(const msgr_app *app, uint32_t n_fields, uint64_t cap,
                         const uint64_t *caps, int file)
{
    layout l;
    l.off_schema = MSGR__BUS_HDR;
    l.off_fields = l.off_schema + 64ull * app->n_messages;
    l.off_workers = align_up(l.off_fields + sizeof(msgr__field_entry) * n_fields, 256);
    l.off_sent = l.off_workers + sizeof(msgr__worker_entry) * app->n_workers;
    l.sent_stride = align_up(8ull * app->n_workers, 128) / 8; /* in counters */
    l.off_inboxes = align_up(l.off_sent + 8ull * l.sent_stride * app->n_workers, 4096);
    l.stride = inbox_bytes(cap, file);
    l.total = l.off_inboxes;
    for (uint32_t i = 0; i < app->n_workers; i++)
        l.total += caps ? inbox_bytes(caps[i], file) : l.stride;
    return l;
}

/* The whole region: the layout, then the broadcast rings (memory buses). */
static uint64_t with_bcast(const msgr_app *app, uint64_t cap, const uint64_t *caps, int file,
                           uint64_t bc_cap)
{
    uint64_t off, total = layout_for(app, app_fields(app), cap, caps, file).total;
    uint64_t bc = msgr__bc_bytes(app, file, bc_cap, total, &off);
    return bc ? off + bc : total;
}

/* Each broadcast ring's capacity from the options: 0 if invalid. */
static uint64_t bcast_cap(const msgr_bus_opts *o, uint64_t cap)
{
    int has = o && (o->size_of == 0 || o->size_of >= offsetof(msgr_bus_opts, broadcast_capacity) +
                                                         sizeof o->broadcast_capacity);
    uint64_t c = has && o->broadcast_capacity ? o->broadcast_capacity : 4 * cap;
    return msgr_bcast_footprint(c) ? c : 0;
}

static int app_check(const msgr_app *app)
{
    if (!app || !app->name || strlen(app->name) > MSGR__NAME_MAX || app->n_workers == 0 ||
        app->n_workers > 65535 || !app->worker_names || !app->dispatch ||
        (app->n_messages && !app->messages))
        return MSGR_EINVAL;
    for (uint32_t i = 0; i < app->n_workers; i++)
        if (!app->worker_names[i] || strlen(app->worker_names[i]) > MSGR__NAME_MAX)
            return MSGR_EINVAL;
    for (uint32_t i = 0; i < app->n_messages; i++)
        if (!app->messages[i].name || strlen(app->messages[i].name) > MSGR__NAME_MAX ||
            app->messages[i].id == MSGR__CTL_STOP)
            return MSGR_EINVAL;
    return 0;
}

/* "<bus path>.<worker>": where a file bus keeps worker i's inbox log. */
static void inbox_path(msgr_bus *b, const char *bus_path, uint32_t i, char *out, size_t n)
{
    snprintf(out, n, "%s.%s", bus_path, b->app->worker_names[i]);
}

/* Names the inbox that failed to open or be made, and why. */
static int inbox_failed(msgr_bus *b, const char *path, uint32_t i, int rc)
{
    if (b->file) {
        char p[4096];
        inbox_path(b, path, i, p, sizeof p);
        return msgr__fail(rc, "inbox of worker '%s' (%s): %s", b->app->worker_names[i], p,
                          msgr_strerror(rc));
    }
    return msgr__fail(rc, "inbox of worker '%s': %s", b->app->worker_names[i],
                      msgr_strerror(rc));
}

/* Formats a new bus in the region. */
static int format(msgr_bus *b, uint64_t cap, const char *path)
{
    const msgr_app *app = b->app;
    uint32_t n_fields = app_fields(app);
    layout l = layout_for(app, n_fields, cap, b->caps, b->file);
    char *base = msgr_region_base(b->region);
    if (l.total > msgr_region_size(b->region))
        return MSGR_ERANGE;
    msgr__bus_hdr *h = (msgr__bus_hdr *)base;
    h->version = MSGR__BUS_VERSION;
    h->hdr_size = MSGR__BUS_HDR;
    strncpy(h->app, app->name, MSGR__NAME_MAX);
    h->n_workers = app->n_workers;
    h->n_messages = app->n_messages;
    h->inbox_capacity = cap;
    h->off_schema = l.off_schema;
    h->off_fields = l.off_fields;
    h->n_fields = n_fields;
    h->off_workers = l.off_workers;
    h->off_inboxes = l.off_inboxes;
    h->inbox_stride = l.stride;
    h->flags = b->file ? MSGR__BUS_FILE : 0;
    msgr__schema_entry *se = (msgr__schema_entry *)(base + l.off_schema);
    for (uint32_t i = 0; i < app->n_messages; i++) {
        const msgr_app_msg *m = &app->messages[i];
        se[i].id = m->id;
        se[i].serialized = m->serialized;
        se[i].size = m->size;
        se[i].fingerprint = m->fingerprint();
        strncpy(se[i].name, m->name, MSGR__NAME_MAX);
    }
    msgr__field_entry *fe = (msgr__field_entry *)(base + l.off_fields);
    for (uint32_t i = 0; i < app->n_messages; i++) {
        uint32_t k = 0;
        const msgr_app_field *f = app->messages[i].fields ? app->messages[i].fields(&k) : NULL;
        for (uint32_t j = 0; j < k; j++, fe++) {
            fe->msg = i;
            fe->offset = f[j].offset;
            fe->size = f[j].size;
            strncpy(fe->name, f[j].name, MSGR__FIELD_NAME_MAX);
            strncpy(fe->type, f[j].type, MSGR__FIELD_TYPE_MAX);
        }
    }
    msgr__worker_entry *we = (msgr__worker_entry *)(base + l.off_workers);
    for (uint32_t i = 0; i < app->n_workers; i++) {
        strncpy(we[i].name, app->worker_names[i], MSGR__NAME_MAX);
        we[i].inbox_capacity = b->caps[i];
    }
    uint64_t off = l.off_inboxes;
    for (uint32_t i = 0; i < app->n_workers; i++) {
        int rc;
        uint64_t here = off;
        off += inbox_bytes(b->caps[i], b->file);
        if (b->file) {
            char p[4096];
            msgr_log_opts lo = {.capacity = b->caps[i], .claim_timeout_ns = b->claim_timeout};
            inbox_path(b, path, i, p, sizeof p);
            remove(p); /* a new bus: an inbox left from an older one is not ours */
            rc = msgr_log_create(p, &lo, &b->inbox[i].log);
        } else {
            msgr_ring_opts o = {.capacity = b->caps[i], .flags = MSGR_RING_MPSC,
                                .claim_timeout_ns = b->claim_timeout};
            rc = msgr_ring_create(base + here, off - here, &o, &b->inbox[i].ring);
        }
        if (rc)
            return inbox_failed(b, path, i, rc);
    }
    int brc = msgr__bc_format(b, b->bc_cap);
    if (brc)
        return brc;
    /* Release: everything above is visible to a process that sees the magic; pairs with the
     * acquire in attach(). */
    atomic_store_explicit(&h->magic, MSGR__BUS_MAGIC, memory_order_release);
    return 0;
}

/* Copies a name from shared memory: at most `max` bytes, NUL-terminated whatever is there. */
static void copy_name(char *out, const char *in, size_t max)
{
    memcpy(out, in, max);
    out[max] = 0;
}

/* MSGR_ESCHEMA for message m (the bus's schema entry k, of `bus_size` bytes) whose layout
 * differs from the bus's, with a detail naming the first field that differs. The bus's field
 * table (n entries, each bounded by the caller) is shared memory: names are copied, bounded. */
static int layout_differs(const msgr_app_msg *m, uint32_t k, uint32_t bus_size,
                          const msgr__field_entry *fe, uint32_t n)
{
    uint32_t nf = 0;
    const msgr_app_field *f = m->fields ? m->fields(&nf) : NULL;
    uint32_t j = 0;
    char name[MSGR__FIELD_NAME_MAX + 1], type[MSGR__FIELD_TYPE_MAX + 1];
    for (uint32_t e = 0; e < n; e++) {
        if (fe[e].msg != k)
            continue;
        copy_name(name, fe[e].name, MSGR__FIELD_NAME_MAX);
        copy_name(type, fe[e].type, MSGR__FIELD_TYPE_MAX);
        if (j == nf)
            return msgr__fail(MSGR_ESCHEMA, "message %s (wire id %u): the bus has a field '%s' "
                              "(%s) after the last one here", m->name, m->id, name, type);
        const msgr_app_field *mine = &f[j++];
        if (strncmp(mine->name, name, MSGR__FIELD_NAME_MAX) != 0)
            return msgr__fail(MSGR_ESCHEMA, "message %s (wire id %u): field %u is '%s' here and "
                              "'%s' in the bus", m->name, m->id, j, mine->name, name);
        if (strncmp(mine->type, type, MSGR__FIELD_TYPE_MAX) != 0)
            return msgr__fail(MSGR_ESCHEMA, "message %s (wire id %u): field '%s' is %s here and "
                              "%s in the bus", m->name, m->id, mine->name, mine->type, type);
        if (mine->offset != fe[e].offset || mine->size != fe[e].size)
            return msgr__fail(MSGR_ESCHEMA, "message %s (wire id %u): field '%s' is at offset "
                              "%u, %u bytes here and at %u, %u bytes in the bus", m->name,
                              m->id, mine->name, mine->offset, mine->size, fe[e].offset,
                              fe[e].size);
    }
    if (j < nf)
        return msgr__fail(MSGR_ESCHEMA, "message %s (wire id %u): field '%s' (%s) is new here; "
                          "the bus has none after '%s'", m->name, m->id, f[j].name, f[j].type,
                          j ? f[j - 1].name : "the start");
    return msgr__fail(MSGR_ESCHEMA, "message %s (wire id %u): its layout differs from the bus's "
                      "(size %u here, %u there; alignment, or a name or type longer than the "
                      "bus records)", m->name, m->id, m->size, bus_size);
}

/* Checks a bus header at base (size bytes) and computes its layout: everything read is
 * bounded. caps (n_workers entries, at most 65535) receives each inbox's capacity. */
int msgr__bus_layout_check(const char *base, uint64_t size, int file, uint64_t *caps,
                           uint32_t max_caps, layout *out)
{
    const msgr__bus_hdr *h = (const msgr__bus_hdr *)base;
    if (size < MSGR__BUS_HDR)
        return MSGR_ENOTMSGR;
    if (atomic_load_explicit(&((msgr__bus_hdr *)h)->magic, memory_order_acquire) != MSGR__BUS_MAGIC)
        return MSGR_ENOTMSGR;
    if (h->version < MSGR__BUS_VERSION_MIN || h->version > MSGR__BUS_VERSION)
        return msgr__fail(MSGR_EVERSION, "the bus has layout version %u, this library reads %u "
                          "to %u", h->version, MSGR__BUS_VERSION_MIN, MSGR__BUS_VERSION);
    if (h->version < 3 && h->n_bcast)
        return MSGR_ECORRUPT; /* version 2 has no broadcast rings: those bytes were zero */
    if (h->hdr_size != MSGR__BUS_HDR || h->n_workers == 0 || h->n_workers > 65535 ||
        h->n_messages > 65535 || h->n_fields > (1u << 20) ||
        !msgr_ring_footprint(h->inbox_capacity))
        return MSGR_ECORRUPT;
    /* Recompute the layout from the counts and require the stored one to equal it. */
    if (h->flags & ~MSGR__BUS_FILE || !!(h->flags & MSGR__BUS_FILE) != file)
        return MSGR_ECORRUPT;
    msgr_app shape = {.n_workers = h->n_workers, .n_messages = h->n_messages};
    layout l = layout_for(&shape, h->n_fields, h->inbox_capacity, NULL, file);
    if (h->off_schema != l.off_schema || h->off_fields != l.off_fields ||
        h->off_workers != l.off_workers ||
        h->off_inboxes != l.off_inboxes || h->inbox_stride != l.stride)
        return MSGR_ECORRUPT;
    if (l.off_workers + sizeof(msgr__worker_entry) * h->n_workers > size)
        return MSGR_ECORRUPT;
    if (h->n_workers > max_caps)
        return MSGR_ERANGE;
    /* Each inbox's capacity, from shared memory: bounded before it places anything. */
    const msgr__worker_entry *wc = (const msgr__worker_entry *)(base + l.off_workers);
    for (uint32_t i = 0; i < h->n_workers; i++) {
        uint64_t c = wc[i].inbox_capacity ? wc[i].inbox_capacity : h->inbox_capacity;
        if (!msgr_ring_footprint(c))
            return MSGR_ECORRUPT;
        caps[i] = c;
    }
    l = layout_for(&shape, h->n_fields, h->inbox_capacity, caps, file);
    if (l.total > size)
        return MSGR_ECORRUPT;
    *out = l;
    return 0;
}

/* Validates a bus someone else made, against our application. Everything read is bounded. */
static int attach(msgr_bus *b, const char *path)
{
    const msgr_app *app = b->app;
    char *base = msgr_region_base(b->region);
    uint64_t size = msgr_region_size(b->region);
    msgr__bus_hdr *h = (msgr__bus_hdr *)base;
    layout l;
    int bad = msgr__bus_layout_check(base, size, b->file, b->caps, app->n_workers, &l);
    if (bad && bad != MSGR_ERANGE)
        return bad;
    if (h->n_workers != app->n_workers)
        return msgr__fail(MSGR_ESCHEMA, "the bus has %u workers, this application %u",
                          h->n_workers, app->n_workers);
    if (strncmp(h->app, app->name, MSGR__NAME_MAX + 1) != 0)
        return msgr__fail(MSGR_ESCHEMA, "the bus is application '%.47s', this is '%s'", h->app,
                          app->name);
    msgr__worker_entry *we = (msgr__worker_entry *)(base + l.off_workers);
    for (uint32_t i = 0; i < app->n_workers; i++)
        if (strncmp(we[i].name, app->worker_names[i], MSGR__NAME_MAX + 1) != 0)
            return msgr__fail(MSGR_ESCHEMA, "worker %u is '%.47s' in the bus, '%s' here", i,
                              we[i].name, app->worker_names[i]);
    msgr__schema_entry *se = (msgr__schema_entry *)(base + l.off_schema);
    for (uint32_t i = 0; i < app->n_messages; i++) {
        const msgr_app_msg *m = &app->messages[i];
        for (uint32_t k = 0; k < h->n_messages; k++) {
            int same_name = strncmp(se[k].name, m->name, MSGR__NAME_MAX + 1) == 0;
            if (same_name && se[k].id != m->id)
                return msgr__fail(MSGR_ESCHEMA, "message %s has wire id %u here and %u in the "
                                  "bus", m->name, m->id, se[k].id);
            if (se[k].id != m->id)
                continue;
            /* Same wire id: same name, kind and layout, or this binary would misread it. */
            if (!same_name)
                return msgr__fail(MSGR_ESCHEMA, "wire id %u is message %s here and %.47s in the "
                                  "bus", m->id, m->name, se[k].name);
            if (se[k].serialized != m->serialized)
                return msgr__fail(MSGR_ESCHEMA, "message %s (wire id %u) is %s here and %s in "
                                  "the bus", m->name, m->id,
                                  m->serialized ? "serialized" : "a struct",
                                  se[k].serialized ? "serialized" : "a struct");
            if (se[k].fingerprint != m->fingerprint())
                return layout_differs(m, k, se[k].size,
                                      (const msgr__field_entry *)(base + l.off_fields),
                                      h->n_fields);
        }
    }
    for (uint32_t i = 0; i < app->n_workers; i++) {
        int rc;
        if (b->file) {
            char p[4096];
            inbox_path(b, path, i, p, sizeof p);
            msgr_log_opts lo = {.claim_timeout_ns = b->claim_timeout};
            rc = msgr_log_open(p, &lo, &b->inbox[i].log, NULL); /* recovers after a crash */
        } else {
            msgr_ring_opts ro = {.claim_timeout_ns = b->claim_timeout};
            uint64_t here = l.off_inboxes;
            for (uint32_t j = 0; j < i; j++)
                here += inbox_bytes(b->caps[j], 0);
            rc = msgr_ring_attach(base + here, inbox_bytes(b->caps[i], 0), &ro,
                                  &b->inbox[i].ring);
            if (rc == 0 && !(msgr_ring_flags(b->inbox[i].ring) & MSGR_RING_MPSC))
                rc = MSGR_ECORRUPT;
        }
        if (rc)
            return inbox_failed(b, path, i, rc);
    }
    return msgr__bc_attach(b);
}

/* wait_formatted(): the bus's creator died before formatting it. */
#define HALF_MADE (-2001)

/* Waits until the creator of the bus in b->region has formatted it (its magic, stored last).
 * Returns 0, HALF_MADE (the creator is dead and the magic missing), MSGR_ENOTMSGR (a region
 * holding something else), MSGR_ETIMEDOUT (a live creator still at it after 30 s). */
static int wait_formatted(msgr_bus *b)
{
    msgr__bus_hdr *h = (msgr__bus_hdr *)msgr_region_base(b->region);
    if (msgr_region_size(b->region) < MSGR__BUS_HDR)
        return MSGR_ENOTMSGR;
    uint64_t deadline = msgr_os_now_ns() + 30000000000ull;
    for (;;) {
        /* Acquire: pairs with the release store of the magic at the end of format(). */
        uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
        if (magic == MSGR__BUS_MAGIC)
            return 0;
        if (magic != 0)
            return MSGR_ENOTMSGR;
        if (!msgr_region_creator_alive(b->region))
            return atomic_load_explicit(&h->magic, memory_order_acquire) == MSGR__BUS_MAGIC
                       ? 0 : HALF_MADE;
        if (msgr_os_now_ns() >= deadline)
            return MSGR_ETIMEDOUT;
        /* No word to sleep on that the creator wakes: it formats for milliseconds. */
        msgr_os_sleep_ns(1000000);
    }
}

/* opts.region, for callers whose struct has it. */
static msgr_region *given_region(const msgr_bus_opts *o)
{
    if (!o || (o->size_of && o->size_of < offsetof(msgr_bus_opts, region) + sizeof o->region))
        return NULL;
    return o->region;
}

static int open_region(msgr_bus *b, const msgr_bus_opts *o, uint64_t cap, int *created)
{
    uint32_t kind = o && o->kind ? o->kind : MSGR_REGION_ANON;
    uint64_t bytes = with_bcast(b->app, cap, b->caps, b->file, b->bc_cap);
    *created = 1;
    msgr_region *given = given_region(o);
    if (given) { /* the caller's region: made here if blank, else attached */
        if (msgr_region_size(given) < MSGR__BUS_HDR)
            return msgr__fail(MSGR_ERANGE, "the region given has %zu bytes; a bus needs %llu",
                              msgr_region_size(given), (unsigned long long)bytes);
        const msgr__bus_hdr *h = msgr_region_base(given);
        uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
        if (magic == 0 && msgr_region_size(given) < bytes)
            return msgr__fail(MSGR_ERANGE, "the region given has %zu bytes; this bus needs %llu "
                              "(msgr_bus_footprint)", msgr_region_size(given),
                              (unsigned long long)bytes);
        b->region = given;
        b->region_borrowed = 1;
        *created = magic == 0;
        return 0;
    }
    if (kind == MSGR_REGION_ANON)
        return msgr_region_create_anon(bytes, NULL, &b->region);
    if (!o->name)
        return MSGR_EINVAL;
    for (int attempt = 0; attempt < 100; attempt++) {
        int rc = kind == MSGR_REGION_SHM ? msgr_region_open_shm(o->name, &b->region)
                                          : msgr_region_open_file(o->name, &b->region);
        if (rc == 0) {
            *created = 0;
            return 0;
        }
        if (rc == MSGR_ENOTMSGR || rc == MSGR_ECORRUPT) {
            /* Possibly another process between creating the object and writing its header. */
            msgr_os_sleep_ns(1000000);
            continue;
        }
        if (rc != MSGR_ENOENT)
            return rc;
        rc = kind == MSGR_REGION_SHM ? msgr_region_create_shm(o->name, bytes, NULL, &b->region)
                                     : msgr_region_create_file(o->name, bytes, NULL, &b->region);
        if (rc != MSGR_EEXIST)
            return rc; /* created (0) or a real error; on EEXIST someone beat us: attach */
    }
    return MSGR_ENOTMSGR;
}

static int is_listed(const char *const *run, const char *name)
{
    if (!run)
        return 1;
    for (; *run; run++)
        if (strcmp(*run, name) == 0)
            return 1;
    return 0;
}

static int bus_open(const msgr_app *app, const msgr_bus_opts *o, msgr_bus **out)
{
    if (o && o->kind && o->kind != MSGR_REGION_ANON && o->kind != MSGR_REGION_SHM &&
        o->kind != MSGR_REGION_FILE)
        return MSGR_EINVAL;
    uint64_t cap = o && o->inbox_capacity ? o->inbox_capacity : DEFAULT_INBOX;
    if (!msgr_ring_footprint(cap))
        return msgr__fail(MSGR_EINVAL, "inbox_capacity %llu is not a power of two between %u "
                          "and 2^40", (unsigned long long)cap, MSGR_RING_MIN_CAPACITY);
    if (o && o->run) /* every name in `run` must be a worker */
        for (const char *const *r = o->run; *r; r++)
            if (msgr_bus_worker_id(app, *r) < 0)
                return msgr__fail(MSGR_EINVAL, "run: application '%s' has no worker named '%s'",
                                  app->name, *r);
    if (o && o->drive) /* every name in `drive` must be a worker this process runs */
        for (const char *const *r = o->drive; *r; r++)
            if (msgr_bus_worker_id(app, *r) < 0 || !is_listed(o->run, *r))
                return msgr__fail(MSGR_EINVAL, "drive: '%s' is not a worker this process runs",
                                  *r);
    if (o && o->manual_ack) {
        if (o->kind != MSGR_REGION_FILE)
            return msgr__fail(MSGR_EINVAL, "manual_ack needs a file bus (memory inboxes keep no "
                              "position to acknowledge)");
        if (o->ack_window > (1u << 20))
            return msgr__fail(MSGR_EINVAL, "ack_window %u is over 2^20", o->ack_window);
        for (const char *const *r = o->manual_ack; *r; r++)
            if (msgr_bus_worker_id(app, *r) < 0 || !is_listed(o->run, *r))
                return msgr__fail(MSGR_EINVAL, "manual_ack: '%s' is not a worker this process "
                                  "runs", *r);
    }
    if (app->n_broadcasts && !bcast_cap(o, cap))
        return msgr__fail(MSGR_EINVAL, "broadcast_capacity %llu is not a power of two between "
                          "%u and 2^40", (unsigned long long)o->broadcast_capacity,
                          MSGR_RING_MIN_CAPACITY);
    if (o && o->inbox_capacities)
        for (uint32_t i = 0; i < app->n_workers; i++)
            if (o->inbox_capacities[i] && !msgr_ring_footprint(o->inbox_capacities[i]))
                return msgr__fail(MSGR_EINVAL, "inbox_capacities[%u] (worker '%s'): %llu is not "
                                  "a power of two between %u and 2^40", i, app->worker_names[i],
                                  (unsigned long long)o->inbox_capacities[i],
                                  MSGR_RING_MIN_CAPACITY);
    msgr_bus *b = calloc(1, sizeof *b);
    if (!b)
        return MSGR_ENOMEM;
    b->app = app;
    b->inbox = calloc(app->n_workers, sizeof *b->inbox);
    b->w = calloc(app->n_workers, sizeof *b->w);
    b->caps = calloc(app->n_workers, sizeof *b->caps);
    for (uint32_t i = 0; b->caps && i < app->n_workers; i++)
        b->caps[i] = o && o->inbox_capacities && o->inbox_capacities[i] ? o->inbox_capacities[i]
                                                                      : cap;
    b->bc_cap = bcast_cap(o, cap);
    b->spins = o ? o->spins : 0;
    b->yields = o ? o->yields : 0;
    b->send_timeout = o && o->send_timeout_ns > 0 ? o->send_timeout_ns : -1;
    b->claim_timeout = o && o->claim_timeout_ns > 0 ? o->claim_timeout_ns : 1000000000;
    if (o && (o->flags & MSGR_BUS_FRESH) && o->kind && o->kind != MSGR_REGION_ANON) {
        int drc = msgr_bus_destroy(app, o);
        if (drc) {
            free(b->inbox);
            free(b->w);
            free(b->caps);
            free(b);
            return msgr__fail(drc, "fresh: the bus '%s' is in use by a live process",
                              o->name);
        }
    }
    b->file = o && o->kind == MSGR_REGION_FILE;
    int created = 0,
        rc = (b->inbox && b->w && b->caps) ? open_region(b, o, cap, &created) : MSGR_ENOMEM;
    /* A bus someone else created may still be being formatted: wait for it. One whose creator
     * died before finishing is re-made (its name removed, once, even if several of us find it
     * at the same time, then created again). */
    for (int remade = 0; rc == 0 && !created && remade < 3; remade++) {
        if ((rc = wait_formatted(b)) != HALF_MADE || b->region_borrowed)
            break; /* a region given by the caller is never re-made here */
        msgr_region_unlink_if_same(b->region);
        msgr_region_close(b->region);
        b->region = NULL;
        rc = open_region(b, o, cap, &created);
    }
    if (rc == HALF_MADE)
        rc = MSGR_EBUSY; /* re-made three times and half-made again: someone keeps dying */
    if (rc == 0)
        rc = created ? format(b, cap, o ? o->name : NULL) : attach(b, o ? o->name : NULL);
    /* Memory buses are mapped in full now: the first lap of every inbox would otherwise take a
     * page fault every 4 KiB, microseconds each, in the middle of the traffic. Not file buses:
     * populating a shared file mapping for writing would dirty the whole file. */
    if (rc == 0 && msgr_region_kind_of(b->region) != MSGR_REGION_FILE)
        rc = msgr_region_prefault(b->region);
    if (rc == 0) {
        char *base = msgr_region_base(b->region);
        b->hdr = (msgr__bus_hdr *)base;
        b->stops_seen = atomic_load_explicit(&b->hdr->stops, memory_order_relaxed);
        b->wtab = (msgr__worker_entry *)(base + b->hdr->off_workers);
        layout l = layout_for(app, b->hdr->n_fields, b->hdr->inbox_capacity, NULL, b->file);
        b->sent = (_Atomic uint64_t *)(base + l.off_sent);
        b->sent_stride = (uint32_t)l.sent_stride;
        int32_t me = msgr_os_pid();
        uint64_t self_start = 0;
        msgr_os_proc_start(me, &self_start);
        for (uint32_t i = 0; i < app->n_workers && rc == 0; i++) {
            msgr__worker *w = &b->w[i];
            w->ctx.bus = b;
            w->ctx.worker = i;
            w->local = is_listed(o ? o->run : NULL, app->worker_names[i]);
            if (!w->local)
                continue;
            if (o && o->drive && is_listed(o->drive, app->worker_names[i]))
                w->polled = 1; /* the application's loop drives it */
            /* Claim the worker: refuse if a live process other than us runs it (pid and start
             * time: a reused pid or a zombie is not it). The compare-and-swap makes two
             * processes claiming it at once agree on one owner. */
            msgr__worker_entry *we = &b->wtab[i];
            int32_t owner = atomic_load_explicit(&we->pid, memory_order_acquire);
            if ((atomic_load_explicit(&we->running, memory_order_acquire) && owner != me &&
                 msgr_os_owner_alive(owner, atomic_load_explicit(&we->start, memory_order_relaxed))) ||
                (owner != me && !atomic_compare_exchange_strong(&we->pid, &owner, me))) {
                rc = msgr__fail(MSGR_EBUSY, "worker '%s' already runs in live process %d",
                                app->worker_names[i], (int)owner);
                break;
            }
            atomic_store_explicit(&we->start, self_start, memory_order_relaxed);
            atomic_store_explicit(&we->blocked_on, 0, memory_order_relaxed); /* a dead one's */
            atomic_store_explicit(&we->running, 1, memory_order_release);
            /* A file inbox is read by the group named after its worker: this process now. */
            if (b->file && (rc = msgr_log_reader_open(b->inbox[i].log, app->worker_names[i],
                                                      &b->inbox[i].rd)))
                break;
            if (o && o->manual_ack && is_listed(o->manual_ack, app->worker_names[i])) {
                char side[4096 + 64];
                inbox_path(b, o->name, i, side, sizeof side - 8);
                strcat(side, ".acks");
                uint32_t win = o->ack_window ? o->ack_window : 1024;
                if ((rc = msgr__acks_open(b->inbox[i].rd, win, side, &b->inbox[i].acks)))
                    break;
            }
        }
        if (rc == 0)
            rc = msgr__bc_open_readers(b);
    }
    if (rc) {
        if (b->hdr)
            for (uint32_t i = 0; i < app->n_workers; i++)
                if (b->w[i].local &&
                    atomic_load_explicit(&b->wtab[i].pid, memory_order_relaxed) == msgr_os_pid())
                    atomic_store_explicit(&b->wtab[i].running, 0, memory_order_release);
        b->started = 0;
        msgr_bus_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

int msgr_bus_worker_id(const msgr_app *app, const char *name)
{
    if (!app || !name)
        return MSGR_EINVAL;
    for (uint32_t i = 0; i < app->n_workers; i++)
        if (strcmp(app->worker_names[i], name) == 0)
            return (int)i;
    return MSGR_ENOENT;
}

int msgr_bus_destroy(const msgr_app *app, const msgr_bus_opts *o)
{
    if (!app || !o || !o->name || !o->kind || o->kind == MSGR_REGION_ANON ||
        (o->kind != MSGR_REGION_SHM && o->kind != MSGR_REGION_FILE))
        return MSGR_EINVAL;
    int32_t users = 0;
    if (o->kind == MSGR_REGION_SHM) {
        int rc = msgr_region_shm_users(o->name, &users);
        if (rc == MSGR_ENOENT)
            return 0;
        if (rc)
            return rc;
        if (users != 0)
            return MSGR_EBUSY; /* in use, or this system cannot tell: keep it */
        rc = msgr_region_unlink_shm(o->name);
        return rc == MSGR_ENOENT ? 0 : rc;
    }
    /* A file bus: the bus file and an inbox log per worker; none may be in use. */
    char p[4096];
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i <= app->n_workers; i++) {
            if (i == app->n_workers)
                snprintf(p, sizeof p, "%s", o->name);
            else
                snprintf(p, sizeof p, "%s.%s", o->name, app->worker_names[i]);
            if (pass == 0) {
                int rc = msgr_region_file_users(p, &users);
                if (rc && rc != MSGR_ENOENT)
                    return rc;
                if (rc == 0 && users != 0)
                    return MSGR_EBUSY;
            } else {
                int rc = msgr_os_unlink(p);
                if (rc && rc != MSGR_ENOENT)
                    return rc;
                if (i < app->n_workers) { /* explicit acknowledgements kept beside it */
                    char acks[sizeof p + 8];
                    snprintf(acks, sizeof acks, "%s.acks", p);
                    msgr_os_unlink(acks);
                }
            }
        }
    return 0;
}

int msgr_bus_ctx(msgr_bus *b, uint32_t worker, msgr_ctx **out)
{
    if (!b || !out || worker >= b->app->n_workers)
        return MSGR_EINVAL;
    *out = &b->w[worker].ctx;
    return 0;
}

int msgr_bus_set_user(msgr_bus *b, uint32_t worker, void *user)
{
    if (!b || worker >= b->app->n_workers)
        return MSGR_EINVAL;
    b->w[worker].ctx.user = user;
    return 0;
}

int msgr_bus_counters(msgr_bus *b, uint32_t worker, msgr_counters *c)
{
    if (!b || !c || worker >= b->app->n_workers)
        return MSGR_EINVAL;
    msgr__worker_entry *e = &b->wtab[worker];
#define MSGR__LOAD(f) c->f = atomic_load_explicit(&e->f, memory_order_relaxed)
    MSGR__LOAD(received);
    MSGR__LOAD(unhandled);
    MSGR__LOAD(rejected);
    MSGR__LOAD(dropped);
    MSGR__LOAD(unrouted);
    MSGR__LOAD(send_errors);
    MSGR__LOAD(to_absent);
#undef MSGR__LOAD
    uint64_t in = 0;
    c->sent = 0;
    for (uint32_t s = 0; s < b->app->n_workers; s++) {
        in += atomic_load_explicit(&b->sent[s * b->sent_stride + worker], memory_order_relaxed);
        c->sent += atomic_load_explicit(&b->sent[worker * b->sent_stride + s], memory_order_relaxed);
    }
    uint64_t out = c->received + c->unhandled + c->rejected + c->dropped;
    c->queued = in > out ? in - out : 0; /* racy snapshot: never negative */
    /* Running: claimed, and its process alive (one killed leaves the flag set). */
    c->pid = atomic_load_explicit(&e->pid, memory_order_relaxed);
    c->running = atomic_load_explicit(&e->running, memory_order_relaxed) &&
                 msgr_os_owner_alive(c->pid, atomic_load_explicit(&e->start, memory_order_relaxed));
    c->queued_bytes = msgr__inbox_queued_bytes(&b->inbox[worker]);
    return 0;
}

msgr_region *msgr_bus_region(msgr_bus *b) { return b ? b->region : NULL; }

int msgr_bus_on_close(msgr_bus *b, void (*fn)(void *arg), void *arg)
{
    if (!b)
        return MSGR_EINVAL;
    b->on_close = fn;
    b->on_close_arg = arg;
    return 0;
}

void msgr_bus_close(msgr_bus *b)
{
    if (!b)
        return;
    if (b->on_close)
        b->on_close(b->on_close_arg);
    if (b->started)
        msgr_bus_stop(b, MSGR_STOP_ABANDON, 0, NULL);
    if (b->hdr)
        for (uint32_t i = 0; i < b->app->n_workers; i++)
            if (b->w[i].local &&
                atomic_load_explicit(&b->wtab[i].pid, memory_order_relaxed) == msgr_os_pid())
                atomic_store_explicit(&b->wtab[i].running, 0, memory_order_release);
    for (uint32_t i = 0; b->w && i < b->app->n_workers; i++)
        msgr__notify_close(b->w[i].notify); /* its helper waits in the inbox */
    if (b->inbox)
        for (uint32_t i = 0; i < b->app->n_workers; i++)
            msgr__inbox_close(&b->inbox[i]);
    msgr__bc_close(b);
    if (!b->region_borrowed)
        msgr_region_close(b->region);
    if (b->reg_name) {
        msgr_registry_leave(b->reg_name);
        free(b->reg_name);
    }
    free(b->inbox);
    free(b->w);
    free(b->caps);
    free(b);
}

uint64_t msgr_app_schema(const msgr_app *app)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, 64-bit */
#define MIX(byte) (h = (h ^ (uint8_t)(byte)) * 0x100000001b3ull)
    if (!app || !app->name)
        return 0;
    for (const char *p = app->name; *p; p++)
        MIX(*p);
    for (uint32_t i = 0; i < app->n_messages; i++) {
        uint64_t f = app->messages[i].fingerprint ? app->messages[i].fingerprint() : 0;
        MIX(app->messages[i].id);
        MIX(app->messages[i].id >> 8);
        for (int k = 0; k < 8; k++)
            MIX(f >> (8 * k));
    }
#undef MIX
    return h;
}

/* ---- the name registry ---- */

/* The name a bus registers under by default: the shm name, or the file's base name less its
 * extension. */
static int default_reg_name(const msgr_bus_opts *o, char *out, size_t cap)
{
    const char *n = o->name, *slash = strrchr(n, '/');
#ifdef _WIN32
    const char *bs = strrchr(n, '\\');
    if (bs && (!slash || bs > slash))
        slash = bs;
#endif
    if (o->kind == MSGR_REGION_FILE && slash)
        n = slash + 1;
    while (*n == '/')
        n++;
    size_t len = strlen(n);
    const char *dot = o->kind == MSGR_REGION_FILE ? strrchr(n, '.') : NULL;
    if (dot && dot != n)
        len = (size_t)(dot - n);
    if (len == 0 || len >= cap)
        return msgr__fail(MSGR_EINVAL, "no registry name can be made from '%s': set "
                          "registry_name", o->name);
    memcpy(out, n, len);
    out[len] = 0;
    return 0;
}

/* Where (kind, name) lives, as the registry records it: a file's absolute path. */
static int reg_location(const msgr_bus_opts *o, char *out, size_t cap)
{
    if (o->kind == MSGR_REGION_FILE)
        return msgr_os_abs_path(o->name, out, cap);
    const char *n = o->name;
    while (*n == '/')
        n++;
    if (strlen(n) >= cap)
        return MSGR_ENAMETOOLONG;
    strcpy(out, n);
    return 0;
}

int msgr_bus_open(const msgr_app *app, const msgr_bus_opts *o, msgr_bus **out)
{
    if (!out || app_check(app))
        return MSGR_EINVAL;
    /* Callers built before claim_timeout_ns and flags existed pass the older size. */
    if (o && o->size_of && o->size_of < offsetof(msgr_bus_opts, claim_timeout_ns))
        return MSGR_EINVAL;
    if (o && (o->flags & ~(MSGR_BUS_FRESH | MSGR_BUS_REGISTER | MSGR_BUS_ATTACH_REGISTERED)))
        return MSGR_EINVAL;
    /* The caller's options, as far as its size_of says; later fields read as zero. */
    msgr_bus_opts eff;
    memset(&eff, 0, sizeof eff);
    if (o)
        memcpy(&eff, o, o->size_of && o->size_of < sizeof eff ? o->size_of : sizeof eff);
    char reg[MSGR_REGISTRY_NAME_MAX + 1] = "", loc[1024];
    msgr_registry_entry *e = o ? malloc(sizeof *e) : NULL;
    if (o && !e)
        return MSGR_ENOMEM;
    int rc = 0;
    if (o && (!eff.kind || eff.kind == MSGR_REGION_ANON) && eff.name && !given_region(o)) {
        /* A registered name: open the bus wherever it lives. */
        if ((rc = msgr_registry_lookup(eff.name, e)))
            goto out;
        if (strcmp(e->app, app->name) != 0) {
            rc = msgr__fail(MSGR_ESCHEMA, "the bus registered as '%s' belongs to application "
                            "'%s', not '%s'", eff.name, e->app, app->name);
            goto out;
        }
        snprintf(reg, sizeof reg, "%s", eff.name);
        eff.kind = e->kind;
        eff.name = e->location;
    } else if (o && (eff.flags & MSGR_BUS_REGISTER)) {
        if ((eff.kind != MSGR_REGION_SHM && eff.kind != MSGR_REGION_FILE) || !eff.name) {
            rc = msgr__fail(MSGR_EINVAL, "MSGR_BUS_REGISTER needs a shm or file bus");
            goto out;
        }
        if (eff.registry_name)
            rc = snprintf(reg, sizeof reg, "%s", eff.registry_name) >= (int)sizeof reg
                     ? msgr__fail(MSGR_EINVAL, "registry_name '%.80s' is longer than %d",
                                  eff.registry_name, MSGR_REGISTRY_NAME_MAX)
                     : 0;
        else
            rc = default_reg_name(&eff, reg, sizeof reg);
        if (rc)
            goto out;
        /* Registered for another bus already: refused before anything is made, or that bus
         * opened instead. (A file not made yet has no absolute path: another bus, then.) */
        if (msgr_registry_lookup(reg, e) == 0 &&
            (e->kind != eff.kind || reg_location(&eff, loc, sizeof loc) != 0 ||
             strcmp(loc, e->location) != 0)) {
            if (!(eff.flags & MSGR_BUS_ATTACH_REGISTERED)) {
                rc = msgr__fail(MSGR_EEXIST, "registry name '%s' is held by %s bus '%s' "
                                "(process %d lives)", reg, e->kind == MSGR_REGION_FILE ? "file"
                                : "shm", e->location, (int)e->procs[0].pid);
                goto out;
            }
            eff.kind = e->kind;
            eff.name = e->location;
        }
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        if ((rc = bus_open(app, o ? &eff : NULL, out)) || !reg[0])
            goto out;
        if ((rc = reg_location(&eff, loc, sizeof loc)) == 0 &&
            (rc = msgr_registry_add(reg, eff.kind, loc, app->name, msgr_app_schema(app))) == 0 &&
            !((*out)->reg_name = malloc(strlen(reg) + 1)))
            rc = MSGR_ENOMEM;
        if (rc == 0) {
            strcpy((*out)->reg_name, reg);
            goto out;
        }
        msgr_bus_close(*out);
        *out = NULL;
        /* Another process registered the name for its bus first: attach to that one. */
        if (rc != MSGR_EEXIST || !(eff.flags & MSGR_BUS_ATTACH_REGISTERED) ||
            msgr_registry_lookup(reg, e) != 0)
            goto out;
        eff.kind = e->kind;
        eff.name = e->location;
    }
out:
    free(e);
    return rc;
}

size_t msgr_bus_footprint(const msgr_app *app, const msgr_bus_opts *o)
{
    if (app_check(app))
        return 0;
    uint64_t cap = o && o->inbox_capacity ? o->inbox_capacity : DEFAULT_INBOX;
    if (!msgr_ring_footprint(cap))
        return 0;
    uint64_t *caps = calloc(app->n_workers ? app->n_workers : 1, sizeof *caps);
    if (!caps)
        return 0;
    for (uint32_t i = 0; i < app->n_workers; i++) {
        caps[i] = o && o->inbox_capacities && o->inbox_capacities[i] ? o->inbox_capacities[i]
                                                                     : cap;
        if (!msgr_ring_footprint(caps[i])) {
            free(caps);
            return 0;
        }
    }
    uint64_t bc = bcast_cap(o, cap);
    uint64_t total = bc ? with_bcast(app, cap, caps, 0, bc) : 0;
    free(caps);
    return (size_t)total;
}
