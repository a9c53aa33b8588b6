/* Unit tests of the worker's seccomp program built once (sandbox.h,
 * mt_sandbox_prepare, issue 13): the prepared program with a pid filled in
 * is byte for byte the program compiled for that pid, and a process that
 * loaded it is confined exactly so (open, fork and a signal to another
 * process kill it; its own work and signals to itself do not). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

/* Runs body in a child that loaded the prepared filter; its wait status. */
static int confined(int what)
{
    pid_t parent = getpid();
    pid_t k = fork();
    assert_true(k >= 0);
    if (k == 0) {
        mt_err err = {0};
        if (mt_sandbox_limits(1ULL << 32, 10, &err) != MT_OK || mt_sandbox_lock(3, &err) != MT_OK)
            _exit(3);
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
        default:
            _exit(0);
        }
    }
    int ws = 0;
    assert_int_equal(waitpid(k, &ws, 0), k);
    return ws;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prepared_equals_compiled),
        cmocka_unit_test(test_prepared_confines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
