/* ui_loop: background work delivered to a main loop built on libuv, acknowledged by hand.
 *
 * The `ui` worker is driven by a libuv loop that watches its descriptor (msgr_bus_fd) beside
 * whatever else the loop has; its handler only queues each update, the loop "renders" queued
 * updates (newest of each batch first, so acknowledgements come out of order) and
 * acknowledges each after rendering it (explicit acknowledgement on a file bus).
 *
 *   ui_loop [--count N] [--dir DIR]     the story: a fetcher queues N updates; a UI process
 *                                       renders some and is killed mid-way; a second one
 *                                       gets exactly the updates the first did not
 *                                       acknowledge, in order; checked, exit 0 when right
 *   ui_loop --ui DIR [--kill-after K]   one UI process (renders until its inbox is empty, or
 *                                       SIGKILLs itself after K renders)
 * Each UI process writes the numbers it acknowledged to DIR/acked.<pid>. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "../proc.h"

#include "ui_loop.def.h"

#define QMAX 64
static struct {
    uint64_t n, seq;
} queue[QMAX];
static int qlen;
static msgr_bus *bus;
static FILE *acked_log;
static uint64_t rendered, kill_after, last_n = 0;
static int out_of_order, first = 1;

void on_update(msgr_ctx *ctx, const Update *u)
{
    /* Keep it: rendered (and acknowledged) later, by the loop. */
    if (!first && u->n <= last_n)
        out_of_order = 1;
    first = 0;
    last_n = u->n;
    queue[qlen].n = u->n;
    queue[qlen].seq = msgr_ctx_seq(ctx);
    qlen++;
}

static void render_queued(void)
{
    msgr_ctx *ctx;
    msgr_bus_ctx(bus, uidemo_W_ui, &ctx);
    while (qlen > 0) {
        qlen--; /* newest first */
        fprintf(acked_log, "%llu\n", (unsigned long long)queue[qlen].n);
        fflush(acked_log); /* written before the acknowledgement: a kill between the two
                              means a duplicate, never a loss */
        if (msgr_ack(ctx, queue[qlen].seq)) {
            fprintf(stderr, "ui_loop: ack: %s\n", msgr_last_error());
            exit(1);
        }
        if (++rendered == kill_after)
            kill(getpid(), SIGKILL); /* a crash, wherever the loop is */
    }
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)events;
    if (status < 0) {
        fprintf(stderr, "ui_loop: poll: %s\n", uv_strerror(status));
        exit(1);
    }
    for (;;) {
        int n = msgr_bus_poll(bus, uidemo_W_ui, QMAX - qlen);
        if (n < 0) {
            fprintf(stderr, "ui_loop: msgr_bus_poll: %s\n", msgr_strerror(n));
            exit(1);
        }
        if (n == 0 && qlen == 0)
            break; /* empty: the descriptor wakes us for the next */
        render_queued();
    }
    /* Done when nothing more is pending anywhere (the fetcher finished before we started). */
    msgr_counters c;
    msgr_bus_counters(bus, uidemo_W_ui, &c);
    if (c.queued_bytes == 0)
        uv_stop(h->loop);
}

static int ui_process(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/app.bus", dir);
    const char *const ui[] = {"ui", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_FILE, .name = path, .run = ui, .drive = ui,
                       .manual_ack = ui, .ack_window = QMAX};
    int rc = msgr_bus_open(uidemo_app(), &o, &bus);
    if (rc) {
        fprintf(stderr, "ui_loop: open %s: %s %s\n", path, msgr_strerror(rc), msgr_last_error());
        return 1;
    }
    snprintf(path, sizeof path, "%s/acked.%ld", dir, ex_pid());
    if (!(acked_log = fopen(path, "w")))
        return 1;
    intptr_t fd;
    if ((rc = msgr_bus_fd(bus, uidemo_W_ui, &fd))) {
        fprintf(stderr, "ui_loop: msgr_bus_fd: %s\n", msgr_last_error());
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    uv_poll_t watch;
    uv_poll_init(loop, &watch, (int)fd);
    uv_poll_start(&watch, UV_READABLE, on_readable);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_poll_stop(&watch);
    uv_close((uv_handle_t *)&watch, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    fclose(acked_log);
    msgr_bus_close(bus);
    if (out_of_order) {
        fprintf(stderr, "ui_loop: updates came out of order\n");
        return 1;
    }
    return 0;
}

/* Reads the numbers a UI process acknowledged into seen[] (counts); returns how many. */
static uint64_t read_acked(const char *dir, long pid, uint32_t *seen, uint64_t count)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/acked.%ld", dir, pid);
    FILE *f = fopen(path, "r");
    uint64_t k = 0;
    unsigned long long v;
    while (f && fscanf(f, "%llu", &v) == 1)
        if (v < count) {
            seen[v]++;
            k++;
        }
    if (f)
        fclose(f);
    return k;
}

int main(int argc, char **argv)
{
    uint64_t count = 10000;
    const char *dir = NULL, *ui = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--ui") && i + 1 < argc)
            ui = argv[++i];
        else if (!strcmp(argv[i], "--kill-after") && i + 1 < argc)
            kill_after = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: ui_loop [--count N] [--dir DIR] | --ui DIR [--kill-after K]\n");
            return 2;
        }
    }
    if (ui)
        return ui_process(ui);

    char own[128], path[4200], self[4096];
    if (!dir) {
        snprintf(own, sizeof own, "/tmp/msgr-ui-loop-%ld", ex_pid());
        dir = own;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return 1;
    snprintf(path, sizeof path, "%s/app.bus", dir);
    /* The fetcher: N updates queued in the UI's inbox (a file: they wait for it). */
    const char *const fetcher[] = {"fetcher", NULL};
    msgr_bus_opts o = {.kind = MSGR_REGION_FILE, .name = path, .run = fetcher, .drive = fetcher,
                       .flags = MSGR_BUS_FRESH, .inbox_capacity = 1 << 22};
    msgr_bus *b;
    int rc = msgr_bus_open(uidemo_app(), &o, &b);
    if (rc) {
        fprintf(stderr, "ui_loop: create %s: %s\n", path, msgr_last_error());
        return 1;
    }
    msgr_ctx *ctx;
    msgr_bus_ctx(b, uidemo_W_fetcher, &ctx);
    for (uint64_t i = 0; i < count; i++) {
        Update u = {.n = i, .value = i * 7};
        if ((rc = uidemo_send_Update(ctx, &u)) < 0) {
            fprintf(stderr, "ui_loop: send: %s\n", msgr_strerror(rc));
            return 1;
        }
    }
    msgr_bus_close(b);

    ex_self_path(self, sizeof self, argv[0]);
    char k[32];
    snprintf(k, sizeof k, "%llu", (unsigned long long)(count / 3));
    char *first_ui[] = {self, "--ui", (char *)dir, "--kill-after", k, NULL};
    char *second_ui[] = {self, "--ui", (char *)dir, NULL};
    ex_proc p1, p2;
    if (ex_start(&p1, first_ui) != 0)
        return 1;
    int st1 = ex_wait(&p1, 1);
    if (ex_start(&p2, second_ui) != 0)
        return 1;
    int st2 = ex_wait(&p2, 1);

    uint32_t *a = calloc(count, sizeof *a), *b2 = calloc(count, sizeof *b2);
    uint64_t na = read_acked(dir, p1.pid, a, count), nb = read_acked(dir, p2.pid, b2, count);
    uint64_t missing = 0, twice = 0;
    for (uint64_t i = 0; i < count; i++) {
        missing += a[i] + b2[i] == 0;
        twice += a[i] && b2[i]; /* acknowledged by the first, delivered again: wrong */
    }
    printf("ui_loop: %llu updates; the first UI acknowledged %llu and was killed (status %d); "
           "the second got %llu (exit %d): %llu missing, %llu acknowledged ones again\n",
           (unsigned long long)count, (unsigned long long)na, st1, (unsigned long long)nb, st2,
           (unsigned long long)missing, (unsigned long long)twice);
    int ok = st1 == -1 && st2 == 0 && na == count / 3 && missing == 0 && twice == 0 &&
             na + nb == count;
    if (!dir || dir == own) { /* our own directory: cleaned up */
        char cmd[4300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", own);
        if (system(cmd) != 0)
            ok = 0;
    }
    free(a);
    free(b2);
    if (!ok) {
        fprintf(stderr, "ui_loop: FAILED\n");
        return 1;
    }
    printf("ok: every update rendered once; after the kill exactly the unacknowledged came back\n");
    return 0;
}
