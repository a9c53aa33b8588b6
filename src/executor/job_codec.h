/* job_codec: the two messages between mt_executor_run (parent) and
 * mesatee-worker, both JSON over the worker's fd 3 (a socketpair).
 *
 * Job (parent -> worker; contains plaintext keys, wiped after use):
 *   {"v":1,"task_id":"..","function":"psi","arguments":{"k":"v",..},
 *    "inputs":[{"slot":"a","fd":4,"key":"<64 hex>","sha256":"<64 hex>"?} |
 *              {"slot":"a","url":"https://..","key":..,"sha256":..?}],
 *    "outputs":[{"slot":"r","fd":6,"key":"<64 hex>","file_id":"<32 hex>"?}],
 *    "limits":{"mem_bytes":N,"cpu_seconds":N,"max_input_bytes":N},
 *    "module":{"fd":5,"key":"<64 hex>","plain_sha256":"<64 hex>"?}}  ("wasm" only)
 *    "fetch_allow":"192.0.2.0/24,..."          (optional: outbound allow-list)
 *    "executor_type":"python"   (optional: the module is Python source; python_fn.h)
 *    "keys":[{"arg":"key","type":"rsa-2048","version":N,"der":"<hex>"}]
 *                          (optional: KeyStore private keys, PKCS#8 DER, for
 *                           the built-in; docs/keystore.md, "Keys in tasks")
 * "sha256": the input's ciphertext must hash to it (checked by the worker
 * before the function runs). "file_id": the output is written as an mt_ff
 * version 2 file bound to (task_id, slot, file_id). "plain_sha256": the
 * decrypted module must hash to it.
 * Registration check of a wasm module (no keys; the module is plaintext):
 *   {"v":1,"kind":"wasm_check","task_id":"","function":"","inputs":[],
 *    "outputs":[],"limits":{..},"module":{"fd":4}}
 * Inputs with "fd" are ciphertext files the parent opened (local paths and
 * checked file:// URLs); "url" is https:// only, fetched by the worker before
 * its sandbox closes. Output fds are the parent's O_EXCL temp files.
 *
 * Result (worker -> parent), at most MT_JOB_RESULT_MAX bytes:
 *   {"ok":true,"return_value":"..","log":"..","fetched_bytes":N,
 *    "outputs":{"r":{"plain_bytes":N}},"fuel_used":N}
 *   {"ok":false,"reason":"..","detail":"..","log":"..","fetched_bytes":N}
 * and for "wasm_check" {"ok":true} or {"ok":false,"reason":"..","status":N}
 * (N an mt_status). Both task forms also carry "trace":"stage=US,..." (the
 * worker's CLOCK_MONOTONIC stage stamps; the parent logs them only with
 * MESATEE_TRACE_TASKS=1, mt_trace.h, and only as [a-z_]=digits pairs).
 * "reason" is what every participant reads: an error class and positions,
 * never input-derived bytes. "detail" is the cause behind it (may hold such
 * bytes): the parent logs it only when the operator enabled
 * --log-task-errors, and never stores it.
 *
 * mt_wjob_decode is the one bounded reader of the job; it is fuzzed
 * (fuzz/job_decode.c). Thread-safety: reentrant. */
#ifndef MT_JOB_CODEC_H
#define MT_JOB_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_executor.h"

#define MT_JOB_MAX (1024 * 1024)
#define MT_JOB_RESULT_MAX (1024 * 1024)
#define MT_JOB_MAX_SLOTS 64
#define MT_JOB_SLOT_MAX 128
#define MT_JOB_FIRST_FD 3  /* fd 3 is the channel; data fds follow */
#define MT_JOB_MAX_FD 1023

typedef struct mt_wjob_io {
    const char *slot;   /* points into the decoded JSON */
    int fd;             /* -1 for url inputs */
    const char *url;    /* https:// or NULL */
    uint8_t key[32];
    const char *sha256;       /* input: expected ciphertext SHA-256 (hex) or NULL */
    const char *plain_sha256; /* module: expected plaintext SHA-256 (hex) or NULL */
    const char *file_id;      /* output: file id the output is bound to, or NULL */
} mt_wjob_io;

typedef struct mt_wjob_key {
    const char *arg, *type; /* point into the decoded JSON */
    uint32_t version;
    uint8_t *der;           /* heap, wiped by mt_wjob_free */
    size_t der_len;
} mt_wjob_key;

typedef struct mt_wjob {
    json_t *root;       /* owns every string above */
    const char *task_id, *function;
    const char *fetch_allow; /* https:// allow-list (CIDRs, comma-separated) or NULL */
    const json_t *arguments;
    mt_wjob_io *inputs;
    size_t n_inputs;
    mt_wjob_io *outputs;
    size_t n_outputs;
    uint64_t mem_bytes, max_input_bytes;
    uint32_t cpu_seconds;
    bool has_module;    /* "wasm": module is the encrypted module (slot "(module)") */
    mt_wjob_io module;
    bool wasm_check;    /* kind "wasm_check": module.fd is the plaintext module, no key */
    bool python;        /* "executor_type":"python" (run), or kind "python_check" (with
                           wasm_check set: the same shape) */
    mt_wjob_key *keys;  /* KeyStore keys (at most MT_JOB_MAX_KEYS) */
    size_t n_keys;
} mt_wjob;

/* Encodes the job for the worker; in_fds[i] is the worker-side fd of input i
 * (-1: pass its url), out_fds[i] that of output i, module_fd that of the
 * wasm module (used when job->module is set). Heap string holding keys:
 * the caller wipes and frees it. NULL with err set on failure. */
char *mt_wjob_encode(const mt_job *job, const int *in_fds, const int *out_fds, int module_fd,
                     mt_err *err);

/* Encodes a "wasm_check" job: the worker decodes and validates the plaintext
 * module on its fd module_fd (mt_wasm_fn_check) and reports the outcome. */
char *mt_wjob_encode_wasm_check(int module_fd, uint64_t mem_bytes, uint32_t cpu_seconds,
                                mt_err *err);
/* The same for kind "wasm_check" or "python_check" (python_fn.h: the worker
 * compiles the source). */
char *mt_wjob_encode_check(const char *kind, int module_fd, uint64_t mem_bytes,
                           uint32_t cpu_seconds, mt_err *err);

/* Decodes and validates a job. On error *out is zeroed (nothing to free). */
mt_status mt_wjob_decode(const char *buf, size_t len, mt_wjob *out, mt_err *err);
/* Wipes a decoded job's keys (file, output and module keys, KeyStore keys'
 * DER, their hex copies in the JSON tree) and keeps everything else (slot
 * names, fds): the worker calls it before sending its result. NULL-safe,
 * idempotent. */
void mt_wjob_wipe_keys(mt_wjob *j);
/* Frees a decoded job and wipes its keys. NULL-safe, idempotent. */
void mt_wjob_free(mt_wjob *j);

/* KeyStore keys in the remote executor's job document (remote_job.h, built
 * by src/core/remote_sched.c): the same entries as the worker job's "keys".
 * mt_job_keys_json: a new array (NULL when out of memory); the caller wipes
 * it with mt_job_keys_json_wipe before releasing it. mt_job_keys_decode:
 * at most MT_JOB_MAX_KEYS entries, each naming an argument present in
 * arguments, once; *out is heap (arg, type, der owned; ref NULL), released
 * with mt_job_keys_free, which wipes the keys. On error nothing to free. */
json_t *mt_job_keys_json(const mt_job_key *keys, size_t n);
void mt_job_keys_json_wipe(json_t *arr);
mt_status mt_job_keys_decode(const json_t *arr, const json_t *arguments, mt_job_key **out,
                             size_t *n, mt_err *err);
void mt_job_keys_free(mt_job_key *keys, size_t n);

/* True if s is an acceptable slot name: 1..128 bytes, printable ASCII, no '/'. */
bool mt_job_slot_valid(const char *s);

#endif
