/* Regression tests for issue 8 items 13 and 14 (cross-cutting):
 * - mt_secmem: jansson's heap is wiped on free once the allocator is installed;
 * - mt_tmpfile / mt_file_write_atomic: O_EXCL|O_NOFOLLOW temp files with an
 *   unpredictable name, no partial file on failure;
 * - mt_err_prefix: a prefix appears once (no self-formatting);
 * - the one status table: every mt_status maps to its intended HTTP status and
 *   name, and the executor API answers 403/429 for permission/quota errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_err.h"
#include "mt_executor_api.h"
#include "mt_secmem.h"
#include "mt_util.h"

/* ---- mt_secmem ------------------------------------------------------------ */

typedef struct {
    size_t blocks;    /* blocks freed through mt_secmem_free */
    size_t dirty;     /* of which not all zero after the wipe */
    size_t max_block; /* largest usable size seen */
} wipe_seen;

static void observe(const void *p, size_t n, void *arg)
{
    wipe_seen *w = arg;
    const unsigned char *b = p;
    w->blocks++;
    for (size_t i = 0; i < n; i++)
        if (b[i]) {
            w->dirty++;
            break;
        }
    if (n > w->max_block)
        w->max_block = n;
}

static const char k_secret[] = "correct-horse-battery-staple-0123456789abcdef0123456789abcdef";

static void test_secmem_json_wiped(void **state)
{
    (void)state;
    /* json values made before installing are freed safely afterwards */
    json_t *early = json_string(k_secret);
    assert_true(mt_secmem_install_json());
    assert_true(mt_secmem_install_json()); /* idempotent */
    wipe_seen w = {0};
    mt_secmem_set_observer(observe, &w);
    json_decref(early);
    size_t after_early = w.blocks;
    assert_true(after_early >= 1);

    json_t *o = json_pack("{s:s, s:s}", "username", "alice", "password", k_secret);
    assert_non_null(o);
    json_decref(o);
    char doc[256];
    snprintf(doc, sizeof doc, "{\"key\": \"%s\", \"list\": [\"%s\"]}", k_secret, k_secret);
    json_t *p = json_loads(doc, 0, NULL);
    assert_non_null(p);
    json_decref(p);
    mt_secmem_set_observer(NULL, NULL);

    /* every block jansson freed went through the wiping free, wiped */
    assert_true(w.blocks > after_early + 4);
    assert_int_equal(w.dirty, 0);
    assert_true(w.max_block >= sizeof k_secret);
}

static void test_secmem_free_plain_block(void **state)
{
    (void)state;
    wipe_seen w = {0};
    char *b = malloc(100); /* plain malloc: no header is assumed */
    assert_non_null(b);
    memset(b, 'k', 100);
    mt_secmem_set_observer(observe, &w);
    mt_secmem_free(b);
    mt_secmem_free(NULL);
    mt_secmem_set_observer(NULL, NULL);
    assert_int_equal(w.blocks, 1);
    assert_int_equal(w.dirty, 0);
    assert_true(w.max_block >= 100);
    free(mt_secmem_malloc(10)); /* and the reverse is allowed */
}

/* ---- temp files ------------------------------------------------------------ */

static char g_dir[64];

static int dir_setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/mt_secrets_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int dir_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(g_dir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(g_dir);
    return 0;
}

static size_t dir_entries(void)
{
    size_t n = 0;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void test_tmpfile_unpredictable_exclusive(void **state)
{
    (void)state;
    char path[256], t1[256 + MT_TMPFILE_EXTRA], t2[256 + MT_TMPFILE_EXTRA];
    snprintf(path, sizeof path, "%s/token", g_dir);
    int f1, f2;
    mt_err e;
    assert_int_equal(mt_tmpfile_open(path, 0600, t1, sizeof t1, &f1, &e), MT_OK);
    assert_int_equal(mt_tmpfile_open(path, 0600, t2, sizeof t2, &f2, &e), MT_OK);
    assert_string_not_equal(t1, t2); /* not "<path>.tmp.<pid>" */
    assert_int_equal(strncmp(t1, path, strlen(path)), 0);
    assert_int_equal(strlen(t1), strlen(path) + MT_TMPFILE_EXTRA - 1);
    struct stat st;
    assert_int_equal(fstat(f1, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    mt_tmpfile_discard(f1, t1);
    mt_tmpfile_discard(f2, t2);
    assert_int_equal(dir_entries(), 0);
    /* a buffer too small for the name is refused, nothing is created */
    char small[8];
    assert_int_equal(mt_tmpfile_open(path, 0600, small, sizeof small, &f1, &e), MT_EINVAL);
    assert_int_equal(f1, -1);
    assert_int_equal(dir_entries(), 0);
}

static void test_write_atomic_no_symlink_follow(void **state)
{
    (void)state;
    char path[256], victim[256];
    snprintf(path, sizeof path, "%s/sealing.key", g_dir);
    snprintf(victim, sizeof victim, "%s/victim", g_dir);
    mt_err e;
    assert_int_equal(mt_file_write_atomic(victim, "precious", 8, 0600, &e), MT_OK);
    /* The old name "<path>.tmp.<pid>" was predictable: an attacker could plant
     * a symlink there and have the secret written through it. Plant symlinks
     * at that name and at the destination itself. */
    char planted[300];
    snprintf(planted, sizeof planted, "%s.tmp.%d", path, (int)getpid());
    assert_int_equal(symlink(victim, planted), 0);
    assert_int_equal(mt_file_write_atomic(path, "SECRET", 6, 0600, &e), MT_OK);
    uint8_t *buf;
    size_t len;
    assert_int_equal(mt_file_read(victim, 100, &buf, &len, &e), MT_OK);
    assert_int_equal(len, 8);
    assert_memory_equal(buf, "precious", 8); /* the symlink target is untouched */
    free(buf);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(mt_file_read(path, 100, &buf, &len, &e), MT_OK);
    assert_memory_equal(buf, "SECRET", 6);
    free(buf);
    unlink(planted);
    assert_int_equal(dir_entries(), 2);
}

static void test_write_atomic_failure_leaves_nothing(void **state)
{
    (void)state;
    /* rename onto a non-empty directory fails: the temp file must go away and
     * the directory must be untouched */
    char path[256], inner[300];
    snprintf(path, sizeof path, "%s/out", g_dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(inner, sizeof inner, "%s/x", path);
    mt_err e;
    assert_int_equal(mt_file_write_atomic(inner, "x", 1, 0600, &e), MT_OK);
    assert_int_equal(mt_file_write_atomic(path, "SECRET", 6, 0600, &e), MT_EIO);
    assert_int_equal(dir_entries(), 1); /* only "out" */
    unlink(inner);
    rmdir(path);
    /* a missing directory: nothing created anywhere */
    snprintf(path, sizeof path, "%s/nodir/key", g_dir);
    assert_int_equal(mt_file_write_atomic(path, "SECRET", 6, 0600, &e), MT_EIO);
    assert_int_equal(dir_entries(), 0);
}

/* ---- mt_err_prefix ---------------------------------------------------------- */

static void test_err_prefix_once(void **state)
{
    (void)state;
    mt_err e;
    mt_err_set(&e, MT_ENOTFOUND, "no feature column '%s'", "w");
    assert_int_equal(mt_err_prefix(&e, MT_EINVAL, "argument '%s': ", "features"), MT_EINVAL);
    assert_int_equal(e.code, MT_EINVAL);
    assert_string_equal(e.msg, "argument 'features': no feature column 'w'");
    assert_int_equal(mt_err_prefix(&e, MT_EINVAL, "task %d: ", 7), MT_EINVAL);
    assert_string_equal(e.msg, "task 7: argument 'features': no feature column 'w'");
    /* truncation keeps the prefix and a NUL, never overruns */
    char longm[400];
    memset(longm, 'a', sizeof longm - 1);
    longm[sizeof longm - 1] = '\0';
    mt_err_set(&e, MT_EIO, "%s", longm);
    mt_err_prefix(&e, MT_EIO, "ctx: ");
    assert_int_equal(strlen(e.msg), MT_ERR_MSG_MAX - 1);
    assert_int_equal(strncmp(e.msg, "ctx: aaa", 8), 0);
    assert_null(strstr(e.msg + 1, "ctx: "));
    assert_int_equal(mt_err_prefix(NULL, MT_EPERM, "x"), MT_EPERM);
}

/* ---- the status table --------------------------------------------------------- */

static void test_status_table(void **state)
{
    (void)state;
    /* the intended mapping, written out independently of mt_err.c */
    static const struct {
        mt_status code;
        int http;
        const char *name;
    } want[] = {
        {MT_OK, 200, "ok"},
        {MT_EINVAL, 400, "invalid_argument"},
        {MT_EAUTH, 401, "unauthenticated"},
        {MT_EPERM, 403, "permission_denied"},
        {MT_ENOTFOUND, 404, "not_found"},
        {MT_ECONFLICT, 409, "conflict"},
        {MT_ETOOBIG, 413, "too_large"},
        {MT_EQUOTA, 429, "quota_exceeded"},
        {MT_ECRYPTO, 400, "crypto_failed"},
        {MT_EIO, 500, "io_error"},
        {MT_ENOMEM, 500, "out_of_memory"},
        {MT_EINTERNAL, 500, "internal"},
        {MT_EUNAVAIL, 503, "unavailable"},
    };
    assert_int_equal(sizeof want / sizeof want[0], MT_EUNAVAIL + 1); /* every code */
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(mt_status_http(want[i].code), want[i].http);
        assert_string_equal(mt_status_name(want[i].code), want[i].name);
        mt_status back = MT_EINTERNAL;
        assert_true(mt_status_from_name(want[i].name, &back));
        assert_int_equal(back, want[i].code);
        assert_string_not_equal(mt_http_reason(want[i].http), "Client Error");
    }
    mt_status back = MT_OK;
    assert_false(mt_status_from_name("no_such_code", &back));
    assert_false(mt_status_from_name(NULL, &back));
    assert_int_equal(mt_status_from_http(403), MT_EPERM);
    assert_int_equal(mt_status_from_http(429), MT_EQUOTA);
    assert_int_equal(mt_status_from_http(400), MT_EINVAL);
    assert_int_equal(mt_status_from_http(418), MT_EINVAL);
    assert_int_equal(mt_status_from_http(500), MT_EINTERNAL);
    assert_int_equal(mt_status_from_http(503), MT_EUNAVAIL);
    assert_int_equal(mt_status_from_http(204), MT_OK);
    assert_string_equal(mt_http_reason(403), "Forbidden");
    assert_string_equal(mt_http_reason(429), "Too Many Requests");
}

static void expect_exec_api(mt_status code, const char *head, const char *name)
{
    char *r = mt_executor_api_error_response(code, "why");
    assert_non_null(r);
    if (strncmp(r, head, strlen(head)) != 0)
        fail_msg("executor API answered '%.40s' for %s, expected '%s'", r, mt_status_name(code),
                 head);
    const char *body = strstr(r, "\r\n\r\n");
    assert_non_null(body);
    json_t *j = json_loads(body + 4, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "code")), name);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "why");
    char cl[64];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", strlen(body + 4));
    assert_non_null(strstr(r, cl));
    json_decref(j);
    free(r);
}

static void test_executor_api_status(void **state)
{
    (void)state;
    /* it answered 500 for these before: its own drifted table */
    expect_exec_api(MT_EPERM, "HTTP/1.1 403 Forbidden\r\n", "permission_denied");
    expect_exec_api(MT_EQUOTA, "HTTP/1.1 429 Too Many Requests\r\n", "quota_exceeded");
    expect_exec_api(MT_EAUTH, "HTTP/1.1 401 Unauthorized\r\n", "unauthenticated");
    expect_exec_api(MT_EUNAVAIL, "HTTP/1.1 503 Service Unavailable\r\n", "unavailable");
    expect_exec_api(MT_ECONFLICT, "HTTP/1.1 409 Conflict\r\n", "conflict");
    expect_exec_api(MT_EINTERNAL, "HTTP/1.1 500 Internal Server Error\r\n", "internal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secmem_json_wiped),
        cmocka_unit_test(test_secmem_free_plain_block),
        cmocka_unit_test_setup_teardown(test_tmpfile_unpredictable_exclusive, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic_no_symlink_follow, dir_setup,
                                        dir_teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic_failure_leaves_nothing, dir_setup,
                                        dir_teardown),
        cmocka_unit_test(test_err_prefix_once),
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_executor_api_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
