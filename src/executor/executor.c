/* executor: the parent side of mt_executor_run (see mt_executor.h).
 *
 * Files: the parent opens every input it can check itself (local ciphertext
 * paths, and file:// URLs after untrusted_fetch_open_file's root check) and
 * creates every output as "<path>.tmp.<random>" (O_CREAT|O_EXCL, 0600); the
 * worker inherits them as numbered fds listed in the job, so it never needs
 * open(). https:// inputs are fetched by the worker before its seccomp filter
 * closes. On success the parent fsyncs each temp file, hashes it, and renames
 * it to its final path (then fsyncs the directory); on any failure it unlinks
 * every temp file (and any output already renamed). Leftover temp files from
 * a daemon crash match untrusted_objstore_sweep's "*.tmp.*".
 *
 * Start: spawn_worker forks the worker from its zygote (zygote.h; the zygote
 * reaps it and reports its exit and rusage on a report socket, and kills it
 * on request) or, with MT_WORKER_START_SPAWN, posix_spawns the executable
 * (reaped here with wait4). The fd layout and the job are the same; fd 2 is
 * the stderr relay's pipe (worker_stderr.h), never the daemon's stderr.
 *
 * Channel: one AF_UNIX socketpair, worker side on fd 3; the parent sends the
 * job and shuts down its write side, then reads the result to EOF (bounded),
 * polling every 100 ms for cancellation and the wall-clock deadline. */
#include "mt_executor.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "job_codec.h"
#include "mt_json.h"
#include "mt_log.h"
#include "mt_trace.h"
#include "mt_util.h"
#include "untrusted_fetch.h"
#include "worker_spawn.h"
#include "worker_stderr.h"
#include "zygote.h"

#define POLL_MS 100
#define DEFAULT_WALL_MS 900000u
#define DEFAULT_MAX_INPUT (4ULL << 30)
#define SEAL_CHUNK (256 * 1024) /* read-back buffer of an output: in L2 while hashed */

/* 0 = not decided yet (read MESATEE_LOG_TASK_ERRORS), 1 = off, 2 = on */
static atomic_int log_task_errors;

void mt_executor_set_log_task_errors(bool on)
{
    atomic_store(&log_task_errors, on ? 2 : 1);
}

bool mt_executor_log_task_errors(void)
{
    int v = atomic_load(&log_task_errors);
    if (v == 0) {
        const char *e = getenv("MESATEE_LOG_TASK_ERRORS");
        v = e && *e && strcmp(e, "0") != 0 ? 2 : 1;
        int expect = 0;
        atomic_compare_exchange_strong(&log_task_errors, &expect, v);
        v = atomic_load(&log_task_errors);
    }
    return v == 2;
}

/* Operator-only detail of a failure (may hold input-derived bytes or host
 * paths): to the daemon's log when --log-task-errors is on, else dropped. */
static void detail(const mt_job *job, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void detail(const mt_job *job, const char *fmt, ...)
{
    if (!mt_executor_log_task_errors())
        return;
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    mt_warn("task %s: failure detail (operator log only): %s",
            job && job->task_id ? job->task_id : "?", buf);
}

void mt_job_result_clear(mt_job_result *r)
{
    if (!r)
        return;
    free(r->return_value);
    free(r->failure_reason);
    free(r->log);
    json_decref(r->outputs);
    memset(r, 0, sizeof *r);
}

/* Sets result->ok = false with a formatted reason (first reason wins). */
static void fail(mt_job_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(mt_job_result *r, const char *fmt, ...)
{
    r->ok = false;
    if (r->failure_reason)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    r->failure_reason = strdup(buf);
}

/* Per-run state owned by mt_executor_run. */
typedef struct run {
    const mt_job *job;
    int *in_fd;       /* parent copy of each input fd, -1 for https */
    int *out_fd;      /* temp file of each output, opened O_RDWR: the worker's */
    int *own_fd;      /* the same file opened again O_RDONLY: the parent's own
                       * open file, for every flush, fsync and hash (see
                       * open_own_fd) */
    char **tmp_path;  /* "<path>.tmp.<hex>" */
    bool *renamed;    /* final path created */
    int module_fd;    /* "wasm": the encrypted module, else -1 */
    int chan;         /* parent end of the socketpair */
    pid_t pid;
    bool zyg;         /* forked by the zygote: reaped there, reported on zw.report */
    bool await_kill;  /* ... with MT_ZYG_AWAIT_KILL: usage asked for at EOF */
    bool killed_at_eof; /* supervise killed it at its channel's EOF (eof_status) */
    mt_zyg_worker zw;
    struct out_flush *flush; /* early flushing of the outputs, or NULL */
    size_t flush_bad;        /* its first failed output (SIZE_MAX or n_outputs: none) */
    int flush_errno;
    int64_t deadline;        /* start + wall limit (mt_mono_ms): sealing stops there too */
    uint32_t wall;           /* the wall-clock limit, ms */
    atomic_bool seal_late;   /* hashing the outputs reached the deadline */
} run;

static void flush_finish(run *x);

static void run_close_inputs(run *x)
{
    for (size_t i = 0; x->in_fd && i < x->job->n_inputs; i++)
        if (x->in_fd[i] >= 0) {
            close(x->in_fd[i]);
            x->in_fd[i] = -1;
        }
}

/* Removes all temp files and any final output already renamed. */
static void run_discard_outputs(run *x)
{
    flush_finish(x); /* its helper uses the descriptors */
    for (size_t i = 0; x->out_fd && x->tmp_path && x->renamed && i < x->job->n_outputs; i++) {
        if (x->out_fd[i] >= 0) {
            close(x->out_fd[i]);
            x->out_fd[i] = -1;
        }
        if (x->own_fd && x->own_fd[i] >= 0) {
            close(x->own_fd[i]);
            x->own_fd[i] = -1;
        }
        if (x->tmp_path[i]) {
            unlink(x->tmp_path[i]);
            free(x->tmp_path[i]);
            x->tmp_path[i] = NULL;
        }
        if (x->renamed[i]) {
            unlink(x->job->outputs[i].path);
            x->renamed[i] = false;
        }
    }
}

/* Opens the inputs the parent can open; adds their sizes to bytes_in.
 * Returns false with result failed when one cannot be used. */
static bool open_inputs(run *x, mt_job_result *res)
{
    const mt_job *job = x->job;
    uint64_t max = job->limits.max_input_bytes ? job->limits.max_input_bytes
                                                : DEFAULT_MAX_INPUT;
    for (size_t i = 0; i < job->n_inputs; i++) {
        const mt_job_input *in = &job->inputs[i];
        uint64_t size = 0;
        if (in->path) {
            int fd = open(in->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
            struct stat sb;
            if (fd < 0) {
                detail(job, "input '%s': open %s: %s", in->slot, in->path, strerror(errno));
                fail(res, "input '%s': cannot open its ciphertext (errno %d)", in->slot, errno);
                return false;
            }
            x->in_fd[i] = fd;
            if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
                fail(res, "input '%s': ciphertext is not a regular file", in->slot);
                return false;
            }
            size = (uint64_t)sb.st_size;
        } else if (in->url && strncmp(in->url, "file://", 7) == 0) {
            mt_err e = {0};
            if (untrusted_fetch_open_file(in->url, job->file_url_root, &x->in_fd[i], &size,
                                          &e) != MT_OK) {
                fail(res, "input '%s': %s", in->slot, e.msg);
                return false;
            }
        } else if (in->url && strncmp(in->url, "https://", 8) == 0) {
            continue; /* the worker fetches it */
        } else {
            fail(res, "input '%s': needs a local path, a file:// or an https:// URL", in->slot);
            return false;
        }
        if (size > max) {
            fail(res, "input '%s' is %llu bytes, over the limit of %llu", in->slot,
                 (unsigned long long)size, (unsigned long long)max);
            return false;
        }
        res->bytes_in += size;
    }
    return true;
}

/* The parent's own descriptor of an output's temp file: the file opened
 * again (O_RDONLY), a second open file beside the worker's O_RDWR one.
 * Linux reports a writeback error once per open file (errseq): a worker
 * calling fsync on its descriptor, seeing EIO and ignoring it would
 * otherwise make the parent's later fdatasync/fsync of the shared open file
 * return 0 for bytes that never reached the disk. An open file samples the
 * error state when it is opened, so this one is opened before the worker
 * starts and reports any later error itself; fsync works on a read-only
 * descriptor. Through /proc/self/fd (the same inode, whatever the name now
 * is), else by name; either way checked to be the same inode. -1 on failure
 * (errno set). */
static int open_own_fd(int fd, const char *path)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int own = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (own < 0)
        own = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    if (own < 0)
        return -1;
    struct stat a, b;
    if (fstat(fd, &a) != 0 || fstat(own, &b) != 0 || a.st_dev != b.st_dev ||
        a.st_ino != b.st_ino) {
        close(own);
        errno = EXDEV;
        return -1;
    }
    return own;
}

static bool create_outputs(run *x, mt_job_result *res)
{
    const mt_job *job = x->job;
    for (size_t i = 0; i < job->n_outputs; i++) {
        const mt_job_output *o = &job->outputs[i];
        if (!o->path) {
            fail(res, "output '%s': no path", o->slot);
            return false;
        }
        size_t n = strlen(o->path) + MT_TMPFILE_EXTRA;
        if (!(x->tmp_path[i] = malloc(n))) {
            fail(res, "out of memory");
            return false;
        }
        mt_err terr;
        if (mt_tmpfile_open(o->path, 0600, x->tmp_path[i], n, &x->out_fd[i], &terr) != MT_OK) {
            detail(job, "output '%s': %s", o->slot, terr.msg);
            fail(res, "output '%s': cannot create its file (%s)", o->slot,
                 mt_status_name(terr.code));
            free(x->tmp_path[i]);
            x->tmp_path[i] = NULL;
            return false;
        }
        if ((x->own_fd[i] = open_own_fd(x->out_fd[i], x->tmp_path[i])) < 0) {
            int e = errno;
            detail(job, "output '%s': opening %s again: %s", o->slot, x->tmp_path[i],
                   strerror(e));
            fail(res, "output '%s': cannot open its file again (errno %d)", o->slot, e);
            return false; /* (the temp file is removed with the others) */
        }
    }
    return true;
}

void mt_worker_spawn_init(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at, int chan)
{
    posix_spawn_file_actions_init(fa);
    posix_spawnattr_init(at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(at, &none);
    posix_spawnattr_setsigdefault(at, &all);
    posix_spawnattr_setflags(at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    /* fd 2: never the daemon's stderr (worker_stderr.h); first, so that the
     * relay's descriptor is not yet clobbered by another action */
    int untrusted_err = mt_worker_stderr_fd();
    if (untrusted_err >= 0)
        posix_spawn_file_actions_adddup2(fa, untrusted_err, 2);
    else
        posix_spawn_file_actions_addopen(fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(fa, chan, MT_JOB_FIRST_FD);
}

/* Starts the worker. Child fds: 0,1 /dev/null, 2 the stderr relay's pipe
 * (worker_stderr.h; a zygote's child inherits the zygote's), 3 channel, then
 * the data fds in job order (wfd[]); everything else closed. await: the job
 * has no output file the worker could still write after its result; a
 * zygote child then waits to be killed after it (MT_ZYG_AWAIT_KILL,
 * supervise). */
static mt_status spawn_worker(run *x, int child_chan, const int *src, const int *wfd,
                              size_t nfd, uint64_t mem, uint32_t cpu, bool lock_early,
                              bool python, bool await, mt_err *err)
{
    if (mt_executor_worker_start() == MT_WORKER_START_ZYGOTE) {
        /* the same fd layout, forked by the zygote (zygote.h) */
        mt_zyg_req req = {.flags = (lock_early ? MT_ZYG_LOCK_EARLY : 0) |
                                   (await ? MT_ZYG_AWAIT_KILL : 0),
                          .mem_bytes = mem,
                          .cpu_seconds = cpu, .n_data = (uint32_t)nfd};
        int fds[MT_ZYG_MAX_DATA_FDS + 1];
        if (nfd > MT_ZYG_MAX_DATA_FDS)
            return mt_err_set(err, MT_EINVAL, "too many files for one worker");
        fds[0] = child_chan;
        for (size_t i = 0; i < nfd; i++) {
            req.target[i] = (uint16_t)wfd[i];
            fds[i + 1] = src[i];
        }
        /* python tasks fork from the zygote that imported CPython and its
         * modules; the others from a lean one (a fork copies the parent's
         * page tables: numpy+pandas make it ~20x slower) */
        mt_status st = mt_zygote_fork(x->job->worker_path,
                                      python ? MT_ZYG_CLASS_PYTHON : MT_ZYG_CLASS_NATIVE, &req,
                                      fds, &x->zw, err);
        if (st == MT_OK) {
            x->zyg = true;
            x->await_kill = await;
            x->pid = x->zw.pid;
            return MT_OK;
        }
        if (st != MT_ECONFLICT) /* else no zygote slot: spawned below */
            return st;
    }
    int first_free = MT_JOB_FIRST_FD + 1 + (int)nfd;
    int *hi = malloc((nfd + 1) * sizeof *hi);
    if (!hi)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    /* Move every source above the target range so no dup2 clobbers another. */
    int hchan = fcntl(child_chan, F_DUPFD_CLOEXEC, first_free);
    size_t made = 0;
    mt_status st = MT_OK;
    for (; hchan >= 0 && made < nfd; made++)
        if ((hi[made] = fcntl(src[made], F_DUPFD_CLOEXEC, first_free)) < 0)
            break;
    if (hchan < 0 || made < nfd) {
        st = mt_err_set(err, MT_EIO, "cannot prepare worker descriptors: %s", strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    mt_worker_spawn_init(&fa, &at, hchan);
    for (size_t i = 0; i < nfd; i++)
        posix_spawn_file_actions_adddup2(&fa, hi[i], wfd[i]);
    posix_spawn_file_actions_addclosefrom_np(&fa, first_free);
    char *argv[] = {"mesatee-worker", NULL};
    /* libgomp (oneDNN, XGBoost) reads this when it loads, before main: no spinning */
    char *envp[] = {"OMP_WAIT_POLICY=PASSIVE", NULL};
    int rc = posix_spawn(&x->pid, x->job->worker_path, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc != 0) {
        x->pid = -1;
        st = mt_err_set(err, rc == ENOENT ? MT_ENOTFOUND : MT_EIO,
                        "cannot start the worker %s: %s", x->job->worker_path, strerror(rc));
    }
out:
    if (hchan >= 0)
        close(hchan);
    for (size_t i = 0; i < made; i++)
        close(hi[i]);
    free(hi);
    return st;
}

/* Why a worker that ended with wait status ws failed, or NULL if it exited 0. */
static void describe_status(int ws, const mt_job *job, mt_job_result *res)
{
    if (WIFSIGNALED(ws)) {
        int sig = WTERMSIG(ws);
        const char *abbr = sigabbrev_np(sig);
        if (sig == SIGSYS)
            fail(res, "sandbox violation: forbidden system call (SIGSYS)");
        else if (sig == SIGXCPU)
            fail(res, "CPU time limit of %u s exceeded (SIGXCPU)",
                 job->limits.cpu_seconds ? job->limits.cpu_seconds : 600);
        else if (sig == SIGXFSZ)
            fail(res, "output size limit exceeded (SIGXFSZ)");
        else if (sig == SIGKILL)
            fail(res, "worker killed by signal 9 (SIGKILL): memory or CPU limit?");
        else
            fail(res, "worker killed by signal %d (SIG%s)", sig, abbr ? abbr : "?");
    } else if (WIFEXITED(ws) && WEXITSTATUS(ws) != 0) {
        fail(res, "worker exited with status %d", WEXITSTATUS(ws));
    }
}

/* Applies the worker's result message to res. */
static void take_result(const char *buf, size_t len, run *x, mt_job_result *res)
{
    mt_err e = {0};
    json_t *r = mt_json_parse(buf, len, MT_JOB_RESULT_MAX, 8, &e);
    if (!r || !json_is_object(r)) {
        json_decref(r);
        /* not e.msg: the parser's text quotes the result's bytes, which a
         * worker may derive from someone's input (failure reasons are read by
         * every participant) */
        fail(res, "worker returned no valid result (%s)", len ? "malformed JSON" : "empty");
        return;
    }
    const char *log = NULL, *rv = NULL, *reason = NULL, *why = NULL, *trace = NULL;
    bool ok = false;
    int64_t fetched = 0, fuel = 0, signs = 0;
    json_t *outs = NULL;
    if (mt_json_bool_opt(r, "ok", &ok, false, &e) != MT_OK ||
        mt_json_str_opt(r, "log", MT_JOB_RESULT_MAX, &log, NULL, &e) != MT_OK ||
        mt_json_str_opt(r, "return_value", MT_JOB_RESULT_MAX, &rv, NULL, &e) != MT_OK ||
        mt_json_str_opt(r, "reason", 4096, &reason, NULL, &e) != MT_OK ||
        mt_json_str_opt(r, "detail", 4096, &why, NULL, &e) != MT_OK ||
        mt_json_int_opt(r, "fetched_bytes", 0, INT64_MAX, &fetched, 0, &e) != MT_OK ||
        mt_json_int_opt(r, "fuel_used", 0, INT64_MAX, &fuel, 0, &e) != MT_OK ||
        mt_json_int_opt(r, "key_signs", 0, MT_JOB_KEY_SIGNS_MAX, &signs, 0, &e) != MT_OK ||
        mt_json_object_opt(r, "outputs", MT_JOB_MAX_SLOTS, &outs, &e) != MT_OK ||
        mt_json_str_opt(r, "trace", 1024, &trace, NULL, &e) != MT_OK) {
        json_decref(r);
        fail(res, "worker returned an invalid result: %s", e.msg);
        return;
    }
    if (trace && mt_trace_on()) /* the worker's stamps, as w_NAME (mt_trace.h) */
        (void)mt_trace_mark_pairs(x->job->task_id, "w_", trace);
    if (why && *why)
        detail(x->job, "%s", why);
    if (log && *log)
        res->log = strdup(log);
    res->bytes_in += (uint64_t)fetched;
    res->fuel_used = (uint64_t)fuel;
    res->key_signs = (uint64_t)signs;
    if (signs > 0 && x->job->n_keys == 0) {
        /* only a job the scheduler gave a KeyStore key can have signed */
        res->key_signs = 0;
        fail(res, "worker reported KeyStore signatures for a task that was given no key");
        json_decref(r);
        return;
    }
    if (!ok) {
        fail(res, "%s", reason ? reason : "worker reported failure without a reason");
    } else {
        res->ok = true;
        res->return_value = strdup(rv ? rv : "");
        /* every output must be accounted for */
        for (size_t i = 0; i < x->job->n_outputs; i++)
            if (!json_object_get(outs, x->job->outputs[i].slot))
                fail(res, "worker did not report output '%s'", x->job->outputs[i].slot);
    }
    json_decref(r);
}

/* Size + SHA-256 of a temp file, read back (from the page cache). Stops
 * (false) once mt_mono_ms() passes deadline, setting *late, or once another
 * thread has set *late: the task's wall-clock limit covers sealing too (a
 * worker can leave outputs of up to RLIMIT_FSIZE each, sparse, that take
 * far longer to hash than to write). */
static bool digest_fd(int fd, uint64_t *size_out, char hex[65], int64_t deadline,
                      atomic_bool *late)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(SEAL_CHUNK), digest[32];
    unsigned int dl = 0;
    uint64_t size = 0;
    bool good = md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    while (good) {
        if (atomic_load_explicit(late, memory_order_relaxed) || mt_mono_ms() > deadline) {
            atomic_store(late, true);
            good = false;
            break;
        }
        ssize_t n = pread(fd, buf, SEAL_CHUNK, (off_t)size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            good = n == 0;
            break;
        }
        good = EVP_DigestUpdate(md, buf, (size_t)n) == 1;
        size += (uint64_t)n;
    }
    good = good && EVP_DigestFinal_ex(md, digest, &dl) == 1 && dl == 32;
    EVP_MD_CTX_free(md);
    free(buf);
    if (good)
        mt_hex_encode(digest, 32, hex);
    *size_out = size;
    return good;
}

/* Sealing, split over threads (seal_thread): the outputs from, from + step,
 * ... hashed (size, hex, ok of each), or, with sync, every output fsynced
 * in order (the first failure: its index and errno). */
typedef struct seal_part {
    const int *fd;
    size_t n, from, step;
    uint64_t *size;
    char (*hex)[65];
    bool *ok;
    bool sync;
    size_t sync_failed; /* n: none */
    int sync_errno;
    int64_t deadline;   /* hashing stops there (digest_fd) */
    atomic_bool *late;
} seal_part;

static void seal_run(seal_part *p)
{
    if (p->sync) {
        p->sync_failed = p->n;
        for (size_t i = p->from; i < p->n; i += p->step)
            if (fsync(p->fd[i]) != 0) {
                p->sync_failed = i;
                p->sync_errno = errno;
                return;
            }
        return;
    }
    for (size_t i = p->from; i < p->n; i += p->step)
        p->ok[i] = digest_fd(p->fd[i], &p->size[i], p->hex[i], p->deadline, p->late);
}

static void *seal_thread(void *arg)
{
    seal_run(arg);
    return NULL;
}

static bool seal_start(pthread_t *th, seal_part *p)
{
    pthread_attr_t at;
    bool started = false;
    if (pthread_attr_init(&at) == 0) {
        started = pthread_attr_setstacksize(&at, (size_t)256 << 10) == 0 &&
                  pthread_create(th, &at, seal_thread, p) == 0;
        pthread_attr_destroy(&at);
    }
    return started;
}

/* Outputs of at least this many bytes in all are sealed on four threads. */
#define SEAL_PAR_MIN ((uint64_t)1 << 20)

/* fsync + size + SHA-256 of every output's temp file (issue 13: a PSI's two
 * 9 MB outputs took ~20 ms of fsync, the host persisting the VM's disk
 * cache, after ~13 ms of SHA-256, one after the other). From SEAL_PAR_MIN
 * bytes on, two helpers fsync the even and the odd outputs while this
 * thread and a third helper hash them (the even and the odd ones): fsync
 * waits on the disk, the hashes use the CPUs. The hash covers the bytes fsync makes durable:
 * the worker has exited and the parent holds the only descriptors of the
 * temp files, so nothing changes them meanwhile. All of it goes through the
 * parent's own open files (x->own_fd, open_own_fd), which report a
 * writeback error even when the worker's fsync already saw it. */
static bool seal_outputs(run *x, mt_job_result *res)
{
    const mt_job *job = x->job;
    size_t n = job->n_outputs;
    uint64_t *size = calloc(n + 1, sizeof *size), total = 0;
    char (*hex)[65] = calloc(n + 1, sizeof *hex);
    bool *ok = calloc(n + 1, sizeof *ok), good = size && hex && ok;
    if (!good) {
        free(size);
        free(hex);
        free(ok);
        fail(res, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (fstat(x->own_fd[i], &sb) == 0)
            total += (uint64_t)sb.st_size;
    }
    bool par = total >= SEAL_PAR_MIN;
    atomic_bool *late = &x->seal_late;
    int64_t dl = x->deadline;
    seal_part sync[2] = {{x->own_fd, n, 0, 2, size, hex, ok, true, n, 0, dl, late},
                         {x->own_fd, n, 1, 2, size, hex, ok, true, n, 0, dl, late}};
    seal_part odd = {x->own_fd, n, 1, 2, size, hex, ok, false, n, 0, dl, late};
    seal_part even = {x->own_fd, n, 0, 2, size, hex, ok, false, n, 0, dl, late};
    pthread_t th_sync[2], th_odd;
    /* fsync: the even outputs on one helper, the odd ones on another; without
     * a first helper all of them here after the hashes, without a second the
     * odd ones here after the hashes */
    bool t_sync[2] = {par && seal_start(&th_sync[0], &sync[0]), false};
    if (!t_sync[0])
        sync[0].step = 1; /* (not started: its part is this thread's) */
    else if (n > 1)
        t_sync[1] = seal_start(&th_sync[1], &sync[1]);
    bool t_odd = par && n > 1 && seal_start(&th_odd, &odd);
    if (!t_odd)
        even.step = 1; /* all of them here */
    seal_run(&even);
    if (t_odd)
        pthread_join(th_odd, NULL);
    mt_trace_mark(job->task_id, "x_hashed");
    flush_finish(x); /* the early flushing's last flush ran beside the hashes */
    size_t flush_bad = x->flush_bad;
    int flush_errno = x->flush_errno;
    if (!t_sync[0])
        seal_run(&sync[0]); /* every output */
    else if (n > 1 && !t_sync[1])
        seal_run(&sync[1]); /* the odd ones */
    for (int k = 0; k < 2; k++)
        if (t_sync[k])
            pthread_join(th_sync[k], NULL);
    mt_trace_mark(job->task_id, "x_synced");
    if (atomic_load(late)) {
        /* the same reason as a worker that runs past the limit */
        fail(res, "wall-clock limit of %u ms exceeded", x->wall);
        good = false;
    }
    for (size_t i = 0; good && i < n; i++) {
        const char *slot = job->outputs[i].slot;
        const seal_part *sp = &sync[t_sync[0] ? i % 2 : 0];
        if (flush_bad == i) {
            fail(res, "output '%s': fsync failed: %s", slot, strerror(flush_errno));
            good = false;
        } else if (sp->sync_failed == i) {
            fail(res, "output '%s': fsync failed: %s", slot, strerror(sp->sync_errno));
            good = false;
        } else if (!ok[i]) {
            fail(res, "output '%s': reading back the ciphertext failed", slot);
            good = false;
        } else {
            json_t *o = json_pack("{s:I,s:s}", "size", (json_int_t)size[i], "sha256", hex[i]);
            if (!o || json_object_set_new(res->outputs, slot, o) != 0) {
                fail(res, "out of memory");
                good = false;
            } else {
                res->bytes_out += size[i];
            }
        }
    }
    free(size);
    free(hex);
    free(ok);
    return good;
}

/* Makes every output final; on any failure none remains. */
static void commit_outputs(run *x, mt_job_result *res)
{
    const mt_job *job = x->job;
    if (!(res->outputs = json_object())) {
        fail(res, "out of memory");
        return;
    }
    if (res->ok)
        (void)seal_outputs(x, res);
    for (size_t i = 0; res->ok && i < job->n_outputs; i++) {
        if (rename(x->tmp_path[i], job->outputs[i].path) != 0) {
            int e = errno;
            detail(job, "output '%s': cannot move it to %s: %s", job->outputs[i].slot,
                   job->outputs[i].path, strerror(e));
            fail(res, "output '%s': cannot move it to its final name (errno %d)",
                 job->outputs[i].slot, e);
            break;
        }
        x->renamed[i] = true;
        free(x->tmp_path[i]);
        x->tmp_path[i] = NULL;
    }
    for (size_t i = 0; res->ok && i < job->n_outputs; i++) {
        mt_err e;
        if (mt_fsync_parent_dir(job->outputs[i].path, &e) != MT_OK) {
            detail(job, "output '%s': %s", job->outputs[i].slot, e.msg);
            fail(res, "output '%s': syncing its directory failed", job->outputs[i].slot);
        }
    }
    if (!res->ok) {
        json_decref(res->outputs);
        res->outputs = NULL;
        res->bytes_out = 0;
        run_discard_outputs(x);
        return;
    }
    for (size_t i = 0; i < job->n_outputs; i++) {
        close(x->out_fd[i]);
        x->out_fd[i] = -1;
        close(x->own_fd[i]);
        x->own_fd[i] = -1;
        x->renamed[i] = false; /* kept */
    }
}

/* Early flushing (issue 13): on the project VM an fsync costs ~1 ms per MB
 * written since the last one (the host persists the VM's disk cache), so a
 * PSI's two 9 MB outputs took ~20-30 ms of fsync after the worker had
 * exited. A worker still running FLUSH_START_MS after supervise began gets a
 * helper here that looks at its outputs' sizes every FLUSH_POLL_MS (up to
 * FLUSH_POLL_MAX_MS while none grows) and fdatasyncs an output once it has
 * FLUSH_MIN bytes more, while the worker still computes and writes; the
 * fsync of the seal (seal_outputs) then finds little left; at least
 * FLUSH_GAP_MS pass between two flushes of one output (a worker growing it
 * in small steps forces no journal commit every few ms). The daemon does it,
 * through its own open files (x->own_fd), not the worker: an error reported
 * to one fdatasync is not reported again to a later fsync of the same open
 * file, so the flush that sees an error must be the one that fails the task
 * (flush_finish: the first error, which seal_outputs reports). Once asked to
 * stop (the worker is gone) it starts no further fdatasync, so a failed or
 * cancelled task waits at most for the one under way. Short tasks (an echo:
 * ~1 ms) never start it. */
#define FLUSH_START_MS 10
#define FLUSH_POLL_MS 4     /* while an output grows */
#define FLUSH_POLL_MAX_MS 8 /* while none does (doubling from FLUSH_POLL_MS) */
#define FLUSH_MIN ((off_t)2 << 20)
#define FLUSH_GAP_MS 20 /* at least this long between two flushes of one output */

typedef struct out_flush {
    const int *fd;
    size_t n;
    off_t *flushed;    /* each output's size at its last flush */
    int64_t *last_ms;  /* when it was (mt_mono_ms), 0: never */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    atomic_bool stop;  /* set under mu; also read before each flush without it */
    size_t err_index; /* n: no error */
    int err;
    pthread_t th;
} out_flush;

static void *flush_thread(void *arg)
{
    out_flush *f = arg;
    struct timespec ts;
    long poll_ms = FLUSH_POLL_MS;
    off_t *seen = calloc(f->n, sizeof *seen); /* sizes at the last look */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pthread_mutex_lock(&f->mu);
    while (!f->stop && seen) {
        ts.tv_nsec += poll_ms * 1000000L;
        while (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) != ETIMEDOUT || f->stop)
            continue;
        pthread_mutex_unlock(&f->mu);
        bool grew = false;
        for (size_t i = 0; i < f->n && f->err_index == f->n; i++) {
            struct stat sb;
            if (fstat(f->fd[i], &sb) != 0)
                continue;
            grew = grew || sb.st_size != seen[i];
            seen[i] = sb.st_size;
            if (sb.st_size - f->flushed[i] < FLUSH_MIN)
                continue;
            /* a worker growing its outputs in small steps gets no flush
             * (a journal commit) every few ms; and none starts once the
             * worker is gone (the seal's fsync follows, or the outputs are
             * about to be removed) */
            int64_t now = mt_mono_ms();
            if (f->last_ms[i] && now - f->last_ms[i] < FLUSH_GAP_MS)
                continue;
            if (atomic_load(&f->stop))
                break;
            if (fdatasync(f->fd[i]) != 0) {
                f->err = errno;
                f->err_index = i;
            }
            f->flushed[i] = sb.st_size;
            f->last_ms[i] = mt_mono_ms();
        }
        /* a worker writing nothing is looked at less often */
        poll_ms = grew ? FLUSH_POLL_MS : poll_ms * 2 > FLUSH_POLL_MAX_MS ? FLUSH_POLL_MAX_MS
                                                                          : poll_ms * 2;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    free(seen);
    return NULL;
}

/* Starts the helper for x's outputs; without it (no memory, no thread) the
 * seal's fsync does all of the flushing, as before. */
static void flush_start(run *x)
{
    size_t n = x->job->n_outputs;
    out_flush *f = calloc(1, sizeof *f);
    if (!f)
        return;
    pthread_condattr_t ca;
    bool cond = false, mu = false;
    if (!(f->flushed = calloc(n, sizeof *f->flushed)) ||
        !(f->last_ms = calloc(n, sizeof *f->last_ms)))
        goto fail;
    f->fd = x->own_fd;
    f->n = n;
    f->err_index = n;
    if (pthread_condattr_init(&ca) == 0) {
        cond = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
               pthread_cond_init(&f->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!cond || !(mu = pthread_mutex_init(&f->mu, NULL) == 0))
        goto fail;
    pthread_attr_t at;
    bool started = false;
    if (pthread_attr_init(&at) == 0) {
        started = pthread_attr_setstacksize(&at, (size_t)128 << 10) == 0 &&
                  pthread_create(&f->th, &at, flush_thread, f) == 0;
        pthread_attr_destroy(&at);
    }
    if (!started)
        goto fail;
    x->flush = f;
    return;
fail:
    if (cond)
        pthread_cond_destroy(&f->cv);
    if (mu)
        pthread_mutex_destroy(&f->mu);
    free(f->flushed);
    free(f->last_ms);
    free(f);
}

/* Tells the helper to stop after the flush under way, if any (no wait). */
static void flush_ask_stop(run *x)
{
    out_flush *f = x->flush;
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Stops and frees the helper (waiting for a flush under way) and keeps the
 * index of the first output whose flush failed, and its errno, in x. Called
 * before any output descriptor is closed or any output is judged sealed. */
static void flush_finish(run *x)
{
    out_flush *f = x->flush;
    if (!f)
        return;
    flush_ask_stop(x);
    pthread_join(f->th, NULL);
    x->flush_bad = f->err_index;
    x->flush_errno = f->err;
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f->flushed);
    free(f->last_ms);
    free(f);
    x->flush = NULL;
    mt_trace_mark(x->job->task_id, "x_flushed");
}

/* SIGKILLs the worker and reaps it (through its zygote when it has one). */
static void worker_kill_reap(run *x, int *ws, struct rusage *ru)
{
    struct rusage ignore;
    if (!ru)
        ru = &ignore;
    if (x->zyg) {
        mt_zygote_kill(&x->zw);
        if (mt_zygote_wait(&x->zw, -1, ws, ru) != 1)
            *ws = SIGKILL; /* the zygote ended: the worker died with it */
        mt_zygote_release(&x->zw);
        x->zyg = false;
    } else if (x->pid > 0) {
        kill(x->pid, SIGKILL);
        while (wait4(x->pid, ws, 0, ru) < 0 && errno == EINTR)
            ;
    }
    x->pid = -1;
}

/* True when pid (a child of this process, unreaped) has no memory left:
 * it is exiting by itself (its mm goes before its files, so before its
 * channel's EOF), the zygote's test for 'U' (zygote_server.c send_usage).
 * /proc/PID/statm's first field, the size in pages, is 0 then. Unknown
 * (/proc unreadable): false. */
static bool proc_exiting(pid_t pid)
{
    char path[40], buf[128];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    return buf[0] == '0' && (buf[1] == ' ' || buf[1] == '\n');
}

/* The wait status to judge after supervise: a worker that supervise killed
 * (SIGKILL) at the EOF of its channel, alive with its memory then, counts
 * as exited normally (0): the result decides (complete: as the worker
 * reported; nothing or truncated: "no valid result", as for a worker that
 * exits after closing its channel early). A worker that was already
 * exiting by itself at that EOF (a crash, the kernel at a limit) was not
 * killed and is judged by its own status. */
static int eof_status(const run *x, int ws)
{
    return x->killed_at_eof && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL ? 0 : ws;
}

/* Exchanges messages with the worker and reaps it. Returns the wait status;
 * sets *why_killed when the parent killed it (1 timeout, 2 cancel, 3 result
 * too large). */
static int supervise(run *x, const char *jobtxt, size_t joblen, int64_t deadline,
                     bool (*should_cancel)(void *), void *arg, char **rbuf, size_t *rlen,
                     struct rusage *ru, int *why_killed)
{
    size_t sent = 0, cap = 0;
    bool sending = true, eof = false, usage_asked = false;
    int64_t next_cancel_check = mt_mono_ms() + POLL_MS;
    int ws = 0, sleep_ms = 1, pidfd = -1;
    bool pidfd_tried = false, eof_checked = false;
    /* outputs: the early flushing helper once the worker has run a while */
    int64_t flush_at = x->job->n_outputs && x->own_fd ? mt_mono_ms() + FLUSH_START_MS : 0;
    *rbuf = NULL;
    *rlen = 0;
    *why_killed = 0;
    for (;;) {
        int64_t now = mt_mono_ms();
        if (now >= deadline) {
            *why_killed = 1;
            break;
        }
        if (should_cancel && now >= next_cancel_check) {
            next_cancel_check = now + POLL_MS;
            if (should_cancel(arg)) {
                *why_killed = 2;
                break;
            }
        }
        if (flush_at && now >= flush_at) {
            flush_at = 0;
            flush_start(x);
        }
        int64_t wait = deadline - now;
        if (wait > POLL_MS)
            wait = POLL_MS;
        if (flush_at && wait > flush_at - now)
            wait = flush_at - now;
        if (eof && x->zyg) {
            /* channel closed: the zygote reports the exit. A worker closes
             * its only reference to the channel right after its complete
             * result (worker_main.c), and the daemon asks for its usage
             * ('U', zygote.h mt_zygote_ask_usage): an answer means it is
             * still alive with its memory. With MT_ZYG_AWAIT_KILL (no
             * output file it could still write) it waits to be killed: its
             * usage so far is all the outcome needs, and once released the
             * zygote kills and reaps it, its teardown off this path. With
             * outputs it could still write them until it is gone, so their
             * sealing waits for its exit, but not for it to end by itself:
             * it is killed ('K') and its exit awaited (its wipe and frees of
             * its inputs' plaintext and keys: ~3 ms for a PSI of 2 x 2^20,
             * issue 13; docs/design.md "Supervision"). No answer (it is
             * exiting: a crash, a limit) leaves its own exit status to
             * judge. */
            if (!usage_asked) {
                mt_zygote_ask_usage(&x->zw);
                usage_asked = true;
            }
            int got = usage_asked && !x->killed_at_eof
                          ? mt_zygote_wait_usage(&x->zw, (int)wait, &ws, ru)
                          : mt_zygote_wait(&x->zw, (int)wait, &ws, ru);
            if (got == 2 && x->await_kill) {
                mt_zygote_release(&x->zw); /* the zygote kills it, then reaps it */
                x->zyg = false;
                x->pid = -1;
                return 0; /* the result decides: it is complete (EOF) */
            }
            if (got == 2) {
                mt_zygote_kill(&x->zw);
                x->killed_at_eof = true;
                continue;
            }
            if (got == 1) {
                x->pid = -1;
                return ws;
            }
            if (got < 0) {
                *why_killed = 4;
                x->pid = -1;
                return 0;
            }
            continue;
        }
        if (eof) {
            /* channel closed: killed while it still has its memory (not
             * exiting by itself), as above; unreaped, so its pid is still
             * its own; then waited for */
            if (!eof_checked) {
                eof_checked = true;
                if (x->pid > 0 && !proc_exiting(x->pid)) {
                    kill(x->pid, SIGKILL);
                    x->killed_at_eof = true;
                }
            }
            pid_t p = wait4(x->pid, &ws, WNOHANG, ru);
            if (p == x->pid || (p < 0 && errno != EINTR)) {
                x->pid = -1;
                if (pidfd >= 0)
                    close(pidfd);
                return p < 0 ? 0 : ws;
            }
            /* a pidfd wakes us at the exit (Linux >= 5.3); else back off */
            if (pidfd < 0 && !pidfd_tried) {
                pidfd_tried = true;
                pidfd = (int)syscall(SYS_pidfd_open, x->pid, 0);
            }
            if (pidfd >= 0) {
                struct pollfd pp = {.fd = pidfd, .events = POLLIN};
                (void)poll(&pp, 1, (int)wait);
                continue;
            }
            struct timespec ts = {0, (long)sleep_ms * 1000000L};
            nanosleep(&ts, NULL);
            if (sleep_ms < 20)
                sleep_ms *= 2;
            continue;
        }
        struct pollfd pfd = {.fd = x->chan, .events = POLLIN | (sending ? POLLOUT : 0)};
        int pr = poll(&pfd, 1, (int)wait);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        if (sending && (pfd.revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = send(x->chan, jobtxt + sent, joblen - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                sent += (size_t)n;
            if ((n < 0 && errno != EAGAIN && errno != EINTR) || sent == joblen) {
                mt_trace_mark(x->job->task_id, "x_job_sent");
                sending = false;
                shutdown(x->chan, SHUT_WR);
            }
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (*rlen == cap) {
                if (cap >= MT_JOB_RESULT_MAX) {
                    *why_killed = 3;
                    break;
                }
                size_t nc = cap ? cap * 2 : 16384;
                if (nc > MT_JOB_RESULT_MAX)
                    nc = MT_JOB_RESULT_MAX;
                char *p = realloc(*rbuf, nc + 1);
                if (!p) {
                    *why_killed = 3;
                    break;
                }
                *rbuf = p;
                cap = nc;
            }
            ssize_t n = recv(x->chan, *rbuf + *rlen, cap - *rlen, MSG_DONTWAIT);
            if (n > 0)
                *rlen += (size_t)n;
            else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                eof = true;
                mt_trace_mark(x->job->task_id, "x_result");
            }
        }
    }
    if (pidfd >= 0)
        close(pidfd);
    worker_kill_reap(x, &ws, ru);
    return ws;
}

mt_status mt_executor_run(const mt_job *job, bool (*should_cancel)(void *), void *arg,
                          mt_job_result *result, mt_err *err)
{
    memset(result, 0, sizeof *result);
    if (!job || !job->worker_path || !job->function)
        return mt_err_set(err, MT_EINVAL, "job needs a worker path and a function");
    bool python = job->executor_type && !strcmp(job->executor_type, "python");
    bool wasm = python || (job->executor_type && !strcmp(job->executor_type, "wasm"));
    if (job->executor_type && strcmp(job->executor_type, "builtin") != 0 && !wasm)
        return mt_err_set(err, MT_EINVAL,
                          "executor type '%s' is not supported (only 'builtin', 'wasm' and "
                          "'python')",
                          job->executor_type);
    if (wasm != (job->module != NULL) || (wasm && !job->module->path))
        return mt_err_set(err, MT_EINVAL, "a job of executor type 'wasm' or 'python' (and only "
                                          "such a job) needs its module's local path and key");
    if (job->n_inputs > MT_JOB_MAX_SLOTS || job->n_outputs > MT_JOB_MAX_SLOTS)
        return mt_err_set(err, MT_EINVAL, "a job has at most %d inputs and %d outputs",
                          MT_JOB_MAX_SLOTS, MT_JOB_MAX_SLOTS);
    for (size_t i = 0; i < job->n_inputs; i++)
        if (!mt_job_slot_valid(job->inputs[i].slot))
            return mt_err_set(err, MT_EINVAL, "input %zu: invalid slot name", i);
    for (size_t i = 0; i < job->n_outputs; i++)
        if (!mt_job_slot_valid(job->outputs[i].slot) || !job->outputs[i].path)
            return mt_err_set(err, MT_EINVAL, "output %zu: invalid slot name or no path", i);
    if (access(job->worker_path, X_OK) != 0)
        return mt_err_set(err, errno == ENOENT ? MT_ENOTFOUND : MT_EIO,
                          "worker executable %s cannot be run: %s (check the daemon's "
                          "worker path)", job->worker_path, strerror(errno));

    mt_status st = MT_OK;
    run x = {.job = job, .chan = -1, .pid = -1, .module_fd = -1, .zw = {.pid = -1, .report = -1},
             .flush_bad = SIZE_MAX};
    size_t ni = job->n_inputs, no = job->n_outputs;
    int sv[2] = {-1, -1};
    int *src = NULL, *wfd = NULL, *in_w = NULL, *out_w = NULL;
    char *jobtxt = NULL, *rbuf = NULL;
    size_t rlen = 0;
    x.in_fd = malloc((ni + 1) * sizeof *x.in_fd);
    x.out_fd = malloc((no + 1) * sizeof *x.out_fd);
    x.own_fd = malloc((no + 1) * sizeof *x.own_fd);
    x.tmp_path = calloc(no + 1, sizeof *x.tmp_path);
    x.renamed = calloc(no + 1, sizeof *x.renamed);
    src = malloc((ni + no + 2) * sizeof *src);
    wfd = malloc((ni + no + 2) * sizeof *wfd);
    in_w = malloc((ni + 1) * sizeof *in_w);
    out_w = malloc((no + 1) * sizeof *out_w);
    if (!x.in_fd || !x.out_fd || !x.own_fd || !x.tmp_path || !x.renamed || !src || !wfd || !in_w ||
        !out_w) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ni; i++)
        x.in_fd[i] = -1;
    for (size_t i = 0; i < no; i++)
        x.out_fd[i] = x.own_fd[i] = -1;

    int64_t start = mt_mono_ms();
    uint32_t wall = job->limits.wall_ms ? job->limits.wall_ms : DEFAULT_WALL_MS;
    x.deadline = start + wall;
    x.wall = wall;
    atomic_init(&x.seal_late, false);
    mt_trace_mark(job->task_id, "x_start"); /* MESATEE_TRACE_TASKS (mt_trace.h) */
    if (!open_inputs(&x, result) || !create_outputs(&x, result))
        goto done; /* an outcome: the task fails with the reason */
    if (wasm && (x.module_fd = open(job->module->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        fail(result, "the function's module cannot be opened: %s", strerror(errno));
        goto done;
    }

    size_t nfd = 0;
    int next = MT_JOB_FIRST_FD + 1;
    for (size_t i = 0; i < ni; i++) {
        in_w[i] = -1;
        if (x.in_fd[i] >= 0) {
            src[nfd] = x.in_fd[i];
            wfd[nfd++] = in_w[i] = next++;
        }
    }
    for (size_t i = 0; i < no; i++) {
        src[nfd] = x.out_fd[i];
        wfd[nfd++] = out_w[i] = next++;
    }
    int module_w = -1;
    if (x.module_fd >= 0) {
        src[nfd] = x.module_fd;
        wfd[nfd++] = module_w = next++;
    }
    if (!(jobtxt = mt_wjob_encode(job, in_w, out_w, module_w, err))) {
        st = err ? err->code : MT_ENOMEM;
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        st = mt_err_set(err, MT_EIO, "socketpair failed: %s", strerror(errno));
        goto out;
    }
    /* the seccomp filter closes before the job is read unless the worker
     * must fetch an https:// input first (zygote only; docs/design.md) */
    /* python: the worker installs its own filter (sandbox.h,
     * mt_sandbox_lock_python) after the interpreter started */
    bool lock_early = !python;
    for (size_t i = 0; i < ni; i++)
        if (!job->inputs[i].path && job->inputs[i].url &&
            strncmp(job->inputs[i].url, "https://", 8) == 0)
            lock_early = false;
    if ((st = spawn_worker(&x, sv[1], src, wfd, nfd,
                           job->limits.mem_bytes ? job->limits.mem_bytes : (2ULL << 30),
                           job->limits.cpu_seconds ? job->limits.cpu_seconds : 600, lock_early,
                           python, no == 0, err)) != MT_OK)
        goto out;
    mt_trace_mark(job->task_id, "x_forked");
    close(sv[1]);
    sv[1] = -1;
    x.chan = sv[0];
    sv[0] = -1;
    run_close_inputs(&x);

    struct rusage ru = {0};
    int why = 0;
    int ws = supervise(&x, jobtxt, strlen(jobtxt), start + wall, should_cancel, arg, &rbuf,
                       &rlen, &ru, &why);
    ws = eof_status(&x, ws);
    /* the worker is gone: the early flushing ends after the flush under
     * way, which seal_outputs waits for while it hashes (flush_finish) */
    flush_ask_stop(&x);
    mt_trace_mark(job->task_id, "x_reaped");
    result->wall_ms = (uint64_t)(mt_mono_ms() - start);
    result->cpu_ms = (uint64_t)ru.ru_utime.tv_sec * 1000 + (uint64_t)ru.ru_utime.tv_usec / 1000 +
                     (uint64_t)ru.ru_stime.tv_sec * 1000 + (uint64_t)ru.ru_stime.tv_usec / 1000;
    result->peak_rss_kb = (uint64_t)ru.ru_maxrss;
    if (why == 1) {
        fail(result, "wall-clock limit of %u ms exceeded", wall);
    } else if (why == 2) {
        result->canceled = true;
        fail(result, "canceled");
    } else if (why == 3) {
        fail(result, "worker result exceeded %d bytes", MT_JOB_RESULT_MAX);
    } else if (why == 4) {
        fail(result, "worker lost: its zygote process ended while the task ran");
    } else {
        describe_status(ws, job, result);
        if (!result->failure_reason)
            take_result(rbuf ? rbuf : "", rlen, &x, result);
        else if (rlen && rbuf) {
            /* keep the log of a worker that died after reporting */
            mt_job_result tmp = {0};
            take_result(rbuf, rlen, &x, &tmp);
            if (tmp.log && !result->log) {
                result->log = tmp.log;
                tmp.log = NULL;
            }
            mt_job_result_clear(&tmp);
        }
    }
    if (result->ok)
        commit_outputs(&x, result);
    mt_trace_mark(job->task_id, "x_committed");

done:
    if (!result->ok) {
        result->ok = false;
        if (!result->failure_reason)
            fail(result, "unknown failure");
        run_discard_outputs(&x);
        json_decref(result->outputs);
        result->outputs = NULL;
        result->bytes_out = 0;
        if (!result->wall_ms)
            result->wall_ms = (uint64_t)(mt_mono_ms() - start);
    }
out:
    if (st != MT_OK) {
        run_discard_outputs(&x);
        mt_job_result_clear(result);
    }
    if (x.in_fd)
        run_close_inputs(&x);
    mt_zygote_release(&x.zw);
    if (x.module_fd >= 0)
        close(x.module_fd);
    flush_finish(&x); /* (done above on every path that reached the worker) */
    if (x.out_fd)
        for (size_t i = 0; i < no; i++)
            if (x.out_fd[i] >= 0)
                close(x.out_fd[i]);
    if (x.own_fd)
        for (size_t i = 0; i < no; i++)
            if (x.own_fd[i] >= 0)
                close(x.own_fd[i]);
    if (x.chan >= 0)
        close(x.chan);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    if (jobtxt) {
        mt_wipe(jobtxt, strlen(jobtxt));
        free(jobtxt);
    }
    free(rbuf);
    if (x.tmp_path)
        for (size_t i = 0; i < no; i++)
            free(x.tmp_path[i]);
    free(x.in_fd);
    free(x.out_fd);
    free(x.own_fd);
    free(x.tmp_path);
    free(x.renamed);
    free(src);
    free(wfd);
    free(in_w);
    free(out_w);
    return st;
}

/* ---- registration check of a wasm module (kind "wasm_check") ---------------- */

#define CHECK_MEM_BYTES (1ULL << 30)
#define CHECK_CPU_SECONDS 10u
#define CHECK_WALL_MS 60000u

static mt_status module_check(const char *worker_path, const uint8_t *module, size_t len,
                              bool python, mt_err *err);

mt_status mt_executor_wasm_check(const char *worker_path, const uint8_t *module, size_t len,
                                 mt_err *err)
{
    return module_check(worker_path, module, len, false, err);
}

mt_status mt_executor_python_check(const char *worker_path, const uint8_t *source, size_t len,
                                   mt_err *err)
{
    return module_check(worker_path, source, len, true, err);
}

/* Kind "wasm_check" or "python_check": the same run, one plaintext payload
 * on a sealed memfd, a result {"ok":..,"reason":..,"status":..}. */
static mt_status module_check(const char *worker_path, const uint8_t *module, size_t len,
                              bool python, mt_err *err)
{
    const char *what = python ? "python" : "wasm";
    if (!worker_path)
        return mt_err_set(err, MT_EUNAVAIL,
                          "%s functions are checked in the sandboxed worker, and this server "
                          "has no worker path configured", what);
    if (len > mt_executor_wasm_max_bytes())
        return mt_err_set(err, MT_ETOOBIG, "%s: module of %zu bytes exceeds the limit of %zu",
                          what, len, mt_executor_wasm_max_bytes());
    mt_job dummy = {.worker_path = worker_path};
    run x = {.job = &dummy, .chan = -1, .pid = -1, .module_fd = -1,
             .zw = {.pid = -1, .report = -1}, .flush_bad = SIZE_MAX};
    int sv[2] = {-1, -1};
    char *jobtxt = NULL, *rbuf = NULL;
    size_t rlen = 0;
    json_t *r = NULL;
    mt_status st;
    /* the module on a sealed memfd: the worker reads it after its sandbox closed */
    x.module_fd = memfd_create("mesatee-wasm-check", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (x.module_fd < 0) {
        st = mt_err_set(err, MT_EIO, "memfd_create failed: %s", strerror(errno));
        goto out;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(x.module_fd, module + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = mt_err_set(err, MT_EIO, "writing the module for its check failed: %s",
                            strerror(errno));
            goto out;
        }
        off += (size_t)w;
    }
    if (fcntl(x.module_fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) !=
            0 ||
        lseek(x.module_fd, 0, SEEK_SET) != 0) {
        st = mt_err_set(err, MT_EIO, "sealing the module for its check failed: %s",
                        strerror(errno));
        goto out;
    }
    int module_w = MT_JOB_FIRST_FD + 1;
    if (!(jobtxt = mt_wjob_encode_check(python ? "python_check" : "wasm_check", module_w,
                                        CHECK_MEM_BYTES, CHECK_CPU_SECONDS, err))) {
        st = err ? err->code : MT_ENOMEM;
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        st = mt_err_set(err, MT_EIO, "socketpair failed: %s", strerror(errno));
        goto out;
    }
    /* python: the worker starts the interpreter (which reads its standard
     * library) before it closes the filter and compiles the source */
    if ((st = spawn_worker(&x, sv[1], &x.module_fd, &module_w, 1, CHECK_MEM_BYTES,
                           CHECK_CPU_SECONDS, !python, python, false, err)) != MT_OK) {
        st = MT_EUNAVAIL; /* the server's fault, not the module's: message kept */
        if (err)
            err->code = st;
        goto out;
    }
    close(sv[1]);
    sv[1] = -1;
    x.chan = sv[0];
    sv[0] = -1;
    struct rusage ru;
    int why = 0;
    int ws = supervise(&x, jobtxt, strlen(jobtxt), mt_mono_ms() + CHECK_WALL_MS, NULL, NULL, &rbuf,
                       &rlen, &ru, &why);
    ws = eof_status(&x, ws);
    mt_job_result res = {0};
    if (why == 0)
        describe_status(ws, &dummy, &res);
    else if (why == 4)
        fail(&res, "worker lost: its zygote process ended");
    if (why != 0 || res.failure_reason) {
        /* a module whose check exhausts the worker's limits is refused */
        st = mt_err_set(err, MT_EINVAL, "%s: the module could not be checked within the "
                                        "limits of the sandboxed check (%s)", what,
                        why == 1   ? "wall-clock limit"
                        : why == 3 ? "result too large"
                        : res.failure_reason ? res.failure_reason
                                             : "worker failed");
        mt_job_result_clear(&res);
        goto out;
    }
    mt_err pe = {0};
    bool ok = false;
    const char *reason = NULL;
    int64_t code = MT_EINVAL;
    r = mt_json_parse(rbuf ? rbuf : "", rlen, MT_JOB_RESULT_MAX, 4, &pe);
    if (!r || !json_is_object(r) || mt_json_bool_opt(r, "ok", &ok, false, &pe) != MT_OK ||
        mt_json_str_opt(r, "reason", 4096, &reason, NULL, &pe) != MT_OK ||
        mt_json_int_opt(r, "status", MT_EINVAL, MT_EUNAVAIL, &code, MT_EINVAL, &pe) != MT_OK) {
        st = mt_err_set(err, MT_EINTERNAL, "the module check returned no valid result");
        goto out;
    }
    if (ok) {
        st = MT_OK;
    } else {
        /* the worker's own failures (memory) are the module's fault at this size */
        mt_status c = (mt_status)code;
        if (c != MT_ETOOBIG)
            c = MT_EINVAL;
        st = mt_err_set(err, c, "%s", reason ? reason : "wasm: module refused");
    }
out:
    json_decref(r);
    if (x.pid > 0 || x.zyg) {
        int ws;
        worker_kill_reap(&x, &ws, NULL);
    }
    mt_zygote_release(&x.zw);
    if (x.module_fd >= 0)
        close(x.module_fd);
    if (x.chan >= 0)
        close(x.chan);
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
    free(jobtxt);
    free(rbuf);
    return st;
}
