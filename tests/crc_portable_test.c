/* The CRC32C tests of crc_test.c run again on the portable code (MSGR_CRC_PORTABLE): the
 * byte-table path that non-x86 builds and CPUs without SSE4.2 take, which this machine would
 * otherwise never execute. The CRC source is compiled into this program with that switch. */
#define MSGR_CRC_PORTABLE 1
#include "../bus/crc32c.c"

#include "crc_test.c"
