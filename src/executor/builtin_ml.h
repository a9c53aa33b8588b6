/* builtin_ml: the machine-learning built-ins on numeric tables (gradient
 * boosted trees on XGBoost, k-means, PCA) and the loader they share.
 *
 * The loader pools the rows of several CSV inputs (slot-name order, columns
 * found by name in each input, any column order) into one dense row-major
 * matrix of features, plus an optional label column. Numbers follow the
 * strict rules of builtin_csv.h; errors name the slot, line and column and
 * never quote a value.
 *
 * Ownership: an ml_matrix owns its arrays and name copies; free it with
 * ml_matrix_free (a zeroed matrix is a no-op). Thread-safety: none needed
 * (one job per worker process). */
#ifndef BUILTIN_ML_H
#define BUILTIN_ML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_builtin.h"
#include "mt_err.h"

#define ML_MAX_FEATURES 4096

typedef struct ml_load_opts {
    const char *label;       /* label column (name or 1-based number in the first
                                input), or NULL for none */
    const char *features;    /* comma-separated names, or NULL: every column of the
                                first input except the label and exclude */
    const char *exclude;     /* a column left out of the default features (the id
                                column), or NULL */
    bool allow_missing;      /* empty feature fields become NaN instead of an error */
    bool f32;                /* store features as float (xf) instead of double (xd) */
    const size_t *idx;       /* inputs to read (indices into ctx->inputs), in order */
    size_t n_idx;
} ml_load_opts;

typedef struct ml_matrix {
    size_t n, p;             /* rows, features */
    double *xd;              /* n * p, when !f32 */
    float *xf;               /* n * p, when f32 */
    double *y;               /* n labels when a label was asked for */
    char **names;            /* p feature names */
    char *label;             /* label name or NULL */
    char **ids;              /* n copies of the exclude column's fields when
                                want_ids was set in ml_load, else NULL */
    /* where each row came from, for messages: slot name and line */
    const char **row_slot;
    size_t *row_line;
    size_t *label_col;       /* n: 1-based label column of each row's input */
} ml_matrix;

/* Loads the inputs opts->idx[0..n_idx) into *m (see the header comment).
 * want_ids copies the opts->exclude column of each row into m->ids.
 * Errors: MT_EINVAL with slot, line and column; MT_ENOMEM. On error *m is
 * freed (zeroed). */
mt_status ml_load(mt_bctx *ctx, const ml_load_opts *opts, bool want_ids, ml_matrix *m,
                  mt_err *err);
void ml_matrix_free(ml_matrix *m);

/* Input indices in slot-name order, without the input named skip (may be
 * NULL); *n receives the count. Heap array (free()); NULL on ENOMEM. */
size_t *ml_inputs_except(const mt_bctx *ctx, const char *skip, size_t *n);

/* Index of the output slot named name, or -1. */
long ml_output_find(const mt_bctx *ctx, const char *name);

/* Writes b (complete content) to output idx. */
struct mt_sbuf;
mt_status ml_sbuf_write(mt_bctx *ctx, size_t idx, const struct mt_sbuf *b, mt_err *err);

/* Deterministic PRNG (splitmix64) for seeded algorithms. */
static inline uint64_t ml_rand_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
/* Uniform double in [0, 1). */
static inline double ml_rand_unit(uint64_t *s)
{
    return (double)(ml_rand_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* The gbdt built-in's LIBSVM reader, as the fuzz target (fuzz/libsvm_parse.c)
 * sees it: parses data as input slot "slot" and, on success, hands the
 * parsed rows to check (CSR: indptr[0..n], indices/values[0..nnz], y[0..n],
 * max_col = 1 + largest index) before freeing them. The reason on failure
 * names the slot, line and column only. */
typedef struct mt_libsvm_view {
    size_t n, nnz, max_col;
    const size_t *indptr;
    const unsigned *indices;
    const float *values, *y;
} mt_libsvm_view;
mt_status mt_libsvm_parse_view(const char *slot, const uint8_t *data, size_t len,
                               void (*check)(const mt_libsvm_view *v, void *u), void *u,
                               mt_err *err);

/* The built-ins (registered in builtins.c). */
mt_status mt_builtin_gbdt_train(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_gbdt_predict(mt_bctx *ctx, char **ret, mt_err *err);
/* gbdt_predict with an injected fault, for the test worker's built-ins
 * __test_gbdt_predict / __test_gbdt_predict_differs /
 * __test_gbdt_predict_fails (builtin_test.c, mesatee-worker-test only;
 * gbdt_predict itself passes MT_GBDT_FAULT_NONE): none (MT_GBDT_TEST_NAMED),
 * the first-rows check sees a difference, or our full prediction fails with
 * MT_ENOMEM after the check passed; either way XGBoost's predictor predicts.
 * Every value but MT_GBDT_FAULT_NONE also names the engine in the task log
 * (so tests see which predicted); gbdt_predict does not: which engine
 * predicts is a bit about the model and the first rows of the data, and
 * every participant reads the log. */
typedef enum mt_gbdt_fault {
    MT_GBDT_FAULT_NONE,
    MT_GBDT_TEST_NAMED,
    MT_GBDT_FAULT_CHECK_DIFFERS,
    MT_GBDT_FAULT_PREDICT_FAILS,
} mt_gbdt_fault;
mt_status mt_builtin_gbdt_predict_fault(mt_bctx *ctx, mt_gbdt_fault fault, char **ret, mt_err *err);
/* onnx_infer (builtin_onnx.c): linked into the worker executables only (MT_WORKER_NN) */
mt_status mt_builtin_onnx_infer(mt_bctx *ctx, char **ret, mt_err *err);
/* image_classify, face_detect (builtin_image.c): worker executables only, as onnx_infer */
mt_status mt_builtin_image_classify(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_face_detect(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_kmeans(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_pca(mt_bctx *ctx, char **ret, mt_err *err);

#endif
