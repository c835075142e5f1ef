/* messenger: a region's handles, for handing regions between processes (internal, Windows).
 * The IPC transport duplicates the handle into the peer process; the peer adopts it. */
#ifndef MSGR_REGION_HANDLE_H
#define MSGR_REGION_HANDLE_H

#include "msgr/region.h"

#include <stdint.h>

/* The object behind r (a file HANDLE when *is_file, else a pagefile section; kept by r) and
 * the key waits inside it go by. MSGR_EINVAL for memory that cannot be shared (anonymous
 * without MSGR_REGION_TRANSFERABLE). */
int msgr__region_handles(const msgr_region *r, void **object, uint64_t *key, int *is_file);

/* Maps the region behind a handle received from another process, checking its header against
 * the object's size; takes the handle (closed on failure). Errors as msgr_region_open_file. */
int msgr__region_adopt_handle(void *object, uint64_t key, int is_file, msgr_region **out);

#endif
