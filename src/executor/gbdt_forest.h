/* gbdt_forest: gbdt_predict's own tree-ensemble predictor, bit-identical to
 * XGBoost 1.7's CPU predictor for the models it accepts, and faster (flat
 * complete trees, blocks of rows walked level by level).
 *
 * Contract of mt_gbdt_forest_parse (a parser of untrusted-ish bytes):
 *  - input: the UBJSON of a model as XGBoost 1.7 writes it
 *    (XGBoosterSaveModelToBuffer with {"format": "ubj"}) after XGBoost has
 *    loaded the model itself (so the user's model file is parsed by XGBoost
 *    first); any bytes are safe to pass (libFuzzer target
 *    fuzz/gbdt_forest.c): only the subset XGBoost's writer produces is read
 *    (objects, counted arrays, typed arrays, strings, integers, f32), every
 *    length is checked against the bytes left before use, nesting is
 *    bounded (16), keys we read must be present once, every node index and
 *    feature index is range checked; float values are the f32 bits XGBoost
 *    holds (no decimal conversion).
 *  - accepted: booster "gbtree" with one output (num_class 0, num_target 1),
 *    every tree_info 0, objective "binary:logistic" (base_score in (0, 1))
 *    or "reg:squarederror"; numerical splits only (no categorical split,
 *    no categories), every tree reachable from its root a proper tree (each
 *    child in range, visited once: no cycle, no sharing), right child =
 *    left child + 1 (XGBoost's predictor walks to left + 1), depth at most
 *    MT_GBDT_FOREST_MAX_DEPTH, split features below n_features (which must
 *    equal the model's num_feature), finite split values and leaf values.
 *    The complete flattened trees hold at most MT_GBDT_FOREST_MAX_SLOTS
 *    leaves in all.
 *  - anything else: MT_EINVAL with a fixed reason (no byte of the input) in
 *    err; the caller then predicts with XGBoost itself. MT_ENOMEM on
 *    allocation failure.
 *
 * Semantics reproduced (XGBoost 1.7.4: src/predictor/cpu_predictor.cc,
 * predict_fn.h, src/learner.cc, src/objective/regression_loss.h,
 * src/common/math.h): a split goes left when fvalue < split_condition, to
 * the default child when the value is NaN (missing); per row the margin
 * starts at ProbToMargin(base_score) (binary:logistic:
 * -logf(1.0f / base_score - 1.0f); reg:squarederror: base_score) and each
 * tree's leaf value is added in float, trees in model order (all trees:
 * iteration_end 0); binary:logistic then applies XGBoost's Sigmoid
 * (x = min(-x, 88.7f); 1.0f / (expf(x) + 1.0f + 1e-16f)). */
#ifndef MT_GBDT_FOREST_H
#define MT_GBDT_FOREST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_GBDT_FOREST_MAX_DEPTH 16
#define MT_GBDT_FOREST_MAX_SLOTS (1u << 22)
#define MT_GBDT_FOREST_MAX_TREES 100000
#define MT_GBDT_FOREST_MAX_FEATURES 4096u     /* scratch: 64 rows x 2 x features floats */
#define MT_GBDT_FOREST_MAX_MODEL (256u << 20) /* bytes of UBJSON */
/* threads of a prediction (each with up to 3 MiB of scratch at
 * MT_GBDT_FOREST_MAX_FEATURES): more requested run as this many */
#define MT_GBDT_FOREST_MAX_THREADS 16u

typedef struct mt_gbdt_forest mt_gbdt_forest;

/* Parses the model's UBJSON [ubj, ubj + len) for inputs of n_features
 * features into *out (free with mt_gbdt_forest_free). See the contract above. */
mt_status mt_gbdt_forest_parse(const uint8_t *ubj, size_t len, size_t n_features,
                               mt_gbdt_forest **out, mt_err *err);
void mt_gbdt_forest_free(mt_gbdt_forest *f);

size_t mt_gbdt_forest_trees(const mt_gbdt_forest *f);
/* True for binary:logistic (outputs are probabilities). */
int mt_gbdt_forest_is_logistic(const mt_gbdt_forest *f);

/* Predicts rows [0, n) of the dense row-major matrix x (n x n_features,
 * NaN = missing) into out[0, n), as XGBoost's prediction type 0 (transformed
 * by the objective). threads worker threads (at least 1, at most
 * MT_GBDT_FOREST_MAX_THREADS, fewer for few rows). MT_ENOMEM or
 * MT_EINTERNAL (a thread could not start) on failure. */
mt_status mt_gbdt_forest_predict_dense(const mt_gbdt_forest *f, const float *x, size_t n,
                                       unsigned threads, float *out, mt_err *err);
/* The same for a CSR matrix (indptr[n + 1], indices below n_features and
 * strictly increasing per row; absent entries are missing). */
mt_status mt_gbdt_forest_predict_csr(const mt_gbdt_forest *f, const size_t *indptr,
                                     const unsigned *indices, const float *values, size_t n,
                                     unsigned threads, float *out, mt_err *err);

#endif
