/* messenger: the IPC transport, a socket-like connection between processes of one machine.
 *
 * A server listens on a path (a Unix domain socket on POSIX systems, a named pipe on Windows),
 * clients connect to it,
 * and each connection carries whole messages (frames: a length, then that many bytes, up to a
 * limit) or, with MSGR_IPC_STREAM, a plain byte stream for protocols that frame themselves (for
 * example JSON-RPC, one JSON text per line). Over a framed connection one process can also hand
 * another a memory region (msgr_ipc_send_region): the region's descriptor travels with the
 * frame, so unrelated processes share a bus without any name in the file system.
 *
 * Paths: at most MSGR_IPC_PATH_MAX bytes (the platform's sun_path less its NUL), never cut;
 * a longer one is MSGR_ENAMETOOLONG, unless MSGR_IPC_LONG_PATH binds or connects through the
 * path's directory opened by descriptor (Linux), where only the last component must fit.
 * Relative paths are resolved against the working directory at the call. A socket file left by
 * a dead listener is reclaimed by the next listen; a live listener gives MSGR_EADDRINUSE.
 * Socket files are created with mode 0600 (opts.mode) before anyone can connect.
 *
 * Windows: a path is a pipe name. One that starts with \\.\pipe\ is used as it stands; any
 * other is made absolute against the working directory and placed under \\.\pipe\ (its
 * backslashes turned into slashes), 256 characters in all or MSGR_ENAMETOOLONG. Mode 0600
 * admits the creating user only; group or other bits give the pipe default security. Pipes
 * leave nothing behind; MSGR_IPC_ABSTRACT changes nothing there and MSGR_IPC_LONG_PATH is
 * MSGR_ENOSYS. A region is handed over as a handle the sender duplicates into the receiver's
 * process: accept regions only from peers you trust (msgr_ipc_peer_get). *
 * End of stream: when the peer closes or dies, recv returns MSGR_EPIPE once everything it sent
 * has been read. A peer that sends a frame over the limit, or a frame header that cannot be
 * valid, has its connection failed: MSGR_EMSGSIZE or MSGR_ECORRUPT, with msgr_last_error()
 * naming the length and the limit, and every later call on it returns MSGR_EPIPE.
 *
 * Thread-safety: a server or connection is used by one thread at a time (send and recv on one
 * connection from two threads need the caller's lock). Timeouts: timeout_ns < 0 waits without
 * limit, 0 tries once (MSGR_EAGAIN), > 0 waits at most that long (MSGR_ETIMEDOUT).
 */
#ifndef MSGR_IPC_H
#define MSGR_IPC_H

#include "export.h"
#include "region.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msgr_ipc_server msgr_ipc_server;
typedef struct msgr_ipc_conn msgr_ipc_conn;

/* Longest path accepted without MSGR_IPC_LONG_PATH: 107 on Linux, 103 on macOS; on Windows
 * the whole pipe name, \\.\pipe\ and the absolute path included, has at most 256. */
#if defined(_WIN32)
#define MSGR_IPC_PATH_MAX 256
#elif defined(__APPLE__)
#define MSGR_IPC_PATH_MAX 103
#else
#define MSGR_IPC_PATH_MAX 107
#endif

/* Flags for msgr_ipc_opts.flags. */
#define MSGR_IPC_STREAM    0x1u /* a byte stream: send writes bytes, recv returns what came */
#define MSGR_IPC_ABSTRACT  0x2u /* Linux: the abstract namespace (no socket file at all) */
#define MSGR_IPC_LONG_PATH 0x4u /* Linux: paths longer than MSGR_IPC_PATH_MAX (see above) */
/* Fast local connection (framed; set on both listen and connect): at connect the client hands
 * the server a region with a ring each way (MSGR_IPC_FAST_CAPACITY bytes each), and frames
 * travel through the rings at ring speed; the socket stays open only to tell when the peer
 * closes or dies (end of stream, as on the socket path, after what it sent; a sender notices
 * within 4096 frames, or when the ring is full). Frames are limited to the ring's largest
 * record as well as max_frame; regions are not handed over on it. */
#define MSGR_IPC_FAST      0x8u
#define MSGR_IPC_FAST_CAPACITY (1u << 20)

/* Options. Zero-initialised (or NULL) means: framed, 16 MiB frames, mode 0600, 5 s connect. */
typedef struct msgr_ipc_opts {
    uint32_t size_of;           /* sizeof(msgr_ipc_opts), or 0 */
    uint32_t flags;             /* MSGR_IPC_* */
    uint32_t max_frame;         /* largest frame sent or accepted, bytes; 0 means 16 MiB */
    uint32_t mode;              /* listen: the socket file's permission bits; 0 means 0600 */
    int64_t connect_timeout_ns; /* connect: how long to retry a listener that is not up yet
                                   (missing path, full backlog); 0 means 5 s, < 0 no retry */
} msgr_ipc_opts;

/* Default frame limit. */
#define MSGR_IPC_DEFAULT_MAX_FRAME (16u << 20)

/* Listens on `path`. Errors: MSGR_EINVAL (NULL, empty path, bad opts), MSGR_ENAMETOOLONG (the
 * detail names the path's length and the limit), MSGR_EADDRINUSE (a live listener), MSGR_EACCES,
 * MSGR_ENOENT (missing directory), MSGR_ENOSYS (an option this system lacks). */
MSGR_API int msgr_ipc_listen(const char *path, const msgr_ipc_opts *opts, msgr_ipc_server **out);

/* Waits for the next client. The connection inherits the server's options. Errors:
 * MSGR_EAGAIN / MSGR_ETIMEDOUT, MSGR_ECANCELED (msgr_ipc_accept_cancel), MSGR_EINVAL,
 * MSGR_ENOMEM, MSGR_EIO. */
MSGR_API int msgr_ipc_accept(msgr_ipc_server *srv, msgr_ipc_conn **out, int64_t timeout_ns);

/* Makes the accept waiting on srv now return MSGR_ECANCELED, or the next one if none waits
 * (each call cancels one accept). Any thread; the only call that may run beside an accept. */
MSGR_API void msgr_ipc_accept_cancel(msgr_ipc_server *srv);

/* Connects to the listener at `path`, retrying within opts.connect_timeout_ns while there is
 * none yet. Errors: MSGR_ECONNREFUSED / MSGR_ENOENT (nobody listens, after the retries),
 * MSGR_ENAMETOOLONG, MSGR_EACCES, MSGR_EINVAL. */
MSGR_API int msgr_ipc_connect(const char *path, const msgr_ipc_opts *opts, msgr_ipc_conn **out);

/* Framed: sends one frame of `len` bytes (0 allowed); returns 0. Stream: writes all `len`
 * bytes; returns 0. Errors: MSGR_EMSGSIZE (over max_frame), MSGR_EPIPE (peer gone),
 * MSGR_ETIMEDOUT / MSGR_EAGAIN (nothing or, stream only, part was written), MSGR_EINVAL. */
MSGR_API int msgr_ipc_send(msgr_ipc_conn *c, const void *data, size_t len, int64_t timeout_ns);

/* Framed: receives the next frame into buf and returns its length; a frame larger than `cap`
 * stays pending (MSGR_EMSGSIZE; msgr_ipc_pending() tells its size). Stream: returns 1..cap bytes
 * as they come. Errors: MSGR_EPIPE (end of stream), MSGR_EAGAIN / MSGR_ETIMEDOUT, MSGR_EMSGSIZE
 * or MSGR_ECORRUPT (the peer broke the framing: the connection is failed), MSGR_EINVAL. */
MSGR_API int msgr_ipc_recv(msgr_ipc_conn *c, void *buf, size_t cap, int64_t timeout_ns);

/* Framed: the size of the frame a recv returned MSGR_EMSGSIZE for, or 0. */
MSGR_API size_t msgr_ipc_pending(const msgr_ipc_conn *c);

/* Hands region r to the peer with a frame of `len` bytes of `note` (what it is for): the peer
 * maps the same memory. Framed connections only; r must be backed by a descriptor (shm, file,
 * or anonymous with MSGR_REGION_TRANSFERABLE or MSGR_REGION_GROWABLE). r stays the caller's.
 * Errors: MSGR_ESTATE (stream connection), MSGR_EINVAL (anonymous memory without a descriptor),
 * MSGR_ENOSYS (no descriptor passing here), and msgr_ipc_send's. */
MSGR_API int msgr_ipc_send_region(msgr_ipc_conn *c, msgr_region *r, const void *note, size_t len);

/* Receives a region sent with msgr_ipc_send_region (the next frame must be one) into *out, its
 * note into buf (returns the note's length). The region is the caller's to close. Errors:
 * MSGR_ESTATE (the next frame is plain data: read it with msgr_ipc_recv), msgr_ipc_recv's, and
 * msgr_region_open_file's for a region that fails its checks. */
MSGR_API int msgr_ipc_recv_region(msgr_ipc_conn *c, msgr_region **out, void *buf, size_t cap,
                                  int64_t timeout_ns);

/* The connected peer: its process id and user id as the kernel saw them at connect time
 * (Windows: the pid, uid 0; macOS: the uid, pid 0). Errors: MSGR_ENOSYS where the system
 * cannot tell, MSGR_EINVAL. */
typedef struct msgr_ipc_peer {
    int32_t pid;
    uint32_t uid;
} msgr_ipc_peer;
MSGR_API int msgr_ipc_peer_get(const msgr_ipc_conn *c, msgr_ipc_peer *out);

/* MSGR_IPC_FAST connections: how a send or receive waits on its ring, as msgr_ring_set_wait
 * (spins, then yields, then sleeps; UINT32_MAX spins: never sleeps, lowest latency, one busy
 * core). Socket connections wait in the kernel and ignore it. Set before concurrent use. */
MSGR_API void msgr_ipc_set_wait(msgr_ipc_conn *c, uint32_t spins, uint32_t yields);

/* The native descriptor (a socket; on Windows the pipe's HANDLE, and for a server the event
 * signalled when a client is waiting), for poll/epoll/libuv: readable when recv would not wait
 * (data, end of stream or an error). Owned by the handle; -1 for NULL. A frame may arrive in
 * parts: after a readable event, recv with timeout 0 may still give MSGR_EAGAIN. */
MSGR_API intptr_t msgr_ipc_conn_fd(const msgr_ipc_conn *c);
MSGR_API intptr_t msgr_ipc_server_fd(const msgr_ipc_server *s);

/* Closes and frees (NULL accepted). Closing a server removes its socket file, in the process
 * that listened only (a forked child closing its copy leaves the listener's file in place). */
MSGR_API void msgr_ipc_close(msgr_ipc_conn *c);
MSGR_API void msgr_ipc_server_close(msgr_ipc_server *s);

#ifdef __cplusplus
}
#endif
#endif
