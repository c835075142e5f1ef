/* The operating system's own IPC as bench_compare peers: a pipe, a Unix domain socket and a
 * POSIX message queue, each used the way its manual shows (one message per call, blocking).
 * Always built. Benchmark code only. */
#define _GNU_SOURCE
#include "compare.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- byte streams: pipe and Unix domain socket ------------------------------------------
 * Messages have a fixed size per run, so a stream carries them back to back with no framing;
 * the reader loops until it has the whole message. */

typedef struct {
    int fd[2][2]; /* [direction a->b, b->a][read end, write end] */
} stream_shared;

typedef struct {
    int rd, wr;
    unsigned char *buf;
} stream_ep;

static void *stream_open(void *shared, int side, int index)
{
    (void)index;
    stream_shared *s = shared;
    stream_ep *e = xmalloc(sizeof *e);
    e->rd = side ? s->fd[0][0] : s->fd[1][0];
    e->wr = side ? s->fd[1][1] : s->fd[0][1];
    e->buf = NULL;
    return e;
}

static void stream_put(void *ep, uint64_t tag, size_t size)
{
    stream_ep *e = ep;
    if (!e->buf)
        e->buf = xmalloc(size);
    payload_fill(e->buf, tag, size);
    for (size_t off = 0; off < size;) {
        ssize_t n = write(e->wr, e->buf + off, size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            compare_fail("stream write", strerror(errno));
        off += (size_t)n;
    }
}

static uint64_t stream_get(void *ep, size_t size)
{
    stream_ep *e = ep;
    if (!e->buf)
        e->buf = xmalloc(size);
    for (size_t off = 0; off < size;) {
        ssize_t n = read(e->rd, e->buf + off, size - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            compare_fail("stream read", n ? strerror(errno) : "end of stream");
        off += (size_t)n;
    }
    return payload_tag(e->buf, size);
}

static void stream_close(void *ep)
{
    stream_ep *e = ep;
    free(e->buf);
    free(e);
}

static void stream_teardown(void *shared)
{
    stream_shared *s = shared;
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 2; k++)
            close(s->fd[d][k]);
    free(s);
}

/* A pipe per direction, each enlarged to 1 MiB (the default is 64 KiB; the ring gets 4 MiB). */
static void *pipe_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)size, (void)producers;
    stream_shared *s = xmalloc(sizeof *s);
    for (int d = 0; d < 2; d++) {
        if (pipe(s->fd[d])) {
            set_err(err, errlen, "pipe", errno);
            free(s);
            return NULL;
        }
        fcntl(s->fd[d][1], F_SETPIPE_SZ, 1 << 20); /* best effort: pipe-max-size may be lower */
    }
    return s;
}

/* A connected stream socket pair (the same data path as a named socket after accept). */
static void *uds_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)size, (void)producers;
    stream_shared *s = xmalloc(sizeof *s);
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
        set_err(err, errlen, "socketpair", errno);
        free(s);
        return NULL;
    }
    int big = 4 << 20;
    for (int k = 0; k < 2; k++) {
        setsockopt(sv[k], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
        setsockopt(sv[k], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }
    /* side 1 reads a->b from sv[1] and writes b->a on sv[1]; side 0 the other end */
    s->fd[0][0] = sv[1];
    s->fd[0][1] = dup(sv[0]);
    s->fd[1][0] = sv[0];
    s->fd[1][1] = dup(sv[1]);
    return s;
}

/* ---- POSIX message queues ---------------------------------------------------------------- */

typedef struct {
    char name[2][64];
} mq_shared;

typedef struct {
    mqd_t rd, wr;
    unsigned char *buf;
} mq_ep;

static void *mq_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)producers;
    /* The queue's bytes count against RLIMIT_MSGQUEUE (800 KiB by default): raise it if allowed. */
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MSGQUEUE, &rl);
    mq_shared *s = xmalloc(sizeof *s);
    long depth = (long)((4u << 20) / size);
    depth = depth < 10 ? 10 : depth > 256 ? 256 : depth;
    for (int d = 0; d < 2; d++) {
        unique_name(s->name[d], sizeof s->name[d], "/", "");
        mq_unlink(s->name[d]);
        struct mq_attr a = {.mq_maxmsg = depth, .mq_msgsize = (long)size};
        mqd_t q = mq_open(s->name[d], O_CREAT | O_EXCL | O_RDWR, 0600, &a);
        if (q == (mqd_t)-1 && depth > 10) { /* unprivileged: at most msg_max (10) messages */
            a.mq_maxmsg = 10;
            q = mq_open(s->name[d], O_CREAT | O_EXCL | O_RDWR, 0600, &a);
        }
        if (q == (mqd_t)-1) {
            char what[96];
            snprintf(what, sizeof what, "mq_open with %zu-byte messages", size);
            set_err(err, errlen, what, errno);
            if (d)
                mq_unlink(s->name[0]);
            free(s);
            return NULL;
        }
        mq_close(q);
    }
    return s;
}

static void *mq_open_side(void *shared, int side, int index)
{
    (void)index;
    mq_shared *s = shared;
    mq_ep *e = xmalloc(sizeof *e);
    e->rd = mq_open(s->name[side ? 0 : 1], O_RDONLY);
    e->wr = mq_open(s->name[side ? 1 : 0], O_WRONLY);
    if (e->rd == (mqd_t)-1 || e->wr == (mqd_t)-1)
        compare_fail("mq_open", strerror(errno));
    e->buf = NULL;
    return e;
}

static void mq_put(void *ep, uint64_t tag, size_t size)
{
    mq_ep *e = ep;
    if (!e->buf)
        e->buf = xmalloc(size);
    payload_fill(e->buf, tag, size);
    while (mq_send(e->wr, (const char *)e->buf, size, 0))
        if (errno != EINTR)
            compare_fail("mq_send", strerror(errno));
}

static uint64_t mq_get(void *ep, size_t size)
{
    mq_ep *e = ep;
    if (!e->buf)
        e->buf = xmalloc(size);
    ssize_t n;
    while ((n = mq_receive(e->rd, (char *)e->buf, size, NULL)) < 0)
        if (errno != EINTR)
            compare_fail("mq_receive", strerror(errno));
    return (size_t)n == size ? payload_tag(e->buf, size) : TAG_BAD;
}

static void mq_close_side(void *ep)
{
    mq_ep *e = ep;
    mq_close(e->rd);
    mq_close(e->wr);
    free(e->buf);
    free(e);
}

static void mq_teardown(void *shared)
{
    mq_shared *s = shared;
    mq_unlink(s->name[0]);
    mq_unlink(s->name[1]);
    free(s);
}

const transport os_peers[N_OS_PEERS] = {
    {"pipe", "copy", 1, 1, NULL, pipe_setup, stream_open, stream_put, stream_get, NULL,
     stream_close, stream_teardown, NULL},
    {"uds", "copy", 1, 1, NULL, uds_setup, stream_open, stream_put, stream_get, NULL,
     stream_close, stream_teardown, NULL},
    {"posix-mq", "copy", 1, 1, NULL, mq_setup, mq_open_side, mq_put, mq_get, NULL, mq_close_side,
     mq_teardown, NULL},
};
