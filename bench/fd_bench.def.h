/* The descriptor benchmark's application: `bg` sends stamped pings to `ui`, which is driven
 * by the benchmark's own loop (woken through its descriptor, or by msgr_bus_poll_wait). */
#ifndef FD_BENCH_DEF_H
#define FD_BENCH_DEF_H

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP fdb
#define MSGR_APP_MESSAGES(M, F) M(Ping, 1, F(uint64_t, seq) F(uint64_t, sent_ns))
#define MSGR_APP_WORKERS(W) W(ui) W(bg)
#define MSGR_APP_ROUTES(R) R(bg, Ping, ui, ui_on_ping)
#include <msgr_app.h>

#endif
