/* db: the public functions of mt_db (mt_db.h): URL parsing, parameter
 * storage, and the dispatch to the SQLite (db_sqlite.c) or PostgreSQL
 * (db_pg.c) backend. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "db_internal.h"

mt_status db_fail(mt_db *db, mt_err *err, mt_status code, bool retryable, const char *fmt, ...)
{
    if (db)
        db->retryable = retryable;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- outages (mt_db_outages) ---------------------------------------------- */

static pthread_mutex_t outage_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t outage_since;     /* 0: the store is not known to be away */
static int64_t outage_last_start; /* when the last ended outage was first seen */
static uint64_t outage_ended;

void db_outage_begin(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    pthread_mutex_lock(&outage_mu);
    if (!outage_since)
        outage_since = now;
    pthread_mutex_unlock(&outage_mu);
}

void db_outage_end(void)
{
    pthread_mutex_lock(&outage_mu);
    if (outage_since) {
        outage_last_start = outage_since;
        outage_since = 0;
        outage_ended++;
    }
    pthread_mutex_unlock(&outage_mu);
}

void mt_db_outages(uint64_t *ended, int64_t *start_ms)
{
    pthread_mutex_lock(&outage_mu);
    *ended = outage_ended;
    *start_ms = outage_last_start;
    pthread_mutex_unlock(&outage_mu);
}

/* ---- commit counts (mt_db_commit_counts) ---------------------------------- */

static _Atomic uint64_t commits_write[3], commits_read[3]; /* by mt_db_backend */

void mt_db_commit_counts(mt_db_backend backend, uint64_t *writes, uint64_t *reads)
{
    unsigned b = backend == MT_DB_PG ? 2 : 1;
    *writes = commits_write[b];
    *reads = commits_read[b];
}

static void count_commit(mt_db *db, bool wrote)
{
    unsigned b = db->backend == MT_DB_PG ? 2 : 1;
    if (wrote)
        commits_write[b]++;
    else
        commits_read[b]++;
}

static bool db_in_tx(mt_db *db)
{
    return db->backend == MT_DB_PG ? db->in_tx : dbs_in_tx(db);
}

/* The first keyword of sql (after blanks and opening parentheses) is w
 * (case-insensitive, a whole word). */
static bool keyword_is(const char *sql, const char *w)
{
    while (*sql == ' ' || *sql == '\n' || *sql == '\t' || *sql == '(')
        sql++;
    size_t n = strlen(w);
    return !strncasecmp(sql, w, n) &&
           !((sql[n] >= 'A' && sql[n] <= 'Z') || (sql[n] >= 'a' && sql[n] <= 'z') ||
             sql[n] == '_');
}

/* A statement that makes a transaction a writing one (commit counts). */
static bool sql_writes(const char *sql)
{
    static const char *const quiet[] = {"SELECT", "BEGIN", "COMMIT", "END", "ROLLBACK",
                                        "SAVEPOINT", "RELEASE", "PRAGMA", "SET", "SHOW",
                                        "LISTEN", "UNLISTEN"};
    for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
        if (keyword_is(sql, quiet[i]))
            return false;
    return true;
}

mt_db_backend mt_db_url_backend(const char *url)
{
    if (!url || !url[0])
        return 0;
    if (!strncasecmp(url, "postgres://", 11) || !strncasecmp(url, "postgresql://", 13))
        return MT_DB_PG;
    if (!strncasecmp(url, "file:", 5) || !strncasecmp(url, "sqlite:", 7))
        return MT_DB_SQLITE;
    /* a scheme "xyz://" we do not know is refused rather than taken as a path */
    const char *s = strstr(url, "://");
    if (s) {
        for (const char *p = url; p < s; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (p > url && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))))
                return MT_DB_SQLITE; /* not a scheme: a path containing "://" */
        return 0;
    }
    return MT_DB_SQLITE;
}

mt_status mt_db_url_sqlite_path(const char *url, const char **path, mt_err *err)
{
    *path = NULL;
    if (mt_db_url_backend(url) != MT_DB_SQLITE)
        return mt_err_set(err, MT_EINVAL, "store URL: not a SQLite path or file: URL");
    const char *p = url;
    if (!strncasecmp(url, "sqlite:", 7))
        p = url + 7;
    else if (!strncasecmp(url, "file:", 5))
        p = url + 5;
    /* file:///abs/path and sqlite:///abs/path: drop the empty authority */
    if (p != url && !strncmp(p, "//", 2)) {
        if (p[2] != '/')
            return mt_err_set(err, MT_EINVAL,
                              "store URL: a file URL names no host (use file:///path)");
        p += 2;
    }
    if (!p[0])
        return mt_err_set(err, MT_EINVAL, "store URL: empty SQLite path");
    *path = p;
    return MT_OK;
}

mt_status mt_db_open(const char *url, unsigned flags, mt_db **out, mt_err *err)
{
    *out = NULL;
    switch (mt_db_url_backend(url)) {
    case MT_DB_SQLITE: {
        const char *path;
        mt_status rc = mt_db_url_sqlite_path(url, &path, err);
        return rc ? rc : dbs_open(path, flags, out, err);
    }
    case MT_DB_PG:
        if (flags & MT_DB_READONLY)
            return mt_err_set(err, MT_EINVAL, "store URL: read-only is for SQLite files only");
        return dbp_open(url, out, err);
    default:
        return mt_err_set(err, MT_EINVAL,
                          "store URL: unknown scheme (use a path, file:PATH or postgres://...)");
    }
}

void mt_db_close(mt_db *db)
{
    if (!db)
        return;
    if (db->backend == MT_DB_PG)
        dbp_close(db);
    else
        dbs_close(db);
}

mt_db_backend mt_db_backend_of(const mt_db *db)
{
    return db->backend;
}

bool mt_db_conn_option(mt_db *db, const char *keyword, char *out, size_t cap)
{
    if (!db || db->backend != MT_DB_PG || !cap)
        return false;
    return dbp_conn_option(db, keyword, out, cap);
}

struct sqlite3 *mt_db_sqlite_handle(mt_db *db)
{
    return db && db->backend == MT_DB_SQLITE ? db->h : NULL;
}

/* mt_db_tx_serial's source: unique in the process */
static _Atomic uint64_t tx_serials;

void mt_db_set_prefetch(mt_db *db, const char *sql)
{
    if (db->backend == MT_DB_PG)
        dbp_set_prefetch(db, sql);
}

bool mt_db_prefetch_take(mt_db *db, bool *row, int64_t *i0, char *t1, size_t cap)
{
    return db->backend == MT_DB_PG && dbp_prefetch_take(db, row, i0, t1, cap);
}

uint64_t mt_db_tx_serial(mt_db *db)
{
    return db_in_tx(db) ? db->tx_serial : 0;
}

mt_status mt_db_exec(mt_db *db, const char *sql, mt_err *err)
{
    db->retryable = false;
    bool was_in = db_in_tx(db), begins = keyword_is(sql, "BEGIN");
    db->changes = 0;
    mt_status rc = db->backend == MT_DB_PG ? dbp_exec(db, sql, err) : dbs_exec(db, sql, err);
    bool ddl = keyword_is(sql, "CREATE") || keyword_is(sql, "ALTER") || keyword_is(sql, "DROP");
    if (!db_in_tx(db))
        db->tx_serial = 0;
    else if (begins || keyword_is(sql, "ROLLBACK")) /* ROLLBACK TO undoes statements */
        db->tx_serial = rc ? 0 : ++tx_serials;
    /* a prefetched result read before a ROLLBACK TO (or captured in its
     * round trip) may describe rows the transaction no longer holds, or
     * miss ones appended after it by other paths: dropped */
    if (keyword_is(sql, "ROLLBACK") && db->backend == MT_DB_PG) {
        bool r;
        int64_t i;
        char t[2];
        (void)dbp_prefetch_take(db, &r, &i, t, sizeof t);
    }
    if (begins)
        db->tx_wrote = false;
    else if (!rc && sql_writes(sql) && (db->changes > 0 || ddl)) {
        if (was_in)
            db->tx_wrote = true;
        else if (!db_in_tx(db))
            count_commit(db, true); /* committed by itself */
    }
    return rc;
}

mt_status mt_db_begin(mt_db *db, mt_db_tx mode, mt_err *err)
{
    db->retryable = false;
    db->tx_wrote = false;
    db->outcome_unknown = false;
    mt_status rc = db->backend == MT_DB_PG ? dbp_begin(db, mode, err) : dbs_begin(db, mode, err);
    db->tx_serial = rc ? 0 : ++tx_serials;
    return rc;
}

static mt_status commit(mt_db *db, bool sync, mt_err *err)
{
    db->retryable = false;
    mt_status rc = db->backend == MT_DB_PG ? dbp_commit(db, err) : dbs_commit(db, sync, err);
    if (!rc)
        count_commit(db, db->tx_wrote);
    db->tx_wrote = false;
    db->tx_serial = 0;
    return rc;
}

mt_status mt_db_commit(mt_db *db, mt_err *err)
{
    return commit(db, true, err);
}

mt_status mt_db_commit_nosync(mt_db *db, mt_err *err)
{
    return commit(db, false, err);
}

mt_status mt_db_sync(mt_db *db, mt_err *err)
{
    return db->backend == MT_DB_PG ? MT_OK : dbs_sync_to(db, dbs_sync_mark(db), err);
}

uint64_t mt_db_sync_mark(mt_db *db)
{
    return db->backend == MT_DB_PG ? 0 : dbs_sync_mark(db);
}

mt_status mt_db_sync_to(mt_db *db, uint64_t mark, mt_err *err)
{
    return db->backend == MT_DB_PG ? MT_OK : dbs_sync_to(db, mark, err);
}

bool mt_db_outcome_unknown(const mt_db *db)
{
    return db->outcome_unknown;
}

mt_status mt_db_set_group_sync(mt_db *db, mt_err *err)
{
    return db->backend == MT_DB_PG ? MT_OK : dbs_group_on(db, err);
}

void mt_db_rollback(mt_db *db)
{
    db->tx_wrote = false;
    db->tx_serial = 0;
    if (db->backend == MT_DB_PG)
        dbp_rollback(db);
    else
        dbs_rollback(db);
}

bool mt_db_in_tx(mt_db *db)
{
    return db->backend == MT_DB_PG ? db->in_tx : dbs_in_tx(db);
}

mt_status mt_db_set_busy_timeout(mt_db *db, unsigned ms, mt_err *err)
{
    if (db->backend == MT_DB_SQLITE)
        return dbs_set_busy_timeout(db, ms, err);
    char sql[64];
    snprintf(sql, sizeof sql, "SET lock_timeout = %u", ms);
    return dbp_exec(db, sql, err);
}

bool mt_db_retryable(const mt_db *db)
{
    return db->retryable;
}

int64_t mt_db_changes(mt_db *db)
{
    return db->changes;
}

mt_status mt_db_last_insert_id(mt_db *db, int64_t *id, mt_err *err)
{
    *id = 0;
    return db->backend == MT_DB_PG ? dbp_last_insert_id(db, id, err)
                                   : dbs_last_insert_id(db, id, err);
}

/* ---- statements ---------------------------------------------------------- */

mt_status mt_db_prepare(mt_db *db, const char *sql, mt_db_stmt **out, mt_err *err)
{
    *out = NULL;
    db->retryable = false;
    mt_db_stmt *st = calloc(1, sizeof *st);
    if (!st)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    st->db = db;
    st->writes = sql_writes(sql);
    mt_status rc = db->backend == MT_DB_PG ? dbp_prepare(db, sql, st, err)
                                           : dbs_prepare(db, sql, st, err);
    if (rc) {
        mt_db_finalize(st);
        return rc;
    }
    *out = st;
    return MT_OK;
}

static void param_clear(db_param *p)
{
    if (p->text != p->small)
        free(p->text);
    memset(p, 0, sizeof *p);
}

mt_db *mt_db_stmt_db(const mt_db_stmt *st)
{
    return st->db;
}

void mt_db_finalize(mt_db_stmt *st)
{
    if (!st)
        return;
    if (st->db->backend == MT_DB_PG)
        dbp_finalize(st);
    else
        dbs_finalize(st);
    for (int i = 0; st->params && i < st->nparams; i++)
        param_clear(&st->params[i]);
    free(st->params);
    free(st->sql);
    free(st);
}

int mt_db_param_count(const mt_db_stmt *st)
{
    return st->nparams;
}

/* Stores (PostgreSQL) or binds (SQLite) parameter i. A failed copy (out of
 * memory) leaves the parameter unset, which the step reports. */
static void bind(mt_db_stmt *st, int i, db_param *v)
{
    if (i < 1 || i > st->nparams)
        return;
    if (st->db->backend == MT_DB_SQLITE) {
        dbs_bind(st, i, v);
        return;
    }
    db_param *p = &st->params[i - 1];
    param_clear(p);
    p->is_null = v->is_null;
    p->is_blob = v->is_blob;
    p->is_int = v->is_int;
    p->ival = v->ival;
    p->len = v->len;
    if (!v->is_null) {
        if (v->len < sizeof p->small) {
            p->text = p->small;
        } else if (!(p->text = malloc(v->len + 1))) {
            return; /* unset: the step fails with "out of memory" */
        }
        if (v->len)
            memcpy(p->text, v->text, v->len);
        p->text[v->len] = '\0';
    }
    p->set = true;
}

void mt_db_bind_int64(mt_db_stmt *st, int i, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, v);
    db_param p = {.is_int = true, .ival = v, .text = num, .len = (size_t)n};
    bind(st, i, &p);
}

void mt_db_bind_text(mt_db_stmt *st, int i, const char *s)
{
    db_param p = {.is_null = !s, .text = (char *)s, .len = s ? strlen(s) : 0};
    bind(st, i, &p);
}

void mt_db_bind_blob(mt_db_stmt *st, int i, const void *b, size_t n)
{
    db_param p = {.is_blob = true, .text = (char *)(b ? b : ""), .len = b ? n : 0};
    bind(st, i, &p);
}

void mt_db_bind_null(mt_db_stmt *st, int i)
{
    db_param p = {.is_null = true};
    bind(st, i, &p);
}

void mt_db_clear_bindings(mt_db_stmt *st)
{
    if (st->db->backend == MT_DB_SQLITE) {
        dbs_clear_bindings(st);
        return;
    }
    for (int i = 0; i < st->nparams; i++) {
        param_clear(&st->params[i]);
        st->params[i].set = true;
        st->params[i].is_null = true;
    }
}

int mt_db_step(mt_db_stmt *st, mt_status *rc, mt_err *err)
{
    mt_status local = MT_OK;
    if (!rc)
        rc = &local;
    st->db->retryable = false;
    if (st->writes && !st->stepped)
        st->db->changes = 0;
    int r = st->db->backend == MT_DB_PG ? dbp_step(st, rc, err) : dbs_step(st, rc, err);
    /* a write that changed no row (a claim that found nothing) makes the
     * database write nothing at commit */
    if (st->writes && !st->stepped &&
        (r == MT_DB_ROW || (r == MT_DB_DONE && st->db->changes > 0))) {
        if (db_in_tx(st->db))
            st->db->tx_wrote = true;
        else
            count_commit(st->db, true); /* a write outside a transaction commits by itself */
    }
    st->stepped = true;
    return r;
}

mt_status mt_db_run_deferred(mt_db_stmt *st, mt_err *err)
{
    mt_db *db = st->db;
    db->retryable = false;
    if (!db_in_tx(db))
        return db_fail(db, err, MT_EINTERNAL, false,
                       "database: deferred statement outside a transaction");
    if (db->backend != MT_DB_PG) {
        mt_status rc = MT_OK;
        if (mt_db_step(st, &rc, err) < 0)
            return rc ? rc : MT_EIO;
        return MT_OK;
    }
    mt_status rc = dbp_run_deferred(st, err);
    if (!rc && st->writes)
        db->tx_wrote = true; /* the contract: a statement that changes a row */
    st->stepped = true;
    return rc;
}

void mt_db_reset(mt_db_stmt *st)
{
    st->stepped = false;
    if (st->db->backend == MT_DB_PG)
        dbp_reset(st);
    else
        dbs_reset(st);
}

int mt_db_col_count(const mt_db_stmt *st)
{
    return st->db->backend == MT_DB_PG ? dbp_col_count(st) : dbs_col_count(st);
}

bool mt_db_col_null(mt_db_stmt *st, int i)
{
    return st->db->backend == MT_DB_PG ? dbp_col_null(st, i) : dbs_col_null(st, i);
}

int64_t mt_db_col_int64(mt_db_stmt *st, int i)
{
    if (st->db->backend == MT_DB_SQLITE)
        return dbs_col_int64(st, i);
    const char *s = dbp_col_raw(st, i);
    if (!s)
        return 0;
    /* booleans (t/f) and numerics ("12.0" from sum() over an empty group is
     * NULL; avg is not used) read as SQLite would convert them */
    if (s[0] == 't' && !s[1])
        return 1;
    if (s[0] == 'f' && !s[1])
        return 0;
    return strtoll(s, NULL, 10);
}

const char *mt_db_col_text(mt_db_stmt *st, int i)
{
    if (st->db->backend == MT_DB_SQLITE)
        return dbs_col_text(st, i);
    const char *s = dbp_col_raw(st, i);
    return s ? s : "";
}

const void *mt_db_col_blob(mt_db_stmt *st, int i, size_t *n)
{
    return st->db->backend == MT_DB_PG ? dbp_col_blob(st, i, n) : dbs_col_blob(st, i, n);
}
