/* serialized: the serialized mode end to end. `main` sends orders (an id, a customer name and a
 * list of item names, all variable-length) encoded by a user codec; the `till` worker gets them
 * decoded, checks them and answers with a fixed-layout Receipt.
 *
 * Wire format of an Order (little-endian): u64 id, u32 customer length, customer bytes,
 * u32 item count, then per item u32 length and bytes.
 *
 *   serialized [--orders N]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serialized.def.h"

/* ---- the codec: the runtime checks that encode writes exactly Order_size() bytes ---- */

size_t Order_size(const Order *o)
{
    size_t n = 8 + 4 + strlen(o->customer) + 4;
    for (uint32_t i = 0; i < o->n_items; i++)
        n += 4 + strlen(o->items[i]);
    return n;
}

static void put_str(unsigned char *p, size_t *at, const char *s)
{
    uint32_t len = (uint32_t)strlen(s);
    memcpy(p + *at, &len, 4);
    memcpy(p + *at + 4, s, len);
    *at += 4 + len;
}

int Order_encode(const Order *o, void *buf, size_t cap)
{
    if (cap < Order_size(o))
        return MSGR_ERANGE;
    unsigned char *p = buf;
    size_t at = 0;
    memcpy(p, &o->id, 8);
    at = 8;
    put_str(p, &at, o->customer);
    memcpy(p + at, &o->n_items, 4);
    at += 4;
    for (uint32_t i = 0; i < o->n_items; i++)
        put_str(p, &at, o->items[i]);
    return (int)at;
}

/* Every length read from the buffer is checked against what is left: input is untrusted. */
static char *get_str(const unsigned char *p, size_t len, size_t *at)
{
    uint32_t n;
    if (len - *at < 4)
        return NULL;
    memcpy(&n, p + *at, 4);
    if (n > len - *at - 4)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    memcpy(s, p + *at + 4, n);
    s[n] = 0;
    *at += 4 + n;
    return s;
}

int Order_decode(const void *buf, size_t len, Order *o)
{
    const unsigned char *p = buf;
    memset(o, 0, sizeof *o);
    size_t at = 8;
    if (len < 8)
        return MSGR_ECODEC;
    memcpy(&o->id, p, 8);
    if (!(o->customer = get_str(p, len, &at)) || len - at < 4)
        goto bad;
    memcpy(&o->n_items, p + at, 4);
    at += 4;
    if (o->n_items > (len - at) / 4)
        goto bad;
    o->items = calloc(o->n_items + 1, sizeof *o->items);
    for (uint32_t i = 0; i < o->n_items; i++)
        if (!(o->items[i] = get_str(p, len, &at)))
            goto bad;
    if (at == len)
        return 0;
bad:
    Order_free(o);
    return MSGR_ECODEC;
}

void Order_free(Order *o)
{
    for (uint32_t i = 0; o->items && i < o->n_items; i++)
        free(o->items[i]);
    free(o->items);
    free(o->customer);
    memset(o, 0, sizeof *o);
}

/* ---- the application ---- */

static const char *const catalogue[] = {"tea", "bread", "a very long name for a small cheese",
                                        "", "jam", "apples (a bag of six, assorted)"};
static uint64_t receipts, bad_receipts, bytes_total;

static uint32_t items_of(uint64_t id) { return (uint32_t)(id % 7); }

void on_order(msgr_ctx *ctx, const Order *o)
{
    /* Check what arrived against what main built for this id. */
    int ok = o->n_items == items_of(o->id) && strcmp(o->customer, "customer") == 0;
    uint64_t bytes = 0;
    for (uint32_t i = 0; ok && i < o->n_items; i++) {
        ok = strcmp(o->items[i], catalogue[(o->id + i) % 6]) == 0;
        bytes += strlen(o->items[i]);
    }
    Receipt r = {.order_id = o->id, .items = ok ? o->n_items : UINT64_MAX, .bytes = bytes};
    shop_send_Receipt(ctx, &r);
}

void on_receipt(msgr_ctx *ctx, const Receipt *r)
{
    (void)ctx;
    if (r->order_id != receipts || r->items != items_of(r->order_id))
        bad_receipts++;
    bytes_total += r->bytes;
    receipts++;
}

int main(int argc, char **argv)
{
    uint64_t orders = 200000;
    if (argc == 3 && !strcmp(argv[1], "--orders"))
        orders = strtoull(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: serialized [--orders N]\n");
        return 2;
    }
    msgr_bus *bus;
    const char *const drive[] = {"main", NULL}; /* `main` is this thread, not started */
    msgr_bus_opts opts = {.drive = drive};
    int rc = msgr_bus_open(shop_app(), &opts, &bus);
    if (rc) {
        fprintf(stderr, "serialized: open: %s\n", msgr_strerror(rc));
        return 1;
    }
    msgr_ctx *ctx;
    msgr_bus_ctx(bus, shop_W_main, &ctx);
    msgr_bus_start(bus);
    for (uint64_t id = 0; id < orders; id++) {
        const char *items[6];
        for (uint32_t i = 0; i < items_of(id); i++)
            items[i] = catalogue[(id + i) % 6];
        Order o = {.id = id, .customer = "customer", .n_items = items_of(id),
                   .items = (char **)items};
        if ((rc = shop_send_Order(ctx, &o)) < 0) {
            fprintf(stderr, "serialized: send: %s\n", msgr_strerror(rc));
            return 1;
        }
        while (msgr_bus_poll(bus, shop_W_main, 64) > 0) /* take receipts as they come */
            ;
    }
    while (receipts < orders)
        if (msgr_bus_poll_wait(bus, shop_W_main, 64, 10000000000ll) <= 0)
            break;
    /* The till counts a message after its handler returns, so the last receipt can arrive
     * before the count: stop (draining) first, then the counters are final. */
    msgr_stop_report rep;
    msgr_bus_stop(bus, MSGR_STOP_DRAIN, -1, &rep);
    msgr_counters c;
    msgr_bus_counters(bus, shop_W_till, &c);
    msgr_bus_close(bus);
    printf("serialized: %lu orders encoded, sent, decoded and answered; %lu item-name bytes\n",
           (unsigned long)receipts, (unsigned long)bytes_total);
    if (receipts != orders || bad_receipts || c.rejected || c.received != orders) {
        fprintf(stderr, "serialized: FAILED: %lu receipts, %lu wrong, %lu codec errors\n",
                (unsigned long)receipts, (unsigned long)bad_receipts, (unsigned long)c.rejected);
        return 1;
    }
    printf("ok: every order arrived intact\n");
    return 0;
}
