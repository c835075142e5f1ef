/* ipc_echo: a server and a client in two processes over the IPC transport, socket-like.
 *
 * The server listens on a path, accepts one client, and echoes every frame back with its bytes
 * reversed; the client sends N numbered frames of varying sizes, checks each answer, then
 * closes, which the server sees as end of stream. Then the same client hands the server a
 * memory region (a ring) over the connection and sends one message through the ring instead.
 *
 *   ipc_echo [--count N] [--path PATH]       runs both (the client as a second process)
 *   ipc_echo --serve PATH                     the server alone (one client, then exits)
 */
#define _GNU_SOURCE /* readlink, posix_spawn (proc.h) */
#include <messenger.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"

static int fail(const char *who, const char *what, int rc)
{
    fprintf(stderr, "ipc_echo %s: %s: %s %s\n", who, what, msgr_strerror(rc), msgr_last_error());
    return 1;
}

static void reverse(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        unsigned char t = p[i];
        p[i] = p[n - 1 - i];
        p[n - 1 - i] = t;
    }
}

static int serve(const char *path)
{
    msgr_ipc_server *s;
    msgr_ipc_conn *c;
    int rc = msgr_ipc_listen(path, NULL, &s);
    if (rc)
        return fail("server", "listen", rc);
    if ((rc = msgr_ipc_accept(s, &c, 30000000000ll)))
        return fail("server", "accept", rc);
    static unsigned char buf[65536];
    unsigned long frames = 0;
    for (;;) {
        int n = msgr_ipc_recv(c, buf, sizeof buf, 30000000000ll);
        if (n == MSGR_ESTATE) { /* the client hands over a region: read from its ring */
            msgr_region *g;
            msgr_ring *r;
            char note[32];
            if ((rc = msgr_ipc_recv_region(c, &g, note, sizeof note, -1)) < 0)
                return fail("server", "recv_region", rc);
            msgr_ring_opts o = {0};
            if ((rc = msgr_ring_attach(msgr_region_base(g), msgr_region_size(g), &o, &r)))
                return fail("server", "attach the ring", rc);
            n = msgr_ring_recv_wait(r, buf, sizeof buf, NULL, 10000000000ll);
            if (n < 0)
                return fail("server", "ring recv", n);
            reverse(buf, (size_t)n);
            if ((rc = msgr_ipc_send(c, buf, (size_t)n, -1)))
                return fail("server", "send", rc);
            msgr_ring_close(r);
            msgr_region_close(g);
            continue;
        }
        if (n == MSGR_EPIPE)
            break; /* the client closed: end of stream */
        if (n < 0)
            return fail("server", "recv", n);
        reverse(buf, (size_t)n);
        if ((rc = msgr_ipc_send(c, buf, (size_t)n, -1)))
            return fail("server", "send", rc);
        frames++;
    }
    msgr_ipc_close(c);
    msgr_ipc_server_close(s);
    printf("ipc_echo server: echoed %lu frames, then end of stream\n", frames);
    return 0;
}

static size_t size_of(unsigned long i) { return (size_t)(i * 2654435761u % 4000); }

static int client(const char *path, unsigned long count)
{
    msgr_ipc_opts o = {.connect_timeout_ns = 10000000000ll}; /* while the server starts */
    msgr_ipc_conn *c;
    int rc = msgr_ipc_connect(path, &o, &c);
    if (rc)
        return fail("client", "connect", rc);
    static unsigned char out[4096], in[4096];
    for (unsigned long i = 0; i < count; i++) {
        size_t len = size_of(i);
        for (size_t k = 0; k < len; k++)
            out[k] = (unsigned char)(i * 31 + k);
        if ((rc = msgr_ipc_send(c, out, len, -1)))
            return fail("client", "send", rc);
        int n = msgr_ipc_recv(c, in, sizeof in, 10000000000ll);
        if (n < 0)
            return fail("client", "recv", n);
        reverse(out, len);
        if ((size_t)n != len || memcmp(in, out, len)) {
            fprintf(stderr, "ipc_echo client: answer %lu is wrong\n", i);
            return 1;
        }
    }
    /* A ring in memory that has no name anywhere, handed to the server over the connection. */
    msgr_region *g;
    msgr_ring *r;
    msgr_region_opts ro = {.flags = MSGR_REGION_TRANSFERABLE};
    msgr_ring_opts ringo = {.capacity = 1 << 16};
    if ((rc = msgr_region_create_anon(msgr_ring_footprint(1 << 16), &ro, &g)) ||
        (rc = msgr_ring_create(msgr_region_base(g), msgr_region_size(g), &ringo, &r)) ||
        (rc = msgr_ipc_send_region(c, g, "ring", 4)) ||
        (rc = msgr_ring_send(r, 1, "through shared memory", 21)))
        return fail("client", "hand over a ring", rc);
    int n = msgr_ipc_recv(c, in, sizeof in, 10000000000ll);
    if (n != 21 || memcmp(in, "yromem derahs hguorht", 21)) {
        fprintf(stderr, "ipc_echo client: the answer through the ring is wrong (%d)\n", n);
        return 1;
    }
    msgr_ring_close(r);
    msgr_region_close(g);
    msgr_ipc_close(c);
    printf("ipc_echo client: %lu frames of 0-3999 bytes echoed intact; a ring handed over and "
           "used\n", count);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long count = 10000;
    const char *path = NULL, *serve_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--path") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--serve") && i + 1 < argc)
            serve_path = argv[++i];
        else {
            fprintf(stderr, "usage: ipc_echo [--count N] [--path PATH] | --serve PATH\n");
            return 2;
        }
    }
    if (serve_path)
        return serve(serve_path);
    char tmp[128], self[4096];
    if (!path) {
        snprintf(tmp, sizeof tmp, "/tmp/msgr-ipc-echo-%ld.sock", ex_pid());
        path = tmp;
    }
    ex_self_path(self, sizeof self, argv[0]);
    ex_proc server;
    char *args[] = {self, "--serve", (char *)path, NULL};
    if (ex_start(&server, args) != 0)
        return fail("main", "start the server", MSGR_EIO);
    int rc = client(path, count);
    int server_ok = ex_wait(&server, 1) == 0;
    if (rc || !server_ok) {
        fprintf(stderr, "ipc_echo: FAILED\n");
        return 1;
    }
    printf("ok: every frame came back reversed, in order\n");
    return 0;
}
