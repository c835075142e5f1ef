/* Error strings, generated from MSGR_ERRNO_MAP. */
#include "msgr/error.h"

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
