/* nn_ops_nn.c: reference kernels for the neural-network operators (float32): Conv,
 * ConvTranspose, pooling, normalisations, Gemm/MatMul, softmax and the RNNs (LSTM, GRU,
 * RNN). The oneDNN backend (nn_dnnl.h) is tried first where it applies; on
 * MT_NN_DNNL_EUNSUPPORTED (or when not built) the reference kernel runs. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_int.h"
#include "nn_ops.h"

#define IN(i) nn_in(m, n, (i))
#define OUT(i) nn_out(m, n, (i))
#define FAIL(code, ...) nn_node_fail(m, n, (code), __VA_ARGS__)

static inline float post_apply(const mt_nn_post *p, float v)
{
    switch (p->kind) {
    case MT_NN_POST_RELU: return v < 0 ? 0 : v;
    case MT_NN_POST_CLIP: return v < p->lo ? p->lo : v > p->hi ? p->hi : v;
    case MT_NN_POST_LEAKY_RELU: return v < 0 ? p->alpha * v : v;
    default: return v;
    }
}

#ifdef MT_NN_HAVE_DNNL
/* 0: done by oneDNN; 1: fall back to the reference kernel; <0: error */
static int dnnl_rc(mt_nn_model *m, nn_node *n, int rc, const char *e)
{
    if (rc == 0)
        return 0;
    if (rc == MT_NN_DNNL_EUNSUPPORTED)
        return 1;
    return FAIL(rc == MT_NN_DNNL_ENOMEM ? MT_NN_ENOMEM : MT_NN_EINVAL, "oneDNN: %.200s", e);
}
#endif

/* ---- geometry (1 to 3 spatial dims, kept in the last of 3 slots) ------------------ */
typedef struct {
    int ns;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
} geo;

static int geometry(mt_nn_model *m, nn_node *n, const nn_t *x, const int64_t *ks, int pool,
                    int ceil_mode, int transposed, const int64_t *out_pad, geo *g)
{
    int ns = x->rank - 2;
    if (ns < 1 || ns > 3)
        return FAIL(MT_NN_EUNSUPPORTED, "%d spatial dimensions (1 to 3 supported)", ns);
    memset(g, 0, sizeof *g);
    g->ns = ns;
    int off = 3 - ns;
    const int64_t *st, *dl, *pd;
    size_t nst = nn_attr_ints(n, "strides", &st), ndl = nn_attr_ints(n, "dilations", &dl),
           npd = nn_attr_ints(n, "pads", &pd);
    if ((nst && nst != (size_t)ns) || (ndl && ndl != (size_t)ns) || (npd && npd != 2 * (size_t)ns))
        return FAIL(MT_NN_EINVAL, "strides, dilations or pads do not match %d spatial dims", ns);
    const char *ap = nn_attr_s(n, "auto_pad", "NOTSET");
    int same = strcmp(ap, "SAME_UPPER") == 0 ? 1 : strcmp(ap, "SAME_LOWER") == 0 ? 2 : 0;
    int valid = strcmp(ap, "VALID") == 0;
    if (!same && !valid && strcmp(ap, "NOTSET") != 0)
        return FAIL(MT_NN_EINVAL, "auto_pad '%.16s' unknown", ap);
    for (int i = 0; i < 3; i++) {
        g->in[i] = g->k[i] = g->s[i] = g->d[i] = g->out[i] = 1;
        if (i < off)
            continue;
        int j = i - off;
        g->in[i] = x->dims[2 + j];
        g->k[i] = ks[j];
        g->s[i] = nst ? st[j] : 1;
        g->d[i] = ndl ? dl[j] : 1;
        if (g->k[i] < 1 || g->s[i] < 1 || g->d[i] < 1 || g->k[i] > 65536 || g->s[i] > 65536 ||
            g->d[i] > 65536)
            return FAIL(MT_NN_EINVAL, "kernel, stride and dilation must be in 1..65536");
        g->pb[i] = npd && !same && !valid ? pd[j] : 0;
        g->pe[i] = npd && !same && !valid ? pd[j + ns] : 0;
        if (g->pb[i] < 0 || g->pe[i] < 0 || g->pb[i] > 65536 || g->pe[i] > 65536)
            return FAIL(MT_NN_EINVAL, "pads must be in 0..65536");
        int64_t ek = (g->k[i] - 1) * g->d[i] + 1;
        if (transposed) {
            int64_t op = out_pad ? out_pad[j] : 0;
            /* as ONNX: below the stride or dilation (which are <= 65536), so
             * the sizes below cannot overflow */
            if (op < 0 || op >= (g->s[i] > g->d[i] ? g->s[i] : g->d[i]))
                return FAIL(MT_NN_EINVAL,
                            "output_padding must be in 0..max(stride, dilation)-1");
            int64_t full = g->s[i] * (g->in[i] - 1) + op + ek;
            if (same) {
                int64_t o = g->in[i] * g->s[i], tot = full - o;
                if (tot < 0) tot = 0;
                g->pb[i] = same == 1 ? tot / 2 : tot - tot / 2;
                g->pe[i] = tot - g->pb[i];
            }
            g->out[i] = full - g->pb[i] - g->pe[i];
        } else {
            if (same) {
                int64_t o = (g->in[i] + g->s[i] - 1) / g->s[i];
                int64_t tot = (o - 1) * g->s[i] + ek - g->in[i];
                if (tot < 0) tot = 0;
                g->pb[i] = same == 1 ? tot / 2 : tot - tot / 2;
                g->pe[i] = tot - g->pb[i];
            }
            int64_t span = g->in[i] + g->pb[i] + g->pe[i] - ek;
            if (span < 0)
                return FAIL(MT_NN_ESHAPE, "kernel larger than the padded input");
            g->out[i] = (pool && ceil_mode ? (span + g->s[i] - 1) / g->s[i] : span / g->s[i]) + 1;
            if (pool && ceil_mode && (g->out[i] - 1) * g->s[i] >= g->in[i] + g->pb[i])
                g->out[i]--;
        }
        if (g->out[i] < 0)
            return FAIL(MT_NN_ESHAPE, "negative output size");
    }
    return 0;
}

static void geo_dims(const geo *g, int64_t n, int64_t c, int64_t *d)
{
    d[0] = n;
    d[1] = c;
    for (int j = 0; j < g->ns; j++)
        d[2 + j] = g->out[3 - g->ns + j];
}

/* Sets output 0 (a float tensor of x's rank) to (nb, c, the spatial output sizes of g). */
static int geo_set_out(mt_nn_model *m, nn_node *n, const nn_t *x, const geo *g, int64_t nb,
                       int64_t c)
{
    int64_t d[MT_NN_MAX_RANK];
    geo_dims(g, nb, c, d);
    return nn_set_out(m, n, 0, MT_NN_FLOAT, x->rank, d);
}

typedef struct {
    const float *X, *W, *B;
    float *Y;
    const geo *g;
    int64_t C, M, group;
    mt_nn_post post;
} conv_ctx;

/* one (image, output channel) plane per index */
static void conv_task(void *vc, size_t qb, size_t qe)
{
    const conv_ctx *cx = vc;
    const geo *gp = cx->g;
    const float *X = cx->X, *W = cx->W, *B = cx->B;
    float *Y = cx->Y;
    int64_t C = cx->C, M = cx->M, Cg = C / cx->group, Mg = M / cx->group;
    int64_t ID = gp->in[0], IH = gp->in[1], IW = gp->in[2], OD = gp->out[0], OH = gp->out[1],
            OW = gp->out[2];
    size_t osz = (size_t)(OD * OH * OW), isz = (size_t)(ID * IH * IW);
    size_t ksz = (size_t)(gp->k[0] * gp->k[1] * gp->k[2]);
    for (size_t q = qb; q < qe; q++) {
        int64_t nn = (int64_t)(q / (size_t)M), oc = (int64_t)(q % (size_t)M);
        {
            float *yp = Y + ((size_t)nn * (size_t)M + (size_t)oc) * osz;
            float bv = B ? B[oc] : 0.f;
            for (size_t i = 0; i < osz; i++)
                yp[i] = bv;
            int64_t gi = oc / Mg;
            for (int64_t ci = 0; ci < Cg; ci++) {
                const float *xp = X + ((size_t)nn * (size_t)C + (size_t)(gi * Cg + ci)) * isz;
                const float *wp = W + ((size_t)oc * (size_t)Cg + (size_t)ci) * ksz;
                for (int64_t kd = 0; kd < gp->k[0]; kd++)
                    for (int64_t kh = 0; kh < gp->k[1]; kh++)
                        for (int64_t kw = 0; kw < gp->k[2]; kw++) {
                            float wv = wp[(kd * gp->k[1] + kh) * gp->k[2] + kw];
                            int64_t woff = kw * gp->d[2] - gp->pb[2];
                            int64_t lo = woff >= 0 ? 0 : (-woff + gp->s[2] - 1) / gp->s[2];
                            int64_t hi = IW - woff <= 0 ? 0 : (IW - woff - 1) / gp->s[2] + 1;
                            if (hi > OW) hi = OW;
                            for (int64_t od = 0; od < OD; od++) {
                                int64_t id = od * gp->s[0] - gp->pb[0] + kd * gp->d[0];
                                if (id < 0 || id >= ID) continue;
                                for (int64_t oh = 0; oh < OH; oh++) {
                                    int64_t ih = oh * gp->s[1] - gp->pb[1] + kh * gp->d[1];
                                    if (ih < 0 || ih >= IH) continue;
                                    const float *xr = xp + (id * IH + ih) * IW + woff;
                                    float *yr = yp + (od * OH + oh) * OW;
                                    if (gp->s[2] == 1)
                                        for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow];
                                    else
                                        for (int64_t ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * gp->s[2]];
                                }
                            }
                        }
            }
            if (cx->post.kind != MT_NN_POST_NONE)
                for (size_t i = 0; i < osz; i++)
                    yp[i] = post_apply(&cx->post, yp[i]);
        }
    }
}

#ifdef MT_NN_HAVE_DNNL
/* 2-D Conv (out_pad NULL) or ConvTranspose (out_pad: its output_padding) through oneDNN,
 * weights cached per node when constant; dnnl_rc's result. */
static int conv_dnnl(mt_nn_model *m, nn_node *n, const nn_t *w, const geo *g, int64_t N,
                     int64_t C, int64_t M, int64_t group, const int64_t *out_pad,
                     const float *X, const float *B, float *Y)
{
    mt_nn_conv_desc cd = {N, C, g->in[1], g->in[2], M, g->out[1], g->out[2], g->k[1], g->k[2],
                          group, g->s[1], g->s[2], g->d[1], g->d[2], g->pb[1], g->pb[2],
                          g->pe[1], g->pe[2], out_pad != NULL, out_pad ? out_pad[0] : 0,
                          out_pad ? out_pad[1] : 0, n->post};
    char e[256];
    /* Conv: its input may be in a kept oneDNN layout, its output may stay in one */
    nn_t *x = out_pad ? NULL : nn_in(m, n, 0), *y = out_pad ? NULL : nn_out(m, n, 0);
    mt_nn_dnnl_io io = {x ? x->layout : NULL,
                        y && y->blk_ok ? MT_NN_DNNL_BLOCKED_BYTES(N, M, g->out[1], g->out[2])
                                       : 0,
                        NULL};
    int dr = dnnl_rc(m, n, mt_nn_dnnl_conv_io(nn_dnnl(m), nn_is_const(w) ? (const void *)n : NULL,
                                              &cd, X, w->data, B, Y, &io, e, sizeof e), e);
    if (y)
        y->layout = dr == 0 ? io.y_layout : NULL;
    /* falling back to the reference kernel: it reads NCHW */
    if (dr > 0 && x && x->layout) {
        int rc = nn_plain(m, n, x);
        if (rc)
            return rc;
    }
    return dr;
}
#endif

/* ---- Conv ------------------------------------------------------------------------ */
int nn_op_conv(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    if ((rc = nn_need(m, n, 0, 1)) || (rc = nn_need(m, n, 1, 1)))
        return rc;
    nn_t *x = IN(0), *w = IN(1), *b = IN(2);
    if (w->rank != x->rank)
        return FAIL(MT_NN_ESHAPE, "weights rank %d differs from input rank %d", w->rank, x->rank);
    int64_t group = nn_attr_i(n, "group", 1), N = x->dims[0], C = x->dims[1], M = w->dims[0];
    if (group < 1 || C % group || M % group || w->dims[1] != C / group)
        return FAIL(MT_NN_ESHAPE, "channels (%lld) and weights do not fit group %lld",
                    (long long)C, (long long)group);
    if (b && (b->dtype != MT_NN_FLOAT || b->count != (size_t)M))
        return FAIL(MT_NN_ESHAPE, "bias must have %lld elements", (long long)M);
    const int64_t *ksa;
    size_t nk = nn_attr_ints(n, "kernel_shape", &ksa);
    if (nk && (int)nk != x->rank - 2)
        return FAIL(MT_NN_EINVAL, "kernel_shape length");
    for (size_t i = 0; nk && i < nk; i++)
        if (ksa[i] != w->dims[2 + i])
            return FAIL(MT_NN_ESHAPE, "kernel_shape differs from the weights");
    geo g;
    if ((rc = geometry(m, n, x, w->dims + 2, 0, 0, 0, NULL, &g)))
        return rc;
    if (!run)
        return geo_set_out(m, n, x, &g, N, M);
    const float *X = x->data, *W = w->data, *B = b ? b->data : NULL;
    float *Y = OUT(0)->data;
#ifdef MT_NN_HAVE_DNNL
    if (g.ns == 2 && nn_dnnl(m)) {
        int dr = conv_dnnl(m, n, w, &g, N, C, M, group, NULL, X, B, Y);
        if (dr <= 0)
            return dr;
    }
#endif
    conv_ctx cx = {X, W, B, Y, &g, C, M, group, n->post};
    nn_parallel(m, (size_t)(N * M), conv_task, &cx);
    return 0;
}

int nn_op_convtranspose(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    if ((rc = nn_need(m, n, 0, 1)) || (rc = nn_need(m, n, 1, 1)))
        return rc;
    nn_t *x = IN(0), *w = IN(1), *b = IN(2);
    int64_t group = nn_attr_i(n, "group", 1), N = x->dims[0], C = x->dims[1];
    if (w->rank != x->rank || group < 1 || C % group || w->dims[0] != C)
        return FAIL(MT_NN_ESHAPE, "weights do not fit the input channels and group");
    int64_t Mg = w->dims[1], M = Mg * group;
    if (b && (b->dtype != MT_NN_FLOAT || b->count != (size_t)M))
        return FAIL(MT_NN_ESHAPE, "bias must have %lld elements", (long long)M);
    int ns = x->rank - 2;
    const int64_t *opa, *osa;
    size_t nop = nn_attr_ints(n, "output_padding", &opa), nos = nn_attr_ints(n, "output_shape", &osa);
    int64_t op[3] = {0, 0, 0};
    if (nop && nop != (size_t)ns)
        return FAIL(MT_NN_EINVAL, "output_padding length");
    for (size_t i = 0; i < nop; i++) op[i] = opa[i];
    geo g;
    if ((rc = geometry(m, n, x, w->dims + 2, 0, 0, 1, op, &g)))
        return rc;
    if (nos) {
        if (nos != (size_t)ns && nos != (size_t)x->rank)
            return FAIL(MT_NN_EINVAL, "output_shape length");
        const char *ap = nn_attr_s(n, "auto_pad", "NOTSET");
        int upper = strcmp(ap, "SAME_UPPER") == 0;
        for (int j = 0; j < ns; j++) {
            int i = 3 - ns + j;
            int64_t want = osa[nos - (size_t)ns + (size_t)j];
            int64_t full = g.s[i] * (g.in[i] - 1) + op[j] + (g.k[i] - 1) * g.d[i] + 1;
            int64_t tot = full - want;
            if (want < 0 || want > NN_MAX_DIM)
                return FAIL(MT_NN_ESHAPE, "invalid output_shape");
            g.pb[i] = tot < 0 ? 0 : upper ? tot / 2 : tot - tot / 2;
            g.pe[i] = tot - g.pb[i];
            g.out[i] = want;
        }
    }
    if (!run)
        return geo_set_out(m, n, x, &g, N, M);
    const float *X = x->data, *W = w->data, *B = b ? b->data : NULL;
    float *Y = OUT(0)->data;
#ifdef MT_NN_HAVE_DNNL
    if (g.ns == 2 && nn_dnnl(m)) {
        int dr = conv_dnnl(m, n, w, &g, N, C, M, group, op, X, B, Y);
        if (dr <= 0)
            return dr;
    }
#endif
    int64_t Cg = C / group;
    size_t osz = (size_t)(g.out[0] * g.out[1] * g.out[2]), isz = (size_t)(g.in[0] * g.in[1] * g.in[2]);
    size_t ksz = (size_t)(g.k[0] * g.k[1] * g.k[2]);
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t oc = 0; oc < M; oc++) {
            float *yp = Y + ((size_t)nn * (size_t)M + (size_t)oc) * osz;
            for (size_t i = 0; i < osz; i++) yp[i] = B ? B[oc] : 0.f;
            int64_t gi = oc / Mg, mo = oc % Mg;
            for (int64_t ci = 0; ci < Cg; ci++) {
                int64_t ic = gi * Cg + ci;
                const float *xp = X + ((size_t)nn * (size_t)C + (size_t)ic) * isz;
                const float *wp = W + ((size_t)ic * (size_t)Mg + (size_t)mo) * ksz;
                for (int64_t id = 0; id < g.in[0]; id++)
                    for (int64_t ih = 0; ih < g.in[1]; ih++)
                        for (int64_t iw = 0; iw < g.in[2]; iw++) {
                            float xv = xp[(id * g.in[1] + ih) * g.in[2] + iw];
                            for (int64_t kd = 0; kd < g.k[0]; kd++) {
                                int64_t od = id * g.s[0] - g.pb[0] + kd * g.d[0];
                                if (od < 0 || od >= g.out[0]) continue;
                                for (int64_t kh = 0; kh < g.k[1]; kh++) {
                                    int64_t oh = ih * g.s[1] - g.pb[1] + kh * g.d[1];
                                    if (oh < 0 || oh >= g.out[1]) continue;
                                    for (int64_t kw = 0; kw < g.k[2]; kw++) {
                                        int64_t ow = iw * g.s[2] - g.pb[2] + kw * g.d[2];
                                        if (ow < 0 || ow >= g.out[2]) continue;
                                        yp[(od * g.out[1] + oh) * g.out[2] + ow] +=
                                            xv * wp[(kd * g.k[1] + kh) * g.k[2] + kw];
                                    }
                                }
                            }
                        }
            }
            if (n->post.kind != MT_NN_POST_NONE)
                for (size_t i = 0; i < osz; i++) yp[i] = post_apply(&n->post, yp[i]);
        }
    return 0;
}

/* ---- pooling ---------------------------------------------------------------------- */
static int pool(mt_nn_model *m, nn_node *n, int run, int ismax)
{
    int rc = nn_need(m, n, 0, !ismax);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int gen = x->dtype != MT_NN_FLOAT; /* MaxPool on other numeric types: generic path */
    const int64_t *ks;
    size_t nk = nn_attr_ints(n, "kernel_shape", &ks);
    if ((int)nk != x->rank - 2)
        return FAIL(MT_NN_EINVAL, "kernel_shape must have %d entries", x->rank - 2);
    int colmajor = (int)nn_attr_i(n, "storage_order", 0) != 0;
    int ceil_mode = (int)nn_attr_i(n, "ceil_mode", 0), incl = (int)nn_attr_i(n, "count_include_pad", 0);
    geo g;
    if ((rc = geometry(m, n, x, ks, 1, ceil_mode, 0, NULL, &g)))
        return rc;
    if (!ismax && (g.d[0] != 1 || g.d[1] != 1 || g.d[2] != 1))
        return FAIL(MT_NN_EUNSUPPORTED, "dilations in AveragePool");
    int64_t N = x->dims[0], C = x->dims[1];
    if (!run) {
        int64_t d[MT_NN_MAX_RANK];
        geo_dims(&g, N, C, d);
        if ((rc = nn_set_out(m, n, 0, x->dtype, x->rank, d)))
            return rc;
        return nn_set_out(m, n, 1, MT_NN_INT64, x->rank, d);
    }
    const float *X = x->data;
    float *Y = OUT(0)->data;
    void *Yg = OUT(0)->data;
    int64_t *I = OUT(1) ? OUT(1)->data : NULL;
#ifdef MT_NN_HAVE_DNNL
    if (g.ns == 2 && !I && !gen && nn_dnnl(m)) {
        mt_nn_pool_desc pd = {ismax, incl, N, C, g.in[1], g.in[2], g.out[1], g.out[2], g.k[1], g.k[2],
                              g.s[1], g.s[2], g.d[1], g.d[2], g.pb[1], g.pb[2], g.pe[1], g.pe[2]};
        char e[256];
        int dr = dnnl_rc(m, n, mt_nn_dnnl_pool(nn_dnnl(m), &pd, X, Y, e, sizeof e), e);
        if (dr <= 0)
            return dr;
    }
#endif
    size_t isz = (size_t)(g.in[0] * g.in[1] * g.in[2]), osz = (size_t)(g.out[0] * g.out[1] * g.out[2]);
    for (int64_t p = 0; p < N * C; p++) {
        const float *xp = gen ? NULL : X + (size_t)p * isz;
        float *yp = gen ? NULL : Y + (size_t)p * osz;
        for (int64_t od = 0; od < g.out[0]; od++)
            for (int64_t oh = 0; oh < g.out[1]; oh++)
                for (int64_t ow = 0; ow < g.out[2]; ow++) {
                    double acc = ismax ? -INFINITY : 0;
                    int64_t cnt = 0, pcnt = 0, best = -1;
                    for (int64_t kd = 0; kd < g.k[0]; kd++) {
                        int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
                        for (int64_t kh = 0; kh < g.k[1]; kh++) {
                            int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
                            for (int64_t kw = 0; kw < g.k[2]; kw++) {
                                int64_t iw = ow * g.s[2] - g.pb[2] + kw * g.d[2];
                                if (id >= -g.pb[0] && id < g.in[0] + g.pe[0] && ih >= -g.pb[1] &&
                                    ih < g.in[1] + g.pe[1] && iw >= -g.pb[2] && iw < g.in[2] + g.pe[2])
                                    pcnt++;
                                if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1] || iw < 0 || iw >= g.in[2])
                                    continue;
                                int64_t off = (id * g.in[1] + ih) * g.in[2] + iw;
                                double v = gen ? nn_ld(x->data, x->dtype, (size_t)p * isz + (size_t)off) : xp[off];
                                if (colmajor)
                                    off = (iw * g.in[1] + ih) * g.in[0] + id;
                                cnt++;
                                if (ismax) {
                                    if (v > acc || best < 0 || v != v) { if (!(acc != acc)) { acc = v; best = off; } }
                                } else {
                                    acc += v;
                                }
                            }
                        }
                    }
                    size_t o = (size_t)((od * g.out[1] + oh) * g.out[2] + ow);
                    if (ismax) {
                        if (gen) nn_st(Yg, x->dtype, (size_t)p * osz + o, acc);
                        else yp[o] = (float)acc;
                        if (I) I[(size_t)p * osz + o] = (int64_t)((size_t)p * isz) + (best < 0 ? 0 : best);
                    } else {
                        int64_t div = incl ? pcnt : cnt;
                        yp[o] = div ? (float)(acc / (double)div) : 0.f;
                    }
                }
    }
    return 0;
}
int nn_op_maxpool(mt_nn_model *m, nn_node *n, int run) { return pool(m, n, run, 1); }
int nn_op_avgpool(mt_nn_model *m, nn_node *n, int run) { return pool(m, n, run, 0); }

static int gpool(mt_nn_model *m, nn_node *n, int run, int ismax)
{
    int rc = nn_need(m, n, 0, 1);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    if (x->rank < 3)
        return FAIL(MT_NN_ESHAPE, "input rank below 3");
    if (!run) {
        int64_t d[MT_NN_MAX_RANK];
        for (int i = 0; i < x->rank; i++) d[i] = i < 2 ? x->dims[i] : 1;
        return nn_set_out(m, n, 0, MT_NN_FLOAT, x->rank, d);
    }
    size_t nc = (size_t)(x->dims[0] * x->dims[1]), s = nc ? x->count / nc : 0;
    const float *X = x->data;
    float *Y = OUT(0)->data;
    for (size_t p = 0; p < nc; p++) {
        double acc = ismax ? -INFINITY : 0;
        for (size_t i = 0; i < s; i++) {
            float v = X[p * s + i];
            if (ismax) acc = (v > acc || v != v) ? v : acc;
            else acc += v;
        }
        Y[p] = (float)(ismax ? acc : s ? acc / (double)s : 0);
    }
    return 0;
}
int nn_op_gavgpool(mt_nn_model *m, nn_node *n, int run) { return gpool(m, n, run, 0); }
int nn_op_gmaxpool(mt_nn_model *m, nn_node *n, int run) { return gpool(m, n, run, 1); }

/* ---- normalisation ---------------------------------------------------------------- */
int nn_op_batchnorm(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    for (int i = 0; i < 5; i++)
        if ((rc = nn_need(m, n, i, 1)))
            return rc;
    nn_t *x = IN(0), *sc = IN(1), *bi = IN(2), *me = IN(3), *va = IN(4);
    if (x->rank < 2)
        return FAIL(MT_NN_ESHAPE, "input rank below 2");
    int64_t N = x->dims[0], C = x->dims[1];
    size_t S = N * C != 0 ? x->count / (size_t)(N * C) : 0;
    if (sc->count != (size_t)C || bi->count != (size_t)C || me->count != (size_t)C || va->count != (size_t)C)
        return FAIL(MT_NN_ESHAPE, "scale, bias, mean and var must have %lld elements", (long long)C);
    int training = (int)nn_attr_i(n, "training_mode", 0) || (m->opset < 14 && OUT(1));
    float eps = nn_attr_f(n, "epsilon", 1e-5f), mom = nn_attr_f(n, "momentum", 0.9f);
    if (!run) {
        if ((rc = nn_set_out(m, n, 0, MT_NN_FLOAT, x->rank, x->dims)))
            return rc;
        if (!training && (OUT(1) || OUT(2) || OUT(3) || OUT(4)))
            return FAIL(MT_NN_EUNSUPPORTED, "training outputs without training_mode");
        for (int i = 1; i < 3; i++)
            if ((rc = nn_set_out(m, n, i, MT_NN_FLOAT, 1, &C)))
                return rc;
        if (OUT(3) || OUT(4))
            return FAIL(MT_NN_EUNSUPPORTED, "saved mean/var outputs not supported");
        return 0;
    }
    const float *X = x->data, *Sc = sc->data, *Bi = bi->data, *Me = me->data, *Va = va->data;
    float *Y = OUT(0)->data;
    if (training) {
        float *rm = OUT(1) ? OUT(1)->data : NULL, *rv = OUT(2) ? OUT(2)->data : NULL;
        for (int64_t c = 0; c < C; c++) {
            double s = 0, ss = 0, cnt = (double)N * (double)S;
            for (int64_t nn = 0; nn < N; nn++)
                for (size_t i = 0; i < S; i++) {
                    double v = X[((size_t)nn * (size_t)C + (size_t)c) * S + i];
                    s += v;
                    ss += v * v;
                }
            double mean = cnt ? s / cnt : 0, var = cnt ? ss / cnt - mean * mean : 0;
            double k = Sc[c] / sqrt(var + eps);
            for (int64_t nn = 0; nn < N; nn++)
                for (size_t i = 0; i < S; i++) {
                    size_t p = ((size_t)nn * (size_t)C + (size_t)c) * S + i;
                    Y[p] = (float)((X[p] - mean) * k + Bi[c]);
                }
            if (rm) rm[c] = (float)(Me[c] * mom + mean * (1 - mom));
            if (rv) rv[c] = (float)(Va[c] * mom + var * (1 - mom));
        }
        return 0;
    }
#ifdef MT_NN_HAVE_DNNL
    if (nn_dnnl(m)) {
        char e[256];
        int dr = dnnl_rc(m, n, mt_nn_dnnl_batchnorm(nn_dnnl(m), N, C, (int64_t)S, eps, Sc, Bi, Me, Va,
                                                    X, Y, e, sizeof e), e);
        if (dr <= 0)
            return dr;
    }
#endif
    for (int64_t c = 0; c < C; c++) {
        float k = Sc[c] / sqrtf(Va[c] + eps), b = Bi[c] - Me[c] * k;
        for (int64_t nn = 0; nn < N; nn++) {
            size_t p = ((size_t)nn * (size_t)C + (size_t)c) * S;
            for (size_t i = 0; i < S; i++) Y[p + i] = X[p + i] * k + b;
        }
    }
    return 0;
}

int nn_op_instnorm(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    for (int i = 0; i < 3; i++)
        if ((rc = nn_need(m, n, i, 1)))
            return rc;
    nn_t *x = IN(0), *sc = IN(1), *bi = IN(2);
    if (x->rank < 3 || sc->count != (size_t)x->dims[1] || bi->count != (size_t)x->dims[1])
        return FAIL(MT_NN_ESHAPE, "input rank below 3 or scale/bias size");
    if (!run)
        return nn_set_out(m, n, 0, MT_NN_FLOAT, x->rank, x->dims);
    float eps = nn_attr_f(n, "epsilon", 1e-5f);
    size_t nc = (size_t)(x->dims[0] * x->dims[1]), S = nc ? x->count / nc : 0;
    const float *X = x->data, *Sc = sc->data, *Bi = bi->data;
    float *Y = OUT(0)->data;
    for (size_t p = 0; p < nc; p++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < S; i++) s += X[p * S + i];
        double mean = S ? s / (double)S : 0;
        for (size_t i = 0; i < S; i++) { double d = X[p * S + i] - mean; ss += d * d; }
        double k = Sc[p % (size_t)x->dims[1]] / sqrt((S ? ss / (double)S : 0) + eps);
        for (size_t i = 0; i < S; i++)
            Y[p * S + i] = (float)((X[p * S + i] - mean) * k + Bi[p % (size_t)x->dims[1]]);
    }
    return 0;
}

int nn_op_layernorm(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    if ((rc = nn_need(m, n, 0, 1)) || (rc = nn_need(m, n, 1, 1)))
        return rc;
    nn_t *x = IN(0), *sc = IN(1), *bi = IN(2);
    int a;
    if ((rc = nn_axis(m, n, nn_attr_i(n, "axis", -1), x->rank, &a)))
        return rc;
    size_t outer = 1, inner = 1;
    for (int i = 0; i < a; i++) outer *= (size_t)x->dims[i];
    for (int i = a; i < x->rank; i++) inner *= (size_t)x->dims[i];
    nn_t *ts[3] = {x, sc, bi};
    if (!run) {
        int64_t od[MT_NN_MAX_RANK];
        int r;
        if ((rc = nn_bcast_shape(m, n, ts, bi ? 3 : 2, od, &r)) )
            return rc;
        if (r != x->rank || (bi && bi->dtype != MT_NN_FLOAT))
            return FAIL(MT_NN_ESHAPE, "scale/bias do not broadcast to the input");
        for (int i = 0; i < r; i++)
            if (od[i] != x->dims[i])
                return FAIL(MT_NN_ESHAPE, "scale/bias do not broadcast to the input");
        if ((rc = nn_set_out(m, n, 0, MT_NN_FLOAT, x->rank, x->dims)))
            return rc;
        int64_t d[MT_NN_MAX_RANK];
        for (int i = 0; i < x->rank; i++) d[i] = i < a ? x->dims[i] : 1;
        if ((rc = nn_set_out(m, n, 1, MT_NN_FLOAT, x->rank, d)))
            return rc;
        return nn_set_out(m, n, 2, MT_NN_FLOAT, x->rank, d);
    }
    float eps = nn_attr_f(n, "epsilon", 1e-5f);
    const float *X = x->data;
    float *Y = OUT(0)->data;
    int64_t ss[MT_NN_MAX_RANK], bs[MT_NN_MAX_RANK];
    nn_bcast_strides(sc, x->rank, x->dims, ss);
    if (bi) nn_bcast_strides(bi, x->rank, x->dims, bs);
    for (size_t u = 0; u < outer; u++) {
        const float *xp = X + u * inner;
        double s = 0, q = 0;
        for (size_t i = 0; i < inner; i++) s += xp[i];
        double mean = inner ? s / (double)inner : 0;
        for (size_t i = 0; i < inner; i++) { double d = xp[i] - mean; q += d * d; }
        double inv = 1.0 / sqrt((inner ? q / (double)inner : 0) + eps);
        for (size_t i = 0; i < inner; i++) {
            /* offsets of scale/bias from the element's full index */
            size_t full = u * inner + i, rem = full;
            int64_t so = 0, bo = 0;
            for (int d = x->rank - 1; d >= 0; d--) {
                int64_t c = (int64_t)(rem % (size_t)x->dims[d]);
                rem /= (size_t)x->dims[d];
                so += c * ss[d];
                if (bi) bo += c * bs[d];
            }
            Y[full] = (float)((xp[i] - mean) * inv * ((const float *)sc->data)[so] +
                              (bi ? ((const float *)bi->data)[bo] : 0));
        }
        if (OUT(1)) ((float *)OUT(1)->data)[u] = (float)mean;
        if (OUT(2)) ((float *)OUT(2)->data)[u] = (float)inv;
    }
    return 0;
}

int nn_op_mvn(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 1);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    const int64_t *av;
    size_t na = nn_attr_ints(n, "axes", &av);
    int red[MT_NN_MAX_RANK] = {0};
    if (!na) {
        if (x->rank != 4) return FAIL(MT_NN_ESHAPE, "default axes need a 4-D input");
        red[0] = red[2] = red[3] = 1;
    }
    for (size_t i = 0; i < na; i++) {
        int a;
        if ((rc = nn_axis(m, n, av[i], x->rank, &a)))
            return rc;
        red[a] = 1;
    }
    if (!run)
        return nn_set_out(m, n, 0, MT_NN_FLOAT, x->rank, x->dims);
    size_t groups = 1;
    for (int i = 0; i < x->rank; i++) if (!red[i]) groups *= (size_t)x->dims[i];
    double *s = calloc(groups * 2 + 2, sizeof(double));
    if (!s)
        return FAIL(MT_NN_ENOMEM, "out of memory");
    size_t per = groups ? x->count / groups : 0;
    const float *X = x->data;
    float *Y = OUT(0)->data;
    for (int pass = 0; pass < 3; pass++)
        for (size_t i = 0; i < x->count; i++) {
            size_t rem = i, gi = 0, mul = 1;
            for (int d = x->rank - 1; d >= 0; d--) {
                size_t c = rem % (size_t)x->dims[d];
                rem /= (size_t)x->dims[d];
                if (!red[d]) { gi += c * mul; mul *= (size_t)x->dims[d]; }
            }
            double mean = s[2 * gi] / (double)(per ? per : 1);
            if (pass == 0) s[2 * gi] += X[i];
            else if (pass == 1) s[2 * gi + 1] += (X[i] - mean) * (X[i] - mean);
            else Y[i] = (float)((X[i] - mean) / (sqrt(s[2 * gi + 1] / (double)(per ? per : 1)) + 1e-9));
        }
    free(s);
    return 0;
}

int nn_op_lrn(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 1);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int64_t size = nn_attr_i(n, "size", 0);
    if (size < 1 || size > 65536 || x->rank < 3)
        return FAIL(MT_NN_EINVAL, "size must be positive and the input at least 3-D");
    if (!run)
        return nn_set_out(m, n, 0, MT_NN_FLOAT, x->rank, x->dims);
    float al = nn_attr_f(n, "alpha", 1e-4f), be = nn_attr_f(n, "beta", 0.75f), bias = nn_attr_f(n, "bias", 1.f);
    int64_t N = x->dims[0], C = x->dims[1];
    size_t S = N * C != 0 ? x->count / (size_t)(N * C) : 0;
    const float *X = x->data;
    float *Y = OUT(0)->data;
#ifdef MT_NN_HAVE_DNNL
    if (x->rank == 4 && nn_dnnl(m)) {
        char e[256];
        int dr = dnnl_rc(m, n, mt_nn_dnnl_lrn(nn_dnnl(m), N, C, x->dims[2], x->dims[3], size, al, be,
                                              bias, X, Y, e, sizeof e), e);
        if (dr <= 0)
            return dr;
    }
#endif
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    for (int64_t nn = 0; nn < N; nn++)
        for (int64_t c = 0; c < C; c++)
            for (size_t i = 0; i < S; i++) {
                double sq = 0;
                for (int64_t k = c - lo; k <= c + hi; k++)
                    if (k >= 0 && k < C) {
                        double v = X[((size_t)nn * (size_t)C + (size_t)k) * S + i];
                        sq += v * v;
                    }
                size_t p = ((size_t)nn * (size_t)C + (size_t)c) * S + i;
                Y[p] = (float)(X[p] / pow(bias + al / (double)size * sq, be));
            }
    return 0;
}

/* ---- Gemm / MatMul ------------------------------------------------------------------ */
static void mm(const float *A, const float *B, float *Y, int64_t M, int64_t K, int64_t N, int64_t lda,
               int64_t ldb, int ta, int tb)
{
    for (int64_t i = 0; i < M; i++) {
        float *y = Y + i * N;
        for (int64_t j = 0; j < N; j++) y[j] = 0;
        for (int64_t k = 0; k < K; k++) {
            float a = ta ? A[k * lda + i] : A[i * lda + k];
            if (a == 0.f && !tb) {
                /* still propagate NaN/Inf from B */
                int special = 0;
                for (int64_t j = 0; j < N && !special; j++) special = !isfinite(B[k * ldb + j]);
                if (!special) continue;
            }
            if (tb)
                for (int64_t j = 0; j < N; j++) y[j] += a * B[j * ldb + k];
            else
                for (int64_t j = 0; j < N; j++) y[j] += a * B[k * ldb + j];
        }
    }
}

int nn_op_gemm(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    if ((rc = nn_need(m, n, 0, 1)) || (rc = nn_need(m, n, 1, 1)))
        return rc;
    nn_t *a = IN(0), *b = IN(1), *c = IN(2);
    int ta = (int)nn_attr_i(n, "transA", 0), tb = (int)nn_attr_i(n, "transB", 0);
    if (a->rank != 2 || b->rank != 2)
        return FAIL(MT_NN_ESHAPE, "A and B must be 2-D");
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t K2 = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != K2)
        return FAIL(MT_NN_ESHAPE, "inner dimensions differ (%lld vs %lld)", (long long)K, (long long)K2);
    int64_t cr = 1, cc = 1;
    if (c) {
        if (c->dtype != MT_NN_FLOAT || c->rank > 2)
            return FAIL(MT_NN_ESHAPE, "C must be float and at most 2-D");
        cc = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        cr = c->rank == 2 ? c->dims[0] : 1;
        if ((cr != 1 && cr != M) || (cc != 1 && cc != N))
            return FAIL(MT_NN_ESHAPE, "C does not broadcast to [%lld, %lld]", (long long)M, (long long)N);
    }
    if (!run) {
        int64_t d[2] = {M, N};
        return nn_set_out(m, n, 0, MT_NN_FLOAT, 2, d);
    }
    float alpha = nn_attr_f(n, "alpha", 1.f), beta = nn_attr_f(n, "beta", 1.f);
    float *Y = OUT(0)->data;
    const float *C = c ? c->data : NULL;
#ifdef MT_NN_HAVE_DNNL
    if (nn_dnnl(m)) {
        mt_nn_gemm_desc gd = {M, K, N, ta, tb, alpha, c ? beta : 0.f, cr, cc, n->post};
        char e[256];
        int dr = dnnl_rc(m, n, mt_nn_dnnl_gemm(nn_dnnl(m), nn_is_const(b) && (!c || nn_is_const(c)) ? (const void *)n : NULL,
                                               &gd, a->data, b->data, C, Y, e, sizeof e), e);
        if (dr <= 0)
            return dr;
    }
#endif
    mm(a->data, b->data, Y, M, K, N, a->dims[1], b->dims[1], ta, tb);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            float v = alpha * Y[i * N + j];
            if (C) v += beta * C[(cr == 1 ? 0 : i) * cc + (cc == 1 ? 0 : j)];
            Y[i * N + j] = post_apply(&n->post, v);
        }
    return 0;
}

typedef struct {
    const float *A, *B;
    float *Y;
    int64_t M, K, N;
    int br;
    int64_t od[MT_NN_MAX_RANK], as[MT_NN_MAX_RANK], bs[MT_NN_MAX_RANK];
} mm_ctx;

/* rows [qb, qe) of the flattened [batch * M, N] output */
static void mm_task(void *vc, size_t qb, size_t qe)
{
    const mm_ctx *cx = vc;
    size_t q = qb;
    while (q < qe) {
        size_t p = q / (size_t)cx->M, r0 = q % (size_t)cx->M;
        size_t rows = (size_t)cx->M - r0;
        if (rows > qe - q)
            rows = qe - q;
        /* batch index p -> offsets of A and B */
        int64_t ao = 0, bo = 0;
        size_t rem = p;
        for (int d = cx->br - 1; d >= 0; d--) {
            int64_t c = (int64_t)(rem % (size_t)cx->od[d]);
            rem /= (size_t)cx->od[d];
            ao += c * cx->as[d];
            bo += c * cx->bs[d];
        }
        mm(cx->A + (size_t)(ao * cx->M * cx->K) + r0 * (size_t)cx->K, cx->B + (size_t)(bo * cx->K * cx->N),
           cx->Y + p * (size_t)(cx->M * cx->N) + r0 * (size_t)cx->N, (int64_t)rows, cx->K, cx->N, cx->K,
           cx->N, 0, 0);
        q += rows;
    }
}

int nn_op_matmul(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    if ((rc = nn_need(m, n, 0, 1)) || (rc = nn_need(m, n, 1, 1)))
        return rc;
    nn_t *a = IN(0), *b = IN(1);
    if (a->rank < 1 || b->rank < 1)
        return FAIL(MT_NN_ESHAPE, "inputs must be at least 1-D");
    /* views: A [.., M, K], B [.., K, N] */
    nn_t av = *a, bv = *b;
    if (a->rank == 1) { av.rank = 2; av.dims[0] = 1; av.dims[1] = a->dims[0]; }
    if (b->rank == 1) { bv.rank = 2; bv.dims[0] = b->dims[0]; bv.dims[1] = 1; }
    int64_t M = av.dims[av.rank - 2], K = av.dims[av.rank - 1], N = bv.dims[bv.rank - 1];
    if (bv.dims[bv.rank - 2] != K)
        return FAIL(MT_NN_ESHAPE, "inner dimensions differ (%lld vs %lld)", (long long)K,
                    (long long)bv.dims[bv.rank - 2]);
    nn_t ab = av, bb = bv;
    ab.rank = av.rank - 2;
    bb.rank = bv.rank - 2;
    nn_t *ts[2] = {&ab, &bb};
    int64_t od[MT_NN_MAX_RANK];
    int br;
    if ((rc = nn_bcast_shape(m, n, ts, 2, od, &br)))
        return rc;
    if (!run) {
        int64_t d[MT_NN_MAX_RANK + 2];
        int r = 0;
        for (int i = 0; i < br; i++) d[r++] = od[i];
        if (a->rank > 1) d[r++] = M;
        if (b->rank > 1) d[r++] = N;
        if (r > MT_NN_MAX_RANK)
            return FAIL(MT_NN_EUNSUPPORTED, "rank above %d", MT_NN_MAX_RANK);
        return nn_set_out(m, n, 0, MT_NN_FLOAT, r, d);
    }
    size_t batch = 1;
    for (int i = 0; i < br; i++) batch *= (size_t)od[i];
    float *Y = OUT(0)->data;
#ifdef MT_NN_HAVE_DNNL
    size_t an = 1, bn = 1;
    for (int i = 0; i < ab.rank; i++) an *= (size_t)ab.dims[i];
    for (int i = 0; i < bb.rank; i++) bn *= (size_t)bb.dims[i];
    if ((an == 1 || an == batch) && (bn == 1 || bn == batch) && nn_dnnl(m)) {
        char e[256];
        int dr = dnnl_rc(m, n, mt_nn_dnnl_matmul(nn_dnnl(m), nn_is_const(b) ? (const void *)n : NULL,
                                                 (int64_t)batch, (int64_t)an, (int64_t)bn, M, K, N,
                                                 a->data, b->data, Y, e, sizeof e), e);
        if (dr <= 0)
            return dr;
    }
#endif
    mm_ctx cx = {a->data, b->data, Y, M, K, N, br, {0}, {0}, {0}};
    memcpy(cx.od, od, sizeof od);
    nn_bcast_strides(&ab, br, od, cx.as);
    nn_bcast_strides(&bb, br, od, cx.bs);
    nn_parallel(m, batch * (size_t)M, mm_task, &cx);
    return 0;
}

/* ---- softmax family -------------------------------------------------------------- */
static int softmax(mt_nn_model *m, nn_node *n, int run, int kind /* 0 soft, 1 log, 2 hard */)
{
    int rc = nn_need(m, n, 0, 1);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int legacy = m->opset < 13, a;
    if ((rc = nn_axis(m, n, nn_attr_i(n, "axis", legacy ? 1 : -1), x->rank, &a)))
        return rc;
    if (!run)
        return nn_set_out(m, n, 0, MT_NN_FLOAT, x->rank, x->dims);
    size_t outer = 1, ax = 1, inner = 1;
    for (int i = 0; i < a; i++) outer *= (size_t)x->dims[i];
    if (legacy)
        for (int i = a; i < x->rank; i++) ax *= (size_t)x->dims[i];
    else {
        ax = (size_t)x->dims[a];
        for (int i = a + 1; i < x->rank; i++) inner *= (size_t)x->dims[i];
    }
    const float *X = x->data;
    float *Y = OUT(0)->data;
#ifdef MT_NN_HAVE_DNNL
    /* a NaN input comes back EUNSUPPORTED (nn_dnnl.h): the reference kernel below
     * propagates it */
    if (kind < 2 && nn_dnnl(m)) {
        char e[256];
        int dr = dnnl_rc(m, n, mt_nn_dnnl_softmax(nn_dnnl(m), kind, (int64_t)outer, (int64_t)ax,
                                                  (int64_t)inner, X, Y, e, sizeof e), e);
        if (dr <= 0)
            return dr;
    }
#endif
    for (size_t u = 0; u < outer; u++)
        for (size_t v = 0; v < inner; v++) {
            const float *xp = X + u * ax * inner + v;
            float *yp = Y + u * ax * inner + v;
            float mx = -INFINITY;
            size_t am = 0;
            for (size_t k = 0; k < ax; k++)
                if (xp[k * inner] > mx || (k == 0)) { if (k == 0 || xp[k * inner] > mx) { mx = xp[k * inner]; am = k; } }
            if (kind == 2) {
                for (size_t k = 0; k < ax; k++) yp[k * inner] = k == am ? 1.f : 0.f;
                continue;
            }
            double s = 0;
            for (size_t k = 0; k < ax; k++) s += exp((double)xp[k * inner] - mx);
            for (size_t k = 0; k < ax; k++)
                yp[k * inner] = kind ? (float)((double)xp[k * inner] - mx - log(s))
                                     : (float)(exp((double)xp[k * inner] - mx) / s);
        }
    return 0;
}
int nn_op_softmax(mt_nn_model *m, nn_node *n, int run) { return softmax(m, n, run, 0); }
int nn_op_logsoftmax(mt_nn_model *m, nn_node *n, int run) { return softmax(m, n, run, 1); }
int nn_op_hardmax(mt_nn_model *m, nn_node *n, int run) { return softmax(m, n, run, 2); }

/* ---- RNN, GRU, LSTM ------------------------------------------------------------------ */
typedef struct { int kind; float a, b; } act;

static int act_parse(const char *s, size_t len, float a, float b, int has_a, int has_b, act *o)
{
    static const char *names[] = {"Sigmoid", "Tanh", "Relu", "Affine", "LeakyRelu", "ThresholdedRelu",
                                  "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus"};
    static const float da[] = {0, 0, 0, 1, 0.01f, 1, 1, 0.2f, 1, 0, 0};
    static const float db[] = {0, 0, 0, 0, 0, 0, 1, 0.5f, 0, 0, 0};
    for (int i = 0; i < 11; i++)
        if (strlen(names[i]) == len && strncmp(names[i], s, len) == 0) {
            o->kind = i;
            o->a = has_a ? a : da[i];
            o->b = has_b ? b : db[i];
            return 0;
        }
    return -1;
}

static inline float act_f(const act *f, float x)
{
    switch (f->kind) {
    case 0: return 1.f / (1.f + expf(-x));
    case 1: return tanhf(x);
    case 2: return x < 0 ? 0 : x;
    case 3: return f->a * x + f->b;
    case 4: return x < 0 ? f->a * x : x;
    case 5: return x > f->a ? x : 0;
    case 6: return f->a * tanhf(f->b * x);
    case 7: { float v = f->a * x + f->b; return v < 0 ? 0 : v > 1 ? 1 : v; }
    case 8: return x < 0 ? f->a * (expf(x) - 1) : x;
    case 9: return x / (1 + fabsf(x));
    default: return logf(1 + expf(x));
    }
}

static int recurrent(mt_nn_model *m, nn_node *n, int run, int kind /* 0 RNN, 1 GRU, 2 LSTM */)
{
    int rc;
    for (int i = 0; i < 3; i++)
        if ((rc = nn_need(m, n, i, 1)))
            return rc;
    nn_t *x = IN(0), *w = IN(1), *r = IN(2), *b = IN(3), *sl = IN(4), *h0 = IN(5);
    nn_t *c0 = kind == 2 ? IN(6) : NULL, *pp = kind == 2 ? IN(7) : NULL;
    int G = kind == 0 ? 1 : kind == 1 ? 3 : 4, nact = kind == 0 ? 1 : kind == 1 ? 2 : 3;
    int layout = (int)nn_attr_i(n, "layout", 0);
    const char *dir = nn_attr_s(n, "direction", "forward");
    int D = strcmp(dir, "bidirectional") == 0 ? 2 : 1, rev = strcmp(dir, "reverse") == 0;
    if (!rev && D == 1 && strcmp(dir, "forward") != 0)
        return FAIL(MT_NN_EINVAL, "direction unknown");
    if (x->rank != 3 || w->rank != 3 || r->rank != 3)
        return FAIL(MT_NN_ESHAPE, "X, W and R must be 3-D");
    int64_t T = layout ? x->dims[1] : x->dims[0], B = layout ? x->dims[0] : x->dims[1], I = x->dims[2];
    int64_t H = nn_attr_i(n, "hidden_size", r->dims[2]);
    if (w->dims[0] != D || w->dims[1] != G * H || w->dims[2] != I || r->dims[0] != D ||
        r->dims[1] != G * H || r->dims[2] != H || H <= 0)
        return FAIL(MT_NN_ESHAPE, "W or R do not match hidden_size, direction or input size");
    if ((b && (b->dtype != MT_NN_FLOAT || b->count != (size_t)(D * 2 * G * H))) ||
        (h0 && (h0->dtype != MT_NN_FLOAT || h0->count != (size_t)(D * B * H))) ||
        (c0 && (c0->dtype != MT_NN_FLOAT || c0->count != (size_t)(D * B * H))) ||
        (pp && (pp->dtype != MT_NN_FLOAT || pp->count != (size_t)(D * 3 * H))) ||
        (sl && (sl->count != (size_t)B || nn_is_float(sl->dtype))))
        return FAIL(MT_NN_ESHAPE, "B, sequence_lens, initial_h, initial_c or P have the wrong size");
    act acts[6];
    const Onnx__AttributeProto *aa = nn_attr(n, "activations");
    const float *al, *be;
    size_t nal = nn_attr_floats(n, "activation_alpha", &al), nbe = nn_attr_floats(n, "activation_beta", &be);
    for (int d = 0; d < D; d++)
        for (int k = 0; k < nact; k++) {
            int i = d * nact + k;
            static const char *def[3][3] = {{"Tanh"}, {"Sigmoid", "Tanh"}, {"Sigmoid", "Tanh", "Tanh"}};
            const char *s = def[kind][k];
            size_t len = strlen(s);
            if (aa && aa->n_strings) {
                if (aa->n_strings != (size_t)(D * nact))
                    return FAIL(MT_NN_EINVAL, "activations must list %d functions", D * nact);
                s = (const char *)aa->strings[i].data;
                len = aa->strings[i].len;
            }
            if (act_parse(s, len, (size_t)i < nal ? al[i] : 0, (size_t)i < nbe ? be[i] : 0,
                          (size_t)i < nal, (size_t)i < nbe, &acts[i]))
                return FAIL(MT_NN_EUNSUPPORTED, "activation %d not supported", i);
        }
    if (!run) {
        int64_t yd[4] = {T, D, B, H}, hd[3] = {D, B, H};
        if (layout) { yd[0] = B; yd[1] = T; yd[2] = D; hd[0] = B; hd[1] = D; }
        if ((rc = nn_set_out(m, n, 0, MT_NN_FLOAT, 4, yd)) || (rc = nn_set_out(m, n, 1, MT_NN_FLOAT, 3, hd)))
            return rc;
        return kind == 2 ? nn_set_out(m, n, 2, MT_NN_FLOAT, 3, hd) : 0;
    }
    float clip = nn_attr_f(n, "clip", 0);
    int lbr = (int)nn_attr_i(n, "linear_before_reset", 0), coupled = (int)nn_attr_i(n, "input_forget", 0);
    size_t need = (size_t)(B * H) * 2 + (size_t)(B * G * H) * 2 + (size_t)H;
    float *buf = malloc(need * sizeof(float));
    if (!buf)
        return FAIL(MT_NN_ENOMEM, "out of memory");
    float *Y = OUT(0) ? OUT(0)->data : NULL, *YH = OUT(1) ? OUT(1)->data : NULL,
          *YC = OUT(2) && kind == 2 ? OUT(2)->data : NULL;
    if (Y) memset(Y, 0, OUT(0)->count * sizeof(float));
    const float *X = x->data;
    for (int d = 0; d < D; d++) {
        float *h = buf, *c = h + B * H, *gx = c + B * H, *gh = gx + B * G * H;
        const float *W = (const float *)w->data + (size_t)d * (size_t)(G * H * I);
        const float *R = (const float *)r->data + (size_t)d * (size_t)(G * H * H);
        const float *Wb = b ? (const float *)b->data + (size_t)d * (size_t)(2 * G * H) : NULL;
        const float *Rb = Wb ? Wb + G * H : NULL;
        const float *P = pp ? (const float *)pp->data + (size_t)d * (size_t)(3 * H) : NULL;
        const act *f = &acts[d * nact];
        int back = rev || d == 1;
        for (int64_t bb = 0; bb < B; bb++)
            for (int64_t j = 0; j < H; j++) {
                size_t hi = (size_t)(layout ? (bb * D + d) * H + j : (d * B + bb) * H + j);
                h[bb * H + j] = h0 ? ((const float *)h0->data)[hi] : 0;
                c[bb * H + j] = c0 ? ((const float *)c0->data)[hi] : 0;
            }
        for (int64_t step = 0; step < T; step++) {
            for (int64_t bb = 0; bb < B; bb++) {
                int64_t len = sl ? nn_ldi(sl->data, sl->dtype, (size_t)bb) : T;
                if (len > T || len < 0) { free(buf); return FAIL(MT_NN_EINVAL, "sequence_lens out of range"); }
                if (step >= len) continue;
                int64_t t = back ? len - 1 - step : step;
                const float *xt = X + (size_t)(layout ? (bb * T + t) * I : (t * B + bb) * I);
                float *hb = h + bb * H, *cb = c + bb * H;
                float *gxb = gx + bb * G * H, *ghb = gh + bb * G * H;
                for (int64_t q = 0; q < G * H; q++) {
                    double sx = Wb ? Wb[q] : 0, shh = Rb ? Rb[q] : 0;
                    for (int64_t i = 0; i < I; i++) sx += W[q * I + i] * xt[i];
                    for (int64_t i = 0; i < H; i++) shh += R[q * H + i] * hb[i];
                    gxb[q] = (float)sx;
                    ghb[q] = (float)shh;
                }
                float *hn = gh + B * G * H; /* H scratch */
                for (int64_t j = 0; j < H; j++) {
                    float nh;
                    if (kind == 0) {
                        float v = gxb[j] + ghb[j];
                        if (clip > 0) v = v < -clip ? -clip : v > clip ? clip : v;
                        nh = act_f(&f[0], v);
                    } else if (kind == 1) {
                        float z = gxb[j] + ghb[j], rr = gxb[H + j] + ghb[H + j];
                        if (clip > 0) { z = z < -clip ? -clip : z > clip ? clip : z; rr = rr < -clip ? -clip : rr > clip ? clip : rr; }
                        z = act_f(&f[0], z);
                        rr = act_f(&f[0], rr);
                        float hh = lbr ? gxb[2 * H + j] + rr * ghb[2 * H + j] : 0;
                        if (clip > 0 && lbr) hh = hh < -clip ? -clip : hh > clip ? clip : hh;
                        gxb[j] = z;
                        gxb[H + j] = rr;
                        if (lbr) gxb[2 * H + j] = act_f(&f[1], hh);
                        continue;
                    } else {
                        float ig = gxb[j] + ghb[j], og = gxb[H + j] + ghb[H + j];
                        float fg = gxb[2 * H + j] + ghb[2 * H + j], cg = gxb[3 * H + j] + ghb[3 * H + j];
                        if (P) { ig += P[j] * cb[j]; fg += P[2 * H + j] * cb[j]; }
                        if (clip > 0) {
                            ig = ig < -clip ? -clip : ig > clip ? clip : ig;
                            fg = fg < -clip ? -clip : fg > clip ? clip : fg;
                            cg = cg < -clip ? -clip : cg > clip ? clip : cg;
                        }
                        ig = act_f(&f[0], ig);
                        fg = coupled ? 1 - ig : act_f(&f[0], fg);
                        cg = act_f(&f[1], cg);
                        float cn = fg * cb[j] + ig * cg;
                        if (P) og += P[H + j] * cn;
                        if (clip > 0) og = og < -clip ? -clip : og > clip ? clip : og;
                        og = act_f(&f[0], og);
                        cb[j] = cn;
                        nh = og * act_f(&f[2], cn);
                    }
                    hn[j] = nh;
                }
                if (kind == 1) {
                    for (int64_t j = 0; j < H; j++) {
                        float hh;
                        if (lbr) hh = gxb[2 * H + j];
                        else {
                            double s = (Rb ? Rb[2 * H + j] : 0) + gxb[2 * H + j];
                            for (int64_t i = 0; i < H; i++) s += R[(2 * H + j) * H + i] * gxb[H + i] * hb[i];
                            float v = (float)s;
                            if (clip > 0) v = v < -clip ? -clip : v > clip ? clip : v;
                            hh = act_f(&f[1], v);
                        }
                        hn[j] = (1 - gxb[j]) * hh + gxb[j] * hb[j];
                    }
                }
                memcpy(hb, hn, (size_t)H * sizeof(float));
                if (Y)
                    memcpy(Y + (size_t)(layout ? ((bb * T + t) * D + d) * H : ((t * D + d) * B + bb) * H), hb,
                           (size_t)H * sizeof(float));
            }
        }
        for (int64_t bb = 0; bb < B; bb++) {
            size_t o = (size_t)(layout ? (bb * D + d) * H : (d * B + bb) * H);
            if (YH) memcpy(YH + o, h + bb * H, (size_t)H * sizeof(float));
            if (YC) memcpy(YC + o, c + bb * H, (size_t)H * sizeof(float));
        }
    }
    free(buf);
    return 0;
}
int nn_op_rnn(mt_nn_model *m, nn_node *n, int run) { return recurrent(m, n, run, 0); }
int nn_op_gru(mt_nn_model *m, nn_node *n, int run) { return recurrent(m, n, run, 1); }
int nn_op_lstm(mt_nn_model *m, nn_node *n, int run) { return recurrent(m, n, run, 2); }

/* ---- losses: NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss --------------------- */
/* x [N, C, d...] log-probabilities (values in xd, type xdt), target [N, d...] */
static int nll(mt_nn_model *m, nn_node *n, int run, nn_t *x, nn_t *tg, nn_t *w, const void *xd,
               int xdt)
{
    const char *red = nn_attr_s(n, "reduction", "mean");
    int r = strcmp(red, "none") == 0 ? 0 : strcmp(red, "sum") == 0 ? 1 : strcmp(red, "mean") == 0 ? 2 : -1;
    if (r < 0)
        return FAIL(MT_NN_EINVAL, "reduction must be none, sum or mean");
    if (x->rank < 2 || tg->rank != x->rank - 1 || nn_is_float(tg->dtype))
        return FAIL(MT_NN_ESHAPE, "input must be [N, C, ...] and target [N, ...] integers");
    for (int i = 0; i < tg->rank; i++)
        if (tg->dims[i] != x->dims[i == 0 ? 0 : i + 1])
            return FAIL(MT_NN_ESHAPE, "target dims do not match the input");
    int64_t C = x->dims[1];
    if (w && (w->count != (size_t)C || w->dtype != x->dtype))
        return FAIL(MT_NN_ESHAPE, "weight must have C elements of the input's type");
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, r ? 0 : tg->rank, tg->dims);
    const Onnx__AttributeProto *ia = nn_attr(n, "ignore_index");
    int has_ign = ia && ia->has_i;
    int64_t ign = has_ign ? ia->i : 0;
    size_t N = (size_t)x->dims[0], S = N ? tg->count / N : 0;
    double sum = 0, wsum = 0;
    nn_t *o = OUT(0);
    for (size_t a = 0; a < N; a++)
        for (size_t s = 0; s < S; s++) {
            int64_t c = nn_ldi(tg->data, tg->dtype, a * S + s);
            double l = 0, wt = 0;
            if (!(has_ign && c == ign)) {
                if (c < 0 || c >= C)
                    return FAIL(MT_NN_EINVAL, "target class out of range");
                wt = w ? nn_ld(w->data, w->dtype, (size_t)c) : 1;
                l = -nn_ld(xd, xdt, (a * (size_t)C + (size_t)c) * S + s) * wt;
            }
            if (r == 0)
                nn_st(o->data, o->dtype, a * S + s, l);
            sum += l;
            wsum += wt;
        }
    if (r == 1)
        nn_st(o->data, o->dtype, 0, sum);
    else if (r == 2)
        nn_st(o->data, o->dtype, 0, wsum != 0 ? sum / wsum : 0);
    return 0;
}

int nn_op_nll(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    if ((rc = nn_need(m, n, 0, 0)) || (rc = nn_need(m, n, 1, 0)))
        return rc;
    nn_t *x = IN(0);
    if (!nn_is_float(x->dtype))
        return FAIL(MT_NN_EUNSUPPORTED, "input must be floating point");
    return nll(m, n, run, x, IN(1), IN(2), x->data, x->dtype);
}

int nn_op_sce(mt_nn_model *m, nn_node *n, int run)
{
    int rc;
    if ((rc = nn_need(m, n, 0, 0)) || (rc = nn_need(m, n, 1, 0)))
        return rc;
    nn_t *x = IN(0);
    if (!nn_is_float(x->dtype))
        return FAIL(MT_NN_EUNSUPPORTED, "scores must be floating point");
    if (!run) {
        if ((rc = nll(m, n, 0, x, IN(1), IN(2), NULL, x->dtype)))
            return rc;
        return nn_set_out(m, n, 1, x->dtype, x->rank, x->dims);
    }
    /* log-softmax over axis 1 into the log_prob output, or a scratch buffer */
    nn_t *lp = OUT(1);
    void *buf = lp ? lp->data : malloc(x->count * mt_nn_dtype_size(x->dtype) + 1);
    if (!buf)
        return FAIL(MT_NN_ENOMEM, "out of memory");
    size_t N = (size_t)x->dims[0], C = (size_t)x->dims[1], S = N * C != 0 ? x->count / (N * C) : 0;
    for (size_t a = 0; a < N; a++)
        for (size_t s = 0; s < S; s++) {
            double mx = -INFINITY, sum = 0;
            for (size_t c = 0; c < C; c++) {
                double v = nn_ld(x->data, x->dtype, (a * C + c) * S + s);
                if (v > mx) mx = v;
            }
            for (size_t c = 0; c < C; c++)
                sum += exp(nn_ld(x->data, x->dtype, (a * C + c) * S + s) - mx);
            for (size_t c = 0; c < C; c++)
                nn_st(buf, x->dtype, (a * C + c) * S + s,
                      nn_ld(x->data, x->dtype, (a * C + c) * S + s) - mx - log(sum));
        }
    rc = nll(m, n, 1, x, IN(1), IN(2), buf, x->dtype);
    if (!lp)
        free(buf);
    return rc;
}

/* ---- Resize (opsets 10-13 forms) and Upsample --------------------------------------- */
typedef struct {
    int64_t idx[4];
    double w[4];
    int k;
    int outside; /* tf_crop_and_resize: extrapolation */
} rs_tap;

static double cubic_w(double A, double t, int i)
{
    switch (i) {
    case 0: { double u = t + 1; return ((A * u - 5 * A) * u + 8 * A) * u - 4 * A; }
    case 1: return ((A + 2) * t - (A + 3)) * t * t + 1;
    case 2: { double u = 1 - t; return ((A + 2) * u - (A + 3)) * u * u + 1; }
    default: { double u = 2 - t; return ((A * u - 5 * A) * u + 8 * A) * u - 4 * A; }
    }
}

int nn_op_resize(mt_nn_model *m, nn_node *n, int run)
{
    int rc = nn_need(m, n, 0, 0);
    if (rc)
        return rc;
    nn_t *x = IN(0);
    int r = x->rank, ups = strcmp(n->op, "Upsample") == 0;
    if (!nn_is_float(x->dtype) && x->dtype != MT_NN_UINT8 && x->dtype != MT_NN_INT8 &&
        x->dtype != MT_NN_INT32 && x->dtype != MT_NN_INT64)
        return FAIL(MT_NN_EUNSUPPORTED, "element type not supported");
    double scale[MT_NN_MAX_RANK], roi[2 * MT_NN_MAX_RANK];
    int64_t od[MT_NN_MAX_RANK];
    for (int i = 0; i < r; i++) { scale[i] = 1; roi[i] = 0; roi[r + i] = 1; }
    nn_t *ts = NULL, *tz = NULL, *troi = NULL;
    if (ups) {
        if (m->opset < 9) {
            const float *f;
            size_t k = nn_attr_floats(n, "scales", &f);
            if ((int)k != r) return FAIL(MT_NN_EINVAL, "scales must have %d entries", r);
            for (int i = 0; i < r; i++) scale[i] = f[i];
        } else {
            ts = IN(1);
        }
    } else if (m->opset < 11) {
        ts = IN(1);
    } else {
        troi = IN(1);
        ts = IN(2);
        tz = IN(3);
    }
    if (ts && ts->count == 0) ts = NULL;
    if (troi && troi->count == 0) troi = NULL;
    if (ts) {
        if (!nn_known(ts) || (int)ts->count != r || !nn_is_float(ts->dtype))
            return FAIL(MT_NN_EUNSUPPORTED, "scales must be a constant of %d floats", r);
        for (int i = 0; i < r; i++) scale[i] = nn_ld(ts->data, ts->dtype, (size_t)i);
    }
    if (tz) {
        if (!nn_known(tz) || (int)tz->count != r)
            return FAIL(MT_NN_EUNSUPPORTED, "sizes must be a constant of %d integers", r);
        if (ts)
            return FAIL(MT_NN_EINVAL, "scales and sizes are both given");
        for (int i = 0; i < r; i++) {
            od[i] = nn_ldi(tz->data, tz->dtype, (size_t)i);
            if (od[i] < 0 || od[i] > NN_MAX_DIM)
                return FAIL(MT_NN_ESHAPE, "invalid sizes");
            scale[i] = x->dims[i] ? (double)od[i] / (double)x->dims[i] : 1;
        }
    } else {
        if (!ts && !ups)
            return FAIL(MT_NN_EINVAL, "scales or sizes must be given");
        for (int i = 0; i < r; i++) {
            if (!(scale[i] > 0) || scale[i] > 1e6)
                return FAIL(MT_NN_EINVAL, "scales must be positive");
            double v = floor((double)x->dims[i] * scale[i]);
            if (v > (double)NN_MAX_DIM)
                return FAIL(MT_NN_ESHAPE, "output too large");
            od[i] = (int64_t)v;
        }
    }
    if (troi) {
        if (!nn_known(troi) || (int)troi->count != 2 * r)
            return FAIL(MT_NN_EUNSUPPORTED, "roi must be a constant of %d values", 2 * r);
        for (int i = 0; i < 2 * r; i++) roi[i] = nn_ld(troi->data, troi->dtype, (size_t)i);
    }
    if (!run)
        return nn_set_out(m, n, 0, x->dtype, r, od);
    const char *mode = nn_attr_s(n, "mode", "nearest");
    int md = strcmp(mode, "nearest") == 0 ? 0 : (strcmp(mode, "linear") == 0 || strcmp(mode, "bilinear") == 0) ? 1
             : strcmp(mode, "cubic") == 0 ? 2 : -1;
    if (md < 0)
        return FAIL(MT_NN_EUNSUPPORTED, "mode not supported");
    char ctm[40], nm[40];
    snprintf(ctm, sizeof ctm, "%s", nn_attr_s(n, "coordinate_transformation_mode", "half_pixel"));
    snprintf(nm, sizeof nm, "%s", nn_attr_s(n, "nearest_mode", "round_prefer_floor"));
    if (ups || m->opset < 11) {
        snprintf(ctm, sizeof ctm, "asymmetric");
        snprintf(nm, sizeof nm, "floor");
    }
    double A = nn_attr_f(n, "cubic_coeff_a", -0.75f), ext = nn_attr_f(n, "extrapolation_value", 0.f);
    int excl = (int)nn_attr_i(n, "exclude_outside", 0);
    size_t ntap = 0;
    for (int i = 0; i < r; i++) ntap += (size_t)od[i];
    rs_tap *taps = calloc(ntap + 1, sizeof *taps);
    if (!taps)
        return FAIL(MT_NN_ENOMEM, "out of memory");
    rs_tap *td[MT_NN_MAX_RANK];
    size_t pos = 0;
    for (int d = 0; d < r; d++) {
        td[d] = taps + pos;
        pos += (size_t)od[d];
        double in = (double)x->dims[d], s = scale[d], out = in * s; /* unfloored, as ONNX */
        for (int64_t i = 0; i < od[d]; i++) {
            rs_tap *t = &td[d][i];
            double xi = (double)i, xo;
            if (strcmp(ctm, "half_pixel") == 0) xo = (xi + 0.5) / s - 0.5;
            else if (strcmp(ctm, "pytorch_half_pixel") == 0) xo = out > 1 ? (xi + 0.5) / s - 0.5 : 0;
            else if (strcmp(ctm, "align_corners") == 0) xo = out == 1 ? 0 : xi * (in - 1) / (out - 1);
            else if (strcmp(ctm, "asymmetric") == 0) xo = xi / s;
            else if (strcmp(ctm, "tf_half_pixel_for_nearest") == 0) xo = (xi + 0.5) / s;
            else if (strcmp(ctm, "tf_crop_and_resize") == 0) {
                double st = roi[d], en = roi[r + d];
                xo = out > 1 ? st * (in - 1) + xi * (en - st) * (in - 1) / (out - 1) : 0.5 * (st + en) * (in - 1);
                if (xo < 0 || xo > in - 1) t->outside = 1;
            } else {
                free(taps);
                return FAIL(MT_NN_EUNSUPPORTED, "coordinate_transformation_mode not supported");
            }
            int64_t hi = x->dims[d] - 1;
            if (md == 0) {
                double f = floor(xo), fr = xo - f, v;
                if (strcmp(nm, "floor") == 0) v = f;
                else if (strcmp(nm, "ceil") == 0) v = ceil(xo);
                else if (strcmp(nm, "round_prefer_ceil") == 0) v = fr >= 0.5 ? f + 1 : f;
                else v = fr > 0.5 ? f + 1 : f;
                int64_t k = (int64_t)v;
                t->idx[0] = k < 0 ? 0 : k > hi ? hi : k;
                t->w[0] = 1;
                t->k = 1;
            } else if (md == 1) {
                double xc = xo;
                if (xc < 0) xc = 0;
                if (xc > (double)hi) xc = (double)hi;
                int64_t k = (int64_t)floor(xc);
                double fr = xc - (double)k;
                t->idx[0] = k;
                t->idx[1] = k + 1 > hi ? hi : k + 1;
                t->w[0] = 1 - fr;
                t->w[1] = fr;
                t->k = 2;
            } else {
                int64_t k = (int64_t)floor(xo);
                double fr = xo - (double)k, sum = 0;
                for (int j = 0; j < 4; j++) {
                    int64_t q = k - 1 + j;
                    double w = cubic_w(A, fr, j);
                    if (excl && (q < 0 || q > hi)) w = 0;
                    t->idx[j] = q < 0 ? 0 : q > hi ? hi : q;
                    t->w[j] = w;
                    sum += w;
                }
                if (excl && sum != 0)
                    for (int j = 0; j < 4; j++) t->w[j] /= sum;
                t->k = 4;
            }
        }
    }
    int64_t xs[MT_NN_MAX_RANK], s = 1, oi[MT_NN_MAX_RANK] = {0};
    for (int i = r - 1; i >= 0; i--) { xs[i] = s; s *= x->dims[i]; }
    nn_t *o = OUT(0);
    for (size_t e = 0; e < o->count; e++) {
        int outside = 0;
        for (int d = 0; d < r; d++) outside |= td[d][oi[d]].outside;
        double acc = 0;
        if (outside) {
            acc = ext;
        } else {
            int c[MT_NN_MAX_RANK] = {0};
            for (;;) {
                double w = 1;
                int64_t off = 0;
                for (int d = 0; d < r; d++) {
                    const rs_tap *t = &td[d][oi[d]];
                    w *= t->w[c[d]];
                    off += t->idx[c[d]] * xs[d];
                }
                if (w != 0)
                    acc += w * nn_ld(x->data, x->dtype, (size_t)off);
                int d = r - 1;
                for (; d >= 0; d--) {
                    if (++c[d] < td[d][oi[d]].k) break;
                    c[d] = 0;
                }
                if (d < 0) break;
            }
        }
        if (nn_is_float(o->dtype)) nn_st(o->data, o->dtype, e, acc);
        else nn_sti(o->data, o->dtype, e, (int64_t)nearbyint(acc));
        for (int d = r - 1; d >= 0; d--) {
            if (++oi[d] < od[d]) break;
            oi[d] = 0;
        }
    }
    free(taps);
    return 0;
}
