/* The orders application: `main` places orders with `gateway`, which checks each and fans it
 * out to `stock` and `billing`; `billing` writes a receipt (a serialized, variable-length text)
 * for `audit`; `stock`, `billing` and `audit` each report back to `main`. */
#ifndef ORDERS_DEF_H
#define ORDERS_DEF_H

#include <stdint.h>

#define MSGR_APP_SHORT_NAMES /* each message type also under its short name */
#define MSGR_APP orders

#define MSGR_APP_MESSAGES(M, F)      /* name, wire id, fields */                               \
    M(Order,    1, F(uint64_t, id) F(uint32_t, qty) F(uint32_t, price_cents))                  \
    M(Checked,  2, F(uint64_t, id) F(uint64_t, amount_cents) F(uint32_t, qty) F(uint32_t, pad)) \
    M(Reserved, 3, F(uint64_t, id) F(uint32_t, qty) F(uint32_t, pad))                          \
    M(Billed,   4, F(uint64_t, id) F(uint64_t, amount_cents))                                  \
    M(Audited,  6, F(uint64_t, id) F(uint64_t, receipt_bytes))

#define MSGR_APP_SERIALIZED(S)       /* name, wire id, C type */                               \
    S(Receipt, 5, char *)

#define MSGR_APP_WORKERS(W)          /* name */                                                \
    W(main) W(gateway) W(stock) W(billing) W(audit)

#define MSGR_APP_ROUTES(R)           /* from, message, to, handler */                          \
    R(main,    Order,    gateway, on_order)                                                    \
    R(gateway, Checked,  stock,   on_checked_stock)   /* fan-out: one message, two workers */  \
    R(gateway, Checked,  billing, on_checked_billing)                                          \
    R(stock,   Reserved, main,    on_reserved)                                                 \
    R(billing, Billed,   main,    on_billed)                                                   \
    R(billing, Receipt,  audit,   on_receipt)                                                  \
    R(audit,   Audited,  main,    on_audited)

#include <msgr_app.h>

#endif
