/* messenger: the bridge to NATS (include/msgr/nats.h says what it does and promises).
 *
 * Threads: the bridge worker's handler (the runtime's thread for that worker, or the
 * application's loop) publishes; libnats's delivery thread for the one wildcard subscription
 * delivers arriving messages into local inboxes as the bridge worker (the only thread that
 * sends as it, so its send counters keep one writer); libnats's JetStream thread runs the
 * publish acknowledgements, which acknowledge in the local log (msgr_ack: any thread).
 *
 * Everything in an arriving message comes from another machine: its headers are parsed with
 * their lengths bounded, its wire id looked up, its fingerprint, byte order and length checked
 * against the local definition before a byte of it is delivered.
 */
#define _GNU_SOURCE
#include "msgr/nats.h"
#include "msgr/error.h"
#include "os/error_detail.h"
#include "os/os.h"

#include <nats/nats.h>
#include <pthread.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct msgr_nats {
    msgr_app app;                /* the application with the bridge's dispatch */
    msgr_dispatch_fn *dispatch;  /* its dispatch table */
    const msgr_app *orig;
    uint32_t bridge;             /* the bridge worker's id */
    uint32_t mode;
    char prefix[64], node[96], stream[64], durable[96], url[256];
    char creds[512], ca[512];
    int tls, send_asap;
    int64_t connect_timeout_ns;
    uint32_t *dest;              /* per message index: the local destination, or UINT32_MAX */
    uint64_t *fp;                /* per message index: its fingerprint (computed once) */
    char (*subj)[160];           /* per message index: the subject it is published to */
    msgr_bus *bus;
    msgr_ctx *ctx;
    int manual;                  /* the bridge worker acknowledges by hand (file bus) */
    natsOptions *no;
    natsConnection *nc;
    natsSubscription *sub;
    jsCtx *js;
    jsPubOptions po;             /* JetStream publishes: an answer awaited at most 2 s */
    _Atomic uint64_t seq;        /* memory buses: the sequence numbers */
    _Atomic uint64_t published, acked, delivered, rejected, lost, oversize, errors, reconnects;
    _Atomic uint64_t retries;
    _Atomic int closing;         /* close has begun: a publish waiting for the server gives up */
    _Atomic int active;          /* callbacks and publishes using the bus now (see enter()) */
    /* JetStream publishes whose answer failed or timed out, published again by their own
     * thread: from inside libnats's answer callback a publish could wait for answers that
     * only that very thread would process. */
    natsMsg **redo;
    uint32_t redo_n, redo_cap;
    pthread_mutex_t redo_mu;
    pthread_cond_t redo_cv;
    msgr_os_thread redo_th;
    int redo_started;
};

static void add(_Atomic uint64_t *c) { atomic_fetch_add_explicit(c, 1, memory_order_relaxed); }

/* libnats may run a message or publish-answer callback after the connection is closed, and
 * the bridge worker may be inside a publish: each of them enters before it touches the bus or
 * the connection and leaves after. seq_cst on both words: either close's wait sees the count
 * raised, or the entrant sees `closing` and backs out; msgr_nats_close() sets closing, then
 * waits for the count to reach 0, so nothing uses the bus or the connection once it is past. */
static int enter(msgr_nats *n)
{
    atomic_fetch_add(&n->active, 1);
    if (!atomic_load(&n->closing))
        return 1;
    atomic_fetch_sub(&n->active, 1);
    return 0;
}

static void leave(msgr_nats *n) { atomic_fetch_sub(&n->active, 1); }

static void detach(void *arg);

static int msg_index(const msgr_app *app, uint32_t id)
{
    for (uint32_t i = 0; i < app->n_messages; i++)
        if (app->messages[i].id == id)
            return (int)i;
    return -1;
}

static int nats_code(natsStatus s)
{
    switch (s) {
    case NATS_OK: return 0;
    case NATS_NO_SERVER: case NATS_CONNECTION_CLOSED: case NATS_CONNECTION_DISCONNECTED:
        return MSGR_ECONNREFUSED;
    case NATS_NOT_PERMITTED: case NATS_SSL_ERROR: case NATS_CONNECTION_AUTH_FAILED:
        return MSGR_EACCES;
    case NATS_MAX_PAYLOAD: return MSGR_EMSGSIZE;
    case NATS_TIMEOUT: return MSGR_ETIMEDOUT;
    case NATS_NO_MEMORY: return MSGR_ENOMEM;
    default: return MSGR_EIO;
    }
}

/* ---- outbound: the bridge worker's dispatch ---- */

/* One header, "Msgr", carries everything, in one value (one header is much cheaper in libnats
 * than six): "1 <wire id> <fingerprint, 16 hex> <seq> <byte order> <node> <from>". */
static natsStatus set_headers(msgr_nats *n, natsMsg *m, uint32_t src, int k, uint64_t seq)
{
    char v[256];
    uint64_t fp = n->fp[k];
    const char *from = src < n->orig->n_workers ? n->orig->worker_names[src] : "?";
    snprintf(v, sizeof v, "1 %u %016" PRIx64 " %" PRIu64 " le %s %s",
             (unsigned)n->orig->messages[k].id, fp, seq, n->node, from);
    natsStatus s = natsMsgHeader_Set(m, "Msgr", v);
    if (s == NATS_OK && n->mode == MSGR_NATS_JETSTREAM) { /* the server drops a duplicate */
        char id[160];
        snprintf(id, sizeof id, "%s-%" PRIu64, n->node, seq);
        s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    }
    return s;
}

/* One space-separated field of v at *at: its length (1..max), or 0 if absent or longer. */
static size_t field(const char *v, size_t *at, size_t max)
{
    size_t b = *at, e = b;
    while (v[e] && v[e] != ' ')
        e++;
    if (e == b || e - b > max || (v[e] == ' ' && !v[e + 1]))
        return 0;
    *at = v[e] ? e + 1 : e;
    return e - b;
}

/* An unsigned number of `len` digits in base 10 or 16 at p (at most 64 bits): 0, or -1. */
static int number(const char *p, size_t len, unsigned base, uint64_t *out)
{
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = isdigit((unsigned char)p[i]) ? (unsigned)(p[i] - '0')
                     : base == 16 && isxdigit((unsigned char)p[i])
                         ? (unsigned)(tolower((unsigned char)p[i]) - 'a' + 10)
                         : 99;
        if (d >= base || x > (UINT64_MAX - d) / base)
            return -1;
        x = x * base + d;
    }
    *out = x;
    return 0;
}

/* Parses the "Msgr" header's value, "1 <id> <fp: 16 hex> <seq> <order: 2> <node> <from>", by
 * hand (sscanf was a visible part of each arriving message's cost): 0, or -1 if it is not
 * one. Every field is bounded; the node is copied into node (node_cap bytes). */
static int parse_header(const char *v, unsigned *id, uint64_t *fp, uint64_t *seq, char *order,
                        char *node, size_t node_cap)
{
    size_t at = 0, len, start;
    uint64_t x;
    if (!v || strnlen(v, 241) > 240)
        return -1;
    if ((len = field(v, &at, 1)) != 1 || v[0] != '1')
        return -1;
    start = at;
    if (!(len = field(v, &at, 5)) || number(v + start, len, 10, &x) || x > 65535)
        return -1;
    *id = (unsigned)x;
    start = at;
    if ((len = field(v, &at, 16)) != 16 || number(v + start, len, 16, fp))
        return -1;
    start = at;
    if (!(len = field(v, &at, 20)) || number(v + start, len, 10, seq))
        return -1;
    start = at;
    if ((len = field(v, &at, 2)) != 2)
        return -1;
    memcpy(order, v + start, 2);
    order[2] = 0;
    start = at;
    if (!(len = field(v, &at, 96)) || len >= node_cap)
        return -1;
    memcpy(node, v + start, len);
    node[len] = 0;
    start = at;
    if (!(len = field(v, &at, 63)) || v[at]) /* the sender's name, and nothing after it */
        return -1;
    return 0;
}

static int publish_in(msgr_nats *n, msgr_ctx *ctx, uint32_t src, uint32_t id, const void *data,
                      uint32_t len);

static int publish(msgr_ctx *ctx, uint32_t src, uint32_t id, const void *data, uint32_t len)
{
    msgr_nats *n = msgr_ctx_user(ctx); /* the bridge worker's user pointer is the bridge */
    if (!n || !n->nc || !enter(n))
        return MSGR_ESTATE;
    int rc = publish_in(n, ctx, src, id, data, len);
    leave(n);
    return rc;
}

static int publish_in(msgr_nats *n, msgr_ctx *ctx, uint32_t src, uint32_t id, const void *data,
                      uint32_t len)
{
    int k = msg_index(n->orig, id);
    if (k < 0)
        return MSGR_ENOROUTE;
    uint64_t seq = n->manual ? msgr_ctx_seq(ctx) : atomic_fetch_add(&n->seq, 1) + 1;
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, n->subj[k], NULL, data, (int)len);
    if (s == NATS_OK)
        s = set_headers(n, m, src, k, seq);
    if (s == NATS_OK && n->mode == MSGR_NATS_JETSTREAM) {
        /* At least once: while the server cannot take it (away, or too many in flight), the
         * bridge waits here, and its inbox holds what comes after. Polling: libnats says
         * nothing when the server comes back to a publisher. */
        while ((s = js_PublishMsgAsync(n->js, &m, &n->po)) != NATS_OK && s != NATS_MAX_PAYLOAD &&
               !atomic_load_explicit(&n->closing, memory_order_relaxed)) {
            add(&n->retries);
            msgr_os_sleep_ns(20000000);
        }
    } else if (s == NATS_OK) {
        s = natsConnection_PublishMsg(n->nc, m);
    }
    natsMsg_Destroy(m);
    if (s == NATS_OK) {
        add(&n->published);
        if (n->manual && n->mode == MSGR_NATS_CORE)
            msgr_ack(ctx, seq); /* at most once: handed over is done */
        return 0;
    }
    if (s == NATS_MAX_PAYLOAD) {
        add(&n->oversize); /* can never be published: counted, and not kept for ever */
    } else if (n->mode == MSGR_NATS_CORE) {
        add(&n->lost);
    } else {
        add(&n->errors); /* not acknowledged: it comes back after a restart */
        return 0;
    }
    if (n->manual)
        msgr_ack(ctx, seq);
    return 0;
}

/* JetStream's answer to a publish: acknowledged in the local log, or published again. */
static void on_pub_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    msgr_nats *n = closure;
    if (!enter(n)) { /* closing: unacknowledged in the log, so published again next run */
        natsMsg_Destroy(m);
        return;
    }
    if (pa) {
        add(&n->acked);
        const char *v = NULL;
        unsigned id;
        uint64_t fp, seq;
        char order[3], node[97];
        if (n->manual && natsMsgHeader_Get(m, "Msgr", &v) == NATS_OK &&
            parse_header(v, &id, &fp, &seq, order, node, sizeof node) == 0)
            msgr_ack(n->ctx, seq);
    } else if (pae) {
        add(&n->errors);
        /* Again, later: a publish whose answer timed out (the server went away with it) or
         * failed; the server drops a duplicate by its Nats-Msg-Id. */
        pthread_mutex_lock(&n->redo_mu);
        if (n->redo_n == n->redo_cap) {
            uint32_t cap = n->redo_cap ? 2 * n->redo_cap : 1024;
            natsMsg **g = realloc(n->redo, sizeof *g * cap);
            if (g) {
                n->redo = g;
                n->redo_cap = cap;
            }
        }
        if (n->redo_n < n->redo_cap) {
            n->redo[n->redo_n++] = m;
            m = NULL; /* the redo thread's now */
            pthread_cond_signal(&n->redo_cv);
        }
        pthread_mutex_unlock(&n->redo_mu);
    }
    (void)js;
    natsMsg_Destroy(m);
    leave(n);
}

/* The redo thread: publishes again what on_pub_ack queued, waiting while the server is away.
 * Sleeps on redo_cv (signalled by on_pub_ack and by close, both under redo_mu). */
static void *redo_main(void *arg)
{
    msgr_nats *n = arg;
    pthread_mutex_lock(&n->redo_mu);
    while (!atomic_load(&n->closing)) {
        if (n->redo_n == 0) {
            pthread_cond_wait(&n->redo_cv, &n->redo_mu);
            continue;
        }
        natsMsg *m = n->redo[--n->redo_n];
        pthread_mutex_unlock(&n->redo_mu);
        while (js_PublishMsgAsync(n->js, &m, &n->po) != NATS_OK && !atomic_load(&n->closing)) {
            add(&n->retries);
            msgr_os_sleep_ns(20000000); /* the server is away: libnats does not say when back */
        }
        natsMsg_Destroy(m);
        pthread_mutex_lock(&n->redo_mu);
    }
    pthread_mutex_unlock(&n->redo_mu);
    return NULL;
}

/* ---- inbound ---- */

/* Why an arriving message is refused, or NULL: it is Msgr-Id wire id `*k` for us. */
/* Why an arriving message is refused ("" for our own), or NULL: it is message index *k. */
static const char *check_in(msgr_nats *n, natsMsg *m, int *k)
{
    const char *v = NULL;
    unsigned id;
    uint64_t fp, seq;
    char order[3], node[97];
    if (natsMsgHeader_Get(m, "Msgr", &v) != NATS_OK ||
        parse_header(v, &id, &fp, &seq, order, node, sizeof node))
        return "no messenger header";
    if (!strcmp(node, n->node))
        return ""; /* our own publish: not for us */
    if (strcmp(order, "le"))
        return "another byte order";
    if (id == 0 || id > 65535 || (*k = msg_index(n->orig, id)) < 0)
        return "unknown wire id";
    const msgr_app_msg *am = &n->orig->messages[*k];
    if (fp != n->fp[*k])
        return "another fingerprint";
    if (n->dest[*k] == UINT32_MAX)
        return "no local destination";
    if (!am->serialized && (uint32_t)natsMsg_GetDataLength(m) != am->size)
        return "wrong length";
    return NULL;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc, (void)sub;
    msgr_nats *n = closure;
    if (!enter(n)) { /* closing: not acknowledged, so JetStream delivers it again next run */
        natsMsg_Destroy(m);
        return;
    }
    int k = -1;
    const char *why = check_in(n, m, &k);
    int ok = 0;
    if (why && !*why) {
        ok = 1; /* our own: nothing to do */
    } else if (why) {
        add(&n->rejected);
        ok = 1; /* refused for good: acknowledged, so JetStream does not send it again */
    } else {
        int rc = msgr_send_to(n->ctx, n->dest[k], n->orig->messages[k].id, natsMsg_GetData(m),
                              (size_t)natsMsg_GetDataLength(m));
        if (rc == 0) {
            add(&n->delivered);
            ok = 1;
        } else {
            add(&n->errors); /* not acknowledged: JetStream sends it again */
        }
    }
    if (ok && n->mode == MSGR_NATS_JETSTREAM)
        natsMsg_Ack(m, NULL);
    natsMsg_Destroy(m);
    leave(n);
}

/* libnats's asynchronous errors: a slow consumer (messages this bridge could not take in
 * time, dropped by libnats) counts as lost in core mode; JetStream sends them again. */
static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc, (void)sub;
    msgr_nats *n = closure;
    if (err == NATS_SLOW_CONSUMER && n->mode == MSGR_NATS_CORE)
        add(&n->lost);
    else
        add(&n->errors);
}

static void on_reconnect(natsConnection *nc, void *closure)
{
    (void)nc;
    add(&((msgr_nats *)closure)->reconnects);
}

/* ---- the calls ---- */

int msgr_nats_open(const msgr_app *app, const char *bridge, const msgr_nats_opts *o,
                   msgr_nats **out, const msgr_app **app_out)
{
    if (!app || !bridge || !o || !o->url || !out || !app_out ||
        (o->size_of && o->size_of < sizeof *o) || o->mode > MSGR_NATS_JETSTREAM)
        return MSGR_EINVAL;
    int b = msgr_bus_worker_id(app, bridge);
    if (b < 0)
        return msgr__fail(MSGR_EINVAL, "application '%s' has no worker '%s' for the bridge",
                          app->name, bridge);
    msgr_nats *n = calloc(1, sizeof *n);
    if (!n)
        return MSGR_ENOMEM;
    n->orig = app;
    n->bridge = (uint32_t)b;
    pthread_mutex_init(&n->redo_mu, NULL);
    pthread_cond_init(&n->redo_cv, NULL);
    n->mode = o->mode;
    n->tls = o->tls;
    n->send_asap = o->send_asap;
    n->connect_timeout_ns = o->connect_timeout_ns ? o->connect_timeout_ns : 2000000000ll;
    snprintf(n->prefix, sizeof n->prefix, "%s", o->prefix ? o->prefix : app->name);
    if (o->node)
        snprintf(n->node, sizeof n->node, "%s", o->node);
    else
        snprintf(n->node, sizeof n->node, "%s-%d", n->prefix, (int)msgr_os_pid());
    if (o->stream)
        snprintf(n->stream, sizeof n->stream, "%s", o->stream);
    else
        for (size_t i = 0; n->prefix[i] && i < sizeof n->stream - 1; i++)
            n->stream[i] = (char)toupper((unsigned char)n->prefix[i]);
    snprintf(n->durable, sizeof n->durable, "%s", o->durable ? o->durable : n->node);
    snprintf(n->url, sizeof n->url, "%s", o->url);
    snprintf(n->creds, sizeof n->creds, "%s", o->creds_file ? o->creds_file : "");
    snprintf(n->ca, sizeof n->ca, "%s", o->ca_file ? o->ca_file : "");
    n->dispatch = calloc(app->n_workers, sizeof *n->dispatch);
    size_t nm = app->n_messages ? app->n_messages : 1;
    n->dest = malloc(sizeof *n->dest * nm);
    n->fp = malloc(sizeof *n->fp * nm);
    n->subj = malloc(sizeof *n->subj * nm);
    if (!n->dispatch || !n->dest || !n->fp || !n->subj) {
        msgr_nats_close(n);
        return MSGR_ENOMEM;
    }
    for (uint32_t i = 0; i < app->n_messages; i++) {
        n->dest[i] = UINT32_MAX;
        n->fp[i] = app->messages[i].fingerprint ? app->messages[i].fingerprint() : 0;
        snprintf(n->subj[i], sizeof n->subj[i], "%s.%s", n->prefix, app->messages[i].name);
    }
    memcpy(n->dispatch, app->dispatch, sizeof *n->dispatch * app->n_workers);
    n->dispatch[b] = publish;
    n->app = *app;
    n->app.dispatch = n->dispatch;
    *out = n;
    *app_out = &n->app;
    return 0;
}

int msgr_nats_route_in(msgr_nats *n, const char *message, const char *dest)
{
    if (!n || !message || !dest || n->nc)
        return MSGR_EINVAL;
    int d = msgr_bus_worker_id(n->orig, dest);
    for (uint32_t i = 0; d >= 0 && i < n->orig->n_messages; i++)
        if (!strcmp(n->orig->messages[i].name, message)) {
            n->dest[i] = (uint32_t)d;
            return 0;
        }
    return msgr__fail(MSGR_EINVAL, "route in: no message '%s' or worker '%s'", message, dest);
}

static int fail_nats(msgr_nats *n, natsStatus s, const char *what)
{
    const char *why = nats_GetLastError(NULL);
    return msgr__fail(nats_code(s), "NATS %s at %s: %s (%s)", what, n->url,
                      natsStatus_GetText(s), why && *why ? why : "no more detail");
}

int msgr_nats_attach(msgr_nats *n, msgr_bus *bus)
{
    if (!n || !bus || n->nc)
        return MSGR_EINVAL;
    n->bus = bus;
    msgr_bus_ctx(bus, n->bridge, &n->ctx);
    msgr_bus_set_user(bus, n->bridge, n);
    msgr_bus_on_close(bus, detach, n); /* the bus's close disconnects us first */
    /* A bridge worker that acknowledges by hand (a file bus) gets at least once end to end. */
    n->manual = msgr_ctx_manual_ack(n->ctx) == 1;
    natsStatus s = natsOptions_Create(&n->no);
    if (s == NATS_OK)
        s = natsOptions_SetURL(n->no, n->url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(n->no, n->connect_timeout_ns / 1000000);
    if (s == NATS_OK) /* reconnect for ever, backing off from 100 ms */
        s = natsOptions_SetMaxReconnect(n->no, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(n->no, 100);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(n->no, on_reconnect, n);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(n->no, on_error, n);
    if (s == NATS_OK && n->creds[0])
        s = natsOptions_SetUserCredentialsFromFiles(n->no, n->creds, NULL);
    if (s == NATS_OK && n->send_asap)
        s = natsOptions_SetSendAsap(n->no, true);
    if (s == NATS_OK && n->tls)
        s = natsOptions_SetSecure(n->no, true);
    if (s == NATS_OK && n->ca[0])
        s = natsOptions_LoadCATrustedCertificates(n->no, n->ca);
    if (s != NATS_OK)
        return fail_nats(n, s, "options");
    if ((s = natsConnection_Connect(&n->nc, n->no)) != NATS_OK) {
        n->nc = NULL;
        return fail_nats(n, s, "connect");
    }
    char subj[96];
    snprintf(subj, sizeof subj, "%s.>", n->prefix);
    if (n->mode == MSGR_NATS_JETSTREAM) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.PublishAsync.AckHandler = on_pub_ack;
        jo.PublishAsync.AckHandlerClosure = n;
        jo.PublishAsync.MaxPending = 4096;
        jsPubOptions_Init(&n->po);
        n->po.MaxWait = 2000;
        if (msgr_os_thread_start(&n->redo_th, redo_main, n) != 0)
            return msgr__fail(MSGR_ENOMEM, "the bridge's republishing thread");
        n->redo_started = 1;
        if ((s = natsConnection_JetStream(&n->js, n->nc, &jo)) != NATS_OK)
            return fail_nats(n, s, "JetStream");
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        const char *subjects[] = {subj};
        sc.Name = n->stream;
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        /* Made by whichever bridge comes first; another one making it at the same moment is
         * told the name exists or its subjects overlap: then it is there. */
        if (js_GetStreamInfo(&si, n->js, n->stream, NULL, &jerr) != NATS_OK) {
            s = js_AddStream(&si, n->js, &sc, NULL, &jerr);
            if (s != NATS_OK && jerr != JSStreamNameExistErr && jerr != JSStreamSubjectOverlapErr)
                return fail_nats(n, s, "stream");
        }
        jsStreamInfo_Destroy(si);
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = n->stream;
        so.ManualAck = true;
        so.Config.Durable = n->durable;
        so.Config.AckPolicy = js_AckExplicit;
        so.Config.MaxAckPending = 4096;
        s = js_Subscribe(&n->sub, n->js, subj, on_msg, n, NULL, &so, &jerr);
    } else {
        s = natsConnection_Subscribe(&n->sub, n->nc, subj, on_msg, n);
        if (s == NATS_OK) /* the one delivery thread holds up to this many before dropping */
            s = natsSubscription_SetPendingLimits(n->sub, 1 << 20, 1 << 30);
    }
    if (s == NATS_OK)
        s = natsConnection_Flush(n->nc);
    return s == NATS_OK ? 0 : fail_nats(n, s, "subscribe");
}

void msgr_nats_stats_get(const msgr_nats *n, msgr_nats_stats *o)
{
    memset(o, 0, sizeof *o);
    if (!n)
        return;
    msgr_nats *m = (msgr_nats *)n;
#define L(f) o->f = atomic_load_explicit(&m->f, memory_order_relaxed)
    L(published);
    L(acked);
    L(delivered);
    L(rejected);
    L(lost);
    L(oversize);
    L(errors);
    L(reconnects);
    L(retries);
#undef L
}

int msgr_nats_flush(msgr_nats *n, int64_t timeout_ns)
{
    if (!n || !n->nc)
        return MSGR_EINVAL;
    if (n->js) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = timeout_ns / 1000000;
        natsStatus s = js_PublishAsyncComplete(n->js, &po);
        return s == NATS_OK ? 0 : s == NATS_TIMEOUT ? MSGR_ETIMEDOUT : nats_code(s);
    }
    natsStatus s = natsConnection_FlushTimeout(n->nc, timeout_ns / 1000000);
    return s == NATS_OK ? 0 : nats_code(s);
}

/* Stops everything that touches the bus: run by msgr_bus_close (msgr_bus_on_close) before it
 * frees anything, and by msgr_nats_close. No new callback or publish uses the bus or the
 * connection after `closing` is set; those inside are waited for (a publish waiting for an
 * absent server sees it within its 20 ms poll). */
static void detach(void *arg)
{
    msgr_nats *n = arg;
    atomic_store(&n->closing, 1);
    if (n->nc)
        natsConnection_Close(n->nc);
    for (int i = 0; atomic_load(&n->active) && i < 10000; i++)
        msgr_os_sleep_ns(1000000);
}

void msgr_nats_close(msgr_nats *n)
{
    if (!n)
        return;
    detach(n);
    if (n->redo_started) {
        pthread_mutex_lock(&n->redo_mu);
        pthread_cond_broadcast(&n->redo_cv);
        pthread_mutex_unlock(&n->redo_mu);
        msgr_os_thread_join(&n->redo_th);
    }
    /* Destroyed, not unsubscribed: unsubscribing would delete the durable consumer, and
     * what it has not delivered yet is for the next run. */
    natsSubscription_Destroy(n->sub);
    jsCtx_Destroy(n->js);
    natsConnection_Destroy(n->nc);
    natsOptions_Destroy(n->no);
    for (uint32_t i = 0; i < n->redo_n; i++)
        natsMsg_Destroy(n->redo[i]);
    free(n->redo);
    pthread_cond_destroy(&n->redo_cv);
    pthread_mutex_destroy(&n->redo_mu);
    free(n->dispatch);
    free(n->dest);
    free(n->fp);
    free(n->subj);
    free(n);
}
