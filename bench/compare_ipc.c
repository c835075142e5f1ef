/* bench_compare: messenger's IPC transport (msgr_ipc, framed, over a Unix domain socket) as a
 * transport beside the raw socket peer (peers_os.c), with the same socket buffer sizes, so the
 * difference is the framing and the library's calls. */
#define _GNU_SOURCE
#include "compare.h"

#include <messenger.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    msgr_ipc_conn *side[2]; /* [0] the connecting side, [1] the accepted one */
} ipc_shared;

typedef struct {
    msgr_ipc_conn *c;
    unsigned char *buf;
} ipc_ep;

static void *ipc_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)size, (void)producers;
    char path[128];
    unique_name(path, sizeof path, "/tmp/", ".sock");
    ipc_shared *s = xmalloc(sizeof *s);
    msgr_ipc_server *srv;
    int rc = msgr_ipc_listen(path, NULL, &srv);
    if (rc == 0 && (rc = msgr_ipc_connect(path, NULL, &s->side[0])) == 0 &&
        (rc = msgr_ipc_accept(srv, &s->side[1], 5000000000ll)) != 0)
        msgr_ipc_close(s->side[0]);
    if (rc == 0 || rc != MSGR_EINVAL)
        msgr_ipc_server_close(srv); /* the connection stays; the socket file goes */
    if (rc) {
        snprintf(err, errlen, "msgr_ipc: %s", msgr_strerror(rc));
        free(s);
        return NULL;
    }
    int big = 4 << 20; /* as the raw socket peer */
    for (int k = 0; k < 2; k++) {
        int fd = (int)msgr_ipc_conn_fd(s->side[k]);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }
    return s;
}

static void *ipc_open(void *shared, int side, int index)
{
    (void)index;
    ipc_ep *e = xmalloc(sizeof *e);
    e->c = ((ipc_shared *)shared)->side[side];
    e->buf = NULL;
    return e;
}

static void ipc_put(void *ep, uint64_t tag, size_t size)
{
    ipc_ep *e = ep;
    if (!e->buf)
        e->buf = xmalloc(size);
    payload_fill(e->buf, tag, size);
    int rc = msgr_ipc_send(e->c, e->buf, size, -1);
    if (rc)
        compare_fail("msgr_ipc_send", msgr_strerror(rc));
}

static uint64_t ipc_get(void *ep, size_t size)
{
    ipc_ep *e = ep;
    if (!e->buf)
        e->buf = xmalloc(size);
    int n = msgr_ipc_recv(e->c, e->buf, size, -1);
    if (n != (int)size)
        compare_fail("msgr_ipc_recv", n < 0 ? msgr_strerror(n) : "short frame");
    return payload_tag(e->buf, size);
}

static void ipc_close_ep(void *ep)
{
    ipc_ep *e = ep;
    free(e->buf);
    free(e);
}

static void ipc_teardown(void *shared)
{
    ipc_shared *s = shared;
    msgr_ipc_close(s->side[0]);
    msgr_ipc_close(s->side[1]);
    free(s);
}

const transport ipc_transports[N_IPC_TRANSPORTS] = {
    {"msgr-ipc", "copy", 1, 1, NULL, ipc_setup, ipc_open, ipc_put, ipc_get, NULL, ipc_close_ep,
     ipc_teardown, NULL},
};
