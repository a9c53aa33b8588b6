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
 * Thread-safety: one server per process. */
#ifndef MT_SERVER_H
#define MT_SERVER_H

#include "mt_core.h"
#include "mt_err.h"

typedef struct mt_server_config {
    const char *listen;          /* "HOST:PORT"; default "127.0.0.1:7443"; port 0 = any */
    const char *tee_level;       /* "none" (default), "soft", "tpm2", "sev-snp", "tdx", "sgx" */
    unsigned max_connections;    /* 0 = 256 */
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
    bool remote_executors;
    const char *executor_listen;
    const char *executor_policy;
    /* Total body bytes the executor API buffers across connections (0 =
     * MT_EXECUTOR_API_MAX_BUFFERED); over it a request is answered 503. */
    size_t executor_max_buffered;
    mt_core_config core;         /* data_dir required */
} mt_server_config;

mt_status mt_server_run(const mt_server_config *cfg, mt_err *err);

/* Asks a running server to stop (async-signal-safe). */
void mt_server_stop(void);

#endif
