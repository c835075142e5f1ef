/* Helpers shared by the tests (and the fuzz targets): deterministic payloads, scaling, a start
 * barrier, emptying a directory. */
#ifndef MSGR_TEST_UTIL_H
#define MSGR_TEST_UTIL_H

#include <messenger.h>

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;
#endif

static inline uint64_t tu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: a good 64-bit mix, so payloads differ in every byte between messages. */
static inline uint64_t tu_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Length of message `seq` of producer `id`: 0..max inclusive, derived from both. */
static inline size_t tu_len(uint32_t id, uint64_t seq, size_t max)
{
    return (size_t)(tu_mix(((uint64_t)id << 48) ^ seq) % (max + 1));
}

/* Fills a payload: the sequence number first (when it fits), then bytes derived from
 * (id, seq, index). Returns the sum of all bytes written (a checksum for totals). */
static inline uint64_t tu_fill(void *dst, uint32_t id, uint64_t seq, size_t len)
{
    unsigned char *p = dst;
    uint64_t sum = 0, k = tu_mix(seq * 31 + id);
    for (size_t i = 0; i < len; i++) {
        unsigned char b = i < 8 ? (unsigned char)(seq >> (8 * i)) : (unsigned char)(k >> (8 * (i & 7)));
        if ((i & 7) == 7)
            k = tu_mix(k);
        p[i] = b;
        sum += b;
    }
    return sum;
}

/* 0 if the payload is exactly what tu_fill wrote for (id, seq, len). */
static inline int tu_check(const void *src, uint32_t id, uint64_t seq, size_t len, uint64_t *sum)
{
    unsigned char tmp[4096];
    if (len > sizeof tmp)
        return -1;
    *sum += tu_fill(tmp, id, seq, len);
    return memcmp(tmp, src, len) != 0;
}

/* Scales message counts down under TSan (MSGR_TEST_SCALE=tsan), which is ~20x slower. */
static inline uint64_t tu_scaled(uint64_t n)
{
    const char *s = getenv("MSGR_TEST_SCALE");
    if (s && strcmp(s, "tsan") == 0)
        return n / 50 ? n / 50 : 1;
    return n;
}

/* 1 when the suite runs under an emulator (MSGR_TEST_WRAP set, as make cross-test does): for
 * the few checks of what the kernel did that qemu-user does not emulate. */
static inline int tu_emulated(void)
{
    const char *w = getenv("MSGR_TEST_WRAP");
    return w && *w;
}

/* Directory of the test helper programs (set by the Makefile). */
static inline const char *tu_bin_dir(void)
{
    const char *d = getenv("MSGR_TEST_BIN");
    return d ? d : "build/tests";
}

/* ---- helper processes, on every platform ---- */

/* A started helper program: its pid, and on Windows its process handle. */
typedef struct tu_proc {
    int32_t pid;
    intptr_t handle;
} tu_proc;

/* What tu_proc_wait() returns for a process ended by tu_proc_kill(). */
#define TU_KILLED (-9)

#ifdef _WIN32
#define TU_KILL_CODE 0x4b494c4cu /* exit code TerminateProcess gives a killed helper */

/* Starts argv[0] with its arguments (none may contain a double quote). Returns 0 or -1. */
static inline int tu_proc_start(tu_proc *p, char *const argv[])
{
    char cmd[4096];
    size_t n = 0;
    for (int i = 0; argv[i]; i++) {
        int k = snprintf(cmd + n, sizeof cmd - n, "%s\"%s\"", i ? " " : "", argv[i]);
        if (k < 0 || (size_t)k >= sizeof cmd - n)
            return -1;
        n += (size_t)k;
    }
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    PROCESS_INFORMATION pi;
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi))
        return -1;
    CloseHandle(pi.hThread);
    p->pid = (int32_t)pi.dwProcessId;
    p->handle = (intptr_t)pi.hProcess;
    return 0;
}

/* Waits for it: its exit code, or TU_KILLED. */
static inline int tu_proc_wait(tu_proc *p)
{
    DWORD code = 1;
    WaitForSingleObject((HANDLE)p->handle, INFINITE);
    GetExitCodeProcess((HANDLE)p->handle, &code);
    CloseHandle((HANDLE)p->handle);
    return code == TU_KILL_CODE ? TU_KILLED : (int)code;
}

/* Ends it at once, wherever it is (SIGKILL, TerminateProcess). */
static inline void tu_proc_kill(tu_proc *p) { TerminateProcess((HANDLE)p->handle, TU_KILL_CODE); }

static inline void tu_yield(void) { SwitchToThread(); }
static inline void tu_sleep_forever(void)
{
    for (;;)
        Sleep(INFINITE);
}
static inline int32_t tu_pid(void) { return (int32_t)GetCurrentProcessId(); }
static inline void tu_sleep_ms(unsigned ms) { Sleep(ms); }
#else
/* Starts argv[0] with its arguments. With MSGR_TEST_WRAP set (words separated by spaces, e.g.
 * "qemu-aarch64 -L /usr/aarch64-linux-gnu" for a cross build), through that command: an
 * emulator like qemu-user runs the helper in its own process, so the pid is still the
 * helper's. Returns 0 or -1. */
static inline int tu_proc_start(tu_proc *p, char *const argv[])
{
    const char *wrap = getenv("MSGR_TEST_WRAP");
    char words[512], *all[40];
    int n = 0;
    if (wrap && *wrap) {
        snprintf(words, sizeof words, "%s", wrap);
        for (char *w = strtok(words, " "); w && n < 20; w = strtok(NULL, " "))
            all[n++] = w;
    }
    for (int i = 0; argv[i] && n < 39; i++)
        all[n++] = argv[i];
    all[n] = NULL;
    pid_t pid;
    if (posix_spawnp(&pid, all[0], NULL, NULL, all, environ) != 0)
        return -1;
    p->pid = (int32_t)pid;
    p->handle = 0;
    return 0;
}

static inline int tu_proc_wait(tu_proc *p)
{
    int st;
    if (waitpid((pid_t)p->pid, &st, 0) != (pid_t)p->pid)
        return -1;
    if (WIFSIGNALED(st))
        return WTERMSIG(st) == SIGKILL ? TU_KILLED : -WTERMSIG(st);
    return WEXITSTATUS(st);
}

static inline void tu_proc_kill(tu_proc *p) { kill((pid_t)p->pid, SIGKILL); }

static inline void tu_yield(void) { sched_yield(); }
/* Waits to be killed; exits if its parent dies first (a test that failed before killing it),
 * so that no helper is left behind. */
static inline void tu_sleep_forever(void)
{
    pid_t parent = getppid();
    struct timespec d = {0, 100000000};
    while (getppid() == parent)
        nanosleep(&d, NULL);
    _exit(3);
}
static inline int32_t tu_pid(void) { return (int32_t)getpid(); }
/* For polling what has no way to tell (a server coming up, a counter on another machine). */
static inline void tu_sleep_ms(unsigned ms)
{
    struct timespec d = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    nanosleep(&d, NULL);
}
#endif

/* Removes every entry of directory `dir` (files only; a missing directory is fine). */
static inline void tu_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096 + 256];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
}

#endif
