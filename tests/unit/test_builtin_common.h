/* Shared helpers of the built-in tests (test_builtin_*.c): run a built-in
 * through mt_executor_run with the real mesatee-worker, inputs encrypted with
 * mt_ff_encrypt under per-slot keys, outputs decrypted for comparison. */
#ifndef TEST_BUILTIN_COMMON_H
#define TEST_BUILTIN_COMMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "mt_executor.h"

typedef struct tb_in {
    const char *slot;
    const char *data; /* plaintext, NUL-terminated */
} tb_in;

#define TB_MAX_OUT 8

typedef struct tb_run {
    mt_job_result r;
    char *out[TB_MAX_OUT]; /* decrypted outputs (NUL-terminated) when r.ok */
    size_t out_len[TB_MAX_OUT];
} tb_run;

/* cmocka group setup/teardown: a fresh temporary directory per test. */
int tb_setup(void **state);
int tb_teardown(void **state);
const char *tb_dir(void);

/* {"k1":"v1",...} from NULL-terminated key, value pairs; NULL when none. */
json_t *tb_args(const char *k, ...);

/* Runs fn (args are consumed) over the inputs with outputs named outs.
 * Asserts the executor ran; on failure, asserts that no output file was
 * left behind. */
void tb_exec(const char *fn, json_t *args, const tb_in *in, size_t n_in,
             const char *const *outs, size_t n_out, tb_run *run);
void tb_run_clear(tb_run *run);
/* KeyStore keys (borrowed) that the next tb_exec puts in its job, as the
 * scheduler does for a task naming one (keyuse.c); NULL, 0 clears. */
void tb_set_keys(mt_job_key *keys, size_t n);
/* The worker executable of the next tb_exec (e.g. mesatee-worker-test for
 * its "__test_*" built-ins); MT_WORKER_PATH after it. */
void tb_set_worker(const char *path);

/* Runs and asserts success; returns nothing, outputs in run. */
void tb_expect_ok(const char *fn, json_t *args, const tb_in *in, size_t n_in,
                  const char *const *outs, size_t n_out, tb_run *run);
/* Runs and asserts failure with a reason containing want. */
void tb_expect_fail(const char *fn, json_t *args, const tb_in *in, size_t n_in,
                    const char *const *outs, size_t n_out, const char *want);

/* Writes s to dir/name as plaintext (for cross-checks with other tools). */
char *tb_write_plain(const char *name, const char *s);
/* True if the shell command exits 0 (stdout/stderr to /dev/null). */
bool tb_shell_ok(const char *cmd);
/* Runs a shell command and returns its stdout (heap), NULL if it fails. */
char *tb_shell_out(const char *cmd);

#endif
