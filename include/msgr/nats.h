/* messenger: a bridge to NATS, for routes that leave the machine (libmessenger-nats, built only
 * when libnats is installed; the core library does not depend on it).
 *
 * The bridge is a worker of the application, named in the definition like any other: routes to
 * it are published, and messages arriving on the subjects it subscribes to are delivered into
 * local inboxes as the bridge worker's sends, so handlers cannot tell them from local ones.
 *
 *   outbound  a message a local worker sends to the bridge is published to "<prefix>.<name>"
 *             (prefix: the application's name unless set), its bytes as they lie in the
 *             inbox (a struct's bytes, or a codec's), with one NATS header, "Msgr":
 *             "1 <wire id> <fingerprint, 16 hex digits> <sequence number> <byte order>
 *             <node> <sending worker>" (1: this format; byte order "le": structs are
 *             little-endian, and a receiver on another byte order refuses them). One header,
 *             not six: libnats builds a map per header, which cost most of the publish.
 *   inbound   the bridge subscribes to "<prefix>.>"; a message whose wire id maps to a local
 *             destination (msgr_nats_route_in) and whose fingerprint equals the local one is
 *             sent to it; any other is refused and counted (rejected), never misread.
 *             Messages from this bridge's own node are skipped.
 *
 * Modes: MSGR_NATS_CORE, at most once (what the server or a broken connection drops is
 * counted as lost); MSGR_NATS_JETSTREAM, at least once: on a file bus whose bridge worker is a
 * manual_ack worker, a message is acknowledged in the local log only once JetStream has
 * acknowledged its publish (Nats-Msg-Id "<node>-<seq>" lets the server drop a republished
 * duplicate), and an arriving message is acknowledged to the server only once it is
 * committed in the local inbox.
 *
 * The bridge worker's user pointer (msgr_bus_set_user) is the bridge's own. Thread-safety:
 * open/attach/close from one thread; stats from any.
 */
#ifndef MSGR_NATS_H
#define MSGR_NATS_H

#include "export.h"
#include "runtime.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MSGR_NATS_CORE 0u
#define MSGR_NATS_JETSTREAM 1u

typedef struct msgr_nats_opts {
    uint32_t size_of;           /* sizeof(msgr_nats_opts), or 0 */
    uint32_t mode;              /* MSGR_NATS_CORE or MSGR_NATS_JETSTREAM */
    const char *url;            /* the server, e.g. "nats://127.0.0.1:4222" (required) */
    const char *prefix;         /* subject prefix; NULL: the application's name */
    const char *node;           /* this bridge's name; NULL: "<prefix>-<pid>" */
    const char *stream;         /* JetStream: the stream over "<prefix>.>" (made if missing);
                                   NULL: the prefix in capitals */
    const char *durable;        /* JetStream: the durable consumer; NULL: the node's name */
    const char *creds_file;     /* passed to libnats (natsOptions_SetUserCredentialsFromFiles) */
    const char *ca_file;        /* TLS: passed to libnats (natsOptions_LoadCATrustedCertificates) */
    int32_t tls;                /* 1: require TLS (natsOptions_SetSecure) */
    int32_t send_asap;          /* 1: each publish is written at once (natsOptions_SetSendAsap):
                                   lowest round trip, less throughput; 0: libnats buffers */
    int64_t connect_timeout_ns; /* 0: 2 s */
} msgr_nats_opts;

typedef struct msgr_nats msgr_nats;

/* Counters, for msgr_nats_stats. */
typedef struct msgr_nats_stats {
    uint64_t published;  /* messages handed to libnats */
    uint64_t acked;      /* JetStream: publishes the server acknowledged */
    uint64_t delivered;  /* arriving messages delivered into a local inbox */
    uint64_t rejected;   /* arriving messages refused: unknown wire id, other fingerprint or
                            byte order, no local destination, wrong length */
    uint64_t lost;       /* core mode: messages a publish could not hand over, and slow-consumer
                            events (arriving messages libnats dropped) */
    uint64_t oversize;   /* messages over the server's max payload (not published) */
    uint64_t errors;     /* other failures (a failed JetStream publish, a failed delivery) */
    uint64_t reconnects; /* times the connection came back */
    uint64_t retries;    /* JetStream: publishes tried again while the server was away */
} msgr_nats_stats;

/* Makes a bridge for `app` run as worker `bridge`: *app_out is the application to open the bus
 * with (the same one, with the bridge worker's dispatch replaced by the publisher; valid until
 * msgr_nats_close). Nothing connects yet. Errors: MSGR_EINVAL (no such worker, bad options),
 * MSGR_ENOMEM. */
MSGR_API int msgr_nats_open(const msgr_app *app, const char *bridge, const msgr_nats_opts *o,
                            msgr_nats **out, const msgr_app **app_out);

/* Delivers arriving `message` (by name) to local worker `dest`. Before attach. Errors:
 * MSGR_EINVAL (unknown message or worker), MSGR_ENOSPC. */
MSGR_API int msgr_nats_route_in(msgr_nats *n, const char *message, const char *dest);

/* Connects to the server and subscribes, for the bus opened with *app_out (it must run the
 * bridge worker; start the bus after this). Errors: MSGR_ECONNREFUSED (no server: the detail
 * says which URL), MSGR_EACCES (credentials or TLS refused, with libnats's reason), MSGR_EIO. */
MSGR_API int msgr_nats_attach(msgr_nats *n, msgr_bus *bus);

/* A snapshot of the counters. */
MSGR_API void msgr_nats_stats_get(const msgr_nats *n, msgr_nats_stats *out);

/* Waits up to timeout_ns for JetStream publishes in flight to be acknowledged. 0 or
 * MSGR_ETIMEDOUT. */
MSGR_API int msgr_nats_flush(msgr_nats *n, int64_t timeout_ns);

/* Frees the bridge; close the bus first (the bus uses the application this returned). Closing
 * the bus disconnects the bridge before anything of the bus is freed: a libnats callback still
 * running is waited for, later ones leave their message unacknowledged for the next run, and a
 * JetStream publish waiting for an absent server gives up. NULL accepted. */
MSGR_API void msgr_nats_close(msgr_nats *n);

#ifdef __cplusplus
}
#endif
#endif
