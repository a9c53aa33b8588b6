/* Tests of the "python" executor type's daemon side: mt_executor_python_check
 * compiles a function's source in a sandboxed mesatee-worker (never in the
 * calling process, which does not even map libpython), and the worker job's
 * "executor_type" field is decoded strictly (job_codec.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "job_codec.h"
#include "mt_executor.h"

#ifndef MT_WORKER_PATH
#error "MT_WORKER_PATH must be defined by the build"
#endif

static mt_status check(const char *src, size_t len, mt_err *e)
{
    mt_err_clear(e);
    return mt_executor_python_check(MT_WORKER_PATH, (const uint8_t *)src, len, e);
}

static void test_valid_and_syntax_errors(void **state)
{
    (void)state;
    mt_err e;
    const char ok[] = "import numpy\ndef entrypoint(argv):\n    return len(argv)\n";
    assert_int_equal(check(ok, strlen(ok), &e), MT_OK);
    const char unclosed[] = "def entrypoint(argv):\n    x = (1,\n    return x\n";
    assert_int_equal(check(unclosed, strlen(unclosed), &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "python: line 2, column 9:"));
    const char indent[] = "def f():\nreturn 1\n";
    assert_int_equal(check(indent, strlen(indent), &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "python: line 2,"));
    assert_non_null(strstr(e.msg, "indented block"));
    /* non-ASCII identifiers are fine (the compiler imports unicodedata in
     * the sandbox: the read-only installation is reachable) */
    const char uni[] = "\xc3\xa9t\xc3\xa9 = 1\n";
    assert_int_equal(check(uni, strlen(uni), &e), MT_OK);
    /* an empty module compiles (it fails at run time: no entry point) */
    assert_int_equal(check("", 0, &e), MT_OK);
}

static void test_bad_bytes(void **state)
{
    (void)state;
    mt_err e;
    assert_int_equal(check("x = '\xff'\n", 8, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "not UTF-8 text (invalid sequence at byte offset 5)"));
    assert_int_equal(check("x = 1\n\0\n", 8, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "NUL byte at byte offset 6"));
    /* an overlong encoding and a surrogate are not UTF-8 either */
    assert_int_equal(check("\xc0\xaf", 2, &e), MT_EINVAL);
    assert_int_equal(check("\xed\xa0\x80", 3, &e), MT_EINVAL);
    assert_int_equal(check("\xe2\x82", 2, &e), MT_EINVAL); /* truncated */
    size_t big = mt_executor_wasm_max_bytes() + 1;
    char *b = malloc(big);
    assert_non_null(b);
    memset(b, ' ', big);
    assert_int_equal(check(b, big, &e), MT_ETOOBIG);
    free(b);
    assert_int_equal(mt_executor_python_check(NULL, (const uint8_t *)"x=1", 3, &e), MT_EUNAVAIL);
    assert_int_not_equal(mt_executor_python_check("/nonexistent/mesatee-worker",
                                                  (const uint8_t *)"x=1", 3, &e),
                         MT_OK);
}

/* The daemon side never embeds Python: this process (linked like the
 * daemon's executor) has no libpython mapped after the checks. */
static void test_no_python_in_caller(void **state)
{
    (void)state;
    mt_err e;
    assert_int_equal(check("x = 1\n", 6, &e), MT_OK);
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    while (fgets(line, sizeof line, f))
        assert_null(strstr(line, "libpython"));
    fclose(f);
}

static void test_job_executor_type(void **state)
{
    (void)state;
    mt_wjob j;
    mt_err e;
    static const struct {
        const char *extra;
        mt_status want;
    } cases[] = {
        {",\"executor_type\":\"python\"", MT_EINVAL}, /* python without a module */
        {",\"executor_type\":\"perl\"", MT_EINVAL},
        {",\"executor_type\":1", MT_EINVAL},
        {",\"executor_type\":\"\"", MT_EINVAL},
        {",\"executor_type\":\"pythonpythonpythonpython\"", MT_EINVAL},
        {",\"executor_type\":\"python\",\"module\":{\"fd\":5,\"key\":"
         "\"0000000000000000000000000000000000000000000000000000000000000000\"}",
         MT_OK},
        {",\"kind\":\"python_check\",\"module\":{\"fd\":4}", MT_OK},
        {",\"kind\":\"python_check\",\"module\":{\"fd\":4,\"key\":\"00\"}", MT_EINVAL},
        {",\"kind\":\"perl_check\",\"module\":{\"fd\":4}", MT_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[1024];
        snprintf(buf, sizeof buf,
                 "{\"v\":1,\"task_id\":\"t\",\"function\":\"main\",\"inputs\":[],"
                 "\"outputs\":[],\"limits\":{\"mem_bytes\":0,\"cpu_seconds\":0,"
                 "\"max_input_bytes\":0}%s}",
                 cases[i].extra);
        mt_err_clear(&e);
        mt_status st = mt_wjob_decode(buf, strlen(buf), &j, &e);
        if (st != cases[i].want)
            fail_msg("case %zu (%s): got %d (%s)", i, cases[i].extra, st, e.msg);
        if (st == MT_OK) {
            assert_true(j.python);
            mt_wjob_free(&j);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_syntax_errors),
        cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_no_python_in_caller),
        cmocka_unit_test(test_job_executor_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
