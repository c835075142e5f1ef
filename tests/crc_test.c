/* CRC32C: the checksum every persistent record carries. Checked against the standard test
 * vector and a bit-by-bit reference, including the one-pass record form. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../bus/crc32c.h"

/* Bit-at-a-time CRC32C (reflected 0x82F63B78, init and final XOR ~0): slow and obviously right.
 * reference_from extends a running value as msgr__crc32c(seed, ...) does (register ~seed). */
static uint32_t reference_from(uint32_t seed, const unsigned char *p, size_t len)
{
    uint32_t c = ~seed;
    while (len--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

static uint32_t reference(const unsigned char *p, size_t len) { return reference_from(0, p, len); }

Test(crc32c, standard_check_value)
{
    cr_assert_eq(msgr__crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(msgr__crc32c(0, "", 0), 0u);
}

Test(crc32c, every_length_and_alignment_matches_the_reference)
{
    unsigned char buf[300];
    srand(7);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)rand();
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= sizeof buf; len++)
            cr_assert_eq(msgr__crc32c(0, buf + off, len), reference(buf + off, len),
                         "offset %zu length %zu", off, len);
    /* chaining two calls equals one call over the concatenation */
    cr_assert_eq(msgr__crc32c(msgr__crc32c(0, buf, 100), buf + 100, 77),
                 msgr__crc32c(0, buf, 177));
}

/* The log's record form: msgr__crc32c(seed, ...) over one header word and the payload. Every
 * payload length up to 300 (the three-chain lengths among them), several seeds, and alignments. */
Test(crc32c, seeded_form_equals_seed_then_word_then_payload)
{
    unsigned char buf[8 + 300 + 8];
    srand(12);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)rand();
    const uint32_t seeds[] = {0, 1, 0x80000000u, 0xFFFFFFFFu, 0x12345678u};
    for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++)
        for (size_t off = 0; off < 8; off += 3)
            for (size_t len = 0; len <= 300; len++) {
                uint64_t w1;
                memcpy(&w1, buf + off, 8);
                cr_assert_eq(msgr__crc32c_seeded(seeds[s], w1, buf + off + 8, len),
                             reference_from(seeds[s], buf + off, 8 + len),
                             "seed %08x, offset %zu, payload length %zu", seeds[s], off, len);
            }
    /* the seed matters: the same bytes under two seeds differ */
    uint64_t w1;
    memcpy(&w1, buf, 8);
    cr_assert_neq(msgr__crc32c_seeded(1, w1, buf + 8, 64), msgr__crc32c_seeded(2, w1, buf + 8, 64));
}

/* Long buffers go through three interleaved streams joined by carry-less multiplication (on
 * CPUs with PCLMUL): every length across both round sizes and their remainders. */
Test(crc32c, long_buffers_match_the_reference)
{
    enum { MAX = 2600 };
    static unsigned char buf[MAX + 8];
    srand(13);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)rand();
    for (size_t off = 0; off < 8; off += 5)
        for (size_t len = 0; len <= MAX; len++)
            cr_assert_eq(msgr__crc32c(0, buf + off, len), reference(buf + off, len),
                         "offset %zu length %zu", off, len);
    uint64_t w1;
    memcpy(&w1, buf, 8);
    for (size_t len = 90; len <= MAX - 8; len += 37)
        cr_assert_eq(msgr__crc32c_seeded(7, w1, buf + 8, len), reference_from(7, buf, 8 + len),
                     "record payload length %zu", len);
    /* a 1 MiB buffer, chained in two calls and in one */
    size_t big = 1u << 20;
    unsigned char *m = malloc(big);
    for (size_t i = 0; i < big; i++)
        m[i] = (unsigned char)(i * 7 + (i >> 9));
    cr_assert_eq(msgr__crc32c(0, m, big), reference(m, big));
    cr_assert_eq(msgr__crc32c(msgr__crc32c(0, m, 1000), m + 1000, big - 1000), reference(m, big));
    free(m);
}
