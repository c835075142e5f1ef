/* The multi_process application: one worker per process over named shared memory.
 * `main` (the parent) starts the run; `producer` emits numbers, `doubler` doubles them,
 * `checker` verifies and reports the total back to `main`, which then tells everyone to quit. */
#ifndef MULTIPROC_DEF_H
#define MULTIPROC_DEF_H

#define MSGR_APP_SHORT_NAMES /* each message type also under its short name */
#define MSGR_APP multiproc
#define MSGR_APP_MESSAGES(M, F)      /* name, wire id, fields */                               \
    M(Start,   1, F(uint64_t, count))                                                         \
    M(Number,  2, F(uint64_t, seq) F(uint64_t, value))                                        \
    M(Doubled, 3, F(uint64_t, seq) F(uint64_t, value))                                        \
    M(Total,   4, F(uint64_t, count) F(uint64_t, sum) F(uint64_t, bad))                       \
    M(Quit,    5, F(uint64_t, reason))
#define MSGR_APP_WORKERS(W) W(main) W(producer) W(doubler) W(checker)
#define MSGR_APP_ROUTES(R)           /* from, message, to, handler */                          \
    R(main,     Start,   producer, on_start)                                                   \
    R(main,     Start,   checker,  on_expect)                                                  \
    R(producer, Number,  doubler,  on_number)                                                  \
    R(doubler,  Doubled, checker,  on_doubled)                                                 \
    R(checker,  Total,   main,     on_total)                                                   \
    R(main,     Quit,    producer, on_quit)                                                    \
    R(main,     Quit,    doubler,  on_quit)                                                    \
    R(main,     Quit,    checker,  on_quit)
#include <msgr_app.h>

#endif
