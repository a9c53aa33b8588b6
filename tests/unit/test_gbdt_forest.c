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
#define NTRAIN 2000

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
               : strncmp(objective, "multi:", 6) == 0     ? (float)(r % 3)
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
    assert_int_equal(XGBoosterSetParam(b, "nthread", "1"), 0); /* no OpenMP spinning */
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

/* The UBJSON of model reloaded by XGBoost (what the built-in hands to
 * gbdt_forest), its JSON in *json, and the loaded booster in *bp. */
static char *reload(const char *model, size_t len, BoosterHandle *bp, size_t *out_len, char **json,
                    size_t *json_len)
{
    assert_int_equal(XGBoosterCreate(NULL, 0, bp), 0);
    assert_int_equal(XGBoosterLoadModelFromBuffer(*bp, model, len), 0);
    assert_int_equal(XGBoosterSetParam(*bp, "nthread", "1"), 0);
    bst_ulong ml;
    const char *mj;
    assert_int_equal(XGBoosterSaveModelToBuffer(*bp, "{\"format\": \"json\"}", &ml, &mj), 0);
    *json_len = ml;
    *json = strndup(mj, ml);
    assert_int_equal(XGBoosterSaveModelToBuffer(*bp, "{\"format\": \"ubj\"}", &ml, &mj), 0);
    *out_len = ml;
    char *u = malloc(ml);
    memcpy(u, mj, ml);
    return u;
}

/* XGBoost's UBJSON of a JSON model. */
static char *xgb_ubj(const char *model, size_t len, size_t *out_len)
{
    BoosterHandle b;
    char *json;
    size_t jl;
    char *u = reload(model, len, &b, out_len, &json, &jl);
    free(json);
    XGBoosterFree(b);
    return u;
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
        json_t *l = json_object_get(tr, "left_children"),
               *c = json_object_get(tr, "split_conditions");
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
    assert_int_equal(
        XGBoosterPredictFromDense(b, ai,
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
    assert_int_equal(
        XGBoosterPredictFromDMatrix(b, d,
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
    char *js;
    size_t jl;
    char *rj = reload(model, len, &b, &rlen, &js, &jl);
    mt_gbdt_forest *f;
    mt_err err;
    if (mt_gbdt_forest_parse((const uint8_t *)rj, rlen, NF, &f, &err) != MT_OK)
        fail_msg("%s depth %d trees %d refused: %s", objective, depth, trees, err.msg);
    assert_int_equal(mt_gbdt_forest_trees(f), trees);
    assert_int_equal(mt_gbdt_forest_is_logistic(f), strcmp(objective, "binary:logistic") == 0);
    float *splits = split_values(js, jl, &ns);
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
        assert_int_equal(mt_gbdt_forest_predict_csr(f, c.ip, c.ix, c.v, n, th, ours, &err), MT_OK);
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
    free(js);
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

/* base_score other than 0.5 (margin -logf(1/b - 1)), for both objectives;
 * several trees per round (num_parallel_tree: every tree is summed) */
static void test_base_score(void **state)
{
    (void)state;
    static const char *const objs[] = {"binary:logistic", "reg:squarederror", "binary:logistic"};
    static const char *const keys[] = {"base_score", "base_score", "num_parallel_tree"};
    static const char *const vals[] = {"0.3", "0.3", "3"};
    for (size_t o = 0; o < 3; o++) {
        size_t len, rlen, ns;
        char *model = train(objs[o], "gbtree", 4, 7, keys[o], vals[o], &len);
        BoosterHandle b;
        char *js;
        size_t jl;
        char *rj = reload(model, len, &b, &rlen, &js, &jl);
        mt_gbdt_forest *f;
        mt_err err;
        assert_int_equal(mt_gbdt_forest_parse((const uint8_t *)rj, rlen, NF, &f, &err), MT_OK);
        float *splits = split_values(js, jl, &ns);
        float *x = test_rows(splits, ns, 300, true), ours[300];
        float *theirs = xgb_dense(b, x, 300);
        assert_int_equal(mt_gbdt_forest_predict_dense(f, x, 300, 2, ours, &err), MT_OK);
        expect_bits(ours, theirs, 300, objs[o]);
        if (o == 2)
            assert_int_equal(mt_gbdt_forest_trees(f), 7 * 3);
        free(theirs);
        free(x);
        free(splits);
        mt_gbdt_forest_free(f);
        XGBoosterFree(b);
        free(rj);
        free(js);
        free(model);
    }
}

/* Refused with the fixed prefix and, when why is not NULL, that reason. */
static void expect_refused_why(const void *ubj, size_t len, size_t nf, const char *what,
                               const char *why)
{
    mt_gbdt_forest *f = (mt_gbdt_forest *)&f; /* must be set to NULL */
    mt_err err = {0};
    mt_status st = mt_gbdt_forest_parse(ubj, len, nf, &f, &err);
    if (st != MT_EINVAL)
        fail_msg("%s: status %d, expected refusal", what, (int)st);
    assert_null(f);
    assert_non_null(strstr(err.msg, "gbdt model not for the own predictor: "));
    if (why && !strstr(err.msg, why))
        fail_msg("%s: refused for another reason: %s", what, err.msg);
}

static void expect_refused(const void *ubj, size_t len, size_t nf, const char *what)
{
    expect_refused_why(ubj, len, nf, what, NULL);
}

/* Models ours does not reproduce are refused (the built-in then uses
 * XGBoost's predictor: test_builtin_gbdt checks that path's output). */
static void test_unsupported_refused(void **state)
{
    (void)state;
    size_t len, ul;
    char *u, *m = train("multi:softprob", "gbtree", 3, 2, "num_class", "3", &len);
    u = xgb_ubj(m, len, &ul);
    expect_refused(u, ul, NF, "multi:softprob");
    free(u);
    free(m);
    m = train("binary:logistic", "dart", 3, 3, NULL, NULL, &len);
    u = xgb_ubj(m, len, &ul);
    expect_refused(u, ul, NF, "dart");
    free(u);
    free(m);
    m = train("binary:logistic", "gblinear", 3, 3, NULL, NULL, &len);
    u = xgb_ubj(m, len, &ul);
    expect_refused(u, ul, NF, "gblinear");
    free(u);
    free(m);
    m = train("reg:logistic", "gbtree", 3, 3, NULL, NULL, &len);
    u = xgb_ubj(m, len, &ul);
    expect_refused(u, ul, NF, "reg:logistic");
    free(u);
    free(m);
    m = train("binary:logitraw", "gbtree", 3, 3, NULL, NULL, &len);
    u = xgb_ubj(m, len, &ul);
    expect_refused(u, ul, NF, "binary:logitraw");
    free(u);
    free(m);
    /* a feature count other than the model's */
    m = train("binary:logistic", "gbtree", 3, 3, NULL, NULL, &len);
    u = xgb_ubj(m, len, &ul);
    expect_refused(u, ul, NF + 1, "num_feature");
    free(u);
    mt_gbdt_forest *f;
    mt_err err;
    u = xgb_ubj(m, len, &ul);
    assert_int_equal(mt_gbdt_forest_parse((const uint8_t *)u, ul, NF, &f, &err), MT_OK);
    free(u);
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
    assert_int_equal(XGBoosterSetParam(b, "nthread", "1"), 0);
    for (int it = 0; it < 3; it++)
        assert_int_equal(XGBoosterUpdateOneIter(b, it, dm), 0);
    bst_ulong ml;
    const char *mj;
    assert_int_equal(XGBoosterSaveModelToBuffer(b, "{\"format\": \"json\"}", &ml, &mj), 0);
    assert_non_null(strstr(mj, "\"split_type\":[1"));
    assert_int_equal(XGBoosterSaveModelToBuffer(b, "{\"format\": \"ubj\"}", &ml, &mj), 0);
    expect_refused(mj, ml, 2, "categorical");
    XGBoosterFree(b);
    XGDMatrixFree(dm);
}

/* ------------------------------------------------------------- malformed */

/* A UBJSON encoder of jansson values written the way XGBoost 1.7's
 * UBJWriter does (src/common/json.cc): objects with 'L' int64 keys, counted
 * arrays, typed arrays for the tree's arrays (by key; a typed array holding
 * a non-number is written as a counted array), the smallest integer type,
 * reals as f32, strings 'S'. */
typedef struct ubuf {
    uint8_t *p;
    size_t n, cap;
} ubuf;

static void put(ubuf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_be(ubuf *b, uint64_t v, size_t k)
{
    uint8_t t[8];
    for (size_t i = 0; i < k; i++)
        t[i] = (uint8_t)(v >> (8 * (k - 1 - i)));
    put(b, t, k);
}

static void put_len(ubuf *b, size_t n)
{
    put(b, "L", 1);
    put_be(b, n, 8);
}

static void put_f32(ubuf *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_be(b, u, 4);
}

static char typed_kind(const char *key)
{
    static const char *const l[] = {"left_children", "right_children", "parents",
                                    "split_indices", "categories",     "categories_nodes"};
    static const char *const L[] = {"categories_segments", "categories_sizes"};
    static const char *const d[] = {"loss_changes", "sum_hessian", "base_weights",
                                    "split_conditions"};
    static const char *const U[] = {"default_left", "split_type"};
    for (size_t i = 0; i < 6; i++)
        if (key && strcmp(key, l[i]) == 0)
            return 'l';
    for (size_t i = 0; i < 2; i++)
        if (key && strcmp(key, L[i]) == 0)
            return 'L';
    for (size_t i = 0; i < 4; i++)
        if (key && strcmp(key, d[i]) == 0)
            return 'd';
    for (size_t i = 0; i < 2; i++)
        if (key && strcmp(key, U[i]) == 0)
            return 'U';
    return 0;
}

static void enc(ubuf *b, json_t *v, const char *key)
{
    if (json_is_object(v)) {
        put(b, "{", 1);
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
        {
            size_t kl = strlen(k);
            if (kl && k[kl - 1] == '\x01')
                kl--; /* e_duplicate_key: written as the key without \x01 */
            put_len(b, kl);
            put(b, k, kl);
            enc(b, e, k);
        }
        put(b, "}", 1);
    } else if (json_is_array(v)) {
        char t = typed_kind(key);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (!json_is_number(e)) t = 0;
        if (t) {
            put(b, "[$", 2);
            put(b, &t, 1);
            put(b, "#", 1);
            put_len(b, json_array_size(v));
            json_array_foreach(v, i, e)
            {
                if (t == 'd')
                    put_f32(b, (float)json_number_value(e));
                else
                    put_be(b, (uint64_t)json_integer_value(e), t == 'l' ? 4 : t == 'L' ? 8 : 1);
            }
        } else {
            put(b, "[#", 2);
            put_len(b, json_array_size(v));
            json_array_foreach(v, i, e) enc(b, e, NULL);
        }
    } else if (json_is_string(v)) {
        put(b, "S", 1);
        put_len(b, json_string_length(v));
        put(b, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i > INT8_MIN && i < INT8_MAX) {
            put(b, "i", 1);
            put_be(b, (uint64_t)i, 1);
        } else if (i > INT16_MIN && i < INT16_MAX) {
            put(b, "I", 1);
            put_be(b, (uint64_t)i, 2);
        } else if (i > INT32_MIN && i < INT32_MAX) {
            put(b, "l", 1);
            put_be(b, (uint64_t)i, 4);
        } else {
            put(b, "L", 1);
            put_be(b, (uint64_t)i, 8);
        }
    } else if (json_is_real(v)) {
        put(b, "d", 1);
        put_f32(b, (float)json_real_value(v));
    } else {
        put(b, json_is_true(v) ? "T" : json_is_false(v) ? "F" : "Z", 1);
    }
}

static json_t *tree0;

/* The model m (JSON) with tree 0 changed by edit, as UBJSON. */
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
    ubuf b = {0};
    enc(&b, root, NULL);
    json_decref(root);
    *out_len = b.n;
    return (char *)b.p;
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
    json_t *m = json_object_get(json_object_get(json_object_get(r, "learner"), "gradient_booster"),
                                "model");
    json_array_set_new(json_object_get(m, "tree_info"), 0, json_integer(1));
}
static void e_num_trees(json_t *r, json_t *t)
{
    (void)t;
    json_t *m = json_object_get(json_object_get(json_object_get(r, "learner"), "gradient_booster"),
                                "model");
    json_object_set_new(json_object_get(m, "gbtree_model_param"), "num_trees", json_string("3"));
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
/* a chain of chain_levels internal nodes: even node i's left child is the
 * leaf i + 1, its right child i + 2 */
static int chain_levels;
static void e_chain(json_t *r, json_t *t)
{
    (void)r;
    const int levels = chain_levels, n = 2 * levels + 1;
    static const char *const ints[] = {"left_children", "right_children", "parents",
                                       "split_indices", "split_type",     "default_left"};
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
/* a key twice in the tree object: jansson keeps one value per key, so the
 * extra key's name is one the encoder writes as "left_children" */
static void e_duplicate_key(json_t *r, json_t *t)
{
    (void)r;
    json_object_set(t, "left_children\x01", json_object_get(t, "left_children"));
}
static void e_none(json_t *r, json_t *t)
{
    (void)r;
    (void)t;
}

static void test_malformed_refused(void **state)
{
    (void)state;
    size_t len, el, ul;
    char *m = train("binary:logistic", "gbtree", 3, 2, NULL, NULL, &len);
    /* the unedited model through our encoder is XGBoost's own UBJSON, and
     * accepted (the edits below are what differ) */
    char *s = edited(m, len, e_none, &el);
    char *u = xgb_ubj(m, len, &ul);
    assert_int_equal(el, ul);
    assert_memory_equal(s, u, ul);
    mt_gbdt_forest *f;
    mt_err err;
    assert_int_equal(mt_gbdt_forest_parse((const uint8_t *)s, el, NF, &f, &err), MT_OK);
    mt_gbdt_forest_free(f);
    free(s);
    static const char tree[] = "tree structure, feature index or value not acceptable",
                      arrays[] = "tree array missing, of the wrong type or of the wrong size";
    static const struct {
        const char *name;
        void (*edit)(json_t *, json_t *);
        const char *why;
    } cases[] = {
        {"left child out of range", e_left_out_of_range, tree},
        {"cycle", e_cycle, tree},
        {"right child not left + 1", e_right_not_left_plus_1, tree},
        {"shared nodes", e_shared, tree},
        {"feature out of range", e_feature, tree},
        {"negative feature", e_negative_feature, tree},
        {"array too short", e_short_array, arrays},
        {"value a string", e_string_value, arrays},
        {"value beyond float", e_huge_value, tree},
        {"categorical split", e_categorical, "categorical split"},
        {"num_nodes differs", e_num_nodes, arrays},
        {"tree_info 1", e_tree_info, "tree_info other than 0"},
        {"num_trees differs", e_num_trees, "trees, tree_info and num_trees disagree"},
        {"base_score 1 for logistic", e_base_score, "base_score outside (0, 1)"},
        {"num_class 3", e_num_class, "num_class is not 0"},
        {"objective", e_objective, "objective other than"},
        {"duplicate key", e_duplicate_key, arrays},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        s = edited(m, len, cases[i].edit, &el);
        expect_refused_why(s, el, NF, cases[i].name, cases[i].why);
        free(s);
    }
    /* a chain of MT_GBDT_FOREST_MAX_DEPTH levels is taken, one more is not */
    chain_levels = MT_GBDT_FOREST_MAX_DEPTH;
    s = edited(m, len, e_chain, &el);
    assert_int_equal(mt_gbdt_forest_parse((const uint8_t *)s, el, NF, &f, &err), MT_OK);
    mt_gbdt_forest_free(f);
    free(s);
    chain_levels = MT_GBDT_FOREST_MAX_DEPTH + 1;
    s = edited(m, len, e_chain, &el);
    expect_refused_why(s, el, NF, "too deep", tree);
    free(s);
    /* truncated and garbage bytes */
    for (size_t cut = 0; cut < ul; cut += ul / 13 + 1)
        expect_refused(u, cut, NF, "truncated");
    u[ul / 2] ^= 0x40; /* any byte changed: refused or a valid model, never a crash */
    if (mt_gbdt_forest_parse((const uint8_t *)u, ul, NF, &f, &err) == MT_OK)
        mt_gbdt_forest_free(f);
    expect_refused("{}", 2, NF, "empty object");
    expect_refused_why("{L\0\0\0\0\0\0\0\x07learneri\x01}", 20, NF, "learner not an object",
                       "no learner");
    expect_refused("[$d#L\xff\xff\xff\xff\xff\xff\xff\xff", 14, NF, "huge count");
    free(u);
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
