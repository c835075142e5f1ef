/* messenger: the IPC transport's Windows side: named pipes in byte mode with overlapped I/O
 * (transport.h says what conn.c expects of it).
 *
 * Names: a path that starts with \\.\pipe\ is a pipe name as it stands; any other path is
 * made absolute against the working directory and placed under \\.\pipe\ with its
 * backslashes turned into slashes (a pipe name cannot hold a backslash after the prefix), so
 * programs that agree on a path meet on one pipe. Longer than 256 characters in all:
 * MSGR_ENAMETOOLONG, never cut. A pipe vanishes with its last handle: nothing is left behind.
 *
 * Accepting: the listener keeps one instance waiting for a client at all times (made at
 * listen, and the next one made as soon as a client takes the current one, before accept
 * returns), so a client never finds the name without an instance; a client that still meets
 * ERROR_PIPE_BUSY (several at once) waits for one with WaitNamedPipe within its connect
 * timeout. An accept waits on its instance's connect event and a cancel event together.
 *
 * Reads and writes are overlapped operations waited for with the deadline; one that times
 * out is cancelled and then waited for to the end (CancelIoEx, GetOverlappedResult), so its
 * OVERLAPPED never outlives the call and the bytes it did move are counted, never lost.
 *
 * Regions: the sender duplicates the region's handle into the peer's process (the peer's pid
 * from GetNamedPipe{Client,Server}ProcessId) and sends the handle's value there in the frame.
 * A handle value from a peer cannot be told from one of the receiver's own, so one that fails
 * its checks is left open rather than closed; accept regions only from peers you trust.
 */
#include "transport.h"
#include "msgr/error.h"
#include "os/error_detail.h"
#include "os/os.h"
#include "os/win32.h"
#include "../../mmap/region_handle.h"

#include <windows.h>
#include <sddl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIPE_PREFIX "\\\\.\\pipe\\"
#define PIPE_NAME_MAX 256     /* characters in all, prefix included */
#define PIPE_BUF_BYTES 65536u /* each direction's buffer */
#define COALESCE_MAX 65536u   /* a frame this small goes out in one write */

struct msgr__tr_srv {
    char name[PIPE_NAME_MAX + 1];
    HANDLE pending;  /* the instance waiting for the next client (NULL: make one) */
    int connected;   /* ... a client came before its connect started (no operation to ask) */
    OVERLAPPED ov;   /* its ConnectNamedPipe; ov.hEvent is manual-reset */
    HANDLE cancel;   /* auto-reset: set once per msgr__tr_accept_cancel */
    SECURITY_ATTRIBUTES sa;
    PSECURITY_DESCRIPTOR sd; /* the creating user only (mode 0600), or NULL */
};

struct msgr__tr {
    HANDLE h;
    HANDLE rev, wev;   /* events of the overlapped read and write */
    int server;        /* the listener's end */
    HANDLE peer_proc;  /* opened when a region is first handed over */
    uint8_t *wbuf;     /* a small frame coalesced into one write */
};

static int pipe_error(DWORD e)
{
    switch (e) {
    case ERROR_BROKEN_PIPE: case ERROR_NO_DATA: case ERROR_PIPE_NOT_CONNECTED:
        return MSGR_EPIPE;
    case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: return MSGR_ENOENT;
    case ERROR_ACCESS_DENIED: return MSGR_EACCES;
    case ERROR_PIPE_BUSY: return MSGR_ECONNREFUSED;
    default: return msgr__win_error(e);
    }
}

static int pipe_name(const char *path, char out[PIPE_NAME_MAX + 1])
{
    size_t pre = sizeof PIPE_PREFIX - 1;
    if (_strnicmp(path, PIPE_PREFIX, pre) == 0) {
        size_t n = strlen(path);
        if (n > PIPE_NAME_MAX)
            return msgr__fail(MSGR_ENAMETOOLONG, "pipe name '%.40s...' is %zu characters; the "
                              "limit is %d", path, n, PIPE_NAME_MAX);
        memcpy(out, path, n + 1);
        return 0;
    }
    char full[4096];
    DWORD n = strlen(path) < PIPE_NAME_MAX ? GetFullPathNameA(path, sizeof full, full, NULL) : 0;
    if (n == 0 || n >= sizeof full)
        return msgr__fail(MSGR_ENAMETOOLONG, "pipe name for '%.40s...' is over %zu characters; "
                          "the limit is %d", path, strlen(path), PIPE_NAME_MAX);
    if (pre + n > PIPE_NAME_MAX)
        return msgr__fail(MSGR_ENAMETOOLONG, "pipe name for '%.40s...' is %zu characters; the "
                          "limit is %d", full, pre + n, PIPE_NAME_MAX);
    memcpy(out, PIPE_PREFIX, pre);
    for (DWORD i = 0; i <= n; i++)
        out[pre + i] = full[i] == '\\' ? '/' : full[i];
    return 0;
}

/* Milliseconds to wait for the deadline (rounded up, so a wait never ends early). */
static DWORD ms_of(uint64_t deadline)
{
    if (deadline == UINT64_MAX)
        return INFINITE;
    uint64_t now = msgr_os_now_ns();
    if (deadline == 0 || now >= deadline)
        return 0;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    return ms >= INFINITE ? INFINITE - 1 : (DWORD)ms;
}

static int timed_out(uint64_t deadline) { return deadline == 0 ? MSGR_EAGAIN : MSGR_ETIMEDOUT; }

/* Waits for the overlapped operation ov on h until the deadline; cancels it then, and in every
 * case returns only once it has ended. *done: bytes it moved. Returns 0 (it completed), the
 * deadline's code (cancelled; *done may still be > 0), or a code for its error. */
static int finish(HANDLE h, OVERLAPPED *ov, uint64_t deadline, DWORD *done)
{
    *done = 0;
    for (;;) {
        DWORD w = WaitForSingleObject(ov->hEvent, ms_of(deadline));
        if (w == WAIT_OBJECT_0)
            break;
        if (w == WAIT_TIMEOUT && deadline != UINT64_MAX && deadline != 0 &&
            msgr_os_now_ns() < deadline)
            continue; /* woke a little early */
        CancelIoEx(h, ov);
        if (GetOverlappedResult(h, ov, done, TRUE))
            return 0; /* it completed before the cancel reached it */
        DWORD e = GetLastError();
        return e == ERROR_OPERATION_ABORTED ? timed_out(deadline) : pipe_error(e);
    }
    if (GetOverlappedResult(h, ov, done, FALSE))
        return 0;
    return pipe_error(GetLastError());
}

/* ---- listening ---- */

/* A security descriptor that admits the calling user only (mode 0600), or NULL on failure. */
static PSECURITY_DESCRIPTOR owner_only(void)
{
    HANDLE tok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
        return NULL;
    union {
        TOKEN_USER u;
        char space[256];
    } tu;
    DWORD n = 0;
    char *sid = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    if (GetTokenInformation(tok, TokenUser, &tu, sizeof tu, &n) &&
        ConvertSidToStringSidA(tu.u.User.Sid, &sid)) {
        char sddl[256];
        snprintf(sddl, sizeof sddl, "D:P(A;;GA;;;%s)", sid);
        if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd,
                                                                  NULL))
            sd = NULL;
        LocalFree(sid);
    }
    CloseHandle(tok);
    return sd;
}

/* Makes the instance that waits for the next client and starts its connect. */
static int new_instance(msgr__tr_srv *s, int first)
{
    /* A listener is there if its name answers (an instance free, or all busy); only a name
     * nobody has fails at once. FILE_FLAG_FIRST_PIPE_INSTANCE settles two listens racing. */
    if (first && (WaitNamedPipeA(s->name, 1) || GetLastError() != ERROR_FILE_NOT_FOUND))
        return msgr__fail(MSGR_EADDRINUSE, "listen on '%s': a live listener has it", s->name);
    DWORD open = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED |
                 (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0);
    HANDLE h = CreateNamedPipeA(s->name, open,
                                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                                    PIPE_REJECT_REMOTE_CLIENTS,
                                PIPE_UNLIMITED_INSTANCES, PIPE_BUF_BYTES, PIPE_BUF_BYTES, 0,
                                s->sd ? &s->sa : NULL);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        if (first && e == ERROR_ACCESS_DENIED)
            return msgr__fail(MSGR_EADDRINUSE, "listen on '%s': a live listener has it", s->name);
        return msgr__fail(pipe_error(e), "listen on '%s': Windows error %lu", s->name,
                          (unsigned long)e);
    }
    ResetEvent(s->ov.hEvent);
    s->connected = 0;
    HANDLE ev = s->ov.hEvent;
    memset(&s->ov, 0, sizeof s->ov);
    s->ov.hEvent = ev;
    if (!ConnectNamedPipe(h, &s->ov)) {
        DWORD e = GetLastError();
        if (e == ERROR_PIPE_CONNECTED) {
            s->connected = 1; /* a client came between the create and the connect */
            SetEvent(ev);
        } else if (e != ERROR_IO_PENDING) {
            CloseHandle(h);
            return pipe_error(e);
        }
    }
    s->pending = h;
    return 0;
}

int msgr__tr_listen(const char *path, const msgr_ipc_opts *o, msgr__tr_srv **out)
{
    if (o->flags & MSGR_IPC_LONG_PATH)
        return msgr__fail(MSGR_ENOSYS, "pipe names are limited to %d characters; "
                          "MSGR_IPC_LONG_PATH has no meaning on Windows", PIPE_NAME_MAX);
    msgr__tr_srv *s = calloc(1, sizeof *s);
    if (!s)
        return MSGR_ENOMEM;
    int rc = pipe_name(path, s->name);
    if (rc) {
        free(s);
        return rc;
    }
    s->ov.hEvent = CreateEventA(NULL, TRUE, FALSE, NULL);
    s->cancel = CreateEventA(NULL, FALSE, FALSE, NULL);
    /* Group or other bits in the mode: the pipe's default security instead. */
    if (!(o->mode & 077)) {
        s->sd = owner_only();
        s->sa.nLength = sizeof s->sa;
        s->sa.lpSecurityDescriptor = s->sd;
    }
    if (!s->ov.hEvent || !s->cancel)
        rc = MSGR_ENOMEM;
    if (rc == 0)
        rc = new_instance(s, 1);
    if (rc) {
        msgr__tr_srv_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int tr_new(HANDLE h, int server, msgr__tr **out)
{
    msgr__tr *t = calloc(1, sizeof *t);
    if (t) {
        t->h = h;
        t->server = server;
        t->rev = CreateEventA(NULL, TRUE, FALSE, NULL);
        t->wev = CreateEventA(NULL, TRUE, FALSE, NULL);
    }
    if (!t || !t->rev || !t->wev) {
        if (t) {
            t->h = h;
            msgr__tr_close(t);
        } else {
            CloseHandle(h);
        }
        return MSGR_ENOMEM;
    }
    *out = t;
    return 0;
}

int msgr__tr_accept(msgr__tr_srv *s, uint64_t deadline, msgr__tr **out)
{
    for (;;) {
        int rc;
        if (!s->pending && (rc = new_instance(s, 0)))
            return rc;
        HANDLE w[2] = {s->ov.hEvent, s->cancel};
        DWORD k = WaitForMultipleObjects(2, w, FALSE, ms_of(deadline));
        if (k == WAIT_OBJECT_0 + 1)
            return MSGR_ECANCELED;
        if (k == WAIT_TIMEOUT) {
            if (deadline != UINT64_MAX && deadline != 0 && msgr_os_now_ns() < deadline)
                continue;
            return timed_out(deadline); /* the instance stays, waiting */
        }
        if (k != WAIT_OBJECT_0)
            return msgr__win_error(GetLastError());
        DWORD n;
        if (!s->connected && !GetOverlappedResult(s->pending, &s->ov, &n, FALSE)) {
            if (GetLastError() == ERROR_IO_INCOMPLETE)
                continue; /* signalled ahead of its completion: it completes soon */
            /* The client left before we saw it: this instance is spent. */
            CloseHandle(s->pending);
            s->pending = NULL;
            continue;
        }
        HANDLE h = s->pending;
        s->pending = NULL;
        /* The next instance before this accept returns: a client never finds none. If it
         * cannot be made now, the next accept tries again. */
        new_instance(s, 0);
        return tr_new(h, 1, out);
    }
}

void msgr__tr_accept_cancel(msgr__tr_srv *s) { SetEvent(s->cancel); }

intptr_t msgr__tr_srv_native(const msgr__tr_srv *s) { return (intptr_t)s->ov.hEvent; }

void msgr__tr_srv_close(msgr__tr_srv *s)
{
    if (s->pending) {
        CancelIoEx(s->pending, &s->ov);
        DWORD n;
        GetOverlappedResult(s->pending, &s->ov, &n, TRUE);
        CloseHandle(s->pending);
    }
    if (s->ov.hEvent)
        CloseHandle(s->ov.hEvent);
    if (s->cancel)
        CloseHandle(s->cancel);
    if (s->sd)
        LocalFree(s->sd);
    free(s);
}

/* ---- connecting ---- */

int msgr__tr_connect(const char *path, const msgr_ipc_opts *o, msgr__tr **out)
{
    if (o->flags & MSGR_IPC_LONG_PATH)
        return msgr__fail(MSGR_ENOSYS, "pipe names are limited to %d characters; "
                          "MSGR_IPC_LONG_PATH has no meaning on Windows", PIPE_NAME_MAX);
    char name[PIPE_NAME_MAX + 1];
    int rc = pipe_name(path, name);
    if (rc)
        return rc;
    uint64_t deadline = o->connect_timeout_ns < 0 ? 0 : msgr_os_now_ns() + (uint64_t)o->connect_timeout_ns;
    uint64_t pause = 1000000;
    for (;;) {
        HANDLE h = CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT |
                                   SECURITY_IDENTIFICATION, NULL);
        if (h != INVALID_HANDLE_VALUE)
            return tr_new(h, 0, out);
        DWORD e = GetLastError();
        uint64_t now = msgr_os_now_ns();
        if ((e != ERROR_PIPE_BUSY && e != ERROR_FILE_NOT_FOUND) || now >= deadline)
            return msgr__fail(pipe_error(e), "connect to '%s': %s", name,
                              e == ERROR_PIPE_BUSY ? "every instance is busy"
                              : e == ERROR_FILE_NOT_FOUND ? "nobody listens"
                                                          : "Windows error");
        if (e == ERROR_PIPE_BUSY) {
            /* Instances exist and are taken: wait for the listener to offer the next one. */
            WaitNamedPipeA(name, ms_of(deadline));
            continue;
        }
        msgr_os_sleep_ns(pause); /* polling for a listener that has no way to tell us */
        if (pause < 50000000)
            pause *= 2;
    }
}

/* ---- moving bytes ---- */

static int write_one(msgr__tr *t, const uint8_t *p, size_t n, uint64_t deadline, size_t *sent)
{
    while (n) {
        OVERLAPPED ov = {0};
        ov.hEvent = t->wev;
        DWORD chunk = n > (1u << 30) ? (1u << 30) : (DWORD)n, done;
        if (!WriteFile(t->h, p, chunk, NULL, &ov) && GetLastError() != ERROR_IO_PENDING)
            return pipe_error(GetLastError());
        int rc = finish(t->h, &ov, deadline, &done);
        *sent += done;
        p += done;
        n -= done;
        if (rc)
            return rc;
    }
    return 0;
}

int msgr__tr_write(msgr__tr *t, const msgr__tr_iov *iov, int niov, intptr_t pass,
                   uint64_t deadline, size_t *sent)
{
    (void)pass; /* handles travel in the frame's bytes here */
    *sent = 0;
    if (t->h == INVALID_HANDLE_VALUE)
        return MSGR_EPIPE;
    size_t total = 0;
    for (int i = 0; i < niov; i++)
        total += iov[i].n;
    if (niov > 1 && total <= COALESCE_MAX) {
        if (!t->wbuf && !(t->wbuf = malloc(COALESCE_MAX)))
            return MSGR_ENOMEM;
        size_t at = 0;
        for (int i = 0; i < niov; i++) {
            memcpy(t->wbuf + at, iov[i].p, iov[i].n);
            at += iov[i].n;
        }
        return write_one(t, t->wbuf, total, deadline, sent);
    }
    for (int i = 0; i < niov; i++) {
        int rc = write_one(t, iov[i].p, iov[i].n, deadline, sent);
        if (rc)
            return rc;
    }
    return 0;
}

long msgr__tr_read(msgr__tr *t, void *p, size_t n, uint64_t deadline)
{
    if (t->h == INVALID_HANDLE_VALUE)
        return 0;
    DWORD avail = 0;
    if (!PeekNamedPipe(t->h, NULL, 0, NULL, &avail, NULL)) {
        int rc = pipe_error(GetLastError());
        return rc == MSGR_EPIPE ? 0 : rc;
    }
    if (avail == 0 && deadline == 0)
        return MSGR_EAGAIN;
    DWORD want = n > (1u << 30) ? (1u << 30) : (DWORD)n;
    if (avail && avail < want)
        want = avail; /* completes at once */
    OVERLAPPED ov = {0};
    ov.hEvent = t->rev;
    DWORD done;
    if (!ReadFile(t->h, p, want, NULL, &ov) && GetLastError() != ERROR_IO_PENDING) {
        int rc = pipe_error(GetLastError());
        return rc == MSGR_EPIPE ? 0 : rc;
    }
    int rc = finish(t->h, &ov, deadline, &done);
    if (done)
        return (long)done;
    return rc == MSGR_EPIPE ? 0 : rc ? rc : 0;
}

int msgr__tr_peer_gone(msgr__tr *t)
{
    DWORD avail;
    return t->h == INVALID_HANDLE_VALUE || !PeekNamedPipe(t->h, NULL, 0, NULL, &avail, NULL);
}

void msgr__tr_shutdown(msgr__tr *t)
{
    if (t->h == INVALID_HANDLE_VALUE)
        return;
    if (t->server) {
        DisconnectNamedPipe(t->h); /* the client's next call sees the pipe broken */
    } else {
        CloseHandle(t->h); /* a client's end has no half-close: it goes */
        t->h = INVALID_HANDLE_VALUE;
    }
}

void msgr__tr_drop_passed(msgr__tr *t) { (void)t; }

int msgr__tr_peer(const msgr__tr *t, msgr_ipc_peer *out)
{
    ULONG pid = 0;
    BOOL ok = t->server ? GetNamedPipeClientProcessId(t->h, &pid)
                        : GetNamedPipeServerProcessId(t->h, &pid);
    if (!ok)
        return msgr__fail(MSGR_ENOSYS, "the pipe does not tell its peer's process (error %lu)",
                          (unsigned long)GetLastError());
    out->pid = (int32_t)pid;
    out->uid = 0; /* Windows has no uid; the pipe's security admits the creating user only */
    return 0;
}

intptr_t msgr__tr_native(const msgr__tr *t) { return (intptr_t)t->h; }

void msgr__tr_close(msgr__tr *t)
{
    /* Closed without DisconnectNamedPipe, which would drop what the peer has not read yet:
     * the peer reads it all, then sees the pipe broken (end of stream). */
    if (t->h != INVALID_HANDLE_VALUE)
        CloseHandle(t->h);
    if (t->rev)
        CloseHandle(t->rev);
    if (t->wev)
        CloseHandle(t->wev);
    if (t->peer_proc)
        CloseHandle(t->peer_proc);
    free(t->wbuf);
    free(t);
}

/* ---- regions: the handle's value in the peer, its key, and what it is ---- */

#define TOKEN_BYTES 24u

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int msgr__tr_region_give(msgr__tr *t, msgr_region *r, msgr__tr_token *tok)
{
    void *obj;
    uint64_t key;
    int is_file;
    if (msgr__region_handles(r, &obj, &key, &is_file))
        return msgr__fail(MSGR_EINVAL, "this anonymous region cannot be shared (create it with "
                          "MSGR_REGION_TRANSFERABLE)");
    if (!t->peer_proc) {
        msgr_ipc_peer peer;
        int rc = msgr__tr_peer(t, &peer);
        if (rc)
            return rc;
        t->peer_proc = OpenProcess(PROCESS_DUP_HANDLE, FALSE, (DWORD)peer.pid);
        if (!t->peer_proc)
            return msgr__fail(msgr__win_error(GetLastError()), "cannot reach the peer's process "
                              "(pid %d) to hand it a region", (int)peer.pid);
    }
    HANDLE there;
    if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)obj, t->peer_proc, &there, 0, FALSE,
                         DUPLICATE_SAME_ACCESS))
        return msgr__fail(msgr__win_error(GetLastError()), "cannot hand the region's handle to "
                          "the peer");
    put64(tok->bytes, (uint64_t)(uintptr_t)there);
    put64(tok->bytes + 8, key);
    put64(tok->bytes + 16, (uint64_t)is_file);
    tok->len = TOKEN_BYTES;
    tok->pass = -1;
    return 0;
}

void msgr__tr_region_ungive(msgr__tr *t, msgr__tr_token *tok)
{
    /* The frame did not go out: close the handle placed in the peer's process. */
    HANDLE there = (HANDLE)(uintptr_t)get64(tok->bytes);
    DuplicateHandle(t->peer_proc, there, NULL, NULL, 0, FALSE, DUPLICATE_CLOSE_SOURCE);
}

uint32_t msgr__tr_token_bytes(void) { return TOKEN_BYTES; }

int msgr__tr_region_take(msgr__tr *t, const uint8_t *p, msgr_region **out)
{
    (void)t;
    uint64_t h = get64(p), key = get64(p + 8), is_file = get64(p + 16);
    if (h == 0 || is_file > 1)
        return msgr__fail(MSGR_ECORRUPT, "a region frame with no valid handle");
    HANDLE own;
    /* Our own copy to adopt, so that a failed check closes only that copy and never a handle
     * value the peer may have chosen to name one of ours. */
    if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)(uintptr_t)h, GetCurrentProcess(), &own,
                         0, FALSE, DUPLICATE_SAME_ACCESS))
        return msgr__fail(MSGR_ECORRUPT, "a region frame whose handle is not open here");
    int rc = msgr__region_adopt_handle(own, key, (int)is_file, out);
    if (rc == 0)
        CloseHandle((HANDLE)(uintptr_t)h); /* it was the peer's gift: the copy holds it now */
    return rc;
}
