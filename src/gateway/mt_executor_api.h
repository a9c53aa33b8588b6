/* mt_executor_api: the scheduler's internal API for remote executors
 * (docs/design.md "Separate roles"). A second listener, separate from the
 * public gateway, speaking mutually attested TLS (mt_atls.h): the client
 * must present an RA-TLS certificate whose evidence satisfies the
 * executor-role policy, checked inside the handshake; a refused peer never
 * gets a response. Routes (JSON bodies, see mt_remote_sched.h):
 *   POST /v1/executor/claim   body: the executor's health (mt_rhello, may be
 *                             empty); 200 job document (with its lease), 204
 *                             when no task is staged
 *   POST /v1/executor/health  body mt_rhello; 200 {"stored": true} (sent
 *                             after each task: /metrics stays current)
 *   POST /v1/executor/renew   body mt_rrenew; 200 {"lease_ms", "cancel"},
 *                             409 when the lease is lost
 *   POST /v1/executor/input?Q  (Q: remote_job.h mt_rxfer) empty body; 200
 *                             with an input's (or the module's) ciphertext
 *                             as raw bytes, streamed from its object
 *   POST /v1/executor/output?Q body: an output's ciphertext, streamed to its
 *                             staging file; 200 {"size", "sha256"}; both
 *                             transfers 409 when Q's lease is not current
 *   POST /v1/executor/report  200 {"stored": true}; 409 when the report's
 *                             fencing token is not the current lease;
 *                             errors {"error": msg,
 *                             "code": name} with mt_status_http's status
 * A thread of its own expires leases (mt_remote_sched_sweep) every 250 ms.
 * One request per connection. Limits (docs/threat-model.md "Resource
 * exhaustion"): at most MT_EXECUTOR_API_MAX_CONNS connections are served at
 * once, each on its own thread (more are closed at accept); a connection
 * must finish its handshake within MT_EXECUTOR_API_HANDSHAKE_S and its
 * request within MT_EXECUTOR_API_REQUEST_S of the handshake, else the
 * listener shuts its socket (a slow or silent peer, or one announcing more
 * than it sends, cannot hold a connection or its buffer); bodies (at most
 * MT_REMOTE_MAX_REPORT) are read only after the handshake authenticated the
 * peer, and their announced length is reserved against a total of
 * max_buffered bytes across connections first: over it the answer is 503
 * (MT_EUNAVAIL) and the body is discarded as it arrives, never buffered.
 * Ownership: start borrows tee, policy and core (they must outlive stop).
 * Writes <data_dir>/executor.url ("https://127.0.0.1:PORT"). */
#ifndef MT_EXECUTOR_API_H
#define MT_EXECUTOR_API_H

#include "mt_core.h"
#include "mt_err.h"
#include "mt_policy.h"
#include "mt_remote_sched.h"
#include "mt_tee.h"

typedef struct mt_executor_api mt_executor_api;

#define MT_EXECUTOR_API_MAX_CONNS 16
#define MT_EXECUTOR_API_HANDSHAKE_S 15
#define MT_EXECUTOR_API_REQUEST_S 600
/* Default total of body bytes buffered across connections (two reports). */
#define MT_EXECUTOR_API_MAX_BUFFERED ((size_t)2 * MT_REMOTE_MAX_REPORT)

/* Binds listen ("HOST:PORT", port 0 = any), makes a TLS identity and starts
 * serving on a new thread. max_buffered: the total of body bytes buffered
 * across connections (0: MT_EXECUTOR_API_MAX_BUFFERED); lease_ms and
 * max_attempts: mt_remote_sched_set_leases (0: the defaults); renew_s: a new
 * TLS key and certificate with fresh evidence (mt_tee_tls_identity) every
 * renew_s seconds for new connections (0: never; open ones keep theirs; a
 * failed renewal is logged and the current identity kept). tee and policy
 * are borrowed until mt_executor_api_stop. On error nothing is left running. */
mt_status mt_executor_api_start(const char *listen, const char *data_dir, mt_tee *tee,
                                const mt_policy *policy, mt_core *core, size_t max_buffered,
                                uint32_t lease_ms, uint32_t max_attempts, unsigned renew_s,
                                mt_executor_api **out, mt_err *err);
/* Stops the thread and frees everything (NULL ok). */
void mt_executor_api_stop(mt_executor_api *api);

/* The complete HTTP/1.1 error answer the API sends for code: status from
 * mt_status_http (403 permission, 429 quota, ...), body {"error": msg,
 * "code": mt_status_name(code)}. Heap string (free()), NULL if out of memory. */
char *mt_executor_api_error_response(mt_status code, const char *msg);

#endif
