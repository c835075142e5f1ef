/* Test application for pollable descriptors: `ui` is driven by the test's own loop and waits
 * on its descriptor; `bg` (a thread, or another process) sends it pings. */
#ifndef FD_DEF_H
#define FD_DEF_H

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP fdt
#define MSGR_APP_MESSAGES(M, F) M(Ping, 1, F(uint64_t, seq))
#define MSGR_APP_WORKERS(W) W(ui) W(bg)
#define MSGR_APP_ROUTES(R) R(bg, Ping, ui, ui_on_ping)
#include <msgr_app.h>

#endif
