/* The broadcast ring: every reader sees every record once, in order (threads and forked
 * processes, 1 to 8 readers); a slow reader holds the producer back and is never lapped; a
 * SIGKILLed reader is detached and the others go on; readers joining mid-stream see a gap-free
 * suffix; corrupt shared positions give MSGR_ECORRUPT. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "../bus/bcast_internal.h"

#define CAP (1u << 16)
#define MAXLEN 1024
#define WAIT_NS 20000000000ll

TestSuite(bcast, .timeout = 300);

/* Memory for a ring of CAP bytes plus a page of test control words after it, shared with
 * forked children. */
typedef struct {
    void *mem;
    size_t ring_size;
    _Atomic uint32_t *ready, *flag;
} shm;

static shm shm_new(void)
{
    shm s;
    s.ring_size = msgr_bcast_footprint(CAP);
    cr_assert_neq(s.ring_size, 0);
    s.mem = mmap(NULL, s.ring_size + 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                 -1, 0);
    cr_assert_neq(s.mem, MAP_FAILED);
    s.ready = (_Atomic uint32_t *)((char *)s.mem + s.ring_size);
    s.flag = s.ready + 1;
    return s;
}

static msgr_bcast *ring_new(shm *s)
{
    msgr_bcast_opts o = {.capacity = CAP, .liveness_ns = 2000000};
    msgr_bcast *b;
    cr_assert_eq(msgr_bcast_create(s->mem, s->ring_size, &o, &b), 0, "%s", msgr_last_error());
    return b;
}

/* Sends records 0..n-1: varying lengths (so records wrap with padding), type = seq. */
static int send_numbered(msgr_bcast *b, uint64_t first, uint64_t n)
{
    for (uint64_t seq = first; seq < first + n; seq++) {
        msgr_claim c;
        size_t len = 8 + tu_len(0, seq, MAXLEN - 8);
        int rc = msgr_bcast_claim_wait(b, len, &c, WAIT_NS);
        if (rc)
            return rc;
        tu_fill(c.data, 0, seq, len);
        c.type = (uint16_t)seq;
        if ((rc = msgr_bcast_commit(b, &c)))
            return rc;
    }
    return 0;
}

/* Checks one record against what send_numbered wrote for `seq`. */
static int check_record(const msgr_msg *m, uint64_t seq)
{
    uint64_t sum = 0;
    size_t len = 8 + tu_len(0, seq, MAXLEN - 8);
    if (m->len != len || m->type != (uint16_t)seq || tu_check(m->data, 0, seq, len, &sum))
        return MSGR_ECORRUPT;
    return 0;
}

typedef struct {
    msgr_bcast_reader *rd;
    uint64_t count, got;
    int use_poll, rc;
} reader_arg;

static int on_record(void *arg, const msgr_msg *m)
{
    reader_arg *a = arg;
    if (!a->rc)
        a->rc = check_record(m, a->got);
    a->got++;
    return 0;
}

/* Reads `count` records in order, by peek/release or by poll. */
static int read_numbered(reader_arg *a)
{
    while (a->got < a->count && !a->rc) {
        if (a->use_poll) {
            int n = msgr_bcast_poll(a->rd, on_record, a, 64);
            if (n < 0)
                return n;
            if (n == 0) {
                msgr_msg m;
                int rc = msgr_bcast_peek_wait(a->rd, &m, WAIT_NS);
                if (rc)
                    return rc;
            }
            continue;
        }
        msgr_msg m;
        int rc = msgr_bcast_peek_wait(a->rd, &m, WAIT_NS);
        if (rc)
            return rc;
        if ((rc = check_record(&m, a->got)))
            return rc;
        if ((rc = msgr_bcast_release(a->rd, &m)))
            return rc;
        a->got++;
    }
    return a->rc;
}

static void *reader_main(void *arg)
{
    reader_arg *a = arg;
    a->rc = read_numbered(a);
    return NULL;
}

static void threads_case(unsigned readers)
{
    shm s = shm_new();
    msgr_bcast *b = ring_new(&s);
    uint64_t n = tu_scaled(200000);
    reader_arg a[8];
    pthread_t th[8];
    for (unsigned i = 0; i < readers; i++) {
        a[i] = (reader_arg){.count = n, .use_poll = (int)(i & 1)};
        cr_assert_eq(msgr_bcast_join(b, &a[i].rd), 0);
    }
    for (unsigned i = 0; i < readers; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, reader_main, &a[i]), 0);
    cr_assert_eq(send_numbered(b, 0, n), 0, "%s", msgr_last_error());
    for (unsigned i = 0; i < readers; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(a[i].rc, 0, "reader %u: %s", i, msgr_strerror(a[i].rc));
        cr_assert_eq(a[i].got, n, "reader %u got %llu of %llu", i,
                     (unsigned long long)a[i].got, (unsigned long long)n);
        msgr_msg m;
        cr_assert_eq(msgr_bcast_peek(a[i].rd, &m), MSGR_EAGAIN, "nothing more than was sent");
        msgr_bcast_leave(a[i].rd);
    }
    msgr_bcast_stats st;
    cr_assert_eq(msgr_bcast_stats_get(b, &st), 0);
    cr_assert_eq(st.readers, 0);
    cr_assert_eq(st.detached, 0);
    cr_assert_eq(st.dropped, 0);
    msgr_bcast_close(b);
    munmap(s.mem, s.ring_size + 4096);
}

Test(bcast, threads_one_reader) { threads_case(1); }
Test(bcast, threads_two_readers) { threads_case(2); }
Test(bcast, threads_four_readers) { threads_case(4); }
Test(bcast, threads_eight_readers) { threads_case(8); }

static void await_count(_Atomic uint32_t *w, uint32_t n)
{
    uint64_t until = tu_now_ns() + 20000000000ull;
    while (atomic_load(w) < n) {
        cr_assert_lt(tu_now_ns(), until, "timed out waiting for %u (at %u)", n, atomic_load(w));
        tu_yield();
    }
}

/* A child process: attaches its own handle, joins, says so, reads `count` records (stopping
 * after `stall_after` of them, if nonzero, to wait for ever), exits 0 if all were right. */
static void child_reader(shm *s, uint64_t count, uint64_t stall_after)
{
    msgr_bcast *b;
    if (msgr_bcast_attach(s->mem, s->ring_size, NULL, &b))
        _exit(2);
    reader_arg a = {.count = stall_after ? stall_after : count, .use_poll = (int)(getpid() & 1)};
    if (msgr_bcast_join(b, &a.rd))
        _exit(3);
    atomic_fetch_add(s->ready, 1);
    if (read_numbered(&a) || a.got != a.count)
        _exit(4);
    if (stall_after) {
        atomic_store(s->flag, 1);
        tu_sleep_forever();
    }
    msgr_bcast_leave(a.rd);
    msgr_bcast_close(b);
    _exit(0);
}

static void processes_case(unsigned readers)
{
    shm s = shm_new();
    msgr_bcast *b = ring_new(&s);
    uint64_t n = tu_scaled(200000);
    pid_t pid[8];
    for (unsigned i = 0; i < readers; i++) {
        pid[i] = fork();
        cr_assert_geq(pid[i], 0);
        if (pid[i] == 0)
            child_reader(&s, n, 0);
    }
    await_count(s.ready, readers);
    cr_assert_eq(send_numbered(b, 0, n), 0, "%s", msgr_last_error());
    for (unsigned i = 0; i < readers; i++) {
        int st;
        cr_assert_eq(waitpid(pid[i], &st, 0), pid[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reader process %u: status %#x", i, st);
    }
    msgr_bcast_stats stats;
    cr_assert_eq(msgr_bcast_stats_get(b, &stats), 0);
    cr_assert_eq(stats.detached, 0);
    msgr_bcast_close(b);
    munmap(s.mem, s.ring_size + 4096);
}

Test(bcast, processes_one_reader) { processes_case(1); }
Test(bcast, processes_two_readers) { processes_case(2); }
Test(bcast, processes_four_readers) { processes_case(4); }
Test(bcast, processes_eight_readers) { processes_case(8); }

Test(bcast, slow_reader_holds_the_producer_back_and_is_never_lapped)
{
    shm s = shm_new();
    msgr_bcast *b = ring_new(&s);
    msgr_bcast_reader *fast, *slow;
    cr_assert_eq(msgr_bcast_join(b, &fast), 0);
    cr_assert_eq(msgr_bcast_join(b, &slow), 0);
    /* Fill until the slow reader, which reads nothing, holds the producer back; the fast one
     * keeps up all along. */
    reader_arg fa = {.rd = fast, .count = UINT64_MAX, .use_poll = 1};
    uint64_t sent = 0;
    size_t len;
    for (;;) {
        msgr_claim c;
        len = 8 + tu_len(0, sent, MAXLEN - 8);
        int rc = msgr_bcast_claim(b, len, &c);
        if (rc == MSGR_EAGAIN)
            break;
        cr_assert_eq(rc, 0);
        tu_fill(c.data, 0, sent, len);
        c.type = (uint16_t)sent;
        cr_assert_eq(msgr_bcast_commit(b, &c), 0);
        sent++;
        cr_assert_eq(msgr_bcast_poll(fast, on_record, &fa, 1000), 1);
        cr_assert_lt(sent, CAP, "the producer never stopped");
    }
    cr_assert_eq(fa.rc, 0);
    cr_assert_eq(fa.got, sent);
    /* Everything the slow reader has not read fits in the ring: nothing was overwritten. */
    msgr_bcast_stats st;
    cr_assert_eq(msgr_bcast_stats_get(b, &st), 0);
    cr_assert_leq(st.tail - st.min_head, CAP);
    cr_assert_gt(sent, CAP / (MAXLEN + 16), "the ring held at least what fits");
    /* Still held back, however often it asks, and a timed wait times out. */
    msgr_claim c;
    cr_assert_eq(msgr_bcast_claim(b, len, &c), MSGR_EAGAIN);
    cr_assert_eq(msgr_bcast_claim_wait(b, len, &c, 20000000), MSGR_ETIMEDOUT);
    cr_assert_eq(msgr_bcast_stats_get(b, &st), 0);
    cr_assert_eq(st.detached, 0, "a live slow reader is never detached");
    /* The slow reader reads everything, intact and in order; then there is room again. */
    reader_arg sa = {.rd = slow, .count = sent};
    cr_assert_eq(read_numbered(&sa), 0);
    cr_assert_eq(sa.got, sent);
    cr_assert_eq(send_numbered(b, sent, 1), 0);
    msgr_bcast_leave(fast);
    msgr_bcast_leave(slow);
    msgr_bcast_close(b);
    munmap(s.mem, s.ring_size + 4096);
}

Test(bcast, sigkilled_reader_is_detached_and_the_others_go_on)
{
    shm s = shm_new();
    msgr_bcast *b = ring_new(&s);
    uint64_t n = tu_scaled(100000), stall = 10;
    if (n < 10 * CAP / 16)
        n = 10 * CAP / 16; /* many laps past the dead reader */
    pid_t live = fork();
    cr_assert_geq(live, 0);
    if (live == 0)
        child_reader(&s, n, 0);
    pid_t doomed = fork();
    cr_assert_geq(doomed, 0);
    if (doomed == 0)
        child_reader(&s, n, stall);
    await_count(s.ready, 2);
    cr_assert_eq(send_numbered(b, 0, stall), 0);
    await_count(s.flag, 1);
    /* Killed, and left a zombie (not reaped) while the producer goes on. */
    cr_assert_eq(kill(doomed, SIGKILL), 0);
    cr_assert_eq(send_numbered(b, stall, n - stall), 0, "%s", msgr_last_error());
    int st;
    cr_assert_eq(waitpid(live, &st, 0), live);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the live reader: status %#x", st);
    msgr_bcast_stats stats;
    cr_assert_eq(msgr_bcast_stats_get(b, &stats), 0);
    cr_assert_eq(stats.detached, 1);
    cr_assert_eq(stats.readers, 0);
    cr_assert_eq(waitpid(doomed, &st, 0), doomed);
    cr_assert(WIFSIGNALED(st));
    msgr_bcast_close(b);
    munmap(s.mem, s.ring_size + 4096);
}

/* Readers join and leave while the producer runs; each sees consecutive records from where it
 * joined, intact (the join protocol never lets the producer overwrite what a joiner reads). */
typedef struct {
    msgr_bcast *b;
    _Atomic int stop;
    int rc;
    uint64_t joins;
} churn_arg;

static void *churn_main(void *arg)
{
    churn_arg *a = arg;
    while (!atomic_load(&a->stop) && !a->rc) {
        msgr_bcast_reader *rd;
        if ((a->rc = msgr_bcast_join(a->b, &rd)))
            break;
        a->joins++;
        msgr_msg m;
        uint64_t next = 0;
        for (int i = 0; i < 50 && !a->rc; i++) {
            int rc = msgr_bcast_peek_wait(rd, &m, 100000000);
            if (rc == MSGR_ETIMEDOUT)
                break;
            if (rc) {
                a->rc = rc;
                break;
            }
            uint64_t seq;
            memcpy(&seq, m.data, 8);
            if ((i && seq != next) || check_record(&m, seq))
                a->rc = MSGR_ECORRUPT;
            next = seq + 1;
            msgr_bcast_release(rd, &m);
        }
        msgr_bcast_leave(rd);
    }
    return NULL;
}

Test(bcast, readers_joining_mid_stream_see_a_gap_free_suffix)
{
    shm s = shm_new();
    msgr_bcast *b = ring_new(&s);
    churn_arg a[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        a[i] = (churn_arg){.b = b};
        cr_assert_eq(pthread_create(&th[i], NULL, churn_main, &a[i]), 0);
    }
    cr_assert_eq(send_numbered(b, 0, tu_scaled(300000)), 0);
    for (int i = 0; i < 3; i++) {
        atomic_store(&a[i].stop, 1);
        pthread_join(th[i], NULL);
        cr_assert_eq(a[i].rc, 0, "churner %d: %s", i, msgr_strerror(a[i].rc));
        cr_assert_gt(a[i].joins, 0);
    }
    msgr_bcast_close(b);
    munmap(s.mem, s.ring_size + 4096);
}

Test(bcast, limits_and_bad_arguments)
{
    shm s = shm_new();
    msgr_bcast *b = ring_new(&s);
    msgr_bcast_reader *rd[MSGR_BCAST_MAX_READERS + 1];
    for (unsigned i = 0; i < MSGR_BCAST_MAX_READERS; i++)
        cr_assert_eq(msgr_bcast_join(b, &rd[i]), 0);
    cr_assert_eq(msgr_bcast_join(b, &rd[MSGR_BCAST_MAX_READERS]), MSGR_ENOSPC);
    cr_assert(strstr(msgr_last_error(), "32") != NULL, "%s", msgr_last_error());
    msgr_bcast_leave(rd[5]);
    cr_assert_eq(msgr_bcast_join(b, &rd[5]), 0, "a slot that was left is free again");
    for (unsigned i = 0; i < MSGR_BCAST_MAX_READERS; i++)
        msgr_bcast_leave(rd[i]);
    msgr_claim c;
    cr_assert_eq(msgr_bcast_claim(b, msgr_bcast_max_payload(CAP) + 1, &c), MSGR_EMSGSIZE);
    cr_assert_eq(msgr_bcast_claim(b, msgr_bcast_max_payload(CAP), &c), 0);
    c.len = c.claimed_ + 1;
    cr_assert_eq(msgr_bcast_commit(b, &c), MSGR_EINVAL);
    /* No reader: the record goes nowhere, and is counted. */
    cr_assert_eq(msgr_bcast_send(b, 1, "x", 1, 0), 0);
    msgr_bcast_stats st;
    cr_assert_eq(msgr_bcast_stats_get(b, &st), 0);
    cr_assert_eq(st.dropped, 1);
    msgr_bcast_opts bad = {.capacity = 3000};
    msgr_bcast *b2;
    cr_assert_eq(msgr_bcast_create(s.mem, s.ring_size, &bad, &b2), MSGR_EINVAL);
    cr_assert(strstr(msgr_last_error(), "3000") != NULL, "%s", msgr_last_error());
    char junk[8192] __attribute__((aligned(64))) = {0};
    cr_assert_eq(msgr_bcast_attach(junk, sizeof junk, NULL, &b2), MSGR_ENOTMSGR);
    msgr_bcast_opts other = {.schema = 42};
    cr_assert_eq(msgr_bcast_attach(s.mem, s.ring_size, &other, &b2), MSGR_ESCHEMA);
    cr_assert_eq(msgr_bcast_attach(s.mem, 4096, NULL, &b2), MSGR_ERANGE);
    msgr_bcast_close(b);
    munmap(s.mem, s.ring_size + 4096);
}

/* White-box: where the shared header keeps the tail and the first reader's cursor (bcast.c's
 * layout: line 1; slot 0 at line 5, cursor after the owner word). A hostile or broken peer
 * writing garbage there gets MSGR_ECORRUPT, never a crash or a read out of bounds. */
Test(bcast, corrupt_positions_are_refused)
{
    shm s = shm_new();
    msgr_bcast *b = ring_new(&s);
    msgr_bcast_reader *rd;
    cr_assert_eq(msgr_bcast_join(b, &rd), 0);
    cr_assert_eq(send_numbered(b, 0, 3), 0);
    _Atomic uint64_t *tail = (_Atomic uint64_t *)((char *)s.mem + 64);
    _Atomic uint64_t *cursor0 = (_Atomic uint64_t *)((char *)s.mem + 5 * 64 + 8);
    uint64_t good = atomic_load(tail);
    msgr_msg m;
    atomic_store(tail, good + 10 * (uint64_t)CAP);
    cr_assert_eq(msgr_bcast_peek(rd, &m), MSGR_ECORRUPT);
    atomic_store(tail, good + 32); /* in bounds, but no record ends there */
    cr_assert_eq(msgr_bcast_peek(rd, &m), 0, "the first record is still whole");
    cr_assert_eq(msgr_bcast_release(rd, &m), 0);
    /* A record header overwritten with a huge length. */
    msgr_msg m2;
    cr_assert_eq(msgr_bcast_peek(rd, &m2), 0);
    ((uint32_t *)((char *)m2.data - 8))[0] = 0xfffffff0u;
    cr_assert_eq(msgr_bcast_peek(rd, &m2), MSGR_ECORRUPT);
    atomic_store(tail, good);
    atomic_store(cursor0, good + 4 * (uint64_t)CAP);
    msgr_bcast *fresh; /* a new producer handle reads the cursors at its first claim */
    cr_assert_eq(msgr_bcast_attach(s.mem, s.ring_size, NULL, &fresh), 0);
    msgr_claim c;
    cr_assert_eq(msgr_bcast_claim(fresh, 8, &c), MSGR_ECORRUPT);
    cr_assert(strstr(msgr_last_error(), "cursor") != NULL, "%s", msgr_last_error());
    msgr_bcast_close(fresh);
    msgr_bcast_leave(rd);
    msgr_bcast_close(b);
    munmap(s.mem, s.ring_size + 4096);
}

/* The join race, made to happen: while a reader joins (after it read the tail, before its slot
 * is published), the producer scans without it and writes more than a lap past that tail. The
 * joiner must start after what was overwritten: its first look finds nothing, and then it
 * reads the next record whole. (Starting at the tail it read first fails here.) */
typedef struct {
    msgr_bcast *b;
    msgr_bcast_reader *fast;
    uint64_t sent;
    int rc;
} race_arg;

static void write_a_lap(void *arg)
{
    race_arg *a = arg;
    reader_arg fa = {.rd = a->fast, .count = UINT64_MAX, .got = a->sent, .use_poll = 1};
    for (uint64_t end = a->sent + 3 * CAP / 64; a->sent < end && !a->rc; a->sent++) {
        a->rc = send_numbered(a->b, a->sent, 1);
        if (!a->rc && msgr_bcast_poll(a->fast, on_record, &fa, 1000) != 1)
            a->rc = MSGR_EIO;
    }
    if (!a->rc)
        a->rc = fa.rc;
}

Test(bcast, a_join_racing_the_producer_never_reads_overwritten_records)
{
    shm s = shm_new();
    msgr_bcast *b = ring_new(&s);
    race_arg a = {.b = b};
    cr_assert_eq(msgr_bcast_join(b, &a.fast), 0);
    msgr__bcast_join_hook_arg = &a;
    msgr__bcast_join_hook = write_a_lap;
    msgr_bcast_reader *late;
    int rc = msgr_bcast_join(b, &late);
    msgr__bcast_join_hook = NULL;
    cr_assert_eq(rc, 0);
    cr_assert_eq(a.rc, 0, "%s", msgr_strerror(a.rc));
    msgr_msg m;
    cr_assert_eq(msgr_bcast_peek(late, &m), MSGR_EAGAIN, "the joiner starts after the race");
    cr_assert_eq(send_numbered(b, a.sent, 1), 0);
    cr_assert_eq(msgr_bcast_peek(late, &m), 0);
    cr_assert_eq(check_record(&m, a.sent), 0);
    msgr_bcast_leave(late);
    msgr_bcast_leave(a.fast);
    msgr_bcast_close(b);
    munmap(s.mem, s.ring_size + 4096);
}
