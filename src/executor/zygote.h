/* zygote: the daemon's side of pre-forked workers (docs/design.md "Worker
 * start"). One zygote process per worker executable and class (below),
 * `WORKER --zygote=native` or `WORKER --zygote=python`,
 * started on first use with the same clean start as a spawned worker (empty
 * environment, stdin/stdout /dev/null, stderr the worker stderr relay's pipe
 * (worker_stderr.h), which its children inherit, every fd but its control
 * socket closed); it forks one sandboxed child per task (zygote_server.h).
 *
 * mt_zygote_fork hands a request and its fds to the zygote and returns the
 * child's pid and the report socket. A zygote found dead (reaped here, or its
 * control socket refuses the request, or it closes the report socket without
 * a "started" answer) is restarted and the request sent once more; a second
 * failure is an error (the task fails; nothing ran). The child only ever runs
 * after its sandbox is applied, and it dies with its zygote (PDEATHSIG).
 *
 * A zygote is taken out of service, never killed while workers of it run,
 * when it served mt_executor_set_zygote_max_tasks requests (each zygote's
 * children share its memory layout and stack canary: this bounds how many
 * tasks share them) or when a start through it failed (a send error, no
 * "started" answer). Out of service, it forks nothing more; its running
 * workers go on and are reported as before; it exits after its last child
 * and the daemon reaps it when it released the last worker of it. The next
 * request starts a new zygote. A zygote that does not act on a kill request
 * within 30 s (it hangs) is killed, and its children with it.
 *
 * Thread-safety: every function may be called from several threads; the
 * zygote table is behind one mutex, held only to send a request. Errors:
 * MT_EIO/MT_ENOTFOUND naming the step; the task's bytes never appear. */
#ifndef MT_ZYGOTE_H
#define MT_ZYGOTE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "mt_err.h"
#include "zygote_proto.h"

typedef struct mt_zyg_worker {
    pid_t pid;
    int report; /* daemon side of the report socket, -1 when closed */
    uint64_t zgen;  /* the zygote that forked it (zygote.c's generation) */
    bool kill_sent; /* mt_zygote_kill asked for it */
} mt_zyg_worker;

/* Which zygote forks a task (issue 13): "python" tasks fork from one that
 * imported CPython, numpy and pandas once (their warm start); every other
 * task (built-ins, wasm) from a native one that loaded only the worker's
 * libraries and OpenSSL's algorithms. A fork copies the parent's page
 * tables, so forking the python zygote costs ~20x a native fork; the
 * child's sandbox is the same either way (zygote_server.h). */
typedef enum { MT_ZYG_CLASS_NATIVE = 0, MT_ZYG_CLASS_PYTHON = 1 } mt_zyg_class;

/* fds[0] becomes the child's channel (fd 3), fds[1 + i] its req->target[i].
 * MT_ECONFLICT: zygotes of other worker executables or classes hold all
 * 4 slots of this process (no slot free): the caller starts the worker with
 * posix_spawn instead (same sandbox). */
mt_status mt_zygote_fork(const char *worker_path, mt_zyg_class cls, const mt_zyg_req *req,
                         const int *fds, mt_zyg_worker *w, mt_err *err);

/* Waits up to timeout_ms (-1: no limit) for the child's exit. Returns 1 with
 * *ws and *ru set when it exited, 0 on timeout, -1 when the zygote ended
 * without reporting (the child died with it: PDEATHSIG). */
int mt_zygote_wait(mt_zyg_worker *w, int timeout_ms, int *ws, struct rusage *ru);

/* Asks the zygote for the child's usage so far (zygote_proto.h, 'U'): once
 * the child closed its channel after its complete result, its CPU time and
 * peak RSS are known without waiting for its exit (its memory's teardown,
 * ~0.4 ms; issue 13). Then mt_zygote_wait_usage: as mt_zygote_wait, but
 * returns 2 with *ws 0 and *ru (ru_utime: user plus system CPU time,
 * ru_maxrss) when the zygote answered with the usage of the child still
 * running, 1 when it reported the exit instead (the child was already
 * exiting). After 2 the caller releases the worker (mt_zygote_release: the
 * zygote kills it and reaps it). */
void mt_zygote_ask_usage(mt_zyg_worker *w);
int mt_zygote_wait_usage(mt_zyg_worker *w, int timeout_ms, int *ws, struct rusage *ru);

/* Asks the zygote to SIGKILL the child (race-free: the zygote reaps it only
 * after). Then mt_zygote_wait. */
void mt_zygote_kill(mt_zyg_worker *w);

/* Closes the report socket (a child still running is killed by the zygote). */
void mt_zygote_release(mt_zyg_worker *w);

/* Tests only: makes the next mt_zygote_fork attempt fail as if the send
 * failed (MT_ZYGOTE_FAULT_SEND, nothing sent) or no "started" answer came
 * (MT_ZYGOTE_FAULT_STARTED: sent, the answer ignored). 0 clears it. */
#define MT_ZYGOTE_FAULT_SEND 1
#define MT_ZYGOTE_FAULT_STARTED 2
void mt_zygote_test_fault(int fault);
/* Tests only: the grace for a kill request (0: the default, 30 s). */
void mt_zygote_test_kill_grace(int ms);

#endif
