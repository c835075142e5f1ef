/* expect: cf_duplicate_wire_id_1 */
#include <stdint.h>
#define MSGR_APP_SHORT_NAMES
#define MSGR_APP cf
#define MSGR_APP_MESSAGES(M, F) M(Ping, 1, F(uint64_t, seq)) M(Pong, 1, F(uint64_t, seq))
#define MSGR_APP_WORKERS(W) W(pinger) W(ponger)
#define MSGR_APP_ROUTES(R) R(pinger, Ping, ponger, on_ping)
#include <msgr_app.h>
