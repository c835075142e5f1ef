/* messenger: the detail string of the last error (internal); see msgr_last_error(). */
#ifndef MSGR_ERROR_DETAIL_H
#define MSGR_ERROR_DETAIL_H

/* Records a detail for the calling thread's msgr_last_error() and returns `code`, so that a
 * failure reads `return msgr__fail(MSGR_EINVAL, "run: no worker named '%s'", name);`. */
int msgr__fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
