/* mt_sdnotify: every message arrives on a real unix datagram socket named by
 * NOTIFY_SOCKET, with the fields systemd expects; without NOTIFY_SOCKET
 * nothing is sent; an unusable socket is survived. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "mt_sdnotify.h"

typedef struct fx {
    char dir[40];
    char path[64];
    int fd;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/mt_sdnotify.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/notify", f->dir);
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(f->fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(f->path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    close(f->fd);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    unsetenv("NOTIFY_SOCKET");
    return 0;
}

/* The next datagram, or "" when none is waiting. */
static void next_msg(fx *f, char *buf, size_t cap)
{
    ssize_t n = recv(f->fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

static void test_messages(void **state)
{
    fx *f = *state;
    char m[1024];
    assert_int_equal(setenv("NOTIFY_SOCKET", f->path, 1), 0);
    assert_true(mt_sdnotify_enabled());

    mt_sdnotify_ready("serving on https://127.0.0.1:7443 (level none)");
    next_msg(f, m, sizeof m);
    assert_string_equal(m, "READY=1\nSTATUS=serving on https://127.0.0.1:7443 (level none)");
    mt_sdnotify_ready(NULL);
    next_msg(f, m, sizeof m);
    assert_string_equal(m, "READY=1\nSTATUS=ready");

    mt_sdnotify_status("stopping: %d task(s) still running", 3);
    next_msg(f, m, sizeof m);
    assert_string_equal(m, "STATUS=stopping: 3 task(s) still running");

    mt_sdnotify_stopping("stopping: closing the store");
    next_msg(f, m, sizeof m);
    assert_string_equal(m, "STOPPING=1\nSTATUS=stopping: closing the store");

    mt_sdnotify_reloading();
    next_msg(f, m, sizeof m);
    const char *want = "RELOADING=1\nMONOTONIC_USEC=";
    assert_memory_equal(m, want, strlen(want));
    const char *us = m + strlen(want);
    assert_true(*us >= '1' && *us <= '9');
    assert_int_equal(strspn(us, "0123456789"), strlen(us));

    /* the STATUS text is bounded, not a buffer overrun */
    char long_status[2000];
    memset(long_status, 'x', sizeof long_status - 1);
    long_status[sizeof long_status - 1] = '\0';
    mt_sdnotify_ready(long_status);
    next_msg(f, m, sizeof m);
    assert_memory_equal(m, "READY=1\nSTATUS=xxx", 18);
    assert_true(strlen(m) < 600);

    next_msg(f, m, sizeof m);
    assert_string_equal(m, ""); /* nothing else was sent */
}

static void test_watchdog(void **state)
{
    fx *f = *state;
    char m[256], pid[32];
    assert_int_equal(setenv("NOTIFY_SOCKET", f->path, 1), 0);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    assert_int_equal(mt_sdnotify_watchdog_usec(), 0);
    assert_int_equal(setenv("WATCHDOG_USEC", "30000000", 1), 0);
    assert_int_equal(mt_sdnotify_watchdog_usec(), 30000000ULL);
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    assert_int_equal(mt_sdnotify_watchdog_usec(), 30000000ULL);
    /* meant for another process, or garbage: no watchdog */
    snprintf(pid, sizeof pid, "%ld", (long)getpid() + 1);
    assert_int_equal(setenv("WATCHDOG_PID", pid, 1), 0);
    assert_int_equal(mt_sdnotify_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");
    assert_int_equal(setenv("WATCHDOG_USEC", "soon", 1), 0);
    assert_int_equal(mt_sdnotify_watchdog_usec(), 0);
    assert_int_equal(setenv("WATCHDOG_USEC", "0", 1), 0);
    assert_int_equal(mt_sdnotify_watchdog_usec(), 0);
    unsetenv("WATCHDOG_USEC");
    mt_sdnotify_watchdog();
    next_msg(f, m, sizeof m);
    assert_string_equal(m, "WATCHDOG=1");
}

static void test_disabled_and_broken(void **state)
{
    fx *f = *state;
    char m[256];
    unsetenv("NOTIFY_SOCKET");
    assert_false(mt_sdnotify_enabled());
    mt_sdnotify_ready("x");
    mt_sdnotify_stopping("x");
    next_msg(f, m, sizeof m);
    assert_string_equal(m, "");
    assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
    assert_false(mt_sdnotify_enabled());

    /* a socket that does not exist, and garbage: logged, not fatal */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/missing/notify", f->dir);
    assert_int_equal(setenv("NOTIFY_SOCKET", bad, 1), 0);
    assert_true(mt_sdnotify_enabled());
    mt_sdnotify_ready("x");
    mt_sdnotify_stopping("x");
    assert_int_equal(setenv("NOTIFY_SOCKET", "relative\x01garbage", 1), 0);
    mt_sdnotify_ready("x");
    /* still working afterwards */
    assert_int_equal(setenv("NOTIFY_SOCKET", f->path, 1), 0);
    mt_sdnotify_stopping(NULL);
    next_msg(f, m, sizeof m);
    assert_string_equal(m, "STOPPING=1\nSTATUS=stopping");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watchdog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_and_broken, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
