/* messenger: the operating-system layer (internal).
 *
 * A narrow interface, implemented per platform: posix.c (what POSIX systems share) with
 * linux.c or darwin.c beside it, or win32.c. Logic files call these and never #ifdef on the
 * platform.
 */
#ifndef MSGR_OS_H
#define MSGR_OS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Monotonic clock in nanoseconds. */
uint64_t msgr_os_now_ns(void);

/* Wall-clock time in nanoseconds since 1970, cheap and coarse (a few ms resolution): for
 * stamping records, so that a reader can start "from a time". */
uint64_t msgr_os_wall_ns(void);

/* Sleeps while *word == expected, at most timeout_ns (< 0: no limit). The word may live in
 * memory shared between processes. Returns 0 when woken or when the value differed,
 * MSGR_ETIMEDOUT on timeout, MSGR_EINTR on a signal. Spurious returns are allowed. */
int msgr_os_futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);

/* Wakes up to `count` sleepers on word (INT32_MAX: all), in any process. */
void msgr_os_futex_wake(_Atomic uint32_t *word, int count);

/* Gives the CPU to another runnable thread. */
void msgr_os_yield(void);

/* Asymmetric barrier. msgr_os_fast_barrier_register() is called once per process by code that
 * runs the fast side (a producer committing records); it returns 1 when the platform offers a
 * process-crossing heavy barrier (Linux membarrier GLOBAL_EXPEDITED), 0 when not.
 * msgr_os_heavy_barrier() is the slow side: when it returns, every thread of every registered
 * process has executed a full memory barrier since the call began. Returns 0 or MSGR_ENOSYS. */
int msgr_os_fast_barrier_register(void);
int msgr_os_heavy_barrier(void);

/* 64 random bits (not cryptographic quality required; seeds and salts). */
uint64_t msgr_os_random64(void);

/* The page size, and this process's id. */
size_t msgr_os_page_size(void);
/* CPUs online now (at least 1). */
unsigned msgr_os_cpu_count(void);
int32_t msgr_os_pid(void);

/* 1 if a process with this id runs (it may be owned by another user), 0 if there is none or
 * only its zombie is left (exited, not yet reaped by its parent: dead for every purpose here). */
int msgr_os_pid_alive(int32_t pid);

/* A number that changes in the child of every fork(): per-thread caches keyed by it are
 * invalid in the child, whose pid differs from the one they recorded. msgr_os_fork_watch()
 * arms the counting (idempotent, call before relying on it) and registers `child` (may be
 * NULL; at most 8 distinct ones) to run in every child, in the only thread the child has. */
void msgr_os_fork_watch(void (*child)(void));
extern _Atomic uint32_t msgr_os_fork_generation;

/* Threads. msgr_os_thread_start runs fn(arg) on a new thread; join waits for it. Return 0 or
 * MSGR_ENOMEM / MSGR_EINVAL. */
typedef struct msgr_os_thread { uintptr_t handle; } msgr_os_thread;
int msgr_os_thread_start(msgr_os_thread *t, void *(*fn)(void *), void *arg);
int msgr_os_thread_join(msgr_os_thread *t);

/* Memory aligned to `align` (a power of two), size rounded up to a multiple of it; freed only
 * by msgr_os_aligned_free (Windows keeps such blocks apart from malloc's). NULL if none. */
void *msgr_os_aligned_alloc(size_t align, size_t size);
void msgr_os_aligned_free(void *p);

/* Sleeps the calling thread for about ns nanoseconds. */
void msgr_os_sleep_ns(uint64_t ns);

/* When process `pid` started (an opaque, monotonic number: clock ticks since boot on Linux).
 * With the pid it names a process uniquely: a pid reused by a newer process has another start
 * time. Returns 0 or MSGR_ENOENT (no such process). */
int msgr_os_proc_start(int32_t pid, uint64_t *start);

/* 1 if process `pid` runs and started at `start`, else 0 (a zombie counts as dead; a process
 * whose main thread exited while other threads run is alive). */
int msgr_os_proc_alive(int32_t pid, uint64_t start);

/* The owner recorded as (pid, start time) in a lock, slot or table entry runs: by both, or
 * by the pid alone when the start time is 0 (being recorded, or written by an older
 * version). 0 for pid <= 0. */
static inline int msgr_os_owner_alive(int32_t pid, uint64_t start)
{
    return pid > 0 && (start ? msgr_os_proc_alive(pid, start) : msgr_os_pid_alive(pid));
}

/* Flushes [addr, addr + len) of a shared file mapping to the file's storage and waits
 * (msync MS_SYNC; addr need not be page-aligned). Returns 0 or MSGR_EIO. */
int msgr_os_msync(void *addr, size_t len);

/* Directories, for the journal's segment files. mkdir creates `dir` (0700) if missing;
 * list_hex collects the numbers N of entries named "<prefix><N in hex>" (up to max; *n
 * receives how many); sync_dir makes creations and removals in `dir` durable; unlink removes.
 * Return 0 or a MSGR_E code. */
int msgr_os_mkdir(const char *dir);
int msgr_os_list_hex(const char *dir, const char *prefix, uint64_t *out, uint32_t max,
                     uint32_t *n);
int msgr_os_sync_dir(const char *dir);
int msgr_os_unlink(const char *path);

/* Small files, for the name registry. user_dir gives the per-user runtime directory
 * ("$XDG_RUNTIME_DIR/messenger", else "<temp>/messenger-<uid>"; Windows:
 * "%LOCALAPPDATA%\messenger"), made 0700 if missing and refused (MSGR_EACCES, detail naming
 * it) if another user owns it or others may enter it; $MSGR_REGISTRY overrides it.
 * lock_file takes an exclusive lock on `path` (created if missing), waiting for it; the system
 * drops it if the holder dies; *h is for unlock_file. write_file replaces `path` whole (a
 * temporary file renamed over it: readers see the old or the new, never a part). read_file
 * reads at most cap bytes and returns their count. list_dir calls fn with each entry name
 * ending in `suffix` (fn returning non-zero stops the walk and is returned). */
int msgr_os_user_dir(char *buf, size_t cap);
/* The absolute, resolved form of an existing path. 0 or a MSGR_E code. */
int msgr_os_abs_path(const char *path, char *buf, size_t cap);
int msgr_os_lock_file(const char *path, intptr_t *h);
void msgr_os_unlock_file(intptr_t h);
int msgr_os_write_file(const char *path, const void *data, size_t n);
int msgr_os_read_file(const char *path, void *buf, size_t cap);
int msgr_os_list_dir(const char *dir, const char *suffix, int (*fn)(const char *name, void *arg),
                     void *arg);
/* A file written only at its end (created 0600 if missing): open, append n bytes (whole or
 * an error), close. For small journals beside other files. */
int msgr_os_append_open(const char *path, intptr_t *h);
int msgr_os_append(intptr_t h, const void *data, size_t n);
void msgr_os_append_close(intptr_t h);

/* A pollable event: *fd (a descriptor, or on Windows an event HANDLE) becomes readable once
 * signalled and stays so until drained. Linux: an eventfd; other POSIX systems: a pipe;
 * Windows: a manual-reset event. signal and drain never block. 0 or a MSGR_E code. */
int msgr_os_event_open(intptr_t *ev, intptr_t *fd);
void msgr_os_event_signal(intptr_t ev);
void msgr_os_event_drain(intptr_t ev);
void msgr_os_event_close(intptr_t ev);

/* CPU features the portable code may use, read once from the operating system (the x86
 * features come from cpuid directly). A bit set of MSGR_OS_CPU_*. */
#define MSGR_OS_CPU_ARM_CRC32 1u /* aarch64: the CRC32 instructions (crc32cx and friends) */
unsigned msgr_os_cpu_features(void);

/* One pause instruction for spin loops: tells the core we are spinning (saves power, frees the
 * sibling hyper-thread, avoids the memory-order mis-speculation flush on loop exit). */
static inline void msgr_os_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

#endif
