/* messenger: the operating-system layer for POSIX systems (Linux first). */
#define _GNU_SOURCE
#include "os.h"
#include "msgr/error.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/random.h>
#include <sys/syscall.h>
#endif

uint64_t msgr_os_wall_ns(void)
{
    struct timespec ts;
#ifdef CLOCK_REALTIME_COARSE
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
#else
    clock_gettime(CLOCK_REALTIME, &ts);
#endif
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t msgr_os_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#ifdef __linux__
int msgr_os_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    /* Not FUTEX_PRIVATE_FLAG: the word may be in memory shared with other processes, and the
     * kernel then keys the wait queue on the backing page, not on this address space. */
    long rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, tsp, NULL, 0);
    if (rc == 0)
        return 0;
    switch (errno) {
    case EAGAIN: return 0;          /* value already differed: nothing to wait for */
    case ETIMEDOUT: return MSGR_ETIMEDOUT;
    case EINTR: return MSGR_EINTR;
    default: return -errno;
    }
}

void msgr_os_futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, count, NULL, NULL, 0);
}

static atomic_int msgr_os_barrier_state; /* 0 unknown, 1 available, -1 not available */

int msgr_os_fast_barrier_register(void)
{
    int s = atomic_load_explicit(&msgr_os_barrier_state, memory_order_acquire);
    if (s != 0)
        return s > 0;
    long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    int ok = q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
             syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0;
    /* Registration is idempotent, so two threads racing here both end up registered. */
    atomic_store_explicit(&msgr_os_barrier_state, ok ? 1 : -1, memory_order_release);
    return ok;
}

int msgr_os_heavy_barrier(void)
{
    /* The local fence covers this thread; membarrier covers every registered process. */
    atomic_thread_fence(memory_order_seq_cst);
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0)
        return 0;
    return MSGR_ENOSYS;
}

uint64_t msgr_os_random64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    v = msgr_os_now_ns() ^ ((uint64_t)getpid() << 32);
    v ^= v >> 33; v *= 0xff51afd7ed558ccdull; v ^= v >> 33; /* spread the bits */
    return v;
}
#else
#error "messenger: this POSIX system is not supported yet (futex and membarrier equivalents needed)"
#endif

void msgr_os_yield(void) { sched_yield(); }

size_t msgr_os_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096u;
}

int32_t msgr_os_pid(void) { return (int32_t)getpid(); }

_Atomic uint32_t msgr_os_fork_generation;
static pthread_once_t fork_watch_once = PTHREAD_ONCE_INIT;

static void (*_Atomic fork_hooks[8])(void);

/* Runs in the child, where only the forking thread exists: nothing else can race it. */
static void fork_child(void)
{
    atomic_fetch_add_explicit(&msgr_os_fork_generation, 1, memory_order_relaxed);
    for (int i = 0; i < 8; i++) {
        void (*fn)(void) = atomic_load_explicit(&fork_hooks[i], memory_order_acquire);
        if (fn)
            fn();
    }
}

static void fork_watch_init(void) { pthread_atfork(NULL, NULL, fork_child); }

void msgr_os_fork_watch(void (*child)(void))
{
    pthread_once(&fork_watch_once, fork_watch_init);
    for (int i = 0; child && i < 8; i++) {
        void (*cur)(void) = NULL;
        if (atomic_compare_exchange_strong(&fork_hooks[i], &cur, child) || cur == child)
            return;
    }
}

int msgr_os_thread_start(msgr_os_thread *t, void *(*fn)(void *), void *arg)
{
    pthread_t th;
    int e = pthread_create(&th, NULL, fn, arg);
    if (e)
        return e == EAGAIN ? MSGR_ENOMEM : MSGR_EINVAL;
    _Static_assert(sizeof(pthread_t) <= sizeof(uintptr_t), "pthread_t fits a uintptr_t");
    t->handle = (uintptr_t)th;
    return 0;
}

int msgr_os_thread_join(msgr_os_thread *t)
{
    return pthread_join((pthread_t)t->handle, NULL) == 0 ? 0 : MSGR_EINVAL;
}

void msgr_os_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* What /proc/<pid>/stat says about a process: 1 and *start filled when it could be read, 0
 * when there is no such process (or no /proc). *dead: the process has exited and only its
 * zombie remains (state Z or X with no thread left: a process whose main thread called
 * pthread_exit while other threads run also shows Z, but with more than one thread). */
static int proc_stat(int32_t pid, uint64_t *start, int *dead)
{
    char path[64], buf[1024];
    if (pid <= 0)
        return 0;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Field 2 (comm) may contain spaces and parentheses: count fields after the last ')'.
     * Field 3 is the state, 20 the number of threads, 22 the start time. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return 0;
    char state = p[2];
    unsigned long long threads = 0, v = 0;
    for (int field = 2; p && field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (p && field == 19 && sscanf(p + 1, "%llu", &threads) != 1)
            return 0;
    }
    if (!p || sscanf(p + 1, "%llu", &v) != 1)
        return 0;
    *start = v;
    *dead = (state == 'Z' || state == 'X') && threads <= 1;
    return 1;
}

int msgr_os_pid_alive(int32_t pid)
{
    if (pid <= 0)
        return 0;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM) /* EPERM: exists, owned by someone else */
        return 0;
    uint64_t start;
    int dead;
    /* kill() succeeds on a zombie: an exited process its parent has not reaped yet. */
    if (proc_stat(pid, &start, &dead))
        return !dead;
    return 1;
}

int msgr_os_proc_start(int32_t pid, uint64_t *start)
{
    int dead;
    return proc_stat(pid, start, &dead) ? 0 : MSGR_ENOENT;
}

int msgr_os_proc_alive(int32_t pid, uint64_t start)
{
    uint64_t now;
    int dead;
    if (pid <= 0)
        return 0;
    if (!proc_stat(pid, &now, &dead)) {
        /* No /proc entry: the process is gone, or this system has no /proc (judge by pid). */
        if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
            return 0;
        return access("/proc/self/stat", R_OK) != 0;
    }
    return !dead && now == start;
}

int msgr_os_msync(void *addr, size_t len)
{
    uintptr_t page = (uintptr_t)msgr_os_page_size();
    uintptr_t a = (uintptr_t)addr & ~(page - 1);
    size_t l = len + ((uintptr_t)addr - a);
    return msync((void *)a, l, MS_SYNC) == 0 ? 0 : MSGR_EIO;
}

static int errno_code(int e)
{
    switch (e) {
    case ENOENT: case ENOTDIR: return MSGR_ENOENT;
    case EACCES: case EPERM: case EROFS: return MSGR_EACCES;
    case ENOSPC: return MSGR_ENOSPC;
    case ENAMETOOLONG: return MSGR_ENAMETOOLONG;
    case EEXIST: return MSGR_EEXIST;
    default: return MSGR_EIO;
    }
}

int msgr_os_mkdir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) != 0)
            return errno_code(errno);
        return S_ISDIR(st.st_mode) ? 0 : MSGR_ENOTMSGR;
    }
    return errno_code(errno);
}

int msgr_os_list_hex(const char *dir, const char *prefix, uint64_t *out, uint32_t max,
                     uint32_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno_code(errno);
    size_t pl = strlen(prefix);
    uint32_t k = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, pl) != 0 || strlen(e->d_name) != pl + 16)
            continue;
        char *end;
        unsigned long long v = strtoull(e->d_name + pl, &end, 16);
        if (*end)
            continue;
        if (k == max) {
            closedir(d);
            return MSGR_ERANGE;
        }
        out[k++] = v;
    }
    closedir(d);
    *n = k;
    return 0;
}

int msgr_os_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno_code(errno);
    int rc = fsync(fd) == 0 ? 0 : MSGR_EIO;
    close(fd);
    return rc;
}

int msgr_os_unlink(const char *path)
{
    return unlink(path) == 0 ? 0 : errno_code(errno);
}
