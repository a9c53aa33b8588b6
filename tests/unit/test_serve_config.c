/* Unit tests of the daemon's settings (serve_config.h): precedence, sources,
 * line numbers in errors, garbage, the measured text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "serve_config.h"

static const char *g_env[16][2];

static const char *fake_getenv(const char *name)
{
    for (int i = 0; i < 16 && g_env[i][0]; i++)
        if (!strcmp(g_env[i][0], name))
            return g_env[i][1];
    return NULL;
}

static mt_status parse(serve_config *c, const char *t, int *line, mt_err *err)
{
    mt_err_clear(err);
    return serve_config_parse_file(c, "/etc/m.conf", t, strlen(t), line, err);
}

/* Refused with the line at fault and a message containing why; and nothing
 * of the file applied. */
static void expect_refused(const char *t, size_t len, int line, const char *why)
{
    serve_config *c = serve_config_new("serve");
    assert_non_null(c);
    int l = -1;
    mt_err err;
    mt_err_clear(&err);
    assert_int_equal(serve_config_parse_file(c, "/etc/m.conf", t, len, &l, &err), MT_EINVAL);
    if (!strstr(err.msg, why))
        fail_msg("'%s' does not contain '%s'", err.msg, why);
    assert_int_equal(l, line);
    assert_null(serve_config_get(c, "data-dir"));
    assert_null(serve_config_get(c, "workers"));
    assert_null(serve_config_file(c));
    serve_config_free(c);
}

static void test_file_values_and_lines(void **state)
{
    (void)state;
    serve_config *c = serve_config_new("serve");
    int line = 0;
    mt_err err;
    const char t[] = "# comment\n; another\n\ndata-dir = /var/lib/mesatee\n"
                     "task_wall_s=60\r\n  \nlog-task-errors = yes ; inline comment\n"
                     "[serve]\nworkers = 007\nfetch-allow = 10.0.0.0/8\n"
                     "fetch_allow = 192.168.1.0/24\n[executor]\nscheduler = https://x:1\n";
    assert_int_equal(parse(c, t, &line, &err), MT_OK);
    assert_string_equal(serve_config_get(c, "data-dir"), "/var/lib/mesatee");
    assert_string_equal(serve_config_get(c, "task-wall-s"), "60");
    assert_string_equal(serve_config_get(c, "task_wall_s"), "60");
    assert_string_equal(serve_config_get(c, "workers"), "7"); /* canonical */
    assert_true(serve_config_bool(c, "log-task-errors"));
    assert_string_equal(serve_config_get(c, "fetch-allow"), "10.0.0.0/8,192.168.1.0/24");
    const char *origin = NULL;
    assert_int_equal(serve_config_source(c, "task-wall-s", &origin), SC_SRC_FILE);
    assert_string_equal(origin, "/etc/m.conf:5");
    assert_int_equal(serve_config_source(c, "workers", &origin), SC_SRC_FILE);
    assert_string_equal(origin, "/etc/m.conf:9");
    assert_int_equal(serve_config_source(c, "listen", &origin), SC_SRC_DEFAULT);
    assert_null(origin);
    assert_int_equal(serve_config_u64(c, "task-cpu-s", 600), 600);
    assert_string_equal(serve_config_file(c), "/etc/m.conf");
    serve_config_free(c);
}

static void test_precedence(void **state)
{
    (void)state;
    serve_config *c = serve_config_new("serve");
    int line = 0;
    mt_err err;
    assert_int_equal(parse(c, "workers = 2\nlisten = 0.0.0.0:1\nlevel = soft\n"
                              "fetch-allow = 10.0.0.0/8\nfetch-allow = 10.1.0.0/16\n",
                           &line, &err),
                     MT_OK);
    memset(g_env, 0, sizeof g_env);
    g_env[0][0] = "MESATEE_WORKERS";
    g_env[0][1] = "3";
    g_env[1][0] = "MESATEE_LISTEN";
    g_env[1][1] = "127.0.0.2:9";
    g_env[2][0] = "MESATEE_LEVEL";
    g_env[2][1] = ""; /* empty: unset */
    assert_int_equal(serve_config_apply_env(c, fake_getenv, &err), MT_OK);
    /* flags over env over file */
    assert_int_equal(serve_config_set(c, "workers", "4", SC_SRC_FLAG, "--workers", "--workers",
                                      &err),
                     MT_OK);
    assert_int_equal(serve_config_set(c, "fetch-allow", "172.16.0.0/12", SC_SRC_FLAG,
                                      "--fetch-allow", "--fetch-allow", &err),
                     MT_OK);
    const char *o;
    assert_string_equal(serve_config_get(c, "workers"), "4");
    assert_int_equal(serve_config_source(c, "workers", &o), SC_SRC_FLAG);
    assert_string_equal(serve_config_get(c, "listen"), "127.0.0.2:9");
    assert_int_equal(serve_config_source(c, "listen", &o), SC_SRC_ENV);
    assert_string_equal(o, "MESATEE_LISTEN");
    assert_string_equal(serve_config_get(c, "level"), "soft");
    assert_int_equal(serve_config_source(c, "level", &o), SC_SRC_FILE);
    /* a repeatable key: the highest source's values replace the lower's */
    assert_string_equal(serve_config_get(c, "fetch-allow"), "172.16.0.0/12");
    /* a lower source after a higher one changes nothing */
    assert_int_equal(serve_config_set(c, "workers", "9", SC_SRC_ENV, "X", "X", &err), MT_OK);
    assert_string_equal(serve_config_get(c, "workers"), "4");
    /* a file read after the flags does not override them */
    assert_int_equal(parse(c, "workers = 8\nlog-level = debug\n", &line, &err), MT_OK);
    assert_string_equal(serve_config_get(c, "workers"), "4");
    assert_string_equal(serve_config_get(c, "log-level"), "debug");
    /* the same flag twice: the last wins */
    assert_int_equal(serve_config_set(c, "workers", "5", SC_SRC_FLAG, "--workers", "--workers",
                                      &err),
                     MT_OK);
    assert_string_equal(serve_config_get(c, "workers"), "5");
    /* a bool flag without a value */
    assert_int_equal(serve_config_set(c, "seal-legacy-store", NULL, SC_SRC_FLAG,
                                      "--seal-legacy-store", "--seal-legacy-store", &err),
                     MT_OK);
    assert_true(serve_config_bool(c, "seal-legacy-store"));
    serve_config_free(c);
}

static void test_garbage_values(void **state)
{
    (void)state;
    serve_config *c = serve_config_new("serve");
    mt_err err;
    static const char *const bad[][3] = {
        {"workers", "0", "from 1 to 1024"},      {"workers", "1025", "from 1 to 1024"},
        {"workers", "-1", "from 1 to 1024"},     {"workers", "+4", "from 1 to 1024"},
        {"workers", "4x", "from 1 to 1024"},     {"workers", "99999999999999999999999", "1024"},
        {"task-mem-mb", "15", "from 16"},        {"token-ttl-s", "59", "from 60"},
        {"level", "hw", "one of none, soft"},    {"log-level", "verbose", "one of error"},
        {"log-format", "xml", "one of text, json"}, {"listen", "7443", "HOST:PORT"},
        {"listen", ":7443", "HOST:PORT"},        {"log-task-errors", "maybe", "true or false"},
        {"data-dir", "", "empty value"},         {"data-dir", "a\tb", "control character"},
        {"executor-max-buffered-mib", "0", "from 1 to 65536"},
        {"data-dir", "/d\xff", "not UTF-8"},     {"data-dir", "/\xc0\xaf", "not UTF-8"},
        {"data-dir", "/\xed\xa0\x80", "not UTF-8"}, {"data-dir", "/\xe2\x82", "not UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "--%s", bad[i][0]);
        mt_err_clear(&err);
        assert_int_equal(serve_config_set(c, bad[i][0], bad[i][1], SC_SRC_FLAG, label, label,
                                          &err),
                         MT_EINVAL);
        if (!strstr(err.msg, bad[i][2]) || !strstr(err.msg, label))
            fail_msg("%s=%s: '%s'", bad[i][0], bad[i][1], err.msg);
        assert_null(serve_config_get(c, bad[i][0])); /* unchanged */
    }
    char big[SC_VALUE_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(serve_config_set(c, "data-dir", big, SC_SRC_FLAG, "--data-dir", NULL, &err),
                     MT_EINVAL);
    assert_int_equal(serve_config_set(c, "data-dir", "/srv/d\xc3\xa9j\xc3\xa0-\xf0\x9f\x94\x92",
                                      SC_SRC_FLAG, "--data-dir", NULL, &err),
                     MT_OK); /* UTF-8 is fine */
    assert_int_equal(serve_config_set(c, "nope", "1", SC_SRC_FLAG, "--nope", NULL, &err),
                     MT_EINVAL);
    assert_int_equal(serve_config_set(c, "workers", NULL, SC_SRC_FLAG, "--workers", NULL, &err),
                     MT_EINVAL);
    assert_false(serve_config_key_known(c, "config"));
    assert_false(serve_config_key_known(c, "print-config"));
    /* environment garbage names the variable */
    memset(g_env, 0, sizeof g_env);
    g_env[0][0] = "MESATEE_TASK_WALL_S";
    g_env[0][1] = "soon";
    mt_err_clear(&err);
    assert_int_equal(serve_config_apply_env(c, fake_getenv, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "MESATEE_TASK_WALL_S"));
    serve_config_free(c);
    assert_null(serve_config_new("nothing"));
    serve_config_free(NULL);
}

#define REFUSED(t, line, why) expect_refused(t, sizeof t - 1, line, why)

static void test_file_garbage(void **state)
{
    (void)state;
    REFUSED("data-dir = /d\nworkerz = 3\n", 2, "unknown key 'workerz'");
    REFUSED("data-dir = /d\n\n\nworkers = 0\n", 4, "workers must be a number");
    REFUSED("workers = 2\ndata-dir=/d\nworkers = 3\n", 3,
                   "set twice (first on line 1)");
    REFUSED("data-dir = /d\njust words\n", 2, "expected 'key = value'");
    REFUSED("data-dir = /d\n[serve\n", 2, "expected 'key = value'");
    REFUSED("data-dir = /d\n[client]\nserver = x\n", 3, "unknown section [client]");
    REFUSED("data-dir =\n", 1, "empty value");
    REFUSED("data-dir = /d\nlevel = \"soft\"\n", 2, "one of none");
    REFUSED("a\0b", 1, "NUL byte");
    REFUSED("data-dir = /d\n\n\0", 3, "NUL byte");
    char longl[400];
    memset(longl, 'x', sizeof longl);
    memcpy(longl, "# ok\ndata-dir = /", 17);
    expect_refused(longl, sizeof longl, 2, "longer than");
    char *huge = calloc(1, SC_FILE_MAX + 2);
    assert_non_null(huge);
    memset(huge, '\n', SC_FILE_MAX + 1);
    expect_refused(huge, SC_FILE_MAX + 1, 0, "larger than");
    free(huge);
    /* an error after good lines applies none of them */
    REFUSED("data-dir = /d\nworkers = 2\nbogus = 1\n", 3, "unknown key");
    /* an indented line continues the previous key: a second value */
    REFUSED("workers = 2\n  3\n", 2, "set twice");
}

static void test_all_or_nothing_over_existing(void **state)
{
    (void)state;
    serve_config *c = serve_config_new("serve");
    mt_err err;
    int line = 0;
    assert_int_equal(parse(c, "workers = 2\n", &line, &err), MT_OK);
    assert_int_not_equal(parse(c, "workers = 3\nlevel = x\n", &line, &err), MT_OK);
    assert_int_equal(line, 2);
    assert_string_equal(serve_config_get(c, "workers"), "2");
    serve_config_free(c);
}

/* The measured text is what the flags-only code wrote before (tests
 * it_attest* and policies in the field pin it). */
static void test_measured_text(void **state)
{
    (void)state;
    serve_config *c = serve_config_new("serve");
    char out[2048];
    serve_config_measured(c, out, sizeof out);
    assert_string_equal(out, "mesatee-config-v1\nlevel=\nworkers=\ntask-mem-mb=\ntask-cpu-s=\n"
                             "task-wall-s=\ntoken-ttl-s=\nfile-url-root=\nmax-connections=\n");
    mt_err err;
    /* deployment paths are not measured */
    assert_int_equal(serve_config_set(c, "data-dir", "/d", SC_SRC_FLAG, NULL, NULL, &err), MT_OK);
    assert_int_equal(serve_config_set(c, "listen", "0.0.0.0:1", SC_SRC_FLAG, NULL, NULL, &err),
                     MT_OK);
    assert_int_equal(serve_config_set(c, "level", "soft", SC_SRC_FLAG, NULL, NULL, &err), MT_OK);
    assert_int_equal(serve_config_set(c, "workers", "2", SC_SRC_FLAG, NULL, NULL, &err), MT_OK);
    assert_int_equal(serve_config_set(c, "task-wall-s", "60", SC_SRC_FLAG, NULL, NULL, &err),
                     MT_OK);
    assert_int_equal(serve_config_set(c, "file-url-root", "/srv/in", SC_SRC_FLAG, NULL, NULL,
                                      &err),
                     MT_OK);
    assert_int_equal(serve_config_set(c, "log-level", "debug", SC_SRC_FLAG, NULL, NULL, &err),
                     MT_OK);
    serve_config_measured(c, out, sizeof out);
    assert_string_equal(out, "mesatee-config-v1\nlevel=soft\nworkers=2\ntask-mem-mb=\n"
                             "task-cpu-s=\ntask-wall-s=60\ntoken-ttl-s=\nfile-url-root=/srv/in\n"
                             "max-connections=\n");
    assert_int_equal(serve_config_set(c, "fetch-allow", "10.0.0.0/8", SC_SRC_FLAG, NULL, NULL,
                                      &err),
                     MT_OK);
    assert_int_equal(serve_config_set(c, "log-task-errors", NULL, SC_SRC_FLAG, NULL, NULL, &err),
                     MT_OK);
    assert_int_equal(serve_config_set(c, "seal-legacy-store", NULL, SC_SRC_FLAG, NULL, NULL,
                                      &err),
                     MT_OK);
    serve_config_measured(c, out, sizeof out);
    assert_non_null(strstr(out, "max-connections=\nfetch-allow=10.0.0.0/8\nlog-task-errors=1\n"
                                "seal-legacy-store=1\n"));
    /* false booleans are not measured (as an absent flag) */
    serve_config *d = serve_config_new("serve");
    int line;
    assert_int_equal(parse(d, "log-task-errors = false\nseal-legacy-store = no\n", &line, &err),
                     MT_OK);
    serve_config_measured(d, out, sizeof out);
    assert_null(strstr(out, "log-task-errors"));
    assert_null(strstr(out, "seal-legacy-store"));
    /* the same settings from a file measure the same */
    assert_int_equal(parse(d, "level=soft\nworkers=2\ntask-wall-s=60\nfile-url-root=/srv/in\n"
                              "fetch-allow=10.0.0.0/8\n",
                           &line, &err),
                     MT_OK);
    char out2[2048];
    serve_config_measured(d, out2, sizeof out2);
    assert_string_equal(out2, "mesatee-config-v1\nlevel=soft\nworkers=2\ntask-mem-mb=\n"
                              "task-cpu-s=\ntask-wall-s=60\ntoken-ttl-s=\nfile-url-root=/srv/in\n"
                              "max-connections=\nfetch-allow=10.0.0.0/8\n");
    serve_config_free(d);
    serve_config_free(c);
}

static void test_render_and_diff(void **state)
{
    (void)state;
    serve_config *a = serve_config_new("serve"), *b = serve_config_new("serve");
    mt_err err;
    int line;
    assert_int_equal(parse(a, "data-dir = /d\nlog-level = info\nworkers = 2\n", &line, &err),
                     MT_OK);
    assert_int_equal(parse(b, "data-dir = /d\nlog-level = debug\nworkers = 3\n", &line, &err),
                     MT_OK);
    char *t = serve_config_render(a, false);
    assert_non_null(t);
    assert_non_null(strstr(t, "data-dir"));
    assert_non_null(strstr(t, "# file /etc/m.conf:1"));
    assert_non_null(strstr(t, "# default"));
    free(t);
    t = serve_config_render(a, true);
    assert_non_null(t);
    assert_non_null(strstr(t, "\"origin\": \"/etc/m.conf:3\""));
    assert_non_null(strstr(t, "\"config_file\": \"/etc/m.conf\""));
    free(t);
    const char *ch[8];
    int n = serve_config_diff(a, b, ch, 8);
    assert_int_equal(n, 2);
    assert_string_equal(ch[0], "workers");
    assert_string_equal(ch[1], "log-level");
    assert_int_equal(serve_config_reload_kind("workers"), SC_RELOAD_NO);
    assert_int_equal(serve_config_reload_kind("level"), SC_RELOAD_NO);
    assert_int_equal(serve_config_reload_kind("log-level"), SC_RELOAD_YES);
    assert_int_equal(serve_config_reload_kind("log-format"), SC_RELOAD_YES);
    assert_int_equal(serve_config_reload_kind("access-log"), SC_RELOAD_YES);
    assert_int_equal(serve_config_reload_kind("task-wall-s"), SC_RELOAD_LEVEL_NONE);
    assert_int_equal(serve_config_reload_kind("max-connections"), SC_RELOAD_LEVEL_NONE);
    assert_int_equal(serve_config_reload_kind("no-such-key"), SC_RELOAD_NO);
    serve_config_free(a);
    serve_config_free(b);
}

static void test_executor_keys(void **state)
{
    (void)state;
    serve_config *c = serve_config_new("executor");
    assert_non_null(c);
    mt_err err;
    int line = 0;
    assert_int_equal(parse(c, "[serve]\nlisten = 0.0.0.0:1\nbogus-for-serve = 1\n"
                              "[executor]\nscheduler = https://s:7444\npoll-ms = 0100\n"
                              "log-task-errors = on\n",
                           &line, &err),
                     MT_OK);
    assert_string_equal(serve_config_get(c, "scheduler"), "https://s:7444");
    assert_string_equal(serve_config_get(c, "poll-ms"), "100");
    assert_true(serve_config_bool(c, "log-task-errors"));
    assert_false(serve_config_key_known(c, "listen"));
    assert_true(serve_config_key_known(c, "max_job_mib"));
    assert_string_equal(serve_config_key_at(c, 0), "scheduler");
    assert_null(serve_config_key_at(c, 1000));
    assert_int_equal(parse(c, "max-job-mib = 4097\n", &line, &err), MT_EINVAL);
    assert_int_equal(line, 1);
    assert_non_null(strstr(err.msg, "from 1 to 4096"));
    assert_int_equal(parse(c, "[executor]\nworkers = 2\n", &line, &err), MT_EINVAL);
    assert_int_equal(line, 2);
    serve_config_free(c);
    /* and serve skips the executor's section */
    c = serve_config_new("serve");
    assert_int_equal(parse(c, "[executor]\nscheduler = x\n[serve]\nworkers = 2\n", &line, &err),
                     MT_OK);
    assert_string_equal(serve_config_get(c, "workers"), "2");
    serve_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_values_and_lines),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_garbage_values),
        cmocka_unit_test(test_file_garbage),
        cmocka_unit_test(test_all_or_nothing_over_existing),
        cmocka_unit_test(test_measured_text),
        cmocka_unit_test(test_render_and_diff),
        cmocka_unit_test(test_executor_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
