/* Tests of untrusted_fetch: file:// root checks, schemes, size limit, https
 * failure without network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "untrusted_fetch.h"

static char root[256], outside[256];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    strcpy(root, "/tmp/mt_fetch_XXXXXX");
    strcpy(outside, "/tmp/mt_fetch_out_XXXXXX");
    assert_non_null(mkdtemp(root));
    assert_non_null(mkdtemp(outside));
    char p[512];
    snprintf(p, sizeof p, "%s/sub", root);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/sub/data", root);
    put(p, "ciphertext");
    snprintf(p, sizeof p, "%s/secret", outside);
    put(p, "host secret");
    char l[512];
    snprintf(l, sizeof l, "%s/link", root);
    snprintf(p, sizeof p, "%s/secret", outside);
    assert_int_equal(symlink(p, l), 0);
    snprintf(l, sizeof l, "%s/inlink", root);
    snprintf(p, sizeof p, "%s/sub/data", root);
    assert_int_equal(symlink(p, l), 0);
    snprintf(l, sizeof l, "%s/dirlink", root);
    assert_int_equal(symlink(outside, l), 0);
    return 0;
}

static int teardown(void **state)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", root, outside);
    return system(cmd) == 0 ? 0 : -1;
}

/* Fetches "file://" base suffix under root. */
static mt_status get(const char *base, const char *suffix, size_t max, char **text, mt_err *err)
{
    char url[1024];
    snprintf(url, sizeof url, "file://%s%s", base, suffix);
    uint8_t *out = NULL;
    size_t len = 0;
    mt_status st = untrusted_fetch(url, root, max, &out, &len, err);
    if (text)
        *text = (char *)out;
    else
        free(out);
    return st;
}

static void test_file_ok(void **state)
{
    char *t;
    mt_err err = {0};
    assert_int_equal(get(root, "/sub/data", 100, &t, &err), MT_OK);
    assert_string_equal(t, "ciphertext");
    free(t);
    assert_int_equal(get(root, "/sub/data", 10, &t, &err), MT_OK);
    free(t);
    assert_int_equal(get(root, "/sub/data", 9, NULL, &err), MT_ETOOBIG);
    assert_true(untrusted_fetch_url_supported("file:///x"));
    assert_true(untrusted_fetch_url_supported("https://example.org/x"));
    assert_false(untrusted_fetch_url_supported("http://example.org/x"));
    /* the fd variant */
    char url[600];
    snprintf(url, sizeof url, "file://%s/sub/data", root);
    int fd;
    uint64_t size;
    assert_int_equal(untrusted_fetch_open_file(url, root, &fd, &size, &err), MT_OK);
    assert_int_equal(size, 10);
    close(fd);
}

static void test_file_refused(void **state)
{
    mt_err err = {0};
    assert_int_equal(get(outside, "/secret", 100, NULL, &err), MT_EPERM);
    assert_non_null(strstr(err.msg, "outside"));
    assert_int_equal(get(root, "/sub/../sub/data", 100, NULL, &err), MT_EPERM);
    assert_int_equal(get(root, "/../etc/passwd", 100, NULL, &err), MT_EPERM);
    assert_int_equal(get(root, "/link", 100, NULL, &err), MT_EPERM);    /* out */
    assert_int_equal(get(root, "/inlink", 100, NULL, &err), MT_EPERM);  /* in */
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_int_equal(get(root, "/dirlink/secret", 100, NULL, &err), MT_EPERM);
    assert_int_equal(get(root, "/sub", 100, NULL, &err), MT_EPERM);  /* a dir */
    assert_int_equal(get(root, "/absent", 100, NULL, &err), MT_ENOTFOUND);
    assert_int_equal(get("/etc/passwd", "", 100, NULL, &err), MT_EPERM);
    assert_int_equal(get(root, "/sub/data%00", 100, NULL, &err), MT_EINVAL);
    /* no root configured: file:// refused */
    char url[600];
    snprintf(url, sizeof url, "file://%s/sub/data", root);
    uint8_t *out;
    size_t len;
    assert_int_equal(untrusted_fetch(url, NULL, 100, &out, &len, &err), MT_EPERM);
    assert_null(out);
}

static void test_schemes(void **state)
{
    const char *bad[] = {"http://127.0.0.1/x", "ftp://127.0.0.1/x", "gopher://x", "data:,x",
                         "/etc/passwd", "HTTPS://127.0.0.1/x", "", NULL};
    for (int i = 0; bad[i]; i++) {
        uint8_t *out;
        size_t len;
        mt_err err = {0};
        assert_int_equal(untrusted_fetch(bad[i], root, 100, &out, &len, &err), MT_EINVAL);
        assert_non_null(strstr(err.msg, "unsupported"));
    }
}

static void test_https_unreachable(void **state)
{
    uint8_t *out;
    size_t len;
    mt_err err = {0};
    /* port 9 (discard) on loopback: nothing listens, connection refused */
    assert_int_equal(untrusted_fetch("https://127.0.0.1:9/object", NULL, 100, &out, &len, &err),
                     MT_EIO);
    assert_null(out);
    assert_non_null(strstr(err.msg, "127.0.0.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_ok),
        cmocka_unit_test(test_file_refused),
        cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_https_unreachable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
