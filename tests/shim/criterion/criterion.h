/* A stand-in for the subset of Criterion's API our tests use, for the ThreadSanitizer build only.
 *
 * Why: Criterion's runner cannot start under TSan (its "inheritable arena" is mapped at an
 * address TSan reserves: Criterion issue #274, still open). The TSan run (`make tsan`) therefore
 * compiles the same test files against this header: tests register themselves, and the runner
 * below runs each one in its own forked process with its timeout, as Criterion does. Every
 * other build uses the real Criterion.
 */
#ifndef MSGR_CRITERION_SHIM_H
#define MSGR_CRITERION_SHIM_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

__attribute__((format(printf, 5, 6))) static inline void
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

static inline int msgr_shim_run_one(const msgr_shim_test *t, const msgr_shim_suite *s, void *param)
{
    pid_t pid = fork();
    if (pid == 0) {
        double timeout = t->timeout > 0 ? t->timeout : (s && s->timeout > 0 ? s->timeout : 0);
        if (timeout > 0)
            alarm((unsigned)timeout + 1);
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
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFSIGNALED(st))
        fprintf(stderr, "[FAIL] %s::%s: crashed or timed out (signal %d)\n", t->sname, t->tname,
                WTERMSIG(st));
    else
        fprintf(stderr, "[FAIL] %s::%s (exit %d)\n", t->sname, t->tname, WEXITSTATUS(st));
    return 1;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv; /* Criterion's options (--jobs ...) are accepted and ignored */
    int tested = 0, failed = 0;
    for (msgr_shim_test *t = msgr_shim_tests; t; t = t->next) {
        msgr_shim_suite *s = msgr_shim_suites;
        while (s && strcmp(s->sname, t->sname) != 0)
            s = s->next;
        if (t->params) {
            msgr_shim_params p = t->params();
            for (size_t i = 0; i < p.count; i++, tested++)
                failed += msgr_shim_run_one(t, s, (char *)p.items + i * p.size);
        } else {
            tested++;
            failed += msgr_shim_run_one(t, s, NULL);
        }
    }
    printf("[====] Synthesis (shim runner): Tested: %d | Passing: %d | Failing: %d\n", tested,
           tested - failed, failed);
    return failed != 0;
}

#endif
