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

#endif
