/* messenger: the runtime's shared layout and process-local state (internal).
 *
 * Region layout of a bus (offsets from msgr_region_base, all recorded in the header so that no
 * limit is fixed at compile time):
 *
 *   0            bus header (256 bytes): magic, version, application name, counts, offsets
 *   off_schema   n_messages x 64 bytes: wire id, kind, size, fingerprint, name
 *   off_fields   n_fields x 96 bytes: every zero-copy message's fields in declaration order
 *                (message index, offset, size, name, type), read to name what differs
 *   off_workers  n_workers x 384 bytes: name, running, pid, counters
 *   (then)       the sent matrix: row s, column d = messages s delivered into d's inbox;
 *                one row per sender, 128-byte aligned, so each row has one writer
 *   off_inboxes  n_workers inbox rings (MPSC), inbox_stride bytes apart; a file bus has none
 *                here: inbox i is the persistent log "<bus path>.<worker name>", read by the
 *                group named after the worker, which acknowledges after each handled batch
 *   off_bcast    n_bcast broadcast rings (memory buses only), one per broadcast fan-out; each
 *                destination has a reader slot, in route order (broadcast.c)
 */
#ifndef MSGR_BUS_INTERNAL_H
#define MSGR_BUS_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "inbox.h"
#include "notify.h"
#include "msgr/runtime.h"
#include "os/os.h"

#define MSGR__BUS_MAGIC 0x3153554252534d4dull /* "MMSRBUS1" little-endian */
#define MSGR__BUS_VERSION 3u  /* 2: the field table; 3: broadcast rings */
#define MSGR__BUS_VERSION_MIN 2u /* oldest layout still read (it has no broadcast rings) */
#define MSGR__BUS_HDR 256u
#define MSGR__NAME_MAX 47u   /* application, worker and message names */
#define MSGR__CTL_STOP 0     /* record type 0 is reserved for the runtime: "stop now" */
#define MSGR__BUS_FILE 0x1u  /* bus header flag: file bus (inbox i is the log "<path>.<worker>") */

typedef struct msgr__bus_hdr {
    _Atomic uint64_t magic; /* stored last at creation (release) */
    uint32_t version;
    uint32_t hdr_size;
    char app[MSGR__NAME_MAX + 1];
    uint32_t n_workers;
    uint32_t n_messages;
    uint64_t inbox_capacity;
    uint64_t off_schema;
    uint64_t off_workers;
    uint64_t off_inboxes;
    uint64_t inbox_stride;
    uint32_t flags;          /* MSGR__BUS_FILE: inboxes are log files beside the bus file */
    _Atomic uint32_t stops;  /* bumped by every stop, in any process; joiners sleep on it */
    uint64_t off_fields;
    uint32_t n_fields;
    uint32_t pad_;
    uint64_t off_bcast;      /* the broadcast rings (memory buses), after the inboxes; 0: none */
    uint64_t bcast_capacity; /* each one's data bytes */
    uint32_t n_bcast;        /* how many: the application's broadcast fan-outs */
    uint32_t pad2_;
    uint64_t bcast_fp;       /* fingerprint of the fan-outs (from, id, destinations) */
    uint8_t reserved[MSGR__BUS_HDR - 168];
} msgr__bus_hdr;
_Static_assert(sizeof(msgr__bus_hdr) == MSGR__BUS_HDR, "bus header is 256 bytes");

typedef struct msgr__schema_entry {
    uint16_t id;
    uint16_t serialized;
    uint32_t size;
    uint64_t fingerprint;
    char name[MSGR__NAME_MAX + 1];
} msgr__schema_entry;
_Static_assert(sizeof(msgr__schema_entry) == 64, "schema entry is 64 bytes");

#define MSGR__FIELD_NAME_MAX 47u
#define MSGR__FIELD_TYPE_MAX 31u
typedef struct msgr__field_entry {
    uint32_t msg;      /* index of its message in the schema table */
    uint32_t offset, size;
    uint32_t pad_;
    char name[MSGR__FIELD_NAME_MAX + 1]; /* longer names are cut (the fingerprint has them) */
    char type[MSGR__FIELD_TYPE_MAX + 1];
} msgr__field_entry;
_Static_assert(sizeof(msgr__field_entry) == 96, "field entry is 96 bytes");

/* One per worker, three lines: identity; what the worker itself counts (as receiver and as
 * sender); what its senders count into it. Counters are relaxed atomics: independent
 * statistics, ordered with nothing. */
typedef struct msgr__worker_entry {
    char name[MSGR__NAME_MAX + 1];
    _Atomic uint32_t running;
    _Atomic int32_t pid;          /* the process running it (with start: pid reuse) */
    _Atomic uint64_t start;       /* that process's start time; 0 from an older writer */
    _Atomic uint32_t blocked_on;  /* 1 + the worker whose full inbox a send of this one waits
                                     for, or 0: the wait-for graph, read to find cycles */
    uint8_t pad0[128 - 68];
    _Atomic uint64_t received, unhandled, rejected, dropped;   /* receive side */
    _Atomic uint64_t unrouted, send_errors, to_absent;         /* send side */
    uint8_t pad1[128 - 56];
    uint64_t inbox_capacity;      /* its inbox's capacity (0 in older buses: the header's) */
    uint8_t reserved[128 - 8];
} msgr__worker_entry;
_Static_assert(sizeof(msgr__worker_entry) == 384, "worker entry is 384 bytes");

struct msgr_ctx {
    msgr_bus *bus;
    uint32_t worker;
    void *user;
};

typedef struct msgr__worker {
    msgr_ctx ctx;
    msgr_os_thread thread;
    int local;      /* runs in this process */
    int threaded;   /* started on a thread */
    int polled;     /* driven by the application through msgr_bus_poll */
    int stopping;   /* worker thread: a stop record was seen */
    int in_send;    /* polled worker: dispatching its own inbox while a send of it waits */
    int in_handler; /* one of its handlers runs now (on whatever thread drives it) */
    msgr__notify *notify;        /* its pollable descriptor (msgr_bus_fd), or NULL */
    uint64_t cur_seq;            /* the message its handler has now (msgr_ctx_seq) */
    _Atomic uint64_t dispatched; /* messages handed to a handler (or found to have none) */
    _Atomic uint64_t discarded;  /* messages thrown away while the bus was abandoning */
} msgr__worker;

struct msgr_bus {
    const msgr_app *app;
    msgr_region *region;
    int region_borrowed; /* opts.region: the caller's, not closed with the bus */
    msgr__bus_hdr *hdr;
    msgr__worker_entry *wtab;
    _Atomic uint64_t *sent;  /* the sent matrix: sent[s * sent_stride + d] */
    uint32_t sent_stride;
    msgr__inbox *inbox; /* one per worker: the producer side for all senders, the consumer side
                           for the worker when it runs here */
    int file;           /* a file bus */
    msgr__worker *w;
    uint32_t spins, yields;
    int64_t send_timeout;
    int64_t claim_timeout;
    uint64_t *caps;      /* each worker's inbox capacity */
    uint32_t stops_seen; /* hdr->stops when opened or last joined: a join waits for a change */
    int started;
    _Atomic int abandon; /* workers discard instead of dispatching */
    uint64_t run_id;     /* this start's stop records carry it: a stop record left in a file
                            inbox by an earlier run (killed before reading it) stops nobody */
    char *reg_name;      /* the registry entry this process is recorded in, or NULL */
    /* Broadcast fan-outs (broadcast.c): n_bc rings; bc_dests[k * n_workers + i] is ring k's
     * i-th destination (bc_ndests[k] of them); bc_rd[k * n_workers + w] is local worker w's
     * reader of ring k, or NULL. */
    void (*on_close)(void *arg); /* msgr_bus_on_close */
    void *on_close_arg;
    uint32_t n_bc;
    uint64_t bc_cap; /* creation: each broadcast ring's capacity */
    struct msgr_bcast **bc;
    uint32_t *bc_ndests, *bc_dests;
    struct msgr_bcast_reader **bc_rd;
};

/* Where everything of a bus lies (offsets from the region's base). */
typedef struct layout {
    uint64_t off_schema, off_fields, off_workers, off_sent, sent_stride, off_inboxes, stride, total;
} layout;

/* Checks the bus header at base (size bytes of region) and computes its layout, every field
 * bounded; caps (max_caps entries; more workers: MSGR_ERANGE) gets each inbox's capacity. */
int msgr__bus_layout_check(const char *base, uint64_t size, int file, uint64_t *caps,
                           uint32_t max_caps, layout *out);

/* Adds to a shared counter. Every counter has one writer (a worker's identity is used by one
 * thread at a time, see msgr_bus_ctx), so a relaxed load and store do: no locked instruction,
 * which would drain the store buffer and stall on the line just written (a fence per message).
 * Readers get a racy but torn-free snapshot. */
static inline void msgr__count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* ---- broadcast fan-outs (broadcast.c) ---- */

/* A record of type MSGR__CTL_STOP with this payload is a reference: "ring `ring` has your
 * copy of message `id` at position `pos`". */
typedef struct msgr__bc_ref {
    uint32_t ring;
    uint16_t id;
    uint16_t pad_;
    uint64_t pos;
    uint64_t magic; /* MSGR__BC_REF_MAGIC: a reference, not a stop record */
} msgr__bc_ref;
#define MSGR__BC_REF_MAGIC 0x4645524342475352ull

/* Bytes the broadcast rings of this application take after `end` (the inboxes' end), and
 * where they start; 0 bytes on a file bus or without broadcasts. */
uint64_t msgr__bc_bytes(const msgr_app *app, int file, uint64_t cap, uint64_t end,
                        uint64_t *off);
/* Creator: records and formats the rings, each destination's slot joined in route order. */
int msgr__bc_format(msgr_bus *b, uint64_t cap);
/* Anyone else: checks the bus's fan-outs against the application and attaches the rings. */
int msgr__bc_attach(msgr_bus *b);
/* This process's local workers take their reader slots. */
int msgr__bc_open_readers(msgr_bus *b);
void msgr__bc_close(msgr_bus *b);
/* The ring serving (from, id) to exactly n destinations (0: any number), or -1. */
int msgr__bc_find(const msgr_bus *b, uint32_t from, uint16_t id, uint32_t n);
/* msgr_out.dest of a claim made in a broadcast ring (its index in msgr_out.pad_). */
#define MSGR__DEST_BCAST UINT32_MAX
/* Claims len bytes in ring k for a message to all its destinations; commit publishes it and a
 * reference into each destination's inbox (all or none: a reference that cannot be claimed
 * leaves the ring claim uncommitted, so no destination gets it). */
int msgr__bc_claim(msgr_ctx *ctx, int k, uint16_t id, size_t len, msgr_out *out);
int msgr__bc_commit(msgr_ctx *ctx, msgr_out *out);
/* Writes one message into ring k and a reference into each destination's inbox, all or none
 * (data/len, or size/encode for a serialized message). */
int msgr__bc_send(msgr_ctx *ctx, int k, uint16_t id, const void *data, size_t len,
                  msgr_size_fn size, msgr_encode_fn encode);
/* Worker w meets reference `m` in its inbox: dispatches the ring's record (discard: releases it
 * only). Returns the dispatch result, or 1 when the record was not there (counted dropped). */
int msgr__bc_take(msgr__worker *w, const msgr_msg *m, int discard);

/* Claims a runtime control record (type MSGR__CTL_STOP) in dest's inbox (router.c). */
int msgr__claim_ctl(msgr_ctx *ctx, uint32_t dest, size_t len, msgr_out *out);

/* Dispatches or discards one inbox record on behalf of worker w (worker.c). */
int msgr__worker_handle(msgr__worker *w, const msgr_msg *m);

/* Hands one message to w's handler (or discards it when abandoning), counting (worker.c). */
int msgr__worker_dispatch(msgr__worker *w, const msgr_msg *m);

/* Dispatches up to max records of w's own inbox in the calling thread (worker.c). */
int msgr__worker_poll(msgr__worker *w, unsigned max);

#endif
