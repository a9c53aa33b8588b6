/* mt_builtin: internal API between mesatee-worker and the built-in functions.
 * Not part of the daemon's contract (that is mt_executor.h).
 *
 * A built-in runs inside the sandboxed worker, after the seccomp filter is
 * installed: it may compute and allocate memory, nothing else. It receives a
 * context giving its arguments (strings), its decrypted inputs by slot and a
 * way to write the plaintext of its outputs by slot (the worker encrypts it
 * under that output's key as it goes) and to append log lines.
 * Ownership: everything in the context is owned by the worker; a built-in
 * returns its return value as a heap string in *ret (freed by the worker).
 * Errors: a built-in returns non-MT_OK with an actionable message in err;
 * the worker reports it as the task's failure reason. */
#ifndef MT_BUILTIN_H
#define MT_BUILTIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_ff.h"

#define MT_BCTX_LOG_MAX (64 * 1024)

typedef struct mt_bctx_input {
    const char *slot;
    const uint8_t *data; /* plaintext, NUL-terminated (not counted in len) */
    size_t len;
    /* data itself, writable for len bytes, or NULL: the worker's own heap
     * buffer of this input alone (no other input's), which a built-in may
     * use as scratch memory once it no longer reads the input's bytes
     * (issue 13: pages already touched cost nothing more); nothing reads
     * the input after the built-in. The worker wipes len bytes and frees it. */
    uint8_t *scratch;
} mt_bctx_input;

typedef struct mt_bctx_output {
    const char *slot;
    mt_ff_writer *writer;  /* encrypts under the output's key into its fd */
    uint64_t plain_bytes;  /* plaintext written so far */
} mt_bctx_output;

/* A KeyStore private key named by a task argument (docs/keystore.md, "Keys in tasks"):
 * PKCS#8 DER, owned by the worker, wiped after the run. Never log it. */
typedef struct mt_bctx_key {
    const char *arg;       /* the argument that names it */
    const char *type;      /* KeyStore type ("rsa-2048", "ecdsa-p256", "ed25519", ...) */
    uint32_t version;
    const uint8_t *der;
    size_t der_len;
} mt_bctx_key;

typedef struct mt_bctx {
    const json_t *args;    /* object: name -> string */
    const mt_bctx_key *keys;
    size_t n_keys;
    mt_bctx_input *inputs;
    size_t n_inputs;
    mt_bctx_output *outputs;
    size_t n_outputs;
    char log[MT_BCTX_LOG_MAX + 1];
    size_t log_len;
    bool log_truncated;
    char detail[1024];     /* operator-only failure detail (see mt_bctx_detail) */
    uint64_t key_signs;    /* signatures made with KeyStore keys (metered, "key_signs") */
    uint64_t mem_limit;    /* the task's memory limit (the worker's RLIMIT_AS), bytes; 0 = unknown */
} mt_bctx;

/* Argument value by name, NULL if absent. */
const char *mt_bctx_arg(const mt_bctx *ctx, const char *name);
/* Input by slot name, NULL if absent. */
const mt_bctx_input *mt_bctx_input_find(const mt_bctx *ctx, const char *slot);
/* The KeyStore key named by argument arg, or NULL (the argument is absent,
 * or the scheduler loaded no key for it). */
const mt_bctx_key *mt_bctx_key_find(const mt_bctx *ctx, const char *arg);
/* Signs data with KeyStore key k with its type's default scheme: ECDSA with
 * SHA-256 (ASN.1 DER signature), Ed25519 (pure), RSA-PSS with SHA-256 (salt
 * = 32 bytes). *sig is heap (at most MT_BCTX_SIG_MAX bytes). MT_EINVAL when
 * k is not a signing key, MT_EINTERNAL when it does not decode. */
#define MT_BCTX_SIG_MAX 1024
mt_status mt_bctx_key_sign(const mt_bctx_key *k, const uint8_t *data, size_t len, uint8_t **sig,
                           size_t *sig_len, mt_err *err);
/* Appends plaintext to output idx (encrypted on the fly). */
mt_status mt_bctx_output_write(mt_bctx *ctx, size_t idx, const void *buf, size_t len,
                               mt_err *err);
/* Appends one line to the log (bounded at MT_BCTX_LOG_MAX; excess is dropped
 * and marked). Never log secrets or input data. */
void mt_bctx_log(mt_bctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records the detail behind a failure (SQLite's message, a parser's view of
 * the offending bytes): it never reaches the task's reason or log, which every
 * participant reads; the parent writes it to the operator's log only when the
 * operator enabled --log-task-errors. The last call wins. */
void mt_bctx_detail(mt_bctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef mt_status (*mt_builtin_fn)(mt_bctx *ctx, char **ret, mt_err *err);

/* The built-in called name, or NULL. The registry is in builtins.c; the test
 * worker (MT_WORKER_TEST_BUILTINS) adds the "__test_*" ones. */
mt_builtin_fn mt_builtin_find(const char *name);

/* The built-ins. */
mt_status mt_builtin_echo(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_psi(mt_bctx *ctx, char **ret, mt_err *err);

/* ---- PSI core, shared by the built-in, its tests, fuzzer and benchmark ---- */

#define MT_PSI_MAX_ID 1024

typedef struct mt_psi_input {
    const char *slot;     /* for error messages */
    const uint8_t *data;  /* newline-separated ids */
    size_t len;
    /* NULL, or data itself, writable for len bytes, 8-byte aligned, and no
     * other input's: the fast path keeps this input's parsed values (when
     * every line is 16 digits and a LF) and its partitioned values there
     * instead of in fresh memory, overwriting the input (the caller wipes
     * len bytes as before). Should the general path run after all, the
     * text of an input parsed there is put back first; a failure once the
     * partitioned values of an input not parsed there are in its buffer
     * (its text is then lost) is MT_ENOMEM. Overlapping scratch buffers:
     * MT_EINVAL. The caller must also not let one input's scratch overlap
     * another input's data (that input would read the values written
     * there): this is not checked (only scratch against scratch is).
     * mt_builtin_psi passes the worker's buffers (mt_bctx_input), one per
     * input, each its own input's data. */
    uint8_t *scratch;
} mt_psi_input;

/* Intersects n >= 2 id lists: lines split on LF (a CR before LF is dropped),
 * empty lines ignored, duplicates collapsed. *out receives the intersection
 * sorted bytewise, one id per line each followed by "\n" (heap; free(); may
 * be NULL when *count is 0), *count the number of ids. seed keys the hash
 * table (use a random one against crafted collisions).
 * Errors: MT_EINVAL naming the slot and line for an id longer than
 * MT_PSI_MAX_ID bytes, or naming two inputs whose scratch buffers overlap
 * (checked before anything is written); MT_ENOMEM. On error *out is NULL. */
mt_status mt_psi_compute(const mt_psi_input *in, size_t n, uint64_t seed, uint8_t **out,
                         size_t *out_len, size_t *count, mt_err *err);

/* mt_psi_compute with flags, for tests, the fuzzer and the benchmark to
 * compare the paths (the result is the same either way): MT_PSI_GENERAL
 * skips the fast path for ids of 16 hex digits (builtin_psi.c);
 * MT_PSI_FAST_ONLY fails with MT_EUNAVAIL where the fast path does not
 * apply; MT_PSI_ONE_THREAD keeps either path on the calling thread
 * (else large inputs take a helper thread too). */
#define MT_PSI_GENERAL 1u
#define MT_PSI_FAST_ONLY 2u
#define MT_PSI_ONE_THREAD 4u
mt_status mt_psi_compute_ex(const mt_psi_input *in, size_t n, uint64_t seed, unsigned flags,
                            uint8_t **out, size_t *out_len, size_t *count, mt_err *err);

/* The size of the intersection mt_psi_compute would give (*count; 0 on
 * error), same errors: the fast path counts its survivors and formats none;
 * the general path's result is wiped and freed. */
mt_status mt_psi_count(const mt_psi_input *in, size_t n, uint64_t seed, size_t *count,
                       mt_err *err);

/* The general path's hash of one id under seed (SipHash-1-3 keyed from the
 * seed), for tests. */
uint64_t mt_psi_id_hash(const uint8_t *id, size_t len, uint64_t seed);

#endif
