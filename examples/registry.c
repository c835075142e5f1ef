/* registry: three separately started programs find one bus by a registered name alone.
 *
 *   registry [--count N] [--name NAME]    starts the three below, waits, checks
 *   registry --counter NAME               makes a shared-memory bus under a name of its own
 *                                         choosing, registers it as NAME, counts ticks
 *   registry --producer NAME --count N    opens "the bus registered as NAME", sends N ticks
 *   registry --reporter NAME --count N    opens it the same way, checks the counter's total
 *
 * Only the counter knows where the bus lives; the other two know NAME, and the workers they
 * send to by the definitions' names. The registry is the per-user directory that
 * `msgr ls` lists (MSGR_REGISTRY overrides it). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"

#include "registry.def.h"

static uint64_t got, sum, bad, expect = UINT64_MAX;
static Total total;
static int have_total, seen;

void on_tick(msgr_ctx *ctx, const Tick *m)
{
    (void)ctx;
    bad += m->seq != got;
    got++;
    sum += m->seq;
}

void on_done(msgr_ctx *ctx, const Done *m)
{
    (void)ctx;
    expect = m->count;
}

void on_seen(msgr_ctx *ctx, const Seen *m)
{
    (void)ctx, (void)m;
    seen = 1;
}

void on_total(msgr_ctx *ctx, const Total *m)
{
    (void)ctx;
    total = *m;
    have_total = 1;
}

static int fail(const char *who, const char *what, int rc)
{
    fprintf(stderr, "registry[%s]: %s: %s %s\n", who, what, msgr_strerror(rc), msgr_last_error());
    return 1;
}

/* Opens the bus registered as `name` for `worker`; the counter may not have registered it yet,
 * and cannot tell us when it has: looked for again every 10 ms, for 20 s at most. */
static int open_by_name(const char *name, const char *worker, msgr_bus **bus)
{
    const char *const run[] = {worker, NULL};
    msgr_bus_opts o = {.name = name, .run = run}; /* kind 0 and a name: a registered name */
    int rc = MSGR_ENOENT;
    for (int i = 0; i < 2000 && rc == MSGR_ENOENT; i++)
        if ((rc = msgr_bus_open(registry_demo_app(), &o, bus)) == MSGR_ENOENT)
            ex_sleep_ms(10);
    return rc;
}

static char shm[64];
static void remove_shm(void) { msgr_region_unlink_shm(shm); }

static int counter(const char *name)
{
    snprintf(shm, sizeof shm, "msgr-registry-demo-%ld", ex_pid());
    atexit(remove_shm);
    const char *const run[] = {"counter", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = shm, .run = run,
                       .flags = MSGR_BUS_REGISTER | MSGR_BUS_FRESH, .registry_name = name};
    msgr_bus *bus;
    int rc = msgr_bus_open(registry_demo_app(), &o, &bus);
    if (rc)
        return fail("counter", "make and register the bus", rc);
    while (got < expect) {
        rc = msgr_bus_poll_wait(bus, registry_demo_W_counter, 256, 30000000000ll);
        if (rc <= 0)
            return fail("counter", "waiting for ticks", rc ? rc : MSGR_ETIMEDOUT);
    }
    msgr_ctx *ctx;
    msgr_bus_ctx(bus, registry_demo_W_counter, &ctx);
    Total t = {.count = got, .sum = sum, .bad = bad};
    if ((rc = registry_demo_send_Total(ctx, &t)) < 0)
        return fail("counter", "send Total", rc);
    /* The reporter may still be opening the bus: the bus (and its name) stay until it says
     * it has the total. */
    while (!seen) {
        rc = msgr_bus_poll_wait(bus, registry_demo_W_counter, 1, 30000000000ll);
        if (rc <= 0)
            return fail("counter", "waiting for the reporter", rc ? rc : MSGR_ETIMEDOUT);
    }
    printf("registry[counter]: counted %lu ticks on shm bus '%s', registered as '%s'\n",
           (unsigned long)got, shm, name);
    msgr_bus_close(bus);
    return 0;
}

static int producer(const char *name, uint64_t count)
{
    msgr_bus *bus;
    int rc = open_by_name(name, "producer", &bus);
    if (rc)
        return fail("producer", "open by name", rc);
    msgr_ctx *ctx;
    msgr_bus_ctx(bus, registry_demo_W_producer, &ctx);
    for (uint64_t i = 0; i < count; i++) {
        Tick t = {.seq = i};
        if ((rc = registry_demo_send_Tick(ctx, &t)) < 0)
            return fail("producer", "send Tick", rc);
    }
    Done d = {.count = count};
    if ((rc = registry_demo_send_Done(ctx, &d)) < 0)
        return fail("producer", "send Done", rc);
    printf("registry[producer]: sent %lu ticks to the bus registered as '%s'\n",
           (unsigned long)count, name);
    msgr_bus_close(bus);
    return 0;
}

static int reporter(const char *name, uint64_t count)
{
    msgr_bus *bus;
    int rc = open_by_name(name, "reporter", &bus);
    if (rc)
        return fail("reporter", "open by name", rc);
    msgr_registry_entry e;
    if ((rc = msgr_registry_lookup(name, &e)))
        return fail("reporter", "look up", rc);
    while (!have_total) {
        rc = msgr_bus_poll_wait(bus, registry_demo_W_reporter, 1, 30000000000ll);
        if (rc <= 0)
            return fail("reporter", "waiting for Total", rc ? rc : MSGR_ETIMEDOUT);
    }
    msgr_ctx *ctx;
    msgr_bus_ctx(bus, registry_demo_W_reporter, &ctx);
    Seen s = {.count = total.count};
    if ((rc = registry_demo_send_Seen(ctx, &s)) < 0)
        return fail("reporter", "send Seen", rc);
    printf("registry[reporter]: '%s' is %s bus '%s' of application '%s', registered by process "
           "%d; total %lu ticks, sum %lu, %lu out of order\n", name,
           e.kind == MSGR_REGION_FILE ? "file" : "shm", e.location, e.app, (int)e.procs[0].pid,
           (unsigned long)total.count, (unsigned long)total.sum, (unsigned long)total.bad);
    msgr_bus_close(bus);
    if (total.count != count || total.bad || total.sum != count * (count - 1) / 2) {
        fprintf(stderr, "registry[reporter]: expected %lu ticks in order\n", (unsigned long)count);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t count = 100000;
    const char *role = NULL, *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--name") && i + 1 < argc)
            name = argv[++i];
        else if ((!strcmp(argv[i], "--counter") || !strcmp(argv[i], "--producer") ||
                  !strcmp(argv[i], "--reporter")) && i + 1 < argc) {
            role = argv[i] + 2;
            name = argv[++i];
        } else {
            fprintf(stderr, "usage: registry [--count N] [--name NAME] | --counter NAME | "
                            "--producer NAME --count N | --reporter NAME --count N\n");
            return 2;
        }
    }
    if (role && !strcmp(role, "counter"))
        return counter(name);
    if (role && !strcmp(role, "producer"))
        return producer(name, count);
    if (role)
        return reporter(name, count);

    char own[64], self[4096], n[32];
    if (!name) {
        snprintf(own, sizeof own, "registry-demo-%ld", ex_pid());
        name = own;
    }
    snprintf(n, sizeof n, "%lu", (unsigned long)count);
    ex_self_path(self, sizeof self, argv[0]);
    char *args[3][6] = {{self, "--reporter", (char *)name, "--count", n, NULL},
                        {self, "--producer", (char *)name, "--count", n, NULL},
                        {self, "--counter", (char *)name, NULL}};
    ex_proc p[3];
    for (int i = 0; i < 3; i++) /* the counter last: the others wait for the name */
        if (ex_start(&p[i], args[i]) != 0)
            return fail("main", "start a program", MSGR_EIO);
    int ok = 1;
    for (int i = 0; i < 3; i++)
        ok &= ex_wait(&p[i], 1) == 0;
    msgr_registry_entry e;
    int gone = msgr_registry_lookup(name, &e) == MSGR_ENOENT;
    if (!ok || !gone) {
        fprintf(stderr, "registry: FAILED (%s)\n", ok ? "the name outlived its programs"
                                                      : "a program failed");
        return 1;
    }
    printf("ok: three programs met on '%s' by name alone; the name went with them\n", name);
    return 0;
}
