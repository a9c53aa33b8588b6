/* Unit tests of mt_log's formats and access lines, and of mt_dirlock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mt_dirlock.h"
#include "mt_log.h"

/* Runs fn with stderr captured; the text into out. */
static void capture(void (*fn)(void), char *out, size_t cap)
{
    char path[] = "/tmp/mt_log_test.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
}

static void log_some(void)
{
    mt_info("hello \"quoted\" \\ back\nnew line \x01");
    mt_debug("dropped at info");
    mt_log_access(&(mt_log_access_rec){"00112233aabbccdd", "GET", "GET /v1/tasks/{id}", "alice",
                                       200, 1.5});
    mt_log_access(&(mt_log_access_rec){"ffff", "POST", "POST /v1/auth/login", NULL, 401, 0.25});
}

static void test_json_format(void **state)
{
    (void)state;
    mt_log_set_level(MT_LOG_INFO);
    mt_log_set_format(MT_LOG_JSON);
    char buf[8192];
    capture(log_some, buf, sizeof buf);
    mt_log_set_format(MT_LOG_TEXT);
    char *save = NULL;
    int lines = 0;
    for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++) {
        json_error_t je;
        json_t *o = json_loads(l, 0, &je);
        if (!o)
            fail_msg("not JSON: %s", l);
        if (lines == 0) {
            assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
            assert_string_equal(json_string_value(json_object_get(o, "msg")),
                                "hello \"quoted\" \\ back\nnew line \x01");
            assert_true(json_is_integer(json_object_get(o, "pid")));
        } else if (lines == 1) {
            assert_string_equal(json_string_value(json_object_get(o, "type")), "access");
            assert_string_equal(json_string_value(json_object_get(o, "request_id")),
                                "00112233aabbccdd");
            assert_string_equal(json_string_value(json_object_get(o, "route")),
                                "GET /v1/tasks/{id}");
            assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
            assert_true(json_real_value(json_object_get(o, "duration_ms")) == 1.5);
            assert_string_equal(json_string_value(json_object_get(o, "user")), "alice");
        } else {
            assert_true(json_is_null(json_object_get(o, "user")));
            assert_int_equal(json_integer_value(json_object_get(o, "status")), 401);
        }
        json_decref(o);
    }
    assert_int_equal(lines, 3); /* the debug line was dropped */
}

static void test_text_format_and_levels(void **state)
{
    (void)state;
    mt_log_set_level(MT_LOG_INFO);
    char buf[8192];
    capture(log_some, buf, sizeof buf);
    /* one line per entry: the newline in the message is replaced */
    assert_non_null(strstr(buf, " info ["));
    assert_non_null(strstr(buf, "back?new line ?\n"));
    assert_non_null(strstr(buf, "access request_id=00112233aabbccdd method=GET "
                                "route=\"GET /v1/tasks/{id}\" status=200 duration_ms=1.500 "
                                "user=alice\n"));
    assert_non_null(strstr(buf, "status=401 duration_ms=0.250 user=-\n"));
    /* at warn: info and access lines on the log stream are dropped */
    mt_log_set_level(MT_LOG_WARN);
    capture(log_some, buf, sizeof buf);
    mt_log_set_level(MT_LOG_INFO);
    assert_string_equal(buf, "");
    mt_log_level lv;
    assert_true(mt_log_level_parse("debug", &lv));
    assert_int_equal(lv, MT_LOG_DEBUG);
    assert_true(mt_log_level_parse("error", &lv));
    assert_int_equal(lv, MT_LOG_ERROR);
    assert_false(mt_log_level_parse("verbose", &lv));
    assert_false(mt_log_level_parse(NULL, &lv));
    assert_false(mt_log_level_parse("", &lv));
}

static void test_access_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/mt_acc.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/access.log", dir);
    mt_err err;
    mt_err_clear(&err);
    mt_log_set_level(MT_LOG_ERROR); /* a file gets access lines whatever the level */
    assert_int_equal(mt_log_set_access_file(path, &err), MT_OK);
    char buf[4096];
    capture(log_some, buf, sizeof buf);
    assert_string_equal(buf, ""); /* nothing on the stream */
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0077, sb.st_mode & 0040); /* not world/group writable */
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "request_id=00112233aabbccdd"));
    assert_non_null(strstr(buf, "request_id=ffff"));
    /* a file that cannot be opened changes nothing */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir/a.log", dir);
    assert_int_equal(mt_log_set_access_file(bad, &err), MT_EIO);
    assert_non_null(strstr(err.msg, "cannot open access log"));
    assert_int_equal(mt_log_set_access_file(NULL, &err), MT_OK);
    mt_log_set_level(MT_LOG_INFO);
    unlink(path);
    rmdir(dir);
}

static void test_dirlock(void **state)
{
    (void)state;
    char dir[] = "/tmp/mt_lock.XXXXXX";
    assert_non_null(mkdtemp(dir));
    mt_err err;
    mt_err_clear(&err);
    int fd = -1;
    assert_int_equal(mt_dirlock_acquire(dir, &fd, &err), MT_OK);
    assert_true(fd >= 0);
    char path[128];
    snprintf(path, sizeof path, "%s/lock", dir);
    /* another process is refused, naming this one (which must not open the
     * file itself: closing any descriptor of it would drop its POSIX lock) */
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int cfd = -1;
        mt_err cerr;
        mt_err_clear(&cerr);
        mt_status st = mt_dirlock_acquire(dir, &cfd, &cerr);
        char want[64], buf[32] = "";
        snprintf(want, sizeof want, "(PID %ld holds", (long)getppid());
        FILE *f = fopen(path, "r");
        if (!f || !fgets(buf, sizeof buf, f) || atol(buf) != (long)getppid())
            _exit(2); /* the file holds the holder's PID */
        fclose(f);
        _exit(st == MT_ECONFLICT && cfd == -1 && strstr(cerr.msg, want) &&
                      strstr(cerr.msg, "in use by another mesatee process")
                  ? 0
                  : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* released: another process gets it */
    mt_dirlock_release(fd);
    child = fork();
    if (child == 0) {
        int cfd = -1;
        mt_err cerr;
        mt_err_clear(&cerr);
        mt_status st = mt_dirlock_acquire(dir, &cfd, &cerr);
        if (st != MT_OK)
            fprintf(stderr, "child: %s\n", cerr.msg);
        _exit(st == MT_OK ? 0 : 1);
    }
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* bad input */
    assert_int_equal(mt_dirlock_acquire("", &fd, &err), MT_EINVAL);
    assert_int_equal(fd, -1);
    char missing[160];
    snprintf(missing, sizeof missing, "%s/absent", dir);
    assert_int_equal(mt_dirlock_acquire(missing, &fd, &err), MT_EIO);
    mt_dirlock_release(-1);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_format),
        cmocka_unit_test(test_text_format_and_levels),
        cmocka_unit_test(test_access_file),
        cmocka_unit_test(test_dirlock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
