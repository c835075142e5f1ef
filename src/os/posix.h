/* messenger: what the POSIX region code (mmap/posix.c) needs that differs between the POSIX
 * systems (internal): an anonymous file to back growable anonymous memory, and reserving a
 * file's disk space. Implemented in linux.c and darwin.c.
 */
#ifndef MSGR_OS_POSIX_H
#define MSGR_OS_POSIX_H

#include <stdint.h>

/* A new, nameless, close-on-exec file descriptor of size 0 that nobody else can open (Linux:
 * memfd; macOS: a shm object unlinked at once). -1 with errno set on failure. */
int msgr_os_anon_fd(void);

/* Gives fd `size` bytes with the disk space reserved where the file system can (a full disk
 * is then an error here, not a fault on first write). 0, or an errno value. */
int msgr_os_fallocate(int fd, uint64_t size);

#endif
