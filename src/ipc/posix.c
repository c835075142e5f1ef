/* messenger: the IPC transport's POSIX side: Unix domain stream sockets, and region
 * descriptors passed with SCM_RIGHTS (transport.h says what conn.c expects of it).
 *
 * Descriptors that arrive are queued in order and each region frame takes the oldest: a peer
 * that attaches descriptors to data frames can only have them checked as regions, and at most
 * FDS_MAX are held. A cancellable accept polls the listener and a pipe that a cancel writes to.
 */
#define _GNU_SOURCE
#include "transport.h"
#include "msgr/error.h"
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

#define FDS_MAX 4 /* descriptors held for region frames not read yet */

struct msgr__tr_srv {
    int fd;
    int cancel[2]; /* a pipe: a byte in it cancels one accept */
    char *path;    /* the socket file to remove at close; NULL in the abstract namespace */
    int32_t pid;   /* the listening process: a forked child's close leaves the file alone */
};

struct msgr__tr {
    int fd;
    int fds[FDS_MAX]; /* descriptors received and not yet claimed by a region frame */
    int nfds;
};

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

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* Waits until one of fds is ready for `events` or the deadline passes. Returns the index of a
 * ready one, MSGR_EAGAIN (deadline 0) or MSGR_ETIMEDOUT. */
static int wait_fds(struct pollfd *p, int n, uint64_t deadline)
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
        int k = poll(p, (nfds_t)n, ms);
        if (k > 0) {
            for (int i = 0; i < n; i++)
                if (p[i].revents)
                    return i;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k == 0 && ms != 0 && deadline != UINT64_MAX && msgr_os_now_ns() < deadline)
            continue; /* woke a little early */
        return deadline == 0 ? MSGR_EAGAIN : MSGR_ETIMEDOUT;
    }
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
    struct pollfd p = {fd, events, 0};
    int rc = wait_fds(&p, 1, deadline);
    return rc < 0 ? rc : 0;
}

/* ---- listening ---- */

int msgr__tr_listen(const char *path, const msgr_ipc_opts *o, msgr__tr_srv **out)
{
    struct sockaddr_un a;
    socklen_t alen;
    int dirfd, rc;
    if ((rc = make_addr(path, o->flags, &a, &alen, &dirfd)))
        return rc;
    int fd = new_socket();
    if (fd < 0) {
        rc = sock_errno(-fd);
        goto out;
    }
    int abstract = (o->flags & MSGR_IPC_ABSTRACT) != 0;
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
    if (!abstract && chmod(a.sun_path, o->mode) != 0) {
        rc = sock_errno(errno);
        unlink(a.sun_path);
        goto out;
    }
    msgr__tr_srv *s = calloc(1, sizeof *s);
    char *p = abstract ? NULL : strdup(path);
    if (listen(fd, 128) != 0 || !s || (!abstract && !p) || pipe2(s->cancel, O_CLOEXEC) != 0) {
        rc = s && p ? sock_errno(errno) : MSGR_ENOMEM;
        free(s);
        free(p);
        if (!abstract)
            unlink(a.sun_path);
        goto out;
    }
    set_nonblock(fd); /* accept after poll never blocks */
    set_nonblock(s->cancel[0]);
    set_nonblock(s->cancel[1]);
    s->fd = fd;
    s->path = p;
    s->pid = msgr_os_pid();
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

static msgr__tr *tr_new(int fd)
{
    msgr__tr *t = calloc(1, sizeof *t);
    if (!t) {
        close(fd);
        return NULL;
    }
    t->fd = fd;
    return t;
}

int msgr__tr_accept(msgr__tr_srv *s, uint64_t deadline, msgr__tr **out)
{
    for (;;) {
        struct pollfd p[2] = {{s->fd, POLLIN, 0}, {s->cancel[0], POLLIN, 0}};
        int rc = wait_fds(p, 2, deadline);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            char b;
            if (read(s->cancel[0], &b, 1) == 1)
                return MSGR_ECANCELED;
            continue; /* another accept took that cancel */
        }
        int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                continue; /* another thread took it, or the client gave up */
            return sock_errno(errno);
        }
        return (*out = tr_new(fd)) ? 0 : MSGR_ENOMEM;
    }
}

void msgr__tr_accept_cancel(msgr__tr_srv *s)
{
    char b = 1;
    (void)!write(s->cancel[1], &b, 1); /* a full pipe holds cancels enough already */
}

intptr_t msgr__tr_srv_native(const msgr__tr_srv *s) { return s->fd; }

void msgr__tr_srv_close(msgr__tr_srv *s)
{
    close(s->fd);
    close(s->cancel[0]);
    close(s->cancel[1]);
    if (s->path && s->pid == msgr_os_pid())
        unlink(s->path);
    free(s->path);
    free(s);
}

int msgr__tr_connect(const char *path, const msgr_ipc_opts *o, msgr__tr **out)
{
    struct sockaddr_un a;
    socklen_t alen;
    int dirfd, rc;
    if ((rc = make_addr(path, o->flags, &a, &alen, &dirfd)))
        return rc;
    uint64_t deadline = o->connect_timeout_ns < 0 ? 0 : msgr_os_now_ns() + (uint64_t)o->connect_timeout_ns;
    uint64_t pause = 1000000;
    for (;;) {
        int fd = new_socket();
        if (fd < 0) {
            rc = sock_errno(-fd);
            break;
        }
        if (connect(fd, (struct sockaddr *)&a, alen) == 0) {
            set_nonblock(fd);
            rc = (*out = tr_new(fd)) ? 0 : MSGR_ENOMEM;
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

/* ---- moving bytes ---- */

int msgr__tr_write(msgr__tr *t, const msgr__tr_iov *v, int niov, intptr_t pass,
                   uint64_t deadline, size_t *sent)
{
    struct iovec iov[4];
    if (niov > 4)
        return MSGR_EINVAL;
    for (int i = 0; i < niov; i++)
        iov[i] = (struct iovec){(void *)v[i].p, v[i].n};
    struct iovec *at = iov;
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int))];
    } ctl;
    *sent = 0;
    for (;;) {
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = at;
        m.msg_iovlen = (size_t)niov;
        if (pass >= 0 && *sent == 0) {
            int fd = (int)pass;
            memset(&ctl, 0, sizeof ctl);
            m.msg_control = ctl.space;
            m.msg_controllen = sizeof ctl.space;
            struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
            cm->cmsg_level = SOL_SOCKET;
            cm->cmsg_type = SCM_RIGHTS;
            cm->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        }
        ssize_t n = sendmsg(t->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return MSGR_EPIPE; /* the peer is gone (or never will read) */
            int rc = wait_fd(t->fd, POLLOUT, deadline);
            if (rc)
                return rc;
            continue;
        }
        *sent += (size_t)n;
        while (niov && (size_t)n >= at->iov_len) {
            n -= (ssize_t)at->iov_len;
            at++;
            niov--;
        }
        if (!niov)
            return 0;
        at->iov_base = (char *)at->iov_base + n;
        at->iov_len -= (size_t)n;
    }
}

long msgr__tr_read(msgr__tr *t, void *p, size_t n, uint64_t deadline)
{
    union {
        struct cmsghdr h;
        char space[CMSG_SPACE(sizeof(int) * FDS_MAX)];
    } ctl;
    for (;;) {
        struct iovec iov = {p, n};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl.space;
        m.msg_controllen = sizeof ctl.space;
        ssize_t k = recvmsg(t->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(t->fd, POLLIN, deadline);
            if (rc)
                return rc;
            continue;
        }
        if (k < 0)
            return sock_errno(errno);
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
                continue;
            size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < nfd; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
                if (t->nfds < FDS_MAX)
                    t->fds[t->nfds++] = fd;
                else
                    close(fd); /* more than any frame carries: a broken peer's */
            }
        }
        return (long)k;
    }
}

int msgr__tr_peer_gone(msgr__tr *t)
{
    struct pollfd p = {t->fd, POLLIN, 0};
    char b;
    return poll(&p, 1, 0) > 0 && recv(t->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

void msgr__tr_shutdown(msgr__tr *t) { shutdown(t->fd, SHUT_RDWR); }

void msgr__tr_drop_passed(msgr__tr *t)
{
    for (int i = 0; i < t->nfds; i++)
        close(t->fds[i]);
    t->nfds = 0;
}

int msgr__tr_peer(const msgr__tr *t, msgr_ipc_peer *out)
{
#ifdef SO_PEERCRED
    struct ucred u;
    socklen_t n = sizeof u;
    if (getsockopt(t->fd, SOL_SOCKET, SO_PEERCRED, &u, &n) != 0)
        return sock_errno(errno);
    out->pid = (int32_t)u.pid;
    out->uid = (uint32_t)u.uid;
    return 0;
#else
    uid_t uid;
    gid_t gid;
    if (getpeereid(t->fd, &uid, &gid) != 0)
        return MSGR_ENOSYS;
    out->pid = 0; /* not known here */
    out->uid = (uint32_t)uid;
    return 0;
#endif
}

intptr_t msgr__tr_native(const msgr__tr *t) { return t->fd; }

void msgr__tr_close(msgr__tr *t)
{
    msgr__tr_drop_passed(t);
    close(t->fd);
    free(t);
}

/* ---- regions ---- */

int msgr__tr_region_give(msgr__tr *t, msgr_region *r, msgr__tr_token *tok)
{
    (void)t;
    int fd = msgr__region_fd(r);
    if (fd < 0)
        return msgr__fail(MSGR_EINVAL, "this anonymous region has no descriptor to hand over "
                          "(create it with MSGR_REGION_TRANSFERABLE)");
    tok->len = 0;
    tok->pass = fd;
    return 0;
}

void msgr__tr_region_ungive(msgr__tr *t, msgr__tr_token *tok) { (void)t, (void)tok; }

uint32_t msgr__tr_token_bytes(void) { return 0; }

int msgr__tr_region_take(msgr__tr *t, const uint8_t *p, msgr_region **out)
{
    (void)p;
    if (t->nfds == 0)
        return msgr__fail(MSGR_ECORRUPT, "a region frame came without its descriptor");
    int fd = t->fds[0];
    memmove(t->fds, t->fds + 1, sizeof(int) * (size_t)--t->nfds);
    return msgr__region_adopt_fd(fd, out);
}
