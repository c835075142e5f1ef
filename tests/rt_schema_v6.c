/* The `rt` application with a field added at the end of M6: must be refused, naming the field. */
#include "rt_schema_variants.h"

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP rt
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(M1, 1, F(uint64_t, seq))                                                                \
    M(M2, 2, F(uint64_t, seq) F(uint32_t, a) F(uint32_t, b))                                  \
    M(M6, 6, F(uint64_t, seq) F(uint64_t, origin) F(uint64_t, hops)) /* was: no hops */
#define MSGR_APP_WORKERS(W) W(src) W(a) W(b) W(sink)
#define MSGR_APP_ROUTES(R) R(src, M1, a, v6_on_m1)
#include <msgr_app.h>

void v6_on_m1(msgr_ctx *ctx, const M1 *m) { (void)ctx, (void)m; }
const msgr_app *rt_v6_app(void) { return rt_app(); }
