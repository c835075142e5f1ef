/* two_machines: two processes with separate buses, standing for two machines, and one route
 * each way between them over NATS with JetStream (at least once, nothing lost).
 *
 *   two_machines --url URL [--orders N] [--dir DIR]   starts machine B (this program again),
 *                                                     runs machine A, checks the totals
 *   two_machines --machine b --url URL --dir DIR      machine B: bills every order
 *
 * Machine A's shop sends N orders; B's billing answers each with an invoice; A checks that
 * every order was invoiced once, for its amount. Each machine's bus is a file bus whose bridge
 * acknowledges by hand, so a message leaves a machine's log only once JetStream has it.
 * `make bridge-demo` starts a nats-server for it. */
#define _GNU_SOURCE
#include <errno.h>
#include <msgr/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../proc.h"

#include "two_machines.def.h"

static uint64_t invoiced, wrong, expect;
static int quit;

void out_order(msgr_ctx *c, const Order *m) { (void)c, (void)m; }
void out_invoice(msgr_ctx *c, const Invoice *m) { (void)c, (void)m; }

void on_order(msgr_ctx *ctx, const Order *o)
{
    if (o->id == UINT64_MAX) { /* the last one: B may stop */
        quit = 1;
        return;
    }
    Invoice inv = {.order = o->id, .cents = o->cents};
    tm_send_Invoice(ctx, &inv);
}

void on_invoice(msgr_ctx *ctx, const Invoice *i)
{
    (void)ctx;
    wrong += i->cents != i->order * 100 + 99;
    invoiced++;
}

static int fail(const char *who, const char *what)
{
    fprintf(stderr, "two_machines[%s]: %s: %s\n", who, what, msgr_last_error());
    return 1;
}

/* One machine: its own file bus in dir, running `local` and the bridge. */
static int machine(const char *who, const char *url, const char *dir, const char *local,
                   const char *in_msg, msgr_nats **n, msgr_bus **bus)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.bus", dir, who);
    const char *run[] = {local, "bridge", NULL}, *drive[] = {local, NULL};
    const char *manual[] = {"bridge", NULL};
    char node[32];
    snprintf(node, sizeof node, "machine-%s", who);
    msgr_nats_opts no = {.mode = MSGR_NATS_JETSTREAM, .url = url, .node = node};
    const msgr_app *app;
    if (msgr_nats_open(tm_app(), "bridge", &no, n, &app) ||
        msgr_nats_route_in(*n, in_msg, local))
        return fail(who, "bridge");
    msgr_bus_opts o = {.kind = MSGR_REGION_FILE, .name = path, .run = run, .drive = drive,
                       .manual_ack = manual, .inbox_capacity = 1 << 22,
                       .flags = MSGR_BUS_FRESH};
    if (msgr_bus_open(app, &o, bus))
        return fail(who, "open the bus");
    if (msgr_nats_attach(*n, *bus))
        return fail(who, "connect to NATS");
    if (msgr_bus_start(*bus))
        return fail(who, "start");
    return 0;
}

static void shut(msgr_nats *n, msgr_bus *bus)
{
    msgr_nats_flush(n, 10000000000ll);
    msgr_bus_stop(bus, MSGR_STOP_DRAIN, 10000000000ll, NULL);
    msgr_bus_close(bus);
    msgr_nats_close(n);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *dir = NULL, *role = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--url") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--orders") && i + 1 < argc)
            expect = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--machine") && i + 1 < argc)
            role = argv[++i];
        else {
            fprintf(stderr, "usage: two_machines --url URL [--orders N] [--dir DIR] | "
                            "--machine b --url URL --dir DIR\n");
            return 2;
        }
    }
    if (!url) {
        fprintf(stderr, "two_machines: --url is required (make bridge-demo starts a server)\n");
        return 2;
    }
    char own[64];
    if (!dir) {
        snprintf(own, sizeof own, "/tmp/msgr-two-machines-%ld", ex_pid());
        dir = own;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return 1;
    msgr_nats *n;
    msgr_bus *bus;
    if (role) { /* machine B */
        if (machine("b", url, dir, "billing", "Order", &n, &bus))
            return 1;
        while (!quit)
            if (msgr_bus_poll_wait(bus, tm_W_billing, 256, 60000000000ll) <= 0)
                return fail("b", "no order for 60 s");
        shut(n, bus);
        return 0;
    }
    if (!expect)
        expect = 10000;
    char self[4096];
    ex_self_path(self, sizeof self, argv[0]);
    char *b_args[] = {self, "--machine", "b", "--url", (char *)url, "--dir", (char *)dir, NULL};
    ex_proc b;
    if (ex_start(&b, b_args) != 0)
        return 1;
    if (machine("a", url, dir, "shop", "Invoice", &n, &bus))
        return 1;
    msgr_ctx *ctx;
    msgr_bus_ctx(bus, tm_W_shop, &ctx);
    for (uint64_t i = 0; i < expect; i++) {
        Order o = {.id = i, .cents = i * 100 + 99};
        if (tm_send_Order(ctx, &o) < 0)
            return fail("a", "send");
    }
    while (invoiced < expect)
        if (msgr_bus_poll_wait(bus, tm_W_shop, 256, 60000000000ll) <= 0)
            return fail("a", "no invoice for 60 s");
    Order last = {.id = UINT64_MAX};
    tm_send_Order(ctx, &last);
    msgr_nats_stats st;
    msgr_nats_stats_get(n, &st);
    shut(n, bus);
    int b_ok = ex_wait(&b, 1) == 0;
    printf("two_machines: %llu orders from machine A, %llu invoices back from machine B over "
           "NATS JetStream; %llu wrong; A's bridge published %llu, %llu acknowledged by the "
           "server\n", (unsigned long long)expect, (unsigned long long)invoiced,
           (unsigned long long)wrong, (unsigned long long)st.published,
           (unsigned long long)st.acked);
    if (!b_ok || wrong || invoiced != expect) {
        fprintf(stderr, "two_machines: FAILED\n");
        return 1;
    }
    printf("ok: every order invoiced once, across two buses and a broker\n");
    return 0;
}
