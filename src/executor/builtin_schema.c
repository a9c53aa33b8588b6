/* builtin_schema: the argument and slot table of the built-ins (mt_bschema.h)
 * and its checks. Ranges and choices here are the ones the built-ins enforce
 * (builtin_*.c, docs/builtins.md); change both together. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mt_bschema.h"

#define ARG_MAX_VALUE 4096
#define NO_LIMIT 0, 0, 0, 0, NULL, 0

/* ---- argument declarations ------------------------------------------------ */

#define S(n, req, d, help) {n, MT_BARG_STRING, req, d, NO_LIMIT, help}
#define SL(n, req, len, help) {n, MT_BARG_STRING, req, NULL, 0, 0, 0, 0, NULL, len, help}
#define I(n, req, d, lo, hi, help) {n, MT_BARG_INT, req, d, lo, hi, 0, 0, NULL, 0, help}
#define N(n, d, lo, hi, help) {n, MT_BARG_NUMBER, false, d, 0, 0, lo, hi, NULL, 0, help}
#define B(n, d, help) {n, MT_BARG_BOOL, false, d, NO_LIMIT, help}
#define E(n, d, ch, help) {n, MT_BARG_ENUM, false, d, 0, 0, 0, 0, ch, 0, help}
#define IN(n, d, help) {n, MT_BARG_INPUT_SLOT, false, d, NO_LIMIT, help}
#define OUT(n, d, help) {n, MT_BARG_OUTPUT_SLOT, false, d, NO_LIMIT, help}
#define KEY(n, help) {n, MT_BARG_KEYSTORE_KEY, false, NULL, NO_LIMIT, help}
#define ARGS(a) a, sizeof a / sizeof a[0]
#define NOARGS NULL, 0

static const char *const ch_agg[] = {"sum", "count", "mean", NULL};
static const char *const ch_solver[] = {"lbfgs", "liblinear", NULL};
static const char *const ch_pwformat[] = {"plain", "sha1", NULL};
static const char *const ch_digest[] = {"sha256", "sha384", "sha512", NULL};
static const char *const ch_padding[] = {"pkcs1", "pss", NULL};
static const char *const ch_format[] = {"csv", "libsvm", NULL};
static const char *const ch_objective[] = {"binary:logistic", "reg:squarederror",
                                           "multi:softprob", NULL};
static const char *const ch_clock[] = {"0", "1", NULL};

static const mt_barg a_echo[] = {
    S("message", true, NULL, "the string returned"),
};
static const mt_barg a_pjc[] = {
    S("id", false, "id", "id column (header name, or k for the k-th column)"),
    S("value", false, "value", "value column (not read with aggregate=count)"),
    E("aggregate", "sum", ch_agg, "aggregate over the rows of each common id"),
};
static const mt_barg a_ordered[] = {
    S("id", false, "id", "id column (sorted, strictly increasing)"),
};
static const mt_barg a_lin_train[] = {
    S("label", true, NULL, "label column"),
    S("features", false, NULL, "comma-separated feature columns (default: every other column)"),
    N("ridge", "0", 0, 1e12, "L2 penalty (the intercept is not penalised)"),
    B("intercept", "true", "fit an intercept"),
};
static const mt_barg a_log_train[] = {
    S("label", true, NULL, "label column (values 0 and 1)"),
    S("features", false, NULL, "comma-separated feature columns (default: every other column)"),
    N("C", "1", 1e-9, 1e9, "inverse regularisation strength"),
    N("eps", "0.01", 1e-12, 1, "stopping tolerance"),
    B("intercept", "true", "append a constant feature"),
    E("solver", "lbfgs", ch_solver, "solver of the same objective"),
};
static const mt_barg a_reg_predict[] = {
    IN("model_slot", "model", "input slot holding the model JSON"),
    S("id", false, NULL, "column copied to the output"),
};
static const mt_barg a_sql[] = {
    SL("query", true, 100000, "one read-only SELECT statement"),
    I("max_rows", false, "10000", 1, 10000000, "more result rows fail the task"),
    I("min_group_size", false, "0", 0, 1000000000,
      "k >= 1: aggregation mode, groups of fewer than k rows suppressed"),
};
static const mt_barg a_pwcheck[] = {
    IN("password_slot", "password", "input slot holding the password"),
    IN("list_slot", "breached", "input slot holding the list"),
    E("format", "plain", ch_pwformat, "list entries: passwords, or SHA-1 hex[:count]"),
};
static const mt_barg a_rsa[] = {
    /* no schema default: with a KeyStore 'key' there is no key slot; the
     * built-in still uses "key" when neither is given */
    IN("key_slot", NULL, "input slot holding the PEM private key (default 'key'; not with 'key')"),
    IN("data_slot", "data", "input slot holding the data to sign"),
    E("digest", "sha256", ch_digest, "digest"),
    E("padding", "pkcs1", ch_padding, "PKCS#1 v1.5 or PSS"),
    KEY("key", "KeyStore RSA key OWNER/NAME instead of a key slot (OWNER must take part)"),
    I("key_version", false, "0", 0, INT32_MAX, "version of the KeyStore key (0: the latest)"),
};
static const char *const ch_ks_padding[] = {"pss", "pkcs1", NULL};
static const mt_barg a_ks_sign[] = {
    KEY("key", "KeyStore signing key OWNER/NAME (OWNER must take part in the task)"),
    I("key_version", false, "0", 0, INT32_MAX, "version of the KeyStore key (0: the latest)"),
    IN("data_slot", "data", "input slot holding the data to sign"),
    E("digest", "sha256", ch_digest, "digest (ecdsa and rsa keys; ed25519 signs the data)"),
    E("padding", "pss", ch_ks_padding, "rsa keys: PSS or PKCS#1 v1.5"),
};
static const mt_barg a_gbdt_train[] = {
    S("label", false, NULL, "label column (CSV: required)"),
    S("features", false, NULL, "comma-separated feature columns (CSV)"),
    E("format", "csv", ch_format, "input format"),
    E("objective", "reg:squarederror", ch_objective, "learning objective"),
    I("num_class", false, NULL, 2, 1000, "classes (with, and only with, multi:softprob)"),
    I("trees", false, "100", 1, 10000, "boosting rounds"),
    I("depth", false, "6", 1, 20, "maximum tree depth"),
    N("eta", "0.3", 1e-6, 1, "learning rate"),
    N("subsample", "1", 1e-6, 1, "row subsampling ratio"),
    I("threads", false, "1", 1, 64, "threads"),
    I("seed", false, "0", 0, 2147483647, "random seed"),
};
static const mt_barg a_gbdt_predict[] = {
    IN("model_slot", "model", "input slot holding the XGBoost JSON model"),
    E("format", "csv", ch_format, "input format"),
    S("features", false, NULL, "comma-separated feature columns (CSV)"),
    S("id", false, NULL, "column copied to the output (CSV)"),
    I("threads", false, "1", 1, 64, "threads"),
};
static const mt_barg a_kmeans[] = {
    I("k", true, NULL, 1, 10000, "number of clusters (at most the number of rows)"),
    S("features", false, NULL, "comma-separated feature columns"),
    S("id", false, NULL, "column copied to the assignments"),
    I("seed", false, "0", 0, INT64_MAX, "seed of the k-means++ seeding"),
    I("max_iter", false, "300", 1, 100000, "Lloyd iterations at most"),
    OUT("centroids_slot", "centroids", "output slot receiving the centres"),
    OUT("assignments_slot", "assignments", "output slot receiving the assignments"),
};
static const mt_barg a_pca[] = {
    S("features", false, NULL, "comma-separated feature columns"),
    S("id", false, NULL, "column copied to the transformed rows"),
    I("components", false, NULL, 1, 1024, "components kept (default: every feature)"),
    B("scale", "false", "standardise the features"),
    OUT("components_slot", "components", "output slot receiving the components"),
    OUT("transformed_slot", "transformed", "output slot receiving the projected rows"),
};
static const char *const ch_npy_csv[] = {"npy", "csv", NULL};
static const mt_barg a_onnx_infer[] = {
    IN("model_slot", "model", "input slot holding the ONNX model (ModelProto)"),
    /* no schema default: a model with several inputs names its slots with inputs= and
     * has no slot "input"; the built-in uses "input" when neither is given */
    IN("input_slot", NULL, "input slot holding the input tensor (default: input; several "
                           "model inputs: see inputs)"),
    OUT("output_slot", "output", "output slot receiving the model's first output"),
    S("inputs", false, NULL,
      "NAME=SLOT,...: the input slot feeding each model input (needed with several inputs)"),
    S("outputs", false, NULL,
      "NAME=SLOT,...: the output slot of each model output written, or * (every output to "
      "the output slot of its name); default: the first output to output_slot"),
    I("model_size", false, NULL, 1, INT64_MAX,
      "bytes of the ModelProto at the start of the model slot; the external-data blob "
      "follows it"),
    SL("model_sha256", false, 64,
       "SHA-256 (hex) the model slot's plaintext must have; the task fails otherwise"),
    E("format", "npy", ch_npy_csv, "input format: .npy (float32/float64/int64) or CSV rows"),
    E("output_format", "npy", ch_npy_csv, "output format: .npy or CSV rows"),
    S("input_name", false, NULL, "the model input to feed (default: its only input)"),
    S("shape", false, NULL, "d0,d1,... the input's shape (default: the .npy shape, CSV rows x columns)"),
    I("threads", false, "1", 1, 16, "engine threads"),
    I("memory_mb", false, NULL, 1, 65536,
      "memory cap of the engine (weights + intermediate tensors) in MiB; default and "
      "maximum: half the task's memory limit"),
};
/* image_classify / face_detect (builtin_image.c, docs/nn.md): the image arguments */
static const char *const ch_rgb_bgr[] = {"rgb", "bgr", NULL};
static const char *const ch_nchw_nhwc[] = {"nchw", "nhwc", NULL};
static const char *const ch_csv_json[] = {"csv", "json", NULL};
#define IMAGE_ARGS(dmean, dstd)                                                              \
    IN("model_slot", "model", "input slot holding the ONNX model (ModelProto)"),             \
        OUT("output_slot", "output", "output slot receiving the results"),                   \
        I("height", false, NULL, 1, 4096, "model input height (default: the model's, else 224)"), \
        I("width", false, NULL, 1, 4096, "model input width (default: the model's, else 224)"),   \
        S("mean", false, dmean, "per-channel mean subtracted from value/255 (R,G,B)"),       \
        S("std", false, dstd, "per-channel divisor after the mean (R,G,B), each above 0"),   \
        E("channel_order", "rgb", ch_rgb_bgr, "channel order of the model's input"),         \
        E("layout", "nchw", ch_nchw_nhwc, "layout of the model's input"),                    \
        E("output_format", "csv", ch_csv_json, "result format"),                             \
        I("max_pixels", false, "16777216", 1, 268435456,                                     \
          "an image with more pixels (width x height) is refused before decoding"),          \
        I("threads", false, "1", 1, 16, "engine threads"),                                   \
        I("memory_mb", false, NULL, 1, 65536,                                                \
          "memory cap of the engine in MiB; default and maximum: half the task's memory limit")
static const mt_barg a_image_classify[] = {
    IMAGE_ARGS("0.485,0.456,0.406", "0.229,0.224,0.225"),
    IN("labels_slot", NULL, "input slot holding one class label per line (default: no labels)"),
    I("top_k", false, "5", 1, 1000, "classes reported per image"),
    B("softmax", "true", "apply softmax to the model's output"),
};
static const mt_barg a_face_detect[] = {
    IMAGE_ARGS("0.5,0.5,0.5", "0.5,0.5,0.5"),
    N("score_threshold", "0.7", 0, 1, "keep detections whose score is at least this"),
    N("iou_threshold", "0.3", 0, 1, "suppress a box overlapping a kept one by more (IoU)"),
    I("max_detections", false, "100", 1, 10000, "detections kept per image at most"),
    I("class", false, "1", 0, 65535, "the face class: index into the scores' last dimension"),
};
static const mt_barg a_wasm[] = {
    I("wasm_fuel", false, "10000000000", 1, 1000000000000LL, "instructions the module may run"),
    I("wasm_memory_mb", false, "256", 1, 1024, "linear memory limit in MiB"),
    E("wasm_clock", "0", ch_clock, "1 lets the module read the clocks"),
    KEY("wasm_key", "KeyStore key OWNER/NAME that mesatee.key_sign signs with"),
    I("wasm_key_version", false, "0", 0, INT32_MAX, "version of wasm_key (0: the latest)"),
};

/* executor type "python" (python_fn.h): the reserved arguments;
 * python_modules is set by the server, never by a function or a task
 * (python_modules.h: fn_schema.c refuses it in a declaration) */
static const mt_barg a_python[] = {
    I("python_max_output_mb", false, "1024", 1, 16384,
      "MiB of plaintext the function may write over all its outputs"),
    I("python_recursion_limit", false, "1000", 50, 10000,
      "Python's recursion limit (sys.setrecursionlimit); deeper calls raise RecursionError"),
    KEY("python_key", "KeyStore key OWNER/NAME that mesatee.key_sign signs with"),
    I("python_key_version", false, "0", 0, INT32_MAX, "version of python_key (0: the latest)"),
    SL("python_modules", false, 4096,
       "set by the server: the operator's allow-list of importable modules (sorted, ','-"
       "separated), approved with the task"),
};

#define ANY MT_BSLOTS_ANY
static const mt_bschema table[] = {
    {"echo", "returns its message argument", ARGS(a_echo), false, 0, 0, 0, 0, false, "none",
     "none", "the message"},
    {"psi", "private set intersection of N >= 2 id lists", NOARGS, false, 2, ANY, 0, ANY, false,
     "id lists, one id per line", "each receives the intersection", "intersection size: N"},
    {"private_join_and_compute", "ids present in all inputs with an aggregate of their values",
     ARGS(a_pjc), false, 2, ANY, 0, ANY, false, "CSV with header: id and value columns",
     "each receives CSV id,<aggregate>", "intersection size: N"},
    {"psi_cardinality", "size of the intersection of N >= 2 id lists", NOARGS, false, 2, ANY, 0,
     0, false, "id lists, one id per line", "none", "the size"},
    {"ordered_set_intersect", "which of its rows the other party has (sorted ids)",
     ARGS(a_ordered), false, 2, 2, 0, 2, false, "CSV with header, ids strictly increasing",
     "in slot-name order, output k gets id,member for input k", "intersection size: N"},
    {"ordered_set_join", "rows joined on sorted ids", ARGS(a_ordered), false, 2, 2, 0, ANY, false,
     "CSV with header, ids strictly increasing", "each receives the joined rows",
     "joined rows: N"},
    {"linear_regression_train", "least squares (ridge) by the normal equations",
     ARGS(a_lin_train), false, 1, ANY, 0, ANY, false, "CSV with header, numeric columns",
     "each receives the model JSON", "rows: N, r2: R"},
    {"linear_regression_predict", "predictions of a linear model", ARGS(a_reg_predict), false, 2,
     ANY, 0, ANY, false, "the model slot and >= 1 CSV data slots", "each receives CSV predictions",
     "predicted rows: N"},
    {"logistic_regression_train", "L2-regularised logistic regression", ARGS(a_log_train), false,
     1, ANY, 0, ANY, false, "CSV with header, label 0/1", "each receives the model JSON",
     "rows: N, training accuracy: A"},
    {"logistic_regression_predict", "probabilities of a logistic model", ARGS(a_reg_predict),
     false, 2, ANY, 0, ANY, false, "the model slot and >= 1 CSV data slots",
     "each receives CSV probability,prediction", "predicted rows: N"},
    {"sql", "a SELECT over every input as a table (clean room)", ARGS(a_sql), false, 1, ANY, 0, ANY,
     false, "CSV with header; the slot name is the table name", "each receives the result CSV",
     "rows: N"},
    {"password_check", "is a password in a breached-password list", ARGS(a_pwcheck), false, 2, 2,
     0, 0, false, "the password and the list", "none", "true or false"},
    {"rsa_sign", "one party's RSA key signs another party's data", ARGS(a_rsa), false, 1, 2, 0,
     ANY, false, "the PEM private key and the data; only the data with a KeyStore 'key'",
     "each receives the base64 signature", "the signature"},
    {"keystore_sign", "a participant's KeyStore key signs another party's data", ARGS(a_ks_sign),
     false, 1, 1, 0, ANY, false, "the data", "each receives the base64 signature",
     "the signature (base64; ECDSA in ASN.1 DER)"},
    {"gbdt_train", "gradient boosted trees (XGBoost)", ARGS(a_gbdt_train), false, 1, ANY, 1, ANY,
     false, "CSV with header, or LIBSVM", "each receives the XGBoost JSON model",
     "rows: N, features: P, trees: T"},
    {"gbdt_predict", "predictions of an XGBoost model", ARGS(a_gbdt_predict), false, 2, ANY, 0,
     ANY, false, "the model slot and >= 1 data slots", "each receives CSV predictions",
     "predicted rows: N"},
    {"kmeans", "k-means++ clustering", ARGS(a_kmeans), false, 1, ANY, 1, 2, true,
     "CSV with header, numeric columns", "the centroids and/or assignments slots",
     "rows: N, k: K, iterations: I, inertia: X"},
    {"pca", "principal component analysis", ARGS(a_pca), false, 1, ANY, 1, 2, true,
     "CSV with header, numeric columns", "the components and/or transformed slots",
     "rows: N, components: K, explained variance ratio: R"},
    {"onnx_infer", "one party's ONNX model on another party's tensor", ARGS(a_onnx_infer), false,
     2, ANY, 1, ANY, false,
     "the model slot (ONNX [+ external data]) and one input slot per model input (.npy or CSV)",
     "the output slot receives the first model output, or the slots named by outputs (.npy or "
     "CSV)",
     "output shape: [d0,...] (one [..] per output written)"},
    {"image_classify", "one party's ONNX classifier on another party's JPEG/PNG images",
     ARGS(a_image_classify), false, 2, ANY, 1, 1, true,
     "the model slot (ONNX), optional labels slot, one JPEG or PNG image per other slot",
     "the output slot receives the top-k classes per image (CSV or JSON)", "images: N"},
    {"face_detect", "one party's ONNX detector on another party's JPEG/PNG images",
     ARGS(a_face_detect), false, 2, ANY, 1, 1, true,
     "the model slot (ONNX: scores [1,N,C], boxes [1,N,4]), one JPEG or PNG image per other slot",
     "the output slot receives boxes and scores after NMS (CSV or JSON)", "images: N"},
};
#define N_TABLE (sizeof table / sizeof table[0])

static const mt_bschema wasm_schema = {
    "wasm", "reserved task arguments of WebAssembly functions", ARGS(a_wasm), true, 0, ANY, 0,
    ANY, false, "the function's declared slots", "the function's declared slots",
    "what the module sets"};

static const mt_bschema python_schema = {
    "python", "reserved task arguments of Python functions", ARGS(a_python), true, 0, ANY, 0,
    ANY, false, "the function's declared slots", "the function's declared slots",
    "what the function returns or passes to mesatee.set_result"};

const mt_bschema *mt_bschema_python(void)
{
    return &python_schema;
}

/* What a python function may import (its own imports; the packages
 * themselves import what they need): the standard library minus I/O,
 * process, network, interpreter-introspection and code-loading modules,
 * plus the scientific stack from Debian. Here, beside the schema, so the
 * daemon can list it (GET /v1/builtins) without linking the worker's
 * Python module, which enforces the same table (python_fn.c). */
static const char *const python_modules[] = {
    "mesatee", "abc", "array", "base64", "binascii", "bisect", "bz2", "calendar", "cmath",
    "codecs", "collections", "colorsys", "contextlib", "copy", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "enum", "fractions", "functools", "gzip", "hashlib",
    "heapq", "hmac", "io", "itertools", "json", "lzma", "math", "numbers", "operator",
    "pprint", "random", "re", "secrets", "statistics", "string", "struct", "textwrap", "time",
    "typing", "unicodedata", "uuid", "warnings", "zlib", "numpy", "pandas", "scipy", "sklearn",
    "statsmodels", "xgboost", NULL,
};

const char *const *mt_bschema_python_modules(void)
{
    return python_modules;
}

/* ---- lookup ------------------------------------------------------------- */

size_t mt_bschema_count(void)
{
    return N_TABLE;
}

const mt_bschema *mt_bschema_at(size_t i)
{
    return i < N_TABLE ? &table[i] : NULL;
}

const mt_bschema *mt_bschema_find(const char *name)
{
    for (size_t i = 0; name && i < N_TABLE; i++)
        if (!strcmp(table[i].name, name))
            return &table[i];
    return NULL;
}

const mt_bschema *mt_bschema_wasm(void)
{
    return &wasm_schema;
}

const mt_barg *mt_bschema_arg(const mt_bschema *s, const char *name)
{
    for (size_t i = 0; s && name && i < s->n_args; i++)
        if (!strcmp(s->args[i].name, name))
            return &s->args[i];
    return NULL;
}

static bool key_part_ok(const char *p, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return !(n <= 2 && p[0] == '.' && (n == 1 || p[1] == '.'));
}

bool mt_bschema_key_split(const char *v, char owner[65], char name[129])
{
    const char *slash = v ? v + strcspn(v, "/:") : NULL;
    if (!slash || !*slash)
        return false;
    size_t on = (size_t)(slash - v), nn = strlen(slash + 1);
    if (!key_part_ok(v, on, 64) || !key_part_ok(slash + 1, nn, 128))
        return false;
    memcpy(owner, v, on);
    owner[on] = '\0';
    memcpy(name, slash + 1, nn);
    name[nn] = '\0';
    return true;
}

const char *mt_bschema_type_name(mt_barg_type t)
{
    switch (t) {
    case MT_BARG_STRING: return "string";
    case MT_BARG_INT: return "integer";
    case MT_BARG_NUMBER: return "number";
    case MT_BARG_BOOL: return "boolean";
    case MT_BARG_ENUM: return "enum";
    case MT_BARG_INPUT_SLOT: return "input_slot";
    case MT_BARG_OUTPUT_SLOT: return "output_slot";
    case MT_BARG_KEYSTORE_KEY: return "keystore_key";
    }
    return "?";
}

/* ---- values ------------------------------------------------------------- */

/* Optional sign, digits, no spaces; fits int64. */
bool mt_int_parse(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Optional sign, digits with an optional '.', optional exponent; finite.
 * The grammar of the built-ins' number reader (mt_num_parse). */
static bool parse_number(const char *s, double *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9')
        p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p)
        return false;
    errno = 0;
    double v = strtod(s, NULL);
    if (!isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool slot_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return false;
    return true;
}

mt_status mt_bschema_check_value(const mt_barg *a, const char *v, mt_err *err)
{
    if (!v)
        return mt_err_set(err, MT_EINVAL, "argument '%s': expected a string", a->name);
    switch (a->type) {
    case MT_BARG_STRING: {
        size_t max = a->max_len ? a->max_len : ARG_MAX_VALUE;
        if (strlen(v) > max)
            return mt_err_set(err, MT_EINVAL, "argument '%s': longer than %zu bytes", a->name,
                              max);
        return MT_OK;
    }
    case MT_BARG_INT: {
        int64_t x;
        if (!mt_int_parse(v, &x) || x < a->imin || x > a->imax) {
            if (a->imin == INT64_MIN && a->imax == INT64_MAX)
                return mt_err_set(err, MT_EINVAL, "argument '%s': expected an integer", a->name);
            return mt_err_set(err, MT_EINVAL, "argument '%s': expected an integer from %lld to %lld",
                              a->name, (long long)a->imin, (long long)a->imax);
        }
        return MT_OK;
    }
    case MT_BARG_NUMBER: {
        double x;
        if (!parse_number(v, &x) || x < a->dmin || x > a->dmax) {
            if (isinf(a->dmin) && isinf(a->dmax))
                return mt_err_set(err, MT_EINVAL, "argument '%s': expected a finite number",
                                  a->name);
            return mt_err_set(err, MT_EINVAL, "argument '%s': expected a number from %g to %g",
                              a->name, a->dmin, a->dmax);
        }
        return MT_OK;
    }
    case MT_BARG_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false"))
            return mt_err_set(err, MT_EINVAL, "argument '%s': expected true or false", a->name);
        return MT_OK;
    case MT_BARG_ENUM: {
        /* "expected a, b or c", as the built-ins word it */
        char list[256] = "";
        size_t o = 0, n = 0;
        while (a->choices[n])
            n++;
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(a->choices[i], v))
                return MT_OK;
            int w = snprintf(list + o, sizeof list - o, "%s%s",
                             i == 0 ? "" : i + 1 == n ? " or " : ", ", a->choices[i]);
            if (w > 0 && (size_t)w < sizeof list - o)
                o += (size_t)w;
        }
        return mt_err_set(err, MT_EINVAL, "argument '%s': expected %s", a->name, list);
    }
    case MT_BARG_INPUT_SLOT:
    case MT_BARG_OUTPUT_SLOT:
        if (!slot_name_ok(v))
            return mt_err_set(err, MT_EINVAL,
                              "argument '%s': expected a slot name ([A-Za-z0-9_]{1,64})", a->name);
        return MT_OK;
    case MT_BARG_KEYSTORE_KEY: {
        char o[65], n[129];
        if (*v && !mt_bschema_key_split(v, o, n))
            return mt_err_set(err, MT_EINVAL,
                              "argument '%s': expected a KeyStore key OWNER/NAME or OWNER:NAME "
                              "([A-Za-z0-9_.-]{1,64}/[A-Za-z0-9_.-]{1,128})",
                              a->name);
        return MT_OK;
    }
    }
    return mt_err_set(err, MT_EINTERNAL, "argument '%s': unknown type", a->name);
}

/* Unknown name: refused unless open_args, where only the "wasm_" prefix
 * (wasm) or "python_" prefix (python) is reserved. */
static mt_status unknown_arg(const mt_bschema *s, const char *name, mt_err *err)
{
    if (s->open_args && s == &python_schema ? strncmp(name, "python_", 7) != 0
        : s->open_args && strncmp(name, "wasm_", 5) != 0)
        return MT_OK;
    /* names are [A-Za-z0-9_]{1,64} by the time they get here (api_decode);
     * %.64s bounds a worker-side caller */
    return mt_err_set(err, MT_EINVAL,
                      "%s: unknown argument '%.64s' (`mesatee function builtins` lists them)",
                      s->name, name);
}

mt_status mt_bschema_check_args(const mt_bschema *s, const json_t *args, bool complete,
                                mt_err *err)
{
    if (args && !json_is_object(args))
        return mt_err_set(err, MT_EINVAL, "%s: arguments must be an object", s->name);
    const char *k;
    json_t *v;
    mt_status rc;
    json_object_foreach((json_t *)args, k, v)
    {
        const mt_barg *a = mt_bschema_arg(s, k);
        if (!a) {
            if ((rc = unknown_arg(s, k, err)))
                return rc;
            if (!json_is_string(v))
                return mt_err_set(err, MT_EINVAL, "argument '%.64s': expected a string", k);
            continue;
        }
        if (!json_is_string(v))
            return mt_err_set(err, MT_EINVAL, "argument '%s': expected a string", a->name);
        const char *sv = json_string_value(v);
        if (a->required && !*sv)
            return mt_err_set(err, MT_EINVAL, "%s: argument '%s' is required", s->name, a->name);
        if ((rc = mt_bschema_check_value(a, sv, err)))
            return rc;
    }
    if (complete)
        for (size_t i = 0; i < s->n_args; i++) {
            if (!s->args[i].required)
                continue;
            json_t *v2 = args ? json_object_get(args, s->args[i].name) : NULL;
            if (!json_is_string(v2) || !*json_string_value(v2))
                return mt_err_set(err, MT_EINVAL, "%s: argument '%s' is required", s->name,
                                  s->args[i].name);
        }
    return MT_OK;
}

static mt_status check_count(const mt_bschema *s, const char *what, size_t n, uint32_t lo,
                             uint32_t hi, mt_err *err)
{
    if (n >= lo && (hi == MT_BSLOTS_ANY || n <= hi))
        return MT_OK;
    if (hi == MT_BSLOTS_ANY)
        return mt_err_set(err, MT_EINVAL, "%s: needs at least %u %s slots, %zu declared", s->name,
                          lo, what, n);
    if (lo == hi)
        return mt_err_set(err, MT_EINVAL, "%s: needs exactly %u %s slots, %zu declared", s->name,
                          lo, what, n);
    return mt_err_set(err, MT_EINVAL, "%s: needs %u to %u %s slots, %zu declared", s->name, lo, hi,
                      what, n);
}

/* A declared type ("string", "integer", "number", "boolean") as an argument
 * declaration without limits beyond its type; false for another name. */
static bool declared_type(const char *name, const char *type, mt_barg *out)
{
    memset(out, 0, sizeof *out);
    out->name = name;
    if (!strcmp(type, "string"))
        out->type = MT_BARG_STRING;
    else if (!strcmp(type, "integer")) {
        out->type = MT_BARG_INT;
        out->imin = INT64_MIN;
        out->imax = INT64_MAX;
    } else if (!strcmp(type, "number")) {
        out->type = MT_BARG_NUMBER;
        out->dmin = -HUGE_VAL;
        out->dmax = HUGE_VAL;
    } else if (!strcmp(type, "boolean"))
        out->type = MT_BARG_BOOL;
    else
        return false;
    return true;
}

mt_status mt_bschema_check_typed(const json_t *decls, const json_t *args, mt_err *err)
{
    size_t i;
    json_t *d;
    json_array_foreach(decls, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name"));
        const char *type = json_string_value(json_object_get(d, "type"));
        const char *v = json_string_value(json_object_get(args, name ? name : ""));
        mt_barg a;
        if (!name || !type || !v)
            continue;
        if (!declared_type(name, type, &a))
            return mt_err_set(err, MT_EINVAL, "argument '%s': unknown declared type", name);
        mt_status rc = mt_bschema_check_value(&a, v, err);
        if (rc)
            return rc;
    }
    return MT_OK;
}

mt_status mt_bschema_check_decl(const mt_bschema *s, const json_t *decls, size_t n_inputs,
                                size_t n_outputs, mt_err *err)
{
    mt_status rc;
    if ((rc = check_count(s, "input", n_inputs, s->min_inputs, s->max_inputs, err)) ||
        (rc = check_count(s, "output", n_outputs, s->min_outputs, s->max_outputs, err)))
        return rc;
    if (decls && !json_is_array(decls))
        return mt_err_set(err, MT_EINVAL, "%s: argument declarations must be an array", s->name);
    size_t i;
    json_t *d;
    json_array_foreach(decls, i, d)
    {
        const char *name = json_string_value(json_object_get(d, "name"));
        const char *dflt = json_string_value(json_object_get(d, "default"));
        bool over = json_is_true(json_object_get(d, "overridable"));
        if (!name)
            return mt_err_set(err, MT_EINVAL, "%s: argument declaration %zu has no name", s->name,
                              i);
        const char *type = json_string_value(json_object_get(d, "type"));
        const mt_barg *a = mt_bschema_arg(s, name);
        if (type && (a || !s->open_args))
            return mt_err_set(err, MT_EINVAL,
                              "%s: argument '%s' takes its type from the schema "
                              "(`mesatee function builtins`); declare no type",
                              s->name, name);
        mt_barg typed;
        if (!a && type) {
            if ((rc = unknown_arg(s, name, err)))
                return rc;
            if (!declared_type(name, type, &typed))
                return mt_err_set(err, MT_EINVAL, "argument '%s': unknown declared type", name);
            a = &typed;
        }
        if (!a) {
            if ((rc = unknown_arg(s, name, err)))
                return rc;
            continue;
        }
        dflt = dflt ? dflt : "";
        if (over && !*dflt)
            continue; /* each task sets it: checked at task creation */
        if (a->required && !*dflt)
            return mt_err_set(err, MT_EINVAL,
                              "%s: argument '%s' is required: give it a default, or declare it "
                              "overridable so that each task sets it",
                              s->name, a->name);
        if ((rc = mt_bschema_check_value(a, dflt, err)))
            return rc;
    }
    for (size_t j = 0; j < s->n_args; j++) {
        if (!s->args[j].required)
            continue;
        bool declared = false;
        json_array_foreach(decls, i, d)
        {
            const char *name = json_string_value(json_object_get(d, "name"));
            if (name && !strcmp(name, s->args[j].name))
                declared = true;
        }
        if (!declared)
            return mt_err_set(err, MT_EINVAL,
                              "%s: argument '%s' is required: declare it (NAME=VALUE, or "
                              "NAME=:overridable to set it per task)",
                              s->name, s->args[j].name);
    }
    return MT_OK;
}

static bool has_slot(const json_t *slots, const char *name)
{
    size_t i;
    json_t *d;
    json_array_foreach(slots, i, d)
    {
        const char *n = json_string_value(json_object_get(d, "name"));
        if (n && !strcmp(n, name))
            return true;
    }
    return false;
}

/* The value of a slot argument: the task's, else the built-in's default. */
static const char *slot_value(const mt_barg *a, const json_t *args)
{
    const char *v = json_string_value(json_object_get(args, a->name));
    return v ? v : a->dflt;
}

mt_status mt_bschema_check_slots(const mt_bschema *s, const json_t *args, const json_t *inputs,
                                 const json_t *outputs, mt_err *err)
{
    for (size_t i = 0; i < s->n_args; i++) {
        const mt_barg *a = &s->args[i];
        if (a->type != MT_BARG_INPUT_SLOT && a->type != MT_BARG_OUTPUT_SLOT)
            continue;
        bool in = a->type == MT_BARG_INPUT_SLOT;
        const char *v = slot_value(a, args);
        if (!v)
            continue;
        if (in && !has_slot(inputs, v))
            return mt_err_set(err, MT_EINVAL,
                              "%s: argument '%s' must name one of the function's input slots",
                              s->name, a->name);
        /* a role output may be left out (at least one is, by the count) */
    }
    if (!s->outputs_by_role)
        return MT_OK;
    size_t i;
    json_t *d;
    json_array_foreach(outputs, i, d)
    {
        const char *n = json_string_value(json_object_get(d, "name"));
        bool named = false;
        for (size_t j = 0; n && j < s->n_args && !named; j++) {
            const mt_barg *a = &s->args[j];
            const char *v = a->type == MT_BARG_OUTPUT_SLOT ? slot_value(a, args) : NULL;
            named = v && !strcmp(v, n);
        }
        if (!named) {
            char list[160] = "";
            size_t o = 0;
            for (size_t j = 0; j < s->n_args; j++)
                if (s->args[j].type == MT_BARG_OUTPUT_SLOT) {
                    int w = snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "",
                                     s->args[j].name);
                    if (w > 0 && (size_t)w < sizeof list - o)
                        o += (size_t)w;
                }
            return mt_err_set(err, MT_EINVAL,
                              "%s: every output slot must be the one named by %s (output %zu "
                              "is not)",
                              s->name, list, i + 1);
        }
    }
    return MT_OK;
}

/* ---- listing ------------------------------------------------------------ */

static json_t *slots_json(uint32_t lo, uint32_t hi, const char *help)
{
    return json_pack("{s:I, s:o, s:s}", "min", (json_int_t)lo, "max",
                     hi == MT_BSLOTS_ANY ? json_null() : json_integer((json_int_t)hi),
                     "description", help ? help : "");
}

json_t *mt_bschema_json(const mt_bschema *s)
{
    json_t *args = json_array();
    for (size_t i = 0; args && i < s->n_args; i++) {
        const mt_barg *a = &s->args[i];
        json_t *o = json_pack("{s:s, s:s, s:b, s:s}", "name", a->name, "type",
                              mt_bschema_type_name(a->type), "required", a->required,
                              "description", a->help ? a->help : "");
        if (!o || json_array_append_new(args, o)) {
            json_decref(args);
            return NULL;
        }
        if (a->dflt)
            json_object_set_new(o, "default", json_string(a->dflt));
        if (a->type == MT_BARG_INT) {
            json_object_set_new(o, "min", json_integer((json_int_t)a->imin));
            json_object_set_new(o, "max", json_integer((json_int_t)a->imax));
        } else if (a->type == MT_BARG_NUMBER) {
            json_object_set_new(o, "min", json_real(a->dmin));
            json_object_set_new(o, "max", json_real(a->dmax));
        } else if (a->type == MT_BARG_ENUM) {
            json_t *c = json_array();
            for (size_t j = 0; c && a->choices[j]; j++)
                json_array_append_new(c, json_string(a->choices[j]));
            json_object_set_new(o, "choices", c);
        } else if (a->type == MT_BARG_STRING) {
            json_object_set_new(o, "max_length",
                                json_integer((json_int_t)(a->max_len ? a->max_len
                                                                     : ARG_MAX_VALUE)));
        }
    }
    if (!args)
        return NULL;
    json_t *outs = slots_json(s->min_outputs, s->max_outputs, s->outputs_help);
    if (outs)
        json_object_set_new(outs, "by_role", json_boolean(s->outputs_by_role));
    return json_pack("{s:s, s:s, s:o, s:b, s:o, s:o, s:s}", "name", s->name, "summary",
                     s->summary, "arguments", args, "open_arguments", s->open_args, "inputs",
                     slots_json(s->min_inputs, s->max_inputs, s->inputs_help), "outputs", outs,
                     "returns", s->returns_help ? s->returns_help : "");
}
