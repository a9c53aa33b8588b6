/* db_sqlite: the SQLite backend of mt_db (mt_db.h). The connection settings
 * are those src/core/store.c used: WAL, synchronous=FULL (a group sync
 * connection's transactions: NORMAL, then one shared fsync; mt_db.h), foreign keys on,
 * a 10 s busy timeout (busy_wait: short sleeps; BEGIN, COMMIT and ROLLBACK kept prepared per
 * connection), opened SQLITE_OPEN_NOMUTEX (one thread at a time per
 * connection, the caller's lock). SQL is passed unchanged (our dialect is
 * SQLite's). Messages are sqlite3_errmsg's (a VFS failure: sqlite3_errstr), which name constraints and
 * columns, never values. */
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db_internal.h"
#include "mt_log.h"

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

/* A failure reported by SQLite's VFS (xSync and friends), where
 * sqlite3_errmsg is not set ("not an error"): the code's own text. */
static mt_status dbs_fail_code(mt_db *db, int code, mt_err *err)
{
    if ((code & 0xff) == SQLITE_NOMEM)
        return db_fail(db, err, MT_ENOMEM, false, "out of memory");
    return db_fail(db, err, MT_EIO, false, "database error: %s", sqlite3_errstr(code));
}

/* The busy handler of the connections dbs_open opens (in place of
 * sqlite3_busy_timeout: the same timeout, db->busy_ms, shorter sleeps).
 * SQLite's own handler sleeps 1, 2, 5, 10, 15, 20, 25 ms ... between tries;
 * the write transactions of this process's connections (group sync: COMMIT
 * without an fsync) hold the write lock for tens of microseconds, so a
 * BEGIN IMMEDIATE that lost the race slept far longer than the lock was
 * held, with the event loop or a scheduler thread idle meanwhile (bench/faas
 * cost.sh: ~2 such sleeps per task). Here the sleeps grow 20, 40, 80 ...
 * us up to 1 ms, and the handler gives up (SQLITE_BUSY, as before) once
 * busy_ms have passed since the first try of this wait (CLOCK_MONOTONIC). */
static int busy_wait(void *arg, int count)
{
    mt_db *db = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    if (count == 0)
        db->busy_since_us = now_us;
    else if (now_us - db->busy_since_us >= (int64_t)db->busy_ms * 1000)
        return 0;
    long us = count >= 6 ? 1000 : 20L << count; /* 20 ... 640, then 1000 */
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
    return 1;
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

static mt_status group_join(mt_db *db, mt_err *err);

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
    sqlite3_extended_result_codes(h, 0);
    mt_db *db = NULL;
    mt_status rc = wrap(h, false, &db, err);
    if (rc) {
        sqlite3_close(h);
        return rc;
    }
    db->busy_ms = DBS_BUSY_TIMEOUT_MS;
    sqlite3_busy_handler(h, busy_wait, db);
    const char *pragmas = readonly ? "PRAGMA foreign_keys=ON;"
                                   : "PRAGMA journal_mode=WAL;"
                                     "PRAGMA synchronous=FULL;"
                                     "PRAGMA foreign_keys=ON;";
    if ((rc = dbs_exec(db, pragmas, err)) || (!readonly && (rc = group_join(db, err)))) {
        dbs_close(db);
        return rc;
    }
    *out = db;
    return MT_OK;
}

/* ---- group sync (mt_db.h) ----------------------------------------------
 * One group per database file (its path as SQLite names it), shared by the
 * read-write connections of this process to it (group_join at open; those
 * that turned group sync on commit lazily); freed with the last of them. reg numbers the lazy commits (each registers after its
 * COMMIT returned), done is the highest one a completed sync covered;
 * started numbers the syncs, target is the in-flight one's (reg at its
 * start). A waiter sleeps on cv[n & 1] for the sync numbered n that will
 * cover it: the one in flight when its target covers the waiter, else the
 * next. A completed sync n wakes its own waiters (broadcast on cv[n & 1])
 * and one waiter of sync n + 1 (signal on the other), which runs it: the
 * others of n + 1 sleep on until it completed (one condition variable for
 * all woke every waiter at every sync, and those the sync did not cover
 * went back to sleep: a context switch each for nothing; issue 13).
 * A failed fsync of the WAL (a group sync, or a checkpoint run by the WAL
 * hook) breaks the group for good (broken): Linux reports a writeback error
 * once, and a later fdatasync returns 0 although the frames it lost never
 * reached the disk, so no later sync can be trusted. Every later begin,
 * commit and sync of the file's group connections fails with MT_EIO, and
 * with mt_db_set_sync_fatal(true) (the daemon) the process exits
 * (MT_DB_SYNC_FATAL_EXIT) so that its restart recovers from what is on
 * disk, as PostgreSQL PANICs at a failed fsync. */
typedef struct dbs_group {
    char *path;
    unsigned refs;
    pthread_mutex_t mu;
    pthread_cond_t cv[2];
    unsigned waiting[2]; /* sleeping on cv[i] */
    uint64_t reg, done, started, target;
    bool syncing;
    atomic_bool broken; /* set under mu (group_break), read without it too */
    struct dbs_group *next;
} dbs_group;

static pthread_mutex_t g_groups_mu = PTHREAD_MUTEX_INITIALIZER;
static dbs_group *g_groups;
static atomic_uint_fast64_t g_syncs, g_waits;
static atomic_uint g_fail_syncs; /* mt_db_test_fail_syncs */
static atomic_bool g_sync_fatal;  /* mt_db_set_sync_fatal */

void mt_db_set_sync_fatal(bool on)
{
    atomic_store(&g_sync_fatal, on);
}

/* Marks g broken (the caller holds g->mu) and, in the daemon, stops it. */
static void group_break(dbs_group *g, const char *what)
{
    g->broken = true;
    pthread_cond_broadcast(&g->cv[0]);
    pthread_cond_broadcast(&g->cv[1]);
    mt_error("FATAL: %s of the WAL of %s failed: %s; commits of this process are no longer "
             "known to be durable%s",
             "the fsync", g->path, what,
             atomic_load(&g_sync_fatal) ? ": exiting (a restart recovers from what is on disk)"
                                        : "; every later commit and sync of it fails");
    if (atomic_load(&g_sync_fatal))
        _exit(MT_DB_SYNC_FATAL_EXIT);
}

static mt_status group_broken_err(mt_err *err)
{
    return mt_err_set(err, MT_EIO,
                      "an earlier WAL sync failed: the database file is no longer synced "
                      "(see the server log; restart the server)");
}

/* Group connections checkpoint themselves (wal_autocheckpoint=0): SQLite's
 * own hook ignores the checkpoint's error, and the checkpoint fsyncs the WAL
 * (the fsync that may consume a writeback error a group sync would then
 * miss). Same threshold as SQLite's default auto-checkpoint. */
#define DBS_CHECKPOINT_PAGES 1000

static int wal_hook(void *arg, sqlite3 *h, const char *name, int pages)
{
    mt_db *db = arg;
    if (pages < DBS_CHECKPOINT_PAGES)
        return SQLITE_OK;
    int c = sqlite3_wal_checkpoint_v2(h, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (c == SQLITE_OK || busy_code(c))
        return SQLITE_OK; /* busy: a later commit tries again */
    dbs_group *g = db->grp;
    pthread_mutex_lock(&g->mu);
    group_break(g, sqlite3_errstr(c));
    pthread_mutex_unlock(&g->mu);
    return c; /* the COMMIT (which stood) reports it */
}

void mt_db_group_sync_counts(uint64_t *syncs, uint64_t *waits)
{
    *syncs = atomic_load(&g_syncs);
    *waits = atomic_load(&g_waits);
}

unsigned mt_db_test_fail_syncs(unsigned n)
{
    return atomic_exchange(&g_fail_syncs, n);
}

static void group_put(dbs_group *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g_groups_mu);
    if (--g->refs == 0) {
        for (dbs_group **p = &g_groups; *p; p = &(*p)->next)
            if (*p == g) {
                *p = g->next;
                break;
            }
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv[0]);
        pthread_cond_destroy(&g->cv[1]);
        free(g->path);
        free(g);
    }
    pthread_mutex_unlock(&g_groups_mu);
}

/* Every read-write connection to a database file joins its group (whether
 * or not it commits lazily: a failed fsync of the WAL through any of them
 * breaks the file's group, and its checkpoints run from wal_hook). */
static mt_status group_join(mt_db *db, mt_err *err)
{
    if (db->grp)
        return MT_OK;
    const char *path = sqlite3_db_filename(db->h, "main");
    if (!path || !*path || sqlite3_db_readonly(db->h, "main") != 0)
        return MT_OK; /* in-memory or read-only: nothing to make durable */
    pthread_mutex_lock(&g_groups_mu);
    dbs_group *g = g_groups;
    while (g && strcmp(g->path, path))
        g = g->next;
    if (!g) {
        if (!(g = calloc(1, sizeof *g)) || !(g->path = strdup(path))) {
            free(g);
            pthread_mutex_unlock(&g_groups_mu);
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        }
        pthread_mutex_init(&g->mu, NULL);
        pthread_cond_init(&g->cv[0], NULL);
        pthread_cond_init(&g->cv[1], NULL);
        g->next = g_groups;
        g_groups = g;
    }
    g->refs++;
    pthread_mutex_unlock(&g_groups_mu);
    db->grp = g;
    int c = sqlite3_exec(db->h, "PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL);
    if (c != SQLITE_OK) {
        db->grp = NULL;
        group_put(g);
        return dbs_fail(db, c, err);
    }
    sqlite3_wal_hook(db->h, wal_hook, db); /* after the pragma: it sets the hook too */
    return MT_OK;
}

/* Leaves the group; a handle that lives on gets SQLite's own checkpoints. */
static void group_leave(mt_db *db, bool handle_lives_on)
{
    if (!db->grp)
        return;
    sqlite3_wal_hook(db->h, NULL, NULL); /* the hook points at db */
    if (handle_lives_on)
        sqlite3_wal_autocheckpoint(db->h, DBS_CHECKPOINT_PAGES);
    group_put(db->grp);
    db->grp = NULL;
}

mt_status dbs_group_on(mt_db *db, mt_err *err)
{
    mt_status rc = group_join(db, err);
    if (!rc && db->grp)
        db->group_sync = true;
    return rc;
}

/* Without mu: every begin and commit of the file's connections asks, and
 * the flag only ever goes from false to true (a caller that read false just
 * before a break is one that asked just before it). */
static bool group_is_broken(dbs_group *g)
{
    return g && atomic_load(&g->broken);
}

static void tx_stmts_free(mt_db *db)
{
    for (size_t i = 0; i < sizeof db->txst / sizeof db->txst[0]; i++) {
        sqlite3_finalize(db->txst[i]);
        db->txst[i] = NULL;
    }
    for (size_t i = 0; i < sizeof db->spst / sizeof db->spst[0]; i++) {
        sqlite3_finalize(db->spst[i]);
        db->spst[i] = NULL;
        free(db->spsql[i]);
        db->spsql[i] = NULL;
    }
}

void dbs_close(mt_db *db)
{
    tx_stmts_free(db);
    group_leave(db, db->borrowed);
    if (!db->borrowed) {
        /* a zombie handle (statements left open) outlives db: no busy_wait
         * with db as its argument on it */
        sqlite3_busy_handler(db->h, NULL, NULL);
        sqlite3_close_v2(db->h);
    }
    free(db);
}

/* synchronous=FULL or NORMAL (outside a transaction: SQLite refuses the
 * change inside one). Not through dbs_exec: a pragma, never PostgreSQL's. */
static mt_status set_sync(mt_db *db, bool full, mt_err *err)
{
    int c = sqlite3_exec(db->h, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
                         NULL, NULL, NULL);
    return c == SQLITE_OK ? MT_OK : dbs_fail(db, c, err);
}

/* Only a transaction that takes the write lock at BEGIN runs lazily: a
 * DEFERRED one (nearly always a read) keeps FULL and costs no pragma (a
 * write in it is durable at its COMMIT, as without group sync). */
mt_status dbs_begin(mt_db *db, mt_db_tx mode, mt_err *err)
{
    if (group_is_broken(db->grp))
        return group_broken_err(err);
    if (db->group_sync && mode != MT_DB_TX_DEFERRED && !db->tx_lazy && sqlite3_get_autocommit(db->h)) {
        mt_status rc = set_sync(db, false, err);
        if (rc)
            return rc;
        db->tx_lazy = true;
    }
    mt_status rc = dbs_exec(db, mode == MT_DB_TX_DEFERRED ? "BEGIN" : "BEGIN IMMEDIATE", err);
    if (rc && db->tx_lazy && sqlite3_get_autocommit(db->h) && !set_sync(db, true, NULL))
        db->tx_lazy = false;
    return rc;
}

/* Back to synchronous=FULL once the transaction has ended (a failed COMMIT
 * may leave it open: then at its rollback). */
static void lazy_end(mt_db *db)
{
    if (db->tx_lazy && sqlite3_get_autocommit(db->h) && !set_sync(db, true, NULL))
        db->tx_lazy = false;
}

static mt_status group_wait(mt_db *db, uint64_t my, mt_err *err);

mt_status dbs_commit(mt_db *db, bool sync, mt_err *err)
{
    /* a transaction that never took the write lock wrote nothing to sync */
    bool lazy = db->tx_lazy && sqlite3_txn_state(db->h, "main") == SQLITE_TXN_WRITE;
    db->outcome_unknown = false;
    if (group_is_broken(db->grp)) { /* its sync could not be trusted: not committed */
        dbs_exec(db, "ROLLBACK", NULL);
        lazy_end(db);
        return group_broken_err(err);
    }
    mt_status rc = dbs_exec(db, "COMMIT", err);
    int code = rc ? sqlite3_errcode(db->h) & 0xff : SQLITE_OK;
    lazy_end(db);
    if (rc && sqlite3_get_autocommit(db->h)) /* it stood (the WAL hook's checkpoint failed) */
        db->outcome_unknown = true;
    if (code == SQLITE_IOERR && db->grp) { /* e.g. a FULL commit's own WAL fsync */
        dbs_group *g = db->grp;
        pthread_mutex_lock(&g->mu);
        if (!g->broken)
            group_break(g, "COMMIT: disk I/O error");
        pthread_mutex_unlock(&g->mu);
    }
    if (rc || !lazy)
        return rc;
    dbs_group *g = db->grp;
    pthread_mutex_lock(&g->mu);
    uint64_t my = ++g->reg;
    pthread_mutex_unlock(&g->mu);
    mt_err serr;
    mt_err_clear(&serr);
    if (sync && (rc = group_wait(db, my, &serr)) != MT_OK) {
        rc = db_fail(db, err, MT_EIO, false, "committed, but the sync failed: %s", serr.msg);
        db->outcome_unknown = true;
    }
    return rc;
}

void dbs_rollback(mt_db *db)
{
    if (dbs_in_tx(db))
        dbs_exec(db, "ROLLBACK", NULL);
    lazy_end(db);
}

/* fdatasync of the WAL through db's own handle of it (opened at the
 * connection's first read in WAL mode: one read opens it when not yet). */
static mt_status sync_wal(mt_db *db, mt_err *err)
{
    unsigned f = atomic_load(&g_fail_syncs);
    while (f > 0 && !atomic_compare_exchange_weak(&g_fail_syncs, &f, f - 1))
        ;
    if (f > 0)
        return mt_err_set(err, MT_EIO, "the WAL sync failed (test)");
    for (int i = 0; i < 2; i++) {
        sqlite3_file *f = NULL;
        int c = sqlite3_file_control(db->h, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
        if (c != SQLITE_OK)
            return dbs_fail(db, c, err);
        if (f && f->pMethods) {
            c = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL);
            return c == SQLITE_OK ? MT_OK : dbs_fail_code(db, c, err);
        }
        if (i == 0 && (c = sqlite3_exec(db->h, "SELECT count(*) FROM sqlite_master", NULL,
                                        NULL, NULL)) != SQLITE_OK)
            return dbs_fail(db, c, err);
    }
    return mt_err_set(err, MT_EIO, "the database has no WAL to sync");
}

/* The last lazy commit registered (0: no group) */
uint64_t dbs_sync_mark(mt_db *db)
{
    dbs_group *g = db->grp;
    if (!g) /* in-memory or read-only */
        return 0;
    pthread_mutex_lock(&g->mu);
    uint64_t my = g->reg;
    pthread_mutex_unlock(&g->mu);
    return my;
}

/* A mark is a number of the group's registrations, which every connection
 * of the file shares (one dbs_group per file): a mark taken on another
 * connection of the file is good here. */
mt_status dbs_sync_to(mt_db *db, uint64_t mark, mt_err *err)
{
    dbs_group *g = db->grp;
    if (!g) /* in-memory or read-only */
        return MT_OK;
    /* synchronous=FULL: this connection's own commits were durable when they
     * returned; returns at once and does NOT cover the lazy commits of the
     * file's group sync connections, whatever the mark (mt_db.h) */
    if (!db->group_sync)
        return group_is_broken(g) ? group_broken_err(err) : MT_OK;
    return group_wait(db, mark, err);
}

/* Returns once lazy commit number `my` is durable: runs the sync when none
 * is in flight (for every commit registered by then), else waits for it. */
static mt_status group_wait(mt_db *db, uint64_t my, mt_err *err)
{
    dbs_group *g = db->grp;
    atomic_fetch_add(&g_waits, 1);
    pthread_mutex_lock(&g->mu);
    if (my > g->reg) /* not a mark: no sync could ever cover it (mt_db.h) */
        my = g->reg;
    mt_status rc = MT_OK;
    while (g->broken || g->done < my) {
        if (g->broken) { /* this or an earlier sync failed: none is trusted again */
            rc = group_broken_err(err);
            break;
        }
        if (g->syncing) { /* the sync in flight covers my, or the next one will */
            unsigned i = (unsigned)((g->target >= my ? g->started : g->started + 1) & 1);
            g->waiting[i]++;
            pthread_cond_wait(&g->cv[i], &g->mu);
            g->waiting[i]--;
            continue;
        }
        g->syncing = true; /* this thread syncs for everyone registered so far */
        uint64_t target = g->target = g->reg;
        uint64_t n = ++g->started;
        pthread_mutex_unlock(&g->mu);
        mt_err serr;
        mt_err_clear(&serr);
        mt_status src = sync_wal(db, &serr);
        atomic_fetch_add(&g_syncs, 1);
        pthread_mutex_lock(&g->mu);
        g->syncing = false;
        if (!src && target > g->done)
            g->done = target;
        if (src) {
            group_break(g, serr.msg);
            if (err)
                *err = serr;
            rc = src;
            break;
        }
        /* this sync's waiters, and one of the next sync's to run it (a
         * waiter of n + 1 that finds one in flight waits for that) */
        if (g->waiting[n & 1])
            pthread_cond_broadcast(&g->cv[n & 1]);
        if (g->waiting[(n + 1) & 1])
            pthread_cond_signal(&g->cv[(n + 1) & 1]);
    }
    pthread_mutex_unlock(&g->mu);
    return rc;
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

/* The transaction statements every request runs, several times: kept
 * prepared instead of compiled by each sqlite3_exec (issue 13: about 25
 * compilations per task on the request connection). -1: not one of them. */
static const char *const TX_SQL[] = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"};

static int tx_index(const char *sql)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(sql, TX_SQL[i]))
            return i;
    return -1;
}

/* Runs a kept statement once; reset after (finalized instead when !keep). */
static mt_status step_once(mt_db *db, sqlite3_stmt *st, bool keep, mt_err *err)
{
    int c = sqlite3_step(st);
    mt_status rc = c == SQLITE_DONE ? MT_OK : dbs_fail(db, c, err); /* errmsg before reset */
    if (keep)
        sqlite3_reset(st);
    else
        sqlite3_finalize(st);
    if (!rc)
        db->changes = sqlite3_changes(db->h);
    return rc;
}

static mt_status tx_exec(mt_db *db, int i, mt_err *err)
{
    sqlite3_stmt *st = db->txst[i];
    int c;
    if (!st) {
        if ((c = sqlite3_prepare_v2(db->h, TX_SQL[i], -1, &st, NULL)) != SQLITE_OK)
            return dbs_fail(db, c, err);
        db->txst[i] = st;
    }
    return step_once(db, st, true, err);
}

/* One savepoint statement (SAVEPOINT, RELEASE or ROLLBACK TO a name; no
 * ';'): kept prepared like the transaction statements, as each run
 * compiled it anew (sqlite3_exec). */
static bool sp_text(const char *sql)
{
    size_t n = strlen(sql);
    return n < 64 && !strchr(sql, ';') &&
           (!strncmp(sql, "SAVEPOINT ", 10) || !strncmp(sql, "RELEASE ", 8) ||
            !strncmp(sql, "ROLLBACK TO ", 12));
}

static mt_status sp_exec(mt_db *db, const char *sql, mt_err *err)
{
    const size_t n = sizeof db->spst / sizeof db->spst[0];
    sqlite3_stmt *st = NULL;
    for (size_t i = 0; i < n && !st; i++)
        if (db->spst[i] && !strcmp(db->spsql[i], sql))
            st = db->spst[i];
    int c;
    if (!st) {
        if ((c = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL)) != SQLITE_OK)
            return dbs_fail(db, c, err);
        char *key = strdup(sql);
        if (key) { /* no memory: run once, not kept */
            size_t i = db->sp_hand++ % n;
            sqlite3_finalize(db->spst[i]);
            free(db->spsql[i]);
            db->spst[i] = st;
            db->spsql[i] = key;
        }
        return step_once(db, st, key != NULL, err);
    }
    return step_once(db, st, true, err);
}

mt_status dbs_exec(mt_db *db, const char *sql, mt_err *err)
{
    int ti = tx_index(sql);
    if (ti >= 0)
        return tx_exec(db, ti, err);
    mt_status prc = portable(db, sql, err);
    if (prc)
        return prc;
    if (sp_text(sql))
        return sp_exec(db, sql, err);
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
    if (db->borrowed) { /* the caller's connection: SQLite's own handler */
        int c = sqlite3_busy_timeout(db->h, ms > 0x7fffffffu ? 0x7fffffff : (int)ms);
        return c == SQLITE_OK ? MT_OK : dbs_fail(db, c, err);
    }
    db->busy_ms = ms;
    int c = sqlite3_busy_handler(db->h, ms ? busy_wait : NULL, ms ? db : NULL);
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
    tx_stmts_free(db); /* the handle becomes the caller's: nothing of ours left on it */
    if (db->tx_lazy && sqlite3_get_autocommit(h)) /* the caller's handle: FULL again */
        sqlite3_exec(h, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    group_leave(db, true);
    /* busy_wait's argument is db, freed below: SQLite's own handler with
     * the same timeout (0: none) in its place (a borrowed handle keeps the
     * caller's handler: busy_wait is never set on one) */
    if (!db->borrowed)
        sqlite3_busy_timeout(h, db->busy_ms > INT_MAX ? INT_MAX : (int)db->busy_ms);
    free(db);
    return h;
}
