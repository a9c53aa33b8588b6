/* Unit tests of pre-forked workers (zygote.h, zygote_server.h, zygote_proto.h):
 * every task a fresh process with nothing of an earlier task, the seccomp
 * filter active in the child, a killed zygote restarted (or the task failed
 * cleanly), garbage on the zygote's control socket refused, the old
 * posix_spawn path still selectable, a zygote taken out of service (a failed
 * start, --zygote-max-tasks) without disturbing the task running in it, and
 * the zygote's drain (its children finish; killed when the daemon's end of
 * their report sockets closes). No timing thresholds. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "job_codec.h"
#include "mt_executor.h"
#include "mt_util.h"
#include "zygote.h"
#include "zygote_proto.h"
#include "zygote_server.h"

static mt_job job_of(const char *fn, const char *worker)
{
    mt_job j = {0};
    j.task_id = "00000000000000000000000000000001";
    j.executor_type = "builtin";
    j.function = fn;
    j.worker_path = worker;
    j.limits.wall_ms = 60000;
    return j;
}

/* Runs fn on the test worker; returns the result (caller clears it). */
static mt_job_result run_fn(const char *fn, bool (*cancel)(void *), void *arg)
{
    mt_job j = job_of(fn, MT_WORKER_TEST_PATH);
    mt_job_result r;
    mt_err err = {0};
    assert_int_equal(mt_executor_run(&j, cancel, arg, &r, &err), MT_OK);
    return r;
}

static int parse_pid(const char *rv)
{
    int pid = 0;
    assert_non_null(rv);
    assert_int_equal(sscanf(rv, "pid=%d ", &pid), 1);
    return pid;
}

/* ---- the protocol's readers ---------------------------------------------- */

static void test_proto(void **state)
{
    (void)state;
    mt_zyg_req q = {.flags = MT_ZYG_LOCK_EARLY, .mem_bytes = 1ULL << 30, .cpu_seconds = 10,
                    .n_data = 3, .target = {4, 5, 9}};
    uint8_t b[MT_ZYG_REQ_MAX];
    size_t n = mt_zyg_req_encode(&q, b, sizeof b);
    assert_int_equal(n, MT_ZYG_REQ_HEAD + 6);
    mt_zyg_req d;
    mt_err err = {0};
    assert_int_equal(mt_zyg_req_decode(b, n, &d, &err), MT_OK);
    assert_int_equal(d.n_data, 3);
    assert_int_equal(d.target[2], 9);
    assert_int_equal(d.mem_bytes, 1ULL << 30);
    /* every truncation and one extra byte */
    for (size_t k = 0; k < n; k++)
        assert_int_equal(mt_zyg_req_decode(b, k, &d, &err), MT_EINVAL);
    b[n] = 0;
    assert_int_equal(mt_zyg_req_decode(b, n + 1, &d, &err), MT_EINVAL);
    /* each field out of range */
    struct {
        size_t off;
        uint8_t v;
        const char *what;
    } bad[] = {{0, 'X', "magic"},       {4, 4, "flags"},        {8 + 7, 0xff, "mem_bytes"},
               {16, 0, "cpu_seconds"},  {20, 4, "n_data"},      {24, 3, "target"},
               {28, 4, "target"},       {29, 0x7f, "target"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t c[MT_ZYG_REQ_MAX];
        memcpy(c, b, n);
        if (bad[i].off == 16)
            memset(c + 16, 0, 4);
        else
            c[bad[i].off] = bad[i].v;
        err.msg[0] = 0;
        assert_int_equal(mt_zyg_req_decode(c, n, &d, &err), MT_EINVAL);
        assert_true(err.msg[0] != 0);
    }
    /* an invalid request is not even encoded */
    q.target[1] = 4;
    assert_int_equal(mt_zyg_req_encode(&q, b, sizeof b), 0);

    mt_zyg_report r = {.type = MT_ZYG_EXITED, .pid = 42, .status = 9 << 8, .utime_us = 5,
                       .maxrss_kb = 1000};
    uint8_t rb[MT_ZYG_REPORT_LEN];
    mt_zyg_report_encode(&r, rb);
    mt_zyg_report o;
    assert_int_equal(mt_zyg_report_decode(rb, sizeof rb, &o, &err), MT_OK);
    assert_int_equal(o.pid, 42);
    assert_int_equal(o.status, 9 << 8);
    assert_int_equal(mt_zyg_report_decode(rb, sizeof rb - 1, &o, &err), MT_EINVAL);
    rb[0] = 7;
    assert_int_equal(mt_zyg_report_decode(rb, sizeof rb, &o, &err), MT_EINVAL);
    r.type = MT_ZYG_STARTED; /* "started" with exit fields */
    mt_zyg_report_encode(&r, rb);
    assert_int_equal(mt_zyg_report_decode(rb, sizeof rb, &o, &err), MT_EINVAL);
    /* "usage": CPU time and peak RSS, never a status or a separate stime */
    r = (mt_zyg_report){.type = MT_ZYG_USAGE, .pid = 42, .utime_us = 1234, .maxrss_kb = 900};
    mt_zyg_report_encode(&r, rb);
    assert_int_equal(mt_zyg_report_decode(rb, sizeof rb, &o, &err), MT_OK);
    assert_int_equal(o.type, MT_ZYG_USAGE);
    assert_int_equal(o.utime_us, 1234);
    assert_int_equal(o.maxrss_kb, 900);
    r.status = 9;
    mt_zyg_report_encode(&r, rb);
    assert_int_equal(mt_zyg_report_decode(rb, sizeof rb, &o, &err), MT_EINVAL);
    r.status = 0;
    r.stime_us = 1;
    mt_zyg_report_encode(&r, rb);
    assert_int_equal(mt_zyg_report_decode(rb, sizeof rb, &o, &err), MT_EINVAL);
    /* MT_ZYG_AWAIT_KILL is a known flag */
    q.flags = MT_ZYG_LOCK_EARLY | MT_ZYG_AWAIT_KILL;
    q.target[1] = 5; /* valid again */
    n = mt_zyg_req_encode(&q, b, sizeof b);
    assert_int_equal(n, MT_ZYG_REQ_HEAD + 6);
    assert_int_equal(mt_zyg_req_decode(b, n, &d, &err), MT_OK);
    assert_int_equal(d.flags, MT_ZYG_LOCK_EARLY | MT_ZYG_AWAIT_KILL);
}

/* ---- fresh process per task ---------------------------------------------- */

/* Polls (up to 60 s) until pid is gone: a task's worker without outputs is
 * killed and reaped by the zygote once the daemon has its result and usage
 * (MT_ZYG_AWAIT_KILL), on the zygote's own time. */
static bool wait_gone(pid_t pid)
{
    for (int i = 0; i < 6000 && kill(pid, 0) == 0; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return kill(pid, 0) == -1;
}

static void test_fresh_process(void **state)
{
    (void)state;
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    int pids[3];
    pid_t z = 0;
    for (int i = 0; i < 3; i++) {
        mt_job_result r = run_fn("__test_state", NULL, NULL);
        assert_true(r.ok);
        pids[i] = parse_pid(r.return_value);
        /* nothing a previous task wrote: static state and freed heap */
        assert_non_null(strstr(r.return_value, " calls=1 prev=(none) heap=(none)"));
        mt_job_result_clear(&r);
        pid_t zi = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
        assert_true(zi > 0);
        assert_true(zi != pids[i]);
        if (i)
            assert_int_equal(zi, z); /* the same zygote served every task */
        z = zi;
        for (int k = 0; k < i; k++)
            assert_true(pids[k] != pids[i]);
        assert_true(wait_gone(pids[i])); /* the worker is gone */
    }
}

/* the seccomp filter is active in a zygote's child and a spawned worker */
static void test_seccomp_both_paths(void **state)
{
    (void)state;
    mt_worker_start modes[] = {MT_WORKER_START_ZYGOTE, MT_WORKER_START_SPAWN};
    for (size_t i = 0; i < 2; i++) {
        mt_executor_set_worker_start(modes[i]);
        mt_job_result r = run_fn("__test_open", NULL, NULL);
        assert_false(r.ok);
        assert_string_equal(r.failure_reason, "sandbox violation: forbidden system call (SIGSYS)");
        mt_job_result_clear(&r);
        r = run_fn("__test_crash", NULL, NULL);
        assert_non_null(strstr(r.failure_reason, "SIGSEGV"));
        mt_job_result_clear(&r);
    }
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
}

/* the spawn path forks nothing from the zygote */
static void test_spawn_mode(void **state)
{
    (void)state;
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    mt_job_result r = run_fn("__test_state", NULL, NULL);
    assert_true(r.ok);
    mt_job_result_clear(&r);
    pid_t z = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    assert_true(z > 0);
    mt_executor_set_worker_start(MT_WORKER_START_SPAWN);
    r = run_fn("__test_state", NULL, NULL);
    assert_true(r.ok);
    assert_non_null(strstr(r.return_value, " calls=1 prev=(none) heap=(none)"));
    mt_job_result_clear(&r);
    assert_int_equal(mt_executor_zygote_pid(MT_WORKER_TEST_PATH), z);
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    mt_worker_start m;
    assert_true(mt_worker_start_parse("spawn", &m) && m == MT_WORKER_START_SPAWN);
    assert_true(mt_worker_start_parse("zygote", &m) && m == MT_WORKER_START_ZYGOTE);
    assert_false(mt_worker_start_parse("Zygote", &m));
    assert_false(mt_worker_start_parse("", &m));
    assert_false(mt_worker_start_parse(NULL, &m));
}

/* ---- a killed zygote ------------------------------------------------------ */

static void test_zygote_killed(void **state)
{
    (void)state;
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    mt_job_result r = run_fn("__test_state", NULL, NULL);
    assert_true(r.ok);
    mt_job_result_clear(&r);
    pid_t z = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    assert_true(z > 0);
    assert_int_equal(kill(z, SIGKILL), 0);
    /* the next task runs in a new zygote's child */
    r = run_fn("__test_state", NULL, NULL);
    assert_true(r.ok);
    assert_non_null(strstr(r.return_value, " calls=1 prev=(none) heap=(none)"));
    mt_job_result_clear(&r);
    pid_t z2 = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    assert_true(z2 > 0 && z2 != z);
}

/* kills the zygote on the first cancellation check, never cancels */
static bool kill_zygote_once(void *arg)
{
    int *done = arg;
    if (!*done) {
        pid_t z = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
        if (z > 0 && kill(z, SIGKILL) == 0)
            *done = 1;
    }
    return false;
}

static void test_zygote_killed_mid_task(void **state)
{
    (void)state;
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    int done = 0;
    mt_job_result r = run_fn("__test_spin", kill_zygote_once, &done);
    assert_int_equal(done, 1);
    /* the worker died with its zygote: a clean failure, not a hang */
    assert_false(r.ok);
    assert_false(r.canceled);
    assert_non_null(strstr(r.failure_reason, "zygote"));
    mt_job_result_clear(&r);
    r = run_fn("__test_state", NULL, NULL);
    assert_true(r.ok);
    mt_job_result_clear(&r);
}

/* a worker executable that cannot be a zygote: the task fails to start */
static void test_broken_zygote(void **state)
{
    (void)state;
    char dir[] = "/tmp/mt_zyg_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/worker", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\nexit 3\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0700), 0);
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    mt_job j = job_of("echo", path);
    j.arguments = json_pack("{s:s}", "message", "x");
    mt_job_result r;
    mt_err err = {0};
    assert_int_not_equal(mt_executor_run(&j, NULL, NULL, &r, &err), MT_OK);
    assert_non_null(strstr(err.msg, "zygote"));
    json_decref(j.arguments);
    unlink(path);
    rmdir(dir);
}

/* more worker executables than zygote slots: the extra one is spawned, no
 * running zygote is ended */
static void test_slots_full(void **state)
{
    (void)state;
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    char dir[] = "/tmp/mt_zyg_XXXXXX", path[6][64];
    assert_non_null(mkdtemp(dir));
    pid_t z[6];
    int spawned = 0;
    for (int i = 0; i < 6; i++) {
        snprintf(path[i], sizeof path[i], "%s/w%d", dir, i);
        assert_int_equal(symlink(MT_WORKER_TEST_PATH, path[i]), 0);
        mt_job j = job_of("__test_state", path[i]);
        mt_job_result r;
        assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
        assert_true(r.ok);
        mt_job_result_clear(&r);
        z[i] = mt_executor_zygote_pid(path[i]);
        spawned += z[i] == 0;
    }
    assert_true(spawned >= 2); /* 4 slots, one held by the test worker's zygote */
    for (int i = 0; i < 6; i++) {
        if (z[i])
            assert_int_equal(kill(z[i], 0), 0); /* still serving */
        assert_int_equal(mt_executor_zygote_pid(path[i]), z[i]);
        unlink(path[i]);
    }
    rmdir(dir);
}

/* ---- garbage on a zygote's control socket --------------------------------- */

static pid_t start_zygote_with(int *ctl, char *mode, char *fault);

static pid_t start_zygote(int *ctl)
{
    return start_zygote_with(ctl, "--zygote", NULL);
}

/* a zygote of the test worker; mode: --zygote[=native|=python]; fault: its
 * --test-fault= option or NULL */
static pid_t start_zygote_with(int *ctl, char *mode, char *fault)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
    /* as the daemon starts it (zygote.c): nothing else of this process */
    posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    char *argv[] = {"mesatee-worker", mode, fault, NULL}, *envp[] = {NULL};
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, MT_WORKER_TEST_PATH, &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    *ctl = sv[0];
    return pid;
}

static void send_with_fds(int ctl, const void *buf, size_t len, const int *fds, size_t nfd)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } cb;
    memset(&cb, 0, sizeof cb);
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfd) {
        mh.msg_control = cb.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfd);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfd);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfd);
    }
    assert_int_equal(sendmsg(ctl, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* recv on the report socket: the length read (0 = closed) */
static ssize_t report_of(int fd, uint8_t *b)
{
    ssize_t n;
    while ((n = recv(fd, b, MT_ZYG_REPORT_LEN + 1, 0)) < 0 && errno == EINTR)
        ;
    return n;
}

/* Polls (up to 60 s) until pid sleeps with its memory (/proc/PID/status
 * "State:\tS" and a "VmHWM:" line); false once it is gone or exiting. */
static bool sleeps_with_memory(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    for (int i = 0; i < 6000; i++) {
        FILE *f = fopen(path, "r");
        if (!f)
            return false;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        if (!strstr(buf, "\nVmHWM:"))
            return false; /* exiting: its memory is gone */
        if (strstr(buf, "\nState:\tS"))
            return true;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void test_zygote_garbage(void **state)
{
    (void)state;
    int ctl;
    pid_t zp = start_zygote(&ctl);
    mt_zyg_req q = {.mem_bytes = 1ULL << 30, .cpu_seconds = 10, .n_data = 0};
    uint8_t good[MT_ZYG_REQ_MAX], bad[MT_ZYG_REQ_MAX];
    size_t gl = mt_zyg_req_encode(&q, good, sizeof good);
    assert_true(gl > 0);
    struct {
        const char *what;
        int nfd;      /* fds attached: report, chan, extra */
        int corrupt;  /* byte offset to flip, -1 none */
        size_t len;
    } cases[] = {{"bad magic", 2, 0, 0},       {"no fds", 0, -1, 0},
                 {"one fd too few", 1, -1, 0}, {"one fd too many", 3, -1, 0},
                 {"truncated", 2, -1, 10},     {"flags", 2, 5, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rs[2], ch[2], extra = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rs), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch), 0);
        memcpy(bad, good, gl);
        if (cases[i].corrupt >= 0)
            bad[cases[i].corrupt] ^= 0x5a;
        int fds[3] = {rs[1], ch[1], extra};
        send_with_fds(ctl, bad, cases[i].len ? cases[i].len : gl, fds, (size_t)cases[i].nfd);
        close(rs[1]);
        close(ch[1]);
        close(extra);
        uint8_t b[MT_ZYG_REPORT_LEN + 1];
        if (cases[i].nfd > 0)
            assert_int_equal(report_of(rs[0], b), 0); /* refused: closed, no child */
        close(rs[0]);
        close(ch[0]);
        assert_int_equal(kill(zp, 0), 0); /* the zygote lives on */
    }
    /* then a valid request still forks a sandboxed child, which refuses a
     * garbage job through its channel and exits */
    int rs[2], ch[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rs), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch), 0);
    q.flags = MT_ZYG_LOCK_EARLY;
    gl = mt_zyg_req_encode(&q, good, sizeof good);
    int fds[2] = {rs[1], ch[1]};
    send_with_fds(ctl, good, gl, fds, 2);
    close(rs[1]);
    close(ch[1]);
    uint8_t b[MT_ZYG_REPORT_LEN + 1];
    mt_zyg_report rep;
    assert_int_equal(report_of(rs[0], b), MT_ZYG_REPORT_LEN);
    assert_int_equal(mt_zyg_report_decode(b, MT_ZYG_REPORT_LEN, &rep, NULL), MT_OK);
    assert_int_equal(rep.type, MT_ZYG_STARTED);
    pid_t child = rep.pid;
    assert_true(child != zp);
    /* 'U' while the child waits for its job: its usage so far (its CPU
     * time, its peak RSS), no status; it runs on */
    assert_int_equal(send(rs[0], "U", 1, MSG_NOSIGNAL), 1);
    assert_int_equal(report_of(rs[0], b), MT_ZYG_REPORT_LEN);
    assert_int_equal(mt_zyg_report_decode(b, MT_ZYG_REPORT_LEN, &rep, NULL), MT_OK);
    assert_int_equal(rep.type, MT_ZYG_USAGE);
    assert_int_equal(rep.pid, child);
    assert_int_equal(rep.status, 0);
    assert_true(rep.maxrss_kb > 0);
    assert_int_equal(kill(child, 0), 0);
    assert_int_equal(write(ch[0], "{garbage", 8), 8);
    shutdown(ch[0], SHUT_WR);
    char out[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof out - 1 && (n = read(ch[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = 0;
    assert_non_null(strstr(out, "\"ok\":false"));
    assert_int_equal(report_of(rs[0], b), MT_ZYG_REPORT_LEN);
    assert_int_equal(mt_zyg_report_decode(b, MT_ZYG_REPORT_LEN, &rep, NULL), MT_OK);
    assert_int_equal(rep.type, MT_ZYG_EXITED);
    assert_int_equal(rep.pid, child);
    assert_true(WIFEXITED(rep.status) && WEXITSTATUS(rep.status) == 0);
    close(rs[0]);
    close(ch[0]);
    /* MT_ZYG_AWAIT_KILL: after its result the child closes the channel (EOF
     * while it lives on) and waits; 'U' then has its usage, and when the
     * daemon's end of the report socket closes the zygote kills it */
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rs), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch), 0);
    q.flags = MT_ZYG_LOCK_EARLY | MT_ZYG_AWAIT_KILL;
    gl = mt_zyg_req_encode(&q, good, sizeof good);
    int fds2[2] = {rs[1], ch[1]};
    send_with_fds(ctl, good, gl, fds2, 2);
    close(rs[1]);
    close(ch[1]);
    assert_int_equal(report_of(rs[0], b), MT_ZYG_REPORT_LEN);
    assert_int_equal(mt_zyg_report_decode(b, MT_ZYG_REPORT_LEN, &rep, NULL), MT_OK);
    assert_int_equal(rep.type, MT_ZYG_STARTED);
    child = rep.pid;
    assert_int_equal(write(ch[0], "{garbage", 8), 8);
    shutdown(ch[0], SHUT_WR);
    got = 0;
    while (got < sizeof out - 1 && (n = read(ch[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = 0;
    assert_non_null(strstr(out, "\"ok\":false"));
    assert_true(sleeps_with_memory(child)); /* after its EOF it waits to be killed */
    assert_int_equal(send(rs[0], "U", 1, MSG_NOSIGNAL), 1);
    assert_int_equal(report_of(rs[0], b), MT_ZYG_REPORT_LEN);
    assert_int_equal(mt_zyg_report_decode(b, MT_ZYG_REPORT_LEN, &rep, NULL), MT_OK);
    assert_int_equal(rep.type, MT_ZYG_USAGE); /* alive after its EOF, with its memory */
    assert_int_equal(rep.pid, child);
    assert_true(rep.maxrss_kb > 0);
    close(rs[0]);
    close(ch[0]);
    assert_true(wait_gone(child)); /* killed and reaped by the zygote */
    /* the daemon's end closes: the zygote exits */
    close(ctl);
    int ws;
    assert_int_equal(waitpid(zp, &ws, 0), zp);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* ---- a zygote out of service: running workers go on ---------------------- */

/* The seccomp mode of pid (/proc/PID/status "Seccomp:"), -1 when gone. */
static int seccomp_mode(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int mode = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Seccomp: %d", &mode) == 1)
            break;
    fclose(f);
    return mode;
}

/* The one child process of zp that is sandboxed (want_locked: the running
 * worker, seccomp filter mode 2) or not (the spare waiting for a request),
 * or 0. */
static pid_t child_of_kind(pid_t zp, bool want_locked)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    pid_t found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *rp = strrchr(buf, ')');
        int ppid = 0, pid = atoi(buf);
        char st;
        if (rp && sscanf(rp + 1, " %c %d", &st, &ppid) == 2 && ppid == zp && st != 'Z' &&
            (seccomp_mode(pid) == 2) == want_locked)
            found = pid;
    }
    closedir(d);
    return found;
}

/* Polls (up to 60 s) for such a child other than `not`: a new child
 * places its fds and loads its filter on its own time. */
static pid_t wait_child(pid_t zp, bool want_locked, pid_t not)
{
    for (int i = 0; i < 6000; i++) {
        pid_t p = child_of_kind(zp, want_locked);
        if (p > 0 && p != not)
            return p;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static pid_t child_of(pid_t zp)
{
    return wait_child(zp, true, 0);
}

typedef struct hold {
    int fault;      /* MT_ZYGOTE_FAULT_*, or 0: the nested task only */
    int nested;     /* tasks started while the outer one runs */
    int done;
    pid_t zold, worker, znew;
} hold;

/* On the first check of the outer task: stops its worker (so it surely runs
 * throughout), makes a start fail (or exhausts the zygote's task budget),
 * starts other tasks, checks, then lets the worker go on. Never cancels. */
static bool start_others_while_running(void *arg)
{
    hold *h = arg;
    if (h->done)
        return false;
    h->done = 1;
    h->zold = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    assert_true(h->zold > 0);
    h->worker = child_of(h->zold);
    assert_true(h->worker > 0);
    assert_int_equal(kill(h->worker, SIGSTOP), 0);
    mt_zygote_test_fault(h->fault);
    for (int i = 0; i < h->nested; i++) {
        mt_job_result r = run_fn("__test_state", NULL, NULL);
        assert_true(r.ok);
        mt_job_result_clear(&r);
    }
    h->znew = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    assert_true(h->znew > 0 && h->znew != h->zold); /* a new zygote serves */
    assert_int_equal(kill(h->zold, 0), 0);           /* the old one drains */
    assert_int_equal(kill(h->worker, 0), 0);         /* its worker lives */
    assert_int_equal(kill(h->worker, SIGCONT), 0);
    return false;
}

static mt_job_result run_sleep_with(hold *h)
{
    mt_job j = job_of("__test_sleep", MT_WORKER_TEST_PATH);
    j.arguments = json_pack("{s:s}", "ms", "1500");
    mt_job_result r;
    mt_err err = {0};
    assert_int_equal(mt_executor_run(&j, start_others_while_running, h, &r, &err), MT_OK);
    json_decref(j.arguments);
    return r;
}

/* a start that fails (send error, or no "started" answer) takes the zygote
 * out of service without killing it: the task running in it finishes */
static void test_start_failure_spares_running(void **state)
{
    (void)state;
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    int faults[] = {MT_ZYGOTE_FAULT_SEND, MT_ZYGOTE_FAULT_STARTED};
    for (size_t i = 0; i < 2; i++) {
        mt_job_result r = run_fn("__test_state", NULL, NULL); /* a zygote runs */
        assert_true(r.ok);
        mt_job_result_clear(&r);
        hold h = {.fault = faults[i], .nested = 1};
        r = run_sleep_with(&h);
        assert_int_equal(h.done, 1);
        assert_true(r.ok); /* not "worker lost" */
        assert_string_equal(r.return_value, "slept");
        mt_job_result_clear(&r);
        /* its last worker released, the old zygote is gone; the new serves */
        assert_int_equal(kill(h.zold, 0), -1);
        assert_int_equal(mt_executor_zygote_pid(MT_WORKER_TEST_PATH), h.znew);
    }
}

/* --zygote-max-tasks: a zygote is replaced after N starts, its running
 * worker undisturbed */
static void test_max_tasks(void **state)
{
    (void)state;
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    mt_executor_set_zygote_max_tasks(2);
    pid_t z[5];
    for (int i = 0; i < 5; i++) {
        mt_job_result r = run_fn("__test_state", NULL, NULL);
        assert_true(r.ok);
        mt_job_result_clear(&r);
        z[i] = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    }
    /* whatever zygote ran before, at most 2 starts each from here on: the
     * budget ran out at most 2 tasks apart, and no zygote came back */
    int zeros = 0;
    for (int i = 0; i < 5; i++)
        zeros += z[i] == 0;
    assert_true(zeros >= 2);
    for (int i = 0; i + 1 < 5; i++)
        if (z[i] == 0 && z[i + 1] == 0)
            fail_msg("two tasks in a row without a zygote");
    for (int i = 0; i < 5; i++)
        if (z[i])
            for (int k = i + 2; k < 5; k++)
                assert_true(z[k] != z[i]); /* at most 2 tasks per zygote */
    /* a running worker outlives its zygote's retirement: from a state with
     * no zygote in service, the outer task's start and the first nested one
     * end the new zygote's budget of 2, the second nested one gets the next */
    for (int i = 0; i < 3 && mt_executor_zygote_pid(MT_WORKER_TEST_PATH) > 0; i++) {
        mt_job_result r = run_fn("__test_state", NULL, NULL);
        mt_job_result_clear(&r);
    }
    assert_int_equal(mt_executor_zygote_pid(MT_WORKER_TEST_PATH), 0);
    hold h = {.nested = 2};
    mt_job_result r = run_sleep_with(&h);
    assert_true(r.ok);
    mt_job_result_clear(&r);
    assert_int_equal(kill(h.zold, 0), -1);
    mt_executor_set_zygote_max_tasks(0); /* the default again */
}

/* stops the zygote, then cancels: the zygote cannot act on the kill */
static bool stop_zygote_and_cancel(void *arg)
{
    pid_t *z = arg;
    *z = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    assert_true(*z > 0);
    assert_int_equal(kill(*z, SIGSTOP), 0);
    return true;
}

/* a zygote that does not act on a kill request (it hangs) is ended after
 * the grace, so the task's end does not hang; the next task gets a new one */
static void test_zygote_hangs(void **state)
{
    (void)state;
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    mt_zygote_test_kill_grace(100);
    pid_t z = 0;
    mt_job_result r = run_fn("__test_spin", stop_zygote_and_cancel, &z);
    assert_true(r.canceled);
    mt_job_result_clear(&r);
    mt_zygote_test_kill_grace(0);
    r = run_fn("__test_state", NULL, NULL);
    assert_true(r.ok);
    mt_job_result_clear(&r);
    pid_t z2 = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    assert_true(z2 > 0 && z2 != z);
    assert_int_equal(kill(z, 0), -1); /* ended and reaped */
}

/* the zygote forks its next child ahead while idle (the spare: not yet
 * sandboxed, it has no request) and the next task runs in exactly that
 * process, fresh; a spare that died is replaced and the task still runs */
static void test_spare(void **state)
{
    (void)state;
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    /* a zygote of its own, with the default budget (not one an earlier
     * test's --zygote-max-tasks retires during this test) */
    pid_t z0 = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    if (z0 > 0)
        assert_int_equal(kill(z0, SIGKILL), 0);
    mt_job_result r = run_fn("__test_state", NULL, NULL);
    assert_true(r.ok);
    mt_job_result_clear(&r);
    pid_t z = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    assert_true(z > 0 && z != z0);
    pid_t spare = wait_child(z, false, 0);
    assert_true(spare > 0);
    assert_int_equal(seccomp_mode(spare), 0);
    r = run_fn("__test_state", NULL, NULL);
    assert_true(r.ok);
    assert_int_equal(parse_pid(r.return_value), spare);
    assert_non_null(strstr(r.return_value, " calls=1 prev=(none) heap=(none)"));
    mt_job_result_clear(&r);
    assert_true(wait_gone(spare)); /* it ended after its task */
    pid_t next = wait_child(z, false, spare);
    assert_true(next > 0);
    assert_int_equal(kill(next, SIGKILL), 0);
    /* gone (reaped by the zygote): a request handed to a spare that is
     * dying but still has its socket open fails like a worker killed
     * during its task (docs/design.md) */
    for (int i = 0; i < 6000 && kill(next, 0) == 0; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(kill(next, 0), -1);
    r = run_fn("__test_state", NULL, NULL);
    assert_true(r.ok);
    assert_true(parse_pid(r.return_value) != next);
    assert_non_null(strstr(r.return_value, " calls=1 prev=(none) heap=(none)"));
    mt_job_result_clear(&r);
    assert_int_equal(mt_executor_zygote_pid(MT_WORKER_TEST_PATH), z);
    assert_true(wait_child(z, false, next) > 0); /* and a new spare follows */
}

/* What the test saw of the running worker's limits (prlimit from outside:
 * the same user). */
typedef struct lim_probe {
    pid_t z, worker;
    struct rlimit data, msgq;
    int done;
} lim_probe;

static bool probe_limits(void *arg)
{
    lim_probe *p = arg;
    if (p->done)
        return false;
    p->done = 1;
    p->worker = child_of(p->z);
    assert_true(p->worker > 0);
    assert_int_equal(prlimit(p->worker, RLIMIT_DATA, NULL, &p->data), 0);
    assert_int_equal(prlimit(p->worker, RLIMIT_MSGQUEUE, NULL, &p->msgq), 0);
    return false;
}

/* limits changed on a waiting spare from outside (another process of the
 * same user: before the sandbox's prlimit64 rule, a python worker) do not
 * pass on to its task: a changed soft limit is back at the zygote's value
 * when the task runs, a lowered hard limit (which cannot be raised again)
 * fails the task's sandbox set-up; the next spare is clean */
static void test_spare_limits(void **state)
{
    (void)state;
    mt_executor_set_worker_start(MT_WORKER_START_ZYGOTE);
    mt_job_result r = run_fn("__test_state", NULL, NULL);
    assert_true(r.ok);
    mt_job_result_clear(&r);
    pid_t z = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    assert_true(z > 0);
    struct rlimit zdata, zmsgq;
    assert_int_equal(prlimit(z, RLIMIT_DATA, NULL, &zdata), 0);
    assert_int_equal(prlimit(z, RLIMIT_MSGQUEUE, NULL, &zmsgq), 0);
    assert_true(zmsgq.rlim_cur > 1);
    assert_true(zdata.rlim_cur > 1);
    pid_t spare = wait_child(z, false, 0);
    assert_true(spare > 0);
    /* soft limits lowered (hard ones kept: raising back is allowed) */
    struct rlimit low = {.rlim_cur = 1, .rlim_max = zdata.rlim_max};
    assert_int_equal(prlimit(spare, RLIMIT_DATA, &low, NULL), 0);
    low.rlim_max = zmsgq.rlim_max;
    assert_int_equal(prlimit(spare, RLIMIT_MSGQUEUE, &low, NULL), 0);
    mt_job j = job_of("__test_sleep", MT_WORKER_TEST_PATH);
    j.arguments = json_pack("{s:s}", "ms", "1500");
    mt_err err = {0};
    lim_probe p = {.z = z};
    assert_int_equal(mt_executor_run(&j, probe_limits, &p, &r, &err), MT_OK);
    json_decref(j.arguments);
    assert_true(r.ok);
    mt_job_result_clear(&r);
    assert_int_equal(p.done, 1);
    assert_int_equal(p.worker, spare);
    assert_int_equal(p.data.rlim_cur, zdata.rlim_cur);
    assert_int_equal(p.data.rlim_max, zdata.rlim_max);
    assert_int_equal(p.msgq.rlim_cur, zmsgq.rlim_cur);
    assert_int_equal(p.msgq.rlim_max, zmsgq.rlim_max);
    /* a hard limit lowered: the spare cannot restore it and refuses the task */
    spare = wait_child(z, false, spare);
    assert_true(spare > 0);
    low = (struct rlimit){.rlim_cur = 1, .rlim_max = 1};
    assert_int_equal(prlimit(spare, RLIMIT_MSGQUEUE, &low, NULL), 0);
    r = run_fn("__test_state", NULL, NULL);
    assert_false(r.ok);
    assert_non_null(r.failure_reason);
    assert_non_null(strstr(r.failure_reason, "worker sandbox setup failed (limits)"));
    mt_job_result_clear(&r);
    r = run_fn("__test_state", NULL, NULL); /* the next spare is clean */
    assert_true(r.ok);
    mt_job_result_clear(&r);
}

/* Polls (up to 60 s) until pid is named MT_ZYG_SPARE_COMM: past
 * child_detach, waiting for its request. */
static bool spare_waiting(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    for (int i = 0; i < 6000; i++) {
        char comm[32] = "";
        FILE *f = fopen(path, "r");
        if (!f)
            return false;
        bool got = fgets(comm, sizeof comm, f) != NULL;
        fclose(f);
        if (got && strncmp(comm, MT_ZYG_SPARE_COMM "\n", strlen(MT_ZYG_SPARE_COMM) + 1) == 0)
            return true;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* The descriptors of pid other than 0-2 (/proc/PID/fd): each must be a
 * socket; their count. */
static int sockets_beyond_stdio(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0, std = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd <= 2) {
            std++;
            continue;
        }
        char path[400], target[256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        assert_true(k > 0);
        target[k] = 0;
        if (strncmp(target, "socket:", 7) != 0)
            fail_msg("the spare holds fd %d -> %s", fd, target);
        n++;
    }
    closedir(d);
    assert_int_equal(std, 3);
    return n;
}

/* One request to the zygote at ctl: its report socket (the daemon's end),
 * the channel's (*ch) and the STARTED pid. */
static pid_t request_child(int ctl, int *rs_out, int *ch_out)
{
    mt_zyg_req q = {.flags = MT_ZYG_LOCK_EARLY, .mem_bytes = 1ULL << 30, .cpu_seconds = 10};
    uint8_t good[MT_ZYG_REQ_MAX];
    size_t gl = mt_zyg_req_encode(&q, good, sizeof good);
    int rs[2], ch[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rs), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch), 0);
    int fds[2] = {rs[1], ch[1]};
    send_with_fds(ctl, good, gl, fds, 2);
    close(rs[1]);
    close(ch[1]);
    uint8_t b[MT_ZYG_REPORT_LEN + 1];
    mt_zyg_report rep;
    assert_int_equal(report_of(rs[0], b), MT_ZYG_REPORT_LEN);
    assert_int_equal(mt_zyg_report_decode(b, MT_ZYG_REPORT_LEN, &rep, NULL), MT_OK);
    assert_int_equal(rep.type, MT_ZYG_STARTED);
    *rs_out = rs[0];
    *ch_out = ch[0];
    return rep.pid;
}

/* the idle spare holds only stdio and its own socket (nothing of the
 * zygote: control socket, signalfd, report sockets); a request goes to it;
 * when the hand-off fails (fault hook: as a broken spare socket), the
 * zygote kills and reaps the spare and forks a child for the request,
 * which runs sandboxed, and a new spare follows */
static void test_spare_hand_fault(void **state)
{
    (void)state;
    for (int fault = 0; fault < 2; fault++) {
        int ctl;
        /* native: the python hook's imports may run a short-lived child
         * (platform.processor()) that the search for the spare would find */
        pid_t zp = start_zygote_with(&ctl, "--zygote=native",
                                     fault ? "--test-fault=spare-hand" : NULL);
        pid_t spare = wait_child(zp, false, 0);
        assert_true(spare > 0);
        assert_true(spare_waiting(spare));
        assert_int_equal(sockets_beyond_stdio(spare), 1);
        int rs, ch;
        pid_t child = request_child(ctl, &rs, &ch);
        if (!fault) {
            assert_int_equal(child, spare); /* the spare took it */
        } else {
            assert_true(child != spare);
            assert_int_equal(kill(spare, 0), -1); /* killed and reaped before STARTED */
        }
        assert_int_equal(wait_child(zp, true, 0), child); /* sandboxed */
        pid_t next = wait_child(zp, false, spare);
        assert_true(next > 0 && next != child);
        /* ends: the daemon's side closed (the child is killed) */
        close(ctl);
        close(rs);
        close(ch);
        int ws;
        assert_int_equal(waitpid(zp, &ws, 0), zp);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
        assert_int_equal(kill(child, 0), -1);
        assert_int_equal(kill(next, 0), -1);
    }
}

/* the zygote itself: a closed control socket means no more requests; its
 * running child goes on and is reported; a closed report socket (the daemon
 * ended) kills the child; the zygote exits after its last child */
static void test_zygote_drain(void **state)
{
    (void)state;
    for (int daemon_gone = 0; daemon_gone < 2; daemon_gone++) {
        int ctl;
        pid_t zp = start_zygote(&ctl);
        mt_zyg_req q = {.flags = MT_ZYG_LOCK_EARLY, .mem_bytes = 1ULL << 30,
                        .cpu_seconds = 10};
        uint8_t good[MT_ZYG_REQ_MAX];
        size_t gl = mt_zyg_req_encode(&q, good, sizeof good);
        int rs[2], ch[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rs), 0);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ch), 0);
        int fds[2] = {rs[1], ch[1]};
        send_with_fds(ctl, good, gl, fds, 2);
        close(rs[1]);
        close(ch[1]);
        uint8_t b[MT_ZYG_REPORT_LEN + 1];
        mt_zyg_report rep;
        assert_int_equal(report_of(rs[0], b), MT_ZYG_REPORT_LEN);
        assert_int_equal(mt_zyg_report_decode(b, MT_ZYG_REPORT_LEN, &rep, NULL), MT_OK);
        assert_int_equal(rep.type, MT_ZYG_STARTED);
        pid_t child = rep.pid;
        pid_t spare = wait_child(zp, false, child); /* forked ahead once idle */
        assert_true(spare > 0);
        close(ctl); /* out of service (or the daemon ended) */
        if (daemon_gone) {
            close(rs[0]); /* the daemon's end closes every report socket */
        } else {
            /* the spare is killed and reaped at once (spare_drop), while
             * the zygote still runs (its child has not ended): not merely
             * killed with the zygote by PDEATHSIG */
            for (int i = 0; i < 6000 && kill(spare, 0) == 0; i++) {
                struct timespec ts = {0, 10000000};
                nanosleep(&ts, NULL);
            }
            assert_int_equal(kill(spare, 0), -1);
            /* the child waits for its job: both still there, then it ends
             * normally and the zygote reports it */
            assert_int_equal(kill(zp, 0), 0);
            assert_int_equal(kill(child, 0), 0);
            assert_int_equal(write(ch[0], "{garbage", 8), 8);
            shutdown(ch[0], SHUT_WR);
            assert_int_equal(report_of(rs[0], b), MT_ZYG_REPORT_LEN);
            assert_int_equal(mt_zyg_report_decode(b, MT_ZYG_REPORT_LEN, &rep, NULL), MT_OK);
            assert_int_equal(rep.type, MT_ZYG_EXITED);
            assert_int_equal(rep.pid, child);
            assert_true(WIFEXITED(rep.status) && WEXITSTATUS(rep.status) == 0);
            close(rs[0]);
        }
        int ws;
        assert_int_equal(waitpid(zp, &ws, 0), zp);
        assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
        assert_int_equal(kill(child, 0), -1); /* reaped by the zygote before it exited */
        assert_int_equal(kill(spare, 0), -1); /* the spare killed and reaped at once */
        close(ch[0]);
    }
}

/* Writes a /proc/PID/status-like file: `groups` supplementary groups on the
 * Groups: line (before VmHWM, as the kernel orders them), VmHWM when
 * `hwm`, padding lines after it up to `pad` bytes. Returns its path. */
static void write_status(char *path, size_t groups, int hwm, size_t pad)
{
    strcpy(path, "/tmp/mt-test-status-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f, "Name:\tmesatee-worker\nUmask:\t0022\nState:\tS (sleeping)\n"
               "Pid:\t4242\nFDSize:\t64\nGroups:\t");
    for (size_t i = 0; i < groups; i++)
        fprintf(f, "%zu ", 1000000 + i);
    fprintf(f, "\nNStgid:\t4242\nVmPeak:\t  123456 kB\nVmSize:\t  123000 kB\n");
    if (hwm)
        fprintf(f, "VmHWM:\t    7654 kB\nVmRSS:\t    7000 kB\n");
    while (ftell(f) < (long)pad)
        fprintf(f, "Padding:\t0\n");
    fprintf(f, "Threads:\t1\n");
    assert_int_equal(fclose(f), 0);
}

/* mt_zyg_status_vm_hwm, the 'U' answer's peak RSS: the whole file is read,
 * so a long Groups: line (~1000 groups, ~8 KB) before VmHWM does not make a
 * living worker look "exiting" (no answer; it waited for its 10 s exit). */
static void test_status_vm_hwm(void **state)
{
    (void)state;
    char path[64];
    uint64_t kb = 0;
    write_status(path, 3, 1, 0);
    assert_int_equal(mt_zyg_status_vm_hwm(path, &kb), 1);
    assert_int_equal(kb, 7654);
    unlink(path);
    kb = 0;
    write_status(path, 1000, 1, 0);
    assert_int_equal(mt_zyg_status_vm_hwm(path, &kb), 1);
    assert_int_equal(kb, 7654);
    unlink(path);
    /* read whole without VmHWM: the process has no memory (exiting) */
    write_status(path, 1000, 0, 0);
    assert_int_equal(mt_zyg_status_vm_hwm(path, &kb), 0);
    unlink(path);
    /* longer than MT_ZYG_STATUS_MAX, VmHWM beyond it: unknown, not exiting */
    write_status(path, 9000, 1, 0);
    assert_int_equal(mt_zyg_status_vm_hwm(path, &kb), -1);
    unlink(path);
    /* long but with VmHWM inside the bound; padding after it */
    kb = 0;
    write_status(path, 10, 1, 2 * MT_ZYG_STATUS_MAX);
    assert_int_equal(mt_zyg_status_vm_hwm(path, &kb), 1);
    assert_int_equal(kb, 7654);
    unlink(path);
    /* the VmHWM line cut by the bound ("VmHWM:\t  76" at its last bytes):
     * unknown (answered with RSS 0), not a malformed line meaning exiting */
    {
        static const char tail[] = "\nVmHWM:\t  76";
        strcpy(path, "/tmp/mt-test-status-XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        assert_non_null(f);
        fprintf(f, "Name:\tmesatee-worker\nGroups:\t");
        while (ftell(f) < (long)(MT_ZYG_STATUS_MAX - (sizeof tail - 1)))
            fputc(ftell(f) % 8 ? '1' : ' ', f);
        fputs(tail, f);
        assert_int_equal(ftell(f), (long)MT_ZYG_STATUS_MAX);
        fputs("54 kB\nVmRSS:\t 7000 kB\n", f);
        assert_int_equal(fclose(f), 0);
        assert_int_equal(mt_zyg_status_vm_hwm(path, &kb), -1);
        unlink(path);
    }
    assert_int_equal(mt_zyg_status_vm_hwm("/nonexistent/mt-status", &kb), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto),
        cmocka_unit_test(test_status_vm_hwm),
        cmocka_unit_test(test_fresh_process),
        cmocka_unit_test(test_seccomp_both_paths),
        cmocka_unit_test(test_spawn_mode),
        cmocka_unit_test(test_zygote_killed),
        cmocka_unit_test(test_zygote_killed_mid_task),
        cmocka_unit_test(test_broken_zygote),
        cmocka_unit_test(test_slots_full),
        cmocka_unit_test(test_zygote_garbage),
        cmocka_unit_test(test_start_failure_spares_running),
        cmocka_unit_test(test_max_tasks),
        cmocka_unit_test(test_spare),
        cmocka_unit_test(test_spare_limits),
        cmocka_unit_test(test_spare_hand_fault),
        cmocka_unit_test(test_zygote_drain),
        cmocka_unit_test(test_zygote_hangs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
