/* messenger: a region's descriptor, for handing regions between processes (internal, POSIX).
 * The IPC transport passes the descriptor with SCM_RIGHTS; the receiver adopts it. */
#ifndef MSGR_REGION_FD_H
#define MSGR_REGION_FD_H

#include "msgr/region.h"

/* The descriptor behind r (kept by r), or -1 for anonymous memory without one. */
int msgr__region_fd(const msgr_region *r);

/* Maps the region behind descriptor fd (received from another process), checking its header
 * against the object's size; takes fd (closed on failure). Errors as msgr_region_open_file. */
int msgr__region_adopt_fd(int fd, msgr_region **out);

#endif
