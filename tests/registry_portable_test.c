/* The name registry on every platform (make windows-test runs this under wine): lookups and
 * listings racing registrations and departures never fail, and never see half an entry.
 * On Windows a file cannot be replaced or removed while another handle reads it the ordinary
 * way, so this is where a registry that reads without its lock would break. */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <pthread.h>
#ifndef _WIN32
#include <sys/stat.h>
#endif

#include "test_util.h"

static char dir[512];

static void setup(void)
{
#ifdef _WIN32
    char t[MAX_PATH + 1];
    GetTempPathA(sizeof t, t);
    snprintf(dir, sizeof dir, "%smsgr-regp-%d", t, (int)tu_pid());
    CreateDirectoryA(dir, NULL);
    _putenv_s("MSGR_REGISTRY", dir);
#else
    snprintf(dir, sizeof dir, "/tmp/msgr-regp-%d", (int)tu_pid());
    mkdir(dir, 0700);
    setenv("MSGR_REGISTRY", dir, 1);
#endif
}

static void teardown(void)
{
    msgr_registry_remove("race");
#ifdef _WIN32
    char p[600];
    snprintf(p, sizeof p, "%s\\.lock", dir);
    DeleteFileA(p);
    RemoveDirectoryA(dir);
#else
    tu_empty_dir(dir);
    rmdir(dir);
#endif
}

TestSuite(registry_portable, .init = setup, .fini = teardown, .timeout = 120);

typedef struct churn {
    pthread_t th;
    int rounds, bad_rc, bad_round;
    volatile int done;
} churn;

/* Registers "race" and leaves it again (each a rewrite or a removal of the entry file). */
static void *churn_main(void *arg)
{
    churn *c = arg;
    for (int i = 0; i < c->rounds && !c->bad_rc; i++) {
        int rc = msgr_registry_add("race", MSGR_REGION_SHM, "race-shm", "app", 0x42);
        if (!rc)
            rc = msgr_registry_leave("race");
        if (rc) {
            c->bad_rc = rc;
            c->bad_round = i;
        }
    }
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

Test(registry_portable, lookups_and_listings_racing_changes_never_fail)
{
    churn c = {.rounds = (int)tu_scaled(2000)};
    cr_assert_eq(pthread_create(&c.th, NULL, churn_main, &c), 0);
    long found = 0, absent = 0;
    int bad = 0;
    char why[256] = "";
    while (!__atomic_load_n(&c.done, __ATOMIC_ACQUIRE) && !bad) {
        msgr_registry_entry e;
        int rc = msgr_registry_lookup("race", &e);
        if (rc == 0) {
            found++;
            if (strcmp(e.location, "race-shm") != 0 || e.schema != 0x42 || e.n_procs != 1)
                bad = MSGR_ECORRUPT;
        } else if (rc == MSGR_ENOENT) {
            absent++;
        } else {
            bad = rc;
        }
        msgr_registry_entry all[4];
        uint32_t n = 0;
        if (!bad && (rc = msgr_registry_list(all, 4, &n)) != 0)
            bad = rc;
        if (bad)
            snprintf(why, sizeof why, "%s", msgr_last_error());
    }
    pthread_join(c.th, NULL);
    cr_assert_eq(bad, 0, "a lookup or listing failed: %s (%s)", msgr_strerror(bad), why);
    cr_assert_eq(c.bad_rc, 0, "registering or leaving failed in round %d: %s", c.bad_round,
                 msgr_strerror(c.bad_rc));
    cr_assert(found + absent > 0, "no lookup ran");
}
