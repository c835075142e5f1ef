/* messenger: the IPC transport's shared part: options, frames (frame.h), region frames and
 * fast connections, over a platform's connection (transport.h: sockets or named pipes).
 * Everything a peer sends is checked before use; a peer that breaks the framing has its
 * connection failed, never trusted further.
 *
 * Receiving reads ahead into the connection's input buffer (one system call brings many small
 * frames) and assembles the current frame from it (its header, then its payload; a large
 * payload is read straight into place), so a timeout can end a call anywhere inside a frame
 * without losing bytes: the next call goes on where it stopped.
 */
#include "msgr/ipc.h"
#include "msgr/error.h"
#include "msgr/ring.h"
#include "frame.h"
#include "transport.h"
#include "os/error_detail.h"
#include "os/os.h"

#include <stdlib.h>
#include <string.h>

#define IN_CAP (64u << 10) /* read-ahead buffer per connection */

struct msgr_ipc_server {
    msgr__tr_srv *t;
    msgr_ipc_opts o;
};

struct msgr_ipc_conn {
    msgr__tr *t;
    msgr_ipc_opts o;
    int failed;         /* the framing broke or a send was cut: only MSGR_EPIPE from here on */
    int eof;            /* the peer's end of stream was seen */
    uint8_t hdr[MSGR__FRAME_HDR];
    uint32_t hdr_got;   /* header bytes read of the current frame */
    uint32_t want, got; /* the current frame's length and payload bytes read */
    uint16_t kind;
    uint8_t *buf;       /* the current frame's payload */
    uint32_t buf_cap;
    uint8_t *in;        /* read-ahead: bytes [in_start, in_end) are received, not yet used */
    uint32_t in_start, in_end;
    msgr_region *fast;  /* MSGR_IPC_FAST: the region of the two rings */
    msgr_ring *tx, *rx; /* ... this side's sending and receiving ring */
    uint32_t sends;     /* ... frames sent, for looking at the connection now and then */
    size_t fast_most;   /* ... the largest frame it carries */
    int spin;           /* ... msgr_ipc_set_wait(UINT32_MAX): spin before any timed wait */
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

static uint64_t deadline_of(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return UINT64_MAX;
    if (timeout_ns == 0)
        return 0;
    return msgr_os_now_ns() + (uint64_t)timeout_ns;
}

/* ---- listening and connecting ---- */

int msgr_ipc_listen(const char *path, const msgr_ipc_opts *opts, msgr_ipc_server **out)
{
    msgr_ipc_opts o;
    if (!out || !path || !*path)
        return MSGR_EINVAL;
    int rc = opts_read(opts, &o);
    if (rc)
        return rc;
    msgr_ipc_server *s = calloc(1, sizeof *s);
    if (!s)
        return MSGR_ENOMEM;
    if ((rc = msgr__tr_listen(path, &o, &s->t))) {
        free(s);
        return rc;
    }
    s->o = o;
    *out = s;
    return 0;
}

/* A connection over t (taken; closed on failure), set up as a fast one if asked. */
static int conn_open(msgr__tr *t, const msgr_ipc_opts *o, int client, msgr_ipc_conn **out)
{
    msgr_ipc_conn *c = calloc(1, sizeof *c);
    if (!c) {
        msgr__tr_close(t);
        return MSGR_ENOMEM;
    }
    c->t = t;
    c->o = *o;
    int rc = 0;
    if (o->flags & MSGR_IPC_FAST)
        rc = fast_setup(c, client, client ? UINT64_MAX : deadline_of(5000000000ll));
    if (rc) {
        msgr_ipc_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

int msgr_ipc_accept(msgr_ipc_server *srv, msgr_ipc_conn **out, int64_t timeout_ns)
{
    if (!srv || !out)
        return MSGR_EINVAL;
    msgr__tr *t;
    int rc = msgr__tr_accept(srv->t, deadline_of(timeout_ns), &t);
    return rc ? rc : conn_open(t, &srv->o, 0, out);
}

void msgr_ipc_accept_cancel(msgr_ipc_server *srv)
{
    if (srv)
        msgr__tr_accept_cancel(srv->t);
}

int msgr_ipc_connect(const char *path, const msgr_ipc_opts *opts, msgr_ipc_conn **out)
{
    msgr_ipc_opts o;
    if (!out || !path || !*path)
        return MSGR_EINVAL;
    int rc = opts_read(opts, &o);
    if (rc)
        return rc;
    msgr__tr *t;
    if ((rc = msgr__tr_connect(path, &o, &t)))
        return rc;
    return conn_open(t, &o, 1, out);
}

/* ---- sending ---- */

/* Fails the connection: from now on every call returns MSGR_EPIPE. Returns `code`. */
static int conn_fail(msgr_ipc_conn *c, int code)
{
    c->failed = 1;
    msgr__tr_shutdown(c->t);
    return code;
}

/* Writes iov whole; a frame cut in the middle cannot be finished later, so a framed
 * connection whose write stopped part way is failed (a stream just reports it). */
static int write_all(msgr_ipc_conn *c, const msgr__tr_iov *iov, int niov, intptr_t pass,
                     uint64_t deadline)
{
    size_t sent;
    int rc = msgr__tr_write(c->t, iov, niov, pass, deadline, &sent);
    if (rc == MSGR_EPIPE)
        return conn_fail(c, rc);
    if (rc && sent && !(c->o.flags & MSGR_IPC_STREAM))
        return conn_fail(c, rc);
    return rc;
}

static int send_frame(msgr_ipc_conn *c, uint16_t kind, const msgr__tr_token *tok,
                      const void *data, size_t len, int64_t timeout_ns)
{
    if (c->failed || c->eof)
        return MSGR_EPIPE;
    size_t extra = tok ? tok->len : 0;
    if (len > c->o.max_frame - extra)
        return msgr__fail(MSGR_EMSGSIZE, "frame of %zu bytes; the limit is %zu", len,
                          (size_t)c->o.max_frame - extra);
    uint8_t h[MSGR__FRAME_HDR];
    msgr__frame_put(h, (uint32_t)(len + extra), kind);
    msgr__tr_iov iov[3];
    int n = 0;
    iov[n++] = (msgr__tr_iov){h, sizeof h};
    if (extra)
        iov[n++] = (msgr__tr_iov){tok->bytes, extra};
    if (len)
        iov[n++] = (msgr__tr_iov){data, len};
    return write_all(c, iov, n, tok ? tok->pass : -1, deadline_of(timeout_ns));
}

int msgr_ipc_send(msgr_ipc_conn *c, const void *data, size_t len, int64_t timeout_ns)
{
    if (!c || (!data && len))
        return MSGR_EINVAL;
    if (c->o.flags & MSGR_IPC_STREAM) {
        if (c->failed)
            return MSGR_EPIPE;
        msgr__tr_iov iov = {data, len};
        return len ? write_all(c, &iov, 1, -1, deadline_of(timeout_ns)) : 0;
    }
    if (c->tx)
        return fast_send(c, data, len, timeout_ns);
    return send_frame(c, MSGR__FRAME_DATA, NULL, data, len, timeout_ns);
}

/* Sends region r in a region frame with its note. */
static int send_region(msgr_ipc_conn *c, msgr_region *r, const void *note, size_t len)
{
    msgr__tr_token tok;
    int rc = msgr__tr_region_give(c->t, r, &tok);
    if (rc)
        return rc;
    if ((rc = send_frame(c, MSGR__FRAME_REGION, &tok, note, len, -1)))
        msgr__tr_region_ungive(c->t, &tok);
    return rc;
}

int msgr_ipc_send_region(msgr_ipc_conn *c, msgr_region *r, const void *note, size_t len)
{
    if (!c || !r || (!note && len))
        return MSGR_EINVAL;
    if (c->o.flags & (MSGR_IPC_STREAM | MSGR_IPC_FAST))
        return msgr__fail(MSGR_ESTATE, "regions travel over plain framed connections only");
    return send_region(c, r, note, len);
}

/* ---- receiving ---- */

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
        long k;
        if (c->in_start < c->in_end) { /* bytes read ahead */
            k = (long)(c->in_end - c->in_start < n ? c->in_end - c->in_start : n);
            memcpy(p, c->in + c->in_start, (size_t)k);
            c->in_start += (uint32_t)k;
        } else if (n >= IN_CAP / 2) { /* a large payload: straight into place */
            k = msgr__tr_read(c->t, p, n, deadline);
        } else {
            if (!c->in && !(c->in = malloc(IN_CAP)))
                return conn_fail(c, MSGR_ENOMEM);
            k = msgr__tr_read(c->t, c->in, IN_CAP, deadline);
            if (k > 0) {
                c->in_start = 0;
                c->in_end = (uint32_t)k;
                continue;
            }
        }
        if (k == MSGR_EAGAIN || k == MSGR_ETIMEDOUT)
            return (int)k;
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

static int recv_stream(msgr_ipc_conn *c, void *buf, size_t cap, uint64_t deadline)
{
    if (c->failed || c->eof)
        return MSGR_EPIPE;
    if (cap == 0)
        return 0;
    long k = msgr__tr_read(c->t, buf, cap > INT32_MAX ? INT32_MAX : cap, deadline);
    msgr__tr_drop_passed(c->t);
    if (k > 0)
        return (int)k;
    if (k == 0) {
        c->eof = 1;
        return MSGR_EPIPE;
    }
    if (k == MSGR_EAGAIN || k == MSGR_ETIMEDOUT)
        return (int)k;
    return conn_fail(c, (int)k);
}

int msgr_ipc_recv(msgr_ipc_conn *c, void *buf, size_t cap, int64_t timeout_ns)
{
    if (!c || (!buf && cap))
        return MSGR_EINVAL;
    uint64_t deadline = deadline_of(timeout_ns);
    if (c->o.flags & MSGR_IPC_STREAM)
        return recv_stream(c, buf, cap, deadline);
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

/* Takes the region frame that fill_frame completed: its note into buf. */
static int take_region(msgr_ipc_conn *c, msgr_region **out, void *buf, size_t cap)
{
    if (c->kind != MSGR__FRAME_REGION)
        return msgr__fail(MSGR_ESTATE, "the next frame is data: msgr_ipc_recv() takes it");
    uint32_t skip = msgr__tr_token_bytes();
    if (c->want < skip) {
        frame_done(c);
        return conn_fail(c, msgr__fail(MSGR_ECORRUPT, "a region frame of %u bytes is shorter "
                                       "than its token (%u)", c->want, skip));
    }
    uint32_t note = c->want - skip;
    if (note > cap)
        return msgr__fail(MSGR_EMSGSIZE, "the region's note has %u bytes; the buffer %zu",
                          note, cap);
    int rc = msgr__tr_region_take(c->t, c->buf, out);
    if (note) /* an empty frame has no buffer */
        memcpy(buf, c->buf + skip, note);
    frame_done(c);
    if (rc == MSGR_ECORRUPT)
        return conn_fail(c, rc);
    if (rc)
        return msgr__fail(rc, "the region handed over fails its checks: %s", msgr_strerror(rc));
    return (int)note;
}

int msgr_ipc_recv_region(msgr_ipc_conn *c, msgr_region **out, void *buf, size_t cap,
                         int64_t timeout_ns)
{
    if (!c || !out || (!buf && cap))
        return MSGR_EINVAL;
    if (c->o.flags & MSGR_IPC_STREAM)
        return msgr__fail(MSGR_ESTATE, "regions travel over framed connections only");
    int rc = fill_frame(c, deadline_of(timeout_ns));
    return rc ? rc : take_region(c, out, buf, cap);
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
    c->fast_most = msgr_ring_max_payload(MSGR_IPC_FAST_CAPACITY);
    if (c->fast_most > c->o.max_frame)
        c->fast_most = c->o.max_frame;
    if (client) {
        msgr_region_opts go = {.flags = MSGR_REGION_TRANSFERABLE};
        if ((rc = msgr_region_create_anon(2 * one, &go, &c->fast)) ||
            (rc = msgr_ring_create(msgr_region_base(c->fast), one, &ro, &c->tx)) ||
            (rc = msgr_ring_create((char *)msgr_region_base(c->fast) + one, one, &ro, &c->rx)))
            return rc;
        msgr_region_prefault(c->fast); /* no page faults on the rings' first lap */
        return send_region(c, c->fast, FAST_NOTE, sizeof FAST_NOTE - 1);
    }
    char note[32];
    uint32_t flags = c->o.flags;
    c->o.flags &= ~MSGR_IPC_FAST; /* the hand-over itself is a plain frame */
    rc = fill_frame(c, deadline);
    if (rc == 0 && (c->kind != MSGR__FRAME_REGION ||
                    c->want != msgr__tr_token_bytes() + sizeof FAST_NOTE - 1))
        rc = msgr__fail(MSGR_ECORRUPT, "the client did not open a fast connection (it must "
                        "pass MSGR_IPC_FAST too)");
    if (rc == 0 && (rc = take_region(c, &c->fast, note, sizeof note)) >= 0)
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

/* Whether the peer has closed or died (the connection says so; it carries nothing else). */
static int peer_gone(msgr_ipc_conn *c)
{
    if (!c->eof && msgr__tr_peer_gone(c->t))
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
    if (len > c->fast_most)
        return msgr__fail(MSGR_EMSGSIZE, "frame of %zu bytes; this fast connection carries "
                          "%zu at most", len, c->fast_most);
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

#define FAST_SPIN_LOOKS 4096u /* a few microseconds of looks before the sliced wait */

static int fast_recv(msgr_ipc_conn *c, void *buf, size_t cap, uint64_t deadline)
{
    if (c->failed)
        return MSGR_EPIPE;
    /* Spinning for latency: look a while with no clock read before the sliced wait (each
     * slice reads the clock to set its deadline, a cost a round trip notices). */
    for (unsigned i = 0; c->spin && deadline != 0 && i < FAST_SPIN_LOOKS; i++) {
        msgr_msg info;
        int n = msgr_ring_recv(c->rx, buf, cap, &info);
        if (n == MSGR_EMSGSIZE)
            return msgr__fail(n, "the next frame has %u bytes; the buffer %zu", info.len, cap);
        if (n != MSGR_EAGAIN)
            return n;
        msgr_os_cpu_relax();
    }
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
    return msgr__tr_peer(c->t, out);
}

void msgr_ipc_set_wait(msgr_ipc_conn *c, uint32_t spins, uint32_t yields)
{
    if (c && c->tx && c->rx) {
        msgr_ring_set_wait(c->tx, spins, yields);
        msgr_ring_set_wait(c->rx, spins, yields);
        c->spin = spins == UINT32_MAX;
    }
}

intptr_t msgr_ipc_conn_fd(const msgr_ipc_conn *c) { return c ? msgr__tr_native(c->t) : -1; }
intptr_t msgr_ipc_server_fd(const msgr_ipc_server *s) { return s ? msgr__tr_srv_native(s->t) : -1; }

void msgr_ipc_close(msgr_ipc_conn *c)
{
    if (!c)
        return;
    msgr__tr_close(c->t);
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
    msgr__tr_srv_close(s->t);
    free(s);
}
