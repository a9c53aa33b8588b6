/* db_sqlite: the SQLite backend of mt_db (mt_db.h). The connection settings
 * are those src/core/store.c used: WAL, synchronous=FULL, foreign keys on,
 * a 10 s busy timeout, opened SQLITE_OPEN_NOMUTEX (one thread at a time per
 * connection, the caller's lock). SQL is passed unchanged (our dialect is
 * SQLite's). Messages are sqlite3_errmsg's, which name constraints and
 * columns, never values. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

#define DBS_BUSY_TIMEOUT_MS 10000

static bool busy_code(int c)
{
    c &= 0xff;
    return c == SQLITE_BUSY || c == SQLITE_LOCKED;
}

static mt_status dbs_fail(mt_db *db, int code, mt_err *err)
{
    sqlite3 *h = db->h;
    if (busy_code(code))
        return db_fail(db, err, MT_EUNAVAIL, true, "database busy (retry): %s",
                       sqlite3_errmsg(h));
    if ((code & 0xff) == SQLITE_NOMEM)
        return db_fail(db, err, MT_ENOMEM, false, "out of memory");
    return db_fail(db, err, MT_EIO, false, "database error: %s", sqlite3_errmsg(h));
}

static mt_status wrap(sqlite3 *h, bool borrowed, mt_db **out, mt_err *err)
{
    mt_db *db = calloc(1, sizeof *db);
    if (!db)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    db->backend = MT_DB_SQLITE;
    db->h = h;
    db->borrowed = borrowed;
    *out = db;
    return MT_OK;
}

mt_status mt_db_wrap_sqlite(struct sqlite3 *h, mt_db **out, mt_err *err)
{
    *out = NULL;
    if (!h)
        return mt_err_set(err, MT_EINVAL, "mt_db_wrap_sqlite: no connection");
    return wrap(h, true, out, err);
}

mt_status dbs_open(const char *path, unsigned flags, mt_db **out, mt_err *err)
{
    bool readonly = flags & MT_DB_READONLY;
    sqlite3 *h = NULL;
    int f = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    f |= SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &h, f, NULL) != SQLITE_OK) {
        mt_status rc = mt_err_set(err, MT_EIO, "cannot open database %s: %s", path,
                                  h ? sqlite3_errmsg(h) : "out of memory");
        sqlite3_close(h);
        return rc;
    }
    sqlite3_busy_timeout(h, DBS_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(h, 0);
    mt_db *db = NULL;
    mt_status rc = wrap(h, false, &db, err);
    if (rc) {
        sqlite3_close(h);
        return rc;
    }
    const char *pragmas = readonly ? "PRAGMA foreign_keys=ON;"
                                   : "PRAGMA journal_mode=WAL;"
                                     "PRAGMA synchronous=FULL;"
                                     "PRAGMA foreign_keys=ON;";
    if ((rc = dbs_exec(db, pragmas, err))) {
        dbs_close(db);
        return rc;
    }
    *out = db;
    return MT_OK;
}

void dbs_close(mt_db *db)
{
    if (!db->borrowed)
        sqlite3_close_v2(db->h);
    free(db);
}

/* Debug builds (the sanitizer suite) check that SQL run on SQLite would
 * also translate for PostgreSQL, so a construct outside the common subset
 * fails in the SQLite test runs too, not first on PostgreSQL. */
static mt_status portable(mt_db *db, const char *sql, mt_err *err)
{
#ifdef NDEBUG
    (void)db;
    (void)sql;
    (void)err;
    return MT_OK;
#else
    char *t = NULL;
    mt_err e;
    mt_status rc = mt_db_translate(MT_DB_PG, sql, &t, NULL, &e);
    free(t);
    if (rc == MT_EINVAL)
        return db_fail(db, err, MT_EINVAL, false, "SQL not portable to PostgreSQL: %s", e.msg);
    return MT_OK;
#endif
}

mt_status dbs_exec(mt_db *db, const char *sql, mt_err *err)
{
    mt_status prc = portable(db, sql, err);
    if (prc)
        return prc;
    char *msg = NULL;
    int c = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
    if (c != SQLITE_OK) {
        mt_status rc;
        if (busy_code(c))
            rc = db_fail(db, err, MT_EUNAVAIL, true, "database busy (retry): %s",
                         msg ? msg : sqlite3_errstr(c));
        else
            rc = db_fail(db, err, MT_EIO, false, "database error: %s",
                         msg ? msg : sqlite3_errstr(c));
        sqlite3_free(msg);
        return rc;
    }
    db->changes = sqlite3_changes(db->h);
    return MT_OK;
}

mt_status dbs_set_busy_timeout(mt_db *db, unsigned ms, mt_err *err)
{
    int c = sqlite3_busy_timeout(db->h, ms > 0x7fffffffu ? 0x7fffffff : (int)ms);
    return c == SQLITE_OK ? MT_OK : dbs_fail(db, c, err);
}

bool dbs_in_tx(mt_db *db)
{
    return !sqlite3_get_autocommit(db->h);
}

mt_status dbs_last_insert_id(mt_db *db, int64_t *id, mt_err *err)
{
    (void)err;
    *id = sqlite3_last_insert_rowid(db->h);
    return MT_OK;
}

mt_status dbs_prepare(mt_db *db, const char *sql, mt_db_stmt *st, mt_err *err)
{
    mt_status prc = portable(db, sql, err);
    if (prc)
        return prc;
    sqlite3_stmt *s = NULL;
    int c = sqlite3_prepare_v2(db->h, sql, -1, &s, NULL);
    if (c != SQLITE_OK)
        return dbs_fail(db, c, err);
    if (!s)
        return db_fail(db, err, MT_EINVAL, false, "database error: empty statement");
    st->st = s;
    st->nparams = sqlite3_bind_parameter_count(s);
    return MT_OK;
}

void dbs_finalize(mt_db_stmt *st)
{
    sqlite3_finalize(st->st);
}

void dbs_bind(mt_db_stmt *st, int i, const db_param *v)
{
    sqlite3_stmt *s = st->st;
    if (v->is_null)
        sqlite3_bind_null(s, i);
    else if (v->is_int)
        sqlite3_bind_int64(s, i, v->ival);
    else if (v->is_blob)
        sqlite3_bind_blob64(s, i, v->text, v->len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_text64(s, i, v->text, v->len, SQLITE_TRANSIENT, SQLITE_UTF8);
}

void dbs_clear_bindings(mt_db_stmt *st)
{
    sqlite3_clear_bindings(st->st);
}

int dbs_step(mt_db_stmt *st, mt_status *rc, mt_err *err)
{
    int c = sqlite3_step(st->st);
    if (c == SQLITE_ROW)
        return MT_DB_ROW;
    if (c == SQLITE_DONE) {
        st->db->changes = sqlite3_changes(st->db->h);
        return MT_DB_DONE;
    }
    /* the statement's error is the connection's after a failed step */
    if (*rc == MT_OK)
        *rc = dbs_fail(st->db, c, err);
    else
        st->db->retryable = busy_code(c);
    return -1;
}

void dbs_reset(mt_db_stmt *st)
{
    sqlite3_reset(st->st);
}

int dbs_col_count(const mt_db_stmt *st)
{
    return sqlite3_column_count(st->st);
}

bool dbs_col_null(mt_db_stmt *st, int i)
{
    return sqlite3_column_type(st->st, i) == SQLITE_NULL;
}

int64_t dbs_col_int64(mt_db_stmt *st, int i)
{
    return sqlite3_column_int64(st->st, i);
}

const char *dbs_col_text(mt_db_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st->st, i);
    return t ? (const char *)t : "";
}

const void *dbs_col_blob(mt_db_stmt *st, int i, size_t *n)
{
    const void *p = sqlite3_column_blob(st->st, i);
    int len = sqlite3_column_bytes(st->st, i);
    *n = p && len > 0 ? (size_t)len : 0;
    return *n ? p : NULL;
}

mt_status mt_db_open_sqlite_path(const char *path, unsigned flags, mt_db **out, mt_err *err)
{
    *out = NULL;
    return dbs_open(path, flags, out, err);
}

struct sqlite3 *mt_db_release_sqlite(mt_db *db)
{
    if (!db || db->backend != MT_DB_SQLITE)
        return NULL;
    sqlite3 *h = db->h;
    free(db);
    return h;
}
