/* jsonrpc_server: JSON-RPC 2.0 over messenger's IPC transport, one JSON text per line (the
 * convention of socket JSON-RPC tools), so a client in any language can talk to it.
 *
 *   jsonrpc_server --listen PATH [--max-clients N]
 *
 * Methods: count (the count before this call; notifications count too), echo {message},
 * subtract [a, b] or {minuend, subtrahend}, sort {list, descending}, divide {dividend,
 * divisor} (division by zero is an application error, code 1). Requests, notifications (no
 * answer) and batches as the specification says, with its error codes for parse errors,
 * invalid requests, unknown methods and invalid params. Several clients at once (one poll loop
 * over the connections' descriptors). With --max-clients, exits after that many clients have
 * come and gone. JSON is parsed and printed with jansson: small, in Debian, with a
 * reference-counted tree and a strict parser (it refuses what the JSON text grammar refuses),
 * and it keeps integers apart from reals as JSON-RPC ids need.
 */
#include "jsonrpc.h"

#include <messenger.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIENTS 64
#define MAX_LINE (1u << 20) /* a longer request line is refused and its connection closed */

static long long counter;

static json_t *error_obj(int code, const char *message)
{
    return json_pack("{s:i,s:s}", "code", code, "message", message);
}

static json_t *reply(json_t *id, json_t *result, json_t *error)
{
    json_t *r = json_pack("{s:s}", "jsonrpc", "2.0");
    if (error)
        json_object_set_new(r, "error", error);
    else
        json_object_set_new(r, "result", result);
    json_object_set(r, "id", id ? id : json_null());
    return r;
}

/* params: named member `name`, or positional element `pos` (-1: named only). */
static json_t *param(json_t *params, const char *name, int pos)
{
    if (json_is_object(params))
        return json_object_get(params, name);
    if (json_is_array(params) && pos >= 0)
        return json_array_get(params, (size_t)pos);
    return NULL;
}

static int cmp_up(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static json_t *number(double v, int integers)
{
    return integers ? json_integer((json_int_t)v) : json_real(v);
}

/* Runs one method. Returns the result, or NULL with *err set. */
static json_t *call(const char *method, json_t *params, json_t **err)
{
    if (!strcmp(method, "count"))
        return json_integer(counter++);
    if (!strcmp(method, "echo")) {
        json_t *m = param(params, "message", 0);
        if (json_is_string(m))
            return json_incref(m);
        *err = error_obj(JSONRPC_INVALID_PARAMS, "echo needs {\"message\": string}");
        return NULL;
    }
    if (!strcmp(method, "subtract")) {
        json_t *a = param(params, "minuend", 0), *b = param(params, "subtrahend", 1);
        if (json_is_number(a) && json_is_number(b) && json_array_size(params) <= 2)
            return number(json_number_value(a) - json_number_value(b),
                          json_is_integer(a) && json_is_integer(b));
        *err = error_obj(JSONRPC_INVALID_PARAMS,
                         "subtract needs [minuend, subtrahend] or {minuend, subtrahend}: numbers");
        return NULL;
    }
    if (!strcmp(method, "sort")) {
        json_t *list = param(params, "list", 0), *desc = param(params, "descending", 1);
        size_t n = json_array_size(list);
        if (!json_is_array(list) || (desc && !json_is_boolean(desc))) {
            *err = error_obj(JSONRPC_INVALID_PARAMS, "sort needs {list: [numbers], descending}");
            return NULL;
        }
        double *v = malloc((n ? n : 1) * sizeof *v);
        int integers = 1;
        for (size_t i = 0; v && i < n; i++) {
            json_t *e = json_array_get(list, i);
            if (!json_is_number(e)) {
                free(v);
                *err = error_obj(JSONRPC_INVALID_PARAMS, "sort: the list holds numbers only");
                return NULL;
            }
            integers &= json_is_integer(e);
            v[i] = json_number_value(e);
        }
        if (!v) {
            *err = error_obj(JSONRPC_INTERNAL_ERROR, "out of memory");
            return NULL;
        }
        qsort(v, n, sizeof *v, cmp_up);
        json_t *out = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(out, number(v[json_is_true(desc) ? n - 1 - i : i], integers));
        free(v);
        return out;
    }
    if (!strcmp(method, "divide")) {
        json_t *a = param(params, "dividend", 0), *b = param(params, "divisor", 1);
        if (!json_is_number(a) || !json_is_number(b)) {
            *err = error_obj(JSONRPC_INVALID_PARAMS, "divide needs {dividend, divisor}: numbers");
            return NULL;
        }
        if (json_number_value(b) == 0) {
            *err = error_obj(JSONRPC_APP_DIVISION_BY_ZERO, "division by zero");
            return NULL;
        }
        return json_real(json_number_value(a) / json_number_value(b));
    }
    *err = error_obj(JSONRPC_METHOD_NOT_FOUND, "method not found");
    return NULL;
}

/* One request object (or anything a batch held). Returns the response, or NULL for a
 * notification (which gets none, even when it fails). */
static json_t *handle_one(json_t *req)
{
    json_t *id = json_object_get(req, "id");
    int has_id = id != NULL;
    json_t *ver = json_object_get(req, "jsonrpc"), *method = json_object_get(req, "method");
    json_t *params = json_object_get(req, "params");
    int id_ok = !has_id || json_is_string(id) || json_is_number(id) || json_is_null(id);
    if (!json_is_object(req) || !json_is_string(ver) || strcmp(json_string_value(ver), "2.0") ||
        !json_is_string(method) || (params && !json_is_array(params) && !json_is_object(params)) ||
        !id_ok)
        return reply(id_ok ? id : NULL, NULL, error_obj(JSONRPC_INVALID_REQUEST, "invalid request"));
    json_t *err = NULL;
    json_t *result = call(json_string_value(method), params, &err);
    if (!has_id) { /* a notification */
        json_decref(result);
        json_decref(err);
        return NULL;
    }
    return reply(id, result, err);
}

/* One line from a client: the text of its answer ("" for none), to free. */
static char *handle_line(const char *line)
{
    json_error_t jerr;
    json_t *in = json_loads(line, JSON_DECODE_ANY, &jerr), *out = NULL;
    if (!in) {
        out = reply(NULL, NULL, error_obj(JSONRPC_PARSE_ERROR, "parse error"));
    } else if (json_is_array(in)) {
        if (json_array_size(in) == 0) {
            out = reply(NULL, NULL, error_obj(JSONRPC_INVALID_REQUEST, "invalid request"));
        } else {
            out = json_array();
            for (size_t i = 0; i < json_array_size(in); i++) {
                json_t *r = handle_one(json_array_get(in, i));
                if (r)
                    json_array_append_new(out, r);
            }
            if (json_array_size(out) == 0) { /* all notifications: nothing at all */
                json_decref(out);
                out = NULL;
            }
        }
    } else {
        out = handle_one(in);
    }
    json_decref(in);
    char *text = out ? json_dumps(out, JSON_COMPACT) : calloc(1, 1);
    json_decref(out);
    return text;
}

typedef struct {
    msgr_ipc_conn *conn;
    char *buf;
    size_t len, cap;
} client;

/* Sends the answer to every complete line in the client's buffer. 0, or a negative code. */
static int serve_lines(client *cl)
{
    char *start = cl->buf, *nl;
    while ((nl = memchr(start, '\n', cl->len - (size_t)(start - cl->buf)))) {
        *nl = 0;
        int rc = 0;
        if (nl > start) { /* empty lines are nothing */
            char *text = handle_line(start);
            if (!text)
                return MSGR_ENOMEM;
            if (*text) {
                rc = msgr_ipc_send(cl->conn, text, strlen(text), 10000000000ll);
                if (!rc)
                    rc = msgr_ipc_send(cl->conn, "\n", 1, 10000000000ll);
            }
            free(text);
        }
        if (rc)
            return rc;
        start = nl + 1;
    }
    cl->len -= (size_t)(start - cl->buf);
    memmove(cl->buf, start, cl->len);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    long max_clients = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--max-clients") && i + 1 < argc)
            max_clients = strtol(argv[++i], NULL, 10);
        else
            path = NULL, i = argc;
    }
    if (!path) {
        fprintf(stderr, "usage: jsonrpc_server --listen PATH [--max-clients N]\n");
        return 2;
    }
    msgr_ipc_opts o = {.flags = MSGR_IPC_STREAM};
    msgr_ipc_server *srv;
    int rc = msgr_ipc_listen(path, &o, &srv);
    if (rc) {
        fprintf(stderr, "jsonrpc_server: %s: %s (%s)\n", path, msgr_strerror(rc), msgr_last_error());
        return 1;
    }
    printf("jsonrpc_server: listening on %s\n", path);
    fflush(stdout);
    client cl[MAX_CLIENTS];
    int n = 0;
    long served = 0;
    while (max_clients < 0 || served < max_clients || n > 0) {
        struct pollfd p[MAX_CLIENTS + 1];
        p[0] = (struct pollfd){(int)msgr_ipc_server_fd(srv), POLLIN, 0};
        for (int i = 0; i < n; i++)
            p[i + 1] = (struct pollfd){(int)msgr_ipc_conn_fd(cl[i].conn), POLLIN, 0};
        int accepting = n < MAX_CLIENTS && (max_clients < 0 || served + n < max_clients);
        if (poll(accepting ? p : p + 1, (nfds_t)(accepting ? n + 1 : n), -1) < 0)
            continue; /* a signal */
        if (accepting && (p[0].revents & POLLIN)) {
            msgr_ipc_conn *c;
            if (msgr_ipc_accept(srv, &c, 0) == 0)
                cl[n++] = (client){c, NULL, 0, 0};
        }
        for (int i = n - 1; i >= 0; i--) {
            if (!p[i + 1].revents)
                continue;
            client *c = &cl[i];
            if (c->cap - c->len < 4096) {
                size_t want = c->cap ? c->cap * 2 : 8192;
                char *nb = want <= MAX_LINE + 8192 ? realloc(c->buf, want + 1) : NULL;
                if (nb)
                    c->buf = nb, c->cap = want;
            }
            int k = c->cap - c->len >= 4096
                        ? msgr_ipc_recv(c->conn, c->buf + c->len, c->cap - c->len, 0)
                        : MSGR_EMSGSIZE; /* a line longer than MAX_LINE: drop the client */
            if (k > 0) {
                c->len += (size_t)k;
                k = serve_lines(c);
            }
            if (k < 0 && k != MSGR_EAGAIN) { /* end of stream, or a broken client */
                msgr_ipc_close(c->conn);
                free(c->buf);
                cl[i] = cl[--n];
                served++;
            }
        }
    }
    msgr_ipc_server_close(srv);
    printf("jsonrpc_server: served %ld clients, count is %lld\n", served, counter);
    return 0;
}
