/* messenger: the detail string of the last error (internal); see msgr_last_error(). */
#ifndef MSGR_ERROR_DETAIL_H
#define MSGR_ERROR_DETAIL_H

#include <stdio.h> /* on mingw, defines __MINGW_PRINTF_FORMAT */

/* Records a detail for the calling thread's msgr_last_error() and returns `code`, so that a
 * failure reads `return msgr__fail(MSGR_EINVAL, "run: no worker named '%s'", name);`. */
#ifdef __MINGW_PRINTF_FORMAT /* mingw: checked as its C99 printf (__USE_MINGW_ANSI_STDIO) */
#define MSGR__PRINTF_FORMAT __MINGW_PRINTF_FORMAT
#else
#define MSGR__PRINTF_FORMAT printf
#endif
int msgr__fail(int code, const char *fmt, ...) __attribute__((format(MSGR__PRINTF_FORMAT, 2, 3)));

#endif
