/* Single-threaded ring behaviour: empty, full, exact fit, wrap-around, sizes, alignment. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <unistd.h>

#include "test_util.h"

static msgr_region *g_region;
static msgr_ring *g_ring;

static msgr_ring *make_ring(uint64_t capacity, uint32_t flags)
{
    msgr_ring_close(g_ring);
    msgr_region_close(g_region);
    cr_assert_eq(msgr_region_create_anon(msgr_ring_footprint(capacity), NULL, &g_region), 0);
    msgr_ring_opts o = {.capacity = capacity, .flags = flags};
    cr_assert_eq(msgr_ring_create(msgr_region_base(g_region), msgr_region_size(g_region), &o,
                                  &g_ring), 0);
    return g_ring;
}

static void teardown(void)
{
    msgr_ring_close(g_ring);
    msgr_region_close(g_region);
    g_ring = NULL;
    g_region = NULL;
}

TestSuite(ring, .fini = teardown, .timeout = 30);

Test(ring, empty_ring_peeks_eagain)
{
    msgr_ring *r = make_ring(4096, 0);
    msgr_msg m;
    char buf[16];
    cr_assert_eq(msgr_ring_peek(r, &m), MSGR_EAGAIN);
    cr_assert_eq(msgr_ring_recv(r, buf, sizeof buf, NULL), MSGR_EAGAIN);
    cr_assert_eq(msgr_ring_poll(r, (msgr_ring_handler)abort, NULL, 10), 0);
}

Test(ring, send_then_recv_round_trip)
{
    msgr_ring *r = make_ring(4096, 0);
    const char text[] = "hello, ring";
    cr_assert_eq(msgr_ring_send(r, 7, text, sizeof text), 0);
    char buf[64];
    msgr_msg info;
    cr_assert_eq(msgr_ring_recv(r, buf, sizeof buf, &info), (int)sizeof text);
    cr_assert_str_eq(buf, text);
    cr_assert_eq(info.type, 7);
    cr_assert_eq(msgr_ring_recv(r, buf, sizeof buf, NULL), MSGR_EAGAIN);
}

/* 4096-byte ring, records of 112 payload bytes take exactly 128 bytes: 32 fill it. */
Test(ring, full_ring_fails_fast_and_exact_fit_uses_every_byte)
{
    msgr_ring *r = make_ring(4096, 0);
    char payload[112] = {0};
    for (int i = 0; i < 32; i++) {
        payload[0] = (char)i;
        cr_assert_eq(msgr_ring_send(r, 1, payload, sizeof payload), 0, "record %d", i);
    }
    cr_assert_eq(msgr_ring_send(r, 1, payload, sizeof payload), MSGR_EAGAIN);
    cr_assert_eq(msgr_ring_send(r, 1, payload, 0), MSGR_EAGAIN, "not even 16 bytes are free");
    msgr_claim c;
    cr_assert_eq(msgr_ring_claim_wait(r, 8, &c, 1000000), MSGR_ETIMEDOUT);
    char out[112];
    cr_assert_eq(msgr_ring_recv(r, out, sizeof out, NULL), 112);
    cr_assert_eq(out[0], 0);
    cr_assert_eq(msgr_ring_send(r, 1, payload, sizeof payload), 0, "one record freed, one fits");
    cr_assert_eq(msgr_ring_send(r, 1, payload, sizeof payload), MSGR_EAGAIN);
    for (int i = 1; i < 33; i++) {
        cr_assert_eq(msgr_ring_recv(r, out, sizeof out, NULL), 112);
        cr_assert_eq(out[0], (char)(i < 32 ? i : 31), "record %d in order", i);
    }
    cr_assert_eq(msgr_ring_recv(r, out, sizeof out, NULL), MSGR_EAGAIN);
}

Test(ring, wraps_with_padding_record)
{
    msgr_ring *r = make_ring(4096, 0);
    char buf[2048];
    /* Advance to offset 4096 - 48: three records of 1344 bytes (1328 payload) = 4032. */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(msgr_ring_send(r, 1, buf, 1328), 0);
        cr_assert_eq(msgr_ring_recv(r, buf, sizeof buf, NULL), 1328);
    }
    msgr_ring_stats st;
    msgr_ring_stats_get(r, &st);
    cr_assert_eq(st.tail, 4032);
    /* 64 bytes remain before the end; a 100-byte payload (128-byte record) must wrap. */
    msgr_claim c;
    cr_assert_eq(msgr_ring_claim(r, 100, &c), 0);
    cr_assert_eq((char *)c.data, (char *)msgr_region_base(g_region) + MSGR_RING_HDR_SIZE + 16,
                 "the record starts at offset 0 of the data area");
    tu_fill(c.data, 1, 42, 100);
    c.type = 9;
    cr_assert_eq(msgr_ring_commit(r, &c), 0);
    msgr_ring_stats_get(r, &st);
    cr_assert_eq(st.tail, 4096 + 128, "64 padding bytes + 128 record bytes");
    msgr_msg m;
    cr_assert_eq(msgr_ring_peek(r, &m), 0);
    uint64_t sum = 0;
    cr_assert_eq(m.len, 100);
    cr_assert_eq(m.type, 9);
    cr_assert_eq(tu_check(m.data, 1, 42, 100, &sum), 0, "payload intact after wrap");
    cr_assert_eq(msgr_ring_release(r, &m), 0);
    cr_assert_eq(msgr_ring_peek(r, &m), MSGR_EAGAIN);
}

Test(ring, largest_record_fits_at_every_offset)
{
    msgr_ring *r = make_ring(4096, 0);
    size_t max = msgr_ring_max_payload(4096);
    cr_assert_eq(max, 2048 - 16);
    static char buf[4096];
    /* Walk the start offset across the data area 16 bytes at a time. */
    for (int step = 0; step < 4096 / 16 + 3; step++) {
        tu_fill(buf, 2, (uint64_t)step, max);
        cr_assert_eq(msgr_ring_send(r, 1, buf, max), 0, "step %d", step);
        char out[4096];
        uint64_t sum = 0;
        cr_assert_eq(msgr_ring_recv(r, out, sizeof out, NULL), (int)max);
        cr_assert_eq(tu_check(out, 2, (uint64_t)step, max, &sum), 0);
        cr_assert_eq(msgr_ring_send(r, 1, buf, 0), 0); /* shift by one 16-byte record */
        cr_assert_eq(msgr_ring_recv(r, out, sizeof out, NULL), 0);
    }
}

Test(ring, oversize_rejected_with_emsgsize)
{
    msgr_ring *r = make_ring(4096, 0);
    msgr_claim c;
    static char buf[4096];
    cr_assert_eq(msgr_ring_claim(r, msgr_ring_max_payload(4096) + 1, &c), MSGR_EMSGSIZE);
    cr_assert_eq(msgr_ring_send(r, 1, buf, 4096), MSGR_EMSGSIZE);
    cr_assert_eq(msgr_ring_claim_wait(r, (size_t)1 << 40, &c, -1), MSGR_EMSGSIZE);
}

Test(ring, zero_length_record)
{
    msgr_ring *r = make_ring(4096, 0);
    cr_assert_eq(msgr_ring_send(r, 3, NULL, 0), 0);
    msgr_msg m;
    cr_assert_eq(msgr_ring_peek(r, &m), 0);
    cr_assert_eq(m.len, 0);
    cr_assert_eq(m.type, 3);
    cr_assert_eq(msgr_ring_release(r, &m), 0);
    cr_assert_eq(msgr_ring_peek(r, &m), MSGR_EAGAIN);
}

Test(ring, every_payload_is_16_byte_aligned)
{
    msgr_ring *r = make_ring(1 << 14, 0);
    for (uint64_t i = 0; i < 20000; i++) {
        size_t len = tu_len(0, i, 700);
        msgr_claim c;
        cr_assert_eq(msgr_ring_claim(r, len, &c), 0);
        cr_assert_eq((uintptr_t)c.data % 16, 0, "claim %lu len %zu", (unsigned long)i, len);
        tu_fill(c.data, 0, i, len);
        cr_assert_eq(msgr_ring_commit(r, &c), 0);
        msgr_msg m;
        uint64_t sum = 0;
        cr_assert_eq(msgr_ring_peek(r, &m), 0);
        cr_assert_eq((uintptr_t)m.data % 16, 0);
        cr_assert_eq(m.len, len);
        cr_assert_eq(tu_check(m.data, 0, i, len, &sum), 0);
        cr_assert_eq(msgr_ring_release(r, &m), 0);
    }
}

Test(ring, commit_shorter_than_claim_pads_the_rest)
{
    for (uint32_t flags = 0; flags <= MSGR_RING_MPSC; flags++) {
        msgr_ring *r = make_ring(4096, flags);
        msgr_claim c;
        cr_assert_eq(msgr_ring_claim(r, 1000, &c), 0);
        c.len = 1001;
        cr_assert_eq(msgr_ring_commit(r, &c), MSGR_EINVAL, "longer than claimed is refused");
        c.len = 10;
        memcpy(c.data, "0123456789", 10);
        cr_assert_eq(msgr_ring_commit(r, &c), 0);
        cr_assert_eq(msgr_ring_send(r, 2, "next", 4), 0);
        char out[64];
        cr_assert_eq(msgr_ring_recv(r, out, sizeof out, NULL), 10);
        cr_assert_eq(memcmp(out, "0123456789", 10), 0);
        cr_assert_eq(msgr_ring_recv(r, out, sizeof out, NULL), 4, "padding skipped");
        cr_assert_eq(memcmp(out, "next", 4), 0);
    }
}

Test(ring, several_outstanding_claims_commit_in_order)
{
    msgr_ring *r = make_ring(4096, 0);
    msgr_claim a, b;
    cr_assert_eq(msgr_ring_claim(r, 8, &a), 0);
    cr_assert_eq(msgr_ring_claim(r, 8, &b), 0);
    memcpy(a.data, "AAAAAAAA", 8);
    memcpy(b.data, "BBBBBBBB", 8);
    cr_assert_eq(msgr_ring_commit(r, &a), 0);
    msgr_msg m;
    cr_assert_eq(msgr_ring_peek(r, &m), 0);
    cr_assert_eq(memcmp(m.data, "AAAAAAAA", 8), 0);
    cr_assert_eq(msgr_ring_release(r, &m), 0);
    cr_assert_eq(msgr_ring_peek(r, &m), MSGR_EAGAIN, "b claimed but not committed");
    cr_assert_eq(msgr_ring_commit(r, &b), 0);
    cr_assert_eq(msgr_ring_peek(r, &m), 0);
    cr_assert_eq(memcmp(m.data, "BBBBBBBB", 8), 0);
}

Test(ring, recv_into_small_buffer_keeps_the_record)
{
    msgr_ring *r = make_ring(4096, 0);
    cr_assert_eq(msgr_ring_send(r, 1, "0123456789abcdef", 16), 0);
    char small[8], big[32];
    msgr_msg info;
    cr_assert_eq(msgr_ring_recv(r, small, sizeof small, &info), MSGR_EMSGSIZE);
    cr_assert_eq(info.len, 16, "info says how much room is needed");
    cr_assert_eq(msgr_ring_recv(r, big, sizeof big, NULL), 16);
    cr_assert_eq(memcmp(big, "0123456789abcdef", 16), 0);
}

static int count_and_stop_at_3(void *arg, const msgr_msg *m)
{
    int *n = arg;
    cr_assert_eq(m->type, (uint16_t)*n, "poll delivers in order");
    (*n)++;
    return *n == 3;
}

static int count_it(void *arg, const msgr_msg *m)
{
    (void)m;
    ++*(int *)arg;
    return 0;
}

static int stop_after_one(void *arg, const msgr_msg *m)
{
    (void)m;
    ++*(int *)arg;
    return 1;
}

/* A poll lingers only after one that ran the ring dry early: a batch cut short by max or by
 * the handler says nothing about the producers (lingering after it would throttle a consumer
 * whose max is below min_batch: 4.4 M msgs/s with max 64 and (256, 512)). */
Test(ring, linger_only_after_running_dry)
{
    msgr_ring *r = make_ring(4096, 0);
    char b[8] = {0};
    int got = 0;
    cr_assert_eq(msgr_ring_lingers(NULL), 0);
    msgr_ring_set_linger(r, 8, 1);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(msgr_ring_send(r, 1, b, sizeof b), 0);
    cr_assert_eq(msgr_ring_poll(r, count_it, &got, 5), 5); /* cut short by max */
    uint64_t base = msgr_ring_lingers(r);
    cr_assert_eq(msgr_ring_poll(r, count_it, &got, 5), 5);
    cr_assert_eq(msgr_ring_lingers(r), base, "no linger after a batch cut short by max");
    cr_assert_eq(msgr_ring_poll(r, stop_after_one, &got, 100), 1);
    cr_assert_eq(msgr_ring_poll(r, count_it, &got, 100), 9, "the rest, then dry");
    cr_assert_eq(msgr_ring_lingers(r), base, "nor after one the handler cut short");
    cr_assert_eq(msgr_ring_poll(r, count_it, &got, 100), 0);
    cr_assert_eq(msgr_ring_lingers(r), base, "nor after a dry batch of min_batch or more");
    cr_assert_eq(msgr_ring_poll(r, count_it, &got, 100), 0);
    cr_assert_eq(msgr_ring_lingers(r), base + 1, "after a dry batch under min_batch, it does");
    cr_assert_eq(got, 20);
}

Test(ring, poll_delivers_in_order_and_stops_when_asked)
{
    msgr_ring *r = make_ring(4096, 0);
    for (uint16_t i = 0; i < 5; i++)
        cr_assert_eq(msgr_ring_send(r, i, &i, sizeof i), 0);
    int n = 0;
    cr_assert_eq(msgr_ring_poll(r, count_and_stop_at_3, &n, 100), 3);
    cr_assert_eq(msgr_ring_poll(r, count_and_stop_at_3, &n, 1), 1, "max respected");
    cr_assert_eq(msgr_ring_poll(r, count_and_stop_at_3, &n, 100), 1);
    cr_assert_eq(n, 5);
    cr_assert_eq(msgr_ring_poll(r, count_and_stop_at_3, &n, 100), 0);
}

Test(ring, release_of_a_message_not_at_head_is_refused)
{
    msgr_ring *r = make_ring(4096, 0);
    cr_assert_eq(msgr_ring_send(r, 1, "x", 1), 0);
    msgr_msg m;
    cr_assert_eq(msgr_ring_peek(r, &m), 0);
    msgr_msg bogus = m;
    bogus.pos_ += 16;
    cr_assert_eq(msgr_ring_release(r, &bogus), MSGR_EINVAL);
    cr_assert_eq(msgr_ring_release(r, &m), 0);
    cr_assert_eq(msgr_ring_release(r, &m), MSGR_EINVAL, "double release");
}

Test(ring, peek_wait_times_out_on_empty_ring)
{
    msgr_ring *r = make_ring(4096, 0);
    msgr_msg m;
    msgr_ring_set_wait(r, 10, 1);
    cr_assert_eq(msgr_ring_peek_wait(r, &m, 2000000), MSGR_ETIMEDOUT);
    cr_assert_eq(msgr_ring_peek_wait(r, &m, 0), MSGR_EAGAIN, "timeout 0 is one try");
}

/* ---- the same round trip against every backend ---- */

typedef struct { msgr_region_kind kind; } backend;

ParameterizedTestParameters(ring, works_in_every_region_kind)
{
    static backend kinds[] = {{MSGR_REGION_ANON}, {MSGR_REGION_SHM}, {MSGR_REGION_FILE}};
    return cr_make_param_array(backend, kinds, sizeof kinds / sizeof *kinds);
}

ParameterizedTest(backend *b, ring, works_in_every_region_kind)
{
    char name[64];
    snprintf(name, sizeof name, "msgr-ring-test-%d", (int)getpid());
    char path[96];
    snprintf(path, sizeof path, "/tmp/%s.bus", name);
    msgr_region *g = NULL;
    size_t bytes = msgr_ring_footprint(1 << 16);
    int rc;
    switch (b->kind) {
    case MSGR_REGION_ANON: rc = msgr_region_create_anon(bytes, NULL, &g); break;
    case MSGR_REGION_SHM: rc = msgr_region_create_shm(name, bytes, NULL, &g); break;
    default: rc = msgr_region_create_file(path, bytes, NULL, &g); break;
    }
    cr_assert_eq(rc, 0, "%s", msgr_strerror(rc));
    msgr_ring_opts o = {.capacity = 1 << 16, .flags = MSGR_RING_MPSC};
    msgr_ring *r;
    cr_assert_eq(msgr_ring_create(msgr_region_base(g), msgr_region_size(g), &o, &r), 0);
    uint64_t sent = 0, got = 0;
    for (uint64_t i = 0; i < 5000; i++) {
        size_t len = tu_len(3, i, 1024);
        char buf[1024];
        sent += tu_fill(buf, 3, i, len);
        cr_assert_eq(msgr_ring_send(r, 1, buf, len), 0);
        cr_assert_eq(msgr_ring_recv(r, buf, sizeof buf, NULL), (int)len);
        cr_assert_eq(tu_check(buf, 3, i, len, &got), 0);
    }
    cr_assert_eq(sent, got);
    msgr_ring_close(r);
    msgr_region_close(g);
    if (b->kind == MSGR_REGION_SHM)
        cr_assert_eq(msgr_region_unlink_shm(name), 0);
    if (b->kind == MSGR_REGION_FILE)
        cr_assert_eq(unlink(path), 0);
}

Test(ring, abort_turns_a_claim_into_padding_and_commit_is_once_only)
{
    for (uint32_t flags = 0; flags <= MSGR_RING_MPSC; flags++) {
        msgr_ring *r = make_ring(4096, flags);
        msgr_claim a, b;
        cr_assert_eq(msgr_ring_claim(r, 100, &a), 0);
        cr_assert_eq(msgr_ring_claim(r, 8, &b), 0);
        memcpy(b.data, "survivor", 8);
        cr_assert_eq(msgr_ring_commit(r, &b), 0);
        cr_assert_eq(msgr_ring_commit(r, &b), MSGR_EINVAL, "a claim commits once");
        msgr_msg m;
        cr_assert_eq(msgr_ring_peek(r, &m), MSGR_EAGAIN, "b waits behind the open claim a");
        cr_assert_eq(msgr_ring_abandon(r, &a), 0);
        cr_assert_eq(msgr_ring_abandon(r, &a), MSGR_EINVAL, "and aborts once");
        cr_assert_eq(msgr_ring_peek(r, &m), 0, "the aborted claim is skipped");
        cr_assert_eq(m.len, 8);
        cr_assert_eq(memcmp(m.data, "survivor", 8), 0);
    }
}

typedef struct {
    uint64_t next, bad;
} order_check;

static int check_order(void *arg, const msgr_msg *m)
{
    order_check *k = arg;
    uint64_t v;
    memcpy(&v, m->data, sizeof v);
    k->bad += m->len != sizeof v || v != k->next;
    k->next++;
    return 0;
}

/* Linger only delays a poll that follows a small batch: nothing is held back or reordered. */
Test(ring, linger_keeps_every_record_in_order)
{
    msgr_ring *r = make_ring(1 << 16, 0);
    order_check k = {0, 0};
    msgr_ring_set_linger(r, 16, 64);
    msgr_ring_set_linger(NULL, 16, 64); /* accepted, does nothing */
    uint64_t v = 0;
    cr_assert_eq(msgr_ring_send(r, 1, &v, sizeof v), 0);
    cr_assert_eq(msgr_ring_poll(r, check_order, &k, 256), 1, "a lone record is handed over");
    cr_assert_eq(msgr_ring_poll(r, check_order, &k, 256), 0);
    for (v = 1; v <= 40; v++)
        cr_assert_eq(msgr_ring_send(r, 1, &v, sizeof v), 0);
    cr_assert_eq(msgr_ring_poll(r, check_order, &k, 256), 40);
    msgr_ring_set_linger(r, 0, 64); /* off */
    cr_assert_eq(msgr_ring_send(r, 1, &v, sizeof v), 0);
    cr_assert_eq(msgr_ring_poll(r, check_order, &k, 256), 1);
    cr_assert_eq(k.next, 42);
    cr_assert_eq(k.bad, 0);
}

static void *linger_producer(void *arg)
{
    msgr_ring *r = arg;
    for (uint64_t v = 0; v < 200000; v++)
        if (msgr_ring_send_wait(r, 1, &v, sizeof v, -1))
            return (void *)1;
    return NULL;
}

Test(ring, linger_between_threads_delivers_everything_in_order)
{
    msgr_ring *r = make_ring(1 << 14, 0);
    msgr_ring_set_linger(r, 16, 16);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, linger_producer, r), 0);
    order_check k = {0, 0};
    while (k.next < 200000) {
        int n = msgr_ring_poll(r, check_order, &k, 256);
        cr_assert_geq(n, 0);
        if (n == 0) {
            msgr_msg m;
            cr_assert_eq(msgr_ring_peek_wait(r, &m, 5000000000ll), 0);
        }
    }
    void *res;
    pthread_join(th, &res);
    cr_assert_null(res);
    cr_assert_eq(k.bad, 0);
}

/* An absurd linger is capped, and a timed wait while lingering still ends near its timeout
 * (a pause loop does not look at the clock: uncapped, 2^32 pauses would take minutes). */
Test(ring, a_huge_linger_still_honours_timeouts)
{
    msgr_ring *r = make_ring(1 << 12, 0);
    msgr_ring_set_linger(r, 1, UINT32_MAX);
    msgr_msg m;
    uint64_t t0 = tu_now_ns();
    cr_assert_eq(msgr_ring_peek_wait(r, &m, 10000000), MSGR_ETIMEDOUT);
    cr_assert_eq(msgr_ring_poll(r, check_order, &(order_check){0, 0}, 8), 0);
    uint64_t ms = (tu_now_ns() - t0) / 1000000;
    cr_assert_lt(ms, 1000, "a 10 ms wait and an empty poll took %lu ms", (unsigned long)ms);
}
