/* The persistent log: append, read, acknowledge, reopen, garbage collection, groups, dead
 * producers, recovery from crashes and corruption, clear, stat. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log_util.h"
#include "../bus/crc32c.h"
#include "../bus/log_internal.h"

TestSuite(log, .init = setup, .fini = teardown, .timeout = 60);

Test(log, append_read_ack_and_reopen_resumes_after_the_last_ack)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    append_n(log, 0, 100);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    expect_n(rd, 0, 60, 1);
    expect_n(rd, 60, 10, 0); /* read but not acknowledged */
    msgr_log_reader_close(rd);
    msgr_log_close(log);
    msgr_log_recovery rep;
    log = reopen(&rep);
    cr_assert_eq(rep.recovered, 1);
    cr_assert_eq(rep.records, 40, "records 0..59 were acknowledged and are no longer retained");
    cr_assert_eq(rep.bytes_discarded, 0);
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    expect_n(rd, 60, 40, 1); /* at-least-once: 60..69 again */
    expect_empty(rd);
    msgr_log_stats st;
    cr_assert_eq(msgr_log_stats_get(log, &st), 0);
    cr_assert_eq(st.pending, 0);
    cr_assert_eq(st.groups, 1);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log, sequence_numbers_increase_and_survive_reopen)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_ALWAYS);
    append_n(log, 0, 3);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    uint64_t seq[3];
    for (int i = 0; i < 3; i++) {
        msgr_msg m;
        cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0);
        seq[i] = msgr_log_seq(&m);
    }
    cr_assert_lt(seq[0], seq[1]);
    cr_assert_lt(seq[1], seq[2]);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
    log = reopen(NULL);
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    msgr_msg m;
    cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0);
    cr_assert_eq(msgr_log_seq(&m), seq[0], "nothing was acknowledged: same first record");
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log, no_group_keeps_everything_until_full_then_back_pressure)
{
    msgr_log *log = create(4096, MSGR_SYNC_NONE);
    char buf[100] = {0};
    int n = 0, rc;
    while ((rc = msgr_log_append_wait(log, 1, buf, sizeof buf, 0)) == 0)
        n++;
    cr_assert_eq(rc, MSGR_EAGAIN, "full: %s", msgr_strerror(rc));
    cr_assert_eq(n, 4096 / 144, "every byte used: 144-byte records");
    cr_assert_eq(msgr_log_append_wait(log, 1, buf, sizeof buf, 1000000), MSGR_ETIMEDOUT);
    /* A group arriving now starts at the oldest record: it misses nothing. */
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "late", &rd), 0);
    for (int i = 0; i < n; i++) {
        msgr_msg m;
        cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0);
        if (i < 5)
            cr_assert_eq(msgr_log_ack(rd, &m), 0);
    }
    cr_assert_eq(msgr_log_append_wait(log, 1, buf, sizeof buf, 0), 0, "acked space is reused");
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log, the_slowest_group_holds_space)
{
    msgr_log *log = create(4096, MSGR_SYNC_NONE);
    msgr_log_reader *fast, *slow;
    cr_assert_eq(msgr_log_reader_open(log, "fast", &fast), 0);
    cr_assert_eq(msgr_log_reader_open(log, "slow", &slow), 0);
    char buf[100] = {0};
    int n = 0;
    while (msgr_log_append_wait(log, 1, buf, sizeof buf, 0) == 0)
        n++;
    for (int i = 0; i < n; i++) {
        msgr_msg m;
        cr_assert_eq(msgr_log_read_wait(fast, &m, 0), 0);
        cr_assert_eq(msgr_log_ack(fast, &m), 0);
    }
    cr_assert_eq(msgr_log_append_wait(log, 1, buf, sizeof buf, 0), MSGR_EAGAIN, "slow holds it");
    msgr_msg m;
    cr_assert_eq(msgr_log_read_wait(slow, &m, 0), 0);
    cr_assert_eq(msgr_log_ack(slow, &m), 0);
    cr_assert_eq(msgr_log_append_wait(log, 1, buf, sizeof buf, 0), 0);
    msgr_log_group_info gi;
    int found = 0;
    for (uint32_t i = 0; i < 16; i++)
        if (msgr_log_group_get(log, i, &gi) == 0 && !strcmp(gi.name, "slow")) {
            found = 1;
            cr_assert_eq(gi.lag, (uint64_t)n, "slow: n-1 old records + the new one unacked");
            cr_assert_eq(gi.owner, getpid());
        }
    cr_assert(found);
    msgr_log_reader *again;
    cr_assert_eq(msgr_log_reader_open(log, "slow", &again), MSGR_EBUSY, "one reader per group");
    msgr_log_reader_close(slow);
    msgr_log_reader_close(fast);
    msgr_log_close(log);
}

/* A group being taken over by a live process (its owner word says -pid while that process has
 * not yet stored its start time, so the start time there is the previous owner's) is that
 * process's: nobody judges it by the stale start time and takes it too. */
Test(log, a_group_being_taken_by_a_live_process_is_not_taken_from_it)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    msgr_log_reader_close(rd);
    msgr__lgroup *g = NULL;
    for (uint32_t i = 0; i < log->hdr->max_groups; i++)
        if (atomic_load(&log->groups[i].state) == 2 && !strcmp(log->groups[i].name, "g"))
            g = &log->groups[i];
    cr_assert_not_null(g);
    int gate[2];
    cr_assert_eq(pipe(gate), 0);
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(gate[1]); /* so that a parent that dies ends the read too */
        _exit(read(gate[0], &c, 1) == 1 ? 0 : 1);
    }
    close(gate[0]);
    atomic_store(&g->owner_start, 12345); /* not the child's start time */
    atomic_store(&g->owner, -child);      /* the child, midway through taking it */
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), MSGR_EBUSY, "the live taker keeps it");
    cr_assert_eq(write(gate[1], "x", 1), 1);
    cr_assert_eq(waitpid(child, NULL, 0), child);
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0, "a dead taker's group is taken over");
    msgr_log_reader_close(rd);
    close(gate[1]);
    msgr_log_close(log);
}

Test(log, a_producer_killed_between_claim_and_commit_blocks_nobody_for_long)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    append_n(log, 0, 1);
    for (int variant = 0; variant < 2; variant++) {
        pid_t pid = fork();
        if (pid == 0) {
            msgr_log *mine;
            msgr_claim c;
            if (msgr_log_open(path, NULL, &mine, NULL) || msgr_log_claim_wait(mine, 40, &c, 0))
                _exit(1);
            if (variant == 1) /* died before its header was written: nothing marks the claim */
                memset((char *)c.data - 32, 0x5c, 32);
            _exit(0); /* no commit, no close: as if killed */
        }
        int st;
        waitpid(pid, &st, 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        append_n(log, 1 + (uint64_t)variant, 1); /* a record behind the abandoned claim */
    }
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    expect_n(rd, 0, 1, 1);
    /* Reading waits past the claim timeout (50 ms), finds the claimant dead, skips it. */
    expect_n(rd, 1, 2, 1);
    expect_empty(rd);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

/* A producer SIGKILLed inside its claim and not reaped yet (a zombie, as when its parent waits
 * for its children in turn) is dead: the reader skips its claim, and a producer waiting for the
 * space behind it gets it. */
Test(log, a_killed_producer_left_a_zombie_is_skipped_and_frees_the_space)
{
    msgr_log *log = create(1 << 12, MSGR_SYNC_NONE);
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        msgr_log *mine;
        msgr_claim c;
        if (msgr_log_open(path, NULL, &mine, NULL) || msgr_log_claim_wait(mine, 40, &c, 0))
            _exit(1);
        char one = 1;
        if (write(ready[1], &one, 1) != 1)
            _exit(1);
        tu_sleep_forever(); /* holds the claim until killed */
        _exit(0);
    }
    char one;
    cr_assert_eq(read(ready[0], &one, 1), 1, "the child claimed");
    kill(pid, SIGKILL);
    /* Fill the log behind the dead claim, up to what it holds. */
    uint64_t n = 0;
    char buf[200];
    memset(buf, 7, sizeof buf);
    while (msgr_log_append_wait(log, (uint16_t)n, buf, sizeof buf, 0) == 0)
        n++;
    cr_assert_gt(n, 4);
    msgr_log_stats ls;
    cr_assert_eq(msgr_log_stats_get(log, &ls), 0);
    cr_assert_eq(ls.records, n, "stat counts the records behind the unfinished claim");
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    for (uint64_t i = 0; i < n; i++) {
        msgr_msg m;
        int rc = msgr_log_read_wait(rd, &m, 2000000000);
        cr_assert_eq(rc, 0, "record %lu behind the zombie's claim: %s", (unsigned long)i,
                     msgr_strerror(rc));
        cr_assert_eq(m.type, (uint16_t)i);
        cr_assert_eq(msgr_log_ack(rd, &m), 0);
    }
    /* The space the dead claim held is reusable. */
    cr_assert_eq(msgr_log_append_wait(log, 99, buf, sizeof buf, 1000000000), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, WNOHANG), pid, "still a zombie until now");
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log, recovery_keeps_records_after_an_abandoned_claim)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    append_n(log, 0, 2);
    msgr_claim c;
    cr_assert_eq(msgr_log_claim_wait(log, 50, &c, 0), 0); /* never committed */
    append_n(log, 2, 2);
    msgr_log_close(log); /* as after a crash: the claim stays open */
    msgr_log_recovery rep;
    log = reopen(&rep);
    cr_assert_eq(rep.claims_skipped, 1);
    cr_assert_eq(rep.records, 4);
    cr_assert_eq(rep.bytes_discarded, 0);
    expect_whole_log(log, 4);
    msgr_log_close(log);
}

Test(log, a_record_failing_its_crc_ends_the_log_and_is_reported)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    append_n(log, 0, 5);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    msgr_msg m[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(msgr_log_read_wait(rd, &m[i], 0), 0);
    ((char *)m[2].data)[m[2].len / 2] ^= 0x40; /* damage the third record's payload */
    msgr_log_reader_close(rd);
    msgr_log_close(log);
    msgr_log_recovery rep;
    log = reopen(&rep);
    cr_assert_eq(rep.records, 2, "the two records before the damage");
    cr_assert_gt(rep.bytes_discarded, 0, "the rest is discarded, and said so");
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    expect_n(rd, 0, 2, 1);
    expect_empty(rd);
    append_n(log, 100, 1); /* the log goes on after the recovered end */
    expect_n(rd, 100, 1, 1);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

/* Gives the next record the reader hands over the checksum its bytes would have one lap (cap
 * bytes) further on: what a torn write that left a new tag over the previous lap's record would
 * look like. The record header: tag 8, len/type/source 8, crc 4, reserved 4, zero 8. */
static void reseal_a_lap_later(msgr_log_reader *rd, uint64_t cap)
{
    msgr_msg m;
    cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0);
    unsigned char *h = (unsigned char *)m.data - 32;
    uint64_t w1;
    memcpy(&w1, h + 8, 8);
    uint32_t crc = msgr__crc32c_seeded(msgr__lrec_seed(msgr_log_seq(&m) + cap), w1, m.data, m.len);
    memcpy(h + 16, &crc, 4);
}

/* The seed binds a record to its lap: a position and the one a lap later (every power-of-two
 * capacity) never share a seed, including where the lap carries into the folded high word. */
Test(log, a_position_and_the_next_lap_never_share_a_crc_seed)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int j = 12; j <= 44; j++) {
        uint64_t cap = 1ull << j;
        for (int m = j + 1; m <= 60; m++) { /* carry chains from bit j up to bit m */
            uint64_t p = (1ull << m) - cap;
            cr_assert_neq(msgr__lrec_seed(p), msgr__lrec_seed(p + cap), "cap 2^%d, p 2^%d - cap",
                          j, m);
            cr_assert_neq(msgr__lrec_seed(p + 16 * 3), msgr__lrec_seed(p + 16 * 3 + cap));
        }
        for (int i = 0; i < 2000; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            uint64_t p = x & ~(uint64_t)15 & ((1ull << 62) - 1);
            cr_assert_neq(msgr__lrec_seed(p), msgr__lrec_seed(p + cap), "cap 2^%d, p %llx", j,
                          (unsigned long long)p);
        }
    }
}

/* The seed binds a record to its position: the same bytes checksummed for the position a lap
 * later are refused at recovery, and the log ends before them. */
Test(log, a_record_sealed_for_another_lap_is_refused)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    append_n(log, 0, 5);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "rewrite", &rd), 0);
    msgr_msg m;
    for (int i = 0; i < 2; i++)
        cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0);
    reseal_a_lap_later(rd, 1 << 16); /* the third record */
    msgr_log_reader_close(rd);
    msgr_log_close(log);
    msgr_log_recovery rep;
    log = reopen(&rep);
    cr_assert_eq(rep.records, 2, "the records before the resealed one");
    cr_assert_gt(rep.bytes_discarded, 0);
    msgr_log_close(log);
}

Test(log, foreign_and_damaged_files_are_clear_errors)
{
    msgr_log *log;
    cr_assert_eq(msgr_log_open(path, NULL, &log, NULL), MSGR_ENOENT);
    msgr_region *g;
    cr_assert_eq(msgr_region_create_file(path, 1 << 16, NULL, &g), 0);
    msgr_region_close(g);
    cr_assert_eq(msgr_log_open(path, NULL, &log, NULL), MSGR_ENOTMSGR, "a region, not a log");
    unlink(path);
    log = create(1 << 16, MSGR_SYNC_NONE);
    msgr_log_close(log);
    int fd = open(path, O_RDWR);
    uint64_t bad = 12345; /* capacity (region header 256 + log offset 16) */
    cr_assert_eq(pwrite(fd, &bad, 8, 256 + 16), 8);
    close(fd);
    cr_assert_eq(msgr_log_open(path, NULL, &log, NULL), MSGR_ECORRUPT);
}

Test(log, clear_drops_everything_pending_and_counts_it)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    append_n(log, 0, 10);
    expect_n(rd, 0, 3, 1);
    uint64_t dropped = 0;
    cr_assert_eq(msgr_log_clear(log, &dropped), 0);
    cr_assert_eq(dropped, 7);
    msgr_log_stats st;
    msgr_log_stats_get(log, &st);
    cr_assert_eq(st.pending, 0);
    msgr_log_reader_close(rd);
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    expect_empty(rd);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log, batch_policy_and_explicit_sync)
{
    msgr_log_opts o = {.capacity = 1 << 16, .sync = MSGR_SYNC_BATCH, .batch_records = 3};
    msgr_log *log;
    cr_assert_eq(msgr_log_create(path, &o, &log), 0);
    append_n(log, 0, 10);
    cr_assert_eq(msgr_log_sync(log), 0);
    msgr_log_stats st;
    cr_assert_eq(msgr_log_stats_get(log, &st), 0);
    cr_assert_eq(st.sync, MSGR_SYNC_BATCH);
    cr_assert_eq(st.records, 10);
    msgr_log_close(log);
}

Test(log, bad_arguments)
{
    msgr_log *log;
    msgr_log_opts o = {.capacity = 1000};
    cr_assert_eq(msgr_log_create(path, &o, &log), MSGR_EINVAL);
    o = (msgr_log_opts){.sync = 9};
    cr_assert_eq(msgr_log_create(path, &o, &log), MSGR_EINVAL);
    cr_assert_eq(msgr_log_create(NULL, NULL, &log), MSGR_EINVAL);
    log = create(4096, MSGR_SYNC_NONE);
    cr_assert_eq(msgr_log_create(path, NULL, &log), MSGR_EEXIST);
    msgr_claim c;
    cr_assert_eq(msgr_log_claim_wait(log, 4096, &c, 0), MSGR_EMSGSIZE);
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "", &rd), MSGR_EINVAL);
    char longname[60];
    memset(longname, 'x', 59);
    longname[59] = 0;
    cr_assert_eq(msgr_log_reader_open(log, longname, &rd), MSGR_EINVAL);
    msgr_log_close(log);
}

#include <signal.h>
#include <sys/resource.h>

/* In a child with a 1 MiB file-size limit: creating a bigger log and growing a region past the
 * limit fail with MSGR_EFBIG; what was committed before stays readable. */
Test(log, file_size_limit_is_a_clear_error_and_loses_nothing)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    append_n(log, 0, 20);
    msgr_log_close(log);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN); /* the error comes back as EFBIG instead of a signal */
        struct rlimit rl = {1 << 20, 1 << 20};
        if (setrlimit(RLIMIT_FSIZE, &rl))
            _exit(10);
        char big[160];
        snprintf(big, sizeof big, "%s.big", path);
        msgr_log_opts o = {.capacity = 1 << 22};
        msgr_log *b;
        if (msgr_log_create(big, &o, &b) != MSGR_EFBIG)
            _exit(11);
        if (access(big, F_OK) == 0)
            _exit(12); /* no half-made file left behind */
        msgr_region *g;
        msgr_region_opts ro = {.flags = MSGR_REGION_GROWABLE, .max_size = 8 << 20};
        if (msgr_region_create_file(big, 4096, &ro, &g))
            _exit(13);
        strcpy(msgr_region_base(g), "kept");
        if (msgr_region_grow(g, 4 << 20) != MSGR_EFBIG)
            _exit(14);
        if (strcmp(msgr_region_base(g), "kept") != 0)
            _exit(15);
        msgr_region_close(g);
        unlink(big);
        msgr_log *l;
        msgr_log_reader *rd;
        msgr_msg m;
        if (msgr_log_open(path, NULL, &l, NULL) || msgr_log_reader_open(l, "g", &rd))
            _exit(16);
        int n = 0;
        while (msgr_log_read_wait(rd, &m, 0) == 0)
            n++;
        _exit(n == 20 ? 0 : 17);
    }
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "child step %d failed", WEXITSTATUS(st));
}

/* Group "g" on log, lingering as asked (0: off). */
static msgr_log_reader *lingering_reader(msgr_log *log, unsigned min_batch, uint32_t pauses)
{
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    msgr_log_reader_set_linger(rd, min_batch, pauses);
    return rd;
}

static int take_it(void *arg, const msgr_msg *m)
{
    *(msgr_msg *)arg = *m;
    return 0;
}

/* As the ring's poll: a batch cut short by max does not make the next poll linger; a dry one
 * under min_batch does. */
Test(log, poll_lingers_only_after_running_dry)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    msgr_log_reader *rd = lingering_reader(log, 8, 1);
    cr_assert_eq(msgr_log_reader_lingers(NULL), 0);
    msgr_msg last;
    append_n(log, 0, 20);
    cr_assert_eq(msgr_log_poll(rd, take_it, &last, 5), 5);
    uint64_t base = msgr_log_reader_lingers(rd);
    cr_assert_eq(msgr_log_poll(rd, take_it, &last, 5), 5);
    cr_assert_eq(msgr_log_reader_lingers(rd), base, "no linger after a batch cut short by max");
    cr_assert_eq(msgr_log_poll(rd, take_it, &last, 100), 10, "the rest, then dry");
    cr_assert_eq(last.type, 19, "in order, to the last");
    cr_assert_eq(msgr_log_poll(rd, take_it, &last, 100), 0);
    cr_assert_eq(msgr_log_reader_lingers(rd), base, "nor after a dry batch of min_batch or more");
    cr_assert_eq(msgr_log_poll(rd, take_it, &last, 100), 0);
    cr_assert_eq(msgr_log_reader_lingers(rd), base + 1, "after a dry batch under it, it does");
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

/* Linger only delays a waiting read that follows a short run: nothing is lost, reordered or
 * held past its timeout, one thread or two. */
Test(log, linger_keeps_every_record_in_order)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    msgr_log_reader *rd = lingering_reader(log, 16, 64);
    msgr_log_reader_set_linger(NULL, 16, 64); /* accepted, does nothing */
    append_n(log, 0, 1);
    expect_n(rd, 0, 1, 1); /* a lone record is handed over */
    msgr_msg m;
    cr_assert_eq(msgr_log_read_wait(rd, &m, 1000000), MSGR_ETIMEDOUT, "an empty log still times out");
    append_n(log, 1, 40);
    expect_n(rd, 1, 40, 1);
    msgr_log_reader_set_linger(rd, 0, 64); /* off */
    append_n(log, 41, 1);
    expect_n(rd, 41, 1, 1);
    expect_empty(rd);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

static void *linger_appender(void *arg)
{
    msgr_log *log = arg;
    for (uint64_t v = 0; v < 200000; v++)
        if (msgr_log_append_wait(log, 1, &v, sizeof v, 5000000000ll))
            return (void *)1;
    return NULL;
}

/* Another thread appends the numbers 0..199999, 8 bytes each. */
static pthread_t start_appender(msgr_log *log)
{
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, linger_appender, log), 0);
    return th;
}

static void join_appender(pthread_t th)
{
    void *res;
    pthread_join(th, &res);
    cr_assert_null(res, "the appender failed");
}

Test(log, linger_between_threads_delivers_everything_in_order)
{
    msgr_log *log = create(1 << 14, MSGR_SYNC_NONE);
    msgr_log_reader *rd = lingering_reader(log, 16, 16);
    pthread_t th = start_appender(log);
    for (uint64_t want = 0; want < 200000; want++) {
        msgr_msg m;
        uint64_t v = UINT64_MAX;
        int rc = msgr_log_read_wait(rd, &m, 5000000000ll);
        cr_assert_eq(rc, 0, "read %lu: %s", (unsigned long)want, msgr_strerror(rc));
        cr_assert_eq(m.len, sizeof v);
        memcpy(&v, m.data, sizeof v);
        cr_assert_eq(v, want, "record %lu arrived as %lu", (unsigned long)want, (unsigned long)v);
        if ((want & 31) == 31) /* the small log fills unless space is handed back */
            cr_assert_eq(msgr_log_ack(rd, &m), 0);
    }
    join_appender(th);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

typedef struct {
    uint64_t next, bad, stop_at;
    msgr_msg last;
} poll_check;

static int poll_one(void *arg, const msgr_msg *m)
{
    poll_check *k = arg;
    uint64_t v = UINT64_MAX;
    if (m->len == sizeof v)
        memcpy(&v, m->data, sizeof v);
    k->bad += v != k->next;
    k->next++;
    k->last = *m;
    return k->next == k->stop_at;
}

/* The batch read: order, max, a handler that stops early, acknowledgement of the batch, errors. */
Test(log, poll_hands_over_batches_in_order)
{
    msgr_log *log = create(1 << 16, MSGR_SYNC_NONE);
    msgr_log_reader *rd = lingering_reader(log, 0, 0);
    poll_check k = {0};
    cr_assert_eq(msgr_log_poll(NULL, poll_one, &k, 8), MSGR_EINVAL);
    cr_assert_eq(msgr_log_poll(rd, NULL, &k, 8), MSGR_EINVAL);
    cr_assert_eq(msgr_log_poll(rd, poll_one, &k, 8), 0, "empty");
    for (uint64_t v = 0; v < 20; v++)
        cr_assert_eq(msgr_log_append_wait(log, 1, &v, sizeof v, 0), 0);
    cr_assert_eq(msgr_log_poll(rd, poll_one, &k, 8), 8, "at most max");
    k.stop_at = 11;
    cr_assert_eq(msgr_log_poll(rd, poll_one, &k, 8), 3, "the handler stops after its record");
    k.stop_at = 0;
    cr_assert_eq(msgr_log_ack(rd, &k.last), 0);
    cr_assert_eq(msgr_log_reader_acked(rd), msgr_log_seq(&k.last) + k.last.size_);
    msgr_log_reader_set_linger(rd, 32, 16);
    cr_assert_eq(msgr_log_poll(rd, poll_one, &k, 100), 9, "the rest");
    msgr_msg m;
    cr_assert_eq(msgr_log_read_wait(rd, &m, 0), MSGR_EAGAIN, "poll moved the read position");
    cr_assert_eq(k.next, 20);
    cr_assert_eq(k.bad, 0);
    cr_assert_eq(msgr_log_ack(rd, &k.last), 0);
    cr_assert_eq(msgr_log_reader_acked(rd), msgr_log_end(log), "nothing pending");
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log, poll_between_threads_delivers_everything_in_order)
{
    msgr_log *log = create(1 << 14, MSGR_SYNC_NONE);
    msgr_log_reader *rd = lingering_reader(log, 16, 16);
    pthread_t th = start_appender(log);
    poll_check k = {0};
    while (k.next < 200000) {
        int n = msgr_log_poll(rd, poll_one, &k, 64);
        cr_assert_geq(n, 0, "poll: %s", msgr_strerror(n));
        if (n > 0) {
            cr_assert_eq(msgr_log_ack(rd, &k.last), 0); /* the small log fills otherwise */
            continue;
        }
        msgr_msg m;
        int rc = msgr_log_read_wait(rd, &m, 5000000000ll);
        cr_assert_eq(rc, 0, "read after %lu: %s", (unsigned long)k.next, msgr_strerror(rc));
        poll_one(&k, &m);
        cr_assert_eq(msgr_log_ack(rd, &m), 0);
    }
    join_appender(th);
    cr_assert_eq(k.bad, 0, "%lu records out of order", (unsigned long)k.bad);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}

Test(log, a_huge_linger_still_honours_timeouts)
{
    msgr_log *log = create(1 << 14, MSGR_SYNC_NONE);
    msgr_log_reader *rd = lingering_reader(log, 1, UINT32_MAX);
    msgr_msg m;
    poll_check k = {0};
    uint64_t t0 = tu_now_ns();
    cr_assert_eq(msgr_log_read_wait(rd, &m, 10000000), MSGR_ETIMEDOUT);
    cr_assert_eq(msgr_log_poll(rd, poll_one, &k, 8), 0);
    uint64_t ms = (tu_now_ns() - t0) / 1000000;
    cr_assert_lt(ms, 1000, "a 10 ms wait and an empty poll took %lu ms", (unsigned long)ms);
    msgr_log_reader_close(rd);
    msgr_log_close(log);
}
