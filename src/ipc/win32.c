/* messenger: the IPC transport on Windows: not built yet (named pipes are planned). Every call
 * says so with MSGR_ENOSYS, so that a program using the transport still links and can tell. */
#include "msgr/ipc.h"
#include "msgr/error.h"
#include "os/error_detail.h"

#define NOT_YET msgr__fail(MSGR_ENOSYS, "the IPC transport is not available on Windows yet")

int msgr_ipc_listen(const char *path, const msgr_ipc_opts *opts, msgr_ipc_server **out)
{
    (void)path, (void)opts, (void)out;
    return NOT_YET;
}
int msgr_ipc_accept(msgr_ipc_server *srv, msgr_ipc_conn **out, int64_t timeout_ns)
{
    (void)srv, (void)out, (void)timeout_ns;
    return NOT_YET;
}
int msgr_ipc_connect(const char *path, const msgr_ipc_opts *opts, msgr_ipc_conn **out)
{
    (void)path, (void)opts, (void)out;
    return NOT_YET;
}
int msgr_ipc_send(msgr_ipc_conn *c, const void *data, size_t len, int64_t timeout_ns)
{
    (void)c, (void)data, (void)len, (void)timeout_ns;
    return NOT_YET;
}
int msgr_ipc_recv(msgr_ipc_conn *c, void *buf, size_t cap, int64_t timeout_ns)
{
    (void)c, (void)buf, (void)cap, (void)timeout_ns;
    return NOT_YET;
}
size_t msgr_ipc_pending(const msgr_ipc_conn *c)
{
    (void)c;
    return 0;
}
int msgr_ipc_send_region(msgr_ipc_conn *c, msgr_region *r, const void *note, size_t len)
{
    (void)c, (void)r, (void)note, (void)len;
    return NOT_YET;
}
int msgr_ipc_recv_region(msgr_ipc_conn *c, msgr_region **out, void *buf, size_t cap,
                         int64_t timeout_ns)
{
    (void)c, (void)out, (void)buf, (void)cap, (void)timeout_ns;
    return NOT_YET;
}
int msgr_ipc_peer_get(const msgr_ipc_conn *c, msgr_ipc_peer *out)
{
    (void)c, (void)out;
    return NOT_YET;
}
intptr_t msgr_ipc_conn_fd(const msgr_ipc_conn *c)
{
    (void)c;
    return -1;
}
intptr_t msgr_ipc_server_fd(const msgr_ipc_server *s)
{
    (void)s;
    return -1;
}
void msgr_ipc_close(msgr_ipc_conn *c) { (void)c; }
void msgr_ipc_server_close(msgr_ipc_server *s) { (void)s; }
