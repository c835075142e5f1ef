/* Helpers shared by the log tests: a log file per test process, appending and expecting
 * numbered records (payloads from test_util.h). */
#ifndef MSGR_LOG_UTIL_H
#define MSGR_LOG_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

#include "test_util.h"

static char path[128];

static void setup(void)
{
    snprintf(path, sizeof path, "/tmp/msgr-log-test-%d.log", (int)getpid());
    unlink(path);
}
static void teardown(void) { unlink(path); }

/* A new log at `path` with a 50 ms claim timeout. */
static inline msgr_log *create_flags(uint64_t capacity, uint32_t sync, uint32_t flags)
{
    msgr_log_opts o = {.capacity = capacity, .sync = sync, .claim_timeout_ns = 50000000,
                       .flags = flags};
    msgr_log *log;
    int rc = msgr_log_create(path, &o, &log);
    cr_assert_eq(rc, 0, "create: %s", msgr_strerror(rc));
    return log;
}

static inline msgr_log *create(uint64_t capacity, uint32_t sync)
{
    return create_flags(capacity, sync, 0);
}

static inline msgr_log *reopen(msgr_log_recovery *rep)
{
    msgr_log_opts o = {.claim_timeout_ns = 50000000};
    msgr_log *log;
    int rc = msgr_log_open(path, &o, &log, rep);
    cr_assert_eq(rc, 0, "open: %s", msgr_strerror(rc));
    return log;
}

static inline void append_n(msgr_log *log, uint64_t from, uint64_t n)
{
    char buf[512];
    for (uint64_t i = from; i < from + n; i++) {
        size_t len = tu_len(7, i, 300);
        tu_fill(buf, 7, i, len);
        int rc = msgr_log_append_wait(log, (uint16_t)i, buf, len, 0);
        cr_assert_eq(rc, 0, "append %lu: %s", (unsigned long)i, msgr_strerror(rc));
    }
}

/* Reads n records expecting numbers from..from+n-1; acknowledges if asked. */
static inline void expect_n(msgr_log_reader *rd, uint64_t from, uint64_t n, int ack)
{
    uint64_t sum = 0;
    for (uint64_t i = from; i < from + n; i++) {
        msgr_msg m;
        int rc = msgr_log_read_wait(rd, &m, 1000000000);
        cr_assert_eq(rc, 0, "read %lu: %s", (unsigned long)i, msgr_strerror(rc));
        size_t len = tu_len(7, i, 300);
        cr_assert_eq(m.len, len, "record %lu length", (unsigned long)i);
        cr_assert_eq(m.type, (uint16_t)i);
        cr_assert_eq(tu_check(m.data, 7, i, len, &sum), 0, "record %lu intact", (unsigned long)i);
        if (ack)
            cr_assert_eq(msgr_log_ack(rd, &m), 0);
    }
}

static inline void expect_empty(msgr_log_reader *rd)
{
    msgr_msg m;
    cr_assert_eq(msgr_log_read_wait(rd, &m, 0), MSGR_EAGAIN);
}

/* A new group reads exactly records 0..n-1 from the log, acknowledging them, then nothing. */
static inline void expect_whole_log(msgr_log *log, uint64_t n)
{
    msgr_log_reader *rd;
    cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
    expect_n(rd, 0, n, 1);
    expect_empty(rd);
    msgr_log_reader_close(rd);
}

#endif
