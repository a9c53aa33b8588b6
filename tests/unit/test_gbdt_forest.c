/* Tests of gbdt_forest (gbdt_predict's own predictor): for models trained
 * here with libxgboost (binary:logistic and reg:squarederror, NaN missing
 * values, depths 1 to 10, 1 and 50 trees), the predictions of ours equal
 * XGBoost's bit for bit (memcmp) on random rows holding NaN, +-inf, values
 * exactly equal to the models' split conditions and their float neighbours,
 * dense and CSR, 1 and 3 threads; models it does not reproduce (multi-class,
 * dart, gblinear, categorical, another objective) are refused; malformed
 * trees (indices out of range, cycles, shared nodes, right != left + 1,
 * features out of range, too deep, inconsistent counts) are refused, not a
 * crash. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include <cmocka.h>

#include "gbdt_forest.h"

#define NF 6
#define NTRAIN 3000

static uint64_t rng = 88172645463325252ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A random feature value: on a coarse grid (so that splits fall between and
 * on values), sometimes NaN. */
static float rand_value(unsigned nan_per_64)
{
    uint64_t r = next();
    if ((r & 63) < nan_per_64)
        return NAN;
    return (float)((int)((r >> 8) % 400) - 200) / 16.0f + ((r >> 40) & 1 ? 0.0f : 1.0f / 3.0f);
}

/* Trains a model; returns its JSON (malloc'd, NUL-terminated). */
static char *train(const char *objective, const char *booster, int depth, int trees,
                   const char *extra_k, const char *extra_v, size_t *len)
{
    static float x[NTRAIN * NF], y[NTRAIN];
    for (int r = 0; r < NTRAIN; r++) {
        for (int k = 0; k < NF; k++)
            x[r * NF + k] = rand_value(6);
        float a = isnan(x[r * NF]) ? 1.0f : x[r * NF];
        float b = isnan(x[r * NF + 1]) ? -2.0f : x[r * NF + 1];
        float c = isnan(x[r * NF + 3]) ? 0.5f : x[r * NF + 3];
        float z = a - 0.5f * b + (isnan(x[r * NF + 2]) ? 3.0f : x[r * NF + 2] * c / 8);
        y[r] = strcmp(objective, "reg:squarederror") == 0 ? z
               : strncmp(objective, "multi:", 6) == 0   ? (float)(r % 3)
                                                        : (z > 0 ? 1.0f : 0.0f);
    }
    DMatrixHandle dm;
    BoosterHandle b;
    assert_int_equal(XGDMatrixCreateFromMat(x, NTRAIN, NF, NAN, &dm), 0);
    assert_int_equal(XGDMatrixSetFloatInfo(dm, "label", y, NTRAIN), 0);
    assert_int_equal(XGBoosterCreate(&dm, 1, &b), 0);
    char v[32];
    snprintf(v, sizeof v, "%d", depth);
    assert_int_equal(XGBoosterSetParam(b, "objective", objective), 0);
    assert_int_equal(XGBoosterSetParam(b, "booster", booster), 0);
    assert_int_equal(XGBoosterSetParam(b, "tree_method", "hist"), 0);
    assert_int_equal(XGBoosterSetParam(b, "max_depth", v), 0);
    assert_int_equal(XGBoosterSetParam(b, "nthread", "2"), 0);
    assert_int_equal(XGBoosterSetParam(b, "seed", "1"), 0);
    if (extra_k)
        assert_int_equal(XGBoosterSetParam(b, extra_k, extra_v), 0);
    for (int it = 0; it < trees; it++)
        assert_int_equal(XGBoosterUpdateOneIter(b, it, dm), 0);
    bst_ulong ml;
    const char *mj;
    assert_int_equal(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &ml, &mj), 0);
    char *out = strndup(mj, ml);
    *len = ml;
    XGBoosterFree(b);
    XGDMatrixFree(dm);
    return out;
}

/* The JSON of model reloaded by XGBoost and saved again (what the built-in
 * hands to gbdt_forest), and the loaded booster in *bp. */
static char *reload(const char *model, size_t len, BoosterHandle *bp, size_t *out_len)
{
    assert_int_equal(XGBoosterCreate(NULL, 0, bp), 0);
    assert_int_equal(XGBoosterLoadModelFromBuffer(*bp, model, len), 0);
    bst_ulong ml;
    const char *mj;
    assert_int_equal(XGBoosterSaveModelToBuffer(*bp, "{\"format\": \"json\"}", &ml, &mj), 0);
    *out_len = ml;
    return strndup(mj, ml);
}

/* Every finite split condition of the model's internal nodes. */
static float *split_values(const char *model, size_t len, size_t *n)
{
    json_error_t je;
    json_t *root = json_loadb(model, len, 0, &je);
    assert_non_null(root);
    json_t *trees = json_object_get(
        json_object_get(json_object_get(json_object_get(root, "learner"), "gradient_booster"),
                        "model"),
        "trees");
    size_t cap = 16, k = 0;
    float *v = malloc(cap * sizeof *v);
    for (size_t t = 0; t < json_array_size(trees); t++) {
        json_t *tr = json_array_get(trees, t);
        json_t *l = json_object_get(tr, "left_children"), *c = json_object_get(tr, "split_conditions");
        for (size_t i = 0; i < json_array_size(l); i++) {
            if (json_integer_value(json_array_get(l, i)) == -1)
                continue;
            if (k == cap)
                v = realloc(v, (cap *= 2) * sizeof *v);
            v[k++] = (float)json_number_value(json_array_get(c, i));
        }
    }
    json_decref(root);
    *n = k;
    return v;
}

/* n test rows: random values, NaN, +-inf, split conditions and neighbours. */
static float *test_rows(const float *splits, size_t ns, size_t n, bool inf)
{
    float *x = malloc(n * NF * sizeof *x);
    for (size_t i = 0; i < n * NF; i++) {
        uint64_t r = next() % 16;
        float s = ns ? splits[next() % ns] : 0.0f;
        x[i] = r < 4    ? rand_value(0)
               : r < 7  ? s
               : r < 8  ? nextafterf(s, INFINITY)
               : r < 9  ? nextafterf(s, -INFINITY)
               : r < 11 ? NAN
               : r < 12 ? (inf ? (next() & 1 ? INFINITY : -INFINITY) : 0.0f)
               : r < 13 ? -0.0f
                        : rand_value(8);
    }
    return x;
}

static float *xgb_dense(BoosterHandle b, const float *x, size_t n)
{
    char ai[200];
    snprintf(ai, sizeof ai,
             "{\"data\": [%llu, true], \"shape\": [%zu, %d], \"typestr\": \"<f4\", "
             "\"version\": 3}",
             (unsigned long long)(uintptr_t)x, n, NF);
    const bst_ulong *shape;
    bst_ulong dim;
    const float *p;
    assert_int_equal(XGBoosterPredictFromDense(
                         b, ai,
                         "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                         "\"iteration_end\": 0, \"strict_shape\": false, \"cache_id\": 0, "
                         "\"missing\": NaN}",
                         NULL, &shape, &dim, &p),
                     0);
    assert_int_equal(shape[0], n);
    float *out = malloc(n * sizeof *out);
    memcpy(out, p, n * sizeof *out);
    return out;
}

/* CSR of the non-NaN entries of x (finite only: a DMatrix refuses inf). */
typedef struct csr {
    size_t *ip;
    unsigned *ix;
    float *v;
} csr;

static csr to_csr(const float *x, size_t n)
{
    csr c = {malloc((n + 1) * sizeof(size_t)), malloc(n * NF * sizeof(unsigned)),
             malloc(n * NF * sizeof(float))};
    size_t k = 0;
    c.ip[0] = 0;
    for (size_t r = 0; r < n; r++) {
        for (unsigned f = 0; f < NF; f++)
            if (isfinite(x[r * NF + f])) {
                c.ix[k] = f;
                c.v[k++] = x[r * NF + f];
            }
        c.ip[r + 1] = k;
    }
    return c;
}

static float *xgb_csr(BoosterHandle b, csr c, size_t n)
{
    DMatrixHandle d;
    assert_int_equal(XGDMatrixCreateFromCSREx(c.ip, c.ix, c.v, n + 1, c.ip[n], NF, &d), 0);
    const bst_ulong *shape;
    bst_ulong dim;
    const float *p;
    assert_int_equal(XGBoosterPredictFromDMatrix(
                         b, d,
                         "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                         "\"iteration_end\": 0, \"strict_shape\": false}",
                         &shape, &dim, &p),
                     0);
    assert_int_equal(shape[0], n);
    float *out = malloc(n * sizeof *out);
    memcpy(out, p, n * sizeof *out);
    XGDMatrixFree(d);
    return out;
}

static void expect_bits(const float *ours, const float *theirs, size_t n, const char *what)
{
    if (memcmp(ours, theirs, n * sizeof *ours) == 0)
        return;
    for (size_t r = 0; r < n; r++)
        if (memcmp(&ours[r], &theirs[r], sizeof *ours) != 0)
            fail_msg("%s: row %zu: ours %a, XGBoost %a", what, r, (double)ours[r],
                     (double)theirs[r]);
}

static void check_model(const char *objective, int depth, int trees)
{
    size_t len, rlen, ns;
    char *model = train(objective, "gbtree", depth, trees, NULL, NULL, &len);
    BoosterHandle b;
    char *rj = reload(model, len, &b, &rlen);
    mt_gbdt_forest *f;
    mt_err err;
    if (mt_gbdt_forest_parse(rj, rlen, NF, &f, &err) != MT_OK)
        fail_msg("%s depth %d trees %d refused: %s", objective, depth, trees, err.msg);
    assert_int_equal(mt_gbdt_forest_trees(f), trees);
    assert_int_equal(mt_gbdt_forest_is_logistic(f), strcmp(objective, "binary:logistic") == 0);
    float *splits = split_values(rj, rlen, &ns);
    if (depth > 1)
        assert_true(ns > 0);
    const size_t n = 1000; /* not a multiple of the block of rows */
    float *x = test_rows(splits, ns, n, true), *ours = malloc(n * sizeof *ours);
    float *theirs = xgb_dense(b, x, n);
    for (unsigned th = 1; th <= 3; th += 2) {
        memset(ours, 0, n * sizeof *ours);
        assert_int_equal(mt_gbdt_forest_predict_dense(f, x, n, th, ours, &err), MT_OK);
        expect_bits(ours, theirs, n, "dense");
    }
    free(theirs);
    /* CSR, no inf (DMatrix refuses it) */
    free(x);
    x = test_rows(splits, ns, n, false);
    csr c = to_csr(x, n);
    theirs = xgb_csr(b, c, n);
    for (unsigned th = 1; th <= 3; th += 2) {
        memset(ours, 0, n * sizeof *ours);
        assert_int_equal(mt_gbdt_forest_predict_csr(f, c.ip, c.ix, c.v, n, th, ours, &err),
                         MT_OK);
        expect_bits(ours, theirs, n, "csr");
    }
    free(c.ip);
    free(c.ix);
    free(c.v);
    free(theirs);
    free(ours);
    free(x);
    free(splits);
    mt_gbdt_forest_free(f);
    XGBoosterFree(b);
    free(rj);
    free(model);
}

static void test_same_bits_logistic(void **state)
{
    (void)state;
    static const int depths[] = {1, 3, 6, 10};
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++) {
        check_model("binary:logistic", depths[i], 1);
        check_model("binary:logistic", depths[i], 50);
    }
}

static void test_same_bits_regression(void **state)
{
    (void)state;
    static const int depths[] = {1, 3, 6, 10};
    for (size_t i = 0; i < sizeof depths / sizeof *depths; i++) {
        check_model("reg:squarederror", depths[i], 1);
        check_model("reg:squarederror", depths[i], 50);
    }
}

/* base_score other than 0.5 (margin -logf(1/b - 1)), for both objectives */
static void test_base_score(void **state)
{
    (void)state;
    static const char *const objs[] = {"binary:logistic", "reg:squarederror"};
    for (size_t o = 0; o < 2; o++) {
        size_t len, rlen, ns;
        char *model = train(objs[o], "gbtree", 4, 7, "base_score", "0.3", &len);
        BoosterHandle b;
        char *rj = reload(model, len, &b, &rlen);
        mt_gbdt_forest *f;
        mt_err err;
        assert_int_equal(mt_gbdt_forest_parse(rj, rlen, NF, &f, &err), MT_OK);
        float *splits = split_values(rj, rlen, &ns);
        float *x = test_rows(splits, ns, 300, true), ours[300];
        float *theirs = xgb_dense(b, x, 300);
        assert_int_equal(mt_gbdt_forest_predict_dense(f, x, 300, 2, ours, &err), MT_OK);
        expect_bits(ours, theirs, 300, objs[o]);
        free(theirs);
        free(x);
        free(splits);
        mt_gbdt_forest_free(f);
        XGBoosterFree(b);
        free(rj);
        free(model);
    }
}

static void expect_refused(const char *json, size_t len, size_t nf, const char *what)
{
    mt_gbdt_forest *f = (mt_gbdt_forest *)&f; /* must be set to NULL */
    mt_err err = {0};
    mt_status st = mt_gbdt_forest_parse(json, len, nf, &f, &err);
    if (st != MT_EINVAL)
        fail_msg("%s: status %d, expected refusal", what, (int)st);
    assert_null(f);
    assert_non_null(strstr(err.msg, "gbdt model not for the own predictor"));
}

/* Models ours does not reproduce are refused (the built-in then uses
 * XGBoost's predictor: test_builtin_gbdt checks that path's output). */
static void test_unsupported_refused(void **state)
{
    (void)state;
    size_t len;
    char *m = train("multi:softprob", "gbtree", 3, 2, "num_class", "3", &len);
    expect_refused(m, len, NF, "multi:softprob");
    free(m);
    m = train("binary:logistic", "dart", 3, 3, NULL, NULL, &len);
    expect_refused(m, len, NF, "dart");
    free(m);
    m = train("binary:logistic", "gblinear", 3, 3, NULL, NULL, &len);
    expect_refused(m, len, NF, "gblinear");
    free(m);
    m = train("reg:logistic", "gbtree", 3, 3, NULL, NULL, &len);
    expect_refused(m, len, NF, "reg:logistic");
    free(m);
    m = train("binary:logitraw", "gbtree", 3, 3, NULL, NULL, &len);
    expect_refused(m, len, NF, "binary:logitraw");
    free(m);
    /* a feature count other than the model's */
    m = train("binary:logistic", "gbtree", 3, 3, NULL, NULL, &len);
    expect_refused(m, len, NF + 1, "num_feature");
    mt_gbdt_forest *f;
    mt_err err;
    assert_int_equal(mt_gbdt_forest_parse(m, len, NF, &f, &err), MT_OK);
    mt_gbdt_forest_free(f);
    free(m);
}

/* Categorical splits (feature type "c") are refused. */
static void test_categorical_refused(void **state)
{
    (void)state;
    float x[400 * 2], y[400];
    for (int r = 0; r < 400; r++) {
        x[2 * r] = (float)(r % 5);
        x[2 * r + 1] = rand_value(0);
        y[r] = (r % 5 == 1 || r % 5 == 3) ? 1.0f : 0.0f;
    }
    DMatrixHandle dm;
    BoosterHandle b;
    assert_int_equal(XGDMatrixCreateFromMat(x, 400, 2, NAN, &dm), 0);
    assert_int_equal(XGDMatrixSetFloatInfo(dm, "label", y, 400), 0);
    const char *types[] = {"c", "q"};
    assert_int_equal(XGDMatrixSetStrFeatureInfo(dm, "feature_type", types, 2), 0);
    assert_int_equal(XGBoosterCreate(&dm, 1, &b), 0);
    assert_int_equal(XGBoosterSetParam(b, "objective", "binary:logistic"), 0);
    assert_int_equal(XGBoosterSetParam(b, "tree_method", "hist"), 0);
    assert_int_equal(XGBoosterSetParam(b, "max_cat_to_onehot", "1"), 0);
    for (int it = 0; it < 3; it++)
        assert_int_equal(XGBoosterUpdateOneIter(b, it, dm), 0);
    bst_ulong ml;
    const char *mj;
    assert_int_equal(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &ml, &mj), 0);
    assert_non_null(strstr(mj, "\"split_type\":[1"));
    expect_refused(mj, ml, 2, "categorical");
    XGBoosterFree(b);
    XGDMatrixFree(dm);
}

/* ------------------------------------------------------------- malformed */

static json_t *tree0;

/* The model m with tree 0 changed by edit, serialised. */
static char *edited(const char *m, size_t len, void (*edit)(json_t *root, json_t *tree),
                    size_t *out_len)
{
    json_error_t je;
    json_t *root = json_loadb(m, len, 0, &je);
    assert_non_null(root);
    tree0 = json_array_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(root, "learner"), "gradient_booster"),
                            "model"),
            "trees"),
        0);
    assert_non_null(tree0);
    edit(root, tree0);
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    *out_len = strlen(s);
    return s;
}

static void set_int(json_t *t, const char *arr, size_t i, json_int_t v)
{
    assert_int_equal(json_array_set_new(json_object_get(t, arr), i, json_integer(v)), 0);
}

static void e_left_out_of_range(json_t *r, json_t *t)
{
    (void)r;
    set_int(t, "left_children", 0, 100000);
    set_int(t, "right_children", 0, 100001);
}
static void e_cycle(json_t *r, json_t *t)
{
    (void)r;
    set_int(t, "left_children", 1, 0); /* node 1 points back to the root */
    set_int(t, "right_children", 1, 1);
    set_int(t, "split_indices", 1, 0);
}
static void e_right_not_left_plus_1(json_t *r, json_t *t)
{
    (void)r;
    set_int(t, "right_children", 0, 1);
}
static void e_shared(json_t *r, json_t *t)
{
    (void)r; /* node 1's children are the root's children */
    set_int(t, "left_children", 1, 1);
    set_int(t, "right_children", 1, 2);
}
static void e_feature(json_t *r, json_t *t)
{
    (void)r;
    set_int(t, "split_indices", 0, NF);
}
static void e_negative_feature(json_t *r, json_t *t)
{
    (void)r;
    set_int(t, "split_indices", 0, -1);
}
static void e_short_array(json_t *r, json_t *t)
{
    (void)r;
    json_array_remove(json_object_get(t, "split_conditions"), 0);
}
static void e_string_value(json_t *r, json_t *t)
{
    (void)r;
    json_array_set_new(json_object_get(t, "split_conditions"), 0, json_string("1"));
}
static void e_huge_value(json_t *r, json_t *t)
{
    (void)r;
    json_array_set_new(json_object_get(t, "split_conditions"), 0, json_real(1e300));
}
static void e_categorical(json_t *r, json_t *t)
{
    (void)r;
    set_int(t, "split_type", 0, 1);
}
static void e_num_nodes(json_t *r, json_t *t)
{
    (void)r;
    json_object_set_new(json_object_get(t, "tree_param"), "num_nodes", json_string("2"));
}
static void e_tree_info(json_t *r, json_t *t)
{
    (void)t;
    json_t *m = json_object_get(
        json_object_get(json_object_get(r, "learner"), "gradient_booster"), "model");
    json_array_set_new(json_object_get(m, "tree_info"), 0, json_integer(1));
}
static void e_num_trees(json_t *r, json_t *t)
{
    (void)t;
    json_t *m = json_object_get(
        json_object_get(json_object_get(r, "learner"), "gradient_booster"), "model");
    json_object_set_new(json_object_get(m, "gbtree_model_param"), "num_trees",
                        json_string("3"));
}
static void e_base_score(json_t *r, json_t *t)
{
    (void)t;
    json_object_set_new(json_object_get(json_object_get(r, "learner"), "learner_model_param"),
                        "base_score", json_string("1E0"));
}
static void e_num_class(json_t *r, json_t *t)
{
    (void)t;
    json_object_set_new(json_object_get(json_object_get(r, "learner"), "learner_model_param"),
                        "num_class", json_string("3"));
}
static void e_objective(json_t *r, json_t *t)
{
    (void)t;
    json_object_set_new(json_object_get(json_object_get(r, "learner"), "objective"), "name",
                        json_string("reg:pseudohubererror"));
}
/* a chain deeper than MT_GBDT_FOREST_MAX_DEPTH: node i's left child is
 * 2i + 1 (a leaf), its right child 2i + 2 */
static void e_too_deep(json_t *r, json_t *t)
{
    (void)r;
    const int levels = MT_GBDT_FOREST_MAX_DEPTH + 2, n = 2 * levels + 1;
    static const char *const ints[] = {"left_children", "right_children", "parents",
                                       "split_indices", "split_type", "default_left"};
    static const char *const floats[] = {"split_conditions", "loss_changes", "sum_hessian",
                                         "base_weights"};
    for (size_t a = 0; a < 6; a++) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) {
            json_int_t v = 0;
            bool internal = i % 2 == 0 && i < 2 * levels;
            if (a == 0)
                v = internal ? i + 1 : -1;
            else if (a == 1)
                v = internal ? i + 2 : -1;
            else if (a == 2)
                v = i == 0 ? 2147483647 : (i - 1) / 2 * 2;
            json_array_append_new(arr, json_integer(v));
        }
        json_object_set_new(t, ints[a], arr);
    }
    for (size_t a = 0; a < 4; a++) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(arr, json_real(0.25));
        json_object_set_new(t, floats[a], arr);
    }
    char nn[16];
    snprintf(nn, sizeof nn, "%d", n);
    json_object_set_new(json_object_get(t, "tree_param"), "num_nodes", json_string(nn));
}
static void e_none(json_t *r, json_t *t)
{
    (void)r;
    (void)t;
}

static void test_malformed_refused(void **state)
{
    (void)state;
    size_t len, el;
    char *m = train("binary:logistic", "gbtree", 3, 2, NULL, NULL, &len);
    /* the unedited round trip is accepted (the edits below are what differ) */
    char *s = edited(m, len, e_none, &el);
    mt_gbdt_forest *f;
    mt_err err;
    assert_int_equal(mt_gbdt_forest_parse(s, el, NF, &f, &err), MT_OK);
    mt_gbdt_forest_free(f);
    free(s);
    static const struct {
        const char *name;
        void (*edit)(json_t *, json_t *);
    } cases[] = {
        {"left child out of range", e_left_out_of_range},
        {"cycle", e_cycle},
        {"right child not left + 1", e_right_not_left_plus_1},
        {"shared nodes", e_shared},
        {"feature out of range", e_feature},
        {"negative feature", e_negative_feature},
        {"array too short", e_short_array},
        {"value a string", e_string_value},
        {"value beyond float", e_huge_value},
        {"categorical split", e_categorical},
        {"num_nodes differs", e_num_nodes},
        {"tree_info 1", e_tree_info},
        {"num_trees differs", e_num_trees},
        {"base_score 1 for logistic", e_base_score},
        {"num_class 3", e_num_class},
        {"objective", e_objective},
        {"too deep", e_too_deep},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        s = edited(m, len, cases[i].edit, &el);
        expect_refused(s, el, NF, cases[i].name);
        free(s);
    }
    /* truncated and garbage text */
    for (size_t cut = 0; cut < len; cut += len / 7 + 1)
        expect_refused(m, cut, NF, "truncated");
    expect_refused("[]", 2, NF, "array");
    expect_refused("{\"learner\": 1}", 14, NF, "learner not an object");
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bits_logistic),  cmocka_unit_test(test_same_bits_regression),
        cmocka_unit_test(test_base_score),          cmocka_unit_test(test_unsupported_refused),
        cmocka_unit_test(test_categorical_refused), cmocka_unit_test(test_malformed_refused),
    };
    XGBSetGlobalConfig("{\"verbosity\": 0}");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
