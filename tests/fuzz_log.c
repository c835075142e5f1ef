/* libFuzzer target: arbitrary bytes as a log file; opening, recovery, reading, scanning and
 * stat must never crash or misbehave under ASan/UBSan (make fuzz). */
#define _GNU_SOURCE
#include <messenger.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

static void remove_file(void) { unlink(path); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/dev/shm/msgr-fuzz-%d.log", (int)getpid());
        atexit(remove_file);
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    close(fd);
    msgr_log *log;
    msgr_log_opts o = {.claim_timeout_ns = 1};
    if (msgr_log_open(path, &o, &log, NULL) == 0) {
        msgr_log_reader *rd;
        if (msgr_log_reader_open(log, "fuzz", &rd) == 0) {
            msgr_msg m;
            for (int i = 0; i < 10000 && msgr_log_read_wait(rd, &m, 0) == 0; i++)
                msgr_log_ack(rd, &m);
            msgr_log_reader_close(rd);
        }
        msgr_log_stats st;
        msgr_log_stats_get(log, &st);
        uint64_t cursor = 0;
        msgr_msg m;
        for (int i = 0; i < 10000 && msgr_log_scan(log, &cursor, &m) == 0; i++)
            ;
        char small[16];
        msgr_log_append_wait(log, 1, small, sizeof small, 0);
        msgr_log_close(log);
    }
    return 0;
}
