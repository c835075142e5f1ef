/* bench_compare: messenger's IPC transport as a transport: msgr_ipc framed over a Unix domain
 * socket (beside the raw socket peer of peers_os.c, with the same socket buffer sizes, so the
 * difference is the framing and the library's calls), and the fast local connection (the same
 * API, frames through a ring each way). Each run's sides connect and accept in their own
 * processes, as users do: the connecting side in its start, the listening side at its first
 * message (it must not wait in its start, before the connecting side exists). */
#define _GNU_SOURCE
#include "compare.h"

#include <messenger.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    msgr_ipc_server *srv;
    char path[128];
    uint32_t flags;
} ipc_shared;

typedef struct {
    ipc_shared *s;
    msgr_ipc_conn *c; /* NULL on the listening side until its first message */
    unsigned char *buf;
} ipc_ep;

static void *setup_with(uint32_t flags, char *err, size_t errlen)
{
    ipc_shared *s = xmalloc(sizeof *s);
    unique_name(s->path, sizeof s->path, "/tmp/", ".sock");
    s->flags = flags;
    msgr_ipc_opts o = {.flags = flags};
    int rc = msgr_ipc_listen(s->path, &o, &s->srv);
    if (rc) {
        snprintf(err, errlen, "msgr_ipc_listen: %s", msgr_strerror(rc));
        free(s);
        return NULL;
    }
    return s;
}

static void *ipc_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)size, (void)producers;
    return setup_with(0, err, errlen);
}

static void *fast_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)producers;
    if (size > msgr_ring_max_payload(MSGR_IPC_FAST_CAPACITY)) {
        snprintf(err, errlen, "frames above %zu bytes do not fit its rings",
                 msgr_ring_max_payload(MSGR_IPC_FAST_CAPACITY));
        return NULL;
    }
    return setup_with(MSGR_IPC_FAST, err, errlen);
}

static void big_buffers(msgr_ipc_conn *c)
{
    int big = 4 << 20, fd = (int)msgr_ipc_conn_fd(c); /* as the raw socket peer */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
}

static void *ipc_open(void *shared, int side, int index)
{
    (void)index;
    ipc_ep *e = xmalloc(sizeof *e);
    e->s = shared;
    e->c = NULL;
    e->buf = NULL;
    if (side == 0) {
        msgr_ipc_opts o = {.flags = e->s->flags};
        int rc = msgr_ipc_connect(e->s->path, &o, &e->c);
        if (rc)
            compare_fail("msgr_ipc_connect", msgr_strerror(rc));
        big_buffers(e->c);
    }
    return e;
}

static void ensure(ipc_ep *e, size_t size)
{
    if (!e->buf)
        e->buf = xmalloc(size);
    if (!e->c) {
        int rc = msgr_ipc_accept(e->s->srv, &e->c, 10000000000ll);
        if (rc)
            compare_fail("msgr_ipc_accept", msgr_strerror(rc));
        big_buffers(e->c);
    }
}

static void ipc_put(void *ep, uint64_t tag, size_t size)
{
    ipc_ep *e = ep;
    ensure(e, size);
    payload_fill(e->buf, tag, size);
    int rc = msgr_ipc_send(e->c, e->buf, size, -1);
    if (rc)
        compare_fail("msgr_ipc_send", msgr_strerror(rc));
}

static uint64_t ipc_get(void *ep, size_t size)
{
    ipc_ep *e = ep;
    ensure(e, size);
    int n = msgr_ipc_recv(e->c, e->buf, size, -1);
    if (n != (int)size)
        compare_fail("msgr_ipc_recv", n < 0 ? msgr_strerror(n) : "short frame");
    return payload_tag(e->buf, size);
}

static void ipc_close_ep(void *ep)
{
    ipc_ep *e = ep;
    msgr_ipc_close(e->c);
    free(e->buf);
    free(e);
}

/* Latency runs: the fast connection's rings spin, as messenger's own rings do there. */
static void ipc_tune_latency(void *ep)
{
    ipc_ep *e = ep;
    msgr_ipc_set_wait(e->c, UINT32_MAX, 0);
}

static void ipc_teardown(void *shared)
{
    ipc_shared *s = shared;
    msgr_ipc_server_close(s->srv);
    free(s);
}

const transport ipc_transports[N_IPC_TRANSPORTS] = {
    {"msgr-ipc", "copy", 1, 1, NULL, ipc_setup, ipc_open, ipc_put, ipc_get, NULL, ipc_close_ep,
     ipc_teardown, NULL},
    {"msgr-ipc-fast", "copy", 1, 1, NULL, fast_setup, ipc_open, ipc_put, ipc_get, NULL,
     ipc_close_ep, ipc_teardown, ipc_tune_latency},
};
