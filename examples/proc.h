/* examples/proc.h: starting, waiting for and killing another copy of this program, on POSIX
 * systems and on Windows. The examples that run workers in several processes use it; the
 * library itself needs none of this (any process may open a named or file bus).
 */
#ifndef MSGR_EXAMPLES_PROC_H
#define MSGR_EXAMPLES_PROC_H

#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;
#endif

typedef struct ex_proc {
    long pid;
    void *handle; /* Windows: the process handle */
} ex_proc;

/* This program's path, for starting copies of it. */
static inline void ex_self_path(char *out, size_t n, const char *argv0)
{
#ifdef _WIN32
    if (!GetModuleFileNameA(NULL, out, (DWORD)n))
        snprintf(out, n, "%s", argv0);
#else
    ssize_t len = readlink("/proc/self/exe", out, n - 1);
    if (len > 0)
        out[len] = 0;
    else
        snprintf(out, n, "%s", argv0);
#endif
}

/* Starts program argv[0] with its arguments (Windows: none may hold a double quote).
 * Returns 0 or -1. */
static inline int ex_start(ex_proc *p, char *const argv[])
{
#ifdef _WIN32
    char cmd[8192];
    size_t n = 0;
    for (int i = 0; argv[i]; i++) {
        int k = snprintf(cmd + n, sizeof cmd - n, "%s\"%s\"", i ? " " : "", argv[i]);
        if (k < 0 || (size_t)k >= sizeof cmd - n)
            return -1;
        n += (size_t)k;
    }
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi))
        return -1;
    CloseHandle(pi.hThread);
    p->pid = (long)pi.dwProcessId;
    p->handle = pi.hProcess;
    return 0;
#else
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
        return -1;
    p->pid = (long)pid;
    p->handle = NULL;
    return 0;
#endif
}

/* Waits for it to end: 0 if it exited with status 0, else -1. With `block` 0, returns 1 at
 * once while it still runs. */
static inline int ex_wait(ex_proc *p, int block)
{
#ifdef _WIN32
    if (WaitForSingleObject(p->handle, block ? INFINITE : 0) == WAIT_TIMEOUT)
        return 1;
    DWORD code = 1;
    GetExitCodeProcess(p->handle, &code);
    CloseHandle(p->handle);
    return code == 0 ? 0 : -1;
#else
    int st;
    pid_t r = waitpid((pid_t)p->pid, &st, block ? 0 : WNOHANG);
    if (r == 0)
        return 1;
    return r == (pid_t)p->pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
#endif
}

/* Ends it at once, at whatever it is doing (SIGKILL, TerminateProcess). */
static inline void ex_kill(ex_proc *p)
{
#ifdef _WIN32
    TerminateProcess(p->handle, 137);
#else
    kill((pid_t)p->pid, SIGKILL);
#endif
}

static inline void ex_sleep_ms(unsigned ms)
{
#ifdef _WIN32
    Sleep(ms);
#else
    struct timespec d = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    nanosleep(&d, NULL);
#endif
}

static inline long ex_pid(void)
{
#ifdef _WIN32
    return (long)GetCurrentProcessId();
#else
    return (long)getpid();
#endif
}

#endif
