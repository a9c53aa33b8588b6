/* builtins: the registry of built-in functions. Compiled into the daemon's
 * mt_executor (for mt_builtin_exists) and into each worker executable; only
 * mesatee-worker-test is built with MT_WORKER_TEST_BUILTINS, which adds the
 * "__test_*" functions that exercise the sandbox. */
#include <string.h>

#include "builtin_csv.h"
#include "builtin_ml.h"
#include "mt_builtin.h"
#include "mt_executor.h"

#ifdef MT_WORKER_TEST_BUILTINS
mt_status mt_builtin_test_crash(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_spin(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_alloc(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_open(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_state(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_keysign(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_sleep(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_keysign_huge(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_linger(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_env(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_arena(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_gbdt_named(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_sparse(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_gbdt_differs(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_gbdt_fails(mt_bctx *ctx, char **ret, mt_err *err);
mt_status mt_builtin_test_stderr(mt_bctx *ctx, char **ret, mt_err *err);
#endif

/* onnx_infer runs the ONNX engine (mt_nn, oneDNN), which only the worker executables
 * link (MT_WORKER_NN): the daemon's copy of this registry knows the name only, for
 * mt_builtin_exists, and never calls it. */
#ifdef MT_WORKER_NN
#define ONNX_INFER_FN mt_builtin_onnx_infer
#define IMAGE_CLASSIFY_FN mt_builtin_image_classify /* builtin_image.c */
#define FACE_DETECT_FN mt_builtin_face_detect
#else
#define IMAGE_CLASSIFY_FN NULL
#define FACE_DETECT_FN NULL
#define ONNX_INFER_FN NULL
#endif

static const struct {
    const char *name;
    mt_builtin_fn fn;
} registry[] = {
    {"echo", mt_builtin_echo},
    {"psi", mt_builtin_psi},
    {"private_join_and_compute", mt_builtin_private_join_and_compute},
    {"psi_cardinality", mt_builtin_psi_cardinality},
    {"ordered_set_intersect", mt_builtin_ordered_set_intersect},
    {"ordered_set_join", mt_builtin_ordered_set_join},
    {"linear_regression_train", mt_builtin_linear_regression_train},
    {"linear_regression_predict", mt_builtin_linear_regression_predict},
    {"logistic_regression_train", mt_builtin_logistic_regression_train},
    {"logistic_regression_predict", mt_builtin_logistic_regression_predict},
    {"sql", mt_builtin_sql},
    {"password_check", mt_builtin_password_check},
    {"rsa_sign", mt_builtin_rsa_sign},
    {"keystore_sign", mt_builtin_keystore_sign},
    {"gbdt_train", mt_builtin_gbdt_train},
    {"gbdt_predict", mt_builtin_gbdt_predict},
    {"kmeans", mt_builtin_kmeans},
    {"pca", mt_builtin_pca},
    {"onnx_infer", ONNX_INFER_FN},
    {"image_classify", IMAGE_CLASSIFY_FN},
    {"face_detect", FACE_DETECT_FN},
#ifdef MT_WORKER_TEST_BUILTINS
    {"__test_crash", mt_builtin_test_crash},
    {"__test_spin", mt_builtin_test_spin},
    {"__test_alloc", mt_builtin_test_alloc},
    {"__test_open", mt_builtin_test_open},
    {"__test_state", mt_builtin_test_state},
    {"__test_keysign", mt_builtin_test_keysign},
    {"__test_sleep", mt_builtin_test_sleep},
    {"__test_keysign_huge", mt_builtin_test_keysign_huge},
    {"__test_env", mt_builtin_test_env},
    {"__test_arena", mt_builtin_test_arena},
    {"__test_gbdt_predict", mt_builtin_test_gbdt_named},
    {"__test_sparse", mt_builtin_test_sparse},
    {"__test_linger", mt_builtin_test_linger},
    {"__test_gbdt_predict_differs", mt_builtin_test_gbdt_differs},
    {"__test_gbdt_predict_fails", mt_builtin_test_gbdt_fails},
    {"__test_stderr", mt_builtin_test_stderr},
#endif
};

mt_builtin_fn mt_builtin_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i].name, name) == 0)
            return registry[i].fn;
    return NULL;
}

bool mt_builtin_exists(const char *name)
{
    if (!name)
        return false;
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strcmp(registry[i].name, name) == 0)
            return true;
    return false;
}
