/* Test application: 4 workers, 6 struct messages and 1 serialized message, with fan-out and a
 * message type handled differently depending on its source. `src` is driven by the test. */
#ifndef RT_DEF_H
#define RT_DEF_H

#include <stdint.h>

struct name_list {
    uint32_t n;
    char **items;
};

#define MSGR_APP_SHORT_NAMES /* each message type also under its short name */
#define MSGR_APP rt
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(M1, 1, F(uint64_t, seq))                                                                \
    M(M2, 2, F(uint64_t, seq) F(uint32_t, a) F(uint32_t, b))                                  \
    M(M3, 3, F(uint64_t, seq) F(char, text, [24]))                                            \
    M(M4, 4, F(uint64_t, seq))                                                                \
    M(M5, 5, F(uint64_t, seq))                                                                \
    M(M6, 6, F(uint64_t, seq) F(uint64_t, origin))
#ifndef RT_NO_SERIALIZED
#define MSGR_APP_SERIALIZED(S) S(Names, 10, struct name_list)
#endif
#define MSGR_APP_WORKERS(W) W(src) W(a) W(b) W(sink)
#define MSGR_APP_ROUTES(R)                                                                    \
    R(src, M1, a, a_on_m1)                                                                    \
    R(src, M2, b, b_on_m2)                                                                    \
    R(src, M3, a, a_on_m3)                                                                    \
    R(src, M3, b, b_on_m3)                                                                    \
    R(a, M4, sink, sink_on_m4)                                                                \
    R(b, M5, sink, sink_on_m5)                                                                \
    R(a, M6, b, b_on_m6)                                                                      \
    R(src, M6, sink, sink_on_m6)                                                              \
    R(src, Names, sink, sink_on_names)
#include <msgr_app.h>

#endif
