/* The `rt` application with one of M2's fields changed in type but not in size or offset
 * (uint32_t -> float): must be refused, naming the message. */
#include "rt_schema_variants.h"

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP rt
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(M1, 1, F(uint64_t, seq))                                                                \
    M(M2, 2, F(uint64_t, seq) F(float, a) F(uint32_t, b)) /* was: uint32_t a */
#define MSGR_APP_WORKERS(W) W(src) W(a) W(b) W(sink)
#define MSGR_APP_ROUTES(R) R(src, M1, a, v4_on_m1)
#include <msgr_app.h>

void v4_on_m1(msgr_ctx *ctx, const M1 *m) { (void)ctx, (void)m; }
const msgr_app *rt_v4_app(void) { return rt_app(); }
