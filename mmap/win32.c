/* messenger: memory regions on Windows (file mappings).
 *
 *   anonymous   a pagefile-backed section; growable ones are made at their largest size with
 *               SEC_RESERVE and committed as they grow, so the base never moves.
 *   named       a file in a per-user directory (<temp>\msgr-shm\<name>) marked temporary, not
 *               a pagefile section in the Local\ namespace: a section lives only while a
 *               process holds it, and messenger's named buses outlive their processes, are
 *               listed by msgr ls and removed by msgr rm, as on Linux. The per-user temporary
 *               directory admits its user only; pages of a temporary file stay in memory.
 *   file        a regular file.
 * Growable file-backed regions take their largest size on disk when created (the documented
 * fallback: mapping more of a file at a fixed address needs the placeholder calls of newer
 * Windows, VirtualAlloc2 and MapViewOfFile3), so growing only publishes a larger size; disk
 * space is reserved up front, so a full disk is an error at creation, never a fault later.
 *
 * Names are published whole, as on POSIX: an object is made under a temporary name in its
 * directory and renamed to its name (failing if the name exists), so nobody opens a half-made
 * one. Files are opened with FILE_SHARE_DELETE so that a name can be removed while others map
 * it; a name is removed by renaming it aside first, so that it is free at once.
 */
#include "region_layout.h"
#include "region_handle.h"
#include "os/os.h"
#include "os/win32.h"
#include "msgr/error.h"

#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct msgr_region {
    uint8_t *map;      /* start of the view (the region header) */
    uint64_t mapped;   /* bytes usable from the start (header included) */
    uint64_t reserved; /* bytes of the view (>= mapped) */
    HANDLE file;       /* backing file, or INVALID_HANDLE_VALUE for anonymous memory */
    HANDLE section;
    uint64_t key;      /* the name waits in it go by (win32.h), or 0 if it is not shared */
    uint32_t flags;
    msgr_region_kind kind;
    char *tmp, *name;  /* MSGR_REGION_PUBLISH_LATER, until published: the paths */
    char *path;        /* shm or file: the name's path */
};

#define MSGR__NEW_TAG ".msgr-new."
#define MSGR__GONE_TAG ".msgr-gone."

static int last_error(void) { return msgr__win_error(GetLastError()); }

/* The backing file's identity, for the wait registry (win32.h): the same in every process. */
static uint64_t file_key(HANDLE f)
{
    BY_HANDLE_FILE_INFORMATION fi;
    if (!GetFileInformationByHandle(f, &fi))
        return 0;
    uint64_t k = ((uint64_t)fi.nFileIndexHigh << 32 | fi.nFileIndexLow) ^
                 ((uint64_t)fi.dwVolumeSerialNumber * 0x9e3779b97f4a7c15ull);
    return k ? k : 1;
}

static int file_size(HANDLE f, uint64_t *size)
{
    LARGE_INTEGER s;
    if (!GetFileSizeEx(f, &s))
        return last_error();
    *size = (uint64_t)s.QuadPart;
    return 0;
}

static int set_file_size(HANDLE f, uint64_t size)
{
    LARGE_INTEGER at;
    at.QuadPart = (LONGLONG)size;
    if (!SetFilePointerEx(f, at, NULL, FILE_BEGIN) || !SetEndOfFile(f))
        return last_error();
    return 0;
}

/* Maps `view` bytes of file f (or of a new pagefile section when f is invalid) and makes the
 * handle. Closes f on failure. */
static int region_map(HANDLE f, uint64_t mapped, uint64_t view, uint32_t flags,
                      msgr_region_kind kind, int anon_reserve, msgr_region **out)
{
    /* Files are known by their identity; anonymous memory that may be handed to another
     * process (msgr_ipc_send_region) by a random key that travels with it. */
    uint64_t key = f != INVALID_HANDLE_VALUE ? file_key(f)
                   : (flags & MSGR_REGION_TRANSFERABLE) ? (msgr_os_random64() | 1) : 0;
    DWORD protect = PAGE_READWRITE | (anon_reserve ? SEC_RESERVE : 0);
    HANDLE s = CreateFileMappingA(f, NULL, protect, (DWORD)(view >> 32), (DWORD)view, NULL);
    int rc = s ? 0 : last_error();
    uint8_t *map = NULL;
    if (!rc && !(map = MapViewOfFile(s, FILE_MAP_ALL_ACCESS, 0, 0, (SIZE_T)view)))
        rc = last_error();
    if (!rc && anon_reserve && !VirtualAlloc(map, (SIZE_T)mapped, MEM_COMMIT, PAGE_READWRITE))
        rc = MSGR_ENOMEM;
    msgr_region *r = rc ? NULL : calloc(1, sizeof *r);
    if (!rc && !r)
        rc = MSGR_ENOMEM;
    if (!rc && key)
        rc = msgr__win_map_add(map, (size_t)view, key, f == INVALID_HANDLE_VALUE ? NULL : f);
    if (rc) {
        if (map)
            UnmapViewOfFile(map);
        if (s)
            CloseHandle(s);
        if (f != INVALID_HANDLE_VALUE)
            CloseHandle(f);
        free(r);
        return rc;
    }
    r->map = map;
    r->mapped = mapped;
    r->reserved = view;
    r->file = f;
    r->section = s;
    r->key = key;
    r->flags = flags;
    r->kind = kind;
    *out = r;
    return 0;
}

int msgr_region_create_anon(size_t size, const msgr_region_opts *opts, msgr_region **out)
{
    uint64_t max;
    int rc = msgr__region_opts_check(opts, size, &max);
    if (rc || !out)
        return rc ? rc : MSGR_EINVAL;
    uint32_t flags = opts ? opts->flags : 0;
    if ((flags & MSGR_REGION_PRIVATE) && (flags & MSGR_REGION_GROWABLE))
        return MSGR_EINVAL;
    uint64_t total = msgr__region_total(size), reserve = msgr__region_total(max);
    msgr_region *r;
    int grow = (flags & MSGR_REGION_GROWABLE) != 0;
    if ((rc = region_map(INVALID_HANDLE_VALUE, total, grow ? reserve : total, flags,
                         MSGR_REGION_ANON, grow, &r)))
        return rc;
    msgr__region_hdr_init((msgr__region_hdr *)r->map, total - MSGR__REGION_HDR_SIZE,
             reserve - MSGR__REGION_HDR_SIZE, flags, MSGR_REGION_ANON);
    *out = r;
    return 0;
}

/* "<dir>\.<base>" + tag + pid for `path`. */
static int side_path(const char *path, const char *tag, char *out, size_t n, uint32_t id)
{
    const char *s1 = strrchr(path, '\\'), *s2 = strrchr(path, '/');
    const char *slash = s1 > s2 ? s1 : s2;
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    int k = snprintf(out, n, "%.*s.%s%s%u", (int)dir, path, path + dir, tag, id);
    return k < 0 || (size_t)k >= n ? MSGR_ENAMETOOLONG : 0;
}

/* Removes the name now, even while other processes have the file open: renamed aside, then
 * deleted (the file itself goes when the last handle closes). */
static int remove_name(const char *path)
{
    char gone[MAX_PATH + 64];
    int rc = side_path(path, MSGR__GONE_TAG, gone, sizeof gone, (uint32_t)msgr_os_random64());
    if (rc)
        return rc;
    if (!MoveFileExA(path, gone, 0))
        return last_error();
    DeleteFileA(gone);
    return 0;
}

static HANDLE open_file(const char *path, DWORD disposition, DWORD attrs)
{
    return CreateFileA(path, GENERIC_READ | GENERIC_WRITE,
                       FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, disposition,
                       attrs, NULL);
}

static int create_published(const char *path, DWORD attrs, uint64_t size, uint64_t max,
                            uint32_t flags, msgr_region_kind kind, msgr_region **out)
{
    char tmp[MAX_PATH + 64];
    int rc = side_path(path, MSGR__NEW_TAG, tmp, sizeof tmp, (uint32_t)msgr_os_pid());
    if (rc)
        return rc;
    DeleteFileA(tmp); /* ours from an earlier attempt of this very process */
    HANDLE f = open_file(tmp, CREATE_NEW, attrs);
    if (f == INVALID_HANDLE_VALUE)
        return last_error();
    uint64_t total = msgr__region_total(size), reserve = msgr__region_total(max);
    msgr_region *r;
    if ((rc = set_file_size(f, reserve))) {
        CloseHandle(f);
        DeleteFileA(tmp);
        return rc;
    }
    if ((rc = region_map(f, total, reserve, flags, kind, 0, &r))) {
        DeleteFileA(tmp);
        return rc;
    }
    msgr__region_hdr_init((msgr__region_hdr *)r->map, total - MSGR__REGION_HDR_SIZE,
             reserve - MSGR__REGION_HDR_SIZE, flags, kind);
    r->path = strdup(path);
    if (flags & MSGR_REGION_PUBLISH_LATER) {
        r->tmp = strdup(tmp);
        r->name = strdup(path);
        if (!r->tmp || !r->name || !r->path) {
            msgr_region_close(r);
            return MSGR_ENOMEM;
        }
        *out = r;
        return 0;
    }
    if (!r->path || !MoveFileExA(tmp, path, 0)) {
        rc = r->path ? last_error() : MSGR_ENOMEM;
        r->tmp = strdup(tmp); /* closing removes it */
        msgr_region_close(r);
        return rc == MSGR_EACCES && GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES
                   ? MSGR_EEXIST : rc;
    }
    *out = r;
    return 0;
}

/* The directory of named regions, made on first use: "<temp>\msgr-shm". */
static int shm_dir(char *out, size_t n)
{
    char t[MAX_PATH + 1];
    DWORD k = GetTempPathA(sizeof t, t);
    if (k == 0 || k > sizeof t)
        return MSGR_ENOENT;
    if (snprintf(out, n, "%smsgr-shm", t) >= (int)n)
        return MSGR_ENAMETOOLONG;
    int rc = msgr_os_mkdir(out);
    return rc;
}

static int shm_path(const char *name, char *out, size_t n)
{
    char nm[MSGR_REGION_NAME_MAX + 2], dir[MAX_PATH + 16];
    int rc = msgr__region_shm_name(name, nm);
    if (rc == 0)
        rc = shm_dir(dir, sizeof dir);
    if (rc == 0 && snprintf(out, n, "%s\\%s", dir, nm + 1) >= (int)n)
        rc = MSGR_ENAMETOOLONG;
    return rc;
}

int msgr_region_create_shm(const char *name, size_t size, const msgr_region_opts *opts,
                           msgr_region **out)
{
    char path[MAX_PATH + 64];
    uint64_t max;
    int rc = shm_path(name, path, sizeof path);
    if (rc == 0)
        rc = msgr__region_opts_check(opts, size, &max);
    if (rc == 0 && (!out || (opts && (opts->flags & MSGR_REGION_PRIVATE))))
        rc = MSGR_EINVAL;
    if (rc)
        return rc;
    uint32_t flags = opts ? opts->flags : 0;
    if ((flags & MSGR_REGION_REPLACE) && !(flags & MSGR_REGION_PUBLISH_LATER))
        remove_name(path);
    return create_published(path, FILE_ATTRIBUTE_TEMPORARY, size, max, flags, MSGR_REGION_SHM,
                            out);
}

int msgr_region_create_file(const char *path, size_t size, const msgr_region_opts *opts,
                            msgr_region **out)
{
    uint64_t max;
    if (!path || !*path || !out)
        return MSGR_EINVAL;
    int rc = msgr__region_opts_check(opts, size, &max);
    if (rc)
        return rc;
    uint32_t flags = opts ? opts->flags : 0;
    if (flags & MSGR_REGION_PRIVATE)
        return MSGR_EINVAL;
    if ((flags & MSGR_REGION_REPLACE) && !(flags & MSGR_REGION_PUBLISH_LATER))
        remove_name(path);
    return create_published(path, FILE_ATTRIBUTE_NORMAL, size, max, flags, MSGR_REGION_FILE,
                            out);
}

/* Checks the header of an open file and maps it. Closes f on failure. */
static int open_handle(HANDLE f, msgr_region_kind kind, const char *path, msgr_region **out)
{
    msgr__region_hdr h;
    uint64_t bytes = 0;
    DWORD got = 0;
    int rc = file_size(f, &bytes);
    if (rc == 0 && bytes < sizeof h)
        rc = MSGR_ENOTMSGR;
    OVERLAPPED at = {0}; /* offset 0, whatever the handle's position (it may be shared) */
    if (rc == 0 && (!ReadFile(f, &h, sizeof h, &got, &at) || got != sizeof h))
        rc = MSGR_EIO;
    if (rc == 0)
        rc = msgr__region_hdr_check(&h, bytes);
    uint64_t total = 0, reserve = 0;
    if (rc == 0) {
        total = msgr__region_total(atomic_load_explicit(&h.size, memory_order_relaxed));
        reserve = msgr__region_total(h.max_size);
        if (total > bytes || ((h.flags & MSGR_REGION_GROWABLE) ? reserve : total) > bytes)
            rc = MSGR_ECORRUPT;
    }
    if (rc) {
        CloseHandle(f);
        return rc;
    }
    msgr_region *r;
    uint64_t view = (h.flags & MSGR_REGION_GROWABLE) ? reserve : total;
    if ((rc = region_map(f, total, view, h.flags, kind, 0, &r)))
        return rc;
    if (path && !(r->path = strdup(path))) {
        msgr_region_close(r);
        return MSGR_ENOMEM;
    }
    *out = r;
    return 0;
}

int msgr_region_open_shm(const char *name, msgr_region **out)
{
    char path[MAX_PATH + 64];
    int rc = shm_path(name, path, sizeof path);
    if (rc || !out)
        return rc ? rc : MSGR_EINVAL;
    HANDLE f = open_file(path, OPEN_EXISTING, FILE_ATTRIBUTE_TEMPORARY);
    if (f == INVALID_HANDLE_VALUE)
        return last_error();
    return open_handle(f, MSGR_REGION_SHM, path, out);
}

int msgr_region_open_file(const char *path, msgr_region **out)
{
    if (!path || !*path || !out)
        return MSGR_EINVAL;
    HANDLE f = open_file(path, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL);
    if (f == INVALID_HANDLE_VALUE)
        return last_error();
    return open_handle(f, MSGR_REGION_FILE, path, out);
}

int msgr_region_unlink_shm(const char *name)
{
    char path[MAX_PATH + 64];
    int rc = shm_path(name, path, sizeof path);
    return rc ? rc : remove_name(path);
}

int msgr_region_grow(msgr_region *r, size_t new_size)
{
    if (!r)
        return MSGR_EINVAL;
    if (!(r->flags & MSGR_REGION_GROWABLE))
        return MSGR_ESTATE;
    uint64_t total = msgr__region_total(new_size);
    if (total == 0 || total > r->reserved)
        return MSGR_ERANGE;
    int rc = msgr_region_refresh(r);
    if (rc || total <= r->mapped)
        return rc;
    if (r->file == INVALID_HANDLE_VALUE &&
        !VirtualAlloc(r->map, (SIZE_T)total, MEM_COMMIT, PAGE_READWRITE))
        return MSGR_ENOMEM;
    r->mapped = total;
    msgr__region_size_publish((msgr__region_hdr *)r->map, total - MSGR__REGION_HDR_SIZE);
    return 0;
}

int msgr_region_refresh(msgr_region *r)
{
    if (!r)
        return MSGR_EINVAL;
    if (!(r->flags & MSGR_REGION_GROWABLE))
        return 0;
    msgr__region_hdr *h = (msgr__region_hdr *)r->map;
    uint64_t total = msgr__region_total(atomic_load_explicit(&h->size, memory_order_acquire));
    if (total == 0 || total > r->reserved)
        return MSGR_ECORRUPT;
    if (total > r->mapped)
        r->mapped = total; /* the whole view is backed already (see the top of this file) */
    return 0;
}

int msgr_region_prefault(msgr_region *r)
{
    if (!r)
        return MSGR_EINVAL;
    msgr__region_touch(r->map, r->mapped);
    return 0;
}

void *msgr_region_base(const msgr_region *r) { return r ? r->map + MSGR__REGION_HDR_SIZE : NULL; }

size_t msgr_region_size(const msgr_region *r)
{
    return r ? (size_t)(r->mapped - MSGR__REGION_HDR_SIZE) : 0;
}

msgr_region_kind msgr_region_kind_of(const msgr_region *r)
{
    return r ? r->kind : (msgr_region_kind)0;
}

int msgr_region_publish(msgr_region *r)
{
    if (!r)
        return MSGR_EINVAL;
    if (!r->tmp)
        return (r->flags & MSGR_REGION_PUBLISH_LATER) ? 0 : MSGR_ESTATE;
    DWORD how = (r->flags & MSGR_REGION_REPLACE) ? MOVEFILE_REPLACE_EXISTING : 0;
    if (!MoveFileExA(r->tmp, r->name, how)) {
        int rc = last_error();
        return rc == MSGR_EACCES && !how ? MSGR_EEXIST : rc;
    }
    free(r->tmp);
    free(r->name);
    r->tmp = r->name = NULL;
    return 0;
}

int msgr_region_creator_alive(const msgr_region *r)
{
    if (!r)
        return 0;
    const msgr__region_hdr *h = (const msgr__region_hdr *)r->map;
    return msgr_os_owner_alive(h->creator_pid, h->creator_start);
}

int msgr_region_unlink_if_same(msgr_region *r)
{
    if (!r || r->file == INVALID_HANDLE_VALUE || !r->path)
        return MSGR_EINVAL;
    /* A lock on the file (a byte past any content) makes two processes doing this at once
     * remove the name once; the system drops it when we are done or dead. */
    OVERLAPPED ov = {0};
    ov.Offset = 0xffffffffu;
    ov.OffsetHigh = 0x7fffffffu;
    if (!LockFileEx(r->file, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &ov))
        return last_error();
    int rc;
    HANDLE named = CreateFileA(r->path, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                               NULL, OPEN_EXISTING, 0, NULL);
    if (named == INVALID_HANDLE_VALUE) {
        rc = MSGR_ENOENT;
    } else {
        rc = file_key(named) == file_key(r->file) ? remove_name(r->path) : MSGR_ENOENT;
        CloseHandle(named);
    }
    UnlockFileEx(r->file, 0, 1, 0, &ov);
    return rc;
}

void msgr_region_close(msgr_region *r)
{
    if (!r)
        return;
    if (r->key)
        msgr__win_map_remove(r->map);
    UnmapViewOfFile(r->map);
    CloseHandle(r->section);
    if (r->file != INVALID_HANDLE_VALUE)
        CloseHandle(r->file);
    if (r->tmp) /* never published: nobody else can have it */
        DeleteFileA(r->tmp);
    free(r->tmp);
    free(r->name);
    free(r->path);
    free(r);
}

/* ---- inspection ---- */

/* Whether anyone has the file open: an open that shares nothing fails while anyone does.
 * Windows cannot count them here: 0, or -1 for "in use". */
static int path_users(const char *path, int32_t *users)
{
    HANDLE f = CreateFileA(path, GENERIC_READ, 0, NULL, OPEN_EXISTING, 0, NULL);
    if (f != INVALID_HANDLE_VALUE) {
        CloseHandle(f);
        *users = 0;
        return 0;
    }
    DWORD e = GetLastError();
    if (e == ERROR_SHARING_VIOLATION) {
        *users = -1;
        return 0;
    }
    return msgr__win_error(e);
}

int msgr_region_file_users(const char *path, int32_t *users)
{
    if (!path || !users)
        return MSGR_EINVAL;
    return path_users(path, users);
}

int msgr_region_shm_users(const char *name, int32_t *users)
{
    char path[MAX_PATH + 64];
    if (!users)
        return MSGR_EINVAL;
    int rc = shm_path(name, path, sizeof path);
    return rc ? rc : path_users(path, users);
}

int msgr_region_list_shm(msgr_region_shm_info *out, uint32_t max, uint32_t *n)
{
    char dir[MAX_PATH + 16], pattern[MAX_PATH + 32];
    if (!n || (max && !out))
        return MSGR_EINVAL;
    int rc = shm_dir(dir, sizeof dir);
    if (rc)
        return rc;
    snprintf(pattern, sizeof pattern, "%s\\*", dir);
    WIN32_FIND_DATAA fd;
    HANDLE h = FindFirstFileA(pattern, &fd);
    uint32_t k = 0;
    if (h == INVALID_HANDLE_VALUE) {
        *n = 0;
        return 0;
    }
    do {
        const char *nm = fd.cFileName;
        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
            continue;
        msgr_region_shm_info info;
        memset(&info, 0, sizeof info);
        const char *tag = strstr(nm, MSGR__NEW_TAG);
        if (nm[0] == '.') {
            /* a creator's temporary: half-made when its creator is dead */
            if (!tag || msgr_os_pid_alive((int32_t)strtol(tag + strlen(MSGR__NEW_TAG), NULL, 10)))
                continue;
            snprintf(info.name, sizeof info.name, "%.*s", (int)(tag - nm - 1), nm + 1);
            info.half_made = 1;
            info.users = 0;
        } else {
            char path[MAX_PATH + 64];
            snprintf(path, sizeof path, "%s\\%s", dir, nm);
            HANDLE f = open_file(path, OPEN_EXISTING, FILE_ATTRIBUTE_TEMPORARY);
            msgr__region_hdr hd;
            DWORD got = 0;
            uint64_t bytes = 0;
            int ok = f != INVALID_HANDLE_VALUE && file_size(f, &bytes) == 0 &&
                     ReadFile(f, &hd, sizeof hd, &got, NULL) && got == sizeof hd &&
                     msgr__region_hdr_check(&hd, bytes) == 0;
            if (f != INVALID_HANDLE_VALUE)
                CloseHandle(f);
            if (!ok)
                continue;
            snprintf(info.name, sizeof info.name, "%s", nm);
            info.size = atomic_load_explicit(&hd.size, memory_order_relaxed);
            path_users(path, &info.users);
        }
        if (k < max)
            out[k] = info;
        k++;
    } while (FindNextFileA(h, &fd));
    FindClose(h);
    *n = k;
    return 0;
}

/* ---- handing regions to other processes (region_handle.h) ---- */

int msgr__region_handles(const msgr_region *r, void **object, uint64_t *key, int *is_file)
{
    if (!r->key)
        return MSGR_EINVAL;
    *is_file = r->file != INVALID_HANDLE_VALUE;
    *object = *is_file ? r->file : r->section;
    *key = r->key;
    return 0;
}

/* The bytes of the view at map: its pieces (committed and reserved alike) are walked until
 * the allocation ends. */
static uint64_t view_bytes(uint8_t *map)
{
    uint64_t n = 0;
    MEMORY_BASIC_INFORMATION mi;
    while (VirtualQuery(map + n, &mi, sizeof mi) == sizeof mi && mi.AllocationBase == map &&
           mi.RegionSize)
        n += mi.RegionSize;
    return n;
}

int msgr__region_adopt_handle(void *object, uint64_t key, int is_file, msgr_region **out)
{
    HANDLE h = (HANDLE)object;
    if (is_file) {
        msgr__region_hdr hd;
        DWORD got = 0;
        OVERLAPPED at = {0};
        if (!ReadFile(h, &hd, sizeof hd, &got, &at) || got != sizeof hd)
            return MSGR_ENOTMSGR;
        msgr_region_kind kind = hd.kind == MSGR_REGION_SHM ? MSGR_REGION_SHM : MSGR_REGION_FILE;
        return open_handle(h, kind, NULL, out); /* checks everything again */
    }
    /* A pagefile section: mapped whole, its size read off the view. */
    uint8_t *map = MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, 0);
    if (!map)
        return last_error();
    uint64_t bytes = view_bytes(map);
    const msgr__region_hdr *hd = (const msgr__region_hdr *)map;
    int rc = bytes < sizeof *hd ? MSGR_ENOTMSGR : msgr__region_hdr_check(hd, bytes);
    uint64_t total = 0;
    if (rc == 0) {
        total = msgr__region_total(atomic_load_explicit(&hd->size, memory_order_acquire));
        if (total > bytes)
            rc = MSGR_ECORRUPT;
    }
    msgr_region *r = rc ? NULL : calloc(1, sizeof *r);
    if (!rc && !r)
        rc = MSGR_ENOMEM;
    if (!rc && !key)
        rc = MSGR_ECORRUPT;
    if (!rc)
        rc = msgr__win_map_add(map, (size_t)bytes, key, NULL);
    if (rc) {
        UnmapViewOfFile(map);
        free(r);
        CloseHandle(h);
        return rc;
    }
    r->map = map;
    r->mapped = total;
    r->reserved = bytes;
    r->file = INVALID_HANDLE_VALUE;
    r->section = h;
    r->key = key;
    r->flags = hd->flags;
    r->kind = MSGR_REGION_ANON;
    *out = r;
    return 0;
}
