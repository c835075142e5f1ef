/* expect:  */
/* Two applications in one translation unit, with the same message names: every generated name,
 * the message types included, carries its application's prefix. */
#include <stdint.h>
#define MSGR_APP left
#define MSGR_APP_MESSAGES(M, F) M(Ping, 1, F(uint64_t, seq))
#define MSGR_APP_SERIALIZED(S) S(Note, 2, char *)
#define MSGR_APP_WORKERS(W) W(a) W(b)
#define MSGR_APP_ROUTES(R) R(a, Ping, b, left_on_ping) R(a, Note, b, left_on_note)
#include <msgr_app.h>
#define MSGR_APP right
#define MSGR_APP_MESSAGES(M, F) M(Ping, 1, F(uint32_t, seq) F(uint32_t, hops))
#define MSGR_APP_WORKERS(W) W(a) W(b)
#define MSGR_APP_ROUTES(R) R(b, Ping, a, right_on_ping)
#include <msgr_app.h>

void left_on_ping(msgr_ctx *ctx, const left_Ping *m) { (void)ctx, (void)m; }
void left_on_note(msgr_ctx *ctx, const left_Note *m) { (void)ctx, (void)m; }
void right_on_ping(msgr_ctx *ctx, const right_Ping *m) { (void)ctx, (void)m; }
size_t left_Note_size(const left_Note *n) { return n ? 0 : 0; }
int left_Note_encode(const left_Note *n, void *buf, size_t cap) { return (void)n, (void)buf, (int)cap * 0; }
int left_Note_decode(const void *buf, size_t len, left_Note *out) { return (void)buf, (void)len, (void)out, 0; }
void left_Note_free(left_Note *n) { (void)n; }
_Static_assert(sizeof(left_Ping) == 8 && sizeof(right_Ping) == 8, "both types exist");
const msgr_app *apps[2];
void set_apps(void);
void set_apps(void) { apps[0] = left_app(); apps[1] = right_app(); }
