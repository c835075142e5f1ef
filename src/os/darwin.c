/* messenger: the operating-system layer, what only macOS has (posix.c has the rest).
 *
 * Untested: no macOS machine is part of this project's CI. Written against Apple's
 * documentation and headers as published; kept to the few calls that differ from Linux:
 *   - waiting on a word shared between processes: __ulock_wait/__ulock_wake with
 *     UL_COMPARE_AND_WAIT_SHARED (macOS 10.12 on; the C++ runtime's atomic wait uses them).
 *     os_sync_wait_on_address is the public spelling from macOS 14.4 on;
 *   - no process-crossing heavy barrier: both sides of a wake use a full fence (wait.h);
 *   - process start times and zombies from sysctl(KERN_PROC_PID);
 *   - no memfd: a shm object unlinked as soon as it is open; no posix_fallocate: F_PREALLOCATE.
 */
#include "os.h"
#include "posix.h"
#include "msgr/error.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysctl.h>
#include <sys/types.h>
#include <unistd.h>

/* From the kernel's ulock interface (bsd/sys/ulock.h, not in the SDK's public headers). */
extern int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);
extern int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);
#define MSGR_UL_COMPARE_AND_WAIT_SHARED 3u
#define MSGR_ULF_WAKE_ALL 0x00000100u

int msgr_os_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    /* Microseconds, 0 meaning no limit: a timeout below 1 µs becomes 1 µs. */
    uint32_t us = 0;
    if (timeout_ns >= 0) {
        uint64_t u = ((uint64_t)timeout_ns + 999u) / 1000u;
        us = u == 0 ? 1 : u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
    }
    /* The kernel compares the word with `expected` under its wait-queue lock, as futex does,
     * so a wake between our caller's check and this call is not lost. */
    if (__ulock_wait(MSGR_UL_COMPARE_AND_WAIT_SHARED, (void *)word, expected, us) >= 0)
        return 0;
    switch (errno) {
    case ETIMEDOUT: return MSGR_ETIMEDOUT;
    case EINTR: return MSGR_EINTR;
    default: return 0; /* spurious returns are allowed */
    }
}

void msgr_os_futex_wake(_Atomic uint32_t *word, int count)
{
    uint32_t op = MSGR_UL_COMPARE_AND_WAIT_SHARED | (count == 1 ? 0 : MSGR_ULF_WAKE_ALL);
    __ulock_wake(op, (void *)word, 0); /* ENOENT: nobody waits */
}

int msgr_os_fast_barrier_register(void) { return 0; }

int msgr_os_heavy_barrier(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    return MSGR_ENOSYS;
}

uint64_t msgr_os_random64(void)
{
    uint64_t v;
    arc4random_buf(&v, sizeof v);
    return v;
}

/* sysctl's view of a process: 1 and *start (µs since 1970) when it exists, 0 when not;
 * *dead when only its zombie is left. */
static int proc_info(int32_t pid, uint64_t *start, int *dead)
{
    if (pid <= 0)
        return 0;
    int mib[4] = {CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)pid};
    struct kinfo_proc kp;
    size_t len = sizeof kp;
    memset(&kp, 0, sizeof kp);
    if (sysctl(mib, 4, &kp, &len, NULL, 0) != 0 || len == 0)
        return 0;
    *start = (uint64_t)kp.kp_proc.p_starttime.tv_sec * 1000000u +
             (uint64_t)kp.kp_proc.p_starttime.tv_usec;
    *dead = kp.kp_proc.p_stat == SZOMB;
    return 1;
}

int msgr_os_pid_alive(int32_t pid)
{
    if (pid <= 0)
        return 0;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
        return 0;
    uint64_t start;
    int dead;
    return proc_info(pid, &start, &dead) ? !dead : 1;
}

int msgr_os_proc_start(int32_t pid, uint64_t *start)
{
    int dead;
    return proc_info(pid, start, &dead) ? 0 : MSGR_ENOENT;
}

int msgr_os_proc_alive(int32_t pid, uint64_t start)
{
    uint64_t now;
    int dead;
    if (!proc_info(pid, &now, &dead))
        return 0;
    return !dead && now == start;
}

unsigned msgr_os_cpu_features(void)
{
#if defined(__aarch64__)
    return MSGR_OS_CPU_ARM_CRC32; /* every Apple arm64 CPU has the CRC32 instructions */
#else
    return 0;
#endif
}

int msgr_os_anon_fd(void)
{
    static _Atomic unsigned counter;
    char name[64];
    for (int tries = 0; tries < 16; tries++) {
        snprintf(name, sizeof name, "/msgr-anon-%d-%u", (int)getpid(),
                 atomic_fetch_add(&counter, 1));
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
        if (fd < 0 && errno == EEXIST)
            continue;
        if (fd < 0)
            return -1;
        shm_unlink(name); /* nameless from here on: nobody else can open it */
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }
    errno = EEXIST;
    return -1;
}

int msgr_os_fallocate(int fd, uint64_t size)
{
    /* Reserve the blocks (contiguous if possible), then set the size. Objects that cannot
     * preallocate (shm) just take the size. */
    fstore_t st = {F_ALLOCATECONTIG | F_ALLOCATEALL, F_PEOFPOSMODE, 0, (off_t)size, 0};
    if (fcntl(fd, F_PREALLOCATE, &st) == -1) {
        st.fst_flags = F_ALLOCATEALL;
        if (fcntl(fd, F_PREALLOCATE, &st) == -1 && errno == ENOSPC)
            return ENOSPC;
    }
    return ftruncate(fd, (off_t)size) == 0 ? 0 : errno;
}

/* A pipe: the read end is the descriptor; ev packs both ends (read end in the low half). */
int msgr_os_event_open(intptr_t *ev, intptr_t *fd)
{
    int p[2];
    if (pipe(p) != 0)
        return MSGR_ENOMEM;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    *ev = (intptr_t)((uint64_t)(uint32_t)p[1] << 32 | (uint32_t)p[0]);
    *fd = p[0];
    return 0;
}

void msgr_os_event_signal(intptr_t ev)
{
    char b = 1;
    (void)!write((int)((uint64_t)ev >> 32), &b, 1); /* a full pipe is readable already */
}

void msgr_os_event_drain(intptr_t ev)
{
    char b[64];
    while (read((int)(uint32_t)ev, b, sizeof b) > 0) {
    }
}

void msgr_os_event_close(intptr_t ev)
{
    close((int)(uint32_t)ev);
    close((int)((uint64_t)ev >> 32));
}
