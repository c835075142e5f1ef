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

/* Creation options checked alike on every platform: known flags, permission bits, sizes;
 * *max_out: the largest usable size (size itself unless growable). 0 or MSGR_EINVAL. */
int msgr__region_opts_check(const msgr_region_opts *o, uint64_t size, uint64_t *max_out)
{
    if (o && o->size_of != 0 && o->size_of < offsetof(msgr_region_opts, max_size))
        return MSGR_EINVAL;
    uint32_t known = MSGR_REGION_PRIVATE | MSGR_REGION_GROWABLE | MSGR_REGION_REPLACE |
                     MSGR_REGION_PUBLISH_LATER | MSGR_REGION_TRANSFERABLE;
    if (o && (o->flags & ~known))
        return MSGR_EINVAL;
    if (o && (o->mode & ~0777u))
        return MSGR_EINVAL;
    if (size == 0 || size > MSGR_REGION_MAX_SIZE)
        return MSGR_EINVAL;
    uint64_t max = size;
    if (o && (o->flags & MSGR_REGION_GROWABLE)) {
        max = o->max_size ? o->max_size : (size > MSGR_REGION_MAX_SIZE / 64 ? MSGR_REGION_MAX_SIZE
                                                                           : size * 64);
        if (max < size || max > MSGR_REGION_MAX_SIZE)
            return MSGR_EINVAL;
    }
    *max_out = max;
    return 0;
}

/* Formats a new region's header, the magic last (see below). */
void msgr__region_hdr_init(msgr__region_hdr *h, uint64_t usable, uint64_t max_usable,
                           uint32_t flags, msgr_region_kind kind)
{
    h->version = MSGR__REGION_VERSION;
    h->hdr_size = MSGR__REGION_HDR_SIZE;
    atomic_store_explicit(&h->size, usable, memory_order_relaxed);
    h->max_size = max_usable;
    h->flags = flags & MSGR_REGION_GROWABLE;
    h->kind = (uint32_t)kind;
    h->creator_pid = msgr_os_pid();
    msgr_os_proc_start(h->creator_pid, &h->creator_start);
    /* Release: the fields above are visible to anyone who sees the magic; pairs with the
     * acquire in msgr__region_hdr_check(). */
    atomic_store_explicit(&h->magic, MSGR__REGION_MAGIC, memory_order_release);
}

void msgr__region_size_publish(msgr__region_hdr *h, uint64_t usable)
{
    uint64_t cur = atomic_load_explicit(&h->size, memory_order_relaxed);
    /* Release: the object is extended before anyone reads the new size; pairs with the acquire
     * in msgr_region_refresh(). The CAS loop keeps the size monotonic under racing growers. */
    while (cur < usable && !atomic_compare_exchange_weak_explicit(
                               &h->size, &cur, usable, memory_order_release, memory_order_relaxed))
        ;
}

void msgr__region_touch(uint8_t *map, uint64_t bytes)
{
    /* Adding 0 atomically writes each page without changing it, even while other processes
     * write the same bytes; relaxed, because the value carries nothing. */
    size_t page = msgr_os_page_size();
    for (uint64_t off = 0; off < bytes; off += page)
        __atomic_fetch_add(map + off, 0, __ATOMIC_RELAXED);
}
