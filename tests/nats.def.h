/* Test application for the NATS bridge: `sender` sends to `bridge` (published), `bridge`
 * delivers what arrives to `receiver`. Big is over the server's 1 MiB max payload. */
#ifndef NATS_DEF_H
#define NATS_DEF_H

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP natsapp
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(Ping, 1, F(uint64_t, n) F(uint64_t, check))                                             \
    M(Big,  2, F(uint8_t, blob, [1200000]))
#define MSGR_APP_WORKERS(W) W(sender) W(bridge) W(receiver)
#define MSGR_APP_ROUTES(R)                                                                    \
    R(sender, Ping, bridge,   bridge_ping)                                                    \
    R(sender, Big,  bridge,   bridge_big)                                                     \
    R(bridge, Ping, receiver, on_ping)                                                        \
    R(bridge, Big,  receiver, on_big)
#include <msgr_app.h>

#endif
