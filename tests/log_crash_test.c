/* The file log when processes are killed or race each other: a late opener's announcement
 * survives another's recovery, a lost compare-and-swap leaves no intent behind, sleepers killed
 * asleep leave no count behind, and msgr_log_clear() is coherent with a live reader. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log_util.h"
#include "../bus/log_internal.h"

TestSuite(log_crash, .init = setup, .fini = teardown, .timeout = 120);

static int has_slot_of(msgr_log *log, pid_t pid)
{
    for (uint32_t i = 0; i < log->hdr->max_producers; i++)
        if (atomic_load(&log->prods[i].pid) == pid)
            return 1;
    return 0;
}

Test(log_crash, two_openers_at_once_both_keep_their_announcement)
{
    msgr_log_close(create(1 << 16, MSGR_SYNC_NONE));
    for (int trial = 0; trial < 40; trial++) {
        int go[2], done[2];
        cr_assert_eq(pipe(go), 0);
        cr_assert_eq(pipe(done), 0);
        pid_t kids[2];
        for (int k = 0; k < 2; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                close(go[1]);
                char c;
                if (read(go[0], &c, 1) != 0) /* both start when the pipe closes */
                    _exit(1);
                msgr_log *mine;
                if (msgr_log_open(path, NULL, &mine, NULL))
                    _exit(2);
                char one = 1;
                if (write(done[1], &one, 1) != 1)
                    _exit(3);
                tu_sleep_forever();
                _exit(0);
            }
        }
        close(go[0]);
        close(go[1]);
        char b[2];
        cr_assert_eq(read(done[0], b, 1), 1);
        cr_assert_eq(read(done[0], b + 1, 1), 1);
        msgr_log *log = reopen(NULL);
        int both = has_slot_of(log, kids[0]) && has_slot_of(log, kids[1]);
        msgr_log_close(log);
        for (int k = 0; k < 2; k++) {
            kill(kids[k], SIGKILL);
            waitpid(kids[k], NULL, 0);
        }
        close(done[0]);
        close(done[1]);
        cr_assert(both, "trial %d: an opener's producer slot was wiped by the other's recovery",
                  trial);
    }
}

typedef struct {
    msgr_log *log;
    pthread_barrier_t *bar;
} filler_arg;

static void *filler(void *p)
{
    filler_arg *a = p;
    char buf[48] = {0};
    pthread_barrier_wait(a->bar);
    while (msgr_log_append_wait(a->log, 1, buf, sizeof buf, 0) == 0)
        ;
    return NULL;
}

Test(log_crash, a_claim_that_fails_leaves_no_intent_behind)
{
    msgr_log *log = create(1 << 12, MSGR_SYNC_NONE);
    for (int round = 0; round < 400; round++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, 2);
        filler_arg a = {log, &bar};
        pthread_t t[2];
        for (int k = 0; k < 2; k++)
            pthread_create(&t[k], NULL, filler, &a);
        for (int k = 0; k < 2; k++)
            pthread_join(t[k], NULL);
        pthread_barrier_destroy(&bar);
        for (uint32_t i = 0; i < log->hdr->max_producers; i++)
            if (atomic_load(&log->prods[i].pid))
                cr_assert_eq(atomic_load(&log->prods[i].intent), MSGR__NONE,
                         "round %d: slot %u names a position after its claim failed (%lx, tail %lx)", round, i, (unsigned long)atomic_load(&log->prods[i].intent), (unsigned long)atomic_load(&log->hdr->tail));
        uint64_t dropped;
        cr_assert_eq(msgr_log_clear(log, &dropped), 0);
    }
    msgr_log_close(log);
}

Test(log_crash, a_reader_killed_asleep_leaves_no_sleeper_count)
{
    msgr_log *log = create(1 << 12, MSGR_SYNC_NONE);
    pid_t pid = fork();
    if (pid == 0) {
        msgr_log *mine;
        msgr_log_reader *rd;
        msgr_msg m;
        if (msgr_log_open(path, NULL, &mine, NULL) || msgr_log_reader_open(mine, "g", &rd))
            _exit(1);
        msgr_log_read_wait(rd, &m, -1); /* sleeps: nothing is ever appended */
        _exit(2);
    }
    uint64_t t0 = tu_now_ns();
    while (!atomic_load(&log->hdr->data_wait.waiting)) {
        cr_assert_lt(tu_now_ns() - t0, 20000000000ull, "the reader never slept");
        sched_yield();
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    msgr_log_close(log);
    msgr_log_recovery rep;
    log = reopen(&rep);
    cr_assert_eq(rep.recovered, 1);
    cr_assert_eq(atomic_load(&log->hdr->data_wait.waiting), 0,
                 "recovery rebuilt the count of sleepers (nobody sleeps)");
    msgr_log_close(log);
}

Test(log_crash, clear_is_coherent_with_a_live_reader)
{
    msgr_log *log = create(1 << 12, MSGR_SYNC_NONE);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    append_n(log, 0, 10);
    expect_n(rd, 0, 3, 0); /* read, not acknowledged */
    uint64_t dropped = 0;
    cr_assert_eq(msgr_log_clear(log, &dropped), 0);
    cr_assert_eq(dropped, 10);
    /* Records after the clear, several laps of the log: the reader gets exactly these. */
    for (uint64_t i = 100; i < 400; i += 5) {
        append_n(log, i, 5);
        expect_n(rd, i, 5, 1);
    }
    expect_empty(rd);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

/* A thread appending to two logs in turn keeps one producer slot in each (it used to take a
 * new slot at every switch, and failed with MSGR_ENOSPC after 64). */
Test(log_crash, a_thread_alternating_between_two_logs_keeps_one_slot_in_each)
{
    char other[160];
    snprintf(other, sizeof other, "%s.other", path);
    unlink(other);
    msgr_log *a = create(1 << 16, MSGR_SYNC_NONE), *b;
    msgr_log_opts o = {.capacity = 1 << 16};
    cr_assert_eq(msgr_log_create(other, &o, &b), 0);
    msgr_log_reader *ra, *rb;
    cr_assert_eq(msgr_log_reader_open(a, "g", &ra), 0);
    cr_assert_eq(msgr_log_reader_open(b, "g", &rb), 0);
    char buf[16] = {0};
    for (int i = 0; i < 100000; i++) {
        msgr_log *to = (i & 1) ? b : a;
        int rc = msgr_log_append_wait(to, 1, buf, sizeof buf, 0);
        cr_assert_eq(rc, 0, "append %d: %s", i, msgr_strerror(rc));
        msgr_msg m;
        msgr_log_reader *rd = (i & 1) ? rb : ra;
        cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0);
        cr_assert_eq(msgr_log_ack(rd, &m), 0);
    }
    msgr_log_stats st;
    cr_assert_eq(msgr_log_stats_get(a, &st), 0);
    cr_assert_eq(st.producers, 1, "one slot for this thread");
    msgr_log_reader_close(ra);
    msgr_log_reader_close(rb);
    msgr_log_close(a);
    msgr_log_close(b);
    unlink(other);
}

/* A log's creator killed before its header was written leaves no log under the name: open
 * says there is none (not "bad magic" for ever), and the next create makes it. */
Test(log_crash, a_creator_killed_before_its_header_leaves_no_half_made_log)
{
    pid_t pid = fork();
    if (pid == 0) {
        msgr_region_opts ro = {.flags = MSGR_REGION_PUBLISH_LATER};
        msgr_region *g;
        if (msgr_region_create_file(path, 1 << 16, &ro, &g))
            _exit(1);
        kill(getpid(), SIGKILL); /* the header never written, the name never given */
        _exit(2);
    }
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFSIGNALED(st));
    msgr_log *log;
    cr_assert_eq(msgr_log_open(path, NULL, &log, NULL), MSGR_ENOENT);
    log = create(1 << 16, MSGR_SYNC_NONE);
    append_n(log, 0, 3);
    expect_whole_log(log, 3);
    msgr_log_close(log);
}

/* Eight processes creating-or-opening one new log at once, 50 times: one creates it, the
 * others open a whole log (never one whose header is still being written). */
Test(log_crash, concurrent_creators_and_openers_of_a_log_agree)
{
    for (int trial = 0; trial < 50; trial++) {
        unlink(path);
        int go[2], res[2];
        cr_assert_eq(pipe(go), 0);
        cr_assert_eq(pipe(res), 0);
        pid_t kids[8];
        for (int k = 0; k < 8; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                close(go[1]);
                char c;
                if (read(go[0], &c, 1) != 0)
                    _exit(1);
                msgr_log_opts o = {.capacity = 1 << 16};
                msgr_log *log;
                int rc = msgr_log_create(path, &o, &log);
                int out = 1; /* 1 created, 2 opened, else the error */
                if (rc == MSGR_EEXIST) {
                    rc = msgr_log_open(path, NULL, &log, NULL);
                    out = 2;
                }
                if (rc == 0)
                    rc = msgr_log_append_wait(log, 1, "x", 1, 0);
                if (rc)
                    out = rc;
                if (write(res[1], &out, sizeof out) != sizeof out)
                    _exit(2);
                _exit(0);
            }
        }
        close(go[0]);
        close(go[1]);
        int created = 0;
        for (int k = 0; k < 8; k++) {
            int c;
            cr_assert_eq(read(res[0], &c, sizeof c), (ssize_t)sizeof c);
            cr_assert(c == 1 || c == 2, "trial %d: %s", trial, msgr_strerror(c));
            created += c == 1;
        }
        for (int k = 0; k < 8; k++)
            waitpid(kids[k], NULL, 0);
        close(res[0]);
        close(res[1]);
        cr_assert_eq(created, 1, "trial %d: one creator", trial);
        msgr_log *log = reopen(NULL);
        msgr_log_stats st;
        cr_assert_eq(msgr_log_stats_get(log, &st), 0);
        cr_assert_eq(st.records, 8, "trial %d: every process appended to the same log", trial);
        msgr_log_close(log);
    }
}
