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
 * Ownership: the handle owns its own SQLite connection. Thread-safety: one
 * handle per thread. */
#ifndef MT_REMOTE_SCHED_H
#define MT_REMOTE_SCHED_H

#include <jansson.h>

#include "mt_core.h"
#include "mt_err.h"

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

#endif
