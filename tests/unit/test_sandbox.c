/* Unit tests of the worker's seccomp program built once (sandbox.h,
 * mt_sandbox_prepare, issue 13): the prepared program with a pid filled in
 * is byte for byte the program compiled for that pid, and a process that
 * loaded it is confined exactly so (open, fork and a signal to another
 * process kill it; its own work and signals to itself do not), and both
 * filters (native/wasm and python) confine prlimit64 to the process itself:
 * a worker cannot change the limits of its parent (the zygote), of the
 * waiting spare or of another worker, while getrlimit/setrlimit on itself
 * still work under the python filter; shutdown is allowed on the channel
 * (fd 3) only. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox.h"

static void test_prepared_equals_compiled(void **state)
{
    (void)state;
    mt_err err = {0};
    void *p = NULL;
    size_t plen = 0;
    /* nothing prepared yet: refused, never an empty program */
    assert_int_equal(mt_sandbox_program(true, false, 1, &p, &plen, &err), MT_EINVAL);
    assert_int_equal(mt_sandbox_prepare(&err), MT_OK);
    assert_int_equal(mt_sandbox_program(true, true, 1, &p, &plen, &err), MT_EINVAL);
    int pids[] = {1, 2, 300, 12345, 4194303, (int)getpid()};
    for (size_t i = 0; i < sizeof pids / sizeof pids[0]; i++) {
        void *c = NULL;
        size_t clen = 0;
        assert_int_equal(mt_sandbox_program(true, false, pids[i], &p, &plen, &err), MT_OK);
        assert_int_equal(mt_sandbox_program(false, false, pids[i], &c, &clen, &err), MT_OK);
        assert_true(plen > 0);
        assert_int_equal(plen, clen);
        assert_memory_equal(p, c, plen);
        free(c);
        /* another pid gives another program: the pid is really in it */
        assert_int_equal(mt_sandbox_program(false, false, pids[i] + 1, &c, &clen, &err), MT_OK);
        assert_true(clen != plen || memcmp(p, c, plen) != 0);
        free(c);
        free(p);
    }
}

/* Runs body in a child that loaded the prepared filter (python false) or the
 * python filter; its wait status. */
static int confined_as(bool python, int what)
{
    pid_t parent = getpid();
    pid_t k = fork();
    assert_true(k >= 0);
    if (k == 0) {
        mt_err err = {0};
        static const char *const no_paths[] = {NULL};
        const char *why = NULL;
        int sv[2];
        if (what >= 7 && (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || dup2(sv[0], 3) != 3))
            _exit(3);
        if (mt_sandbox_limits(1ULL << 32, 10, &err) != MT_OK ||
            (python ? mt_sandbox_lock_python(3, no_paths, &why, &err)
                    : mt_sandbox_lock(3, &err)) != MT_OK)
            _exit(3);
        struct rlimit rl;
        switch (what) {
        case 0: /* allowed: its own work, a signal to itself (ignored) */
            signal(SIGUSR1, SIG_IGN);
            raise(SIGUSR1);
            (void)!write(2, "", 0);
            _exit(0);
        case 1:
            (void)!open("/etc/hostname", O_RDONLY);
            _exit(0);
        case 2:
            (void)!syscall(SYS_tgkill, parent, parent, 0); /* another process */
            _exit(0);
        case 3:
            (void)!syscall(SYS_fork);
            _exit(0);
        case 4: /* lower the parent's (the zygote's) descriptor limit */
            rl = (struct rlimit){3, 3};
            (void)!syscall(SYS_prlimit64, parent, RLIMIT_NOFILE, &rl, NULL);
            _exit(0);
        case 5: /* read the parent's limit (no new limit) */
            (void)!syscall(SYS_prlimit64, parent, RLIMIT_STACK, NULL, &rl);
            _exit(0);
        case 6: /* its own limits: read and lowered (glibc passes pid 0) */
            if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == 0)
                _exit(4);
            rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? (1u << 20) : rl.rlim_max / 2;
            if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur < (1u << 20))
                rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_STACK, &rl) != 0)
                _exit(5);
            {
                struct rlimit back;
                if (getrlimit(RLIMIT_STACK, &back) != 0 || back.rlim_cur != rl.rlim_cur ||
                    back.rlim_max != rl.rlim_max)
                    _exit(6);
            }
            _exit(0);
        case 7: /* the channel (fd 3): shut down (worker_main.c report()) */
            _exit(shutdown(3, SHUT_RDWR) == 0 ? 0 : 7);
        case 8: /* any other descriptor */
            (void)!shutdown(0, SHUT_RDWR);
            _exit(0);
        case 9: { /* fcntl: what CPython needs works, O_ASYNC and locks refused */
            int fl = fcntl(2, F_GETFL), fd = fcntl(2, F_GETFD);
            if (fl < 0 || fd < 0 || fcntl(2, F_SETFD, fd | FD_CLOEXEC) != 0 ||
                fcntl(2, F_SETFL, fl) != 0)
                _exit(9);
            int d = fcntl(2, F_DUPFD_CLOEXEC, 0);
            if (d < 0 || close(d) != 0)
                _exit(10);
            errno = 0;
            if (fcntl(2, F_SETFL, fl | O_ASYNC) != -1 || errno != EPERM)
                _exit(11);
            struct flock lk = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
            errno = 0;
            if (fcntl(2, F_SETLK, &lk) != -1 || errno != EACCES)
                _exit(12);
            _exit(0);
        }
        case 10: /* the owner of the SIGIO of a descriptor: another process */
            (void)!fcntl(2, F_SETOWN, (int)parent);
            _exit(0);
        case 11: /* the signal of that SIGIO */
            (void)!fcntl(2, F_SETSIG, SIGKILL);
            _exit(0);
        case 12: /* the size of a pipe shared with other workers */
            (void)!fcntl(2, F_SETPIPE_SZ, 4096);
            _exit(0);
        default:
            _exit(0);
        }
    }
    int ws = 0;
    assert_int_equal(waitpid(k, &ws, 0), k);
    return ws;
}

static int confined(int what)
{
    return confined_as(false, what);
}

static void test_prepared_confines(void **state)
{
    (void)state;
    mt_err err = {0};
    assert_int_equal(mt_sandbox_prepare(&err), MT_OK);
    int ws = confined(0);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    for (int what = 1; what <= 3; what++) {
        ws = confined(what);
        assert_true(WIFSIGNALED(ws));
        assert_int_equal(WTERMSIG(ws), SIGSYS);
    }
}

/* prlimit64 on another process kills the worker under both filters, and
 * the target's limits stay as they were; the python filter still lets the
 * worker read and set its own. */
static void test_prlimit_self_only(void **state)
{
    (void)state;
    mt_err err = {0};
    assert_int_equal(mt_sandbox_prepare(&err), MT_OK);
    struct rlimit before, after;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
    for (int python = 0; python <= 1; python++) {
        for (int what = 4; what <= 5; what++) {
            int ws = confined_as(python, what);
            assert_true(WIFSIGNALED(ws));
            assert_int_equal(WTERMSIG(ws), SIGSYS);
        }
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &after), 0);
        assert_int_equal(after.rlim_cur, before.rlim_cur);
        assert_int_equal(after.rlim_max, before.rlim_max);
    }
    int ws = confined_as(true, 6);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    /* the python filter otherwise confines as the native one */
    ws = confined_as(true, 0);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    for (int what = 2; what <= 3; what++) {
        ws = confined_as(true, what);
        assert_true(WIFSIGNALED(ws));
        assert_int_equal(WTERMSIG(ws), SIGSYS);
    }
}

/* shutdown is allowed on the channel (fd 3) only, under both filters: the
 * worker ends the connection after its result even when a python function
 * kept a dup of fd 3 (test_executor test_python_dup_channel). */
static void test_shutdown_channel_only(void **state)
{
    (void)state;
    mt_err err = {0};
    assert_int_equal(mt_sandbox_prepare(&err), MT_OK);
    for (int python = 0; python <= 1; python++) {
        int ws = confined_as(python, 7);
        assert_true(WIFEXITED(ws));
        assert_int_equal(WEXITSTATUS(ws), 0);
        ws = confined_as(python, 8);
        assert_true(WIFSIGNALED(ws));
        assert_int_equal(WTERMSIG(ws), SIGSYS);
    }
}

/* The python filter allows fcntl by command: FD_CLOEXEC, F_GETFL, dups and
 * F_SETFL without O_ASYNC work; O_ASYNC is refused (EPERM), locks too
 * (EACCES); F_SETOWN, F_SETSIG, F_SETPIPE_SZ kill the worker. (With fcntl
 * allowed whole, a python function made the kernel SIGKILL the daemon: its
 * F_SETOWN + F_SETSIG + O_ASYNC on its stderr, a pipe shared with the
 * daemon, stayed on that pipe, and the relay's next read sent the signal.) */
static void test_fcntl_by_command(void **state)
{
    (void)state;
    mt_err err = {0};
    assert_int_equal(mt_sandbox_prepare(&err), MT_OK);
    int ws = confined_as(true, 9);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    for (int what = 10; what <= 12; what++) {
        ws = confined_as(true, what);
        assert_true(WIFSIGNALED(ws));
        assert_int_equal(WTERMSIG(ws), SIGSYS);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepared_equals_compiled),
        cmocka_unit_test(test_shutdown_channel_only),
        cmocka_unit_test(test_prepared_confines),
        cmocka_unit_test(test_prlimit_self_only),
        cmocka_unit_test(test_fcntl_by_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
