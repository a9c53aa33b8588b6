/* stmt_cache: prepared statements of the request connection (core->db) kept
 * for reuse, so that a statement run on every request (the token lookup and
 * the token/user MAC checks of mt_core_authenticate) is compiled once, not
 * once per request (the SQL parser was about a quarter of the event loop's
 * time under transit load).
 *
 * Contract: core_stmt_get(c, db, sql) returns a ready statement for `sql`
 * on the database layer (mt_db.h), core_stmt_put ends the use (reset and
 * bindings cleared when cached, finalized otherwise: call it exactly where
 * mt_db_finalize would be called). The cache is per connection: an entry
 * is kept for one mt_db and only used with it.
 * Only statements on c->db are kept, and only while that connection's lock
 * (core->mu) is held by the caller, which every user of c->db already holds
 * (a connection is used by one thread at a time). On any other connection
 * (the rewrap thread's, the audit committer's, a backup's) the statement is
 * prepared and finalized each time and the cache is not touched, so those
 * threads need no lock here. A statement in use is marked busy: a nested use
 * of the same SQL gets a fresh statement. Results are the same as with a
 * fresh statement: mt_db_reset ends the statement's read; SQLite re-prepares
 * a kept statement by itself after a schema change, and the PostgreSQL
 * backend prepares again on a new server connection after a reconnect.
 * core_stmt_cache_free finalizes them all; mt_core's close calls it before
 * closing c->db.
 * The audit committer's connection (c->audit_db, used only under
 * c->audit_mu) has a cache of its own the same way (core_stmt_audit_cache,
 * called under audit_mu when audit.c opens it): the batches' audit INSERT
 * and chain head read are compiled once, not per entry.
 *
 * Thread-bound caches (issue 13): a thread that owns a connection for its
 * whole life (a scheduler thread) calls core_stmt_thread_bind(db) once; its
 * statements on that connection are then kept in a cache of its own (thread
 * local, so no lock), and core_stmt_thread_release finalizes them before
 * the thread ends (before the connection is closed). Any other connection of
 * that thread is served uncached, as above. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

#define STMT_CACHE_N 32

typedef struct {
    const char *sql; /* the caller's constant text, or a copy (own_sql) */
    mt_db_stmt *st;
    bool busy;
} stmt_ent;

struct core_stmt_cache {
    stmt_ent e[STMT_CACHE_N];
    /* thread-bound caches keep a copy of the text: store.c's helpers pass
     * whatever text their callers give, not only constants */
    bool own_sql;
    unsigned hand; /* the next entry to evict when full (round robin) */
};

/* The request connections whose cache store.c's helpers use too (they pass
 * no core): registered when a core's cache is made, dropped when it is
 * freed (before the connection closes). Looked up without a lock: an entry
 * changes only while no thread uses that connection (creation under the
 * core lock by its first user; the free at close). */
#define STMT_REG_N 16
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(mt_db *) reg_db[STMT_REG_N];
static _Atomic(mt_core *) reg_core[STMT_REG_N];

static void reg_add(mt_core *c, mt_db *db)
{
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < STMT_REG_N; i++)
        if (!atomic_load(&reg_db[i])) {
            atomic_store(&reg_core[i], c);
            atomic_store(&reg_db[i], db);
            break;
        } /* full: that core's helpers stay uncached (still correct) */
    pthread_mutex_unlock(&reg_mu);
}

static void reg_drop(mt_core *c)
{
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < STMT_REG_N; i++)
        if (atomic_load(&reg_core[i]) == c) {
            atomic_store(&reg_db[i], NULL);
            atomic_store(&reg_core[i], NULL);
        }
    pthread_mutex_unlock(&reg_mu);
}

static mt_core *reg_find(const mt_db *db)
{
    for (size_t i = 0; i < STMT_REG_N; i++)
        if (atomic_load(&reg_db[i]) == db)
            return atomic_load(&reg_core[i]);
    return NULL;
}

/* The cache of owner's that keeps the statements on db: its request
 * connection's (under mu) or its audit committer's (under audit_mu). */
static struct core_stmt_cache *owner_cache(const mt_core *owner, const mt_db *db)
{
    if (!owner || !db)
        return NULL;
    if (db == owner->db)
        return owner->stmts;
    if (db == owner->audit_db)
        return owner->audit_stmts;
    return NULL;
}

/* ---- SQLite only: the shim of the modules not converted yet -------------
 * The same cache of sqlite3 statements (core_stmt_get_sqlite); removed with
 * the last module that uses it. */

typedef struct {
    const char *sql; /* the caller's constant text, or a copy (own_sql) */
    sqlite3_stmt *st;
    bool busy;
} stmt_ent_sqlite;

struct stmt_cache_sqlite {
    stmt_ent_sqlite e[STMT_CACHE_N];
    /* thread-bound caches keep a copy of the text: store.c's helpers pass
     * whatever text their callers give, not only constants */
    bool own_sql;
};

/* the calling thread's bound connection and its cache (core_stmt_thread_bind) */
static _Thread_local sqlite3 *tls_db;
static _Thread_local struct stmt_cache_sqlite *tls_cache;

static void stmt_thread_release_sqlite(void)
{
    if (!tls_cache)
        return;
    for (size_t i = 0; i < STMT_CACHE_N; i++) {
        sqlite3_finalize(tls_cache->e[i].st);
        free((char *)tls_cache->e[i].sql);
    }
    free(tls_cache);
    tls_cache = NULL;
    tls_db = NULL;
}

static void stmt_thread_bind_sqlite(sqlite3 *db)
{
    stmt_thread_release_sqlite();
    tls_cache = calloc(1, sizeof *tls_cache); /* none: uncached, still correct */
    tls_db = tls_cache ? db : NULL;
    if (tls_cache)
        tls_cache->own_sql = true;
}

mt_status core_stmt_get_sqlite(mt_core *c, mt_db *mdb, const char *sql, sqlite3_stmt **st,
                               mt_err *err)
{
    sqlite3 *db = mt_db_sqlite_handle(mdb);
    *st = NULL;
    struct stmt_cache_sqlite *cache;
    if (db && tls_cache && db == tls_db)
        cache = tls_cache;
    else if (!c || !db || db != mt_db_sqlite_handle(c->db))
        return store_prepare(db, sql, st, err);
    else if (!c->stmts_sqlite && !(c->stmts_sqlite = calloc(1, sizeof *c->stmts_sqlite)))
        return store_prepare(db, sql, st, err);
    else
        cache = c->stmts_sqlite;
    stmt_ent_sqlite *free_ent = NULL;
    for (size_t i = 0; i < STMT_CACHE_N; i++) {
        stmt_ent_sqlite *e = &cache->e[i];
        if (!e->st) {
            if (!free_ent)
                free_ent = e;
            continue;
        }
        if (e->sql == sql || !strcmp(e->sql, sql)) {
            if (e->busy)
                return store_prepare(db, sql, st, err); /* nested use */
            e->busy = true;
            *st = e->st;
            return MT_OK;
        }
    }
    if (!free_ent)
        return store_prepare(db, sql, st, err); /* full: not kept */
    const char *key = sql;
    if (cache->own_sql && !(key = strdup(sql)))
        return store_prepare(db, sql, st, err); /* out of memory: not kept */
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        *st = NULL;
        if (key != sql)
            free((char *)key);
        return store_fail(db, err);
    }
    free_ent->sql = key;
    free_ent->st = *st;
    free_ent->busy = true;
    return MT_OK;
}

void core_stmt_put_sqlite(mt_core *c, sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3 *db = sqlite3_db_handle(st);
    /* only the cache of the statement's own connection is looked at: a
     * scheduler thread never reads c->stmts (guarded by c->mu) */
    struct stmt_cache_sqlite *cache = NULL;
    if (tls_cache && db == tls_db)
        cache = tls_cache;
    else if (c && db == mt_db_sqlite_handle(c->db))
        cache = c->stmts_sqlite;
    for (size_t i = 0; cache && i < STMT_CACHE_N; i++) {
        stmt_ent_sqlite *e = &cache->e[i];
        if (e->st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            e->busy = false;
            return;
        }
    }
    sqlite3_finalize(st);
}

static void stmt_cache_free_sqlite(mt_core *c)
{
    if (!c || !c->stmts_sqlite)
        return;
    for (size_t i = 0; i < STMT_CACHE_N; i++)
        sqlite3_finalize(c->stmts_sqlite->e[i].st);
    free(c->stmts_sqlite);
    c->stmts_sqlite = NULL;
}

/* the calling thread's bound connection and its cache (core_stmt_thread_bind) */
static _Thread_local mt_db *tl_db;
static _Thread_local struct core_stmt_cache *tl_cache;

void core_stmt_thread_bind(mt_db *db)
{
    stmt_thread_bind_sqlite(mt_db_sqlite_handle(db));
    core_stmt_thread_release();
    tl_cache = calloc(1, sizeof *tl_cache); /* none: uncached, still correct */
    tl_db = tl_cache ? db : NULL;
    if (tl_cache)
        tl_cache->own_sql = true;
}

void core_stmt_thread_release(void)
{
    stmt_thread_release_sqlite();
    if (!tl_cache)
        return;
    for (size_t i = 0; i < STMT_CACHE_N; i++) {
        mt_db_finalize(tl_cache->e[i].st);
        free((char *)tl_cache->e[i].sql);
    }
    free(tl_cache);
    tl_cache = NULL;
    tl_db = NULL;
}

mt_status core_stmt_get(mt_core *c, mt_db *db, const char *sql, mt_db_stmt **st, mt_err *err)
{
    *st = NULL;
    struct core_stmt_cache *cache;
    if (db && tl_cache && db == tl_db)
        cache = tl_cache;
    else if (c && db && db == c->db) { /* under c->mu */
        if (!c->stmts) {
            if (!(c->stmts = calloc(1, sizeof *c->stmts)))
                return mt_db_prepare(db, sql, st, err);
            c->stmts->own_sql = true; /* helpers pass texts built in buffers */
            reg_add(c, c->db);
        }
        cache = c->stmts;
    } else {
        /* Any other connection: the cache of the core it is registered
         * with (store.c's helpers pass no core; a caller naming its core:
         * only that core's), else uncached. c->audit_db is not read here:
         * owner_cache reads it only for a registered connection that is
         * not owner->db, i.e. the audit committer's, whose user holds
         * audit_mu (a thread holding only mu must not read it). */
        mt_core *owner = db ? reg_find(db) : NULL;
        if (c && owner != c)
            owner = NULL;
        if (!(cache = owner_cache(owner, db)))
            return mt_db_prepare(db, sql, st, err);
    }
    stmt_ent *free_ent = NULL;
    for (size_t i = 0; i < STMT_CACHE_N; i++) {
        stmt_ent *e = &cache->e[i];
        if (!e->st) {
            if (!free_ent)
                free_ent = e;
            continue;
        }
        if (e->sql == sql || !strcmp(e->sql, sql)) {
            if (e->busy)
                return mt_db_prepare(db, sql, st, err); /* nested use */
            e->busy = true;
            *st = e->st;
            return MT_OK;
        }
    }
    /* full: the next idle entry in turn makes room (a statement run once
     * does not keep its place for ever) */
    for (size_t k = 0; !free_ent && k < STMT_CACHE_N; k++) {
        stmt_ent *e = &cache->e[cache->hand];
        cache->hand = (cache->hand + 1) % STMT_CACHE_N;
        if (e->busy)
            continue;
        mt_db_finalize(e->st);
        if (cache->own_sql)
            free((char *)e->sql);
        memset(e, 0, sizeof *e);
        free_ent = e;
    }
    if (!free_ent)
        return mt_db_prepare(db, sql, st, err); /* all in use: not kept */
    const char *key = sql;
    if (cache->own_sql && !(key = strdup(sql)))
        return mt_db_prepare(db, sql, st, err); /* out of memory: not kept */
    mt_status rc = mt_db_prepare(db, sql, st, err);
    if (rc) {
        if (key != sql)
            free((char *)key);
        return rc;
    }
    free_ent->sql = key;
    free_ent->st = *st;
    free_ent->busy = true;
    return MT_OK;
}

void core_stmt_put(mt_core *c, mt_db_stmt *st)
{
    if (!st)
        return;
    mt_db *db = mt_db_stmt_db(st);
    /* only the cache of the statement's own connection is looked at: a
     * scheduler thread never reads c->stmts (guarded by c->mu) */
    struct core_stmt_cache *cache = NULL;
    if (tl_cache && db == tl_db)
        cache = tl_cache;
    else {
        /* the statement's connection decides, whichever core the caller
         * names (c->audit_db is not read: see core_stmt_get) */
        mt_core *owner = (c && db == c->db) ? c : reg_find(db);
        cache = owner_cache(owner, db);
    }
    for (size_t i = 0; cache && i < STMT_CACHE_N; i++) {
        stmt_ent *e = &cache->e[i];
        if (e->st == st) {
            mt_db_reset(st);
            mt_db_clear_bindings(st);
            e->busy = false;
            return;
        }
    }
    mt_db_finalize(st);
}

static void cache_free(struct core_stmt_cache **cp)
{
    struct core_stmt_cache *cache = *cp;
    if (!cache)
        return;
    for (size_t i = 0; i < STMT_CACHE_N; i++) {
        mt_db_finalize(cache->e[i].st);
        if (cache->own_sql)
            free((char *)cache->e[i].sql);
    }
    free(cache);
    *cp = NULL;
}

void core_stmt_cache_free(mt_core *c)
{
    stmt_cache_free_sqlite(c);
    if (!c)
        return;
    reg_drop(c);
    cache_free(&c->stmts);
    cache_free(&c->audit_stmts);
}

void core_stmt_audit_cache(mt_core *c)
{
    if (!c || !c->audit_db || c->audit_stmts)
        return;
    struct core_stmt_cache *cache = calloc(1, sizeof *cache);
    if (!cache)
        return; /* uncached, still correct */
    cache->own_sql = true; /* store.c's helpers pass texts built in buffers */
    c->audit_stmts = cache;
    reg_add(c, c->audit_db);
}
