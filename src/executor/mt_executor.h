/* mt_executor: runs one task in a fresh, sandboxed worker process.
 *
 * The daemon (trusted) calls mt_executor_run; it starts a `mesatee-worker`
 * process with a clean environment (forked by the worker's zygote, or
 * posix_spawn: mt_executor_set_worker_start), sends it the job over a
 * socketpair, and waits.
 * The worker: applies rlimits (address space, CPU time, open files, no core
 * files), fetches and decrypts inputs (local ciphertext paths, or file:// and
 * https:// URLs via untrusted_fetch before the sandbox closes), installs a
 * seccomp-bpf allow-list (no open, no socket, no exec), runs the function,
 * encrypts every output under its owner's key in the mt_ff format, and reports
 * a JSON result. The parent enforces the wall-clock timeout and cancellation
 * by SIGKILL, kills a worker still alive with its memory once its result
 * channel is closed (its result then decides; docs/design.md "Supervision"),
 * and meters CPU time and peak memory with wait4() (or the zygote's report).
 *
 * Ownership: mt_job is borrowed. mt_job_result fields are owned by the result
 * and released with mt_job_result_clear.
 * Errors: mt_executor_run returns MT_OK whenever the job ran to an outcome
 * (success, failure, crash, timeout, cancel: see result->ok / failure_reason);
 * a non-OK status means the worker could not be started at all.
 * Thread-safety: mt_executor_run may be called from several threads at once. */
#ifndef MT_EXECUTOR_H
#define MT_EXECUTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mt_err.h"

typedef struct mt_job_input {
    char *slot;        /* input slot name */
    char *path;        /* local ciphertext file, or NULL */
    char *url;         /* file:// or https:// when path is NULL */
    uint8_t key[32];   /* file key (plaintext key, inside the TEE only) */
    /* Expected SHA-256 (64 lower-case hex) of the ciphertext as recorded at
     * registration; "" = not checked. The worker hashes the ciphertext it
     * reads and fails the task ("integrity") on a mismatch before the
     * function runs, so no output is produced from a substituted input. */
    char sha256[65];
    /* job->module only: expected SHA-256 of the decrypted module (the hash
     * participants see and approve); "" = not checked. */
    char plain_sha256[65];
} mt_job_input;

typedef struct mt_job_output {
    char *slot;        /* output slot name */
    char *path;        /* final path of the encrypted output object */
    uint8_t key[32];   /* owner's key the output is encrypted under */
    /* Output file id (32 hex). When set (and the task id is an id), the
     * worker writes an mt_ff version 2 file bound to (task, slot, file id);
     * NULL writes an unbound version 1 file (tests). */
    char *file_id;
} mt_job_output;

/* A KeyStore key a built-in signs with (docs/keystore.md, "Keys in tasks"): named by the
 * task argument arg (approved by every participant), loaded by the scheduler
 * after it checked that the key's owner takes part in the task. The private
 * key travels to the worker in the job like a file key, never to disk. */
typedef struct mt_job_key {
    char *arg;         /* the argument naming the key ("key") */
    char *type;        /* KeyStore type: "rsa-2048", "ecdsa-p256", "ed25519", ... */
    uint32_t version;  /* key version used */
    uint8_t *der;      /* PKCS#8 DER private key (secret: wiped on free) */
    size_t der_len;
    char *ref;         /* "OWNER/NAME" for the audit log; not sent to the worker */
} mt_job_key;

#define MT_JOB_MAX_KEYS 4
#define MT_JOB_KEY_MAX_DER 8192

typedef struct mt_job_limits {
    uint64_t mem_bytes;    /* RLIMIT_AS of the worker; 0 = 2 GiB */
    uint32_t cpu_seconds;  /* RLIMIT_CPU; 0 = 600 */
    uint32_t wall_ms;      /* wall clock; 0 = 900000 */
    uint64_t max_input_bytes; /* per input ciphertext; 0 = 4 GiB */
} mt_job_limits;

typedef struct mt_job {
    const char *task_id;
    const char *executor_type;  /* "builtin" or "wasm" */
    const char *function;       /* built-in name: "echo", "psi"; "main" for wasm */
    const mt_job_input *module; /* "wasm": the encrypted module (path + key); else NULL */
    json_t *arguments;          /* object: name -> string value */
    mt_job_input *inputs;
    size_t n_inputs;
    mt_job_output *outputs;
    size_t n_outputs;
    mt_job_limits limits;
    mt_job_key *keys;           /* KeyStore keys for the built-in, or NULL */
    size_t n_keys;
    const char *worker_path;    /* path of mesatee-worker */
    const char *file_url_root;  /* file:// URLs must be under this dir; NULL = refuse */
    const char *fetch_allow;    /* https:// inputs: comma-separated CIDRs reachable despite
                                   the default deny list (serve --fetch-allow); NULL = none */
} mt_job;

typedef struct mt_job_result {
    bool ok;
    bool canceled;
    char *return_value;    /* function's return value (text), when ok */
    char *failure_reason;  /* when !ok: actionable reason */
    char *log;             /* worker log lines (bounded, 64 KiB) */
    json_t *outputs;       /* slot -> {"size":n,"sha256":"hex"} of the ciphertext */
    uint64_t cpu_ms, peak_rss_kb, wall_ms, bytes_in, bytes_out;
    uint64_t fuel_used;    /* "wasm": instructions charged to the module's fuel */
    uint64_t key_signs;    /* signatures made with the job's KeyStore keys: the
                              worker's (remote: the executor's) statement; a
                              compromised worker can under-report it */
} mt_job_result;

/* The most KeyStore signatures one task may claim (2^32): a report above it
 * is refused (the worker's: the task fails; a remote executor's: 400), so
 * the sums over tasks (GET /v1/functions/{id}/stats, /metrics) stay far
 * from INT64 overflow. */
#define MT_JOB_KEY_SIGNS_MAX 4294967296LL

/* Operator's log of task failure details (off by default; serve/executor
 * --log-task-errors, or MESATEE_LOG_TASK_ERRORS=1 in the daemon's
 * environment). A failure reason, which every participant reads, carries only
 * an error class and positions; the detail behind it (SQLite's message, curl's
 * text, errno and paths) may hold input-derived bytes and goes only to the
 * daemon's stderr log, and only when this is on. Thread-safe. */
void mt_executor_set_log_task_errors(bool on);
bool mt_executor_log_task_errors(void);

mt_status mt_executor_run(const mt_job *job, bool (*should_cancel)(void *), void *arg,
                          mt_job_result *result, mt_err *err);
void mt_job_result_clear(mt_job_result *r);

/* How a task's worker process starts (serve/executor --worker-start,
 * docs/design.md "Worker start"): forked by a zygote that has the worker
 * binary loaded (the default), or posix_spawn of the worker executable per
 * task. Both apply the same sandbox before the worker reads its job's inputs.
 * Process-wide; thread-safe. */
typedef enum { MT_WORKER_START_ZYGOTE = 0, MT_WORKER_START_SPAWN = 1 } mt_worker_start;
void mt_executor_set_worker_start(mt_worker_start mode);
mt_worker_start mt_executor_worker_start(void);
/* "zygote" or "spawn"; false for anything else (*out untouched). */
bool mt_worker_start_parse(const char *s, mt_worker_start *out);
/* A zygote is replaced after this many task starts (its children share its
 * memory layout and stack canary; docs/design.md "Worker start"); 0 sets
 * the default. With 1 (one task per zygote) the next zygote is started as
 * soon as the previous one took its task. Thread-safe. */
#define MT_ZYGOTE_MAX_TASKS_DEFAULT 256
#define MT_ZYGOTE_MAX_TASKS_MAX 1000000
void mt_executor_set_zygote_max_tasks(uint64_t n);
/* Starts the zygote of worker_path now (serve start: the first task does not
 * pay for it) unless it runs; errors as mt_executor_run's start would give. */
mt_status mt_executor_zygote_prestart(const char *worker_path, mt_err *err);
/* Starts both zygotes of worker_path (native and python, zygote.h). The
 * running native zygote of worker_path (the one that forks built-in and wasm
 * tasks), or 0 (tests, diagnostics). */
pid_t mt_executor_zygote_pid(const char *worker_path);

/* True if name is a built-in function ("echo", "psi"). */
bool mt_builtin_exists(const char *name);

/* Registration check of a "wasm" function's module: valid, imports only the
 * mesatee host API, exports "_start" and "memory" (see wasm_fn.h). The
 * module is never parsed in the calling process: a mesatee-worker started
 * from worker_path (kind "wasm_check" job, the module on a sealed memfd)
 * decodes and validates it under the worker's rlimits (1 GiB address
 * space, 10 s CPU, 60 s wall clock) and seccomp filter, and reports. Errors:
 * MT_EINVAL (invalid, or the check exhausted those limits) or MT_ETOOBIG
 * (size) with a message naming the section and offset, or the import;
 * MT_EUNAVAIL when worker_path is NULL; MT_ENOTFOUND/MT_EIO/MT_EINTERNAL when
 * the worker cannot be started or answers nonsense. */
mt_status mt_executor_wasm_check(const char *worker_path, const uint8_t *module, size_t len,
                                 mt_err *err);
/* Registration check of a "python" function's source (python_fn.h): the
 * worker started from worker_path (kind "python_check") starts CPython,
 * closes its seccomp filter and compiles the source; a syntax error (or
 * source that is not UTF-8) is MT_EINVAL "python: line L, column C: MSG".
 * Same limits and other errors as mt_executor_wasm_check. The daemon never
 * embeds Python. */
mt_status mt_executor_python_check(const char *worker_path, const uint8_t *source, size_t len,
                                   mt_err *err);
/* Largest module accepted, in bytes. */
size_t mt_executor_wasm_max_bytes(void);

#endif
