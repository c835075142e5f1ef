/* messenger: a zero-copy, shared-memory nano-services runtime.
 *
 * Umbrella header. Layers, lowest first:
 *   msgr/error.h   error codes and msgr_strerror()
 *   msgr/region.h  memory regions: anonymous, named shared memory, file, growable
 *   msgr/ring.h    the lock-free ring: zero-copy claim/commit, peek/release, poll, send/recv
 *   msgr/log.h     the persistent log: a file bus with groups, acknowledgement and recovery
 *   msgr/journal.h history in segment files: retention, replay from a sequence number or time
 *   msgr/runtime.h the nano-services runtime: bus, workers, routing (with macros/msgr_app.h)
 */
#ifndef MESSENGER_H
#define MESSENGER_H

#include "msgr/error.h"
#include "msgr/region.h"
#include "msgr/journal.h"
#include "msgr/log.h"
#include "msgr/ring.h"
#include "msgr/bcast.h"
#include "msgr/runtime.h"
#include "msgr/ipc.h"
#include "msgr/registry.h"
#include "msgr/notify.h"

#define MSGR_VERSION_MAJOR 0
#define MSGR_VERSION_MINOR 1
#define MSGR_VERSION_PATCH 0

#endif
