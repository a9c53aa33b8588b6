/* db_cluster: what several nodes on one PostgreSQL database need from the
 * database layer (mt_db.h "Cluster primitives"): the writer lock taken late
 * inside a transaction, session advisory locks for once-per-cluster work,
 * and LISTEN/NOTIFY. docs/cluster.md "Scheduling across nodes" is the
 * design. On SQLite (one node, one file) the locks are granted at once and
 * there are no notifications: the callers keep their single-node paths. */
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "db_internal.h"

static PGconn *pgc(mt_db *db)
{
    return (PGconn *)db->h;
}

/* One command on the connection with no parameters; *one (optional) gets
 * the first column of the first row as "t"/"f" tested for true. */
static mt_status run1(mt_db *db, const char *sql, const char *what, bool *one, mt_err *err)
{
    if (!db->in_tx) { /* a broken connection is re-established as db_pg.c does */
        mt_status rc = dbp_ensure(db, err);
        if (rc)
            return rc;
    } else {
        mt_status rc = dbp_flush(db, err); /* the transaction's BEGIN first */
        if (rc)
            return rc;
    }
    dbp_trip("text", sql);
    PGresult *r = PQexec(pgc(db), sql);
    ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (PQstatus(pgc(db)) != CONNECTION_OK)
            db_outage_begin(); /* mt_db_outages */
        bool retry = PQstatus(pgc(db)) != CONNECTION_OK ||
                     (state && (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
                                !strcmp(state, "55P03")));
        PQclear(r);
        if (db->in_tx)
            db->tx_failed = true;
        return db_fail(db, err, retry ? MT_EUNAVAIL : MT_EIO, retry, "database: %s failed (%s)",
                       what, state ? state : "connection");
    }
    if (one)
        *one = PQntuples(r) > 0 && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return MT_OK;
}

mt_status mt_db_writer_lock(mt_db *db, mt_err *err)
{
    if (db->backend != MT_DB_PG)
        return MT_OK; /* SQLite: the transaction is BEGIN IMMEDIATE already */
    if (!db->in_tx)
        return db_fail(db, err, MT_EINTERNAL, false,
                       "database: writer lock outside a transaction");
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%lld)",
             (long long)MT_DB_WRITER_LOCK_KEY);
    /* sent with the transaction's next statement (db_pg.c "Round trips"),
     * which the server runs after it */
    return dbp_defer(db, sql, err);
}

mt_status mt_db_try_lock(mt_db *db, int64_t key, bool *got, mt_err *err)
{
    *got = false;
    if (db->backend != MT_DB_PG) {
        *got = true;
        return MT_OK;
    }
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock(%lld)", (long long)key);
    return run1(db, sql, "advisory lock", got, err);
}

void mt_db_unlock(mt_db *db, int64_t key)
{
    if (db->backend != MT_DB_PG)
        return;
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", (long long)key);
    (void)run1(db, sql, "advisory unlock", NULL, NULL);
}

mt_status mt_db_lock_shared(mt_db *db, int64_t key, bool *got, mt_err *err)
{
    *got = false;
    if (db->backend != MT_DB_PG) {
        *got = true;
        return MT_OK;
    }
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT pg_try_advisory_lock_shared(%lld)", (long long)key);
    return run1(db, sql, "advisory lock (shared)", got, err);
}

mt_status mt_db_lock_held(mt_db *db, int64_t key, bool *held, mt_err *err)
{
    *held = true;
    if (db->backend != MT_DB_PG)
        return MT_OK;
    /* a bigint key shows as its high half in classid, its low half in
     * objid, objsubid 1 (PostgreSQL's pg_locks documentation); only this
     * database's locks count */
    uint64_t k = (uint64_t)key;
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
             "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
             "AND classid = %u::oid AND objid = %u::oid AND objsubid = 1)",
             (unsigned)(k >> 32), (unsigned)(k & 0xffffffffu));
    return run1(db, sql, "lock lookup", held, err);
}

unsigned mt_db_generation(const mt_db *db)
{
    return db->backend == MT_DB_PG ? db->gen : 0;
}

/* channel: our constant identifiers only (letters, digits, '_') */
static bool ident_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 63)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

mt_status mt_db_listen(mt_db *db, const char *channel, mt_err *err)
{
    if (db->backend != MT_DB_PG)
        return mt_err_set(err, MT_EINVAL, "database: LISTEN needs PostgreSQL");
    if (!ident_ok(channel))
        return mt_err_set(err, MT_EINVAL, "database: bad channel name");
    char sql[96];
    snprintf(sql, sizeof sql, "LISTEN %s", channel);
    return run1(db, sql, "listen", NULL, err);
}

mt_status mt_db_notify(mt_db *db, const char *channel, const char *payload, mt_err *err)
{
    if (db->backend != MT_DB_PG)
        return mt_err_set(err, MT_EINVAL, "database: NOTIFY needs PostgreSQL");
    if (!ident_ok(channel) || !payload || strlen(payload) > 200)
        return mt_err_set(err, MT_EINVAL, "database: bad notification");
    for (const char *p = payload; *p; p++) /* our own payloads: no quoting needed */
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == ':' || *p == '_'))
            return mt_err_set(err, MT_EINVAL, "database: bad notification payload");
    char sql[300];
    snprintf(sql, sizeof sql, "NOTIFY %s, '%s'", channel, payload);
    /* inside a transaction it is delivered at commit anyway: sent with the
     * transaction's next statement or its COMMIT (no round trip of its own) */
    if (db->in_tx && strlen(sql) < 80)
        return dbp_defer(db, sql, err);
    return run1(db, sql, "notify", NULL, err);
}

int mt_db_socket(mt_db *db)
{
    if (db->backend != MT_DB_PG || PQstatus(pgc(db)) != CONNECTION_OK)
        return -1;
    return PQsocket(pgc(db));
}

mt_status mt_db_notifications(mt_db *db, void (*fn)(void *ctx, const char *channel,
                                                    const char *payload),
                              void *ctx, mt_err *err)
{
    if (db->backend != MT_DB_PG)
        return mt_err_set(err, MT_EINVAL, "database: notifications need PostgreSQL");
    if (!PQconsumeInput(pgc(db)) || PQstatus(pgc(db)) != CONNECTION_OK)
        return db_fail(db, err, MT_EUNAVAIL, true,
                       "database connection lost while listening (reconnect)");
    PGnotify *n;
    while ((n = PQnotifies(pgc(db))) != NULL) {
        fn(ctx, n->relname, n->extra ? n->extra : "");
        PQfreemem(n);
    }
    return MT_OK;
}
