/* messenger: what the Windows OS layer and the Windows region code share (internal).
 *
 * Waiting across processes needs a name for the word waited on that every process computes
 * alike; an address does not do (each process maps a region wherever it likes). So the region
 * code registers every shared mapping with a key naming its backing object (the file's volume
 * serial and file index), and a word inside one is known by (key, offset). Durability needs the
 * file handle behind a mapping; the same registry keeps it.
 */
#ifndef MSGR_OS_WIN32_H
#define MSGR_OS_WIN32_H

#include <stddef.h>
#include <stdint.h>

/* Registers [base, base + len) as a shared mapping of the object `key` whose file handle is
 * `file` (a HANDLE; kept, not owned). Returns 0 or MSGR_ENOMEM (too many mappings). */
int msgr__win_map_add(void *base, size_t len, uint64_t key, void *file);

/* Forgets the mapping at base (and closes the wait objects opened for words inside it). */
void msgr__win_map_remove(void *base);

/* Updates the length of the mapping at base (a growable region mapped more). */
void msgr__win_map_resize(void *base, size_t len);

/* Maps a Win32 error code (GetLastError()) to a MSGR_E code. */
int msgr__win_error(unsigned long err);

#endif
