/* store: the SQLite database of mt_core (one connection per thread; WAL,
 * synchronous=FULL, foreign keys on, busy timeout) and its schema with a
 * version table and forward migrations. Helpers keep handlers short: every
 * failure becomes an mt_err naming what went wrong.
 *
 * UNTRUSTED STORAGE: the database file is host-owned (outside the TEE at the
 * hardware levels). Nothing read from it is trusted for a security decision
 * unless integrity.c verified its MAC (users and tokens, file rows with
 * their owners, task declarations, approvals) or the audit chain's MACs; see
 * docs/threat-model.md "The store is untrusted". */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

/* ---- schema ------------------------------------------------------------ */

/* Migration i brings the schema from version i to version i+1. */
static const char *const migrations[] = {
    /* 0 -> 1: initial schema */
    "CREATE TABLE users("
    "  username TEXT PRIMARY KEY,"
    "  role TEXT NOT NULL CHECK (role IN ('user','admin')),"
    "  pwhash TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE tokens("
    "  token_hash TEXT PRIMARY KEY,"
    "  username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX tokens_user ON tokens(username);"
    "CREATE TABLE objects("
    "  id TEXT PRIMARY KEY,"
    "  uploader TEXT NOT NULL REFERENCES users(username),"
    "  size INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE files("
    "  file_id TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind IN ('input','output','fusion')),"
    "  name TEXT NOT NULL DEFAULT '',"
    "  url TEXT NOT NULL,"
    "  object_id TEXT," /* local object holding the ciphertext, or NULL */
    "  size INTEGER,"
    "  sha256 TEXT,"
    "  wrapped_key BLOB NOT NULL,"
    "  written INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX files_object ON files(object_id);"
    "CREATE TABLE file_owners("
    "  file_id TEXT NOT NULL REFERENCES files(file_id) ON DELETE CASCADE,"
    "  username TEXT NOT NULL REFERENCES users(username),"
    "  PRIMARY KEY (file_id, username));"
    "CREATE INDEX file_owners_user ON file_owners(username);"
    "CREATE TABLE functions("
    "  function_id TEXT PRIMARY KEY,"
    "  owner TEXT NOT NULL REFERENCES users(username),"
    "  name TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '',"
    "  executor_type TEXT NOT NULL,"
    "  builtin TEXT NOT NULL,"
    "  public INTEGER NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  deleted INTEGER NOT NULL DEFAULT 0," /* kept for the history of its tasks */
    "  arguments TEXT NOT NULL,"
    "  inputs TEXT NOT NULL,"
    "  outputs TEXT NOT NULL,"
    "  usage_quota INTEGER NOT NULL DEFAULT 0,"
    "  current_usage INTEGER NOT NULL DEFAULT 0,"
    "  tasks_finished INTEGER NOT NULL DEFAULT 0,"
    "  tasks_failed INTEGER NOT NULL DEFAULT 0,"
    "  cpu_ms INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE TABLE function_allowlist("
    "  function_id TEXT NOT NULL REFERENCES functions(function_id) ON DELETE CASCADE,"
    "  username TEXT NOT NULL,"
    "  PRIMARY KEY (function_id, username));"
    "CREATE TABLE tasks("
    "  task_id TEXT PRIMARY KEY,"
    "  function_id TEXT NOT NULL REFERENCES functions(function_id),"
    "  creator TEXT NOT NULL REFERENCES users(username),"
    "  status TEXT NOT NULL CHECK (status IN ('created','data_assigned','approved','staged',"
    "    'running','finished','failed','canceled')),"
    "  arguments TEXT NOT NULL,"        /* object name -> string, defaults merged */
    "  inputs_ownership TEXT NOT NULL," /* [{name,owners:[...]}] */
    "  outputs_ownership TEXT NOT NULL,"
    "  participants TEXT NOT NULL," /* sorted array of usernames */
    "  approvals TEXT NOT NULL DEFAULT '[]',"
    "  assignments TEXT NOT NULL DEFAULT '{\"inputs\":{},\"outputs\":{}}',"
    "  result TEXT," /* {return_value, outputs} */
    "  failure_reason TEXT,"
    "  log TEXT,"
    "  cpu_ms INTEGER NOT NULL DEFAULT 0,"
    "  peak_rss_kb INTEGER NOT NULL DEFAULT 0,"
    "  wall_ms INTEGER NOT NULL DEFAULT 0,"
    "  bytes_in INTEGER NOT NULL DEFAULT 0,"
    "  bytes_out INTEGER NOT NULL DEFAULT 0,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0,"
    "  staged_seq INTEGER," /* queue order */
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX tasks_status ON tasks(status, staged_seq);"
    "CREATE TABLE task_participants("
    "  task_id TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,"
    "  username TEXT NOT NULL,"
    "  PRIMARY KEY (task_id, username));"
    "CREATE INDEX task_participants_user ON task_participants(username);"
    "CREATE TABLE task_files("
    "  task_id TEXT NOT NULL REFERENCES tasks(task_id) ON DELETE CASCADE,"
    "  slot TEXT NOT NULL,"
    "  direction TEXT NOT NULL CHECK (direction IN ('input','output')),"
    "  file_id TEXT NOT NULL REFERENCES files(file_id) ON DELETE CASCADE,"
    "  PRIMARY KEY (task_id, direction, slot));"
    "CREATE INDEX task_files_file ON task_files(file_id);"
    "CREATE TABLE audit("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  object TEXT NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  prev_hash TEXT NOT NULL,"
    "  hash TEXT NOT NULL);",
    /* 1 -> 2: executor type "wasm": the module is an encrypted object (mt_ff)
     * whose key is wrapped under the sealing key with AAD "function:<id>";
     * payload_sha256 is the SHA-256 of the plaintext module (shown to those
     * who may see the function, so participants know the code they approve).
     * Tasks record the fuel their module used. */
    "ALTER TABLE functions ADD COLUMN payload_object TEXT;"
    "ALTER TABLE functions ADD COLUMN payload_key BLOB;"
    "ALTER TABLE functions ADD COLUMN payload_size INTEGER;"
    "ALTER TABLE functions ADD COLUMN payload_sha256 TEXT;"
    "ALTER TABLE tasks ADD COLUMN fuel_used INTEGER NOT NULL DEFAULT 0;",
    /* 2 -> 3: the store is untrusted; MACs under a TEE-held key
     * (integrity.c, audit.c). Rows written before this version are sealed
     * once, in the migration's transaction (store_migrate's hook). */
    "/* " STORE_INTEGRITY_MARKER " */"
    "ALTER TABLE files ADD COLUMN mac TEXT;"
    "ALTER TABLE tasks ADD COLUMN decl_mac TEXT;"
    "ALTER TABLE task_participants ADD COLUMN approval_mac TEXT;"
    "ALTER TABLE tasks ADD COLUMN result_mac TEXT;"
    "ALTER TABLE audit ADD COLUMN mac TEXT;"
    "ALTER TABLE users ADD COLUMN mac TEXT;"
    "ALTER TABLE tokens ADD COLUMN mac TEXT;"
    "ALTER TABLE functions ADD COLUMN mac TEXT;",
    /* 3 -> 4 (issue 8 item 9): key_fp is a keyed fingerprint of an output's key
     * (HMAC-SHA256 under the platform key "output-key-fingerprint/v1", hex),
     * so that registering the same output key twice is detected without
     * storing the key in clear. NULL for inputs, fusion files and outputs
     * registered before this migration. */
    "ALTER TABLE files ADD COLUMN key_fp TEXT; CREATE INDEX files_key_fp ON files(key_fp);",
    /* 4 -> 5 (issue 9, user lifecycle): an account is active, disabled (no
     * login, its tokens refused) or deleted (a tombstone: the name is never
     * reused, so nobody inherits its files or approvals). The state is under
     * users.mac when not active (integrity.c). */
    ("ALTER TABLE users ADD COLUMN state TEXT NOT NULL DEFAULT 'active' "
     "CHECK (state IN ('active','disabled','deleted'));"),
    /* 5 -> 6 (issue 9, audit retention): after `mesatee audit prune` the log
     * starts after an anchor, the seq and hash of the last pruned entry; the
     * row is MACed under the audit key like every entry (audit.c), so the
     * host can neither forge nor move it. At most one row (id 1). */
    "CREATE TABLE audit_anchor("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  seq INTEGER NOT NULL,"
    "  hash TEXT NOT NULL,"
    "  pruned_at INTEGER NOT NULL,"
    "  mac TEXT NOT NULL);",
    /* 6 -> 7 (issue 10, KeyStore): every wrapped key records the KEK version
     * that wrapped it (kek.c core_wrapped_cols); 0 marks a key wrapped
     * before the KeyStore under the measurement-bound sealing key, rewrapped
     * by the background pass. kek_rewrap holds the progress of the last pass
     * (informational: what is retired is decided from the version columns). */
    "ALTER TABLE files ADD COLUMN kek_version INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE functions ADD COLUMN payload_kek_version INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX files_kek_version ON files(kek_version);"
    "CREATE TABLE kek_rewrap("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  target INTEGER NOT NULL,"
    "  rewrapped INTEGER NOT NULL,"
    "  stuck INTEGER NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  finished_at INTEGER);",
    /* 7 -> 8 (issue 10, KeyStore transit API, transit_core.h): named keys per
     * owner with versions; each version's material sealed under the KEK
     * "transit-keys" of version kek_version (AAD binds owner, name, version),
     * so a KEK rotation can rewrap in the background; grants to other users;
     * the RSA-4096 import wrapping key. Every row is MACed (integrity key). */
    "CREATE TABLE transit_keys("
    "  owner TEXT NOT NULL REFERENCES users(username),"
    "  name TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  latest_version INTEGER NOT NULL,"
    "  min_decryption_version INTEGER NOT NULL DEFAULT 1,"
    "  min_encryption_version INTEGER NOT NULL DEFAULT 0,"
    "  deletion_allowed INTEGER NOT NULL DEFAULT 0,"
    "  exportable INTEGER NOT NULL DEFAULT 0,"
    "  imported INTEGER NOT NULL DEFAULT 0,"
    "  allow_rotation INTEGER NOT NULL DEFAULT 1,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  mac TEXT NOT NULL,"
    "  PRIMARY KEY (owner, name));"
    "CREATE TABLE transit_key_versions("
    "  owner TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  wrapped BLOB NOT NULL,"
    "  kek_version INTEGER NOT NULL,"
    "  public_key TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  mac TEXT NOT NULL,"
    "  PRIMARY KEY (owner, name, version),"
    "  FOREIGN KEY (owner, name) REFERENCES transit_keys(owner, name));"
    "CREATE INDEX transit_key_versions_kek ON transit_key_versions(kek_version);"
    "CREATE TABLE transit_grants("
    "  owner TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  grantee TEXT NOT NULL REFERENCES users(username),"
    "  operations TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  mac TEXT NOT NULL,"
    "  PRIMARY KEY (owner, name, grantee),"
    "  FOREIGN KEY (owner, name) REFERENCES transit_keys(owner, name));"
    "CREATE INDEX transit_grants_grantee ON transit_grants(grantee);"
    "CREATE TABLE transit_wrapping_key("
    "  id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  wrapped BLOB NOT NULL,"
    "  kek_version INTEGER NOT NULL,"
    "  public_key TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  mac TEXT NOT NULL);",
    /* 8 -> 9 (issue 10, keys in tasks; the ks-tasks slot "11" of the parallel
     * work, renumbered at merge): signatures a task made with KeyStore keys,
     * metered like fuel_used (worker-reported, not MACed: metering, not a
     * decision on what runs) */
    "ALTER TABLE tasks ADD COLUMN key_signs INTEGER NOT NULL DEFAULT 0;",
    /* 9 -> 10 (issue 10, Vault transit features, transit_core.h): Vault's
     * allow_plaintext_backup, derived and convergent_encryption flags and
     * min_available_version (versions below it were trimmed). Under the row's
     * MAC when one differs from its default (transit_store.c tstore_key_mac),
     * so rows written before this migration keep their MACs. */
    "ALTER TABLE transit_keys ADD COLUMN allow_plaintext_backup INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE transit_keys ADD COLUMN derived INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE transit_keys ADD COLUMN convergent_encryption INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE transit_keys ADD COLUMN min_available_version INTEGER NOT NULL DEFAULT 0;",
    /* 10 -> 11 (issue 14, executor leases, remote_sched.c; the fleet slot "12"
     * of the parallel work, renumbered at merge): a remotely running task's
     * lease. lease_fence counts the claims (the fencing token of the current
     * holder), lease_expired the leases that ran out; both under lease_mac
     * (integ key, "mesatee-task-lease/v1"; v2 since 15 -> 16, v3 with a
     * claim nonce since 16 -> 17). lease_until
     * (ms since the epoch) only decides when the scheduler looks again: not
     * MACed (v2 binds whether it is 0). */
    "ALTER TABLE tasks ADD COLUMN lease_fence INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN lease_expired INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN lease_mac TEXT;",
    /* 11 -> 12 (issue 14, several nodes on one PostgreSQL store): the node
     * whose scheduler claimed a running task (core.c node_id). A node's start
     * fails, and its stop requeues, only its own local runs (and rows from
     * before this version, ''), not those of the other nodes. Decides only
     * which node recovers a run, never what a task may run on: not MACed (a
     * host that edits it can at most make a run wait or fail, as it could by
     * editing the status). */
    "ALTER TABLE tasks ADD COLUMN run_node TEXT NOT NULL DEFAULT '';",
    /* 12 -> 13 (issue 14, a node that never comes back: node_live.c):
     * run_attempt counts the claims of a task, so a local run's outcome is
     * stored only by the claim that is still current (a node taken for
     * stopped whose run was requeued meanwhile finds another attempt);
     * node_lost counts the runs lost with their node (the retry limit).
     * Not MACed, like run_node: a host that edits them can make a run fail,
     * wait or run again, as it could by editing the status. */
    "ALTER TABLE tasks ADD COLUMN run_attempt INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN node_lost INTEGER NOT NULL DEFAULT 0;",
    /* 13 -> 14 (issue 14, several nodes on one store): the failed-login
     * buckets shared by every node (auth.c "failed-login rate limits").
     * kind 'a' (account) or 's' (client address), lkey
     * the name or address; tat_ms (ms since the epoch) when the bucket is
     * empty again; clear_ms the last success (the other nodes empty their
     * local copies); mac over all four under the integrity key
     * ("mesatee-login-limit/v1"): a row that fails it is ignored, so a host
     * that inserts rows locks nobody out. Empty rows are pruned by tat_ms. */
    "CREATE TABLE login_limits("
    "  kind TEXT NOT NULL,"
    "  lkey TEXT NOT NULL,"
    "  tat_ms INTEGER NOT NULL,"
    "  clear_ms INTEGER NOT NULL DEFAULT 0,"
    "  mac TEXT,"
    "  PRIMARY KEY (kind, lkey));"
    "CREATE INDEX login_limits_tat ON login_limits(tat_ms);",
    /* 14 -> 15 (issue 14, lease grace after store outages: remote_sched.c
     * leases_grace): 1 once an outage extended the task's current executor
     * lease; a renewal or a new claim sets it back to 0. A lease is thus
     * extended at most once until its holder renews it, however often the
     * connection flaps. Not MACed, like lease_until: it decides only when a
     * lease runs out, never who holds it. */
    "ALTER TABLE tasks ADD COLUMN lease_graced INTEGER NOT NULL DEFAULT 0;",
    /* 15 -> 16 (issue 14 review, the lease MAC binds the claim: remote_sched.c
     * lease_mac, docs/cluster.md "Local runs and executor leases"): lease_mac
     * now covers the task, fencing token, expiry count, run_attempt (the claim
     * it belongs to) and whether the row is a remote lease (lease_until > 0)
     * under "mesatee-task-lease/v2", and every claim MACs its row (only a
     * task never claimed has none). No column changes: store_migrate's hook
     * (remote_sched.c lease_mac_upgrade) re-MACs every lease once, in this
     * migration's transaction, each only when its v1 MAC verifies (one that
     * does not stays refused), and MACs the staged or running claimed tasks
     * that v1 left without one (token and count 0). */
    "/* " STORE_LEASE_V2_MARKER " */"
    "UPDATE tasks SET lease_graced = lease_graced WHERE lease_mac IS NOT NULL;",
    /* 16 -> 17 (issue 14, whole-row rollback of a lease: remote_sched.c
     * lease_mac_c, docs/threat-model.md "Executor leases"): every write of a
     * lease MAC draws a fresh claim nonce (16 random bytes), kept in
     * lease_mac before the MAC ("<32 hex nonce><64 hex MAC>") and bound by it
     * under "mesatee-task-lease/v3"; the lease secret binds it too, so a row
     * put back to its state before a claim hands the next claim another
     * secret. No column changes: store_migrate's hook (remote_sched.c
     * lease_mac_upgrade_v3) moves every lease MAC whose v2 MAC verifies to
     * v3 under a fresh nonce, in this migration's transaction (one that does
     * not verify stays refused), and requeues the remote leases in flight
     * (their executors hold secrets without a nonce). Idempotent like 15 ->
     * 16: running it again changes nothing (rows already under v3 are
     * skipped). */
    "/* " STORE_LEASE_V3_MARKER " */"
    "UPDATE tasks SET lease_graced = lease_graced WHERE lease_mac IS NOT NULL;",
    /* 17 -> 18 (issue 14, store cost per task): invoke numbers the staged
     * task max(staged_seq) + 1 over every task (tasks.c tasks_invoke);
     * without an index on staged_seq that max read the whole table (its
     * only index led with status), so every invoke cost more the more
     * tasks the store held. With it both engines read the max from the
     * index's end. No data changes; the build locks the table for writes
     * for as long as it takes (once, at the upgrade). IF NOT EXISTS: run
     * again harmlessly where a test re-runs the migrations from an earlier
     * one (test_lease_outage). */
    "CREATE INDEX IF NOT EXISTS tasks_staged_seq ON tasks(staged_seq);",
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

/* ---- helpers on the database layer ------------------------------------- */

/* Prepares sql through the statement cache (kept on a thread that bound its
 * connection: stmt_cache.c) and binds the parameters (as many as the
 * statement has) from ap as text (NULL binds NULL). */
static mt_status prepare_va(mt_db *db, const char *sql, va_list ap, mt_db_stmt **st, mt_err *err)
{
    mt_status rc = core_stmt_get(NULL, db, sql, st, err);
    if (rc)
        return rc;
    int n = mt_db_param_count(*st);
    for (int i = 1; i <= n; i++)
        mt_db_bind_text(*st, i, va_arg(ap, const char *));
    return MT_OK;
}

mt_status store_run(mt_db *db, mt_err *err, int *changes, const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    mt_db_stmt *st;
    mt_status rc = prepare_va(db, sql, ap, &st, err);
    va_end(ap);
    if (rc)
        return rc;
    if (mt_db_step(st, &rc, err) >= 0 && changes)
        *changes = (int)mt_db_changes(db);
    core_stmt_put(NULL, st);
    return rc;
}

mt_status store_run_deferred(mt_db *db, mt_err *err, const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    mt_db_stmt *st;
    mt_status rc = prepare_va(db, sql, ap, &st, err);
    va_end(ap);
    if (rc)
        return rc;
    if (mt_db_in_tx(db))
        rc = mt_db_run_deferred(st, err);
    else
        mt_db_step(st, &rc, err);
    core_stmt_put(NULL, st);
    return rc;
}

mt_status store_int(mt_db *db, mt_err *err, int64_t *out, bool *found, const char *sql, ...)
{
    va_list ap;
    va_start(ap, sql);
    mt_db_stmt *st;
    mt_status rc = prepare_va(db, sql, ap, &st, err);
    va_end(ap);
    *out = 0;
    if (found)
        *found = false;
    if (rc)
        return rc;
    if (mt_db_step(st, &rc, err) == MT_DB_ROW) {
        *out = mt_db_col_int64(st, 0);
        if (found)
            *found = true;
    }
    core_stmt_put(NULL, st);
    return rc;
}

mt_status store_ids(mt_db *db, const char *sql, const char *param, json_t **out, mt_err *err)
{
    *out = NULL;
    mt_db_stmt *st;
    mt_status rc = core_stmt_get(NULL, db, sql, &st, err); /* kept on a bound thread */
    if (rc)
        return rc;
    if (param)
        mt_db_bind_text(st, 1, param);
    json_t *ids = json_array();
    if (!ids)
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW)
        if (json_array_append_new(ids, json_string(mt_db_col_text(st, 0))))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    core_stmt_put(NULL, st);
    if (rc)
        json_decref(ids);
    else
        *out = ids;
    return rc;
}

mt_status store_exec(mt_db *db, const char *sql, mt_err *err)
{
    return mt_db_exec(db, sql, err);
}

mt_status store_begin(mt_db *db, mt_err *err)
{
    return mt_db_begin(db, MT_DB_TX_IMMEDIATE, err);
}

mt_status store_commit(mt_db *db, mt_err *err)
{
    return mt_db_commit(db, err);
}

void store_rollback(mt_db *db)
{
    mt_db_rollback(db);
}

/* ---- SQLite only: the shim of the modules not converted yet ------------- */

mt_status store_fail(sqlite3 *db, mt_err *err)
{
    return mt_err_set(err, MT_EIO, "database error: %s", sqlite3_errmsg(db));
}

bool store_next(sqlite3 *db, sqlite3_stmt *st, mt_status *rc, mt_err *err)
{
    int s = sqlite3_step(st);
    if (s == SQLITE_ROW)
        return true;
    if (s != SQLITE_DONE && *rc == MT_OK)
        *rc = store_fail(db, err);
    return false;
}

mt_status store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, mt_err *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return store_fail(db, err);
    }
    return MT_OK;
}

void store_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

const char *store_col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* Current schema version (0 for a fresh database). */
static mt_status schema_version(mt_db *db, int64_t *v, mt_err *err)
{
    *v = 0;
    mt_status rc =
        mt_db_exec(db, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)", err);
    if (rc)
        return rc;
    mt_db_stmt *st;
    if ((rc = mt_db_prepare(db, "SELECT max(version) FROM schema_version", &st, err)))
        return rc;
    if (mt_db_step(st, &rc, err) == MT_DB_ROW)
        *v = mt_db_col_int64(st, 0);
    mt_db_finalize(st);
    return rc;
}

size_t store_schema_version(void)
{
    return N_MIGRATIONS;
}

size_t store_marked_version(const char *marker)
{
    for (size_t v = 0; v < N_MIGRATIONS; v++)
        if (strstr(migrations[v], marker))
            return v + 1;
    return 0;
}

mt_status store_migrate(mt_db *db, store_migrate_hook hook, void *hook_ctx, mt_err *err)
{
    mt_status rc = mt_db_begin(db, MT_DB_TX_IMMEDIATE, err);
    if (rc)
        return rc;
    int64_t v = 0;
    rc = schema_version(db, &v, err);
    if (rc)
        goto out;
    if (v > (int64_t)N_MIGRATIONS) {
        rc = mt_err_set(err, MT_ECONFLICT,
                        "database schema version %lld is newer than this mesatee (%d); "
                        "upgrade mesatee",
                        (long long)v, (int)N_MIGRATIONS);
        goto out;
    }
    unsigned marks = 0;
    for (; v < (int64_t)N_MIGRATIONS; v++) {
        if (strstr(migrations[v], STORE_INTEGRITY_MARKER))
            marks |= STORE_MIG_SEAL;
        if (strstr(migrations[v], STORE_LEASE_V2_MARKER))
            marks |= STORE_MIG_LEASE_V2;
        if (strstr(migrations[v], STORE_LEASE_V3_MARKER))
            marks |= STORE_MIG_LEASE_V3;
        rc = mt_db_exec(db, migrations[v], err);
        if (rc)
            goto out;
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO schema_version(version) VALUES (%lld)",
                 (long long)v + 1);
        rc = mt_db_exec(db, sql, err);
        if (rc)
            goto out;
    }
    if (marks && hook && (rc = hook(hook_ctx, db, marks, err)))
        goto out;
    rc = mt_db_commit(db, err);
out:
    if (rc)
        mt_db_rollback(db);
    return rc;
}

mt_status store_open(const char *path, bool readonly, mt_db **out, mt_err *err)
{
    /* a PostgreSQL URL (mt_core_store_check accepted it) opens the database;
     * anything else is a file, whatever it looks like */
    if (!strncmp(path, "postgres://", 11) || !strncmp(path, "postgresql://", 13))
        return mt_db_open(path, 0, out, err); /* read-only is a SQLite flag */
    return mt_db_open_sqlite_path(path, readonly ? MT_DB_READONLY : 0, out, err);
}

mt_status store_open_grouped(const char *path, mt_db **out, mt_err *err)
{
    mt_status rc = store_open(path, false, out, err);
    if (!rc && (rc = mt_db_set_group_sync(*out, err))) {
        mt_db_close(*out);
        *out = NULL;
    }
    return rc;
}

void store_close(mt_db *db)
{
    mt_db_close(db);
}


mt_status mt_core_store_check(const char *url, const char **sqlite_path, mt_err *err)
{
    const char *path = NULL;
    if (sqlite_path)
        *sqlite_path = NULL;
    if (!url || !url[0])
        return mt_err_set(err, MT_EINVAL, "store: empty URL");
    switch (mt_db_url_backend(url)) {
    case MT_DB_SQLITE: {
        mt_status rc = mt_db_url_sqlite_path(url, &path, err);
        if (rc)
            return rc;
        if (sqlite_path)
            *sqlite_path = path;
        return MT_OK;
    }
    case MT_DB_PG:
        return MT_OK; /* *sqlite_path stays NULL: the URL is the store */
    default:
        return mt_err_set(err, MT_EINVAL,
                          "store: unknown URL scheme (use a path, file:PATH or postgres://...)");
    }
}
