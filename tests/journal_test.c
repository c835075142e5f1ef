/* The journal: dense sequence numbers, segments rolling and growing, named readers resuming
 * from their committed position, replay from a sequence number and from a time, retention
 * deleting only what every reader has passed, and a crash mid-append cut off on reopen. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

static char dir[128];

static void rm_dir(void)
{
    tu_empty_dir(dir);
    rmdir(dir);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/msgr-journal-test-%d", (int)getpid());
    rm_dir();
}

static int segments(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strncmp(e->d_name, "seg-", 4) == 0;
    if (d)
        closedir(d);
    return n;
}

TestSuite(journal, .init = setup, .fini = rm_dir, .timeout = 60);

static msgr_journal *open_j(uint64_t retain_bytes)
{
    msgr_journal_opts o = {.segment_bytes = 64 * 1024, .retain_bytes = retain_bytes};
    msgr_journal *j;
    int rc = msgr_journal_open(dir, &o, &j);
    cr_assert_eq(rc, 0, "open: %s", msgr_strerror(rc));
    return j;
}

static void append_n(msgr_journal *j, uint64_t from, uint64_t n)
{
    char buf[600];
    for (uint64_t i = from; i < from + n; i++) {
        size_t len = 8 + tu_len(5, i, 500);
        tu_fill(buf, 5, i, len);
        uint64_t seq;
        int rc = msgr_journal_append(j, 2, buf, len, &seq);
        cr_assert_eq(rc, 0, "append %lu: %s", (unsigned long)i, msgr_strerror(rc));
        cr_assert_eq(seq, i, "dense sequence numbers");
    }
}

static void expect(msgr_journal_reader *rd, uint64_t from, uint64_t n, int commit)
{
    uint64_t sum = 0;
    for (uint64_t i = from; i < from + n; i++) {
        msgr_msg m;
        int rc = msgr_journal_next(rd, &m);
        cr_assert_eq(rc, 0, "next at %lu: %s", (unsigned long)i, msgr_strerror(rc));
        cr_assert_eq(msgr_journal_seq(&m), i);
        cr_assert_eq(m.len, 8 + tu_len(5, i, 500));
        cr_assert_eq(tu_check(m.data, 5, i, m.len, &sum), 0, "record %lu intact", (unsigned long)i);
        if (commit)
            cr_assert_eq(msgr_journal_ack(rd, &m), 0);
    }
}

Test(journal, appends_roll_over_segments_and_readers_resume)
{
    msgr_journal *j = open_j(0);
    append_n(j, 0, 1000); /* ~300 KB through 64 KiB segments */
    cr_assert_gt(segments(), 3, "several segments");
    cr_assert_eq(msgr_journal_next_seq(j), 1000);
    msgr_journal_reader *a, *b;
    cr_assert_eq(msgr_journal_reader_open(j, "a", &a), 0);
    cr_assert_eq(msgr_journal_reader_open(j, "b", &b), 0);
    cr_assert_eq(msgr_journal_reader_open(j, "a", &a), MSGR_EBUSY);
    expect(a, 0, 600, 1);
    expect(b, 0, 1000, 1);
    msgr_msg m;
    cr_assert_eq(msgr_journal_next(b, &m), MSGR_EAGAIN, "at the end");
    msgr_journal_reader_close(a);
    msgr_journal_reader_close(b);
    msgr_journal_close(j);
    j = open_j(0);
    cr_assert_eq(msgr_journal_reader_open(j, "a", &a), 0);
    expect(a, 600, 400, 1); /* resumes after its last commit */
    append_n(j, 1000, 5);
    expect(a, 1000, 5, 1);
    msgr_journal_reader_close(a);
    msgr_journal_close(j);
}

Test(journal, replay_from_a_sequence_number_and_from_a_time)
{
    msgr_journal *j = open_j(0);
    append_n(j, 0, 300);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec + 20000000;
    struct timespec pause = {0, 60000000}; /* past the coarse clock's tick */
    nanosleep(&pause, NULL);
    append_n(j, 300, 50);
    msgr_journal_reader *r;
    cr_assert_eq(msgr_journal_reader_open(j, "replayer", &r), 0);
    cr_assert_eq(msgr_journal_seek(r, 123), 0);
    expect(r, 123, 10, 0);
    cr_assert_eq(msgr_journal_seek_time(r, t), 0);
    expect(r, 300, 50, 0);
    msgr_journal_reader_close(r);
    msgr_journal_close(j);
}

Test(journal, retention_deletes_only_segments_every_reader_has_passed)
{
    msgr_journal *j = open_j(100 * 1024); /* keep ~100 KB */
    msgr_journal_reader *slow;
    cr_assert_eq(msgr_journal_reader_open(j, "slow", &slow), 0);
    append_n(j, 0, 2000);
    int before = segments();
    uint32_t deleted = 0;
    cr_assert_eq(msgr_journal_gc(j, &deleted), 0);
    cr_assert_eq(deleted, 0, "the slow reader has not passed anything");
    cr_assert_eq(segments(), before);
    expect(slow, 0, 1500, 1);
    cr_assert_eq(msgr_journal_gc(j, &deleted), 0);
    cr_assert_gt(deleted, 0, "segments behind the reader and beyond 100 KB go");
    cr_assert_lt(segments(), before);
    uint64_t first = msgr_journal_first_seq(j);
    cr_assert_gt(first, 0);
    cr_assert_leq(first, 1500, "nothing the reader still needs");
    expect(slow, 1500, 500, 1);
    msgr_journal_reader *late;
    cr_assert_eq(msgr_journal_reader_open(j, "late", &late), 0);
    msgr_msg m;
    cr_assert_eq(msgr_journal_next(late, &m), 0);
    cr_assert_eq(msgr_journal_seq(&m), first, "a new reader starts at the oldest kept");
    msgr_journal_reader_close(late);
    msgr_journal_reader_close(slow);
    msgr_journal_close(j);
}

Test(journal, a_crash_mid_append_is_cut_off_on_reopen)
{
    msgr_journal *j = open_j(0);
    append_n(j, 0, 10);
    msgr_journal_close(j);
    /* Simulate a torn append: garbage past the last record and `used` claiming it. */
    DIR *d = opendir(dir);
    struct dirent *e;
    char seg[512] = "";
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "seg-", 4))
            snprintf(seg, sizeof seg, "%s/%s", dir, e->d_name);
    closedir(d);
    int fd = open(seg, O_RDWR);
    uint64_t used;
    cr_assert_eq(pread(fd, &used, 8, 256 + 16), 8);
    char junk[64];
    memset(junk, 0x77, sizeof junk);
    cr_assert_eq(pwrite(fd, junk, sizeof junk, (off_t)(256 + 64 + used)), (ssize_t)sizeof junk);
    used += 64;
    cr_assert_eq(pwrite(fd, &used, 8, 256 + 16), 8);
    close(fd);
    j = open_j(0);
    cr_assert_eq(msgr_journal_next_seq(j), 10, "the torn record is not counted");
    append_n(j, 10, 3); /* and appending continues right after the last good record */
    msgr_journal_reader *r;
    cr_assert_eq(msgr_journal_reader_open(j, "r", &r), 0);
    expect(r, 0, 13, 0);
    msgr_journal_reader_close(r);
    msgr_journal_close(j);
}

Test(journal, bad_arguments_and_foreign_directories)
{
    msgr_journal *j;
    cr_assert_eq(msgr_journal_open(NULL, NULL, &j), MSGR_EINVAL);
    msgr_journal_opts o = {.segment_bytes = 100};
    cr_assert_eq(msgr_journal_open(dir, &o, &j), MSGR_EINVAL);
    cr_assert_eq(msgr_journal_open("/proc/version", NULL, &j), MSGR_ENOTMSGR, "not a directory");
    j = open_j(0);
    msgr_journal_reader *r;
    cr_assert_eq(msgr_journal_reader_open(j, "", &r), MSGR_EINVAL);
    char big[70000];
    cr_assert_eq(msgr_journal_append(j, 1, big, sizeof big, NULL), MSGR_EMSGSIZE);
    msgr_journal_close(j);
}

Test(journal, retention_by_age)
{
    msgr_journal_opts o = {.segment_bytes = 64 * 1024, .retain_ns = 1}; /* 1 ns: all is old */
    msgr_journal *j;
    cr_assert_eq(msgr_journal_open(dir, &o, &j), 0);
    msgr_journal_reader *r;
    cr_assert_eq(msgr_journal_reader_open(j, "r", &r), 0);
    append_n(j, 0, 1000);
    int before = segments();
    struct timespec pause = {0, 30000000}; /* the coarse clock must tick past the appends */
    nanosleep(&pause, NULL);
    uint32_t deleted = 0;
    cr_assert_eq(msgr_journal_gc(j, &deleted), 0);
    cr_assert_eq(deleted, 0, "old, but the reader has not passed it");
    expect(r, 0, 1000, 1);
    cr_assert_eq(msgr_journal_gc(j, &deleted), 0);
    cr_assert_eq((int)deleted, before - 1, "everything but the segment being appended to");
    cr_assert_eq(segments(), 1);
    msgr_journal_reader_close(r);
    msgr_journal_close(j);
}

/* Writes the meta file's append-lock word (region header 256 bytes, then 56 bytes in). */
static void set_lock_word(uint64_t w)
{
    char p[256];
    snprintf(p, sizeof p, "%s/meta", dir);
    int fd = open(p, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, &w, sizeof w, 256 + 56), (ssize_t)sizeof w);
    close(fd);
}

Test(journal, an_append_lock_naming_a_live_process_times_out_and_a_dead_ones_is_taken_over)
{
    msgr_journal *j = open_j(0);
    append_n(j, 0, 2);
    msgr_journal_close(j);
    /* A live process that is not appending (as a damaged or stale file may say): bounded. */
    pid_t pid = fork();
    if (pid == 0) {
        alarm(30); /* gone by itself if an assertion below stops the test first */
        tu_sleep_forever();
        _exit(0);
    }
    set_lock_word((uint32_t)pid);
    msgr_journal_opts o = {.segment_bytes = 64 * 1024, .lock_timeout_ns = 50000000};
    uint64_t t0 = tu_now_ns();
    cr_assert_eq(msgr_journal_open(dir, &o, &j), MSGR_EBUSY, "the lock's holder lives");
    uint64_t waited = tu_now_ns() - t0;
    cr_assert_geq(waited, 50000000ull);
    cr_assert_lt(waited, 5000000000ull, "a timeout, not a hang");
    /* The same pid with another start time is a process that died and whose pid was reused. */
    /* (Start times are clock ticks since boot: 0xfffffffe would take 497 days of uptime.) */
    set_lock_word((uint32_t)pid | (uint64_t)0xfffffffeu << 32);
    cr_assert_eq(msgr_journal_open(dir, &o, &j), 0, "an earlier process with that pid");
    msgr_journal_close(j);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    set_lock_word((uint32_t)pid); /* dead now */
    cr_assert_eq(msgr_journal_open(dir, &o, &j), 0);
    append_n(j, 2, 1);
    msgr_journal_reader *r;
    cr_assert_eq(msgr_journal_reader_open(j, "r", &r), 0);
    expect(r, 0, 3, 0);
    msgr_journal_reader_close(r);
    msgr_journal_close(j);
}
