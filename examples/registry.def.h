/* The registry example: three programs that agree on a name only. `counter` makes the bus
 * and registers it; `producer` sends it ticks; `reporter` receives the total and says it has seen it. */
#ifndef REGISTRY_DEF_H
#define REGISTRY_DEF_H

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP registry_demo
#define MSGR_APP_MESSAGES(M, F)      /* name, wire id, fields */                               \
    M(Tick,  1, F(uint64_t, seq))                                                             \
    M(Done,  2, F(uint64_t, count))                                                           \
    M(Total, 3, F(uint64_t, count) F(uint64_t, sum) F(uint64_t, bad))                       \
    M(Seen,  4, F(uint64_t, count))
#define MSGR_APP_WORKERS(W) W(counter) W(producer) W(reporter)
#define MSGR_APP_ROUTES(R)           /* from, message, to, handler */                          \
    R(producer, Tick,  counter,  on_tick)                                                      \
    R(producer, Done,  counter,  on_done)                                                      \
    R(counter,  Total, reporter, on_total)                                                     \
    R(reporter, Seen,  counter,  on_seen)
#include <msgr_app.h>

#endif
