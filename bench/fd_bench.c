/* fd_bench: a driven worker woken through its descriptor (msgr_bus_fd, waited on with epoll)
 * against the same worker waiting in msgr_bus_poll_wait (the futex path), in one run.
 *
 *   busy   a producer thread sends 64-byte-class pings as fast as it can; the consumer polls
 *          batches and waits only when its inbox runs dry. messages/s, paired rounds in
 *          alternating order, median ratio (descriptor / futex).
 *   idle   one ping every 200 us, each stamped when sent: the wake-up latency from send to
 *          handler, p50 and p99, for each way of waiting.
 *
 *   fd_bench [--rounds R] [--count N] [--pings P]
 */
#include "bench_util.h"

#include <messenger.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/epoll.h>
#else
#include <poll.h>
#endif

#include "fd_bench.def.h"

static _Atomic uint64_t got;
static uint64_t *lat;    /* idle mode: wake-up latency of each ping */
static uint64_t lat_cap;

void ui_on_ping(msgr_ctx *ctx, const Ping *m)
{
    (void)ctx;
    uint64_t n = atomic_load_explicit(&got, memory_order_relaxed);
    if (lat && n < lat_cap)
        lat[n] = bench_now_ns() - m->sent_ns;
    atomic_store_explicit(&got, n + 1, memory_order_release);
}

typedef struct run {
    msgr_bus *b;
    uint64_t n;
    int idle;
} run;

static void *producer(void *arg)
{
    run *r = arg;
    msgr_ctx *ctx;
    msgr_bus_ctx(r->b, fdb_W_bg, &ctx);
    for (uint64_t i = 0; i < r->n; i++) {
        if (r->idle) { /* the consumer is asleep again before each ping */
            uint64_t until = bench_now_ns() + 200000;
            while (atomic_load_explicit(&got, memory_order_acquire) < i)
                ;
            while (bench_now_ns() < until)
                ;
        }
        Ping p = {.seq = i, .sent_ns = bench_now_ns()};
        if (fdb_send_Ping(ctx, &p) < 0)
            bench_fail("send", "a ping could not be sent");
    }
    return NULL;
}

static int wait_fd(int ep, intptr_t fd)
{
#ifdef __linux__
    (void)fd;
    struct epoll_event ev;
    return epoll_wait(ep, &ev, 1, 10000) == 1 ? 0 : -1;
#else
    (void)ep;
    struct pollfd p = {(int)fd, POLLIN, 0};
    return poll(&p, 1, 10000) == 1 ? 0 : -1;
#endif
}

/* One run: n pings, the consumer waiting through its descriptor (use_fd) or the futex path.
 * Returns messages/s. */
static double one(int use_fd, uint64_t n, int idle)
{
    const char *const both[] = {"ui", "bg", NULL};
    msgr_bus_opts o = {.inbox_capacity = 1 << 20, .run = both, .drive = both};
    msgr_bus *b;
    if (msgr_bus_open(fdb_app(), &o, &b))
        bench_fail("open", msgr_last_error());
    atomic_store(&got, 0);
    intptr_t fd = -1;
    int ep = -1;
    if (use_fd) {
        if (msgr_bus_fd(b, fdb_W_ui, &fd))
            bench_fail("msgr_bus_fd", msgr_last_error());
#ifdef __linux__
        ep = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLIN};
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, (int)fd, &ev))
            bench_fail("epoll", "cannot watch the descriptor");
#endif
    }
    run r = {b, n, idle};
    pthread_t th;
    uint64_t t0 = bench_now_ns();
    pthread_create(&th, NULL, producer, &r);
    while (atomic_load_explicit(&got, memory_order_acquire) < n) {
        if (use_fd) {
            int k = msgr_bus_poll(b, fdb_W_ui, 256);
            if (k < 0)
                bench_fail("poll", msgr_strerror(k));
            if (k == 0 && wait_fd(ep, fd))
                bench_fail("epoll_wait", "nothing for 10 s: a lost wake-up");
        } else if (msgr_bus_poll_wait(b, fdb_W_ui, 256, 10000000000ll) < 0) {
            bench_fail("poll_wait", "failed");
        }
    }
    uint64_t t1 = bench_now_ns();
    pthread_join(th, NULL);
    if (ep >= 0)
        close(ep);
    msgr_bus_close(b);
    return (double)n * 1e9 / (double)(t1 - t0);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int rounds = 5;
    uint64_t count = 2000000, pings = 2000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--pings") && i + 1 < argc)
            pings = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: fd_bench [--rounds R] [--count N] [--pings P]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > 64 || count < 1 || pings < 2)
        return 2;
    double ratio[64], fdr[64], fxr[64];
    for (int k = 0; k < rounds; k++) {
        /* alternating order: a drift of the host favours neither */
        double a, f;
        if (k & 1) {
            f = one(0, count, 0);
            a = one(1, count, 0);
        } else {
            a = one(1, count, 0);
            f = one(0, count, 0);
        }
        fdr[k] = a;
        fxr[k] = f;
        ratio[k] = a / f;
    }
    qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_d);
    qsort(fdr, (size_t)rounds, sizeof *fdr, cmp_d);
    qsort(fxr, (size_t)rounds, sizeof *fxr, cmp_d);
    printf("fd_bench busy: descriptor (epoll) %.2f M msgs/s, futex path %.2f M msgs/s: "
           "%.2fx (median of %d paired rounds, range %.2f-%.2f); goal >= 0.9x: %s\n",
           fdr[rounds / 2] / 1e6, fxr[rounds / 2] / 1e6, ratio[rounds / 2], rounds, ratio[0],
           ratio[rounds - 1], ratio[rounds / 2] >= 0.9 ? "holds" : "MISSED");
    lat_cap = pings;
    lat = calloc(pings, sizeof *lat);
    for (int use_fd = 1; use_fd >= 0; use_fd--) {
        memset(lat, 0, pings * sizeof *lat);
        one(use_fd, pings, 1);
        qsort(lat + 1, pings - 1, sizeof *lat, cmp_u); /* the first includes start-up */
        printf("fd_bench idle wake-up, %s: p50 %.1f us, p99 %.1f us (%llu pings, 200 us apart)\n",
               use_fd ? "descriptor (epoll)" : "futex path", lat[1 + (pings - 1) / 2] / 1e3,
               lat[1 + (pings - 1) * 99 / 100] / 1e3, (unsigned long long)pings);
    }
    free(lat);
    return 0;
}
