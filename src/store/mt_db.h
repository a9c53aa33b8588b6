/* mt_db: the database layer of mesatee's store, one interface over two
 * backends: SQLite (a file; the default, what src/core used directly before)
 * and PostgreSQL (libpq). docs/design.md "Store backends" and docs/cluster.md
 * describe the design; this header is the contract.
 *
 * SQL is written ONCE, in SQLite's dialect restricted to a common subset
 * (mt_db_translate lists the rules); on PostgreSQL each statement is
 * translated when prepared. The translator is a scanner of mesatee's own
 * constant SQL, never of outside input.
 *
 * Connections: mt_db_open(url) opens one connection. A connection is used by
 * one thread at a time (the caller's lock); different connections are
 * independent and may be used by different threads at once.
 *   - "file:PATH", "sqlite:PATH" or a plain PATH: SQLite, WAL, synchronous=FULL
 *     (or the group sync below: durable at commit all the same),
 *     foreign keys on, a 10 s busy timeout (as store.c had). MT_DB_READONLY
 *     opens without creating and sets only foreign_keys.
 *   - "postgres://..." / "postgresql://...": libpq URI, passed to libpq as is
 *     (sslmode, sslrootcert, several host:port pairs with
 *     target_session_attrs=read-write so that a failover is followed).
 * mt_db_wrap_sqlite borrows an existing sqlite3 connection (the core's
 * connections during the conversion; the layer never closes it).
 *
 * Debug builds (no NDEBUG: the sanitizer build) also check on SQLite that
 * every SQL text would translate for PostgreSQL (MT_EINVAL "SQL not portable
 * to PostgreSQL: ..." otherwise), so the SQLite test runs catch it.
 *
 * Statements: mt_db_prepare compiles (on PostgreSQL: translates, and prepares
 * on the server at the first step, once per connection, again after a
 * reconnect). Parameters are positional from 1 (`?`, `?N` in the SQL). Binds
 * copy their values. mt_db_step runs the statement: MT_DB_ROW with a row to
 * read, MT_DB_DONE at the end, or an error. mt_db_reset makes it runnable
 * again (bindings kept; mt_db_clear_bindings sets them all NULL). Column
 * accessors are valid until the next step/reset/finalize; a NULL column reads
 * as 0, "" (mt_db_col_text) and an empty blob; mt_db_col_null tells NULL.
 * Integers are 64-bit on both backends (DDL INTEGER becomes BIGINT).
 *
 * Transactions: mt_db_begin(MT_DB_TX_IMMEDIATE) is SQLite's BEGIN IMMEDIATE:
 * one writer at a time across every connection of the database (on
 * PostgreSQL a transaction-scoped advisory lock taken first, see
 * mt_db_translate). MT_DB_TX_SERIALIZABLE runs at SERIALIZABLE isolation
 * without that lock (PostgreSQL; SQLite treats it as IMMEDIATE): conflicts
 * then surface as retryable errors. mt_db_rollback is a no-op outside a
 * transaction and never fails. PostgreSQL sends a transaction's BEGIN (and
 * the IMMEDIATE lock) with its first statement, in one round trip, so a
 * lock wait or a refused BEGIN surfaces at that statement, not at
 * mt_db_begin; a transaction that ran no statement commits without one.
 *
 * Errors: every failure returns an mt_status and fills err (when non-NULL)
 * with a message naming the operation, the SQLSTATE / SQLite code and the
 * constraint/table where the backend tells it, never a value of a row or a
 * parameter (PostgreSQL's message and DETAIL can quote values: they are not
 * used). A conflict another connection can resolve by finishing (SQLite
 * BUSY/LOCKED after the timeout; PostgreSQL serialization failure 40001,
 * deadlock 40P01, lock not available 55P03; a connection lost outside a
 * transaction) is MT_EUNAVAIL and mt_db_retryable(db) is true until the next
 * call: the caller may roll back and run the whole transaction again.
 * Every other failure is MT_EIO (MT_EINVAL for a bad URL or an SQL text the
 * translator refuses, MT_ENOMEM when out of memory).
 *
 * Reconnect (PostgreSQL): a connection found broken when a transaction
 * starts, or when a statement outside a transaction fails because the
 * connection broke, is re-established (libpq PQreset: the same URL, so the
 * read-write host of a multi-host URL is found again). A transaction's first
 * statement (with its BEGIN) or a SELECT outside a transaction is then sent
 * again once; any other statement is
 * not (it may have been applied) and reports MT_EUNAVAIL (retryable). Inside
 * a transaction a broken connection fails the transaction (MT_EUNAVAIL).
 *
 * Thread-safety: none per connection (see above); mt_db_translate is pure. */
#ifndef MT_DB_H
#define MT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

typedef struct mt_db mt_db;
typedef struct mt_db_stmt mt_db_stmt;

typedef enum mt_db_backend { MT_DB_SQLITE = 1, MT_DB_PG = 2 } mt_db_backend;

#define MT_DB_READONLY 1u /* mt_db_open flag: SQLite only, no create */

/* mt_db_step's results (a failure is -1 with *rc set, see mt_db_step) */
#define MT_DB_ROW 1
#define MT_DB_DONE 0

typedef enum mt_db_tx {
    MT_DB_TX_DEFERRED = 0,     /* plain BEGIN */
    MT_DB_TX_IMMEDIATE = 1,    /* one writer at a time (SQLite BEGIN IMMEDIATE) */
    MT_DB_TX_SERIALIZABLE = 2, /* SERIALIZABLE isolation, conflicts are retryable */
} mt_db_tx;

/* The backend a URL names (MT_DB_SQLITE for a path or file:/sqlite: URL),
 * or 0 for an unknown scheme ("mysql://..."). */
mt_db_backend mt_db_url_backend(const char *url);

/* The file path of a SQLite URL (a pointer into url: "file:PATH",
 * "file:///abs", "sqlite:PATH" or the plain path); MT_EINVAL naming the
 * problem for other URLs, a host in a file URL or an empty path. */
mt_status mt_db_url_sqlite_path(const char *url, const char **path, mt_err *err);
/* Opens a connection (see the header). *out is NULL on failure. The error
 * names the URL with any password removed. */
mt_status mt_db_open(const char *url, unsigned flags, mt_db **out, mt_err *err);
/* An mt_db over an existing SQLite connection, which stays the caller's
 * (not closed by mt_db_close). */
struct sqlite3;
mt_status mt_db_wrap_sqlite(struct sqlite3 *h, mt_db **out, mt_err *err);
/* mt_db_open of a SQLite file named by path as it is (no URL parsing). */
mt_status mt_db_open_sqlite_path(const char *path, unsigned flags, mt_db **out, mt_err *err);
/* Frees the mt_db of a SQLite connection it opened and returns the handle,
 * which becomes the caller's (sqlite3_close_v2); for store.c's connections
 * not yet converted. NULL for PostgreSQL (then nothing is freed). */
struct sqlite3 *mt_db_release_sqlite(mt_db *db);
/* Closes (unless borrowed) and frees; finalize its statements first.
 * NULL is a no-op. */
void mt_db_close(mt_db *db);
mt_db_backend mt_db_backend_of(const mt_db *db);
/* The value a PostgreSQL connection uses for libpq connection option keyword
 * (e.g. "keepalives_idle": the URL's or db_pg.c's default) into out; false
 * on SQLite, for an option not set, or when it does not fit. Diagnostics
 * and tests. */
bool mt_db_conn_option(mt_db *db, const char *keyword, char *out, size_t cap);
/* The SQLite handle of a SQLite connection, NULL for PostgreSQL. */
struct sqlite3 *mt_db_sqlite_handle(mt_db *db);

/* Runs one or more statements without parameters or results (DDL, pragmas).
 * On PostgreSQL the text is translated first. */
mt_status mt_db_exec(mt_db *db, const char *sql, mt_err *err);

mt_status mt_db_begin(mt_db *db, mt_db_tx mode, mt_err *err);
/* Commits; on success the transaction is durable (SQLite: synchronous=FULL,
 * or the group sync below; PostgreSQL: synchronous_commit=on). */
mt_status mt_db_commit(mt_db *db, mt_err *err);

/* Group sync (issue 13; SQLite only, a no-op returning MT_OK on PostgreSQL,
 * whose commits are durable at commit and grouped by the server).
 * With synchronous=FULL every SQLite commit fsyncs the WAL while it still
 * holds the database's one write lock, so the writers of all connections
 * take turns at one fsync each. mt_db_set_group_sync(db) (call it outside a
 * transaction) changes how db's write transactions (MT_DB_TX_IMMEDIATE,
 * SERIALIZABLE) commit: each runs at synchronous=NORMAL (mt_db_begin sets
 * it, the commit or rollback sets FULL again, so statements outside such a
 * transaction, and DEFERRED ones, keep FULL), so its COMMIT
 * writes the WAL and releases the write lock without an fsync; mt_db_commit
 * then waits in mt_db_sync. mt_db_commit's contract is unchanged: when it
 * returns MT_OK the transaction is on disk. A commit that succeeded but whose
 * sync failed returns MT_EIO ("committed, but the sync failed"): its outcome
 * is unknown to the caller, as after a connection broken during COMMIT.
 * mt_db_sync(db) on a group sync connection: returns when everything
 * committed to db's database file by any connection of this process before
 * the call is durable: one fdatasync
 * of the WAL (through db's own WAL handle) serves every caller waiting
 * meanwhile, from all the connections of that file (the first waiter that
 * finds no sync in flight runs it; the others wait for it or the next one).
 * Sound because the WAL is append-only between checkpoints and a checkpoint
 * syncs the WAL before it copies frames (the WAL is restarted only after a
 * checkpoint covered all of it). A group sync connection's data is visible
 * to the other connections from its COMMIT on, before it is durable: a reply
 * built from what a connection READ must pass a commit or mt_db_sync that
 * started after that read before it leaves (the gateway's audit committer
 * does: docs/design.md "Group sync"). On a connection without group sync
 * (never mt_db_set_group_sync'd, read-only or in-memory) mt_db_sync and
 * mt_db_sync_to return MT_OK at once (MT_EIO when the file's group is
 * broken): its own commits were durable when they returned, and it does NOT
 * make the lazy commits of the file's group sync connections durable; sync
 * those through one of them.
 * mt_db_commit_nosync: commits without waiting (a group sync connection; on
 * any other it is mt_db_commit): the caller must call mt_db_sync (on a group
 * sync connection of the same file) before it acknowledges the transaction. */
mt_status mt_db_set_group_sync(mt_db *db, mt_err *err);
mt_status mt_db_commit_nosync(mt_db *db, mt_err *err);
mt_status mt_db_sync(mt_db *db, mt_err *err);
/* mt_db_sync in two steps, for a caller that syncs on behalf of commits it
 * knows to have returned earlier: mt_db_sync_mark(db) marks every commit of
 * db's file group registered so far (a group sync connection's commit
 * registers before mt_db_commit_nosync returns); mt_db_sync_to(db, mark)
 * returns once those are durable, with no fdatasync when a sync that
 * started after them has completed meanwhile (mt_db_sync waits for every
 * commit registered at its call, so a busy file keeps it syncing). The
 * mark may be taken on any connection of the file and used on another
 * group sync connection of it (on one without group sync both return at
 * once, without covering other connections' lazy commits: above).
 * A mark above the last commit registered (not one mt_db_sync_mark returned)
 * is taken as mt_db_sync_mark(db): no sync could ever cover it.
 * mt_db_sync(db) is mt_db_sync_to(db, mt_db_sync_mark(db)). A broken group
 * (below) fails as mt_db_sync does. PostgreSQL: 0 and MT_OK. */
uint64_t mt_db_sync_mark(mt_db *db);
mt_status mt_db_sync_to(mt_db *db, uint64_t mark, mt_err *err);
/* Group sync counters of this process (all files): syncs run (fdatasyncs of
 * a WAL) and sync waits served (commits and mt_db_sync calls); waits / syncs
 * is the mean group. For /metrics and tests. */
void mt_db_group_sync_counts(uint64_t *syncs, uint64_t *waits);
/* A failed fsync of a SQLite file's WAL through any read-write connection
 * of this process (a group sync, a synchronous=FULL COMMIT's own: an I/O
 * error of a COMMIT counts, or a checkpoint: every such connection sets
 * wal_autocheckpoint=0 and checkpoints from its WAL hook, whose I/O error
 * counts the same) is sticky: Linux reports a writeback error once and a
 * later fdatasync succeeds although the frames never reached the disk.
 * From then on every mt_db_begin, mt_db_commit and mt_db_sync of that
 * file's read-write connections fails with MT_EIO (a commit rolls back),
 * until the last of them is closed. mt_db_set_sync_fatal(true)
 * (the daemon, docs/operations.md) makes such a failure also log a FATAL
 * line and exit the process with MT_DB_SYNC_FATAL_EXIT, so that its restart
 * recovers from what is on disk (as PostgreSQL does at a failed fsync). */
#define MT_DB_SYNC_FATAL_EXIT 74 /* EX_IOERR */
void mt_db_set_sync_fatal(bool on);
/* After a failed mt_db_commit / mt_db_commit_nosync: true when the
 * transaction committed all the same (its sync, or the checkpoint after it,
 * failed: MT_EIO "committed, but the sync failed"), so a caller must not
 * undo its side effects as if it had not; false after a commit that did not
 * happen, and after mt_db_begin. Always false on PostgreSQL. */
bool mt_db_outcome_unknown(const mt_db *db);
/* Tests: the next n group syncs fail (MT_EIO) without syncing; returns how
 * many failures set earlier were still to come. */
unsigned mt_db_test_fail_syncs(unsigned n);
void mt_db_rollback(mt_db *db);
bool mt_db_in_tx(mt_db *db);
/* An id of db's open transaction, unique in the process (never reused), 0
 * outside one. It changes when the transaction ends (commit, rollback) and
 * at a ROLLBACK TO, so a value the caller derived from its own writes in
 * this transaction may be reused while the id stays the same (audit.c's
 * chain head); a transaction begun or ended on a borrowed SQLite handle
 * without this layer is not seen. */
uint64_t mt_db_tx_serial(mt_db *db);
/* PostgreSQL: sql (one SELECT without parameters, under 80 bytes; NULL
 * unsets) is sent by every later MT_DB_TX_IMMEDIATE transaction of db right
 * after its writer lock, in the round trip of its first statement (so it
 * reads what the lock protects, as a read at any later point of the
 * transaction would, as far as other writers that take the lock go);
 * mt_db_prefetch_take hands its result over once: true with *row (false:
 * no row), column 0 as an integer in *i0 and column 1 as text in t1 (cap
 * bytes), false when there is none (SQLite: always; a transaction whose
 * first round trip was a command text; taken already; another
 * transaction; asked for before the transaction's first round trip, which
 * then goes without it: the caller reads for itself, in that round trip).
 * Dropped when the transaction ends. audit.c prefetches the
 * chain head this way: one round trip less per audited change. */
void mt_db_set_prefetch(mt_db *db, const char *sql);
bool mt_db_prefetch_take(mt_db *db, bool *row, int64_t *i0, char *t1, size_t cap);

/* How long a statement waits for a lock another connection holds before
 * failing with a retryable MT_EUNAVAIL: SQLite's busy timeout (10 s after
 * mt_db_open), PostgreSQL's lock_timeout (0 = wait forever, the default). */
mt_status mt_db_set_busy_timeout(mt_db *db, unsigned ms, mt_err *err);

/* True when the last failure on db was retryable (MT_EUNAVAIL, see above). */
bool mt_db_retryable(const mt_db *db);
/* Rows changed by the last INSERT/UPDATE/DELETE step on db. */
int64_t mt_db_changes(mt_db *db);
/* The id the last INSERT on db gave an INTEGER PRIMARY KEY AUTOINCREMENT
 * column. On PostgreSQL only for statements with a RETURNING clause read
 * by the caller; this function returns lastval() there (the last value any
 * sequence gave on this connection), 0 when none. */
mt_status mt_db_last_insert_id(mt_db *db, int64_t *id, mt_err *err);

/* ---- statements ---------------------------------------------------------- */
mt_status mt_db_prepare(mt_db *db, const char *sql, mt_db_stmt **st, mt_err *err);
void mt_db_finalize(mt_db_stmt *st); /* NULL is a no-op */
/* The connection st was prepared on. */
mt_db *mt_db_stmt_db(const mt_db_stmt *st);
/* Number of parameters (the largest ?N). */
int mt_db_param_count(const mt_db_stmt *st);
/* Binds parameter i (1-based; out of range is ignored, as SQLite's binds
 * would return RANGE which core never checked). Values are copied. */
void mt_db_bind_int64(mt_db_stmt *st, int i, int64_t v);
void mt_db_bind_text(mt_db_stmt *st, int i, const char *s); /* NULL binds NULL */
void mt_db_bind_blob(mt_db_stmt *st, int i, const void *p, size_t n);
void mt_db_bind_null(mt_db_stmt *st, int i);
void mt_db_clear_bindings(mt_db_stmt *st);
/* One step: MT_DB_ROW, MT_DB_DONE, or -1 with *rc set (and err filled)
 * unless *rc was already non-zero (the loop idiom of store_next:
 * `while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW)`). */
int mt_db_step(mt_db_stmt *st, mt_status *rc, mt_err *err);
/* Runs a statement whose result the caller does not read, inside a
 * transaction: one that always changes a row when it succeeds (a plain
 * INSERT), so the commit counts as a write. SQLite: mt_db_step now.
 * PostgreSQL: queued (its parameters copied) and sent with the
 * transaction's next statement or its COMMIT in one round trip; a failure
 * of it then fails that statement or the commit, and the transaction. The
 * statement may be reset and reused at once. */
mt_status mt_db_run_deferred(mt_db_stmt *st, mt_err *err);
void mt_db_reset(mt_db_stmt *st);
int mt_db_col_count(const mt_db_stmt *st);
bool mt_db_col_null(mt_db_stmt *st, int i);
int64_t mt_db_col_int64(mt_db_stmt *st, int i);
/* Never NULL ("" for NULL). */
const char *mt_db_col_text(mt_db_stmt *st, int i);
/* Bytes of a blob (or text) column; *n its length. NULL with *n 0 for NULL
 * or empty. */
const void *mt_db_col_blob(mt_db_stmt *st, int i, size_t *n);

/* ---- dialect ------------------------------------------------------------- */
/* Translates our SQL (SQLite dialect, common subset) for backend into a new
 * malloc'ed string in *out; *nparams (optional) receives the number of
 * positional parameters. For MT_DB_SQLITE the text is copied unchanged. For
 * MT_DB_PG, outside string literals, quoted identifiers and comments:
 *   ?  ?N                                   -> $k  $N  (k = largest so far + 1)
 *   BEGIN IMMEDIATE                         -> BEGIN; SELECT pg_advisory_xact_lock(K)
 *   BEGIN DEFERRED / BEGIN TRANSACTION      -> BEGIN
 *   INTEGER PRIMARY KEY AUTOINCREMENT       -> BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY
 *   INTEGER (a type word)                   -> BIGINT
 *   BLOB                                    -> BYTEA
 *   INSERT OR IGNORE INTO ...               -> INSERT INTO ... ON CONFLICT DO NOTHING
 *   INSERT OR REPLACE INTO t(cols) ...      -> INSERT INTO t(cols) ... ON CONFLICT (pk)
 *                                              DO UPDATE SET c = EXCLUDED.c (non-key cols);
 *                                              pk from the table list in db_sql.c
 *   PRAGMA ...                              -> removed (SQLite connection settings)
 *   ifnull(                                 -> coalesce(
 *   total(x)                                -> LEAST(GREATEST(coalesce(sum(x), 0),
 *                                              INT64_MIN), INT64_MAX)
 * and refuses (MT_EINVAL naming the construct) what has no translation:
 * `rowid`, `?` inside a statement given to mt_db_exec, INSERT OR REPLACE
 * into a table missing from the key list, INSERT OR ABORT/FAIL/ROLLBACK, a
 * second INSERT OR in one statement, `:name`/`@name`/`$name` parameters,
 * an unterminated literal or comment. Statements are separated by `;`
 * outside literals; each is translated on its own. */
mt_status mt_db_translate(mt_db_backend backend, const char *sql, char **out, int *nparams,
                          mt_err *err);
/* The advisory lock key of MT_DB_TX_IMMEDIATE on PostgreSQL. */
#define MT_DB_WRITER_LOCK_KEY 0x6d65736174656501LL /* "mesatee\x01" */


/* ---- cluster primitives (db_cluster.c; docs/cluster.md "Scheduling across
 * nodes") ---------------------------------------------------------------- */
/* Takes the writer lock of MT_DB_TX_IMMEDIATE inside a transaction begun
 * otherwise (PostgreSQL: pg_advisory_xact_lock, held until commit or
 * rollback; taken again it is a no-op; sent with the transaction's next
 * statement or its COMMIT, which the server runs after it, so held from
 * that statement on). SQLite: MT_OK (its transactions are
 * IMMEDIATE whenever they write). For work that should run side by side
 * until the one step that must be serial (an audit append). */
mt_status mt_db_writer_lock(mt_db *db, mt_err *err);
/* A session-level advisory lock (PostgreSQL pg_try_advisory_lock): *got
 * tells whether this connection now holds key (until mt_db_unlock or the
 * connection ends; a reconnect loses it). SQLite: always granted. For work
 * that one node of a cluster does at a time. */
mt_status mt_db_try_lock(mt_db *db, int64_t key, bool *got, mt_err *err);
void mt_db_unlock(mt_db *db, int64_t key);
/* LISTEN/NOTIFY (PostgreSQL only; MT_EINVAL on SQLite). channel: [a-z0-9_],
 * payload: [a-z0-9_:], at most 200 bytes (our own constant forms). A
 * NOTIFY outside a transaction is delivered at once, inside one at commit
 * (a short one is then sent with the transaction's next statement or its
 * COMMIT, no round trip of its own). */
mt_status mt_db_listen(mt_db *db, const char *channel, mt_err *err);
mt_status mt_db_notify(mt_db *db, const char *channel, const char *payload, mt_err *err);
/* The connection's socket to poll for notifications (-1: none/broken). */
int mt_db_socket(mt_db *db);
/* Reads what arrived and calls fn for each notification; MT_EUNAVAIL when
 * the connection broke (open a new one and LISTEN again: notifications
 * sent meanwhile are lost). */
mt_status mt_db_notifications(mt_db *db,
                              void (*fn)(void *ctx, const char *channel, const char *payload),
                              void *ctx, mt_err *err);
/* Store outages seen by this process (PostgreSQL; SQLite has none): an
 * operation that failed because the database could not be reached (its
 * connection broke, or a reconnect failed) starts one, at the time it was
 * first seen; the next successful reconnect of any connection ends it (a
 * broken connection reconnected at once, its statement sent again, is
 * none: nothing was refused).
 * *ended counts the outages ended so far (0 at start), *start_ms is
 * when the last ended one was first seen (CLOCK_REALTIME ms, 0: none). A
 * caller that remembers *ended learns that the store was away since; the
 * remote scheduler uses it so that executor leases whose renewals could not
 * reach the store do not expire because of it (docs/design.md "Executor
 * leases"). Thread-safe. */
void mt_db_outages(uint64_t *ended, int64_t *start_ms);
/* Commits this process made, per backend (MT_DB_SQLITE or MT_DB_PG):
 * *writes counts the transactions that changed rows (a statement other
 * than a SELECT that changed or returned a row; DDL through mt_db_exec) and
 * committed, plus each such statement run outside a transaction (it
 * commits by itself): the commits that make the database
 * write and flush its log (an fsync at SQLite synchronous=FULL and at
 * PostgreSQL's synchronous_commit=on); *reads the commits of transactions
 * that only read. For /metrics (mesatee_store_commits_total) and the
 * benches' per-task counts. Thread-safe. */
void mt_db_commit_counts(mt_db_backend backend, uint64_t *writes, uint64_t *reads);
/* The requests this process sent to a PostgreSQL server and waited for
 * (statements, command texts, prepares, pipelines of several; connects and
 * notification reads not counted): mesatee_store_round_trips_total and the
 * benches' per-task counts. Thread-safe. */
uint64_t mt_db_round_trips(void);
/* Node liveness (node_live.c): a shared-mode session advisory lock on key
 * (pg_try_advisory_lock_shared; several sessions may hold it at once), held
 * until the connection ends. SQLite: MT_OK, *got true. */
mt_status mt_db_lock_shared(mt_db *db, int64_t key, bool *got, mt_err *err);
/* Whether any session of this database holds the advisory lock key (in
 * either mode), from pg_locks. SQLite: always true (one node). */
mt_status mt_db_lock_held(mt_db *db, int64_t key, bool *held, mt_err *err);
/* The connection's generation: changes with every reconnect, after which
 * the session's advisory locks are gone (SQLite: always 0). */
unsigned mt_db_generation(const mt_db *db);
/* Advisory lock keys of once-per-cluster work (mt_db_try_lock). */
#define MT_DB_LOCK_REWRAP 0x6d65736174656502LL /* "mesatee\x02": the KeyStore rewrap pass */
#define MT_DB_LOCK_LEASE_SWEEP 0x6d65736174656503LL /* "mesatee\x03": the lease sweeper */
#define MT_DB_LOCK_NODE_SWEEP 0x6d65736174656504LL /* "mesatee\x04": the dead-node sweeper */

#endif
