/* sandbox: the worker's confinement, applied in two steps.
 * mt_sandbox_limits (at start): RLIMIT_AS, RLIMIT_CPU, RLIMIT_CORE 0,
 *   RLIMIT_FSIZE, PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE 0.
 * mt_sandbox_lock (after https fetches and crypto initialisation):
 *   RLIMIT_NOFILE, then a seccomp-bpf allow-list whose default action kills
 *   the process (SIGSYS): no open (a few configuration probes get ENOENT, see
 *   sandbox.c), no socket, no exec, no fork; threads (clone with
 *   CLONE_THREAD) are allowed. Irreversible. Errors: MT_EINTERNAL naming the failing step. */
#ifndef MT_SANDBOX_H
#define MT_SANDBOX_H

#include <stdint.h>

#include "mt_err.h"

#define MT_SANDBOX_MAX_OUTPUT_BYTES (16ULL << 30) /* RLIMIT_FSIZE */

mt_status mt_sandbox_limits(uint64_t mem_bytes, uint32_t cpu_seconds, mt_err *err);
mt_status mt_sandbox_lock(int highest_fd, mt_err *err);

/* The sandbox of a "python" function (python_fn.h), applied instead of
 * mt_sandbox_lock once the interpreter started: RLIMIT_NOFILE highest_fd +
 * 64 (the interpreter opens its modules), Landlock restricting the file
 * system to reading the paths in ro_paths (NULL-terminated: the Python
 * installation and the allowed packages; nothing may be written, created
 * or executed anywhere), and the seccomp allow-list of mt_sandbox_lock
 * plus the calls an importing interpreter makes, each documented in
 * sandbox.c: openat for reading only (any write, create, truncate or append
 * flag fails with EACCES), getdents64, fcntl, ioctl (answers ENOTTY), getcwd,
 * readlink, the get*id calls, uname, sysinfo. Still no socket, no exec, no
 * fork. When the kernel has no Landlock (or it is disabled) the rest still
 * applies and *landlock_why says why (a static string); with Landlock
 * *landlock_why is NULL. Irreversible. Errors: MT_EINTERNAL naming the step. */
mt_status mt_sandbox_lock_python(int highest_fd, const char *const *ro_paths,
                                 const char **landlock_why, mt_err *err);

#endif
