/* zygote_server: the worker zygote, `mesatee-worker --zygote` (docs/design.md
 * "Worker start"). Started by the daemon (zygote.h) with an empty environment,
 * stdin/stdout on /dev/null and its control socket (SOCK_SEQPACKET) on fd 3.
 * It runs the init hooks (heavy initialisation that holds no secret and no
 * per-task state: library loading happened at exec, the hooks warm up e.g.
 * OpenSSL's providers; a later "python" executor type adds a hook that
 * pre-imports its modules), then gives each valid request (zygote_proto.h;
 * an invalid one is refused, nothing forked) one child: its spare (a child
 * it forks ahead whenever it is idle and has none, waiting for one request
 * on a socket of its own; it holds no request's state before that), else
 * one forked for the request. It stays single-threaded: hooks must not
 * start threads.
 *
 * In the child (the spare from the moment its request arrived), before
 * mt_zygote_serve returns there (and so before the job is read): signal
 * mask cleared, PR_SET_PDEATHSIG SIGKILL (the zygote),
 * the channel and data fds placed on their numbers and every other fd closed
 * (the control socket, other workers' report sockets), every rlimit set
 * back to the zygote's value at the start of serving (a limit changed on
 * the zygote or the spare from outside does not pass on; a lowered hard
 * limit fails the set-up), the sandbox's rlimits,
 * PR_SET_NO_NEW_PRIVS and not dumpable (mt_sandbox_limits) and, with
 * MT_ZYG_LOCK_EARLY, the seccomp filter (mt_sandbox_lock). A child that cannot
 * apply them writes a failure result to its channel and exits: it never runs
 * a job unsandboxed.
 *
 * In the zygote, mt_zygote_serve never returns once it served: it reaps its
 * children and reports their exit status and rusage, answers the daemon's
 * 'U' with a child's usage so far (zygote_proto.h), kills a child on
 * request or when the daemon closes that child's report socket. When the
 * control socket closes (the daemon took the zygote out of service, or the
 * daemon ended) it kills and reaps its spare, forks nothing more, goes on supervising its running
 * children and exits 0 after the last one: the daemon's end closes every
 * report socket, so then each child is killed at once (no worker outlives the
 * daemon), while a retired zygote's children finish their tasks. Returns an
 * error only when it cannot start serving. */
#ifndef MT_ZYGOTE_SERVER_H
#define MT_ZYGOTE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

/* The spare's process name (comm) while it waits for its request. */
#define MT_ZYG_SPARE_COMM "mesatee-spare"

typedef struct mt_zyg_hook {
    const char *executor_type; /* "builtin", "wasm", later "python" */
    mt_status (*init)(mt_err *err);
    /* optional, run in each spare while it waits (before its request): work
     * on constant data only, that leaves no state a task could observe,
     * which pages in code and copies the pages a task's first steps write
     * (a fresh child's first job decode cost ~0.1 ms of page faults; issue
     * 13). Failures are ignored; it must not start threads or draw OpenSSL
     * random bytes. jansson is seeded for the spare before it runs. */
    void (*spare)(void);
} mt_zyg_hook;

/* What a forked child already has applied (worker_main.c reads it). */
typedef struct mt_zyg_child {
    bool forked;          /* a child of the zygote */
    bool locked;          /* the seccomp filter is installed */
    bool await_kill;      /* MT_ZYG_AWAIT_KILL: after the result, wait to be killed */
    uint64_t mem_bytes;   /* RLIMIT_AS requested */
    uint32_t cpu_seconds; /* RLIMIT_CPU */
    int highest_fd;
    /* CLOCK_MONOTONIC us (the worker's trace, mt_trace.h): the zygote got the
     * request, the child's first step with it (a forked child: after the
     * fork; the spare: its request received), its fds placed, rlimits,
     * seccomp */
    int64_t t_recv_us, t_child_us, t_fds_us, t_limits_us, t_lock_us;
} mt_zyg_child;

/* Tests only: mesatee-worker-test --zygote=... --test-fault=spare-hand sets
 * MT_ZYG_FAULT_HAND before serving: every hand-off to the spare fails as a
 * broken spare socket would, so each request takes the path that kills and
 * reaps the spare and forks for the request (test_zygote). 0: none. */
#define MT_ZYG_FAULT_HAND 1
void mt_zygote_server_test_fault(int fault);

/* The peak RSS (kB) from a /proc/PID/status file at path (the zygote's 'U'
 * answer; tests pass a file of their own): its "VmHWM:" line. The file is
 * read whole up to MT_ZYG_STATUS_MAX bytes (the Groups: line before VmHWM
 * lists every supplementary group and can make it long). 1 with *kb; 0 when
 * the line is missing from a file read whole (a process has no memory only
 * once it is exiting) or malformed; -1 when the file cannot be read (/proc
 * hidden or not mounted), is empty, or is longer than MT_ZYG_STATUS_MAX
 * without the line in its first part (unknown, never "exiting"). The bytes
 * read are wiped before it returns. Not thread-safe (one static buffer: the
 * single-threaded zygote). */
#define MT_ZYG_STATUS_MAX (64u * 1024u)
int mt_zyg_status_vm_hwm(const char *path, uint64_t *kb);

mt_status mt_zygote_serve(int ctl_fd, const mt_zyg_hook *hooks, size_t n_hooks,
                          mt_zyg_child *child, mt_err *err);

#endif
