/* zygote_server: the worker zygote's loop and its children's sandbox entry;
 * contract in zygote_server.h, messages in zygote_proto.h. */
#include "zygote_server.h"

#include <errno.h>
#include <jansson.h>
#include <sys/random.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "job_codec.h"
#include "sandbox.h"
#include "zygote_proto.h"

typedef struct kid {
    pid_t pid;
    int report;  /* zygote side of the report socket, -1 once the daemon closed it */
} kid;

typedef struct zyg {
    int ctl, sfd;
    sigset_t old_mask;
    kid *kids;
    size_t n, cap;
    /* the spare child, forked ahead while the zygote is idle: it waits on
     * spare_sock (zygote's end) for its request; -1 when there is none */
    pid_t spare_pid;
    int spare_sock;
    bool spare_retry; /* a failed spare fork is tried again after the next request */
    bool reaped;      /* a child was reaped since the last quiet SPARE_IDLE_MS */
    const mt_zyg_hook *hooks; /* their spare warm-ups run in each spare */
    size_t n_hooks;
} zyg;

static void spare_drop(zyg *z, bool kill_it);

/* Every resource limit as the zygote had it when it started serving (the
 * daemon's, RLIMIT_CORE 0), before any child ran: child_enter sets each one
 * to this value again before the sandbox's own (mt_sandbox_limits,
 * mt_sandbox_lock), so limits another process changed on the zygote or on
 * a waiting spare (prlimit by a process of the same user) do not pass on
 * to a task: a soft limit is restored, a lowered hard limit (which cannot
 * be raised again) makes the child fail its sandbox set-up. */
static struct rlimit g_base_rl[RLIM_NLIMITS];

static int g_fault; /* MT_ZYG_FAULT_*, tests only */

void mt_zygote_server_test_fault(int fault)
{
    g_fault = fault;
}

/* with children running, the spare is forked after this long without events */
#define SPARE_IDLE_MS 5

static void send_report(int fd, const mt_zyg_report *r)
{
    uint8_t b[MT_ZYG_REPORT_LEN];
    mt_zyg_report_encode(r, b);
    while (send(fd, b, sizeof b, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EINTR)
        ;
    explicit_bzero(b, sizeof b);
}

/* Reaps every exited child and reports it. */
static void reap(zyg *z)
{
    for (;;) {
        int ws = 0;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        pid_t p = wait4(-1, &ws, WNOHANG, &ru);
        if (p < 0 && errno == EINTR)
            continue;
        if (p <= 0)
            return;
        if (p == z->spare_pid) {
            /* the spare died before it got a request (nothing to report);
             * forget its pid before it can be reused */
            z->spare_pid = -1;
            spare_drop(z, false);
            z->spare_retry = false; /* no fork loop: again after the next request */
            continue;
        }
        for (size_t i = 0; i < z->n; i++) {
            if (z->kids[i].pid != p)
                continue;
            if (z->kids[i].report >= 0) {
                mt_zyg_report r = {
                    .type = MT_ZYG_EXITED, .pid = p, .status = ws,
                    .utime_us = (uint64_t)ru.ru_utime.tv_sec * 1000000u +
                                (uint64_t)ru.ru_utime.tv_usec,
                    .stime_us = (uint64_t)ru.ru_stime.tv_sec * 1000000u +
                                (uint64_t)ru.ru_stime.tv_usec,
                    .maxrss_kb = ru.ru_maxrss > 0 ? (uint64_t)ru.ru_maxrss : 0};
                send_report(z->kids[i].report, &r);
                close(z->kids[i].report);
                explicit_bzero(&r, sizeof r);
            }
            z->kids[i] = z->kids[--z->n];
            z->reaped = true;
            break;
        }
        /* another task's exit status and usage: not left on the stack a
         * later fork (the spare, a child) copies */
        explicit_bzero(&ru, sizeof ru);
        ws = 0;
    }
}

/* The "VmHWM:" line of the status text buf[0..len) (NUL at buf[len]), read
 * whole when `complete`: as mt_zyg_status_vm_hwm. */
static int parse_vm_hwm(const char *buf, size_t len, bool complete, uint64_t *kb)
{
    /* a line of its own: "Name:" (the only text the process sets) is
     * escaped by the kernel and cannot start a line */
    const char *p = strstr(buf, "\nVmHWM:");
    if (!p)
        return len && complete ? 0 : -1;
    p += 7;
    while (*p == ' ' || *p == '\t')
        p++;
    uint64_t v = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 15; p++, digits++)
        v = v * 10 + (uint64_t)(*p - '0');
    if (digits && strncmp(p, " kB\n", 4) == 0) {
        *kb = v;
        return 1;
    }
    /* a line cut by the read bound is not a malformed one: answer (RSS 0)
     * rather than take a living worker for an exiting one */
    return complete || strchr(p, '\n') ? 0 : -1;
}

int mt_zyg_status_vm_hwm(const char *path, uint64_t *kb)
{
    /* static: 64 KiB off the zygote's stack; wiped after each use */
    static char buf[MT_ZYG_STATUS_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    size_t n = 0;
    bool complete = false;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        if (r == 0) {
            complete = true;
            break;
        }
        n += (size_t)r;
        if (n == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[n] = 0;
    int ret = parse_vm_hwm(buf, n, complete, kb);
    /* another task's worker's status: not left in memory a later fork (the
     * spare, a child) copies */
    explicit_bzero(buf, n);
    return ret;
}

/* The peak RSS (kB) of pid: mt_zyg_status_vm_hwm of /proc/PID/status. */
static int vm_hwm_kb(pid_t pid, uint64_t *kb)
{
    char path[40];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    return mt_zyg_status_vm_hwm(path, kb);
}

/* Answers the daemon's 'U' for kid k (zygote_proto.h): its CPU time and
 * peak RSS so far, while it still runs with its memory. k is not reaped
 * (only reap() does that, after this), so its pid is still this child's.
 * Nothing when it has no memory left: it is exiting, and "exited" follows
 * with its own status (a crash is reported as such). Without a readable
 * /proc the peak RSS is reported as 0. Its CPU clock cannot fail for a
 * child not reaped; if it did, the child is killed ("exited" follows, so no
 * worker waiting to be killed is left waiting). */
static void send_usage(const kid *k)
{
    uint64_t hwm = 0;
    clockid_t cid;
    struct timespec ts;
    if (k->report < 0)
        return;
    int mem = vm_hwm_kb(k->pid, &hwm);
    if (mem == 0)
        return;
    if (clock_getcpuclockid(k->pid, &cid) != 0 || clock_gettime(cid, &ts) != 0 ||
        ts.tv_sec < 0) {
        kill(k->pid, SIGKILL);
        return;
    }
    mt_zyg_report r = {.type = MT_ZYG_USAGE, .pid = k->pid,
                       .utime_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u,
                       .maxrss_kb = hwm};
    send_report(k->report, &r);
    explicit_bzero(&r, sizeof r); /* as reap() does */
    explicit_bzero(&ts, sizeof ts);
    hwm = 0;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void close_all(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* A new child's first steps (a forked child or the spare): signal mask and
 * SIGCHLD as before the zygote changed them, PDEATHSIG, the zygote's own
 * descriptors closed (control socket, signalfd, other children's report
 * sockets). Exits when the zygote is already gone. */
static void child_detach(zyg *z, pid_t zpid)
{
    if (sigprocmask(SIG_SETMASK, &z->old_mask, NULL) != 0 || signal(SIGCHLD, SIG_DFL) == SIG_ERR)
        _exit(71);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != zpid)
        _exit(71); /* the zygote is already gone */
    close(z->ctl);
    close(z->sfd);
    if (z->spare_sock >= 0)
        close(z->spare_sock);
    for (size_t i = 0; i < z->n; i++)
        if (z->kids[i].report >= 0)
            close(z->kids[i].report);
    free(z->kids);
    z->kids = NULL;
    z->n = z->cap = 0;
}

/* This process's own jansson hash seed, from getrandom (jansson would open
 * /dev/urandom on first use, after the seccomp lock); _exit(71) without one. */
static void seed_jansson(void)
{
    uint32_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        _exit(71);
    json_object_seed(seed ? seed : 1);
}

/* The child's side after child_detach, with its request: places the fds
 * (fds[0] the channel, fds[1 + i] data fd i; nfd = 1 + n_data), closes
 * everything else, applies the sandbox. Returns only with everything
 * applied; otherwise reports on the channel and exits. */
static void child_enter(const mt_zyg_req *req, const int *fds, size_t nfd, mt_zyg_child *child,
                        int64_t t_recv, int64_t t_child)
{
    int64_t t_fds, t_limits, t_lock;
    mt_err err = {0};
    const char *step = "descriptors";
    int highest = req->n_data ? req->target[req->n_data - 1] : MT_JOB_FIRST_FD;
    int first_free = highest + 1;
    /* fds[0] -> 3, fds[1 + i] -> target[i]: move every source above the
     * target range first so no dup2 clobbers another source. */
    int hi[MT_ZYG_MAX_DATA_FDS + 1];
    for (size_t i = 0; i < nfd; i++)
        if ((hi[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, first_free)) < 0)
            _exit(71);
    close_all(fds, nfd);
    if (dup2(hi[0], MT_JOB_FIRST_FD) < 0)
        _exit(71);
    for (uint32_t i = 0; i < req->n_data; i++)
        if (dup2(hi[i + 1], req->target[i]) < 0)
            _exit(71);
    /* nothing else below first_free either (fds a library kept open) */
    for (int fd = MT_JOB_FIRST_FD + 1, t = 0; fd < first_free; fd++) {
        if ((uint32_t)t < req->n_data && req->target[t] == fd) {
            t++;
            continue;
        }
        close(fd);
    }
    if (close_range((unsigned)first_free, ~0u, 0) != 0)
        _exit(71);
    /* per-child state that must not be shared between tasks: jansson's
     * hash seed (it would open /dev/urandom on first use, after the lock;
     * a spare seeded itself when it started, spare_wait, and jansson keeps
     * the first seed: then this is a no-op) */
    seed_jansson();
    mt_status st = MT_OK;
    t_fds = mono_us();
    step = "limits";
    for (int r = 0; r < RLIM_NLIMITS && st == MT_OK; r++)
        if (setrlimit((__rlimit_resource_t)r, &g_base_rl[r]) != 0)
            st = mt_err_set(&err, MT_EINTERNAL, "zygote: restoring resource limit %d failed: %s",
                            r, strerror(errno));
    if (st == MT_OK)
        st = mt_sandbox_limits(req->mem_bytes, req->cpu_seconds, &err);
    t_limits = mono_us();
    if (st == MT_OK && (req->flags & MT_ZYG_LOCK_EARLY)) {
        step = "seccomp";
        st = mt_sandbox_lock(highest, &err);
    }
    t_lock = mono_us();
    if (st != MT_OK) {
        /* the message holds only the failing step and strerror: no job bytes */
        char msg[512];
        int n = snprintf(msg, sizeof msg,
                         "{\"ok\":false,\"reason\":\"worker sandbox setup failed (%s)\"}", step);
        if (n > 0)
            (void)!write(MT_JOB_FIRST_FD, msg, (size_t)n);
        _exit(0);
    }
    child->forked = true;
    child->locked = (req->flags & MT_ZYG_LOCK_EARLY) != 0;
    child->await_kill = (req->flags & MT_ZYG_AWAIT_KILL) != 0;
    child->mem_bytes = req->mem_bytes;
    child->cpu_seconds = req->cpu_seconds;
    child->highest_fd = highest;
    child->t_recv_us = t_recv;
    child->t_child_us = t_child;
    child->t_fds_us = t_fds;
    child->t_limits_us = t_limits;
    child->t_lock_us = t_lock;
}

/* ---- the spare child ------------------------------------------------------
 * Forked ahead while the zygote is idle, so that a request finds a process
 * ready: it does child_detach at once, then blocks on its own socket (the
 * zygote's end is z->spare_sock) until the zygote hands it one request: an
 * 8-byte CLOCK_MONOTONIC stamp (the zygote's receipt, for the trace) and the
 * request as the daemon sent it (zygote_proto.h, decoded here once more),
 * with the channel and the data fds attached (not the report socket, which
 * stays with the zygote). Only then does it place them and apply the
 * sandbox, exactly as a child forked for the request does (child_enter):
 * the limits and the seccomp filter depend on the request, and nothing of
 * the job can arrive before them (the job comes on the channel). It holds
 * no task's state: it was forked from the zygote before any request of its
 * own, and it serves exactly one request. The zygote kills it when it goes
 * out of service; it dies with the zygote (PDEATHSIG). */
static void spare_wait(zyg *z, pid_t zpid, int sock, mt_zyg_child *child)
{
    child_detach(z, zpid);
    /* this spare's own jansson hash seed before a warm-up can use jansson
     * (jansson seeds once per process: child_enter's call is then a no-op) */
    seed_jansson();
    /* named for ps and the tests while it waits; the zygote's name again
     * once it has a request */
    char comm[17] = "";
    (void)prctl(PR_GET_NAME, comm, 0, 0, 0);
    (void)prctl(PR_SET_NAME, MT_ZYG_SPARE_COMM, 0, 0, 0);
    /* the hooks' warm-ups (zygote_server.h): constant data only */
    for (size_t i = 0; i < z->n_hooks; i++)
        if (z->hooks[i].spare)
            z->hooks[i].spare();
    uint8_t buf[8 + MT_ZYG_REQ_MAX + 1];
    union {
        char b[CMSG_SPACE(sizeof(int) * (MT_ZYG_MAX_DATA_FDS + 2))];
        struct cmsghdr align;
    } cb;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
                        .msg_controllen = sizeof cb.b};
    ssize_t n;
    while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    int64_t t_child = mono_us();
    if (n == 0)
        _exit(0); /* EOF: the zygote dropped its spare (out of service) */
    if (n < 0)
        _exit(71); /* a receive error: not a normal end */
    close(sock);
    (void)prctl(PR_SET_NAME, comm, 0, 0, 0);
    int fds[MT_ZYG_MAX_DATA_FDS + 1];
    size_t nfd = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            if (nfd == sizeof fds / sizeof fds[0])
                _exit(71);
            memcpy(&fds[nfd++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }
    }
    mt_zyg_req req;
    int64_t t_recv;
    if (n < 8 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
        _exit(71);
    memcpy(&t_recv, buf, sizeof t_recv);
    if (mt_zyg_req_decode(buf + 8, (size_t)n - 8, &req, NULL) != MT_OK ||
        nfd != 1 + (size_t)req.n_data)
        _exit(71);
    child_enter(&req, fds, nfd, child, t_recv, t_child);
}

/* Forks the spare. Returns 1 in the spare once it got its request and is
 * sandboxed (child filled), 0 in the zygote (z->spare_pid < 0 when the fork
 * failed). */
static int spare_fork(zyg *z, mt_zyg_child *child)
{
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
        return 0;
    pid_t zpid = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(sp[0]);
        spare_wait(z, zpid, sp[1], child);
        return 1;
    }
    close(sp[1]);
    if (pid < 0) {
        close(sp[0]);
        return 0;
    }
    z->spare_pid = pid;
    z->spare_sock = sp[0];
    return 0;
}

/* Gives up the spare: closes its socket (it exits on EOF) and, with kill_it,
 * kills and reaps it (its pid is still ours: only the zygote reaps). */
static void spare_drop(zyg *z, bool kill_it)
{
    if (z->spare_sock >= 0)
        close(z->spare_sock);
    z->spare_sock = -1;
    if (z->spare_pid > 0 && kill_it) {
        kill(z->spare_pid, SIGKILL);
        while (waitpid(z->spare_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    z->spare_pid = -1;
}

/* Hands req and its channel and data fds (fds, nfd) to the spare; true when
 * the spare has them (it is then the request's child). */
static bool spare_hand(zyg *z, const mt_zyg_req *req, const int *fds, size_t nfd, int64_t t_recv)
{
    if (g_fault == MT_ZYG_FAULT_HAND)
        return false; /* as a failed sendmsg (tests only) */
    uint8_t buf[8 + MT_ZYG_REQ_MAX];
    memcpy(buf, &t_recv, 8);
    size_t len = mt_zyg_req_encode(req, buf + 8, sizeof buf - 8);
    if (!len)
        return false;
    union {
        char b[CMSG_SPACE(sizeof(int) * (MT_ZYG_MAX_DATA_FDS + 1))];
        struct cmsghdr align;
    } cb;
    memset(&cb, 0, sizeof cb);
    struct iovec iov = {.iov_base = buf, .iov_len = 8 + len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.b,
                        .msg_controllen = CMSG_SPACE(sizeof(int) * nfd)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfd);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * nfd);
    ssize_t n;
    while ((n = sendmsg(z->spare_sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == EINTR)
        ;
    explicit_bzero(buf, sizeof buf);
    return n == (ssize_t)(8 + len);
}

/* The receive buffers of serve_one: the request's bytes, its decoded form
 * and its fds' control message, wiped after each request (serve_one), so a
 * later spare or child (a copy of the zygote's memory) holds no other
 * task's request. */
typedef struct serve_buf {
    uint8_t buf[MT_ZYG_REQ_MAX + 1];
    mt_zyg_req req;
    mt_err err;
    union { /* last: clang counts CMSG_SPACE as variable-sized */
        char b[CMSG_SPACE(sizeof(int) * (MT_ZYG_MAX_DATA_FDS + 2))];
        struct cmsghdr align;
    } cb;
} serve_buf;

/* Reads one request and forks its child. Returns 1 in the child, 0 in the
 * zygote, -1 when the daemon is gone. */
static int serve_one_in(zyg *z, mt_zyg_child *child, serve_buf *sb)
{
    uint8_t *buf = sb->buf;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof sb->buf};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = sb->cb.b,
                        .msg_controllen = sizeof sb->cb.b};
    ssize_t n = recvmsg(z->ctl, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1;
    int64_t t_recv = mono_us();
    int fds[MT_ZYG_MAX_DATA_FDS + 2];
    size_t nfd = 0;
    bool excess = false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (nfd < sizeof fds / sizeof fds[0])
                fds[nfd++] = fd;
            else {
                close(fd);
                excess = true;
            }
        }
    }
    mt_zyg_req *reqp = &sb->req;
    mt_err *errp = &sb->err;
    if (excess || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
        mt_zyg_req_decode(buf, (size_t)n, reqp, errp) != MT_OK || nfd != 2 + (size_t)reqp->n_data) {
        /* refused: closing the report socket tells the daemon */
        close_all(fds, nfd);
        return 0;
    }
    if (z->n == z->cap) {
        size_t nc = z->cap ? z->cap * 2 : 16;
        kid *k = realloc(z->kids, nc * sizeof *k);
        if (!k) {
            close_all(fds, nfd);
            return 0;
        }
        z->kids = k;
        z->cap = nc;
    }
    pid_t pid = -1;
    if (z->spare_pid > 0) {
        if (spare_hand(z, reqp, fds + 1, nfd - 1, t_recv)) {
            pid = z->spare_pid;
            z->spare_pid = -1;
            close(z->spare_sock); /* the spare still reads what was sent */
            z->spare_sock = -1;
        } else {
            spare_drop(z, true); /* it died or is stuck: fork for this request */
        }
    }
    if (pid < 0) {
        pid_t zpid = getpid();
        pid = fork();
        if (pid == 0) {
            int64_t t_child = mono_us();
            close(fds[0]);
            child_detach(z, zpid);
            child_enter(reqp, fds + 1, nfd - 1, child, t_recv, t_child);
            return 1;
        }
    }
    z->spare_retry = true;
    close_all(fds + 1, nfd - 1);
    if (pid < 0) {
        close(fds[0]);
        return 0;
    }
    z->kids[z->n++] = (kid){.pid = pid, .report = fds[0]};
    mt_zyg_report r = {.type = MT_ZYG_STARTED, .pid = pid};
    send_report(fds[0], &r);
    return 0;
}

static int serve_one(zyg *z, mt_zyg_child *child)
{
    serve_buf sb;
    memset(&sb, 0, sizeof sb);
    int r = serve_one_in(z, child, &sb);
    explicit_bzero(&sb, sizeof sb);
    return r;
}

mt_status mt_zygote_serve(int ctl_fd, const mt_zyg_hook *hooks, size_t n_hooks,
                          mt_zyg_child *child, mt_err *err)
{
    zyg z = {.ctl = ctl_fd, .sfd = -1, .spare_pid = -1, .spare_sock = -1, .spare_retry = true,
             .hooks = hooks, .n_hooks = n_hooks};
    memset(child, 0, sizeof *child);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, &z.old_mask) != 0 ||
        (z.sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
        return mt_err_set(err, MT_EINTERNAL, "zygote: signalfd failed: %s", strerror(errno));
    /* the zygote itself: no core files, no privilege gain, not ptraceable */
    struct rlimit core0 = {0, 0};
    if (setrlimit(RLIMIT_CORE, &core0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return mt_err_set(err, MT_EINTERNAL, "zygote: hardening failed: %s", strerror(errno));
    for (int r = 0; r < RLIM_NLIMITS; r++)
        if (getrlimit((__rlimit_resource_t)r, &g_base_rl[r]) != 0)
            return mt_err_set(err, MT_EINTERNAL, "zygote: getrlimit(%d) failed: %s", r,
                              strerror(errno));
    for (size_t i = 0; i < n_hooks; i++) {
        mt_status st = hooks[i].init ? hooks[i].init(err) : MT_OK;
        if (st != MT_OK)
            return mt_err_prefix(err, st, "zygote: init of '%s': ", hooks[i].executor_type);
    }
    struct pollfd *pf = NULL;
    size_t pf_cap = 0;
    bool draining = false;
    for (;;) {
        if (pf_cap < z.n + 2) {
            size_t nc = z.n + 2 + 16;
            struct pollfd *p = realloc(pf, nc * sizeof *p);
            if (!p) {
                struct timespec ts = {0, 10000000};
                nanosleep(&ts, NULL);
                continue;
            }
            pf = p;
            pf_cap = nc;
        }
        if (draining && z.n == 0)
            break; /* out of service and no child left */
        /* draining: the control socket is closed (poll ignores fd -1) */
        pf[0] = (struct pollfd){.fd = draining ? -1 : z.ctl, .events = POLLIN};
        pf[1] = (struct pollfd){.fd = z.sfd, .events = POLLIN};
        size_t np = 2;
        for (size_t i = 0; i < z.n; i++)
            pf[np++] = (struct pollfd){.fd = z.kids[i].report, .events = POLLIN};
        /* without a spare, fork one once the zygote is idle: at once when
         * no child runs and none ended just now, else after SPARE_IDLE_MS
         * without any event. Not while a child just started, nor just
         * after one was reaped (the daemon is then storing its outcome):
         * the fork (page tables copied, ~0.4 ms of CPU) would compete with
         * the child and with the daemon for the CPUs; a request meanwhile
         * is forked for as before. */
        bool want_spare = !draining && z.spare_pid < 0 && z.spare_retry;
        int pr = poll(pf, np, want_spare ? (z.n || z.reaped ? SPARE_IDLE_MS : 0) : -1);
        if (pr == 0)
            z.reaped = false;
        if (pr < 0 && errno != EINTR)
            break;
        if (pr == 0 && want_spare) {
            if (spare_fork(&z, child) == 1) {
                free(pf);
                return MT_OK; /* in the spare, handed its request and sandboxed */
            }
            if (z.spare_pid < 0)
                z.spare_retry = false; /* fork failed: again after the next request */
            continue;
        }
        if (pr <= 0)
            continue;
        /* kill requests first: the kids array is unchanged since poll */
        for (size_t i = 0; i + 2 < np && i < z.n; i++) {
            if (!(pf[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) || z.kids[i].report < 0)
                continue;
            char b[16];
            ssize_t r = recv(z.kids[i].report, b, sizeof b, MSG_DONTWAIT);
            if (r > 0 && memchr(b, 'K', (size_t)r)) {
                kill(z.kids[i].pid, SIGKILL); /* not reaped yet: the pid is still ours */
            } else if (r > 0 && memchr(b, 'U', (size_t)r)) {
                send_usage(&z.kids[i]); /* not reaped yet either */
            } else if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                /* the daemon gave up on this worker */
                kill(z.kids[i].pid, SIGKILL);
                close(z.kids[i].report);
                z.kids[i].report = -1;
            }
        }
        if (pf[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(z.sfd, &si, sizeof si) > 0)
                ;
            explicit_bzero(&si, sizeof si); /* a child's pid and status */
            reap(&z);
        }
        if (!draining && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            int r = serve_one(&z, child);
            if (r == 1) {
                free(pf);
                return MT_OK; /* in the child, sandboxed */
            }
            if (r < 0) {
                /* no more requests: the daemon took this zygote out of
                 * service, or it ended. Running children go on; each is
                 * killed when the daemon closes its report socket, which
                 * the kernel does for every one when the daemon ends. */
                draining = true;
                close(z.ctl);
                z.ctl = -1;
                spare_drop(&z, true);
            }
        }
    }
    /* poll failed (or drained): no child outlives the zygote's service */
    spare_drop(&z, true);
    for (size_t i = 0; i < z.n; i++)
        kill(z.kids[i].pid, SIGKILL);
    _exit(0);
}
