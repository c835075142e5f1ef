/* messenger: error codes.
 *
 * Every function in messenger returns 0 (or a non-negative count) on success and a negative
 * MSGR_E... code on failure. Codes that have an errno twin carry the same number, negated, so
 * `-errno` from a failed system call can be returned as is. msgr_strerror() names any code.
 */
#ifndef MSGR_ERROR_H
#define MSGR_ERROR_H

#include "export.h"

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One table generates both the enum and the strings (name, value, message). */
#define MSGR_ERRNO_MAP(X)                                                                     \
    X(EPERM,        -EPERM,        "operation not permitted")                                 \
    X(ENOENT,       -ENOENT,       "no such file, shared-memory name or object")              \
    X(EINTR,        -EINTR,        "interrupted")                                             \
    X(EIO,          -EIO,          "input/output error")                                      \
    X(EBADF,        -EBADF,        "bad handle")                                              \
    X(EAGAIN,       -EAGAIN,       "would block: ring full (send) or empty (receive)")        \
    X(ENOMEM,       -ENOMEM,       "out of memory")                                           \
    X(EACCES,       -EACCES,       "permission denied")                                       \
    X(EBUSY,        -EBUSY,        "resource busy")                                           \
    X(EEXIST,       -EEXIST,       "already exists")                                          \
    X(EINVAL,       -EINVAL,       "invalid argument")                                        \
    X(EFBIG,        -EFBIG,        "file too large")                                          \
    X(ENOSPC,       -ENOSPC,       "no space left on device")                                 \
    X(ERANGE,       -ERANGE,       "value out of range")                                      \
    X(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                                           \
    X(ENOSYS,       -ENOSYS,       "not supported on this platform")                          \
    X(EMSGSIZE,     -EMSGSIZE,     "message larger than the ring's largest record")           \
    X(ETIMEDOUT,    -ETIMEDOUT,    "timed out")                                               \
    X(EPIPE,        -EPIPE,        "the peer closed the connection (end of stream)")         \
    X(EADDRINUSE,   -EADDRINUSE,   "address in use: a live listener has that path")          \
    X(ECONNREFUSED, -ECONNREFUSED, "nobody listens at that path")                             \
    X(ECANCELED,    -ECANCELED,    "cancelled by another thread")                             \
    X(EDEADLK,      -EDEADLK,      "send would wait for ever: a cycle of workers, each waiting for space in the next one's full inbox") \
    X(ENOTMSGR,     -1001,         "not a messenger file or region (bad magic)")              \
    X(EVERSION,     -1002,         "unsupported layout version")                              \
    X(ECORRUPT,     -1003,         "corrupt shared header or record (bounds check failed)")   \
    X(ESCHEMA,      -1004,         "schema fingerprint differs from the bus's")               \
    X(ESTATE,       -1005,         "call not valid in the object's current state")          \
    X(ENOROUTE,     -1006,         "no route for this message from this worker")             \
    X(ECODEC,       -1007,         "serialized message: encoder or decoder broke its contract")

typedef enum msgr_error {
    MSGR_OK = 0,
#define MSGR__ERR_ENUM(name, value, text) MSGR_##name = (value),
    MSGR_ERRNO_MAP(MSGR__ERR_ENUM)
#undef MSGR__ERR_ENUM
} msgr_error;

/* Returns a static, human-readable string for any code (unknown codes get a generic text).
 * Thread-safe. */
MSGR_API const char *msgr_strerror(int code);

/* Returns the code's symbolic name ("MSGR_EAGAIN"), or "MSGR_E?" for an unknown code. */
MSGR_API const char *msgr_errname(int code);

/* What the calling thread's last failing call that has more to say said about it: the file,
 * worker, message, field or value at fault ("message Order (wire id 3) differs from the bus's
 * ...", "inbox capacity 3000 is not a power of two ..."), or "" if it said nothing. Valid until
 * the thread's next call into messenger. Calls that succeed leave it as it was. */
MSGR_API const char *msgr_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
