/* Sending in cycles: the default options never hang silently. The main thread driving its
 * own worker keeps dispatching its inbox while it waits for space in a full one (so main <->
 * worker completes), and worker threads that wait for each other's full inboxes fail the send
 * with MSGR_EDEADLK within a bound. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>

#include "test_util.h"
#include "cycle.def.h"

static _Atomic uint64_t results, deadlocks, balls;

static _Atomic uint64_t bursts, burst_errors;

void gw_on_order(msgr_ctx *ctx, const Order *o)
{
    if (o->seq == UINT64_MAX) { /* the trigger: answer with a Burst */
        Burst b = {.n = 40}; /* more than gw's inbox holds */
        cyc_send_Burst(ctx, &b);
        return;
    }
    Result r = {.seq = o->seq};
    cyc_send_Result(ctx, &r);
}

/* A handler of the driven worker that sends more than the destination holds: its sends wait
 * inside the handler, where the worker's own inbox must not be dispatched again. */
void main_on_burst(msgr_ctx *ctx, const Burst *b)
{
    atomic_fetch_add(&bursts, 1);
    for (uint64_t i = 0; i < b->n; i++) {
        Order o = {.seq = i};
        if (cyc_send_Order(ctx, &o) < 0)
            atomic_fetch_add(&burst_errors, 1);
    }
}

void main_on_result(msgr_ctx *ctx, const Result *r)
{
    (void)ctx;
    (void)r;
    atomic_fetch_add(&results, 1);
}

/* x and y answer one message with two: their inboxes fill, and each then waits for the other. */
void x_on_ball(msgr_ctx *ctx, const Ball *b)
{
    atomic_fetch_add(&balls, 1);
    for (int i = 0; i < 2; i++) {
        Back k = {.n = b->n + 1};
        if (cyc_send_Back(ctx, &k) == MSGR_EDEADLK)
            atomic_fetch_add(&deadlocks, 1);
    }
}

void y_on_back(msgr_ctx *ctx, const Back *k)
{
    for (int i = 0; i < 2; i++) {
        Ball b = {.n = k->n + 1};
        if (cyc_send_Ball(ctx, &b) == MSGR_EDEADLK)
            atomic_fetch_add(&deadlocks, 1);
    }
}

static _Atomic uint64_t fans_gw, fans_y;
void gw_on_fan(msgr_ctx *ctx, const Fan *f) { (void)ctx, (void)f; atomic_fetch_add(&fans_gw, 1); }
void y_on_fan(msgr_ctx *ctx, const Fan *f) { (void)ctx, (void)f; atomic_fetch_add(&fans_y, 1); }

TestSuite(cycle, .timeout = 120);

/* A fan-out whose second destination is full delivers to neither: all or nothing (the first
 * got its copy before). Through the typed sender and through the zero-copy claim and commit. */
Test(cycle, a_fan_out_is_all_or_nothing)
{
    const char *const run_list[] = {"main", "gw", NULL}; /* y runs nowhere: its inbox fills */
    const char *const drive[] = {"main", NULL};
    msgr_bus_opts o = {.inbox_capacity = 4096, .run = run_list, .drive = drive,
                       .send_timeout_ns = 5000000};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(cyc_app(), &o, &b), 0);
    cr_assert_eq(msgr_bus_start(b), 0);
    msgr_ctx *main_ctx;
    cr_assert_eq(msgr_bus_ctx(b, cyc_W_main, &main_ctx), 0);
    uint64_t sent = 0;
    int rc;
    for (uint64_t i = 0; i < 10000; i++) {
        Fan f = {.n = i};
        if ((rc = cyc_send_Fan(main_ctx, &f)) < 0)
            break;
        cr_assert_eq(rc, 0, "both copies");
        sent++;
    }
    cr_assert_eq(rc, MSGR_ETIMEDOUT, "y's inbox filled: %s", msgr_strerror(rc));
    for (int i = 0; i < 20; i++) { /* gw has room, y has none: gw must not get these */
        Fan f = {.n = 90000};
        cr_assert_eq(cyc_send_Fan(main_ctx, &f), MSGR_ETIMEDOUT);
        msgr_out out;
        Fan *z = NULL;
        cr_assert_eq(cyc_claim_Fan(main_ctx, &out, &z), 0, "room in gw's inbox");
        z->n = 90001;
        cr_assert_eq(cyc_commit_Fan(main_ctx, &out), MSGR_ETIMEDOUT);
    }
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, NULL), 0);
    cr_assert_eq(atomic_load(&fans_gw), sent, "gw got exactly the fan-outs y got too");
    msgr_counters cy;
    cr_assert_eq(msgr_bus_counters(b, cyc_W_y, &cy), 0);
    cr_assert_eq(cy.queued, sent);
    msgr_bus_close(b);
}

Test(cycle, main_sending_to_a_worker_that_answers_main_completes_with_default_options)
{
    for (int run = 0; run < 100; run++) {
        const char *const drive[] = {"main", NULL};
        const char *const run_list[] = {"main", "gw", NULL};
        msgr_bus_opts o = {.inbox_capacity = 4096, .run = run_list, .drive = drive};
        msgr_bus *b;
        cr_assert_eq(msgr_bus_open(cyc_app(), &o, &b), 0);
        cr_assert_eq(msgr_bus_start(b), 0);
        msgr_ctx *main_ctx;
        cr_assert_eq(msgr_bus_ctx(b, cyc_W_main, &main_ctx), 0);
        atomic_store(&results, 0);
        uint64_t n = 2000; /* far more than either inbox holds */
        for (uint64_t i = 0; i < n; i++) {
            Order ord = {.seq = i};
            int rc = cyc_send_Order(main_ctx, &ord);
            cr_assert_eq(rc, 0, "run %d, order %lu: %s", run, (unsigned long)i,
                         msgr_strerror(rc));
            if ((i & 63) == 0) /* polls less than the results come: main's inbox fills */
                msgr_bus_poll(b, cyc_W_main, 16);
        }
        uint64_t t0 = tu_now_ns();
        while (atomic_load(&results) < n) {
            msgr_bus_poll_wait(b, cyc_W_main, 64, 100000000);
            cr_assert_lt(tu_now_ns() - t0, 10000000000ull, "results stopped coming");
        }
        cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_DRAIN, -1, NULL), 0);
        msgr_bus_close(b);
    }
}

Test(cycle, workers_waiting_for_each_other_fail_with_edeadlk_within_a_bound)
{
    const char *const run_list[] = {"main", "x", "y", NULL};
    const char *const drive[] = {"main", NULL};
    msgr_bus_opts o = {.inbox_capacity = 4096, .run = run_list, .drive = drive};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(cyc_app(), &o, &b), 0);
    cr_assert_eq(msgr_bus_start(b), 0);
    msgr_ctx *main_ctx;
    cr_assert_eq(msgr_bus_ctx(b, cyc_W_main, &main_ctx), 0);
    Ball first = {.n = 0};
    cr_assert_eq(cyc_send_Ball(main_ctx, &first), 0);
    uint64_t t0 = tu_now_ns();
    while (!atomic_load(&deadlocks)) {
        cr_assert_lt(tu_now_ns() - t0, 10000000000ull, "a cycle of full inboxes hung silently");
        sched_yield();
    }
    /* The cycle is reported, not waited on: stop abandons what is left. */
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_ABANDON, 0, NULL), 0);
    msgr_counters cx;
    cr_assert_eq(msgr_bus_counters(b, cyc_W_x, &cx), 0);
    msgr_counters cy;
    cr_assert_eq(msgr_bus_counters(b, cyc_W_y, &cy), 0);
    cr_assert_gt(cx.send_errors + cy.send_errors, 0, "counted as send errors");
    msgr_bus_close(b);
}

Test(cycle, a_driven_workers_handler_that_waits_for_space_is_not_dispatched_twice)
{
    const char *const drive[] = {"main", NULL};
    const char *const run_list[] = {"main", "gw", NULL};
    msgr_bus_opts o = {.inbox_capacity = 4096, .run = run_list, .drive = drive};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(cyc_app(), &o, &b), 0);
    cr_assert_eq(msgr_bus_start(b), 0);
    msgr_ctx *main_ctx;
    cr_assert_eq(msgr_bus_ctx(b, cyc_W_main, &main_ctx), 0);
    Order trigger = {.seq = UINT64_MAX};
    cr_assert_eq(cyc_send_Order(main_ctx, &trigger), 0);
    uint64_t t0 = tu_now_ns();
    while (!atomic_load(&bursts)) {
        msgr_bus_poll_wait(b, cyc_W_main, 1, 100000000);
        cr_assert_lt(tu_now_ns() - t0, 30000000000ull, "no Burst came");
    }
    for (int i = 0; i < 50; i++)
        msgr_bus_poll_wait(b, cyc_W_main, 64, 10000000); /* the results, what got through */
    cr_assert_eq(atomic_load(&bursts), 1, "the Burst was handled once, not again from its own sends");
    cr_assert_eq(msgr_bus_stop(b, MSGR_STOP_ABANDON, 0, NULL), 0);
    msgr_bus_close(b);
}
