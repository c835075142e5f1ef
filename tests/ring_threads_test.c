/* Concurrency between threads: every message arrives exactly once, intact, in per-producer
 * order; sleeping producers and consumers are woken. Threads start on a barrier. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <time.h>

#include "test_util.h"

#define MAXP 4

typedef struct {
    msgr_ring *ring;
    pthread_barrier_t *start;
    uint32_t id;
    uint64_t count;
    uint64_t sum;  /* byte sum of everything sent */
    int zero_copy; /* alternate claim/commit and send */
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    char buf[1024];
    pthread_barrier_wait(p->start);
    for (uint64_t seq = 0; seq < p->count; seq++) {
        size_t len = tu_len(p->id, seq, 1024);
        int rc;
        if ((seq & 1) && p->zero_copy) {
            msgr_claim c;
            rc = msgr_ring_claim_wait(p->ring, len, &c, 20000000000ll);
            if (rc == 0) {
                p->sum += tu_fill(c.data, p->id, seq, len);
                c.source = (uint16_t)p->id;
                c.type = (uint16_t)seq;
                rc = msgr_ring_commit(p->ring, &c);
            }
        } else {
            p->sum += tu_fill(buf, p->id, seq, len);
            /* type carries the low bits of seq so even empty payloads are order-checked */
            msgr_claim c;
            rc = msgr_ring_claim_wait(p->ring, len, &c, 20000000000ll);
            if (rc == 0) {
                memcpy(c.data, buf, len);
                c.source = (uint16_t)p->id;
                c.type = (uint16_t)seq;
                rc = msgr_ring_commit(p->ring, &c);
            }
        }
        if (rc)
            return (void *)(intptr_t)rc;
    }
    return NULL;
}

typedef struct {
    uint64_t next[MAXP];
    uint64_t sum;
    uint64_t got;
    uint64_t bad;
    uint32_t producers;
} consumer_state;

static int on_msg(void *arg, const msgr_msg *m)
{
    consumer_state *s = arg;
    uint32_t id = m->source;
    if (id >= s->producers) {
        s->bad++;
        return 1;
    }
    uint64_t seq = s->next[id]++;
    size_t len = tu_len(id, seq, 1024);
    if (m->len != len || m->type != (uint16_t)seq || tu_check(m->data, id, seq, len, &s->sum))
        s->bad++;
    s->got++;
    return 0;
}

static void run(uint32_t producers, uint64_t per_producer, uint64_t capacity)
{
    msgr_region *g;
    cr_assert_eq(msgr_region_create_anon(msgr_ring_footprint(capacity), NULL, &g), 0);
    msgr_ring_opts o = {.capacity = capacity, .flags = producers > 1 ? MSGR_RING_MPSC : 0};
    msgr_ring *r;
    cr_assert_eq(msgr_ring_create(msgr_region_base(g), msgr_region_size(g), &o, &r), 0);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, producers + 1);
    producer p[MAXP];
    pthread_t th[MAXP];
    for (uint32_t i = 0; i < producers; i++) {
        p[i] = (producer){.ring = r, .start = &start, .id = i, .count = per_producer,
                          .zero_copy = (int)(i & 1) || producers == 1};
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    consumer_state s = {.producers = producers};
    uint64_t total = per_producer * producers;
    pthread_barrier_wait(&start);
    while (s.got < total && !s.bad) {
        int n = msgr_ring_poll(r, on_msg, &s, 64);
        cr_assert_geq(n, 0, "poll: %s", msgr_strerror(n));
        if (n == 0) {
            msgr_msg m;
            int rc = msgr_ring_peek_wait(r, &m, 20000000000ll);
            cr_assert_eq(rc, 0, "peek_wait: %s after %lu messages", msgr_strerror(rc),
                         (unsigned long)s.got);
        }
    }
    uint64_t sent = 0;
    for (uint32_t i = 0; i < producers; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        cr_assert_null(ret, "producer %u failed: %s", i, msgr_strerror((int)(intptr_t)ret));
        sent += p[i].sum;
        cr_assert_eq(s.next[i], per_producer, "producer %u: all messages, in order", i);
    }
    cr_assert_eq(s.bad, 0, "damaged, duplicated or reordered messages");
    cr_assert_eq(s.got, total);
    cr_assert_eq(s.sum, sent, "byte checksum of everything received equals what was sent");
    msgr_msg m;
    cr_assert_eq(msgr_ring_peek(r, &m), MSGR_EAGAIN, "nothing extra");
    pthread_barrier_destroy(&start);
    msgr_ring_close(r);
    msgr_region_close(g);
}

TestSuite(ring_threads, .timeout = 300);

Test(ring_threads, one_producer_ten_million_random_sizes)
{
    run(1, tu_scaled(10000000), 1 << 20);
}

Test(ring_threads, four_producers_ten_million_random_sizes)
{
    run(4, tu_scaled(10000000) / 4, 1 << 20);
}

Test(ring_threads, small_ring_forces_producers_to_sleep_for_space)
{
    /* 4 KiB ring, records up to 1 KiB: producers are blocked on a full ring most of the time. */
    run(2, tu_scaled(200000), 4096);
}

/* ---- parking: an idle consumer sleeps, a send wakes it, and sleeping costs no CPU ---- */

typedef struct {
    msgr_ring *ring;
    int rc;
    char got[16];
    uint64_t cpu_ns;
    int64_t timeout;
} sleeper;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *sleep_then_recv(void *arg)
{
    sleeper *s = arg;
    uint64_t c0 = thread_cpu_ns();
    s->rc = msgr_ring_recv_wait(s->ring, s->got, sizeof s->got, NULL, s->timeout);
    s->cpu_ns = thread_cpu_ns() - c0;
    return NULL;
}

Test(ring_threads, parked_consumer_is_woken_by_a_send, .timeout = 30)
{
    msgr_region *g;
    cr_assert_eq(msgr_region_create_anon(msgr_ring_footprint(4096), NULL, &g), 0);
    /* Sleeps are bounded by the claim timeout: an hour, so only the wake-up ends this one. */
    msgr_ring_opts o = {.capacity = 4096, .claim_timeout_ns = 3600000000000ll};
    msgr_ring *r;
    cr_assert_eq(msgr_ring_create(msgr_region_base(g), msgr_region_size(g), &o, &r), 0);
    msgr_ring_set_wait(r, 100, 2);
    sleeper s = {.ring = r, .timeout = -1};
    pthread_t th;
    pthread_create(&th, NULL, sleep_then_recv, &s);
    /* Await the condition itself: the consumer has announced that it sleeps. */
    msgr_ring_stats st;
    do {
        msgr_ring_stats_get(r, &st);
        sched_yield();
    } while (!st.consumer_sleeping);
    cr_assert_eq(msgr_ring_send(r, 1, "wake up", 8), 0);
    pthread_join(th, NULL);
    cr_assert_eq(s.rc, 8, "woken with the message (%s)", msgr_strerror(s.rc));
    cr_assert_str_eq(s.got, "wake up");
    msgr_ring_close(r);
    msgr_region_close(g);
}

Test(ring_threads, idle_consumer_uses_no_cpu, .timeout = 30)
{
    msgr_region *g;
    cr_assert_eq(msgr_region_create_anon(msgr_ring_footprint(4096), NULL, &g), 0);
    msgr_ring_opts o = {.capacity = 4096};
    msgr_ring *r;
    cr_assert_eq(msgr_ring_create(msgr_region_base(g), msgr_region_size(g), &o, &r), 0);
    /* Default policy; wait 500 ms on an empty ring and measure the waiter's own CPU time. */
    sleeper s = {.ring = r, .timeout = 500000000};
    pthread_t th;
    pthread_create(&th, NULL, sleep_then_recv, &s);
    pthread_join(th, NULL);
    cr_assert_eq(s.rc, MSGR_ETIMEDOUT);
    cr_assert_lt(s.cpu_ns, 100000000, "an idle wait of 0.5 s used %lu ns of CPU",
                 (unsigned long)s.cpu_ns);
    msgr_ring_close(r);
    msgr_region_close(g);
}
