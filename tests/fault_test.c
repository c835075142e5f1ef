/* Storage faults, injected by this program's own definitions of posix_fallocate() and msync()
 * (the library's calls land here first): a full disk (ENOSPC) on create, on a journal segment
 * roll-over and on a growing region; an I/O error from msync (EIO) on commit and on
 * acknowledgement. Each is a clear error code, never a signal; it is sticky for the handle
 * where the library documents it; nothing committed or acknowledged before it is lost. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test_util.h"

static int fail_fallocate; /* return ENOSPC from posix_fallocate */
static int fail_msync;     /* return EIO from msync */

int posix_fallocate(int fd, off_t off, off_t len)
{
    if (fail_fallocate)
        return ENOSPC;
    return (int)syscall(SYS_fallocate, fd, 0, off, len) == 0 ? 0 : errno;
}

int msync(void *addr, size_t len, int flags)
{
    if (fail_msync) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_msync, addr, len, flags);
}

static char path[128], dir[128];

static void setup(void)
{
    snprintf(path, sizeof path, "/tmp/msgr-fault-%d.log", (int)getpid());
    snprintf(dir, sizeof dir, "/tmp/msgr-fault-%d.journal", (int)getpid());
    unlink(path);
    tu_empty_dir(dir);
    rmdir(dir);
    fail_fallocate = fail_msync = 0;
}

static void teardown(void)
{
    unlink(path);
    tu_empty_dir(dir);
    rmdir(dir);
}

TestSuite(fault, .init = setup, .fini = teardown, .timeout = 60);

Test(fault, a_full_disk_at_create_is_enospc_and_leaves_no_file)
{
    fail_fallocate = 1;
    msgr_log_opts o = {.capacity = 1 << 16};
    msgr_log *log;
    cr_assert_eq(msgr_log_create(path, &o, &log), MSGR_ENOSPC);
    cr_assert_neq(access(path, F_OK), 0, "no half-made file under the name");
    fail_fallocate = 0;
    cr_assert_eq(msgr_log_create(path, &o, &log), 0, "and the name is free for a retry");
    msgr_log_close(log);
}

static uint64_t count_records(const char *p)
{
    msgr_log *log;
    cr_assert_eq(msgr_log_open(p, NULL, &log, NULL), 0);
    msgr_log_stats st;
    cr_assert_eq(msgr_log_stats_get(log, &st), 0);
    msgr_log_close(log);
    return st.records;
}

Test(fault, an_io_error_from_msync_on_commit_is_sticky_and_loses_nothing_committed)
{
    msgr_log_opts o = {.capacity = 1 << 16, .sync = MSGR_SYNC_ALWAYS};
    msgr_log *log;
    cr_assert_eq(msgr_log_create(path, &o, &log), 0);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(msgr_log_append_wait(log, 1, "durable", 8, 0), 0);
    fail_msync = 1;
    cr_assert_eq(msgr_log_append_wait(log, 1, "failing", 8, 0), MSGR_EIO);
    fail_msync = 0;
    /* Sticky: the kernel may have dropped the dirty pages; this handle refuses more. */
    cr_assert_eq(msgr_log_append_wait(log, 1, "refused", 8, 0), MSGR_EIO);
    msgr_claim c;
    cr_assert_eq(msgr_log_claim_wait(log, 8, &c, 0), MSGR_EIO);
    msgr_log_close(log);
    /* Reopened: recovery from what is there; the five durable records all are. */
    uint64_t n = count_records(path);
    cr_assert(n == 5 || n == 6, "%lu records after reopening", (unsigned long)n);
    cr_assert_eq(msgr_log_open(path, NULL, &log, NULL), 0);
    cr_assert_eq(msgr_log_append_wait(log, 1, "again", 6, 0), 0, "a new handle appends");
    msgr_log_close(log);
}

Test(fault, an_io_error_from_msync_on_acknowledgement_is_reported)
{
    msgr_log_opts o = {.capacity = 1 << 16, .sync = MSGR_SYNC_ALWAYS};
    msgr_log *log;
    cr_assert_eq(msgr_log_create(path, &o, &log), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(msgr_log_append_wait(log, 1, "r", 2, 0), 0);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    msgr_msg m;
    cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0);
    cr_assert_eq(msgr_log_ack(rd, &m), 0);
    cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0);
    fail_msync = 1;
    cr_assert_eq(msgr_log_ack(rd, &m), MSGR_EIO, "the acknowledgement is not durable");
    fail_msync = 0;
    msgr_log_reader_close(rd);
    msgr_log_close(log);
    /* The first acknowledgement held: the group resumes after it, at worst at the second. */
    cr_assert_eq(msgr_log_open(path, NULL, &log, NULL), 0);
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    int left = 0;
    while (msgr_log_read_wait(rd, &m, 0) == 0)
        left++;
    cr_assert(left == 1 || left == 2, "%d records left for the group", left);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(fault, a_full_disk_at_a_journal_roll_over_is_enospc_and_loses_nothing)
{
    msgr_journal_opts o = {.segment_bytes = 64 * 1024};
    msgr_journal *j;
    cr_assert_eq(msgr_journal_open(dir, &o, &j), 0);
    char buf[1000];
    memset(buf, 'j', sizeof buf);
    uint64_t n = 0;
    for (; n < 50; n++) /* most of the first segment */
        cr_assert_eq(msgr_journal_append(j, 1, buf, sizeof buf, NULL), 0);
    fail_fallocate = 1;
    int rc = 0;
    while ((rc = msgr_journal_append(j, 1, buf, sizeof buf, NULL)) == 0)
        n++; /* until the segment is full and a new one is needed */
    cr_assert(rc == MSGR_ENOSPC, "roll-over on a full disk: %s", msgr_strerror(rc));
    fail_fallocate = 0;
    cr_assert_eq(msgr_journal_append(j, 1, buf, sizeof buf, NULL), 0, "space again: goes on");
    n++;
    msgr_journal_reader *rd;
    cr_assert_eq(msgr_journal_reader_open(j, "r", &rd), 0);
    msgr_msg m;
    uint64_t got = 0;
    while (msgr_journal_next(rd, &m) == 0) {
        cr_assert_eq(msgr_journal_seq(&m), got, "dense and in order");
        got++;
    }
    cr_assert_eq(got, n, "every appended record is there");
    msgr_journal_reader_close(rd);
    msgr_journal_close(j);
}

Test(fault, a_full_disk_when_a_region_grows_is_enospc_not_sigbus)
{
    msgr_region_opts o = {.flags = MSGR_REGION_GROWABLE, .max_size = 1 << 20};
    msgr_region *r;
    cr_assert_eq(msgr_region_create_file(path, 4096, &o, &r), 0);
    size_t before = msgr_region_size(r);
    fail_fallocate = 1;
    cr_assert_eq(msgr_region_grow(r, 1 << 19), MSGR_ENOSPC);
    cr_assert_eq(msgr_region_size(r), before, "nothing mapped that has no disk behind it");
    memset(msgr_region_base(r), 1, before); /* what is mapped is backed */
    fail_fallocate = 0;
    cr_assert_eq(msgr_region_grow(r, 1 << 19), 0);
    memset(msgr_region_base(r), 2, msgr_region_size(r));
    msgr_region_close(r);
}
