/* Unit tests of src/core/stmt_cache.c's thread-bound caches (issue 13): a
 * scheduler thread keeps the statements of its own connection, keyed by a
 * copy of the SQL text (callers of store_run/store_int may pass text that
 * does not outlive the call), a nested use of the same text gets a fresh
 * statement, other connections are never cached, and the release finalizes
 * every kept statement (the connection then closes with SQLITE_OK, which it
 * refuses while a statement is left). The cache works on the database
 * layer (mt_db.h); the tests wrap their own SQLite connections (borrowed)
 * so that they can look at SQLite's statement list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

static sqlite3 *open_mem(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (7)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    return db;
}

/* The first statement on h other than the store layer's own transaction
 * commands (BEGIN, BEGIN IMMEDIATE, COMMIT, ROLLBACK: kept prepared per
 * connection by db_sqlite.c until mt_db_close), NULL when none. */
static sqlite3_stmt *kept_stmt(sqlite3 *h)
{
    static const char *const own[] = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"};
    for (sqlite3_stmt *st = sqlite3_next_stmt(h, NULL); st; st = sqlite3_next_stmt(h, st)) {
        const char *q = sqlite3_sql(st);
        bool mine = false;
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            mine = mine || (q && !strcmp(q, own[i]));
        if (!mine)
            return st;
    }
    return NULL;
}

static mt_db *wrap(sqlite3 *h)
{
    mt_db *d = NULL;
    mt_err err = {0};
    assert_int_equal(mt_db_wrap_sqlite(h, &d, &err), MT_OK);
    return d;
}

static void test_bound_cache(void **state)
{
    (void)state;
    sqlite3 *rdb = open_mem(), *rother = open_mem();
    mt_db *db = wrap(rdb), *other = wrap(rother);
    mt_err err = {0};
    core_stmt_thread_bind(db);

    /* text on the heap, freed after use: the cache keeps its own copy */
    char *sql = strdup("SELECT x FROM t WHERE x = ?");
    mt_db_stmt *a, *b, *nested;
    assert_int_equal(core_stmt_get(NULL, db, sql, &a, &err), MT_OK);
    /* in use: the same text again is a fresh statement */
    assert_int_equal(core_stmt_get(NULL, db, sql, &nested, &err), MT_OK);
    assert_ptr_not_equal(a, nested);
    core_stmt_put(NULL, nested); /* not kept: finalized */
    mt_status rc = MT_OK;
    mt_db_bind_int64(a, 1, 7);
    assert_int_equal(mt_db_step(a, &rc, &err), MT_DB_ROW);
    core_stmt_put(NULL, a); /* kept: reset, bindings cleared */
    memset(sql, 'Z', strlen(sql));
    free(sql);
    char *again = strdup("SELECT x FROM t WHERE x = ?");
    assert_int_equal(core_stmt_get(NULL, db, again, &b, &err), MT_OK);
    assert_ptr_equal(a, b); /* the kept one, found by its text */
    assert_int_equal(mt_db_param_count(b), 1);
    assert_int_equal(mt_db_step(b, &rc, &err), MT_DB_DONE); /* ? cleared by the put: NULL, no row */
    core_stmt_put(NULL, b);
    free(again);

    /* the helpers of store.c go through it too */
    int64_t v = 0;
    bool found = false;
    assert_int_equal(store_int(db, &err, &v, &found, "SELECT x FROM t"), MT_OK);
    assert_true(found);
    assert_int_equal(v, 7);
    assert_int_equal(store_begin(db, &err), MT_OK);
    assert_int_equal(store_run(db, &err, NULL, "INSERT INTO t VALUES (8)"), MT_OK);
    assert_int_equal(store_commit(db, &err), MT_OK);
    assert_int_equal(store_int(db, &err, &v, &found, "SELECT count(*) FROM t"), MT_OK);
    assert_int_equal(v, 2);

    /* another connection of the same thread: never kept */
    mt_db_stmt *o;
    assert_int_equal(core_stmt_get(NULL, other, "SELECT x FROM t", &o, &err), MT_OK);
    core_stmt_put(NULL, o);
    assert_null(kept_stmt(rother));
    mt_db_close(other);
    assert_int_equal(sqlite3_close(rother), SQLITE_OK);

    /* kept statements are still there until the release ... */
    assert_non_null(kept_stmt(rdb));
    assert_int_equal(sqlite3_close(rdb), SQLITE_BUSY);
    core_stmt_thread_release();
    /* ... which finalizes them all */
    assert_null(kept_stmt(rdb));
    mt_db_close(db);
    assert_int_equal(sqlite3_close(rdb), SQLITE_OK);
}

static void test_unbound_not_kept(void **state)
{
    (void)state;
    sqlite3 *rdb = open_mem();
    mt_db *db = wrap(rdb);
    mt_err err = {0};
    mt_db_stmt *st;
    assert_int_equal(core_stmt_get(NULL, db, "SELECT x FROM t", &st, &err), MT_OK);
    core_stmt_put(NULL, st);
    int64_t v = 0;
    assert_int_equal(store_int(db, &err, &v, NULL, "SELECT x FROM t"), MT_OK);
    assert_int_equal(store_begin(db, &err), MT_OK);
    assert_int_equal(store_commit(db, &err), MT_OK);
    assert_null(kept_stmt(rdb)); /* nothing kept on an unbound thread */
    /* a failing statement reports the database's error */
    assert_int_not_equal(store_run(db, &err, NULL, "INSERT INTO nosuch VALUES (1)"), MT_OK);
    assert_non_null(strstr(err.msg, "nosuch"));
    mt_db_close(db);
    assert_int_equal(sqlite3_close(rdb), SQLITE_OK);
}

/* The audit committer's connection (c->audit_db, core_stmt_audit_cache):
 * store.c-style callers (no core named) and callers naming the core get
 * the same kept statement on it; the request connection's cache is not
 * touched; core_stmt_cache_free finalizes them (the connection then closes
 * with SQLITE_OK); a core without the audit cache keeps nothing there. */
static void test_audit_cache(void **state)
{
    (void)state;
    sqlite3 *raudit = open_mem(), *rreq = open_mem();
    mt_core *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->db = wrap(rreq);
    c->audit_db = wrap(raudit);
    mt_err err = {0};
    mt_db_stmt *a, *b;
    /* not yet asked for: uncached */
    assert_int_equal(core_stmt_get(NULL, c->audit_db, "SELECT x FROM t", &a, &err), MT_OK);
    core_stmt_put(NULL, a);
    assert_null(kept_stmt(raudit));
    core_stmt_audit_cache(c);
    char sql[32];
    snprintf(sql, sizeof sql, "SELECT x FROM t"); /* a text that does not outlive the call */
    assert_int_equal(core_stmt_get(NULL, c->audit_db, sql, &a, &err), MT_OK);
    memset(sql, 0, sizeof sql);
    core_stmt_put(NULL, a);
    assert_non_null(kept_stmt(raudit));
    assert_int_equal(core_stmt_get(c, c->audit_db, "SELECT x FROM t", &b, &err), MT_OK);
    assert_ptr_equal(a, b); /* the kept one, through the core as well */
    core_stmt_put(c, b);
    int64_t v = 0;
    assert_int_equal(store_int(c->audit_db, &err, &v, NULL, "SELECT x FROM t"), MT_OK);
    assert_int_equal(v, 7);
    assert_null(kept_stmt(rreq)); /* the request connection's cache untouched */
    assert_int_equal(sqlite3_close(raudit), SQLITE_BUSY);
    core_stmt_cache_free(c);
    assert_null(kept_stmt(raudit));
    assert_null(c->audit_stmts);
    /* after the free nothing is kept any more (the registry dropped it) */
    assert_int_equal(core_stmt_get(NULL, c->audit_db, "SELECT x FROM t", &a, &err), MT_OK);
    core_stmt_put(NULL, a);
    assert_null(kept_stmt(raudit));
    mt_db_close(c->audit_db);
    mt_db_close(c->db);
    assert_int_equal(sqlite3_close(raudit), SQLITE_OK);
    assert_int_equal(sqlite3_close(rreq), SQLITE_OK);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_cache),
        cmocka_unit_test(test_unbound_not_kept),
        cmocka_unit_test(test_audit_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
