/* gbdt_forest: see gbdt_forest.h for the contract and the semantics. */
#include "gbdt_forest.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
    uint8_t *depth;   /* per tree */
    size_t *node_off; /* per tree: first node in nodes (2^depth - 1 nodes) */
    size_t *leaf_off; /* per tree: first leaf in leaves (2^depth leaves) */
    gf_node *nodes;
    float *leaves;
};

#define GF_BLOCK 64 /* rows walked together */

/* ------------------------------------------------------------- UBJSON */

/* A value of the UBJSON subset XGBoost 1.7 writes (src/common/json.cc,
 * UBJWriter): objects '{' (keys 'L' int64 length + bytes) ... '}', arrays
 * counted '[#L' n values, typed arrays '[$' type '#L' n big-endian elements
 * (d f32, U u8, i i8, l i32, L i64), strings 'S' 'L' length bytes,
 * integers i U I l L, floats d (f32), T F Z. Every length is checked
 * against the bytes left before use; nesting is bounded. */
typedef struct ubv {
    uint8_t t;          /* '{', '[', '$' (typed array), 'S', 'N' (integer), 'd', 'T', 'F', 'Z' */
    uint8_t elem;       /* typed array: element type */
    const uint8_t *p;   /* contents: object members, array values, elements, string bytes */
    const uint8_t *end; /* object: its closing '}'; arrays: the end of their values */
    uint64_t n;         /* array, typed array, string: count */
    int64_t i;          /* integer */
    float f;            /* float */
} ubv;

typedef struct ubr {
    const uint8_t *p, *end;
} ubr;

#define UB_DEPTH 16

static uint64_t be(const uint8_t *p, size_t k)
{
    uint64_t x = 0;
    for (size_t i = 0; i < k; i++)
        x = x << 8 | p[i];
    return x;
}

static size_t elem_size(uint8_t t)
{
    switch (t) {
    case 'U':
    case 'i':
        return 1;
    case 'I':
        return 2;
    case 'l':
    case 'd':
        return 4;
    case 'L':
        return 8;
    default:
        return 0;
    }
}

static int64_t as_int(const uint8_t *p, uint8_t t)
{
    switch (t) {
    case 'U':
        return p[0];
    case 'i':
        return (int8_t)p[0];
    case 'I':
        return (int16_t)(uint16_t)be(p, 2);
    case 'l':
        return (int32_t)(uint32_t)be(p, 4);
    default:
        return (int64_t)be(p, 8);
    }
}

static float as_float(const uint8_t *p)
{
    uint32_t u = (uint32_t)be(p, 4);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* 'L' then a non-negative int64 n with n * unit bytes left after it. */
static bool ub_len(ubr *r, size_t unit, uint64_t *n)
{
    if (r->end - r->p < 9 || r->p[0] != 'L')
        return false;
    uint64_t x = be(r->p + 1, 8);
    r->p += 9;
    if (x > (uint64_t)(r->end - r->p) / (unit ? unit : 1))
        return false;
    *n = x;
    return true;
}

/* Reads one value at r->p into *v and moves past it (containers included). */
static bool ub_value(ubr *r, ubv *v, int depth)
{
    if (depth > UB_DEPTH || r->p >= r->end)
        return false;
    memset(v, 0, sizeof *v);
    uint8_t c = *r->p++;
    size_t k;
    switch (c) {
    case 'T':
    case 'F':
    case 'Z':
        v->t = c;
        return true;
    case 'd':
        if (r->end - r->p < 4)
            return false;
        v->t = 'd';
        v->f = as_float(r->p);
        r->p += 4;
        return true;
    case 'i':
    case 'U':
    case 'I':
    case 'l':
    case 'L':
        k = elem_size(c);
        if ((size_t)(r->end - r->p) < k)
            return false;
        v->t = 'N';
        v->i = as_int(r->p, c);
        r->p += k;
        return true;
    case 'S':
        if (!ub_len(r, 1, &v->n))
            return false;
        v->t = 'S';
        v->p = r->p;
        r->p += v->n;
        return true;
    case '[':
        if (r->end - r->p >= 2 && r->p[0] == '$') {
            v->elem = r->p[1];
            r->p += 2;
            k = elem_size(v->elem);
            if (k == 0 || v->elem == 'I' || r->p >= r->end || *r->p++ != '#' ||
                !ub_len(r, k, &v->n))
                return false;
            v->t = '$';
            v->p = r->p;
            r->p += v->n * k;
            v->end = r->p;
            return true;
        }
        if (r->p >= r->end || *r->p++ != '#' || !ub_len(r, 1, &v->n))
            return false;
        v->t = '[';
        v->p = r->p;
        for (uint64_t i = 0; i < v->n; i++) {
            ubv e;
            if (!ub_value(r, &e, depth + 1))
                return false;
        }
        v->end = r->p;
        return true;
    case '{':
        v->t = '{';
        v->p = r->p;
        for (;;) {
            if (r->p >= r->end)
                return false;
            if (*r->p == '}') {
                v->end = r->p++;
                return true;
            }
            uint64_t kl;
            ubv e;
            if (!ub_len(r, 1, &kl))
                return false;
            r->p += kl;
            if (!ub_value(r, &e, depth + 1))
                return false;
        }
    default:
        return false;
    }
}

/* Member key of object o into *out: false when o is not an object, key is
 * absent or present more than once. */
static bool ub_get(const ubv *o, const char *key, ubv *out)
{
    if (!o || o->t != '{')
        return false;
    ubr r = {o->p, o->end};
    size_t klen = strlen(key);
    int found = 0;
    while (r.p < r.end) {
        uint64_t kl;
        ubv e;
        if (!ub_len(&r, 1, &kl))
            return false;
        const uint8_t *k = r.p;
        r.p += kl;
        if (!ub_value(&r, &e, 1))
            return false;
        if (kl == klen && memcmp(k, key, klen) == 0) {
            *out = e;
            found++;
        }
    }
    return found == 1;
}

static bool ub_is_str(const ubv *v, const char *s)
{
    return v->t == 'S' && v->n == strlen(s) && memcmp(v->p, s, v->n) == 0;
}

/* ------------------------------------------------------------- parsing */

static mt_status refuse(mt_err *err, const char *why)
{
    return mt_err_set(err, MT_EINVAL, "gbdt model not for the own predictor: %s", why);
}

/* A decimal string ("5E-1") as XGBoost writes base_score: strtof of the
 * whole string (correctly rounded, as XGBoost's from_chars), finite. */
static bool str_float(const ubv *v, float *out)
{
    char buf[65];
    if (v->t != 'S' || v->n == 0 || v->n > 64)
        return false;
    memcpy(buf, v->p, v->n);
    buf[v->n] = 0;
    for (size_t i = 0; i < v->n; i++)
        if (!buf[i] || !strchr("0123456789+-.eE", buf[i]))
            return false;
    char *end = NULL;
    float f = strtof(buf, &end);
    if (end != buf + v->n || !isfinite(f))
        return false;
    *out = f;
    return true;
}

/* A decimal integer string ("100") in [0, max]. */
static bool str_uint(const ubv *v, uint64_t max, uint64_t *out)
{
    if (v->t != 'S' || v->n == 0 || v->n > 19)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (v->p[i] < '0' || v->p[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(v->p[i] - '0');
    }
    if (x > max)
        return false;
    *out = x;
    return true;
}

static bool get_uint(const ubv *o, const char *key, uint64_t max, uint64_t *out)
{
    ubv v;
    return ub_get(o, key, &v) && str_uint(&v, max, out);
}

/* Integer element i (< a->n) of typed integer array a. */
static int64_t ta_int(const ubv *a, uint64_t i)
{
    return as_int(a->p + i * elem_size(a->elem), a->elem);
}

static bool is_int_array(const ubv *a, uint64_t n)
{
    return a->t == '$' && a->elem != 'd' && a->n == n;
}

/* One tree's arrays (typed, num_nodes elements each). */
typedef struct gf_src {
    size_t n;
    ubv left, right, ind, cond, dl;
    uint8_t *seen; /* n */
} gf_src;

/* Depth of the subtree at node i (0 for a leaf), checking the structure;
 * -1 when it is not acceptable. */
static int src_depth(gf_src *s, size_t i, size_t n_features, int level)
{
    if (level > MT_GBDT_FOREST_MAX_DEPTH || i >= s->n || s->seen[i])
        return -1;
    s->seen[i] = 1;
    int64_t l = ta_int(&s->left, i);
    if (!isfinite(as_float(s->cond.p + 4 * i)))
        return -1;
    if (l == -1)
        return 0; /* a leaf (XGBoost: left child -1), its value the condition */
    int64_t r = ta_int(&s->right, i), f = ta_int(&s->ind, i), d = ta_int(&s->dl, i);
    if (l < 0 || (uint64_t)l >= s->n || r != l + 1 || (uint64_t)r >= s->n || f < 0 ||
        (uint64_t)f >= n_features || (d != 0 && d != 1))
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
    int64_t l = ta_int(&s->left, i);
    float v = as_float(s->cond.p + 4 * i);
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
    uint32_t f = (uint32_t)ta_int(&s->ind, i);
    bool dl = ta_int(&s->dl, i) == 1;
    nodes[pos] = (gf_node){.split = v, .slot = f << 1 | (dl ? 0u : 1u)};
    src_fill(s, (size_t)l, 2 * pos + 1, level + 1, d, nodes, leaves);
    src_fill(s, (size_t)l + 1, 2 * pos + 2, level + 1, d, nodes, leaves);
}

/* The arrays of tree t as gf_src; NULL reason when acceptable. */
static const char *tree_src(const ubv *t, gf_src *s)
{
    uint64_t nn = 0;
    ubv tp;
    if (!ub_get(t, "tree_param", &tp) ||
        !get_uint(&tp, "num_nodes", MT_GBDT_FOREST_MAX_SLOTS * 2ull, &nn) || nn == 0)
        return "tree without a valid num_nodes";
    s->n = (size_t)nn;
    if (!ub_get(t, "left_children", &s->left) || !is_int_array(&s->left, nn) ||
        !ub_get(t, "right_children", &s->right) || !is_int_array(&s->right, nn) ||
        !ub_get(t, "split_indices", &s->ind) || !is_int_array(&s->ind, nn) ||
        !ub_get(t, "default_left", &s->dl) || !is_int_array(&s->dl, nn) ||
        !ub_get(t, "split_conditions", &s->cond) || s->cond.t != '$' || s->cond.elem != 'd' ||
        s->cond.n != nn)
        return "tree array missing, of the wrong type or of the wrong size";
    /* numerical splits only */
    ubv st;
    if (ub_get(t, "split_type", &st)) {
        if (!is_int_array(&st, nn))
            return "split_type of the wrong type or size";
        for (uint64_t i = 0; i < nn; i++)
            if (ta_int(&st, i) != 0)
                return "categorical split";
    }
    static const char *const cats[] = {"categories", "categories_nodes", "categories_segments",
                                       "categories_sizes"};
    for (size_t k = 0; k < sizeof cats / sizeof *cats; k++) {
        ubv c;
        if (ub_get(t, cats[k], &c) && !((c.t == '$' || c.t == '[') && c.n == 0))
            return "categories";
    }
    return NULL;
}

static const char *parse_model(const ubv *root, size_t n_features, mt_gbdt_forest *f)
{
    ubv learner, gb, name, objective, obj, mp, v, model, trees, info, gmp;
    if (!ub_get(root, "learner", &learner) || learner.t != '{')
        return "no learner";
    if (!ub_get(&learner, "gradient_booster", &gb) || !ub_get(&gb, "name", &name) ||
        !ub_is_str(&name, "gbtree"))
        return "booster is not gbtree";
    if (!ub_get(&learner, "objective", &objective) || !ub_get(&objective, "name", &obj))
        return "no objective";
    if (ub_is_str(&obj, "binary:logistic"))
        f->logistic = true;
    else if (ub_is_str(&obj, "reg:squarederror"))
        f->logistic = false;
    else
        return "objective other than binary:logistic and reg:squarederror";
    uint64_t num_class = 1, num_target = 1, num_feature = 0;
    float base_score;
    if (!ub_get(&learner, "learner_model_param", &mp) ||
        !get_uint(&mp, "num_class", 1000000, &num_class) || num_class != 0)
        return "num_class is not 0";
    if (ub_get(&mp, "num_target", &v) && (!str_uint(&v, 1000000, &num_target) || num_target != 1))
        return "num_target is not 1";
    if (!get_uint(&mp, "num_feature", MT_GBDT_FOREST_MAX_FEATURES, &num_feature) ||
        num_feature != n_features)
        return "num_feature differs from the input's features";
    if (!ub_get(&mp, "base_score", &v) || !str_float(&v, &base_score))
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

    uint64_t num_trees = 0;
    if (!ub_get(&gb, "model", &model) || !ub_get(&model, "trees", &trees) || trees.t != '[' ||
        !ub_get(&model, "tree_info", &info) || (info.t != '[' && info.t != '$') ||
        info.n != trees.n || !ub_get(&model, "gbtree_model_param", &gmp) ||
        !get_uint(&gmp, "num_trees", MT_GBDT_FOREST_MAX_TREES, &num_trees) || num_trees != trees.n)
        return "trees, tree_info and num_trees disagree";
    f->n_trees = (size_t)num_trees;
    /* tree_info: every tree adds to output 0 */
    ubr ir = {info.p, info.end};
    for (uint64_t t = 0; t < info.n; t++) {
        int64_t g;
        ubv e;
        if (info.t == '$' && info.elem != 'd')
            g = ta_int(&info, t);
        else if (info.t == '[' && ub_value(&ir, &e, 1) && e.t == 'N')
            g = e.i;
        else
            return "tree_info not integers";
        if (g != 0)
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
    ubr tr = {trees.p, trees.end};
    for (size_t t = 0; t < f->n_trees; t++) {
        ubv tv;
        gf_src s;
        if (!ub_value(&tr, &tv, 1) || tv.t != '{')
            return "tree not an object";
        const char *why = tree_src(&tv, &s);
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
    tr.p = trees.p;
    for (size_t t = 0; t < f->n_trees; t++) {
        ubv tv;
        gf_src s;
        ub_value(&tr, &tv, 1);
        tree_src(&tv, &s);
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

mt_status mt_gbdt_forest_parse(const uint8_t *ubj, size_t len, size_t n_features,
                               mt_gbdt_forest **out, mt_err *err)
{
    *out = NULL;
    ubr r = {ubj, ubj + len};
    ubv root;
    if (len > MT_GBDT_FOREST_MAX_MODEL || !ub_value(&r, &root, 0) || root.t != '{' || r.p != r.end)
        return refuse(err, "not a UBJSON model within the limits");
    mt_gbdt_forest *f = calloc(1, sizeof *f);
    if (!f)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    f->n_features = n_features;
    const char *why = n_features == 0 || n_features > MT_GBDT_FOREST_MAX_FEATURES
                          ? "number of features out of range"
                          : parse_model(&root, n_features, f);
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
static void predict_block(const mt_gbdt_forest *f, const float *x, size_t nb, float *xs, float *out)
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
    if (threads > MT_GBDT_FOREST_MAX_THREADS)
        threads = MT_GBDT_FOREST_MAX_THREADS;
    size_t blocks = (n + GF_BLOCK - 1) / GF_BLOCK;
    if (threads > blocks)
        threads = blocks ? (unsigned)blocks : 1;
    gf_job jobs[MT_GBDT_FOREST_MAX_THREADS];
    pthread_t th[MT_GBDT_FOREST_MAX_THREADS];
    bool started[MT_GBDT_FOREST_MAX_THREADS] = {0};
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
