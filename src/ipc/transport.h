/* messenger: what the IPC transport needs from a platform (internal).
 *
 * conn.c holds everything the platforms share: options, frames and their assembly, the
 * read-ahead buffer, region frames, fast connections. Below it, one file per platform moves
 * bytes over a local connection: Unix domain stream sockets (posix.c) and named pipes in byte
 * mode with overlapped I/O (win32.c). A platform file knows nothing of frames; conn.c knows
 * nothing of sockets or pipes.
 *
 * Deadlines are absolute (msgr_os_now_ns): UINT64_MAX waits without limit, 0 tries once.
 * Reads and writes that wait return MSGR_EAGAIN (deadline 0) or MSGR_ETIMEDOUT when the
 * deadline passes.
 */
#ifndef MSGR_IPC_TRANSPORT_H
#define MSGR_IPC_TRANSPORT_H

#include "msgr/ipc.h"
#include "msgr/region.h"

#include <stddef.h>
#include <stdint.h>

typedef struct msgr__tr msgr__tr;         /* one end of a connection */
typedef struct msgr__tr_srv msgr__tr_srv; /* a listener */

typedef struct msgr__tr_iov {
    const void *p;
    size_t n;
} msgr__tr_iov;

/* What a region frame carries for the region itself: bytes placed in front of the note (the
 * handles' values on Windows; nothing on POSIX) and a descriptor to attach (POSIX; -1 if none). */
#define MSGR__TR_TOKEN_MAX 32u
typedef struct msgr__tr_token {
    uint8_t bytes[MSGR__TR_TOKEN_MAX];
    uint32_t len;
    intptr_t pass;
} msgr__tr_token;

/* Listens on path with options o (already checked by conn.c). Errors as msgr_ipc_listen. */
int msgr__tr_listen(const char *path, const msgr_ipc_opts *o, msgr__tr_srv **out);
/* Waits for the next client. MSGR_ECANCELED after msgr__tr_accept_cancel. */
int msgr__tr_accept(msgr__tr_srv *s, uint64_t deadline, msgr__tr **out);
/* Makes the accept waiting now, or else the next one, return MSGR_ECANCELED. Any thread. */
void msgr__tr_accept_cancel(msgr__tr_srv *s);
intptr_t msgr__tr_srv_native(const msgr__tr_srv *s);
void msgr__tr_srv_close(msgr__tr_srv *s);

/* Connects to the listener at path, retrying within o->connect_timeout_ns. */
int msgr__tr_connect(const char *path, const msgr_ipc_opts *o, msgr__tr **out);

/* Writes every byte of the iovecs, with tok->pass (if >= 0) on the first byte. *sent tells
 * how many went out when the call fails. Errors: MSGR_EPIPE (the peer is gone), the deadline's,
 * others from the system. */
int msgr__tr_write(msgr__tr *t, const msgr__tr_iov *iov, int niov, intptr_t pass,
                   uint64_t deadline, size_t *sent);
/* Reads 1..n bytes, waiting until some come: the count, 0 at end of stream, or a negative code.
 * Descriptors that come along are kept for msgr__tr_region_take (at most a few). */
long msgr__tr_read(msgr__tr *t, void *p, size_t n, uint64_t deadline);
/* Whether the peer has closed or died (looks without waiting; data pending counts as alive). */
int msgr__tr_peer_gone(msgr__tr *t);
/* Stops both directions: the peer sees end of stream. */
void msgr__tr_shutdown(msgr__tr *t);
/* Drops descriptors that came along with stream bytes (a stream carries none). */
void msgr__tr_drop_passed(msgr__tr *t);
int msgr__tr_peer(const msgr__tr *t, msgr_ipc_peer *out);
intptr_t msgr__tr_native(const msgr__tr *t);
void msgr__tr_close(msgr__tr *t);

/* Prepares region r for the peer: tok's bytes go in front of the note, tok->pass with the
 * frame. Errors: MSGR_EINVAL (nothing to hand over), MSGR_ENOSYS. */
int msgr__tr_region_give(msgr__tr *t, msgr_region *r, msgr__tr_token *tok);
/* Undoes a give whose frame did not go out. */
void msgr__tr_region_ungive(msgr__tr *t, msgr__tr_token *tok);
/* How many bytes of token a region frame carries in front of its note on this platform. */
uint32_t msgr__tr_token_bytes(void);
/* Adopts the region of a received region frame; p holds its msgr__tr_token_bytes() token
 * bytes. Errors: MSGR_ECORRUPT (no descriptor came), msgr_region_open_file's. */
int msgr__tr_region_take(msgr__tr *t, const uint8_t *p, msgr_region **out);

#endif
