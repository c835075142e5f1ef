/* The two_machines application: `shop` (machine A) sends orders to `billing` (machine B), which
 * answers each with an invoice; both routes cross machines through the `bridge` worker that
 * each machine runs. */
#ifndef TWO_MACHINES_DEF_H
#define TWO_MACHINES_DEF_H

#define MSGR_APP_SHORT_NAMES
#define MSGR_APP tm
#define MSGR_APP_MESSAGES(M, F)                                                               \
    M(Order,   1, F(uint64_t, id) F(uint64_t, cents))                                         \
    M(Invoice, 2, F(uint64_t, order) F(uint64_t, cents))
#define MSGR_APP_WORKERS(W) W(shop) W(billing) W(bridge)
#define MSGR_APP_ROUTES(R)                                                                    \
    R(shop,    Order,   bridge,  out_order)     /* A: published */                            \
    R(bridge,  Order,   billing, on_order)      /* B: delivered from NATS */                  \
    R(billing, Invoice, bridge,  out_invoice)   /* B: published */                            \
    R(bridge,  Invoice, shop,    on_invoice)    /* A: delivered from NATS */
#include <msgr_app.h>

#endif
