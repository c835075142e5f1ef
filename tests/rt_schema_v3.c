/* The `rt` application with one message type added: must attach to a bus made by the original. */
#define RT_NO_SERIALIZED
#include "rt_schema_variants.h"

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP rt
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(M1, 1, F(uint64_t, seq))                                                                \
    M(M2, 2, F(uint64_t, seq) F(uint32_t, a) F(uint32_t, b))                                  \
    M(M7, 7, F(uint64_t, seq) F(uint64_t, extra)) /* new */
#define MSGR_APP_WORKERS(W) W(src) W(a) W(b) W(sink)
#define MSGR_APP_ROUTES(R) R(src, M7, a, v3_on_m7)
#include <msgr_app.h>

void v3_on_m7(msgr_ctx *ctx, const M7 *m) { (void)ctx, (void)m; }
const msgr_app *rt_v3_app(void) { return rt_app(); }
