/* CRC32C: the checksum every persistent record carries. Checked against the standard test
 * vector and a bit-by-bit reference, including the one-pass record form. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../bus/crc32c.h"

/* Bit-at-a-time CRC32C (reflected 0x82F63B78, init and final XOR ~0): slow and obviously right. */
static uint32_t reference(const unsigned char *p, size_t len)
{
    uint32_t c = 0xFFFFFFFFu;
    while (len--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}

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

Test(crc32c, record_form_equals_header_then_payload)
{
    unsigned char buf[24 + 300];
    srand(11);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)rand();
    uint64_t w[3];
    memcpy(w, buf, 24);
    for (size_t len = 0; len <= 300; len++)
        cr_assert_eq(msgr__crc32c_rec(w[0], w[1], w[2], buf + 24, len), reference(buf, 24 + len),
                     "payload length %zu", len);
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
    uint64_t w[3];
    memcpy(w, buf, 24);
    for (size_t len = 90; len <= MAX - 24; len += 37)
        cr_assert_eq(msgr__crc32c_rec(w[0], w[1], w[2], buf + 24, len), reference(buf, 24 + len),
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
