/* multi_process: the same definitions, one worker per process, over named shared memory.
 * The parent creates the bus, starts one child process per worker (this program again, with
 * --worker), sends Start, waits for the checker's Total, tells every worker to Quit, and checks
 * the totals and the shared counters.
 *
 *   multi_process [--count N]                 parent
 *   multi_process --worker NAME --bus SHM     a child (started by the parent)
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"

#include "multiproc.def.h"

static int quit;
static uint64_t expect_count;
static Total total;
static int have_total;
static uint64_t got, sum, bad;

void on_start(msgr_ctx *ctx, const Start *m)
{
    for (uint64_t i = 0; i < m->count; i++) {
        Number n = {.seq = i, .value = i + 1};
        multiproc_send_Number(ctx, &n);
    }
}

void on_expect(msgr_ctx *ctx, const Start *m)
{
    (void)ctx;
    expect_count = m->count;
}

void on_number(msgr_ctx *ctx, const Number *m)
{
    Doubled d = {.seq = m->seq, .value = m->value * 2};
    multiproc_send_Doubled(ctx, &d);
}

void on_doubled(msgr_ctx *ctx, const Doubled *m)
{
    bad += m->seq != got || m->value != 2 * (m->seq + 1);
    got++;
    sum += m->value;
    if (got == expect_count) {
        Total t = {.count = got, .sum = sum, .bad = bad};
        multiproc_send_Total(ctx, &t);
    }
}

void on_total(msgr_ctx *ctx, const Total *m)
{
    (void)ctx;
    total = *m;
    have_total = 1;
}

void on_quit(msgr_ctx *ctx, const Quit *m)
{
    (void)ctx, (void)m;
    quit = 1;
}

static int fail(const char *who, const char *what, int rc)
{
    fprintf(stderr, "multi_process[%s]: %s: %s\n", who, what, msgr_strerror(rc));
    return 1;
}

/* A child: run one worker, driven by this process's main thread, until told to quit. */
static int child(const char *worker, const char *shm)
{
    const char *const run[] = {worker, NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = shm, .run = run};
    msgr_bus *bus;
    int rc = msgr_bus_open(multiproc_app(), &o, &bus);
    if (rc)
        return fail(worker, "open", rc);
    uint32_t id = 0;
    while (strcmp(multiproc_app()->worker_names[id], worker) != 0)
        id++;
    while (!quit) {
        rc = msgr_bus_poll_wait(bus, id, 64, 30000000000ll);
        if (rc < 0)
            return fail(worker, "poll", rc);
        if (rc == 0)
            return fail(worker, "nothing for 30 s", MSGR_ETIMEDOUT);
    }
    msgr_bus_close(bus);
    return 0;
}

/* The bus's name in shared memory: the processes that use it keep their mappings, so it is
 * removed when main ends, however it ends (a SIGKILL leaves it for `msgr ls` / `msgr rm`). */
static char name[64];
static void remove_name(void) { msgr_region_unlink_shm(name); }

int main(int argc, char **argv)
{
    uint64_t count = 1000000;
    const char *worker = NULL, *shm = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--worker") && i + 1 < argc)
            worker = argv[++i];
        else if (!strcmp(argv[i], "--bus") && i + 1 < argc)
            shm = argv[++i];
        else {
            fprintf(stderr, "usage: multi_process [--count N] | --worker NAME --bus SHM\n");
            return 2;
        }
    }
    if (worker && shm)
        return child(worker, shm);

    snprintf(name, sizeof name, "msgr-multi-process-%ld", ex_pid());
    atexit(remove_name); /* on every way out, failures included */
    const char *const run[] = {"main", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = name, .run = run};
    msgr_bus *bus;
    int rc = msgr_bus_open(multiproc_app(), &o, &bus);
    if (rc)
        return fail("main", "create", rc);
    const char *kids[] = {"producer", "doubler", "checker"};
    char self[4096];
    ex_self_path(self, sizeof self, argv[0]);
    ex_proc procs[3];
    for (int i = 0; i < 3; i++) {
        char *args[] = {self, "--worker", (char *)kids[i], "--bus", name, NULL};
        if (ex_start(&procs[i], args) != 0)
            return fail("main", "start a worker process", MSGR_EIO);
    }
    msgr_ctx *ctx;
    msgr_bus_ctx(bus, multiproc_W_main, &ctx);
    Start s = {.count = count};
    if ((rc = multiproc_send_Start(ctx, &s)) < 0) /* kept if a child is not up yet */
        return fail("main", "send Start", rc);
    while (!have_total) {
        rc = msgr_bus_poll_wait(bus, multiproc_W_main, 1, 60000000000ll);
        if (rc <= 0)
            return fail("main", "waiting for Total", rc ? rc : MSGR_ETIMEDOUT);
    }
    Quit q = {0};
    multiproc_send_Quit(ctx, &q);
    int children_ok = 1;
    for (int i = 0; i < 3; i++)
        children_ok &= ex_wait(&procs[i], 1) == 0;
    msgr_counters prod, dbl, chk;
    msgr_bus_counters(bus, multiproc_W_producer, &prod);
    msgr_bus_counters(bus, multiproc_W_doubler, &dbl);
    msgr_bus_counters(bus, multiproc_W_checker, &chk);
    msgr_bus_close(bus);
    uint64_t want_sum = count * (count + 1); /* 2 * (1 + ... + count) */
    printf("multi_process: 4 processes, %lu numbers: checker got %lu, sum %lu (expected %lu)\n",
           (unsigned long)count, (unsigned long)total.count, (unsigned long)total.sum,
           (unsigned long)want_sum);
    printf("shared counters: producer sent %lu, doubler received %lu sent %lu, checker "
           "received %lu\n", (unsigned long)prod.sent, (unsigned long)dbl.received,
           (unsigned long)dbl.sent, (unsigned long)chk.received);
    if (!children_ok || total.count != count || total.sum != want_sum || total.bad ||
        prod.sent != count || dbl.received != count + 1 || chk.received != count + 2) {
        fprintf(stderr, "multi_process: FAILED\n");
        return 1;
    }
    printf("ok: totals match across processes\n");
    return 0;
}
