/* messenger: the operating-system layer, what every POSIX system shares (clocks, threads,
 * fork hooks, directories, msync). What differs lives beside it: linux.c (futex, membarrier,
 * /proc), darwin.c (__ulock, sysctl). */
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

void *msgr_os_aligned_alloc(size_t align, size_t size)
{
    return aligned_alloc(align, (size + align - 1) / align * align);
}

void msgr_os_aligned_free(void *p) { free(p); }

void msgr_os_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
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
