/* messenger: CRC32C. Reflected polynomial 0x82F63B78, initial and final XOR 0xFFFFFFFF. */
#include "crc32c.h"

#include <stdatomic.h>
#include <string.h>

/* The x86 (SSE4.2) or ARMv8 (CRC32) instructions where the compiler can emit them, chosen at
 * start-up by what the CPU has; MSGR_CRC_PORTABLE forces the table code that other CPUs run
 * (tests/crc_portable_test.c checks it on any machine). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MSGR_CRC_PORTABLE)
#define MSGR__CRC_X86 1
#else
#define MSGR__CRC_X86 0
#endif
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(MSGR_CRC_PORTABLE)
#define MSGR__CRC_ARM 1
#else
#define MSGR__CRC_ARM 0
#endif

static uint32_t table[256];
static atomic_int table_state; /* 0 not built, 1 building, 2 ready */

static void build_table(void)
{
    int expect = 0;
    if (atomic_compare_exchange_strong_explicit(&table_state, &expect, 1, memory_order_acquire,
                                                memory_order_acquire)) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
            table[i] = c;
        }
        /* Release: the table is complete for anyone who sees 2; pairs with the acquire below. */
        atomic_store_explicit(&table_state, 2, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&table_state, memory_order_acquire) != 2)
        ; /* another thread is filling 256 words: a few microseconds */
}

static uint32_t crc_sw(uint32_t crc, const unsigned char *p, size_t len)
{
    if (atomic_load_explicit(&table_state, memory_order_acquire) != 2)
        build_table();
    while (len--)
        crc = (crc >> 8) ^ table[(crc ^ *p++) & 0xff];
    return crc;
}

#if MSGR__CRC_X86
#include <cpuid.h>

static inline uint64_t ld64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw1(uint32_t crc, const unsigned char *p,
                                                          size_t len)
{
    uint64_t c = crc;
    while (len >= 32) { /* unrolled: the loop overhead was half the work for small records */
        uint64_t v[4];
        memcpy(v, p, 32);
        c = __builtin_ia32_crc32di(c, v[0]);
        c = __builtin_ia32_crc32di(c, v[1]);
        c = __builtin_ia32_crc32di(c, v[2]);
        c = __builtin_ia32_crc32di(c, v[3]);
        p += 32;
        len -= 32;
    }
    while (len >= 8) {
        c = __builtin_ia32_crc32di(c, ld64(p));
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}

/* Three streams at once. One crc32 instruction starts every cycle but its result takes three,
 * so a single chain runs at a third of the unit's speed. A round gives each of three streams
 * `blk` consecutive bytes, then joins them: the CRC state after A then B then C is
 * A * x^(16 blk) + B * x^(8 blk) + C (mod P, bytes as bits). Multiplying a 32-bit state by
 * x^(8n) is one carry-less multiply by K(n) = x^(8n - 33) mod P (bit-reflected, like the
 * state) followed by crc32 of the 64-bit product from zero: reflected multiplication leaves
 * one factor x, and crc32 of 64 bits from zero multiplies by x^32 (checked for n = 5..600
 * against feeding zero bytes). Constants for the block sizes are made once at start-up. */
static const size_t blk_sizes[3] = {256, 96, 32}; /* per stream; rounds of 3x, largest first */
static uint32_t k1[3], k2[3];                        /* K(blk), K(2 blk) per size */
static int clmul_ok;

static uint32_t xpow8n_33(uint64_t n) /* x^(8n - 33) mod P, bit-reflected */
{
    uint32_t r = 0x80000000u; /* x^0 */
    for (uint64_t e = 8 * n - 33; e; e--)
        r = (r >> 1) ^ (0x82F63B78u & (0u - (r & 1)));
    return r;
}

__attribute__((target("sse4.2,pclmul"))) static uint64_t crc_shift(uint64_t state, uint32_t k)
{
    typedef long long v2di __attribute__((vector_size(16)));
    v2di a = {(long long)state, 0}, b = {(long long)k, 0};
    v2di prod = __builtin_ia32_pclmulqdq128(a, b, 0x00);
    return __builtin_ia32_crc32di(0, (unsigned long long)prod[0]);
}

__attribute__((target("sse4.2,pclmul"))) static uint32_t crc_hw3(uint32_t crc,
                                                                 const unsigned char *p,
                                                                 size_t len)
{
    uint64_t a = crc;
    for (int t = 0; t < 3; t++) {
        size_t blk = blk_sizes[t];
        while (len >= 3 * blk) {
            uint64_t b = 0, c = 0;
            for (size_t i = 0; i < blk; i += 8) {
                a = __builtin_ia32_crc32di(a, ld64(p + i));
                b = __builtin_ia32_crc32di(b, ld64(p + blk + i));
                c = __builtin_ia32_crc32di(c, ld64(p + 2 * blk + i));
            }
            a = crc_shift(a, k2[t]) ^ crc_shift(b, k1[t]) ^ c;
            p += 3 * blk;
            len -= 3 * blk;
        }
    }
    return crc_hw1((uint32_t)a, p, len);
}

static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t len)
{
    return clmul_ok && len >= 3 * 32 ? crc_hw3(crc, p, len) : crc_hw1(crc, p, len);
}

/* The record CRC for small payloads in three streams too: the header word and the payload are
 * split into three runs of whole words (A, B, C), each run its own crc32 chain, joined as in
 * crc_hw3() with shifts by B+C and C words, so a 64-byte record is three short chains the CPU
 * runs side by side instead of one long one. Below REC3_MIN the join costs more than it saves;
 * above REC3_MAX crc_hw3() takes the payload. */
#define REC_KMAX 10 /* K(8k) for k = 1..REC_KMAX words: shifts by B+C, at most 5 + 5 */
#define REC3_MIN 48
#define REC3_MAX 103 /* 12 payload words: runs of 2, 5 and 5 (with the header, 5 each) */
_Static_assert(REC3_MAX >= 3 * 32, "crc_hw3() takes over where this ends");
static uint32_t kword[REC_KMAX + 1];

/* crc32 over k <= 5 words at q, unrolled (a jump into the sequence): a loop's own add, compare
 * and branch were three instructions per crc32. */
__attribute__((target("sse4.2"))) static inline uint64_t crc_run5(uint64_t x,
                                                                  const unsigned char *q, size_t k)
{
    const unsigned char *e = q + 8 * k;
    switch (k) {
    case 5: x = __builtin_ia32_crc32di(x, ld64(e - 40)); /* fall through */
    case 4: x = __builtin_ia32_crc32di(x, ld64(e - 32)); /* fall through */
    case 3: x = __builtin_ia32_crc32di(x, ld64(e - 24)); /* fall through */
    case 2: x = __builtin_ia32_crc32di(x, ld64(e - 16)); /* fall through */
    case 1: x = __builtin_ia32_crc32di(x, ld64(e - 8)); /* fall through */
    default: break;
    }
    return x;
}

/* Three chains over the payload, the first continuing from state `a` (the header words already
 * in it): A takes the first na payload words, B the next nb, C the next nc; joined as in
 * crc_hw3() with shifts by B+C and C words. Inlined with constant run lengths, so each case
 * below is straight-line code the CPU runs side by side. */
__attribute__((target("sse4.2,pclmul"), always_inline)) static inline uint32_t
rec3_runs(uint64_t a, const unsigned char *p, size_t len, size_t na, size_t nb, size_t nc)
{
    a = crc_run5(a, p, na);
    uint64_t b = crc_run5(0, p + 8 * na, nb), c = crc_run5(0, p + 8 * (na + nb), nc);
    uint32_t x = (uint32_t)(crc_shift(a, kword[nb + nc]) ^ crc_shift(b, kword[nc]) ^ c);
    const unsigned char *q = p + 8 * (na + nb + nc);
    for (size_t r = len & 7; r; r--)
        x = __builtin_ia32_crc32qi(x, *q++);
    return ~x;
}

/* The seeded form: one header word, then n payload words (6 to 12), in three runs per word
 * count: n, then A's payload words (after the header word), B's, C's. C, the run that is not
 * shifted, gets the odd word: it has the join's latency (two domain crossings and a carry-less
 * multiply) to spare. A 64-byte payload is three chains of 3. */
#define SEEDED_RUNS(X)                                                                           \
    X(6, 1, 2, 3) X(7, 2, 2, 3) X(8, 2, 3, 3) X(9, 2, 3, 4) X(10, 3, 3, 4) X(11, 3, 4, 4)        \
    X(12, 3, 4, 5)

/* Two straight-line functions per word count: for whole words (a constant length leaves no
 * tail loop, and no loads hoisted above a jump table) and with a tail of 1 to 7 bytes; called
 * through a table. */
#define SEEDED_FNS(n, na, nb, nc)                                                                \
    __attribute__((target("sse4.2,pclmul"))) static uint32_t seeded_##n(                        \
        uint32_t seed, uint64_t w1, const unsigned char *p, size_t len)                          \
    {                                                                                            \
        (void)len;                                                                               \
        return rec3_runs(__builtin_ia32_crc32di(~seed, w1), p, 8 * n, na, nb, nc);               \
    }                                                                                            \
    __attribute__((target("sse4.2,pclmul"))) static uint32_t seeded_tail_##n(                   \
        uint32_t seed, uint64_t w1, const unsigned char *p, size_t len)                          \
    {                                                                                            \
        return rec3_runs(__builtin_ia32_crc32di(~seed, w1), p, len, na, nb, nc);                 \
    }
SEEDED_RUNS(SEEDED_FNS)
#define SEEDED_WHOLE(n, na, nb, nc) seeded_##n,
#define SEEDED_TAIL(n, na, nb, nc) seeded_tail_##n,
/* [0]: whole words, [1]: with a tail; then by word count - 6. */
static uint32_t (*const seeded_fn[2][7])(uint32_t, uint64_t, const unsigned char *, size_t) = {
    {SEEDED_RUNS(SEEDED_WHOLE)}, {SEEDED_RUNS(SEEDED_TAIL)}};
_Static_assert(REC3_MIN / 8 == 6 && REC3_MAX / 8 == 12, "the table covers REC3_MIN..REC3_MAX");

/* The seeded form for other lengths: one chain (or crc_hw3() for long payloads). */
__attribute__((target("sse4.2"))) static uint32_t crc_hw_seeded(uint32_t seed, uint64_t w1,
                                                                const unsigned char *p,
                                                                size_t len)
{
    return ~crc_hw((uint32_t)__builtin_ia32_crc32di(~seed, w1), p, len);
}

/* Decided once, before main (constructor): no atomic load on every call. */
static int hw_ok;
__attribute__((constructor)) static void detect_hw(void)
{
    unsigned a, b, c, d;
    hw_ok = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
    clmul_ok = hw_ok && (c & bit_PCLMUL);
    if (clmul_ok) {
        for (int t = 0; t < 3; t++) {
            k1[t] = xpow8n_33(blk_sizes[t]);
            k2[t] = xpow8n_33(2 * blk_sizes[t]);
        }
        for (int k = 1; k <= REC_KMAX; k++)
            kword[k] = xpow8n_33(8 * (uint64_t)k);
    }
}
static inline int have_hw(void) { return hw_ok; }
#elif MSGR__CRC_ARM
#include "os/os.h"
#include <arm_acle.h>

/* One chain of crc32cx (8 bytes per instruction), then bytes. */
__attribute__((target("+crc"))) static uint32_t crc_hw(uint32_t crc, const unsigned char *p,
                                                       size_t len)
{
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        crc = __crc32cd(crc, v);
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = __crc32cb(crc, *p++);
    return crc;
}

static int hw_ok;
__attribute__((constructor)) static void detect_hw(void)
{
    hw_ok = (msgr_os_cpu_features() & MSGR_OS_CPU_ARM_CRC32) != 0;
}
static inline int have_hw(void) { return hw_ok; }
#else
static int have_hw(void) { return 0; }
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t len)
{
    return crc_sw(crc, p, len);
}
#endif

uint32_t msgr__crc32c(uint32_t crc, const void *data, size_t len)
{
    crc = ~crc;
    crc = have_hw() ? crc_hw(crc, data, len) : crc_sw(crc, data, len);
    return ~crc;
}

/* The portable path, out of line: keeps the register saves it needs out of the hardware path. */
static __attribute__((noinline)) uint32_t crc_seeded_sw(uint32_t seed, uint64_t w1,
                                                        const void *data, size_t len)
{
    return msgr__crc32c(msgr__crc32c(seed, &w1, 8), data, len);
}

uint32_t msgr__crc32c_seeded(uint32_t seed, uint64_t w1, const void *data, size_t len)
{
#if MSGR__CRC_X86
    if (clmul_ok && len - REC3_MIN <= REC3_MAX - REC3_MIN)
        return seeded_fn[(len & 7) != 0][len / 8 - REC3_MIN / 8](seed, w1, data, len);
    if (have_hw())
        return crc_hw_seeded(seed, w1, data, len);
#endif
    return crc_seeded_sw(seed, w1, data, len);
}
