/* pipeline: 4 stages on 4 worker threads, each transforming an item and forwarding it; the
 * last stage verifies that every item arrives once, in order, with the right value.
 *
 *   pipeline [--items N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline.def.h"

/* The transformation each stage applies, and what the check stage expects at the end. */
static uint64_t expected(uint64_t seq) { return (seq ^ 0x5a5a) * 3 + 7; }

void on_parse(msgr_ctx *ctx, const Item *in)
{
    Item out = *in;
    out.value = in->value ^ 0x5a5a;
    out.hops++;
    pipeline_send_Item(ctx, &out);
}

void on_scale(msgr_ctx *ctx, const Item *in)
{
    Item out = *in;
    out.value = in->value * 3;
    out.hops++;
    pipeline_send_Item(ctx, &out);
}

void on_offset(msgr_ctx *ctx, const Item *in)
{
    Item out = *in;
    out.value = in->value + 7;
    out.hops++;
    pipeline_send_Item(ctx, &out);
}

typedef struct check_state {
    uint64_t next, bad;
} check_state;

void on_check(msgr_ctx *ctx, const Item *in)
{
    check_state *s = msgr_ctx_user(ctx);
    if (in->seq != s->next || in->value != expected(in->seq) || in->hops != 3)
        s->bad++;
    s->next++;
}

int main(int argc, char **argv)
{
    uint64_t items = 1000000;
    if (argc == 3 && !strcmp(argv[1], "--items"))
        items = strtoull(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: pipeline [--items N]\n");
        return 2;
    }
    msgr_bus *bus;
    const char *const drive[] = {"main", NULL}; /* `main` is this thread, not started */
    msgr_bus_opts opts = {.drive = drive};
    int rc = msgr_bus_open(pipeline_app(), &opts, &bus);
    if (rc) {
        fprintf(stderr, "pipeline: open: %s\n", msgr_strerror(rc));
        return 1;
    }
    check_state st = {0};
    msgr_bus_set_user(bus, pipeline_W_check, &st);
    msgr_ctx *feed;
    msgr_bus_ctx(bus, pipeline_W_main, &feed);
    msgr_bus_start(bus);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 0; i < items; i++) {
        Item it = {.seq = i, .value = i};
        if ((rc = pipeline_send_Item(feed, &it)) < 0) {
            fprintf(stderr, "pipeline: send: %s\n", msgr_strerror(rc));
            return 1;
        }
    }
    msgr_stop_report rep;
    msgr_bus_stop(bus, MSGR_STOP_DRAIN, -1, &rep); /* everything fed goes all the way through */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    msgr_counters c;
    msgr_bus_counters(bus, pipeline_W_check, &c);
    printf("pipeline: %lu items through 4 stages in %.3f s (%.0f items/s), %lu drained at stop\n",
           (unsigned long)items, secs, (double)items / secs, (unsigned long)rep.drained);
    msgr_bus_close(bus);
    if (st.next != items || st.bad || rep.abandoned || c.received != items) {
        fprintf(stderr, "pipeline: FAILED: %lu arrived, %lu wrong, %lu abandoned\n",
                (unsigned long)st.next, (unsigned long)st.bad, (unsigned long)rep.abandoned);
        return 1;
    }
    printf("ok: every item arrived once, in order, with the right value\n");
    return 0;
}
