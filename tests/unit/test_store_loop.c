/* store_next: a step error inside a row loop is an error, not the end of the
 * rows (issue 8 item 14: the scheduler committed partial updates when a step
 * failed). The error is injected with an SQL function that fails on one row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <string.h>

#include "core_internal.h"

static void boom(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_int(argv[0]) == 2)
        sqlite3_result_error(ctx, "injected step failure", -1);
    else
        sqlite3_result_int(ctx, sqlite3_value_int(argv[0]));
}

static sqlite3 *open_db(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_create_function(db, "boom", 1, SQLITE_UTF8, NULL, boom, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (1),(2),(3);"
                                  "CREATE TABLE done(x INTEGER);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    return db;
}

/* The scheduler's shape: in a transaction, one update per selected row, then
 * commit unless rc is set. Returns rc; *updated counts rows in `done`. */
static mt_status per_row_update(sqlite3 *db, const char *select, int64_t *updated, int *rows)
{
    mt_err err;
    mt_err_clear(&err);
    mt_db *d = NULL;
    assert_int_equal(mt_db_wrap_sqlite(db, &d, &err), MT_OK);
    mt_status rc = store_begin(d, &err);
    assert_int_equal(rc, MT_OK);
    sqlite3_stmt *q;
    assert_int_equal(store_prepare(db, select, &q, &err), MT_OK);
    *rows = 0;
    while (!rc && store_next(db, q, &rc, &err) && ++*rows)
        rc = store_run(d, &err, NULL, "INSERT INTO done VALUES (CAST(? AS INTEGER))",
                       store_col_text(q, 0), NULL);
    sqlite3_finalize(q);
    if (rc) {
        assert_non_null(strstr(err.msg, "injected step failure"));
        store_rollback(d);
    } else {
        assert_int_equal(store_commit(d, &err), MT_OK);
    }
    assert_int_equal(store_int(d, &err, updated, NULL, "SELECT count(*) FROM done", NULL), MT_OK);
    mt_db_close(d);
    return rc;
}

static void test_step_error_fails_loop(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    int64_t n = -1;
    int rows = 0;
    /* row 1 is updated, then the step of row 2 fails: nothing may be committed
     * (a `while (sqlite3_step(q) == SQLITE_ROW)` loop committed row 1) */
    assert_int_equal(per_row_update(db, "SELECT boom(x) FROM t", &n, &rows), MT_EIO);
    assert_int_equal(rows, 1);
    assert_int_equal(n, 0);
    /* without the failure every row is done and committed */
    assert_int_equal(per_row_update(db, "SELECT x FROM t", &n, &rows), MT_OK);
    assert_int_equal(rows, 3);
    assert_int_equal(n, 3);
    sqlite3_close(db);
}

static void test_store_next_keeps_first_error(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    sqlite3_stmt *q;
    mt_err err;
    assert_int_equal(store_prepare(db, "SELECT boom(x) FROM t", &q, &err), MT_OK);
    mt_status rc = MT_ENOTFOUND; /* an earlier error is not overwritten */
    mt_err_set(&err, MT_ENOTFOUND, "earlier");
    int rows = 0;
    while (store_next(db, q, &rc, &err))
        rows++;
    assert_int_equal(rows, 1);
    assert_int_equal(rc, MT_ENOTFOUND);
    assert_string_equal(err.msg, "earlier");
    sqlite3_finalize(q);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_error_fails_loop),
        cmocka_unit_test(test_store_next_keeps_first_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
