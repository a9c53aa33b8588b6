/* Tests of cli_help.c against tables made here: the table check names an
 * option without description, default or metavar and a short form that means
 * two options; usage lines mark required, optional and repeatable options;
 * --help shows each description and default; edit distance and "did you
 * mean" pick the near candidate and only a near one. The real table is
 * checked by `mesatee __check-help` in it_cli_help. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_help.h"

/* ---- the tables cli_help.c reads (main.c's role) ---- */

static const cli_opt good_global[] = {
    {"server", true, 's', "URL", "server", "https://127.0.0.1:7443", false},
    {"help", false, 'h', NULL, "help", "off", false},
    {NULL, false, 0, NULL, NULL, NULL, false}};
static const cli_opt good_opts[] = {
    {"in", true, 'i', "PLAIN", "plaintext file to encrypt", "required", false},
    {"arg", true, 'a', "K=V", "an argument", "none", true},
    {"force", false, 0, NULL, "overwrite", "off", false},
    {NULL, false, 0, NULL, NULL, NULL, false}};
/* an option added in the old short form, {"name", true}: no help text */
static const cli_opt no_desc[] = {
    {"in", true, 'i', "PLAIN", "plaintext file to encrypt", "required", false},
    {"frobnicate", true, 0, NULL, NULL, NULL, false},
    {NULL, false, 0, NULL, NULL, NULL, false}};
static const cli_opt no_default[] = {{"level", true, 0, "N", "a level", NULL, false},
                                     {NULL, false, 0, NULL, NULL, NULL, false}};
static const cli_opt short_clash[] = {
    {"input", true, 'i', "F", "not the same as --in", "none", false},
    {NULL, false, 0, NULL, NULL, NULL, false}};

static int fake_run(cli_ctx *ctx)
{
    (void)ctx;
    return 0;
}

static cli_cmd table[2] = {
    {"file", "encrypt", fake_run, "", "encrypt a file", good_opts, 0, 0, 0},
    {"task", "wait", fake_run, "TASK_ID", "wait for a task", good_opts, 1, 1, 0},
};

const cli_cmd *cli_commands(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}

const cli_opt *cli_global_opts(void)
{
    return good_global;
}

int cli_fail(const char *fmt, ...)
{
    (void)fmt;
    return CLI_FAIL;
}

/* ---- helpers ---- */

/* Runs cli_cmd_check_help with stdout captured; returns its code, *out the text. */
static int run_check(char **out)
{
    char path[] = "/tmp/mt-cli-help-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(1);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, 1), 1);
    int rc = cli_cmd_check_help(NULL);
    fflush(stdout);
    assert_int_equal(dup2(saved, 1), 1);
    close(saved);
    FILE *f = fdopen(fd, "r");
    assert_non_null(f);
    rewind(f);
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    *out = buf;
    return rc;
}

/* Text printed by fn(f, c) into a memory stream (caller frees). */
static char *capture_cmd(int (*fn)(FILE *, const cli_cmd *), const cli_cmd *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(fn(f, c), 0);
    fclose(f);
    return buf;
}

static int usage_adapter(FILE *f, const cli_cmd *c)
{
    cli_help_usage(f, c);
    return 0;
}

/* ---- tests ---- */

static void test_check_good_table(void **state)
{
    (void)state;
    table[0].opts = good_opts;
    char *out;
    assert_int_equal(run_check(&out), CLI_OK);
    assert_non_null(strstr(out, "command table ok"));
}

static void test_check_missing_description(void **state)
{
    (void)state;
    table[0].opts = no_desc;
    char *out;
    assert_int_equal(run_check(&out), CLI_FAIL);
    assert_non_null(strstr(out, "option --frobnicate of 'file encrypt' has no description"));
    table[0].opts = no_default;
    assert_int_equal(run_check(&out), CLI_FAIL);
    assert_non_null(strstr(out, "option --level of 'file encrypt' has no default"));
    table[0].opts = good_opts;
}

static void test_check_short_clash(void **state)
{
    (void)state;
    table[1].opts = short_clash; /* -i is --in in 'file encrypt' */
    char *out;
    assert_int_equal(run_check(&out), CLI_FAIL);
    assert_non_null(strstr(out, "option --input of 'task wait' uses a short form"));
    table[1].opts = good_opts;
    table[1].summary = "";
    assert_int_equal(run_check(&out), CLI_FAIL);
    assert_non_null(strstr(out, "command 'task wait' has no summary"));
    table[1].summary = "wait for a task";
    table[1].args_usage = "TASK_ID [--timeout S]";
    assert_int_equal(run_check(&out), CLI_FAIL);
    assert_non_null(strstr(out, "lists options in its positional-arguments usage"));
    table[1].args_usage = "TASK_ID";
}

static void test_usage_and_help(void **state)
{
    (void)state;
    table[0].opts = good_opts;
    char *u = capture_cmd(usage_adapter, &table[1]);
    assert_string_equal(u, "usage: mesatee task wait TASK_ID --in PLAIN [--arg K=V]... "
                           "[--force]\n");
    free(u);
    char *h = capture_cmd(cli_help_command, &table[0]);
    assert_non_null(strstr(h, "  -i, --in PLAIN"));
    assert_non_null(strstr(h, "plaintext file to encrypt (default: required)"));
    assert_non_null(strstr(h, "  -a, --arg K=V ..."));
    assert_non_null(strstr(h, "overwrite (default: off)"));
    assert_non_null(strstr(h, "      --force  "));
    assert_non_null(strstr(h, "  -s, --server URL"));
    free(h);
}

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(cli_edit_distance("", ""), 0);
    assert_int_equal(cli_edit_distance("task", "task"), 0);
    assert_int_equal(cli_edit_distance("tsk", "task"), 1);
    assert_int_equal(cli_edit_distance("shwo", "show"), 2);
    assert_int_equal(cli_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(cli_edit_distance("", "abc"), 3);
}

static void test_closest(void **state)
{
    (void)state;
    const char *cmds[] = {"serve", "task", "file", "function", "user"};
    assert_string_equal(cli_closest("tsk", cmds, 5), "task");
    assert_string_equal(cli_closest("fiel", cmds, 5), "file");
    assert_string_equal(cli_closest("funtcion", cmds, 5), "function");
    assert_null(cli_closest("zzzzzz", cmds, 5)); /* nothing near */
    assert_null(cli_closest("task", cmds, 5));   /* exact: no suggestion */
    assert_null(cli_closest("x", cmds, 5));      /* too short to guess */
    const char *opts[] = {"password-file", "user", "server"};
    assert_string_equal(cli_closest("pass", opts, 3), "password-file"); /* prefix */
    assert_string_equal(cli_closest("sever", opts, 3), "server");
}

static void test_progress_api(void **state)
{
    (void)state;
    assert_int_equal(mesatee_client_set_progress(NULL, NULL, NULL), MESATEE_EINVAL);
    mesatee_client *c = mesatee_client_new("https://127.0.0.1:1");
    assert_non_null(c);
    assert_int_equal(mesatee_client_set_progress(c, NULL, NULL), MESATEE_OK);
    mesatee_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_good_table),  cmocka_unit_test(test_check_missing_description),
        cmocka_unit_test(test_check_short_clash), cmocka_unit_test(test_usage_and_help),
        cmocka_unit_test(test_edit_distance),     cmocka_unit_test(test_closest),
        cmocka_unit_test(test_progress_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
