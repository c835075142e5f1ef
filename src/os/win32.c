/* messenger: the operating-system layer for Windows (Win32 API; built with mingw-w64).
 *
 * Differences from POSIX that the rest of messenger sees through os.h only:
 *   - Waiting on a word shared between processes: WaitOnAddress wakes threads of one process
 *     only, so a word inside a registered shared mapping (win32.h) sleeps on a named semaphore
 *     named after its backing object and offset; other words use WaitOnAddress.
 *   - No process-crossing heavy barrier (FlushProcessWriteBuffers covers one process): both
 *     sides of a wake use a full fence (wait.h).
 *   - Liveness: a process handle says whether it exited, its creation time names it.
 *   - No fork(): the fork generation never changes.
 */
#define _CRT_RAND_S
#include "os.h"
#include "win32.h"
#include "msgr/error.h"
#include "error_detail.h"

#include <windows.h>
#include <process.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int msgr__win_error(unsigned long err)
{
    switch (err) {
    case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: case ERROR_INVALID_NAME:
        return MSGR_ENOENT;
    case ERROR_ACCESS_DENIED: case ERROR_SHARING_VIOLATION: case ERROR_LOCK_VIOLATION:
    case ERROR_WRITE_PROTECT:
        return MSGR_EACCES;
    case ERROR_FILE_EXISTS: case ERROR_ALREADY_EXISTS: return MSGR_EEXIST;
    case ERROR_DISK_FULL: case ERROR_HANDLE_DISK_FULL: return MSGR_ENOSPC;
    case ERROR_FILENAME_EXCED_RANGE: case ERROR_BUFFER_OVERFLOW: return MSGR_ENAMETOOLONG;
    case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: case ERROR_COMMITMENT_LIMIT:
        return MSGR_ENOMEM;
    case ERROR_FILE_TOO_LARGE: return MSGR_EFBIG;
    case ERROR_INVALID_PARAMETER: return MSGR_EINVAL;
    default: return MSGR_EIO;
    }
}

uint64_t msgr_os_now_ns(void)
{
    static LARGE_INTEGER freq; /* constant after boot; a racing first call stores the same */
    LARGE_INTEGER c;
    if (!freq.QuadPart)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&c);
    uint64_t s = (uint64_t)c.QuadPart / (uint64_t)freq.QuadPart;
    uint64_t r = (uint64_t)c.QuadPart % (uint64_t)freq.QuadPart;
    return s * 1000000000u + r * 1000000000u / (uint64_t)freq.QuadPart;
}

uint64_t msgr_os_wall_ns(void)
{
    FILETIME ft; /* 100 ns units since 1601 */
    GetSystemTimeAsFileTime(&ft);
    uint64_t t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    return (t - 116444736000000000ull) * 100u;
}

/* ---- the registry of shared mappings (win32.h) ---- */

#define MAPS_MAX 256
#define WAITS_MAX 512

static SRWLOCK maps_lock = SRWLOCK_INIT;
static struct map_entry {
    uintptr_t base;
    size_t len;
    uint64_t key;
    HANDLE file;
} maps[MAPS_MAX];
static unsigned n_maps;

/* Named semaphores opened for words of registered mappings, by the word's address. */
static struct wait_entry {
    uintptr_t word;
    HANDLE sem;
} waits[WAITS_MAX];
static unsigned n_waits;

int msgr__win_map_add(void *base, size_t len, uint64_t key, void *file)
{
    int rc = MSGR_ENOMEM;
    AcquireSRWLockExclusive(&maps_lock);
    if (n_maps < MAPS_MAX) {
        maps[n_maps++] = (struct map_entry){(uintptr_t)base, len, key, (HANDLE)file};
        rc = 0;
    }
    ReleaseSRWLockExclusive(&maps_lock);
    return rc;
}

void msgr__win_map_resize(void *base, size_t len)
{
    AcquireSRWLockExclusive(&maps_lock);
    for (unsigned i = 0; i < n_maps; i++)
        if (maps[i].base == (uintptr_t)base)
            maps[i].len = len;
    ReleaseSRWLockExclusive(&maps_lock);
}

void msgr__win_map_remove(void *base)
{
    AcquireSRWLockExclusive(&maps_lock);
    for (unsigned i = 0; i < n_maps; i++) {
        if (maps[i].base != (uintptr_t)base)
            continue;
        uintptr_t lo = maps[i].base, hi = maps[i].base + maps[i].len;
        for (unsigned w = 0; w < n_waits;) {
            if (waits[w].word >= lo && waits[w].word < hi) {
                CloseHandle(waits[w].sem);
                waits[w] = waits[--n_waits];
            } else {
                w++;
            }
        }
        maps[i] = maps[--n_maps];
        break;
    }
    ReleaseSRWLockExclusive(&maps_lock);
}

/* Under maps_lock: the mapping holding addr, or NULL. */
static struct map_entry *map_of(uintptr_t addr)
{
    for (unsigned i = 0; i < n_maps; i++)
        if (addr >= maps[i].base && addr - maps[i].base < maps[i].len)
            return &maps[i];
    return NULL;
}

/* The named semaphore for a word of a registered mapping (opened once per process and kept
 * until the mapping goes), or NULL if the word is in no registered mapping (then it is waited
 * on with WaitOnAddress). *sem_out is a handle the caller must close when `owned` is set (the
 * cache was full). */
static HANDLE wait_object(_Atomic uint32_t *word, int create, int *owned)
{
    uintptr_t w = (uintptr_t)word;
    HANDLE sem = NULL;
    *owned = 0;
    AcquireSRWLockExclusive(&maps_lock);
    struct map_entry *m = map_of(w);
    if (!m) {
        ReleaseSRWLockExclusive(&maps_lock);
        return NULL;
    }
    for (unsigned i = 0; i < n_waits; i++)
        if (waits[i].word == w) {
            sem = waits[i].sem;
            break;
        }
    if (!sem) {
        char name[96];
        snprintf(name, sizeof name, "Local\\msgr-w-%016llx-%llx", (unsigned long long)m->key,
                 (unsigned long long)(w - m->base));
        /* Spare posts only cause spurious returns (allowed); the cap bounds them. */
        sem = create ? CreateSemaphoreA(NULL, 0, 1 << 16, name)
                     : OpenSemaphoreA(SEMAPHORE_MODIFY_STATE | SYNCHRONIZE, FALSE, name);
        if (sem && n_waits < WAITS_MAX)
            waits[n_waits++] = (struct wait_entry){w, sem};
        else if (sem)
            *owned = 1;
    }
    ReleaseSRWLockExclusive(&maps_lock);
    return sem ? sem : INVALID_HANDLE_VALUE;
}

static DWORD timeout_ms(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return INFINITE;
    uint64_t ms = ((uint64_t)timeout_ns + 999999u) / 1000000u;
    return ms >= INFINITE ? INFINITE - 1 : (DWORD)ms;
}

/* No lost wake-up across processes: the waiter opens (or creates) the semaphore first, then
 * compares the word, then sleeps on the semaphore. A waker changes the word (wait.h: an RMW on
 * the eventcount) before it looks for the semaphore. If the waker's look came first and found
 * none, the waiter's compare comes after the waker's change (both ordered by the kernel calls
 * between them) and sees it; otherwise the waker posts, and a post is kept until a waiter
 * takes it. A waker killed before posting leaves the sleeper to its timeout: every sleep in
 * messenger is bounded for that reason (wait.h, the callers' cap functions). */
int msgr_os_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    int owned;
    HANDLE sem = wait_object(word, 1, &owned);
    if (sem == INVALID_HANDLE_VALUE)
        return MSGR_ENOMEM;
    if (atomic_load_explicit(word, memory_order_seq_cst) != expected) {
        if (owned)
            CloseHandle(sem);
        return 0;
    }
    DWORD ms = timeout_ms(timeout_ns);
    int rc = 0;
    if (sem) {
        DWORD r = WaitForSingleObject(sem, ms);
        rc = r == WAIT_TIMEOUT ? MSGR_ETIMEDOUT : 0;
        if (owned)
            CloseHandle(sem);
    } else {
        uint32_t cmp = expected;
        if (!WaitOnAddress((volatile void *)word, &cmp, sizeof cmp, ms) &&
            GetLastError() == ERROR_TIMEOUT)
            rc = MSGR_ETIMEDOUT;
    }
    return rc;
}

void msgr_os_futex_wake(_Atomic uint32_t *word, int count)
{
    int owned;
    HANDLE sem = wait_object(word, 0, &owned);
    if (sem == NULL) {
        if (count == 1)
            WakeByAddressSingle((void *)word);
        else
            WakeByAddressAll((void *)word);
        return;
    }
    if (sem == INVALID_HANDLE_VALUE)
        return; /* nobody ever waited on it: the waiter's compare sees the change */
    /* "All": as many posts as messenger ever has sleepers on one word (producer slots); the
     * posts nobody takes make later waits return early once, which callers allow for. */
    LONG posts = count == 1 ? 1 : 64;
    ReleaseSemaphore(sem, posts, NULL);
    if (owned)
        CloseHandle(sem);
}

void msgr_os_yield(void) { SwitchToThread(); }

int msgr_os_fast_barrier_register(void) { return 0; }

int msgr_os_heavy_barrier(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    return MSGR_ENOSYS;
}

uint64_t msgr_os_random64(void)
{
    unsigned a = 0, b = 0;
    if (rand_s(&a) == 0 && rand_s(&b) == 0)
        return (uint64_t)a << 32 | b;
    uint64_t v = msgr_os_now_ns() ^ ((uint64_t)GetCurrentProcessId() << 32);
    v ^= v >> 33; v *= 0xff51afd7ed558ccdull; v ^= v >> 33; /* spread the bits */
    return v;
}

unsigned msgr_os_cpu_count(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwNumberOfProcessors ? (unsigned)si.dwNumberOfProcessors : 1u;
}

size_t msgr_os_page_size(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize ? si.dwPageSize : 4096u;
}

int32_t msgr_os_pid(void) { return (int32_t)GetCurrentProcessId(); }

_Atomic uint32_t msgr_os_fork_generation; /* no fork() here: stays 0 */

void msgr_os_fork_watch(void (*child)(void)) { (void)child; }

typedef struct {
    void *(*fn)(void *);
    void *arg;
} thread_start;

static unsigned __stdcall thread_main(void *p)
{
    thread_start s = *(thread_start *)p;
    free(p);
    s.fn(s.arg);
    return 0;
}

int msgr_os_thread_start(msgr_os_thread *t, void *(*fn)(void *), void *arg)
{
    thread_start *s = malloc(sizeof *s);
    if (!s)
        return MSGR_ENOMEM;
    s->fn = fn;
    s->arg = arg;
    uintptr_t h = _beginthreadex(NULL, 0, thread_main, s, 0, NULL);
    if (!h) {
        free(s);
        return MSGR_ENOMEM;
    }
    t->handle = h;
    return 0;
}

int msgr_os_thread_join(msgr_os_thread *t)
{
    HANDLE h = (HANDLE)t->handle;
    if (WaitForSingleObject(h, INFINITE) != WAIT_OBJECT_0)
        return MSGR_EINVAL;
    CloseHandle(h);
    return 0;
}

void *msgr_os_aligned_alloc(size_t align, size_t size)
{
    return _aligned_malloc((size + align - 1) / align * align, align);
}

void msgr_os_aligned_free(void *p) { _aligned_free(p); }

void msgr_os_sleep_ns(uint64_t ns)
{
    if (ns < 1000000u) {
        SwitchToThread(); /* the timer's resolution is a millisecond at best */
        return;
    }
    Sleep((DWORD)((ns + 999999u) / 1000000u));
}

/* Opens a process to ask about it: NULL with *exists = 1 when it runs but may not be opened. */
static HANDLE open_process(int32_t pid, int *exists)
{
    *exists = 0;
    if (pid <= 0)
        return NULL;
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, (DWORD)pid);
    if (!h)
        *exists = GetLastError() == ERROR_ACCESS_DENIED;
    return h;
}

/* Exited (the handle is signalled): dead, as a zombie is on Linux. */
static int exited(HANDLE h) { return WaitForSingleObject(h, 0) == WAIT_OBJECT_0; }

static uint64_t created(HANDLE h)
{
    FILETIME c, e, k, u;
    if (!GetProcessTimes(h, &c, &e, &k, &u))
        return 0;
    return ((uint64_t)c.dwHighDateTime << 32) | c.dwLowDateTime;
}

int msgr_os_pid_alive(int32_t pid)
{
    int exists;
    HANDLE h = open_process(pid, &exists);
    if (!h)
        return exists;
    int alive = !exited(h);
    CloseHandle(h);
    return alive;
}

int msgr_os_proc_start(int32_t pid, uint64_t *start)
{
    int exists;
    HANDLE h = open_process(pid, &exists);
    if (!h)
        return MSGR_ENOENT;
    uint64_t c = created(h);
    CloseHandle(h);
    if (!c)
        return MSGR_ENOENT;
    *start = c;
    return 0;
}

int msgr_os_proc_alive(int32_t pid, uint64_t start)
{
    int exists;
    HANDLE h = open_process(pid, &exists);
    if (!h)
        return exists; /* another user's process: judged by the pid alone */
    int alive = !exited(h) && created(h) == start;
    CloseHandle(h);
    return alive;
}

int msgr_os_msync(void *addr, size_t len)
{
    if (!FlushViewOfFile(addr, len))
        return MSGR_EIO;
    HANDLE file = NULL;
    AcquireSRWLockShared(&maps_lock);
    struct map_entry *m = map_of((uintptr_t)addr);
    if (m)
        file = m->file;
    ReleaseSRWLockShared(&maps_lock);
    /* FlushViewOfFile only starts the writes; the file's buffers are flushed to the device by
     * FlushFileBuffers. */
    if (file && file != INVALID_HANDLE_VALUE && !FlushFileBuffers(file))
        return MSGR_EIO;
    return 0;
}

int msgr_os_mkdir(const char *dir)
{
    if (CreateDirectoryA(dir, NULL))
        return 0;
    DWORD e = GetLastError();
    if (e != ERROR_ALREADY_EXISTS)
        return msgr__win_error(e);
    DWORD a = GetFileAttributesA(dir);
    if (a == INVALID_FILE_ATTRIBUTES)
        return msgr__win_error(GetLastError());
    return (a & FILE_ATTRIBUTE_DIRECTORY) ? 0 : MSGR_ENOTMSGR;
}

int msgr_os_user_dir(char *buf, size_t cap)
{
    const char *over = getenv("MSGR_REGISTRY"), *local = getenv("LOCALAPPDATA");
    int k;
    if (over && *over)
        k = snprintf(buf, cap, "%s", over);
    else if (local && *local)
        k = snprintf(buf, cap, "%s\\messenger", local);
    else
        return msgr__fail(MSGR_ENOENT, "LOCALAPPDATA is not set: no per-user directory for the "
                          "registry (set MSGR_REGISTRY)");
    if (k < 0 || (size_t)k >= cap)
        return MSGR_ENAMETOOLONG;
    /* Under the user's profile, which admits that user (and administrators) only. */
    return msgr_os_mkdir(buf);
}

int msgr_os_abs_path(const char *path, char *buf, size_t cap)
{
    DWORD n = GetFullPathNameA(path, (DWORD)cap, buf, NULL);
    if (n == 0)
        return msgr__win_error(GetLastError());
    return n >= cap ? MSGR_ENAMETOOLONG : 0;
}

int msgr_os_lock_file(const char *path, intptr_t *h)
{
    HANDLE f = CreateFileA(path, GENERIC_READ | GENERIC_WRITE,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return msgr__win_error(GetLastError());
    /* Byte 0, exclusively; the system releases it when the holder's handle goes, a process
     * that was terminated included. */
    OVERLAPPED ov = {0};
    if (!LockFileEx(f, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &ov)) {
        int rc = msgr__win_error(GetLastError());
        CloseHandle(f);
        return rc;
    }
    *h = (intptr_t)f;
    return 0;
}

void msgr_os_unlock_file(intptr_t h)
{
    if (h && (HANDLE)h != INVALID_HANDLE_VALUE)
        CloseHandle((HANDLE)h); /* releases the lock */
}

int msgr_os_write_file(const char *path, const void *data, size_t n)
{
    char tmp[MAX_PATH + 64];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%lu", path, (unsigned long)GetCurrentProcessId()) >=
        (int)sizeof tmp)
        return MSGR_ENAMETOOLONG;
    HANDLE f = CreateFileA(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return msgr__win_error(GetLastError());
    DWORD w = 0;
    BOOL ok = WriteFile(f, data, (DWORD)n, &w, NULL) && w == n;
    CloseHandle(f);
    if (!ok || !MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING)) {
        int rc = msgr__win_error(GetLastError());
        DeleteFileA(tmp);
        return rc ? rc : MSGR_EIO;
    }
    return 0;
}

int msgr_os_read_file(const char *path, void *buf, size_t cap)
{
    HANDLE f = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE |
                           FILE_SHARE_DELETE, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return msgr__win_error(GetLastError());
    DWORD got = 0;
    BOOL ok = ReadFile(f, buf, cap > INT32_MAX ? INT32_MAX : (DWORD)cap, &got, NULL);
    CloseHandle(f);
    return ok ? (int)got : MSGR_EIO;
}

int msgr_os_list_dir(const char *dir, const char *suffix, int (*fn)(const char *name, void *arg),
                     void *arg)
{
    char pattern[MAX_PATH + 64];
    if (snprintf(pattern, sizeof pattern, "%s\\*%s", dir, suffix) >= (int)sizeof pattern)
        return MSGR_ENAMETOOLONG;
    WIN32_FIND_DATAA fd;
    HANDLE h = FindFirstFileA(pattern, &fd);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        return e == ERROR_FILE_NOT_FOUND ? 0 : msgr__win_error(e);
    }
    size_t sl = strlen(suffix);
    int rc = 0;
    do {
        size_t n = strlen(fd.cFileName);
        if (fd.cFileName[0] != '.' && n > sl && strcmp(fd.cFileName + n - sl, suffix) == 0)
            rc = fn(fd.cFileName, arg);
    } while (!rc && FindNextFileA(h, &fd));
    FindClose(h);
    return rc;
}

int msgr_os_append_open(const char *path, intptr_t *h)
{
    HANDLE f = CreateFileA(path, FILE_APPEND_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE |
                           FILE_SHARE_DELETE, NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE)
        return msgr__win_error(GetLastError());
    *h = (intptr_t)f;
    return 0;
}

int msgr_os_append(intptr_t h, const void *data, size_t n)
{
    DWORD w = 0;
    return WriteFile((HANDLE)h, data, (DWORD)n, &w, NULL) && w == n ? 0 : MSGR_EIO;
}

void msgr_os_append_close(intptr_t h)
{
    if (h && (HANDLE)h != INVALID_HANDLE_VALUE)
        CloseHandle((HANDLE)h);
}

int msgr_os_list_hex(const char *dir, const char *prefix, uint64_t *out, uint32_t max,
                     uint32_t *n)
{
    char pattern[MAX_PATH + 64];
    if (snprintf(pattern, sizeof pattern, "%s\\%s*", dir, prefix) >= (int)sizeof pattern)
        return MSGR_ENAMETOOLONG;
    WIN32_FIND_DATAA fd;
    HANDLE h = FindFirstFileA(pattern, &fd);
    uint32_t k = 0;
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        if (e == ERROR_FILE_NOT_FOUND) { /* the directory exists but holds none */
            *n = 0;
            return 0;
        }
        return msgr__win_error(e);
    }
    size_t pl = strlen(prefix);
    do {
        const char *name = fd.cFileName;
        if (strncmp(name, prefix, pl) != 0 || strlen(name) != pl + 16)
            continue;
        char *end;
        unsigned long long v = strtoull(name + pl, &end, 16);
        if (*end)
            continue;
        if (k == max) {
            FindClose(h);
            return MSGR_ERANGE;
        }
        out[k++] = v;
    } while (FindNextFileA(h, &fd));
    FindClose(h);
    *n = k;
    return 0;
}

int msgr_os_sync_dir(const char *dir)
{
    /* NTFS journals its directory changes; flushing a directory handle (opened with backup
     * semantics) is refused on some file systems, which is not an error here. */
    HANDLE h = CreateFileA(dir, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return msgr__win_error(GetLastError());
    FlushFileBuffers(h);
    CloseHandle(h);
    return 0;
}

int msgr_os_unlink(const char *path)
{
    return DeleteFileA(path) ? 0 : msgr__win_error(GetLastError());
}

unsigned msgr_os_cpu_features(void) { return 0; }

int msgr_os_event_open(intptr_t *ev, intptr_t *fd)
{
    HANDLE e = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (!e)
        return MSGR_ENOMEM;
    *ev = *fd = (intptr_t)e;
    return 0;
}

void msgr_os_event_signal(intptr_t ev) { SetEvent((HANDLE)ev); }
void msgr_os_event_drain(intptr_t ev) { ResetEvent((HANDLE)ev); }
void msgr_os_event_close(intptr_t ev)
{
    if (ev)
        CloseHandle((HANDLE)ev);
}
