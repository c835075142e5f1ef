/* The ui_loop application: a background `fetcher` delivers updates to `ui`, a worker driven
 * by a libuv loop through its descriptor, which acknowledges each update once it has
 * "rendered" it. */
#ifndef UI_LOOP_DEF_H
#define UI_LOOP_DEF_H

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP uidemo
#define MSGR_APP_MESSAGES(M, F) M(Update, 1, F(uint64_t, n) F(uint64_t, value))
#define MSGR_APP_WORKERS(W) W(fetcher) W(ui)
#define MSGR_APP_ROUTES(R) R(fetcher, Update, ui, on_update)
#include <msgr_app.h>

#endif
