/* nn_ops.c: the op table, element-wise kernels (numpy broadcasting) and the shape /
 * data-movement operators. Every kernel: run=0 validates inputs and sets the output
 * shapes (nn_set_out; inputs whose values decide a shape must be constants), run=1
 * computes into the planned outputs. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn_int.h"
#include "nn_ops.h"

#define IN(i) nn_in(m, n, (i))
#define OUT(i) nn_out(m, n, (i))
#define FAIL(code, ...) nn_node_fail(m, n, (code), __VA_ARGS__)

int nn_axis(mt_nn_model *m, nn_node *n, int64_t a, int rank, int *out)
{
    if (a < -rank || a >= (rank ? rank : 1))
        return FAIL(MT_NN_EINVAL, "axis %lld out of range for rank %d", (long long)a, rank);
    *out = (int)(a < 0 ? a + rank : a);
    return 0;
}

int nn_need(mt_nn_model *m, nn_node *n, int i, int dtype_float_only)
{
    nn_t *t = IN(i);
    if (!t)
        return FAIL(MT_NN_EINVAL, "input %d is missing", i);
    if (dtype_float_only && t->dtype != MT_NN_FLOAT)
        return FAIL(MT_NN_EUNSUPPORTED, "input %d: element type %d not supported (float only)", i,
                    t->dtype);
    return 0;
}

/* Input 0 present and its "axis" attribute (default 0) checked against its rank into *a. */
static int need_axis(mt_nn_model *m, nn_node *n, int *a)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    return nn_axis(m, n, nn_attr_i(n, "axis", 0), IN(0)->rank, a);
}

/* Advances the row-major index idx[0..r) over dims (the last axis fastest). */
static void nd_next(int64_t *idx, const int64_t *dims, int r)
{
    for (int k = r - 1; k >= 0; k--) {
        if (++idx[k] < dims[k])
            break;
        idx[k] = 0;
    }
}

/* Element strides of x's dense row-major layout. */
static void row_strides(const nn_t *x, int64_t *xs)
{
    int64_t s = 1;
    for (int i = x->rank - 1; i >= 0; i--) {
        xs[i] = s;
        s *= x->dims[i];
    }
}

/* values of a constant integer input (axes, shape, pads...), at most max of them */
int nn_const_ints(mt_nn_model *m, nn_node *n, int i, int64_t *v, size_t max, size_t *cnt)
{
    nn_t *t = IN(i);
    if (!t)
        return FAIL(MT_NN_EINVAL, "input %d is missing", i);
    if (!nn_known(t))
        return FAIL(MT_NN_EUNSUPPORTED,
                    "input %d ('%.128s') decides an output shape but is only known at run time "
                    "(dynamic shapes are not supported)", i, t->name);
    if (t->count > max)
        return FAIL(MT_NN_EINVAL, "input %d: %zu values, at most %zu", i, t->count, max);
    for (size_t k = 0; k < t->count; k++)
        v[k] = nn_ldi(t->data, t->dtype, k);
    *cnt = t->count;
    return 0;
}

/* ---- broadcasting ------------------------------------------------------------------- */
int nn_bcast_shape(mt_nn_model *m, nn_node *n, nn_t **ts, int k, int64_t *od, int *orank)
{
    int r = 0;
    for (int i = 0; i < k; i++)
        if (ts[i]->rank > r)
            r = ts[i]->rank;
    for (int d = 0; d < r; d++)
        od[d] = 1;
    for (int i = 0; i < k; i++) {
        int off = r - ts[i]->rank;
        for (int d = 0; d < ts[i]->rank; d++) {
            int64_t v = ts[i]->dims[d];
            if (od[off + d] == 1)
                od[off + d] = v;
            else if (v != 1 && v != od[off + d])
                return FAIL(MT_NN_ESHAPE, "inputs cannot be broadcast together (dim %d: %lld vs %lld)",
                            off + d, (long long)od[off + d], (long long)v);
        }
    }
    *orank = r;
    return 0;
}

void nn_bcast_strides(const nn_t *t, int rank, const int64_t *od, int64_t *st)
{
    int off = rank - t->rank;
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        int64_t dim = d >= off ? t->dims[d - off] : 1;
        st[d] = (dim == 1 && od[d] != 1) ? 0 : s;
        s *= dim;
    }
}

typedef struct {
    int rank;
    int64_t od[MT_NN_MAX_RANK], idx[MT_NN_MAX_RANK];
    int64_t st[3][MT_NN_MAX_RANK];
    int64_t off[3];
    int k;
} bit;

static void bit_init(bit *b, nn_t **ts, int k, const nn_t *o)
{
    memset(b, 0, sizeof *b);
    b->rank = o->rank;
    b->k = k;
    memcpy(b->od, o->dims, sizeof b->od);
    for (int i = 0; i < k; i++)
        nn_bcast_strides(ts[i], o->rank, o->dims, b->st[i]);
}

static inline void bit_next(bit *b)
{
    for (int d = b->rank - 1; d >= 0; d--) {
        b->idx[d]++;
        for (int i = 0; i < b->k; i++)
            b->off[i] += b->st[i][d];
        if (b->idx[d] < b->od[d])
            return;
        for (int i = 0; i < b->k; i++)
            b->off[i] -= b->st[i][d] * b->od[d];
        b->idx[d] = 0;
    }
}

/* ---- binary element-wise ------------------------------------------------------------ */
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAX, B_MIN, B_MOD, B_FMOD, B_EQ, B_LT, B_GT, B_LE,
       B_GE, B_AND, B_OR, B_XOR, B_PRELU, B_BSL, B_BSR };

static double bin_d(int op, double a, double b)
{
    switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    case B_POW: return pow(a, b);
    case B_MAX: return (a != a || b != b) ? NAN : a > b ? a : b;
    case B_MIN: return (a != a || b != b) ? NAN : a < b ? a : b;
    case B_FMOD: return fmod(a, b);
    case B_MOD: { double r = fmod(a, b); if (r != 0 && ((r < 0) != (b < 0))) r += b; return r; }
    case B_EQ: return a == b;
    case B_LT: return a < b;
    case B_GT: return a > b;
    case B_LE: return a <= b;
    case B_GE: return a >= b;
    case B_AND: return (a != 0) && (b != 0);
    case B_OR: return (a != 0) || (b != 0);
    case B_XOR: return (a != 0) != (b != 0);
    case B_PRELU: return a < 0 ? a * b : a;
    default: return 0;
    }
}

static int64_t bin_i(int op, int64_t a, int64_t b, int *ok)
{
    switch (op) {
    case B_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case B_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case B_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case B_DIV: if (b == 0 || (a == INT64_MIN && b == -1)) { *ok = 0; return 0; } return a / b;
    case B_MOD: case B_FMOD: {
        if (b == 0 || (a == INT64_MIN && b == -1)) { *ok = 0; return 0; }
        int64_t r = a % b;
        if (op == B_MOD && r != 0 && ((r < 0) != (b < 0))) r += b;
        return r;
    }
    case B_MAX: return a > b ? a : b;
    case B_MIN: return a < b ? a : b;
    case B_BSL: return b >= 0 && b < 64 ? (int64_t)((uint64_t)a << b) : 0;
    case B_BSR: return b >= 0 && b < 64 ? (int64_t)((uint64_t)a >> b) : 0;
    case B_POW: { double r = pow((double)a, (double)b); return r != r ? 0 : r > 9.2e18 ? INT64_MAX : r < -9.2e18 ? INT64_MIN : (int64_t)r; }
    default: return (int64_t)bin_d(op, (double)a, (double)b);
    }
}

static int is_cmp(int op) { return op >= B_EQ && op <= B_XOR; }

static int binary(mt_nn_model *m, nn_node *n, int run, int op)
{
    int rc;
    if ((rc = nn_need(m, n, 0, 0)) || (rc = nn_need(m, n, 1, 0)))
        return rc;
    nn_t *ts[2] = {IN(0), IN(1)};
    if (!run) {
        if (ts[0]->dtype != ts[1]->dtype && op != B_POW && op != B_BSL && op != B_BSR)
            return FAIL(MT_NN_EINVAL, "inputs have different element types (%d, %d)",
                        ts[0]->dtype, ts[1]->dtype);
        int64_t od[MT_NN_MAX_RANK];
        int r;
        if ((rc = nn_bcast_shape(m, n, ts, 2, od, &r)))
            return rc;
        return nn_set_out(m, n, 0, is_cmp(op) ? MT_NN_BOOL : ts[0]->dtype, r, od);
    }
    nn_t *o = OUT(0);
    bit b;
    bit_init(&b, ts, 2, o);
    int dt = ts[0]->dtype;
    if (dt == MT_NN_FLOAT && ts[1]->dtype == MT_NN_FLOAT && !is_cmp(op)) {
        const float *A = ts[0]->data, *B = ts[1]->data;
        float *O = o->data;
        if (ts[0]->count == o->count && ts[1]->count == o->count && op <= B_MUL) {
            for (size_t i = 0; i < o->count; i++)
                O[i] = op == B_ADD ? A[i] + B[i] : op == B_SUB ? A[i] - B[i] : A[i] * B[i];
            return 0;
        }
        for (size_t i = 0; i < o->count; i++, bit_next(&b)) {
            float x = A[b.off[0]], y = B[b.off[1]];
            switch (op) {
            case B_ADD: O[i] = x + y; break;
            case B_SUB: O[i] = x - y; break;
            case B_MUL: O[i] = x * y; break;
            case B_DIV: O[i] = x / y; break;
            case B_POW: O[i] = powf(x, y); break;
            default: O[i] = (float)bin_d(op, x, y);
            }
        }
        return 0;
    }
    int isint = !nn_is_float(dt) && !is_cmp(op);
    int ok = 1;
    for (size_t i = 0; i < o->count; i++, bit_next(&b)) {
        if (isint && nn_is_float(ts[1]->dtype) && op == B_POW)
            nn_sti(o->data, o->dtype, i,
                   (int64_t)pow((double)nn_ldi(ts[0]->data, dt, (size_t)b.off[0]),
                                nn_ld(ts[1]->data, ts[1]->dtype, (size_t)b.off[1])));
        else if (isint)
            nn_sti(o->data, o->dtype, i,
                   bin_i(op, nn_ldi(ts[0]->data, dt, (size_t)b.off[0]),
                         nn_ldi(ts[1]->data, ts[1]->dtype, (size_t)b.off[1]), &ok));
        else
            nn_st(o->data, o->dtype, i,
                  bin_d(op, nn_ld(ts[0]->data, dt, (size_t)b.off[0]),
                        nn_ld(ts[1]->data, ts[1]->dtype, (size_t)b.off[1])));
    }
    if (!ok)
        return FAIL(MT_NN_EINVAL, "integer division by zero");
    return 0;
}

#define BIN(NAME, OP) static int op_##NAME(mt_nn_model *m, nn_node *n, int run) { return binary(m, n, run, OP); }
BIN(add, B_ADD) BIN(sub, B_SUB) BIN(mul, B_MUL) BIN(div, B_DIV) BIN(pow, B_POW)
BIN(eq, B_EQ) BIN(lt, B_LT) BIN(gt, B_GT) BIN(le, B_LE) BIN(ge, B_GE) BIN(and, B_AND)
BIN(or, B_OR) BIN(xor, B_XOR)

/* PRelu; before opset 7 a 1-D slope of C elements applies along axis 1 */
static int op_prelu(mt_nn_model *m, nn_node *n, int run)
{
    nn_t *x = IN(0), *s = IN(1);
    if (m->opset < 7 && x && s && s->rank == 1 && x->rank >= 2 && s->dims[0] == x->dims[1] &&
        x->dims[x->rank - 1] != s->dims[0]) {
        nn_t save = *s;
        s->rank = x->rank - 1;
        for (int i = 0; i < s->rank; i++) s->dims[i] = i == 0 ? save.dims[0] : 1;
        int rc = binary(m, n, run, B_PRELU);
        *s = save;
        return rc;
    }
    return binary(m, n, run, B_PRELU);
}

static int op_shrink(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, x->rank, x->dims);
    double l = nn_attr_f(n, "lambd", 0.5f), b = nn_attr_f(n, "bias", 0.f);
    for (size_t i = 0; i < x->count; i++) {
        double v = nn_ld(x->data, x->dtype, i);
        nn_st(OUT(0)->data, x->dtype, i, v < -l ? v + b : v > l ? v - b : 0);
    }
    return 0;
}

static int op_mod(mt_nn_model *m, nn_node *n, int run)
{
    nn_t *a = IN(0);
    int f = nn_attr_i(n, "fmod", 0) || (a && nn_is_float(a->dtype));
    return binary(m, n, run, f ? B_FMOD : B_MOD);
}

static int op_bitshift(mt_nn_model *m, nn_node *n, int run)
{
    return binary(m, n, run, strcmp(nn_attr_s(n, "direction", ""), "LEFT") == 0 ? B_BSL : B_BSR);
}

/* variadic: Sum, Mean, Max, Min */
static int variadic(mt_nn_model *m, nn_node *n, int run, int op, int mean)
{
    if (n->nin < 1 || n->nin > 64)
        return FAIL(MT_NN_EINVAL, "needs 1 to 64 inputs");
    nn_t *ts[64];
    for (int i = 0; i < n->nin; i++) {
        int rc = nn_need(m, n, i, 0);
        if (rc)
            return rc;
        ts[i] = IN(i);
        if (ts[i]->dtype != ts[0]->dtype)
            return FAIL(MT_NN_EINVAL, "inputs have different element types");
    }
    if (!run) {
        int64_t od[MT_NN_MAX_RANK];
        int r, rc = nn_bcast_shape(m, n, ts, n->nin, od, &r);
        return rc ? rc : nn_set_out(m, n, 0, ts[0]->dtype, r, od);
    }
    nn_t *o = OUT(0);
    int dt = o->dtype;
    for (int k = 0; k < n->nin; k++) {
        nn_t *pair[2] = {o, ts[k]};
        bit b;
        bit_init(&b, pair, 2, o);
        for (size_t i = 0; i < o->count; i++, bit_next(&b)) {
            double v = nn_ld(ts[k]->data, dt, (size_t)b.off[1]);
            if (k == 0)
                nn_st(o->data, dt, i, v);
            else
                nn_st(o->data, dt, i, bin_d(op, nn_ld(o->data, dt, i), v));
        }
    }
    if (mean)
        for (size_t i = 0; i < o->count; i++)
            nn_st(o->data, dt, i, nn_ld(o->data, dt, i) / n->nin);
    return 0;
}

static int op_sum(mt_nn_model *m, nn_node *n, int run) { return variadic(m, n, run, B_ADD, 0); }
static int op_mean(mt_nn_model *m, nn_node *n, int run) { return variadic(m, n, run, B_ADD, 1); }
static int op_max(mt_nn_model *m, nn_node *n, int run) { return variadic(m, n, run, B_MAX, 0); }
static int op_min(mt_nn_model *m, nn_node *n, int run) { return variadic(m, n, run, B_MIN, 0); }

static int op_where(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    for (int i = 0; i < 3; i++)
        if ((rc = nn_need(m, n, i, 0)))
            return rc;
    nn_t *ts[3] = {IN(0), IN(1), IN(2)};
    if (!run) {
        if (ts[0]->dtype != MT_NN_BOOL || ts[1]->dtype != ts[2]->dtype)
            return FAIL(MT_NN_EINVAL, "condition must be bool and X, Y of one type");
        int64_t od[MT_NN_MAX_RANK];
        int r;
        if ((rc = nn_bcast_shape(m, n, ts, 3, od, &r)))
            return rc;
        return nn_set_out(m, n, 0, ts[1]->dtype, r, od);
    }
    nn_t *o = OUT(0);
    bit b;
    bit_init(&b, ts, 3, o);
    size_t es = mt_nn_dtype_size(o->dtype);
    const uint8_t *C = ts[0]->data;
    for (size_t i = 0; i < o->count; i++, bit_next(&b)) {
        const uint8_t *src = C[b.off[0]] ? (const uint8_t *)ts[1]->data + (size_t)b.off[1] * es
                                         : (const uint8_t *)ts[2]->data + (size_t)b.off[2] * es;
        memcpy((uint8_t *)o->data + i * es, src, es);
    }
    return 0;
}

/* ---- unary element-wise -------------------------------------------------------------- */
enum { U_ABS, U_NEG, U_EXP, U_LOG, U_SQRT, U_RECIP, U_FLOOR, U_CEIL, U_RELU, U_SIGMOID, U_TANH,
       U_ERF, U_SIN, U_COS, U_TAN, U_ASIN, U_ACOS, U_ATAN, U_SINH, U_COSH, U_ASINH, U_ACOSH,
       U_ATANH, U_SOFTPLUS, U_SOFTSIGN, U_SIGN, U_ROUND, U_NOT, U_LEAKY, U_ELU, U_SELU,
       U_HSIGMOID, U_HSWISH, U_TRELU, U_CELU, U_ISNAN, U_ISINF };

static double un_d(int op, double x, double al, double be, nn_node *n)
{
    switch (op) {
    case U_ABS: return fabs(x);
    case U_NEG: return -x;
    case U_EXP: return exp(x);
    case U_LOG: return log(x);
    case U_SQRT: return sqrt(x);
    case U_RECIP: return 1.0 / x;
    case U_FLOOR: return floor(x);
    case U_CEIL: return ceil(x);
    case U_RELU: return x < 0 ? 0 : x;
    case U_SIGMOID: return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case U_TANH: return tanh(x);
    case U_ERF: return erf(x);
    case U_SIN: return sin(x);
    case U_COS: return cos(x);
    case U_TAN: return tan(x);
    case U_ASIN: return asin(x);
    case U_ACOS: return acos(x);
    case U_ATAN: return atan(x);
    case U_SINH: return sinh(x);
    case U_COSH: return cosh(x);
    case U_ASINH: return asinh(x);
    case U_ACOSH: return acosh(x);
    case U_ATANH: return atanh(x);
    case U_SOFTPLUS: return x > 30 ? x : log1p(exp(x));
    case U_SOFTSIGN: return x / (1 + fabs(x));
    case U_SIGN: return x > 0 ? 1 : x < 0 ? -1 : x;
    case U_ROUND: return nearbyint(x);
    case U_NOT: return x == 0;
    case U_LEAKY: return x < 0 ? al * x : x;
    case U_ELU: return x < 0 ? al * (exp(x) - 1) : x;
    case U_SELU: return x <= 0 ? be * (al * exp(x) - al) : be * x;
    case U_HSIGMOID: { double v = al * x + be; return v < 0 ? 0 : v > 1 ? 1 : v; }
    case U_HSWISH: { double v = x / 6 + 0.5; return x * (v < 0 ? 0 : v > 1 ? 1 : v); }
    case U_TRELU: return x > al ? x : 0;
    case U_CELU: return (x > 0 ? x : 0) + (al * (exp(x / al) - 1) < 0 ? al * (exp(x / al) - 1) : 0);
    case U_ISNAN: return x != x;
    case U_ISINF: {
        int neg = (int)nn_attr_i(n, "detect_negative", 1), pos = (int)nn_attr_i(n, "detect_positive", 1);
        return isinf(x) && ((x > 0 && pos) || (x < 0 && neg));
    }
    default: return x;
    }
}

static int unary(mt_nn_model *m, nn_node *n, int run, int op, double al, double be)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int odt = (op == U_ISNAN || op == U_ISINF) ? MT_NN_BOOL : x->dtype;
    if (!run) {
        if (op == U_NOT && x->dtype != MT_NN_BOOL)
            return FAIL(MT_NN_EINVAL, "input must be bool");
        if (op != U_NOT && op != U_ABS && op != U_NEG && op != U_SIGN && op != U_RELU &&
            !nn_is_float(x->dtype))
            return FAIL(MT_NN_EUNSUPPORTED, "element type %d not supported", x->dtype);
        return nn_set_out(m, n, 0, odt, x->rank, x->dims);
    }
    nn_t *o = OUT(0);
    if (x->dtype == MT_NN_FLOAT && odt == MT_NN_FLOAT) {
        const float *X = x->data;
        float *O = o->data;
        switch (op) {
        case U_RELU:
            /* Branch-free (a mask from the comparison): on random-signed activations the
             * branchy form mispredicted half the time and was 24% of ResNet-50's run
             * (the Relu after each residual Add). Same results: NaN and -0 pass through. */
            for (size_t i = 0; i < x->count; i++) {
                uint32_t b;
                memcpy(&b, &X[i], sizeof b);
                b &= -(uint32_t)!(X[i] < 0.f);
                memcpy(&O[i], &b, sizeof b);
            }
            return 0;
        case U_SIGMOID:
            for (size_t i = 0; i < x->count; i++)
                O[i] = X[i] >= 0 ? 1.f / (1.f + expf(-X[i])) : expf(X[i]) / (1.f + expf(X[i]));
            return 0;
        case U_TANH: for (size_t i = 0; i < x->count; i++) O[i] = tanhf(X[i]); return 0;
        case U_SQRT: for (size_t i = 0; i < x->count; i++) O[i] = sqrtf(X[i]); return 0;
        case U_ERF: for (size_t i = 0; i < x->count; i++) O[i] = erff(X[i]); return 0;
        default:
            for (size_t i = 0; i < x->count; i++)
                O[i] = (float)un_d(op, X[i], al, be, n);
            return 0;
        }
    }
    if (!nn_is_float(x->dtype) && op != U_NOT)
        for (size_t i = 0; i < x->count; i++) {
            int64_t v = nn_ldi(x->data, x->dtype, i);
            nn_sti(o->data, odt, i, op == U_ABS ? (v < 0 ? -v : v) : op == U_NEG ? -v :
                   op == U_RELU ? (v < 0 ? 0 : v) : (v > 0) - (v < 0));
        }
    else
        for (size_t i = 0; i < x->count; i++)
            nn_st(o->data, odt, i, un_d(op, nn_ld(x->data, x->dtype, i), al, be, n));
    return 0;
}

#define UN(NAME, OP) static int op_##NAME(mt_nn_model *m, nn_node *n, int run) { return unary(m, n, run, OP, 0, 0); }
UN(abs, U_ABS) UN(neg, U_NEG) UN(exp, U_EXP) UN(log, U_LOG) UN(sqrt, U_SQRT) UN(recip, U_RECIP)
UN(floor, U_FLOOR) UN(ceil, U_CEIL) UN(relu, U_RELU) UN(sigmoid, U_SIGMOID) UN(tanh, U_TANH)
UN(erf, U_ERF) UN(sin, U_SIN) UN(cos, U_COS) UN(tan, U_TAN) UN(asin, U_ASIN) UN(acos, U_ACOS)
UN(atan, U_ATAN) UN(sinh, U_SINH) UN(cosh, U_COSH) UN(asinh, U_ASINH) UN(acosh, U_ACOSH)
UN(atanh, U_ATANH) UN(softplus, U_SOFTPLUS) UN(softsign, U_SOFTSIGN) UN(sign, U_SIGN)
UN(round, U_ROUND) UN(not, U_NOT) UN(hswish, U_HSWISH) UN(isnan, U_ISNAN) UN(isinf, U_ISINF)

static int op_leaky(mt_nn_model *m, nn_node *n, int run) { return unary(m, n, run, U_LEAKY, nn_attr_f(n, "alpha", 0.01f), 0); }
static int op_elu(mt_nn_model *m, nn_node *n, int run) { return unary(m, n, run, U_ELU, nn_attr_f(n, "alpha", 1.f), 0); }
static int op_selu(mt_nn_model *m, nn_node *n, int run)
{
    return unary(m, n, run, U_SELU, nn_attr_f(n, "alpha", 1.67326319217681884765625f),
                 nn_attr_f(n, "gamma", 1.05070102214813232421875f));
}
static int op_hsigmoid(mt_nn_model *m, nn_node *n, int run) { return unary(m, n, run, U_HSIGMOID, nn_attr_f(n, "alpha", 0.2f), nn_attr_f(n, "beta", 0.5f)); }
static int op_trelu(mt_nn_model *m, nn_node *n, int run) { return unary(m, n, run, U_TRELU, nn_attr_f(n, "alpha", 1.f), 0); }
static int op_celu(mt_nn_model *m, nn_node *n, int run) { return unary(m, n, run, U_CELU, nn_attr_f(n, "alpha", 1.f), 0); }

static int op_clip(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0), *lo = IN(1), *hi = IN(2);
    if (!run) {
        if ((lo && (lo->count != 1 || lo->dtype != x->dtype)) ||
            (hi && (hi->count != 1 || hi->dtype != x->dtype)))
            return FAIL(MT_NN_EINVAL, "min and max must be scalars of the input's type");
        return nn_set_out(m, n, 0, x->dtype, x->rank, x->dims);
    }
    nn_t *o = OUT(0);
    double l = -INFINITY, h = INFINITY;
    if (n->nin <= 1 || m->opset < 11) {
        l = nn_attr_f(n, "min", -FLT_MAX);
        h = nn_attr_f(n, "max", FLT_MAX);
    }
    if (lo)
        l = nn_ld(lo->data, lo->dtype, 0);
    if (hi)
        h = nn_ld(hi->data, hi->dtype, 0);
    if (x->dtype == MT_NN_FLOAT) {
        const float *X = x->data;
        float *O = o->data, fl = (float)l, fh = (float)h;
        for (size_t i = 0; i < x->count; i++) {
            float v = X[i];
            O[i] = v < fl ? fl : v > fh ? fh : v;
        }
        return 0;
    }
    for (size_t i = 0; i < x->count; i++) {
        double v = nn_ld(x->data, x->dtype, i);
        nn_st(o->data, o->dtype, i, v < l ? l : v > h ? h : v);
    }
    return 0;
}

static int op_identity(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0), *tm = IN(2);
    if (!run) {
        if (strcmp(n->op, "Dropout") == 0 && tm &&
            (!nn_known(tm) || !tm->count || nn_ldi(tm->data, tm->dtype, 0)))
            return FAIL(MT_NN_EUNSUPPORTED, "training mode is not supported (inference only)");
        if ((rc = nn_set_out(m, n, 0, x->dtype, x->rank, x->dims)))
            return rc;
        return nn_set_out(m, n, 1, MT_NN_BOOL, x->rank, x->dims); /* Dropout's mask */
    }
    memcpy(OUT(0)->data, x->data, x->count * mt_nn_dtype_size(x->dtype));
    if (OUT(1))
        memset(OUT(1)->data, 1, x->count);
    return 0;
}

static int op_cast(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int to = (int)nn_attr_i(n, "to", 0);
    if (strcmp(n->op, "CastLike") == 0) {
        if ((rc = nn_need(m, n, 1, 0)))
            return rc;
        to = IN(1)->dtype;
    }
    if (!run) {
        if (!mt_nn_dtype_size(to))
            return FAIL(MT_NN_EUNSUPPORTED, "cast to element type %d not supported", to);
        return nn_set_out(m, n, 0, to, x->rank, x->dims);
    }
    nn_t *o = OUT(0);
    int exact = !nn_is_float(x->dtype) && !nn_is_float(to);
    for (size_t i = 0; i < x->count; i++) {
        if (exact)
            nn_sti(o->data, to, i, nn_ldi(x->data, x->dtype, i));
        else if (to == MT_NN_BOOL || nn_is_float(to))
            nn_st(o->data, to, i, nn_ld(x->data, x->dtype, i));
        else
            nn_sti(o->data, to, i, nn_ldi(x->data, x->dtype, i));
    }
    return 0;
}

/* ---- shape operators ----------------------------------------------------------------- */
static int op_shape(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int64_t s = nn_attr_i(n, "start", 0), e = nn_attr_i(n, "end", x->rank);
    if (s < 0) s += x->rank;
    if (e < 0) e += x->rank;
    if (s < 0) s = 0;
    if (e > x->rank) e = x->rank;
    if (e < s) e = s;
    if (!run) {
        int64_t d = e - s;
        return nn_set_out(m, n, 0, MT_NN_INT64, 1, &d);
    }
    for (int64_t i = s; i < e; i++)
        ((int64_t *)OUT(0)->data)[i - s] = x->dims[i];
    return 0;
}

static int op_size(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    if (!run)
        return nn_set_out(m, n, 0, MT_NN_INT64, 0, NULL);
    *(int64_t *)OUT(0)->data = (int64_t)IN(0)->count;
    return 0;
}

static int copy_out(mt_nn_model *m, nn_node *n)
{
    nn_t *x = IN(0), *o = OUT(0);
    if (o->data != x->data)
        memcpy(o->data, x->data, x->count * mt_nn_dtype_size(x->dtype));
    return 0;
}

/* Reshape, Flatten, Squeeze, Unsqueeze: the input's data under another shape. run=0
 * checks input 0 and has shape() set the output's shape; run=1 copies the data (nothing
 * to do when the planner made the output an alias of the input). */
static int view_op(mt_nn_model *m, nn_node *n, int run,
                   int (*shape)(mt_nn_model *m, nn_node *n, nn_t *x))
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    if (run)
        return copy_out(m, n);
    return shape(m, n, IN(0));
}

static int reshape_shape(mt_nn_model *m, nn_node *n, nn_t *x)
{
    int rc;
    int64_t s[MT_NN_MAX_RANK];
    size_t k;
    if (m->opset < 5 || n->nin < 2) {
        const int64_t *v;
        k = nn_attr_ints(n, "shape", &v);
        if (k > MT_NN_MAX_RANK)
            return FAIL(MT_NN_EUNSUPPORTED, "rank above %d", MT_NN_MAX_RANK);
        for (size_t i = 0; i < k; i++) s[i] = v[i];
    } else if ((rc = nn_const_ints(m, n, 1, s, MT_NN_MAX_RANK, &k))) {
        return rc;
    }
    int allowzero = (int)nn_attr_i(n, "allowzero", 0), neg = -1;
    size_t known = 1;
    for (size_t i = 0; i < k; i++) {
        if (s[i] == 0 && !allowzero) {
            if ((int)i >= x->rank)
                return FAIL(MT_NN_ESHAPE, "shape[%zu] = 0 copies a dimension the input lacks", i);
            s[i] = x->dims[i];
        }
        if (s[i] == -1) {
            if (neg >= 0)
                return FAIL(MT_NN_ESHAPE, "more than one -1 in the shape");
            neg = (int)i;
        } else if (s[i] < 0 || s[i] > NN_MAX_DIM) {
            return FAIL(MT_NN_ESHAPE, "invalid dimension in the shape");
        } else {
            if (s[i] && known > SIZE_MAX / (size_t)s[i])
                return FAIL(MT_NN_ESHAPE, "shape too large");
            known *= (size_t)s[i];
        }
    }
    if (neg >= 0) {
        if (!known || x->count % known)
            return FAIL(MT_NN_ESHAPE, "cannot infer the -1 dimension (%zu elements)", x->count);
        s[neg] = (int64_t)(x->count / known);
        known = x->count;
    }
    if (known != x->count)
        return FAIL(MT_NN_ESHAPE, "shape has %zu elements, the input %zu", known, x->count);
    return nn_set_out(m, n, 0, x->dtype, (int)k, s);
}

static int op_reshape(mt_nn_model *m, nn_node *n, int run)
{
    return view_op(m, n, run, reshape_shape);
}

static int flatten_shape(mt_nn_model *m, nn_node *n, nn_t *x)
{
    int rc;
    int a;
    int64_t ax = nn_attr_i(n, "axis", 1);
    if (ax == x->rank)
        a = x->rank;
    else if ((rc = nn_axis(m, n, ax, x->rank, &a)))
        return rc;
    int64_t d[2] = {1, 1};
    for (int i = 0; i < x->rank; i++)
        d[i < a ? 0 : 1] *= x->dims[i];
    return nn_set_out(m, n, 0, x->dtype, 2, d);
}

static int op_flatten(mt_nn_model *m, nn_node *n, int run)
{
    return view_op(m, n, run, flatten_shape);
}

static int get_axes(mt_nn_model *m, nn_node *n, int64_t *ax, size_t *k)
{
    if (n->nin >= 2 && IN(1))
        return nn_const_ints(m, n, 1, ax, MT_NN_MAX_RANK, k);
    const int64_t *v;
    *k = nn_attr_ints(n, "axes", &v);
    if (*k > MT_NN_MAX_RANK)
        return FAIL(MT_NN_EINVAL, "too many axes");
    for (size_t i = 0; i < *k; i++)
        ax[i] = v[i];
    return 0;
}

static int squeeze_shape(mt_nn_model *m, nn_node *n, nn_t *x)
{
    int rc;
    int64_t ax[MT_NN_MAX_RANK];
    size_t k;
    if ((rc = get_axes(m, n, ax, &k)))
        return rc;
    int drop[MT_NN_MAX_RANK] = {0};
    for (size_t i = 0; i < k; i++) {
        int a;
        if ((rc = nn_axis(m, n, ax[i], x->rank, &a)))
            return rc;
        if (x->dims[a] != 1)
            return FAIL(MT_NN_ESHAPE, "cannot squeeze axis %d of size %lld", a, (long long)x->dims[a]);
        drop[a] = 1;
    }
    int64_t d[MT_NN_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!(k ? drop[i] : x->dims[i] == 1))
            d[r++] = x->dims[i];
    return nn_set_out(m, n, 0, x->dtype, r, d);
}

static int op_squeeze(mt_nn_model *m, nn_node *n, int run)
{
    return view_op(m, n, run, squeeze_shape);
}

static int unsqueeze_shape(mt_nn_model *m, nn_node *n, nn_t *x)
{
    int rc;
    int64_t ax[MT_NN_MAX_RANK];
    size_t k;
    if ((rc = get_axes(m, n, ax, &k)))
        return rc;
    int r = x->rank + (int)k;
    if (r > MT_NN_MAX_RANK)
        return FAIL(MT_NN_EUNSUPPORTED, "rank above %d", MT_NN_MAX_RANK);
    int ins[MT_NN_MAX_RANK] = {0};
    for (size_t i = 0; i < k; i++) {
        int a;
        if ((rc = nn_axis(m, n, ax[i], r, &a)))
            return rc;
        if (ins[a])
            return FAIL(MT_NN_EINVAL, "axis %d repeated", a);
        ins[a] = 1;
    }
    int64_t d[MT_NN_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++)
        d[i] = ins[i] ? 1 : x->dims[j++];
    return nn_set_out(m, n, 0, x->dtype, r, d);
}

static int op_unsqueeze(mt_nn_model *m, nn_node *n, int run)
{
    return view_op(m, n, run, unsqueeze_shape);
}

static int op_concat(mt_nn_model *m, nn_node *n, int run)
{
    if (n->nin < 1)
        return FAIL(MT_NN_EINVAL, "needs inputs");
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x0 = IN(0);
    int a;
    if ((rc = nn_axis(m, n, nn_attr_i(n, "axis", 1), x0->rank, &a)))
        return rc;
    size_t es = mt_nn_dtype_size(x0->dtype);
    if (!run) {
        int64_t d[MT_NN_MAX_RANK];
        memcpy(d, x0->dims, sizeof d);
        d[a] = 0;
        for (int i = 0; i < n->nin; i++) {
            if ((rc = nn_need(m, n, i, 0)))
                return rc;
            nn_t *x = IN(i);
            if (x->rank != x0->rank || x->dtype != x0->dtype)
                return FAIL(MT_NN_ESHAPE, "input %d: rank or type differs from input 0", i);
            for (int j = 0; j < x->rank; j++)
                if (j != a && x->dims[j] != x0->dims[j])
                    return FAIL(MT_NN_ESHAPE, "input %d: dim %d differs from input 0", i, j);
            d[a] += x->dims[a];
        }
        return nn_set_out(m, n, 0, x0->dtype, x0->rank, d);
    }
    nn_t *o = OUT(0);
    size_t outer = 1, inner = es;
    for (int j = 0; j < a; j++)
        outer *= (size_t)o->dims[j];
    for (int j = a + 1; j < o->rank; j++)
        inner *= (size_t)o->dims[j];
    size_t orow = (size_t)o->dims[a] * inner, pos = 0;
    for (int i = 0; i < n->nin; i++) {
        nn_t *x = IN(i);
        size_t row = (size_t)x->dims[a] * inner;
        for (size_t u = 0; u < outer; u++)
            memcpy((uint8_t *)o->data + u * orow + pos, (const uint8_t *)x->data + u * row, row);
        pos += row;
    }
    return 0;
}

static int op_split(mt_nn_model *m, nn_node *n, int run)
{
    int a, rc = need_axis(m, n, &a);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int64_t sp[1024];
    size_t k = 0;
    if (n->nin >= 2 && IN(1)) {
        if ((rc = nn_const_ints(m, n, 1, sp, 1024, &k)))
            return rc;
    } else {
        const int64_t *v;
        k = nn_attr_ints(n, "split", &v);
        if (k > 1024)
            return FAIL(MT_NN_EINVAL, "too many splits");
        for (size_t i = 0; i < k; i++) sp[i] = v[i];
    }
    if (!k) {
        if (n->nout < 1 || n->nout > 1024 || x->dims[a] % n->nout)
            return FAIL(MT_NN_ESHAPE, "axis of size %lld cannot be split in %d equal parts",
                        (long long)x->dims[a], n->nout);
        k = (size_t)n->nout;
        for (size_t i = 0; i < k; i++) sp[i] = x->dims[a] / n->nout;
    }
    if ((int)k != n->nout)
        return FAIL(MT_NN_ESHAPE, "%zu split sizes for %d outputs", k, n->nout);
    int64_t tot = 0;
    for (size_t i = 0; i < k; i++) {
        if (sp[i] < 0)
            return FAIL(MT_NN_ESHAPE, "negative split size");
        /* each bounded by what is left of the axis: the sum cannot wrap */
        if (sp[i] > x->dims[a] - tot)
            return FAIL(MT_NN_ESHAPE, "split sizes add up to more than the axis (%lld)",
                        (long long)x->dims[a]);
        tot += sp[i];
    }
    if (tot != x->dims[a])
        return FAIL(MT_NN_ESHAPE, "split sizes add up to %lld, the axis is %lld", (long long)tot,
                    (long long)x->dims[a]);
    size_t es = mt_nn_dtype_size(x->dtype), outer = 1, inner = es;
    for (int j = 0; j < a; j++) outer *= (size_t)x->dims[j];
    for (int j = a + 1; j < x->rank; j++) inner *= (size_t)x->dims[j];
    size_t pos = 0, xrow = (size_t)x->dims[a] * inner;
    for (int i = 0; i < n->nout; i++) {
        if (!run) {
            int64_t d[MT_NN_MAX_RANK];
            memcpy(d, x->dims, sizeof d);
            d[a] = sp[i];
            if ((rc = nn_set_out(m, n, i, x->dtype, x->rank, d)))
                return rc;
            continue;
        }
        size_t row = (size_t)sp[i] * inner;
        nn_t *o = OUT(i);
        if (o)
            for (size_t u = 0; u < outer; u++)
                memcpy((uint8_t *)o->data + u * row, (const uint8_t *)x->data + u * xrow + pos, row);
        pos += row;
    }
    return 0;
}

static int op_transpose(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int r = x->rank, perm[MT_NN_MAX_RANK];
    const int64_t *pv;
    size_t k = nn_attr_ints(n, "perm", &pv);
    if (k && (int)k != r)
        return FAIL(MT_NN_EINVAL, "perm has %zu entries for rank %d", k, r);
    int seen[MT_NN_MAX_RANK] = {0};
    for (int i = 0; i < r; i++) {
        perm[i] = k ? (int)pv[i] : r - 1 - i;
        if (k && (pv[i] < 0 || pv[i] >= r || seen[pv[i]]++))
            return FAIL(MT_NN_EINVAL, "perm is not a permutation");
    }
    if (!run) {
        int64_t d[MT_NN_MAX_RANK];
        for (int i = 0; i < r; i++) d[i] = x->dims[perm[i]];
        return nn_set_out(m, n, 0, x->dtype, r, d);
    }
    nn_t *o = OUT(0);
    int64_t xs[MT_NN_MAX_RANK], st[MT_NN_MAX_RANK], idx[MT_NN_MAX_RANK] = {0};
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) { xs[i] = s; s *= x->dims[i]; }
    for (int i = 0; i < r; i++) st[i] = xs[perm[i]];
    size_t es = mt_nn_dtype_size(x->dtype);
    int64_t off = 0;
    for (size_t i = 0; i < o->count; i++) {
        if (es == 4) ((uint32_t *)o->data)[i] = ((const uint32_t *)x->data)[off];
        else memcpy((uint8_t *)o->data + i * es, (const uint8_t *)x->data + (size_t)off * es, es);
        for (int d = r - 1; d >= 0; d--) {
            idx[d]++; off += st[d];
            if (idx[d] < o->dims[d]) break;
            off -= st[d] * o->dims[d]; idx[d] = 0;
        }
    }
    return 0;
}

static int op_gather(mt_nn_model *m, nn_node *n, int run)
{
    int rc, a;
    if ((rc = nn_need(m, n, 0, 0)) || (rc = nn_need(m, n, 1, 0)) || (rc = need_axis(m, n, &a)))
        return rc;
    nn_t *x = IN(0), *ix = IN(1);
    if (!run) {
        if (nn_is_float(ix->dtype))
            return FAIL(MT_NN_EINVAL, "indices must be integers");
        int r = x->rank - 1 + ix->rank;
        if (r > MT_NN_MAX_RANK)
            return FAIL(MT_NN_EUNSUPPORTED, "rank above %d", MT_NN_MAX_RANK);
        int64_t d[MT_NN_MAX_RANK];
        int k = 0;
        for (int i = 0; i < a; i++) d[k++] = x->dims[i];
        for (int i = 0; i < ix->rank; i++) d[k++] = ix->dims[i];
        for (int i = a + 1; i < x->rank; i++) d[k++] = x->dims[i];
        return nn_set_out(m, n, 0, x->dtype, r, d);
    }
    nn_t *o = OUT(0);
    size_t es = mt_nn_dtype_size(x->dtype), outer = 1, inner = es;
    for (int j = 0; j < a; j++) outer *= (size_t)x->dims[j];
    for (int j = a + 1; j < x->rank; j++) inner *= (size_t)x->dims[j];
    int64_t ad = x->dims[a];
    uint8_t *O = o->data;
    for (size_t u = 0; u < outer; u++)
        for (size_t i = 0; i < ix->count; i++) {
            int64_t v = nn_ldi(ix->data, ix->dtype, i);
            if (v < 0) v += ad;
            if (v < 0 || v >= ad)
                return FAIL(MT_NN_EINVAL, "index out of range for axis %d", a);
            memcpy(O, (const uint8_t *)x->data + (u * (size_t)ad + (size_t)v) * inner, inner);
            O += inner;
        }
    return 0;
}

static int op_gather_elements(mt_nn_model *m, nn_node *n, int run)
{
    int rc, a;
    if ((rc = nn_need(m, n, 0, 0)) || (rc = nn_need(m, n, 1, 0)) || (rc = need_axis(m, n, &a)))
        return rc;
    nn_t *x = IN(0), *ix = IN(1);
    if (!run) {
        if (ix->rank != x->rank)
            return FAIL(MT_NN_ESHAPE, "indices rank differs from data rank");
        return nn_set_out(m, n, 0, x->dtype, ix->rank, ix->dims);
    }
    nn_t *o = OUT(0);
    size_t es = mt_nn_dtype_size(x->dtype);
    int64_t xs[MT_NN_MAX_RANK], idx[MT_NN_MAX_RANK] = {0};
    row_strides(x, xs);
    for (size_t i = 0; i < o->count; i++) {
        int64_t v = nn_ldi(ix->data, ix->dtype, i);
        if (v < 0) v += x->dims[a];
        if (v < 0 || v >= x->dims[a])
            return FAIL(MT_NN_EINVAL, "index out of range");
        int64_t off = 0;
        for (int d = 0; d < x->rank; d++) {
            int64_t c = d == a ? v : idx[d];
            if (c >= x->dims[d])
                return FAIL(MT_NN_ESHAPE, "indices larger than data");
            off += c * xs[d];
        }
        memcpy((uint8_t *)o->data + i * es, (const uint8_t *)x->data + (size_t)off * es, es);
        nd_next(idx, ix->dims, x->rank);
    }
    return 0;
}

static int op_slice(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int r = x->rank;
    int64_t st[MT_NN_MAX_RANK], en[MT_NN_MAX_RANK], ax[MT_NN_MAX_RANK], sp[MT_NN_MAX_RANK];
    size_t ks, ke, ka = 0, kp = 0;
    if (m->opset < 10) {
        const int64_t *v;
        ks = nn_attr_ints(n, "starts", &v);
        if (ks > MT_NN_MAX_RANK) return FAIL(MT_NN_EINVAL, "too many starts");
        for (size_t i = 0; i < ks; i++) st[i] = v[i];
        ke = nn_attr_ints(n, "ends", &v);
        if (ke > MT_NN_MAX_RANK) return FAIL(MT_NN_EINVAL, "too many ends");
        for (size_t i = 0; i < ke; i++) en[i] = v[i];
        ka = nn_attr_ints(n, "axes", &v);
        if (ka > MT_NN_MAX_RANK) return FAIL(MT_NN_EINVAL, "too many axes");
        for (size_t i = 0; i < ka; i++) ax[i] = v[i];
    } else {
        if ((rc = nn_const_ints(m, n, 1, st, MT_NN_MAX_RANK, &ks)) ||
            (rc = nn_const_ints(m, n, 2, en, MT_NN_MAX_RANK, &ke)))
            return rc;
        if (IN(3) && (rc = nn_const_ints(m, n, 3, ax, MT_NN_MAX_RANK, &ka)))
            return rc;
        if (IN(4) && (rc = nn_const_ints(m, n, 4, sp, MT_NN_MAX_RANK, &kp)))
            return rc;
    }
    if (ks != ke || (ka && ka != ks) || (kp && kp != ks))
        return FAIL(MT_NN_EINVAL, "starts, ends, axes and steps differ in length");
    int64_t b[MT_NN_MAX_RANK], step[MT_NN_MAX_RANK], d[MT_NN_MAX_RANK];
    for (int i = 0; i < r; i++) { b[i] = 0; step[i] = 1; d[i] = x->dims[i]; }
    for (size_t i = 0; i < ks; i++) {
        int a;
        if ((rc = nn_axis(m, n, ka ? ax[i] : (int64_t)i, r, &a)))
            return rc;
        int64_t s = kp ? sp[i] : 1, dim = x->dims[a], lo = st[i], hi = en[i];
        if (s == 0)
            return FAIL(MT_NN_EINVAL, "step 0");
        if (lo < 0) lo += dim;
        if (hi < 0) hi += dim;
        if (s > 0) {
            lo = lo < 0 ? 0 : lo > dim ? dim : lo;
            hi = hi < 0 ? 0 : hi > dim ? dim : hi;
            d[a] = hi > lo ? (hi - lo + s - 1) / s : 0;
        } else {
            lo = lo < 0 ? -1 : lo > dim - 1 ? dim - 1 : lo;
            hi = hi < -1 ? -1 : hi > dim - 1 ? dim - 1 : hi;
            d[a] = lo > hi ? (lo - hi + (-s) - 1) / (-s) : 0;
        }
        b[a] = lo;
        step[a] = s;
    }
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, r, d);
    nn_t *o = OUT(0);
    size_t es = mt_nn_dtype_size(x->dtype);
    int64_t xs[MT_NN_MAX_RANK], idx[MT_NN_MAX_RANK] = {0};
    row_strides(x, xs);
    for (size_t i = 0; i < o->count; i++) {
        int64_t off = 0;
        for (int k = 0; k < r; k++)
            off += (b[k] + idx[k] * step[k]) * xs[k];
        memcpy((uint8_t *)o->data + i * es, (const uint8_t *)x->data + (size_t)off * es, es);
        nd_next(idx, o->dims, r);
    }
    return 0;
}

static int op_expand(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    if (!run) {
        int64_t s[MT_NN_MAX_RANK];
        size_t k;
        if ((rc = nn_const_ints(m, n, 1, s, MT_NN_MAX_RANK, &k)))
            return rc;
        nn_t shp;
        memset(&shp, 0, sizeof shp);
        shp.rank = (int)k;
        for (size_t i = 0; i < k; i++) {
            if (s[i] < 0) return FAIL(MT_NN_ESHAPE, "negative dimension");
            shp.dims[i] = s[i];
        }
        nn_t *ts[2] = {x, &shp};
        int64_t od[MT_NN_MAX_RANK];
        int r;
        if ((rc = nn_bcast_shape(m, n, ts, 2, od, &r)))
            return rc;
        return nn_set_out(m, n, 0, x->dtype, r, od);
    }
    nn_t *o = OUT(0), *ts[1] = {x};
    bit b;
    bit_init(&b, ts, 1, o);
    size_t es = mt_nn_dtype_size(x->dtype);
    for (size_t i = 0; i < o->count; i++, bit_next(&b))
        memcpy((uint8_t *)o->data + i * es, (const uint8_t *)x->data + (size_t)b.off[0] * es, es);
    return 0;
}

static int op_tile(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int64_t rp[MT_NN_MAX_RANK];
    size_t k;
    if ((rc = nn_const_ints(m, n, 1, rp, MT_NN_MAX_RANK, &k)))
        return rc;
    if ((int)k != x->rank)
        return FAIL(MT_NN_EINVAL, "repeats has %zu entries for rank %d", k, x->rank);
    if (!run) {
        int64_t d[MT_NN_MAX_RANK];
        for (int i = 0; i < x->rank; i++) {
            if (rp[i] < 0 || (x->dims[i] && rp[i] > NN_MAX_DIM / x->dims[i]))
                return FAIL(MT_NN_ESHAPE, "invalid repeats");
            d[i] = x->dims[i] * rp[i];
        }
        return nn_set_out(m, n, 0, x->dtype, x->rank, d);
    }
    nn_t *o = OUT(0);
    size_t es = mt_nn_dtype_size(x->dtype);
    int64_t xs[MT_NN_MAX_RANK], idx[MT_NN_MAX_RANK] = {0};
    row_strides(x, xs);
    for (size_t i = 0; i < o->count; i++) {
        int64_t off = 0;
        for (int d = 0; d < x->rank; d++) off += (idx[d] % x->dims[d]) * xs[d];
        memcpy((uint8_t *)o->data + i * es, (const uint8_t *)x->data + (size_t)off * es, es);
        nd_next(idx, o->dims, x->rank);
    }
    return 0;
}

static int attr_tensor(mt_nn_model *m, nn_node *n, const Onnx__TensorProto *tp, nn_t *tmp)
{
    memset(tmp, 0, sizeof *tmp);
    char e[256];
    char *se = m->err;
    size_t sl = m->errlen;
    m->err = e;
    m->errlen = sizeof e;
    int rc = nn_tensor_from_proto(NULL, tp, NULL, 0, tmp, "attribute");
    m->err = se;
    m->errlen = sl;
    if (rc)
        return FAIL(rc, "invalid tensor attribute");
    return 0;
}

static int op_constant(mt_nn_model *m, nn_node *n, int run)
{
    const Onnx__AttributeProto *a;
    nn_t *o = OUT(0);
    if ((a = nn_attr(n, "value")) && a->t) {
        nn_t tmp;
        int rc = attr_tensor(m, n, a->t, &tmp);
        if (rc)
            return rc;
        if (!run)
            rc = nn_set_out(m, n, 0, tmp.dtype, tmp.rank, tmp.dims);
        else
            memcpy(o->data, tmp.data, tmp.own_bytes);
        free(tmp.own);
        return rc;
    }
    if ((a = nn_attr(n, "value_float")) && a->has_f) {
        if (!run) return nn_set_out(m, n, 0, MT_NN_FLOAT, 0, NULL);
        *(float *)o->data = a->f;
        return 0;
    }
    if ((a = nn_attr(n, "value_int")) && a->has_i) {
        if (!run) return nn_set_out(m, n, 0, MT_NN_INT64, 0, NULL);
        *(int64_t *)o->data = a->i;
        return 0;
    }
    if ((a = nn_attr(n, "value_floats"))) {
        int64_t d = (int64_t)a->n_floats;
        if (!run) return nn_set_out(m, n, 0, MT_NN_FLOAT, 1, &d);
        if (d) memcpy(o->data, a->floats, a->n_floats * 4);
        return 0;
    }
    if ((a = nn_attr(n, "value_ints"))) {
        int64_t d = (int64_t)a->n_ints;
        if (!run) return nn_set_out(m, n, 0, MT_NN_INT64, 1, &d);
        if (d) memcpy(o->data, a->ints, a->n_ints * 8);
        return 0;
    }
    return FAIL(MT_NN_EUNSUPPORTED, "no supported value attribute");
}

static int op_constant_of_shape(mt_nn_model *m, nn_node *n, int run)
{
    int64_t s[MT_NN_MAX_RANK];
    size_t k;
    int rc = nn_const_ints(m, n, 0, s, MT_NN_MAX_RANK, &k);
    if (rc)
        return rc;
    const Onnx__AttributeProto *a = nn_attr(n, "value");
    nn_t tmp;
    memset(&tmp, 0, sizeof tmp);
    if (a && a->t) {
        if ((rc = attr_tensor(m, n, a->t, &tmp)))
            return rc;
        if (tmp.count != 1) {
            free(tmp.own);
            return FAIL(MT_NN_EINVAL, "value must hold one element");
        }
    }
    int dt = a && a->t ? tmp.dtype : MT_NN_FLOAT;
    if (!run) {
        free(tmp.own);
        for (size_t i = 0; i < k; i++)
            if (s[i] < 0)
                return FAIL(MT_NN_ESHAPE, "negative dimension");
        return nn_set_out(m, n, 0, dt, (int)k, s);
    }
    nn_t *o = OUT(0);
    size_t es = mt_nn_dtype_size(dt);
    for (size_t i = 0; i < o->count; i++) {
        if (tmp.own)
            memcpy((uint8_t *)o->data + i * es, tmp.own, es);
        else
            ((float *)o->data)[i] = 0;
    }
    free(tmp.own);
    return 0;
}

static int op_range(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    for (int i = 0; i < 3; i++)
        if ((rc = nn_need(m, n, i, 0)))
            return rc;
    nn_t *s = IN(0), *l = IN(1), *d = IN(2);
    if (!nn_known(s) || !nn_known(l) || !nn_known(d))
        return FAIL(MT_NN_EUNSUPPORTED, "start, limit and delta must be constants (dynamic shape)");
    double a = nn_ld(s->data, s->dtype, 0), b = nn_ld(l->data, l->dtype, 0),
           dl = nn_ld(d->data, d->dtype, 0);
    if (dl == 0 || dl != dl || a != a || b != b)
        return FAIL(MT_NN_EINVAL, "delta must be non-zero");
    double c = ceil((b - a) / dl);
    if (c < 0) c = 0;
    if (c > 1e9)
        return FAIL(MT_NN_ESHAPE, "range too long");
    int64_t cnt = (int64_t)c;
    if (!run)
        return nn_set_out(m, n, 0, s->dtype, 1, &cnt);
    for (int64_t i = 0; i < cnt; i++) {
        if (nn_is_float(s->dtype))
            nn_st(OUT(0)->data, s->dtype, (size_t)i, a + (double)i * dl);
        else
            nn_sti(OUT(0)->data, s->dtype, (size_t)i,
                   nn_ldi(s->data, s->dtype, 0) + i * nn_ldi(d->data, d->dtype, 0));
    }
    return 0;
}

/* ---- reductions ------------------------------------------------------------------------ */
enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQ };

static int reduce(mt_nn_model *m, nn_node *n, int run, int op)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int64_t ax[MT_NN_MAX_RANK];
    size_t k = 0;
    if ((rc = get_axes(m, n, ax, &k)))
        return rc;
    int keep = (int)nn_attr_i(n, "keepdims", 1), red[MT_NN_MAX_RANK] = {0};
    int noop = (int)nn_attr_i(n, "noop_with_empty_axes", 0);
    for (size_t i = 0; i < k; i++) {
        int a;
        if ((rc = nn_axis(m, n, ax[i], x->rank, &a)))
            return rc;
        red[a] = 1;
    }
    if (!k && !noop)
        for (int i = 0; i < x->rank; i++) red[i] = 1;
    int64_t d[MT_NN_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!red[i]) d[r++] = x->dims[i];
        else if (keep) d[r++] = 1;
    }
    if (!run) {
        if (!nn_is_numeric(x->dtype))
            return FAIL(MT_NN_EUNSUPPORTED, "element type not supported");
        return nn_set_out(m, n, 0, x->dtype, r, d);
    }
    nn_t *o = OUT(0);
    double *acc = calloc(o->count ? o->count : 1, sizeof(double));
    if (!acc)
        return FAIL(MT_NN_ENOMEM, "out of memory");
    double init = op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : op == R_PROD ? 1 : 0;
    for (size_t i = 0; i < o->count; i++) acc[i] = init;
    int64_t os[MT_NN_MAX_RANK], idx[MT_NN_MAX_RANK] = {0}, s = 1;
    for (int i = x->rank - 1; i >= 0; i--) {
        os[i] = red[i] ? 0 : s;
        if (!red[i]) s *= x->dims[i];
    }
    int64_t off = 0;
    for (size_t i = 0; i < x->count; i++) {
        double v = nn_ld(x->data, x->dtype, i);
        double *a = &acc[off];
        switch (op) {
        case R_SUM: case R_MEAN: case R_LOGSUM: *a += v; break;
        case R_MAX: if (v > *a || v != v) *a = v; break;
        case R_MIN: if (v < *a || v != v) *a = v; break;
        case R_PROD: *a *= v; break;
        case R_L1: *a += fabs(v); break;
        case R_L2: case R_SUMSQ: *a += v * v; break;
        case R_LOGSUMEXP: *a += exp(v); break;
        }
        for (int dd = x->rank - 1; dd >= 0; dd--) {
            idx[dd]++; off += os[dd];
            if (idx[dd] < x->dims[dd]) break;
            off -= os[dd] * x->dims[dd]; idx[dd] = 0;
        }
    }
    size_t per = o->count ? x->count / o->count : 0;
    for (size_t i = 0; i < o->count; i++) {
        double v = acc[i];
        if (op == R_MEAN) v = per ? v / (double)per : NAN;
        else if (op == R_L2) v = sqrt(v);
        else if (op == R_LOGSUM || op == R_LOGSUMEXP) v = log(v);
        if (nn_is_float(o->dtype)) nn_st(o->data, o->dtype, i, v);
        else nn_sti(o->data, o->dtype, i, (int64_t)(op == R_MEAN ? floor(v) : v));
    }
    free(acc);
    return 0;
}

#define RED(NAME, OP) static int op_##NAME(mt_nn_model *m, nn_node *n, int run) { return reduce(m, n, run, OP); }
RED(rsum, R_SUM) RED(rmean, R_MEAN) RED(rmax, R_MAX) RED(rmin, R_MIN) RED(rprod, R_PROD)
RED(rl1, R_L1) RED(rl2, R_L2) RED(rlogsum, R_LOGSUM) RED(rlse, R_LOGSUMEXP) RED(rsumsq, R_SUMSQ)

static int argmax(mt_nn_model *m, nn_node *n, int run, int ismax)
{
    int a, rc = need_axis(m, n, &a);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int keep = (int)nn_attr_i(n, "keepdims", 1), last = (int)nn_attr_i(n, "select_last_index", 0);
    int64_t d[MT_NN_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i != a) d[r++] = x->dims[i];
        else if (keep) d[r++] = 1;
    }
    if (!run) {
        if (!x->dims[a])
            return FAIL(MT_NN_ESHAPE, "empty axis");
        return nn_set_out(m, n, 0, MT_NN_INT64, r, d);
    }
    size_t outer = 1, inner = 1, ad = (size_t)x->dims[a];
    for (int i = 0; i < a; i++) outer *= (size_t)x->dims[i];
    for (int i = a + 1; i < x->rank; i++) inner *= (size_t)x->dims[i];
    int64_t *O = OUT(0)->data;
    for (size_t u = 0; u < outer; u++)
        for (size_t v = 0; v < inner; v++) {
            size_t best = 0;
            double bv = nn_ld(x->data, x->dtype, u * ad * inner + v);
            for (size_t k = 1; k < ad; k++) {
                double c = nn_ld(x->data, x->dtype, (u * ad + k) * inner + v);
                if (ismax ? (c > bv || (last && c == bv)) : (c < bv || (last && c == bv))) {
                    bv = c;
                    best = k;
                }
            }
            O[u * inner + v] = (int64_t)best;
        }
    return 0;
}
static int op_argmax(mt_nn_model *m, nn_node *n, int run) { return argmax(m, n, run, 1); }
static int op_argmin(mt_nn_model *m, nn_node *n, int run) { return argmax(m, n, run, 0); }

static int op_cumsum(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int64_t av;
    size_t k;
    if ((rc = nn_const_ints(m, n, 1, &av, 1, &k)))
        return rc;
    int a;
    if (k != 1 || (rc = nn_axis(m, n, av, x->rank, &a)))
        return rc ? rc : FAIL(MT_NN_EINVAL, "axis must be a scalar");
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, x->rank, x->dims);
    int ex = (int)nn_attr_i(n, "exclusive", 0), rev = (int)nn_attr_i(n, "reverse", 0);
    size_t outer = 1, inner = 1, ad = (size_t)x->dims[a];
    for (int i = 0; i < a; i++) outer *= (size_t)x->dims[i];
    for (int i = a + 1; i < x->rank; i++) inner *= (size_t)x->dims[i];
    for (size_t u = 0; u < outer; u++)
        for (size_t v = 0; v < inner; v++) {
            double s = 0;
            for (size_t j = 0; j < ad; j++) {
                size_t kk = rev ? ad - 1 - j : j, p = (u * ad + kk) * inner + v;
                double xv = nn_ld(x->data, x->dtype, p);
                if (ex) { nn_st(OUT(0)->data, x->dtype, p, s); s += xv; }
                else { s += xv; nn_st(OUT(0)->data, x->dtype, p, s); }
            }
        }
    return 0;
}

static int op_pad(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int r = x->rank;
    int64_t p[2 * MT_NN_MAX_RANK];
    size_t k;
    double cv = 0;
    if (m->opset < 11) {
        const int64_t *v;
        k = nn_attr_ints(n, "pads", &v);
        if (k > 2 * MT_NN_MAX_RANK) return FAIL(MT_NN_EINVAL, "too many pads");
        for (size_t i = 0; i < k; i++) p[i] = v[i];
        cv = nn_attr_f(n, "value", 0);
    } else {
        if ((rc = nn_const_ints(m, n, 1, p, 2 * MT_NN_MAX_RANK, &k)))
            return rc;
        nn_t *c = IN(2);
        if (c && c->count) {
            if (!nn_known(c)) return FAIL(MT_NN_EUNSUPPORTED, "constant_value must be a constant");
            cv = nn_ld(c->data, c->dtype, 0);
        }
        if (IN(3)) return FAIL(MT_NN_EUNSUPPORTED, "axes input not supported");
    }
    if ((int)k != 2 * r)
        return FAIL(MT_NN_EINVAL, "pads has %zu entries for rank %d", k, r);
    const char *mode = nn_attr_s(n, "mode", "constant");
    int md = strcmp(mode, "constant") == 0 ? 0 : strcmp(mode, "reflect") == 0 ? 1 : strcmp(mode, "edge") == 0 ? 2 : -1;
    if (md < 0)
        return FAIL(MT_NN_EUNSUPPORTED, "mode not supported");
    int64_t d[MT_NN_MAX_RANK];
    for (int i = 0; i < r; i++) {
        d[i] = x->dims[i] + p[i] + p[i + r];
        if (d[i] < 0 || p[i] > NN_MAX_DIM || p[i + r] > NN_MAX_DIM)
            return FAIL(MT_NN_ESHAPE, "pads make a negative dimension");
        if (md && (x->dims[i] == 0 || (md == 1 && (p[i] >= x->dims[i] || p[i + r] >= x->dims[i]))) && (p[i] || p[i + r]))
            return FAIL(MT_NN_ESHAPE, "pads too large for mode %s", md == 1 ? "reflect" : "edge");
    }
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, r, d);
    nn_t *o = OUT(0);
    size_t es = mt_nn_dtype_size(x->dtype);
    int64_t xs[MT_NN_MAX_RANK], idx[MT_NN_MAX_RANK] = {0};
    row_strides(x, xs);
    for (size_t i = 0; i < o->count; i++) {
        int64_t off = 0, in = 1;
        for (int j = 0; j < r; j++) {
            int64_t c = idx[j] - p[j], dim = x->dims[j];
            if (c < 0 || c >= dim) {
                if (md == 0) { in = 0; break; }
                if (md == 2) c = c < 0 ? 0 : dim - 1;
                else {
                    while (c < 0 || c >= dim) c = c < 0 ? -c : 2 * (dim - 1) - c;
                }
            }
            off += c * xs[j];
        }
        if (in) memcpy((uint8_t *)o->data + i * es, (const uint8_t *)x->data + (size_t)off * es, es);
        else nn_st(o->data, o->dtype, i, cv);
        nd_next(idx, o->dims, r);
    }
    return 0;
}

static int op_trilu(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int64_t kk = 0;
    size_t c;
    if (IN(1) && (rc = nn_const_ints(m, n, 1, &kk, 1, &c)))
        return rc;
    if (!run) {
        if (x->rank < 2) return FAIL(MT_NN_ESHAPE, "rank below 2");
        return nn_set_out(m, n, 0, x->dtype, x->rank, x->dims);
    }
    int up = (int)nn_attr_i(n, "upper", 1);
    int64_t R = x->dims[x->rank - 2], C = x->dims[x->rank - 1];
    size_t es = mt_nn_dtype_size(x->dtype);
    for (size_t i = 0; i < x->count; i++) {
        int64_t col = (int64_t)(i % (size_t)C), row = (int64_t)((i / (size_t)C) % (size_t)R);
        int keep = up ? col - row >= kk : col - row <= kk;
        if (keep) memcpy((uint8_t *)OUT(0)->data + i * es, (const uint8_t *)x->data + i * es, es);
        else memset((uint8_t *)OUT(0)->data + i * es, 0, es);
    }
    return 0;
}

static int d2s(mt_nn_model *m, nn_node *n, int run, int to_space)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int64_t b = nn_attr_i(n, "blocksize", 0);
    if (x->rank != 4 || b <= 0 || b > 4096)
        return FAIL(MT_NN_EINVAL, "needs a 4-D input and a positive blocksize");
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int crd = strcmp(nn_attr_s(n, "mode", "DCR"), "CRD") == 0;
    int64_t d[4];
    if (to_space) {
        if (C % (b * b)) return FAIL(MT_NN_ESHAPE, "channels not divisible by blocksize^2");
        d[0] = N; d[1] = C / (b * b); d[2] = H * b; d[3] = W * b;
    } else {
        if (H % b || W % b) return FAIL(MT_NN_ESHAPE, "spatial size not divisible by blocksize");
        d[0] = N; d[1] = C * b * b; d[2] = H / b; d[3] = W / b;
    }
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, 4, d);
    size_t es = mt_nn_dtype_size(x->dtype);
    const uint8_t *X = x->data;
    uint8_t *O = OUT(0)->data;
    int64_t oc = d[1];
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t c = 0; c < oc; c++)
            for (int64_t h = 0; h < d[2]; h++)
                for (int64_t w = 0; w < d[3]; w++) {
                    int64_t src;
                    if (to_space) {
                        int64_t bh = h % b, bw = w % b;
                        int64_t ic = crd ? c * b * b + bh * b + bw : (bh * b + bw) * oc + c;
                        src = ((nn * C + ic) * H + h / b) * W + w / b;
                    } else {
                        int64_t ic = c % C, bb = c / C, bh = bb / b, bw = bb % b;
                        src = ((nn * C + ic) * H + h * b + bh) * W + w * b + bw;
                    }
                    int64_t dst = ((nn * oc + c) * d[2] + h) * d[3] + w;
                    memcpy(O + (size_t)dst * es, X + (size_t)src * es, es);
                }
    return 0;
}
static int op_d2s(mt_nn_model *m, nn_node *n, int run) { return d2s(m, n, run, 1); }
static int op_s2d(mt_nn_model *m, nn_node *n, int run) { return d2s(m, n, run, 0); }

static int op_eyelike(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int dt = (int)nn_attr_i(n, "dtype", x->dtype);
    if (!run) {
        if (x->rank != 2) return FAIL(MT_NN_ESHAPE, "needs a 2-D input");
        return nn_set_out(m, n, 0, dt, 2, x->dims);
    }
    int64_t k = nn_attr_i(n, "k", 0);
    for (int64_t i = 0; i < x->dims[0]; i++)
        for (int64_t j = 0; j < x->dims[1]; j++)
            nn_sti(OUT(0)->data, dt, (size_t)(i * x->dims[1] + j), j - i == k);
    return 0;
}

static int op_onehot(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    for (int i = 0; i < 3; i++)
        if ((rc = nn_need(m, n, i, 0)))
            return rc;
    nn_t *ix = IN(0), *dp = IN(1), *vals = IN(2);
    if (!nn_known(dp) || dp->count != 1 || vals->count != 2)
        return FAIL(MT_NN_EUNSUPPORTED, "depth must be a constant scalar and values 2 elements");
    int64_t depth = nn_ldi(dp->data, dp->dtype, 0);
    int r = ix->rank + 1, a;
    if (depth <= 0 || depth > NN_MAX_DIM || r > MT_NN_MAX_RANK)
        return FAIL(MT_NN_EINVAL, "invalid depth or rank");
    if ((rc = nn_axis(m, n, nn_attr_i(n, "axis", -1), r, &a)))
        return rc;
    int64_t d[MT_NN_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++) d[i] = i == a ? depth : ix->dims[j++];
    if (!run)
        return nn_set_out(m, n, 0, vals->dtype, r, d);
    size_t outer = 1, inner = 1;
    for (int i = 0; i < a; i++) outer *= (size_t)d[i];
    for (int i = a + 1; i < r; i++) inner *= (size_t)d[i];
    size_t es = mt_nn_dtype_size(vals->dtype);
    uint8_t *O = OUT(0)->data;
    const uint8_t *V = vals->data;
    for (size_t u = 0; u < outer; u++)
        for (int64_t k = 0; k < depth; k++)
            for (size_t v = 0; v < inner; v++) {
                int64_t id = (int64_t)nn_ld(ix->data, ix->dtype, u * inner + v);
                if (id < 0) id += depth;
                memcpy(O + ((u * (size_t)depth + (size_t)k) * inner + v) * es, V + (id == k ? es : 0), es);
            }
    return 0;
}

static int op_topk(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int64_t K;
    size_t c;
    if (m->opset < 10) K = nn_attr_i(n, "k", 0);
    else if ((rc = nn_const_ints(m, n, 1, &K, 1, &c)))
        return rc;
    int a;
    if ((rc = nn_axis(m, n, nn_attr_i(n, "axis", -1), x->rank, &a)))
        return rc;
    if (K < 0 || K > x->dims[a])
        return FAIL(MT_NN_EINVAL, "k out of range");
    int64_t d[MT_NN_MAX_RANK];
    memcpy(d, x->dims, sizeof d);
    d[a] = K;
    if (!run) {
        if ((rc = nn_set_out(m, n, 0, x->dtype, x->rank, d)))
            return rc;
        return nn_set_out(m, n, 1, MT_NN_INT64, x->rank, d);
    }
    int largest = (int)nn_attr_i(n, "largest", 1);
    size_t outer = 1, inner = 1, ad = (size_t)x->dims[a];
    for (int i = 0; i < a; i++) outer *= (size_t)x->dims[i];
    for (int i = a + 1; i < x->rank; i++) inner *= (size_t)x->dims[i];
    int64_t *sel = malloc((ad + 1) * sizeof *sel);
    if (!sel)
        return FAIL(MT_NN_ENOMEM, "out of memory");
    for (size_t u = 0; u < outer; u++)
        for (size_t v = 0; v < inner; v++) {
            /* selection: stable, ties by lower index */
            for (size_t i = 0; i < ad; i++) sel[i] = (int64_t)i;
            for (int64_t k = 0; k < K; k++) {
                size_t best = (size_t)k;
                double bv = nn_ld(x->data, x->dtype, (u * ad + (size_t)sel[k]) * inner + v);
                for (size_t j = (size_t)k + 1; j < ad; j++) {
                    double cv = nn_ld(x->data, x->dtype, (u * ad + (size_t)sel[j]) * inner + v);
                    int better = largest ? cv > bv : cv < bv;
                    if (better || (cv == bv && sel[j] < sel[best])) { best = j; bv = cv; }
                }
                int64_t t = sel[k]; sel[k] = sel[best]; sel[best] = t;
                size_t op = (u * (size_t)K + (size_t)k) * inner + v;
                nn_st(OUT(0)->data, x->dtype, op, nn_ld(x->data, x->dtype, (u * ad + (size_t)sel[k]) * inner + v));
                if (OUT(1)) ((int64_t *)OUT(1)->data)[op] = sel[k];
            }
        }
    free(sel);
    return 0;
}

/* ---- the table ----------------------------------------------------------------------- */
static const nn_opdef ops[] = {
    {"Abs", op_abs, 0}, {"Acos", op_acos, 0}, {"Acosh", op_acosh, 0}, {"Add", op_add, 0},
    {"And", op_and, 0}, {"ArgMax", op_argmax, 0}, {"ArgMin", op_argmin, 0}, {"Asin", op_asin, 0},
    {"Asinh", op_asinh, 0}, {"Atan", op_atan, 0}, {"Atanh", op_atanh, 0},
    {"AveragePool", nn_op_avgpool, 0}, {"BatchNormalization", nn_op_batchnorm, 0},
    {"BitShift", op_bitshift, 0}, {"Cast", op_cast, 0}, {"Ceil", op_ceil, 0}, {"Celu", op_celu, 0},
    {"Clip", op_clip, 0}, {"Concat", op_concat, 0}, {"Constant", op_constant, 0},
    {"ConstantOfShape", op_constant_of_shape, 0}, {"Conv", nn_op_conv, 0},
    {"ConvTranspose", nn_op_convtranspose, 0}, {"Cos", op_cos, 0}, {"Cosh", op_cosh, 0},
    {"CumSum", op_cumsum, 0}, {"DepthToSpace", op_d2s, 0}, {"Div", op_div, 0},
    {"Dropout", op_identity, 0}, {"Elu", op_elu, 0}, {"Equal", op_eq, 0}, {"Erf", op_erf, 0},
    {"Exp", op_exp, 0}, {"Expand", op_expand, 0}, {"EyeLike", op_eyelike, 0},
    {"Flatten", op_flatten, 0}, {"Floor", op_floor, 0}, {"GRU", nn_op_gru, 0},
    {"Gather", op_gather, 0}, {"GatherElements", op_gather_elements, 0}, {"Gemm", nn_op_gemm, 0},
    {"GlobalAveragePool", nn_op_gavgpool, 0}, {"GlobalMaxPool", nn_op_gmaxpool, 0},
    {"Greater", op_gt, 0}, {"GreaterOrEqual", op_ge, 0}, {"HardSigmoid", op_hsigmoid, 0},
    {"HardSwish", op_hswish, 0}, {"Hardmax", nn_op_hardmax, 0}, {"Identity", op_identity, 0},
    {"InstanceNormalization", nn_op_instnorm, 0}, {"IsInf", op_isinf, 0}, {"IsNaN", op_isnan, 0},
    {"LRN", nn_op_lrn, 0}, {"LSTM", nn_op_lstm, 0}, {"LayerNormalization", nn_op_layernorm, 0},
    {"LeakyRelu", op_leaky, 0}, {"Less", op_lt, 0}, {"LessOrEqual", op_le, 0}, {"Log", op_log, 0},
    {"LogSoftmax", nn_op_logsoftmax, 0}, {"MatMul", nn_op_matmul, 0}, {"Max", op_max, 0},
    {"MaxPool", nn_op_maxpool, 0}, {"Mean", op_mean, 0},
    {"MeanVarianceNormalization", nn_op_mvn, 0}, {"Min", op_min, 0}, {"Mod", op_mod, 0},
    {"Mul", op_mul, 0}, {"Neg", op_neg, 0}, {"Not", op_not, 0}, {"OneHot", op_onehot, 0},
    {"Or", op_or, 0}, {"PRelu", op_prelu, 0}, {"Pad", op_pad, 0}, {"Pow", op_pow, 0},
    {"RNN", nn_op_rnn, 0}, {"Range", op_range, 0}, {"Reciprocal", op_recip, 0},
    {"ReduceL1", op_rl1, 0}, {"ReduceL2", op_rl2, 0}, {"ReduceLogSum", op_rlogsum, 0},
    {"ReduceLogSumExp", op_rlse, 0}, {"ReduceMax", op_rmax, 0}, {"ReduceMean", op_rmean, 0},
    {"ReduceMin", op_rmin, 0}, {"ReduceProd", op_rprod, 0}, {"ReduceSum", op_rsum, 0},
    {"ReduceSumSquare", op_rsumsq, 0}, {"Relu", op_relu, 0}, {"Reshape", op_reshape, 0},
    {"Round", op_round, 0}, {"Selu", op_selu, 0}, {"Shape", op_shape, NN_OP_SHAPEONLY},
    {"Shrink", op_shrink, 0}, {"Sigmoid", op_sigmoid, 0}, {"Sign", op_sign, 0}, {"Sin", op_sin, 0}, {"Sinh", op_sinh, 0},
    {"Size", op_size, NN_OP_SHAPEONLY}, {"Slice", op_slice, 0}, {"Softmax", nn_op_softmax, 0},
    {"Softplus", op_softplus, 0}, {"Softsign", op_softsign, 0}, {"SpaceToDepth", op_s2d, 0},
    {"Split", op_split, 0}, {"Sqrt", op_sqrt, 0}, {"Squeeze", op_squeeze, 0}, {"Sub", op_sub, 0},
    {"Sum", op_sum, 0}, {"Tan", op_tan, 0}, {"Tanh", op_tanh, 0}, {"ThresholdedRelu", op_trelu, 0},
    {"Tile", op_tile, 0}, {"TopK", op_topk, 0}, {"Transpose", op_transpose, 0},
    {"Trilu", op_trilu, 0}, {"Unsqueeze", op_unsqueeze, 0}, {"Where", op_where, 0},
    {"Xor", op_xor, 0},
    /* (order does not matter: looked up by name) */
    {"CastLike", op_cast, 0}, {"NegativeLogLikelihoodLoss", nn_op_nll, 0},
    {"SoftmaxCrossEntropyLoss", nn_op_sce, 0}, {"Resize", nn_op_resize, 0},
    {"Upsample", nn_op_resize, 0},
};

const nn_opdef *nn_op_lookup2(const char *op); /* the second table, below */

const nn_opdef *nn_op_lookup(const char *op)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].name, op) == 0)
            return &ops[i];
    return nn_op_lookup2(op);
}

size_t nn_op_count(void) { return sizeof ops / sizeof ops[0]; }
const char *nn_op_name(size_t i) { return i < nn_op_count() ? ops[i].name : NULL; }

/* ---- GatherND, ScatterElements/Scatter, ScatterND, Compress, windows ------------------- */
static int op_gather_nd(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    if ((rc = nn_need(m, n, 0, 0)) || (rc = nn_need(m, n, 1, 0)))
        return rc;
    nn_t *x = IN(0), *ix = IN(1);
    int64_t b = nn_attr_i(n, "batch_dims", 0);
    if (ix->rank < 1 || nn_is_float(ix->dtype) || b < 0 || b >= ix->rank || b >= x->rank)
        return FAIL(MT_NN_EINVAL, "indices must be integers of rank >= 1, batch_dims in range");
    int64_t k = ix->dims[ix->rank - 1];
    if (k < 1 || b + k > x->rank)
        return FAIL(MT_NN_ESHAPE, "indices' last dimension too large for the data");
    for (int i = 0; i < b; i++)
        if (ix->dims[i] != x->dims[i])
            return FAIL(MT_NN_ESHAPE, "batch dims differ");
    int64_t d[MT_NN_MAX_RANK];
    int r = 0;
    for (int i = 0; i < ix->rank - 1; i++) d[r++] = ix->dims[i];
    for (int i = (int)(b + k); i < x->rank; i++) {
        if (r >= MT_NN_MAX_RANK) return FAIL(MT_NN_EUNSUPPORTED, "rank above %d", MT_NN_MAX_RANK);
        d[r++] = x->dims[i];
    }
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, r, d);
    size_t es = mt_nn_dtype_size(x->dtype), nb = 1, slice = es, per = 1;
    for (int i = 0; i < b; i++) nb *= (size_t)x->dims[i];
    for (int i = (int)(b + k); i < x->rank; i++) slice *= (size_t)x->dims[i];
    for (int i = (int)b; i < ix->rank - 1; i++) per *= (size_t)ix->dims[i];
    size_t xb = slice;
    for (int i = (int)b; i < (int)(b + k); i++) xb *= (size_t)x->dims[i];
    uint8_t *O = OUT(0)->data;
    for (size_t bi = 0; bi < nb; bi++)
        for (size_t p = 0; p < per; p++) {
            size_t off = 0;
            for (int64_t j = 0; j < k; j++) {
                int64_t dim = x->dims[b + j];
                int64_t v = nn_ldi(ix->data, ix->dtype, ((bi * per + p) * (size_t)k) + (size_t)j);
                if (v < 0) v += dim;
                if (v < 0 || v >= dim)
                    return FAIL(MT_NN_EINVAL, "index out of range");
                off = off * (size_t)dim + (size_t)v;
            }
            memcpy(O, (const uint8_t *)x->data + bi * xb + off * slice, slice);
            O += slice;
        }
    return 0;
}

static int reduction_mode(mt_nn_model *m, nn_node *n, int *mode)
{
    const char *r = nn_attr_s(n, "reduction", "none");
    *mode = strcmp(r, "none") == 0 ? 0 : strcmp(r, "add") == 0 ? 1 : strcmp(r, "mul") == 0 ? 2 : -1;
    return *mode < 0 ? FAIL(MT_NN_EUNSUPPORTED, "reduction not supported") : 0;
}

static void scatter_store(nn_t *o, size_t pos, const nn_t *u, size_t ui, int mode)
{
    size_t es = mt_nn_dtype_size(o->dtype);
    if (mode == 0)
        memcpy((uint8_t *)o->data + pos * es, (const uint8_t *)u->data + ui * es, es);
    else if (nn_is_float(o->dtype)) {
        double a = nn_ld(o->data, o->dtype, pos), v = nn_ld(u->data, u->dtype, ui);
        nn_st(o->data, o->dtype, pos, mode == 1 ? a + v : a * v);
    } else {
        int64_t a = nn_ldi(o->data, o->dtype, pos), v = nn_ldi(u->data, u->dtype, ui);
        nn_sti(o->data, o->dtype, pos, mode == 1 ? (int64_t)((uint64_t)a + (uint64_t)v)
                                                 : (int64_t)((uint64_t)a * (uint64_t)v));
    }
}

static int op_scatter_elements(mt_nn_model *m, nn_node *n, int run)
{
    int rc, mode, a;
    for (int i = 0; i < 3; i++)
        if ((rc = nn_need(m, n, i, 0)))
            return rc;
    nn_t *x = IN(0), *ix = IN(1), *u = IN(2);
    if ((rc = reduction_mode(m, n, &mode)) || (rc = nn_axis(m, n, nn_attr_i(n, "axis", 0), x->rank, &a)))
        return rc;
    if (ix->rank != x->rank || u->rank != x->rank || u->dtype != x->dtype || nn_is_float(ix->dtype))
        return FAIL(MT_NN_ESHAPE, "data, indices and updates must have one rank; updates the data's type");
    for (int i = 0; i < x->rank; i++)
        if (ix->dims[i] != u->dims[i] || (i != a && ix->dims[i] > x->dims[i]))
            return FAIL(MT_NN_ESHAPE, "indices and updates do not fit the data");
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, x->rank, x->dims);
    nn_t *o = OUT(0);
    memcpy(o->data, x->data, x->count * mt_nn_dtype_size(x->dtype));
    int64_t xs[MT_NN_MAX_RANK], idx[MT_NN_MAX_RANK] = {0};
    row_strides(x, xs);
    for (size_t e = 0; e < ix->count; e++) {
        int64_t v = nn_ldi(ix->data, ix->dtype, e);
        if (v < 0) v += x->dims[a];
        if (v < 0 || v >= x->dims[a])
            return FAIL(MT_NN_EINVAL, "index out of range");
        int64_t off = 0;
        for (int d = 0; d < x->rank; d++) off += (d == a ? v : idx[d]) * xs[d];
        scatter_store(o, (size_t)off, u, e, mode);
        nd_next(idx, ix->dims, x->rank);
    }
    return 0;
}

static int op_scatter_nd(mt_nn_model *m, nn_node *n, int run)
{
    int rc, mode;
    for (int i = 0; i < 3; i++)
        if ((rc = nn_need(m, n, i, 0)))
            return rc;
    nn_t *x = IN(0), *ix = IN(1), *u = IN(2);
    if ((rc = reduction_mode(m, n, &mode)))
        return rc;
    if (ix->rank < 1 || nn_is_float(ix->dtype) || u->dtype != x->dtype)
        return FAIL(MT_NN_EINVAL, "indices must be integers, updates of the data's type");
    int64_t k = ix->dims[ix->rank - 1];
    if (k < 1 || k > x->rank || u->rank != ix->rank - 1 + x->rank - (int)k)
        return FAIL(MT_NN_ESHAPE, "indices and updates do not fit the data");
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, x->rank, x->dims);
    nn_t *o = OUT(0);
    memcpy(o->data, x->data, x->count * mt_nn_dtype_size(x->dtype));
    size_t slice = 1, cnt = ix->count / (size_t)k;
    for (int i = (int)k; i < x->rank; i++) slice *= (size_t)x->dims[i];
    if (cnt * slice != u->count)
        return FAIL(MT_NN_ESHAPE, "updates size does not fit");
    for (size_t p = 0; p < cnt; p++) {
        size_t off = 0;
        for (int64_t j = 0; j < k; j++) {
            int64_t dim = x->dims[j], v = nn_ldi(ix->data, ix->dtype, p * (size_t)k + (size_t)j);
            if (v < 0) v += dim;
            if (v < 0 || v >= dim)
                return FAIL(MT_NN_EINVAL, "index out of range");
            off = off * (size_t)dim + (size_t)v;
        }
        for (size_t q = 0; q < slice; q++)
            scatter_store(o, off * slice + q, u, p * slice + q, mode);
    }
    return 0;
}

static int op_compress(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    if ((rc = nn_need(m, n, 0, 0)) || (rc = nn_need(m, n, 1, 0)))
        return rc;
    nn_t *x = IN(0), *c = IN(1);
    if (!nn_known(c))
        return FAIL(MT_NN_EUNSUPPORTED, "condition decides the output shape but is only known at run time");
    const Onnx__AttributeProto *aa = nn_attr(n, "axis");
    int a = -1;
    if (aa && aa->has_i && (rc = nn_axis(m, n, aa->i, x->rank, &a)))
        return rc;
    size_t len = a < 0 ? x->count : (size_t)x->dims[a], sel = 0;
    for (size_t i = 0; i < c->count && i < len; i++) sel += nn_ldi(c->data, c->dtype, i) != 0;
    int64_t d[MT_NN_MAX_RANK];
    int r = 1;
    if (a < 0) d[0] = (int64_t)sel;
    else {
        memcpy(d, x->dims, sizeof d);
        d[a] = (int64_t)sel;
        r = x->rank;
    }
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, r, d);
    size_t es = mt_nn_dtype_size(x->dtype), outer = 1, inner = es;
    if (a >= 0) {
        for (int i = 0; i < a; i++) outer *= (size_t)x->dims[i];
        for (int i = a + 1; i < x->rank; i++) inner *= (size_t)x->dims[i];
    }
    uint8_t *O = OUT(0)->data;
    for (size_t u = 0; u < outer; u++)
        for (size_t i = 0; i < len && i < c->count; i++)
            if (nn_ldi(c->data, c->dtype, i)) {
                memcpy(O, (const uint8_t *)x->data + (u * len + i) * inner, inner);
                O += inner;
            }
    return 0;
}

static int window(mt_nn_model *m, nn_node *n, int run, int kind)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *sz = IN(0);
    if (!nn_known(sz) || sz->count != 1)
        return FAIL(MT_NN_EUNSUPPORTED, "size must be a known scalar");
    int64_t N = nn_ldi(sz->data, sz->dtype, 0);
    int dt = (int)nn_attr_i(n, "output_datatype", MT_NN_FLOAT);
    if (N < 0 || N > NN_MAX_DIM)
        return FAIL(MT_NN_EINVAL, "invalid size");
    if (!run)
        return nn_set_out(m, n, 0, dt, 1, &N);
    double den = nn_attr_i(n, "periodic", 1) ? (double)N : (double)(N - 1), pi2 = 2 * M_PI;
    for (int64_t i = 0; i < N; i++) {
        double t = den != 0 ? (double)i / den : 0, v;
        if (kind == 0) v = 0.5 - 0.5 * cos(pi2 * t);
        else if (kind == 1) v = 25.0 / 46.0 - (1 - 25.0 / 46.0) * cos(pi2 * t);
        else v = 0.42 - 0.5 * cos(pi2 * t) + 0.08 * cos(2 * pi2 * t);
        nn_st(OUT(0)->data, dt, (size_t)i, v);
    }
    return 0;
}
static int op_hann(mt_nn_model *m, nn_node *n, int run) { return window(m, n, run, 0); }
static int op_hamming(mt_nn_model *m, nn_node *n, int run) { return window(m, n, run, 1); }
static int op_blackman(mt_nn_model *m, nn_node *n, int run) { return window(m, n, run, 2); }

static const nn_opdef ops2[] = {
    {"GatherND", op_gather_nd, 0}, {"ScatterElements", op_scatter_elements, 0},
    {"Scatter", op_scatter_elements, 0}, {"ScatterND", op_scatter_nd, 0},
    {"Compress", op_compress, 0}, {"HannWindow", op_hann, 0}, {"HammingWindow", op_hamming, 0},
    {"BlackmanWindow", op_blackman, 0},
};

const nn_opdef *nn_op_lookup2(const char *op)
{
    for (size_t i = 0; i < sizeof ops2 / sizeof ops2[0]; i++)
        if (strcmp(ops2[i].name, op) == 0)
            return &ops2[i];
    return NULL;
}
