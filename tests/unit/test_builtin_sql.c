/* Tests of the sql built-in (clean room) through mt_executor_run and the
 * real mesatee-worker: golden results, type inference, the policy (read-only,
 * no ATTACH/PRAGMA/DDL/DML, one statement, max_rows, min_group_size), bad
 * input, and a cross-check against the sqlite3 shell on plaintext when it
 * is installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    assert_string_equal(run.r.return_value, "rows: 3, suppressed: 0");
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

    /* min_group_size: groups below the threshold are suppressed */
    tb_expect_ok("sql",
                 tb_args("query",
                         "SELECT region, COUNT(*) AS __group_size, AVG(price) AS avg_price "
                         "FROM sales GROUP BY region ORDER BY region",
                         "min_group_size", "2", NULL),
                 in, 2, outs, 1, &run);
    assert_string_equal(run.out[0], "region,__group_size,avg_price\nnorth,3,2.33333333333333"
                                    "\nsouth,2,3.0\n");
    assert_string_equal(run.r.return_value, "rows: 2, suppressed: 1");
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
        {"SELEC 1", "sql: the query does not compile: near \"SELEC\": syntax error"},
        {"SELECT nope FROM sales", "no such column: nope"},
        {"  -- nothing", "holds no statement"},
        {"SELECT * FROM secret", "no such table: secret"},
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
                   2, outs, 1, "must return the size of each group as a column named __group_size");
    tb_expect_fail("sql",
                   tb_args("query", "SELECT 'x' AS __group_size", "min_group_size", "3", NULL),
                   in, 2, outs, 1, "result row 1: __group_size is not an integer");
    tb_expect_fail("sql", NULL, in, 2, outs, 1, "argument 'query'");
    tb_expect_fail("sql", tb_args("query", "SELECT 1", "max_rows", "0", NULL), in, 2, outs, 1,
                   "argument 'max_rows': expected an integer");
    tb_expect_fail("sql", tb_args("query", "SELECT 1", "mode", "rw", NULL), in, 2, outs, 1,
                   "unknown argument 'mode'");
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
        cmocka_unit_test_setup_teardown(test_sql_vs_sqlite3, tb_setup, tb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
