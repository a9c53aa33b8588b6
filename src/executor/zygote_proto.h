/* zygote_proto: the two messages between the daemon and the worker zygote
 * (zygote.h, zygote_server.c), with one bounds-checked reader each.
 *
 * Request (daemon -> zygote, one SOCK_SEQPACKET datagram on the control
 * socket, fds attached with SCM_RIGHTS): "fork one worker". Little-endian:
 *   u32 magic "MTZ1" | u32 flags | u64 mem_bytes | u32 cpu_seconds |
 *   u32 n_data | n_data x u16 target fd
 * exactly 24 + 2 * n_data bytes. Attached fds, in order: the report socket
 * (zygote side), the job channel (becomes fd MT_JOB_FIRST_FD in the child),
 * then n_data data fds, each dup'ed onto its target number in the child.
 * Targets are strictly increasing, above MT_JOB_FIRST_FD, at most
 * MT_JOB_MAX_FD; at most MT_ZYG_MAX_DATA_FDS of them. flags may hold only
 * MT_ZYG_LOCK_EARLY (the child installs the seccomp filter before it reads
 * the job: the job fetches nothing over the network) and MT_ZYG_AWAIT_KILL
 * (after its result the worker closes its channel and waits, at most
 * MT_ZYG_AWAIT_KILL_S seconds, to be killed instead of exiting: the daemon
 * asks for its usage with 'U' and releases it, and the zygote kills and
 * reaps it; worker_main.c, executor.c).
 *
 * Report (zygote -> daemon, SOCK_SEQPACKET datagrams on the per-worker report
 * socket): exactly 40 bytes, u32 type | i32 pid | i32 wait status |
 * u32 zero | u64 utime_us | u64 stime_us | u64 maxrss_kb (last five zero in
 * "started"). Type 1 "started" (pid > 0), then type 2 "exited" (wait4's
 * status and rusage) when the zygote reaped the worker. The daemon writes one
 * byte 'K' to the report socket to have the worker killed (SIGKILL), or 'U'
 * to ask for its usage so far: the zygote answers type 3 "usage" (status
 * zero; utime_us: the worker's CPU time, user plus system, from its process
 * CPU clock; stime_us zero; maxrss_kb: its peak RSS, VmHWM) while the worker
 * still runs with its memory (not reaped: its pid cannot be reused; a peak
 * RSS of 0 when /proc cannot be read), and nothing once it is exiting (its
 * memory gone: "exited" follows as always, with its own status).
 *
 * Neither side trusts the other's bytes beyond these checks: the zygote is a
 * process of the worker binary, the daemon's input is that process's output.
 * Errors: MT_EINVAL with a message naming the field. Thread-safe (pure). */
#ifndef MT_ZYGOTE_PROTO_H
#define MT_ZYGOTE_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "job_codec.h"
#include "mt_err.h"

#define MT_ZYG_MAGIC 0x315a544du /* "MTZ1" little-endian */
#define MT_ZYG_LOCK_EARLY 1u
#define MT_ZYG_AWAIT_KILL 2u
#define MT_ZYG_MAX_DATA_FDS (2 * MT_JOB_MAX_SLOTS + 1) /* inputs, outputs, module */
#define MT_ZYG_REQ_HEAD 24
#define MT_ZYG_REQ_MAX (MT_ZYG_REQ_HEAD + 2 * MT_ZYG_MAX_DATA_FDS)
#define MT_ZYG_REPORT_LEN 40
#define MT_ZYG_AWAIT_KILL_S 10
#define MT_ZYG_STARTED 1u
#define MT_ZYG_EXITED 2u
#define MT_ZYG_USAGE 3u
#define MT_ZYG_MIN_MEM (1ULL << 20)
#define MT_ZYG_MAX_MEM (1ULL << 50)

typedef struct mt_zyg_req {
    uint32_t flags;
    uint64_t mem_bytes;   /* RLIMIT_AS of the child */
    uint32_t cpu_seconds; /* RLIMIT_CPU of the child, >= 1 */
    uint32_t n_data;
    uint16_t target[MT_ZYG_MAX_DATA_FDS];
} mt_zyg_req;

typedef struct mt_zyg_report {
    uint32_t type;
    int32_t pid;
    int32_t status;
    uint64_t utime_us, stime_us, maxrss_kb;
} mt_zyg_report;

/* Writes req to buf (cap >= MT_ZYG_REQ_MAX) and returns its length, or 0
 * when req itself is invalid (same checks as the decoder). */
size_t mt_zyg_req_encode(const mt_zyg_req *req, uint8_t *buf, size_t cap);
/* Parses a request; MT_EINVAL naming the field for anything but a valid one. */
mt_status mt_zyg_req_decode(const uint8_t *buf, size_t len, mt_zyg_req *out, mt_err *err);

void mt_zyg_report_encode(const mt_zyg_report *r, uint8_t out[MT_ZYG_REPORT_LEN]);
mt_status mt_zyg_report_decode(const uint8_t *buf, size_t len, mt_zyg_report *out, mt_err *err);

#endif
