/* Helpers shared by the tests (and the fuzz targets): deterministic payloads, scaling, a start
 * barrier, emptying a directory. */
#ifndef MSGR_TEST_UTIL_H
#define MSGR_TEST_UTIL_H

#include <messenger.h>

#include <dirent.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static inline uint64_t tu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* splitmix64: a good 64-bit mix, so payloads differ in every byte between messages. */
static inline uint64_t tu_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Length of message `seq` of producer `id`: 0..max inclusive, derived from both. */
static inline size_t tu_len(uint32_t id, uint64_t seq, size_t max)
{
    return (size_t)(tu_mix(((uint64_t)id << 48) ^ seq) % (max + 1));
}

/* Fills a payload: the sequence number first (when it fits), then bytes derived from
 * (id, seq, index). Returns the sum of all bytes written (a checksum for totals). */
static inline uint64_t tu_fill(void *dst, uint32_t id, uint64_t seq, size_t len)
{
    unsigned char *p = dst;
    uint64_t sum = 0, k = tu_mix(seq * 31 + id);
    for (size_t i = 0; i < len; i++) {
        unsigned char b = i < 8 ? (unsigned char)(seq >> (8 * i)) : (unsigned char)(k >> (8 * (i & 7)));
        if ((i & 7) == 7)
            k = tu_mix(k);
        p[i] = b;
        sum += b;
    }
    return sum;
}

/* 0 if the payload is exactly what tu_fill wrote for (id, seq, len). */
static inline int tu_check(const void *src, uint32_t id, uint64_t seq, size_t len, uint64_t *sum)
{
    unsigned char tmp[4096];
    if (len > sizeof tmp)
        return -1;
    *sum += tu_fill(tmp, id, seq, len);
    return memcmp(tmp, src, len) != 0;
}

/* Scales message counts down under TSan (MSGR_TEST_SCALE=tsan), which is ~20x slower. */
static inline uint64_t tu_scaled(uint64_t n)
{
    const char *s = getenv("MSGR_TEST_SCALE");
    if (s && strcmp(s, "tsan") == 0)
        return n / 50 ? n / 50 : 1;
    return n;
}

/* 1 when the suite runs under an emulator (MSGR_TEST_WRAP set, as make cross-test does): for
 * the few checks of what the kernel did that qemu-user does not emulate. */
static inline int tu_emulated(void)
{
    const char *w = getenv("MSGR_TEST_WRAP");
    return w && *w;
}

/* Directory of the test helper programs (set by the Makefile). */
static inline const char *tu_bin_dir(void)
{
    const char *d = getenv("MSGR_TEST_BIN");
    return d ? d : "build/tests";
}

/* Starts a helper program: argv[0] is its path. With MSGR_TEST_WRAP set (words separated by
 * spaces, e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu" for a cross build), the helper runs
 * through that command; an emulator like qemu-user runs it in its own process, so the pid is
 * still the helper's to signal and wait for. Returns posix_spawnp's result. */
static inline int tu_spawn(pid_t *pid, char *const argv[])
{
    const char *wrap = getenv("MSGR_TEST_WRAP");
    if (!wrap || !*wrap)
        return posix_spawn(pid, argv[0], NULL, NULL, argv, environ);
    char words[512], *all[40];
    int n = 0;
    snprintf(words, sizeof words, "%s", wrap);
    for (char *w = strtok(words, " "); w && n < 20; w = strtok(NULL, " "))
        all[n++] = w;
    for (int i = 0; argv[i] && n < 39; i++)
        all[n++] = argv[i];
    all[n] = NULL;
    return posix_spawnp(pid, all[0], NULL, NULL, all, environ);
}

/* Removes every entry of directory `dir` (files only; a missing directory is fine). */
static inline void tu_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
}

#endif
