/* stmt_cache: prepared statements of the request connection (core->db) kept
 * for reuse, so that a statement run on every request (the token lookup and
 * the token/user MAC checks of mt_core_authenticate) is compiled once, not
 * once per request (the SQL parser was about a quarter of the event loop's
 * time under transit load).
 *
 * Contract: core_stmt_get(c, db, sql) returns a ready statement for `sql`,
 * core_stmt_put ends the use (reset and bindings cleared when cached,
 * finalized otherwise: call it exactly where sqlite3_finalize was called).
 * Only statements on c->db are kept, and only while that connection's lock
 * (core->mu) is held by the caller, which every user of c->db already holds
 * (the connection is opened SQLITE_OPEN_NOMUTEX). On any other connection
 * (the rewrap thread's, the audit committer's, a backup's) the statement is
 * prepared and finalized each time and the cache is not touched, so those
 * threads need no lock here. A statement in use is marked busy: a nested use
 * of the same SQL gets a fresh statement. Results are the same as with a
 * fresh statement: sqlite3_reset ends the statement's read, and SQLite
 * re-prepares a kept statement by itself after a schema change.
 * core_stmt_cache_free finalizes them all; mt_core's close calls it before
 * closing c->db.
 *
 * Thread-bound caches (issue 13): a thread that owns a connection for its
 * whole life (a scheduler thread) calls core_stmt_thread_bind(db) once; its
 * statements on that connection are then kept in a cache of its own (thread
 * local, so no lock), and core_stmt_thread_release finalizes them before
 * the thread ends (before the connection is closed). Any other connection of
 * that thread is served uncached, as above. */
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

#define STMT_CACHE_N 32

typedef struct {
    const char *sql; /* the caller's constant text, or a copy (own_sql) */
    sqlite3_stmt *st;
    bool busy;
} stmt_ent;

struct core_stmt_cache {
    stmt_ent e[STMT_CACHE_N];
    /* thread-bound caches keep a copy of the text: store.c's helpers pass
     * whatever text their callers give, not only constants */
    bool own_sql;
};

/* the calling thread's bound connection and its cache (core_stmt_thread_bind) */
static _Thread_local sqlite3 *tl_db;
static _Thread_local struct core_stmt_cache *tl_cache;

void core_stmt_thread_bind(sqlite3 *db)
{
    core_stmt_thread_release();
    tl_cache = calloc(1, sizeof *tl_cache); /* none: uncached, still correct */
    tl_db = tl_cache ? db : NULL;
    if (tl_cache)
        tl_cache->own_sql = true;
}

void core_stmt_thread_release(void)
{
    if (!tl_cache)
        return;
    for (size_t i = 0; i < STMT_CACHE_N; i++) {
        sqlite3_finalize(tl_cache->e[i].st);
        free((char *)tl_cache->e[i].sql);
    }
    free(tl_cache);
    tl_cache = NULL;
    tl_db = NULL;
}

mt_status core_stmt_get(mt_core *c, sqlite3 *db, const char *sql, sqlite3_stmt **st, mt_err *err)
{
    *st = NULL;
    struct core_stmt_cache *cache;
    if (db && tl_cache && db == tl_db)
        cache = tl_cache;
    else if (!c || !db || db != c->db)
        return store_prepare(db, sql, st, err);
    else if (!c->stmts && !(c->stmts = calloc(1, sizeof *c->stmts)))
        return store_prepare(db, sql, st, err);
    else
        cache = c->stmts;
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

void core_stmt_put(mt_core *c, sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3 *db = sqlite3_db_handle(st);
    /* only the cache of the statement's own connection is looked at: a
     * scheduler thread never reads c->stmts (guarded by c->mu) */
    struct core_stmt_cache *cache = NULL;
    if (tl_cache && db == tl_db)
        cache = tl_cache;
    else if (c && db == c->db)
        cache = c->stmts;
    for (size_t i = 0; cache && i < STMT_CACHE_N; i++) {
        stmt_ent *e = &cache->e[i];
        if (e->st == st) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
            e->busy = false;
            return;
        }
    }
    sqlite3_finalize(st);
}

void core_stmt_cache_free(mt_core *c)
{
    if (!c || !c->stmts)
        return;
    for (size_t i = 0; i < STMT_CACHE_N; i++)
        sqlite3_finalize(c->stmts->e[i].st);
    free(c->stmts);
    c->stmts = NULL;
}
