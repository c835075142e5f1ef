/* The pipeline application: `main` feeds items through four stages; each stage transforms the
 * item and forwards it; the last stage checks order and value. One message type, Item, is
 * handled by a different function at each hop: the route says which, by source. */
#ifndef PIPELINE_DEF_H
#define PIPELINE_DEF_H

#define MSGR_APP_SHORT_NAMES /* each message type also under its short name */
#define MSGR_APP pipeline
#define MSGR_APP_MESSAGES(M, F)      /* name, wire id, fields */                               \
    M(Item, 1, F(uint64_t, seq) F(uint64_t, value) F(uint32_t, hops) F(uint32_t, pad))
#define MSGR_APP_WORKERS(W) W(main) W(parse) W(scale) W(offset) W(check)
#define MSGR_APP_ROUTES(R)           /* from, message, to, handler */                          \
    R(main,   Item, parse,  on_parse)                                                          \
    R(parse,  Item, scale,  on_scale)                                                          \
    R(scale,  Item, offset, on_offset)                                                         \
    R(offset, Item, check,  on_check)
#include <msgr_app.h>

#endif
