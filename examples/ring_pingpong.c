/* ring_pingpong: a parent and its forked child bounce a message over two rings in anonymous
 * shared memory, zero-copy both ways, and print round trips per second.
 * It checks its own result: every reply must carry the number of the ping it answers.
 *
 *   ring_pingpong [--count N]      (default 1000000 round trips)
 */
#include <messenger.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct ping {
    uint64_t seq;
    uint64_t payload[7]; /* 64 bytes in all */
} ping;

static int fail(const char *what, int rc)
{
    fprintf(stderr, "ring_pingpong: %s: %s\n", what, msgr_strerror(rc));
    return 1;
}

/* Echo side: answer every ping with the same struct plus one in payload[0]. */
static int echo(msgr_ring *in, msgr_ring *out, uint64_t count)
{
    for (uint64_t i = 0; i < count; i++) {
        msgr_msg m;
        msgr_claim c;
        int rc = msgr_ring_peek_wait(in, &m, 10000000000ll);
        if (rc)
            return fail("child: wait for ping", rc);
        if ((rc = msgr_ring_claim_wait(out, sizeof(ping), &c, 10000000000ll)))
            return fail("child: claim", rc);
        const ping *p = m.data; /* read in place */
        ping *q = c.data;       /* written in place */
        q->seq = p->seq;
        q->payload[0] = p->payload[0] + 1;
        msgr_ring_release(in, &m);
        msgr_ring_commit(out, &c);
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t count = 1000000;
    if (argc == 3 && strcmp(argv[1], "--count") == 0)
        count = strtoull(argv[2], NULL, 10);
    else if (argc != 1) {
        fprintf(stderr, "usage: ring_pingpong [--count N]\n");
        return 2;
    }
    const uint64_t capacity = 1 << 16;
    size_t fp = msgr_ring_footprint(capacity);
    msgr_region *region;
    int rc = msgr_region_create_anon(2 * fp, NULL, &region); /* shared with forked children */
    if (rc)
        return fail("region", rc);
    char *base = msgr_region_base(region);
    msgr_ring_opts opts = {.capacity = capacity};
    msgr_ring *to_child, *to_parent;
    if ((rc = msgr_ring_create(base, fp, &opts, &to_child)) ||
        (rc = msgr_ring_create(base + fp, fp, &opts, &to_parent)))
        return fail("ring", rc);

    pid_t pid = fork();
    if (pid < 0)
        return fail("fork", MSGR_EIO);
    if (pid == 0)
        _exit(echo(to_child, to_parent, count));

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < count; i++) {
        msgr_claim c;
        msgr_msg m;
        if ((rc = msgr_ring_claim_wait(to_child, sizeof(ping), &c, 10000000000ll)))
            return fail("claim", rc);
        ping *p = c.data;
        p->seq = i;
        p->payload[0] = i * 3;
        msgr_ring_commit(to_child, &c);
        if ((rc = msgr_ring_peek_wait(to_parent, &m, 10000000000ll)))
            return fail("wait for pong", rc);
        const ping *q = m.data;
        bad += q->seq != i || q->payload[0] != i * 3 + 1 || m.len != sizeof(ping);
        msgr_ring_release(to_parent, &m);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int st;
    waitpid(pid, &st, 0);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("ring_pingpong: %lu round trips of a %zu-byte message between two processes\n",
           (unsigned long)count, sizeof(ping));
    printf("%.0f round trips/s, %.0f ns per round trip\n", (double)count / secs,
           secs * 1e9 / (double)count);
    msgr_ring_close(to_child);
    msgr_ring_close(to_parent);
    msgr_region_close(region);
    if (bad || !WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "ring_pingpong: FAILED: %lu wrong replies, child status %d\n",
                (unsigned long)bad, st);
        return 1;
    }
    printf("ok: every reply matched its ping\n");
    return 0;
}
