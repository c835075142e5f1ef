/* msgr: create, feed, read and inspect persistent bus files from the command line.
 *
 *   msgr create FILE [--capacity BYTES] [--sync none|batch|always] [--single-producer]
 *   msgr pub    FILE --count N [--size BYTES] [--start K]
 *   msgr sub    FILE [--group NAME] [--count N] [--idle-ms T]
 *   msgr stat   FILE
 *   msgr dump   FILE [--from SEQ] [--limit N]
 *   msgr clear  FILE
 *   msgr ls
 *   msgr rm     NAME [--force]
 *
 * Every command also takes --claim-timeout-ms T: how long a reader waits on an unfinished claim
 * before checking whether its producer died (default 1000).
 *
 * Payload of message number n (pub writes it, sub verifies it): n as 8 little-endian bytes,
 * then byte i (i >= 8) = (n * 131 + i * 7) mod 256.
 */
#define _GNU_SOURCE
#include <messenger.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _WIN32
#include <io.h>
#include <windows.h>
#define isatty _isatty
static void sleep_ns(uint64_t ns) { Sleep((DWORD)(ns / 1000000)); }
static uint64_t now_ns(void) { return GetTickCount64() * 1000000u; }
#else
#include <unistd.h>
static void sleep_ns(uint64_t ns)
{
    struct timespec d = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&d, NULL);
}
static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
#endif

static const char *usage_text[] = {
    "create", "msgr create FILE [--capacity BYTES] [--sync none|batch|always] [--single-producer]\n"
              "  Creates a bus file (capacity: data bytes, a power of two, default 16777216;\n"
              "  sync: none survives process crashes, batch syncs every 10 ms or 1000 records,\n"
              "  always syncs before each commit returns). --single-producer: one process at\n"
              "  a time appends (faster appends; a second msgr pub fails while one runs).",
    "pub", "msgr pub FILE --count N [--size BYTES] [--start K]\n"
           "  Publishes N messages numbered K..K+N-1 (default K=0, size 64, minimum 8). Payload:\n"
           "  the number as 8 little-endian bytes, then byte i = (number*131 + i*7) mod 256.\n"
           "  Exits 0 when all are committed. Several may run at once on one file.",
    "sub", "msgr sub FILE [--group NAME] [--count N] [--idle-ms T]\n"
           "  Receives in order as group NAME (default \"default\"), verifies each payload,\n"
           "  prints its number on its own line, then acknowledges it. Stops after N messages\n"
           "  or after T ms with nothing new. A payload failing verification is reported on\n"
           "  stderr and the exit status is 1.",
    "stat", "msgr stat FILE|BUS [--json]\n"
            "  For a log file: prints header, positions, sequence range and per-group\n"
            "  acknowledged position and lag as `key: value` lines; --json prints one JSON\n"
            "  object instead (the same keys, groups as an array of {name, acked_seq, lag,\n"
            "  reader_pid}). For a runtime bus (a registered name, a shared-memory name or a\n"
            "  bus file): bus, kind, app, workers, then per worker worker.NAME.KEY lines for\n"
            "  pid, alive, received, sent, unhandled, rejected, dropped, unrouted, send_errors,\n"
            "  to_absent, queued (messages) and queued_bytes (its group's lag on a file bus);\n"
            "  --json: {bus, kind, app, workers: [{name, pid, alive, received, ...}]}.",
    "top", "msgr top BUS [--interval-ms T] [--count K]\n"
           "  Redraws a runtime bus's workers every T ms (default 1000), K times (default: until\n"
           "  interrupted): per worker its process and whether it lives, messages in and out\n"
           "  per second since the last redraw, queue depth in messages and bytes.",
    "dump", "msgr dump FILE [--from SEQ] [--limit N]\n"
            "  Prints one line per committed record, from sequence number SEQ.",
    "clear", "msgr clear FILE\n"
             "  Drops everything pending (every group jumps to the end) and prints how many\n"
             "  records the slowest group had not acknowledged.",
    "ls", "msgr ls [--json]\n"
          "  Lists the messenger objects in named shared memory, one per line:\n"
          "  NAME SIZE USERS STATE, where USERS is how many live processes map it and STATE\n"
          "  is live, stale (no live process maps it) or half-made (left by a creator that\n"
          "  died midway). USERS is ? where this system cannot tell. Then the buses in the\n"
          "  name registry, one per line: registered NAME KIND LOCATION APP STATE PIDS, where\n"
          "  KIND is shm or file, STATE live or stale (every process dead) and PIDS the\n"
          "  processes recorded, comma-separated. --json prints one object instead:\n"
          "  {\"shm\": [{name, size, users, state}], \"registered\": [{name, kind, location,\n"
          "  app, schema, state, procs: [{pid, alive}]}]} (users is -1 where unknown).",
    "rm", "msgr rm NAME [--force]\n"
          "  Removes shared-memory object NAME (as msgr ls names it). Refuses one that a live\n"
          "  process maps (exit status 1) unless --force; processes that map it keep it.",
};
#define N_CMDS (sizeof usage_text / sizeof *usage_text / 2)

static void usage_all(FILE *f)
{
    fprintf(f, "usage: msgr COMMAND FILE [OPTIONS]   (msgr COMMAND --help for one command)\n\n");
    for (size_t i = 0; i < N_CMDS; i++)
        fprintf(f, "%s\n\n", usage_text[2 * i + 1]);
}

static int usage_of(const char *cmd, FILE *f)
{
    for (size_t i = 0; i < N_CMDS; i++)
        if (!strcmp(cmd, usage_text[2 * i])) {
            fprintf(f, "usage: %s\n", usage_text[2 * i + 1]);
            return 0;
        }
    return 1;
}

static int fail(const char *file, int rc)
{
    fprintf(stderr, "msgr: %s: %s\n", file, msgr_strerror(rc));
    return 1;
}

static int bad_usage(const char *cmd, const char *why)
{
    fprintf(stderr, "msgr %s: %s\n", cmd, why);
    usage_of(cmd, stderr);
    return 2;
}

/* Parses a decimal unsigned number; 0 on success. */
static int num(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static unsigned char pattern(uint64_t n, size_t i) { return (unsigned char)(n * 131 + i * 7); }

static void fill(unsigned char *p, uint64_t n, size_t len)
{
    for (size_t i = 0; i < 8; i++)
        p[i] = (unsigned char)(n >> (8 * i));
    for (size_t i = 8; i < len; i++)
        p[i] = pattern(n, i);
}

/* Returns the number in the payload, or sets *bad. */
static uint64_t verify(const unsigned char *p, size_t len, int *bad)
{
    uint64_t n = 0;
    if (len < 8) {
        *bad = 1;
        return 0;
    }
    for (size_t i = 0; i < 8; i++)
        n |= (uint64_t)p[i] << (8 * i);
    for (size_t i = 8; i < len; i++)
        if (p[i] != pattern(n, i)) {
            *bad = 1;
            break;
        }
    return n;
}

typedef struct args {
    const char *file, *group, *sync;
    uint64_t capacity, count, size, start, idle_ms, from, limit, claim_timeout_ms, interval_ms;
    int has_count, has_idle, has_limit, single, force, json;
} args;

static int parse(const char *cmd, int argc, char **argv, args *a)
{
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage_of(cmd, stdout);
            exit(0);
        }
        if (o[0] != '-') {
            if (a->file)
                return bad_usage(cmd, "more than one FILE");
            a->file = o;
            continue;
        }
        if (!strcmp(o, "--single-producer")) {
            a->single = 1;
            continue;
        }
        if (!strcmp(o, "--force")) {
            a->force = 1;
            continue;
        }
        if (!strcmp(o, "--json")) {
            a->json = 1;
            continue;
        }
        int ok = 1;
        if (!strcmp(o, "--capacity"))
            ok = num(v, &a->capacity) == 0;
        else if (!strcmp(o, "--count"))
            ok = num(v, &a->count) == 0, a->has_count = 1;
        else if (!strcmp(o, "--size"))
            ok = num(v, &a->size) == 0;
        else if (!strcmp(o, "--start"))
            ok = num(v, &a->start) == 0;
        else if (!strcmp(o, "--idle-ms"))
            ok = num(v, &a->idle_ms) == 0, a->has_idle = 1;
        else if (!strcmp(o, "--from"))
            ok = num(v, &a->from) == 0;
        else if (!strcmp(o, "--limit"))
            ok = num(v, &a->limit) == 0, a->has_limit = 1;
        else if (!strcmp(o, "--interval-ms"))
            ok = num(v, &a->interval_ms) == 0 && a->interval_ms > 0;
        else if (!strcmp(o, "--claim-timeout-ms"))
            ok = num(v, &a->claim_timeout_ms) == 0 && a->claim_timeout_ms > 0;
        else if (!strcmp(o, "--group"))
            ok = (a->group = v) != NULL;
        else if (!strcmp(o, "--sync"))
            ok = (a->sync = v) != NULL;
        else {
            char why[128];
            snprintf(why, sizeof why, "unknown option %s", o);
            return bad_usage(cmd, why);
        }
        if (!ok) {
            char why[128];
            snprintf(why, sizeof why, "%s needs a %s", o,
                     (!strcmp(o, "--group") || !strcmp(o, "--sync")) ? "value" : "number");
            return bad_usage(cmd, why);
        }
        i++;
    }
    if (!a->file && strcmp(cmd, "ls") != 0)
        return bad_usage(cmd, strcmp(cmd, "rm") ? "FILE is missing" : "NAME is missing");
    if (a->file && strcmp(cmd, "ls") == 0)
        return bad_usage(cmd, "takes no FILE");
    return 0;
}

static int cmd_create(args *a)
{
    msgr_log_opts o = {.capacity = a->capacity,
                       .flags = a->single ? MSGR_LOG_SINGLE_PRODUCER : 0};
    if (a->sync) {
        if (!strcmp(a->sync, "none"))
            o.sync = MSGR_SYNC_NONE;
        else if (!strcmp(a->sync, "batch"))
            o.sync = MSGR_SYNC_BATCH;
        else if (!strcmp(a->sync, "always"))
            o.sync = MSGR_SYNC_ALWAYS;
        else
            return bad_usage("create", "--sync is none, batch or always");
    }
    msgr_log *log;
    int rc = msgr_log_create(a->file, &o, &log);
    if (rc == MSGR_EINVAL)
        return bad_usage("create", "--capacity must be a power of two, at least 4096");
    if (rc)
        return fail(a->file, rc);
    msgr_log_close(log);
    return 0;
}

static int open_log(const args *a, msgr_log **log)
{
    const char *file = a->file;
    msgr_log_recovery rep;
    msgr_log_opts o = {.claim_timeout_ns = (int64_t)a->claim_timeout_ms * 1000000};
    int rc = msgr_log_open(file, &o, log, &rep);
    if (rc)
        return fail(file, rc);
    if (rep.claims_skipped || rep.bytes_discarded)
        fprintf(stderr, "msgr: %s: recovered: %" PRIu64 " abandoned claims skipped, %" PRIu64
                        " bytes after the first invalid record discarded\n",
                file, rep.claims_skipped, rep.bytes_discarded);
    return 0;
}

static int cmd_pub(args *a)
{
    if (!a->has_count)
        return bad_usage("pub", "--count is required");
    size_t size = a->size ? (size_t)a->size : 64;
    if (size < 8)
        return bad_usage("pub", "--size is at least 8");
    if (a->count && a->count - 1 > UINT64_MAX - a->start)
        return bad_usage("pub", "--start + --count is above 2^64 - 1 (the numbers would wrap)");
    msgr_log *log;
    if (open_log(a, &log))
        return 1;
    for (uint64_t k = 0; k < a->count; k++) {
        uint64_t n = a->start + k; /* no wrap: checked above */
        msgr_claim c;
        int rc = msgr_log_claim_wait(log, size, &c, -1);
        if (rc == MSGR_EBUSY) {
            fprintf(stderr, "msgr: %s: a single-producer log, and another live process is "
                            "appending to it\n", a->file);
            msgr_log_close(log);
            return 1;
        }
        if (rc) {
            msgr_log_close(log);
            return fail(a->file, rc);
        }
        fill(c.data, n, size);
        c.type = 1;
        if ((rc = msgr_log_commit(log, &c))) {
            msgr_log_close(log);
            return fail(a->file, rc);
        }
    }
    msgr_log_close(log);
    return 0;
}

static int cmd_sub(args *a)
{
    msgr_log *log;
    if (open_log(a, &log))
        return 1;
    msgr_log_reader *rd;
    int rc = msgr_log_reader_open(log, a->group ? a->group : "default", &rd);
    if (rc) {
        msgr_log_close(log);
        return fail(a->file, rc);
    }
    int status = 0;
    int64_t timeout = a->has_idle ? (int64_t)a->idle_ms * 1000000 : -1;
    for (uint64_t got = 0; !a->has_count || got < a->count; got++) {
        msgr_msg m;
        rc = msgr_log_read_wait(rd, &m, timeout);
        if (rc == MSGR_ETIMEDOUT || rc == MSGR_EAGAIN)
            break;
        if (rc) {
            status = fail(a->file, rc);
            break;
        }
        int bad = 0;
        uint64_t n = verify(m.data, m.len, &bad);
        if (bad) {
            fprintf(stderr, "msgr: %s: record seq %" PRIu64 " (len %u) fails verification\n",
                    a->file, msgr_log_seq(&m), m.len);
            status = 1;
        } else {
            printf("%" PRIu64 "\n", n);
            fflush(stdout); /* printed before acknowledged: a crash redelivers, never loses */
        }
        if ((rc = msgr_log_ack(rd, &m))) {
            status = fail(a->file, rc);
            break;
        }
    }
    msgr_log_reader_close(rd);
    msgr_log_close(log);
    return status;
}

/* Prints s as a JSON string. */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void stat_json(args *a, msgr_log *log, const msgr_log_stats *st, const char *sync)
{
    printf("{\"file\": ");
    json_str(a->file);
    printf(", \"version\": %u, \"capacity\": %" PRIu64 ", \"sync\": \"%s\", \"start_seq\": %" PRIu64
           ", \"end_seq\": %" PRIu64 ", \"records\": %" PRIu64 ", \"pending\": %" PRIu64
           ", \"producers\": %u, \"max_groups\": %u, \"max_producers\": %u"
           ", \"single_producer\": %s",
           st->version, st->capacity, sync, st->start, st->end, st->records, st->pending,
           st->producers, st->max_groups, st->max_producers,
           (st->flags & MSGR_LOG_SINGLE_PRODUCER) ? "true" : "false");
    if (st->flags & MSGR_LOG_SINGLE_PRODUCER)
        printf(", \"appender_pid\": %d", (int)st->appender);
    printf(", \"groups\": [");
    int first = 1;
    for (uint32_t i = 0; i < st->max_groups; i++) {
        msgr_log_group_info g;
        if (msgr_log_group_get(log, i, &g) != 0)
            continue;
        printf("%s{\"name\": ", first ? "" : ", ");
        json_str(g.name);
        printf(", \"acked_seq\": %" PRIu64 ", \"lag\": %" PRIu64 ", \"reader_pid\": %d}",
               g.acked, g.lag, (int)g.owner);
        first = 0;
    }
    printf("]}\n");
}

/* ---- runtime buses ---- */

#define WMAX 256
static msgr_bus_worker_info workers[WMAX];

/* A runtime bus by what the user typed: a bus file, a registered name, or a shared-memory
 * name, in that order. 0, or a MSGR_E code (MSGR_ENOTMSGR: a file that is no bus). */
static int find_bus(const char *what, msgr_bus_info *info, const char **kind_word)
{
    int rc = msgr_bus_inspect(MSGR_REGION_FILE, what, info, workers, WMAX);
    if (rc != MSGR_ENOENT) {
        *kind_word = "file";
        return rc;
    }
    msgr_registry_entry e;
    if (msgr_registry_lookup(what, &e) == 0) {
        *kind_word = e.kind == MSGR_REGION_FILE ? "file" : "shm";
        return msgr_bus_inspect(0, what, info, workers, WMAX);
    }
    *kind_word = "shm";
    return msgr_bus_inspect(MSGR_REGION_SHM, what, info, workers, WMAX);
}

static void bus_json(const char *what, const msgr_bus_info *info, const char *kind)
{
    printf("{\"bus\": ");
    json_str(what);
    printf(", \"kind\": \"%s\", \"app\": ", kind);
    json_str(info->app);
    printf(", \"workers\": [");
    for (uint32_t i = 0; i < info->n_workers && i < WMAX; i++) {
        const msgr_counters *c = &workers[i].c;
        printf("%s{\"name\": ", i ? ", " : "");
        json_str(workers[i].name);
        printf(", \"pid\": %d, \"alive\": %s, \"received\": %" PRIu64 ", \"sent\": %" PRIu64
               ", \"unhandled\": %" PRIu64 ", \"rejected\": %" PRIu64 ", \"dropped\": %" PRIu64
               ", \"unrouted\": %" PRIu64 ", \"send_errors\": %" PRIu64 ", \"to_absent\": %" PRIu64
               ", \"queued\": %" PRIu64 ", \"queued_bytes\": %" PRIu64 "}",
               (int)c->pid, c->running ? "true" : "false", c->received, c->sent, c->unhandled,
               c->rejected, c->dropped, c->unrouted, c->send_errors, c->to_absent, c->queued,
               c->queued_bytes);
    }
    printf("]}\n");
}

static void bus_text(const char *what, const msgr_bus_info *info, const char *kind)
{
    printf("bus: %s\nkind: %s\napp: %s\nworkers: %u\n", what, kind, info->app, info->n_workers);
    for (uint32_t i = 0; i < info->n_workers && i < WMAX; i++) {
        const msgr_counters *c = &workers[i].c;
        const char *n = workers[i].name;
        printf("worker.%s.pid: %d\nworker.%s.alive: %s\n", n, (int)c->pid, n,
               c->running ? "yes" : "no");
#define KV(f) printf("worker.%s." #f ": %" PRIu64 "\n", n, c->f)
        KV(received);
        KV(sent);
        KV(unhandled);
        KV(rejected);
        KV(dropped);
        KV(unrouted);
        KV(send_errors);
        KV(to_absent);
        KV(queued);
        KV(queued_bytes);
#undef KV
    }
}

static int cmd_top(args *a)
{
    msgr_bus_info info;
    const char *kind;
    static uint64_t last_in[WMAX], last_out[WMAX];
    uint64_t every = a->interval_ms ? a->interval_ms : 1000;
    int tty = isatty(1);
    for (uint64_t k = 0; !a->has_count || k < a->count; k++) {
        uint64_t t0 = now_ns();
        int rc = find_bus(a->file, &info, &kind);
        if (rc)
            return fail(a->file, rc);
        if (tty)
            printf("\033[H\033[J");
        printf("msgr top %s: %s bus of application %s, every %" PRIu64 " ms\n", a->file, kind,
               info.app, every);
        printf("%-24s %8s %5s %12s %12s %10s %12s\n", "WORKER", "PID", "ALIVE", "IN/s", "OUT/s",
               "QUEUED", "QUEUED_B");
        for (uint32_t i = 0; i < info.n_workers && i < WMAX; i++) {
            const msgr_counters *c = &workers[i].c;
            uint64_t in = c->received + c->unhandled + c->rejected + c->dropped;
            double din = k ? (double)(in - last_in[i]) * 1000.0 / (double)every : 0;
            double dout = k ? (double)(c->sent - last_out[i]) * 1000.0 / (double)every : 0;
            last_in[i] = in;
            last_out[i] = c->sent;
            printf("%-24s %8d %5s %12.0f %12.0f %10" PRIu64 " %12" PRIu64 "\n", workers[i].name,
                   (int)c->pid, c->running ? "yes" : "no", din, dout, c->queued, c->queued_bytes);
        }
        fflush(stdout);
        if (a->has_count && k + 1 == a->count)
            break;
        uint64_t spent = now_ns() - t0, want = every * 1000000;
        if (spent < want) /* the redraw period: nothing to wait for but the clock */
            sleep_ns(want - spent);
    }
    return 0;
}

static int cmd_stat(args *a)
{
    msgr_bus_info info;
    const char *kind;
    int brc = find_bus(a->file, &info, &kind);
    if (brc == 0) {
        if (a->json)
            bus_json(a->file, &info, kind);
        else
            bus_text(a->file, &info, kind);
        return 0;
    }
    if (brc != MSGR_ENOTMSGR && brc != MSGR_ENOENT)
        return fail(a->file, brc);
    msgr_log *log;
    if (open_log(a, &log))
        return 1;
    msgr_log_stats st;
    msgr_log_stats_get(log, &st);
    static const char *sync[] = {"none", "batch", "always"};
    if (a->json) {
        stat_json(a, log, &st, sync[st.sync % 3]);
        msgr_log_close(log);
        return 0;
    }
    printf("file: %s\nversion: %u\ncapacity: %" PRIu64 "\nsync: %s\nstart_seq: %" PRIu64
           "\nend_seq: %" PRIu64 "\nrecords: %" PRIu64 "\npending: %" PRIu64
           "\nproducers: %u\ngroups: %u\nmax_groups: %u\nmax_producers: %u\n"
           "single_producer: %s\n",
           a->file, st.version, st.capacity, sync[st.sync % 3], st.start, st.end, st.records,
           st.pending, st.producers, st.groups, st.max_groups, st.max_producers,
           (st.flags & MSGR_LOG_SINGLE_PRODUCER) ? "yes" : "no");
    if (st.flags & MSGR_LOG_SINGLE_PRODUCER)
        printf("appender_pid: %d\n", (int)st.appender);
    for (uint32_t i = 0; i < st.max_groups; i++) {
        msgr_log_group_info g;
        if (msgr_log_group_get(log, i, &g) == 0)
            printf("group.%s.acked_seq: %" PRIu64 "\ngroup.%s.lag: %" PRIu64
                   "\ngroup.%s.reader_pid: %d\n",
                   g.name, g.acked, g.name, g.lag, g.name, (int)g.owner);
    }
    msgr_log_close(log);
    return 0;
}

static int cmd_dump(args *a)
{
    msgr_log *log;
    if (open_log(a, &log))
        return 1;
    uint64_t cursor = a->from, n = 0;
    msgr_msg m;
    int rc = 0;
    while ((!a->has_limit || n < a->limit) && (rc = msgr_log_scan(log, &cursor, &m)) == 0) {
        int bad = 0;
        uint64_t num = verify(m.data, m.len, &bad);
        printf("seq=%" PRIu64 " len=%u type=%u source=%u", msgr_log_seq(&m), m.len, m.type,
               m.source);
        if (!bad)
            printf(" number=%" PRIu64 "\n", num);
        else
            printf(" payload=opaque\n");
        n++;
    }
    msgr_log_close(log);
    return rc == MSGR_ECORRUPT ? fail(a->file, rc) : 0;
}

static int cmd_clear(args *a)
{
    msgr_log *log;
    if (open_log(a, &log))
        return 1;
    uint64_t dropped = 0;
    int rc = msgr_log_clear(log, &dropped);
    msgr_log_close(log);
    if (rc)
        return fail(a->file, rc);
    printf("dropped: %" PRIu64 "\n", dropped);
    return 0;
}

static const char *shm_state(const msgr_region_shm_info *o)
{
    return o->half_made ? "half-made" : o->users == 0 ? "stale" : "live";
}

static int cmd_ls(args *a)
{
    static msgr_region_shm_info list[1024];
    static msgr_registry_entry reg[256];
    uint32_t n = 0, nr = 0;
    int rc = msgr_region_list_shm(list, 1024, &n);
    if (rc)
        return fail("shared memory", rc);
    char dir[1024];
    int rrc = msgr_registry_dir(dir, sizeof dir);
    if (rrc == 0)
        rrc = msgr_registry_list(reg, 256, &nr);
    if (rrc && rrc != MSGR_ENOENT)
        fprintf(stderr, "msgr: the name registry: %s %s\n", msgr_strerror(rrc), msgr_last_error());
    if (n > 1024)
        fprintf(stderr, "msgr: %u more objects not shown\n", n - 1024);
    if (nr > 256)
        fprintf(stderr, "msgr: %u more registered buses not shown\n", nr - 256);
    n = n > 1024 ? 1024 : n;
    nr = rrc ? 0 : nr > 256 ? 256 : nr;
    if (a->json) {
        printf("{\"shm\": [");
        for (uint32_t i = 0; i < n; i++) {
            printf("%s{\"name\": ", i ? ", " : "");
            json_str(list[i].name);
            printf(", \"size\": %" PRIu64 ", \"users\": %d, \"state\": \"%s\"}", list[i].size,
                   (int)list[i].users, shm_state(&list[i]));
        }
        printf("], \"registered\": [");
        for (uint32_t i = 0; i < nr; i++) {
            const msgr_registry_entry *e = &reg[i];
            printf("%s{\"name\": ", i ? ", " : "");
            json_str(e->name);
            printf(", \"kind\": \"%s\", \"location\": ", e->kind == MSGR_REGION_FILE ? "file" : "shm");
            json_str(e->location);
            printf(", \"app\": ");
            json_str(e->app);
            printf(", \"schema\": \"%016" PRIx64 "\", \"state\": \"%s\", \"procs\": [", e->schema,
                   e->alive ? "live" : "stale");
            for (uint32_t k = 0; k < e->n_procs; k++)
                printf("%s{\"pid\": %d, \"alive\": %s}", k ? ", " : "", (int)e->procs[k].pid,
                       e->procs[k].alive ? "true" : "false");
            printf("]}");
        }
        printf("]}\n");
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        const msgr_region_shm_info *o = &list[i];
        char users[16];
        if (o->users < 0)
            snprintf(users, sizeof users, "?");
        else
            snprintf(users, sizeof users, "%d", (int)o->users);
        printf("%s %" PRIu64 " %s %s\n", o->name, o->size, users, shm_state(o));
    }
    for (uint32_t i = 0; i < nr; i++) {
        const msgr_registry_entry *e = &reg[i];
        printf("registered %s %s %s %s %s ", e->name, e->kind == MSGR_REGION_FILE ? "file" : "shm",
               e->location, e->app, e->alive ? "live" : "stale");
        for (uint32_t k = 0; k < e->n_procs; k++)
            printf("%s%d", k ? "," : "", (int)e->procs[k].pid);
        printf("\n");
    }
    return 0;
}

static int cmd_rm(args *a)
{
    int32_t users = 0;
    int rc = msgr_region_shm_users(a->file, &users);
    if (rc)
        return fail(a->file, rc);
    if (users != 0 && !a->force) {
        if (users > 0)
            fprintf(stderr, "msgr: %s: mapped by %d live process%s; not removed (--force "
                            "removes the name anyway)\n", a->file, (int)users,
                    users == 1 ? "" : "es");
        else
            fprintf(stderr, "msgr: %s: cannot tell whether a live process uses it; not "
                            "removed (--force removes it)\n", a->file);
        return 1;
    }
    if ((rc = msgr_region_unlink_shm(a->file)))
        return fail(a->file, rc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage_all(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    args a = {0};
    static const struct {
        const char *name;
        int (*fn)(args *);
    } cmds[] = {{"create", cmd_create}, {"pub", cmd_pub},   {"sub", cmd_sub},
                {"stat", cmd_stat},     {"dump", cmd_dump}, {"clear", cmd_clear},
                {"ls", cmd_ls},         {"rm", cmd_rm},     {"top", cmd_top}};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(cmd, cmds[i].name)) {
            int rc = parse(cmd, argc - 2, argv + 2, &a);
            return rc ? rc : cmds[i].fn(&a);
        }
    fprintf(stderr, "msgr: unknown command '%s'\n", cmd);
    usage_all(stderr);
    return 2;
}
