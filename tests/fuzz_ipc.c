/* libFuzzer target: what a hostile peer may send over an IPC connection. Each input is written
 * whole by a raw socket to a connection of a listener with a small frame limit (256 bytes),
 * and then closed; the receiving side reads frames (and regions, when a frame says it hands one
 * over, though no descriptor came) until the connection ends. Nothing may crash, hang or read
 * outside its buffers under ASan/UBSan; every call must end in a frame or a messenger error
 * (make fuzz). The first input byte chooses framed or stream mode. */
#define _GNU_SOURCE
#include <messenger.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static msgr_ipc_server *srv[2];
static char name[2][64];

static void setup(void)
{
    for (int m = 0; m < 2; m++) {
        snprintf(name[m], sizeof name[m], "msgr-fuzz-ipc-%d-%d", (int)getpid(), m);
        msgr_ipc_opts o = {.flags = MSGR_IPC_ABSTRACT | (m ? MSGR_IPC_STREAM : 0),
                           .max_frame = 256};
        if (msgr_ipc_listen(name[m], &o, &srv[m]))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv[0])
        setup();
    if (size == 0 || size > 65536)
        return 0;
    int m = data[0] & 1;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(name[m]);
    memcpy(a.sun_path + 1, name[m], n);
    if (connect(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)))
        abort();
    msgr_ipc_conn *c;
    if (msgr_ipc_accept(srv[m], &c, 1000000000))
        abort();
    /* the socket holds this much: write it all, then end the stream */
    if (write(fd, data + 1, size - 1) != (ssize_t)(size - 1))
        abort();
    close(fd);
    char buf[300];
    for (int i = 0; i < 100000; i++) {
        int rc = msgr_ipc_recv(c, buf, (size_t)(i % 3 ? sizeof buf : 16), 1000000000);
        if (rc == MSGR_ESTATE) {
            msgr_region *g = NULL;
            rc = msgr_ipc_recv_region(c, &g, buf, sizeof buf, 1000000000);
            if (rc >= 0)
                abort(); /* no descriptor was sent: a region cannot have come */
        }
        if (rc == MSGR_EPIPE)
            break;
        if (rc < 0 && rc != MSGR_EMSGSIZE && rc != MSGR_ECORRUPT)
            abort(); /* a timeout would mean a hang on bytes that all arrived */
    }
    msgr_ipc_close(c);
    return 0;
}
