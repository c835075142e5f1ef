/* messenger: the operating-system layer, what only Linux has: futex waits on shared memory,
 * the process-crossing membarrier, getrandom, process start times from /proc, and the CPU's
 * features from the auxiliary vector. The rest is in posix.c. */
#define _GNU_SOURCE
#include "os.h"
#include "posix.h"
#include "msgr/error.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

/* What /proc/<pid>/stat says about a process: 1 and *start filled when it could be read, 0
 * when there is no such process (or no /proc). *dead: the process has exited and only its
 * zombie remains (state Z or X with no thread left: a process whose main thread called
 * pthread_exit while other threads run also shows Z, but with more than one thread). */
static int proc_stat(int32_t pid, uint64_t *start, int *dead)
{
    char path[64], buf[1024];
    if (pid <= 0)
        return 0;
    /* The main thread's entry: the same fields as /proc/<pid>/stat (the thread count is the
     * process's), and one an emulator like qemu-user passes through untouched, where it fakes
     * the process's own /proc/<pid>/stat (another start time than other processes read). */
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)pid);
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        if (!(f = fopen(path, "re")))
            return 0;
    }
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

unsigned msgr_os_cpu_features(void)
{
    unsigned f = 0;
#if defined(__aarch64__)
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1ul << 7)
#endif
    if (getauxval(AT_HWCAP) & HWCAP_CRC32)
        f |= MSGR_OS_CPU_ARM_CRC32;
#endif
    return f;
}

int msgr_os_anon_fd(void) { return memfd_create("messenger", MFD_CLOEXEC); }

int msgr_os_fallocate(int fd, uint64_t size)
{
    int e = posix_fallocate(fd, 0, (off_t)size);
    if (e == EOPNOTSUPP || e == ENOSYS) /* file system without fallocate: plain size change */
        e = ftruncate(fd, (off_t)size) == 0 ? 0 : errno;
    return e;
}

int msgr_os_event_open(intptr_t *ev, intptr_t *fd)
{
    int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e < 0)
        return errno == EMFILE || errno == ENFILE || errno == ENOMEM ? MSGR_ENOMEM : MSGR_EIO;
    *ev = *fd = e;
    return 0;
}

void msgr_os_event_signal(intptr_t ev)
{
    uint64_t one = 1;
    (void)!write((int)ev, &one, sizeof one); /* a counter at its limit is readable already */
}

void msgr_os_event_drain(intptr_t ev)
{
    uint64_t n;
    (void)!read((int)ev, &n, sizeof n); /* EAGAIN: it was not signalled */
}

void msgr_os_event_close(intptr_t ev)
{
    if (ev >= 0)
        close((int)ev);
}
