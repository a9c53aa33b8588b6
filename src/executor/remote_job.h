/* remote_job: the one reader of the job document a remote executor claims
 * from the scheduler over attested TLS (POST /v1/executor/claim, built by
 * src/core/remote_sched.c job_json).
 *
 * Document (every field required unless marked optional; no other keys):
 *   {"task_id":"<32 hex>", "executor_type":"builtin"|"wasm",
 *    "function":"<1..64 bytes>", "arguments":{"name":"string",..} (<= 64, each <= 64 KiB),
 *    "limits":{"mem_bytes":N, "cpu_seconds":N, "wall_ms":N},
 *    "module":null | {"key":"<64 hex>","ciphertext":"<base64>" | "stream":true,"size":N,
 *              "plain_sha256":"<64 hex>"?},
 *    "inputs":[{"slot":S,"key":K,"ciphertext":B64 | "url":"https://.." |
 *               "stream":true,"size":N, "sha256":H?}] (<= 64),
 *    "outputs":[{"slot":S,"key":K,"file_id":"<32 hex>"?}] (<= 64),
 *    "keys":[{"arg","type","version","der"}]? (KeyStore keys; job_codec.h),
 *    "lease":{"fence":N (1..2^53), "ms":N (100..3600000),
 *             "secret":"<64 hex>"}? (the executor's
 *            lease on the task: renew it every ms/3, present fence with
 *            every renewal and with the report)}
 * Slots satisfy mt_job_slot_valid and are unique within inputs and within
 * outputs; an input has exactly one of ciphertext, url and stream (a module
 * one of ciphertext and stream); "wasm" jobs have a module, "builtin" jobs
 * none. "stream": the executor fetches the ciphertext (size bytes,
 * 0..MT_RXFER_MAX_BYTES) as raw bytes with POST /v1/executor/input (mt_rxfer
 * below): no base64 and no size cap but the disk's.
 *
 * Ownership: mt_rjob_decode fills *out with heap memory released by
 * mt_rjob_free (which wipes keys and ciphertext); `arguments` is borrowed
 * from out->root. On failure *out holds nothing to free.
 * Errors: MT_EINVAL naming the field at fault (never quoting values),
 * MT_ENOMEM.
 * Thread-safety: none needed (no shared state).
 */
#ifndef MT_REMOTE_JOB_H
#define MT_REMOTE_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_executor.h"

typedef struct {
    char *slot;          /* "(module)" for the module */
    uint8_t key[32];
    uint8_t *ciphertext; /* decoded bytes, or NULL for a url or stream input */
    size_t ciphertext_len;
    bool stream;         /* fetched with POST /v1/executor/input */
    uint64_t size;       /* stream: its size in bytes */
    char *url;           /* https:// input, or NULL */
    char sha256[65];     /* input: expected ciphertext SHA-256 (hex), "" if absent */
    char plain_sha256[65]; /* module: expected plaintext SHA-256, "" if absent */
    char file_id[33];    /* output: the file it is bound to, "" if absent */
} mt_rjob_io;

typedef struct {
    json_t *root;
    const char *task_id, *executor_type, *function; /* borrowed from root */
    json_t *arguments;                               /* borrowed from root */
    uint64_t mem_bytes;
    uint32_t cpu_seconds, wall_ms;
    bool has_module;
    mt_rjob_io module;
    mt_rjob_io *inputs, *outputs;
    size_t n_inputs, n_outputs;
    mt_job_key *keys; /* KeyStore keys (owned, wiped by mt_rjob_free), or NULL */
    size_t n_keys;
    uint64_t lease_fence; /* 0: no "lease" (a scheduler before leases) */
    char lease_secret[65]; /* the claim's lease secret (64 hex), "" without a lease */
    uint32_t lease_ms;
} mt_rjob;

mt_status mt_rjob_decode(const char *buf, size_t len, mt_rjob *out, mt_err *err);
void mt_rjob_free(mt_rjob *j);

/* The report a remote executor sends back (POST /v1/executor/report, built by
 * the executor's ex_report), read by the scheduler:
 *   {"task_id":"<32 hex>", "fence":N?, "lease_secret":"<64 hex>"?, "ok":bool?,
 *    "canceled":bool?,
 *    "return_value":S?, "failure_reason":S?, "log":S? (each <= MT_JOB_RESULT_MAX, no NUL),
 *    "metering":{"cpu_ms","peak_rss_kb","wall_ms","bytes_in","bytes_out",
 *                "fuel_used","key_signs": non-negative integers, each optional}?,
 *    "outputs":{"<slot>":{"ciphertext":"<base64>" | "uploaded":true,
 *                         "sha256":"<64 hex>", "size":N}}? (<= 64 valid slot names)}
 * "uploaded": the ciphertext went before the report with POST
 * /v1/executor/output (mt_rxfer) under the same fencing token; size up to
 * MT_RXFER_MAX_BYTES (else MT_RREPORT_MAX_BYTES).
 * Every string is borrowed from out->root; outputs stay JSON (validated here,
 * decoded by the scheduler slot by slot). Release with mt_rreport_free. */
typedef struct {
    json_t *root;
    const char *task_id;
    bool ok, canceled;
    const char *return_value, *failure_reason, *log; /* NULL when absent */
    uint64_t cpu_ms, peak_rss_kb, wall_ms, bytes_in, bytes_out, fuel_used, key_signs;
    json_t *outputs; /* NULL when absent */
    uint64_t fence;  /* the lease's fencing token, 0 when absent */
    const char *lease_secret; /* 64 hex, NULL when absent */
} mt_rreport;

#define MT_RREPORT_MAX_BYTES (256u * 1024u * 1024u)

mt_status mt_rreport_decode(const char *buf, size_t len, mt_rreport *out, mt_err *err);
void mt_rreport_free(mt_rreport *r);

/* ---- raw transfers (docs/design.md "Executor transfers") ----
 * One input (or the module) or one output moves as raw bytes, streamed at
 * both ends (no base64, no buffering in memory, no cap but the disk's):
 *   POST /v1/executor/input?Q   empty body; answer 200, the ciphertext
 *   POST /v1/executor/output?Q  the ciphertext as body; answer 200
 *                               {"size":N,"sha256":"<64 hex>"}
 * Q, exactly in this order, nothing else:
 *   task=<32 hex>&fence=<1..2^53, decimal, no leading zero>&secret=<64 hex>
 *   &slot=<the slot name as lower-case hex, 2..256 digits; empty: the module>
 * The lease (task, fence, secret) must be the task's current one, as for a
 * renewal. mt_rxfer_parse is the one reader (fuzzed: fuzz/remote_lease.c). */
#define MT_RXFER_MAX_BYTES (1ull << 40) /* 1 TiB: the bound is the disk */
typedef struct {
    char task_id[33];
    uint64_t fence;
    char secret[65];
    char slot[129]; /* "" for the module; MT_JOB_SLOT_MAX (job_codec.h) + 1 */
} mt_rxfer;
/* q: the query, without the '?' (len bytes, not NUL-terminated). MT_EINVAL
 * naming the part at fault (never quoting it). */
mt_status mt_rxfer_parse(const char *q, size_t len, mt_rxfer *out, mt_err *err);
/* The query of x into out (cap bytes, NUL-terminated); false if it does not
 * fit or x is not valid. */
bool mt_rxfer_format(const mt_rxfer *x, char *out, size_t cap);

/* ---- leases and executor health (docs/design.md "Executor leases") ----
 * Small documents, each at most MT_RLEASE_MAX_BYTES, no other keys, read
 * into plain structs (no heap left on success or failure).
 *
 * Renewal (executor -> scheduler, POST /v1/executor/renew):
 *   {"task_id":"<32 hex>", "fence":N (1..2^53), "secret":"<64 hex>"} */
#define MT_RLEASE_MAX_BYTES 4096u
#define MT_RLEASE_FENCE_MAX 9007199254740992LL /* 2^53: exact in every JSON reader */
#define MT_RLEASE_MS_MIN 100
#define MT_RLEASE_MS_MAX 3600000
/* A lease secret: exactly 64 lower-case hex characters (256 bits, unguessable:
 * HMAC of the task and fencing token under the TEE key, docs/design.md). */
bool mt_rlease_secret_valid(const char *s);
typedef struct {
    char task_id[33];
    uint64_t fence;
    char secret[65];
} mt_rrenew;
mt_status mt_rrenew_decode(const char *buf, size_t len, mt_rrenew *out, mt_err *err);

/* Its answer (scheduler -> executor, 200):
 *   {"lease_ms":N (100..3600000), "cancel":bool}
 * cancel: the task's cancellation was requested; stop it and report it
 * canceled. A lost lease is answered 409 (no document). */
typedef struct {
    uint32_t lease_ms;
    bool cancel;
} mt_rrenew_answer;
mt_status mt_rrenew_answer_decode(const char *buf, size_t len, mt_rrenew_answer *out,
                                  mt_err *err);

/* The executor's health, the body of every claim (executor -> scheduler):
 *   {"executor":"<1..64 of [A-Za-z0-9._:-]>", "slots":N (1..1024), "busy":N (<= slots),
 *    "tasks_run":N?, "tasks_failed":N?, "last_error":S? (<= 200 bytes, printable ASCII)}
 * An empty body (an executor before health reports) is valid: *present false. */
#define MT_RHELLO_NAME_MAX 64
#define MT_RHELLO_ERROR_MAX 200
#define MT_RHELLO_SLOTS_MAX 1024
typedef struct {
    bool present;
    char executor[MT_RHELLO_NAME_MAX + 1];
    uint32_t slots, busy;
    uint64_t tasks_run, tasks_failed;
    char last_error[MT_RHELLO_ERROR_MAX + 1];
} mt_rhello;
mt_status mt_rhello_decode(const char *buf, size_t len, mt_rhello *out, mt_err *err);

#endif
