/* crash_test: producers and consumers of one bus file killed with SIGKILL at random instants,
 * many times; afterwards every producer's numbers must have been delivered without a gap up to
 * the last it committed, each first delivery in order, no payload failing verification, and
 * nothing pending. Drives the real `msgr` tool, as a user would.
 *
 *   crash_test [--kills N] [--msgr PATH] [--seed S] [--single-producer]   (make crash-test)
 *   crash_test --memory --peer PATH [--kills N] [--seed S]
 *
 * A quarter of the rounds stop the victim for up to 30 ms instead (SIGSTOP, SIGCONT): alive
 * but stalled past the claim timeout, it must be waited for.
 *
 * Two producers run at once, or with --single-producer one at a time on a single-producer log
 * (each new one takes the append lock its killed predecessor held).
 *
 * --memory: the same over an MPSC ring in named shared memory, driven by tests/ring_peer (pub
 * and sub modes). A producer killed inside a claim loses that record only (its claim is padded
 * after the claim timeout, 20 ms here); a consumer killed between printing and releasing a
 * record gets it again. The ring must end empty, and the shared memory is removed.
 *
 * Producer incarnation j publishes numbers j*10^9, j*10^9+1, ...; every consumer incarnation
 * reads as the same group and prints into its own file (a SIGKILL can cut a write short where
 * the file crosses a page boundary, so a killed consumer's last line may be partial: a line
 * without its newline is ignored). At the end a last consumer drains the bus; the files are
 * then checked, in order, range by range.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <messenger.h>

#define RANGE ((uint64_t)1000000000)
#define MAX_INCARNATIONS 100000

static const char *msgr = "build/bin/msgr";
static char bus[128], out[128];
static int nprod = 2; /* producers at once: 1 on a single-producer log */
static int memory;    /* --memory: a ring in shared memory, driven by ring_peer */
static const char *peer = "build/tests/ring_peer";
static char shm_name[64];

static pid_t spawn(char *const argv[], int out_fd)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (out_fd >= 0)
            dup2(out_fd, 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (out_fd < 0)
            dup2(devnull, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int consumers;
static long stops; /* SIGSTOP/SIGCONT pauses, besides the kills */
static uint64_t next_range;
static uint64_t ranges_started;

static pid_t start_producer(void)
{
    char start[32], size[16];
    snprintf(start, sizeof start, "%" PRIu64, next_range++ * RANGE);
    snprintf(size, sizeof size, "%d", 8 + rand() % 300);
    ranges_started++;
    if (memory) {
        char *pargv[] = {(char *)peer, shm_name, "pub", start, "200000", "20", NULL};
        return spawn(pargv, -1);
    }
    char *argv[] = {(char *)msgr, "pub", bus, "--count", "200000", "--size", size, "--start",
                    start, "--claim-timeout-ms", "20", NULL};
    return spawn(argv, -1);
}

static pid_t start_consumer(const char *idle)
{
    char *argv[] = {(char *)msgr, "sub", bus, "--group", "crash", "--claim-timeout-ms", "20",
                    idle ? "--idle-ms" : NULL, (char *)idle, NULL};
    char path[160];
    snprintf(path, sizeof path, "%s.%d", out, consumers++);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *pargv[] = {(char *)peer, shm_name, "sub", "20", (char *)idle, NULL};
    pid_t pid = spawn(memory ? pargv : argv, fd);
    close(fd);
    return pid;
}

static int check_exit(pid_t pid, int st, int killed, const char *what)
{
    if (killed && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        return 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    fprintf(stderr, "crash_test: %s %d ended badly (status %d)\n", what, (int)pid, st);
    return 1;
}

/* Reads one consumer's output; returns 1 on a gap, reordering or malformed line. */
static int check_output(const char *path, uint64_t *next, uint64_t *total, uint64_t *dups)
{
    FILE *f = fopen(path, "r");
    char line[64];
    uint64_t n;
    int bad = 0;
    while (f && !bad && fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n'))
            break; /* cut short by the kill: not acknowledged, so delivered again later */
        if (sscanf(line, "%" SCNu64, &n) != 1 || n / RANGE >= MAX_INCARNATIONS) {
            fprintf(stderr, "crash_test: %s: malformed output line: %s", path, line);
            bad = 1;
            break;
        }
        uint64_t r = n / RANGE, k = n % RANGE;
        if (k < next[r])
            (*dups)++; /* a redelivery (at-least-once) */
        else if (k == next[r])
            next[r]++;
        else {
            fprintf(stderr, "crash_test: range %" PRIu64 ": got %" PRIu64 " before %" PRIu64
                            " (a gap or out of order)\n", r, k, next[r]);
            bad = 1;
        }
        (*total)++;
    }
    if (f)
        fclose(f);
    return bad;
}

/* The kill loop shared by both modes: kills a random producer or the consumer at random
 * instants and starts a new one. Returns 1 on a child that ended badly. */
static int kill_loop(long kills, pid_t *prod, pid_t *cons, long *done, long *prod_kills,
                     long *cons_kills)
{
    int bad = 0, st;
    while (*done < kills && !bad) {
        struct timespec ts = {0, (long)(1 + rand() % 15) * 1000000L}; /* a random instant */
        nanosleep(&ts, NULL);
        int victim = rand() % (nprod + 1);
        pid_t *p = victim < nprod ? &prod[victim] : cons;
        /* Children that ended on their own (a producer done with its count) are replaced. */
        for (int i = 0; i < nprod; i++)
            if (waitpid(prod[i], &st, WNOHANG) == prod[i]) {
                bad |= check_exit(prod[i], st, 0, "producer");
                prod[i] = start_producer();
            }
        if (rand() % 4 == 0) {
            /* Stopped, not killed: a live process holding a claim (or asleep) for up to 30 ms,
             * past the 20 ms claim timeout; it must be waited for, never taken for dead. */
            kill(*p, SIGSTOP);
            struct timespec pause_ts = {0, (long)(1 + rand() % 30) * 1000000L};
            nanosleep(&pause_ts, NULL);
            kill(*p, SIGCONT);
            stops++;
            continue;
        }
        kill(*p, SIGKILL);
        waitpid(*p, &st, 0);
        bad |= check_exit(*p, st, 1, victim < nprod ? "producer" : "consumer");
        if (victim < nprod) {
            *p = start_producer();
            (*prod_kills)++;
        } else {
            *p = start_consumer(NULL);
            (*cons_kills)++;
        }
        (*done)++;
    }
    return bad;
}

/* Checks every consumer's output file; returns 1 on a gap or a malformed line. */
static int check_outputs(uint64_t *delivered, uint64_t *dups)
{
    uint64_t *next = calloc(MAX_INCARNATIONS, sizeof *next), total = 0;
    int bad = !next;
    for (int c = 0; c < consumers && !bad; c++) {
        char path[160];
        snprintf(path, sizeof path, "%s.%d", out, c);
        bad |= check_output(path, next, &total, dups);
    }
    *delivered = 0;
    for (uint64_t r = 0; next && r < next_range && r < MAX_INCARNATIONS; r++)
        *delivered += next[r];
    free(next);
    return bad;
}

static void remove_outputs(void)
{
    for (int c = 0; c < consumers; c++) {
        char path[160];
        snprintf(path, sizeof path, "%s.%d", out, c);
        unlink(path);
    }
}

static int run_memory(long kills, unsigned seed)
{
    srand(seed);
    snprintf(shm_name, sizeof shm_name, "msgr-crash-%d", (int)getpid());
    snprintf(out, sizeof out, "/tmp/msgr-crash-%d.out", (int)getpid());
    msgr_region *g;
    msgr_ring *r;
    uint64_t cap = 1 << 16;
    int rc = msgr_region_create_shm(shm_name, msgr_ring_footprint(cap), NULL, &g);
    msgr_ring_opts o = {.capacity = cap, .flags = MSGR_RING_MPSC};
    if (rc || (rc = msgr_ring_create(msgr_region_base(g), msgr_region_size(g), &o, &r))) {
        fprintf(stderr, "crash_test: shared memory %s: %s\n", shm_name, msgr_strerror(rc));
        return 1;
    }
    pid_t prod[2] = {start_producer(), start_producer()};
    pid_t cons = start_consumer(NULL);
    long done = 0, prod_kills = 0, cons_kills = 0;
    int bad = kill_loop(kills, prod, &cons, &done, &prod_kills, &cons_kills), st;
    for (int i = 0; i < nprod; i++) {
        kill(prod[i], SIGKILL);
        waitpid(prod[i], &st, 0);
    }
    kill(cons, SIGKILL);
    waitpid(cons, &st, 0);
    pid_t last = start_consumer("2000"); /* drains: 2 s with nothing new */
    waitpid(last, &st, 0);
    bad |= check_exit(last, st, 0, "final consumer");
    uint64_t delivered = 0, dups = 0;
    bad |= check_outputs(&delivered, &dups);
    msgr_ring_stats rs;
    msgr_ring_stats_get(r, &rs);
    if (rs.head != rs.tail) {
        fprintf(stderr, "crash_test: the ring is not empty at the end (head %" PRIu64
                        ", tail %" PRIu64 ")\n", rs.head, rs.tail);
        bad = 1;
    }
    printf("crash_test --memory: %ld kills (%ld producers, %ld consumers), %ld stops, %" PRIu64
           " producer runs, %" PRIu64 " numbers delivered once in order, %" PRIu64
           " redelivered, %" PRIu64 " dead claims padded, seed %u: %s\n",
           done, prod_kills, cons_kills, stops, ranges_started, delivered, dups, rs.claims_repaired,
           seed, bad ? "FAILED" : "ok");
    msgr_ring_close(r);
    msgr_region_close(g);
    msgr_region_unlink_shm(shm_name); /* never left behind, even on failure */
    if (!bad)
        remove_outputs();
    else
        fprintf(stderr, "crash_test: kept %s.* for inspection\n", out);
    return bad;
}

int main(int argc, char **argv)
{
    long kills = 200;
    unsigned seed = (unsigned)time(NULL);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--kills") && i + 1 < argc)
            kills = atol(argv[++i]);
        else if (!strcmp(argv[i], "--msgr") && i + 1 < argc)
            msgr = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = (unsigned)atol(argv[++i]);
        else if (!strcmp(argv[i], "--single-producer"))
            nprod = 1;
        else if (!strcmp(argv[i], "--memory"))
            memory = 1;
        else if (!strcmp(argv[i], "--peer") && i + 1 < argc)
            peer = argv[++i];
        else {
            fprintf(stderr, "usage: crash_test [--kills N] [--msgr PATH] [--seed S] "
                            "[--single-producer] [--memory --peer PATH]\n");
            return 2;
        }
    }
    if (memory)
        return run_memory(kills, seed);
    srand(seed);
    snprintf(bus, sizeof bus, "/tmp/msgr-crash-%d.bus", (int)getpid());
    snprintf(out, sizeof out, "/tmp/msgr-crash-%d.out", (int)getpid());
    unlink(bus);
    char *create[] = {(char *)msgr, "create", bus, "--capacity", "1048576",
                      nprod == 1 ? "--single-producer" : NULL, NULL};
    int st;
    waitpid(spawn(create, -1), &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "crash_test: cannot create %s with %s\n", bus, msgr);
        return 1;
    }
    pid_t prod[2] = {start_producer(), nprod > 1 ? start_producer() : 0};
    pid_t cons = start_consumer(NULL);
    long done = 0, prod_kills = 0, cons_kills = 0;
    int bad = kill_loop(kills, prod, &cons, &done, &prod_kills, &cons_kills);
    for (int i = 0; i < nprod; i++) {
        kill(prod[i], SIGKILL);
        waitpid(prod[i], &st, 0);
    }
    kill(cons, SIGKILL);
    waitpid(cons, &st, 0);
    /* Drain: a last consumer reads until 2 s pass with nothing new. */
    pid_t last = start_consumer("2000");
    waitpid(last, &st, 0);
    bad |= check_exit(last, st, 0, "final consumer");

    /* Check: per range, first deliveries are base, base+1, ... with no gap. */
    uint64_t delivered = 0, dups = 0;
    bad |= check_outputs(&delivered, &dups);
    char line[64];
    /* Nothing pending: stat must say so. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s stat %s", msgr, bus);
    FILE *s = popen(cmd, "r");
    int pending_ok = 0;
    while (s && fgets(line, sizeof line, s))
        if (!strcmp(line, "pending: 0\n"))
            pending_ok = 1;
    if (s)
        pclose(s);
    if (!pending_ok) {
        fprintf(stderr, "crash_test: stat does not show 'pending: 0'\n");
        bad = 1;
    }
    printf("crash_test: %ld kills (%ld producers, %ld consumers), %ld stops, %" PRIu64
           " producer runs, "
           "%" PRIu64 " numbers delivered once in order, %" PRIu64 " redelivered, seed %u: %s\n",
           done, prod_kills, cons_kills, stops, ranges_started, delivered, dups, seed,
           bad ? "FAILED" : "ok");
    if (!bad) {
        unlink(bus);
        remove_outputs();
    } else {
        fprintf(stderr, "crash_test: kept %s and %s.* for inspection\n", bus, out);
    }
    return bad;
}
