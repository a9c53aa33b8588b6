/* gbdt_forest: see gbdt_forest.h for the contract and the semantics. */
#include "gbdt_forest.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mt_json.h"

/* One internal node of a complete tree: go left when xs[slot] < split,
 * where the walked row xs holds each feature twice (slot 2 * feature: NaN
 * read as -inf, so a missing value goes left; slot 2 * feature + 1: NaN read
 * as +inf, so it goes right) and slot picks the node's default direction.
 * split is finite: -inf < split and !(+inf < split) for every node, and a
 * present value compares as itself (XGBoost treats only NaN as missing). */
typedef struct gf_node {
    float split;
    uint32_t slot;
} gf_node;

struct mt_gbdt_forest {
    size_t n_features, n_trees;
    bool logistic;
    float base_margin;
    uint8_t *depth;     /* per tree */
    size_t *node_off;   /* per tree: first node in nodes (2^depth - 1 nodes) */
    size_t *leaf_off;   /* per tree: first leaf in leaves (2^depth leaves) */
    gf_node *nodes;
    float *leaves;
};

#define GF_BLOCK 64 /* rows walked together */

/* ------------------------------------------------------------- parsing */

static mt_status refuse(mt_err *err, const char *why)
{
    return mt_err_set(err, MT_EINVAL, "gbdt model not for the own predictor: %s", why);
}

/* d as a float when d is one float exactly or rounds to one without
 * ambiguity: a decimal number that strtod put exactly halfway between two
 * floats may have been on either side of it (double rounding), so it is
 * refused; finite only. */
static bool to_float(double d, float *out)
{
    if (!isfinite(d) || fabs(d) > FLT_MAX)
        return false;
    float f = (float)d;
    if ((double)f != d) {
        float g = d > (double)f ? nextafterf(f, INFINITY) : nextafterf(f, -INFINITY);
        if (((double)f + (double)g) * 0.5 == d)
            return false;
    }
    *out = f;
    return true;
}

/* A decimal string ("5E-1") as XGBoost writes base_score: strtof of the
 * whole string, finite. */
static bool str_float(const json_t *v, float *out)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > 64 || strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789+-.eE", s[i]))
            return false;
    char *end = NULL;
    float f = strtof(s, &end);
    if (end != s + len || !isfinite(f))
        return false;
    *out = f;
    return true;
}

/* A decimal integer string ("100") in [0, max]. */
static bool str_uint(const json_t *v, uint64_t max, uint64_t *out)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > 19 || strlen(s) != len)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (x > max)
        return false;
    *out = x;
    return true;
}

static const json_t *path(const json_t *o, const char *a, const char *b, const char *c)
{
    const json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return v;
}

/* Integer element i of array a in [lo, hi]. */
static bool elem_int(const json_t *a, size_t i, int64_t lo, int64_t hi, int64_t *out)
{
    const json_t *v = json_array_get(a, i);
    if (!json_is_integer(v))
        return false;
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return false;
    *out = (int64_t)x;
    return true;
}

/* One tree's arrays, checked to have num_nodes elements. */
typedef struct gf_src {
    size_t n;
    const json_t *left, *right, *ind, *cond, *dl;
    uint8_t *seen; /* n */
} gf_src;

/* Depth of the subtree at node i (0 for a leaf), checking the structure;
 * -1 when it is not acceptable. */
static int src_depth(gf_src *s, size_t i, size_t n_features, int level)
{
    if (level > MT_GBDT_FOREST_MAX_DEPTH || i >= s->n || s->seen[i])
        return -1;
    s->seen[i] = 1;
    int64_t l, r, f, d;
    if (!elem_int(s->left, i, -1, (int64_t)s->n - 1, &l))
        return -1;
    float v;
    const json_t *c = json_array_get(s->cond, i);
    if (!json_is_number(c) || !to_float(json_number_value(c), &v))
        return -1;
    if (l == -1)
        return 0; /* a leaf (XGBoost: left child -1), value v */
    if (!elem_int(s->right, i, 0, (int64_t)s->n - 1, &r) || r != l + 1 ||
        !elem_int(s->ind, i, 0, (int64_t)n_features - 1, &f) || !elem_int(s->dl, i, 0, 1, &d))
        return -1;
    int a = src_depth(s, (size_t)l, n_features, level + 1);
    if (a < 0)
        return -1;
    int b = src_depth(s, (size_t)r, n_features, level + 1);
    if (b < 0)
        return -1;
    return 1 + (a > b ? a : b);
}

/* Writes the subtree of source node i (already checked) at position pos of
 * a complete tree of depth d; a leaf above the last level becomes internal
 * nodes whose children all hold its value. */
static void src_fill(const gf_src *s, size_t i, size_t pos, int level, int d, gf_node *nodes,
                     float *leaves)
{
    int64_t l = 0, f = 0, dl = 0;
    float v = 0;
    elem_int(s->left, i, -1, (int64_t)s->n - 1, &l);
    to_float(json_number_value(json_array_get(s->cond, i)), &v);
    if (level == d) {
        leaves[pos - (((size_t)1 << d) - 1)] = v; /* a leaf, by the depth computed */
        return;
    }
    if (l == -1) {
        nodes[pos] = (gf_node){.split = 0.0f, .slot = 0}; /* both ways lead to v */
        src_fill(s, i, 2 * pos + 1, level + 1, d, nodes, leaves);
        src_fill(s, i, 2 * pos + 2, level + 1, d, nodes, leaves);
        return;
    }
    elem_int(s->ind, i, 0, INT64_MAX, &f);
    elem_int(s->dl, i, 0, 1, &dl);
    nodes[pos] = (gf_node){.split = v, .slot = (uint32_t)f << 1 | (dl ? 0u : 1u)};
    src_fill(s, (size_t)l, 2 * pos + 1, level + 1, d, nodes, leaves);
    src_fill(s, (size_t)l + 1, 2 * pos + 2, level + 1, d, nodes, leaves);
}

/* The arrays of tree t as gf_src; NULL reason when acceptable. */
static const char *tree_src(const json_t *t, gf_src *s)
{
    uint64_t nn = 0;
    if (!json_is_object(t) || !str_uint(path(t, "tree_param", "num_nodes", NULL),
                                        MT_GBDT_FOREST_MAX_SLOTS * 2ull, &nn) ||
        nn == 0)
        return "tree without a valid num_nodes";
    s->n = (size_t)nn;
    s->left = json_object_get(t, "left_children");
    s->right = json_object_get(t, "right_children");
    s->ind = json_object_get(t, "split_indices");
    s->cond = json_object_get(t, "split_conditions");
    s->dl = json_object_get(t, "default_left");
    const json_t *arrs[] = {s->left, s->right, s->ind, s->cond, s->dl};
    for (size_t k = 0; k < sizeof arrs / sizeof *arrs; k++)
        if (!json_is_array(arrs[k]) || json_array_size(arrs[k]) != s->n)
            return "tree array missing or of the wrong size";
    /* numerical splits only */
    const json_t *st = json_object_get(t, "split_type");
    if (st) {
        if (!json_is_array(st) || json_array_size(st) != s->n)
            return "split_type of the wrong size";
        for (size_t i = 0; i < s->n; i++) {
            int64_t x;
            if (!elem_int(st, i, 0, 0, &x))
                return "categorical split";
        }
    }
    static const char *const cats[] = {"categories", "categories_nodes", "categories_segments",
                                       "categories_sizes"};
    for (size_t k = 0; k < sizeof cats / sizeof *cats; k++) {
        const json_t *c = json_object_get(t, cats[k]);
        if (c && (!json_is_array(c) || json_array_size(c) != 0))
            return "categories";
    }
    return NULL;
}

static const char *parse_model(const json_t *root, size_t n_features, mt_gbdt_forest *f)
{
    const json_t *learner = json_object_get(root, "learner");
    if (!json_is_object(learner))
        return "no learner";
    const json_t *gb = json_object_get(learner, "gradient_booster");
    const json_t *name = json_object_get(gb, "name");
    if (!json_is_string(name) || strcmp(json_string_value(name), "gbtree") != 0)
        return "booster is not gbtree";
    const json_t *obj = path(learner, "objective", "name", NULL);
    if (!json_is_string(obj))
        return "no objective";
    if (strcmp(json_string_value(obj), "binary:logistic") == 0)
        f->logistic = true;
    else if (strcmp(json_string_value(obj), "reg:squarederror") == 0)
        f->logistic = false;
    else
        return "objective other than binary:logistic and reg:squarederror";
    const json_t *mp = json_object_get(learner, "learner_model_param");
    uint64_t num_class = 1, num_target = 1, num_feature = 0;
    float base_score;
    if (!json_is_object(mp) || !str_uint(json_object_get(mp, "num_class"), 1000000, &num_class) ||
        num_class != 0)
        return "num_class is not 0";
    if (json_object_get(mp, "num_target") &&
        (!str_uint(json_object_get(mp, "num_target"), 1000000, &num_target) || num_target != 1))
        return "num_target is not 1";
    if (!str_uint(json_object_get(mp, "num_feature"), MT_GBDT_FOREST_MAX_FEATURES,
                  &num_feature) ||
        num_feature != n_features || n_features == 0)
        return "num_feature differs from the input's features";
    if (!str_float(json_object_get(mp, "base_score"), &base_score))
        return "base_score is not a finite number";
    if (f->logistic) {
        if (!(base_score > 0.0f && base_score < 1.0f))
            return "base_score outside (0, 1) for binary:logistic";
        f->base_margin = -logf(1.0f / base_score - 1.0f); /* LogisticRegression::ProbToMargin */
    } else {
        f->base_margin = base_score;
    }
    if (!isfinite(f->base_margin))
        return "base margin is not finite";

    const json_t *model = json_object_get(gb, "model");
    const json_t *trees = json_object_get(model, "trees");
    const json_t *info = json_object_get(model, "tree_info");
    uint64_t num_trees = 0;
    if (!json_is_array(trees) || !json_is_array(info) ||
        json_array_size(trees) != json_array_size(info) ||
        !str_uint(path(model, "gbtree_model_param", "num_trees", NULL), MT_GBDT_FOREST_MAX_TREES,
                  &num_trees) ||
        num_trees != json_array_size(trees))
        return "trees, tree_info and num_trees disagree";
    f->n_trees = (size_t)num_trees;
    for (size_t t = 0; t < f->n_trees; t++) {
        int64_t g;
        if (!elem_int(info, t, 0, 0, &g))
            return "tree_info other than 0";
    }
    size_t nt = f->n_trees ? f->n_trees : 1;
    f->depth = calloc(nt, 1);
    f->node_off = calloc(nt, sizeof *f->node_off);
    f->leaf_off = calloc(nt, sizeof *f->leaf_off);
    if (!f->depth || !f->node_off || !f->leaf_off)
        return NULL; /* ENOMEM: reported by the caller (nodes NULL) */
    /* pass 1: check each tree, its depth and the total size */
    size_t slots = 0, nodes = 0;
    for (size_t t = 0; t < f->n_trees; t++) {
        gf_src s;
        const char *why = tree_src(json_array_get(trees, t), &s);
        if (why)
            return why;
        if (!(s.seen = calloc(s.n, 1)))
            return NULL;
        int d = src_depth(&s, 0, n_features, 0);
        free(s.seen);
        if (d < 0)
            return "tree structure, feature index or value not acceptable";
        f->depth[t] = (uint8_t)d;
        f->node_off[t] = nodes;
        f->leaf_off[t] = slots;
        slots += (size_t)1 << d;
        nodes += ((size_t)1 << d) - 1;
        if (slots > MT_GBDT_FOREST_MAX_SLOTS)
            return "flattened trees too large";
    }
    f->nodes = malloc((nodes ? nodes : 1) * sizeof *f->nodes);
    f->leaves = malloc((slots ? slots : 1) * sizeof *f->leaves);
    if (!f->nodes || !f->leaves)
        return NULL;
    /* pass 2: fill (the structure was checked in pass 1) */
    for (size_t t = 0; t < f->n_trees; t++) {
        gf_src s;
        tree_src(json_array_get(trees, t), &s);
        src_fill(&s, 0, 0, 0, f->depth[t], f->nodes + f->node_off[t], f->leaves + f->leaf_off[t]);
    }
    return NULL;
}

void mt_gbdt_forest_free(mt_gbdt_forest *f)
{
    if (!f)
        return;
    free(f->depth);
    free(f->node_off);
    free(f->leaf_off);
    free(f->nodes);
    free(f->leaves);
    free(f);
}

mt_status mt_gbdt_forest_parse(const char *json, size_t len, size_t n_features,
                               mt_gbdt_forest **out, mt_err *err)
{
    *out = NULL;
    mt_err je = {0};
    json_t *root = mt_json_parse(json, len, MT_GBDT_FOREST_MAX_JSON, 16, &je);
    if (!root)
        return je.code == MT_ENOMEM ? mt_err_set(err, MT_ENOMEM, "out of memory")
                                    : refuse(err, "not a JSON model within the limits");
    mt_gbdt_forest *f = calloc(1, sizeof *f);
    if (!f) {
        json_decref(root);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    f->n_features = n_features;
    const char *why = n_features == 0 || n_features > MT_GBDT_FOREST_MAX_FEATURES
                          ? "number of features out of range"
                          : parse_model(root, n_features, f);
    json_decref(root);
    if (why) {
        mt_gbdt_forest_free(f);
        return refuse(err, why);
    }
    if (!f->nodes || !f->leaves) {
        mt_gbdt_forest_free(f);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    *out = f;
    return MT_OK;
}

size_t mt_gbdt_forest_trees(const mt_gbdt_forest *f)
{
    return f->n_trees;
}

int mt_gbdt_forest_is_logistic(const mt_gbdt_forest *f)
{
    return f->logistic;
}

/* ------------------------------------------------------------- prediction */

/* XGBoost 1.7's common::Sigmoid, expression by expression. */
static float sigmoid(float x)
{
    float m = -x;
    m = 88.7f < m ? 88.7f : m; /* std::min(-x, 88.7f) */
    float denom = expf(m) + 1.0f + 1e-16f;
    return 1.0f / denom;
}


/* Rows [0, nb) of the block x (row stride nf, NaN missing): out[r] = the
 * transformed margin. xs: scratch of GF_BLOCK * 2 * nf floats. */
static void predict_block(const mt_gbdt_forest *f, const float *x, size_t nb, float *xs,
                          float *out)
{
    float acc[GF_BLOCK];
    uint32_t idx[GF_BLOCK];
    const size_t nf = f->n_features, w = 2 * nf;
    for (size_t r = 0; r < nb; r++)
        for (size_t k = 0; k < nf; k++) {
            const float v = x[r * nf + k];
            xs[r * w + 2 * k] = v != v ? -INFINITY : v;
            xs[r * w + 2 * k + 1] = v != v ? INFINITY : v;
        }
    for (size_t r = 0; r < nb; r++)
        acc[r] = f->base_margin;
    for (size_t t = 0; t < f->n_trees; t++) {
        const gf_node *nodes = f->nodes + f->node_off[t];
        const float *leaves = f->leaves + f->leaf_off[t];
        const int d = f->depth[t];
        for (size_t r = 0; r < nb; r++)
            idx[r] = 0;
        for (int l = 0; l < d; l++) {
            for (size_t r = 0; r < nb; r++) {
                const gf_node n = nodes[idx[r]];
                idx[r] = 2 * idx[r] + 2 - (uint32_t)(xs[r * w + n.slot] < n.split);
            }
        }
        const uint32_t first_leaf = ((uint32_t)1 << d) - 1;
        for (size_t r = 0; r < nb; r++)
            acc[r] += leaves[idx[r] - first_leaf]; /* in tree order, in float */
    }
    if (f->logistic)
        for (size_t r = 0; r < nb; r++)
            out[r] = sigmoid(acc[r]);
    else
        memcpy(out, acc, nb * sizeof *out);
}

typedef struct gf_job {
    const mt_gbdt_forest *f;
    const float *x; /* dense, or NULL */
    const size_t *indptr;
    const unsigned *indices;
    const float *values;
    size_t begin, end; /* rows */
    float *out;
    int rc; /* 0, or 1 out of memory */
} gf_job;

static void *gf_run(void *arg)
{
    gf_job *j = arg;
    const size_t nf = j->f->n_features;
    float *xs = malloc(GF_BLOCK * 2 * nf * sizeof *xs), *buf = NULL;
    if (!xs || (!j->x && !(buf = malloc(GF_BLOCK * nf * sizeof *buf)))) {
        free(xs);
        j->rc = 1;
        return NULL;
    }
    if (buf)
        for (size_t k = 0; k < GF_BLOCK * nf; k++)
            buf[k] = NAN;
    for (size_t b = j->begin; b < j->end; b += GF_BLOCK) {
        size_t nb = j->end - b < GF_BLOCK ? j->end - b : GF_BLOCK;
        if (j->x) {
            predict_block(j->f, j->x + b * nf, nb, xs, j->out + b);
            continue;
        }
        for (size_t r = 0; r < nb; r++)
            for (size_t k = j->indptr[b + r]; k < j->indptr[b + r + 1]; k++)
                buf[r * nf + j->indices[k]] = j->values[k];
        predict_block(j->f, buf, nb, xs, j->out + b);
        for (size_t r = 0; r < nb; r++) /* back to all missing */
            for (size_t k = j->indptr[b + r]; k < j->indptr[b + r + 1]; k++)
                buf[r * nf + j->indices[k]] = NAN;
    }
    free(buf);
    free(xs);
    return NULL;
}

static mt_status run_jobs(gf_job proto, size_t n, unsigned threads, mt_err *err)
{
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    size_t blocks = (n + GF_BLOCK - 1) / GF_BLOCK;
    if (threads > blocks)
        threads = blocks ? (unsigned)blocks : 1;
    gf_job jobs[64];
    pthread_t th[64];
    bool started[64] = {0};
    size_t per = (blocks + threads - 1) / threads;
    for (unsigned i = 0; i < threads; i++) {
        jobs[i] = proto;
        size_t b0 = per * i, b1 = per * (i + 1);
        jobs[i].begin = b0 * GF_BLOCK < n ? b0 * GF_BLOCK : n;
        jobs[i].end = b1 * GF_BLOCK < n ? b1 * GF_BLOCK : n;
    }
    mt_status st = MT_OK;
    pthread_attr_t at;
    bool attr = threads > 1 && pthread_attr_init(&at) == 0;
    if (attr && pthread_attr_setstacksize(&at, (size_t)1 << 20) == 0)
        for (unsigned i = 1; i < threads; i++)
            started[i] = pthread_create(&th[i], &at, gf_run, &jobs[i]) == 0;
    if (attr)
        pthread_attr_destroy(&at);
    gf_run(&jobs[0]);
    for (unsigned i = 1; i < threads; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            gf_run(&jobs[i]); /* no thread: this one does its share */
    }
    for (unsigned i = 0; i < threads; i++)
        if (jobs[i].rc)
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
    return st;
}

mt_status mt_gbdt_forest_predict_dense(const mt_gbdt_forest *f, const float *x, size_t n,
                                       unsigned threads, float *out, mt_err *err)
{
    gf_job p = {.f = f, .x = x, .out = out};
    return run_jobs(p, n, threads, err);
}

mt_status mt_gbdt_forest_predict_csr(const mt_gbdt_forest *f, const size_t *indptr,
                                     const unsigned *indices, const float *values, size_t n,
                                     unsigned threads, float *out, mt_err *err)
{
    for (size_t r = 0; r < n; r++) {
        if (indptr[r + 1] < indptr[r])
            return mt_err_set(err, MT_EINVAL, "CSR rows out of order");
        for (size_t k = indptr[r]; k < indptr[r + 1]; k++)
            if (indices[k] >= f->n_features)
                return mt_err_set(err, MT_EINVAL, "CSR feature index out of range");
    }
    gf_job p = {.f = f, .indptr = indptr, .indices = indices, .values = values, .out = out};
    return run_jobs(p, n, threads, err);
}
