/* The name registry: register, look up, list, leave; stale entries (every process dead)
 * reclaimed; two processes registering one name at once (one wins, 100 times); an entry
 * directory others could enter refused; a corrupt entry reported, never misread. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test_util.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/msgr-registry-test-%d", (int)getpid());
    mkdir(dir, 0700);
    tu_empty_dir(dir);
    setenv("MSGR_REGISTRY", dir, 1);
}

static void teardown(void)
{
    tu_empty_dir(dir);
    rmdir(dir);
}

TestSuite(registry, .init = setup, .fini = teardown, .timeout = 60);

static int entry_exists(const char *name)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s.bus", dir, name);
    return stat(p, &st) == 0;
}

Test(registry, an_entry_is_found_listed_and_gone_with_its_last_process)
{
    cr_assert_eq(msgr_registry_add("orders", MSGR_REGION_SHM, "orders-shm", "shop", 0x1234), 0,
                 "%s", msgr_last_error());
    msgr_registry_entry e;
    cr_assert_eq(msgr_registry_lookup("orders", &e), 0, "%s", msgr_last_error());
    cr_assert_eq(e.kind, MSGR_REGION_SHM);
    cr_assert_str_eq(e.location, "orders-shm");
    cr_assert_str_eq(e.app, "shop");
    cr_assert_eq(e.schema, 0x1234u);
    cr_assert_eq(e.n_procs, 1u);
    cr_assert_eq(e.procs[0].pid, (int32_t)getpid());
    cr_assert(e.alive && e.procs[0].alive);
    /* the same bus again: joined, not duplicated; another bus: refused, naming the holder */
    cr_assert_eq(msgr_registry_add("orders", MSGR_REGION_SHM, "orders-shm", "shop", 0x1234), 0);
    cr_assert_eq(msgr_registry_add("orders", MSGR_REGION_FILE, "/x/orders.bus", "shop", 0), MSGR_EEXIST);
    cr_assert(strstr(msgr_last_error(), "orders-shm") != NULL, "%s", msgr_last_error());
    cr_assert_eq(msgr_registry_add("second", MSGR_REGION_FILE, "/data/second.bus", "shop", 7), 0);
    msgr_registry_entry all[8];
    uint32_t n = 0;
    cr_assert_eq(msgr_registry_list(all, 8, &n), 0);
    cr_assert_eq(n, 2u);
    int seen = 0;
    for (uint32_t i = 0; i < n; i++)
        seen |= (strcmp(all[i].name, "orders") == 0) | (strcmp(all[i].name, "second") == 0) << 1;
    cr_assert_eq(seen, 3);
    cr_assert_eq(msgr_registry_leave("orders"), 0);
    cr_assert_eq(msgr_registry_lookup("orders", &e), MSGR_ENOENT);
    cr_assert_not(entry_exists("orders"));
    cr_assert_eq(msgr_registry_remove("second"), 0);
    cr_assert_eq(msgr_registry_remove("second"), MSGR_ENOENT);
}

Test(registry, a_name_whose_processes_all_died_is_reclaimed_on_sight)
{
    /* two processes register (the second joins the first) and die; the entry stays until
     * someone looks */
    int hold[2];
    cr_assert_eq(pipe(hold), 0);
    pid_t kid[2];
    for (int k = 0; k < 2; k++) {
        int ready[2];
        cr_assert_eq(pipe(ready), 0);
        kid[k] = fork();
        if (kid[k] == 0) {
            char b = (char)msgr_registry_add("ghost", MSGR_REGION_SHM, "ghost-shm", "app", 1);
            close(hold[1]);
            if (write(ready[1], &b, 1) != 1 || read(hold[0], &b, 1) < 0)
                _exit(2);
            _exit(0);
        }
        char b = 1;
        cr_assert_eq(read(ready[0], &b, 1), 1);
        cr_assert_eq(b, 0, "process %d registered", k);
        close(ready[0]);
        close(ready[1]);
    }
    close(hold[0]);
    close(hold[1]);
    for (int k = 0; k < 2; k++)
        waitpid(kid[k], NULL, 0);
    cr_assert(entry_exists("ghost"));
    msgr_registry_entry all[4];
    uint32_t n = 0;
    cr_assert_eq(msgr_registry_list(all, 4, &n), 0);
    cr_assert_eq(n, 1u);
    cr_assert_eq(all[0].alive, 0, "listed, as dead");
    cr_assert_eq(all[0].n_procs, 2u, "both processes were recorded");
    msgr_registry_entry e;
    cr_assert_eq(msgr_registry_lookup("ghost", &e), MSGR_ENOENT);
    cr_assert(strstr(msgr_last_error(), "no live process") != NULL, "%s", msgr_last_error());
    cr_assert_not(entry_exists("ghost"), "the stale entry is removed");
    /* and a stale entry never blocks a new registration for another bus */
    pid_t p = fork();
    if (p == 0)
        _exit(msgr_registry_add("ghost", MSGR_REGION_SHM, "old-shm", "app", 1) ? 1 : 0);
    int st;
    waitpid(p, &st, 0);
    cr_assert_eq(msgr_registry_add("ghost", MSGR_REGION_SHM, "new-shm", "app", 1), 0);
    cr_assert_eq(msgr_registry_lookup("ghost", &e), 0);
    cr_assert_str_eq(e.location, "new-shm");
}

Test(registry, two_processes_registering_one_name_at_once_get_one_winner)
{
    for (int round = 0; round < 100; round++) {
        char name[32];
        snprintf(name, sizeof name, "race-%d", round);
        int go[2], res[2], hold[2];
        cr_assert_eq(pipe(go), 0);
        cr_assert_eq(pipe(res), 0);
        cr_assert_eq(pipe(hold), 0);
        pid_t kids[2];
        for (int k = 0; k < 2; k++) {
            kids[k] = fork();
            if (kids[k] == 0) {
                char loc[32], b;
                snprintf(loc, sizeof loc, "bus-%d", k);
                close(go[1]);
                close(hold[1]);
                if (read(go[0], &b, 1) != 1) /* both start together */
                    _exit(2);
                int rc = msgr_registry_add(name, MSGR_REGION_SHM, loc, "app", 9);
                if (write(res[1], &rc, sizeof rc) != sizeof rc)
                    _exit(2);
                if (read(hold[0], &b, 1) < 0) /* alive until the parent has looked */
                    _exit(2);
                _exit(0);
            }
        }
        close(go[0]);
        close(res[1]);
        close(hold[0]);
        cr_assert_eq(write(go[1], "gg", 2), 2);
        int rc[2];
        for (int k = 0; k < 2; k++)
            cr_assert_eq(read(res[0], &rc[k], sizeof rc[k]), (ssize_t)sizeof rc[k]);
        msgr_registry_entry e;
        cr_assert_eq(msgr_registry_lookup(name, &e), 0, "round %d: %s", round, msgr_last_error());
        cr_assert_eq(e.n_procs, 1u, "round %d: only the winner is recorded", round);
        close(hold[1]); /* lets both exit */
        close(go[1]);
        close(res[0]);
        for (int k = 0; k < 2; k++)
            waitpid(kids[k], NULL, 0);
        int wins = (rc[0] == 0) + (rc[1] == 0), refused = (rc[0] == MSGR_EEXIST) + (rc[1] == MSGR_EEXIST);
        cr_assert(wins == 1 && refused == 1, "round %d: results %d and %d", round, rc[0], rc[1]);
    }
}

Test(registry, a_directory_others_may_enter_is_refused)
{
    char open_dir[300];
    snprintf(open_dir, sizeof open_dir, "%s/shared", dir);
    mkdir(open_dir, 0755);
    chmod(open_dir, 0755);
    setenv("MSGR_REGISTRY", open_dir, 1);
    msgr_registry_entry e;
    cr_assert_eq(msgr_registry_lookup("x", &e), MSGR_EACCES);
    cr_assert(strstr(msgr_last_error(), open_dir) != NULL, "names it: %s", msgr_last_error());
    cr_assert_eq(msgr_registry_add("x", MSGR_REGION_SHM, "x", "app", 0), MSGR_EACCES);
    setenv("MSGR_REGISTRY", dir, 1);
    rmdir(open_dir);
}

Test(registry, bad_names_and_corrupt_entries_are_refused_never_misread)
{
    msgr_registry_entry e;
    cr_assert_eq(msgr_registry_add("../escape", MSGR_REGION_SHM, "x", "app", 0), MSGR_EINVAL);
    cr_assert_eq(msgr_registry_add(".hidden", MSGR_REGION_SHM, "x", "app", 0), MSGR_EINVAL);
    cr_assert_eq(msgr_registry_add("ok", MSGR_REGION_SHM, "line\nbreak", "app", 0), MSGR_EINVAL);
    cr_assert_eq(msgr_registry_lookup("a/b", &e), MSGR_EINVAL);
    static const char *bad[] = {
        "garbage",
        "msgr-registry 2\nkind shm\nlocation x\n",
        "msgr-registry 1\nkind pipe\nlocation x\n",
        "msgr-registry 1\nkind shm\n",
        "msgr-registry 1\nkind shm\nlocation x\nproc -5 1\n",
        "msgr-registry 1\nkind shm\nlocation x\nproc 12 x\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/bad.bus", dir);
        FILE *f = fopen(p, "w");
        cr_assert_not_null(f);
        fputs(bad[i], f);
        fclose(f);
        cr_assert_eq(msgr_registry_lookup("bad", &e), MSGR_ECORRUPT, "case %zu", i);
        uint32_t n = 9;
        cr_assert_eq(msgr_registry_list(&e, 1, &n), 0);
        cr_assert_eq(n, 0u, "case %zu: a corrupt entry is not listed", i);
        /* a registration takes the name over from an entry that does not parse */
        cr_assert_eq(msgr_registry_add("bad", MSGR_REGION_SHM, "x", "app", 0), 0);
        cr_assert_eq(msgr_registry_remove("bad"), 0);
    }
}
