/* Test application for sends in cycles: `main` (driven by the test's own loop) sends orders to
 * `gw`, which answers each with a result to `main`; `x` and `y` answer each other's message
 * with two of their own, so both inboxes fill and each waits for the other. */
#ifndef CYCLE_DEF_H
#define CYCLE_DEF_H

#define MSGR_APP_SHORT_NAMES /* each message type also under its short name */
#define MSGR_APP cyc
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(Order,  1, F(uint64_t, seq) F(char, pad, [200]))                                        \
    M(Result, 2, F(uint64_t, seq) F(char, pad, [200]))                                        \
    M(Ball,   3, F(uint64_t, n) F(char, pad, [200]))                                          \
    M(Back,   4, F(uint64_t, n) F(char, pad, [200]))                                          \
    M(Burst,  5, F(uint64_t, n))                                                              \
    M(Fan,    6, F(uint64_t, n))
#define MSGR_APP_WORKERS(W) W(main) W(gw) W(x) W(y)
#define MSGR_APP_ROUTES(R)                                                                    \
    R(main, Order,  gw,   gw_on_order)                                                        \
    R(gw,   Result, main, main_on_result)                                                     \
    R(gw,   Burst,  main, main_on_burst)                                                      \
    R(main, Fan,    gw,   gw_on_fan)                                                          \
    R(main, Fan,    y,    y_on_fan)                                                           \
    R(main, Ball,   x,    x_on_ball)                                                          \
    R(x,    Back,   y,    y_on_back)                                                          \
    R(y,    Ball,   x,    x_on_ball)
#include <msgr_app.h>

#endif
