/* Test application for broadcast fan-outs: `src` sends Big to four workers through one
 * broadcast ring (B line), and Small to the same four by copies. */
#ifndef FANOUT_DEF_H
#define FANOUT_DEF_H

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP fo
#define MSGR_APP_MESSAGES(M, F)                                                                    \
    M(Big, 1, F(uint64_t, seq) F(uint8_t, body, [16376]))                                          \
    M(Small, 2, F(uint64_t, seq))
#define MSGR_APP_WORKERS(W) W(src) W(r0) W(r1) W(r2) W(r3)
#define MSGR_APP_ROUTES(R)                                                                         \
    R(src, Big, r0, fo_on_big) R(src, Big, r1, fo_on_big) R(src, Big, r2, fo_on_big)               \
    R(src, Big, r3, fo_on_big) R(src, Small, r0, fo_on_small) R(src, Small, r1, fo_on_small)      \
    R(src, Small, r2, fo_on_small) R(src, Small, r3, fo_on_small)
#define MSGR_APP_BROADCASTS(B) B(src, Big)
#include <msgr_app.h>

#endif
