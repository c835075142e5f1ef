/* messenger: memory regions on POSIX systems (mmap, shm_open, files; src/os/posix.h for what
 * differs between them).
 *
 * Growable regions reserve their whole address range once with PROT_NONE and map the backing
 * object over the front of it; growing maps more of the object at the next address (MAP_FIXED
 * inside our own reservation), so the base never moves.
 */
#define _GNU_SOURCE
#include "region_layout.h"
#include "os/os.h"
#include "os/posix.h"
#include "region_fd.h"
#include "msgr/error.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/sysmacros.h> /* major(), minor(); <sys/types.h> has them elsewhere */
#endif
#include <dirent.h>
#include <unistd.h>

struct msgr_region {
    uint8_t *map;         /* start of the mapping (the region header) */
    uint64_t mapped;      /* bytes mapped read-write from the start */
    uint64_t reserved;    /* bytes of address space owned (>= mapped) */
    int fd;               /* backing object, or -1 for plain anonymous memory */
    uint32_t flags;
    msgr_region_kind kind;
    char *tmp, *name;     /* MSGR_REGION_PUBLISH_LATER, until published: the paths */
    char *path;           /* shm or file: the name's path in the file system, when known */
};

/* errno of a failed call -> messenger code. */
static int region_errno(int e)
{
    switch (e) {
    case ENOENT: case ENOTDIR: return MSGR_ENOENT;
    case EACCES: case EPERM: case EROFS: return MSGR_EACCES;
    case EEXIST: return MSGR_EEXIST;
    case ENOMEM: case EMFILE: case ENFILE: return MSGR_ENOMEM;
    case ENOSPC: case EDQUOT: return MSGR_ENOSPC;
    case EFBIG: return MSGR_EFBIG;
    case ENAMETOOLONG: return MSGR_ENAMETOOLONG;
    case EINVAL: case EISDIR: case ELOOP: return MSGR_EINVAL;
    default: return MSGR_EIO;
    }
}

/* Reserves `reserve` bytes and maps fd's first `total` bytes at its start. */
static int map_fd(int fd, uint64_t total, uint64_t reserve, uint8_t **out)
{
    void *base;
    if (reserve > total) {
        base = mmap(NULL, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED)
            return MSGR_ENOMEM;
        void *m = mmap(base, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            munmap(base, reserve);
            return region_errno(e);
        }
    } else {
        base = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (base == MAP_FAILED)
            return region_errno(errno);
    }
    *out = base;
    return 0;
}

/* Makes the backing object at least `total` bytes, with the blocks allocated now. Growing a
 * file beyond RLIMIT_FSIZE sends the thread SIGXFSZ, whose default action kills the process;
 * here it is blocked around the growth and a pending one consumed, so the caller gets
 * MSGR_EFBIG instead. */
static int extend_fd(int fd, uint64_t total)
{
    sigset_t xfsz, old;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    pthread_sigmask(SIG_BLOCK, &xfsz, &old);
    int e = msgr_os_fallocate(fd, total);
    sigset_t pending;
    int sig;
    /* sigpending then sigwait, not sigtimedwait (which macOS lacks): takes the pending
     * signal without blocking, since it is known to be there. */
    if (e == EFBIG && sigpending(&pending) == 0 && sigismember(&pending, SIGXFSZ))
        sigwait(&xfsz, &sig);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e ? region_errno(e) : 0;
}

static int region_new(uint8_t *map, uint64_t mapped, uint64_t reserved, int fd, uint32_t flags,
                      msgr_region_kind kind, msgr_region **out)
{
    msgr_region *r = calloc(1, sizeof *r);
    if (!r) {
        munmap(map, reserved);
        if (fd >= 0)
            close(fd);
        return MSGR_ENOMEM;
    }
    r->map = map;
    r->mapped = mapped;
    r->reserved = reserved;
    r->fd = fd;
    r->flags = flags;
    r->kind = kind;
    *out = r;
    return 0;
}

/* Creates the region on an already-open, empty backing fd. Closes fd on failure. */
static int create_on_fd(int fd, uint64_t size, uint64_t max, uint32_t flags,
                        msgr_region_kind kind, msgr_region **out)
{
    uint64_t total = msgr__region_total(size);
    uint64_t reserve = msgr__region_total(max);
    int rc = extend_fd(fd, total);
    uint8_t *map = NULL;
    if (rc == 0)
        rc = map_fd(fd, total, reserve, &map);
    if (rc) {
        close(fd);
        return rc;
    }
    msgr__region_hdr_init((msgr__region_hdr *)map, total - MSGR__REGION_HDR_SIZE,
             reserve - MSGR__REGION_HDR_SIZE, flags, kind);
    return region_new(map, total, reserve, fd, flags, kind, out);
}

/* Remembers where the region's name lives, for msgr_region_unlink_if_same(). */
static int set_path(msgr_region *r, const char *path, int rc)
{
    if (rc == 0 && path && !(r->path = strdup(path))) {
        msgr_region_close(r);
        return MSGR_ENOMEM;
    }
    return rc;
}

/* A new named object is made whole under a temporary name in the same directory and then
 * linked to its name, which fails if the name exists (as O_EXCL would). So nobody ever opens
 * a half-made object: not a concurrent opener, not one after its creator was killed (or hit
 * a full disk or a file-size limit) midway; a killed creator leaves only the temporary, which
 * the next creator of the same name removes once its process is dead. Temporary names:
 * "<dir>/.<name>.msgr-new.<pid>". */
#define MSGR__NEW_TAG ".msgr-new."

static int tmp_path(const char *path, char *out, size_t n, int32_t pid)
{
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    int k = snprintf(out, n, "%.*s.%s" MSGR__NEW_TAG "%d", (int)dir, path, path + dir, (int)pid);
    return k < 0 || (size_t)k >= n ? MSGR_ENAMETOOLONG : 0;
}

/* Removes temporaries of `path` left by creators that died (any pid but a live one). */
static void sweep_tmps(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096], prefix[512];
    size_t d = slash ? (size_t)(slash - path) : 0;
    if (d >= sizeof dir)
        return;
    memcpy(dir, slash ? path : ".", slash ? d : 1);
    dir[slash ? (d ? d : 1) : 1] = 0;
    if (slash && d == 0)
        strcpy(dir, "/");
    int k = snprintf(prefix, sizeof prefix, ".%s" MSGR__NEW_TAG, slash ? slash + 1 : path);
    if (k < 0 || (size_t)k >= sizeof prefix)
        return;
    DIR *dh = opendir(dir);
    if (!dh)
        return;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        if (strncmp(e->d_name, prefix, (size_t)k) != 0)
            continue;
        char *end;
        long pid = strtol(e->d_name + k, &end, 10);
        if (*end || pid <= 0 || msgr_os_pid_alive((int32_t)pid))
            continue;
        char full[4096 + 512];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        unlink(full);
    }
    closedir(dh);
}

/* Creates a whole region at `path` (a file, or a shm object's /dev/shm path): see above. */
static int create_published(const char *path, mode_t mode, uint64_t size, uint64_t max,
                            uint32_t flags, msgr_region_kind kind, msgr_region **out)
{
    char tmp[4096];
    int rc = tmp_path(path, tmp, sizeof tmp, msgr_os_pid());
    if (rc)
        return rc;
    sweep_tmps(path);
    unlink(tmp); /* ours from an earlier attempt of this very process */
    int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return region_errno(errno);
    fchmod(fd, mode); /* open applies the umask; the caller asked for exactly `mode` */
    msgr_region *r; /* *out is written only on success */
    if ((rc = create_on_fd(fd, size, max, flags, kind, &r))) {
        unlink(tmp);
        return rc;
    }
    if (flags & MSGR_REGION_PUBLISH_LATER) { /* msgr_region_publish() links it */
        r->tmp = strdup(tmp);
        r->name = strdup(path);
        r->path = strdup(path);
        if (!r->tmp || !r->name || !r->path) {
            msgr_region_close(r);
            return MSGR_ENOMEM;
        }
        *out = r;
        return 0;
    }
    if (link(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        msgr_region_close(r);
        return region_errno(e);
    }
    unlink(tmp);
    if ((rc = set_path(r, path, 0)) == 0)
        *out = r;
    return rc;
}

int msgr_region_create_anon(size_t size, const msgr_region_opts *opts, msgr_region **out)
{
    uint64_t max;
    int rc = msgr__region_opts_check(opts, size, &max);
    if (rc || !out)
        return rc ? rc : MSGR_EINVAL;
    uint32_t flags = opts ? opts->flags : 0;
    if ((flags & MSGR_REGION_PRIVATE) && (flags & (MSGR_REGION_GROWABLE | MSGR_REGION_TRANSFERABLE)))
        return MSGR_EINVAL; /* growable and transferable regions are backed by an object */
    if (flags & (MSGR_REGION_GROWABLE | MSGR_REGION_TRANSFERABLE)) {
        int fd = msgr_os_anon_fd();
        if (fd < 0)
            return region_errno(errno);
        return create_on_fd(fd, size, max, flags, MSGR_REGION_ANON, out);
    }
    uint64_t total = msgr__region_total(size);
    int share = (flags & MSGR_REGION_PRIVATE) ? MAP_PRIVATE : MAP_SHARED;
    void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, share | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return MSGR_ENOMEM;
    msgr__region_hdr_init(m, total - MSGR__REGION_HDR_SIZE, total - MSGR__REGION_HDR_SIZE, flags,
             MSGR_REGION_ANON);
    return region_new(m, total, total, -1, flags, MSGR_REGION_ANON, out);
}

/* Where glibc keeps shm objects (shm_open("/x") opens SHM_DIR "/x"), when that is so here. */
#define SHM_DIR "/dev/shm"
static int shm_dir_ok(void)
{
    struct stat st;
    return stat(SHM_DIR, &st) == 0 && S_ISDIR(st.st_mode);
}

int msgr_region_create_shm(const char *name, size_t size, const msgr_region_opts *opts,
                           msgr_region **out)
{
    char path[MSGR_REGION_NAME_MAX + 2];
    uint64_t max;
    int rc = msgr__region_shm_name(name, path);
    if (rc == 0)
        rc = msgr__region_opts_check(opts, size, &max);
    if (rc == 0 && (!out || (opts && (opts->flags & MSGR_REGION_PRIVATE))))
        rc = MSGR_EINVAL;
    if (rc)
        return rc;
    uint32_t flags = opts ? opts->flags : 0;
    mode_t mode = (opts && opts->mode) ? opts->mode : 0600;
    if ((flags & MSGR_REGION_REPLACE) && !(flags & MSGR_REGION_PUBLISH_LATER && shm_dir_ok()))
        shm_unlink(path);
    char fs[sizeof SHM_DIR + MSGR_REGION_NAME_MAX + 2];
    if (shm_dir_ok()) { /* Linux: shm objects are files in a tmpfs, published by link */
        snprintf(fs, sizeof fs, "%s%s", SHM_DIR, path);
        return create_published(fs, mode, size, max, flags, MSGR_REGION_SHM, out);
    }
    int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return region_errno(errno);
    fchmod(fd, mode); /* shm_open applies the umask; the caller asked for exactly `mode` */
    rc = create_on_fd(fd, size, max, flags, MSGR_REGION_SHM, out);
    if (rc)
        shm_unlink(path);
    return rc;
}

/* Validates the header of an open object and maps it. Closes fd on failure. */
static int open_fd(int fd, msgr_region_kind kind, msgr_region **out)
{
    struct stat st;
    msgr__region_hdr h;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = region_errno(errno);
    else if (!S_ISREG(st.st_mode))
        rc = MSGR_ENOTMSGR;
    else if ((uint64_t)st.st_size < sizeof h)
        rc = MSGR_ENOTMSGR;
    else if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
        rc = MSGR_EIO;
    else
        rc = msgr__region_hdr_check(&h, (uint64_t)st.st_size);
    if (rc) {
        close(fd);
        return rc;
    }
    uint64_t size = atomic_load_explicit(&h.size, memory_order_relaxed);
    uint64_t total = msgr__region_total(size);
    uint64_t reserve = msgr__region_total(h.max_size);
    if (total > (uint64_t)st.st_size) { /* size not page-rounded as we write it: foreign */
        close(fd);
        return MSGR_ECORRUPT;
    }
    uint8_t *map;
    rc = map_fd(fd, total, reserve, &map);
    if (rc) {
        close(fd);
        return rc;
    }
    return region_new(map, total, reserve, fd, h.flags, kind, out);
}

int msgr__region_fd(const msgr_region *r) { return r ? r->fd : -1; }

int msgr__region_adopt_fd(int fd, msgr_region **out)
{
    msgr__region_hdr h;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
        close(fd);
        return MSGR_ENOTMSGR;
    }
    msgr_region_kind kind = h.kind >= MSGR_REGION_ANON && h.kind <= MSGR_REGION_FILE
                                ? (msgr_region_kind)h.kind : MSGR_REGION_ANON;
    return open_fd(fd, kind, out); /* checks everything again on the object's real size */
}

int msgr_region_open_shm(const char *name, msgr_region **out)
{
    char path[MSGR_REGION_NAME_MAX + 2];
    int rc = msgr__region_shm_name(name, path);
    if (rc || !out)
        return rc ? rc : MSGR_EINVAL;
    int fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0)
        return region_errno(errno);
    msgr_region *r;
    char fs[sizeof SHM_DIR + MSGR_REGION_NAME_MAX + 2];
    snprintf(fs, sizeof fs, "%s%s", SHM_DIR, path);
    if ((rc = open_fd(fd, MSGR_REGION_SHM, &r)) == 0 && (rc = set_path(r, fs, 0)) == 0)
        *out = r;
    return rc;
}

int msgr_region_unlink_shm(const char *name)
{
    char path[MSGR_REGION_NAME_MAX + 2];
    int rc = msgr__region_shm_name(name, path);
    if (rc)
        return rc;
    return shm_unlink(path) == 0 ? 0 : region_errno(errno);
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
    mode_t mode = (opts && opts->mode) ? opts->mode : 0600;
    if ((flags & MSGR_REGION_REPLACE) && !(flags & MSGR_REGION_PUBLISH_LATER))
        unlink(path); /* publishing later renames over it instead */
    return create_published(path, mode, size, max, flags, MSGR_REGION_FILE, out);
}

int msgr_region_open_file(const char *path, msgr_region **out)
{
    if (!path || !*path || !out)
        return MSGR_EINVAL;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return region_errno(errno);
    msgr_region *r;
    int rc = open_fd(fd, MSGR_REGION_FILE, &r);
    if (rc == 0 && (rc = set_path(r, path, 0)) == 0)
        *out = r;
    return rc;
}

/* Maps bytes [r->mapped, total) of the backing object at their place in the reservation. */
static int map_more(msgr_region *r, uint64_t total)
{
    if (total <= r->mapped)
        return 0;
    void *want = r->map + r->mapped;
    void *m = mmap(want, total - r->mapped, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, r->fd,
                   (off_t)r->mapped);
    if (m == MAP_FAILED)
        return region_errno(errno);
    r->mapped = total;
    return 0;
}

int msgr_region_grow(msgr_region *r, size_t new_size)
{
    if (!r)
        return MSGR_EINVAL;
    if (!(r->flags & MSGR_REGION_GROWABLE) || r->fd < 0)
        return MSGR_ESTATE;
    uint64_t total = msgr__region_total(new_size);
    if (total == 0 || total > r->reserved)
        return MSGR_ERANGE;
    int rc = msgr_region_refresh(r);
    if (rc || total <= r->mapped)
        return rc;
    rc = extend_fd(r->fd, total);
    if (rc == 0)
        rc = map_more(r, total);
    if (rc)
        return rc;
    msgr__region_size_publish((msgr__region_hdr *)r->map, total - MSGR__REGION_HDR_SIZE);
    return 0;
}

int msgr_region_refresh(msgr_region *r)
{
    if (!r)
        return MSGR_EINVAL;
    if (!(r->flags & MSGR_REGION_GROWABLE) || r->fd < 0)
        return 0;
    msgr__region_hdr *h = (msgr__region_hdr *)r->map;
    uint64_t usable = atomic_load_explicit(&h->size, memory_order_acquire);
    uint64_t total = msgr__region_total(usable);
    struct stat st;
    if (total == 0 || total > r->reserved || fstat(r->fd, &st) != 0 ||
        total > (uint64_t)st.st_size)
        return MSGR_ECORRUPT;
    return map_more(r, total);
}

int msgr_region_prefault(msgr_region *r)
{
    if (!r)
        return MSGR_EINVAL;
#ifdef MADV_POPULATE_WRITE
    /* Linux 5.14+: writable page-table entries for the whole mapping, contents untouched. */
    if (madvise(r->map, r->mapped, MADV_POPULATE_WRITE) == 0)
        return 0;
    if (errno == ENOMEM)
        return MSGR_ENOMEM;
    if (errno != EINVAL) /* EINVAL: an older kernel; touch the pages instead */
        return MSGR_EIO;
#endif
    /* The mapping never extends past the backing object: no touch can fault with SIGBUS. */
    msgr__region_touch(r->map, r->mapped);
    return 0;
}

void *msgr_region_base(const msgr_region *r)
{
    return r ? r->map + MSGR__REGION_HDR_SIZE : NULL;
}

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
        return (r->flags & MSGR_REGION_PUBLISH_LATER) ? 0 : MSGR_ESTATE; /* made in place */
    if (r->flags & MSGR_REGION_REPLACE) { /* takes the name over, atomically */
        if (rename(r->tmp, r->name) != 0)
            return region_errno(errno);
    } else {
        if (link(r->tmp, r->name) != 0)
            return region_errno(errno);
        unlink(r->tmp);
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
    if (!r || r->fd < 0 || !r->path)
        return MSGR_EINVAL;
    /* The lock makes two processes doing this at once remove the name once: the second finds
     * that it names another object (or none) by the time it holds the lock. Released when
     * we are done or dead. */
    while (flock(r->fd, LOCK_EX) != 0)
        if (errno != EINTR)
            return region_errno(errno);
    struct stat mine, named;
    int rc;
    if (fstat(r->fd, &mine) != 0)
        rc = region_errno(errno);
    else if (stat(r->path, &named) != 0)
        rc = MSGR_ENOENT;
    else if (named.st_dev != mine.st_dev || named.st_ino != mine.st_ino)
        rc = MSGR_ENOENT; /* the name was given to another object meanwhile */
    else
        rc = unlink(r->path) == 0 ? 0 : region_errno(errno);
    flock(r->fd, LOCK_UN);
    return rc;
}

void msgr_region_close(msgr_region *r)
{
    if (!r)
        return;
    if (r->tmp) /* never published: nobody else can have it */
        unlink(r->tmp);
    free(r->tmp);
    free(r->name);
    free(r->path);
    munmap(r->map, r->reserved);
    if (r->fd >= 0)
        close(r->fd);
    free(r);
}

/* ---- inspection of named shared memory (Linux: SHM_DIR and /proc) ---- */

/* How many processes map the object SHM_DIR/<name>: matched by device and inode, not by the
 * path a mapping shows (a creator maps the object under its temporary name, see
 * create_published()). */
static int32_t count_path_users(const char *want);

static int32_t count_users(const char *name)
{
    char want[sizeof SHM_DIR + MSGR_REGION_NAME_MAX + 2];
    snprintf(want, sizeof want, "%s/%.*s", SHM_DIR, MSGR_REGION_NAME_MAX, name);
    return count_path_users(want);
}

int msgr_region_file_users(const char *path, int32_t *users)
{
    if (!path || !*path || !users)
        return MSGR_EINVAL;
    if (access(path, F_OK) != 0)
        return region_errno(errno);
    *users = count_path_users(path);
    return 0;
}

/* How many processes map the file at `want` (by device and inode). */
static int32_t count_path_users(const char *want)
{
    struct stat st;
    if (stat(want, &st) != 0)
        return 0;
    DIR *proc = opendir("/proc");
    if (!proc)
        return -1;
    int32_t users = 0;
    struct dirent *e;
    while ((e = readdir(proc)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        char maps[64], line[4608];
        snprintf(maps, sizeof maps, "/proc/%ld/maps", pid);
        FILE *f = fopen(maps, "re");
        if (!f)
            continue; /* gone, or not ours to read */
        int found = 0;
        while (!found && fgets(line, sizeof line, f)) {
            unsigned maj, mnr;
            unsigned long long ino;
            if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &mnr, &ino) == 3)
                found = ino == (unsigned long long)st.st_ino && maj == major(st.st_dev) &&
                        mnr == minor(st.st_dev);
        }
        fclose(f);
        users += found;
    }
    closedir(proc);
    return users;
}

/* Reads the region header of SHM_DIR/<name> without mapping it; its usable size, or 0. */
static int shm_probe(const char *name, uint64_t *size)
{
    char p[sizeof SHM_DIR + MSGR_REGION_NAME_MAX + 2];
    snprintf(p, sizeof p, "%s/%.*s", SHM_DIR, MSGR_REGION_NAME_MAX, name);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return region_errno(errno);
    struct stat st;
    msgr__region_hdr h;
    int rc = fstat(fd, &st) != 0 ? MSGR_EIO
             : pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h ? MSGR_ENOTMSGR
             : msgr__region_hdr_check(&h, (uint64_t)st.st_size);
    close(fd);
    if (rc == 0)
        *size = atomic_load_explicit(&h.size, memory_order_relaxed);
    return rc;
}

int msgr_region_list_shm(msgr_region_shm_info *out, uint32_t max, uint32_t *n)
{
    if (!n || (!out && max))
        return MSGR_EINVAL;
    if (!shm_dir_ok())
        return MSGR_ENOSYS;
    DIR *d = opendir(SHM_DIR);
    if (!d)
        return region_errno(errno);
    uint32_t k = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t len = strlen(nm);
        if (nm[0] == '.' && (len <= 2 || !strstr(nm, MSGR__NEW_TAG)))
            continue;
        if (len > MSGR_REGION_NAME_MAX)
            continue;
        msgr_region_shm_info info;
        memset(&info, 0, sizeof info);
        memcpy(info.name, nm, len + 1);
        const char *tag = nm[0] == '.' ? strstr(nm, MSGR__NEW_TAG) : NULL;
        if (tag) { /* a creator's temporary: half-made if its creator is dead */
            long pid = strtol(tag + strlen(MSGR__NEW_TAG), NULL, 10);
            if (pid > 0 && msgr_os_pid_alive((int32_t)pid))
                continue; /* being made right now */
            info.half_made = 1;
        } else if (shm_probe(nm, &info.size) != 0) {
            continue; /* not ours */
        }
        info.users = count_users(nm);
        if (k < max)
            out[k] = info;
        k++;
    }
    closedir(d);
    *n = k;
    return 0;
}

int msgr_region_shm_users(const char *name, int32_t *users)
{
    char path[MSGR_REGION_NAME_MAX + 2];
    int rc = msgr__region_shm_name(name, path);
    if (rc || !users)
        return rc ? rc : MSGR_EINVAL;
    if (!shm_dir_ok()) {
        *users = -1;
        return 0;
    }
    char p[sizeof SHM_DIR + MSGR_REGION_NAME_MAX + 2];
    snprintf(p, sizeof p, "%s%s", SHM_DIR, path);
    if (access(p, F_OK) != 0)
        return MSGR_ENOENT;
    *users = count_users(path + 1);
    return 0;
}
