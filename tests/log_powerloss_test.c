/* Simulated power loss for the file log, sync `always` and `batch`. msync() is intercepted
 * (this program defines it, so the library's calls land here first): at each sync the test
 * copies the synced pages into an image of the file as the disk holds it. A crash state is that
 * image plus a random subset of the pages written since (some torn at 512-byte sectors, as a
 * disk may leave them). Thousands of such states are opened (recovery) and scanned: a record
 * whose commit returned under `always`, or that a batch sync covered, is never lost; no record
 * that was not committed, or not whole, is ever returned; nothing crashes (run under ASan). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log_util.h"
#include "../bus/log_internal.h"

static uint8_t *disk;          /* the file as the disk holds it */
static const uint8_t *mapping; /* the log's mapping of the file (offset 0) */
static size_t file_size;
static uint64_t committing;    /* records committed once the commit in progress is */
static uint64_t durable;       /* records a sync has covered */

int msync(void *addr, size_t len, int flags)
{
    const uint8_t *a = addr;
    if (mapping && a >= mapping && a < mapping + file_size) {
        size_t off = (size_t)(a - mapping), n = len < file_size - off ? len : file_size - off;
        memcpy(disk + off, a, n);
        durable = committing;
    }
    return (int)syscall(SYS_msync, addr, len, flags);
}

static char crash_path[160];
static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static size_t rec_len(uint64_t n) { return 8 + (size_t)(tu_mix(n) % 193); }

static void fill(uint8_t *p, uint64_t n, size_t len)
{
    memcpy(p, &n, 8);
    for (size_t i = 8; i < len; i++)
        p[i] = (uint8_t)(n * 131 + i * 7);
}

static int whole(const msgr_msg *m, uint64_t *n)
{
    if (m->len < 8)
        return 0;
    memcpy(n, m->data, 8);
    if (m->len != rec_len(*n))
        return 0;
    for (size_t i = 8; i < m->len; i++)
        if (((const uint8_t *)m->data)[i] != (uint8_t)(*n * 131 + i * 7))
            return 0;
    return 1;
}

/* Builds one crash state, opens it and checks it; returns the records it held. */
static uint64_t check_state(uint64_t committed)
{
    static uint8_t state[1 << 20];
    cr_assert_leq(file_size, sizeof state);
    memcpy(state, disk, file_size);
    size_t page = 4096;
    for (size_t off = 0; off < file_size; off += page) {
        if (!memcmp(disk + off, mapping + off, page) || (next_rand() & 1))
            continue; /* clean, or this dirty page did not reach the disk */
        if (next_rand() % 4) {
            memcpy(state + off, mapping + off, page);
        } else { /* torn: some of its sectors only */
            for (size_t s = 0; s < page; s += 512)
                if (next_rand() & 1)
                    memcpy(state + off + s, mapping + off + s, 512);
        }
    }
    int fd = open(crash_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, state, file_size, 0), (ssize_t)file_size);
    close(fd);
    msgr_log *log;
    msgr_log_recovery rep;
    int rc = msgr_log_open(crash_path, NULL, &log, &rep);
    cr_assert_eq(rc, 0, "a crash state does not open: %s", msgr_strerror(rc));
    /* Every durable record, in order, then possibly some later ones (a record not yet synced
     * may be lost while a later one on another page survived: recovery keeps what is whole). */
    uint64_t cursor = 0, n = 0, got = 0, next = 0;
    msgr_msg m;
    while ((rc = msgr_log_scan(log, &cursor, &m)) == 0) {
        cr_assert(whole(&m, &n), "a record that is not whole was returned (seq %lu)",
                  (unsigned long)msgr_log_seq(&m));
        cr_assert_lt(n, committed, "a record never committed was returned");
        cr_assert_geq(n, next, "record %lu out of order", (unsigned long)n);
        cr_assert(n == next || next >= durable, "durable record %lu lost (found %lu next)",
                  (unsigned long)next, (unsigned long)n);
        next = n + 1;
        got++;
    }
    cr_assert_eq(rc, MSGR_EAGAIN, "scan: %s", msgr_strerror(rc));
    cr_assert_geq(next, durable, "durable records lost: the log ends at %lu of %lu",
                  (unsigned long)next, (unsigned long)durable);
    msgr_log_close(log);
    return got;
}

static void run(uint32_t sync, uint32_t batch_records, int states_per_commit)
{
    snprintf(crash_path, sizeof crash_path, "%s.crash", path);
    msgr_log_opts o = {.capacity = 1 << 16, .sync = sync, .batch_records = batch_records,
                       .batch_ms = 3600000};
    msgr_log *log;
    cr_assert_eq(msgr_log_create(path, &o, &log), 0);
    msgr_log_close(log);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    file_size = (size_t)st.st_size;
    disk = malloc(file_size);
    int fd = open(path, O_RDONLY);
    cr_assert_eq(pread(fd, disk, file_size, 0), (ssize_t)file_size); /* a clean start */
    close(fd);
    durable = committing = 0;
    log = reopen(NULL);
    mapping = (const uint8_t *)msgr_region_base(log->region) - 256;
    uint8_t buf[256];
    uint64_t states = 0, held = 0;
    for (uint64_t n = 0; n < 300; n++) {
        size_t len = rec_len(n);
        fill(buf, n, len);
        msgr_claim c;
        int rc = msgr_log_claim_wait(log, len, &c, 0);
        cr_assert_eq(rc, 0, "claim %lu: %s", (unsigned long)n, msgr_strerror(rc));
        memcpy(c.data, buf, len);
        committing = n + 1;
        cr_assert_eq(msgr_log_commit(log, &c), 0);
        if (sync == MSGR_SYNC_ALWAYS)
            cr_assert_eq(durable, n + 1, "always: synced before commit returned");
        for (int k = 0; k < states_per_commit; k++, states++)
            held += check_state(n + 1);
    }
    cr_assert_geq(states, 2000);
    mapping = NULL;
    msgr_log_close(log);
    free(disk);
    unlink(crash_path);
    cr_log_info("%lu crash states, %lu records held in all", (unsigned long)states,
                (unsigned long)held);
}

TestSuite(log_powerloss, .init = setup, .fini = teardown, .timeout = 300);

Test(log_powerloss, sync_always_loses_nothing_whose_commit_returned) { run(MSGR_SYNC_ALWAYS, 0, 8); }

Test(log_powerloss, sync_batch_loses_nothing_a_sync_covered) { run(MSGR_SYNC_BATCH, 16, 8); }
