/* The `rt` application with M2's layout changed under the same wire id: must be refused. */
#include "rt_schema_variants.h"

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP rt
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(M1, 1, F(uint64_t, seq))                                                                \
    M(M2, 2, F(uint64_t, seq) F(uint64_t, a)) /* was: uint32_t a, b */
#define MSGR_APP_WORKERS(W) W(src) W(a) W(b) W(sink)
#define MSGR_APP_ROUTES(R) R(src, M1, a, v2_on_m1)
#include <msgr_app.h>

void v2_on_m1(msgr_ctx *ctx, const M1 *m) { (void)ctx, (void)m; }
const msgr_app *rt_v2_app(void) { return rt_app(); }
