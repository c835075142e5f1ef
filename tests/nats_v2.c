/* The `natsapp` application with Ping's layout changed under the same wire id: a bridge built
 * from nats.def.h must refuse what this one publishes. */
#define MSGR_APP_SHORT_NAMES
#define MSGR_APP natsapp
#define MSGR_APP_MESSAGES(M, F) M(Ping, 1, F(uint32_t, n) F(uint32_t, pad) F(uint64_t, check))
#define MSGR_APP_WORKERS(W) W(sender) W(bridge) W(receiver)
#define MSGR_APP_ROUTES(R)                                                                    \
    R(sender, Ping, bridge,   v2_bridge_ping)                                                 \
    R(bridge, Ping, receiver, v2_on_ping)
#include <msgr_app.h>

const msgr_app *natsapp_v2_app(void);
int natsapp_v2_send(msgr_ctx *ctx, uint32_t n);

void v2_bridge_ping(msgr_ctx *ctx, const Ping *m) { (void)ctx, (void)m; }
void v2_on_ping(msgr_ctx *ctx, const Ping *m) { (void)ctx, (void)m; }
const msgr_app *natsapp_v2_app(void) { return natsapp_app(); }
int natsapp_v2_send(msgr_ctx *ctx, uint32_t n)
{
    Ping p = {.n = n, .check = n};
    return natsapp_send_Ping(ctx, &p);
}
