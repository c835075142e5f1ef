/* Writes a small valid log (with records, a group and a wrapped ring) as the fuzzer's seed;
 * with a second argument `single`, a single-producer log (flags set).
 *   fuzz_seed PATH [single] */
#include <messenger.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2 && (argc != 3 || strcmp(argv[2], "single")))
        return 2;
    msgr_log_opts o = {.capacity = 4096, .max_groups = 2, .max_producers = 2,
                       .flags = argc == 3 ? MSGR_LOG_SINGLE_PRODUCER : 0};
    msgr_log *log;
    remove(argv[1]);
    if (msgr_log_create(argv[1], &o, &log))
        return 1;
    msgr_log_reader *rd;
    msgr_log_reader_open(log, "fuzz", &rd);
    char buf[100];
    for (int i = 0; i < 60; i++) {
        memset(buf, i, sizeof buf);
        msgr_log_append_wait(log, 1, buf, (size_t)(8 + i % 90), 0);
        msgr_msg m;
        if (i % 2 && msgr_log_read_wait(rd, &m, 0) == 0)
            msgr_log_ack(rd, &m);
    }
    msgr_claim c;
    msgr_log_claim_wait(log, 20, &c, 0); /* an open claim, as a crash leaves it */
    msgr_log_reader_close(rd);
    msgr_log_close(log);
    return 0;
}
