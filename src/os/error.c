/* Error strings, generated from MSGR_ERRNO_MAP, and the per-thread detail of the last error. */
#include "msgr/error.h"
#include "error_detail.h"

#include <stdarg.h>
#include <stdio.h>

const char *msgr_strerror(int code)
{
    switch (code) {
    case MSGR_OK: return "success";
#define MSGR__ERR_TEXT(name, value, text) case MSGR_##name: return text;
    MSGR_ERRNO_MAP(MSGR__ERR_TEXT)
#undef MSGR__ERR_TEXT
    default: return "unknown error";
    }
}

const char *msgr_errname(int code)
{
    switch (code) {
    case MSGR_OK: return "MSGR_OK";
#define MSGR__ERR_NAME(name, value, text) case MSGR_##name: return "MSGR_" #name;
    MSGR_ERRNO_MAP(MSGR__ERR_NAME)
#undef MSGR__ERR_NAME
    default: return "MSGR_E?";
    }
}

static _Thread_local char last_error[512];

const char *msgr_last_error(void) { return last_error; }

int msgr__fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}
