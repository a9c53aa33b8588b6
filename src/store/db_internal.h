/* db_internal: what the mt_db backends share (db.c dispatches to db_sqlite.c
 * and db_pg.c by the connection's backend). Not seen outside src/store. */
#ifndef MT_DB_INTERNAL_H
#define MT_DB_INTERNAL_H

#include "mt_db.h"

struct mt_db {
    mt_db_backend backend;
    bool retryable;  /* the last failure may succeed when run again */
    int64_t changes; /* rows changed by the last write step */
    void *h;         /* sqlite3 * or PGconn * */
    bool borrowed;   /* SQLite: h is the caller's */
    /* PostgreSQL */
    char *url;
    unsigned gen;     /* connection generation: bumped by every reconnect */
    unsigned next_id; /* names of server-side prepared statements */
    bool in_tx;
    bool tx_failed; /* an error inside the transaction: only rollback works */
    /* mt_db_commit_counts: the open transaction ran a writing statement */
    bool tx_wrote;
    uint64_t tx_serial; /* mt_db_tx_serial */
    /* SQLite group sync: grp is the file's group (every read-write file
     * connection; NULL: in-memory, read-only, borrowed); group_sync: lazy
     * commits (mt_db_set_group_sync); tx_lazy: the open transaction runs at
     * synchronous=NORMAL */
    struct dbs_group *grp;
    bool group_sync;
    bool tx_lazy;
    /* mt_db_outcome_unknown: the last commit failed after it committed */
    bool outcome_unknown;
    /* SQLite: BEGIN, BEGIN IMMEDIATE, COMMIT, ROLLBACK kept prepared
     * (sqlite3_stmt *; compiled at first use, finalized at close) */
    void *txst[4];
    /* SQLite: single savepoint statements (SAVEPOINT, RELEASE, ROLLBACK TO
     * a name: the scheduler's claim runs two per task) kept prepared too,
     * with their text; evicted in turn (sp_hand) */
    void *spst[4];
    char *spsql[4];
    unsigned sp_hand;
    /* SQLite, dbs_open's connections: busy_wait's timeout (ms; 0: none)
     * and the start of the wait under way (CLOCK_MONOTONIC, us) */
    unsigned busy_ms;
    int64_t busy_since_us;
};

typedef struct db_param {
    bool set, is_null, is_blob, is_int;
    int64_t ival; /* is_int */
    char *text; /* text form (ints as decimal), or blob bytes */
    size_t len;
    char small[24];
} db_param;

struct mt_db_stmt {
    mt_db *db;
    int nparams;
    bool writes;  /* not a SELECT (mt_db_commit_counts) */
    bool stepped; /* stepped since prepare or reset */
    /* SQLite */
    void *st; /* sqlite3_stmt * */
    /* PostgreSQL */
    char *sql;     /* translated text */
    char name[24]; /* server-side name, "" until prepared */
    unsigned gen;  /* db->gen when prepared */
    db_param *params;
    void *res; /* PGresult * of the last run */
    int row, nrows;
    bool ran;
    char *blob_buf; /* the last decoded bytea */
};

/* mt_db_outages' record: the database could not be reached (a broken
 * connection seen), and a connection to it was (re)established. */
void db_outage_begin(void);
void db_outage_end(void);

/* Sets a failure: code, message (printf), and db->retryable. */
mt_status db_fail(mt_db *db, mt_err *err, mt_status code, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

mt_status dbs_open(const char *path, unsigned flags, mt_db **out, mt_err *err);
void dbs_close(mt_db *db);
mt_status dbs_exec(mt_db *db, const char *sql, mt_err *err);
mt_status dbs_group_on(mt_db *db, mt_err *err);
mt_status dbs_begin(mt_db *db, mt_db_tx mode, mt_err *err);
mt_status dbs_commit(mt_db *db, bool sync, mt_err *err);
void dbs_rollback(mt_db *db);
uint64_t dbs_sync_mark(mt_db *db);
mt_status dbs_sync_to(mt_db *db, uint64_t mark, mt_err *err);
bool dbs_in_tx(mt_db *db);
mt_status dbs_set_busy_timeout(mt_db *db, unsigned ms, mt_err *err);
mt_status dbs_last_insert_id(mt_db *db, int64_t *id, mt_err *err);
mt_status dbs_prepare(mt_db *db, const char *sql, mt_db_stmt *st, mt_err *err);
void dbs_finalize(mt_db_stmt *st);
void dbs_bind(mt_db_stmt *st, int i, const db_param *v);
void dbs_clear_bindings(mt_db_stmt *st);
int dbs_step(mt_db_stmt *st, mt_status *rc, mt_err *err);
void dbs_reset(mt_db_stmt *st);
int dbs_col_count(const mt_db_stmt *st);
bool dbs_col_null(mt_db_stmt *st, int i);
int64_t dbs_col_int64(mt_db_stmt *st, int i);
const char *dbs_col_text(mt_db_stmt *st, int i);
const void *dbs_col_blob(mt_db_stmt *st, int i, size_t *n);

mt_status dbp_open(const char *url, mt_db **out, mt_err *err);
void dbp_close(mt_db *db);
mt_status dbp_exec(mt_db *db, const char *sql, mt_err *err);
mt_status dbp_begin(mt_db *db, mt_db_tx mode, mt_err *err);
/* Re-establishes a broken connection outside a transaction (db_cluster.c). */
mt_status dbp_ensure(mt_db *db, mt_err *err);
/* The open transaction's commands not sent yet (its BEGIN, a late writer
 * lock: db_pg.c "Round trips"): dbp_defer queues one, dbp_flush sends them
 * now (a command that bypasses db_pg.c's statements runs after it). */
mt_status dbp_defer(mt_db *db, const char *sql, mt_err *err);
void dbp_set_prefetch(mt_db *db, const char *sql);
bool dbp_prefetch_take(mt_db *db, bool *row, int64_t *i0, char *t1, size_t cap);
mt_status dbp_flush(mt_db *db, mt_err *err);
mt_status dbp_run_deferred(mt_db_stmt *st, mt_err *err);
/* counts one round trip (mt_db_round_trips); traced to stderr with its
 * kind and SQL text under MT_DB_TRACE_TRIPS (db_pg.c) */
void dbp_trip(const char *kind, const char *sql);
mt_status dbp_commit(mt_db *db, mt_err *err);
void dbp_rollback(mt_db *db);
mt_status dbp_last_insert_id(mt_db *db, int64_t *id, mt_err *err);
mt_status dbp_prepare(mt_db *db, const char *sql, mt_db_stmt *st, mt_err *err);
void dbp_finalize(mt_db_stmt *st);
int dbp_step(mt_db_stmt *st, mt_status *rc, mt_err *err);
void dbp_reset(mt_db_stmt *st);
int dbp_col_count(const mt_db_stmt *st);
bool dbp_col_null(mt_db_stmt *st, int i);
const char *dbp_col_raw(mt_db_stmt *st, int i); /* text form, NULL for NULL */
const void *dbp_col_blob(mt_db_stmt *st, int i, size_t *n);

/* The connection string url for messages, without any password or
 * sslpassword (db_pg.c; never fails: at worst a fixed phrase). */
void dbp_redact(const char *url, char *out, size_t cap);
bool dbp_conn_option(mt_db *db, const char *keyword, char *out, size_t cap);

#endif
