/* Memory regions: anonymous (private and shared across fork), named shared memory, files,
 * growable regions, and clear errors for every bad input. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

static char path[128], name[64];

static void setup(void)
{
    snprintf(name, sizeof name, "msgr-region-test-%d", (int)getpid());
    snprintf(path, sizeof path, "/tmp/msgr-region-test-%d.bus", (int)getpid());
    unlink(path);
    msgr_region_unlink_shm(name);
}

static void teardown(void)
{
    unlink(path);
    msgr_region_unlink_shm(name);
}

TestSuite(region, .init = setup, .fini = teardown, .timeout = 30);

Test(region, anonymous_is_page_rounded_and_aligned)
{
    msgr_region *r;
    cr_assert_eq(msgr_region_create_anon(1, NULL, &r), 0);
    cr_assert_geq(msgr_region_size(r), 1);
    cr_assert_eq(((uintptr_t)msgr_region_base(r) + msgr_region_size(r)) % 4096, 0,
                 "mapping ends on a page boundary");
    cr_assert_eq((uintptr_t)msgr_region_base(r) % 64, 0);
    cr_assert_eq(msgr_region_kind_of(r), MSGR_REGION_ANON);
    memset(msgr_region_base(r), 0x5a, msgr_region_size(r));
    msgr_region_close(r);
}

static int child_writes(msgr_region *r)
{
    pid_t pid = fork();
    if (pid == 0) {
        strcpy(msgr_region_base(r), "written by the child");
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

Test(region, anonymous_shared_is_seen_by_a_forked_child_private_is_not)
{
    msgr_region *shared, *priv;
    msgr_region_opts po = {.flags = MSGR_REGION_PRIVATE};
    cr_assert_eq(msgr_region_create_anon(4096, NULL, &shared), 0);
    cr_assert_eq(msgr_region_create_anon(4096, &po, &priv), 0);
    cr_assert(child_writes(shared));
    cr_assert(child_writes(priv));
    cr_assert_str_eq(msgr_region_base(shared), "written by the child");
    cr_assert_str_eq(msgr_region_base(priv), "", "private memory is copy-on-write");
    msgr_region_close(shared);
    msgr_region_close(priv);
}

Test(region, shm_create_attach_unlink)
{
    msgr_region *a, *b;
    cr_assert_eq(msgr_region_create_shm(name, 10000, NULL, &a), 0);
    cr_assert_eq(msgr_region_create_shm(name, 10000, NULL, &b), MSGR_EEXIST);
    cr_assert_eq(msgr_region_open_shm(name, &b), 0);
    cr_assert_eq(msgr_region_size(a), msgr_region_size(b));
    strcpy(msgr_region_base(a), "same bytes");
    cr_assert_str_eq(msgr_region_base(b), "same bytes");
    char dev[128];
    snprintf(dev, sizeof dev, "/dev/shm/%s", name);
    struct stat st;
    if (stat(dev, &st) == 0)
        cr_assert_eq(st.st_mode & 0777, 0600, "created 0600");
    cr_assert_eq(msgr_region_unlink_shm(name), 0);
    cr_assert_eq(msgr_region_open_shm(name, &b), MSGR_ENOENT);
    cr_assert_eq(msgr_region_unlink_shm(name), MSGR_ENOENT);
    cr_assert_str_eq(msgr_region_base(a), "same bytes", "mapping outlives the name");
    msgr_region_close(a);
    msgr_region_close(b);
}

Test(region, shm_replace_flag_and_mode)
{
    msgr_region *a, *b;
    msgr_region_opts o = {.mode = 0640};
    cr_assert_eq(msgr_region_create_shm(name, 4096, &o, &a), 0);
    o.flags = MSGR_REGION_REPLACE;
    cr_assert_eq(msgr_region_create_shm(name, 4096, &o, &b), 0);
    char dev[128];
    snprintf(dev, sizeof dev, "/dev/shm/%s", name);
    struct stat st;
    if (stat(dev, &st) == 0)
        cr_assert_eq(st.st_mode & 0777, 0640, "mode as asked");
    msgr_region_close(a);
    msgr_region_close(b);
}

Test(region, bad_names_are_refused)
{
    msgr_region *r;
    char longname[MSGR_REGION_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    cr_assert_eq(msgr_region_create_shm(longname, 4096, NULL, &r), MSGR_ENAMETOOLONG);
    cr_assert_eq(msgr_region_open_shm(longname, &r), MSGR_ENAMETOOLONG);
    const char *bad[] = {"", "/", "a/b", "..", "sp ace", "t\xc3\xa9", "semi;colon"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(msgr_region_create_shm(bad[i], 4096, NULL, &r), MSGR_EINVAL, "'%s'", bad[i]);
        cr_assert_eq(msgr_region_unlink_shm(bad[i]), MSGR_EINVAL);
    }
    cr_assert_eq(msgr_region_create_shm(NULL, 4096, NULL, &r), MSGR_EINVAL);
}

Test(region, bad_sizes_and_options_are_refused)
{
    msgr_region *r;
    cr_assert_eq(msgr_region_create_anon(0, NULL, &r), MSGR_EINVAL);
    cr_assert_eq(msgr_region_create_anon(MSGR_REGION_MAX_SIZE + 1, NULL, &r), MSGR_EINVAL);
    cr_assert_eq(msgr_region_create_shm(name, 0, NULL, &r), MSGR_EINVAL);
    cr_assert_eq(msgr_region_create_file(path, 0, NULL, &r), MSGR_EINVAL);
    msgr_region_opts o = {.flags = 0x100};
    cr_assert_eq(msgr_region_create_anon(4096, &o, &r), MSGR_EINVAL, "unknown flag");
    o = (msgr_region_opts){.mode = 01777};
    cr_assert_eq(msgr_region_create_file(path, 4096, &o, &r), MSGR_EINVAL, "mode bits");
    o = (msgr_region_opts){.flags = MSGR_REGION_GROWABLE, .max_size = 100};
    cr_assert_eq(msgr_region_create_anon(4096, &o, &r), MSGR_EINVAL, "max below size");
    o = (msgr_region_opts){.flags = MSGR_REGION_PRIVATE};
    cr_assert_eq(msgr_region_create_shm(name, 4096, &o, &r), MSGR_EINVAL, "private shm");
    cr_assert_eq(msgr_region_create_anon(4096, NULL, NULL), MSGR_EINVAL);
}

Test(region, file_create_reopen_keeps_content)
{
    msgr_region *r;
    cr_assert_eq(msgr_region_create_file(path, 20000, NULL, &r), 0);
    cr_assert_eq(msgr_region_create_file(path, 20000, NULL, &r), MSGR_EEXIST);
    strcpy(msgr_region_base(r), "persisted");
    size_t size = msgr_region_size(r);
    msgr_region_close(r);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "created 0600");
    cr_assert_eq(msgr_region_open_file(path, &r), 0);
    cr_assert_eq(msgr_region_size(r), size);
    cr_assert_str_eq(msgr_region_base(r), "persisted");
    cr_assert_eq(msgr_region_kind_of(r), MSGR_REGION_FILE);
    msgr_region_close(r);
}

Test(region, missing_file_and_directory_are_enoent)
{
    msgr_region *r;
    cr_assert_eq(msgr_region_open_file(path, &r), MSGR_ENOENT);
    cr_assert_eq(msgr_region_create_file("/nonexistent-dir/x.bus", 4096, NULL, &r), MSGR_ENOENT);
    cr_assert_eq(msgr_region_open_file(NULL, &r), MSGR_EINVAL);
    cr_assert_eq(msgr_region_open_file("", &r), MSGR_EINVAL);
}

static void write_file(const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

Test(region, a_file_that_is_not_a_messenger_file_is_enotmsgr)
{
    msgr_region *r;
    write_file("", 0);
    cr_assert_eq(msgr_region_open_file(path, &r), MSGR_ENOTMSGR, "empty file");
    write_file("hello, world\n", 13);
    cr_assert_eq(msgr_region_open_file(path, &r), MSGR_ENOTMSGR, "short text file");
    static char junk[8192];
    memset(junk, 'x', sizeof junk);
    write_file(junk, sizeof junk);
    cr_assert_eq(msgr_region_open_file(path, &r), MSGR_ENOTMSGR, "long text file");
    cr_assert_eq(msgr_region_open_file("/tmp", &r), MSGR_EINVAL, "a directory");
}

Test(region, damaged_region_header_is_reported)
{
    msgr_region *r;
    cr_assert_eq(msgr_region_create_file(path, 8192, NULL, &r), 0);
    msgr_region_close(r);
    int fd = open(path, O_RDWR);
    uint32_t v = 99;
    cr_assert_eq(pwrite(fd, &v, 4, 8), 4); /* version */
    cr_assert_eq(msgr_region_open_file(path, &r), MSGR_EVERSION);
    v = 1;
    cr_assert_eq(pwrite(fd, &v, 4, 8), 4);
    uint64_t big = 1ull << 30;
    cr_assert_eq(pwrite(fd, &big, 8, 16), 8); /* size beyond the file: truncated file */
    cr_assert_eq(msgr_region_open_file(path, &r), MSGR_ECORRUPT);
    close(fd);
    cr_assert_eq(truncate(path, 300), 0);
    cr_assert_eq(msgr_region_open_file(path, &r), MSGR_ECORRUPT);
}

Test(region, permission_denied_is_eacces)
{
    msgr_region *r;
    cr_assert_eq(msgr_region_create_file(path, 4096, NULL, &r), 0); /* 0600 */
    msgr_region_close(r);
    pid_t pid = fork();
    if (pid == 0) {
        /* As root, drop to an unprivileged user so that 0600 means something. */
        if (getuid() == 0) {
            if (setuid(65534) != 0)
                _exit(3);
        } else if (chmod(path, 0) != 0) {
            _exit(4);
        }
        _exit(msgr_region_open_file(path, &r) == MSGR_EACCES ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st));
    cr_assert_eq(WEXITSTATUS(st), 0, "open by another user: EACCES (status %d)", WEXITSTATUS(st));
}

Test(region, growable_file_grows_in_place)
{
    msgr_region *r, *other;
    msgr_region_opts o = {.flags = MSGR_REGION_GROWABLE, .max_size = 1 << 20};
    cr_assert_eq(msgr_region_create_file(path, 4096, &o, &r), 0);
    char *base = msgr_region_base(r);
    size_t s0 = msgr_region_size(r);
    strcpy(base, "before growth");
    cr_assert_eq(msgr_region_open_file(path, &other), 0);
    cr_assert_eq(msgr_region_grow(r, 256 * 1024), 0);
    cr_assert_eq((char *)msgr_region_base(r), base, "base address stable");
    cr_assert_geq(msgr_region_size(r), 256 * 1024);
    base[256 * 1024 - 1] = 'z';
    cr_assert_str_eq(base, "before growth");
    cr_assert_eq(msgr_region_size(other), s0, "the other handle sees growth only on refresh");
    cr_assert_eq(msgr_region_refresh(other), 0);
    cr_assert_eq(msgr_region_size(other), msgr_region_size(r));
    cr_assert_eq(((char *)msgr_region_base(other))[256 * 1024 - 1], 'z');
    cr_assert_eq(msgr_region_grow(r, 2 << 20), MSGR_ERANGE, "beyond max_size");
    cr_assert_eq(msgr_region_grow(r, 100), 0, "never shrinks, not an error");
    cr_assert_geq(msgr_region_size(r), 256 * 1024);
    msgr_region_close(other);
    msgr_region_close(r);
    cr_assert_eq(msgr_region_open_file(path, &r), 0);
    cr_assert_geq(msgr_region_size(r), 256 * 1024, "growth persisted in the header");
    msgr_region_close(r);
}

Test(region, growable_anonymous_grows_and_fixed_refuses)
{
    msgr_region *r;
    msgr_region_opts o = {.flags = MSGR_REGION_GROWABLE};
    cr_assert_eq(msgr_region_create_anon(4096, &o, &r), 0);
    char *base = msgr_region_base(r);
    cr_assert_eq(msgr_region_grow(r, 64 * 4096 - 256), 0, "default max is 64x the size");
    memset(base, 1, msgr_region_size(r));
    cr_assert_eq(msgr_region_grow(r, 65 * 4096), MSGR_ERANGE);
    msgr_region_close(r);
    cr_assert_eq(msgr_region_create_anon(4096, NULL, &r), 0);
    cr_assert_eq(msgr_region_grow(r, 8192), MSGR_ESTATE);
    msgr_region_close(r);
}

/* Pages of the mapping this process has in memory (mincore), out of all of them. */
static size_t resident_pages(msgr_region *r, size_t *total)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)msgr_region_base(r) - 1) & ~(uintptr_t)(page - 1);
    uintptr_t end = (uintptr_t)msgr_region_base(r) + msgr_region_size(r);
    size_t n = (end - start) / page, in = 0;
    unsigned char *vec = malloc(n);
    cr_assert_eq(mincore((void *)start, end - start, vec), 0);
    for (size_t i = 0; i < n; i++)
        in += vec[i] & 1;
    free(vec);
    *total = n;
    return in;
}

Test(region, prefault_maps_every_page_and_keeps_contents)
{
    size_t size = 4u << 20, total;
    msgr_region *r, *a;
    cr_assert_eq(msgr_region_create_shm(name, size, NULL, &r), 0);
    memset(msgr_region_base(r), 0x77, 4096); /* some content; the rest stays untouched */
    cr_assert_eq(msgr_region_open_shm(name, &a), 0);
    cr_assert_lt(resident_pages(a, &total), total, "a fresh attachment has not touched its pages");
    cr_assert_eq(msgr_region_prefault(a), 0);
    /* qemu-user acknowledges madvise(MADV_POPULATE_WRITE) without populating anything. */
    if (!tu_emulated())
        cr_assert_eq(resident_pages(a, &total), total, "every page is mapped after prefault");
    const unsigned char *p = msgr_region_base(a);
    for (size_t i = 0; i < 4096; i++)
        cr_assert_eq(p[i], 0x77, "byte %zu changed", i);
    for (size_t i = 4096; i < msgr_region_size(a); i += 4096)
        cr_assert_eq(p[i], 0, "untouched page %zu changed", i / 4096);

    msgr_region *anon;
    cr_assert_eq(msgr_region_create_anon(size, NULL, &anon), 0);
    cr_assert_eq(msgr_region_prefault(anon), 0);
    if (!tu_emulated())
        cr_assert_eq(resident_pages(anon, &total), total);
    cr_assert_eq(msgr_region_prefault(NULL), MSGR_EINVAL);
    msgr_region_close(anon);
    msgr_region_close(a);
    msgr_region_close(r);
}

/* A file-size limit below the region's size: MSGR_EFBIG from create (not death by SIGXFSZ),
 * and no file left behind under the name or a temporary one. */
Test(region, a_file_size_limit_is_efbig_and_leaves_nothing)
{
    char shm_path[128];
    snprintf(shm_path, sizeof shm_path, "/dev/shm/%s", name);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {.rlim_cur = 8192, .rlim_max = RLIM_INFINITY};
        if (setrlimit(RLIMIT_FSIZE, &rl))
            _exit(10);
        msgr_region *r;
        int a = msgr_region_create_file(path, 1 << 20, NULL, &r);
        int b = msgr_region_create_shm(name, 1 << 20, NULL, &r);
        _exit(a == MSGR_EFBIG && (b == MSGR_EFBIG || b == 0) ? (b ? 0 : 1) : 2);
    }
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "the creator was killed (signal %d)", WTERMSIG(st));
    cr_assert_lt(WEXITSTATUS(st), 2, "create returned MSGR_EFBIG");
    cr_assert_neq(access(path, F_OK), 0, "no file left under the name");
    if (WEXITSTATUS(st) == 0)
        cr_assert_neq(access(shm_path, F_OK), 0, "no shm object left under the name");
    DIR *d = opendir("/tmp");
    struct dirent *e;
    char tmp_prefix[96];
    snprintf(tmp_prefix, sizeof tmp_prefix, ".%s", strrchr(path, '/') + 1);
    while (d && (e = readdir(d)) != NULL)
        cr_assert_neq(strncmp(e->d_name, tmp_prefix, strlen(tmp_prefix)), 0,
                      "temporary %s left", e->d_name);
    if (d)
        closedir(d);
}

/* A creator killed midway leaves only its temporary: the name does not exist (open: ENOENT,
 * never "not messenger"), and the next create removes the dead creator's temporary. */
Test(region, a_creator_killed_midway_leaves_no_half_made_object)
{
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0); /* a pid that is no longer alive */
    char tmp[256];
    snprintf(tmp, sizeof tmp, "/tmp/.%s.msgr-new.%d", strrchr(path, '/') + 1, (int)dead);
    int fd = open(tmp, O_CREAT | O_RDWR, 0600); /* what the killed creator left: 0 bytes */
    cr_assert_geq(fd, 0);
    close(fd);
    msgr_region *r;
    cr_assert_eq(msgr_region_open_file(path, &r), MSGR_ENOENT);
    cr_assert_eq(msgr_region_create_file(path, 4096, NULL, &r), 0);
    cr_assert_neq(access(tmp, F_OK), 0, "the dead creator's temporary was removed");
    msgr_region_close(r);
}

/* Eight processes creating-or-opening one new file region at once, 100 times: exactly one
 * creates it, every other opens a whole region (never a half-made one). */
Test(region, concurrent_creators_and_openers_never_see_a_half_made_file, .timeout = 120)
{
    for (int trial = 0; trial < 100; trial++) {
        unlink(path);
        int go[2], res[2];
        cr_assert_eq(pipe(go), 0);
        cr_assert_eq(pipe(res), 0);
        pid_t kids[8];
        for (int k = 0; k < 8; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                close(go[1]);
                char c;
                if (read(go[0], &c, 1) != 0)
                    _exit(1);
                msgr_region *r;
                int rc = msgr_region_create_file(path, 1 << 20, NULL, &r);
                int out = 1; /* 1 created, 2 opened, else the error */
                if (rc == MSGR_EEXIST) {
                    rc = msgr_region_open_file(path, &r);
                    out = 2;
                }
                if (rc)
                    out = rc;
                else
                    msgr_region_close(r);
                if (write(res[1], &out, sizeof out) != sizeof out)
                    _exit(2);
                _exit(0);
            }
        }
        close(go[0]);
        close(go[1]);
        int created = 0, opened = 0;
        for (int k = 0; k < 8; k++) {
            int c;
            cr_assert_eq(read(res[0], &c, sizeof c), (ssize_t)sizeof c);
            created += c == 1;
            opened += c == 2;
            cr_assert(c == 1 || c == 2, "trial %d: %s", trial, msgr_strerror(c));
        }
        for (int k = 0; k < 8; k++)
            waitpid(kids[k], NULL, 0);
        close(res[0]);
        close(res[1]);
        cr_assert_eq(created, 1, "trial %d: one creator", trial);
        cr_assert_eq(opened, 7);
    }
}

/* msgr_region_list_shm and msgr_region_shm_users: who maps a named object, and the objects a
 * killed creator left half-made. */
Test(region, shm_objects_are_listed_with_their_live_users)
{
    msgr_region *r;
    cr_assert_eq(msgr_region_create_shm(name, 4096, NULL, &r), 0);
    int32_t users = -2;
    cr_assert_eq(msgr_region_shm_users(name, &users), 0);
    cr_assert_eq(users, 1, "this process maps it");
    pid_t kid = fork();
    if (kid == 0) {
        msgr_region *mine;
        if (msgr_region_open_shm(name, &mine))
            _exit(1);
        tu_sleep_forever();
        _exit(0);
    }
    for (int i = 0; i < 20000 && users != 2; i++) {
        msgr_region_shm_users(name, &users);
        usleep(500);
    }
    cr_assert_eq(users, 2, "and the child");
    kill(kid, SIGKILL);
    msgr_region_close(r);
    for (int i = 0; i < 20000 && users != 0; i++) { /* a zombie maps nothing */
        msgr_region_shm_users(name, &users);
        usleep(500);
    }
    cr_assert_eq(users, 0, "nobody maps it: stale");
    static msgr_region_shm_info list[256];
    uint32_t n = 0;
    cr_assert_eq(msgr_region_list_shm(list, 256, &n), 0);
    int found = 0;
    for (uint32_t i = 0; i < n && i < 256; i++)
        if (strcmp(list[i].name, name) == 0) {
            found = 1;
            cr_assert_eq(list[i].users, 0);
            cr_assert_eq(list[i].half_made, 0);
            cr_assert_geq(list[i].size, 4096);
        }
    cr_assert(found, "listed");
    waitpid(kid, NULL, 0);
    cr_assert_eq(msgr_region_shm_users("no-such-object-here", &users), MSGR_ENOENT);
}
