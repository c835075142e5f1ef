/* messenger: memory regions.
 *
 * A region is a mapped range of bytes plus what backs it: anonymous memory (private, or shared
 * with children forked after creation), named shared memory (independent processes attach by
 * name), or a regular file (survives the processes). A region may be growable: it reserves a
 * large virtual range once and maps more of its backing inside it, so its base address never
 * moves and pointers into it stay valid while it grows.
 *
 * Every region starts with a small header (magic, version, size) that messenger checks when it
 * attaches; msgr_region_base() returns the first byte after it, 64-byte aligned.
 * Region handles are not thread-safe for close/grow; base and size may be read from any thread.
 */
#ifndef MSGR_REGION_H
#define MSGR_REGION_H

#include "export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct msgr_region msgr_region;

typedef enum msgr_region_kind {
    MSGR_REGION_ANON = 1,
    MSGR_REGION_SHM = 2,
    MSGR_REGION_FILE = 3,
} msgr_region_kind;

/* Flags for msgr_region_opts.flags. */
#define MSGR_REGION_PRIVATE  0x1u /* anonymous only: not shared with forked children */
#define MSGR_REGION_GROWABLE 0x2u /* reserve max_size of address space; msgr_region_grow() */
#define MSGR_REGION_REPLACE  0x4u /* shm/file: replace an existing object instead of EEXIST */
/* shm/file: create the object under a temporary name only, so the caller can fill it in
 * before anyone can open it; msgr_region_publish() then gives it its name (a creator that dies
 * before publishing leaves no half-made object under the name). */
#define MSGR_REGION_PUBLISH_LATER 0x8u
/* anonymous: backed by a nameless file (Linux memfd), so that msgr_ipc_send_region() can hand
 * the region to another process over a connection; nothing names it, and it goes when the
 * last process that maps it does. */
#define MSGR_REGION_TRANSFERABLE 0x10u

/* Creation options. Zero-initialised (or a NULL pointer) means: mode 0600, shared, fixed size. */
typedef struct msgr_region_opts {
    uint32_t size_of;  /* sizeof(msgr_region_opts), or 0; lets the struct grow compatibly */
    uint32_t flags;    /* MSGR_REGION_* */
    uint32_t mode;     /* permission bits for shm/file; 0 means 0600 */
    uint32_t reserved_;
    uint64_t max_size; /* growable: the largest usable size; 0 means 64 times the initial size */
} msgr_region_opts;

/* Largest region messenger creates (usable bytes): 2^46. */
#define MSGR_REGION_MAX_SIZE (1ull << 46)
/* Longest shared-memory name accepted, without the leading '/'. */
#define MSGR_REGION_NAME_MAX 200

/* Creates anonymous memory of `size` usable bytes (rounded up to the page size).
 * Errors: MSGR_EINVAL (size 0 or above MSGR_REGION_MAX_SIZE, bad opts, NULL out), MSGR_ENOMEM. */
MSGR_API int msgr_region_create_anon(size_t size, const msgr_region_opts *opts, msgr_region **out);

/* Creates named shared memory. `name` is 1..MSGR_REGION_NAME_MAX characters of [A-Za-z0-9._-],
 * with an optional leading '/'. Errors: MSGR_EINVAL (bad name or size), MSGR_ENAMETOOLONG,
 * MSGR_EEXIST (name in use; see MSGR_REGION_REPLACE), MSGR_EACCES, MSGR_ENOMEM, MSGR_ENOSPC. */
MSGR_API int msgr_region_create_shm(const char *name, size_t size, const msgr_region_opts *opts,
                                    msgr_region **out);

/* Attaches to named shared memory created by msgr_region_create_shm (any process).
 * Errors: MSGR_ENOENT (no such name), MSGR_EACCES, MSGR_ENOTMSGR (not a messenger region),
 * MSGR_EVERSION, MSGR_ECORRUPT (header sizes inconsistent with the object), MSGR_EINVAL. */
MSGR_API int msgr_region_open_shm(const char *name, msgr_region **out);

/* Removes the name; attached processes keep their mapping. Errors: MSGR_ENOENT, MSGR_EACCES,
 * MSGR_EINVAL, MSGR_ENAMETOOLONG. */
MSGR_API int msgr_region_unlink_shm(const char *name);

/* A messenger object in named shared memory, as msgr_region_list_shm() finds it. */
typedef struct msgr_region_shm_info {
    char name[MSGR_REGION_NAME_MAX + 1];
    uint64_t size;     /* usable bytes (0 for a half-made object) */
    int32_t users;     /* live processes that map it now; -1 if this system cannot tell */
    uint32_t half_made; /* 1: a creator's temporary left by a creator that died midway */
} msgr_region_shm_info;

/* Lists messenger objects in named shared memory (objects with a messenger region header, and
 * temporaries of creators that died), up to max into out; *n receives how many there are (may
 * exceed max). Counting users reads every process's mappings (Linux: /proc/<pid>/maps; a zombie
 * maps nothing). Errors: MSGR_EINVAL, MSGR_ENOSYS (no way to list shared memory here). */
MSGR_API int msgr_region_list_shm(msgr_region_shm_info *out, uint32_t max, uint32_t *n);

/* Live processes that map shared memory `name` now (*users; -1 if this system cannot tell).
 * Errors: MSGR_EINVAL, MSGR_ENAMETOOLONG, MSGR_ENOENT. */
MSGR_API int msgr_region_shm_users(const char *name, int32_t *users);

/* Live processes that map the file at `path` now (*users; -1 if this system cannot tell).
 * Errors: MSGR_EINVAL, MSGR_ENOENT. */
MSGR_API int msgr_region_file_users(const char *path, int32_t *users);

/* Creates a file-backed region (disk space is reserved up front, so a full disk is an error
 * here, never a SIGBUS later). Errors as msgr_region_create_shm, plus MSGR_ENOENT (missing
 * directory), MSGR_EFBIG and MSGR_ENOSPC. */
MSGR_API int msgr_region_create_file(const char *path, size_t size, const msgr_region_opts *opts,
                                     msgr_region **out);

/* Opens an existing file-backed region. Errors: MSGR_ENOENT, MSGR_EACCES, MSGR_ENOTMSGR (a file
 * that is not a messenger file, including one too short for the header), MSGR_EVERSION,
 * MSGR_ECORRUPT (header disagrees with the file's size). */
MSGR_API int msgr_region_open_file(const char *path, msgr_region **out);

/* Gives a region created with MSGR_REGION_PUBLISH_LATER its name, atomically: anyone opening
 * the name from now on sees the content written so far. Errors: MSGR_EEXIST (someone else
 * published that name first: close this one, open theirs), MSGR_ESTATE (not waiting to be
 * published), MSGR_EINVAL. Closing a region never published removes it. */
MSGR_API int msgr_region_publish(msgr_region *r);

/* 1 if the process that created the region runs (pid and start time; a zombie is dead), 0 if
 * not: a region whose content its creator never finished is then known to stay unfinished. */
MSGR_API int msgr_region_creator_alive(const msgr_region *r);

/* Removes the name of an opened shm or file region if the name still names this very object
 * (for re-making an object its creator left unfinished: two processes doing this at once remove
 * it once). Errors: MSGR_ENOENT (the name names another object by now, or none), MSGR_EINVAL
 * (anonymous memory), MSGR_EACCES, MSGR_EIO. */
MSGR_API int msgr_region_unlink_if_same(msgr_region *r);

/* Grows a growable region to `new_size` usable bytes (never shrinks); the base stays put.
 * Errors: MSGR_ESTATE (not growable), MSGR_ERANGE (beyond max_size), MSGR_ENOSPC, MSGR_EFBIG.
 * Other processes see the growth after msgr_region_refresh(). */
MSGR_API int msgr_region_grow(msgr_region *r, size_t new_size);

/* Maps what another process added with msgr_region_grow(). Returns 0; errors as grow. */
MSGR_API int msgr_region_refresh(msgr_region *r);

/* Maps every page of the region into this process now, so that first use takes no page faults
 * (a fault costs microseconds: latency-sensitive users call this after create or open; each
 * process has its own page tables, so each calls it). Contents are unchanged; safe while other
 * threads and processes use the region. Errors: MSGR_EINVAL (NULL), MSGR_ENOMEM, MSGR_EIO. */
MSGR_API int msgr_region_prefault(msgr_region *r);

/* First usable byte (64-byte aligned) and the number of usable bytes now mapped. */
MSGR_API void *msgr_region_base(const msgr_region *r);
MSGR_API size_t msgr_region_size(const msgr_region *r);
MSGR_API msgr_region_kind msgr_region_kind_of(const msgr_region *r);

/* Unmaps and frees the handle (the backing shm name or file stays). NULL is accepted. */
MSGR_API void msgr_region_close(msgr_region *r);

#ifdef __cplusplus
}
#endif
#endif
