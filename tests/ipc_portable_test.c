/* The IPC transport on every platform (Unix domain sockets; named pipes on Windows, where
 * make windows-test runs this under wine): connections, limits, names, cancellation, many
 * clients at once, no handle leaks, and a peer in another process (its pid, a region handed
 * over, its death seen as end of stream, a fast connection). ipc_test.c covers what only
 * POSIX systems have (socket files, the abstract namespace, SO_PEERCRED's uid, memfd). */
#include <criterion/criterion.h>
#include <pthread.h>

#include "test_util.h"

#ifndef _WIN32
#include <dirent.h>
#endif

static char path[256];

static void name_path(const char *tag)
{
#ifdef _WIN32
    snprintf(path, sizeof path, "msgr-ipcp-%d-%s", (int)tu_pid(), tag); /* under \\.\pipe\ */
#else
    snprintf(path, sizeof path, "/tmp/msgr-ipcp-%d-%s.sock", (int)tu_pid(), tag);
#endif
}

/* Open handles (Windows) or descriptors (POSIX) of this process. */
static long handles_open(void)
{
#ifdef _WIN32
    /* Every value a handle can have, tried (wine's GetProcessHandleCount says 0). */
    long n = 0;
    DWORD flags;
    for (uintptr_t v = 4; v < (1u << 18); v += 4)
        n += GetHandleInformation((HANDLE)v, &flags) != 0;
    return n;
#else
    long n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
#endif
}

static void peer_start(tu_proc *p, const char *a1, const char *a2, const char *a3)
{
    static char prog[4096];
    snprintf(prog, sizeof prog, "%s/ipc_peer", tu_bin_dir());
    char *argv[] = {prog, (char *)a1, path, (char *)a2, (char *)a3, NULL};
    cr_assert_eq(tu_proc_start(p, argv), 0, "cannot start %s (set MSGR_TEST_BIN)", prog);
}

/* A client thread: connects with `flags`, sends `count` frames of 4 bytes (or, with `raw`,
 * those bytes as a stream), then reads until end of stream. */
typedef struct client {
    uint32_t flags, count;
    const void *raw;
    size_t raw_len;
    int rc;
    pthread_t th;
} client;

static void *client_main(void *arg)
{
    client *k = arg;
    msgr_ipc_opts o = {.flags = k->flags};
    msgr_ipc_conn *c;
    if ((k->rc = msgr_ipc_connect(path, &o, &c)))
        return NULL;
    if (k->raw)
        k->rc = msgr_ipc_send(c, k->raw, k->raw_len, -1);
    for (uint32_t i = 0; i < k->count && !k->rc; i++)
        k->rc = msgr_ipc_send(c, &i, sizeof i, -1);
    char b[16];
    while (!k->rc && msgr_ipc_recv(c, b, sizeof b, 10000000000ll) >= 0) {
    }
    msgr_ipc_close(c);
    return NULL;
}

static void client_start(client *k) { cr_assert_eq(pthread_create(&k->th, NULL, client_main, k), 0); }

/* Receives frames 0..n-1 in order from c. */
static void expect_frames(msgr_ipc_conn *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t v = ~0u;
        int got = msgr_ipc_recv(c, &v, sizeof v, 10000000000ll);
        cr_assert_eq(got, 4, "frame %u: %s (%s)", i, msgr_errname(got), msgr_last_error());
        cr_assert_eq(v, i, "frame %u arrived as %u", i, v);
    }
}

Test(ipc_portable, frames_arrive_in_order_and_the_close_is_end_of_stream)
{
    name_path("order");
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0, "%s", msgr_last_error());
    client k = {.count = 5000};
    client_start(&k);
    msgr_ipc_conn *c;
    cr_assert_eq(msgr_ipc_accept(s, &c, 10000000000ll), 0);
    expect_frames(c, k.count);
    cr_assert_eq(msgr_ipc_send(c, "", 0, -1), 0, "an empty frame goes out");
    msgr_ipc_close(c); /* the client reads its empty frame, then end of stream */
    pthread_join(k.th, NULL);
    cr_assert_eq(k.rc, 0, "client: %s", msgr_errname(k.rc));
    msgr_ipc_server_close(s);
}

Test(ipc_portable, frames_over_the_limit_are_refused_on_both_sides)
{
    name_path("limit");
    msgr_ipc_opts o = {.max_frame = 1000};
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, &o, &s), 0);
    /* a peer that ignores the limit: a header announcing 1001 bytes */
    static const uint8_t big[8] = {0xe9, 0x03, 0, 0, 0, 0, 'm', 's'};
    client k = {.flags = MSGR_IPC_STREAM, .raw = big, .raw_len = sizeof big};
    client_start(&k);
    msgr_ipc_conn *c;
    cr_assert_eq(msgr_ipc_accept(s, &c, 10000000000ll), 0);
    char buf[2000] = {0};
    cr_assert_eq(msgr_ipc_send(c, buf, 1001, -1), MSGR_EMSGSIZE, "one over the limit");
    cr_assert(strstr(msgr_last_error(), "1000") != NULL, "the detail names the limit: %s",
              msgr_last_error());
    cr_assert_eq(msgr_ipc_recv(c, buf, sizeof buf, 10000000000ll), MSGR_EMSGSIZE);
    cr_assert(strstr(msgr_last_error(), "1001") != NULL, "%s", msgr_last_error());
    cr_assert_eq(msgr_ipc_recv(c, buf, sizeof buf, 0), MSGR_EPIPE, "the connection is failed");
    msgr_ipc_close(c);
    pthread_join(k.th, NULL);
    msgr_ipc_server_close(s);
}

Test(ipc_portable, garbage_fails_the_connection_with_a_clear_error)
{
    name_path("garbage");
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0);
    static const char junk[] = "GET / HTTP/1.1\r\n\r\n";
    client k = {.flags = MSGR_IPC_STREAM, .raw = junk, .raw_len = sizeof junk - 1};
    client_start(&k);
    msgr_ipc_conn *c;
    cr_assert_eq(msgr_ipc_accept(s, &c, 10000000000ll), 0);
    char buf[64];
    cr_assert_eq(msgr_ipc_recv(c, buf, sizeof buf, 10000000000ll), MSGR_ECORRUPT);
    cr_assert(strstr(msgr_last_error(), "frame") != NULL, "%s", msgr_last_error());
    msgr_ipc_close(c);
    pthread_join(k.th, NULL);
    msgr_ipc_server_close(s);
}

Test(ipc_portable, a_live_listener_refuses_a_second_and_its_name_is_free_after_close)
{
    name_path("live");
    msgr_ipc_server *s, *s2;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0);
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s2), MSGR_EADDRINUSE);
    msgr_ipc_server_close(s);
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s2), 0, "%s", msgr_last_error());
    msgr_ipc_server_close(s2);
}

Test(ipc_portable, names_too_long_are_refused_never_cut_and_nobody_listening_is_clear)
{
    char longer[600];
    memset(longer, 'n', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    msgr_ipc_server *s;
    msgr_ipc_conn *c;
    cr_assert_eq(msgr_ipc_listen(longer, NULL, &s), MSGR_ENAMETOOLONG);
    cr_assert(strstr(msgr_last_error(), "limit") != NULL, "%s", msgr_last_error());
    cr_assert_eq(msgr_ipc_connect(longer, NULL, &c), MSGR_ENAMETOOLONG);
    name_path("nobody");
    msgr_ipc_opts once = {.connect_timeout_ns = -1};
    int rc = msgr_ipc_connect(path, &once, &c);
    cr_assert(rc == MSGR_ENOENT || rc == MSGR_ECONNREFUSED, "%s", msgr_errname(rc));
    msgr_ipc_opts brief = {.connect_timeout_ns = 30000000};
    rc = msgr_ipc_connect(path, &brief, &c);
    cr_assert(rc == MSGR_ENOENT || rc == MSGR_ECONNREFUSED, "%s", msgr_errname(rc));
}

static void *cancel_main(void *s)
{
    msgr_ipc_accept_cancel(s);
    return NULL;
}

Test(ipc_portable, an_accept_times_out_and_can_be_cancelled_from_another_thread)
{
    name_path("cancel");
    msgr_ipc_server *s;
    msgr_ipc_conn *c;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0);
    cr_assert_eq(msgr_ipc_accept(s, &c, 0), MSGR_EAGAIN);
    cr_assert_eq(msgr_ipc_accept(s, &c, 20000000), MSGR_ETIMEDOUT);
    /* The cancel may come before or during the accept: either way this accept ends. */
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, cancel_main, s), 0);
    cr_assert_eq(msgr_ipc_accept(s, &c, -1), MSGR_ECANCELED);
    pthread_join(th, NULL);
    /* and the listener still works */
    client k = {.count = 1};
    client_start(&k);
    cr_assert_eq(msgr_ipc_accept(s, &c, 10000000000ll), 0);
    expect_frames(c, 1);
    msgr_ipc_close(c);
    pthread_join(k.th, NULL);
    msgr_ipc_server_close(s);
}

Test(ipc_portable, many_clients_connecting_at_once_all_get_in)
{
    name_path("many");
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0);
    enum { N = 16 };
    client k[N];
    for (int i = 0; i < N; i++) {
        k[i] = (client){.count = 3};
        client_start(&k[i]);
    }
    for (int i = 0; i < N; i++) {
        msgr_ipc_conn *c;
        int rc = msgr_ipc_accept(s, &c, 10000000000ll);
        if (rc) { /* the clients say why */
            for (int j = 0; j < N; j++)
                pthread_join(k[j].th, NULL);
            for (int j = 0; j < N; j++)
                cr_assert_eq(k[j].rc, 0, "client %d: %s", j, msgr_errname(k[j].rc));
        }
        cr_assert_eq(rc, 0, "accept %d: %s %s", i, msgr_errname(rc), msgr_last_error());
        expect_frames(c, 3);
        msgr_ipc_close(c);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(k[i].th, NULL);
        cr_assert_eq(k[i].rc, 0, "client %d: %s", i, msgr_errname(k[i].rc));
    }
    msgr_ipc_server_close(s);
}

Test(ipc_portable, no_handle_is_left_open_after_a_hundred_connections)
{
    name_path("leak");
    /* once first, so that lazily made things (thread stacks, the wait registry) exist */
    for (int round = 0; round < 2; round++) {
        long before = handles_open();
        cr_assert_gt(before, 0);
        for (int i = 0; i < (round ? 100 : 1); i++) {
            msgr_ipc_server *s;
            cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0);
            client k = {.count = 2};
            client_start(&k);
            msgr_ipc_conn *c;
            cr_assert_eq(msgr_ipc_accept(s, &c, 10000000000ll), 0);
            expect_frames(c, 2);
            cr_assert_eq(msgr_ipc_accept(s, &c, 0), MSGR_EAGAIN); /* a pending one, dropped */
            msgr_ipc_close(c);
            pthread_join(k.th, NULL);
            msgr_ipc_server_close(s);
        }
        if (round)
            cr_assert_eq(handles_open(), before, "handles: %ld before, %ld after",
                         before, handles_open());
    }
}

Test(ipc_portable, the_server_knows_the_peer_process)
{
    name_path("pid");
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0);
    tu_proc p;
    peer_start(&p, "hold", NULL, NULL);
    msgr_ipc_conn *c;
    cr_assert_eq(msgr_ipc_accept(s, &c, 10000000000ll), 0);
    msgr_ipc_peer peer;
    cr_assert_eq(msgr_ipc_peer_get(c, &peer), 0, "%s", msgr_last_error());
    cr_assert_eq(peer.pid, p.pid, "peer pid %d, started %d", (int)peer.pid, (int)p.pid);
    tu_proc_kill(&p);
    cr_assert_eq(tu_proc_wait(&p), TU_KILLED);
    char b[4];
    cr_assert_eq(msgr_ipc_recv(c, b, sizeof b, 10000000000ll), MSGR_EPIPE);
    msgr_ipc_close(c);
    msgr_ipc_server_close(s);
}

Test(ipc_portable, a_region_handed_to_another_process_is_the_same_memory)
{
    name_path("region");
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0);
    tu_proc p;
    peer_start(&p, "region", NULL, NULL);
    msgr_ipc_conn *c;
    cr_assert_eq(msgr_ipc_accept(s, &c, 10000000000ll), 0);
    msgr_region_opts ro = {.flags = MSGR_REGION_TRANSFERABLE};
    msgr_region *r;
    cr_assert_eq(msgr_region_create_anon(1 << 16, &ro, &r), 0);
    static const char note[] = "written by the peer";
    cr_assert_eq(msgr_ipc_send_region(c, r, note, sizeof note), 0, "%s", msgr_last_error());
    char b[8];
    cr_assert_eq(msgr_ipc_recv(c, b, sizeof b, 10000000000ll), 4, "the peer answers");
    cr_assert_eq(memcmp(msgr_region_base(r), note, sizeof note), 0,
                 "the peer's write is in our memory");
    msgr_ipc_close(c);
    cr_assert_eq(tu_proc_wait(&p), 0);
    msgr_region_close(r);
    msgr_ipc_server_close(s);
}

/* A peer sends n frames and is killed; everything it sent arrives, then end of stream. */
static void killed_peer_case(const char *tag, uint32_t flags)
{
    name_path(tag);
    msgr_ipc_opts o = {.flags = flags};
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, &o, &s), 0);
    tu_proc p;
    peer_start(&p, "send", "2000", flags ? "fast" : "plain");
    msgr_ipc_conn *c;
    cr_assert_eq(msgr_ipc_accept(s, &c, 10000000000ll), 0, "%s", msgr_last_error());
    expect_frames(c, 2000);
    tu_proc_kill(&p);
    cr_assert_eq(tu_proc_wait(&p), TU_KILLED);
    char b[4];
    cr_assert_eq(msgr_ipc_recv(c, b, sizeof b, 10000000000ll), MSGR_EPIPE);
    msgr_ipc_close(c);
    msgr_ipc_server_close(s);
}

Test(ipc_portable, a_killed_peer_is_end_of_stream_after_what_it_sent)
{
    killed_peer_case("killed", 0);
}

Test(ipc_portable, a_fast_connection_to_another_process_carries_frames_and_sees_it_die)
{
    killed_peer_case("fast", MSGR_IPC_FAST);
}
