/* Tests of gbdt_train / gbdt_predict through mt_executor_run and the real
 * sandboxed mesatee-worker (threads included): the platform's predictions
 * equal XGBoost's own, computed in this process on the same model and data
 * (binary, multi-class, regression on LIBSVM, a model trained elsewhere,
 * every row of 1,000 with missing values through the own predictor and
 * through the fallback to XGBoost's), and bad input fails with line and
 * column and writes no output. */
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

#include "test_builtin_common.h"

#define NR 240
#define NF 3

static float X[NR * NF], Y[NR], YM[NR], YR[NR];

/* Fixed data: features on a grid of exactly representable floats; a binary
 * label, a 3-class label and a regression target. */
static void make_data(void)
{
    uint64_t s = 12345;
    for (int r = 0; r < NR; r++) {
        for (int k = 0; k < NF; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            X[r * NF + k] = (float)((int)(s >> 40) % 2000 - 1000) / 64.0f;
        }
        float z = X[r * NF] - 0.5f * X[r * NF + 1] + ((r * 7) % 11 == 0 ? 20.0f : 0.0f);
        Y[r] = z > 0 ? 1.0f : 0.0f;
        YM[r] = X[r * NF + 2] < -5 ? 0.0f : X[r * NF + 2] < 5 ? 1.0f : 2.0f;
        YR[r] = 3.0f * X[r * NF] + X[r * NF + 1] * X[r * NF + 2] / 16.0f;
    }
}

/* CSV of rows [from, to) with header "<a>,x1,x2,x3,y"; first column is an
 * id when id is true. */
static char *csv(int from, int to, const float *y, bool id)
{
    size_t cap = 64 + (size_t)(to - from) * 96;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "%sx1,x2,x3,y\n", id ? "id," : "");
    for (int r = from; r < to; r++) {
        if (id)
            p += sprintf(p, "r%d,", r);
        p += sprintf(p, "%.9g,%.9g,%.9g,%.9g\n", X[r * NF], X[r * NF + 1], X[r * NF + 2],
                     y ? y[r] : 0.0f);
    }
    return s;
}

static char *libsvm(int from, int to, const float *y)
{
    char *s = malloc((size_t)(to - from) * 96 + 1), *p = s;
    *p = 0;
    for (int r = from; r < to; r++) {
        p += sprintf(p, "%.9g", y[r]);
        for (int k = 0; k < NF; k++)
            p += sprintf(p, " %d:%.9g", k, X[r * NF + k]);
        p += sprintf(p, "\n");
    }
    return s;
}

/* XGBoost's own predictions for rows [from, to) with the model JSON. */
static float *xgb_predict(const char *model, size_t len, int from, int to, bool csr,
                          size_t *cols)
{
    BoosterHandle b;
    DMatrixHandle d;
    assert_int_equal(XGBoosterCreate(NULL, 0, &b), 0);
    assert_int_equal(XGBoosterLoadModelFromBuffer(b, model, len), 0);
    if (csr) {
        size_t n = (size_t)(to - from), *ip = malloc((n + 1) * sizeof *ip);
        unsigned *ix = malloc(n * NF * sizeof *ix);
        for (size_t r = 0; r <= n; r++)
            ip[r] = r * NF;
        for (size_t i = 0; i < n * NF; i++)
            ix[i] = (unsigned)(i % NF);
        assert_int_equal(XGDMatrixCreateFromCSREx(ip, ix, X + from * NF, n + 1, n * NF, NF, &d),
                         0);
        free(ip);
        free(ix);
    } else {
        assert_int_equal(XGDMatrixCreateFromMat(X + from * NF, (bst_ulong)(to - from), NF, NAN,
                                                &d),
                         0);
    }
    const bst_ulong *shape;
    bst_ulong dim;
    const float *pr;
    assert_int_equal(XGBoosterPredictFromDMatrix(
                         b, d,
                         "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                         "\"iteration_end\": 0, \"strict_shape\": false}",
                         &shape, &dim, &pr),
                     0);
    *cols = dim == 2 ? shape[1] : 1;
    size_t n = (size_t)shape[0] * *cols;
    float *out = malloc(n * sizeof *out);
    memcpy(out, pr, n * sizeof *out);
    XGDMatrixFree(d);
    XGBoosterFree(b);
    return out;
}

/* Parses the platform's prediction CSV: skips `skip` leading fields, reads
 * cols numbers per row. */
static void expect_same(const char *out, const float *want, int rows, size_t cols, int skip)
{
    const char *p = strchr(out, '\n') + 1;
    for (int r = 0; r < rows; r++) {
        for (int s = 0; s < skip; s++)
            p = strchr(p, ',') + 1;
        for (size_t c = 0; c < cols; c++) {
            char *e;
            float v = (float)strtod(p, &e);
            if (v != want[r * cols + c])
                fail_msg("row %d col %zu: platform %.9g, xgboost %.9g", r, c, v,
                         want[r * cols + c]);
            p = e + 1;
        }
        p = strchr(p - 1, '\n') + 1;
    }
}

static void test_binary_csv(void **state)
{
    (void)state;
    char *a = csv(0, 150, Y, false), *b = csv(150, NR, Y, false);
    tb_in in[2] = {{"a", a}, {"b", b}};
    const char *const outs[] = {"model"};
    tb_run run;
    tb_expect_ok("gbdt_train",
                 tb_args("label", "y", "objective", "binary:logistic", "trees", "12", "depth",
                         "3", "eta", "0.3", "threads", "2", "seed", "7", NULL),
                 in, 2, outs, 1, &run);
    assert_string_equal(run.r.return_value, "rows: 240, features: 3, trees: 12");
    assert_non_null(strstr(run.out[0], "\"feature_names\":[\"x1\",\"x2\",\"x3\"]"));

    /* predict on rows 0..60 with ids, columns in another order */
    char *d = malloc(8192), *p = d;
    p += sprintf(p, "x3,id,x2,x1\n");
    for (int r = 0; r < 60; r++)
        p += sprintf(p, "%.9g,r%d,%.9g,%.9g\n", X[r * NF + 2], r, X[r * NF + 1], X[r * NF]);
    tb_in pin[2] = {{"model", run.out[0]}, {"data", d}};
    const char *const pouts[] = {"scores"};
    tb_run pr;
    tb_expect_ok("gbdt_predict", tb_args("id", "id", "threads", "2", NULL), pin, 2, pouts, 1, &pr);
    assert_string_equal(pr.r.return_value, "predicted rows: 60");
    assert_true(strncmp(pr.out[0], "id,probability,prediction\nr0,", 29) == 0);
    size_t cols;
    float *want = xgb_predict(run.out[0], run.out_len[0], 0, 60, false, &cols);
    assert_int_equal(cols, 1);
    expect_same(pr.out[0], want, 60, 1, 1);
    assert_null(strstr(pr.r.log, "predictor")); /* the engine is not a participant's to read */
    free(want);

    /* empty fields are missing values: the in-place prediction gives what
     * XGBoost gives for a DMatrix holding NaN there */
    float saved[60];
    p = d;
    p += sprintf(p, "x1,x2,x3\n");
    for (int r = 0; r < 60; r++) {
        saved[r] = X[r * NF + 1];
        if (r % 4 == 0) {
            p += sprintf(p, "%.9g,,%.9g\n", X[r * NF], X[r * NF + 2]);
            X[r * NF + 1] = NAN;
        } else {
            p += sprintf(p, "%.9g,%.9g,%.9g\n", X[r * NF], X[r * NF + 1], X[r * NF + 2]);
        }
    }
    tb_run pm;
    tb_expect_ok("gbdt_predict", NULL, pin, 2, pouts, 1, &pm);
    want = xgb_predict(run.out[0], run.out_len[0], 0, 60, false, &cols);
    for (int r = 0; r < 60; r++)
        X[r * NF + 1] = saved[r];
    expect_same(pm.out[0], want, 60, 1, 0);
    assert_null(strstr(pm.r.log, "predictor"));
    free(want);
    tb_run_clear(&pm);

    /* the same training in this process gives the same predictions */
    DMatrixHandle dm;
    BoosterHandle bst;
    assert_int_equal(XGDMatrixCreateFromMat(X, NR, NF, NAN, &dm), 0);
    assert_int_equal(XGDMatrixSetFloatInfo(dm, "label", Y, NR), 0);
    assert_int_equal(XGBoosterCreate(&dm, 1, &bst), 0);
    static const char *const kv[][2] = {{"objective", "binary:logistic"}, {"tree_method", "hist"},
                                        {"max_depth", "3"},  {"eta", "0.29999999999999999"},
                                        {"subsample", "1"},  {"nthread", "2"},
                                        {"seed", "7"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        assert_int_equal(XGBoosterSetParam(bst, kv[i][0], kv[i][1]), 0);
    for (int it = 0; it < 12; it++)
        assert_int_equal(XGBoosterUpdateOneIter(bst, it, dm), 0);
    bst_ulong ml;
    const char *mj;
    assert_int_equal(XGBoosterSaveModelToBuffer(bst, "{\"format\": \"json\"}", &ml, &mj), 0);
    float *own = xgb_predict(mj, ml, 0, 60, false, &cols);
    expect_same(pr.out[0], own, 60, 1, 1);
    free(own);
    XGBoosterFree(bst);
    XGDMatrixFree(dm);
    tb_run_clear(&pr);
    tb_run_clear(&run);
    free(d);
    free(a);
    free(b);
}

static void test_multiclass(void **state)
{
    (void)state;
    char *a = csv(0, NR, YM, true);
    tb_in in[1] = {{"a", a}};
    const char *const outs[] = {"m1", "m2"};
    tb_run run;
    tb_expect_ok("gbdt_train",
                 tb_args("label", "5", "features", "x1,x2,x3", "objective", "multi:softprob",
                         "num_class", "3", "trees", "5", "depth", "2", "subsample", "0.8",
                         "seed", "3", NULL),
                 in, 1, outs, 2, &run);
    assert_string_equal(run.out[0], run.out[1]);
    tb_in pin[2] = {{"m", run.out[0]}, {"rows", a}};
    const char *const pouts[] = {"p"};
    tb_run pr;
    tb_expect_ok("gbdt_predict", tb_args("model_slot", "m", NULL), pin, 2, pouts, 1, &pr);
    assert_true(strncmp(pr.out[0], "p0,p1,p2,prediction\n", 20) == 0);
    size_t cols;
    float *want = xgb_predict(run.out[0], run.out_len[0], 0, NR, false, &cols);
    assert_int_equal(cols, 3);
    expect_same(pr.out[0], want, NR, 3, 0);
    /* XGBoost's predictor; the reason is not in the task's log */
    assert_null(strstr(pr.r.log, "predictor")); /* the engine is not a participant's to read */
    free(want);
    tb_run_clear(&pr);
    tb_run_clear(&run);
    free(a);
}

static void test_regression_libsvm(void **state)
{
    (void)state;
    char *a = libsvm(0, 100, YR), *b = libsvm(100, NR, YR);
    tb_in in[2] = {{"p1", a}, {"p2", b}};
    const char *const outs[] = {"model"};
    tb_run run;
    tb_expect_ok("gbdt_train",
                 tb_args("format", "libsvm", "trees", "8", "depth", "4", "eta", "0.5", NULL), in,
                 2, outs, 1, &run);
    tb_in pin[2] = {{"model", run.out[0]}, {"x", b}};
    const char *const pouts[] = {"p"};
    tb_run pr;
    tb_expect_ok("gbdt_predict", tb_args("format", "libsvm", NULL), pin, 2, pouts, 1, &pr);
    assert_true(strncmp(pr.out[0], "prediction\n", 11) == 0);
    size_t cols;
    float *want = xgb_predict(run.out[0], run.out_len[0], 100, NR, true, &cols);
    expect_same(pr.out[0], want, NR - 100, 1, 0);
    assert_null(strstr(pr.r.log, "predictor")); /* the engine is not a participant's to read */
    free(want);
    tb_run_clear(&pr);
    tb_run_clear(&run);
    free(a);
    free(b);
}

/* A party brings a model trained elsewhere (no feature names). */
static void test_model_from_elsewhere(void **state)
{
    (void)state;
    DMatrixHandle dm;
    BoosterHandle bst;
    assert_int_equal(XGDMatrixCreateFromMat(X, NR, NF, NAN, &dm), 0);
    assert_int_equal(XGDMatrixSetFloatInfo(dm, "label", YR, NR), 0);
    assert_int_equal(XGBoosterCreate(&dm, 1, &bst), 0);
    assert_int_equal(XGBoosterSetParam(bst, "max_depth", "3"), 0);
    for (int it = 0; it < 6; it++)
        assert_int_equal(XGBoosterUpdateOneIter(bst, it, dm), 0);
    bst_ulong ml;
    const char *mj;
    assert_int_equal(XGBoosterSaveModelToBuffer(bst, "{\"format\": \"json\"}", &ml, &mj), 0);
    char *model = strndup(mj, ml);
    char *data = csv(0, 50, NULL, true);
    /* columns: id,x1,x2,x3,y: "y" must be left out by naming the features */
    tb_in pin[2] = {{"model", model}, {"data", data}};
    const char *const pouts[] = {"p"};
    tb_run pr;
    tb_expect_ok("gbdt_predict", tb_args("features", "x1,x2,x3", NULL), pin, 2, pouts, 1, &pr);
    size_t cols;
    float *want = xgb_predict(model, ml, 0, 50, false, &cols);
    expect_same(pr.out[0], want, 50, 1, 0);
    free(want);
    tb_run_clear(&pr);
    tb_expect_fail("gbdt_predict", tb_args("id", "id", NULL), pin, 2, pouts, 1,
                   "4 feature columns, but the model has 3 features");
    XGBoosterFree(bst); /* frees mj */
    XGDMatrixFree(dm);
    free(model);
    free(data);
}

/* A model our predictor does not take (dart booster) is predicted by
 * XGBoost's predictor: the same output as XGBoost in this process. */
static void test_fallback_dart(void **state)
{
    (void)state;
    DMatrixHandle dm;
    BoosterHandle bst;
    assert_int_equal(XGDMatrixCreateFromMat(X, NR, NF, NAN, &dm), 0);
    assert_int_equal(XGDMatrixSetFloatInfo(dm, "label", Y, NR), 0);
    assert_int_equal(XGBoosterCreate(&dm, 1, &bst), 0);
    assert_int_equal(XGBoosterSetParam(bst, "booster", "dart"), 0);
    assert_int_equal(XGBoosterSetParam(bst, "objective", "binary:logistic"), 0);
    assert_int_equal(XGBoosterSetParam(bst, "rate_drop", "0.2"), 0);
    assert_int_equal(XGBoosterSetParam(bst, "max_depth", "3"), 0);
    for (int it = 0; it < 6; it++)
        assert_int_equal(XGBoosterUpdateOneIter(bst, it, dm), 0);
    bst_ulong ml;
    const char *mj;
    assert_int_equal(XGBoosterSaveModelToBuffer(bst, "{\"format\": \"json\"}", &ml, &mj), 0);
    char *model = strndup(mj, ml);
    char *data = csv(0, 80, NULL, false);
    tb_in pin[2] = {{"model", model}, {"data", data}};
    const char *const pouts[] = {"p"};
    tb_run pr;
    tb_expect_ok("gbdt_predict", tb_args("features", "x1,x2,x3", NULL), pin, 2, pouts, 1, &pr);
    size_t cols;
    float *want = xgb_predict(model, ml, 0, 80, false, &cols);
    expect_same(pr.out[0], want, 80, 1, 0);
    assert_null(strstr(pr.r.log, "predictor")); /* the engine is not a participant's to read */
    free(want);
    tb_run_clear(&pr);
    XGBoosterFree(bst);
    XGDMatrixFree(dm);
    free(model);
    free(data);
}

/* ------------------------------------------------- more rows than the check */

#define BN 1000 /* rows: well past own_predictor's 256-row check */
#define BF 4

static float BX[BN * BF], BY[BN];

/* Features on a grid of exact floats, about one in six missing (NaN). */
static void make_big(void)
{
    uint64_t s = 777;
    for (int r = 0; r < BN; r++) {
        for (int k = 0; k < BF; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            int v = (int)(s >> 40) % 2000 - 1000;
            BX[r * BF + k] = (s >> 33) % 6 == 0 ? NAN : (float)v / 32.0f;
        }
        float a = BX[r * BF], b = BX[r * BF + 2];
        BY[r] = (a == a ? a : 7.0f) + (b == b ? 0.5f * b : -3.0f) > 0 ? 1.0f : 0.0f;
    }
}

/* A model trained in this process on the big data (XGBoost's JSON, heap). */
static char *big_model(const char *objective, size_t *len)
{
    DMatrixHandle dm;
    BoosterHandle bst;
    assert_int_equal(XGDMatrixCreateFromMat(BX, BN, BF, NAN, &dm), 0);
    assert_int_equal(XGDMatrixSetFloatInfo(dm, "label", BY, BN), 0);
    assert_int_equal(XGBoosterCreate(&dm, 1, &bst), 0);
    assert_int_equal(XGBoosterSetParam(bst, "objective", objective), 0);
    assert_int_equal(XGBoosterSetParam(bst, "max_depth", "5"), 0);
    assert_int_equal(XGBoosterSetParam(bst, "nthread", "1"), 0);
    for (int it = 0; it < 10; it++)
        assert_int_equal(XGBoosterUpdateOneIter(bst, it, dm), 0);
    bst_ulong ml;
    const char *mj;
    assert_int_equal(XGBoosterSaveModelToBuffer(bst, "{\"format\": \"json\"}", &ml, &mj), 0);
    char *m = strndup(mj, ml);
    *len = ml;
    XGBoosterFree(bst);
    XGDMatrixFree(dm);
    return m;
}

/* XGBoost's own predictions of every big row: from the dense matrix
 * (XGBoosterPredictFromDense) or from a CSR DMatrix of the present values. */
static float *big_want(const char *model, size_t len, bool csr)
{
    BoosterHandle b;
    assert_int_equal(XGBoosterCreate(NULL, 0, &b), 0);
    assert_int_equal(XGBoosterLoadModelFromBuffer(b, model, len), 0);
    assert_int_equal(XGBoosterSetParam(b, "nthread", "1"), 0);
    const bst_ulong *shape;
    bst_ulong dim;
    const float *pr;
    static const char cfg[] = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                              "\"iteration_end\": 0, \"strict_shape\": false";
    DMatrixHandle d = NULL;
    if (csr) {
        size_t *ip = malloc((BN + 1) * sizeof *ip), nnz = 0;
        unsigned *ix = malloc(BN * BF * sizeof *ix);
        float *vs = malloc(BN * BF * sizeof *vs);
        ip[0] = 0;
        for (int r = 0; r < BN; r++) {
            for (int k = 0; k < BF; k++)
                if (BX[r * BF + k] == BX[r * BF + k]) {
                    ix[nnz] = (unsigned)k;
                    vs[nnz++] = BX[r * BF + k];
                }
            ip[r + 1] = nnz;
        }
        assert_int_equal(XGDMatrixCreateFromCSREx(ip, ix, vs, BN + 1, nnz, BF, &d), 0);
        free(ip);
        free(ix);
        free(vs);
        char c[sizeof cfg + 2];
        snprintf(c, sizeof c, "%s}", cfg);
        assert_int_equal(XGBoosterPredictFromDMatrix(b, d, c, &shape, &dim, &pr), 0);
    } else {
        char ai[160], c[sizeof cfg + 64];
        snprintf(ai, sizeof ai,
                 "{\"data\": [%llu, true], \"shape\": [%d, %d], \"typestr\": \"<f4\", "
                 "\"version\": 3}",
                 (unsigned long long)(uintptr_t)BX, BN, BF);
        snprintf(c, sizeof c, "%s, \"cache_id\": 0, \"missing\": NaN}", cfg);
        assert_int_equal(XGBoosterPredictFromDense(b, ai, c, NULL, &shape, &dim, &pr), 0);
    }
    assert_int_equal(shape[0], BN);
    assert_true(dim == 1 || (dim == 2 && shape[1] == 1));
    float *out = malloc(BN * sizeof *out);
    memcpy(out, pr, BN * sizeof *out);
    if (d)
        XGDMatrixFree(d);
    XGBoosterFree(b);
    return out;
}

/* Runs fn (gbdt_predict, or a test worker's faulty one) on the big data and
 * expects every row equal to want and engine named in the log (NULL: no
 * engine named, as gbdt_predict's log must not: every participant reads it). */
static void big_run(const char *fn, const char *model, const char *data, bool libsvm,
                    const float *want, const char *engine)
{
    tb_in pin[2] = {{"model", model}, {"data", data}};
    const char *const pouts[] = {"p"};
    tb_run pr;
    if (strncmp(fn, "__test_", 7) == 0)
        tb_set_worker(MT_WORKER_TEST_PATH);
    tb_expect_ok(fn, tb_args("threads", "3", libsvm ? "format" : NULL, "libsvm", NULL), pin, 2,
                 pouts, 1, &pr);
    assert_string_equal(pr.r.return_value, "predicted rows: 1000");
    expect_same(pr.out[0], want, BN, 1, 0);
    if (engine && !strstr(pr.r.log, engine))
        fail_msg("%s: log without %s: %s", fn, engine, pr.r.log);
    if (!engine && strstr(pr.r.log, "predictor")) /* gbdt_predict: no engine named */
        fail_msg("%s: log names the engine: %s", fn, pr.r.log);
    tb_run_clear(&pr);
}

/* CSV (empty fields missing), 1,000 rows: our predictor predicts every row
 * as XGBoost does; when the check sees a difference, or our full prediction
 * fails, XGBoost's predictor predicts every row. */
static void test_big_csv(void **state)
{
    (void)state;
    size_t ml;
    char *model = big_model("binary:logistic", &ml);
    float *want = big_want(model, ml, false);
    char *d = malloc((size_t)BN * BF * 24 + 64), *p = d;
    p += sprintf(p, "f0,f1,f2,f3\n");
    for (int r = 0; r < BN; r++)
        for (int k = 0; k < BF; k++) {
            float v = BX[r * BF + k];
            if (v == v)
                p += sprintf(p, "%.9g", v);
            *p++ = k + 1 < BF ? ',' : '\n';
        }
    *p = 0;
    big_run("gbdt_predict", model, d, false, want, NULL);
    big_run("__test_gbdt_predict", model, d, false, want, "(own predictor)");
    big_run("__test_gbdt_predict_differs", model, d, false, want, "(XGBoost's predictor)");
    big_run("__test_gbdt_predict_fails", model, d, false, want, "(XGBoost's predictor)");
    free(d);
    free(want);
    free(model);
}

/* The same with LIBSVM rows (CSR; absent entries missing). */
static void test_big_libsvm(void **state)
{
    (void)state;
    size_t ml;
    char *model = big_model("reg:squarederror", &ml);
    float *want = big_want(model, ml, true);
    char *d = malloc((size_t)BN * BF * 24 + 64), *p = d;
    for (int r = 0; r < BN; r++) {
        p += sprintf(p, "%g", BY[r]);
        for (int k = 0; k < BF; k++)
            if (BX[r * BF + k] == BX[r * BF + k])
                p += sprintf(p, " %d:%.9g", k, BX[r * BF + k]);
        *p++ = '\n';
    }
    *p = 0;
    big_run("gbdt_predict", model, d, true, want, NULL);
    big_run("__test_gbdt_predict", model, d, true, want, "(own predictor)");
    big_run("__test_gbdt_predict_differs", model, d, true, want, "(XGBoost's predictor)");
    big_run("__test_gbdt_predict_fails", model, d, true, want, "(XGBoost's predictor)");
    free(d);
    free(want);
    free(model);
}

static void test_bad_input(void **state)
{
    (void)state;
    const char *const outs[] = {"model"};
    tb_in ok[1] = {{"a", "x,y\n1,0\n2,1\n3,0\n"}};
#define TRAIN_FAILS(args, in, n, want) tb_expect_fail("gbdt_train", args, in, n, outs, 1, want)
    TRAIN_FAILS(NULL, ok, 1, "argument 'label' is required");
    TRAIN_FAILS(tb_args("label", "y", "depht", "3", NULL), ok, 1, "unknown argument 'depht'");
    TRAIN_FAILS(tb_args("label", "y", "objective", "rank:pairwise", NULL), ok, 1,
                "argument 'objective'");
    TRAIN_FAILS(tb_args("label", "y", "objective", "multi:softprob", NULL), ok, 1,
                "'num_class' is required");
    TRAIN_FAILS(tb_args("label", "y", "num_class", "3", NULL), ok, 1,
                "'num_class' is only for multi:softprob");
    TRAIN_FAILS(tb_args("label", "y", "trees", "0", NULL), ok, 1,
                "argument 'trees': expected an integer from 1 to 10000");
    TRAIN_FAILS(tb_args("label", "y", "eta", "2", NULL), ok, 1, "argument 'eta'");
    TRAIN_FAILS(tb_args("label", "y", "format", "json", NULL), ok, 1, "argument 'format'");
    TRAIN_FAILS(tb_args("label", "z", NULL), ok, 1, "label");
    tb_in bin[1] = {{"a", "x,y\n1,0\n2,2\n"}};
    TRAIN_FAILS(tb_args("label", "y", "objective", "binary:logistic", NULL), bin, 1,
                "input 'a', line 3, column 2: binary:logistic needs labels from 0 to 1");
    tb_in mc[1] = {{"a", "y,x\n0,1\n1.5,2\n"}};
    TRAIN_FAILS(tb_args("label", "y", "objective", "multi:softprob", "num_class", "2", NULL), mc,
                1, "input 'a', line 3, column 1: multi:softprob needs integer labels");
    tb_in nan[1] = {{"a", "x,y\n1,0\n\n2,abc\n"}};
    TRAIN_FAILS(tb_args("label", "y", NULL), nan, 1, "input 'a', line 4, column 2");
    tb_in cols[1] = {{"a", "x,y\n1,0\n2\n"}};
    TRAIN_FAILS(tb_args("label", "y", NULL), cols, 1, "input 'a', line 3");
    tb_in empty[1] = {{"a", "x,y\n"}};
    TRAIN_FAILS(tb_args("label", "y", NULL), empty, 1, "no data rows");
    tb_in two[2] = {{"a", "x,y\n1,0\n"}, {"b", "y,w\n1,2\n"}};
    TRAIN_FAILS(tb_args("label", "y", NULL), two, 2, "input 'b', line 1: no feature column 'x'");
    tb_in svm[1] = {{"s", "1 0:1 1:2\n0 1:1 0:2\n"}};
    TRAIN_FAILS(tb_args("format", "libsvm", NULL), svm, 1,
                "input 's', line 2, column 3: indices must increase");
    tb_in svm2[1] = {{"s", "1 0:1\n\n0 3=1\n"}};
    TRAIN_FAILS(tb_args("format", "libsvm", NULL), svm2, 1,
                "input 's', line 3, column 2: expected index:value");
    tb_in svm3[1] = {{"s", "x 0:1\n"}};
    TRAIN_FAILS(tb_args("format", "libsvm", NULL), svm3, 1, "line 1, column 1: label");
    TRAIN_FAILS(tb_args("format", "libsvm", "label", "y", NULL), svm3, 1,
                "are for CSV input");
    tb_expect_fail("gbdt_train", tb_args("label", "y", NULL), ok, 1, NULL, 0,
                   "declare at least one output");
#undef TRAIN_FAILS
    const char *const pouts[] = {"p"};
    tb_in nomodel[2] = {{"model", "{\"learner\": 3"}, {"d", "x\n1\n"}};
    tb_expect_fail("gbdt_predict", NULL, nomodel, 2, pouts, 1, "input 'model': not an XGBoost");
    tb_in badmodel[2] = {{"model", "{\"learner\": {\"secret\": 42}}"}, {"d", "x\n1\n"}};
    tb_expect_fail("gbdt_predict", NULL, badmodel, 2, pouts, 1,
                   "input 'model': not an XGBoost JSON model XGBoost can load");
    tb_in nodata[1] = {{"model", "{}"}};
    tb_expect_fail("gbdt_predict", NULL, nodata, 1, pouts, 1, "needs a data input slot");
    tb_expect_fail("gbdt_predict", tb_args("model_slot", "m", NULL), nodata, 1, pouts, 1,
                   "no input slot 'm'");
}

int main(void)
{
    make_data();
    make_big();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_csv),        cmocka_unit_test(test_multiclass),
        cmocka_unit_test(test_regression_libsvm), cmocka_unit_test(test_model_from_elsewhere),
        cmocka_unit_test(test_fallback_dart),     cmocka_unit_test(test_big_csv),
        cmocka_unit_test(test_big_libsvm),        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, tb_setup, tb_teardown);
}
