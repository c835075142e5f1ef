/* messenger: the nano-services runtime.
 *
 * An application is described once, in a definition header read by the generator in
 * macros/msgr_app.h (messages, workers, routes; see the README). The generator produces a
 * constant msgr_app descriptor; this header runs it: a bus (anonymous memory by default, or named
 * shared memory, or a file) with one inbox ring per worker, worker threads that wait on their
 * inbox and dispatch each message to its handler, and senders that route by (source worker,
 * message id) with no look-ups at run time.
 *
 * The same application runs as threads in one process or spread over several processes: each
 * process opens the same bus and runs the workers it names (msgr_bus_opts.run).
 */
#ifndef MSGR_RUNTIME_H
#define MSGR_RUNTIME_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#include "region.h"
#include "ring.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msgr_bus msgr_bus;
typedef struct msgr_ctx msgr_ctx;

/* ---- what the generator fills in (users do not write these by hand) ---- */

/* One field of a zero-copy message, as the definition declares it. */
typedef struct msgr_app_field {
    const char *name;
    const char *type;    /* as written, with its array extent: "uint64_t", "char[16]" */
    uint32_t offset, size;
} msgr_app_field;

typedef struct msgr_app_msg {
    const char *name;
    uint16_t id;         /* wire id, 1..65535, stable across edits of the definition */
    uint16_t serialized; /* 1: user codec; 0: fixed-layout struct read in place */
    uint32_t size;       /* struct size (0 for serialized messages) */
    uint64_t (*fingerprint)(void);
    /* The fields in declaration order and their count (NULL and 0 for serialized ones). */
    const msgr_app_field *(*fields)(uint32_t *n_fields);
} msgr_app_msg;

/* Dispatches one message to a worker's handler. Returns 0, or MSGR_ENOROUTE when the worker
 * has no handler for (src, id), or a negative code from a failing decode (serialized mode) or
 * a wrong length (MSGR_EMSGSIZE). */
typedef int (*msgr_dispatch_fn)(msgr_ctx *ctx, uint32_t src, uint32_t id, const void *data,
                                uint32_t len);

/* A fan-out route that goes through a broadcast ring (msgr/bcast.h) on memory buses: the
 * message is written once and every destination reads it in place. */
typedef struct msgr_app_broadcast {
    uint32_t from; /* the sending worker */
    uint16_t id;   /* the message's wire id */
    uint16_t pad_;
} msgr_app_broadcast;

typedef struct msgr_app {
    const char *name;
    uint32_t n_workers;
    uint32_t n_messages;
    const char *const *worker_names; /* n_workers names; index = worker id */
    const msgr_app_msg *messages;    /* n_messages entries */
    const msgr_dispatch_fn *dispatch;/* n_workers entries */
    uint32_t n_broadcasts;           /* fan-out routes declared broadcast (MSGR_APP_BROADCASTS) */
    const msgr_app_broadcast *broadcasts;
    /* The destinations of (from, id) in route order, into out (room for n_workers); returns
     * their count. Needed when n_broadcasts > 0. */
    uint32_t (*route_dests)(uint32_t from, uint16_t id, uint32_t *out);
} msgr_app;

/* ---- opening a bus ---- */

typedef enum msgr_stop_mode {
    MSGR_STOP_DRAIN = 1,   /* handle everything queued (and what that sends) before stopping */
    MSGR_STOP_ABANDON = 2, /* stop after the message in hand; queued messages are discarded */
} msgr_stop_mode;

/* Anonymous and shared-memory buses are mapped in full when opened (msgr_region_prefault), so
 * the first messages take no page faults; file buses are not. */
typedef struct msgr_bus_opts {
    uint32_t size_of;          /* sizeof(msgr_bus_opts), or 0 */
    uint32_t kind;             /* msgr_region_kind; 0 means MSGR_REGION_ANON */
    const char *name;          /* shm name (MSGR_REGION_SHM) or file path (MSGR_REGION_FILE) */
    uint64_t inbox_capacity;   /* bytes per worker inbox, a power of two; 0 means 1 MiB */
    const char *const *run;    /* NULL-terminated worker names to run in this process;
                                  NULL means all workers; an empty list means none */
    uint32_t spins, yields;    /* wait policy of workers on threads (msgr_ring_set_wait); 0,0 =
                                  defaults; spins = UINT32_MAX keeps them spinning (lowest
                                  latency, one busy core each) */
    int64_t send_timeout_ns;   /* how long a send waits for inbox space; 0 means no limit */
    int64_t claim_timeout_ns;  /* how long a message claimed but not committed may hold up an
                                  inbox before its sender's liveness is checked (a sender
                                  killed mid-claim costs only that message); 0 means 1 s */
    uint32_t flags;            /* MSGR_BUS_FRESH */
    uint32_t reserved_;
    const char *const *drive;  /* NULL-terminated workers (among those this process runs) that
                                  the application drives from its own loop with
                                  msgr_bus_poll(): msgr_bus_start() gives them no thread, and a
                                  send of theirs that waits for space keeps dispatching their
                                  inbox meanwhile; NULL: none */
    const uint64_t *inbox_capacities; /* creation: one capacity per worker, indexed by worker
                                  id (a power of two; 0 takes inbox_capacity); NULL: every
                                  inbox gets inbox_capacity. Attaching uses what the bus has. */
    msgr_region *region;       /* a memory bus in this region instead of kind/name: all zeros,
                                  it is made there (msgr_bus_footprint() bytes at least); holding
                                  a bus, it is attached. For a region handed over a connection
                                  (msgr_ipc_send_region): the process that made it opens the
                                  bus first, then hands it over. Stays the caller's: close it
                                  after msgr_bus_close(). NULL: kind and name decide. */
    const char *registry_name; /* with MSGR_BUS_REGISTER: the name to register under (see
                                  msgr/registry.h); NULL: the shm name, or the file's name
                                  without its directory and its last extension */
    const char *const *manual_ack; /* file bus: NULL-terminated workers (run here) whose
                                  handlers acknowledge messages themselves, with msgr_ack(),
                                  from any thread, in any order; NULL: every worker's messages
                                  are acknowledged when its handler returns */
    uint32_t ack_window;       /* manual_ack: how far past the oldest message not yet
                                  acknowledged the reader may go (it waits beyond); 0: 1024 */
    uint32_t reserved2_;
    uint64_t broadcast_capacity; /* creation, memory buses: data bytes of each broadcast
                                  fan-out's ring (MSGR_APP_BROADCASTS), a power of two; 0 means
                                  4 x inbox_capacity. Its largest message is half of it. */
} msgr_bus_opts;

/* msgr_bus_opts.flags: start from an empty bus: an existing bus of that name (shared memory,
 * or the bus file and its inbox files) is removed first, as msgr_bus_destroy() does (so
 * MSGR_EBUSY while a live process uses it). Without it, opening attaches to what is there,
 * messages left by an earlier run included. */
#define MSGR_BUS_FRESH 0x1u
/* Register this shm or file bus in the name registry (registry_name), so that programs open
 * it by name alone: kind 0 (anonymous) with `name` set means "the bus registered as name",
 * found wherever it lives. A live registration of that name for another bus: MSGR_EEXIST,
 * unless MSGR_BUS_ATTACH_REGISTERED, which opens the registered bus instead. Every process
 * that opens a bus this way is recorded in its entry until msgr_bus_close(). */
#define MSGR_BUS_REGISTER 0x2u
#define MSGR_BUS_ATTACH_REGISTERED 0x4u

/* A fingerprint of the application's schema: its name and every message's wire id and
 * fingerprint, in order (what the registry records). */
MSGR_API uint64_t msgr_app_schema(const msgr_app *app);

/* Bytes a bus of `app` with these options needs (inbox capacities included): the size for a
 * region given in msgr_bus_opts.region. 0 for invalid arguments. */
MSGR_API size_t msgr_bus_footprint(const msgr_app *app, const msgr_bus_opts *opts);

/* Removes every object of a named bus: the shared memory, or the bus file and one inbox file
 * per worker. Refuses with MSGR_EBUSY (nothing removed) while a live process maps any of them.
 * Missing objects are fine (0). Errors: MSGR_EINVAL (anonymous, no name), MSGR_EBUSY, MSGR_EACCES. */
MSGR_API int msgr_bus_destroy(const msgr_app *app, const msgr_bus_opts *opts);

/* The id of the worker named `name` (its index in app->worker_names), or MSGR_ENOENT. */
MSGR_API int msgr_bus_worker_id(const msgr_app *app, const char *name);

/* Waits until the bus is stopped, by msgr_bus_stop() or msgr_bus_signal_stop() in any process
 * (or timeout_ns passes, < 0: no limit: MSGR_ETIMEDOUT), then stops this process's workers
 * (draining what they hold) and returns 0: the main loop of a process that only runs workers.
 * Errors: MSGR_EINVAL, MSGR_ETIMEDOUT. */
MSGR_API int msgr_bus_join(msgr_bus *b, int64_t timeout_ns);

/* Tells every process joined on the bus (msgr_bus_join) to stop; returns at once. Any thread,
 * any process, a handler included. Errors: MSGR_EINVAL. */
MSGR_API int msgr_bus_signal_stop(msgr_bus *b);

/* Creates the bus (anonymous by default), or attaches to an existing named or file bus of the
 * same application. Attaching checks the application name, the workers and each message's
 * fingerprint: a binary built from different definitions gets MSGR_ESCHEMA, not misread memory
 * (messages present on only one side are allowed, so adding a message type is compatible).
 * Errors: MSGR_EINVAL (bad opts, unknown worker in run), MSGR_ESCHEMA, MSGR_EBUSY (a worker in
 * `run` already runs in another live process), region and ring errors. */
MSGR_API int msgr_bus_open(const msgr_app *app, const msgr_bus_opts *opts, msgr_bus **out);

/* Starts one thread per worker this process runs (those in opts.run), except workers the
 * application drives itself with msgr_bus_poll(). Errors: MSGR_ESTATE (already started),
 * MSGR_ENOMEM. */
MSGR_API int msgr_bus_start(msgr_bus *b);

typedef struct msgr_stop_report {
    uint64_t drained;   /* messages handled between the stop request and the stop (ABANDON:
                           at most the one in hand, per worker) */
    uint64_t abandoned; /* messages left unhandled and discarded from local inboxes */
} msgr_stop_report;

/* Stops this process's workers and joins their threads. DRAIN handles what is queued and what
 * it causes, until every local inbox is empty and no handler runs; if that has not happened
 * within timeout_ns (< 0: no limit), the rest is abandoned. Either way the report says how many
 * messages were drained and abandoned. Errors: MSGR_EINVAL, MSGR_ESTATE (not started). */
MSGR_API int msgr_bus_stop(msgr_bus *b, msgr_stop_mode mode, int64_t timeout_ns,
                           msgr_stop_report *rep);

/* Stops (abandoning, if still running), unmaps and frees. NULL is accepted. Named shared
 * memory stays until msgr_region_unlink_shm(); files stay. */
MSGR_API void msgr_bus_close(msgr_bus *b);

/* A context for sending as `worker` from a thread that is not that worker's thread (the main
 * or UI thread). Owned by the bus; one thread at a time may use a given worker's context.
 * Errors: MSGR_EINVAL (unknown worker). */
MSGR_API int msgr_bus_ctx(msgr_bus *b, uint32_t worker, msgr_ctx **out);

/* Drives a worker from a loop the application owns: dispatches up to `max` queued messages of
 * `worker` in the calling thread and returns how many (0 when its inbox is empty). The worker
 * must run in this process and must not also run on a thread (list it in run, don't start it:
 * msgr_bus_start() skips workers that were polled before it). Errors: MSGR_EINVAL, MSGR_ESTATE. */
MSGR_API int msgr_bus_poll(msgr_bus *b, uint32_t worker, unsigned max);

/* As msgr_bus_poll, but first waits up to timeout_ns (< 0: no limit) for a message to arrive.
 * Returns how many were dispatched (0 on timeout). */
MSGR_API int msgr_bus_poll_wait(msgr_bus *b, uint32_t worker, unsigned max, int64_t timeout_ns);

/* A descriptor (Linux eventfd, a pipe on other POSIX systems, an event HANDLE on Windows) that
 * becomes readable when the inbox of `worker` (one this process drives: opts.drive) has
 * messages, for epoll, poll, libuv or a GUI loop; then call msgr_bus_poll(), which clears it.
 * Use: poll until it returns 0, then wait for the descriptor. Costs no system call per message
 * while the worker is busy (a helper thread of this process waits only once a poll found the
 * inbox empty); wakes on sends from any process. Memory and file buses; with manual_ack it
 * also waits for room in a full window. Owned by the bus (closed with it); the same descriptor
 * on every call. Errors: MSGR_ESTATE (not a driven worker), MSGR_EINVAL, MSGR_ENOMEM. */
MSGR_API int msgr_bus_fd(msgr_bus *b, uint32_t worker, intptr_t *fd);

/* How often the descriptor of `worker` cost system calls: *arms, polls that found the inbox
 * empty and handed the waiting to the helper; *signals, times it was made readable.
 * MSGR_EINVAL if msgr_bus_fd() was never called for it. */
MSGR_API int msgr_bus_fd_stats(msgr_bus *b, uint32_t worker, uint64_t *arms, uint64_t *signals);

/* Attaches application state to a worker; its handlers get it back with msgr_ctx_user().
 * Process-local; set it before msgr_bus_start(). Errors: MSGR_EINVAL. */
MSGR_API int msgr_bus_set_user(msgr_bus *b, uint32_t worker, void *user);
MSGR_API void *msgr_ctx_user(const msgr_ctx *ctx);

/* Per-worker counters, kept in the bus's shared memory so every process sees them. */
typedef struct msgr_counters {
    /* as a receiver */
    uint64_t received;    /* messages handed to its handlers */
    uint64_t unhandled;   /* messages it got that it has no handler for (counted, not ignored) */
    uint64_t rejected;    /* messages it could not read: wrong length, failed decode */
    uint64_t dropped;     /* messages discarded from its inbox by a stop with ABANDON */
    uint64_t queued;      /* messages waiting in its inbox now (its queue depth) */
    uint64_t queued_bytes;/* bytes they take, with record headers */
    /* as a sender */
    uint64_t sent;        /* messages it delivered to an inbox (fan-out counts each copy) */
    uint64_t unrouted;    /* sends refused: no route from this worker for that message */
    uint64_t send_errors; /* sends that failed: inbox full past the timeout, codec errors */
    uint64_t to_absent;   /* messages it queued for a worker not running anywhere (kept) */
    uint32_t running;     /* 1 while a live process runs it (open, and not stopped) */
    int32_t pid;          /* that process */
} msgr_counters;

/* Reads worker `worker`'s counters. Errors: MSGR_EINVAL. Thread-safe (a racy snapshot: a
 * message is counted after its handler returns, so what the handler sent can arrive first;
 * after msgr_bus_stop the counters are final). */
MSGR_API int msgr_bus_counters(msgr_bus *b, uint32_t worker, msgr_counters *out);

/* A bus read from outside, without its application's definitions (msgr stat, msgr top). */
typedef struct msgr_bus_info {
    char app[48];            /* the application's name */
    uint32_t kind;           /* MSGR_REGION_SHM or MSGR_REGION_FILE */
    uint32_t n_workers;      /* workers in the bus (msgr_bus_inspect fills at most max) */
    uint32_t n_messages;
    uint64_t inbox_capacity; /* the default inbox capacity */
} msgr_bus_info;

typedef struct msgr_bus_worker_info {
    char name[48];
    msgr_counters c;         /* as msgr_bus_counters() gives them; c.running says alive */
    uint64_t inbox_capacity;
} msgr_bus_worker_info;

/* Reads the shm or file bus `name` (kind MSGR_REGION_SHM or MSGR_REGION_FILE; kind 0: a
 * registered name) from outside: its header and up to max workers' counters, queue depths
 * and processes. Read only; the bus is validated as an attach would (a corrupt one is
 * MSGR_ECORRUPT, not misread). Errors: MSGR_ENOENT, MSGR_ENOTMSGR (not a bus), MSGR_EVERSION,
 * MSGR_ECORRUPT, MSGR_EINVAL. */
MSGR_API int msgr_bus_inspect(uint32_t kind, const char *name, msgr_bus_info *info,
                              msgr_bus_worker_info *workers, uint32_t max);


/* The region the bus lives in (for inspection). */
MSGR_API msgr_region *msgr_bus_region(msgr_bus *b);

/* ---- sending (used by the generated typed senders; handlers call those) ---- */

/* Sends `len` bytes as message `id` from ctx's worker to worker `dest`'s inbox, with no routing
 * (the generated typed senders, e.g. pingpong_send_Ping, resolve routes at compile time and
 * call this once per destination; use those). Returns 0; MSGR_ETIMEDOUT when the inbox stayed
 * full past the bus's send timeout; MSGR_EMSGSIZE; MSGR_EINVAL. A destination not running
 * anywhere still gets the message in its inbox, and the sender's `to_absent` counts it.
 * Thread-safety: see msgr_bus_ctx. */
MSGR_API int msgr_send_to(msgr_ctx *ctx, uint32_t dest, uint16_t id, const void *data, size_t len);

/* A zero-copy send in progress: claim space in the destination inbox, write the message in
 * place, commit. */
typedef struct msgr_out {
    void *data;
    uint32_t dest;
    uint16_t id;
    uint16_t pad_;
    msgr_claim claim_;
} msgr_out;

/* Claims `len` bytes in `dest`'s inbox for message `id`. Errors as msgr_send_to. */
MSGR_API int msgr_claim_to(msgr_ctx *ctx, uint32_t dest, uint16_t id, size_t len, msgr_out *out);

/* As msgr_claim_to, for a message that may fan out: when (this worker, id) is a broadcast
 * fan-out (MSGR_APP_BROADCASTS) on a memory bus, the space is claimed in its ring, written once
 * for every destination; publish with msgr_commit or msgr_commit_all. The typed claims use it. */
MSGR_API int msgr_claim_first(msgr_ctx *ctx, uint32_t dest, uint16_t id, size_t len,
                              msgr_out *out);

/* Publishes a claimed message. Errors: MSGR_EINVAL. */
MSGR_API int msgr_commit(msgr_ctx *ctx, msgr_out *out);

/* Gives a claimed message up (it is skipped, never delivered). */
MSGR_API int msgr_abandon(msgr_ctx *ctx, msgr_out *out);

/* Sends a serialized message: asks the codec for the size, claims it, encodes in place and
 * checks that the encoder wrote exactly that many bytes (MSGR_ECODEC otherwise; the claim is
 * abandoned). `encode` returns bytes written or a negative code. */
typedef size_t (*msgr_size_fn)(const void *msg);
typedef int (*msgr_encode_fn)(const void *msg, void *buf, size_t cap);
MSGR_API int msgr_send_encoded_to(msgr_ctx *ctx, uint32_t dest, uint16_t id, const void *msg,
                                  msgr_size_fn size, msgr_encode_fn encode);

/* Fan-out, all or nothing (used by the generated typed senders for a message routed to several
 * workers): claims space in every destination's inbox first (each waiting as msgr_send_to
 * does), and only once all are claimed fills and publishes them; if a claim fails, the claims
 * already made are given up and no destination gets the message. `data`, `len` as msgr_send_to;
 * for a serialized message pass len 0 and `size`/`encode` (data is the message they take).
 * Returns 0 (every destination got it) or the first error (then none did). */
MSGR_API int msgr_send_all_to(msgr_ctx *ctx, const uint32_t *dests, uint32_t n, uint16_t id,
                              const void *data, size_t len, msgr_size_fn size,
                              msgr_encode_fn encode);

/* Publishes a claimed message (msgr_claim_to) and copies of it to `n` more destinations, all
 * or nothing as msgr_send_all_to. Returns 0 or the first error (the claim is then given up). */
MSGR_API int msgr_commit_all(msgr_ctx *ctx, msgr_out *out, const uint32_t *others, uint32_t n);

/* The sequence number of the message being handled (file buses: its position in the inbox's
 * log, increasing in delivery order; memory buses: 0). For msgr_ack(). */
MSGR_API uint64_t msgr_ctx_seq(const msgr_ctx *ctx);

/* Acknowledges message `seq` of ctx's worker, one of its manual_ack workers (msgr_bus_opts):
 * any thread, any order, once each; the inbox's position moves past the longest acknowledged
 * prefix, and after a restart exactly the unacknowledged messages come back, in order.
 * Messages the worker has no handler for, or could not read, are acknowledged by the runtime.
 * Errors: MSGR_ESTATE (not a manual_ack worker), MSGR_EINVAL (not handed out, or acknowledged
 * already), MSGR_EIO. */
MSGR_API int msgr_ack(msgr_ctx *ctx, uint64_t seq);

/* Registers fn(arg) to run first thing in msgr_bus_close(), before anything of the bus is
 * stopped or freed: for code that holds callbacks into the bus from threads of its own (the
 * NATS bridge disconnects there). One per bus; fn NULL removes it. Errors: MSGR_EINVAL. */
MSGR_API int msgr_bus_on_close(msgr_bus *b, void (*fn)(void *arg), void *arg);

/* 1 if ctx's worker acknowledges its messages itself (a manual_ack worker run by this
 * process), 0 if the runtime does; MSGR_EINVAL for NULL. Any thread. */
MSGR_API int msgr_ctx_manual_ack(const msgr_ctx *ctx);

/* The worker a context sends as, and the bus it belongs to. */
MSGR_API uint32_t msgr_ctx_worker(const msgr_ctx *ctx);
MSGR_API msgr_bus *msgr_ctx_bus(const msgr_ctx *ctx);

/* Records that `self` got a message it has no route for (used by generated dispatch). */
MSGR_API void msgr__count_unrouted(msgr_ctx *ctx);

/* Fingerprint helpers for the generator: FNV-1a over names, sizes and offsets. */
MSGR_API uint64_t msgr_fp_str(uint64_t h, const char *s);
MSGR_API uint64_t msgr_fp_u64(uint64_t h, uint64_t v);

#ifdef __cplusplus
}
#endif
#endif
