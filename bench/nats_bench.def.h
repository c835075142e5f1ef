/* The NATS bridge benchmark's application: `sender` publishes through `bridge`; the other
 * side's `bridge` delivers to `receiver`, which (in the round-trip runs) answers with the same
 * bytes as R64 / R4K the way back. P64 and P4K are 64 bytes and 4 KiB. */
#ifndef NATS_BENCH_DEF_H
#define NATS_BENCH_DEF_H

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP nb
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(P64, 1, F(uint64_t, n) F(uint8_t, pad, [56]))                                           \
    M(P4K, 2, F(uint64_t, n) F(uint8_t, pad, [4088]))                                         \
    M(R64, 3, F(uint64_t, n) F(uint8_t, pad, [56]))                                           \
    M(R4K, 4, F(uint64_t, n) F(uint8_t, pad, [4088]))
#define MSGR_APP_WORKERS(W) W(sender) W(bridge) W(receiver)
#define MSGR_APP_ROUTES(R)                                                                    \
    R(sender, P64, bridge,   out64)                                                           \
    R(sender, P4K, bridge,   out4k)                                                           \
    R(bridge, P64, receiver, in64)                                                            \
    R(bridge, P4K, receiver, in4k)                                                            \
    R(receiver, R64, bridge, back64)                                                          \
    R(receiver, R4K, bridge, back4k)                                                          \
    R(bridge, R64, sender,   reply64)                                                         \
    R(bridge, R4K, sender,   reply4k)
#include <msgr_app.h>

#endif
