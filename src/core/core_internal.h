/* core_internal: what the modules of mt_core share and nothing outside sees:
 * the mt_core struct, the per-request context handed to handlers, the store
 * helpers (store.c) and the handler prototypes of each service.
 *
 * Threading: core->db is the request connection (the database layer,
 * src/store/mt_db.h), used under core->mu by
 * mt_core_handle / mt_core_authenticate / mt_core_audit / mt_core_metrics.
 * Scheduler threads open their own connections (store_open). */
#ifndef MT_CORE_INTERNAL_H
#define MT_CORE_INTERNAL_H

#include <openssl/types.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "api_page.h"
#include "mt_db.h"
#include "mt_keystore.h"
#include "mt_core.h"
#include "mt_util.h"
#include "untrusted_objstore.h"
#include "untrusted_objects.h"

#define CORE_DB_NAME "mesatee.db"
#define CORE_SCHEMA_VERSION 3

typedef struct core_sched core_sched;

struct mt_core {
    /* configuration with defaults applied; strings owned */
    char *data_dir;
    char *db_path;
    char *worker_path;
    char *file_url_root;
    char *fetch_allow;
    char *python_modules; /* the python allow-list, canonical (python_modules.h) */
    bool seal_legacy_store; /* mt_core_config.seal_legacy_store */
    char *release_signers;      /* mt_core_config.release_signers (path), heap or NULL */
    char *keystore_collateral;  /* mt_core_config.keystore_collateral, heap or NULL */
    const mt_core_config *open_cfg; /* during mt_core_open only (KeyStore recovery), else NULL */
    bool keep_leased; /* mt_core_config.keep_leased (remote executors) */
    /* this node in tasks.run_node (sched.c): 16 hex digits of SHA-256 over
     * the TEE's platform key "node-id/v1" and the data directory, so a
     * restarted node finds its own runs and two nodes never share one */
    char node_id[17];
    unsigned release_threshold; /* mt_core_config.release_threshold */
    unsigned workers;
    _Atomic int64_t token_ttl; /* the limits: changed by mt_core_set_limits */
    _Atomic uint64_t task_mem_bytes;
    _Atomic uint32_t task_cpu_seconds;
    _Atomic uint32_t task_wall_ms;
    size_t max_json_bytes;
    size_t max_json_depth;
    size_t max_upload_bytes;

    mt_tee *tee; /* borrowed */
    mt_objstore *objs; /* the local object directory (untrusted_objects.h) */
    struct mt_ostore *ostore; /* --objects db: the objects in the store's database, else NULL */
    bool objs_shared;         /* --objects dir:PATH */
    struct core_kek_state *kek; /* kek.c: KeyStore, keyring, legacy keys, rewrap thread */
    atomic_bool serves_joins;    /* mt_core_join_source was called: no root version retired */
    /* the KeyStore node: its join URL ("" = none) and database certificate
     * lifetime (0 = no CA), for GET /v1/admin/keystore (mt_core_set_join_info) */
    char join_url[300];
    uint32_t join_db_cert_ttl_s;
    struct mt_ks_joined *joined; /* mt_core_config.keystore_joined (borrowed) or NULL */
    uint8_t key_fp_key[32]; /* platform key "output-key-fingerprint/v1": output key fingerprints */
    uint8_t integ_key[32]; /* platform key "store-integrity/v1": MACs of store rows */
    uint8_t audit_key[32]; /* platform key "audit-chain/v1": MACs of audit entries */

    pthread_mutex_t mu; /* guards db and dummy_hash */
    mt_db *db;          /* the request connection (database layer, mt_db.h) */
    char dummy_hash[128]; /* pwhash of a random password, for unknown users */
    /* mt_core_audit_batch (audit.c): its own connection to the store, opened
     * on first use, so that a batch's fsync never holds mu */
    pthread_mutex_t audit_mu; /* guards audit_db */
    mt_db *audit_db;
    struct core_aspool *aspool; /* audit_spool.c: the local audit spool and its replay thread */

    core_sched *sched;
    atomic_bool sched_running;
    atomic_bool draining;  /* mt_core_drain: no invoke, no new claims (sched.c) */
    atomic_bool ran_tasks; /* a scheduler (local or remote) ran: requeue at close */

    struct auth_limits *limits; /* failed-login rate limits (auth.c), own lock */
    struct transit_cache *transit; /* unwrapped transit keys (transit_store.c), under mu */
    struct core_stmt_cache *stmts; /* kept statements on db (stmt_cache.c), under mu */
    /* kept statements on audit_db (stmt_cache.c), under audit_mu */
    struct core_stmt_cache *audit_stmts;
    struct stmt_cache_sqlite *stmts_sqlite; /* the same for the SQLite shim (stmt_cache.c) */
    /* task_wait.c: told after every committed task state change */
    atomic_bool task_listener_set;
    /* task_wait.c: the ids of the last CORE_TEV_RING task events ("" = any
     * task), numbered by tev_seq (g_tev_mu) */
#define CORE_TEV_RING 256
    uint64_t tev_seq;
    char tev_id[CORE_TEV_RING][MT_ID_LEN + 1];
    void (*task_listener)(void *ctx);
    void *task_listener_ctx;
    struct core_cwake *cwake; /* cluster_wake.c: LISTEN/NOTIFY (PostgreSQL), else NULL */
    struct core_nlive *nlive; /* node_live.c: liveness lock, dead-node sweeper (PostgreSQL) */
    atomic_bool live_unheld;  /* node_live.c: the liveness lock is not held: no local claim */
    atomic_uint_fast64_t live_lost; /* node_live.c: times the lock went from held to not */
    uint32_t node_dead_after_ms; /* mt_core_config.node_dead_after_ms, defaults applied */
    uint32_t run_max_attempts;   /* mt_core_config.run_max_attempts, defaults applied */
};

/* Per-request context handed to every handler. */
typedef struct core_ctx {
    mt_core *core;
    mt_db *db; /* the request connection (database layer, mt_db.h) */
    const mt_request *req;
    const char *who; /* caller's username ("" when unauthenticated) */
    bool admin;
    char id[80]; /* the {id} / {name} path segment, validated */
    mt_response *resp;
    mt_err *err;
    char drop_object[MT_ID_LEN + 1]; /* object file to delete after commit */
    bool wake_scheduler;             /* signal the scheduler after commit */
} core_ctx;

/* ---- store.c ---------------------------------------------------------- */

/* Opens (creating if needed) the SQLite database at path with WAL,
 * synchronous=FULL, foreign keys and a busy timeout (the layer's settings,
 * mt_db_open_sqlite_path); readonly opens without creating. */
/* The store an offline tool reads (mt_core_audit_verify_dir and friends):
 * store (a --store value) or DATA_DIR/mesatee.db, read-only for SQLite. */
mt_status core_offline_store_open(const char *data_dir, const char *store, mt_db **db,
                                  mt_err *err);
mt_status store_open(const char *path, bool readonly, mt_db **out, mt_err *err);
/* store_open (read-write) with group sync (mt_db_set_group_sync): its
 * transactions share their fsyncs with the other such connections of the
 * file; mt_db_commit still returns once durable. The request connection,
 * the scheduler's, the audit committer's and the remote scheduler's. */
mt_status store_open_grouped(const char *path, mt_db **out, mt_err *err);
/* Migrates to the newest schema in one transaction, on either backend (the
 * migration DDL is written in the layer's common dialect). When this call
 * runs a migration that needs the TEE's keys on existing rows, hook (may be
 * NULL) runs inside the same transaction, after the last migration, with
 * marks saying which: STORE_MIG_SEAL (the migration that adds the integrity
 * MACs, marked STORE_INTEGRITY_MARKER: seal older rows), STORE_MIG_LEASE_V2
 * (marked STORE_LEASE_V2_MARKER: re-MAC the executor leases under
 * "mesatee-task-lease/v2"), STORE_MIG_LEASE_V3 (marked
 * STORE_LEASE_V3_MARKER: move them on to "mesatee-task-lease/v3", with a
 * claim nonce; it runs after the v2 step when a store needs both).
 * store_schema_version is the newest version; store_marked_version the
 * version a marked migration brings a store to (0: no such marker). */
#define STORE_INTEGRITY_MARKER "integrity-macs"
#define STORE_LEASE_V2_MARKER "lease-mac-v2"
#define STORE_LEASE_V3_MARKER "lease-mac-v3"
#define STORE_MIG_SEAL 1u
#define STORE_MIG_LEASE_V2 2u
#define STORE_MIG_LEASE_V3 4u
typedef mt_status (*store_migrate_hook)(void *ctx, mt_db *db, unsigned marks, mt_err *err);
mt_status store_migrate(mt_db *db, store_migrate_hook hook, void *hook_ctx, mt_err *err);
size_t store_schema_version(void);
size_t store_marked_version(const char *marker);
void store_close(mt_db *db); /* mt_db_close */

mt_status store_exec(mt_db *db, const char *sql, mt_err *err);
mt_status store_begin(mt_db *db, mt_err *err); /* BEGIN IMMEDIATE (MT_DB_TX_IMMEDIATE) */
mt_status store_commit(mt_db *db, mt_err *err);
void store_rollback(mt_db *db);
/* stmt_cache.c: mt_db_prepare, kept for reuse when db is c->db (the caller
 * holds c->mu); `sql` must outlive c (a constant). End each use with
 * core_stmt_put instead of mt_db_finalize. */
mt_status core_stmt_get(mt_core *c, mt_db *db, const char *sql, mt_db_stmt **st, mt_err *err);
void core_stmt_put(mt_core *c, mt_db_stmt *st);
void core_stmt_cache_free(mt_core *c); /* before c->db and c->audit_db close */
/* Keeps the statements on c->audit_db too (the audit committer's batches:
 * the audit INSERT was compiled for every entry); the caller holds
 * c->audit_mu, as every user of audit_db does. Without memory: uncached. */
void core_stmt_audit_cache(mt_core *c);
/* The calling thread's statements on db (its own connection, which it alone
 * uses) are cached too, until core_stmt_thread_release (before the thread
 * ends and db closes). */
void core_stmt_thread_bind(mt_db *db);
void core_stmt_thread_release(void);
/* The first column of every row sql returns (bound to param when not NULL)
 * as a new JSON array of strings in *out, so that the caller can change those
 * rows with no statement open on them. *out is NULL on failure. */
mt_status store_ids(mt_db *db, const char *sql, const char *param, json_t **out, mt_err *err);
/* Runs a statement with text parameters (as many as the statement has)
 * expecting no rows; *changes (optional) receives mt_db_changes. */
mt_status store_run(mt_db *db, mt_err *err, int *changes, const char *sql, ...);
/* store_run for a write whose result (rows changed) the caller does not
 * read, inside a transaction: mt_db_run_deferred (PostgreSQL: sent with the
 * transaction's next statement or its COMMIT, no round trip of its own; a
 * failure fails that statement or the commit, and so the transaction;
 * SQLite: run now). The statement must change a row when it succeeds (an
 * UPDATE by a key the transaction knows to exist). Outside a transaction:
 * store_run. */
mt_status store_run_deferred(mt_db *db, mt_err *err, const char *sql, ...);
/* Runs a single-row single-integer query with text parameters; *found false
 * when no row. */
mt_status store_int(mt_db *db, mt_err *err, int64_t *out, bool *found, const char *sql, ...);

/* ---- SQLite only: the shim of the modules not converted yet ------------
 * Their bodies get the raw handle with mt_db_sqlite_handle(db) (NULL on
 * PostgreSQL, which mt_core_store_check refuses until every module is
 * converted: STORE_NOT_CONVERTED in store.c). Removed with the last user. */
/* sqlite3_prepare_v2 with an mt_err on failure (MT_EIO naming the error). */
mt_status store_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, mt_err *err);
/* MT_EIO with the connection's message (for unexpected step results). */
mt_status store_fail(sqlite3 *db, mt_err *err);
/* One step of a row loop: true on SQLITE_ROW; false at SQLITE_DONE; false
 * with *rc set (store_fail, unless *rc was already set) on any other result.
 * Loops are written `while (!rc && store_next(db, st, &rc, err))`, so a step
 * error is never mistaken for the end of the rows (and a transaction that
 * updates per row rolls back instead of committing a part). On the layer:
 * `while (!rc && mt_db_step(st, &rc, err) == MT_DB_ROW)`. */
bool store_next(sqlite3 *db, sqlite3_stmt *st, mt_status *rc, mt_err *err);
/* Binds text (NULL binds SQL NULL). */
void store_bind_text(sqlite3_stmt *st, int i, const char *s);
/* Column text as a non-NULL C string ("" for NULL). */
const char *store_col_text(sqlite3_stmt *st, int i);
/* core_stmt_get/put on the raw handle of db (stmt_cache.c). */
mt_status core_stmt_get_sqlite(mt_core *c, mt_db *db, const char *sql, sqlite3_stmt **st,
                               mt_err *err);
void core_stmt_put_sqlite(mt_core *c, sqlite3_stmt *st);

/* ---- integrity.c: MACs over the untrusted store ------------------------ */
/* MT_EINTERNAL "integrity check failed: CLASS". */
mt_status integ_fail(mt_err *err, const char *cls);
/* Constant-time comparison of two 64-hex MACs (false unless both are 64). */
bool integ_hex_equal(const char *a, const char *b);
/* Frees and wipes the calling thread's keyed HMAC context (integrity.c keeps
 * one per thread, wiped at thread exit); mt_core's close calls it so that no
 * keyed state outlives the core's wiped keys on the closing thread. */
void integ_mac_thread_clear(void);
/* Wipes `key` (compared by bytes) from every thread's HMAC slots, waiting
 * for a thread that is MACing with it; mt_core's close calls it for the
 * core's integ_key and audit_key before wiping them, so no thread keeps a
 * closed core's keys. A thread MACing with the key later re-keys a slot. */
void integ_mac_forget(const uint8_t key[32]);
/* Tests only: how many slots, over all threads, hold `key`. */
size_t integ_mac_slots_holding(const uint8_t key[32]);
/* HMAC-SHA256(key, domain NUL || field(text)) as hex. */
mt_status integ_mac_text(const uint8_t key[32], const char *domain, const char *text,
                         char out[65], mt_err *err);
/* (Re)computes files.mac from the row and its owners as the store returns
 * them: only for integ_seal_legacy (rows trusted once, by the operator).
 * Everything else computes a MAC from values it wrote or verified: */
mt_status integ_file_seal(mt_core *c, mt_db *db, const char *file_id, mt_err *err);
/* files.mac of a row about to be inserted: fields as bound (file_id, kind,
 * name, url, object_id, size, sha256, written, created_at; NULL = SQL NULL,
 * integers in decimal), the wrapped key (NULL: none) and the owners (any
 * order), so that the INSERT carries it. */
mt_status integ_file_mac_values(mt_core *c, const char *const fields[9], const void *wrapped,
                                size_t wrapped_len, const char *const *owners, size_t n_owners,
                                char mac[65], mt_err *err);
/* A change of a file row: the output written (size, sha256, written = 1)
 * or its key rewrapped (wrapped_key, kek_version). */
typedef struct {
    bool set_written;
    int64_t size;
    const char *sha256;
    bool set_wrapped;
    const void *wrapped;
    size_t wrapped_len;
    uint32_t kek_version;
} integ_file_change;
/* Reads the file row and its owners once, verifies files.mac, and writes
 * the change together with the MAC over the verified fields as changed
 * ("integrity check failed: file" when the row does not verify). old_mac
 * and new_mac (optional) receive the MAC that read verified and the MAC
 * written (the KEK rewrap reseals approvals with them, integ_rebind_seal). */
mt_status integ_file_rewrite(mt_core *c, mt_db *db, const char *file_id,
                             const integ_file_change *chg, char old_mac[65], char new_mac[65],
                             mt_err *err);
/* Verifies files.mac ("integrity check failed: file"); mac_out (optional)
 * receives it. MT_ENOTFOUND when the file does not exist. */
mt_status integ_file_check(mt_core *c, mt_db *db, const char *file_id, char mac_out[65],
                           mt_err *err);
/* tasks.decl_mac over the task's immutable declaration. */
mt_status integ_task_decl_seal(mt_core *c, mt_db *db, const char *task_id, mt_err *err);
/* tasks.decl_mac of a declaration about to be inserted: fields as bound
 * (task_id, function_id, creator, arguments, inputs_ownership,
 * outputs_ownership, participants), so that the INSERT carries it: what
 * the TEE writes is what it MACs, with no read back. */
mt_status integ_task_decl_mac(mt_core *c, const char *const fields[7], char mac[65], mt_err *err);
/* The declaration's MAC checked on a row the caller read: columns first..first+6 of st are task_id, function_id, creator,
 * arguments, inputs_ownership, outputs_ownership, participants, first+7
 * decl_mac. */
mt_status integ_task_decl_row_check(mt_core *c, mt_db_stmt *st, int first, const char *task_id,
                                    mt_err *err);
/* The task's binding hash, recomputed from the rows after checking the
 * declaration, every assigned file and the structure. */
mt_status integ_task_binding(mt_core *c, mt_db *db, const char *task_id, char hash_out[65],
                             mt_err *err);
/* Records user's approval of the task's current binding. */
mt_status integ_approval_seal(mt_core *c, mt_db *db, const char *task_id, const char *user,
                              mt_err *err);
/* Everything above, plus every participant's approval of exactly this
 * binding: the check before a task is handed to any executor
 * (integ_task_verify_row). The values it verified, taken from the very
 * statement whose MACs it checked: whatever decides what a task runs on (the job,
 * the invocation's function checks) is built from these, never from a
 * further read (on PostgreSQL each statement has its own snapshot, so a
 * lying host could answer a second read differently). */
typedef struct integ_task_row {
    json_t *arguments, *assignments, *participants; /* owned */
    json_t *file_macs; /* owned: assigned file_id -> the file MAC the binding verified */
    char function_id[MT_ID_LEN + 1], executor_type[33], builtin[65];
    char payload_object[MT_ID_LEN + 1], payload_sha256[65];
    uint8_t payload_key[128]; /* wrapped */
    size_t payload_key_len;
    bool disabled, deleted;
    int64_t usage_quota; /* 0: none */
} integ_task_row;
/* The check, filling *row (when not NULL) on success; release it
 * with integ_task_row_free (on failure it holds nothing). */
mt_status integ_task_verify_row(mt_core *c, mt_db *db, const char *task_id, integ_task_row *row,
                                mt_err *err);
void integ_task_row_free(integ_task_row *row);
/* users.mac (username, role, pwhash, created_at) and tokens.mac (hash,
 * username, times, revoked): sealed on every write, checked on login and
 * on every authentication ("integrity check failed: user" / "token"). */
/* users.mac / tokens.mac from values the caller wrote (an INSERT carries
 * them; integers in decimal). */
mt_status integ_user_mac_values(mt_core *c, const char *username, const char *role,
                                const char *pwhash, const char *created_at, const char *state,
                                char mac[65], mt_err *err);
mt_status integ_token_mac_values(mt_core *c, const char *token_hash, const char *username,
                                 const char *created_at, const char *expires_at,
                                 const char *revoked, char mac[65], mt_err *err);
/* Reads the user row once, verifies users.mac, writes pwhash and state
 * (NULL: unchanged) with the MAC over the verified row as changed. */
mt_status integ_user_rewrite(mt_core *c, mt_db *db, const char *username, const char *pwhash,
                             const char *state, mt_err *err);
/* Reads the token row once, verifies tokens.mac, sets revoked = 1 with the
 * MAC over the verified row as changed. */
mt_status integ_token_revoke(mt_core *c, mt_db *db, const char *token_hash, const char *owner,
                             mt_err *err);
/* integ_token_revoke of every unrevoked token of username (owner checked)
 * but keep (NULL: none); *revoked (optional) counts them. */
mt_status integ_tokens_revoke_user(mt_core *c, mt_db *db, const char *username, const char *keep,
                                   int *revoked, mt_err *err);
/* integ_user_seal, integ_token_seal, integ_function_seal, integ_task_*_seal:
 * MAC a read of the row; only for integ_seal_legacy (--seal-legacy-store). */
mt_status integ_user_seal(mt_core *c, mt_db *db, const char *username, mt_err *err);
mt_status integ_user_check(mt_core *c, mt_db *db, const char *username, mt_err *err);
/* integ_user_check handing out what it verified, from the same read: the
 * password hash (pwcap bytes), role and state (each may be NULL).
 * MT_ENOTFOUND: no such user. */
mt_status integ_user_load(mt_core *c, mt_db *db, const char *username, char *pwhash,
                          size_t pwcap, char role[16], char state[16], mt_err *err);
mt_status integ_token_seal(mt_core *c, mt_db *db, const char *token_hash, mt_err *err);
mt_status integ_token_check(mt_core *c, mt_db *db, const char *token_hash, mt_err *err);
/* A request's token lookup in one statement (one round trip on PostgreSQL
 * instead of four): the token row and its user's row, both MACs computed
 * over the same fields and domains as integ_token_check/integ_user_check.
 * MT_ENOTFOUND: no such token. The caller checks state/revoked/expiry, then
 * integ_auth_verdict (the MAC results; logs and fails like the checks). */
typedef struct integ_auth_row {
    char username[65], role[16], state[16];
    int64_t expires_at;
    bool revoked, token_ok, user_ok;
} integ_auth_row;
mt_status integ_auth_lookup(mt_core *c, mt_db *db, const char *token_hash, integ_auth_row *row,
                            mt_err *err);
mt_status integ_auth_verdict(const integ_auth_row *row, mt_err *err);
/* functions.mac (all but usage/statistics counters) with the allow-list:
 * sealed after every change by the owner, checked on every load. */
/* Verify, change, reseal: integ_*_pin reads the row (and its name list)
 * once in the caller's transaction and verifies its MAC, keeping the
 * verified values; the caller writes its change, tells the pin the changed
 * values (integ_pin_set by column name, NULL = SQL NULL; integ_pin_set_key
 * the wrapped key; integ_pin_set_names the list) and integ_pin_seal writes
 * the MAC over the pinned values as changed. No MAC over a read back. */
typedef struct integ_pin integ_pin;
mt_status integ_function_pin(mt_core *c, mt_db *db, const char *function_id, integ_pin **out,
                             mt_err *err);
/* A pin of a function row about to be inserted: every field NULL and no
 * list until the caller sets the values it writes. */
mt_status integ_function_pin_new(const char *function_id, integ_pin **out, mt_err *err);
mt_status integ_pin_set(integ_pin *p, const char *col, const char *text, mt_err *err);
mt_status integ_pin_set_key(integ_pin *p, const void *blob, size_t len, mt_err *err);
mt_status integ_pin_set_names(integ_pin *p, const char *const *names, size_t n, mt_err *err);
mt_status integ_pin_seal(mt_core *c, mt_db *db, integ_pin *p, mt_err *err);
/* The verified (or set) digest of the pinned row's key column, hex; NULL
 * for SQL NULL. */
const char *integ_pin_digest(const integ_pin *p);
void integ_pin_free(integ_pin *p);
mt_status integ_function_seal(mt_core *c, mt_db *db, const char *function_id, mt_err *err);
mt_status integ_function_check(mt_core *c, mt_db *db, const char *function_id, mt_err *err);
/* tasks.result_mac over what participants read of a task's outcome
 * (result, failure_reason, log): sealed wherever they are written, checked
 * when a task is shown ("integrity check failed: result"). The ids variant
 * seals every task the query returns. */
mt_status integ_task_result_seal(mt_core *c, mt_db *db, const char *task_id, mt_err *err);
/* The result_mac of an outcome about to be written (result, reason, log as
 * bound, NULL for NULL), so that it goes into the same UPDATE: what the TEE
 * writes is what it MACs, with no read back (two round trips less). */
mt_status integ_task_result_mac(mt_core *c, const char *task_id, const char *result,
                                const char *reason, const char *log, char mac[65], mt_err *err);
/* The outcome's MAC checked on a row the caller read: columns id_col (task_id),
 * first..first+2 (result, failure_reason, log), mac_col (result_mac). */
mt_status integ_task_result_row_check(mt_core *c, mt_db_stmt *st, const char *task_id, int id_col,
                                      int first, int mac_col, mt_err *err);
/* Issue 10 (KeyStore rewrap). A rewrap changes a wrapped key, hence the
 * file's MAC (or the function's payload key digest) and the bindings that
 * include it; the approvals valid before are resealed after (the key inside
 * is the same), over values of ONE verifying read, never a later one:
 * integ_rebind_prepare runs the binding's checks (integ_task_binding) once
 * and keeps its pre-image and the participants whose approval matches it;
 * *out stays NULL (nothing to carry) when the task does not verify, when
 * its verified row does not bind id (INTEG_REBIND_FILE: the file assigned to
 * a slot; INTEG_REBIND_FUNCTION: the declaration's function) or when no
 * approval is valid. After the rewrite, integ_rebind_seal replaces in that
 * pre-image only the rewritten value (old_hex: the file MAC the rewrite
 * verified, or the old payload key's SHA-256; new_hex: the MAC written, or
 * the new key's SHA-256) and MACs the carried approvals over its hash; when
 * the pre-image does not hold old_hex there (the host answered the reads
 * differently) it reseals nothing and returns MT_OK. */
typedef enum { INTEG_REBIND_FILE, INTEG_REBIND_FUNCTION } integ_rebind_what;
typedef struct integ_rebind integ_rebind;
mt_status integ_rebind_prepare(mt_core *c, mt_db *db, const char *task_id, integ_rebind_what what,
                               const char *id, integ_rebind **out, mt_err *err);
mt_status integ_rebind_seal(mt_core *c, mt_db *db, integ_rebind *rb, const char *old_hex,
                            const char *new_hex, mt_err *err);
void integ_rebind_free(integ_rebind *rb);
/* store_migrate hook: seals rows written before the MACs existed. */
mt_status integ_seal_legacy(void *core, mt_db *db, mt_err *err);

/* ---- audit.c ------------------------------------------------------------ */
/* Appends one audit entry on db inside the caller's write transaction,
 * which must have begun with core_change_begin (or after
 * core_aspool_before_change): entries still in the audit spool go first. */
mt_status audit_append(mt_core *c, mt_db *db, const char *actor, const char *action,
                       const char *object, int status, mt_err *err);
/* The same with the time to record (0: now). */
mt_status audit_append_at(mt_core *c, mt_db *db, int64_t time, const char *actor,
                          const char *action, const char *object, int status, mt_err *err);
/* ---- audit_spool.c (docs/design.md "Audit spool") ---------------------- */
/* Opens <data_dir>/audit-spool: a spool left by an earlier run is
 * authenticated and appended to the chain before this returns (a damaged
 * one is moved aside, logged, counted and recorded in the chain as
 * refused); then starts the replay thread. */
mt_status core_aspool_open(mt_core *c, uint64_t cap_bytes, mt_err *err);
void core_aspool_close(mt_core *c);
/* Its /metrics lines (heap). */
char *core_aspool_metrics(mt_core *c);
/* Before a transaction that appends audit entries of its own (a change:
 * audit_append in its transaction) begins, never inside one: while spooled
 * entries wait for the chain, appends them first (one replay pass, or the
 * pass in flight), so that the change's entries cannot overtake them.
 * MT_OK when none wait (one atomic load) or all went in; MT_EUNAVAIL (503,
 * a fixed message) when they still cannot: the change must not run. */
mt_status core_aspool_before_change(mt_core *c, mt_err *err);
/* The fixed message of core_aspool_before_change's refusal. */
#define CORE_ASPOOL_REFUSAL                                                                        \
    "the audit log cannot take this change now: audit entries spooled while the store was "        \
    "failing must be appended before it, and that has not happened yet; retry later"
/* True when rc/err is core_aspool_before_change's refusal (MT_EUNAVAIL with
 * CORE_ASPOOL_REFUSAL): nothing of the change ran, retrying is safe. */
bool core_aspool_refusal(mt_status rc, const mt_err *err);
/* core_aspool_before_change, then store_begin(db): how a change's
 * transaction begins (audit_spool.c "Changes"). */
mt_status core_change_begin(mt_core *c, mt_db *db, mt_err *err);
/* Seconds a change refused by core_aspool_before_change is told to wait
 * (Retry-After), as for a full spool (gateway.c). */
#define CORE_ASPOOL_RETRY_S 5u
/* Test-only (tests/unit/test_audit_spool.c; never set by the daemon):
 * called by mt_core_audit_record after the store refused a direct append
 * and before the entry is spooled, so that a test can act in that window. */
extern void (*core_aspool_test_after_fail)(void *arg);
/* Test-only, the same: called by a replay pass after each chunk's commit,
 * before the pass looks at the spool again (under replay_mu; order_held:
 * and order_mu, so an entry recorded now waits until the pass lets go). */
extern void (*core_aspool_test_after_chunk)(void *arg, bool order_held);
extern void *core_aspool_test_arg;
/* Computes the MAC of every audit entry that has none (migration). */
mt_status audit_seal_legacy(mt_core *c, mt_db *db, mt_err *err);
/* The hash of one audit entry (the chain's definition, audit.c header);
 * shared with the export reader (audit_export.c). */
void audit_entry_hash(const char *prev, int64_t seq, int64_t time, const char *actor,
                      const char *action, const char *object, int64_t status, char out[65]);
mt_status audit_checkpoint_handle(core_ctx *x);
mt_status audit_prune_handle(core_ctx *x);

/* ---- helpers shared by services -------------------------------------- */

/* Hex SHA-256 of len bytes into out (65 bytes). */
void core_sha256_hex(const void *data, size_t len, char out[65]);
/* Keyed fingerprint of a file key (HMAC-SHA256 under core->key_fp_key, 64
 * hex): equal keys give equal fingerprints; without the TEE-held key the
 * fingerprint tells nothing about the key. */
void core_key_fingerprint(mt_core *c, const uint8_t key[32], char out[65]);
/* JSON error response into resp. */
void core_error_response(mt_response *resp, mt_status code, const char *msg);
/* Success response: takes ownership of body. */
void core_json_response(core_ctx *x, int status, json_t *body);
/* List response {key: [render(id) for each row], next_cursor}: steps st
 * (prepared and bound; column 0 is an id, column 1 its created_at; at most
 * pg->limit + 1 rows, see core_page_bind), finalizes it in every case, and
 * answers 200. next_cursor continues after the last entry when a row beyond
 * the page exists, else null (api_page.h). */
typedef json_t *(*core_render_fn)(core_ctx *x, const char *id);
mt_status core_list_response(core_ctx *x, mt_db_stmt *st, const char *key, core_render_fn render,
                             page_list list, const dec_page *pg);
/* Binds the page of a created_at/id ordered list from parameter `first`:
 * first = has position (0/1), first+1 = created_at, first+2 = id,
 * first+3 = limit + 1 (the SQL: "(?first = 0 OR created_at > ?first+1 OR
 * (created_at = ?first+1 AND id > ?first+2)) ... LIMIT ?first+3"). */
void core_page_bind(mt_db_stmt *st, int first, const dec_page *pg);
/* Sets resp->object ("kind:id"). */
void core_set_object(core_ctx *x, const char *kind, const char *id);
/* Ends a write transaction that a slow route opened itself (store_begin under
 * core->mu): with rc == MT_OK appends the audit entry (HTTP `status`) and
 * commits, marking the response audited; otherwise, or if either fails, rolls
 * back. Returns the first failure, or MT_OK. */
mt_status core_audit_commit(core_ctx *x, int status, mt_status rc);
/* A slow route's write transaction (x->db) begins in two steps:
 * core_request_gate (core_aspool_before_change; when the audit spool
 * refuses the change, Retry-After on the 503) before the route takes
 * core->mu, so that a replay it runs or waits for never holds core->mu;
 * then, under core->mu and only when the gate said MT_OK,
 * core_request_begin_gated (store_begin). Entries spooled between the two
 * overlap the change (audit_spool.c "Changes"). */
mt_status core_request_gate(core_ctx *x);
mt_status core_request_begin_gated(core_ctx *x);
/* RFC 3339 string as a new json_t. */
json_t *core_time_json(int64_t t);
/* True if user exists and is not deleted (a tombstone is no owner, participant
 * or allow-listed user of anything new). */
mt_status core_user_exists(mt_db *db, const char *username, bool *exists, mt_err *err);
/* ---- kek.c: key-encryption keys from the KeyStore (issue 10) ----------- */
/* Wraps a 32-byte key under the current "file-keys" KEK with AAD aad (a
 * file id, "function:<id>"); *version (may be NULL) receives the KEK version
 * to store beside it. */
mt_status core_wrap_key(mt_core *c, const char *aad, const uint8_t key[32], uint8_t out[61],
                        uint32_t *version, mt_err *err);
/* Unwraps under any live "file-keys" KEK version (current first), then the
 * legacy measurement-bound keys. MT_ECRYPTO "key unwrap failed ...". */
mt_status core_unwrap_key(mt_core *c, const char *aad, const void *wrapped, size_t len,
                          uint8_t out[32], mt_err *err);
/* A 32-byte key-encryption key for purpose ("file-keys", "transit-keys",
 * ...; 1 to 48 bytes of [a-z0-9-]) at KEK version `version` (0 = the
 * current one); *used (may be NULL) receives the version written. Every
 * wrapped key the store holds records the KEK version that wrapped it, so a
 * rotation can rewrap in the background. MT_ENOTFOUND for a retired or
 * unknown version. The caller wipes out. Thread-safe. */
mt_status core_kek(mt_core *c, const char *purpose, uint32_t version, uint8_t out[32],
                   uint32_t *used, mt_err *err);
/* The background rewrap's table of wrapped-key columns (kek.c). One entry
 * per column that holds keys wrapped under a KEK:
 *   table     the table ("files")
 *   id_col    its TEXT primary key ("file_id"); rows are visited in its order
 *   key_col   the BLOB of the wrapped key (rows where it is NULL are skipped)
 *   ver_col   INTEGER NOT NULL: the KEK version that wrapped key_col (0 =
 *             legacy, wrapped before the KeyStore by the measurement-bound
 *             sealing key "file-keys/v1")
 *   purpose   the core_kek purpose ("file-keys", "transit-keys")
 *   aad_prefix  AAD = aad_prefix || id (mt_keywrap rows; "" or "function:")
 *   legacy    true when version-0 rows may exist (only the pre-KeyStore
 *             columns: files, functions)
 *   rewrap    NULL: key_col is an mt_keywrap blob (61 bytes) of a 32-byte
 *             key. Otherwise the column's own format: called with the old
 *             and new KEK, the row's id and blob, it returns the new blob in
 *             *out (malloc'ed; the caller frees it), MT_ECRYPTO when old_kek
 *             does not open it.
 *   reseal    NULL, or the MAC update of the row after key/version changed
 *             (integrity.c), run in the same transaction.
 *   bound_tasks  NULL, or SQL selecting the ids of the non-final tasks whose
 *             binding (integ_task_binding) covers the row (one ? = its id):
 *             the approvals that were valid before the rewrap are re-sealed
 *             after it, in the same transaction (the key is the same).
 * Writers wrap with core_kek(c, purpose, 0, ...) and store the row (key and
 * version) in ONE write transaction under core->mu, as every API route does:
 * a rotation (also under core->mu) then never falls between the wrap and the
 * commit, so a version the pass found unused stays unused and is retired.
 * Adding a table is one line in core_wrapped_cols (kek.c), with an index on
 * ver_col if the table is large. */
typedef struct core_wrapped_col {
    const char *table, *id_col, *key_col, *ver_col, *purpose, *aad_prefix;
    bool legacy;
    mt_status (*rewrap)(mt_core *c, const uint8_t old_kek[32], const uint8_t new_kek[32],
                        const char *id, const void *blob, size_t len, uint8_t **out,
                        size_t *out_len, mt_err *err);
    mt_status (*reseal)(mt_core *c, mt_db *db, const char *id, mt_err *err);
    const char *bound_tasks;
    /* NULL, or the table's own batch rewrap, for tables without a single
     * TEXT id (transit_key_versions is keyed by owner, name, version): called
     * in the pass's write transaction, it rewraps (and re-MACs) up to `limit`
     * rows whose ver_col is below `below` to the current KEK and sets *done
     * (0 = nothing left); id_col, aad_prefix, rewrap, reseal and bound_tasks
     * are then unused. table/key_col/ver_col still count the rows per
     * version, so a version is retired only when no row of the table records
     * it. */
    mt_status (*batch)(mt_core *c, mt_db *db, uint32_t below, unsigned limit, unsigned *done,
                       mt_err *err);
    /* NULL, or the table's verified write of a rewrapped key: verifies the
     * row's MAC, writes key_col, ver_col and the MAC over the verified row
     * with the new key (replaces the plain UPDATE and reseal); old_hex and
     * new_hex receive the value the bound tasks' bindings change by (files:
     * the verified MAC and the MAC written; functions: the SHA-256 of the
     * verified old key and of the new one), for integ_rebind_seal */
    mt_status (*rewrite)(mt_core *c, mt_db *db, const char *id, const void *blob, size_t len,
                         uint32_t ver, char old_hex[65], char new_hex[65], mt_err *err);
} core_wrapped_col;
extern const core_wrapped_col core_wrapped_cols[];
extern const size_t core_n_wrapped_cols;
/* Opens the KeyStore and gets this node's keys (release after attestation);
 * MT_EPERM naming the measurement when the release policy refuses. */
mt_status core_kek_open(mt_core *c, mt_err *err);
/* Starts the rewrap thread (after the store is migrated) and one pass. */
mt_status core_kek_start(mt_core *c, mt_err *err);
void core_kek_close(mt_core *c);
mt_status kek_status_handle(core_ctx *x);
mt_status kek_rotate_handle(core_ctx *x);
mt_status kek_legacy_handle(core_ctx *x);
mt_status release_policy_get(core_ctx *x);
mt_status release_policy_allow(core_ctx *x);
mt_status release_policy_revoke(core_ctx *x);
mt_status release_policy_signers(core_ctx *x);
/* kek_escrow.c: POST /v1/admin/keystore/escrow; and the KeyStore opened by
 * recovery from c->open_cfg's escrow file and keys (mt_keystore_recover). */
mt_status kek_escrow_handle(core_ctx *x);
mt_status core_kek_recover(mt_core *c, const char *req, size_t req_len, mt_keystore **ks,
                           mt_err *err);
/* The KeyStore service of this node (kek.c). */
mt_keystore *core_kek_keystore(mt_core *c);
/* A joined node (c->joined): MT_ECONFLICT naming the KeyStore node, for the
 * KeyStore's admin routes that only that node can serve. */
mt_status core_kek_joined_refuse(core_ctx *x);
/* Parses a JSON text array of strings (trusted, from the store); new ref. */
json_t *core_json_load(const char *text);

/* A row of the files table (files.c). */
typedef struct core_file {
    char file_id[MT_ID_LEN + 1];
    char kind[8]; /* input, output, fusion */
    char name[130];
    char url[2050];
    char object_id[MT_ID_LEN + 1]; /* "" when the ciphertext is remote */
    bool has_size;
    int64_t size;
    char sha256[65]; /* "" when unknown */
    bool written;
    int64_t created_at;
    uint8_t wrapped_key[64];
    size_t wrapped_len;
} core_file;
/* Loads a file row after verifying its MAC (integ_file_check); MT_ENOTFOUND
 * if absent. */
mt_status core_file_load(mt_core *c, mt_db *db, const char *file_id, core_file *out, mt_err *err);
/* integ_file_check that also hands out what it verified, from the same
 * read: the row (*out, may be NULL), its owners (*owners, new array, may be
 * NULL) and its MAC (mac_out, may be NULL). The row's own file_id must be
 * the one asked for. */
mt_status integ_file_load(mt_core *c, mt_db *db, const char *file_id, core_file *out,
                          json_t **owners, char mac_out[65], mt_err *err);
/* Sorted JSON array of the file's owners (new reference), NULL on error. */
json_t *core_file_owners(mt_db *db, const char *file_id, mt_err *err);
/* True if user owns the file (the owner rows verified by the file's MAC). */
mt_status core_file_is_owner(mt_core *c, mt_db *db, const char *file_id, const char *user,
                             bool *yes, mt_err *err);

/* A row of the functions table (functions.c); JSON texts are owned. */
typedef struct core_function {
    char function_id[MT_ID_LEN + 1];
    char owner[65];
    char name[130];
    char builtin[65];
    char executor_type[33];
    bool public_, disabled;
    json_t *arguments, *inputs, *outputs; /* arrays, owned */
    int64_t usage_quota, current_usage;
} core_function;
/* integ_function_check that also hands out what it verified, from the same
 * read: the row (*out, current_usage left 0: not MACed), whether it is
 * deleted and its allow-list (*allow, new array, may be NULL). The row's
 * own function_id must be the one asked for. *out is owned by the caller
 * (core_function_clear) on success. */
mt_status integ_function_load(mt_core *c, mt_db *db, const char *function_id, core_function *out,
                              bool *deleted, json_t **allow, mt_err *err);
/* Loads a function that is not deleted and that who may see (public, owner,
 * allow-listed, admin), after checking its MAC; MT_ENOTFOUND otherwise. */
mt_status core_function_load_visible(mt_core *c, mt_db *db, const char *function_id,
                                     const char *who, bool admin, core_function *out, mt_err *err);
void core_function_clear(core_function *f);

/* ---- handlers (api.c routes to these) --------------------------------- */
typedef mt_status (*core_handler)(core_ctx *x);

mt_status auth_login(core_ctx *x);
mt_status auth_logout(core_ctx *x);
mt_status auth_user_create(core_ctx *x);
mt_status auth_user_list(core_ctx *x);
mt_status auth_user_me(core_ctx *x);
mt_status auth_user_revoke(core_ctx *x);
/* issue 9 user lifecycle: own password change and admin reset (slow routes,
 * auth.c), show/disable/enable/delete (users.c). */
mt_status auth_password_self(core_ctx *x);
mt_status auth_password_reset(core_ctx *x);
/* Clears the failed-login count of an account (password reset). */
void auth_limits_forget(mt_core *c, mt_db *db, const char *username);
mt_status users_get(core_ctx *x);
mt_status users_disable(core_ctx *x);
mt_status users_enable(core_ctx *x);
mt_status users_delete(core_ctx *x);
mt_status auth_bootstrap(mt_core *c, const char *admin_password, const char *password_out,
                          mt_err *err);
mt_status auth_dummy_init(mt_core *c, mt_err *err); /* also sets up the login limits */
void auth_limits_free(mt_core *c);

mt_status files_upload(core_ctx *x);
mt_status files_input_new(core_ctx *x);
mt_status files_output_new(core_ctx *x);
mt_status files_fusion_new(core_ctx *x);
mt_status files_as_input(core_ctx *x);
mt_status files_list(core_ctx *x);
mt_status files_get(core_ctx *x);
mt_status files_content(core_ctx *x);
mt_status files_delete(core_ctx *x);

mt_status functions_create(core_ctx *x);
mt_status functions_list(core_ctx *x);
mt_status functions_get(core_ctx *x);
mt_status functions_update(core_ctx *x);
mt_status functions_disable(core_ctx *x);
mt_status functions_delete(core_ctx *x);
mt_status functions_stats(core_ctx *x);
/* fn_schema.c: built-in argument schemas (mt_bschema.h) checked at
 * registration (arg_decls: the stored declaration array) and at task
 * creation (args: defaults merged with overrides); GET /v1/builtins. */
mt_status fn_schema_check_register(core_ctx *x, const char *executor_type, const char *builtin,
                                   const json_t *arg_decls, size_t n_inputs, size_t n_outputs);
mt_status fn_schema_check_task(core_ctx *x, const core_function *fn, const json_t *args);
mt_status functions_builtins(core_ctx *x);

mt_status tasks_create(core_ctx *x);
mt_status tasks_assign(core_ctx *x);
mt_status tasks_approve(core_ctx *x);
mt_status tasks_invoke(core_ctx *x);
mt_status tasks_cancel(core_ctx *x);
mt_status tasks_get(core_ctx *x);
mt_status tasks_list(core_ctx *x);

mt_status audit_list(core_ctx *x);
mt_status metrics_handle(core_ctx *x);
/* Prometheus text from db (caller holds the connection); heap string.
 * On the database layer (either backend). */
char *metrics_text(mt_db *db);
/* process_* metrics of this process (from /proc/self) and
 * mesatee_build_info{version,level} 1, as Prometheus text; heap string or
 * NULL (out of memory). Takes no lock. */
char *metrics_process_text(const char *level);
mt_status health_handle(core_ctx *x);
mt_status ready_handle(core_ctx *x);

/* transit.c: the Vault-transit-compatible KeyStore API (docs/keystore.md) */
mt_status transit_key_create(core_ctx *x);
mt_status transit_key_read(core_ctx *x);
mt_status transit_key_list(core_ctx *x);
mt_status transit_key_delete(core_ctx *x);
mt_status transit_key_config(core_ctx *x);
mt_status transit_key_rotate(core_ctx *x);
mt_status transit_key_import(core_ctx *x);
mt_status transit_key_import_version(core_ctx *x);
mt_status transit_wrapping_key(core_ctx *x);
mt_status transit_grant_add(core_ctx *x);
mt_status transit_grant_revoke(core_ctx *x);
mt_status transit_encrypt(core_ctx *x);
mt_status transit_decrypt(core_ctx *x);
mt_status transit_rewrap(core_ctx *x);
mt_status transit_datakey(core_ctx *x);
mt_status transit_sign(core_ctx *x);
mt_status transit_verify(core_ctx *x);
mt_status transit_hmac(core_ctx *x);
mt_status transit_random(core_ctx *x);
mt_status transit_hash(core_ctx *x);
mt_status transit_key_trim(core_ctx *x); /* transit_ext.c */
mt_status transit_export(core_ctx *x);
mt_status transit_backup(core_ctx *x);
mt_status transit_restore(core_ctx *x);

/* ---- scheduler (sched.c) ---------------------------------------------- */
mt_status sched_recover(mt_core *c, mt_db *db, mt_err *err);
void sched_wake(mt_core *c);
/* Only this process's scheduler (cluster_wake.c, for another node's event). */
void sched_wake_local(mt_core *c);
/* Wakes every scheduler thread of this node (node_live.c: claims may
 * resume, and several tasks may be waiting). */
void sched_wake_all(mt_core *c);
/* Claim on invoke (issue 13, docs/design.md "Scheduler"): inside the
 * invoke's write transaction, after its audit entry, claims the just
 * staged task (running, node, attempt, the scheduler's "task running"
 * entry, in a savepoint) when a scheduler thread sleeps and is not yet
 * reserved for another such claim; true when claimed (*attempt: its
 * tasks.run_attempt). The claim is durable with the invoke's commit, so
 * the task's run needs no commit of its own. After a true, the caller must
 * call sched_invoke_claimed once the transaction ended: committed hands the
 * task to the reserved thread (no sched_wake needed); else the reservation
 * is dropped (the rollback undid the claim with the invoke; a commit that
 * reported a failure yet stood leaves an orphaned run, which sched.c's
 * orphan check requeues). sync_mark: mt_db_sync_mark of the invoke's
 * connection taken after its commit (mt_db_commit_nosync) returned; the
 * thread runs the task once mt_db_sync_to(that mark) returned. When the claim
 * could not be undone alone, *rc_out and *err_out get the error and the caller
 * must fail (roll back) the whole invoke. */
bool sched_invoke_claim(mt_core *c, mt_db *db, const char *task_id, int64_t *attempt,
                        mt_status *rc_out, mt_err *err_out);
void sched_invoke_claimed(mt_core *c, const char *task_id, int64_t attempt, bool committed,
                          uint64_t sync_mark);
/* The scheduler's counters as Prometheus text (heap; NULL when out of
 * memory): wake-ups by cause, commits and the state changes they carried. */
char *sched_metrics_text(mt_core *c);
/* ---- task_wait.c ------------------------------------------------------- */
#define CORE_WAIT_MAX_MS 60000u /* longest ?wait= of GET /v1/tasks/{id} */
/* The query of GET /v1/tasks/{id}: "" or wait=N[s|ms] (N seconds when no
 * unit), at most CORE_WAIT_MAX_MS; *wait_ms 0 when absent. MT_EINVAL naming
 * the parameter otherwise. */
mt_status core_wait_query_parse(const char *query, unsigned *wait_ms, mt_err *err);
/* Tells the task listener (if any) that a task's state changed (any thread). */
void core_task_event(mt_core *core);
/* The same for one task known by id (mt_core_task_changed then wakes only
 * the parked requests of that task). */
void core_task_event_id(mt_core *core, const char *task_id);
/* Only this process's listener (cluster_wake.c, for another node's event;
 * or after a change whose NOTIFY went with its commit): task_id as in
 * core_task_event_id, NULL for any task. */
void core_task_event_local(mt_core *core, const char *task_id);
/* ---- cluster_wake.c: LISTEN/NOTIFY between nodes (PostgreSQL) ---------- */
#define CWAKE_STAGED 1u /* a task was staged: schedulers claim */
#define CWAKE_TASK 2u   /* a task's state changed: parked ?wait= requests look */
/* Starts the wake-up thread on a PostgreSQL store (no-op on SQLite). */
mt_status cwake_start(mt_core *c, mt_err *err);
void cwake_stop(mt_core *c); /* joins it; no-op when none */
/* Tells the other nodes (never blocks; any thread). */
void cwake_post(mt_core *c, unsigned what);
/* The wake-ups `what` (CWAKE_*) of a change in db's open transaction, as
 * NOTIFYs inside it: delivered to the other nodes when it commits, with no
 * round trip of their own (sent with its COMMIT). true when queued: the
 * caller then wakes only this process (sched_wake_local,
 * core_task_event_local) after the commit; false (SQLite, no thread, no
 * transaction, an error): the caller uses sched_wake / core_task_event. */
bool cwake_notify_tx(mt_core *c, mt_db *db, unsigned what);
/* Notifications sent, received from other nodes, fallback wake-ups. */
void cwake_counts(mt_core *c, uint64_t *sent, uint64_t *received, uint64_t *fallback);
/* ---- local runs and remote leases (docs/cluster.md "Local runs and
 * executor leases") ---------------------------------------------------------
 * A 'running' task is either a local run (claimed by a node's own scheduler
 * threads: sched.c) or a remote run under an executor lease (claimed for an
 * executor: remote_sched.c). Every query that treats one kind must tell them
 * apart with these predicates, never with lease_fence alone: lease_fence
 * only grows (the fencing token), so a task once leased, requeued and then
 * claimed by a local scheduler keeps its old fence. The claim decides:
 * every claim sets lease_until = 0 (sched.c claim_sql), a remote claim then
 * sets it to the lease's end in the same transaction (remote_sched.c
 * lease_grant), and nothing sets a remote run's lease_until back to 0 while
 * it is running (an expired last attempt keeps its past end until
 * sched_finish). A remote lease's checks (renewal, transfer, report) refuse
 * a row that is not one, so an executor whose lease expired cannot renew or
 * report a task that a node now runs locally. P is the table prefix ("" or
 * "t."); the SQL is ours, never outside input. */
#define SQL_REMOTE_LEASE(P) "(" P "lease_fence > 0 AND " P "lease_until > 0)"
#define SQL_LOCAL_RUN(P) "(" P "status = 'running' AND NOT " SQL_REMOTE_LEASE(P) ")"
/* The lease MAC (remote_sched.c, "mesatee-task-lease/v3") binds what makes an
 * executor's renewal, transfer or report acceptable: the task, fencing token,
 * expiry count, the claim it belongs to (tasks.run_attempt), the kind
 * (remote: lease_until > 0) and the claim nonce, 16 random bytes
 * (mt_random) drawn afresh by every write of the MAC (every claim, every
 * lease granted, every expiry, every outcome an executor's report stores,
 * the upgrade). tasks.lease_mac holds the nonce
 * (32 hex) and then the MAC (64 hex), LEASE_MAC_STORED_LEN characters: one
 * column, so a nonce is never written without its MAC. A host that sets
 * lease_until on a local run, or edits run_attempt or the nonce, breaks it
 * ("integrity check failed: lease"). Every claim calls lease_claimed inside
 * the claim's transaction, after its UPDATE (attempt: the new run_attempt;
 * fence, expired, mac: the row's, as the UPDATE returned them, mac NULL
 * where the row has none): the MAC of the previous claim (attempt - 1,
 * either kind, under the row's nonce) must verify, or, without a MAC, this
 * must be the row's first claim (attempt 1, token and count 0); then the
 * row is re-MACed as a local run of this claim under a fresh nonce, so no
 * earlier holder's token verifies again (a remote claim then grants its own
 * lease, with another fresh nonce: lease_grant), and only a row never
 * claimed (run_attempt 0) is without a MAC. A MAC that does not verify, or
 * a missing one after the first claim, is left as it is (refused wherever a
 * lease is checked: a remote claim fails the task) and logged; a local
 * claim itself goes on. An error computing a MAC (memory, the HMAC) is
 * returned (the claim's transaction fails and nothing is judged), never
 * taken for a MAC that does not verify. The lease secret handed to the executor is an HMAC
 * of the task, token, claim and the lease's nonce (remote_sched.c
 * lease_secret), so a row put back whole to an earlier state (even to
 * before its first claim) hands its next claim a secret no earlier holder
 * has (docs/threat-model.md "Executor leases"). */
#define LEASE_MAC_STORED_LEN 96 /* tasks.lease_mac: nonce (32 hex), MAC (64 hex) */
mt_status lease_claimed(mt_core *c, mt_db *db, const char *task_id, int64_t attempt,
                        int64_t fence, int64_t expired, const char *mac, mt_err *err);
/* store_migrate hook (STORE_MIG_LEASE_V2): every v1 lease MAC that verifies
 * is replaced by its v2 MAC over the row as it is (MACs already under v2 or
 * v3, the migration run again, are left to the v3 step), and every claimed
 * task that may be claimed again (staged or running) without a MAC and with
 * token and count 0 (v1's "never leased") gets the v2 MAC of that state,
 * only with c->seal_legacy_store (the schema version is the host's: else
 * MT_ECONFLICT, the open refused, as integ_seal_legacy). Errors computing a
 * MAC are returned, never taken for a MAC that does not verify. */
mt_status lease_mac_upgrade(void *core, mt_db *db, mt_err *err);
/* store_migrate hook (STORE_MIG_LEASE_V3, after the v2 step): every v2 lease
 * MAC that verifies is replaced by a v3 one under a fresh nonce; one that
 * does not stays as it is (refused). A remote lease in flight (running,
 * lease_until > 0) cannot keep its executor: the secret it holds was derived
 * without a nonce. It is requeued in the same transaction (staged, its
 * place kept, outcome cleared and re-sealed, not counted as an expiry,
 * audited "task requeued (upgrade)"), or canceled when its cancellation was
 * asked ("task canceled"); its executor's next renewal or report is
 * refused and it stops. */
mt_status lease_mac_upgrade_v3(void *core, mt_db *db, mt_err *err);
/* ---- node_live.c: the local runs of a node that stopped (PostgreSQL) ---- */
/* Starts the liveness thread on a PostgreSQL store (no-op on SQLite): it
 * holds this node's liveness lock and, on the one node that holds the
 * sweeper lock, requeues (or fails) the local runs of nodes seen without
 * theirs for node_dead_after_ms. */
mt_status nlive_start(mt_core *c, mt_err *err);
void nlive_stop(mt_core *c); /* joins it, which drops the locks; no-op when none */
/* Tests: a new grace period (ms), and the counters: sweeper rounds done by
 * this core, nodes seen without their lock (each time one starts a grace
 * period), runs requeued and failed. All 0 where nothing runs. */
void nlive_set_grace_ms(mt_core *c, uint32_t ms);
/* Whether this node may claim new local tasks: true on SQLite (no liveness
 * thread), else only while it holds its liveness lock (from the first time
 * it takes it; not after a loss until it holds it again). sched.c asks it
 * before each claim; the liveness thread wakes the scheduler when the lock
 * is held again. Any thread. */
bool nlive_claim_ok(mt_core *c);
void nlive_counts(mt_core *c, uint64_t *rounds, uint64_t *seen_dead, uint64_t *requeued,
                  uint64_t *failed);
void sched_stop(mt_core *c);
/* Graceful stop: puts every task still 'running' back in the queue
 * ('staged', same place, outcome cleared and re-sealed), audited "task
 * requeued (stop)"; one whose cancellation was requested is canceled. Only for tasks no thread of this process runs any more
 * (after sched_stop / once the executor API stopped). */
mt_status sched_requeue_running(mt_core *c, mt_db *db, mt_err *err);
/* A local run that ended without a stored outcome: its node stopped
 * (node_live.c) or this node's run was orphaned (sched.c). In its own
 * transaction, fenced on (task, run_node = node, local run) and, when
 * attempt >= 0, run_attempt = attempt: counted in tasks.node_lost; at the
 * run_max_attempts-th loss failed ("<why> (node id <node>); runs lost: N, no
 * attempt left of M"), canceled when its cancellation was asked (both by
 * sched_finish), else requeued (same place in the queue, outcome cleared and
 * re-sealed) with the audit entry `requeue_entry`. *out: SCHED_LOST_NONE
 * (finished or requeued meanwhile: nothing done), SCHED_LOST_REQUEUED or
 * SCHED_LOST_ENDED. `why` and `requeue_entry` are constants (no input
 * bytes). The caller logs a requeue; a failure or cancel is logged here. */
typedef enum { SCHED_LOST_NONE, SCHED_LOST_REQUEUED, SCHED_LOST_ENDED } sched_lost;
mt_status sched_lose_run(mt_core *c, mt_db *db, const char *task_id, const char *node,
                         int64_t attempt, const char *why, const char *requeue_entry,
                         sched_lost *out, int64_t *lost_count, mt_err *err);
/* Remote executors (remote_sched.c): claims the oldest staged task and
 * builds its job (*got false when none; a task whose job cannot be built is
 * left 'running' for the caller to fail with sched_finish); frees a job;
 * stores an outcome (r NULL with setup_failure) in one transaction. */
struct mt_job;
struct mt_job_result;
/* Runs inside the claim's transaction, after the row became 'running' and
 * before the commit (the remote lease's new fencing token: a task is never
 * 'running' under the fence of an expired lease, so a late report of that
 * lease cannot pass the outcome's guard). An error undoes the claim. */
typedef mt_status (*sched_claim_hook)(void *ctx, mt_db *db, const char *task_id, mt_err *err);
mt_status sched_claim_job(mt_core *c, mt_db *db, char task_id[MT_ID_LEN + 1], bool *got,
                          struct mt_job *job, char exec_type[33], char builtin[65],
                          sched_claim_hook hook, void *hctx, mt_err *err);
void sched_job_free(struct mt_job *job);
mt_status sched_finish(mt_core *c, mt_db *db, const char *task_id, const struct mt_job_result *r,
                       const char *setup_failure, mt_err *err);
/* sched_finish, but guard(gctx, db, err) runs first inside the outcome's
 * transaction (under the write lock): an error from it rolls everything
 * back and is returned (remote_sched.c: the lease's fence and secret).
 * outputs: the task's output slots (slot -> file_id) from a verified read
 * of its binding (integ_task_verify_row's row.assignments "outputs"), the
 * only files a finished outcome marks written; NULL: the outcome's own
 * transaction verifies the binding and takes them from there. Never a
 * mapping read again from task_files: the host could answer that read with
 * another file ("Verified values only" in docs/threat-model.md). */
typedef mt_status (*sched_finish_guard)(void *gctx, mt_db *db, mt_err *err);
mt_status sched_finish_guarded(mt_core *c, mt_db *db, const char *task_id,
                               const struct mt_job_result *r, const char *setup_failure,
                               const json_t *outputs, sched_finish_guard guard, void *gctx,
                               mt_err *err);

/* The file file_id of the task's verified binding (row: integ_task_verify_row
 * in this transaction), loaded and verified by its MAC into *f, that MAC the
 * one the binding (and so every approval) covered; output: one already
 * written is refused (an output is written once; a written one is a store
 * that assigned it twice). Errors: "integrity check failed: binding|file"
 * (MT_EINTERNAL, nothing from the rows), or the store's. */
mt_status sched_bound_file(mt_core *c, mt_db *mdb, const integ_task_row *row, const char *file_id,
                           bool output, core_file *f, mt_err *err);
/* The output mapping outs (slot -> file_id, a verified binding's) is fit
 * to be written: each file's MAC holds, none is written yet, no file is
 * bound to two slots. *n: the number of slots. */
mt_status sched_outputs_check(mt_core *c, mt_db *mdb, const json_t *outs, size_t *n, mt_err *err);

/* Final task states. */
bool core_task_status_final(const char *s);

#endif
