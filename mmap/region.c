/* messenger: region logic shared by every platform (header checks, names, sizes). */
#include "region_layout.h"
#include "os/os.h"
#include "msgr/error.h"

#include <string.h>

int msgr__region_hdr_check(const msgr__region_hdr *h, uint64_t object_bytes)
{
    if (object_bytes < MSGR__REGION_HDR_SIZE)
        return MSGR_ENOTMSGR;
    if (atomic_load_explicit(&h->magic, memory_order_acquire) != MSGR__REGION_MAGIC)
        return MSGR_ENOTMSGR;
    if (h->version != MSGR__REGION_VERSION)
        return MSGR_EVERSION;
    if (h->hdr_size != MSGR__REGION_HDR_SIZE)
        return MSGR_ECORRUPT;
    uint64_t size = atomic_load_explicit(&h->size, memory_order_acquire);
    if (size == 0 || size > MSGR_REGION_MAX_SIZE || h->max_size < size ||
        h->max_size > MSGR_REGION_MAX_SIZE)
        return MSGR_ECORRUPT;
    if (size > object_bytes - MSGR__REGION_HDR_SIZE)
        return MSGR_ECORRUPT; /* header claims more than the object holds: truncated */
    if (!(h->flags & MSGR_REGION_GROWABLE) && h->max_size != size)
        return MSGR_ECORRUPT;
    return 0;
}

int msgr__region_shm_name(const char *name, char *buf)
{
    if (!name || !buf)
        return MSGR_EINVAL;
    if (name[0] == '/')
        name++;
    size_t n = strlen(name);
    if (n == 0)
        return MSGR_EINVAL;
    if (n > MSGR_REGION_NAME_MAX)
        return MSGR_ENAMETOOLONG;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok)
            return MSGR_EINVAL;
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return MSGR_EINVAL;
    buf[0] = '/';
    memcpy(buf + 1, name, n + 1);
    return 0;
}

uint64_t msgr__region_total(uint64_t size)
{
    if (size == 0 || size > MSGR_REGION_MAX_SIZE)
        return 0;
    uint64_t page = msgr_os_page_size();
    uint64_t t = size + MSGR__REGION_HDR_SIZE;
    return (t + page - 1) / page * page;
}
