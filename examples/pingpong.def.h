/* The two_workers application: `main` (the program's own thread) starts a run, `pinger` and
 * `ponger` bounce Ping/Pong, and `pinger` reports to `main` when the run is over. */
#ifndef PINGPONG_DEF_H
#define PINGPONG_DEF_H

#define MSGR_APP_SHORT_NAMES /* each message type also under its short name */
#define MSGR_APP pingpong

#define MSGR_APP_MESSAGES(M, F)      /* name, wire id, fields */                               \
    M(Start, 1, F(uint64_t, rounds))                                                          \
    M(Ping,  2, F(uint64_t, seq) F(uint64_t, sent_ns))                                        \
    M(Pong,  3, F(uint64_t, seq) F(uint64_t, sent_ns))                                        \
    M(Done,  4, F(uint64_t, rounds) F(uint64_t, bad))

#define MSGR_APP_WORKERS(W)          /* name */                                                \
    W(main)                                                                                    \
    W(pinger)                                                                                  \
    W(ponger)

#define MSGR_APP_ROUTES(R)           /* from, message, to, handler */                          \
    R(main,   Start, pinger, on_start)                                                         \
    R(pinger, Ping,  ponger, on_ping)                                                          \
    R(ponger, Pong,  pinger, on_pong)                                                          \
    R(pinger, Done,  main,   on_done)

#include <msgr_app.h>

#endif
