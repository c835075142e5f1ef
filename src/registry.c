/* messenger: the name registry (include/msgr/registry.h).
 *
 * One text file per name, "<name>.bus", replaced whole on every change (msgr_os_write_file:
 * readers see the old or the new entry, never a part):
 *
 *   msgr-registry 1
 *   kind shm|file
 *   location <shm name or absolute path>
 *   app <application name>
 *   schema <16 hex digits>
 *   proc <pid> <start>        (one line per process; the first registered the name)
 *
 * Entry files are input from whoever could write the directory (only this user, checked):
 * still, every line is parsed with its lengths bounded and anything else refused. Every call
 * (add, leave, reclaim, and the reads too) runs under the lock file ".lock", which the system
 * releases if its holder dies, so a registration cannot be lost between two processes or left
 * half-done. Reads take it as well because Windows refuses to replace or remove a file while
 * another handle has it open to read (and opening one that is being removed fails): a lookup
 * racing a registration would fail, or make the registration fail, without it.
 */
#include "msgr/registry.h"
#include "msgr/error.h"
#include "msgr/region.h"
#include "os/error_detail.h"
#include "os/os.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_MAX 8192 /* bytes of an entry file */
#define SUFFIX ".bus"

static int name_ok(const char *name)
{
    if (!name || !*name || name[0] == '.' || strlen(name) > MSGR_REGISTRY_NAME_MAX)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static int bad_name(const char *name)
{
    return msgr__fail(MSGR_EINVAL, "registry name '%.80s' must be 1 to %d letters, digits, '.', "
                      "'_' or '-', not starting with '.'", name ? name : "(null)",
                      MSGR_REGISTRY_NAME_MAX);
}

int msgr_registry_dir(char *buf, size_t cap)
{
    if (!buf || !cap)
        return MSGR_EINVAL;
    return msgr_os_user_dir(buf, cap);
}

static int entry_path(const char *name, char *out, size_t cap)
{
    char dir[1024];
    int rc = msgr_os_user_dir(dir, sizeof dir);
    if (rc)
        return rc;
    int k = snprintf(out, cap, "%s/%s" SUFFIX, dir, name);
    return k < 0 || (size_t)k >= cap ? MSGR_ENAMETOOLONG : 0;
}

static int lock_registry(intptr_t *h)
{
    char dir[1024], path[1100];
    int rc = msgr_os_user_dir(dir, sizeof dir);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/.lock", dir);
    return msgr_os_lock_file(path, h);
}

/* ---- the entry format ---- */

static const char *kind_word(uint32_t kind) { return kind == MSGR_REGION_FILE ? "file" : "shm"; }

/* Copies the rest of a line (after "key ") into out (cap bytes with the NUL); 0 or -1. */
static int take_value(const char *p, const char *end, char *out, size_t cap)
{
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= cap || memchr(p, 0, n))
        return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

/* Parses an entry file's text (len bytes, not NUL-terminated). 0 or MSGR_ECORRUPT. */
static int parse(const char *text, size_t len, const char *name, msgr_registry_entry *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    const char *p = text, *stop = text + len;
    int line = 0, have_kind = 0, have_loc = 0;
    while (p < stop) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        const char *end = nl ? nl : stop;
        char word[16], value[1100];
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (!sp || sp - p >= (long)sizeof word || take_value(sp + 1, end, value, sizeof value))
            return MSGR_ECORRUPT;
        memcpy(word, p, (size_t)(sp - p));
        word[sp - p] = 0;
        if (line++ == 0) {
            if (strcmp(word, "msgr-registry") != 0 || strcmp(value, "1") != 0)
                return MSGR_ECORRUPT;
        } else if (strcmp(word, "kind") == 0) {
            if (strcmp(value, "shm") == 0)
                e->kind = MSGR_REGION_SHM;
            else if (strcmp(value, "file") == 0)
                e->kind = MSGR_REGION_FILE;
            else
                return MSGR_ECORRUPT;
            have_kind = 1;
        } else if (strcmp(word, "location") == 0) {
            if (strlen(value) >= sizeof e->location)
                return MSGR_ECORRUPT;
            strcpy(e->location, value);
            have_loc = 1;
        } else if (strcmp(word, "app") == 0) {
            if (strlen(value) >= sizeof e->app)
                return MSGR_ECORRUPT;
            strcpy(e->app, value);
        } else if (strcmp(word, "schema") == 0) {
            char *x;
            e->schema = strtoull(value, &x, 16);
            if (*x)
                return MSGR_ECORRUPT;
        } else if (strcmp(word, "proc") == 0) {
            long long pid;
            unsigned long long start;
            char tail;
            if (sscanf(value, "%lld %llu%c", &pid, &start, &tail) != 2 || pid <= 0 ||
                pid > INT32_MAX)
                return MSGR_ECORRUPT;
            if (e->n_procs < MSGR_REGISTRY_PROCS_MAX)
                e->procs[e->n_procs++] = (msgr_registry_proc){(int32_t)pid, start, 0};
        } /* other keys: from a later version, ignored */
        p = nl ? nl + 1 : stop;
    }
    return have_kind && have_loc ? 0 : MSGR_ECORRUPT;
}

static int format(const msgr_registry_entry *e, char *out, size_t cap)
{
    int k = snprintf(out, cap, "msgr-registry 1\nkind %s\nlocation %s\napp %s\nschema %016" PRIx64
                     "\n", kind_word(e->kind), e->location, e->app, e->schema);
    if (k < 0 || (size_t)k >= cap)
        return MSGR_ENAMETOOLONG;
    size_t n = (size_t)k;
    for (uint32_t i = 0; i < e->n_procs; i++) {
        k = snprintf(out + n, cap - n, "proc %d %" PRIu64 "\n", (int)e->procs[i].pid,
                     e->procs[i].start);
        if (k < 0 || (size_t)k >= cap - n)
            return MSGR_ENAMETOOLONG;
        n += (size_t)k;
    }
    return (int)n;
}

/* Reads the entry of `name`: 0, MSGR_ENOENT or MSGR_ECORRUPT. Liveness is filled in. */
static int read_entry(const char *path, const char *name, msgr_registry_entry *e)
{
    char text[ENTRY_MAX];
    int n = msgr_os_read_file(path, text, sizeof text);
    if (n < 0)
        return n;
    if (n == (int)sizeof text || parse(text, (size_t)n, name, e))
        return msgr__fail(MSGR_ECORRUPT, "registry entry '%s' does not parse", path);
    e->alive = 0;
    for (uint32_t i = 0; i < e->n_procs; i++) {
        e->procs[i].alive = msgr_os_proc_alive(e->procs[i].pid, e->procs[i].start) == 1;
        e->alive |= e->procs[i].alive;
    }
    return 0;
}

static int write_entry(const char *path, const msgr_registry_entry *e)
{
    char text[ENTRY_MAX];
    int n = format(e, text, sizeof text);
    return n < 0 ? n : msgr_os_write_file(path, text, (size_t)n);
}

/* Drops the dead processes of e. */
static void prune(msgr_registry_entry *e)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < e->n_procs; i++)
        if (e->procs[i].alive)
            e->procs[k++] = e->procs[i];
    e->n_procs = k;
}

static int self_proc(msgr_registry_proc *p)
{
    p->pid = msgr_os_pid();
    p->alive = 1;
    return msgr_os_proc_start(p->pid, &p->start);
}

/* ---- the calls ---- */

int msgr_registry_add(const char *name, uint32_t kind, const char *location, const char *app,
                      uint64_t schema)
{
    if (!name_ok(name))
        return bad_name(name);
    if ((kind != MSGR_REGION_SHM && kind != MSGR_REGION_FILE) || !location || !*location ||
        strlen(location) >= sizeof ((msgr_registry_entry *)0)->location || strchr(location, '\n') ||
        !app || strlen(app) >= sizeof ((msgr_registry_entry *)0)->app || strchr(app, '\n'))
        return MSGR_EINVAL;
    char path[1200];
    intptr_t lock;
    int rc = entry_path(name, path, sizeof path);
    if (rc || (rc = lock_registry(&lock)))
        return rc;
    msgr_registry_entry e;
    msgr_registry_proc me;
    if ((rc = self_proc(&me)))
        goto out;
    rc = read_entry(path, name, &e);
    if (rc == 0 && e.alive) {
        if (e.kind != kind || strcmp(e.location, location) != 0) {
            rc = msgr__fail(MSGR_EEXIST, "registry name '%s' is held by %s bus '%s' (process %d "
                            "lives)", name, kind_word(e.kind), e.location, (int)e.procs[0].pid);
            goto out;
        }
        prune(&e);
        for (uint32_t i = 0; i < e.n_procs; i++)
            if (e.procs[i].pid == me.pid && e.procs[i].start == me.start)
                goto out; /* already in */
        if (e.n_procs == MSGR_REGISTRY_PROCS_MAX) {
            rc = msgr__fail(MSGR_ENOSPC, "registry entry '%s' records %d live processes already",
                            name, MSGR_REGISTRY_PROCS_MAX);
            goto out;
        }
        e.procs[e.n_procs++] = me;
        rc = write_entry(path, &e);
        goto out;
    }
    if (rc != 0 && rc != MSGR_ENOENT && rc != MSGR_ECORRUPT)
        goto out;
    /* None, stale or unreadable: ours now. */
    memset(&e, 0, sizeof e);
    snprintf(e.name, sizeof e.name, "%s", name);
    e.kind = kind;
    snprintf(e.location, sizeof e.location, "%s", location);
    snprintf(e.app, sizeof e.app, "%s", app);
    e.schema = schema;
    e.n_procs = 1;
    e.procs[0] = me;
    rc = write_entry(path, &e);
out:
    msgr_os_unlock_file(lock);
    return rc;
}

int msgr_registry_lookup(const char *name, msgr_registry_entry *out)
{
    if (!out)
        return MSGR_EINVAL;
    if (!name_ok(name))
        return bad_name(name);
    char path[1200];
    intptr_t lock;
    int rc = entry_path(name, path, sizeof path);
    if (rc || (rc = lock_registry(&lock)))
        return rc;
    rc = read_entry(path, name, out);
    if (rc == MSGR_ENOENT) {
        rc = msgr__fail(rc, "no bus is registered as '%s'", name);
    } else if (rc == 0 && !out->alive) { /* stale: reclaimed on sight */
        msgr_os_unlink(path);
        rc = msgr__fail(MSGR_ENOENT, "the bus registered as '%s' had no live process left: its "
                        "entry is removed", name);
    }
    msgr_os_unlock_file(lock);
    return rc;
}

int msgr_registry_leave(const char *name)
{
    if (!name_ok(name))
        return bad_name(name);
    char path[1200];
    intptr_t lock;
    int rc = entry_path(name, path, sizeof path);
    if (rc || (rc = lock_registry(&lock)))
        return rc;
    msgr_registry_entry e;
    msgr_registry_proc me;
    rc = self_proc(&me);
    if (rc == 0 && (rc = read_entry(path, name, &e)) == 0) {
        for (uint32_t i = 0; i < e.n_procs; i++)
            if (e.procs[i].pid == me.pid && e.procs[i].start == me.start)
                e.procs[i].alive = 0;
        prune(&e);
        rc = e.n_procs ? write_entry(path, &e) : msgr_os_unlink(path);
    }
    msgr_os_unlock_file(lock);
    return rc == MSGR_ENOENT ? 0 : rc;
}

int msgr_registry_remove(const char *name)
{
    if (!name_ok(name))
        return bad_name(name);
    char path[1200];
    intptr_t lock;
    int rc = entry_path(name, path, sizeof path);
    if (rc || (rc = lock_registry(&lock)))
        return rc;
    rc = msgr_os_unlink(path);
    msgr_os_unlock_file(lock);
    return rc;
}

typedef struct list_state {
    const char *dir;
    msgr_registry_entry *out;
    uint32_t max, n;
} list_state;

static int list_one(const char *file, void *arg)
{
    list_state *st = arg;
    char name[MSGR_REGISTRY_NAME_MAX + 1], path[1200];
    size_t n = strlen(file) - (sizeof SUFFIX - 1);
    if (n > MSGR_REGISTRY_NAME_MAX)
        return 0;
    memcpy(name, file, n);
    name[n] = 0;
    if (!name_ok(name))
        return 0;
    snprintf(path, sizeof path, "%s/%s", st->dir, file);
    msgr_registry_entry e;
    if (read_entry(path, name, &e))
        return 0; /* unreadable, or gone meanwhile */
    if (st->n < st->max)
        st->out[st->n] = e;
    st->n++;
    return 0;
}

int msgr_registry_list(msgr_registry_entry *out, uint32_t max, uint32_t *n)
{
    if (!n || (!out && max))
        return MSGR_EINVAL;
    char dir[1024];
    int rc = msgr_os_user_dir(dir, sizeof dir);
    if (rc)
        return rc;
    intptr_t lock;
    if ((rc = lock_registry(&lock)))
        return rc;
    list_state st = {dir, out, max, 0};
    rc = msgr_os_list_dir(dir, SUFFIX, list_one, &st);
    msgr_os_unlock_file(lock);
    *n = st.n;
    return rc;
}
