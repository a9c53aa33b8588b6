/* Tests of the sql built-in (clean room) through mt_executor_run and the
 * real mesatee-worker: golden results, type inference, the policy (read-only,
 * no ATTACH/PRAGMA/DDL/DML, one statement, max_rows, min_group_size), bad
 * input, and a cross-check against the sqlite3 shell on plaintext when it
 * is installed. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_builtin_common.h"

static const char *const outs[] = {"result_a", "result_b"};

#define SALES "region,product,amount,price\nnorth,pen,3,1.5\nsouth,pen,1,1.5\nnorth,ink,2,4\n" \
              "east,pen,5,1.25\nnorth,pen,1,1.5\nsouth,\"ink, blue\",4,4.5\n"
#define PEOPLE "id,name,region\n1,Ann,north\n2,Bob,south\n3,\"O\"\"Neil\",east\n"

static void test_sql_golden(void **state)
{
    tb_in in[2] = {{"sales", SALES}, {"people", PEOPLE}};
    tb_run run;
    tb_expect_ok("sql",
                 tb_args("query",
                         "SELECT region, SUM(amount) AS units, SUM(amount * price) AS revenue "
                         "FROM sales GROUP BY region ORDER BY region",
                         NULL),
                 in, 2, outs, 2, &run);
    assert_string_equal(run.out[0], "region,units,revenue\neast,5,6.25\nnorth,6,14.0\nsouth,5,19.5\n");
    assert_string_equal(run.out[1], run.out[0]);
    assert_string_equal(run.r.return_value, "rows: 3");
    tb_run_clear(&run);

    /* join across parties; text quoting; types inferred (id INTEGER sorts numerically) */
    tb_expect_ok("sql",
                 tb_args("query",
                         "SELECT p.name, s.product, typeof(p.id) AS t FROM people p JOIN sales s "
                         "ON s.region = p.region WHERE s.amount >= 4 ORDER BY p.id; -- done",
                         NULL),
                 in, 2, outs, 1, &run);
    assert_string_equal(run.out[0], "name,product,t\nBob,\"ink, blue\",integer\n\"O\"\"Neil\",pen,"
                                    "integer\n");
    tb_run_clear(&run);

    /* min_group_size: groups below the threshold are suppressed (the
     * platform counts each group's rows itself; __group_size is just a column) */
    tb_expect_ok("sql",
                 tb_args("query",
                         "SELECT region, COUNT(*) AS __group_size, AVG(price) AS avg_price "
                         "FROM sales GROUP BY region ORDER BY region",
                         "min_group_size", "2", NULL),
                 in, 2, outs, 1, &run);
    assert_string_equal(run.out[0], "region,__group_size,avg_price\nnorth,3,2.33333333333333"
                                    "\nsouth,2,3.0\n");
    assert_string_equal(run.r.return_value, "rows: 2");
    tb_run_clear(&run);

    /* empty strings and NULLs; a one-column result keeps empty rows */
    tb_in e[1] = {{"t", "a,b\nx,\n,\n"}};
    tb_expect_ok("sql", tb_args("query", "SELECT a FROM t", NULL), e, 1, outs, 1, &run);
    assert_string_equal(run.out[0], "a\nx\n\"\"\n");
    tb_run_clear(&run);
    tb_in n[1] = {{"t", "a,b\n1,\n2,3\n"}};
    tb_expect_ok("sql", tb_args("query", "SELECT a, b, b IS NULL AS n FROM t", NULL), n, 1, outs,
                 1, &run);
    assert_string_equal(run.out[0], "a,b,n\n1,,1\n2,3,0\n");
    tb_run_clear(&run);
}

static void test_sql_policy(void **state)
{
    tb_in in[2] = {{"sales", SALES}, {"people", PEOPLE}};
    struct {
        const char *q, *want;
    } bad[] = {
        {"DELETE FROM sales", "DELETE is not allowed"},
        {"UPDATE sales SET amount = 0", "UPDATE is not allowed"},
        {"INSERT INTO sales VALUES ('x','y',1,1)", "INSERT is not allowed"},
        {"DROP TABLE sales", "changing the schema (CREATE, DROP, ALTER) is not allowed"},
        {"CREATE TABLE x(a)", "is not allowed"},
        {"ALTER TABLE sales ADD COLUMN z", "is not allowed"},
        {"CREATE INDEX i ON sales(region)", "is not allowed"},
        {"ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH is not allowed"},
        {"PRAGMA writable_schema = 1", "PRAGMA is not allowed"},
        {"PRAGMA table_info(sales)", "PRAGMA is not allowed"},
        {"SELECT load_extension('/tmp/evil')", "load_extension"},
        {"BEGIN", "transaction control is not allowed"},
        {"SELECT 1; DELETE FROM sales", "exactly one statement"},
        {"SELECT 1; SELECT 2", "exactly one statement"},
        {"SELEC 1", "sql: the query does not compile: syntax error (SQLite error 1: SQL logic "
                    "error, at byte 0 of the query)"},
        {"SELECT nope FROM sales", "the query does not compile: no such column (SQLite error 1"},
        {"  -- nothing", "holds no statement"},
        {"SELECT * FROM secret", "the query does not compile: no such table (SQLite error 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        tb_expect_fail("sql", tb_args("query", bad[i].q, NULL), in, 2, outs, 1, bad[i].want);

    tb_expect_fail("sql", tb_args("query", "SELECT * FROM sales", "max_rows", "5", NULL), in, 2,
                   outs, 1, "more than max_rows = 5 rows");
    tb_run run;
    tb_expect_ok("sql", tb_args("query", "SELECT * FROM sales", "max_rows", "6", NULL), in, 2,
                 outs, 1, &run);
    tb_run_clear(&run);
    tb_expect_fail("sql",
                   tb_args("query", "SELECT region FROM sales", "min_group_size", "3", NULL), in,
                   2, outs, 1, "result column 1 must be COUNT(..), SUM(..), AVG(..) or TOTAL(..)");
    tb_expect_fail("sql",
                   tb_args("query", "SELECT 'x' AS __group_size", "min_group_size", "3", NULL),
                   in, 2, outs, 1, "the query must read input tables");
    tb_expect_fail("sql", NULL, in, 2, outs, 1, "argument 'query'");
    tb_expect_fail("sql", tb_args("query", "SELECT 1", "max_rows", "0", NULL), in, 2, outs, 1,
                   "argument 'max_rows': expected an integer");
    tb_expect_fail("sql", tb_args("query", "SELECT 1", "mode", "rw", NULL), in, 2, outs, 1,
                   "unknown argument 'mode'");
}

/* ---- issue 8, item 11: reasons carry classes, never data; the schema is
 * not readable; group sizes are the engine's ---- */

#define ALICE "id,secret,region\n1,TOPSECRET-ALICE-1,north\n2,TOPSECRET-ALICE-2,north\n" \
              "3,TOPSECRET-ALICE-3,south\n"

static void expect_fail_without(const char *q, const char *min_group, const char *want,
                                const char *const *never)
{
    tb_in in[2] = {{"alice", ALICE}, {"sales", SALES}};
    tb_run run;
    tb_exec("sql", tb_args("query", q, "min_group_size", min_group, NULL), in, 2, outs, 1, &run);
    assert_false(run.r.ok);
    assert_non_null(run.r.failure_reason);
    if (!strstr(run.r.failure_reason, want))
        fail_msg("query %s: reason '%s' lacks '%s'", q, run.r.failure_reason, want);
    for (int i = 0; never[i]; i++) {
        if (strstr(run.r.failure_reason, never[i]))
            fail_msg("query %s: reason '%s' leaks '%s'", q, run.r.failure_reason, never[i]);
        if (run.r.log && strstr(run.r.log, never[i]))
            fail_msg("query %s: log '%s' leaks '%s'", q, run.r.log, never[i]);
    }
    tb_run_clear(&run);
}

static void test_sql_reasons_leak_nothing(void **state)
{
    static const char *const data[] = {"TOPSECRET", "ALICE", NULL};
    /* another party's values as a JSON path: SQLite's message quotes them */
    expect_fail_without("SELECT json_extract('{}', secret) FROM alice", "0",
                        "sql: the query failed: JSON path error (SQLite error 1", data);
    expect_fail_without("SELECT json_insert('{}', secret, 1) FROM alice WHERE id = 2", "0",
                        "JSON path error", data);
    /* a syntax error: class and byte offset, no query text */
    static const char *const qbytes[] = {"QUERYBYTES", "near", "\"AND\"", NULL};
    expect_fail_without("SELECT * FROM alice WHERE secret = 'QUERYBYTES' AND AND 1", "0",
                        "the query does not compile: syntax error (SQLite error 1: SQL logic "
                        "error, at byte",
                        qbytes);
    static const char *const names[] = {"nosuchcolumnQB", NULL};
    expect_fail_without("SELECT nosuchcolumnQB FROM alice", "0", "no such column", names);
}

/* The detail behind a reason reaches the operator's log (stderr) only when
 * the operator turned it on. */
static char *run_capturing_stderr(const char *q)
{
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.txt", tb_dir());
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    tb_in in[2] = {{"alice", ALICE}, {"sales", SALES}};
    tb_run run;
    tb_exec("sql", tb_args("query", q, NULL), in, 2, outs, 1, &run);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_false(run.r.ok);
    tb_run_clear(&run);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void test_sql_detail_to_operator_log_only(void **state)
{
    const char *q = "SELECT json_extract('{}', secret) FROM alice";
    mt_executor_set_log_task_errors(false);
    assert_null(strstr(run_capturing_stderr(q), "TOPSECRET"));
    mt_executor_set_log_task_errors(true);
    const char *log = run_capturing_stderr(q);
    mt_executor_set_log_task_errors(false);
    if (!strstr(log, "failure detail (operator log only)") || !strstr(log, "TOPSECRET-ALICE-1"))
        fail_msg("operator log lacks the detail: %s", log);
}

static void test_sql_schema_refused(void **state)
{
    static const char *const cols[] = {"secret", "CREATE TABLE", NULL};
    const char *q[] = {"SELECT sql FROM sqlite_master", "SELECT name, sql FROM sqlite_schema",
                       "SELECT count(*) FROM sqlite_master", "SELECT 1 FROM sqlite_temp_master",
                       "SELECT * FROM main.sqlite_master", "SELECT name FROM pragma_table_info('alice')",
                       "SELECT * FROM pragma_table_list", NULL};
    for (int i = 0; q[i]; i++)
        expect_fail_without(q[i], "0", "is not allowed", cols);
    expect_fail_without("SELECT * FROM dbstat", "0", "sql: the query does not compile", cols);
    /* json_each still works (its module is kept and warmed up) */
    tb_in in[2] = {{"alice", ALICE}, {"sales", SALES}};
    tb_run run;
    tb_expect_ok("sql", tb_args("query", "SELECT value FROM json_each('[1,2]')", NULL), in, 2,
                 outs, 1, &run);
    assert_string_equal(run.out[0], "value\n1\n2\n");
    tb_run_clear(&run);
}

static void test_sql_group_size_by_engine(void **state)
{
    tb_in in[2] = {{"alice", ALICE}, {"sales", SALES}};
    tb_run run;
    /* no __group_size column at all: the platform counts (east has 1 row) */
    tb_expect_ok("sql",
                 tb_args("query",
                         "SELECT region, SUM(amount) AS units FROM sales GROUP BY region "
                         "ORDER BY region",
                         "min_group_size", "2", NULL),
                 in, 2, outs, 1, &run);
    assert_string_equal(run.out[0], "region,units\nnorth,6\nsouth,5\n");
    /* the number of suppressed groups is revealed nowhere */
    assert_string_equal(run.r.return_value, "rows: 2");
    assert_null(strstr(run.r.log ? run.r.log : "", "suppressed"));
    tb_run_clear(&run);
    /* a __group_size inflated by a self-join does not help: each table's
     * distinct rows are counted */
    tb_expect_ok("sql",
                 tb_args("query",
                         "SELECT a.region, COUNT(*) AS __group_size FROM sales a JOIN sales b "
                         "ON 1 = 1 GROUP BY a.region ORDER BY a.region",
                         "min_group_size", "2", NULL),
                 in, 2, outs, 1, &run);
    assert_string_equal(run.out[0], "region,__group_size\nnorth,18\nsouth,12\n");
    tb_run_clear(&run);
    /* a join across parties: each party's group must be large enough */
    tb_expect_ok("sql",
                 tb_args("query",
                         "SELECT s.region, COUNT(*) AS n FROM sales AS s, alice WHERE "
                         "alice.region = s.region GROUP BY s.region",
                         "min_group_size", "2", NULL),
                 in, 2, outs, 1, &run);
    assert_string_equal(run.out[0], "region,n\nnorth,6\n"); /* south: 1 alice row */
    tb_run_clear(&run);
    /* one group: the whole table (6 rows) */
    tb_expect_ok("sql",
                 tb_args("query", "SELECT COUNT(*), TOTAL(amount) FROM sales", "min_group_size",
                         "6", NULL),
                 in, 2, outs, 1, &run);
    assert_string_equal(run.out[0], "COUNT(*),TOTAL(amount)\n6,16.0\n");
    tb_run_clear(&run);
    tb_expect_ok("sql",
                 tb_args("query", "SELECT COUNT(*), TOTAL(amount) FROM sales", "min_group_size",
                         "7", NULL),
                 in, 2, outs, 1, &run);
    assert_string_equal(run.out[0], "COUNT(*),TOTAL(amount)\n");
    assert_string_equal(run.r.return_value, "rows: 0");
    tb_run_clear(&run);

    /* shapes where the platform cannot tell the group are refused */
    static const char *const none[] = {NULL};
    struct {
        const char *q, *want;
    } bad[] = {
        {"SELECT region, 5 AS __group_size FROM sales GROUP BY region", "result column 2"},
        {"SELECT region, product FROM sales GROUP BY region", "result column 2"},
        {"SELECT secret FROM alice", "result column 1"},
        {"SELECT region, MAX(secret) FROM alice GROUP BY region", "result column 2"},
        {"SELECT g, COUNT(*) FROM (SELECT secret AS g FROM alice) GROUP BY g",
         "subqueries, CTEs"},
        {"WITH x AS (SELECT * FROM alice) SELECT region, COUNT(*) FROM x GROUP BY region",
         "must start with SELECT"},
        {"SELECT region, COUNT(*) FROM alice GROUP BY region UNION ALL SELECT secret, 9 FROM "
         "alice",
         "subqueries, CTEs"},
        {"SELECT region, LAG(SUM(id)) OVER (ORDER BY region) FROM alice GROUP BY region",
         "window functions are not allowed (token 11: OVER)"},
        {"SELECT DISTINCT region FROM alice", "DISTINCT"},
        {"SELECT region, COUNT(*) FROM alice WHERE id IN (SELECT id FROM alice) GROUP BY region",
         "subqueries"},
        {"SELECT region, COUNT(*) FROM alice GROUP BY region ORDER BY secret", "ORDER BY term 1"},
        {"SELECT ssn AS region, COUNT(*) FROM alice GROUP BY region", "result column 1"},
        {"SELECT region, COUNT(*) FROM (alice) GROUP BY region", "FROM may only name"},
        {"SELECT COUNT(*) FROM json_each('[1]')", "at least one input table"},
        /* an error offset points into the query as written, not the rewrite */
        {"SELECT COUNT(*), SUM(nosuch) FROM alice",
         "no such column (SQLite error 1: SQL logic error, at byte 21 of the query)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_fail_without(bad[i].q, "2", bad[i].want, none);
}

static void test_sql_bad_input(void **state)
{
    tb_in cols[1] = {{"t", "a,b\n1,2\n3\n"}};
    tb_expect_fail("sql", tb_args("query", "SELECT 1", NULL), cols, 1, outs, 1,
                   "input 't', line 3, column 2: expected 2 fields");
    tb_in empty[1] = {{"t", ""}};
    tb_expect_fail("sql", tb_args("query", "SELECT 1", NULL), empty, 1, outs, 1,
                   "input 't', line 1, column 1: empty input");
    tb_in name[1] = {{"my-table", "a\n1\n"}};
    tb_expect_fail("sql", tb_args("query", "SELECT 1", NULL), name, 1, outs, 1,
                   "input slot 'my-table' is not usable as a table name");
    tb_in dup[1] = {{"t", "a,A\n1,2\n"}};
    tb_expect_fail("sql", tb_args("query", "SELECT 1", NULL), dup, 1, outs, 1,
                   "input 't', line 1: cannot create its table: duplicate column name");
    tb_in quote[1] = {{"t", "a\nx\"y\n"}};
    tb_expect_fail("sql", tb_args("query", "SELECT 1", NULL), quote, 1, outs, 1,
                   "input 't', line 2, column 1: quote inside an unquoted field");
}

static void test_sql_vs_sqlite3(void **state)
{
    if (!tb_shell_ok("sqlite3 -version")) {
        print_message("sqlite3 shell not installed: cross-check skipped\n");
        skip();
    }
    const char *q = "SELECT s.region, p.name, COUNT(*) AS n, SUM(s.amount) AS units, "
                    "MAX(s.price) AS top FROM sales s LEFT JOIN people p USING (region) "
                    "GROUP BY s.region, p.name ORDER BY units DESC, s.region";
    tb_in in[2] = {{"sales", SALES}, {"people", PEOPLE}};
    tb_run run;
    tb_expect_ok("sql", tb_args("query", q, NULL), in, 2, outs, 1, &run);
    char *ps = tb_write_plain("sales.csv", SALES), *pp = tb_write_plain("people.csv", PEOPLE);
    char script[2048];
    snprintf(script, sizeof script,
             "CREATE TABLE sales(region TEXT, product TEXT, amount INTEGER, price REAL);\n"
             "CREATE TABLE people(id INTEGER, name TEXT, region TEXT);\n"
             ".mode csv\n.import --skip 1 %s sales\n.import --skip 1 %s people\n"
             ".headers on\n%s;\n",
             ps, pp, q);
    char *sp = tb_write_plain("script.sql", script);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sqlite3 :memory: < %s | tr -d '\\r'", sp);
    char *want = tb_shell_out(cmd);
    assert_non_null(want);
    assert_string_equal(run.out[0], want);
    free(want);
    free(ps);
    free(pp);
    free(sp);
    tb_run_clear(&run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sql_golden, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_sql_policy, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_sql_bad_input, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_sql_reasons_leak_nothing, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_sql_schema_refused, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_sql_detail_to_operator_log_only, tb_setup,
                                        tb_teardown),
        cmocka_unit_test_setup_teardown(test_sql_group_size_by_engine, tb_setup, tb_teardown),
        cmocka_unit_test_setup_teardown(test_sql_vs_sqlite3, tb_setup, tb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
