/* The OS layer's liveness checks: a process is named by its pid and start time, and a zombie
 * (exited, not yet reaped) is dead, while a process whose main thread exited and whose other
 * threads run is alive. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "os/os.h"

TestSuite(os, .timeout = 30);

/* Waits (bounded) until /proc shows pid in state `want`. */
static int wait_state(pid_t pid, char want)
{
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 20000; i++) {
        FILE *f = fopen(p, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = 0;
            char *q = strrchr(buf, ')');
            if (q && q[1] == ' ' && q[2] == want)
                return 1;
        }
        usleep(500);
    }
    return 0;
}

Test(os, this_process_is_alive_with_its_start_time)
{
    uint64_t start;
    cr_assert_eq(msgr_os_proc_start(msgr_os_pid(), &start), 0);
    cr_assert(msgr_os_proc_alive(msgr_os_pid(), start));
    cr_assert(msgr_os_pid_alive(msgr_os_pid()));
    cr_assert_not(msgr_os_proc_alive(msgr_os_pid(), start + 1), "another start: another process");
    cr_assert_not(msgr_os_pid_alive(0));
    cr_assert_not(msgr_os_pid_alive(-5));
}

Test(os, a_zombie_is_dead)
{
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(ready[0]);
        pause();
        _exit(0);
    }
    uint64_t start;
    cr_assert_eq(msgr_os_proc_start(pid, &start), 0);
    cr_assert(msgr_os_proc_alive(pid, start));
    kill(pid, SIGKILL);
    cr_assert(wait_state(pid, 'Z'), "the child became a zombie");
    /* A killed process whose other threads are still on their way out (a sanitizer runtime
     * starts one) shows Z with more than one thread for a moment: alive until they are gone. */
    for (int i = 0; i < 4000 && msgr_os_proc_alive(pid, start); i++)
        usleep(500);
    /* Not reaped yet: kill(pid, 0) still succeeds, and /proc still shows its start time. */
    cr_assert_eq(kill(pid, 0), 0);
    cr_assert_not(msgr_os_proc_alive(pid, start), "a zombie counts as dead");
    cr_assert_not(msgr_os_pid_alive(pid), "a zombie counts as dead (pid alone)");
    waitpid(pid, NULL, 0);
    cr_assert_not(msgr_os_proc_alive(pid, start));
    close(ready[1]);
}

static void *linger_thread(void *arg)
{
    int fd = *(int *)arg;
    char c;
    ssize_t n = read(fd, &c, 1); /* until the parent closes its end */
    (void)n;
    _exit(0);
}

Test(os, a_process_whose_main_thread_exited_is_alive_while_threads_run)
{
    int gate[2];
    cr_assert_eq(pipe(gate), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(gate[1]);
        pthread_t t;
        pthread_create(&t, NULL, linger_thread, &gate[0]);
        pthread_exit(NULL); /* the main thread goes; the other keeps the process running */
    }
    close(gate[0]);
    uint64_t start;
    cr_assert_eq(msgr_os_proc_start(pid, &start), 0);
    cr_assert(wait_state(pid, 'Z'), "the group leader shows Z");
    cr_assert(msgr_os_proc_alive(pid, start), "a thread still runs: alive");
    cr_assert(msgr_os_pid_alive(pid));
    close(gate[1]); /* the thread exits the process */
    int st;
    waitpid(pid, &st, 0);
    cr_assert_not(msgr_os_proc_alive(pid, start));
}
