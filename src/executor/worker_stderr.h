/* worker_stderr: what worker processes write to their fd 2 reaches the
 * operator's log only through this relay, marked, escaped and rate-capped.
 * Internal to the executor module (daemon side).
 *
 * Every worker runs untrusted code (Python functions, wasm modules, built-ins
 * over untrusted input) and its seccomp filter allows write on any fd, so its
 * fd 2 must never be the daemon's stderr (the operator's log, journald under
 * systemd): a task could forge daemon log lines, write terminal escapes or
 * fill the journal. Instead, one pipe per daemon process (created on first
 * use) is every worker's fd 2: mt_worker_spawn_init (worker_spawn.h) puts its
 * write end on fd 2 of each spawned worker and of each zygote, whose children
 * inherit it. The write end is O_NONBLOCK: a worker writing to a full pipe
 * (64 KiB) gets EAGAIN and loses those bytes, it never blocks. (A Python
 * function may clear O_NONBLOCK: its filter allows fcntl, and the open file
 * is shared; writers then wait for the relay, which never stops reading.)
 *
 * One daemon thread reads the other end and logs each line with mt_log at
 * level warn as "worker stderr (untrusted): LINE", where LINE has every byte
 * outside printable ASCII, and the backslash, written as \xNN; a line longer
 * than MT_WORKER_STDERR_LINE_MAX bytes is cut into pieces of that length,
 * each logged as a line; empty lines are skipped. The pipe is shared by all
 * workers, so lines of concurrent workers may interleave (a write of up to
 * PIPE_BUF bytes stays whole), and a line a worker left without its newline
 * is logged as it is once the pipe is empty. Volume: a token bucket of
 * MT_WORKER_STDERR_BURST lines, refilled at MT_WORKER_STDERR_RATE lines per
 * second, over all workers together; a line arriving with the bucket empty is
 * dropped, the first drop of a run logs "worker stderr (untrusted): ...
 * rate limit reached, dropping lines" and the end of the run logs how many
 * lines were dropped. So crash diagnostics (glibc abort, Python fatal error,
 * ASan/UBSan reports: ~50 lines) reach the log escaped, unless a flood used
 * the bucket up just before (or the log level is above warn). If the pipe
 * or the thread cannot be made, workers get
 * /dev/null as fd 2 (their messages are lost, the daemon's log is safe).
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef MT_WORKER_STDERR_H
#define MT_WORKER_STDERR_H

#include <stdbool.h>

#define MT_WORKER_STDERR_LINE_MAX 200 /* bytes of worker output per logged line */
#define MT_WORKER_STDERR_BURST 256    /* lines logged before the rate applies */
#define MT_WORKER_STDERR_RATE 8       /* lines per second after the burst */
#define MT_WORKER_STDERR_PREFIX "worker stderr (untrusted): "
/* The relay's own lines (rate limit) carry this prefix instead: a worker
 * cannot write one (its lines all start with the one above). */
#define MT_WORKER_STDERR_RELAY "worker stderr relay: "

/* The write end of the relay's pipe (O_NONBLOCK, FD_CLOEXEC, >= 3), for a
 * child's fd 2; the pipe and its thread are made on the first call. -1 when
 * they could not be made (the caller gives the child /dev/null instead). */
int mt_worker_stderr_fd(void);

/* Waits until the relay has logged (or dropped) every byte that was in the
 * pipe when it was called, or timeout_ms passed (-1: no limit). Returns
 * true when drained (also when no relay runs). Tests, and the daemon's exit
 * (registered with atexit, 2 s) so that a last crash report is not lost. */
bool mt_worker_stderr_drain(int timeout_ms);

/* Tests only: refills the bucket and forgets the dropped count before the
 * relay logs its next bytes. */
void mt_worker_stderr_test_reset(void);

#endif
