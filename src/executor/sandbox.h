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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_SANDBOX_MAX_OUTPUT_BYTES (16ULL << 30) /* RLIMIT_FSIZE */

mt_status mt_sandbox_limits(uint64_t mem_bytes, uint32_t cpu_seconds, mt_err *err);

/* Builds mt_sandbox_lock's seccomp program once (issue 13: the zygote, before
 * it forks; compiling the rules with libseccomp costs ~0.3 ms per task). Its
 * one process-specific value, the own pid that tgkill may target, is a
 * placeholder that mt_sandbox_lock replaces with the caller's pid before
 * loading it: the program loaded is byte for byte the one that compiling
 * the rules for that pid gives (test_sandbox), so the filter is unchanged.
 * Without it (or after it failed) mt_sandbox_lock compiles per call.
 * Not thread-safe (the single-threaded zygote). */
mt_status mt_sandbox_prepare(mt_err *err);
/* Tests: the program mt_sandbox_lock (python false) or mt_sandbox_lock_python
 * would load in a process with pid pid: prepared (from mt_sandbox_prepare,
 * python false only) or compiled now. *prog (heap, caller frees) holds *len
 * bytes of struct sock_filter. */
mt_status mt_sandbox_program(bool prepared, bool python, int pid, void **prog, size_t *len,
                             mt_err *err);
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
