/* The libraries bench_compare measures messenger against (ZeroMQ, nng, Concurrency Kit's
 * ck_ring, atomic_queue; iceoryx in peers_iceoryx.c), each used the way its documentation shows: one message per call, the library's own
 * waiting; and the list of every peer (peers_os.c has the operating system's own, compare_ipc.c
 * messenger's IPC transport beside them). Built only
 * with what is installed (HAVE_ZMQ, HAVE_NNG, HAVE_CK, HAVE_AQ from the Makefile); a missing one is
 * listed with the package that brings it. Benchmark code only. */
#define _GNU_SOURCE
#include "compare.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef HAVE_ZMQ
#include <zmq.h>
#endif
#ifdef HAVE_NNG
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#endif
#ifdef HAVE_CK
#include <ck_pr.h>
#include <ck_ring.h>
#endif
#ifdef HAVE_AQ
#include "atomic_queue_adapter.h"
#endif

/* ---- ZeroMQ: a PAIR socket per side, inproc:// between threads, ipc:// between processes ---- */

#ifdef HAVE_ZMQ
typedef struct {
    void *ctx; /* inproc: the one context both threads share; ipc: NULL, each side makes its own */
    char url[96];
    unsigned opens[2]; /* inproc: rounds each side has opened (each side writes its own) */
} zmq_shared;

typedef struct {
    void *ctx, *sock;
    int own_ctx;
    unsigned char *buf;
} zmq_ep;

static void *zmq_setup_common(int inproc, char *err, size_t errlen)
{
    zmq_shared *s = xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    if (inproc) {
        snprintf(s->url, sizeof s->url, "inproc://msgr-bench");
        if (!(s->ctx = zmq_ctx_new())) {
            set_err(err, errlen, "zmq_ctx_new", errno);
            free(s);
            return NULL;
        }
    } else {
        unique_name(s->url, sizeof s->url, "ipc:///tmp/", ".zmq");
    }
    return s;
}

static void *zmq_inproc_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)size, (void)producers;
    return zmq_setup_common(1, err, errlen);
}

static void *zmq_ipc_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)size, (void)producers;
    return zmq_setup_common(0, err, errlen);
}

static void *zmq_open_side(void *shared, int side, int index)
{
    (void)index;
    zmq_shared *s = shared;
    zmq_ep *e = xmalloc(sizeof *e);
    e->own_ctx = s->ctx == NULL;
    e->ctx = s->ctx ? s->ctx : zmq_ctx_new();
    e->sock = e->ctx ? zmq_socket(e->ctx, ZMQ_PAIR) : NULL;
    if (!e->sock)
        compare_fail("zmq_socket", zmq_strerror(zmq_errno()));
    /* inproc: a fresh name every round. Closing a socket releases its inproc name later, in
     * the context's own thread, so binding the same name again at once can fail with
     * EADDRINUSE (seen once in CI). Each side opens once per round, so the two counters
     * agree; a connect before the bind waits for it. */
    char url[128];
    if (s->ctx)
        snprintf(url, sizeof url, "%s-%u", s->url, s->opens[side ? 1 : 0]++);
    else
        snprintf(url, sizeof url, "%s", s->url);
    int rc = side ? zmq_bind(e->sock, url) : zmq_connect(e->sock, url);
    if (rc)
        compare_fail(side ? "zmq_bind" : "zmq_connect", zmq_strerror(zmq_errno()));
    e->buf = NULL;
    return e;
}

static void zmq_put(void *ep, uint64_t tag, size_t size)
{
    zmq_ep *e = ep;
    if (!e->buf)
        e->buf = xmalloc(size);
    payload_fill(e->buf, tag, size);
    while (zmq_send(e->sock, e->buf, size, 0) < 0)
        if (zmq_errno() != EINTR)
            compare_fail("zmq_send", zmq_strerror(zmq_errno()));
}

static uint64_t zmq_get(void *ep, size_t size)
{
    zmq_ep *e = ep;
    if (!e->buf)
        e->buf = xmalloc(size);
    int n;
    while ((n = zmq_recv(e->sock, e->buf, size, 0)) < 0)
        if (zmq_errno() != EINTR)
            compare_fail("zmq_recv", zmq_strerror(zmq_errno()));
    return (size_t)n == size ? payload_tag(e->buf, size) : TAG_BAD;
}

static void zmq_close_side(void *ep)
{
    zmq_ep *e = ep;
    int linger = 0; /* the driver closes only after the other side has everything */
    zmq_setsockopt(e->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(e->sock);
    if (e->own_ctx)
        zmq_ctx_term(e->ctx);
    free(e->buf);
    free(e);
}

static void zmq_teardown(void *shared)
{
    zmq_shared *s = shared;
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    else if (!strncmp(s->url, "ipc://", 6))
        unlink(s->url + 6);
    free(s);
}
#endif

/* ---- nng: pair0 sockets over ipc:// between processes ------------------------------------ */

#ifdef HAVE_NNG
typedef struct {
    char url[96];
} nng_shared;

typedef struct {
    nng_socket sock;
    unsigned char *buf;
} nng_ep;

static void *nng_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)size, (void)producers, (void)err, (void)errlen;
    nng_shared *s = xmalloc(sizeof *s);
    unique_name(s->url, sizeof s->url, "ipc:///tmp/", ".nng");
    return s;
}

static void *nng_open_side(void *shared, int side, int index)
{
    (void)index;
    nng_shared *s = shared;
    nng_ep *e = xmalloc(sizeof *e);
    int rc = nng_pair0_open(&e->sock);
    if (!rc)
        rc = nng_socket_set_size(e->sock, NNG_OPT_RECVMAXSZ, 0); /* default refuses > 1 MiB */
    /* Room for 1024 messages each way: unbuffered (the default), every send waits for the
     * receiving side's threads, a context switch per message. */
    if (!rc)
        rc = nng_socket_set_int(e->sock, NNG_OPT_SENDBUF, 1024);
    if (!rc)
        rc = nng_socket_set_int(e->sock, NNG_OPT_RECVBUF, 1024);
    if (!rc)
        rc = side ? nng_listen(e->sock, s->url, NULL, 0)
                  : nng_dial(e->sock, s->url, NULL, NNG_FLAG_NONBLOCK); /* retries until up */
    if (rc)
        compare_fail("nng open", nng_strerror(rc));
    e->buf = NULL;
    return e;
}

static void nng_put(void *ep, uint64_t tag, size_t size)
{
    nng_ep *e = ep;
    if (!e->buf)
        e->buf = xmalloc(size);
    payload_fill(e->buf, tag, size);
    int rc = nng_send(e->sock, e->buf, size, 0);
    if (rc)
        compare_fail("nng_send", nng_strerror(rc));
}

static uint64_t nng_get(void *ep, size_t size)
{
    nng_ep *e = ep;
    if (!e->buf)
        e->buf = xmalloc(size);
    size_t n = size;
    int rc = nng_recv(e->sock, e->buf, &n, 0);
    if (rc)
        compare_fail("nng_recv", nng_strerror(rc));
    return n == size ? payload_tag(e->buf, size) : TAG_BAD;
}

static void nng_close_side(void *ep)
{
    nng_ep *e = ep;
    nng_close(e->sock);
    free(e->buf);
    free(e);
}

static void nng_teardown(void *shared)
{
    nng_shared *s = shared;
    unlink(s->url + 6);
    free(s);
}
#endif

/* ---- Concurrency Kit ck_ring between threads, both sides spinning ------------------------
 * zero-copy: the ring carries pointers into a slab of 2 x depth message slots, which the
 *            producer fills in place (a slot is reused only after the consumer has moved past
 *            it: it cannot run depth entries ahead of a consumer that finished every earlier
 *            message before dequeuing the next).
 * copy:      CK_RING_PROTOTYPE rings of message-sized structs, enqueued and dequeued by value
 *            (sizes up to 4096; how ck_ring is fastest for small fixed messages). */

#ifdef HAVE_CK
#define CK_BYVALUE_MAX 4096
struct ck_m8 { unsigned char b[8]; };
struct ck_m64 { unsigned char b[64]; };
struct ck_m512 { unsigned char b[512]; };
struct ck_m4096 { unsigned char b[4096]; };
CK_RING_PROTOTYPE(m8, ck_m8)
CK_RING_PROTOTYPE(m64, ck_m64)
CK_RING_PROTOTYPE(m512, ck_m512)
CK_RING_PROTOTYPE(m4096, ck_m4096)

typedef struct {
    struct ck_ring ring[2]; /* a->b, b->a */
    void *buf[2];           /* ring entries: pointers (zero-copy) or structs (copy) */
    unsigned char *slab[2]; /* zero-copy: message slots */
    unsigned depth;
    int by_value;
} ck_shared;

typedef struct {
    ck_shared *s;
    int tx, rx;
    unsigned next_slot;
    unsigned char *msg; /* copy: the message built or received */
} ck_ep;

static unsigned ck_depth(size_t size)
{
    /* 1024 entries, fewer for big messages so the slab stays near 32 MiB */
    unsigned d = 1024;
    while (d > 4 && (size_t)d * size > (32u << 20))
        d /= 2;
    return d;
}

static void *ck_setup_common(size_t size, int by_value, char *err, size_t errlen)
{
    (void)err, (void)errlen;
    ck_shared *s = xmalloc(sizeof *s);
    s->depth = ck_depth(size);
    s->by_value = by_value;
    for (int d = 0; d < 2; d++) {
        ck_ring_init(&s->ring[d], s->depth);
        size_t entry = by_value ? size : sizeof(void *);
        if (posix_memalign(&s->buf[d], 64, entry * s->depth))
            compare_fail("ck_ring", "out of memory");
        s->slab[d] = by_value ? NULL : xmalloc(2 * (size_t)s->depth * size);
    }
    return s;
}

static void *ck_zc_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)producers;
    return ck_setup_common(size, 0, err, errlen);
}

static void *ck_copy_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)producers;
    return ck_setup_common(size, 1, err, errlen);
}

static const char *ck_copy_unsupported(size_t size)
{
    return size == 8 || size == 64 || size == 512 || size == 4096
               ? NULL
               : "by-value ck_ring rings are compiled for 8, 64, 512 and 4096 bytes";
}

static void *ck_open_side(void *shared, int side, int index)
{
    (void)index;
    ck_ep *e = xmalloc(sizeof *e);
    e->s = shared;
    e->tx = side ? 1 : 0;
    e->rx = side ? 0 : 1;
    e->next_slot = 0;
    e->msg = xmalloc(CK_BYVALUE_MAX);
    return e;
}

static bool ck_enqueue(ck_ep *e, size_t size, void *entry)
{
    struct ck_ring *r = &e->s->ring[e->tx];
    void *b = e->s->buf[e->tx];
    if (!e->s->by_value)
        return ck_ring_enqueue_spsc(r, b, entry);
    switch (size) {
    case 8: return ck_ring_enqueue_spsc_m8(r, b, entry);
    case 64: return ck_ring_enqueue_spsc_m64(r, b, entry);
    case 512: return ck_ring_enqueue_spsc_m512(r, b, entry);
    default: return ck_ring_enqueue_spsc_m4096(r, b, entry);
    }
}

static bool ck_dequeue(ck_ep *e, size_t size, void *entry)
{
    struct ck_ring *r = &e->s->ring[e->rx];
    void *b = e->s->buf[e->rx];
    if (!e->s->by_value)
        return ck_ring_dequeue_spsc(r, b, entry);
    switch (size) {
    case 8: return ck_ring_dequeue_spsc_m8(r, b, entry);
    case 64: return ck_ring_dequeue_spsc_m64(r, b, entry);
    case 512: return ck_ring_dequeue_spsc_m512(r, b, entry);
    default: return ck_ring_dequeue_spsc_m4096(r, b, entry);
    }
}

static void ck_put(void *ep, uint64_t tag, size_t size)
{
    ck_ep *e = ep;
    void *entry;
    unsigned char *slot = NULL;
    if (e->s->by_value) {
        payload_fill(e->msg, tag, size);
        entry = e->msg;
    } else {
        slot = e->s->slab[e->tx] + (size_t)e->next_slot * size;
        e->next_slot = (e->next_slot + 1) % (2 * e->s->depth);
        payload_fill(slot, tag, size);
        entry = slot;
    }
    while (!ck_enqueue(e, size, entry))
        ck_pr_stall();
}

static uint64_t ck_get(void *ep, size_t size)
{
    ck_ep *e = ep;
    if (e->s->by_value) {
        while (!ck_dequeue(e, size, e->msg))
            ck_pr_stall();
        return payload_tag(e->msg, size);
    }
    void *slot;
    while (!ck_dequeue(e, size, &slot))
        ck_pr_stall();
    return payload_tag(slot, size);
}

static void ck_close_side(void *ep)
{
    ck_ep *e = ep;
    free(e->msg);
    free(e);
}

static void ck_teardown(void *shared)
{
    ck_shared *s = shared;
    for (int d = 0; d < 2; d++) {
        free(s->buf[d]);
        free(s->slab[d]);
    }
    free(s);
}
#endif

/* ---- atomic_queue between threads, both sides spinning -------------------------------------
 * Its SPSC queues through bench/atomic_queue_adapter.cpp, in the same two modes as ck_ring:
 * zero-copy (pointers into a slab of 2 x depth slots the producer fills in place, reused under
 * the same argument as ck_ring's) and copy (8, 64, 512 and 4096-byte messages by value). */

#ifdef HAVE_AQ
static inline void aq_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

typedef struct {
    aq_queue *q[2];         /* a->b, b->a */
    unsigned char *slab[2]; /* zero-copy: message slots */
    unsigned slots;
    int by_value;
} aq_shared;

typedef struct {
    aq_shared *s;
    int tx, rx;
    unsigned next_slot;
    unsigned char *msg; /* copy: the message built or received */
} aq_ep;

static void *aq_setup_common(size_t size, int by_value, char *err, size_t errlen)
{
    aq_shared *s = xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    s->by_value = by_value;
    for (int d = 0; d < 2; d++) {
        if (!(s->q[d] = aq_new(size, by_value))) {
            snprintf(err, errlen, "atomic_queue: no queue for %zu-byte messages", size);
            aq_free(s->q[0]);
            free(s->slab[0]);
            free(s);
            return NULL;
        }
        s->slots = 2 * aq_depth(s->q[d]);
        s->slab[d] = by_value ? NULL : xmalloc((size_t)s->slots * size);
    }
    return s;
}

static void *aq_zc_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)producers;
    return aq_setup_common(size, 0, err, errlen);
}

static void *aq_copy_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)producers;
    return aq_setup_common(size, 1, err, errlen);
}

static const char *aq_copy_unsupported(size_t size)
{
    return size == 8 || size == 64 || size == 512 || size == 4096
               ? NULL
               : "by-value atomic_queue queues are compiled for 8, 64, 512 and 4096 bytes";
}

static void *aq_open_side(void *shared, int side, int index)
{
    (void)index;
    aq_ep *e = xmalloc(sizeof *e);
    e->s = shared;
    e->tx = side ? 1 : 0;
    e->rx = side ? 0 : 1;
    e->next_slot = 0;
    e->msg = xmalloc(4096);
    return e;
}

static void aq_put(void *ep, uint64_t tag, size_t size)
{
    aq_ep *e = ep;
    const void *entry;
    if (e->s->by_value) {
        payload_fill(e->msg, tag, size);
        entry = e->msg;
    } else {
        unsigned char *slot = e->s->slab[e->tx] + (size_t)e->next_slot * size;
        e->next_slot = (e->next_slot + 1) % e->s->slots;
        payload_fill(slot, tag, size);
        entry = slot;
    }
    while (!aq_try_push(e->s->q[e->tx], entry))
        aq_pause();
}

static uint64_t aq_get(void *ep, size_t size)
{
    aq_ep *e = ep;
    if (e->s->by_value) {
        while (!aq_try_pop(e->s->q[e->rx], e->msg))
            aq_pause();
        return payload_tag(e->msg, size);
    }
    void *slot;
    while (!aq_try_pop(e->s->q[e->rx], &slot))
        aq_pause();
    return payload_tag(slot, size);
}

static void aq_close_side(void *ep)
{
    aq_ep *e = ep;
    free(e->msg);
    free(e);
}

static void aq_teardown(void *shared)
{
    aq_shared *s = shared;
    for (int d = 0; d < 2; d++) {
        aq_free(s->q[d]);
        free(s->slab[d]);
    }
    free(s);
}
#endif

/* ---- the table ----------------------------------------------------------------------------- */

static const char *no_zmq(size_t size)
{
    (void)size;
    return "not built: install libzmq3-dev";
}
static const char *no_nng(size_t size)
{
    (void)size;
    return "not built: install libnng-dev";
}
static const char *no_ck(size_t size)
{
    (void)size;
    return "not built: install libck-dev";
}
static const char *no_aq(size_t size)
{
    (void)size;
    return "not built: install libatomic-queue-dev (and g++)";
}

static const transport lib_peers[] = {
#ifdef HAVE_ZMQ
    {"zmq-inproc", "copy", 0, 1, NULL, zmq_inproc_setup, zmq_open_side, zmq_put, zmq_get, NULL,
     zmq_close_side, zmq_teardown, NULL},
    {"zmq-ipc", "copy", 1, 1, NULL, zmq_ipc_setup, zmq_open_side, zmq_put, zmq_get, NULL,
     zmq_close_side, zmq_teardown, NULL},
#else
    {"zmq-inproc", "copy", 0, 1, no_zmq, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"zmq-ipc", "copy", 1, 1, no_zmq, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
#endif
#ifdef HAVE_NNG
    {"nng-ipc", "copy", 1, 1, NULL, nng_setup, nng_open_side, nng_put, nng_get, NULL,
     nng_close_side, nng_teardown, NULL},
#else
    {"nng-ipc", "copy", 1, 1, no_nng, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
#endif
#ifdef HAVE_CK
    {"ck_ring", "zero-copy", 0, 1, NULL, ck_zc_setup, ck_open_side, ck_put, ck_get, NULL,
     ck_close_side, ck_teardown, NULL},
    {"ck_ring", "copy", 0, 1, ck_copy_unsupported, ck_copy_setup, ck_open_side, ck_put, ck_get,
     NULL, ck_close_side, ck_teardown, NULL},
#else
    {"ck_ring", "zero-copy", 0, 1, no_ck, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"ck_ring", "copy", 0, 1, no_ck, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
#endif
#ifdef HAVE_AQ
    {"atomic_queue", "zero-copy", 0, 1, NULL, aq_zc_setup, aq_open_side, aq_put, aq_get, NULL,
     aq_close_side, aq_teardown, NULL},
    {"atomic_queue", "copy", 0, 1, aq_copy_unsupported, aq_copy_setup, aq_open_side, aq_put,
     aq_get, NULL, aq_close_side, aq_teardown, NULL},
#else
    {"atomic_queue", "zero-copy", 0, 1, no_aq, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
    {"atomic_queue", "copy", 0, 1, no_aq, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
#endif
};

size_t peers_list(const transport **out)
{
    (void)no_zmq, (void)no_nng, (void)no_ck, (void)no_aq;
    static transport all[N_OS_PEERS + N_IPC_TRANSPORTS + sizeof lib_peers / sizeof *lib_peers + 1];
    if (!all[0].name) { /* first call, before any run starts a thread */
        memcpy(all, os_peers, sizeof os_peers);
        memcpy(all + N_OS_PEERS, ipc_transports, sizeof ipc_transports);
        memcpy(all + N_OS_PEERS + N_IPC_TRANSPORTS, lib_peers, sizeof lib_peers);
        all[N_OS_PEERS + N_IPC_TRANSPORTS + sizeof lib_peers / sizeof *lib_peers] = iceoryx_peer;
    }
    *out = all;
    return sizeof all / sizeof *all;
}
