/* The IPC transport: connections, frames and their limit, path rules, stale and live socket
 * files, peer credentials, end of stream when the peer dies, a hostile peer's bytes, stream
 * mode, timeouts, and a region handed to an unrelated program that leaves nothing behind. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/msgr-ipc-%d", (int)getpid());
    mkdir(dir, 0700);
}

static void teardown(void)
{
    tu_empty_dir(dir);
    rmdir(dir);
}

TestSuite(ipc, .init = setup, .fini = teardown, .timeout = 60);

static void sock_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

/* A listener and one connection to it, both in this process. */
static void pair(const char *path, const msgr_ipc_opts *o, msgr_ipc_server **s,
                 msgr_ipc_conn **cli, msgr_ipc_conn **srv)
{
    cr_assert_eq(msgr_ipc_listen(path, o, s), 0, "listen: %s", msgr_last_error());
    cr_assert_eq(msgr_ipc_connect(path, o, cli), 0, "connect: %s", msgr_last_error());
    cr_assert_eq(msgr_ipc_accept(*s, srv, 5000000000ll), 0);
}

Test(ipc, frames_arrive_whole_and_in_order_both_ways)
{
    char path[300], buf[256];
    sock_path(path, sizeof path, "a.sock");
    msgr_ipc_server *s;
    msgr_ipc_conn *c, *a;
    pair(path, NULL, &s, &c, &a);
    uint64_t sum = 0;
    for (int round = 0; round < 20; round++) { /* 50 queued at a time: the socket holds them */
        for (int i = round * 50; i < round * 50 + 50; i++) {
            size_t len = tu_len(1, (uint64_t)i, 200);
            tu_fill(buf, 1, (uint64_t)i, len);
            cr_assert_eq(msgr_ipc_send(c, buf, len, 1000000000), 0);
        }
        for (int i = round * 50; i < round * 50 + 50; i++) {
            int n = msgr_ipc_recv(a, buf, sizeof buf, 1000000000);
            size_t len = tu_len(1, (uint64_t)i, 200);
            cr_assert_eq(n, (int)len, "frame %d: %d", i, n);
            cr_assert_eq(tu_check(buf, 1, (uint64_t)i, len, &sum), 0);
        }
    }
    cr_assert_eq(msgr_ipc_send(a, "pong", 4, -1), 0);
    cr_assert_eq(msgr_ipc_recv(c, buf, sizeof buf, -1), 4);
    cr_assert_eq(memcmp(buf, "pong", 4), 0);
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, 0), MSGR_EAGAIN, "nothing more: one try");
    uint64_t t0 = tu_now_ns();
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, 50000000), MSGR_ETIMEDOUT);
    cr_assert_geq(tu_now_ns() - t0, 45000000ull, "waited the timeout");
    msgr_ipc_close(c);
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, 1000000000), MSGR_EPIPE, "end of stream");
    msgr_ipc_close(a);
    msgr_ipc_server_close(s);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "closing the server removes its socket file");
}

Test(ipc, a_frame_at_the_limit_passes_one_over_is_refused_and_a_small_buffer_keeps_it)
{
    char path[300];
    sock_path(path, sizeof path, "limit.sock");
    msgr_ipc_opts o = {.max_frame = 4096};
    msgr_ipc_server *s;
    msgr_ipc_conn *c, *a;
    pair(path, &o, &s, &c, &a);
    static char big[4097], got[4097];
    memset(big, 7, sizeof big);
    cr_assert_eq(msgr_ipc_send(c, big, 4096, -1), 0);
    cr_assert_eq(msgr_ipc_send(c, big, 4097, -1), MSGR_EMSGSIZE, "over the limit: not sent");
    cr_assert_eq(msgr_ipc_send(c, "", 0, -1), 0, "an empty frame is a frame");
    cr_assert_eq(msgr_ipc_recv(a, got, 100, -1), MSGR_EMSGSIZE, "too small a buffer");
    cr_assert_eq(msgr_ipc_pending(a), 4096, "the frame waits, whole");
    cr_assert_eq(msgr_ipc_recv(a, got, sizeof got, -1), 4096);
    cr_assert_eq(memcmp(got, big, 4096), 0);
    cr_assert_eq(msgr_ipc_recv(a, got, sizeof got, -1), 0);
    msgr_ipc_close(c);
    msgr_ipc_close(a);
    msgr_ipc_server_close(s);
}

/* A raw Unix socket connected to path: a peer that does not follow the protocol. */
static int raw_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static int raw_then_recv(const char *path, const void *bytes, size_t n, int close_after)
{
    msgr_ipc_opts o = {.max_frame = 1024};
    msgr_ipc_server *s;
    msgr_ipc_conn *a;
    cr_assert_eq(msgr_ipc_listen(path, &o, &s), 0);
    int fd = raw_connect(path);
    cr_assert_eq(msgr_ipc_accept(s, &a, 5000000000ll), 0);
    cr_assert_eq(write(fd, bytes, n), (ssize_t)n);
    if (close_after)
        close(fd);
    char buf[2048];
    int rc = msgr_ipc_recv(a, buf, sizeof buf, 2000000000);
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, 0), MSGR_EPIPE, "the connection is failed");
    if (!close_after)
        close(fd);
    msgr_ipc_close(a);
    msgr_ipc_server_close(s);
    return rc;
}

Test(ipc, a_hostile_peer_gets_its_connection_failed_with_a_clear_error)
{
    char path[300];
    sock_path(path, sizeof path, "bad.sock");
    /* length 5000 over a 1024 limit, kind 0, magic "ms" */
    const uint8_t over[8] = {0x88, 0x13, 0, 0, 0, 0, 0x6d, 0x73};
    cr_assert_eq(raw_then_recv(path, over, 8, 0), MSGR_EMSGSIZE);
    cr_assert(strstr(msgr_last_error(), "5000") && strstr(msgr_last_error(), "1024"),
              "the detail names the length and the limit: %s", msgr_last_error());
    cr_assert_eq(raw_then_recv(path, "GET / HTTP/1.1\r\n", 16, 0), MSGR_ECORRUPT, "garbage");
    const uint8_t cut[12] = {100, 0, 0, 0, 0, 0, 0x6d, 0x73, 1, 2, 3, 4};
    cr_assert_eq(raw_then_recv(path, cut, 12, 1), MSGR_ECORRUPT, "a frame cut by the end");
}

Test(ipc, paths_at_and_over_the_limit_and_relative_ones)
{
    char p107[600], p108[600], p200[600];
    /* dir is "/tmp/msgr-ipc-<pid>"; pad the file name to the exact total lengths */
    size_t base = strlen(dir) + 1;
    cr_assert_lt(base, 60);
    snprintf(p107, sizeof p107, "%s/%0*d", dir, (int)(107 - base), 0);
    snprintf(p108, sizeof p108, "%s/%0*d", dir, (int)(108 - base), 0);
    cr_assert_eq(strlen(p107), 107);
    cr_assert_eq(strlen(p108), 108);
    msgr_ipc_server *s;
    msgr_ipc_conn *c, *a;
    pair(p107, NULL, &s, &c, &a);
    msgr_ipc_close(c);
    msgr_ipc_close(a);
    msgr_ipc_server_close(s);
    cr_assert_eq(msgr_ipc_listen(p108, NULL, &s), MSGR_ENAMETOOLONG, "never cut to fit");
    cr_assert(strstr(msgr_last_error(), "108") && strstr(msgr_last_error(), "107"),
              "names the length and the limit: %s", msgr_last_error());
    cr_assert_eq(msgr_ipc_connect(p108, NULL, &c), MSGR_ENAMETOOLONG);
    struct stat st;
    cr_assert_neq(stat(p107, &st), 0);
    /* a 200-byte path: refused, unless bound through its directory */
    char deep[400];
    snprintf(deep, sizeof deep, "%s/%0120d", dir, 0);
    cr_assert_eq(mkdir(deep, 0700), 0);
    snprintf(p200, sizeof p200, "%s/%0*d", deep, (int)(200 - strlen(deep) - 1), 0);
    cr_assert_eq(strlen(p200), 200);
    cr_assert_eq(msgr_ipc_listen(p200, NULL, &s), MSGR_ENAMETOOLONG);
    msgr_ipc_opts lo = {.flags = MSGR_IPC_LONG_PATH};
    pair(p200, &lo, &s, &c, &a);
    cr_assert_eq(stat(p200, &st), 0, "the socket file is at the long path itself");
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600, "created 0600");
    msgr_ipc_close(c);
    msgr_ipc_close(a);
    msgr_ipc_server_close(s);
    tu_empty_dir(deep);
    rmdir(deep);
    /* relative to the working directory */
    char cwd[512];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(dir), 0);
    pair("rel.sock", NULL, &s, &c, &a);
    cr_assert_eq(stat("rel.sock", &st), 0);
    msgr_ipc_close(c);
    msgr_ipc_close(a);
    msgr_ipc_server_close(s);
    cr_assert_eq(chdir(cwd), 0);
}

Test(ipc, a_dead_listeners_file_is_reclaimed_and_a_live_one_refuses)
{
    char path[300];
    sock_path(path, sizeof path, "stale.sock");
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) { /* listens, says so, and is killed: its socket file stays */
        close(p[0]);
        msgr_ipc_server *s;
        int rc = msgr_ipc_listen(path, NULL, &s);
        char ok = rc == 0 ? 'y' : 'n';
        (void)!write(p[1], &ok, 1);
        tu_sleep_forever();
    }
    close(p[1]);
    char ok = 0;
    cr_assert_eq(read(p[0], &ok, 1), 1);
    close(p[0]);
    cr_assert_eq(ok, 'y');
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), MSGR_EADDRINUSE, "the child listens");
    cr_assert(strstr(msgr_last_error(), "live listener"), "%s", msgr_last_error());
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "a killed listener leaves its socket file");
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0, "and the next listener reclaims it");
    msgr_ipc_conn *c, *a;
    cr_assert_eq(msgr_ipc_connect(path, NULL, &c), 0);
    cr_assert_eq(msgr_ipc_accept(s, &a, 5000000000ll), 0);
    msgr_ipc_close(c);
    msgr_ipc_close(a);
    msgr_ipc_server_close(s);
    /* not a socket: left alone */
    FILE *f = fopen(path, "w");
    fclose(f);
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), MSGR_EEXIST);
    cr_assert_eq(stat(path, &st), 0);
}

Test(ipc, the_server_sees_the_peers_pid_and_uid)
{
    char path[300];
    sock_path(path, sizeof path, "cred.sock");
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0);
    pid_t pid = fork();
    if (pid == 0) {
        msgr_ipc_conn *c;
        char b;
        int rc = msgr_ipc_connect(path, NULL, &c);
        if (rc == 0)
            msgr_ipc_recv(c, &b, 1, 10000000000ll); /* until the server is done */
        _exit(rc ? 1 : 0);
    }
    msgr_ipc_conn *a;
    cr_assert_eq(msgr_ipc_accept(s, &a, 5000000000ll), 0);
    msgr_ipc_peer peer;
    cr_assert_eq(msgr_ipc_peer_get(a, &peer), 0);
    cr_assert_eq(peer.pid, (int32_t)pid);
    cr_assert_eq(peer.uid, (uint32_t)getuid());
    msgr_ipc_close(a);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    msgr_ipc_server_close(s);
}

Test(ipc, a_peer_killed_is_end_of_stream_after_what_it_sent)
{
    char path[300];
    sock_path(path, sizeof path, "death.sock");
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, NULL, &s), 0);
    pid_t pid = fork();
    if (pid == 0) {
        msgr_ipc_conn *c;
        if (msgr_ipc_connect(path, NULL, &c) || msgr_ipc_send(c, "last words", 10, -1))
            _exit(1);
        tu_sleep_forever();
    }
    msgr_ipc_conn *a;
    cr_assert_eq(msgr_ipc_accept(s, &a, 5000000000ll), 0);
    char buf[64];
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, 5000000000ll), 10);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, 5000000000ll), MSGR_EPIPE);
    cr_assert_eq(msgr_ipc_send(a, "x", 1, 1000000000), MSGR_EPIPE, "sending to the dead too");
    msgr_ipc_close(a);
    msgr_ipc_server_close(s);
}

Test(ipc, stream_mode_moves_bytes_for_protocols_that_frame_themselves)
{
    char path[300];
    sock_path(path, sizeof path, "stream.sock");
    msgr_ipc_opts o = {.flags = MSGR_IPC_STREAM};
    msgr_ipc_server *s;
    msgr_ipc_conn *c, *a;
    pair(path, &o, &s, &c, &a);
    const char *text = "{\"jsonrpc\":\"2.0\",\"method\":\"count\",\"id\":1}\n";
    cr_assert_eq(msgr_ipc_send(c, text, strlen(text), -1), 0);
    char buf[256];
    size_t got = 0;
    while (got < strlen(text)) {
        int n = msgr_ipc_recv(a, buf + got, sizeof buf - got, 1000000000);
        cr_assert_gt(n, 0);
        got += (size_t)n;
    }
    cr_assert_eq(memcmp(buf, text, got), 0);
    msgr_region *g;
    cr_assert_eq(msgr_region_create_anon(4096, &(msgr_region_opts){.flags = MSGR_REGION_TRANSFERABLE}, &g), 0);
    cr_assert_eq(msgr_ipc_send_region(c, g, "x", 1), MSGR_ESTATE, "no regions over streams");
    msgr_region_close(g);
    msgr_ipc_close(c);
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, 1000000000), MSGR_EPIPE);
    msgr_ipc_close(a);
    msgr_ipc_server_close(s);
}

Test(ipc, the_abstract_namespace_leaves_no_file)
{
    char name[64];
    snprintf(name, sizeof name, "msgr-test-%d", (int)getpid());
    msgr_ipc_opts o = {.flags = MSGR_IPC_ABSTRACT};
    msgr_ipc_server *s;
    msgr_ipc_conn *c, *a;
    pair(name, &o, &s, &c, &a);
    cr_assert_eq(msgr_ipc_send(c, "hi", 2, -1), 0);
    char buf[4];
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, -1), 2);
    struct stat st;
    cr_assert_neq(stat(name, &st), 0);
    msgr_ipc_close(c);
    msgr_ipc_close(a);
    msgr_ipc_server_close(s);
}

/* How process pid maps shared memory: 1 if a mapping is a messenger object under /dev/shm
 * (named), and *memfd whether one is messenger's memfd (nameless). The test runner maps its own
 * objects in /dev/shm; those are not ours. */
static int maps_dev_shm(pid_t pid, int *memfd)
{
    char p[64], line[4096];
    snprintf(p, sizeof p, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f);
    int named = 0;
    *memfd = 0;
    while (fgets(line, sizeof line, f)) {
        named |= strstr(line, "/dev/shm/") && strstr(line, "msgr");
        *memfd |= strstr(line, "/memfd:messenger") != NULL;
    }
    fclose(f);
    return named;
}

/* A region with a ring, handed to ring_peer (an unrelated program), which attaches to the ring
 * and sends a message back through it: both map it as a memfd, neither maps anything in
 * /dev/shm, so when both are killed nothing can be left behind. (Counting /dev/shm itself
 * would race with other programs using it.) */
Test(ipc, a_region_handed_to_an_unrelated_program_is_shared_and_leaves_nothing_behind)
{
    char path[300];
    sock_path(path, sizeof path, "region.sock");
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t owner = fork();
    if (owner == 0) { /* makes the region, hands it over, waits for the answer, then waits */
        close(p[0]);
        msgr_region *g;
        msgr_ring *r;
        msgr_ipc_server *s;
        msgr_ipc_conn *a;
        msgr_region_opts ro = {.flags = MSGR_REGION_TRANSFERABLE};
        msgr_ring_opts o = {.capacity = 1 << 16};
        if (msgr_region_create_anon(msgr_ring_footprint(1 << 16), &ro, &g) ||
            msgr_ring_create(msgr_region_base(g), msgr_region_size(g), &o, &r) ||
            msgr_ipc_listen(path, NULL, &s))
            _exit(1);
        char ready = 'l';
        (void)!write(p[1], &ready, 1);
        if (msgr_ipc_accept(s, &a, 10000000000ll) || msgr_ipc_send_region(a, g, "ring", 4))
            _exit(2);
        char buf[64];
        int n = msgr_ring_recv_wait(r, buf, sizeof buf, NULL, 10000000000ll);
        char got = n == 21 && !memcmp(buf, "from another process", 21) ? 'y' : 'n';
        (void)!write(p[1], &got, 1);
        tu_sleep_forever();
    }
    close(p[1]);
    char c = 0;
    cr_assert_eq(read(p[0], &c, 1), 1);
    cr_assert_eq(c, 'l');
    tu_proc peer = {0};
    char prog[512];
    snprintf(prog, sizeof prog, "%s/ring_peer", tu_bin_dir());
    char *argv[] = {prog, path, "ipcwake", NULL};
    cr_assert_eq(tu_proc_start(&peer, argv), 0);
    cr_assert_eq(read(p[0], &c, 1), 1);
    close(p[0]);
    cr_assert_eq(c, 'y', "the owner got the peer's message through the handed-over ring");
    int memfd;
    cr_assert_eq(maps_dev_shm(owner, &memfd), 0, "the owner maps no messenger object in /dev/shm");
    cr_assert(memfd, "the owner maps the region as a memfd");
    cr_assert_eq(maps_dev_shm((pid_t)peer.pid, &memfd), 0, "nor does the peer");
    cr_assert(memfd, "the peer maps the same nameless region");
    tu_proc_kill(&peer);
    tu_proc_wait(&peer);
    kill(owner, SIGKILL);
    waitpid(owner, NULL, 0);
}

Test(ipc, a_fast_connection_moves_frames_through_rings_and_sees_the_peer_die)
{
    char path[300];
    sock_path(path, sizeof path, "fast.sock");
    msgr_ipc_opts o = {.flags = MSGR_IPC_FAST};
    msgr_ipc_server *s;
    cr_assert_eq(msgr_ipc_listen(path, &o, &s), 0);
    pid_t pid = fork();
    if (pid == 0) { /* sends 100,000 numbered frames, answers one, then waits to be killed */
        msgr_ipc_conn *c;
        char buf[512];
        if (msgr_ipc_connect(path, &o, &c))
            _exit(1);
        for (int i = 0; i < 100000; i++) {
            size_t len = tu_len(2, (uint64_t)i, 400);
            tu_fill(buf, 2, (uint64_t)i, len);
            if (msgr_ipc_send(c, buf, len, 10000000000ll))
                _exit(2);
        }
        int n = msgr_ipc_recv(c, buf, sizeof buf, 10000000000ll);
        if (n != 4 || msgr_ipc_send(c, buf, 4, -1))
            _exit(3);
        tu_sleep_forever();
    }
    msgr_ipc_conn *a;
    cr_assert_eq(msgr_ipc_accept(s, &a, 10000000000ll), 0, "%s", msgr_last_error());
    char buf[512];
    uint64_t sum = 0;
    for (int i = 0; i < 100000; i++) {
        if (i == 50000) /* the second half with the rings spinning (and the look before) */
            msgr_ipc_set_wait(a, UINT32_MAX, 0);
        int n = msgr_ipc_recv(a, buf, sizeof buf, 10000000000ll);
        size_t len = tu_len(2, (uint64_t)i, 400);
        cr_assert_eq(n, (int)len, "frame %d: %d", i, n);
        cr_assert_eq(tu_check(buf, 2, (uint64_t)i, len, &sum), 0, "frame %d intact", i);
    }
    cr_assert_eq(msgr_ipc_send(a, "ping", 4, -1), 0);
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, 10000000000ll), 4, "the answer");
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, 0), MSGR_EAGAIN);
    static char big[1 << 20];
    cr_assert_eq(msgr_ipc_send(a, big, sizeof big, -1), MSGR_EMSGSIZE, "over the ring's largest");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_eq(msgr_ipc_recv(a, buf, sizeof buf, 10000000000ll), MSGR_EPIPE,
                 "the peer's death is end of stream on the fast path too");
    msgr_ipc_close(a);
    /* a client that does not open a fast connection is refused by a fast server */
    msgr_ipc_conn *plain;
    cr_assert_eq(msgr_ipc_connect(path, NULL, &plain), 0);
    cr_assert_eq(msgr_ipc_send(plain, "hello", 5, -1), 0);
    cr_assert_eq(msgr_ipc_accept(s, &a, 5000000000ll), MSGR_ECORRUPT);
    cr_assert(strstr(msgr_last_error(), "MSGR_IPC_FAST"), "%s", msgr_last_error());
    msgr_ipc_close(plain);
    msgr_ipc_server_close(s);
}
