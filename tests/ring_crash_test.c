/* Producers killed between claim and commit on an MPSC ring: the claim is turned into padding
 * after the claim timeout, records committed after it arrive once and intact, a live but
 * stopped producer is waited for, and a producer waiting for space behind a dead claim gets
 * it. Forked children over anonymous shared memory (a separately started program over named
 * shared memory is in peer_test.c). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"


#define CAP (1u << 14)
#define TIMEOUT_NS 100000000ll /* claim timeout of every handle here: 100 ms */

static msgr_region *g_region;

static void teardown(void)
{
    msgr_region_close(g_region);
    g_region = NULL;
}

TestSuite(ring_crash, .fini = teardown, .timeout = 60);

static msgr_ring *new_ring(void)
{
    cr_assert_eq(msgr_region_create_anon(msgr_ring_footprint(CAP), NULL, &g_region), 0);
    msgr_ring_opts o = {.capacity = CAP, .flags = MSGR_RING_MPSC, .claim_timeout_ns = TIMEOUT_NS};
    msgr_ring *r;
    cr_assert_eq(msgr_ring_create(msgr_region_base(g_region), msgr_region_size(g_region), &o, &r),
                 0);
    return r;
}

static msgr_ring *attach_again(void)
{
    msgr_ring_opts o = {.claim_timeout_ns = TIMEOUT_NS};
    msgr_ring *r = NULL;
    if (msgr_ring_attach(msgr_region_base(g_region), msgr_region_size(g_region), &o, &r))
        return NULL;
    return r;
}

static void send_range(msgr_ring *r, uint64_t from, uint64_t to)
{
    char buf[300];
    for (uint64_t i = from; i < to; i++) {
        size_t len = tu_len(3, i, 200);
        tu_fill(buf, 3, i, len);
        int rc = msgr_ring_send_wait(r, (uint16_t)i, buf, len, 5000000000ll);
        cr_assert_eq(rc, 0, "send %lu: %s", (unsigned long)i, msgr_strerror(rc));
    }
}

/* Receives records from..to-1 in order and intact, each within `wait_ns`. */
static void expect_range(msgr_ring *r, uint64_t from, uint64_t to, int64_t wait_ns)
{
    char buf[300];
    uint64_t sum = 0;
    for (uint64_t i = from; i < to; i++) {
        msgr_msg info;
        int n = msgr_ring_recv_wait(r, buf, sizeof buf, &info, wait_ns);
        cr_assert_geq(n, 0, "record %lu: %s", (unsigned long)i, msgr_strerror(n));
        size_t len = tu_len(3, i, 200);
        cr_assert_eq((size_t)n, len, "record %lu length", (unsigned long)i);
        cr_assert_eq(info.type, (uint16_t)i, "record %lu in order", (unsigned long)i);
        cr_assert_eq(tu_check(buf, 3, i, len, &sum), 0, "record %lu intact", (unsigned long)i);
    }
}

static void expect_empty(msgr_ring *r)
{
    char buf[300];
    cr_assert_eq(msgr_ring_recv(r, buf, sizeof buf, NULL), MSGR_EAGAIN);
}

static uint64_t repaired(msgr_ring *r)
{
    msgr_ring_stats st;
    cr_assert_eq(msgr_ring_stats_get(r, &st), 0);
    return st.claims_repaired;
}

/* A forked child attaches, makes `claims` claims of `len` bytes (scribbling over them, as a
 * producer killed mid-write would), reports through the pipe and waits to be killed. */
static pid_t child_claims(int claims, size_t len)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        msgr_ring *mine = attach_again();
        if (!mine)
            _exit(1);
        for (int i = 0; i < claims; i++) {
            msgr_claim c;
            if (msgr_ring_claim(mine, len, &c))
                _exit(2);
            memset(c.data, 0xa5, len);
        }
        char one = 1;
        if (write(fds[1], &one, 1) != 1)
            _exit(3);
        tu_sleep_forever();
        _exit(0);
    }
    close(fds[1]);
    char one = 0;
    cr_assert_eq(read(fds[0], &one, 1), 1, "the child made its claims");
    close(fds[0]);
    return pid;
}

static void reap(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

Test(ring_crash, a_producer_killed_inside_its_claim_costs_only_that_record)
{
    msgr_ring *r = new_ring();
    send_range(r, 0, 10);
    pid_t pid = child_claims(1, 100);
    send_range(r, 10, 20); /* committed behind the claim */
    kill(pid, SIGKILL);    /* left a zombie until the end: still dead */
    expect_range(r, 0, 10, 0);
    uint64_t t0 = tu_now_ns();
    expect_range(r, 10, 20, TIMEOUT_NS + 1000000000ll);
    cr_assert_lt(tu_now_ns() - t0, (uint64_t)TIMEOUT_NS + 1000000000u,
                 "moved past the claim within the claim timeout + 1 s");
    expect_empty(r);
    cr_assert_eq(repaired(r), 1);
    for (uint64_t i = 20; i < 400; i += 40) { /* and the ring goes on, across its end */
        send_range(r, i, i + 40);
        expect_range(r, i, i + 40, 1000000000ll);
    }
    reap(pid);
    msgr_ring_close(r);
}

Test(ring_crash, a_dead_claim_that_wrapped_the_data_area_and_one_thread_holding_two)
{
    msgr_ring *r = new_ring();
    /* Move the tail near the end of the data area so the child's claim needs padding. */
    static char buf[CAP / 2];
    cr_assert_eq(msgr_ring_send(r, 1, buf, CAP / 2 - 16), 0);       /* takes CAP / 2 */
    cr_assert_eq(msgr_ring_send(r, 1, buf, CAP / 2 - 616), 0);      /* up to CAP - 600 */
    cr_assert_eq(msgr_ring_recv(r, buf, sizeof buf, NULL), CAP / 2 - 16);
    cr_assert_eq(msgr_ring_recv(r, buf, sizeof buf, NULL), CAP / 2 - 616);
    pid_t pid = child_claims(2, 700); /* the first wraps; the second follows it */
    send_range(r, 0, 5);
    kill(pid, SIGKILL);
    expect_range(r, 0, 5, TIMEOUT_NS + 1000000000ll);
    expect_empty(r);
    cr_assert_geq(repaired(r), 1);
    reap(pid);
    msgr_ring_close(r);
}

Test(ring_crash, a_stopped_producer_is_alive_and_waited_for)
{
    msgr_ring *r = new_ring();
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        msgr_ring *mine = attach_again();
        msgr_claim c;
        if (!mine || msgr_ring_claim(mine, 8, &c))
            _exit(1);
        memcpy(c.data, "stopped", 8);
        char one = 1;
        if (write(fds[1], &one, 1) != 1)
            _exit(1);
        raise(SIGSTOP); /* stopped inside its claim: slow, not dead */
        c.type = 42;
        _exit(msgr_ring_commit(mine, &c) ? 2 : 0);
    }
    char one;
    cr_assert_eq(read(fds[0], &one, 1), 1);
    send_range(r, 0, 3);
    char b[64];
    /* Three claim timeouts: the claim is checked and found alive each time. */
    cr_assert_eq(msgr_ring_recv_wait(r, b, sizeof b, NULL, 3 * TIMEOUT_NS), MSGR_ETIMEDOUT);
    cr_assert_eq(repaired(r), 0, "a live producer's claim is never padded");
    kill(pid, SIGCONT);
    msgr_msg info;
    cr_assert_eq(msgr_ring_recv_wait(r, b, sizeof b, &info, 5000000000ll), 8);
    cr_assert_eq(info.type, 42);
    cr_assert_str_eq(b, "stopped");
    expect_range(r, 0, 3, 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    msgr_ring_close(r);
}

static void *sleeping_consumer(void *arg)
{
    msgr_ring *r = arg;
    msgr_ring_set_wait(r, 0, 0); /* park at once */
    char buf[8192];
    msgr_msg info;
    intptr_t n = msgr_ring_recv_wait(r, buf, sizeof buf, &info, -1);
    return (void *)n;
}

Test(ring_crash, a_producer_waiting_for_space_behind_a_dead_claim_gets_it)
{
    msgr_ring *r = new_ring();
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, sleeping_consumer, r), 0);
    msgr_ring_stats st;
    do { /* the consumer sleeps on an empty ring: no claim to time */
        msgr_ring_stats_get(r, &st);
        sched_yield();
    } while (!st.consumer_sleeping);
    pid_t pid = child_claims(1, CAP / 2 - 16); /* the largest claim */
    kill(pid, SIGKILL);
    /* Does not fit beside the dead claim; nothing else will wake the consumer. */
    char buf[CAP / 2];
    memset(buf, 0x11, sizeof buf);
    int rc = msgr_ring_send_wait(r, 9, buf, CAP / 2 - 16, 5000000000ll);
    cr_assert_eq(rc, 0, "the waiting producer got the space: %s", msgr_strerror(rc));
    void *n;
    pthread_join(t, &n);
    cr_assert_eq((intptr_t)n, CAP / 2 - 16, "the sleeping consumer was woken and got it");
    cr_assert_eq(repaired(r), 1);
    reap(pid);
    msgr_ring_close(r);
}

Test(ring_crash, closing_a_handle_with_a_claim_open_pads_it)
{
    msgr_ring *r = new_ring();
    msgr_ring *p = attach_again();
    cr_assert_not_null(p);
    msgr_claim c;
    cr_assert_eq(msgr_ring_claim(p, 64, &c), 0);
    send_range(r, 0, 3);
    msgr_ring_close(p); /* never committed: padding at once, no timeout to wait for */
    expect_range(r, 0, 3, 0);
    msgr_ring_stats st;
    msgr_ring_stats_get(r, &st);
    cr_assert_eq(st.producer_slots, 1, "the closed handle gave its slot back");
    msgr_ring_close(r);
}

/* ---- a waker killed between its state change and its wake-up ---- */

#include "../bus/record.h"
#include "../bus/ring_layout.h"

static _Atomic pid_t sleeper_tid;

static void *park_and_recv(void *arg)
{
    msgr_ring *r = arg;
    sleeper_tid = gettid();
    msgr_ring_set_wait(r, 0, 0);
    char buf[64];
    intptr_t n = msgr_ring_recv_wait(r, buf, sizeof buf, NULL, -1);
    return (void *)n;
}

/* Until the consumer has announced that it sleeps and its thread sleeps in the kernel (the
 * announcement comes a little before the futex call). */
static void await_consumer_asleep(msgr_ring *r)
{
    msgr_ring_stats st;
    do {
        msgr_ring_stats_get(r, &st);
        sched_yield();
    } while (!st.consumer_sleeping);
    char p[64], buf[256];
    snprintf(p, sizeof p, "/proc/self/task/%d/stat", (int)sleeper_tid);
    for (;;) {
        FILE *f = fopen(p, "r");
        cr_assert_not_null(f);
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        char *q = strrchr(buf, ')');
        if (q && q[2] == 'S')
            return;
        sched_yield();
    }
}

/* A producer that stored its record's tag (committed) and was killed before waking the
 * sleeping consumer: the consumer finds the record within about a claim timeout. */
Test(ring_crash, a_consumer_asleep_finds_a_record_whose_producer_died_before_waking_it)
{
    /* SPSC: no claim outstanding to time, only the bound on every sleep can help. */
    cr_assert_eq(msgr_region_create_anon(msgr_ring_footprint(CAP), NULL, &g_region), 0);
    msgr_ring_opts o = {.capacity = CAP, .claim_timeout_ns = TIMEOUT_NS};
    msgr_ring *r;
    cr_assert_eq(msgr_ring_create(msgr_region_base(g_region), msgr_region_size(g_region), &o, &r),
                 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, park_and_recv, r), 0);
    await_consumer_asleep(r);
    msgr_claim c;
    cr_assert_eq(msgr_ring_claim(r, 5, &c), 0);
    memcpy(c.data, "late", 5);
    /* What msgr_ring_commit() stores, without its wake-up. */
    msgr__rec *rec = (msgr__rec *)((char *)c.data - sizeof(msgr__rec));
    const msgr__ring_hdr *h = (const msgr__ring_hdr *)msgr_region_base(g_region);
    rec->len = 5;
    rec->type = 1;
    rec->source = 0;
    atomic_store_explicit(&rec->tag, (c.pos_ | MSGR__REC_COMMITTED) ^ h->salt,
                          memory_order_release);
    msgr__ring_hdr *hw = (msgr__ring_hdr *)h;
    atomic_store_explicit(&hw->tail, c.pos_ + c.size_, memory_order_release);
    uint64_t t0 = tu_now_ns();
    void *n;
    pthread_join(t, &n); /* without a bound on the sleep this never returns */
    cr_assert_eq((intptr_t)n, 5);
    cr_assert_lt(tu_now_ns() - t0, 2000000000ull, "found within the bound");
    msgr_ring_close(r);
}

static void *fill_then_send(void *arg)
{
    msgr_ring *r = arg;
    msgr_ring_set_wait(r, 0, 0);
    static char buf[CAP / 4];
    while (msgr_ring_send(r, 1, buf, sizeof buf) == 0)
        ;
    intptr_t rc = msgr_ring_send_wait(r, 2, buf, sizeof buf, -1); /* sleeps: the ring is full */
    return (void *)rc;
}

/* A consumer that published its head (space freed) and was killed before waking the sleeping
 * producer: the producer finds the space within about a claim timeout. */
Test(ring_crash, a_producer_asleep_finds_space_a_consumer_freed_before_dying)
{
    msgr_ring *r = new_ring();
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fill_then_send, r), 0);
    msgr_ring_stats st;
    do {
        msgr_ring_stats_get(r, &st);
        sched_yield();
    } while (!st.producers_sleeping);
    /* Consume every record and publish the head as publish_head() would, without its wake. */
    msgr__ring_hdr *h = (msgr__ring_hdr *)msgr_region_base(g_region);
    atomic_store_explicit(&h->head, atomic_load(&h->tail), memory_order_release);
    uint64_t t0 = tu_now_ns();
    void *rc;
    pthread_join(t, &rc);
    cr_assert_eq((intptr_t)rc, 0, "the producer got the space");
    cr_assert_lt(tu_now_ns() - t0, 2000000000ull, "within the bound");
    msgr_ring_close(r);
}
