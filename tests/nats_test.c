/* The NATS bridge against a real nats-server (started here, on a free port of 127.0.0.1 with
 * a temporary JetStream store): routing both ways, a foreign fingerprint refused, core and
 * JetStream modes, the server killed and restarted in the middle of a 100,000-message
 * JetStream run (nothing lost; duplicates only as repeats), a message over the server's max
 * payload. Run by make bridge-test. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <messenger.h>
#include <msgr/nats.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#include <nats/nats.h>
#include <pthread.h>
#include "nats.def.h"

const msgr_app *natsapp_v2_app(void);
int natsapp_v2_send(msgr_ctx *ctx, uint32_t n);

/* Each process's receiver: how often each number arrived (the test's two buses share it,
 * each with its own half of the numbers). */
#define NMAX 200000
static _Atomic uint8_t got[NMAX];
static _Atomic uint64_t got_total, got_distinct, got_big;

void bridge_ping(msgr_ctx *ctx, const Ping *m) { (void)ctx, (void)m; }
void bridge_big(msgr_ctx *ctx, const Big *m) { (void)ctx, (void)m; }
void on_ping(msgr_ctx *ctx, const Ping *m)
{
    (void)ctx;
    if (m->n < NMAX && m->check == m->n * 3 + 1 && atomic_fetch_add(&got[m->n], 1) == 0)
        atomic_fetch_add(&got_distinct, 1);
    atomic_fetch_add(&got_total, 1);
}
void on_big(msgr_ctx *ctx, const Big *m)
{
    (void)ctx, (void)m;
    atomic_fetch_add(&got_big, 1);
}

static char dir[128], url[64];
static int port;
static pid_t server;

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &n);
    close(s);
    return ntohs(a.sin_port);
}

static void server_start(void)
{
    char p[16], store[160];
    snprintf(p, sizeof p, "%d", port);
    snprintf(store, sizeof store, "%s/js", dir);
    server = fork();
    if (server == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test killed (a timeout) takes its server along */
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", p, "-js", "-sd", store,
               (char *)NULL);
        _exit(127);
    }
    /* Up once it answers; it has no way to say so, so a connection is tried every 20 ms. */
    for (int i = 0; i < 500; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
        close(s);
        if (ok)
            return;
        tu_sleep_ms(20);
    }
    cr_assert_fail("nats-server did not come up on port %d", port);
}

static void server_kill(void)
{
    if (server > 0) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        server = 0;
    }
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/msgr-nats-test-%d", (int)getpid());
    mkdir(dir, 0700);
    port = free_port();
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    memset((void *)got, 0, sizeof got);
    got_total = got_distinct = got_big = 0;
    server_start();
}

static void teardown(void)
{
    server_kill();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)!system(cmd);
}

TestSuite(nats, .init = setup, .fini = teardown, .timeout = 120);

typedef struct side {
    msgr_nats *n;
    msgr_bus *bus;
    const msgr_app *app;
} side;

static const char *const all[] = {"sender", "bridge", "receiver", NULL};
static const char *const drive_sender[] = {"sender", NULL};
static const char *const manual_bridge[] = {"bridge", NULL};

/* A "machine": its own bus (a file one for JetStream) with a bridge named `node`. */
static void side_open(side *s, const msgr_app *app, const char *node, uint32_t mode)
{
    msgr_nats_opts o = {.mode = mode, .url = url, .prefix = "natsapp", .node = node};
    cr_assert_eq(msgr_nats_open(app, "bridge", &o, &s->n, &s->app), 0, "%s", msgr_last_error());
    msgr_nats_route_in(s->n, "Ping", "receiver");
    msgr_nats_route_in(s->n, "Big", "receiver");
    char path[256];
    snprintf(path, sizeof path, "%s/%s.bus", dir, node);
    msgr_bus_opts bo = {.run = all, .drive = drive_sender, .inbox_capacity = 1 << 24};
    if (mode == MSGR_NATS_JETSTREAM) {
        bo.kind = MSGR_REGION_FILE;
        bo.name = path;
        bo.manual_ack = manual_bridge;
        bo.ack_window = 8192;
    }
    cr_assert_eq(msgr_bus_open(s->app, &bo, &s->bus), 0, "%s", msgr_last_error());
    cr_assert_eq(msgr_nats_attach(s->n, s->bus), 0, "%s", msgr_last_error());
    cr_assert_eq(msgr_bus_start(s->bus), 0);
}

static void side_close(side *s)
{
    msgr_bus_stop(s->bus, MSGR_STOP_DRAIN, 5000000000ll, NULL);
    msgr_bus_close(s->bus);
    msgr_nats_close(s->n);
}

static void send_pings(side *s, uint64_t from, uint64_t n)
{
    msgr_ctx *ctx;
    msgr_bus_ctx(s->bus, natsapp_W_sender, &ctx);
    for (uint64_t i = from; i < from + n; i++) {
        Ping p = {.n = i, .check = i * 3 + 1};
        cr_assert_geq(natsapp_send_Ping(ctx, &p), 0);
    }
}

/* Waits (polling counters: the bridge has no way to tell) until `want` different pings
 * arrived (repeats do not count). */
static int wait_total(uint64_t want, int seconds)
{
    for (int i = 0; i < seconds * 100; i++) {
        if (atomic_load(&got_distinct) >= want)
            return 1;
        tu_sleep_ms(10);
    }
    return 0;
}

Test(nats, core_mode_routes_both_ways_and_skips_its_own_publishes)
{
    side a, b;
    side_open(&a, natsapp_app(), "node-a", MSGR_NATS_CORE);
    side_open(&b, natsapp_app(), "node-b", MSGR_NATS_CORE);
    send_pings(&a, 0, 1000);    /* a -> b */
    send_pings(&b, 1000, 1000); /* b -> a */
    cr_assert(wait_total(2000, 20), "got %llu of 2000", (unsigned long long)got_total);
    tu_sleep_ms(100); /* anything extra (an echo of one's own publish) would arrive by now */
    cr_assert_eq(atomic_load(&got_total), 2000u, "each once: no echo of a bridge's own");
    for (int i = 0; i < 2000; i++)
        cr_assert_eq(atomic_load(&got[i]), 1, "ping %d", i);
    msgr_nats_stats sa, sb;
    msgr_nats_stats_get(a.n, &sa);
    msgr_nats_stats_get(b.n, &sb);
    cr_assert_eq(sa.published, 1000u);
    cr_assert_eq(sb.delivered, 1000u);
    cr_assert_eq(sa.rejected + sb.rejected + sa.lost + sb.lost, 0u);
    side_close(&a);
    side_close(&b);
}

Test(nats, a_foreign_fingerprint_is_refused_and_counted_never_misread)
{
    side a, v2;
    side_open(&a, natsapp_app(), "node-a", MSGR_NATS_CORE);
    side_open(&v2, natsapp_v2_app(), "node-v2", MSGR_NATS_CORE);
    msgr_ctx *ctx;
    msgr_bus_ctx(v2.bus, natsapp_W_sender, &ctx);
    for (uint32_t i = 0; i < 100; i++)
        cr_assert_geq(natsapp_v2_send(ctx, i), 0);
    msgr_nats_stats sa;
    for (int i = 0; i < 2000; i++) {
        msgr_nats_stats_get(a.n, &sa);
        if (sa.rejected >= 100)
            break;
        tu_sleep_ms(10);
    }
    cr_assert_eq(sa.rejected, 100u);
    cr_assert_eq(sa.delivered, 0u);
    cr_assert_eq(atomic_load(&got_total), 0u, "nothing delivered to the receiver");
    side_close(&v2);
    side_close(&a);
}

Test(nats, a_message_over_the_max_payload_is_refused_with_a_count)
{
    side a;
    side_open(&a, natsapp_app(), "node-a", MSGR_NATS_CORE);
    msgr_ctx *ctx;
    msgr_bus_ctx(a.bus, natsapp_W_sender, &ctx);
    static Big big;
    cr_assert_geq(natsapp_send_Big(ctx, &big), 0);
    send_pings(&a, 0, 1); /* after it, in order: once this is published, Big was handled */
    msgr_nats_stats st;
    for (int i = 0; i < 2000; i++) {
        msgr_nats_stats_get(a.n, &st);
        if (st.oversize + st.published >= 2)
            break;
        tu_sleep_ms(10);
    }
    cr_assert_eq(st.oversize, 1u);
    cr_assert_eq(st.published, 1u);
    side_close(&a);
}

Test(nats, jetstream_mode_delivers_and_acknowledges_both_sides)
{
    side a, b;
    side_open(&a, natsapp_app(), "node-a", MSGR_NATS_JETSTREAM);
    side_open(&b, natsapp_app(), "node-b", MSGR_NATS_JETSTREAM);
    send_pings(&a, 0, 2000);
    cr_assert(wait_total(2000, 30), "got %llu of 2000", (unsigned long long)got_total);
    cr_assert_eq(msgr_nats_flush(a.n, 10000000000ll), 0);
    msgr_nats_stats sa;
    msgr_nats_stats_get(a.n, &sa);
    cr_assert_eq(sa.acked, 2000u, "every publish acknowledged by JetStream");
    msgr_counters c;
    msgr_bus_counters(a.bus, natsapp_W_bridge, &c);
    cr_assert_eq(c.queued_bytes, 0u, "and so acknowledged in the local log");
    side_close(&a);
    side_close(&b);
}

Test(nats, jetstream_survives_the_server_killed_and_restarted_mid_run)
{
    side a, b;
    side_open(&a, natsapp_app(), "node-a", MSGR_NATS_JETSTREAM);
    side_open(&b, natsapp_app(), "node-b", MSGR_NATS_JETSTREAM);
    uint64_t n = getenv("MSGR_NATS_N") ? strtoull(getenv("MSGR_NATS_N"), NULL, 10) : 100000;
    send_pings(&a, 0, n / 2);
    server_kill(); /* mid-run: publishes in flight, deliveries in flight */
    send_pings(&a, n / 2, n / 2);
    server_start(); /* same port, same store */
    int all_came = wait_total(n, 90);
    uint64_t missing = 0, repeated = 0;
    for (uint64_t i = 0; i < n; i++) {
        missing += atomic_load(&got[i]) == 0;
        repeated += atomic_load(&got[i]) > 1;
    }
    msgr_nats_stats sa, sb;
    msgr_nats_stats_get(a.n, &sa);
    msgr_nats_stats_get(b.n, &sb);
    cr_log_info("nats: %llu sent, %llu missing, %llu repeated; a: %llu published, %llu acked, "
                "%llu errors, %llu retries, %llu reconnects; b: %llu delivered",
                (unsigned long long)n, (unsigned long long)missing, (unsigned long long)repeated,
                (unsigned long long)sa.published, (unsigned long long)sa.acked,
                (unsigned long long)sa.errors, (unsigned long long)sa.retries,
                (unsigned long long)sa.reconnects,
                (unsigned long long)sb.delivered);
    cr_assert(all_came, "got %llu different of %llu", (unsigned long long)got_distinct,
              (unsigned long long)n);
    cr_assert_eq(missing, 0u, "nothing lost");
    cr_assert_eq(sa.rejected + sb.rejected, 0u);
    side_close(&a);
    side_close(&b);
}

Test(nats, a_bridge_killed_and_restarted_loses_nothing)
{
    side b;
    side_open(&b, natsapp_app(), "node-b", MSGR_NATS_JETSTREAM);
    uint64_t n = 20000;
    pid_t pid = fork();
    if (pid == 0) {
        side a;
        side_open(&a, natsapp_app(), "node-a", MSGR_NATS_JETSTREAM);
        send_pings(&a, 0, n); /* all in the bridge's file inbox */
        msgr_nats_stats st;
        do
            msgr_nats_stats_get(a.n, &st);
        while (st.acked < n / 4);
        kill(getpid(), SIGKILL); /* publishes in flight, acknowledgements not yet written */
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status), "the first bridge died by the kill (status %d)", status);
    side a;
    side_open(&a, natsapp_app(), "node-a", MSGR_NATS_JETSTREAM); /* the same bus and node */
    int all_came = wait_total(n, 60);
    tu_sleep_ms(200);
    uint64_t missing = 0, repeated = 0;
    for (uint64_t i = 0; i < n; i++) {
        missing += atomic_load(&got[i]) == 0;
        repeated += atomic_load(&got[i]) > 1;
    }
    msgr_nats_stats sa;
    msgr_nats_stats_get(a.n, &sa);
    cr_log_info("nats: bridge restart: %llu sent, %llu missing, %llu repeated, %llu republished "
                "after the restart", (unsigned long long)n, (unsigned long long)missing,
                (unsigned long long)repeated, (unsigned long long)sa.published);
    cr_assert(all_came, "got %llu different of %llu", (unsigned long long)got_distinct,
              (unsigned long long)n);
    cr_assert_eq(missing, 0u, "nothing lost");
    cr_assert_eq(repeated, 0u, "the server dropped the republished duplicates by their id");
    cr_assert_gt(sa.published, 0u, "the restarted bridge published what was not acknowledged");
    side_close(&a);
    side_close(&b);
}

Test(nats, no_server_or_a_refused_tls_setting_is_a_clear_error_at_start_up)
{
    static const char *const all3[] = {"sender", "bridge", "receiver", NULL};
    char nowhere[64];
    snprintf(nowhere, sizeof nowhere, "nats://127.0.0.1:%d", free_port());
    const char *urls[2] = {nowhere, url};
    for (int k = 0; k < 2; k++) {
        msgr_nats_opts o = {.url = urls[k], .tls = k == 1, .connect_timeout_ns = 500000000};
        msgr_nats *n;
        const msgr_app *app;
        cr_assert_eq(msgr_nats_open(natsapp_app(), "bridge", &o, &n, &app), 0);
        msgr_bus_opts bo = {.run = all3};
        msgr_bus *bus;
        cr_assert_eq(msgr_bus_open(app, &bo, &bus), 0);
        int rc = msgr_nats_attach(n, bus);
        cr_assert_lt(rc, 0, "case %d refused", k);
        cr_assert(strstr(msgr_last_error(), urls[k]) != NULL, "case %d names the server: %s", k,
                  msgr_last_error());
        if (k == 0)
            cr_assert_eq(rc, MSGR_ECONNREFUSED, "%s", msgr_errname(rc));
        msgr_bus_close(bus);
        msgr_nats_close(n);
    }
}

/* Anything else on the bridge's subjects, from any client: no header, a header that is not
 * messenger's (cut, padded, a number too big, trailing bytes, another byte order), a wrong
 * length: refused and counted, nothing delivered. One well-formed message from the same raw
 * client is delivered, so the refusals are the header's doing. */
Test(nats, malformed_headers_from_a_raw_client_are_refused)
{
    side a;
    side_open(&a, natsapp_app(), "node-a", MSGR_NATS_CORE);
    natsConnection *nc;
    cr_assert_eq(natsConnection_ConnectTo(&nc, url), NATS_OK);
    uint64_t fp = natsapp_app()->messages[0].fingerprint();
    char good[160];
    snprintf(good, sizeof good, "1 1 %016llx 7 le raw sender", (unsigned long long)fp);
    char bad[8][200];
    snprintf(bad[0], sizeof bad[0], "1 1 %016llx 7 le raw", (unsigned long long)fp);
    snprintf(bad[1], sizeof bad[1], "1 1 %016llx 7 le raw sender extra", (unsigned long long)fp);
    snprintf(bad[2], sizeof bad[2], "1 70000 %016llx 7 le raw sender", (unsigned long long)fp);
    snprintf(bad[3], sizeof bad[3], "1 1 %015llx 7 le raw sender",
             (unsigned long long)(fp >> 4)); /* 15 digits */
    snprintf(bad[4], sizeof bad[4], "1 1 %016llx 7 be raw sender", (unsigned long long)fp);
    snprintf(bad[5], sizeof bad[5], "1  1 %016llx 7 le raw sender", (unsigned long long)fp);
    snprintf(bad[6], sizeof bad[6], "2 1 %016llx 7 le raw sender", (unsigned long long)fp);
    snprintf(bad[7], sizeof bad[7], "1 1 %016llx 99999999999999999999999 le raw sender",
             (unsigned long long)fp);
    uint64_t payload[2] = {5, 0};
    uint32_t sent = 0;
    for (int i = 0; i < 10; i++) {
        natsMsg *m;
        cr_assert_eq(natsMsg_Create(&m, "natsapp.Ping", NULL, (const char *)payload,
                                    i == 9 ? 15 : (int)sizeof payload), NATS_OK);
        if (i < 8)
            cr_assert_eq(natsMsgHeader_Set(m, "Msgr", bad[i]), NATS_OK);
        else if (i == 9)
            cr_assert_eq(natsMsgHeader_Set(m, "Msgr", good), NATS_OK); /* 15 bytes: wrong length */
        cr_assert_eq(natsConnection_PublishMsg(nc, m), NATS_OK); /* i == 8: no header */
        natsMsg_Destroy(m);
        sent++;
    }
    natsMsg *m;
    cr_assert_eq(natsMsg_Create(&m, "natsapp.Ping", NULL, (const char *)payload, sizeof payload),
                 NATS_OK);
    cr_assert_eq(natsMsgHeader_Set(m, "Msgr", good), NATS_OK);
    cr_assert_eq(natsConnection_PublishMsg(nc, m), NATS_OK);
    natsMsg_Destroy(m);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    msgr_nats_stats sa;
    for (int i = 0; i < 2000; i++) {
        msgr_nats_stats_get(a.n, &sa);
        if (sa.rejected >= sent && sa.delivered >= 1)
            break;
        tu_sleep_ms(10);
    }
    cr_assert_eq(sa.rejected, sent, "rejected %llu of %u", (unsigned long long)sa.rejected, sent);
    cr_assert_eq(sa.delivered, 1u, "the well-formed one");
    natsConnection_Destroy(nc);
    side_close(&a);
}

/* Closing a bridge while messages keep arriving: libnats may still be inside (or start) a
 * message callback when the connection closes; the bridge waits for it and turns later ones
 * away, so the bus closed after it is never touched again (ASan in CI would see it). */
typedef struct {
    _Atomic int stop;
    uint64_t fp;
    uint64_t sent;
} flood_arg;

static void *flood_main(void *arg)
{
    flood_arg *f = arg;
    natsConnection *nc;
    if (natsConnection_ConnectTo(&nc, url) != NATS_OK)
        return NULL;
    char hdr[160];
    snprintf(hdr, sizeof hdr, "1 1 %016llx 7 le flood sender", (unsigned long long)f->fp);
    uint64_t payload[2] = {1, 0};
    while (!atomic_load(&f->stop)) {
        natsMsg *m;
        if (natsMsg_Create(&m, "natsapp.Ping", NULL, (const char *)payload, sizeof payload))
            break;
        natsMsgHeader_Set(m, "Msgr", hdr);
        natsConnection_PublishMsg(nc, m);
        natsMsg_Destroy(m);
        f->sent++;
    }
    natsConnection_Destroy(nc);
    return NULL;
}

Test(nats, a_bridge_closed_while_messages_arrive_leaves_the_bus_alone)
{
    flood_arg f = {.fp = natsapp_app()->messages[0].fingerprint()};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, flood_main, &f), 0);
    for (int round = 0; round < 5; round++) {
        side b;
        side_open(&b, natsapp_app(), "node-b", MSGR_NATS_CORE);
        msgr_nats_stats st;
        for (int i = 0; i < 2000; i++) {
            msgr_nats_stats_get(b.n, &st);
            if (st.delivered > 100)
                break;
            tu_sleep_ms(1);
        }
        cr_assert_gt(st.delivered, 100u, "round %d: the flood arrives", round);
        side_close(&b); /* mid-flood */
    }
    atomic_store(&f.stop, 1);
    pthread_join(th, NULL);
    cr_assert_gt(f.sent, 0u);
}
