/* messenger: the operating-system layer, what every POSIX system shares (clocks, threads,
 * fork hooks, directories, msync). What differs lives beside it: linux.c (futex, membarrier,
 * /proc), darwin.c (__ulock, sysctl). */
#define _GNU_SOURCE
#include "os.h"
#include "msgr/error.h"
#include "error_detail.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
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

unsigned msgr_os_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

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

/* Makes dir (0700) if missing and checks that it is this user's alone. */
static int private_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return msgr__fail(errno_code(errno), "registry directory '%s': %s", dir, strerror(errno));
    if (lstat(dir, &st) != 0)
        return errno_code(errno);
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
        return msgr__fail(MSGR_EACCES, "registry directory '%s' is not a directory of this "
                          "user's alone (owner %u, mode %03o): refused", dir,
                          (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
    return 0;
}

int msgr_os_user_dir(char *buf, size_t cap)
{
    const char *over = getenv("MSGR_REGISTRY"), *xdg = getenv("XDG_RUNTIME_DIR");
    const char *tmp = getenv("TMPDIR");
    int k;
    if (over && *over)
        k = snprintf(buf, cap, "%s", over);
    else if (xdg && *xdg && xdg[0] == '/')
        k = snprintf(buf, cap, "%s/messenger", xdg);
    else
        k = snprintf(buf, cap, "%s/messenger-%u", tmp && *tmp ? tmp : "/tmp", (unsigned)geteuid());
    if (k < 0 || (size_t)k >= cap)
        return MSGR_ENAMETOOLONG;
    return private_dir(buf);
}

int msgr_os_abs_path(const char *path, char *buf, size_t cap)
{
    char tmp[PATH_MAX];
    if (!realpath(path, tmp))
        return errno_code(errno);
    if (strlen(tmp) >= cap)
        return MSGR_ENAMETOOLONG;
    strcpy(buf, tmp);
    return 0;
}

int msgr_os_lock_file(const char *path, intptr_t *h)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno_code(errno);
    /* flock: the lock belongs to the open file, and goes with the last descriptor of it, so a
     * holder that dies (SIGKILL included) releases it. */
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            int e = errno;
            close(fd);
            return errno_code(e);
        }
    }
    *h = fd;
    return 0;
}

void msgr_os_unlock_file(intptr_t h)
{
    if (h >= 0)
        close((int)h); /* releases the lock */
}

int msgr_os_write_file(const char *path, const void *data, size_t n)
{
    char tmp[4096 + 64];
    int k = snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (k < 0 || (size_t)k >= sizeof tmp)
        return MSGR_ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno_code(errno);
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return errno_code(e);
        }
        p += w;
        n -= (size_t)w;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return errno_code(e);
    }
    return 0;
}

int msgr_os_read_file(const char *path, void *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno_code(errno);
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, (char *)buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return errno_code(e);
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got > INT32_MAX ? MSGR_EFBIG : (int)got;
}

int msgr_os_list_dir(const char *dir, const char *suffix, int (*fn)(const char *name, void *arg),
                     void *arg)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno_code(errno);
    size_t sl = strlen(suffix);
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] != '.' && n > sl && strcmp(e->d_name + n - sl, suffix) == 0)
            rc = fn(e->d_name, arg);
    }
    closedir(d);
    return rc;
}

int msgr_os_append_open(const char *path, intptr_t *h)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno_code(errno);
    *h = fd;
    return 0;
}

int msgr_os_append(intptr_t h, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = write((int)h, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return errno_code(errno);
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

void msgr_os_append_close(intptr_t h)
{
    if (h >= 0)
        close((int)h);
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
