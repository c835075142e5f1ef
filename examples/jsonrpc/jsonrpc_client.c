/* jsonrpc_client: talks JSON-RPC 2.0 to jsonrpc_server over messenger's IPC transport, one
 * JSON text per line, and checks every answer against the specification: requests with
 * positional and named params, notifications (no answer), unknown methods, parse errors,
 * invalid requests, batches (empty, invalid, mixed, all notifications), invalid params and an
 * application error. Then several connections at once call `count` and check that no two calls
 * got the same count.
 *
 *   jsonrpc_client PATH [--clients N]
 */
#include "jsonrpc.h"

#include <messenger.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    msgr_ipc_conn *c;
    char buf[65536];
    size_t len;
} line_conn;

static int failures;

static int conn_open(line_conn *lc, const char *path)
{
    msgr_ipc_opts o = {.flags = MSGR_IPC_STREAM, .connect_timeout_ns = 10000000000ll};
    lc->len = 0;
    int rc = msgr_ipc_connect(path, &o, &lc->c);
    if (rc)
        fprintf(stderr, "jsonrpc_client: %s: %s (%s)\n", path, msgr_strerror(rc),
                msgr_last_error());
    return rc;
}

static int send_line(line_conn *lc, const char *text)
{
    int rc = msgr_ipc_send(lc->c, text, strlen(text), 10000000000ll);
    return rc ? rc : msgr_ipc_send(lc->c, "\n", 1, 10000000000ll);
}

/* The next line from the server, parsed (NULL on a timeout or a broken line). */
static json_t *read_reply(line_conn *lc, int64_t timeout_ns)
{
    for (;;) {
        char *nl = memchr(lc->buf, '\n', lc->len);
        if (nl) {
            *nl = 0;
            json_t *j = json_loads(lc->buf, JSON_DECODE_ANY, NULL);
            lc->len -= (size_t)(nl + 1 - lc->buf);
            memmove(lc->buf, nl + 1, lc->len);
            return j;
        }
        int n = msgr_ipc_recv(lc->c, lc->buf + lc->len, sizeof lc->buf - lc->len - 1, timeout_ns);
        if (n <= 0)
            return NULL;
        lc->len += (size_t)n;
    }
}

static void check(int ok, const char *what, const char *req, json_t *got)
{
    if (ok)
        return;
    char *text = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    fprintf(stderr, "jsonrpc_client: FAILED %s\n  sent: %s\n  got:  %s\n", what, req,
            text ? text : "(nothing)");
    free(text);
    failures++;
}

static const char *str(json_t *j)
{
    const char *s = json_string_value(j);
    return s ? s : "";
}

static int error_code(json_t *r)
{
    return (int)json_integer_value(json_object_get(json_object_get(r, "error"), "code"));
}

static int id_is(json_t *r, json_int_t id)
{
    json_t *i = json_object_get(r, "id");
    return json_is_integer(i) && json_integer_value(i) == id &&
           !strcmp(str(json_object_get(r, "jsonrpc")), "2.0");
}

/* Sends req and checks one reply: its id, and its result (as JSON text) or error code. */
static void expect(line_conn *lc, const char *what, const char *req, json_int_t id,
                   const char *result, int code)
{
    send_line(lc, req);
    json_t *r = read_reply(lc, 10000000000ll);
    int ok = r != NULL;
    if (ok && result) {
        json_t *want = json_loads(result, JSON_DECODE_ANY, NULL);
        ok = id_is(r, id) && json_equal(json_object_get(r, "result"), want) &&
             !json_object_get(r, "error");
        json_decref(want);
    } else if (ok) {
        json_t *rid = json_object_get(r, "id");
        ok = error_code(r) == code && !json_object_get(r, "result") &&
             (id < 0 ? json_is_null(rid) : id_is(r, id));
    }
    check(ok, what, req, r);
    json_decref(r);
}

static void conformance(line_conn *lc)
{
    expect(lc, "positional params", "{\"jsonrpc\":\"2.0\",\"method\":\"subtract\",\"params\":[42,23],\"id\":1}", 1, "19", 0);
    expect(lc, "positional params, the other way", "{\"jsonrpc\":\"2.0\",\"method\":\"subtract\",\"params\":[23,42],\"id\":2}", 2, "-19", 0);
    expect(lc, "named params", "{\"jsonrpc\":\"2.0\",\"method\":\"subtract\",\"params\":{\"subtrahend\":23,\"minuend\":42},\"id\":3}", 3, "19", 0);
    /* a notification has no answer: the next answer is the request's after it */
    send_line(lc, "{\"jsonrpc\":\"2.0\",\"method\":\"count\"}");
    send_line(lc, "{\"jsonrpc\":\"2.0\",\"method\":\"count\",\"id\":4}");
    json_t *r = read_reply(lc, 10000000000ll);
    check(r && id_is(r, 4) && json_is_integer(json_object_get(r, "result")),
          "a notification gets no answer", "count (notification), then count id 4", r);
    json_int_t c0 = json_integer_value(json_object_get(r, "result"));
    json_decref(r);
    send_line(lc, "{\"jsonrpc\":\"2.0\",\"method\":\"count\"}");
    send_line(lc, "{\"jsonrpc\":\"2.0\",\"method\":\"count\",\"id\":5}");
    r = read_reply(lc, 10000000000ll);
    check(r && json_integer_value(json_object_get(r, "result")) >= c0 + 2,
          "notifications count too", "count (notification), then count id 5", r);
    json_decref(r);
    expect(lc, "unknown method", "{\"jsonrpc\":\"2.0\",\"method\":\"foobar\",\"id\":6}", 6, NULL, -32601);
    expect(lc, "parse error", "{\"jsonrpc\":\"2.0\",\"method\":\"foobar,\"params\":\"bar\",\"baz]", -1, NULL, -32700);
    expect(lc, "invalid request", "{\"jsonrpc\":\"2.0\",\"method\":1,\"params\":\"bar\"}", -1, NULL, -32600);
    expect(lc, "batch, invalid JSON", "[{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":[1,2,4],\"id\":\"1\"},{\"jsonrpc\":\"2.0\",\"method\"]", -1, NULL, -32700);
    expect(lc, "empty batch", "[]", -1, NULL, -32600);
    const char *bad = "[1,2,3]";
    send_line(lc, bad);
    r = read_reply(lc, 10000000000ll);
    int ok = json_is_array(r) && json_array_size(r) == 3;
    for (size_t i = 0; ok && i < 3; i++)
        ok = error_code(json_array_get(r, i)) == -32600 &&
             json_is_null(json_object_get(json_array_get(r, i), "id"));
    check(ok, "batch of invalid requests", bad, r);
    json_decref(r);
    const char *mixed = "[{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"hi\"},\"id\":\"1\"},"
                        "{\"jsonrpc\":\"2.0\",\"method\":\"count\"},"
                        "{\"jsonrpc\":\"2.0\",\"method\":\"subtract\",\"params\":[42,23],\"id\":\"2\"},"
                        "{\"foo\":\"boo\"},"
                        "{\"jsonrpc\":\"2.0\",\"method\":\"foo.get\",\"params\":{\"name\":\"myself\"},\"id\":\"5\"},"
                        "{\"jsonrpc\":\"2.0\",\"method\":\"sort\",\"params\":{\"list\":[3,1,2],\"descending\":true},\"id\":\"9\"}]";
    send_line(lc, mixed);
    r = read_reply(lc, 10000000000ll);
    ok = json_is_array(r) && json_array_size(r) == 5; /* every member but the notification */
    int seen = 0;
    for (size_t i = 0; ok && i < json_array_size(r); i++) {
        json_t *e = json_array_get(r, i), *id = json_object_get(e, "id");
        const char *s = json_string_value(id);
        if (s && !strcmp(s, "1"))
            seen |= 1 * !strcmp(str(json_object_get(e, "result")), "hi");
        else if (s && !strcmp(s, "2"))
            seen |= 2 * (json_integer_value(json_object_get(e, "result")) == 19);
        else if (s && !strcmp(s, "5"))
            seen |= 4 * (error_code(e) == -32601);
        else if (s && !strcmp(s, "9")) {
            json_t *want = json_loads("[3,2,1]", 0, NULL);
            seen |= 8 * json_equal(json_object_get(e, "result"), want);
            json_decref(want);
        } else if (json_is_null(id))
            seen |= 16 * (error_code(e) == -32600);
    }
    check(ok && seen == 31, "mixed batch", mixed, r);
    json_decref(r);
    /* a batch of notifications only: no answer at all (the next one is the request's) */
    send_line(lc, "[{\"jsonrpc\":\"2.0\",\"method\":\"count\"},{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"x\"]}]");
    expect(lc, "a batch of notifications gets no answer", "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"after\"],\"id\":7}", 7, "\"after\"", 0);
    expect(lc, "invalid params", "{\"jsonrpc\":\"2.0\",\"method\":\"subtract\",\"params\":[\"a\"],\"id\":8}", 8, NULL, -32602);
    expect(lc, "sort ascending", "{\"jsonrpc\":\"2.0\",\"method\":\"sort\",\"params\":{\"list\":[5,-1,3]},\"id\":10}", 10, "[-1,3,5]", 0);
    expect(lc, "divide", "{\"jsonrpc\":\"2.0\",\"method\":\"divide\",\"params\":{\"dividend\":7,\"divisor\":2},\"id\":11}", 11, "3.5", 0);
    expect(lc, "division by zero is an application error", "{\"jsonrpc\":\"2.0\",\"method\":\"divide\",\"params\":{\"dividend\":1,\"divisor\":0},\"id\":12}", 12, NULL, JSONRPC_APP_DIVISION_BY_ZERO);
}

#define CALLS 200

typedef struct {
    const char *path;
    json_int_t got[CALLS];
    int rc;
} counter_job;

static void *count_many(void *arg)
{
    counter_job *j = arg;
    line_conn *lc = malloc(sizeof *lc);
    j->rc = !lc || conn_open(lc, j->path);
    for (int i = 0; !j->rc && i < CALLS; i++) {
        char req[128];
        snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"method\":\"count\",\"id\":%d}", i);
        json_t *r = send_line(lc, req) ? NULL : read_reply(lc, 10000000000ll);
        if (!r || !id_is(r, i)) {
            j->rc = 1;
        } else {
            j->got[i] = json_integer_value(json_object_get(r, "result"));
        }
        json_decref(r);
    }
    if (lc && lc->c)
        msgr_ipc_close(lc->c);
    free(lc);
    return NULL;
}

static int cmp_int(const void *a, const void *b)
{
    json_int_t x = *(const json_int_t *)a, y = *(const json_int_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int clients = 4;
    if (argc < 2 || (argc > 2 && (argc != 4 || strcmp(argv[2], "--clients")))) {
        fprintf(stderr, "usage: jsonrpc_client PATH [--clients N]\n");
        return 2;
    }
    if (argc == 4)
        clients = atoi(argv[3]);
    if (clients < 1 || clients > 32)
        clients = 4;
    line_conn *lc = malloc(sizeof *lc);
    if (!lc || conn_open(lc, argv[1]))
        return 1;
    conformance(lc);
    msgr_ipc_close(lc->c);
    free(lc);
    counter_job *jobs = calloc((size_t)clients, sizeof *jobs);
    pthread_t th[32];
    for (int i = 0; i < clients; i++) {
        jobs[i].path = argv[1];
        pthread_create(&th[i], NULL, count_many, &jobs[i]);
    }
    json_int_t *all = malloc(sizeof *all * CALLS * (size_t)clients);
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].rc) {
            fprintf(stderr, "jsonrpc_client: FAILED connection %d of %d calling count\n", i,
                    clients);
            failures++;
        }
        memcpy(all + (size_t)i * CALLS, jobs[i].got, sizeof jobs[i].got);
    }
    qsort(all, (size_t)CALLS * (size_t)clients, sizeof *all, cmp_int);
    for (size_t i = 1; i < (size_t)CALLS * (size_t)clients; i++)
        if (all[i] == all[i - 1]) {
            fprintf(stderr, "jsonrpc_client: FAILED two calls got count %lld\n", (long long)all[i]);
            failures++;
            break;
        }
    free(all);
    free(jobs);
    if (failures) {
        fprintf(stderr, "jsonrpc_client: %d checks failed\n", failures);
        return 1;
    }
    printf("jsonrpc_client: every answer as JSON-RPC 2.0 says; %d connections at once, %d calls "
           "each, no count given twice\nok\n", clients, CALLS);
    return 0;
}
