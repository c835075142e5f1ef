/* Corruption: a small log truncated at every offset, and thousands of random byte flips.
 * Opening must either recover a valid prefix (every record read back is intact and in order)
 * or fail with a clear error; never crash (run under ASan by `make sanitize`). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static char orig[128], work[128];
static unsigned char *image;
static size_t image_size;
#define RECORDS 40

static void setup(void)
{
    snprintf(orig, sizeof orig, "/tmp/msgr-corrupt-%d.orig", (int)getpid());
    snprintf(work, sizeof work, "/tmp/msgr-corrupt-%d.work", (int)getpid());
    unlink(orig);
    msgr_log_opts o = {.capacity = 4096, .max_groups = 2, .max_producers = 2};
    msgr_log *log;
    cr_assert_eq(msgr_log_create(orig, &o, &log), 0);
    char buf[128];
    for (uint64_t i = 0; i < RECORDS; i++) { /* ~60 bytes each: the 4 KiB ring wraps */
        size_t len = 8 + tu_len(9, i, 40);
        tu_fill(buf, 9, i, len);
        msgr_log_append_wait(log, 1, buf, len, 0);
        if (i == 25) { /* a group that acknowledged some, so start has moved */
            msgr_log_reader *rd;
            msgr_msg m;
            cr_assert_eq(msgr_log_reader_open(log, "g", &rd), 0);
            for (int k = 0; k < 20; k++)
                cr_assert_eq(msgr_log_read_wait(rd, &m, 0), 0);
            cr_assert_eq(msgr_log_ack(rd, &m), 0);
            msgr_log_reader_close(rd);
        }
    }
    msgr_log_close(log);
    FILE *f = fopen(orig, "rb");
    struct stat st;
    stat(orig, &st);
    image_size = (size_t)st.st_size;
    image = malloc(image_size);
    cr_assert_eq(fread(image, 1, image_size, f), image_size);
    fclose(f);
}

static void teardown(void)
{
    free(image);
    unlink(orig);
    unlink(work);
}

static void write_work(const unsigned char *data, size_t len)
{
    int fd = open(work, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static int known_error(int rc)
{
    return rc == MSGR_ENOTMSGR || rc == MSGR_ECORRUPT || rc == MSGR_EVERSION;
}

/* Opens the damaged copy; if it opens, everything readable must be intact and in order. */
static void open_and_check(const char *what, size_t at)
{
    msgr_log *log;
    msgr_log_opts o = {.claim_timeout_ns = 1};
    int rc = msgr_log_open(work, &o, &log, NULL);
    if (rc) {
        cr_assert(known_error(rc), "%s at %zu: unexpected %s", what, at, msgr_errname(rc));
        return;
    }
    msgr_log_reader *rd;
    rc = msgr_log_reader_open(log, "g", &rd);
    if (rc == 0) {
        msgr_msg m;
        int64_t last = -1;
        while ((rc = msgr_log_read_wait(rd, &m, 0)) == 0) {
            uint64_t seq = 0, sum = 0;
            cr_assert_geq(m.len, 8, "%s at %zu: short record", what, at);
            memcpy(&seq, m.data, 8);
            cr_assert_lt(seq, RECORDS, "%s at %zu: record number %lu", what, at,
                         (unsigned long)seq);
            cr_assert_gt((int64_t)seq, last, "%s at %zu: out of order", what, at);
            cr_assert_eq(m.len, 8 + tu_len(9, seq, 40), "%s at %zu: length", what, at);
            cr_assert_eq(tu_check(m.data, 9, seq, m.len, &sum), 0, "%s at %zu: damaged payload",
                         what, at);
            last = (int64_t)seq;
            msgr_log_ack(rd, &m);
        }
        cr_assert(rc == MSGR_EAGAIN || rc == MSGR_ECORRUPT, "%s at %zu: read gave %s", what,
                  at, msgr_errname(rc));
        msgr_log_reader_close(rd);
    }
    msgr_log_stats st;
    cr_assert_eq(msgr_log_stats_get(log, &st), 0);
    uint64_t cursor = 0;
    msgr_msg m;
    while (msgr_log_scan(log, &cursor, &m) == 0)
        ;
    msgr_log_close(log);
}

TestSuite(log_corruption, .init = setup, .fini = teardown, .timeout = 300);

Test(log_corruption, intact_copy_reads_back)
{
    write_work(image, image_size);
    open_and_check("intact", 0);
}

Test(log_corruption, truncation_at_every_offset)
{
    for (size_t at = 0; at < image_size; at++) {
        write_work(image, at);
        open_and_check("truncated", at);
    }
}

Test(log_corruption, random_byte_flips)
{
    unsigned char *copy = malloc(image_size);
    srand(12345);
    for (int i = 0; i < 4000; i++) {
        memcpy(copy, image, image_size);
        int flips = 1 + rand() % 3;
        size_t at = 0;
        for (int k = 0; k < flips; k++) {
            at = (size_t)rand() % image_size;
            copy[at] ^= (unsigned char)(1 + rand() % 255);
        }
        write_work(copy, image_size);
        open_and_check("flip", at);
    }
    free(copy);
}

Test(log_corruption, flips_in_the_record_area_never_pass_as_data)
{
    /* Aimed at the data area (after the headers), where records live. */
    unsigned char *copy = malloc(image_size);
    srand(777);
    size_t data_from = image_size - 4096;
    for (int i = 0; i < 3000; i++) {
        memcpy(copy, image, image_size);
        size_t at = data_from + (size_t)rand() % 4096;
        copy[at] ^= (unsigned char)(1u << (rand() % 8));
        write_work(copy, image_size);
        open_and_check("data flip", at);
    }
    free(copy);
}
