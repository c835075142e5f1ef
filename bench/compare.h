/* bench_compare: one workload through messenger and through the IPC mechanisms users would pick
 * instead. Every transport is a table of functions over two sides: side 0 produces (or pings),
 * side 1 consumes (or echoes). Benchmark code only; the library depends on none of the peers. */
#ifndef MSGR_BENCH_COMPARE_H
#define MSGR_BENCH_COMPARE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Message tag in the first 8 bytes (and again in the last 8 when the payload has 16 or more):
 * producer index << 56 | sequence number. */
#define TAG_STOP UINT64_MAX      /* latency: tells the echo side to finish */
#define TAG_BAD (UINT64_MAX - 1) /* payload whose head and tail tags disagree */

/* Builds a whole message: tag, filler bytes derived from it, tag. Every producer of every
 * transport builds every byte of every message (in place or in its own buffer). */
static inline void payload_fill(void *p, uint64_t tag, size_t size)
{
    memcpy(p, &tag, 8);
    if (size > 16)
        memset((char *)p + 8, (int)(tag & 0xff), size - 16);
    if (size >= 16)
        memcpy((char *)p + size - 8, &tag, 8);
}

/* Reads a message's tag where it lies (its first and last 8 bytes); TAG_BAD if they disagree. */
static inline uint64_t payload_tag(const void *p, size_t size)
{
    uint64_t a, b;
    memcpy(&a, p, 8);
    if (size < 16)
        return a;
    memcpy(&b, (const char *)p + size - 8, 8);
    return a == b ? a : TAG_BAD;
}

typedef struct transport {
    const char *name;  /* the CSV `transport` column */
    const char *mode;  /* zero-copy or copy */
    int processes;     /* 1: the sides run in separate (forked) processes; 0: threads */
    int max_producers; /* producers one consumer can take (peers: 1) */
    /* Why this transport cannot run (package missing, size it cannot carry); NULL if it can. */
    const char *(*unsupported)(size_t size);
    /* In the parent, before any side starts: shared state for one channel pair (a->b, b->a)
     * carrying messages of exactly `size` bytes. NULL with `err` filled when it cannot. */
    void *(*setup)(size_t size, int producers, char *err, size_t errlen);
    /* In the thread or process of the side; fails the benchmark on error. */
    void *(*open)(void *shared, int side, int index);
    void (*put)(void *ep, uint64_t tag, size_t size);
    uint64_t (*get)(void *ep, size_t size);
    /* Optional batch receive: at least one, at most `max` tags; NULL: get() one at a time. */
    unsigned (*drain)(void *ep, size_t size, uint64_t *tags, unsigned max);
    void (*close)(void *ep);
    void (*teardown)(void *shared);
    /* Optional, latency runs only: wait the way a latency-sensitive user would configure. */
    void (*tune_latency)(void *ep);
} transport;

/* peers.c: every peer, those not compiled into this build saying why; returns the count. */
size_t peers_list(const transport **out);

/* peers_os.c: pipe, Unix domain socket, POSIX message queue (always built). */
#define N_OS_PEERS 3
extern const transport os_peers[N_OS_PEERS];

/* compare_ipc.c: messenger's IPC transport (framed messages over a Unix socket). */
#define N_IPC_TRANSPORTS 2
extern const transport ipc_transports[N_IPC_TRANSPORTS];

/* peers_iceoryx.c: iceoryx's publisher and subscriber between processes. */
extern const transport iceoryx_peer;

/* bench_compare.c: fail the benchmark when out of memory; "what: strerror(e)" into err. */
void *xmalloc(size_t n);
void set_err(char *err, size_t errlen, const char *what, int e);

/* Writes "<prefix>msgr-bench-<pid>-<n><suffix>", n new on every call: channels set up at the
 * same time (two pairs when oversubscribed) never share a name. Returns out. */
char *unique_name(char *out, size_t n, const char *prefix, const char *suffix);

/* Fails the benchmark with the transport's name and the cause. */
void compare_fail(const char *who, const char *what);

#endif
