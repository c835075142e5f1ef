/* The serialized application: orders with a variable number of variable-length item names
 * travel in the serialized mode (a user codec), receipts come back as plain structs. */
#ifndef SERIALIZED_DEF_H
#define SERIALIZED_DEF_H

#include <stdint.h>

struct order {
    uint64_t id;
    char *customer;
    uint32_t n_items;
    char **items;
};

#define MSGR_APP_SHORT_NAMES /* each message type also under its short name */
#define MSGR_APP shop
#define MSGR_APP_MESSAGES(M, F)      /* zero-copy structs: name, wire id, fields */            \
    M(Receipt, 2, F(uint64_t, order_id) F(uint64_t, items) F(uint64_t, bytes))
#define MSGR_APP_SERIALIZED(S)       /* serialized: name, wire id, C type */                   \
    S(Order, 1, struct order)
#define MSGR_APP_WORKERS(W) W(main) W(till)
#define MSGR_APP_ROUTES(R)                                                                    \
    R(main, Order,   till, on_order)                                                           \
    R(till, Receipt, main, on_receipt)
#include <msgr_app.h>

#endif
