/* The `rt` application with M1 given another wire id: must be refused (its messages would be
 * counted as unhandled by the other side), naming both ids. */
#include "rt_schema_variants.h"

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP rt
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(M1, 9, F(uint64_t, seq)) /* was: wire id 1 */                                           \
    M(M2, 2, F(uint64_t, seq) F(uint32_t, a) F(uint32_t, b))
#define MSGR_APP_WORKERS(W) W(src) W(a) W(b) W(sink)
#define MSGR_APP_ROUTES(R) R(src, M1, a, v5_on_m1)
#include <msgr_app.h>

void v5_on_m1(msgr_ctx *ctx, const M1 *m) { (void)ctx, (void)m; }
const msgr_app *rt_v5_app(void) { return rt_app(); }
