/* messenger: a worker's pollable descriptor (internal; msgr_bus_fd).
 *
 * The application drives the worker from its own loop (msgr_bus_poll) and waits on a
 * descriptor beside its other sources. The descriptor is an OS event; a helper thread of this
 * process makes it readable when the inbox gets a record. The inbox keeps one reader at a time:
 *
 *   IDLE   the application reads the inbox (msgr_bus_poll); nobody waits
 *   ARMED  a poll found it empty and handed the waiting to the helper, which sleeps in the
 *          ring's own wait (so producers in any process wake it exactly as they wake a
 *          consumer: only if it announced itself, which a busy consumer never does)
 *   READY  the helper saw a record and signalled the event; the next poll drains it
 *
 * A poll that finds the helper ARMED cancels its wait and waits for it to let go before it
 * reads. So a busy worker costs no system call per message (polls that find records do not
 * touch the event or the helper), and an idle one costs one wake of the helper per idle
 * period and one signal per wake-up.
 */
#ifndef MSGR_NOTIFY_INTERNAL_H
#define MSGR_NOTIFY_INTERNAL_H

#include "inbox.h"
#include "os/os.h"

#include <stdatomic.h>
#include <stdint.h>

typedef struct msgr__notify {
    msgr__inbox *in;
    intptr_t ev, fd;
    msgr_os_thread th;
    _Atomic uint32_t state;   /* NOTIFY_IDLE, _ARMED, _READY, _QUIT */
    _Atomic uint32_t cancel;  /* set by a poll (or close) to take the inbox back */
    _Atomic uint64_t arms;    /* times the waiting was handed to the helper */
    _Atomic uint64_t signals; /* times the event was signalled */
} msgr__notify;

/* Makes the event and starts the helper for inbox in. 0 or a MSGR_E code. */
int msgr__notify_open(msgr__inbox *in, msgr__notify **out);
/* Before the application reads the inbox: takes the inbox back from the helper. */
void msgr__notify_before_read(msgr__notify *n);
/* After a poll: `found` records were handed out; none means the helper waits from now. */
void msgr__notify_after_read(msgr__notify *n, int found);
void msgr__notify_close(msgr__notify *n);

#endif
