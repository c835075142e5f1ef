/* nats_bench: the NATS bridge against libnats publishing the same bytes directly, in one run,
 * through a nats-server it starts on a free port of 127.0.0.1 (core NATS).
 *
 *   direct  one connection publishes N messages of S bytes, another (subscribed) counts them
 *   bridge  a sender worker sends N messages to the bridge worker of one bus; the bridge of a
 *           second bus delivers them to its receiver worker
 * messages/s from the first publish to the last arrival; paired rounds in alternating order,
 * median ratio (bridge / direct), for 64 B and 4 KiB. Then round trips, one at a time:
 *
 *   direct  a requester publishes, a responder's callback publishes the same bytes back, the
 *           requester waits for them (a synchronous subscription)
 * both with "send asap" (natsOptions_SetSendAsap, the bridge's send_asap): buffered, libnats's
 * flusher holds a lone publish about a millisecond, the same either way.
 *   bridge  the sender worker sends through its bridge, the other bus's receiver answers with
 *           the same bytes through its bridge, the sender's thread waits in msgr_bus_poll_wait
 * p50 / p99 of each, same run. With --out DIR the rows are appended to DIR/latest.csv and a
 * table to DIR/latest.md (transports "nats-bridge" and "libnats", mode "core").
 *
 *   nats_bench [--rounds R] [--count N] [--pings P] [--out DIR]
 */
#include "bench_util.h"

#include <messenger.h>
#include <msgr/nats.h>
#include <nats/nats.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nats_bench.def.h"

static _Atomic uint64_t arrived;
static uint64_t lost_total; /* dropped by core NATS (a slow consumer), over the whole run */
#define WINDOW 20000 /* messages in flight at most: core NATS drops what a slow consumer
                        cannot take, so both ways are paced alike */

/* Naps, not spins: with two cores, a spinning main thread would take one from libnats. */
static void nap(void)
{
    struct timespec d = {0, 50000};
    nanosleep(&d, NULL);
}

static void pace(uint64_t sent)
{
    uint64_t t0 = bench_now_ns();
    while (sent > atomic_load_explicit(&arrived, memory_order_acquire) + WINDOW + lost_total &&
           bench_now_ns() - t0 < 2000000000ull) /* some were dropped: go on */
        nap();
}

void out64(msgr_ctx *c, const P64 *m) { (void)c, (void)m; }
void out4k(msgr_ctx *c, const P4K *m) { (void)c, (void)m; }
static int echo; /* round trips: the receiver answers */
static uint64_t replies; /* the sender's thread only */

void in64(msgr_ctx *c, const P64 *m)
{
    if (echo)
        nb_send_R64(c, (const R64 *)m); /* the same layout, the same bytes */
    atomic_fetch_add(&arrived, 1);
}

void in4k(msgr_ctx *c, const P4K *m)
{
    if (echo)
        nb_send_R4K(c, (const R4K *)m);
    atomic_fetch_add(&arrived, 1);
}

void back64(msgr_ctx *c, const R64 *m) { (void)c, (void)m; }
void back4k(msgr_ctx *c, const R4K *m) { (void)c, (void)m; }
void reply64(msgr_ctx *c, const R64 *m) { (void)c, (void)m; replies++; }
void reply4k(msgr_ctx *c, const R4K *m) { (void)c, (void)m; replies++; }

static char url[64];
static pid_t server_pid;
static void stop_server(void) /* on every way out, bench_fail's included */
{
    if (server_pid > 0) {
        kill(server_pid, SIGTERM);
        waitpid(server_pid, NULL, 0);
        server_pid = 0;
    }
}

static void start_server(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &n);
    close(s);
    int port = ntohs(a.sin_port);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* killed with the benchmark, however it ends */
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", p, (char *)NULL);
        _exit(127);
    }
    server_pid = pid;
    atexit(stop_server);
    for (int i = 0; i < 500; i++) { /* up once it answers: it cannot say so */
        natsConnection *nc;
        if (natsConnection_ConnectTo(&nc, url) == NATS_OK) {
            natsConnection_Destroy(nc);
            return;
        }
        usleep(20000);
    }
    bench_fail("nats-server", "did not come up");
}

/* Waits for n arrivals; core NATS drops what a slow consumer cannot take, so after 2 s with
 * no progress the rest counts as lost (reported) and the rate is of what arrived. */
static uint64_t wait_arrived(uint64_t n)
{
    uint64_t last = 0, since = bench_now_ns();
    for (;;) {
        uint64_t a = atomic_load_explicit(&arrived, memory_order_acquire);
        if (a >= n)
            return n;
        if (a != last) {
            last = a;
            since = bench_now_ns();
        } else if (bench_now_ns() - since > 2000000000ull) {
            lost_total += n - a;
            return a;
        }
        nap();
    }
}

static void on_direct(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
    (void)nc, (void)sub, (void)c;
    natsMsg_Destroy(m);
    atomic_fetch_add(&arrived, 1);
}

static double direct(uint64_t n, size_t size)
{
    natsConnection *pub, *subc;
    natsSubscription *sub;
    if (natsConnection_ConnectTo(&pub, url) || natsConnection_ConnectTo(&subc, url) ||
        natsConnection_Subscribe(&sub, subc, "direct.x", on_direct, NULL) ||
        natsSubscription_SetPendingLimits(sub, 1 << 22, 1 << 30) || natsConnection_Flush(subc))
        bench_fail("direct", "libnats set-up failed");
    static uint8_t buf[4096];
    atomic_store(&arrived, 0);
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        pace(i);
        memcpy(buf, &i, sizeof i);
        while (natsConnection_Publish(pub, "direct.x", buf, (int)size) != NATS_OK)
            nap();
    }
    natsConnection_Flush(pub);
    uint64_t got = wait_arrived(n);
    double r = (double)got * 1e9 / (double)(bench_now_ns() - t0);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(pub);
    natsConnection_Destroy(subc);
    return r;
}

typedef struct side {
    msgr_nats *n;
    msgr_bus *bus;
} side;

static int asap; /* the round trips: every publish written at once, on both ways */

static void side_open(side *s, const char *node)
{
    static const char *const all[] = {"sender", "bridge", "receiver", NULL};
    static const char *const drive[] = {"sender", NULL};
    msgr_nats_opts o = {.url = url, .node = node, .send_asap = asap};
    const msgr_app *app;
    if (msgr_nats_open(nb_app(), "bridge", &o, &s->n, &app))
        bench_fail("msgr_nats_open", msgr_last_error());
    msgr_nats_route_in(s->n, "P64", "receiver");
    msgr_nats_route_in(s->n, "P4K", "receiver");
    msgr_nats_route_in(s->n, "R64", "sender");
    msgr_nats_route_in(s->n, "R4K", "sender");
    /* Workers park soon when idle: six of them share two cores with libnats's threads. */
    msgr_bus_opts bo = {.run = all, .drive = drive, .inbox_capacity = 1 << 24, .spins = 64,
                       .yields = 1};
    if (msgr_bus_open(app, &bo, &s->bus) || msgr_nats_attach(s->n, s->bus) ||
        msgr_bus_start(s->bus))
        bench_fail("bridge", msgr_last_error());
}

static void side_close(side *s)
{
    msgr_bus_stop(s->bus, MSGR_STOP_DRAIN, 10000000000ll, NULL);
    msgr_bus_close(s->bus);
    msgr_nats_close(s->n);
}

static double bridged(uint64_t n, size_t size)
{
    side a, b;
    side_open(&a, "bench-a");
    side_open(&b, "bench-b");
    msgr_ctx *ctx;
    msgr_bus_ctx(a.bus, nb_W_sender, &ctx);
    atomic_store(&arrived, 0);
    uint64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        int rc;
        pace(i);
        if (size == 64) {
            P64 m = {.n = i};
            rc = nb_send_P64(ctx, &m);
        } else {
            static P4K m;
            m.n = i;
            rc = nb_send_P4K(ctx, &m);
        }
        if (rc < 0)
            bench_fail("send", msgr_strerror(rc));
    }
    uint64_t got = wait_arrived(n);
    double r = (double)got * 1e9 / (double)(bench_now_ns() - t0);
    side_close(&a);
    side_close(&b);
    return r;
}

static int cmp_u(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct rt_result {
    uint64_t p50, p99, p999;
} rt_result;

static rt_result percentiles(uint64_t *lat, int n)
{
    qsort(lat, (size_t)n, sizeof *lat, cmp_u);
    return (rt_result){lat[n / 2], lat[(int)((uint64_t)n * 99 / 100)],
                       lat[(int)((uint64_t)n * 999 / 1000)]};
}

#define WARM 200 /* round trips before the measured ones */

static void on_ping(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *c)
{
    (void)sub, (void)c;
    natsConnection_Publish(nc, "rt.pong", natsMsg_GetData(m), natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
}

static natsConnection *connect_asap(void)
{
    natsOptions *o;
    natsConnection *nc = NULL;
    if (natsOptions_Create(&o) || natsOptions_SetURL(o, url) || natsOptions_SetSendAsap(o, true) ||
        natsConnection_Connect(&nc, o))
        bench_fail("libnats", "cannot connect");
    natsOptions_Destroy(o);
    return nc;
}

static rt_result direct_rt(int pings, size_t size, uint64_t *lat)
{
    natsConnection *req = connect_asap(), *resp = connect_asap();
    natsSubscription *pings_sub, *pongs;
    if (
        natsConnection_Subscribe(&pings_sub, resp, "rt.ping", on_ping, NULL) ||
        natsConnection_SubscribeSync(&pongs, req, "rt.pong") || natsConnection_Flush(resp) ||
        natsConnection_Flush(req))
        bench_fail("direct round trip", "libnats set-up failed");
    static uint8_t buf[4096];
    for (int i = 0; i < WARM + pings; i++) {
        memcpy(buf, &i, sizeof i);
        uint64_t t0 = bench_now_ns();
        natsMsg *m = NULL;
        if (natsConnection_Publish(req, "rt.ping", buf, (int)size) ||
            natsSubscription_NextMsg(&m, pongs, 5000) || natsMsg_GetDataLength(m) != (int)size)
            bench_fail("direct round trip", "no answer within 5 s");
        if (i >= WARM)
            lat[i - WARM] = bench_now_ns() - t0;
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(pongs);
    natsSubscription_Destroy(pings_sub);
    natsConnection_Destroy(req);
    natsConnection_Destroy(resp);
    return percentiles(lat, pings);
}

static rt_result bridged_rt(int pings, size_t size, uint64_t *lat)
{
    side a, b;
    asap = 1;
    side_open(&a, "bench-a");
    side_open(&b, "bench-b");
    asap = 0;
    echo = 1;
    replies = 0;
    msgr_ctx *ctx;
    msgr_bus_ctx(a.bus, nb_W_sender, &ctx);
    for (int i = 0; i < WARM + pings; i++) {
        uint64_t t0 = bench_now_ns();
        int rc;
        if (size == 64) {
            P64 m = {.n = (uint64_t)i};
            rc = nb_send_P64(ctx, &m);
        } else {
            static P4K m;
            m.n = (uint64_t)i;
            rc = nb_send_P4K(ctx, &m);
        }
        if (rc < 0)
            bench_fail("send", msgr_strerror(rc));
        while (replies <= (uint64_t)i)
            if (msgr_bus_poll_wait(a.bus, nb_W_sender, 1, 5000000000ll) <= 0)
                bench_fail("bridge round trip", "no answer within 5 s");
        if (i >= WARM)
            lat[i - WARM] = bench_now_ns() - t0;
    }
    echo = 0;
    side_close(&a);
    side_close(&b);
    return percentiles(lat, pings);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Appends the rows to dir/latest.csv (header first if it is new) and a table to latest.md. */
typedef struct row {
    const char *bench, *transport;
    size_t size;
    double rate;
    rt_result rt;
} row;

static void write_out(const char *dir, const row *rows, int n, const char *md_text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/latest.csv", dir);
    FILE *f = fopen(path, "a+");
    if (!f)
        bench_fail(path, strerror(errno));
    fseek(f, 0, SEEK_END);
    if (ftell(f) == 0)
        fprintf(f, "%s\n", BENCH_CSV_HEADER);
    for (int i = 0; i < n; i++) {
        if (rows[i].rt.p50)
            fprintf(f, "%s,%s,core,1,%zu,%.0f,,%llu,%llu,%llu\n", rows[i].bench, rows[i].transport,
                    rows[i].size, 1e9 / (double)rows[i].rt.p50,
                    (unsigned long long)rows[i].rt.p50, (unsigned long long)rows[i].rt.p99,
                    (unsigned long long)rows[i].rt.p999);
        else
            fprintf(f, "%s,%s,core,1,%zu,%.0f,%.3f,,,\n", rows[i].bench, rows[i].transport,
                    rows[i].size, rows[i].rate, rows[i].rate * (double)rows[i].size / 1e9);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/latest.md", dir);
    if (!(f = fopen(path, "a")))
        bench_fail(path, strerror(errno));
    fputs(md_text, f);
    fclose(f);
}

int main(int argc, char **argv)
{
    int rounds = 3, pings = 2000;
    uint64_t count = 200000;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--pings") && i + 1 < argc)
            pings = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else {
            fprintf(stderr, "usage: nats_bench [--rounds R] [--count N] [--pings P] [--out DIR]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > 32 || pings < 10 || pings > 1000000 || count < 1000)
        return 2;
    start_server();
    size_t sizes[2] = {64, 4096};
    row rows[8];
    int nrows = 0;
    char md[4096];
    int mdn = snprintf(md, sizeof md, "\n## The NATS bridge against libnats (core NATS, same run)\n\n"
                       "| size | bridge | direct libnats | bridge / direct |\n|---|---:|---:|---:|\n");
    for (int s = 0; s < 2; s++) {
        uint64_t n = sizes[s] == 64 ? count : count / 4;
        double ratio[32], d[32], b[32];
        for (int k = 0; k < rounds; k++) {
            if (k & 1) {
                b[k] = bridged(n, sizes[s]);
                d[k] = direct(n, sizes[s]);
            } else {
                d[k] = direct(n, sizes[s]);
                b[k] = bridged(n, sizes[s]);
            }
            ratio[k] = b[k] / d[k];
        }
        qsort(ratio, (size_t)rounds, sizeof *ratio, cmp_d);
        qsort(d, (size_t)rounds, sizeof *d, cmp_d);
        qsort(b, (size_t)rounds, sizeof *b, cmp_d);
        printf("nats_bench %zu B: bridge %.3f M msgs/s, direct libnats %.3f M msgs/s: %.2fx "
               "(median of %d paired rounds, range %.2f-%.2f); goal >= 0.8x: %s\n",
               sizes[s], b[rounds / 2] / 1e6, d[rounds / 2] / 1e6, ratio[rounds / 2], rounds,
               ratio[0], ratio[rounds - 1], ratio[rounds / 2] >= 0.8 ? "holds" : "MISSED");
        if (lost_total)
            printf("nats_bench %zu B: %llu messages dropped by core NATS (slow consumer) so far\n",
                   sizes[s], (unsigned long long)lost_total);
        rows[nrows++] = (row){"throughput", "nats-bridge", sizes[s], b[rounds / 2], {0, 0, 0}};
        rows[nrows++] = (row){"throughput", "libnats", sizes[s], d[rounds / 2], {0, 0, 0}};
        mdn += snprintf(md + mdn, sizeof md - (size_t)mdn, "| %zu B, messages/s | %.3f M | %.3f M | "
                        "%.2fx |\n", sizes[s], b[rounds / 2] / 1e6, d[rounds / 2] / 1e6,
                        ratio[rounds / 2]);
    }
    uint64_t *lat = malloc(sizeof *lat * (size_t)pings);
    if (!lat)
        bench_fail("malloc", "no memory");
    for (int s = 0; s < 2; s++) {
        rt_result d = direct_rt(pings, sizes[s], lat);
        rt_result b = bridged_rt(pings, sizes[s], lat);
        printf("nats_bench %zu B round trip: bridge p50 %.1f us p99 %.1f us, direct libnats p50 "
               "%.1f us p99 %.1f us: %.2fx the direct p50 (%d round trips each)\n", sizes[s],
               (double)b.p50 / 1e3, (double)b.p99 / 1e3, (double)d.p50 / 1e3, (double)d.p99 / 1e3,
               (double)b.p50 / (double)d.p50, pings);
        rows[nrows++] = (row){"latency", "nats-bridge", sizes[s], 0, b};
        rows[nrows++] = (row){"latency", "libnats", sizes[s], 0, d};
        mdn += snprintf(md + mdn, sizeof md - (size_t)mdn, "| %zu B, round trip p50 (p99) | %.1f "
                        "(%.1f) us | %.1f (%.1f) us | %.2fx |\n", sizes[s], (double)b.p50 / 1e3,
                        (double)b.p99 / 1e3, (double)d.p50 / 1e3, (double)d.p99 / 1e3,
                        (double)b.p50 / (double)d.p50);
    }
    free(lat);
    if (out)
        write_out(out, rows, nrows, md);
    stop_server();
    return 0;
}
