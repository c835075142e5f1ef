/* messenger: CRC32C (Castagnoli), the checksum of persistent records (internal).
 * Hardware instructions where the CPU has them (x86 SSE4.2), a table otherwise; same result. */
#ifndef MSGR_CRC32C_H
#define MSGR_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends `crc` (start with 0) over len bytes. Thread-safe. */
uint32_t msgr__crc32c(uint32_t crc, const void *data, size_t len);

/* msgr__crc32c(seed, ...) over the 8 bytes of w1 (native byte order) followed by len bytes of
 * data: the log's record checksum, seeded by the record's position. Thread-safe. */
uint32_t msgr__crc32c_seeded(uint32_t seed, uint64_t w1, const void *data, size_t len);

#endif
