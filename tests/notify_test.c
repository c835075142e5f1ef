/* Pollable descriptors (msgr_bus_fd): readable on a send from another process and not before;
 * no wake-up lost over 100,000 wait/send races; no system call per message while the worker
 * is busy; refused where they cannot work. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test_util.h"
#include "fd.def.h"

static _Atomic uint64_t got;
static uint64_t out_of_order;

void ui_on_ping(msgr_ctx *ctx, const Ping *m)
{
    (void)ctx;
    out_of_order += m->seq != atomic_load(&got);
    atomic_fetch_add(&got, 1);
}

static char shm[64];
static void teardown(void)
{
    if (shm[0])
        msgr_region_unlink_shm(shm);
}
TestSuite(notify, .fini = teardown, .timeout = 120);

static const char *const ui_only[] = {"ui", NULL};

static int readable(intptr_t fd, int ms)
{
    struct pollfd p = {(int)fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static msgr_bus *open_ui(msgr_bus_opts *o)
{
    o->run = ui_only;
    o->drive = ui_only;
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(fdt_app(), o, &b), 0, "%s", msgr_last_error());
    got = out_of_order = 0;
    return b;
}

Test(notify, readable_on_a_send_from_another_process_and_not_before)
{
    snprintf(shm, sizeof shm, "msgr-notify-test-%d", (int)getpid());
    msgr_bus_opts o = {.kind = MSGR_REGION_SHM, .name = shm, .inbox_capacity = 1 << 16};
    msgr_bus *b = open_ui(&o);
    intptr_t fd, again;
    cr_assert_eq(msgr_bus_fd(b, fdt_W_ui, &fd), 0, "%s", msgr_last_error());
    cr_assert_eq(msgr_bus_fd(b, fdt_W_ui, &again), 0);
    cr_assert_eq(fd, again, "the same descriptor every time");
    cr_assert_not(readable(fd, 50), "nothing sent: not readable");
    int go[2];
    cr_assert_eq(pipe(go), 0);
    pid_t pid = fork();
    if (pid == 0) {
        const char *const bg[] = {"bg", NULL};
        msgr_bus_opts c = {.kind = MSGR_REGION_SHM, .name = shm, .run = bg, .drive = bg};
        msgr_bus *cb;
        char x;
        if (msgr_bus_open(fdt_app(), &c, &cb) || read(go[0], &x, 1) != 1)
            _exit(1);
        msgr_ctx *ctx;
        msgr_bus_ctx(cb, fdt_W_bg, &ctx);
        Ping p = {.seq = 0};
        int rc = fdt_send_Ping(ctx, &p);
        msgr_bus_close(cb);
        _exit(rc < 0 ? 2 : 0);
    }
    cr_assert_not(readable(fd, 50), "the other process is up but has sent nothing");
    cr_assert_eq(write(go[1], "g", 1), 1);
    cr_assert(readable(fd, 10000), "readable once the other process sent");
    cr_assert_eq(msgr_bus_poll(b, fdt_W_ui, 16), 1);
    cr_assert_eq(got, 1u);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    cr_assert_eq(msgr_bus_poll(b, fdt_W_ui, 16), 0);
    cr_assert_not(readable(fd, 20), "drained by the poll, empty again: not readable");
    msgr_bus_close(b);
}

typedef struct sender {
    msgr_bus *b;
    uint64_t n;
    int lockstep; /* each send waits for the one before to be handled, then a random pause:
                     every send races the consumer going to sleep, at a random point of it */
} sender;

static void *send_main(void *arg)
{
    sender *s = arg;
    msgr_ctx *ctx;
    msgr_bus_ctx(s->b, fdt_W_bg, &ctx);
    uint64_t x = 12345;
    for (uint64_t i = 0; i < s->n; i++) {
        while (s->lockstep && atomic_load(&got) < i) {
        }
        x = tu_mix(x);
        if (s->lockstep)
            for (uint64_t k = x % 3000; k; k--)
                __asm__ volatile("" ::: "memory");
        Ping p = {.seq = i};
        if (fdt_send_Ping(ctx, &p) < 0)
            return (void *)1;
    }
    return NULL;
}

/* The application's loop: poll until empty, then wait on the descriptor (10 s: a lost
 * wake-up fails the test instead of hanging it). */
static void ui_loop(msgr_bus *b, intptr_t fd, uint64_t n, uint64_t *waits)
{
    while (got < n) {
        int k = msgr_bus_poll(b, fdt_W_ui, 64);
        cr_assert_geq(k, 0);
        if (k == 0) {
            cr_assert(readable(fd, 10000), "lost wake-up: %llu of %llu received",
                      (unsigned long long)got, (unsigned long long)n);
            (*waits)++;
        }
    }
}

Test(notify, no_wake_up_is_lost_over_a_hundred_thousand_races)
{
    msgr_bus_opts o = {.inbox_capacity = 1 << 12};
    const char *const both[] = {"ui", "bg", NULL};
    o.run = both;
    o.drive = both;
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(fdt_app(), &o, &b), 0);
    got = out_of_order = 0;
    intptr_t fd;
    cr_assert_eq(msgr_bus_fd(b, fdt_W_ui, &fd), 0);
    sender s = {b, tu_scaled(100000), 1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, send_main, &s), 0);
    uint64_t waits = 0;
    ui_loop(b, fd, s.n, &waits);
    void *r;
    pthread_join(th, &r);
    cr_assert_null(r);
    cr_assert_eq(got, s.n);
    cr_assert_eq(out_of_order, 0u);
    uint64_t arms, signals;
    cr_assert_eq(msgr_bus_fd_stats(b, fdt_W_ui, &arms, &signals), 0);
    cr_log_info("notify: %llu messages, %llu waits on the descriptor, %llu arms, %llu signals",
                (unsigned long long)s.n, (unsigned long long)waits, (unsigned long long)arms,
                (unsigned long long)signals);
    cr_assert_gt(waits, s.n / 2, "the race was run: the loop waited for most messages");
    msgr_bus_close(b);
}

Test(notify, no_wake_up_is_lost_on_a_file_inbox)
{
    char dir[96], path[128];
    snprintf(dir, sizeof dir, "/tmp/msgr-notify-file-%d", (int)getpid());
    mkdir(dir, 0700);
    tu_empty_dir(dir);
    snprintf(path, sizeof path, "%s/app.bus", dir);
    const char *const both[] = {"ui", "bg", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_FILE, .name = path, .inbox_capacity = 1 << 16,
                       .run = both, .drive = both};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(fdt_app(), &o, &b), 0, "%s", msgr_last_error());
    got = out_of_order = 0;
    intptr_t fd;
    cr_assert_eq(msgr_bus_fd(b, fdt_W_ui, &fd), 0, "%s", msgr_last_error());
    sender s = {b, tu_scaled(20000), 1};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, send_main, &s), 0);
    uint64_t waits = 0;
    ui_loop(b, fd, s.n, &waits);
    void *r;
    pthread_join(th, &r);
    cr_assert_null(r);
    cr_assert_eq(out_of_order, 0u);
    cr_assert_gt(waits, s.n / 2);
    msgr_bus_close(b);
    tu_empty_dir(dir);
    rmdir(dir);
}

Test(notify, a_busy_worker_costs_no_system_call_per_message)
{
    msgr_bus_opts o = {.inbox_capacity = 1 << 20};
    const char *const both[] = {"ui", "bg", NULL};
    o.run = both;
    o.drive = both;
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(fdt_app(), &o, &b), 0);
    got = out_of_order = 0;
    intptr_t fd;
    cr_assert_eq(msgr_bus_fd(b, fdt_W_ui, &fd), 0);
    sender s = {b, 20000, 0};
    cr_assert_null(send_main(&s)); /* all queued: the worker will be busy throughout */
    cr_assert(readable(fd, 10000));
    uint64_t arms0, signals0, arms, signals;
    msgr_bus_fd_stats(b, fdt_W_ui, &arms0, &signals0);
    uint64_t polls = 0;
    while (got < s.n) {
        cr_assert_gt(msgr_bus_poll(b, fdt_W_ui, 16), 0, "busy: every poll finds messages");
        polls++;
    }
    msgr_bus_fd_stats(b, fdt_W_ui, &arms, &signals);
    cr_assert_eq(arms, arms0, "no arming while busy (%llu polls)", (unsigned long long)polls);
    cr_assert_eq(signals, signals0, "no signal while busy");
    cr_assert_eq(msgr_bus_poll(b, fdt_W_ui, 16), 0);
    msgr_bus_fd_stats(b, fdt_W_ui, &arms, &signals);
    cr_assert_eq(arms, arms0 + 1, "one arming when it ran dry");
    msgr_bus_close(b);
}

Test(notify, refused_for_a_worker_on_a_thread_or_elsewhere)
{
    msgr_bus_opts o = {0};
    const char *const ui[] = {"ui", NULL};
    o.run = ui;
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(fdt_app(), &o, &b), 0);
    intptr_t fd;
    cr_assert_eq(msgr_bus_fd(b, fdt_W_bg, &fd), MSGR_ESTATE, "bg does not run here");
    cr_assert(strstr(msgr_last_error(), "bg") != NULL, "%s", msgr_last_error());
    cr_assert_eq(msgr_bus_start(b), 0);
    cr_assert_eq(msgr_bus_fd(b, fdt_W_ui, &fd), MSGR_ESTATE, "ui runs on a thread");
    cr_assert_eq(msgr_bus_fd_stats(b, fdt_W_ui, NULL, NULL), MSGR_EINVAL);
    msgr_bus_close(b);
}

/* The public form over a plain ring: readable on a commit, quiet while empty, and no system
 * call while the reader finds records. */
static int count_cb(void *arg, const msgr_msg *m)
{
    (void)m;
    (*(int *)arg)++;
    return 0;
}

Test(notify, a_plain_ring_has_a_descriptor_too)
{
    msgr_region *reg;
    size_t need = msgr_ring_footprint(1 << 12);
    cr_assert_eq(msgr_region_create_anon(need, NULL, &reg), 0);
    msgr_ring *r;
    msgr_ring_opts ro = {.capacity = 1 << 12};
    cr_assert_eq(msgr_ring_create(msgr_region_base(reg), need, &ro, &r), 0);
    msgr_notify *n;
    cr_assert_eq(msgr_notify_ring(r, &n), 0);
    intptr_t fd = msgr_notify_fd(n);
    cr_assert_not(readable(fd, 30));
    cr_assert_eq(msgr_ring_send(r, 1, "x", 1), 0);
    cr_assert(readable(fd, 10000));
    int got_n = 0;
    msgr_notify_before_read(n);
    int k = msgr_ring_poll(r, count_cb, &got_n, 16);
    msgr_notify_after_read(n, k > 0);
    cr_assert_eq(got_n, 1);
    msgr_notify_before_read(n);
    k = msgr_ring_poll(r, count_cb, &got_n, 16);
    msgr_notify_after_read(n, k > 0);
    cr_assert_eq(k, 0);
    cr_assert_not(readable(fd, 30), "cleared, and empty again");
    msgr_notify_close(n);
    msgr_ring_close(r);
    msgr_region_close(reg);
}
