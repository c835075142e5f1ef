/* Explicit acknowledgement on a file bus (msgr_bus_opts.manual_ack, msgr_ctx_seq, msgr_ack):
 * in and out of order, from another thread, the window's limit, and a restart after a
 * non-prefix set was acknowledged (exactly the unacknowledged ones come back, in order). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test_util.h"
#include "acks.def.h"

#define MAXN 4096
static uint64_t seen_n[MAXN], seen_seq[MAXN];
static uint32_t seen;

void ui_on_item(msgr_ctx *ctx, const Item *m)
{
    if (seen < MAXN) {
        seen_n[seen] = m->n;
        seen_seq[seen] = msgr_ctx_seq(ctx);
        seen++;
    }
}

static char dir[128], path[256];
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/msgr-acks-test-%d", (int)getpid());
    mkdir(dir, 0700);
    tu_empty_dir(dir);
    snprintf(path, sizeof path, "%s/app.bus", dir);
    seen = 0;
}
static void teardown(void)
{
    tu_empty_dir(dir);
    rmdir(dir);
}
TestSuite(acks, .init = setup, .fini = teardown, .timeout = 60);

static const char *const both[] = {"ui", "bg", NULL};
static const char *const ui_manual[] = {"ui", NULL};

static msgr_bus *open_bus(uint32_t window)
{
    msgr_bus_opts o = {.kind = MSGR_REGION_FILE, .name = path, .inbox_capacity = 1 << 20,
                       .run = both, .drive = both, .manual_ack = ui_manual, .ack_window = window};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(ackt_app(), &o, &b), 0, "%s", msgr_last_error());
    return b;
}

static void send_items(msgr_bus *b, uint64_t from, uint64_t n)
{
    msgr_ctx *ctx;
    msgr_bus_ctx(b, ackt_W_bg, &ctx);
    for (uint64_t i = from; i < from + n; i++) {
        Item it = {.n = i};
        cr_assert_geq(ackt_send_Item(ctx, &it), 0);
    }
}

static uint32_t drain(msgr_bus *b)
{
    uint32_t before = seen;
    while (msgr_bus_poll(b, ackt_W_ui, 64) > 0) {
    }
    return seen - before;
}

static msgr_ctx *ui_ctx(msgr_bus *b)
{
    msgr_ctx *ctx;
    msgr_bus_ctx(b, ackt_W_ui, &ctx);
    return ctx;
}

Test(acks, out_of_order_acks_move_the_position_past_the_acknowledged_prefix_only)
{
    msgr_bus *b = open_bus(64);
    send_items(b, 0, 10);
    cr_assert_eq(drain(b), 10u);
    for (uint32_t i = 1; i < 10; i++)
        cr_assert_gt(seen_seq[i], seen_seq[i - 1], "sequence numbers grow in order");
    msgr_counters c;
    msgr_ctx *ctx = ui_ctx(b);
    cr_assert_eq(msgr_ctx_manual_ack(ctx), 1);
    msgr_ctx *bgc;
    cr_assert_eq(msgr_bus_ctx(b, ackt_W_bg, &bgc), 0);
    cr_assert_eq(msgr_ctx_manual_ack(bgc), 0, "bg is acknowledged by the runtime");
    cr_assert_eq(msgr_ctx_manual_ack(NULL), MSGR_EINVAL);
    cr_assert_eq(msgr_ack(ctx, seen_seq[3]), 0);
    cr_assert_eq(msgr_ack(ctx, seen_seq[1]), 0);
    cr_assert_eq(msgr_ack(ctx, seen_seq[1]), MSGR_EINVAL, "twice");
    cr_assert_eq(msgr_ack(ctx, seen_seq[3] + 1), MSGR_EINVAL, "never handed out");
    msgr_bus_counters(b, ackt_W_ui, &c);
    uint64_t pending = c.queued_bytes;
    cr_assert_gt(pending, 0u);
    cr_assert_eq(msgr_ack(ctx, seen_seq[0]), 0); /* prefix 0,1 */
    msgr_bus_counters(b, ackt_W_ui, &c);
    cr_assert_lt(c.queued_bytes, pending, "the prefix moved");
    pending = c.queued_bytes;
    cr_assert_eq(msgr_ack(ctx, seen_seq[2]), 0); /* prefix 0..3 */
    msgr_bus_counters(b, ackt_W_ui, &c);
    cr_assert_lt(c.queued_bytes, pending);
    for (uint32_t i = 4; i < 10; i++)
        cr_assert_eq(msgr_ack(ctx, seen_seq[i]), 0);
    msgr_bus_counters(b, ackt_W_ui, &c);
    cr_assert_eq(c.queued_bytes, 0u, "all acknowledged: nothing pending");
    msgr_ctx *bg;
    msgr_bus_ctx(b, ackt_W_bg, &bg);
    cr_assert_eq(msgr_ack(bg, 0), MSGR_ESTATE, "bg acknowledges nothing by itself");
    msgr_bus_close(b);
}

Test(acks, a_full_window_holds_the_reader_back)
{
    msgr_bus *b = open_bus(4);
    send_items(b, 0, 10);
    cr_assert_eq(drain(b), 4u, "the window: 4 outstanding at most");
    cr_assert_eq(msgr_bus_poll(b, ackt_W_ui, 64), 0);
    cr_assert_eq(msgr_ack(ui_ctx(b), seen_seq[2]), 0);
    cr_assert_eq(msgr_bus_poll(b, ackt_W_ui, 64), 0, "a hole: the prefix has not moved");
    cr_assert_eq(msgr_ack(ui_ctx(b), seen_seq[0]), 0);
    cr_assert_eq(drain(b), 1u, "one place freed");
    for (uint32_t i = 0; i < seen; i++)
        cr_assert_eq(seen_n[i], i);
    msgr_bus_close(b);
}

typedef struct acker {
    msgr_ctx *ctx;
    uint32_t from, to;
    int rc;
} acker;

static void *ack_main(void *arg)
{
    acker *a = arg;
    for (uint32_t i = a->to; i-- > a->from;) /* backwards: out of order */
        if ((a->rc = msgr_ack(a->ctx, seen_seq[i])))
            break;
    return NULL;
}

Test(acks, acknowledged_from_other_threads)
{
    msgr_bus *b = open_bus(2048);
    send_items(b, 0, 2000);
    cr_assert_eq(drain(b), 2000u);
    acker a[2] = {{ui_ctx(b), 0, 1000, 0}, {ui_ctx(b), 1000, 2000, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, ack_main, &a[i]);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(a[i].rc, 0);
    }
    msgr_counters c;
    msgr_bus_counters(b, ackt_W_ui, &c);
    cr_assert_eq(c.queued_bytes, 0u);
    msgr_bus_close(b);
}

Test(acks, after_a_kill_exactly_the_unacknowledged_come_back_in_order)
{
    static const int acked[10] = {1, 1, 0, 0, 1, 0, 0, 1, 1, 0};
    pid_t pid = fork();
    if (pid == 0) {
        msgr_bus *b = open_bus(64);
        send_items(b, 0, 10);
        if (drain(b) != 10)
            _exit(2);
        for (int i = 9; i >= 0; i--)
            if (acked[i] && msgr_ack(ui_ctx(b), seen_seq[i]))
                _exit(3);
        kill(getpid(), SIGKILL); /* no close: as a crash */
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st), "the child died by the kill (status %d)", st);
    seen = 0;
    msgr_bus *b = open_bus(64);
    cr_assert_eq(drain(b), 5u, "the five unacknowledged come back");
    uint64_t want[5] = {2, 3, 5, 6, 9};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(seen_n[i], want[i], "in order: %d is item %llu", i,
                     (unsigned long long)seen_n[i]);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(msgr_ack(ui_ctx(b), seen_seq[i]), 0);
    msgr_bus_close(b);
    seen = 0;
    b = open_bus(64);
    cr_assert_eq(drain(b), 0u, "all acknowledged: nothing comes back");
    msgr_bus_close(b);
}

Test(acks, refused_on_a_memory_bus_or_for_a_worker_not_run_here)
{
    msgr_bus_opts o = {.run = both, .manual_ack = ui_manual};
    msgr_bus *b;
    cr_assert_eq(msgr_bus_open(ackt_app(), &o, &b), MSGR_EINVAL);
    cr_assert(strstr(msgr_last_error(), "file bus") != NULL, "%s", msgr_last_error());
    static const char *const bg_only[] = {"bg", NULL};
    msgr_bus_opts f = {.kind = MSGR_REGION_FILE, .name = path, .run = bg_only,
                       .manual_ack = ui_manual};
    cr_assert_eq(msgr_bus_open(ackt_app(), &f, &b), MSGR_EINVAL);
}

static int readable(intptr_t fd, int ms)
{
    struct pollfd p = {(int)fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

Test(acks, the_descriptor_of_a_file_inbox_waits_for_room_in_the_window)
{
    msgr_bus *b = open_bus(2);
    intptr_t fd;
    cr_assert_eq(msgr_bus_fd(b, ackt_W_ui, &fd), 0, "%s", msgr_last_error());
    cr_assert_not(readable(fd, 30), "nothing sent yet");
    send_items(b, 0, 3);
    cr_assert(readable(fd, 10000), "a record came");
    cr_assert_eq(drain(b), 2u, "the window holds two");
    cr_assert_not(readable(fd, 50), "a record is there, but the window is full: not readable");
    cr_assert_eq(msgr_ack(ui_ctx(b), seen_seq[0]), 0);
    cr_assert(readable(fd, 10000), "room again: readable");
    cr_assert_eq(drain(b), 1u);
    cr_assert_eq(seen_n[2], 2u);
    msgr_bus_close(b);
}

Test(acks, a_long_run_of_out_of_order_acks_compacts_its_journal_and_still_restarts_exactly)
{
    pid_t pid = fork();
    if (pid == 0) {
        msgr_bus *b = open_bus(16); /* the journal compacts every 64 entries */
        send_items(b, 0, 400);
        uint32_t done = 0;
        while (done < 400) {
            uint32_t from = seen;
            if (msgr_bus_poll(b, ackt_W_ui, 64) < 0)
                _exit(2);
            for (uint32_t i = seen; i-- > from;) /* newest first */
                if (!(seen_n[i] >= 385 && seen_n[i] % 4 == 1) && msgr_ack(ui_ctx(b), seen_seq[i]))
                    _exit(3);
            done = seen;
            if (seen == from && done < 400)
                _exit(4); /* stuck: the window (from the oldest unacknowledged) is full */
        }
        kill(getpid(), SIGKILL);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st), "child status %d", st);
    seen = 0;
    msgr_bus *b = open_bus(16);
    cr_assert_eq(drain(b), 4u, "the four left unacknowledged come back");
    for (uint32_t i = 0; i < seen; i++)
        cr_assert_eq(seen_n[i], 385u + 4 * i);
    msgr_bus_close(b);
}
