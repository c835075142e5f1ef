/* Eclipse iceoryx as a bench_compare peer (HAVE_ICEORYX, from libiceoryx-binding-c-dev; the
 * daemon from the iceoryx package): its C binding's publisher and subscriber between
 * processes, with the zero-copy loan API (the producer loans a chunk, fills it in place and
 * publishes it; the consumer takes it, reads it where it lies and releases it).
 *
 * Settings, all lossless: publisher ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER, no history;
 * subscriber QueueFullPolicy_BLOCK_PRODUCER with a 256-deep queue (iceoryx's largest); both
 * sides poll (take_chunk in a loop with a pause), no WaitSet. The benchmark starts its own
 * iox-roudi on first use, with a configuration whose memory pools fit every size of the sweep
 * (POOLS below, at least 600 chunks of each class: two directions x a full queue and then
 * some), and stops it at exit; a RouDi already running makes ours fail to start, and the
 * peer is skipped saying so. Benchmark code only. */
#define _GNU_SOURCE
#include "compare.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_ICEORYX
#include <iceoryx_binding_c/chunk.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>

#define QUEUE 256
#define SERVICE "msgr-bench"

/* Chunk sizes (payload + iceoryx's chunk header, rounded up) and counts of RouDi's pools. */
static const struct {
    uint32_t size, count;
} POOLS[] = {{128, 2048}, {640, 2048}, {4224, 2048}, {65664, 1024}, {1048704, 640}};

static pid_t roudi_pid;
static int roudi_state; /* 0: not tried, 1: up, -1: would not start */
static char roudi_why[256];
static char roudi_config[128];

static void roudi_stop(void)
{
    if (roudi_pid > 0) {
        kill(roudi_pid, SIGTERM);
        waitpid(roudi_pid, NULL, 0);
        roudi_pid = 0;
    }
    if (roudi_config[0])
        unlink(roudi_config);
}

/* RouDi keeps writing to its standard output; something must keep reading it. */
static void *drain_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[512];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    close(fd);
    return NULL;
}

/* Starts iox-roudi with our pools and waits (10 s at most) for it to say it is ready. */
static int roudi_start(void)
{
    unique_name(roudi_config, sizeof roudi_config, "/tmp/", "-roudi.toml");
    FILE *f = fopen(roudi_config, "w");
    if (!f) {
        snprintf(roudi_why, sizeof roudi_why, "cannot write %s: %s", roudi_config, strerror(errno));
        return -1;
    }
    fprintf(f, "[general]\nversion = 1\n\n[[segment]]\n");
    for (size_t i = 0; i < sizeof POOLS / sizeof *POOLS; i++)
        fprintf(f, "\n[[segment.mempool]]\nsize = %u\ncount = %u\n", POOLS[i].size,
                POOLS[i].count);
    fclose(f);
    int out[2];
    if (pipe(out)) {
        snprintf(roudi_why, sizeof roudi_why, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(roudi_why, sizeof roudi_why, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* goes with the benchmark, however it ends */
        dup2(out[1], 1);
        dup2(out[1], 2);
        close(out[0]);
        execlp("iox-roudi", "iox-roudi", "-c", roudi_config, "-l", "warning", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    roudi_pid = pid;
    atexit(roudi_stop);
    char text[4096];
    size_t have = 0;
    for (;;) {
        struct pollfd p = {out[0], POLLIN, 0};
        int r = poll(&p, 1, 10000);
        ssize_t n = r > 0 ? read(out[0], text + have, sizeof text - 1 - have) : 0;
        if (n <= 0) {
            text[have] = 0;
            for (char *c = text; *c; c++) /* its last words, on one line */
                if (*c == '\n' || *c == '\r')
                    *c = ' ';
            snprintf(roudi_why, sizeof roudi_why, "iox-roudi %s (is another RouDi running?)%s%.120s",
                     r == 0 ? "was not ready within 10 s" : "exited", have ? ": " : "",
                     have > 120 ? text + have - 120 : text);
            close(out[0]);
            roudi_stop();
            return -1;
        }
        have += (size_t)n;
        text[have] = 0;
        if (strstr(text, "RouDi is ready for clients"))
            break;
        if (have > sizeof text / 2) { /* keep the tail: the line may straddle */
            memmove(text, text + have - 256, 256);
            have = 256;
        }
    }
    pthread_t th;
    if (pthread_create(&th, NULL, drain_main, (void *)(intptr_t)out[0])) {
        snprintf(roudi_why, sizeof roudi_why, "pthread_create failed");
        roudi_stop();
        return -1;
    }
    pthread_detach(th);
    return 0;
}

typedef struct {
    char instance[64]; /* this channel pair's; the events are "a2b" and "b2a" */
} iox_shared;

typedef struct {
    iox_pub_storage_t pub_storage;
    iox_sub_storage_t sub_storage;
    iox_pub_t pub;
    iox_sub_t sub;
    bool connected; /* the publisher has seen its subscriber */
} iox_ep;

static const char *iox_unsupported(size_t size)
{
    (void)size;
    if (roudi_state == 0)
        roudi_state = roudi_start() == 0 ? 1 : -1;
    return roudi_state < 0 ? roudi_why : NULL;
}

static void *iox_setup(size_t size, int producers, char *err, size_t errlen)
{
    (void)producers;
    const char *why = iox_unsupported(size);
    if (why) {
        snprintf(err, errlen, "%s", why);
        return NULL;
    }
    iox_shared *s = xmalloc(sizeof *s);
    char name[64];
    unique_name(name, sizeof name, "", "");
    snprintf(s->instance, sizeof s->instance, "%s", name);
    return s;
}

static bool iox_sub_ready(const iox_ep *e);

/* Polls RouDi's discovery (which has no wake-up to wait on) every millisecond, 10 s at most. */
static void await_iox(const char *what, const iox_ep *e, bool (*ready)(const iox_ep *))
{
    struct timespec ts = {0, 1000000};
    for (int i = 0; !ready(e); i++) {
        if (i == 10000) {
            char why[96];
            snprintf(why, sizeof why, "%s not connected within 10 s", what);
            compare_fail("iceoryx", why);
        }
        nanosleep(&ts, NULL);
    }
}

static void *iox_open_side(void *shared, int side, int index)
{
    (void)index;
    iox_shared *s = shared;
    char name[64];
    snprintf(name, sizeof name, "msgr-bench-%d", (int)getpid()); /* one runtime per process */
    iox_set_loglevel(Iceoryx_LogLevel_Warn); /* its per-run registration chatter is noise here */
    iox_runtime_init(name);
    iox_ep *e = xmalloc(sizeof *e);
    e->connected = false;
    iox_pub_options_t po;
    iox_pub_options_init(&po);
    po.historyCapacity = 0;
    po.offerOnCreate = true;
    po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
    iox_sub_options_t so;
    iox_sub_options_init(&so);
    so.queueCapacity = QUEUE;
    so.historyRequest = 0;
    so.subscribeOnCreate = true;
    so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
    e->pub = iox_pub_init(&e->pub_storage, SERVICE, s->instance, side ? "b2a" : "a2b", &po);
    e->sub = iox_sub_init(&e->sub_storage, SERVICE, s->instance, side ? "a2b" : "b2a", &so);
    /* RouDi links publishers and subscribers asynchronously. The listening side (1) opens
     * first and checks in before side 0 starts, so each side waits here only for its own
     * subscription; a publisher waits for its subscriber before its first publish (iox_put),
     * since a chunk published to nobody is gone. */
    await_iox("subscription", e, iox_sub_ready);
    return e;
}

static bool iox_sub_ready(const iox_ep *e)
{
    return iox_sub_get_subscription_state(e->sub) == SubscribeState_SUBSCRIBED;
}

static bool iox_pub_ready(const iox_ep *e) { return iox_pub_has_subscribers(e->pub); }

static inline void iox_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void iox_put(void *ep, uint64_t tag, size_t size)
{
    iox_ep *e = ep;
    if (!e->connected) {
        await_iox("publisher", e, iox_pub_ready);
        e->connected = true;
    }
    void *chunk;
    enum iox_AllocationResult r;
    while ((r = iox_pub_loan_chunk(e->pub, &chunk, (uint32_t)size)) != AllocationResult_SUCCESS) {
        if (r != AllocationResult_RUNNING_OUT_OF_CHUNKS &&
            r != AllocationResult_TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL)
            compare_fail("iceoryx", "iox_pub_loan_chunk failed");
        iox_pause();
    }
    payload_fill(chunk, tag, size);
    iox_pub_publish_chunk(e->pub, chunk); /* waits while the subscriber's queue is full */
}

static uint64_t iox_get(void *ep, size_t size)
{
    iox_ep *e = ep;
    const void *chunk;
    enum iox_ChunkReceiveResult r;
    while ((r = iox_sub_take_chunk(e->sub, &chunk)) != ChunkReceiveResult_SUCCESS) {
        if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE)
            compare_fail("iceoryx", "iox_sub_take_chunk failed");
        iox_pause();
    }
    uint64_t tag = payload_tag(chunk, size);
    iox_sub_release_chunk(e->sub, chunk);
    return tag;
}

static void iox_close_side(void *ep)
{
    iox_ep *e = ep;
    iox_pub_deinit(e->pub);
    iox_sub_deinit(e->sub);
    free(e);
    iox_runtime_shutdown();
}

static void iox_teardown(void *shared) { free(shared); }

const transport iceoryx_peer = {"iceoryx", "zero-copy", 1, 1, iox_unsupported, iox_setup,
                                iox_open_side, iox_put, iox_get, NULL, iox_close_side,
                                iox_teardown, NULL};
#else
static const char *no_iceoryx(size_t size)
{
    (void)size;
    return "not built: install libiceoryx-binding-c-dev and iceoryx";
}
const transport iceoryx_peer = {"iceoryx", "zero-copy", 1, 1, no_iceoryx, NULL, NULL, NULL, NULL,
                                NULL, NULL, NULL, NULL};
#endif
