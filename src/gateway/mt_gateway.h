/* mt_gateway: the HTTP layer of the server, independent of the services.
 *
 * A TLS 1.3-only HTTPS server (libevent evhttp over OpenSSL bufferevents) that
 * enforces the limits (connections, header size, body size per route, idle
 * timeout), decodes and checks the request path, authenticates Bearer tokens,
 * hands each request to a backend, writes the response (JSON or raw bytes)
 * with security headers, audits every request (including rejected ones) and
 * keeps the HTTP metrics. /healthz, /readyz and /metrics are served here.
 *
 * The backend is a vtable over the services; mt_server (server.c) fills it
 * with the mt_core_* functions. Keeping the HTTP layer behind this vtable lets
 * it be tested without a store.
 *
 * Ownership: mt_gateway_new binds the socket and writes
 * <data_dir>/tls/server-cert.pem and <data_dir>/server.url; mt_gateway_free
 * releases everything (NULL ok). The key and certificate given in the config
 * are borrowed: the gateway takes its own references.
 * Each request head is judged before its body is read (token for routes that
 * need one, the route's body limit, at most 1 MiB without a token, a cap on
 * the bodies held in memory by all connections: 401/413/503), and bodies of
 * streamed routes go to the backend's upload sink as they arrive; see
 * docs/design.md "Decisions worth knowing".
 * Thread-safety: a gateway lives on the thread that calls mt_gateway_run; only
 * mt_gateway_stop may be called from other threads (and signal handlers).
 * The backend is called only from the thread running mt_gateway_run, except
 * handle for slow routes (backend.slow), which runs on the gateway's worker
 * threads (slow_threads of them, slow_queue waiting at most), authenticate
 * and handle for pooled routes (backend.pooled), which run on the gateway's
 * request threads (request_threads of them), and audit_batch, which runs on
 * the gateway's one audit committer thread.
 * With handle_signals, SIGHUP reloads the TLS identity (config.reload).
 * The gateway ignores SIGPIPE for the whole process (writes to closed sockets
 * must fail with EPIPE, not kill the daemon).
 * Under systemd's watchdog (WatchdogSec=, mt_sdnotify_watchdog_usec) the
 * event loop sends WATCHDOG=1 every half interval. */
#ifndef MT_GATEWAY_H
#define MT_GATEWAY_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_core.h"
#include "mt_err.h"

/* The services behind the gateway. Every function pointer is required except
 * metrics and ready (NULL: no extra metrics; always ready). */
typedef struct mt_gateway_backend {
    void *ctx;
    /* Bearer token -> principal; MT_EAUTH (or any error) means 401. */
    mt_status (*authenticate)(void *ctx, const char *token, mt_principal *out, mt_err *err);
    /* False for routes that need no authentication. */
    bool (*needs_auth)(void *ctx, const char *method, const char *path);
    /* Largest body the route accepts; larger bodies get 413 before handle. */
    size_t (*max_body)(void *ctx, const char *method, const char *path);
    /* Handles one request; always fills resp (json, raw or a file body, status,
     * object, route). The gateway releases resp (json_decref, free(raw),
     * close(raw_fd)). A file body (has_raw_fd) is sent with its Content-Length
     * in bounded pieces as the connection drains; its bytes are hashed as
     * they go and the connection is cut before the last piece if they do not
     * match raw_fd_sha256 (when given). */
    void (*handle)(void *ctx, const mt_request *req, mt_response *resp);
    /* Records one audit entry durably (the audit chain, or a local spool
     * while the store cannot take it). A failure (neither) is logged and
     * counted, and the request is answered 503 instead of its response:
     * nothing is served unaudited. */
    mt_status (*audit)(void *ctx, const char *actor, const char *action, const char *object,
                       int status, mt_err *err);
    /* Optional: group commit. n entries in ONE transaction, all or none.
     * With it the gateway sets mt_request.audit_later on the loop's requests
     * and a committer thread appends the entries handle did not write, many
     * requests' at once, before their replies are sent; a failed batch
     * (not recorded durably, as for audit) turns each of its replies into a
     * 503. MT_OK also means that every change committed (by any thread)
     * before the call is durable: the committer then runs no sync of its own
     * for the batch's needs_sync replies (see sync). */
    mt_status (*audit_batch)(void *ctx, const mt_audit_item *items, size_t n, mt_err *err);
    /* Optional, with audit_batch: makes the changes that mark covers durable
     * (mt_core_sync_to; mark: the highest resp.sync_mark of the replies). With it the gateway also sets
     * mt_request.defer_sync on the loop's requests, and a reply whose
     * resp.needs_sync is set waits on the committer for this sync (or for
     * the batch's, when its batch also recorded entries) instead of its own
     * fsync on the loop thread; a failed sync answers 500. */
    mt_status (*sync)(void *ctx, uint64_t mark, mt_err *err);
    /* Optional (both or none): the number of the last task event, and
     * whether the task of a parked request's path changed since a number
     * (mt_core_task_event_seq, mt_core_task_changed). With them a task event
     * handles again only the parked requests whose task changed. */
    uint64_t (*task_seq)(void *ctx);
    bool (*task_changed)(void *ctx, const char *path, uint64_t since);
    /* Prometheus text appended to /metrics; heap string or NULL. */
    char *(*metrics)(void *ctx);
    /* /readyz: true when the services can take requests. */
    bool (*ready)(void *ctx);
    /* Optional (all four or none): routes whose body is written to an upload
     * sink as it arrives instead of being buffered (POST /v1/objects). The
     * gateway hands the sink to handle in mt_request.upload and frees it
     * afterwards (upload_free removes what was not committed). */
    bool (*streams_body)(void *ctx, const char *method, const char *path);
    mt_status (*upload_begin)(void *ctx, mt_upload **out, mt_err *err);
    mt_status (*upload_write)(mt_upload *u, const uint8_t *data, size_t len, mt_err *err);
    void (*upload_free)(mt_upload *u);
    /* Optional: routes whose handle is slow (password hashing, sandboxed
     * checks, hashing a large file) and runs on the
     * gateway's worker threads instead of the event loop. handle must then be
     * safe to call from those threads concurrently with the loop's calls. */
    bool (*slow)(void *ctx, const char *method, const char *path);
    /* Optional: routes (neither slow nor streamed) whose authenticate and
     * handle run on the gateway's request threads instead of the event loop,
     * so that the loop does only TLS and HTTP while they run (the transit
     * operations). authenticate and handle must then be safe to call from
     * those threads concurrently with each other and with the loop's calls.
     * Their answers still go through the same audit (group commit), metrics
     * and reply path as every other request. */
    bool (*pooled)(void *ctx, const char *method, const char *path);
    /* Optional: the methods of path as an Allow value into out (cap bytes);
     * false when the backend has no route with that path. A request whose
     * method is not among them gets 405 with that Allow header, before any
     * token check (/healthz, /readyz and /metrics: GET). */
    bool (*allow)(void *ctx, const char *path, char *out, size_t cap);
} mt_gateway_backend;

typedef struct mt_gateway_config {
    const char *listen;   /* "HOST:PORT" or "[V6]:PORT"; NULL = "127.0.0.1:7443"; port 0 = any */
    const char *data_dir; /* required: tls/server-cert.pem and server.url are written here */
    const char *level;    /* TEE level for the start log line; NULL = "none" */
    EVP_PKEY *key;        /* required, borrowed: TLS private key */
    X509 *cert;           /* required, borrowed: TLS certificate */
    unsigned max_connections;   /* 0 = 256; more concurrent connections are closed at once */
    unsigned timeout_seconds;   /* idle/read/write timeout per connection; 0 = 60 */
    unsigned shutdown_grace_ms; /* how long in-flight responses may take at stop; 0 = 5000 */
    size_t max_body;            /* largest body of any route (upload limit); 0 = 1 GiB */
    size_t max_buffered;        /* request bodies held in memory, all connections; 0 = 64 MiB */
    unsigned slow_threads;      /* worker threads for slow routes; 0 = 2 */
    unsigned slow_queue;        /* slow requests waiting for a thread; more get 503; 0 = 64 */
    unsigned request_threads;   /* request threads for backend.pooled routes; 0 = 2 */
    unsigned max_parked;        /* requests held at once for a later answer; more get 503; 0 = 256 */
    bool handle_signals;        /* stop gracefully on SIGTERM and SIGINT */
    /* NULL: /metrics is open to anyone. Else /metrics answers only requests
     * with "Authorization: Bearer <metrics_token>" (compared by SHA-256 in
     * constant time; the gateway keeps only the hash) and 401 otherwise. */
    const char *metrics_token;
    /* Certificate renewal: every renew_interval_s seconds (0 = never) the
     * event loop calls renew for a fresh key and certificate (ownership
     * passes to the gateway), installs them for new connections (in-flight
     * ones keep theirs) and rewrites tls/server-cert.pem. On failure the old
     * certificate stays and the error is logged; the next try is at the next
     * interval. renew runs on the gateway's thread. */
    mt_status (*renew)(void *ctx, EVP_PKEY **key, X509 **cert, mt_err *err);
    void *renew_ctx;
    unsigned renew_interval_s;
    /* Optional, borrowed: issuer certificates sent after cert (an operator's
     * chain); NULL = none. */
    STACK_OF(X509) *chain;
    /* Optional: reloads the identity (key, certificate, chain: ownership
     * passes to the gateway; *chain may stay NULL) on SIGHUP (when
     * handle_signals) and on mt_gateway_reload_identity. New connections get
     * it, in-flight ones keep theirs, tls/server-cert.pem is rewritten. On
     * failure the current identity stays and the reason is logged. */
    mt_status (*reload)(void *ctx, EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain,
                        mt_err *err);
    void *reload_ctx;
    /* SIGHUP (with handle_signals): the event loop first calls on_hup (the
     * configuration reload; NULL = none), then reloads the identity (reload). */
    void (*on_hup)(void *ctx);
    void *on_hup_ctx;
    /* Graceful stop of the services (optional; drain and drained both or
     * neither). At the first stop request (SIGTERM/SIGINT or mt_gateway_stop)
     * the loop calls drain(drain_ctx) and goes on serving, polling
     * drained(drain_ctx) every 100 ms, until it is true or drain_grace_ms
     * passed; then it stops as mt_gateway_run says. A second SIGTERM or
     * SIGINT during that time stops at once. Both run on the gateway's thread. */
    void (*drain)(void *ctx);
    bool (*drained)(void *ctx);
    void *drain_ctx;
    unsigned drain_grace_ms;
} mt_gateway_config;

typedef struct mt_gateway mt_gateway;

/* Creates the TLS context, binds the listening socket and writes the
 * certificate and URL files. On error nothing is left bound and *out is NULL. */
mt_status mt_gateway_new(const mt_gateway_config *cfg, const mt_gateway_backend *backend,
                         mt_gateway **out, mt_err *err);

/* "https://HOST:PORT" of the bound socket (wildcard hosts become loopback). */
const char *mt_gateway_url(const mt_gateway *gw);
/* The bound TCP port. */
unsigned mt_gateway_port(const mt_gateway *gw);

/* Serves until mt_gateway_stop (or a signal, if enabled), then (after the
 * drain phase, when configured) stops accepting, lets in-flight responses
 * finish (grace period) and closes all connections. Returns MT_OK after a
 * graceful stop. */
mt_status mt_gateway_run(mt_gateway *gw, mt_err *err);

/* Asks a running (or about to run) gateway to stop. Async-signal-safe and
 * callable from any thread. */
void mt_gateway_stop(mt_gateway *gw);

/* Renews the certificate now (as the renewal timer does); gateway thread
 * only. MT_OK also counts the renewal. */
mt_status mt_gateway_renew_now(mt_gateway *gw, mt_err *err);
/* Reloads the TLS identity through the config's reload callback (what
 * SIGHUP does); gateway thread only. On failure the current identity stays
 * and err says why. MT_EINVAL when the gateway has no reload callback. */
mt_status mt_gateway_reload_identity(mt_gateway *gw, mt_err *err);
/* How many renewals succeeded since start. */
unsigned long mt_gateway_renewals(const mt_gateway *gw);
/* Tests only: the options (SSL_CTX_get_options) of the TLS context served
 * now; not while a renewal or reload may replace it. */
uint64_t mt_gateway_tls_options(const mt_gateway *gw);
/* Changes the connection limit (0 = the default); open connections over it
 * stay. Only on the gateway's thread (e.g. from the reload hook). */
void mt_gateway_set_max_connections(mt_gateway *gw, unsigned n);

/* Parked requests (GET /v1/tasks/{id}?wait=). When handle, on the loop
 * thread, answers with mt_response.park_ms > 0, the gateway holds the request
 * (at most max_parked at once; more are answered 503 with Retry-After, their
 * answer dropped) without blocking the loop. Each call of mt_gateway_wake
 * (any thread; wakes coalesce) makes the loop call handle again for every
 * held request (with backend.task_changed: only those whose task changed
 * since they were last handled): an answer without park_ms is sent, as is any answer once
 * park_ms (from the first answer) has passed (checked every 200 ms, as is a
 * client that closed its connection). At stop every held request is handled
 * once more and answered. Before it is handled again or answered, its
 * Bearer token is checked again (backend.authenticate, as a new request's):
 * a refused one (user disabled, token revoked or expired meanwhile) is
 * answered as a new request with that token would be (401, same text,
 * WWW-Authenticate) and audited as that refusal (actor "-"), not with the
 * task. Each is audited and counted once, as answered.
 * While nothing is held mt_gateway_wake only notes the wake (no write to the
 * loop's pipe); a request held right after such a wake is handled again at
 * once when its task changed since it was handled (or, without
 * backend.task_changed, when a wake was noted). */
void mt_gateway_wake(mt_gateway *gw);

/* Frees the gateway (closes the socket and every connection). NULL ok. */
void mt_gateway_free(mt_gateway *gw);

#endif
