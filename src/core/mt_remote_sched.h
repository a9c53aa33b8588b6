/* mt_remote_sched: the scheduler's side of remote executors (the separate
 * executor role, docs/design.md "Separate roles"). Instead of running tasks
 * on its own threads, the daemon hands them out as JSON to attested executors
 * (src/gateway/executor_api.c) and stores what they report.
 *
 * Claim: the oldest staged task is marked 'running' (as sched.c does) and
 * returned as a job document:
 *   {"task_id", "executor_type", "function", "arguments": {..},
 *    "limits": {"mem_bytes","cpu_seconds","wall_ms"},
 *    "module": null | {"ciphertext": b64, "key": hex, "plain_sha256": hex},
 *    "inputs": [{"slot", "ciphertext": b64 | "url": s, "key": hex, "sha256": hex}],
 *    "outputs": [{"slot", "key": hex, "file_id": id}]}
 * "sha256" is the input ciphertext's SHA-256 recorded at registration and
 * "plain_sha256" the module's registered SHA-256: the executor's worker
 * checks both before running anything. "file_id" binds each output to
 * (task_id, slot, file_id) in its mt_ff version 2 header.
 * The keys are plaintext file keys: the document only ever travels over the
 * mutually attested channel.
 * Report: {"task_id", "ok", "canceled", "return_value", "failure_reason",
 *    "log", "metering": {"cpu_ms","peak_rss_kb","wall_ms","bytes_in",
 *    "bytes_out","fuel_used"}, "outputs": {slot: {"ciphertext": b64,
 *    "sha256": hex, "size": n}}}
 * Outputs are written to the store's objects (hash and size checked) and the
 * outcome, metering and written flags are stored in one transaction, exactly
 * as for a local run. A task that is not 'running' is MT_ECONFLICT.
 *
 * Leases (docs/design.md "Executor leases"): every claim grants the executor
 * a lease of lease_ms and the task's next fencing token (the job's "lease":
 * {"fence", "ms"}); the token and the count of expired leases are stored
 * with the task under a MAC (integ key, "mesatee-task-lease/v3", also over
 * the claim's run_attempt, whether the row is a remote lease and a claim
 * nonce drawn afresh by every write of the MAC: the store is untrusted, a
 * rolled-back token or a local run made to look like a lease would let an
 * old holder in; every claim MACs the row: core_internal.h lease_claimed).
 * The lease's secret (the job's "lease": {"secret"}) binds the nonce too,
 * so no two leases share one, even after a row was put back whole to an
 * earlier state. The executor
 * renews it (mt_remote_sched_renew) while the task runs; a renewal or a
 * report whose token is not the task's current one is MT_ECONFLICT ("lease
 * lost"), so a late outcome from an old holder is never stored. A lease that
 * runs out (mt_remote_sched_sweep) puts the task back in the queue, keeping
 * its place, audited "task requeued (lease expired)"; the max_attempts-th
 * expiry fails it with the reason, an expiry after a cancellation request
 * cancels it. Renewal answers carry "cancel": the executor stops the task
 * and reports it canceled (remote cancel). A store outage does not expire
 * leases: after one this process saw (mt_db_outages) the sweep first gives
 * every lease live at its start one lease from then, on every node, and no
 * expiry happens before that (the renewals refused meanwhile never reached
 * the store).
 *
 * Ownership: the handle owns its own SQLite connection. Thread-safety: one
 * handle per thread; mt_remote_sched_health and mt_remote_sched_metrics
 * from any thread. */
#ifndef MT_REMOTE_SCHED_H
#define MT_REMOTE_SCHED_H

#include <jansson.h>

#include "mt_core.h"
#include "mt_err.h"
#include "remote_job.h"

typedef struct mt_remote_sched mt_remote_sched;

/* Largest report body accepted (outputs' ciphertext included). */
#define MT_REMOTE_MAX_REPORT (256u * 1024u * 1024u)

/* Opens a connection to the core's store and marks the core ready (tasks are
 * run by remote executors; mt_core_start_scheduler must not be called). */
mt_status mt_remote_sched_new(mt_core *core, mt_remote_sched **out, mt_err *err);
void mt_remote_sched_free(mt_remote_sched *rs);

/* Claims the next staged task: *job is a new JSON document, or NULL when the
 * queue is empty. */
mt_status mt_remote_sched_claim(mt_remote_sched *rs, json_t **job, mt_err *err);

/* Stores an executor's report (body as received, validated here). */
mt_status mt_remote_sched_report(mt_remote_sched *rs, const uint8_t *body, size_t len,
                                 mt_err *err);

#define MT_REMOTE_LEASE_MS_DEFAULT 30000u
#define MT_REMOTE_MAX_ATTEMPTS_DEFAULT 3u
/* Lease length (MT_RLEASE_MS_MIN..MAX ms) and how many claims a task gets
 * before an expired lease fails it (1..1000). MT_EINVAL otherwise. */
mt_status mt_remote_sched_set_leases(mt_remote_sched *rs, uint32_t lease_ms,
                                     uint32_t max_attempts, mt_err *err);
/* Renews a lease (body: mt_rrenew); *answer a new {"lease_ms", "cancel"}.
 * MT_ECONFLICT when the lease is lost. */
mt_status mt_remote_sched_renew(mt_remote_sched *rs, const uint8_t *body, size_t len,
                                json_t **answer, mt_err *err);
/* Handles every running task whose lease has run out (see above). */
mt_status mt_remote_sched_sweep(mt_remote_sched *rs, mt_err *err);

/* A raw transfer (remote_job.h mt_rxfer, docs/design.md "Executor
 * transfers"): checks that x's lease is the task's current one and answers in
 * path the file to stream: an input's (or, slot "", the module's) ciphertext
 * object, read by the caller; for an output, the staging name
 * <object>.up-<fence> the caller writes (atomically: temp file + rename) and
 * a report with "uploaded": true then moves over the object inside the
 * outcome's transaction. MT_ECONFLICT for a lost lease, MT_ENOTFOUND for a
 * slot the task does not have. */
mt_status mt_remote_sched_xfer(mt_remote_sched *rs, const mt_rxfer *x, bool output,
                               char path[4096 + 32], mt_err *err);
/* An output upload (POST /v1/executor/output) of size bytes under x's lease:
 * the lease and the slot are checked as by _xfer, then the bytes are
 * received by _write and completed by _commit (its SHA-256 in sha256_hex),
 * into the staging place of the objects' backend (untrusted_objects.h:
 * <object>.up-<fence> with --objects dir, rows in the database with db, so
 * that any node on it can take the report). _free discards an uncommitted
 * upload. _write and _commit need no lock of the caller's. */
typedef struct untrusted_upload untrusted_upload;
mt_status mt_remote_sched_upload_begin(mt_remote_sched *rs, const mt_rxfer *x, uint64_t size,
                                       untrusted_upload **out, mt_err *err);
mt_status mt_remote_sched_upload_write(untrusted_upload *u, const uint8_t *data, size_t len,
                                       mt_err *err);
mt_status mt_remote_sched_upload_commit(untrusted_upload *u, char sha256_hex[65], mt_err *err);
void mt_remote_sched_upload_free(untrusted_upload *u);
/* Called right before _commit (with the caller's lock, as _begin): x's
 * lease must still be the task's current one (else MT_ECONFLICT, counted
 * in mesatee_executor_reports_fenced_total; the caller frees the upload
 * uncommitted). The staging place is keyed by (task, fence) only, and once
 * the host put a task's row back (docs/threat-model.md "Executor leases")
 * one fence can belong to two leases with different secrets: without this
 * check an upload begun by the earlier holder completed into the place of
 * the later holder, whose report then failed on its digest. A check, not a
 * lock: a commit the host delays past both the rollback and the later
 * holder's own upload can still land there (availability only: the report
 * checks size and digest). */
mt_status mt_remote_sched_upload_recheck(mt_remote_sched *rs, const mt_rxfer *x, mt_err *err);

/* Length of a peer id: the first 16 hex digits of the SHA-256 of the
 * executor's TLS public key (SubjectPublicKeyInfo, DER), which the mutually
 * attested handshake proved the executor holds. */
#define MT_REMOTE_PEER_ID_LEN 16
/* Records an executor's health report (the body of its claim, decoded by
 * mt_rhello_decode; a non-present one is ignored) sent by peer (a peer id, see
 * above). Rows are keyed by (peer, name) and shown in /metrics with both
 * labels: the name is the executor's own claim, the peer id is what the
 * handshake proved, so one executor cannot overwrite another's row. */
void mt_remote_sched_health(const mt_rhello *h, const char *peer);
/* The executors' health and the lease counters as Prometheus text (heap;
 * "" when no remote scheduler runs in this process; NULL out of memory). */
char *mt_remote_sched_metrics(void);

#endif
