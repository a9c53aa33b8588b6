/* mt_server: the gateway. A TLS 1.3-only HTTPS server (libevent evhttp over
 * OpenSSL bufferevents) that is the single entry to the services: every
 * request is size-checked, authenticated (Bearer token), authorised and
 * handled by mt_core, audited (hash-chained log) and metered (/metrics).
 * /healthz, /readyz and /metrics are served here.
 *
 * mt_server_run blocks until SIGTERM or SIGINT (or mt_server_stop), then shuts
 * down gracefully in two phases: first it refuses new tasks (invoke: 503;
 * /readyz: 503; other requests are served) while the running tasks finish,
 * for shutdown_grace_s at most; then it stops accepting, lets in-flight
 * requests finish (5 s at most), stops the scheduler (killing the workers
 * still running, whose tasks go back to the queue: mt_core_close) and closes
 * the store. A second SIGTERM/SIGINT skips the waiting.
 * Under systemd (NOTIFY_SOCKET) it sends READY=1 once listening and
 * STOPPING=1 when the stop begins (mt_sdnotify.h).
 * At start it writes <data-dir>/tls/server-cert.pem (the certificate clients
 * pin) and <data-dir>/server.url ("https://127.0.0.1:PORT", useful with port 0).
 * TLS identity (mt_tls_id.h): at level none a stable key and certificate kept
 * in <data-dir>/tls/ (or the operator's certificate and key); above none a
 * fresh RA-TLS certificate at every start and renewal. Every certificate the
 * server makes names tls_san (default: the listen host, the host name,
 * localhost, 127.0.0.1). SIGHUP reloads the identity (operator files re-read,
 * attested levels: fresh evidence); a bad new identity keeps the old one.
 * Thread-safety: one server per process. */
#ifndef MT_SERVER_H
#define MT_SERVER_H

#include "mt_core.h"
#include "mt_err.h"

typedef struct mt_server_config {
    const char *listen;          /* "HOST:PORT"; default "127.0.0.1:7443"; port 0 = any */
    const char *tee_level;       /* "none" (default), "soft", "tpm2", "sev-snp", "tdx", "sgx" */
    unsigned max_connections;    /* 0 = 256 */
    unsigned max_task_waiters;   /* GET /v1/tasks/{id}?wait= held at once; 0 = 256 */
    const char *measured_config; /* soft: settings text measured into the evidence (NULL = "") */
    /* Levels with evidence: renew the TLS key and certificate with fresh
     * evidence every cert_renew_s seconds; 0 = default (3600), < 0 = never.
     * Level none never renews (clients pin its certificate). */
    long long cert_renew_s;
    /* Graceful stop: how long running tasks may go on after SIGTERM before
     * their workers are killed and the tasks requeued; 0 = default (30),
     * < 0 = no wait. */
    long long shutdown_grace_s;
    /* Separate executor role (docs/design.md "Separate roles"): when
     * remote_executors is set the daemon runs no task itself; it serves the
     * executor API (mt_executor_api.h) on executor_listen (NULL =
     * "127.0.0.1:7444") to executors whose evidence satisfies the policy file
     * executor_policy (role "executor", required). */
    /* Several nodes on one database (mt_ks_join.h, docs/cluster.md "Several
     * nodes"): keystore_listen (HOST:PORT) serves KeyStore joins from this
     * node's KeyStore; keystore_join (https://HOST:PORT) joins that node
     * before the core opens, verifying it with the policy file
     * keystore_policy (required with keystore_join). NULL = neither. */
    const char *keystore_listen;
    const char *keystore_join;
    const char *keystore_policy;
    /* With keystore_join: the most one join (the first, each refresh or
     * database certificate renewal) may take, seconds (0 = 60). */
    uint32_t keystore_join_timeout_s;
    /* With keystore_listen: PEM file holding the database CA's certificate
     * and its P-256 key, sealed into keystore.sealed (NULL = the sealed CA,
     * if any); with a CA every joining node also gets a client certificate
     * for the role "mesatee" (24 h), which it writes to its data directory
     * (db-client.crt/.key, 0600), opens the store with (sslcert/sslkey) and
     * renews (mt_dbrenew.h). */
    const char *keystore_db_ca;
    /* With keystore_db_ca: the lifetime of the certificates in seconds
     * (MT_DBCERT_TTL_MIN..MT_DBCERT_TTL_MAX; 0 = MT_DBCERT_TTL_MAX, one
     * day). Joined nodes renew at two thirds of it (mt_dbrenew.h). */
    uint32_t keystore_db_cert_ttl_s;
    /* keystore_db_ca is sealed into keystore.sealed at start (later starts
     * need no file); keystore_db_ca_create makes a CA inside the KeyStore
     * when none is sealed. Either way a sealed CA is used without a flag and
     * its certificate written to DATA_DIR/db-ca.crt. */
    bool keystore_db_ca_create;
    /* With keystore_listen: the URL joining nodes are told in keystore.url
     * ("https://HOST:PORT"); NULL = the listen address when its host is
     * not a wildcard, else https://127.0.0.1:PORT (mt_ks_join.h). */
    const char *keystore_advertise;
    bool remote_executors;
    const char *executor_listen;
    const char *executor_policy;
    /* Total body bytes the executor API buffers across connections (0 =
     * MT_EXECUTOR_API_MAX_BUFFERED); over it a request is answered 503. */
    size_t executor_max_buffered;
    /* Executor leases (mt_remote_sched.h): lease length in ms and claims per
     * task before an expired lease fails it; 0 = the defaults (30000, 3). */
    uint32_t executor_lease_ms;
    uint32_t executor_max_attempts;
    /* Several nodes on PostgreSQL: a node without its liveness lock this
     * long loses its local runs (mt_core_config.node_dead_after_ms; 0 =
     * 60000); executor_max_attempts also bounds those (run_max_attempts). */
    uint32_t node_dead_after_ms;
    /* TLS names: n_tls_san values of --tls-san (each a name or a comma
     * list); 0 = the defaults (mt_tls_san_list). */
    const char *const *tls_san;
    size_t n_tls_san;
    /* Level none only: the operator's certificate (chain allowed) and key
     * files, instead of the identity kept in the data directory. */
    const char *tls_cert;
    const char *tls_key;
    /* NULL: /metrics open to anyone; else the bearer token /metrics needs
     * (borrowed; mt_gateway_config.metrics_token). */
    const char *metrics_token;
    /* SIGHUP: called on the gateway's event loop (NULL = SIGHUP not handled). */
    void (*reload)(void *ctx);
    void *reload_ctx;
    mt_core_config core;         /* data_dir required */
} mt_server_config;

mt_status mt_server_run(const mt_server_config *cfg, mt_err *err);

/* Limits a reload may change while the server runs; 0 = the default. */
typedef struct mt_server_limits {
    uint64_t task_mem_bytes;
    uint32_t task_cpu_seconds;
    uint32_t task_wall_ms;
    int64_t token_ttl_seconds;
    unsigned max_connections;
} mt_server_limits;

/* Applies l to the running server. Only from the reload hook (the gateway's
 * thread). MT_EPERM above level none: there these settings are measured into
 * the evidence clients pin, so they change only with a restart. */
mt_status mt_server_set_limits(const mt_server_limits *l, mt_err *err);

/* Asks a running server to stop (async-signal-safe). */
void mt_server_stop(void);

#endif
