/* messenger: the name registry: buses found by name, with no daemon.
 *
 * A registered bus has an entry file "<name>.bus" in the per-user registry directory
 * ($MSGR_REGISTRY if set, else $XDG_RUNTIME_DIR/messenger, else <temp>/messenger-<uid>; Windows:
 * %LOCALAPPDATA%\messenger), made 0700 and refused if anyone else could enter it. An entry
 * says where the bus lives (shared memory or a file), the application and its schema, and
 * which processes use it (pid and start time; the first is the one that registered it). An
 * entry whose processes have all died is stale: lookups and registrations reclaim it on sight.
 * Changes are made under a lock file the system releases when its holder dies, so two
 * processes registering one name at once get one winner. The runtime registers and finds
 * buses through msgr_bus_opts (MSGR_BUS_REGISTER; kind 0 with a name looks the name up).
 *
 * Thread-safety: every call may run on any thread; calls are serialised by the lock file.
 */
#ifndef MSGR_REGISTRY_H
#define MSGR_REGISTRY_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MSGR_REGISTRY_NAME_MAX 63  /* letters, digits, '.', '_' and '-'; no leading '.' */
#define MSGR_REGISTRY_PROCS_MAX 32 /* processes recorded per entry */

typedef struct msgr_registry_proc {
    int32_t pid;
    uint64_t start; /* the process's start time, so a reused pid is not taken for it */
    int alive;      /* filled by lookup and list */
} msgr_registry_proc;

typedef struct msgr_registry_entry {
    char name[MSGR_REGISTRY_NAME_MAX + 1];
    uint32_t kind;       /* MSGR_REGION_SHM or MSGR_REGION_FILE */
    char location[1024]; /* the shared-memory name, or the file's absolute path */
    char app[48];        /* the application's name */
    uint64_t schema;     /* msgr_app_schema() of the application */
    uint32_t n_procs;
    msgr_registry_proc procs[MSGR_REGISTRY_PROCS_MAX]; /* procs[0] registered it */
    int alive;           /* some process of it lives */
} msgr_registry_entry;

/* Writes the registry directory's path into buf (made if missing). Errors: MSGR_EACCES (it is
 * not this user's alone: the detail names it), MSGR_ENAMETOOLONG, system errors. */
MSGR_API int msgr_registry_dir(char *buf, size_t cap);

/* Registers `name` for the bus at (kind, location) of application `app`, with the calling
 * process as a user. If a live entry has the name for the same bus, the process joins it
 * (0); for another bus: MSGR_EEXIST, the detail naming where it lives and who holds it. A
 * stale entry is replaced. Errors: MSGR_EINVAL (bad name or kind), MSGR_ENOSPC (the entry
 * already records MSGR_REGISTRY_PROCS_MAX live processes), registry directory errors. */
MSGR_API int msgr_registry_add(const char *name, uint32_t kind, const char *location,
                               const char *app, uint64_t schema);

/* Fills *out with the live entry of `name`. A stale one is removed. Errors: MSGR_ENOENT
 * (none, or it was stale), MSGR_ECORRUPT (an entry file that does not parse), MSGR_EINVAL. */
MSGR_API int msgr_registry_lookup(const char *name, msgr_registry_entry *out);

/* Removes the calling process from the entry of `name`; the entry goes with its last live
 * process. Missing: 0. */
MSGR_API int msgr_registry_leave(const char *name);

/* Removes the entry of `name` whatever its processes (the bus itself stays). MSGR_ENOENT if
 * there is none. */
MSGR_API int msgr_registry_remove(const char *name);

/* Lists up to max entries, stale ones included (alive = 0; they are not removed here), in no
 * particular order; *n receives how many there are in all. Entries that do not parse are
 * skipped. Errors: registry directory errors. */
MSGR_API int msgr_registry_list(msgr_registry_entry *out, uint32_t max, uint32_t *n);

#ifdef __cplusplus
}
#endif
#endif
