/* messenger: the IPC transport on POSIX systems: Unix domain stream sockets, frames (frame.h),
 * regions handed over as descriptors (SCM_RIGHTS). Everything a peer sends is checked before
 * use; a peer that breaks the framing has its connection failed, never trusted further.
 *
 * Receiving reads ahead into the connection's input buffer (one system call brings many small
 * frames) and assembles the current frame from it (its header, then its payload; a large
 * payload is read straight into place), so a timeout can end a call anywhere inside a frame
 * without losing bytes: the next call goes on where it stopped. Descriptors that arrive are
 * queued in order and each region frame takes the oldest: a peer that attaches descriptors to
 * data frames can only have them checked as regions, and at most FDS_MAX are held.
 */
#define _GNU_SOURCE
#include "msgr/ipc.h"
#include "msgr/error.h"
#include "msgr/ring.h"
#include "frame.h"
#include "os/error_detail.h"
#include "os/os.h"
#include "../../mmap/region_fd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define FDS_MAX 4        /* descriptors held for region frames not read yet */
#define IN_CAP (64u << 10) /* read-ahead buffer per connection */

struct msgr_ipc_server {
    int fd;
    char *path; /* the socket file to remove at close; NULL in the abstract namespace */
    int32_t pid; /* the listening process: a forked child's close leaves the file alone */
    msgr_ipc_opts o;
};

struct msgr_ipc_conn {
    int fd;
    msgr_ipc_opts o;
    int failed;         /* the framing broke or a send was cut: only MSGR_EPIPE from here on */
    int eof;            /* the peer's end of stream was seen */
    uint8_t hdr[MSGR__FRAME_HDR];
    uint32_t hdr_got;   /* header bytes read of the current frame */
    uint32_t want, got; /* the current frame's length and payload bytes read */
    uint16_t kind;
    uint8_t *buf;       /* the current frame's payload */
    uint32_t buf_cap;
    int fds[FDS_MAX];   /* descriptors received and not yet claimed by a region frame */
    int nfds;
    uint8_t *in;        /* read-ahead: bytes [in_start, in_end) are received, not yet used */
    uint32_t in_start, in_end;
    msgr_region *fast;  /* MSGR_IPC_FAST: the region of the two rings */
    msgr_ring *tx, *rx; /* ... this side's sending and receiving ring */
    uint32_t sends;     /* ... frames sent, for looking at the socket now and then */
};

static int fast_setup(msgr_ipc_conn *c, int client, uint64_t deadline);
static int fast_send(msgr_ipc_conn *c, const void *data, size_t len, int64_t timeout_ns);
static int fast_recv(msgr_ipc_conn *c, void *buf, size_t cap, uint64_t deadline);

static int opts_read(const msgr_ipc_opts *in, msgr_ipc_opts *o)
{
    memset(o, 0, sizeof *o);
    if (in) {
        if (in->size_of != 0 && in->size_of < sizeof *in)
            return MSGR_EINVAL;
        *o = *in;
        if (o->flags & ~(MSGR_IPC_STREAM | MSGR_IPC_ABSTRACT | MSGR_IPC_LONG_PATH | MSGR_IPC_FAST))
            return MSGR_EINVAL;
        if ((o->flags & MSGR_IPC_FAST) && (o->flags & MSGR_IPC_STREAM))
            return msgr__fail(MSGR_EINVAL, "a fast connection carries frames, not a stream");
    }
    if (!o->max_frame)
        o->max_frame = MSGR_IPC_DEFAULT_MAX_FRAME;
    if (!o->mode)
        o->mode = 0600;
    if (!o->connect_timeout_ns)
        o->connect_timeout_ns = 5000000000ll;
    return 0;
}

static int sock_errno(int e)
{
    switch (e) {
    case ENOENT: case ENOTDIR: return MSGR_ENOENT;
    case EACCES: case EPERM: case EROFS: return MSGR_EACCES;
    case ECONNREFUSED: return MSGR_ECONNREFUSED;
    case EADDRINUSE: return MSGR_EADDRINUSE;
    case EPIPE: case ECONNRESET: return MSGR_EPIPE;
    case ENOMEM: case ENOBUFS: case EMFILE: case ENFILE: return MSGR_ENOMEM;
    case ENAMETOOLONG: return MSGR_ENAMETOOLONG;
    default: return MSGR_EIO;
    }
}

/* ---- addresses ---- */

/* The address for `path`: as given; in the abstract namespace; or, for a long path with
 * MSGR_IPC_LONG_PATH, through its directory opened by descriptor (*dirfd: close it after the
 * bind or connect). *alen: the address length to pass. */
static int make_addr(const char *path, uint32_t flags, struct sockaddr_un *a, socklen_t *alen,
                     int *dirfd)
{
    *dirfd = -1;
    if (!path || !*path)
        return MSGR_EINVAL;
    size_t n = strlen(path), room = sizeof a->sun_path;
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (flags & MSGR_IPC_ABSTRACT) {
#ifdef __linux__
        if (n > room - 1)
            return msgr__fail(MSGR_ENAMETOOLONG, "abstract socket name '%.40s...' is %zu bytes; "
                              "the limit is %zu", path, n, room - 1);
        memcpy(a->sun_path + 1, path, n); /* a leading NUL: no file */
        *alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
        return 0;
#else
        return msgr__fail(MSGR_ENOSYS, "abstract socket names exist on Linux only");
#endif
    }
    if (n < room) {
        memcpy(a->sun_path, path, n + 1);
        *alen = (socklen_t)sizeof *a;
        return 0;
    }
    if (!(flags & MSGR_IPC_LONG_PATH))
        return msgr__fail(MSGR_ENAMETOOLONG, "socket path '%.40s...' is %zu bytes; the limit is "
                          "%zu (MSGR_IPC_LONG_PATH binds through its directory)", path, n,
                          room - 1);
#ifdef __linux__
    const char *slash = strrchr(path, '/');
    if (!slash)
        return msgr__fail(MSGR_ENAMETOOLONG, "socket name of %zu bytes; the limit is %zu", n,
                          room - 1);
    char dir[4096];
    size_t dn = (size_t)(slash - path);
    if (dn >= sizeof dir)
        return MSGR_ENAMETOOLONG;
    memcpy(dir, path, dn ? dn : 1);
    dir[dn ? dn : 1] = 0;
    int d = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return msgr__fail(sock_errno(errno), "socket directory '%s': %s", dir, strerror(errno));
    int k = snprintf(a->sun_path, room, "/proc/self/fd/%d/%s", d, slash + 1);
    if (k < 0 || (size_t)k >= room) {
        close(d);
        return msgr__fail(MSGR_ENAMETOOLONG, "socket file name '%s' is too long even through "
                          "its directory (limit %zu in all)", slash + 1, room - 1);
    }
    *dirfd = d;
    *alen = (socklen_t)sizeof *a;
    return 0;
#else
    return msgr__fail(MSGR_ENOSYS, "MSGR_IPC_LONG_PATH needs Linux");
#endif
}

static int new_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

/* ---- listening ---- */

int msgr_ipc_listen(const char *path, const msgr_ipc_opts *opts, msgr_ipc_server **out)
{
    msgr_ipc_opts o;
    struct sockaddr_un a;
    socklen_t alen;
    int dirfd;
    if (!out)
        return MSGR_EINVAL;
    int rc = opts_read(opts, &o);
    if (rc)
        return rc;
    if ((rc = make_addr(path, o.flags, &a, &alen, &dirfd)))
        return rc;
    int fd = new_socket();
    if (fd < 0) {
        rc = sock_errno(-fd);
        goto out;
    }
    int abstract = (o.flags & MSGR_IPC_ABSTRACT) != 0;
    if (bind(fd, (struct sockaddr *)&a, alen) != 0) {
        int e = errno;
        struct stat st;
        if (e != EADDRINUSE || abstract) {
            rc = msgr__fail(sock_errno(e), "listen on '%s': %s", path, strerror(e));
            goto out;
        }
        /* A socket file is there: a live listener answers a connect, a dead one's file
         * refuses it and is ours to reclaim; anything but a socket is left alone. */
        if (lstat(a.sun_path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
            rc = msgr__fail(MSGR_EEXIST, "listen on '%s': the path exists and is no socket", path);
            goto out;
        }
        int probe = new_socket();
        int live = probe >= 0 && connect(probe, (struct sockaddr *)&a, alen) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            rc = msgr__fail(MSGR_EADDRINUSE, "listen on '%s': a live listener has it", path);
            goto out;
        }
        unlink(a.sun_path);
        if (bind(fd, (struct sockaddr *)&a, alen) != 0) {
            e = errno;
            rc = msgr__fail(sock_errno(e), "listen on '%s': %s", path, strerror(e));
            goto out;
        }
    }
    /* The mode is set before listen(): until then every connect is refused, so nobody gets
     * in through the umask's bits. */
    if (!abstract && chmod(a.sun_path, o.mode) != 0) {
        rc = sock_errno(errno);
        unlink(a.sun_path);
        goto out;
    }
    if (listen(fd, 128) != 0) {
        rc = sock_errno(errno);
        if (!abstract)
            unlink(a.sun_path);
        goto out;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* accept after poll never blocks */
    msgr_ipc_server *s = calloc(1, sizeof *s);
    char *p = abstract ? NULL : strdup(path);
    if (!s || (!abstract && !p)) {
        free(s);
        free(p);
        if (!abstract)
            unlink(a.sun_path);
        rc = MSGR_ENOMEM;
        goto out;
    }
    s->fd = fd;
    s->path = p;
    s->pid = msgr_os_pid();
    s->o = o;
    *out = s;
    fd = -1;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

/* Waits until fd is ready for `events` or the deadline passes (UINT64_MAX: none; 0: look
 * once). Returns 0, MSGR_EAGAIN (deadline 0) or MSGR_ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        int ms;
        if (deadline == UINT64_MAX) {
            ms = -1;
        } else if (deadline == 0) {
            ms = 0;
        } else {
            uint64_t now = msgr_os_now_ns();
            ms = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
        }
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, ms);
        if (n > 0)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 && ms != 0 && deadline != UINT64_MAX && msgr_os_now_ns() < deadline)
            continue; /* woke a little early */
        return deadline == 0 ? MSGR_EAGAIN : MSGR_ETIMEDOUT;
    }
}

static uint64_t deadline_of(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return UINT64_MAX;
    if (timeout_ns == 0)
        return 0;
    return msgr_os_now_ns() + (uint64_t)timeout_ns;
}

static msgr_ipc_conn *conn_new(int fd, const msgr_ipc_opts *o)
{
    msgr_ipc_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->o = *o;
    return c;
}

int msgr_ipc_accept(msgr_ipc_server *srv, msgr_ipc_conn **out, int64_t timeout_ns)
{
    if (!srv || !out)
        return MSGR_EINVAL;
    uint64_t deadline = deadline_of(timeout_ns);
    for (;;) {
        int rc = wait_fd(srv->fd, POLLIN, deadline);
        if (rc)
            return rc;
        int fd = accept4(srv->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                continue; /* another thread took it, or the client gave up */
            return sock_errno(errno);
        }
        msgr_ipc_conn *c = conn_new(fd, &srv->o);
        if (!c) {
            close(fd);
            return MSGR_ENOMEM;
        }
        if ((srv->o.flags & MSGR_IPC_FAST) && (rc = fast_setup(c, 0, deadline_of(5000000000ll)))) {
            msgr_ipc_close(c);
            return rc;
        }
        *out = c;
        return 0;
    }
}

int msgr_ipc_connect(const char *path, const msgr_ipc_opts *opts, msgr_ipc_conn **out)
{
    msgr_ipc_opts o;
    struct sockaddr_un a;
    socklen_t alen;
    int dirfd;
    if (!out)
        return MSGR_EINVAL;
    int rc = opts_read(opts, &o);
    if (rc)
        return rc;
    if ((rc = make_addr(path, o.flags, &a, &alen, &dirfd)))
        return rc;
    uint64_t deadline = o.connect_timeout_ns < 0 ? 0 : msgr_os_now_ns() + (uint64_t)o.connect_timeout_ns;
    uint64_t pause = 1000000;
    for (;;) {
        int fd = new_socket();
        if (fd < 0) {
            rc = sock_errno(-fd);
            break;
        }
        if (connect(fd, (struct sockaddr *)&a, alen) == 0) {
            int fl = fcntl(fd, F_GETFL);
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
            msgr_ipc_conn *c = conn_new(fd, &o);
            if (!c) {
                close(fd);
                rc = MSGR_ENOMEM;
                break;
            }
            if ((o.flags & MSGR_IPC_FAST) && (rc = fast_setup(c, 1, UINT64_MAX))) {
                msgr_ipc_close(c);
                break;
            }
            *out = c;
            rc = 0;
            break;
        }
        int e = errno;
        close(fd);
        /* No listener yet (no file, or a refusal), or its backlog is full: the listener may be
         * starting; try again until the connect timeout. */
        int retry = e == ENOENT || e == ECONNREFUSED || e == EAGAIN;
        if (!retry || msgr_os_now_ns() >= deadline) {
            rc = msgr__fail(sock_errno(e), "connect to '%s': %s", path, strerror(e));
            break;
        }
        msgr_os_sleep_ns(pause); /* polling for a listener that has no way to tell us */
        if (pause < 50000000)
            pause *= 2;
    }
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

/* ---- sending ---- */

/* Fails the connection: from now on every call returns MSGR_EPIPE. Returns `code`. */
static int conn_fail(msgr_ipc_conn *c, int code)
{
    c->failed = 1;
    shutdown(c->fd, SHUT_RDWR);
    return code;
}

/* Writes the iovecs whole (with the descriptor `pass` on the first byte when >= 0). */
static int write_all(msgr_ipc_conn *c, struct iovec *iov, int niov, int pass, uint64_t deadline)
{
    size_t sent = 0;
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } ctl;
    for (;;) {
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)niov;
        if (pass >= 0 && sent == 0) {
            memset(&ctl, 0, sizeof ctl);
            m.msg_control = ctl.space;
            m.msg_controllen = sizeof ctl.space;
            struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &pass, sizeof(int));
        }
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return conn_fail(c, MSGR_EPIPE); /* the peer is gone (or never will read) */
            int rc = wait_fd(c->fd, POLLOUT, deadline);
            if (rc) /* a frame cut in the middle cannot be finished later: the stream is lost */
                return sent && !(c->o.flags & MSGR_IPC_STREAM) ? conn_fail(c, rc) : rc;
            continue;
        }
        sent += (size_t)n;
        while (niov && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            niov--;
        }
        if (!niov)
            return 0;
        iov->iov_base = (char *)iov->iov_base + n;
        iov->iov_len -= (size_t)n;
        pass = -1;
    }
}

static int send_frame(msgr_ipc_conn *c, uint16_t kind, const void *data, size_t len, int pass,
                      int64_t timeout_ns)
{
    if (c->failed || c->eof)
        return MSGR_EPIPE;
    if (len > c->o.max_frame)
        return msgr__fail(MSGR_EMSGSIZE, "frame of %zu bytes; the limit is %u", len,
                          c->o.max_frame);
    uint8_t h[MSGR__FRAME_HDR];
    msgr__frame_put(h, (uint32_t)len, kind);
    struct iovec iov[2] = {{h, sizeof h}, {(void *)data, len}};
    return write_all(c, iov, len ? 2 : 1, pass, deadline_of(timeout_ns));
}

int msgr_ipc_send(msgr_ipc_conn *c, const void *data, size_t len, int64_t timeout_ns)
{
    if (!c || (!data && len))
        return MSGR_EINVAL;
    if (c->o.flags & MSGR_IPC_STREAM) {
        if (c->failed)
            return MSGR_EPIPE;
        struct iovec iov = {(void *)data, len};
        return len ? write_all(c, &iov, 1, -1, deadline_of(timeout_ns)) : 0;
    }
    if (c->tx)
        return fast_send(c, data, len, timeout_ns);
    return send_frame(c, MSGR__FRAME_DATA, data, len, -1, timeout_ns);
}

int msgr_ipc_send_region(msgr_ipc_conn *c, msgr_region *r, const void *note, size_t len)
{
    if (!c || !r || (!note && len))
        return MSGR_EINVAL;
    if (c->o.flags & (MSGR_IPC_STREAM | MSGR_IPC_FAST))
        return msgr__fail(MSGR_ESTATE, "regions travel over plain framed connections only");
    int fd = msgr__region_fd(r);
    if (fd < 0)
        return msgr__fail(MSGR_EINVAL, "this anonymous region has no descriptor to hand over "
                          "(create it with MSGR_REGION_TRANSFERABLE)");
    return send_frame(c, MSGR__FRAME_REGION, note, len, fd, -1);
}

/* ---- receiving ---- */

static void close_fds(msgr_ipc_conn *c)
{
    for (int i = 0; i < c->nfds; i++)
        close(c->fds[i]);
    c->nfds = 0;
}

/* Reads up to n bytes into p, keeping descriptors that come along. Returns bytes read (> 0),
 * 0 at end of stream, or a negative code (MSGR_EAGAIN when nothing is there now). */
static ssize_t read_some(msgr_ipc_conn *c, void *p, size_t n)
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * FDS_MAX)];
    } ctl;
    struct iovec iov = {p, n};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.space;
    m.msg_controllen = sizeof ctl.space;
    ssize_t k;
    do
        k = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? MSGR_EAGAIN : sock_errno(errno);
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
            if (c->nfds < FDS_MAX)
                c->fds[c->nfds++] = fd;
            else
                close(fd); /* more than any frame carries: a broken peer's */
        }
    }
    return k;
}

/* Reads until the current frame is complete. 0, or a negative code. */
static int fill_frame(msgr_ipc_conn *c, uint64_t deadline)
{
    for (;;) {
        if (c->failed)
            return MSGR_EPIPE;
        if (c->hdr_got == MSGR__FRAME_HDR && c->got == c->want)
            return 0;
        if (c->eof)
            return MSGR_EPIPE;
        void *p;
        size_t n;
        if (c->hdr_got < MSGR__FRAME_HDR) {
            p = c->hdr + c->hdr_got;
            n = MSGR__FRAME_HDR - c->hdr_got;
        } else {
            p = c->buf + c->got;
            n = c->want - c->got;
        }
        ssize_t k;
        if (c->in_start < c->in_end) { /* bytes read ahead */
            k = (ssize_t)(c->in_end - c->in_start < n ? c->in_end - c->in_start : n);
            memcpy(p, c->in + c->in_start, (size_t)k);
            c->in_start += (uint32_t)k;
        } else if (n >= IN_CAP / 2) { /* a large payload: straight into place */
            k = read_some(c, p, n);
        } else {
            if (!c->in && !(c->in = malloc(IN_CAP)))
                return conn_fail(c, MSGR_ENOMEM);
            k = read_some(c, c->in, IN_CAP);
            if (k > 0) {
                c->in_start = 0;
                c->in_end = (uint32_t)k;
                continue;
            }
        }
        if (k == MSGR_EAGAIN) {
            int rc = wait_fd(c->fd, POLLIN, deadline);
            if (rc)
                return rc;
            continue;
        }
        if (k < 0)
            return conn_fail(c, (int)k);
        if (k == 0) {
            c->eof = 1;
            if (c->hdr_got || c->got)
                return conn_fail(c, msgr__fail(MSGR_ECORRUPT, "the peer's stream ended inside "
                                                "a frame"));
            return MSGR_EPIPE;
        }
        if (c->hdr_got < MSGR__FRAME_HDR) {
            c->hdr_got += (uint32_t)k;
            if (c->hdr_got < MSGR__FRAME_HDR)
                continue;
            int rc = msgr__frame_get(c->hdr, c->o.max_frame, &c->want, &c->kind);
            if (rc == MSGR_EMSGSIZE)
                return conn_fail(c, msgr__fail(rc, "the peer sent a frame of %u bytes; the "
                                               "limit is %u", c->want, c->o.max_frame));
            if (rc)
                return conn_fail(c, msgr__fail(rc, "the peer sent something that is not a "
                                               "frame header"));
            if (c->want > c->buf_cap) {
                uint8_t *nb = realloc(c->buf, c->want);
                if (!nb)
                    return conn_fail(c, MSGR_ENOMEM);
                c->buf = nb;
                c->buf_cap = c->want;
            }
            c->got = 0;
        } else {
            c->got += (uint32_t)k;
        }
    }
}

static void frame_done(msgr_ipc_conn *c)
{
    c->hdr_got = 0;
    c->want = c->got = 0;
}

int msgr_ipc_recv(msgr_ipc_conn *c, void *buf, size_t cap, int64_t timeout_ns)
{
    if (!c || (!buf && cap))
        return MSGR_EINVAL;
    uint64_t deadline = deadline_of(timeout_ns);
    if (c->o.flags & MSGR_IPC_STREAM) {
        if (c->failed || c->eof)
            return MSGR_EPIPE;
        if (cap == 0)
            return 0;
        size_t n = cap > INT32_MAX ? INT32_MAX : cap;
        for (;;) {
            ssize_t k = read_some(c, buf, n);
            close_fds(c);
            if (k > 0)
                return (int)k;
            if (k == 0) {
                c->eof = 1;
                return MSGR_EPIPE;
            }
            if (k != MSGR_EAGAIN)
                return conn_fail(c, (int)k);
            int rc = wait_fd(c->fd, POLLIN, deadline);
            if (rc)
                return rc;
        }
    }
    if (c->rx)
        return fast_recv(c, buf, cap, deadline);
    int rc = fill_frame(c, deadline);
    if (rc)
        return rc;
    if (c->kind != MSGR__FRAME_DATA)
        return msgr__fail(MSGR_ESTATE, "the next frame hands over a region: "
                          "msgr_ipc_recv_region() takes it");
    if (c->want > cap || c->want > INT32_MAX)
        return msgr__fail(MSGR_EMSGSIZE, "the next frame has %u bytes; the buffer %zu", c->want,
                          cap);
    if (c->want) /* an empty frame has no buffer */
        memcpy(buf, c->buf, c->want);
    int len = (int)c->want;
    frame_done(c);
    return len;
}

size_t msgr_ipc_pending(const msgr_ipc_conn *c)
{
    msgr_msg m;
    if (c && c->rx)
        return msgr_ring_peek(c->rx, &m) == 0 ? m.len : 0;
    if (!c || c->hdr_got < MSGR__FRAME_HDR || c->got < c->want)
        return 0;
    return c->want;
}

int msgr_ipc_recv_region(msgr_ipc_conn *c, msgr_region **out, void *buf, size_t cap,
                         int64_t timeout_ns)
{
    if (!c || !out || (!buf && cap))
        return MSGR_EINVAL;
    if (c->o.flags & MSGR_IPC_STREAM)
        return msgr__fail(MSGR_ESTATE, "regions travel over framed connections only");
    int rc = fill_frame(c, deadline_of(timeout_ns));
    if (rc)
        return rc;
    if (c->kind != MSGR__FRAME_REGION)
        return msgr__fail(MSGR_ESTATE, "the next frame is data: msgr_ipc_recv() takes it");
    if (c->want > cap)
        return msgr__fail(MSGR_EMSGSIZE, "the region's note has %u bytes; the buffer %zu",
                          c->want, cap);
    if (c->nfds == 0) {
        frame_done(c);
        return conn_fail(c, msgr__fail(MSGR_ECORRUPT, "a region frame came without its "
                                       "descriptor"));
    }
    int fd = c->fds[0];
    memmove(c->fds, c->fds + 1, sizeof(int) * (size_t)--c->nfds);
    int len = (int)c->want;
    if (c->want) /* an empty frame has no buffer */
        memcpy(buf, c->buf, c->want);
    frame_done(c);
    if ((rc = msgr__region_adopt_fd(fd, out)))
        return msgr__fail(rc, "the region handed over fails its checks: %s", msgr_strerror(rc));
    return len;
}

/* ---- fast local connections (MSGR_IPC_FAST) ----
 * The client makes a nameless region with two rings (client to server first) and hands it over
 * as the connection's first frame; from then on frames go through the rings, and the socket
 * only tells the peer's end: every wait on a ring is cut into slices, and between slices the
 * socket is looked at. End of stream is reported only once the receiving ring is empty, so
 * nothing the peer committed before it closed or died is lost. */

#define FAST_NOTE "msgr-fast-1"
#define FAST_SLICE_NS 10000000 /* how often a wait on a ring looks at the socket */
#define FAST_LOOK_EVERY 4096u  /* sends between looks at the socket while the ring has room */

static int fast_setup(msgr_ipc_conn *c, int client, uint64_t deadline)
{
    size_t one = msgr_ring_footprint(MSGR_IPC_FAST_CAPACITY);
    msgr_ring_opts ro = {.capacity = MSGR_IPC_FAST_CAPACITY};
    int rc;
    if (client) {
        msgr_region_opts go = {.flags = MSGR_REGION_TRANSFERABLE};
        if ((rc = msgr_region_create_anon(2 * one, &go, &c->fast)) ||
            (rc = msgr_ring_create(msgr_region_base(c->fast), one, &ro, &c->tx)) ||
            (rc = msgr_ring_create((char *)msgr_region_base(c->fast) + one, one, &ro, &c->rx)))
            return rc;
        msgr_region_prefault(c->fast); /* no page faults on the rings' first lap */
        int fd = msgr__region_fd(c->fast);
        return send_frame(c, MSGR__FRAME_REGION, FAST_NOTE, sizeof FAST_NOTE - 1, fd, -1);
    }
    char note[32];
    uint32_t flags = c->o.flags;
    c->o.flags &= ~MSGR_IPC_FAST; /* the hand-over itself is a plain frame */
    rc = fill_frame(c, deadline);
    if (rc == 0 && (c->kind != MSGR__FRAME_REGION || c->want != sizeof FAST_NOTE - 1))
        rc = msgr__fail(MSGR_ECORRUPT, "the client did not open a fast connection (it must "
                        "pass MSGR_IPC_FAST too)");
    int64_t left = deadline == UINT64_MAX ? -1 : (int64_t)(deadline - msgr_os_now_ns());
    if (rc == 0 && (rc = msgr_ipc_recv_region(c, &c->fast, note, sizeof note, left < 0 ? 0 : left)) >= 0)
        rc = memcmp(note, FAST_NOTE, sizeof FAST_NOTE - 1) ? MSGR_ECORRUPT : 0;
    c->o.flags = flags;
    if (rc)
        return rc;
    if (msgr_region_size(c->fast) < 2 * one)
        return msgr__fail(MSGR_ECORRUPT, "the fast connection's region is too small");
    msgr_region_prefault(c->fast); /* page tables are per process */
    /* Attaching checks every header field the peer wrote. */
    if ((rc = msgr_ring_attach(msgr_region_base(c->fast), one, NULL, &c->rx)) ||
        (rc = msgr_ring_attach((char *)msgr_region_base(c->fast) + one, one, NULL, &c->tx)))
        return rc;
    return 0;
}

/* Whether the peer has closed or died: its end of the socket is readable with nothing in it. */
static int peer_gone(msgr_ipc_conn *c)
{
    if (c->eof)
        return 1;
    struct pollfd p = {c->fd, POLLIN, 0};
    char b;
    if (poll(&p, 1, 0) > 0 && recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0)
        c->eof = 1;
    return c->eof;
}

/* The slice to wait on a ring now, or 0 when the deadline has passed. */
static int64_t slice_of(uint64_t deadline)
{
    if (deadline == UINT64_MAX)
        return FAST_SLICE_NS;
    uint64_t now = msgr_os_now_ns();
    if (now >= deadline)
        return 0;
    return deadline - now < FAST_SLICE_NS ? (int64_t)(deadline - now) : FAST_SLICE_NS;
}

static int fast_send(msgr_ipc_conn *c, const void *data, size_t len, int64_t timeout_ns)
{
    /* The socket is looked at every FAST_LOOK_EVERY sends, not on each (a system call would
     * cost more than the send): a peer that died is noticed within that many frames, or at
     * once when the ring is full. */
    if (c->failed || c->eof || (++c->sends % FAST_LOOK_EVERY == 0 && peer_gone(c)))
        return MSGR_EPIPE;
    size_t most = msgr_ring_max_payload(MSGR_IPC_FAST_CAPACITY);
    if (most > c->o.max_frame)
        most = c->o.max_frame;
    if (len > most)
        return msgr__fail(MSGR_EMSGSIZE, "frame of %zu bytes; this fast connection carries "
                          "%zu at most", len, most);
    uint64_t deadline = deadline_of(timeout_ns);
    for (;;) {
        int rc = msgr_ring_send_wait(c->tx, 0, data, len, deadline == 0 ? 0 : slice_of(deadline));
        if (rc != MSGR_ETIMEDOUT && rc != MSGR_EAGAIN)
            return rc;
        if (peer_gone(c)) /* a full ring nobody will ever empty */
            return MSGR_EPIPE;
        if (deadline != UINT64_MAX && msgr_os_now_ns() >= deadline)
            return deadline == 0 ? MSGR_EAGAIN : MSGR_ETIMEDOUT;
    }
}

static int fast_recv(msgr_ipc_conn *c, void *buf, size_t cap, uint64_t deadline)
{
    if (c->failed)
        return MSGR_EPIPE;
    for (;;) {
        msgr_msg info;
        int n = msgr_ring_recv_wait(c->rx, buf, cap, &info, deadline == 0 ? 0 : slice_of(deadline));
        if (n == MSGR_EMSGSIZE)
            return msgr__fail(n, "the next frame has %u bytes; the buffer %zu", info.len, cap);
        if (n != MSGR_ETIMEDOUT && n != MSGR_EAGAIN)
            return n;
        /* Empty: the peer may be gone. Look again after seeing that, for what it committed
         * just before. */
        if (peer_gone(c)) {
            n = msgr_ring_recv(c->rx, buf, cap, &info);
            return n == MSGR_EAGAIN ? MSGR_EPIPE : n;
        }
        if (deadline != UINT64_MAX && msgr_os_now_ns() >= deadline)
            return deadline == 0 ? MSGR_EAGAIN : MSGR_ETIMEDOUT;
    }
}

int msgr_ipc_peer_get(const msgr_ipc_conn *c, msgr_ipc_peer *out)
{
    if (!c || !out)
        return MSGR_EINVAL;
#ifdef SO_PEERCRED
    struct ucred u;
    socklen_t n = sizeof u;
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &u, &n) != 0)
        return sock_errno(errno);
    out->pid = (int32_t)u.pid;
    out->uid = (uint32_t)u.uid;
    return 0;
#else
    uid_t uid;
    gid_t gid;
    if (getpeereid(c->fd, &uid, &gid) != 0)
        return MSGR_ENOSYS;
    out->pid = 0; /* not known here */
    out->uid = (uint32_t)uid;
    return 0;
#endif
}

intptr_t msgr_ipc_conn_fd(const msgr_ipc_conn *c) { return c ? c->fd : -1; }
intptr_t msgr_ipc_server_fd(const msgr_ipc_server *s) { return s ? s->fd : -1; }

void msgr_ipc_close(msgr_ipc_conn *c)
{
    if (!c)
        return;
    close_fds(c);
    close(c->fd);
    msgr_ring_close(c->tx);
    msgr_ring_close(c->rx);
    msgr_region_close(c->fast);
    free(c->buf);
    free(c->in);
    free(c);
}

void msgr_ipc_server_close(msgr_ipc_server *s)
{
    if (!s)
        return;
    close(s->fd);
    if (s->path && s->pid == msgr_os_pid())
        unlink(s->path);
    free(s->path);
    free(s);
}
