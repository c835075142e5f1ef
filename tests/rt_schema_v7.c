/* The `rt` application with a field of M6 renamed (same type, size and offset): must be
 * refused, naming both names. */
#include "rt_schema_variants.h"

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP rt
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(M1, 1, F(uint64_t, seq))                                                                \
    M(M6, 6, F(uint64_t, seq) F(uint64_t, source)) /* was: origin */
#define MSGR_APP_WORKERS(W) W(src) W(a) W(b) W(sink)
#define MSGR_APP_ROUTES(R) R(src, M1, a, v7_on_m1)
#include <msgr_app.h>

void v7_on_m1(msgr_ctx *ctx, const M1 *m) { (void)ctx, (void)m; }
const msgr_app *rt_v7_app(void) { return rt_app(); }
