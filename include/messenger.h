/* messenger: a zero-copy, shared-memory nano-services runtime.
 *
 * Umbrella header. Layers, lowest first:
 *   msgr/error.h   error codes and msgr_strerror()
 *   msgr/region.h  memory regions: anonymous, named shared memory, file, growable
 *   msgr/ring.h    the lock-free ring: zero-copy claim/commit, peek/release, poll, send/recv
 */
#ifndef MESSENGER_H
#define MESSENGER_H

#include "msgr/error.h"
#include "msgr/region.h"
#include "msgr/ring.h"

#define MSGR_VERSION_MAJOR 0
#define MSGR_VERSION_MINOR 1
#define MSGR_VERSION_PATCH 0

#endif
