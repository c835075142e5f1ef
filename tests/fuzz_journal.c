/* libFuzzer target: a journal's files damaged at will. A valid journal (80 records in two
 * segments, one named reader) is made once as a template; each input patches one of its files
 * (the first segment, the last segment or the meta file): byte 0 picks the file (its bit 7:
 * cut the file short instead), bytes 1-2 give an offset (x2, little-endian), the rest is
 * written there. Opening, reading every record, seeking by sequence and by time, appending
 * and garbage collection must never crash, hang or misbehave under ASan/UBSan (make fuzz). */
#define _GNU_SOURCE
#include "test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FILES = 3 };
static char dir[64];
static char names[FILES][96];   /* first segment, last segment, meta */
static uint8_t *tmpl[FILES];
static size_t tmpl_len[FILES];

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        abort();
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spill(const char *path, const uint8_t *b, size_t n)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, b, n) != (ssize_t)n)
        abort();
    close(fd);
}

/* Removes every file of the journal directory (segments come and go with gc). */
static void empty_dir(void) { tu_empty_dir(dir); }

static void remove_dir(void)
{
    empty_dir();
    rmdir(dir);
}

/* The template: small segments so that two hold the records. */
static void make_template(void)
{
    snprintf(dir, sizeof dir, "/dev/shm/msgr-fuzzj-%d", (int)getpid());
    mkdir(dir, 0700);
    empty_dir();
    atexit(remove_dir);
    msgr_journal_opts o = {.segment_bytes = 64 * 1024, .max_readers = 2};
    msgr_journal *j;
    if (msgr_journal_open(dir, &o, &j))
        abort();
    char buf[3000];
    for (int i = 0; i < 80; i++) { /* ~120 KB: two segments of 64 KiB */
        memset(buf, i, sizeof buf);
        if (msgr_journal_append(j, 1, buf, (size_t)(i * 97 % 3000), NULL))
            abort();
    }
    msgr_journal_reader *rd;
    msgr_msg m;
    if (msgr_journal_reader_open(j, "fz", &rd) || msgr_journal_next(rd, &m) ||
        msgr_journal_ack(rd, &m))
        abort();
    msgr_journal_reader_close(rd);
    msgr_journal_close(j);
    snprintf(names[2], sizeof names[2], "%s/meta", dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    char first[64] = "", last[64] = "";
    while (d && (e = readdir(d)))
        if (!strncmp(e->d_name, "seg-", 4)) {
            if (!first[0] || strcmp(e->d_name, first) < 0)
                snprintf(first, sizeof first, "%s", e->d_name);
            if (strcmp(e->d_name, last) > 0)
                snprintf(last, sizeof last, "%s", e->d_name);
        }
    if (d)
        closedir(d);
    if (!first[0] || !strcmp(first, last))
        abort(); /* the template must have two segments */
    snprintf(names[0], sizeof names[0], "%s/%s", dir, first);
    snprintf(names[1], sizeof names[1], "%s/%s", dir, last);
    for (int i = 0; i < FILES; i++)
        tmpl[i] = slurp(names[i], &tmpl_len[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0])
        make_template();
    if (size < 3)
        return 0;
    int which = (data[0] & 0x7f) % FILES, cut = data[0] & 0x80;
    size_t off = ((size_t)data[1] | (size_t)data[2] << 8) * 2, n = size - 3;
    size_t len = cut ? (off < tmpl_len[which] ? off : tmpl_len[which])
                     : (off + n > tmpl_len[which] ? off + n : tmpl_len[which]);
    uint8_t *b = calloc(len + 1, 1);
    if (!b)
        abort();
    memcpy(b, tmpl[which], len < tmpl_len[which] ? len : tmpl_len[which]);
    if (!cut)
        memcpy(b + off, data + 3, n);
    empty_dir();
    for (int i = 0; i < FILES; i++)
        if (i == which)
            spill(names[i], b, len);
        else
            spill(names[i], tmpl[i], tmpl_len[i]);
    free(b);
    msgr_journal *j;
    /* A lock word naming a live process (this one, pid 1) waits this long, then MSGR_EBUSY. */
    msgr_journal_opts o = {.lock_timeout_ns = 1000000};
    if (msgr_journal_open(dir, &o, &j) == 0) {
        msgr_journal_reader *rd;
        if (msgr_journal_reader_open(j, "fz", &rd) == 0) {
            msgr_msg m;
            for (int i = 0; i < 1000 && msgr_journal_next(rd, &m) == 0; i++)
                msgr_journal_ack(rd, &m);
            msgr_journal_seek(rd, 0);
            for (int i = 0; i < 1000 && msgr_journal_next(rd, &m) == 0; i++)
                ;
            msgr_journal_seek_time(rd, 0);
            msgr_journal_next(rd, &m);
            msgr_journal_reader_close(rd);
        }
        char small[16] = {0};
        msgr_journal_append(j, 1, small, sizeof small, NULL);
        uint32_t deleted;
        msgr_journal_gc(j, &deleted);
        msgr_journal_close(j);
    }
    return 0;
}
