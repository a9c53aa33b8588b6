/* mt_core: the platform's services behind the gateway: store (SQLite, WAL),
 * authentication (users, Argon2id passwords, expiring revocable tokens),
 * files (inputs, outputs, fusion, keys sealed at rest), functions, tasks
 * (Teaclave's state machine), scheduler (durable queue, worker threads,
 * cancellation, crash recovery), audit log (hash-chained, MACed, signed
 * checkpoints) and metering. The store is untrusted host storage: the rows
 * that decide access and what runs carry MACs under a TEE-held key
 * (integrity.c, docs/threat-model.md "The store is untrusted").
 *
 * The gateway (src/gateway) is the only caller of mt_core_handle; there is no
 * other way into the services. Handlers decode JSON with the bounded reader
 * (mt_json) and run each state change in one SQLite transaction, so bad input
 * changes nothing.
 *
 * Ownership: mt_core_open allocates; mt_core_close stops the scheduler (killing
 * running workers), and frees everything. mt_response owns its json/raw.
 * Thread-safety: mt_core_handle, mt_core_authenticate, mt_core_audit and
 * mt_core_metrics may be called from one thread (the gateway's event loop),
 * except that mt_core_handle for slow routes (mt_core_route_is_slow) may run
 * on other threads at the same time;
 * the scheduler runs its own threads with their own database connections. */
#ifndef MT_CORE_H
#define MT_CORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_tee.h"

typedef struct mt_core mt_core;

typedef struct mt_core_config {
    const char *data_dir;            /* holds mesatee.db, objects/, tls/, sealing.key */
    const char *store_url;           /* the store (docs/cluster.md): NULL = <data_dir>/mesatee.db;
                                        a SQLite path or file: URL; postgres:// is refused
                                        (MT_EINVAL naming what is missing) until the whole
                                        core runs on the database layer (src/store/mt_db.h) */
    const char *objects;             /* object storage (docs/cluster.md): NULL/"dir" = the data
                                        directory's objects/, "dir:PATH" (a shared mount),
                                        "db" = chunked rows in the store's database */
    const char *worker_path;         /* mesatee-worker executable */
    const char *file_url_root;       /* file:// inputs allowed under this dir; NULL = refused */
    const char *fetch_allow;         /* https:// inputs: CIDRs reachable despite the default
                                        deny list (comma-separated); NULL = none */
    unsigned workers;                /* concurrent tasks; 0 = number of cores */
    int64_t token_ttl_seconds;       /* 0 = 12 hours */
    uint64_t task_mem_bytes;         /* per-worker address-space limit; 0 = 2 GiB */
    uint32_t task_cpu_seconds;       /* 0 = 600 */
    uint32_t task_wall_ms;           /* 0 = 900000 */
    size_t max_json_bytes;           /* 0 = 1 MiB */
    size_t max_json_depth;           /* 0 = 32 */
    size_t max_upload_bytes;         /* 0 = 1 GiB (POST /v1/objects) */
    const char *admin_password;      /* first start: admin's password; NULL = generate one and
                                        write it to admin_password_out */
    const char *admin_password_out;  /* where a generated password goes (file, mode 0600,
                                        replaced if present); NULL = <data_dir>/admin-password.
                                        Never printed: the log says where it is */
    bool keep_leased;                /* remote executors: a task running under an
                                        executor lease (lease_fence > 0) stays 'running' at open
                                        and close; the lease decides (renewed: it finishes
                                        there; run out: the executor API's sweeper requeues
                                        it). Without: failed at open, requeued at close */
    uint32_t node_dead_after_ms;     /* several nodes on PostgreSQL (docs/cluster.md "A node
                                        that never comes back"): a node seen without its
                                        liveness lock this long loses its local runs (requeued
                                        elsewhere); 0 = 60000 */
    uint32_t run_max_attempts;       /* claims per task before a run lost with its node fails
                                        it; 0 = 3 (serve: --executor-max-attempts) */
    bool seal_legacy_store;          /* operator consents to MAC the rows of a store written
                                        before store integrity (schema < 3) as they are; without
                                        it such a store (or one made to look like it by removing
                                        the MAC columns) is refused; likewise the lease MAC of
                                        claimed tasks without one in a store before schema 16
                                        (remote_sched.c lease_mac_upgrade) */
    const char *release_signers;     /* PEM bundle of auditor P-256 public keys whose
                                        signatures a KeyStore release-policy change needs
                                        (recorded in the sealed KeyStore at first use); NULL =
                                        none, or the set already recorded */
    unsigned release_threshold;      /* with release_signers: how many must sign; 0 = all */
    const char *keystore_collateral; /* levels sev-snp, tdx, sgx: collateral directory
                                        (mt_policy collateral_dir) verifying evidence for the
                                        KeyStore release policy; NULL = none (NOT exercised on
                                        hardware) */
    const char *keystore_recover;    /* escrow file (`mesatee admin keystore escrow`): rebuild a
                                        KeyStore whose state no longer opens (lost TPM) from
                                        it, with the recipients' private keys below; NULL = no */
    const char *const *keystore_recover_keys; /* PEM files of the recipients' P-256 keys */
    size_t n_keystore_recover_keys;
    const char *python_allow;        /* modules added to python functions' default allow-list
                                        (','-separated; python_modules.h); NULL = none */
    const char *python_deny;         /* modules removed from it; NULL = none */
    uint64_t audit_spool_max;        /* bytes the local audit spool may hold (docs/design.md
                                        "Audit spool"); 0 = 16 MiB */
    struct mt_ks_joined *keystore_joined; /* several nodes (mt_ks_join.h, docs/cluster.md
                                        "Several nodes"): this node joined a KeyStore node;
                                        the core takes the shared platform keys (integrity,
                                        audit chain, key fingerprints) and root keys from it
                                        instead of its own, opens no keystore.sealed and
                                        refuses the KeyStore's admin routes. Borrowed: must
                                        outlive the core. NULL = this node's own keys */
} mt_core_config;

mt_status mt_core_open(const mt_core_config *cfg, mt_tee *tee, mt_core **out, mt_err *err);
/* The KeyStore node of a cluster (mt_ks_join.h): this core's KeyStore and
 * its platform keys key_fp || integ || audit (96 bytes) for the join
 * listener. MT_ECONFLICT on a node that joined another KeyStore. The
 * KeyStore stays owned by the core. */
struct mt_keystore;
mt_status mt_core_join_source(mt_core *core, struct mt_keystore **ks, uint8_t platform[96],
                              mt_err *err);
/* The KeyStore node: the URL its join listener advertises (keystore.url)
 * and the lifetime of the database certificates it issues (0 = no database
 * CA), shown by GET /v1/admin/keystore. Before requests are served. */
void mt_core_set_join_info(mt_core *core, const char *url, uint32_t db_cert_ttl_s);
mt_status mt_core_start_scheduler(mt_core *core, mt_err *err);
/* Sets the function told after every committed change of a task's state
 * (on any thread; it must be cheap and thread-safe, e.g. wake an event
 * loop: mt_gateway_wake). Set it before requests are served; NULL = none.
 * Used for GET /v1/tasks/{id}?wait= (task_wait.c). */
void mt_core_set_task_listener(mt_core *core, void (*fn)(void *ctx), void *ctx);
/* Task events are numbered: mt_core_task_event_seq is the number of the
 * last (any thread). mt_core_task_changed(core, path, since): false only
 * when path is a task's GET path (/v1/tasks/ID) and no event since number
 * `since` can concern that task (each names its task, or "any" for events
 * of another node or of several tasks; after more than 256 events it says
 * true). The gateway takes the number before it handles a request it may
 * park and, at a task event, handles again only the parked requests whose
 * task changed (instead of every parked one). */
uint64_t mt_core_task_event_seq(mt_core *core);
bool mt_core_task_changed(mt_core *core, const char *path, uint64_t since);
/* Changes the task limits and the token lifetime of a running core (0 = the
 * default, as in mt_core_config); tasks started and tokens issued from now
 * on get them. Any thread. */
void mt_core_set_limits(mt_core *core, uint64_t task_mem_bytes, uint32_t task_cpu_seconds,
                        uint32_t task_wall_ms, int64_t token_ttl_seconds);
/* Closes the core. After a scheduler (local, or remote executors) ran, tasks
 * still 'running' are put back in the queue (status 'staged') rather than
 * failed: the worker was killed before it committed any output (outputs
 * become visible only with the task's outcome), so they run again at the
 * next start. A crash (no close) still fails them at the next start. With
 * mt_core_config.keep_leased, tasks under an executor lease are left
 * 'running' at both (their lease decides). */
void mt_core_close(mt_core *core);

/* Graceful stop, first phase (any thread): from now on task invocation is
 * refused (503, MT_EUNAVAIL), the scheduler claims no new task (local
 * workers and remote executors), /readyz answers 503, and the tasks already
 * running go on. Idempotent. */
void mt_core_drain(mt_core *core);
/* Number of tasks in status 'running' (local workers or remote executors);
 * -1 when the store cannot be read. Event-loop thread (takes core->mu). */
int64_t mt_core_tasks_running(mt_core *core);

typedef struct mt_principal {
    char username[65];
    bool is_admin;
    char token_id[65];   /* hex SHA-256 of the token, as stored */
} mt_principal;

/* Bearer token -> principal. MT_EAUTH if missing, unknown, expired or revoked. */
mt_status mt_core_authenticate(mt_core *core, const char *token, mt_principal *out,
                               mt_err *err);

/* A request body streamed to a temporary object file while it arrives
 * (routes for which mt_core_route_streams_body is true: POST /v1/objects), so
 * that an upload is never held in memory whole. _begin creates the file,
 * _write appends (any thread, one at a time), _free removes it unless the
 * handler committed it as an object (NULL ok). */
typedef struct mt_upload mt_upload;
bool mt_core_route_streams_body(const char *method, const char *path);
mt_status mt_core_upload_begin(mt_core *core, mt_upload **out, mt_err *err);
mt_status mt_core_upload_write(mt_upload *u, const uint8_t *data, size_t len, mt_err *err);
void mt_core_upload_free(mt_upload *u);

typedef struct mt_request {
    const char *method;        /* "GET", "POST", "PUT", "DELETE" */
    const char *path;          /* decoded path, e.g. "/v1/tasks/<id>/approve" */
    const char *query;         /* raw query string or NULL */
    const uint8_t *body;
    size_t body_len;
    const mt_principal *who;   /* NULL only for routes that need no auth */
    mt_upload *upload;         /* streamed body (body NULL, body_len its size); borrowed */
    const char *peer;          /* client address ("127.0.0.1"), for rate limits; may be NULL */
    /* The caller appends the audit entry of a request that changes nothing
     * but the audit log (mt_core_audit_batch, after handle and before the
     * reply): such routes (mt_core_route_audit_only) then run in a read
     * transaction and leave resp->audited false. */
    bool audit_later;
    /* The caller makes a write route's change durable itself before it
     * replies (mt_core_sync, from any thread): the change's transaction
     * commits without waiting for its fsync (SQLite group sync, mt_db.h) and
     * resp->needs_sync is set. The gateway's loop sets it when its audit
     * committer runs, so its thread never waits for an fsync. */
    bool defer_sync;
} mt_request;

typedef struct mt_response {
    int status;                /* HTTP status */
    json_t *json;              /* owned; NULL when raw is used */
    uint8_t *raw;              /* owned; e.g. ciphertext download */
    size_t raw_len;
    /* A body streamed from a file instead (downloads): when has_raw_fd,
     * raw_fd (owned; closed by mt_response_clear or by whoever sends it) is
     * sent from offset 0 for raw_fd_len bytes, read in bounded pieces as the
     * connection drains, and those bytes must hash to raw_fd_sha256 (hex,
     * "" = not checked): the sender withholds the last piece and ends the
     * connection if they do not, so no byte other than those checked is
     * ever served complete. */
    bool has_raw_fd;
    int raw_fd;
    uint64_t raw_fd_len;
    char raw_fd_sha256[65];
    char object[80];           /* object the request touched, for the audit log */
    char route[64];            /* route pattern, e.g. "POST /v1/tasks/{id}/approve" (metrics) */
    bool audited;              /* the audit entry was written in the change's own
                                  transaction: the gateway must not append another */
    bool needs_sync;           /* req->defer_sync: committed, to be made durable
                                  (mt_core_sync_to(sync_mark)) before the reply */
    uint64_t sync_mark;        /* with needs_sync: covers the change's commit */
    unsigned retry_after_s;    /* > 0: sent as Retry-After (429, 503) */
    /* > 0: a complete answer that is not final yet (a task not done, asked
     * with ?wait=): the caller may hold the request up to park_ms and call
     * handle again when told of a task event (GET /v1/tasks/{id}?wait=). */
    unsigned park_ms;
} mt_response;

/* Routes and handles one request; always fills resp (errors as 4xx/5xx JSON
 * {"error":{"code","message"}}). */
void mt_core_handle(mt_core *core, const mt_request *req, mt_response *resp);
/* False for routes that need no authentication (login). Unknown routes: true. */
bool mt_core_route_needs_auth(const char *method, const char *path);
/* True for routes whose handler is slow: it hashes a password (Argon2id:
 * login, user creation), checks a wasm module in a sandboxed worker
 * (function registration) or hashes a stored object before serving it
 * (file content). mt_core_handle may be called for them from other threads, any
 * number at a time, while the gateway's loop thread handles the rest: they
 * do their slow part outside the store lock and take it only to read and to
 * write. */
bool mt_core_route_is_slow(const char *method, const char *path);
/* The methods of the routes whose pattern matches path, as an HTTP Allow
 * value ("GET, DELETE") into out (cap bytes); false (out "") when no route
 * has that path. The gateway answers 405 with it for any other method. */
bool mt_core_route_allow(const char *path, char *out, size_t cap);
/* Largest body the route accepts (JSON limit, or upload limit for /v1/objects). */
size_t mt_core_route_max_body(const mt_core *core, const char *method, const char *path);
void mt_response_clear(mt_response *resp);

/* True for routes whose only write is their audit entry (the stateless
 * transit operations: encrypt, decrypt, rewrap, datakey, sign, verify, hmac,
 * random, hash); see mt_request.audit_later. */
bool mt_core_route_audit_only(const char *method, const char *path);

/* One entry for mt_core_audit_batch (strings borrowed). */
typedef struct mt_audit_item {
    const char *actor;
    const char *action;
    const char *object;
    int status;
    int64_t time; /* 0: now (the append's time); else the time to record */
} mt_audit_item;

/* Group commit: appends n entries, in order, in ONE transaction with one
 * fsync, on a connection of its own (WAL: the loop's reads under the store
 * lock go on meanwhile; writers wait on SQLite's write lock, so the chain
 * stays linear). All or nothing: on failure no entry is kept. Thread-safe
 * (serialised by its own lock). */
mt_status mt_core_audit_batch(mt_core *core, const mt_audit_item *items, size_t n, mt_err *err);
/* Returns once every change this process committed to the store before the
 * call is durable (one fsync shared with the commits waiting meanwhile; at
 * once when they already are; PostgreSQL: at once). For the replies of
 * requests handled with mt_request.defer_sync. */
mt_status mt_core_sync(mt_core *core, mt_err *err);
/* The same for the changes a mark covers (mt_response.sync_mark of such
 * replies: the highest of several covers them all): at once, without an
 * fsync of its own, when a sync that started after them has completed
 * (mt_db_sync_to), where mt_core_sync also waits for every commit made
 * since by any thread. */
mt_status mt_core_sync_to(mt_core *core, uint64_t mark, mt_err *err);

/* The audit entries of requests that changed nothing, made durable or
 * refused (docs/design.md "Audit spool"): appended to the chain like
 * mt_core_audit_batch, or, when the store cannot take them (or older
 * entries still wait in the spool, so that order is kept), appended to the
 * local audit spool (untrusted_spool.h), from which a background thread
 * appends them to the chain, in order and with their original times, once
 * the store is back. MT_OK: every entry is durable (*spooled, may be NULL:
 * in the spool). An error (the spool is full, or cannot be written): no
 * entry was recorded and the request must not be served (503). Entries
 * with time 0 get the time of this call. Thread-safe. */
mt_status mt_core_audit_record(mt_core *core, const mt_audit_item *items, size_t n, bool *spooled,
                               mt_err *err);
/* Spool state for tests and operators: entries waiting, bytes on disk. */
void mt_core_audit_spool_state(mt_core *core, uint64_t *entries, uint64_t *bytes);
/* Tries to append the spooled entries now (the background thread does the
 * same with backoff): MT_OK when the spool is empty afterwards. */
mt_status mt_core_audit_spool_replay(mt_core *core, mt_err *err);

/* Appends one hash-chained, MACed audit entry in its own transaction (actor
 * may be "-" for anonymous): for requests that changed nothing. A request
 * that commits a change has its entry written in that change's transaction
 * by mt_core_handle (resp->audited). */
mt_status mt_core_audit(mt_core *core, const char *actor, const char *action,
                        const char *object, int status, mt_err *err);

/* A signed audit checkpoint (GET /v1/audit/checkpoint, docs/formats.md):
 * the first `entries` entries of the log end in hash `head`. */
typedef struct mt_audit_checkpoint {
    uint64_t entries;
    char head[65];
    int64_t time;
    char key_id[65]; /* SHA-256 of the signing key's SPKI DER (hex) */
    /* the cluster checkpoint key's id (audit.c "Cluster key": the same on
     * every node of a cluster); "" in checkpoints of older servers */
    char cluster_key_id[65];
    char level[16];
} mt_audit_checkpoint;

/* Parses a checkpoint document (bounded reader, unknown keys refused) and
 * verifies its signature with the key it carries, whose SHA-256 must be
 * key_id. Whether that key is the server's is the caller's decision
 * (compare key_id with a pinned or previously held one). A checkpoint with
 * the cluster fields (cluster_key, cluster_key_id, cluster_signature,
 * endorsement: all or none) must also carry a valid Ed25519 cluster
 * signature and the node key's endorsement of the cluster key id. MT_EINVAL
 * when malformed, MT_ECRYPTO when a signature does not verify. */
mt_status mt_core_audit_checkpoint_parse(const uint8_t *buf, size_t len,
                                         mt_audit_checkpoint *out, mt_err *err);

/* True when key_id names the checkpoint's node key or its cluster key (both
 * signatures were verified by the parser). */
bool mt_core_audit_checkpoint_signed_by(const mt_audit_checkpoint *cp, const char *key_id);

/* Offline check of a data dir's audit log (the daemon may be stopped):
 * recomputes the unkeyed hash chain (catches inconsistent edits and gaps)
 * and checks it against each held checkpoint (n_cps may be 0; at most 64):
 * the log must have at least cp.entries entries and entry cp.entries must
 * hash to cp.head (catches truncation and consistent rewrites of what the
 * checkpoint covers). The per-entry MACs need the TEE-held key: entries
 * after the newest checkpoint are authenticated only by the daemon
 * (GET /v1/audit/checkpoint). After `audit prune` the chain is walked from
 * the prune anchor (audit.c; its MAC is the daemon's to check) and a
 * checkpoint for an entry before it is refused ("was pruned": check it
 * against the export). *entries is the seq of the newest entry (the count
 * ever logged, pruned ones included). MT_ECONFLICT naming the first problem. */
mt_status mt_core_audit_verify_dir(const char *data_dir, const char *store,
                                   const mt_audit_checkpoint *cps, size_t n_cps,
                                   uint64_t *entries, mt_err *err);

/* The prune anchor of a data dir's audit log, read offline without its MAC
 * (the daemon checks that): *seq the last pruned entry (0 when the log was
 * never pruned), hash its hash (64 zeros when none). */
mt_status mt_core_audit_anchor_dir(const char *data_dir, const char *store, uint64_t *seq,
                                   char hash[65], mt_err *err);
/* store in the two above (and mt_audit_export_write): the server's --store
 * (a SQLite path, file: URL or postgres:// URL, mt_core_store_check), NULL
 * for DATA_DIR/mesatee.db. */

/* Prometheus text of the core's gauges (tasks by state, metering totals);
 * heap string. */
char *mt_core_metrics(mt_core *core);
/* True once the store is open and the scheduler threads run. */
bool mt_core_ready(const mt_core *core);

/* Whether spec is a valid mt_core_config.objects ("dir", "dir:/PATH", "db");
 * MT_EINVAL naming the accepted forms. */
mt_status mt_core_objects_check(const char *spec, mt_err *err);
/* Whether this build can run its store at url (mt_core_config.store_url):
 * a SQLite path or file: URL gives *sqlite_path (a pointer into url; may be
 * NULL when not wanted); postgres:// is MT_EINVAL naming the parts of the
 * core not yet on the database layer (docs/cluster.md "What remains");
 * another scheme is MT_EINVAL. */
mt_status mt_core_store_check(const char *url, const char **sqlite_path, mt_err *err);

#endif
