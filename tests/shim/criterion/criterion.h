/* A stand-in for the subset of Criterion's API our tests use, where Criterion cannot run.
 *
 * Why: Criterion's runner cannot start under TSan (its "inheritable arena" is mapped at an
 * address TSan reserves: Criterion issue #274, still open), and no cross build of it exists for
 * the other targets (aarch64 under qemu, Windows under wine). Those builds compile the same test
 * files against this header: tests register themselves, and the runner below runs each one in
 * a process of its own with its timeout, as Criterion does: forked on POSIX, on Windows the
 * test program started again with "--shim-run N". Every other build uses the real Criterion.
 */
#ifndef MSGR_CRITERION_SHIM_H
#define MSGR_CRITERION_SHIM_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <sys/wait.h>
#include <unistd.h>
#endif

typedef struct msgr_shim_params {
    void *items;
    size_t size;
    size_t count;
} msgr_shim_params;

typedef struct msgr_shim_test {
    const char *sname, *tname;
    void (*fn)(void);
    void (*pfn)(void *);
    msgr_shim_params (*params)(void);
    void (*init)(void);
    void (*fini)(void);
    double timeout;
    struct msgr_shim_test *next;
} msgr_shim_test;

typedef msgr_shim_test msgr_shim_suite;

static msgr_shim_test *msgr_shim_tests;
static msgr_shim_suite *msgr_shim_suites;

static inline void msgr_shim_add(msgr_shim_test *t, int suite)
{
    msgr_shim_test **list = suite ? &msgr_shim_suites : &msgr_shim_tests;
    while (*list)
        list = &(*list)->next; /* keep declaration order */
    *list = t;
}

#define TestSuite(suite, ...)                                                                 \
    static msgr_shim_suite msgr_shim_suite_##suite = {.sname = #suite, __VA_ARGS__};           \
    __attribute__((constructor)) static void msgr_shim_suite_reg_##suite(void)                \
    {                                                                                          \
        msgr_shim_add(&msgr_shim_suite_##suite, 1);                                            \
    }

#define Test(suite, name, ...)                                                                \
    static void suite##_##name##_impl(void);                                                   \
    static msgr_shim_test msgr_shim_t_##suite##_##name = {                                     \
        .sname = #suite, .tname = #name, .fn = suite##_##name##_impl, __VA_ARGS__};             \
    __attribute__((constructor)) static void msgr_shim_reg_##suite##_##name(void)             \
    {                                                                                          \
        msgr_shim_add(&msgr_shim_t_##suite##_##name, 0);                                       \
    }                                                                                          \
    static void suite##_##name##_impl(void)

#ifdef __MINGW_PRINTF_FORMAT /* mingw: its own C99 printf (__USE_MINGW_ANSI_STDIO) */
#define MSGR_SHIM_PRINTF __MINGW_PRINTF_FORMAT
#else
#define MSGR_SHIM_PRINTF printf
#endif
__attribute__((format(MSGR_SHIM_PRINTF, 5, 6))) static inline void
msgr_shim_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
{
    if (ok)
        return;
    fprintf(stderr, "[----] %s:%d: Assertion Failed: %s\n[----]   ", file, line, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    _exit(1);
}

#define MSGR_SHIM_CHECK(ok, expr, ...) msgr_shim_check((ok), __FILE__, __LINE__, expr, "" __VA_ARGS__)
#define cr_assert(c, ...) MSGR_SHIM_CHECK(!!(c), #c, __VA_ARGS__)
#define cr_log_info(...) (fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))
#define cr_assert_not(c, ...) MSGR_SHIM_CHECK(!(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_eq(a, b, ...) MSGR_SHIM_CHECK((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) MSGR_SHIM_CHECK((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) MSGR_SHIM_CHECK((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) MSGR_SHIM_CHECK((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) MSGR_SHIM_CHECK((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) MSGR_SHIM_CHECK((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...) MSGR_SHIM_CHECK((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) MSGR_SHIM_CHECK((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) MSGR_SHIM_CHECK(strcmp((a), (b)) == 0, #a " equals " #b, __VA_ARGS__)

/* Runs the test in the calling process: init, the test, fini. */
static inline void msgr_shim_body(const msgr_shim_test *t, const msgr_shim_suite *s, void *param)
{
    void (*init)(void) = t->init ? t->init : (s ? s->init : NULL);
    void (*fini)(void) = t->fini ? t->fini : (s ? s->fini : NULL);
    if (init)
        init();
    if (t->pfn)
        t->pfn(param);
    else
        t->fn();
    if (fini)
        fini();
    fflush(NULL);
}

static inline double msgr_shim_timeout(const msgr_shim_test *t, const msgr_shim_suite *s)
{
    return t->timeout > 0 ? t->timeout : (s && s->timeout > 0 ? s->timeout : 0);
}

static inline int msgr_shim_report(const msgr_shim_test *t, int exited, int code)
{
    if (exited && code == 0)
        return 0;
    if (!exited)
        fprintf(stderr, "[FAIL] %s::%s: crashed or timed out (signal %d)\n", t->sname, t->tname,
                code);
    else
        fprintf(stderr, "[FAIL] %s::%s (exit %d)\n", t->sname, t->tname, code);
    return 1;
}

#ifdef _WIN32
/* The test program again, running test number `index` of the expanded list. */
static inline int msgr_shim_run_one(const msgr_shim_test *t, const msgr_shim_suite *s,
                                    void *param, int index)
{
    (void)param;
    char self[MAX_PATH], cmd[MAX_PATH + 64];
    GetModuleFileNameA(NULL, self, sizeof self);
    snprintf(cmd, sizeof cmd, "\"%s\" --shim-run %d", self, index);
    STARTUPINFOA si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    PROCESS_INFORMATION pi;
    if (!CreateProcessA(NULL, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "[FAIL] %s::%s: cannot start (error %lu)\n", t->sname, t->tname,
                GetLastError());
        return 1;
    }
    double timeout = msgr_shim_timeout(t, s);
    DWORD ms = timeout > 0 ? (DWORD)(timeout * 1000) + 1000 : INFINITE;
    DWORD code = 1;
    int exited = WaitForSingleObject(pi.hProcess, ms) == WAIT_OBJECT_0;
    if (!exited)
        TerminateProcess(pi.hProcess, 9);
    else
        GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return msgr_shim_report(t, exited, exited ? (int)code : 9);
}
#else
static inline int msgr_shim_run_one(const msgr_shim_test *t, const msgr_shim_suite *s,
                                    void *param, int index)
{
    (void)index;
    pid_t pid = fork();
    if (pid == 0) {
        double timeout = msgr_shim_timeout(t, s);
        if (timeout > 0)
            alarm((unsigned)timeout + 1);
        msgr_shim_body(t, s, param);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st))
        return msgr_shim_report(t, 0, WTERMSIG(st));
    return msgr_shim_report(t, 1, WEXITSTATUS(st));
}
#endif

int main(int argc, char **argv)
{
    /* Criterion's options (--jobs ...) are accepted and ignored; --shim-run N runs test N of
     * the expanded list in this process (the Windows runner starts each test that way). */
    int only = -1;
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--shim-run") == 0)
            only = atoi(argv[i + 1]);
    int tested = 0, failed = 0;
    for (msgr_shim_test *t = msgr_shim_tests; t; t = t->next) {
        msgr_shim_suite *s = msgr_shim_suites;
        while (s && strcmp(s->sname, t->sname) != 0)
            s = s->next;
        msgr_shim_params p = {NULL, 0, 1};
        if (t->params)
            p = t->params();
        for (size_t i = 0; i < p.count; i++, tested++) {
            void *param = t->params ? (char *)p.items + i * p.size : NULL;
            if (only >= 0) {
                if (tested == only) {
                    msgr_shim_body(t, s, param);
                    return 0;
                }
                continue;
            }
            failed += msgr_shim_run_one(t, s, param, tested);
        }
    }
    if (only >= 0)
        return 2; /* no such test */
    printf("[====] Synthesis (shim runner): Tested: %d | Passing: %d | Failing: %d\n", tested,
           tested - failed, failed);
    return failed != 0;
}

#endif
