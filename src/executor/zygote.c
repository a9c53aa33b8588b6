/* zygote: the daemon's table of worker zygotes and the per-task exchange
 * with them; contract in zygote.h, messages in zygote_proto.h. */
#include "zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mt_executor.h"
#include "mt_log.h"
#include "mt_util.h"
#include "worker_spawn.h"

#define ZYG_SLOTS 4
#define STARTED_TIMEOUT_MS 30000
#define SEND_TIMEOUT_S 10
#define KILL_GRACE_MS 30000 /* a zygote that reports no exit this long after 'K' hangs */

typedef struct zslot {
    char path[PATH_MAX];
    mt_zyg_class cls;
    pid_t pid; /* 0: none */
    int ctl;   /* valid when has_ctl */
    bool has_ctl;
    uint64_t gen;
    int64_t used;
    uint64_t forks; /* requests sent to this zygote */
    int64_t live;   /* workers (and starts in flight) the daemon holds of it */
} zslot;

/* A zygote out of service: its control socket is closed (it forks nothing
 * more and exits once its last child is reaped); the daemon reaps it when
 * the last worker it holds of it is released. */
typedef struct zretired {
    pid_t pid;
    uint64_t gen;
    int64_t live;
} zretired;

static pthread_mutex_t zmu = PTHREAD_MUTEX_INITIALIZER;
static zslot zt[ZYG_SLOTS];
static zretired *zret;
static size_t zret_n, zret_cap;
static uint64_t zgen;
static atomic_int worker_start_mode; /* mt_worker_start */
static atomic_uint_fast64_t zyg_max_tasks = MT_ZYGOTE_MAX_TASKS_DEFAULT;
static atomic_int test_fault; /* mt_zygote_test_fault */
static atomic_int kill_grace_ms = KILL_GRACE_MS;

void mt_executor_set_zygote_max_tasks(uint64_t n)
{
    atomic_store(&zyg_max_tasks, n ? n : MT_ZYGOTE_MAX_TASKS_DEFAULT);
}

void mt_zygote_test_fault(int fault)
{
    atomic_store(&test_fault, fault);
}

void mt_zygote_test_kill_grace(int ms)
{
    atomic_store(&kill_grace_ms, ms > 0 ? ms : KILL_GRACE_MS);
}

void mt_executor_set_worker_start(mt_worker_start mode)
{
    atomic_store(&worker_start_mode, (int)mode);
}

mt_worker_start mt_executor_worker_start(void)
{
    return (mt_worker_start)atomic_load(&worker_start_mode);
}

bool mt_worker_start_parse(const char *s, mt_worker_start *out)
{
    if (s && !strcmp(s, "zygote"))
        *out = MT_WORKER_START_ZYGOTE;
    else if (s && !strcmp(s, "spawn"))
        *out = MT_WORKER_START_SPAWN;
    else
        return false;
    return true;
}

/* Ends a slot's zygote (its children die with it) and reaps it. zmu held. */
static void slot_kill(zslot *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (s->has_ctl)
        close(s->ctl);
    s->pid = 0;
    s->ctl = -1;
    s->has_ctl = false;
}

/* Kills and reaps a zygote that has nothing the daemon still waits for. */
static void zyg_end(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Takes a slot's zygote out of service: no request reaches it any more (its
 * control socket closes, so it drains: it keeps supervising and reporting
 * its running children and exits after the last one), and the slot is free
 * for a new zygote. Running workers are not disturbed. zmu held. */
static void slot_retire(zslot *s, const char *why)
{
    if (s->pid <= 0) {
        slot_kill(s);
        return;
    }
    mt_debug("worker zygote %s (pid %d) out of service (%s), %lld worker(s) still running",
             s->path, (int)s->pid, why, (long long)s->live);
    if (s->live > 0 && zret_n == zret_cap) {
        size_t nc = zret_cap ? zret_cap * 2 : 8;
        zretired *r = realloc(zret, nc * sizeof *r);
        if (r) {
            zret = r;
            zret_cap = nc;
        }
    }
    if (s->live <= 0) {
        zyg_end(s->pid);
    } else if (zret_n < zret_cap) {
        zret[zret_n++] = (zretired){.pid = s->pid, .gen = s->gen, .live = s->live};
    } else {
        mt_warn("worker zygote %s (pid %d): out of memory to keep it draining; ending it",
                s->path, (int)s->pid);
        zyg_end(s->pid);
    }
    s->pid = 0;
    slot_kill(s); /* closes the control socket only */
    s->forks = 0;
    s->live = 0;
}

/* Drops one reference to zygote generation gen; a retired zygote with none
 * left is reaped. zmu held. */
static void gen_unref(uint64_t gen)
{
    for (size_t i = 0; i < ZYG_SLOTS; i++)
        if (zt[i].pid > 0 && zt[i].gen == gen) {
            if (zt[i].live > 0)
                zt[i].live--;
            return;
        }
    for (size_t i = 0; i < zret_n; i++)
        if (zret[i].gen == gen) {
            if (--zret[i].live <= 0) {
                zyg_end(zret[i].pid);
                zret[i] = zret[--zret_n];
            }
            return;
        }
}

/* The pid of zygote generation gen, active or retired, 0 if gone. zmu held. */
static pid_t gen_pid(uint64_t gen)
{
    for (size_t i = 0; i < ZYG_SLOTS; i++)
        if (zt[i].pid > 0 && zt[i].gen == gen)
            return zt[i].pid;
    for (size_t i = 0; i < zret_n; i++)
        if (zret[i].gen == gen)
            return zret[i].pid;
    return 0;
}

/* Starts a zygote for s->path. zmu held. */
static mt_status slot_start(zslot *s, mt_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return mt_err_set(err, MT_EIO, "zygote: socketpair failed: %s", strerror(errno));
    int hi = fcntl(sv[1], F_DUPFD_CLOEXEC, MT_JOB_FIRST_FD + 1);
    if (hi < 0) {
        close(sv[0]);
        close(sv[1]);
        return mt_err_set(err, MT_EIO, "zygote: fcntl failed: %s", strerror(errno));
    }
    close(sv[1]);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    mt_worker_spawn_init(&fa, &at, hi);
    posix_spawn_file_actions_addclosefrom_np(&fa, MT_JOB_FIRST_FD + 1);
    char *argv[] = {"mesatee-worker",
                    s->cls == MT_ZYG_CLASS_PYTHON ? "--zygote=python" : "--zygote=native", NULL};
    /* libgomp (oneDNN, XGBoost) reads this when it loads, before main: no spinning */
    char *envp[] = {"OMP_WAIT_POLICY=PASSIVE", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, s->path, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(hi);
    if (rc != 0) {
        close(sv[0]);
        return mt_err_set(err, rc == ENOENT ? MT_ENOTFOUND : MT_EIO,
                          "cannot start the worker zygote %s: %s", s->path, strerror(rc));
    }
    struct timeval tv = {.tv_sec = SEND_TIMEOUT_S};
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    s->pid = pid;
    s->ctl = sv[0];
    s->has_ctl = true;
    s->gen = ++zgen;
    s->forks = 0;
    s->live = 0;
    mt_debug("worker zygote %s started (pid %d)", s->path, (int)pid);
    return MT_OK;
}

/* The slot of (path, cls), with a live zygote. zmu held. */
static zslot *slot_get(const char *path, mt_zyg_class cls, mt_err *err)
{
    zslot *s = NULL, *free_slot = NULL;
    for (size_t i = 0; i < ZYG_SLOTS; i++) {
        if (zt[i].pid > 0 && zt[i].cls == cls && !strcmp(zt[i].path, path)) {
            s = &zt[i];
            break;
        }
        if (!free_slot && zt[i].pid <= 0)
            free_slot = &zt[i];
    }
    if (s) {
        int ws;
        pid_t p = waitpid(s->pid, &ws, WNOHANG);
        if (p == s->pid || (p < 0 && errno == ECHILD)) {
            mt_warn("worker zygote %s (pid %d) ended; starting a new one", s->path, (int)s->pid);
            s->pid = 0; /* reaped; its children died with it (PDEATHSIG) */
            slot_kill(s);
            s->live = 0;
        }
    } else {
        /* every slot serves another worker path: never end a zygote that may
         * have running children; the caller spawns this worker instead */
        if (!free_slot) {
            mt_err_set(err, MT_ECONFLICT, "no zygote slot free");
            return NULL;
        }
        s = free_slot;
        slot_kill(s);
        if (strlen(path) >= sizeof s->path) {
            mt_err_set(err, MT_EIO, "worker path too long");
            return NULL;
        }
        strcpy(s->path, path);
        s->cls = cls;
    }
    if (s->pid <= 0 && slot_start(s, err) != MT_OK)
        return NULL;
    s->used = mt_mono_ms();
    return s;
}

/* Sends the request on the slot's control socket. zmu held. */
static int send_req(zslot *s, const uint8_t *buf, size_t len, const int *fds, size_t nfd)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * (MT_ZYG_MAX_DATA_FDS + 2))];
        struct cmsghdr align;
    } cb;
    memset(&cb, 0, sizeof cb);
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * nfd)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfd);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfd);
    ssize_t n;
    while ((n = sendmsg(s->ctl, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)len ? 0 : errno ? errno : EIO;
}

/* Reads one report; 1 read, 0 timeout, -1 EOF/error/invalid. */
static int read_report(int fd, int timeout_ms, mt_zyg_report *r)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr;
    while ((pr = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    if (pr == 0)
        return 0;
    if (pr < 0)
        return -1;
    uint8_t b[MT_ZYG_REPORT_LEN + 1];
    ssize_t n;
    bool reset = false;
    /* ECONNRESET: the zygote closed its end with a request of ours unread
     * ('K' or 'U' crossing the child's exit), which the kernel reports
     * once, before the reports still queued ("exited"): read on */
    while ((n = recv(fd, b, sizeof b, MSG_DONTWAIT)) < 0 &&
           (errno == EINTR || (errno == ECONNRESET && !reset)))
        reset = reset || errno == ECONNRESET;
    if (n < 0 && errno == EAGAIN)
        return 0;
    if (n <= 0 || mt_zyg_report_decode(b, (size_t)n, r, NULL) != MT_OK)
        return -1;
    return 1;
}

mt_status mt_zygote_fork(const char *worker_path, mt_zyg_class cls, const mt_zyg_req *req,
                         const int *fds, mt_zyg_worker *w, mt_err *err)
{
    w->pid = -1;
    w->report = -1;
    uint8_t buf[MT_ZYG_REQ_MAX];
    size_t len = mt_zyg_req_encode(req, buf, sizeof buf);
    if (!len)
        return mt_err_set(err, MT_EINTERNAL, "zygote: invalid request");
    int all[MT_ZYG_MAX_DATA_FDS + 2];
    size_t nfd = 2 + req->n_data;
    memcpy(all + 1, fds, sizeof(int) * (nfd - 1));
    for (int attempt = 0; attempt < 2; attempt++) {
        int rs[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rs) != 0)
            return mt_err_set(err, MT_EIO, "zygote: socketpair failed: %s", strerror(errno));
        all[0] = rs[1];
        mt_err le = {0};
        int fault = atomic_exchange(&test_fault, 0);
        pthread_mutex_lock(&zmu);
        zslot *s = slot_get(worker_path, cls, &le);
        uint64_t gen = s ? s->gen : 0;
        pid_t zpid = s ? s->pid : 0;
        int e = !s ? -1 : fault == MT_ZYGOTE_FAULT_SEND ? EPIPE : send_req(s, buf, len, all, nfd);
        if (s && !e) {
            s->live++; /* this start; the worker's reference once it runs */
            uint64_t max = (uint64_t)atomic_load(&zyg_max_tasks);
            if (++s->forks >= max) {
                slot_retire(s, "served its --zygote-max-tasks"); /* the request is queued */
                /* one task per zygote: its successor starts now, warming up
                 * (CPython, numpy, pandas) while this task runs, so the next
                 * task still finds a warm zygote; with a larger budget the
                 * next task starts it (it would only idle otherwise) */
                mt_err se = {0};
                if (max == 1 && slot_start(s, &se) != MT_OK)
                    mt_warn("worker zygote %s: the next one did not start (%s); the next task "
                            "starts it",
                            worker_path, se.msg);
            }
        } else if (s && e != EAGAIN && e != EWOULDBLOCK) {
            /* out of service, not killed: other tasks' workers run on */
            mt_warn("worker zygote %s (pid %d) refused a request (%s); replacing it",
                    worker_path, (int)zpid, strerror(e));
            slot_retire(s, "refused a request");
        }
        pthread_mutex_unlock(&zmu);
        close(rs[1]);
        if (!s) {
            close(rs[0]);
            return mt_err_set(err, le.code ? le.code : MT_EIO, "%s", le.msg);
        }
        if (e) {
            close(rs[0]);
            if (e == EAGAIN || e == EWOULDBLOCK)
                return mt_err_set(err, MT_EUNAVAIL, "the worker zygote is not answering");
            continue;
        }
        mt_zyg_report r;
        int got = read_report(rs[0], STARTED_TIMEOUT_MS, &r);
        if (fault == MT_ZYGOTE_FAULT_STARTED)
            got = 0;
        if (got == 1 && r.type == MT_ZYG_STARTED) {
            w->pid = r.pid;
            w->report = rs[0];
            w->zgen = gen;
            w->kill_sent = false;
            return MT_OK;
        }
        /* no child (or one the zygote kills now that its report socket
         * closes): nothing ran. The zygote died or hangs: out of service,
         * but its running children are not disturbed. */
        close(rs[0]);
        pthread_mutex_lock(&zmu);
        for (size_t i = 0; i < ZYG_SLOTS; i++)
            if (zt[i].pid > 0 && zt[i].gen == gen) {
                mt_warn("worker zygote %s (pid %d) did not start a worker; replacing it",
                        worker_path, (int)zt[i].pid);
                slot_retire(&zt[i], "did not start a worker");
            }
        gen_unref(gen);
        pthread_mutex_unlock(&zmu);
    }
    return mt_err_set(err, MT_EIO, "cannot start the worker: its zygote failed twice (see the "
                                   "daemon's log)");
}

/* mt_zygote_wait; with usage, a "usage" report ends the wait too (returns
 * 2, *ws 0); without, it is skipped. */
static int wait_report(mt_zyg_worker *w, int timeout_ms, int *ws, struct rusage *ru, bool usage)
{
    if (w->report < 0)
        return -1;
    mt_zyg_report r;
    int got = read_report(w->report, timeout_ms < 0 && w->kill_sent ? atomic_load(&kill_grace_ms) : timeout_ms,
                          &r);
    /* a late answer to mt_zygote_ask_usage that is no longer wanted */
    while (got == 1 && !usage && r.type == MT_ZYG_USAGE)
        got = read_report(w->report, timeout_ms < 0 && w->kill_sent ? atomic_load(&kill_grace_ms)
                                                                   : timeout_ms,
                          &r);
    if (got == 0 && timeout_ms < 0) {
        /* the zygote did not act on 'K': it hangs, and its children are
         * lost to the daemon anyway; end it (the worker dies with it) */
        pthread_mutex_lock(&zmu);
        pid_t zp = gen_pid(w->zgen);
        if (zp > 0) {
            mt_warn("worker zygote (pid %d) does not answer; ending it", (int)zp);
            kill(zp, SIGKILL);
            for (size_t i = 0; i < ZYG_SLOTS; i++)
                if (zt[i].pid > 0 && zt[i].gen == w->zgen) /* reaped at the release */
                    slot_retire(&zt[i], "does not answer");
        }
        pthread_mutex_unlock(&zmu);
        got = read_report(w->report, -1, &r);
    }
    if (got == 0)
        return 0;
    if (got < 0 || (r.type != MT_ZYG_EXITED && !(usage && r.type == MT_ZYG_USAGE)) ||
        r.pid != w->pid)
        return -1;
    *ws = r.status;
    memset(ru, 0, sizeof *ru);
    ru->ru_utime.tv_sec = (time_t)(r.utime_us / 1000000u);
    ru->ru_utime.tv_usec = (suseconds_t)(r.utime_us % 1000000u);
    ru->ru_stime.tv_sec = (time_t)(r.stime_us / 1000000u);
    ru->ru_stime.tv_usec = (suseconds_t)(r.stime_us % 1000000u);
    ru->ru_maxrss = (long)r.maxrss_kb;
    return r.type == MT_ZYG_USAGE ? 2 : 1;
}

int mt_zygote_wait(mt_zyg_worker *w, int timeout_ms, int *ws, struct rusage *ru)
{
    return wait_report(w, timeout_ms, ws, ru, false);
}

int mt_zygote_wait_usage(mt_zyg_worker *w, int timeout_ms, int *ws, struct rusage *ru)
{
    return wait_report(w, timeout_ms, ws, ru, true);
}

void mt_zygote_ask_usage(mt_zyg_worker *w)
{
    if (w->report >= 0)
        while (send(w->report, "U", 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
}

void mt_zygote_kill(mt_zyg_worker *w)
{
    if (w->report >= 0) {
        while (send(w->report, "K", 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
        w->kill_sent = true;
    }
}

void mt_zygote_release(mt_zyg_worker *w)
{
    if (w->report >= 0) {
        close(w->report);
        pthread_mutex_lock(&zmu);
        gen_unref(w->zgen);
        pthread_mutex_unlock(&zmu);
    }
    w->report = -1;
    w->pid = -1;
}

mt_status mt_executor_zygote_prestart(const char *worker_path, mt_err *err)
{
    if (!worker_path)
        return mt_err_set(err, MT_EINVAL, "no worker executable");
    /* both classes: python tasks' first start stays warm too */
    pthread_mutex_lock(&zmu);
    zslot *s = slot_get(worker_path, MT_ZYG_CLASS_NATIVE, err);
    if (s)
        s = slot_get(worker_path, MT_ZYG_CLASS_PYTHON, err);
    pthread_mutex_unlock(&zmu);
    return s ? MT_OK : err->code ? err->code : MT_EIO;
}

pid_t mt_executor_zygote_pid(const char *worker_path)
{
    pid_t p = 0;
    pthread_mutex_lock(&zmu);
    for (size_t i = 0; worker_path && i < ZYG_SLOTS; i++)
        if (zt[i].pid > 0 && zt[i].cls == MT_ZYG_CLASS_NATIVE && !strcmp(zt[i].path, worker_path))
            p = zt[i].pid;
    pthread_mutex_unlock(&zmu);
    return p;
}
