/* messenger: compiler hints for the hot paths of the ring and the log (internal). */
#ifndef MSGR_HOT_H
#define MSGR_HOT_H

#if defined(__GNUC__) || defined(__clang__)
/* initial-exec: a plain %fs-relative load, not a __tls_get_addr call per record when this is
 * built as a shared library (loaded at start-up, as libraries linked by name are). */
#define MSGR_TLS _Thread_local __attribute__((tls_model("initial-exec")))
/* Per-record steps the compiler left as calls (their prologues and epilogues were a visible
 * share of a record's instructions). */
#define MSGR_HOT static inline __attribute__((always_inline))
#define MSGR_COLD static __attribute__((noinline, cold))
/* A slow path one file of a module calls in another (internal linkage is not possible). */
#define MSGR_COLD_SHARED __attribute__((noinline, cold))
#else
#define MSGR_TLS _Thread_local
#define MSGR_HOT static inline
#define MSGR_COLD static
#define MSGR_COLD_SHARED
#endif

#endif
