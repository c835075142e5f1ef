/* messenger: a pollable descriptor for a plain ring or a log reader, as msgr_bus_fd() gives
 * for a runtime worker: readable when a record can be read, for epoll, poll, libuv or a GUI
 * loop. A helper thread of this process waits in the ring's (or log's) own wait, only while the
 * reader is not reading, so it costs no system call per record while the reader is busy and
 * wakes on commits from any process.
 *
 * The reading thread brackets its reads: msgr_notify_before_read() first (takes the reading
 * back from the helper), then its msgr_ring_poll / msgr_log_read calls, then
 * msgr_notify_after_read(found) with whether they found anything; found 0 hands the waiting to
 * the helper, and the descriptor becomes readable when a record arrives. The descriptor is
 * cleared by the next before_read. One reading thread; the ring or reader must outlive the
 * notifier.
 */
#ifndef MSGR_NOTIFY_H
#define MSGR_NOTIFY_H

#include "export.h"
#include "log.h"
#include "ring.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msgr_notify msgr_notify;

/* For the consumer of ring r, or for log reader rd of log `log`. The helper starts waiting at
 * once (records already there make it readable). Errors: MSGR_EINVAL, MSGR_ENOMEM. */
MSGR_API int msgr_notify_ring(msgr_ring *r, msgr_notify **out);
MSGR_API int msgr_notify_log(msgr_log *log, msgr_log_reader *rd, msgr_notify **out);

/* The descriptor (Linux eventfd; a pipe elsewhere on POSIX; an event HANDLE on Windows). */
MSGR_API intptr_t msgr_notify_fd(const msgr_notify *n);

MSGR_API void msgr_notify_before_read(msgr_notify *n);
MSGR_API void msgr_notify_after_read(msgr_notify *n, int found);

/* Stops the helper and closes the descriptor (NULL accepted). */
MSGR_API void msgr_notify_close(msgr_notify *n);

#ifdef __cplusplus
}
#endif
#endif
