/* The single-producer log (MSGR_LOG_SINGLE_PRODUCER): order across laps, one appender at a
 * time in and across processes, a dead holder's claims and lock, recovery, bad flags. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/wait.h>

#include "log_util.h"

TestSuite(log_single, .init = setup, .fini = teardown, .timeout = 60);

static msgr_log *create_single(uint64_t capacity)
{
    return create_flags(capacity, MSGR_SYNC_NONE, MSGR_LOG_SINGLE_PRODUCER);
}

/* Runs fn in a forked child and returns its exit status (fn's return value). */
static int in_child(int (*fn)(void))
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0)
        _exit(fn());
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "the child did not exit");
    return WEXITSTATUS(st);
}

Test(log_single, appends_and_reads_in_order_across_many_laps)
{
    msgr_log *log = create_single(1 << 14);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    for (uint64_t i = 0; i < 2000; i += 50) { /* ~16 KiB of records per 50: many laps */
        append_n(log, i, 50);
        expect_n(rd, i, 50, 1);
    }
    expect_empty(rd);
    msgr_log_stats st;
    cr_assert_eq(msgr_log_stats_get(log, &st), 0);
    cr_assert_eq(st.flags, MSGR_LOG_SINGLE_PRODUCER);
    cr_assert_eq(st.appender, (int32_t)getpid(), "the appending handle holds the lock");
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

static int child_appends_one(void)
{
    msgr_log *log;
    if (msgr_log_open(path, NULL, &log, NULL))
        return 2;
    uint64_t v = 7;
    int rc = msgr_log_append_wait(log, 1, &v, sizeof v, 0);
    msgr_log_close(log);
    return rc == MSGR_EBUSY ? 1 : rc == 0 ? 0 : 3;
}

Test(log_single, a_second_appender_is_refused_until_the_first_closes)
{
    msgr_log *a = create_single(1 << 16);
    append_n(a, 0, 1);
    msgr_log *b = reopen(NULL);
    msgr_claim c;
    uint64_t v = 1;
    cr_assert_eq(msgr_log_claim_wait(b, 8, &c, 0), MSGR_EBUSY, "another handle of this process");
    cr_assert_eq(msgr_log_append_wait(b, 1, &v, sizeof v, 0), MSGR_EBUSY);
    cr_assert_eq(in_child(child_appends_one), 1, "another process gets MSGR_EBUSY");
    msgr_log_close(a); /* gives the lock up */
    append_n(b, 1, 2);
    msgr_log_close(b);
    cr_assert_eq(in_child(child_appends_one), 0, "free again once b closed");
    msgr_log *log = reopen(NULL);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    expect_n(rd, 0, 3, 1);
    msgr_msg m;
    cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0, "the child's record");
    cr_assert_eq(*(const uint64_t *)m.data, 7);
    expect_empty(rd);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

/* In a child: appends record 1, claims one more, appends record 2 behind that claim if
 * `after`, and dies without committing or closing, holding the append lock. */
static int dies_holding_a_claim(int after)
{
    msgr_log *log;
    msgr_claim c;
    if (msgr_log_open(path, NULL, &log, NULL))
        return 2;
    append_n(log, 1, 1);
    if (msgr_log_claim_wait(log, 40, &c, 0))
        return 3;
    if (after)
        append_n(log, 2, 1);
    return 0; /* no commit, no close: as if killed */
}
static int dies_claim_then_record(void) { return dies_holding_a_claim(1); }
static int dies_claim_last(void) { return dies_holding_a_claim(0); }

/* A log holding record 0, its lock free, and a reader on it. */
static msgr_log *log_with_one(msgr_log_reader **rd)
{
    msgr_log *log = create_single(1 << 16);
    append_n(log, 0, 1);
    msgr_log_close(log);
    log = reopen(NULL);
    cr_assert_eq(msgr_log_reader_open(log, "g", rd), 0);
    return log;
}

Test(log_single, a_dead_holders_claim_is_skipped_when_nobody_holds_the_lock)
{
    msgr_log_reader *rd;
    msgr_log *log = log_with_one(&rd);
    cr_assert_eq(in_child(dies_claim_then_record), 0);
    msgr_log_stats st;
    cr_assert_eq(msgr_log_stats_get(log, &st), 0);
    cr_assert_eq(st.appender, 0, "a dead holder holds nothing");
    /* Record 2 lies behind the dead claim: reading waits out the claim timeout (50 ms),
     * finds the holder dead and skips to it. */
    expect_n(rd, 0, 3, 1);
    expect_empty(rd);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log_single, a_dead_holders_claim_is_skipped_below_the_next_holders_records)
{
    msgr_log_reader *rd;
    msgr_log *log = log_with_one(&rd);
    cr_assert_eq(in_child(dies_claim_last), 0);
    append_n(log, 2, 2); /* takes the dead child's lock over, after its claim */
    msgr_log_stats st;
    cr_assert_eq(msgr_log_stats_get(log, &st), 0);
    cr_assert_eq(st.appender, (int32_t)getpid());
    expect_n(rd, 0, 4, 1);
    expect_empty(rd);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

/* Commits the open claim c as the 8-byte number v, then reads it at once from rd (it was what
 * held the reader) and acknowledges it. */
static void commit_number_and_read_it(msgr_log *log, msgr_claim *c, msgr_log_reader *rd,
                                      uint64_t v)
{
    memcpy(c->data, &v, sizeof v);
    c->len = sizeof v;
    cr_assert_eq(msgr_log_commit(log, c), 0);
    msgr_msg m;
    cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0, "the committed claim is next");
    cr_assert_eq(m.len, sizeof v);
    cr_assert_eq(*(const uint64_t *)m.data, v);
    cr_assert_eq(msgr_log_ack(rd, &m), 0);
}

Test(log_single, skipping_a_dead_claim_stops_at_the_next_holders_open_claim)
{
    msgr_log_reader *rd;
    msgr_log *log = log_with_one(&rd);
    cr_assert_eq(in_child(dies_claim_last), 0);
    msgr_claim c;
    cr_assert_eq(msgr_log_claim_wait(log, 8, &c, 0), 0); /* takes the lock over; left open */
    append_n(log, 3, 1);                            /* committed behind it */
    expect_n(rd, 0, 2, 1);
    msgr_msg m;
    cr_assert_eq(msgr_log_read_wait(rd, &m, 200000000), MSGR_ETIMEDOUT,
                 "the dead claim is skipped up to our open claim, not past it");
    commit_number_and_read_it(log, &c, rd, 2);
    expect_n(rd, 3, 1, 1);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log_single, a_live_holders_open_claim_is_waited_for_not_skipped)
{
    msgr_log *log = create_single(1 << 16);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    append_n(log, 0, 1);
    msgr_claim c;
    cr_assert_eq(msgr_log_claim_wait(log, 8, &c, 0), 0);
    append_n(log, 2, 1); /* committed behind the open claim */
    expect_n(rd, 0, 1, 1);
    msgr_msg m;
    uint64_t t0 = tu_now_ns();
    cr_assert_eq(msgr_log_read_wait(rd, &m, 200000000), MSGR_ETIMEDOUT,
                 "four claim timeouts later the live claim still holds the reader");
    cr_assert_geq(tu_now_ns() - t0, 200000000ull);
    commit_number_and_read_it(log, &c, rd, 1);
    expect_n(rd, 2, 1, 1);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log_single, recovery_frees_a_dead_holders_lock_and_skips_its_claim)
{
    msgr_log *log = create_single(1 << 16);
    append_n(log, 0, 1);
    msgr_log_close(log);
    cr_assert_eq(in_child(dies_claim_then_record), 0);
    msgr_log_recovery rep;
    log = reopen(&rep); /* nobody alive uses it: recovers */
    cr_assert_eq(rep.recovered, 1);
    cr_assert_eq(rep.claims_skipped, 1);
    cr_assert_eq(rep.records, 3);
    cr_assert_eq(rep.bytes_discarded, 0);
    msgr_log_stats st;
    cr_assert_eq(msgr_log_stats_get(log, &st), 0);
    cr_assert_eq(st.appender, 0);
    cr_assert_eq(st.flags, MSGR_LOG_SINGLE_PRODUCER, "the flag is the file's");
    append_n(log, 3, 1);
    expect_whole_log(log, 4);
    msgr_log_close(log);
}

enum { THREAD_RECORDS = 200000 };

static void *single_appender(void *arg)
{
    msgr_log *log = arg;
    for (uint64_t v = 0; v < THREAD_RECORDS; v++)
        if (msgr_log_append_wait(log, 1, &v, sizeof v, 5000000000ll))
            return (void *)1;
    return NULL;
}

Test(log_single, between_threads_every_record_arrives_once_in_order)
{
    msgr_log *log = create_single(1 << 14);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, single_appender, log), 0);
    for (uint64_t want = 0; want < THREAD_RECORDS; want++) {
        msgr_msg m;
        int rc = msgr_log_read_wait(rd, &m, 5000000000ll);
        cr_assert_eq(rc, 0, "read %lu: %s", (unsigned long)want, msgr_strerror(rc));
        cr_assert_eq(m.len, sizeof want);
        cr_assert_eq(*(const uint64_t *)m.data, want, "record %lu", (unsigned long)want);
        if ((want & 31) == 31) /* the small log fills unless space is handed back */
            cr_assert_eq(msgr_log_ack(rd, &m), 0);
    }
    void *res;
    pthread_join(th, &res);
    cr_assert_null(res, "the appender failed");
    expect_empty(rd);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log_single, flags_and_version_are_checked_at_create_and_open)
{
    msgr_log_opts o = {.flags = 0x2};
    msgr_log *log;
    cr_assert_eq(msgr_log_create(path, &o, &log), MSGR_EINVAL);
    log = create_single(1 << 16);
    msgr_log_close(log);
    /* The flags word: region header (256 bytes), then the log header's identity, 52 bytes in. */
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint32_t flags = 0;
    cr_assert_eq(pread(fd, &flags, sizeof flags, 256 + 52), (ssize_t)sizeof flags);
    cr_assert_eq(flags, MSGR_LOG_SINGLE_PRODUCER, "the flags word is where the test looks");
    uint32_t version = 0;
    cr_assert_eq(pread(fd, &version, sizeof version, 256 + 8), (ssize_t)sizeof version);
    cr_assert_eq(version, 3, "files are made in version 3");
    msgr_log *again;
    msgr_log_stats st;
    cr_assert_eq(msgr_log_open(path, NULL, &again, NULL), 0);
    cr_assert_eq(msgr_log_stats_get(again, &st), 0);
    cr_assert_eq(st.version, 3, "stat says the version");
    msgr_log_close(again);
    uint32_t bad = flags | 0x80;
    cr_assert_eq(pwrite(fd, &bad, sizeof bad, 256 + 52), (ssize_t)sizeof bad);
    cr_assert_eq(msgr_log_open(path, NULL, &log, NULL), MSGR_ECORRUPT, "an unknown flag");
    cr_assert_eq(pwrite(fd, &flags, sizeof flags, 256 + 52), (ssize_t)sizeof flags);
    for (version = 1; version <= 2; version++) { /* development formats: another checksum */
        cr_assert_eq(pwrite(fd, &version, sizeof version, 256 + 8), (ssize_t)sizeof version);
        cr_assert_eq(msgr_log_open(path, NULL, &log, NULL), MSGR_EVERSION, "version %u", version);
    }
    version = 3;
    cr_assert_eq(pwrite(fd, &version, sizeof version, 256 + 8), (ssize_t)sizeof version);
    cr_assert_eq(msgr_log_open(path, NULL, &log, NULL), 0, "version 3 again");
    msgr_log_close(log);
    version = 4;
    cr_assert_eq(pwrite(fd, &version, sizeof version, 256 + 8), (ssize_t)sizeof version);
    cr_assert_eq(msgr_log_open(path, NULL, &log, NULL), MSGR_EVERSION, "a version from the future");
    close(fd);
}
