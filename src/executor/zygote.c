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

#define ZYG_SLOTS 4
#define STARTED_TIMEOUT_MS 30000
#define SEND_TIMEOUT_S 10

typedef struct zslot {
    char path[PATH_MAX];
    pid_t pid; /* 0: none */
    int ctl;   /* valid when has_ctl */
    bool has_ctl;
    uint64_t gen;
    int64_t used;
} zslot;

static pthread_mutex_t zmu = PTHREAD_MUTEX_INITIALIZER;
static zslot zt[ZYG_SLOTS];
static uint64_t zgen;
static atomic_int worker_start_mode; /* mt_worker_start */

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
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, hi, MT_JOB_FIRST_FD);
    posix_spawn_file_actions_addclosefrom_np(&fa, MT_JOB_FIRST_FD + 1);
    char *argv[] = {"mesatee-worker", "--zygote", NULL};
    char *envp[] = {NULL};
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
    mt_debug("worker zygote %s started (pid %d)", s->path, (int)pid);
    return MT_OK;
}

/* The slot of path, with a live zygote. zmu held. */
static zslot *slot_get(const char *path, mt_err *err)
{
    zslot *s = NULL, *free_slot = NULL;
    for (size_t i = 0; i < ZYG_SLOTS; i++) {
        if (zt[i].pid > 0 && !strcmp(zt[i].path, path)) {
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
            s->pid = 0; /* reaped */
            slot_kill(s);
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
    while ((n = recv(fd, b, sizeof b, MSG_DONTWAIT)) < 0 && errno == EINTR)
        ;
    if (n < 0 && errno == EAGAIN)
        return 0;
    if (n <= 0 || mt_zyg_report_decode(b, (size_t)n, r, NULL) != MT_OK)
        return -1;
    return 1;
}

mt_status mt_zygote_fork(const char *worker_path, const mt_zyg_req *req, const int *fds,
                         mt_zyg_worker *w, mt_err *err)
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
        pthread_mutex_lock(&zmu);
        zslot *s = slot_get(worker_path, &le);
        uint64_t gen = s ? s->gen : 0;
        pid_t zpid = s ? s->pid : 0;
        int e = s ? send_req(s, buf, len, all, nfd) : -1;
        if (s && e && e != EAGAIN && e != EWOULDBLOCK) {
            mt_warn("worker zygote %s (pid %d) refused a request (%s); restarting it",
                    worker_path, (int)zpid, strerror(e));
            slot_kill(s);
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
        if (got == 1 && r.type == MT_ZYG_STARTED) {
            w->pid = r.pid;
            w->report = rs[0];
            return MT_OK;
        }
        close(rs[0]);
        /* no child: the zygote died (or hangs); nothing ran */
        pthread_mutex_lock(&zmu);
        for (size_t i = 0; i < ZYG_SLOTS; i++)
            if (zt[i].pid > 0 && zt[i].gen == gen) {
                mt_warn("worker zygote %s (pid %d) did not start a worker; restarting it",
                        worker_path, (int)zt[i].pid);
                slot_kill(&zt[i]);
            }
        pthread_mutex_unlock(&zmu);
    }
    return mt_err_set(err, MT_EIO, "cannot start the worker: its zygote failed twice (see the "
                                   "daemon's log)");
}

int mt_zygote_wait(mt_zyg_worker *w, int timeout_ms, int *ws, struct rusage *ru)
{
    if (w->report < 0)
        return -1;
    mt_zyg_report r;
    int got = read_report(w->report, timeout_ms, &r);
    if (got == 0)
        return 0;
    if (got < 0 || r.type != MT_ZYG_EXITED || r.pid != w->pid)
        return -1;
    *ws = r.status;
    memset(ru, 0, sizeof *ru);
    ru->ru_utime.tv_sec = (time_t)(r.utime_us / 1000000u);
    ru->ru_utime.tv_usec = (suseconds_t)(r.utime_us % 1000000u);
    ru->ru_stime.tv_sec = (time_t)(r.stime_us / 1000000u);
    ru->ru_stime.tv_usec = (suseconds_t)(r.stime_us % 1000000u);
    ru->ru_maxrss = (long)r.maxrss_kb;
    return 1;
}

void mt_zygote_kill(mt_zyg_worker *w)
{
    if (w->report >= 0)
        while (send(w->report, "K", 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
}

void mt_zygote_release(mt_zyg_worker *w)
{
    if (w->report >= 0)
        close(w->report);
    w->report = -1;
    w->pid = -1;
}

mt_status mt_executor_zygote_prestart(const char *worker_path, mt_err *err)
{
    if (!worker_path)
        return mt_err_set(err, MT_EINVAL, "no worker executable");
    pthread_mutex_lock(&zmu);
    zslot *s = slot_get(worker_path, err);
    pthread_mutex_unlock(&zmu);
    return s ? MT_OK : err->code ? err->code : MT_EIO;
}

pid_t mt_executor_zygote_pid(const char *worker_path)
{
    pid_t p = 0;
    pthread_mutex_lock(&zmu);
    for (size_t i = 0; worker_path && i < ZYG_SLOTS; i++)
        if (zt[i].pid > 0 && !strcmp(zt[i].path, worker_path))
            p = zt[i].pid;
    pthread_mutex_unlock(&zmu);
    return p;
}
