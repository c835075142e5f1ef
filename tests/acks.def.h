/* Test application for explicit acknowledgement: `bg` sends numbered items to `ui`, whose
 * handler keeps them and acknowledges later (msgr_ack). */
#ifndef ACKS_DEF_H
#define ACKS_DEF_H

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP ackt
#define MSGR_APP_MESSAGES(M, F) M(Item, 1, F(uint64_t, n))
#define MSGR_APP_WORKERS(W) W(ui) W(bg)
#define MSGR_APP_ROUTES(R) R(bg, Item, ui, ui_on_item)
#include <msgr_app.h>

#endif
