/* messenger: the application generator.
 *
 * A definition header describes an application as four tables and then includes this file:
 *
 *   #define MSGR_APP pingpong                      // prefix of every generated name
 *   #define MSGR_APP_MESSAGES(M, F)                // name, wire id, fields F(type, name[, [n]])
 *       M(Ping, 1, F(uint64_t, seq) F(uint64_t, sent_ns))
 *       M(Pong, 2, F(uint64_t, seq) F(uint64_t, sent_ns))
 *   #define MSGR_APP_SERIALIZED(S)                 // optional: name, wire id, C type
 *       S(Names, 3, struct name_list)
 *   #define MSGR_APP_WORKERS(W)                    // name
 *       W(pinger) W(ponger)
 *   #define MSGR_APP_ROUTES(R)                     // from, message, to, handler (runs in `to`)
 *       R(pinger, Ping, ponger, on_ping)
 *       R(ponger, Pong, pinger, on_pong)
 *   #define MSGR_APP_BROADCASTS(B)                 // optional: fan-outs written once (from, message)
 *       B(pinger, Ping)
 *   #include <msgr_app.h>
 *
 * Wire ids are integer literals 1..65535, explicit so that a persisted bus still replays after
 * someone inserts a message above another. Several R lines with the same (from, message) fan
 * out. Everything generated is static or static inline and carries the application's prefix,
 * so every file of the application may include the definition header and several applications
 * may share one file. Generated names (for MSGR_APP pingpong, message Ping, worker pinger):
 *   pingpong_Ping                      the struct (serialized: a typedef of the C type)
 *   pingpong_MSG_Ping                  its wire id;  pingpong_W_pinger  the worker id
 *   pingpong_N_WORKERS                 number of workers
 *   void on_ping(msgr_ctx *, const pingpong_Ping *)    handler prototypes (a wrong signature fails)
 *   int pingpong_send_Ping(msgr_ctx *, const pingpong_Ping *)   typed sender (routes inlined):
 *                                      0, or a negative code (then no destination got it)
 *   int pingpong_claim_Ping(msgr_ctx *, msgr_out *, pingpong_Ping **)   typed zero-copy claim
 *   int pingpong_commit_Ping(msgr_ctx *, msgr_out *)    ... and its commit (fan-out): 0 or < 0
 *   const msgr_app *pingpong_app(void)                  the descriptor for msgr_bus_open
 * Serialized messages need four user functions, declared here so a wrong signature fails:
 *   size_t pingpong_Names_size(const pingpong_Names *);
 *   int pingpong_Names_encode(const pingpong_Names *, void *buf, size_t cap);
 *   int pingpong_Names_decode(const void *buf, size_t len, pingpong_Names *out);
 *   void pingpong_Names_free(pingpong_Names *);
 * `#define MSGR_APP_SHORT_NAMES` before the include also names each message type without the
 * prefix (Ping for pingpong_Ping) and expects the codec functions without it (Names_size, ...):
 * shorter code for a file that holds one application.
 *
 * Mistakes fail to compile with the user's token in the first message: an unknown worker in a
 * route is one error at that token ("'struct pingpong_worker_names' has no member named 'pongr';
 * did you mean 'ponger'?"), an unknown message the same for 'struct pingpong_message_names'
 * (then the handler's unknown type), a duplicate message, worker or wire id
 * ('pingpong_duplicate_wire_id_1' redeclared), a route given twice ('struct
 * pingpong_route_pinger__Ping__ponger' redefined), a struct with hidden padding, a wire id out
 * of range. `make expand` prints what the example definitions expand to.
 */
#ifndef MSGR_APP
#error "define MSGR_APP (the application's name prefix) before including msgr_app.h"
#endif
#ifndef MSGR_APP_MESSAGES
#error "define MSGR_APP_MESSAGES(M, F) before including msgr_app.h"
#endif
#ifndef MSGR_APP_WORKERS
#error "define MSGR_APP_WORKERS(W) before including msgr_app.h"
#endif
#ifndef MSGR_APP_ROUTES
#error "define MSGR_APP_ROUTES(R) before including msgr_app.h"
#endif
#ifndef MSGR_APP_SERIALIZED
#define MSGR_APP_SERIALIZED(S)
#endif

#include <stddef.h>
#include <stdint.h>

#include <messenger.h>

#ifndef MSGR__APP_HELPERS
#define MSGR__APP_HELPERS
#define MSGR__CAT_(a, b) a##b
#define MSGR__CAT(a, b) MSGR__CAT_(a, b)
#define MSGR__N(x) MSGR__CAT(MSGR_APP, x) /* pingpong + x */
#define MSGR__STR_(x) #x
#define MSGR__STR(x) MSGR__STR_(x)
#define MSGR__IGNORE(...)
#define MSGR__T(name) MSGR__N(MSGR__CAT(_, name)) /* a message's type: pingpong_Ping */
#define MSGR__MSG(name) MSGR__N(MSGR__CAT(_MSG_, name))
#define MSGR__WRK(name) MSGR__N(MSGR__CAT(_W_, name))
/* A dispatch key: (destination, source, message id) in one integer, for one switch. */
#define MSGR__KEY(to, from, id) (((uint64_t)(to) << 32) | ((uint64_t)(from) << 16) | (uint64_t)(id))
#endif

/* A serialized message's codec functions: pingpong_Order_size, or Order_size with short names. */
#ifdef MSGR_APP_SHORT_NAMES
#define MSGR__CODEC_FN(name, fn) name##_##fn
#else
#define MSGR__CODEC_FN(name, fn) MSGR__CAT(MSGR__T(name), MSGR__CAT(_, fn))
#endif

/* ---- step "ids": message and worker ids, plus the names that make mistakes readable ---- */

/* A second declaration of any of these is a compile error naming the duplicate. */
#define MSGR__DUP_M(name, id, ...) MSGR__N(MSGR__CAT(_duplicate_wire_id_, id)),                    \
                                   MSGR__N(MSGR__CAT(_duplicate_message_, name)),
#define MSGR__DUP_W(name) MSGR__N(MSGR__CAT(_duplicate_worker_, name)),
enum MSGR__N(_uniqueness_checks) {
    MSGR_APP_MESSAGES(MSGR__DUP_M, MSGR__IGNORE)
    MSGR_APP_SERIALIZED(MSGR__DUP_M)
    MSGR_APP_WORKERS(MSGR__DUP_W)
};

/* pingpong_MSG_<name> = wire id */
#define MSGR__ID_M(name, id, fields) MSGR__MSG(name) = (id),
#define MSGR__ID_S(name, id, type) MSGR__MSG(name) = (id),
enum MSGR__N(_msg_id) {
    MSGR__N(_MSG_none_) = 0,
    MSGR_APP_MESSAGES(MSGR__ID_M, MSGR__IGNORE)
    MSGR_APP_SERIALIZED(MSGR__ID_S)
};

/* pingpong_W_<name> = 0, 1, ... in declaration order */
#define MSGR__ID_W(name) MSGR__WRK(name),
enum MSGR__N(_worker_id) {
    MSGR_APP_WORKERS(MSGR__ID_W)
    MSGR__N(_N_WORKERS)
};

/* The names a route may use, as members: a route naming anything else asks for a member these
 * structs do not have, and the compiler says so once, at the route's own token, with a
 * suggestion ("'struct pingpong_worker_names' has no member named 'pongr'; did you mean
 * 'ponger'?"). Worker members are chars, so a member's offset is its worker id; message members
 * are char arrays as long as the wire id, so a member's size is its wire id. */
#define MSGR__KNOWN_M(name, id, ...) char name[id];
#define MSGR__KNOWN_W(name) char name;
struct MSGR__N(_worker_names) { MSGR_APP_WORKERS(MSGR__KNOWN_W) };
struct MSGR__N(_message_names) {
    MSGR_APP_MESSAGES(MSGR__KNOWN_M, MSGR__IGNORE)
    MSGR_APP_SERIALIZED(MSGR__KNOWN_M)
};

/* Per route, a struct named after the route's own tokens (pingpong_route_<from>__<msg>__<to>)
 * whose members' sizes are its source, message and destination ids plus one. Each name is
 * resolved here and only here: everything generated below takes the ids from this struct,
 * which exists even when a name was wrong, so a mistake is reported once. A route given twice
 * redefines the struct. */
#define MSGR__RNAME(from, msg, to)                                                                 \
    MSGR__N(MSGR__CAT(MSGR__CAT(MSGR__CAT(_route_, from), MSGR__CAT(__, msg)), MSGR__CAT(__, to)))
#define MSGR__RID(from, msg, to, part)                                                             \
    ((int)sizeof(((struct MSGR__RNAME(from, msg, to) *)0)->part) - 1)
#define MSGR__RSRC(from, msg, to) MSGR__RID(from, msg, to, src)
#define MSGR__RMSG(from, msg, to) MSGR__RID(from, msg, to, msg)
#define MSGR__RDST(from, msg, to) MSGR__RID(from, msg, to, dst)
#define MSGR__ROUTE_IDS(from, msg, to, handler)                                                    \
    struct MSGR__RNAME(from, msg, to) {                                                            \
        char src[offsetof(struct MSGR__N(_worker_names), from) + 1];                               \
        char msg[sizeof(((struct MSGR__N(_message_names) *)0)->msg) + 1];                          \
        char dst[offsetof(struct MSGR__N(_worker_names), to) + 1];                                 \
    };
MSGR_APP_ROUTES(MSGR__ROUTE_IDS)
#undef MSGR__ROUTE_IDS

#undef MSGR__ID_M
#undef MSGR__ID_S
#undef MSGR__DUP_M
#undef MSGR__DUP_W
#undef MSGR__ID_W
#undef MSGR__KNOWN_M
#undef MSGR__KNOWN_W

/* ---- step "structs": the message types, with layout checks ---- */

/* Field macros take F's arguments as one variadic list plus two empty ones, so F(type, name)
 * (no array extent) still passes an argument for every parameter: ISO C before C23 wants one
 * for `...` (-Wpedantic). */
#define MSGR__FIELD(...) MSGR__FIELD_(__VA_ARGS__, , )
#define MSGR__FIELD_(type, fname, ext, ...) type fname ext;
#define MSGR__FIELD_SIZE(...) MSGR__FIELD_SIZE_(__VA_ARGS__, , )
#define MSGR__FIELD_SIZE_(type, fname, ext, ...) +sizeof(type ext)
#define MSGR__STRUCT(name, id, fields)                                                             \
    typedef struct MSGR__T(name) {                                                                 \
        fields                                                                                     \
    } MSGR__T(name);
MSGR_APP_MESSAGES(MSGR__STRUCT, MSGR__FIELD)

#define MSGR__LAYOUT(name, id, fields)                                                             \
    _Static_assert(sizeof(MSGR__T(name)) == 0 fields, "message " #name                             \
                   ": the struct has hidden padding; order fields by size or add explicit "        \
                   "padding fields so every compiler lays it out the same");                       \
    _Static_assert(_Alignof(MSGR__T(name)) <= MSGR_RING_ALIGN,                                     \
                   "message " #name ": alignment above 16 bytes cannot be read in place");         \
    _Static_assert((id) >= 1 && (id) <= 65535, "message " #name ": wire id must be 1..65535");
MSGR_APP_MESSAGES(MSGR__LAYOUT, MSGR__FIELD_SIZE)

#define MSGR__SER_TYPE(name, id, type)                                                             \
    typedef type MSGR__T(name);                                                                    \
    size_t MSGR__CODEC_FN(name, size)(const MSGR__T(name) *msg);                                   \
    int MSGR__CODEC_FN(name, encode)(const MSGR__T(name) *msg, void *buf, size_t cap);             \
    int MSGR__CODEC_FN(name, decode)(const void *buf, size_t len, MSGR__T(name) *out);             \
    void MSGR__CODEC_FN(name, free)(MSGR__T(name) *msg);                                           \
    _Static_assert((id) >= 1 && (id) <= 65535, "message " #name ": wire id must be 1..65535");
MSGR_APP_SERIALIZED(MSGR__SER_TYPE)

/* MSGR_APP_SHORT_NAMES (defined before the include): each message type also under its own
 * name, Ping for pingpong_Ping, for a file that holds one application. */
#ifdef MSGR_APP_SHORT_NAMES
#define MSGR__ALIAS(name, ...) typedef MSGR__T(name) name;
MSGR_APP_MESSAGES(MSGR__ALIAS, MSGR__IGNORE)
MSGR_APP_SERIALIZED(MSGR__ALIAS)
#undef MSGR__ALIAS
#endif

#undef MSGR__FIELD
#undef MSGR__FIELD_
#undef MSGR__FIELD_SIZE
#undef MSGR__FIELD_SIZE_
#undef MSGR__STRUCT
#undef MSGR__LAYOUT
#undef MSGR__SER_TYPE

/* ---- step "routes": handler prototypes and name checks ---- */

#define MSGR__HANDLER_PROTO(from, msg, to, handler)                                                \
    void handler(msgr_ctx *ctx, const MSGR__T(msg) *m);
MSGR_APP_ROUTES(MSGR__HANDLER_PROTO)
#undef MSGR__HANDLER_PROTO

/* ---- step "codecs": per message, how one copy is delivered to a handler and sent ---- */

#define MSGR__CODEC_M(name, id, fields)                                                            \
    static inline int MSGR__N(MSGR__CAT(_deliver_, name))(                                         \
        msgr_ctx *ctx, void (*h)(msgr_ctx *, const MSGR__T(name) *), const void *data,             \
        uint32_t len)                                                                              \
    {                                                                                              \
        if (len != sizeof(MSGR__T(name)))                                                          \
            return MSGR_EMSGSIZE;                                                                  \
        h(ctx, (const MSGR__T(name) *)data); /* in place: valid during the call */                 \
        return 0;                                                                                  \
    }                                                                                              \
    static inline int MSGR__N(MSGR__CAT(_send1_, name))(msgr_ctx *ctx, uint32_t dest,              \
                                                        const void *m)                             \
    {                                                                                              \
        return msgr_send_to(ctx, dest, (uint16_t)(id), m, sizeof(MSGR__T(name)));                  \
    }                                                                                              \
    static inline int MSGR__N(MSGR__CAT(_sendall_, name))(msgr_ctx *ctx, const uint32_t *d,        \
                                                          uint32_t n, const void *m)               \
    {                                                                                              \
        return msgr_send_all_to(ctx, d, n, (uint16_t)(id), m, sizeof(MSGR__T(name)), 0, 0);        \
    }
#define MSGR__CODEC_S(name, id, type)                                                              \
    static inline int MSGR__N(MSGR__CAT(_deliver_, name))(                                         \
        msgr_ctx *ctx, void (*h)(msgr_ctx *, const MSGR__T(name) *), const void *data,             \
        uint32_t len)                                                                              \
    {                                                                                              \
        MSGR__T(name) v;                                                                           \
        int rc = MSGR__CODEC_FN(name, decode)(data, len, &v);                                      \
        if (rc)                                                                                    \
            return rc < 0 ? rc : MSGR_ECODEC;                                                      \
        h(ctx, &v);                                                                                \
        MSGR__CODEC_FN(name, free)(&v);                                                            \
        return 0;                                                                                  \
    }                                                                                              \
    static inline size_t MSGR__N(MSGR__CAT(_size_, name))(const void *m)                           \
    {                                                                                              \
        return MSGR__CODEC_FN(name, size)((const MSGR__T(name) *)m);                               \
    }                                                                                              \
    static inline int MSGR__N(MSGR__CAT(_encode_, name))(const void *m, void *buf, size_t cap)     \
    {                                                                                              \
        return MSGR__CODEC_FN(name, encode)((const MSGR__T(name) *)m, buf, cap);                   \
    }                                                                                              \
    static inline int MSGR__N(MSGR__CAT(_send1_, name))(msgr_ctx *ctx, uint32_t dest,              \
                                                        const void *m)                             \
    {                                                                                              \
        return msgr_send_encoded_to(ctx, dest, (uint16_t)(id), m,                                  \
                                    MSGR__N(MSGR__CAT(_size_, name)),                              \
                                    MSGR__N(MSGR__CAT(_encode_, name)));                           \
    }                                                                                              \
    static inline int MSGR__N(MSGR__CAT(_sendall_, name))(msgr_ctx *ctx, const uint32_t *d,        \
                                                          uint32_t n, const void *m)               \
    {                                                                                              \
        return msgr_send_all_to(ctx, d, n, (uint16_t)(id), m, 0,                                   \
                                MSGR__N(MSGR__CAT(_size_, name)),                                  \
                                MSGR__N(MSGR__CAT(_encode_, name)));                               \
    }
MSGR_APP_MESSAGES(MSGR__CODEC_M, MSGR__IGNORE)
MSGR_APP_SERIALIZED(MSGR__CODEC_S)
#undef MSGR__CODEC_M
#undef MSGR__CODEC_S

/* ---- step "dispatch": one switch over (destination, source, message), one entry per worker ---- */

#define MSGR__CASE(from, msg, to, handler)                                                         \
    case MSGR__KEY(MSGR__RDST(from, msg, to), MSGR__RSRC(from, msg, to),                           \
                   MSGR__RMSG(from, msg, to)):                                                     \
        return MSGR__N(MSGR__CAT(_deliver_, msg))(ctx, handler, data, len);
static inline int MSGR__N(__dispatch)(msgr_ctx *ctx, uint32_t self, uint32_t src, uint32_t id,
                                      const void *data, uint32_t len)
{
    switch (MSGR__KEY(self, src, id)) {
        MSGR_APP_ROUTES(MSGR__CASE)
    default:
        return MSGR_ENOROUTE;
    }
}
/* pingpong_dispatch_<worker>: the switch above with `self` fixed, so the compiler keeps only
 * that worker's cases. */
#define MSGR__DISPATCH_W(w)                                                                        \
    static inline int MSGR__N(MSGR__CAT(_dispatch_, w))(msgr_ctx *ctx, uint32_t src,               \
                                                        uint32_t id, const void *data,             \
                                                        uint32_t len)                              \
    {                                                                                              \
        return MSGR__N(__dispatch)(ctx, MSGR__WRK(w), src, id, data, len);                         \
    }
MSGR_APP_WORKERS(MSGR__DISPATCH_W)
#undef MSGR__CASE
#undef MSGR__DISPATCH_W

/* ---- step "senders": typed senders, typed zero-copy claims ---- */

/* For the message being generated (this_id), every route from the sending worker names a
 * destination; routes of other messages are constant-false and compile away. One destination
 * is a plain send; several (fan-out) go all or nothing (msgr_send_all_to, msgr_commit_all). */
#define MSGR__PLUS1(...) +1
#define MSGR__ROUTE_IS(from, msg, to)                                                              \
    (MSGR__RMSG(from, msg, to) == this_id && self == (uint32_t)MSGR__RSRC(from, msg, to))
#define MSGR__COLLECT(from, msg, to, handler)                                                      \
    if (MSGR__ROUTE_IS(from, msg, to))                                                             \
        dests_[nd_++] = MSGR__RDST(from, msg, to);
#define MSGR__COLLECT_OTHERS(from, msg, to, handler)                                               \
    if (MSGR__ROUTE_IS(from, msg, to) && (uint32_t)MSGR__RDST(from, msg, to) != out->dest)         \
        dests_[nd_++] = MSGR__RDST(from, msg, to);
#define MSGR__FIRST_DEST(from, msg, to, handler)                                                   \
    if (MSGR__ROUTE_IS(from, msg, to) && dest < 0)                                                 \
        dest = MSGR__RDST(from, msg, to);
#define MSGR__SENDER(name, id, ...)                                                                \
    static inline int MSGR__N(MSGR__CAT(_send_, name))(msgr_ctx *ctx, const MSGR__T(name) *m)      \
    {                                                                                              \
        const uint16_t this_id = (uint16_t)(id);                                                   \
        const uint32_t self = msgr_ctx_worker(ctx);                                                \
        uint32_t dests_[1 MSGR_APP_ROUTES(MSGR__PLUS1)];                                           \
        uint32_t nd_ = 0;                                                                          \
        (void)self;                                                                                \
        MSGR_APP_ROUTES(MSGR__COLLECT)                                                             \
        if (nd_ == 0) {                                                                            \
            msgr__count_unrouted(ctx);                                                             \
            return MSGR_ENOROUTE;                                                                  \
        }                                                                                          \
        if (nd_ == 1) {                                                                            \
            int rc_ = MSGR__N(MSGR__CAT(_send1_, name))(ctx, dests_[0], (const void *)m);          \
            return rc_ < 0 ? rc_ : 0;                                                              \
        }                                                                                          \
        return MSGR__N(MSGR__CAT(_sendall_, name))(ctx, dests_, nd_, (const void *)m);             \
    }
#define MSGR__CLAIMER(name, id, fields)                                                            \
    static inline int MSGR__N(MSGR__CAT(_claim_, name))(msgr_ctx *ctx, msgr_out *out,              \
                                                        MSGR__T(name) **msg)                       \
    {                                                                                              \
        const uint16_t this_id = (uint16_t)(id);                                                   \
        const uint32_t self = msgr_ctx_worker(ctx);                                                \
        int64_t dest = -1;                                                                         \
        (void)self;                                                                                \
        MSGR_APP_ROUTES(MSGR__FIRST_DEST)                                                          \
        if (dest < 0) {                                                                            \
            msgr__count_unrouted(ctx);                                                             \
            return MSGR_ENOROUTE;                                                                  \
        }                                                                                          \
        int rc = msgr_claim_first(ctx, (uint32_t)dest, this_id, sizeof(MSGR__T(name)), out);       \
        if (rc == 0)                                                                               \
            *msg = (MSGR__T(name) *)out->data;                                                     \
        return rc;                                                                                 \
    }                                                                                              \
    /* Publishes the claim and its copies to the other fan-out destinations, all or none. */       \
    static inline int MSGR__N(MSGR__CAT(_commit_, name))(msgr_ctx *ctx, msgr_out *out)             \
    {                                                                                              \
        const uint16_t this_id = (uint16_t)(id);                                                   \
        const uint32_t self = msgr_ctx_worker(ctx);                                                \
        uint32_t dests_[1 MSGR_APP_ROUTES(MSGR__PLUS1)];                                           \
        uint32_t nd_ = 0;                                                                          \
        (void)self;                                                                                \
        MSGR_APP_ROUTES(MSGR__COLLECT_OTHERS)                                                      \
        if (nd_ == 0) {                                                                            \
            return msgr_commit(ctx, out);                                                          \
        }                                                                                          \
        return msgr_commit_all(ctx, out, dests_, nd_);                                             \
    }
MSGR_APP_MESSAGES(MSGR__SENDER, MSGR__IGNORE)
MSGR_APP_SERIALIZED(MSGR__SENDER)
MSGR_APP_MESSAGES(MSGR__CLAIMER, MSGR__IGNORE)
/* The runtime's view of the routes: destinations of (self, this_id), in route order. */
static inline uint32_t MSGR__N(_route_dests)(uint32_t self, uint16_t this_id, uint32_t *dests_)
{
    uint32_t nd_ = 0;
    (void)self;
    (void)this_id;
    (void)dests_;
    MSGR_APP_ROUTES(MSGR__COLLECT)
    return nd_;
}
#undef MSGR__PLUS1
#undef MSGR__COLLECT
#undef MSGR__COLLECT_OTHERS
#undef MSGR__FIRST_DEST
#undef MSGR__SENDER
#undef MSGR__CLAIMER

/* ---- step "descriptor": the constant msgr_app handed to msgr_bus_open ---- */

/* The fingerprint covers the wire id, the name, size and alignment, and per field its name,
 * type (as written: int64_t and double of the same size differ), offset and size. */
#define MSGR__FP_FIELD(...) MSGR__FP_FIELD_(__VA_ARGS__, , )
#define MSGR__FP_FIELD_(type, fname, ext, ...)                                                     \
    h = msgr_fp_str(h, #fname);                                                                    \
    h = msgr_fp_str(h, #type);                                                                     \
    h = msgr_fp_u64(h, offsetof(msgr__self, fname));                                               \
    h = msgr_fp_u64(h, sizeof(((msgr__self *)0)->fname));
#define MSGR__FP_M(name, id, fields)                                                               \
    static inline uint64_t MSGR__N(MSGR__CAT(_fingerprint_, name))(void)                           \
    {                                                                                              \
        typedef MSGR__T(name) msgr__self;                                                          \
        uint64_t h = msgr_fp_u64(msgr_fp_str(0, #name), (id));                                     \
        h = msgr_fp_u64(h, sizeof(MSGR__T(name)));                                                 \
        h = msgr_fp_u64(h, _Alignof(MSGR__T(name)));                                               \
        fields return h;                                                                           \
    }
#define MSGR__FP_S(name, id, type)                                                                 \
    static inline uint64_t MSGR__N(MSGR__CAT(_fingerprint_, name))(void)                           \
    {                                                                                              \
        return msgr_fp_str(msgr_fp_u64(msgr_fp_str(0, #name), (id)), "serialized " #type);         \
    }
MSGR_APP_MESSAGES(MSGR__FP_M, MSGR__FP_FIELD)
MSGR_APP_SERIALIZED(MSGR__FP_S)

/* Each message's field table, stored in the bus so that a refused attach names the field. */
#define MSGR__FT_FIELD(...) MSGR__FT_FIELD_(__VA_ARGS__, , )
#define MSGR__FT_FIELD_(type, fname, ext, ...)                                                     \
    {#fname, #type #ext, (uint32_t)offsetof(msgr__self, fname),                                    \
     (uint32_t)sizeof(((msgr__self *)0)->fname)},
#define MSGR__FT_M(name, id, fields)                                                               \
    static inline const msgr_app_field *MSGR__N(MSGR__CAT(_fields_, name))(uint32_t *n)            \
    {                                                                                              \
        typedef MSGR__T(name) msgr__self;                                                          \
        static const msgr_app_field f[] = {fields};                                                \
        *n = (uint32_t)(sizeof f / sizeof *f);                                                     \
        return f;                                                                                  \
    }
MSGR_APP_MESSAGES(MSGR__FT_M, MSGR__FT_FIELD)

#define MSGR__DESC_M(name, id, ...)                                                                \
    {#name, (id), 0, sizeof(MSGR__T(name)), MSGR__N(MSGR__CAT(_fingerprint_, name)),               \
     MSGR__N(MSGR__CAT(_fields_, name))},
#define MSGR__DESC_S(name, id, type)                                                               \
    {#name, (id), 1, 0, MSGR__N(MSGR__CAT(_fingerprint_, name)), NULL},
#define MSGR__WNAME(w) #w,
#define MSGR__WDISP(w) MSGR__N(MSGR__CAT(_dispatch_, w)),
/* Broadcast fan-outs (optional table): B(from, message) — every route of that message from that
 * worker is served by one write into a broadcast ring that each destination reads in place. */
#ifdef MSGR_APP_BROADCASTS
#define MSGR__BC_ENTRY(from, msg)                                                                  \
    {(uint32_t)offsetof(struct MSGR__N(_worker_names), from),                                      \
     (uint16_t)sizeof(((struct MSGR__N(_message_names) *)0)->msg), 0},
#define MSGR__BC_TABLE MSGR_APP_BROADCASTS(MSGR__BC_ENTRY)
#else
#define MSGR__BC_TABLE
#endif
static inline const msgr_app *MSGR__N(_app)(void)
{
    static const char *const names[] = {MSGR_APP_WORKERS(MSGR__WNAME)};
    static const msgr_app_msg msgs[] = {MSGR_APP_MESSAGES(MSGR__DESC_M, MSGR__IGNORE)
                                            MSGR_APP_SERIALIZED(MSGR__DESC_S)};
    static const msgr_dispatch_fn dispatch[] = {MSGR_APP_WORKERS(MSGR__WDISP)};
    static const msgr_app_broadcast bcasts[] = {MSGR__BC_TABLE{0, 0, 0}};
    static const msgr_app app = {MSGR__STR(MSGR_APP), MSGR__N(_N_WORKERS),
                                 (uint32_t)(sizeof msgs / sizeof *msgs), names, msgs, dispatch,
                                 (uint32_t)(sizeof bcasts / sizeof *bcasts - 1), bcasts,
                                 MSGR__N(_route_dests)};
    return &app;
}
#undef MSGR__BC_ENTRY
#undef MSGR__BC_TABLE
#undef MSGR__FP_FIELD
#undef MSGR__FP_FIELD_
#undef MSGR__FP_M
#undef MSGR__FP_S
#undef MSGR__FT_FIELD
#undef MSGR__FT_FIELD_
#undef MSGR__FT_M
#undef MSGR__DESC_M
#undef MSGR__DESC_S
#undef MSGR__WNAME
#undef MSGR__WDISP

/* The definition is consumed: another application may follow in the same file. */
#undef MSGR__CODEC_FN
#undef MSGR_APP_SHORT_NAMES
#undef MSGR_APP
#undef MSGR_APP_MESSAGES
#undef MSGR_APP_SERIALIZED
#undef MSGR_APP_WORKERS
#undef MSGR_APP_ROUTES
#undef MSGR_APP_BROADCASTS
