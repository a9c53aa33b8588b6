/* Unit and bad-input tests of the ONNX engine (src/nn, docs/nn.md): passes (BatchNorm
 * folding, Conv+Relu fusion, Identity elimination) give the same results as the unfused
 * graph; malformed protobuf, deep nesting, unsupported ops, shape mismatches, huge
 * declared tensors, the memory cap, NaN/Inf inputs, external data, dynamic shapes,
 * cycles and re-preparation all end in a clear error or a correct result, never a crash. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nn.h"
#include "onnx_build.h"
#include "nn_int.h" /* the tensor-name table (test_tensor_names_keyed); oneDNN counters */
#ifdef MT_NN_HAVE_DNNL
#include "nn_dnnl_priv.h"
#endif

static char err[512];

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.f - 1.f;
}

/* X[1,2,5,5] -> Conv(3x3, pad 1, 3 out) -> BatchNormalization -> Relu -> Y */
static void model_conv_bn_relu(pb *out, int64_t batch)
{
    pb g = {0}, nd;
    unsigned s = 7;
    float w[3 * 2 * 9], b[3], sc[3], bi[3], me[3], va[3];
    for (size_t i = 0; i < 54; i++) w[i] = frand(&s);
    for (int i = 0; i < 3; i++) {
        b[i] = frand(&s);
        sc[i] = 1.f + frand(&s) * .5f;
        bi[i] = frand(&s);
        me[i] = frand(&s) * .1f;
        va[i] = 1.f + frand(&s) * .5f;
    }
    int64_t wd[4] = {3, 2, 3, 3}, cd[1] = {3}, xd[4] = {batch, 2, 5, 5}, yd[4] = {batch, 3, 5, 5};
    ob_tensor(&g, 5, "W", MT_NN_FLOAT, 4, wd, w, sizeof w);
    ob_tensor(&g, 5, "B", MT_NN_FLOAT, 1, cd, b, sizeof b);
    ob_tensor(&g, 5, "sc", MT_NN_FLOAT, 1, cd, sc, sizeof sc);
    ob_tensor(&g, 5, "bi", MT_NN_FLOAT, 1, cd, bi, sizeof bi);
    ob_tensor(&g, 5, "me", MT_NN_FLOAT, 1, cd, me, sizeof me);
    ob_tensor(&g, 5, "va", MT_NN_FLOAT, 1, cd, va, sizeof va);
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 4, xd);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 4, yd);
    const char *ci[] = {"X", "W", "B"}, *co[] = {"c"};
    ob_node_begin(&nd, "conv1", "Conv", ci, 3, co, 1);
    int64_t pads[4] = {1, 1, 1, 1};
    ob_attr_ints(&nd, "pads", pads, 4);
    ob_node_end(&g, &nd);
    const char *bni[] = {"c", "sc", "bi", "me", "va"}, *bno[] = {"bn"};
    ob_node_begin(&nd, "bn1", "BatchNormalization", bni, 5, bno, 1);
    ob_node_end(&g, &nd);
    const char *ri[] = {"bn"}, *ro[] = {"Y"};
    ob_node_begin(&nd, "relu1", "Relu", ri, 1, ro, 1);
    ob_node_end(&g, &nd);
    ob_model(out, &g, 13);
}

static mt_nn_model *load(const pb *b, size_t cap, int no_passes, int expect)
{
    mt_nn_limits lim = {cap, 1, no_passes};
    mt_nn_model *m = NULL;
    int rc = mt_nn_load(b->p, b->n, &lim, &m, err, sizeof err);
    if (rc != expect)
        fail_msg("load: rc %d, expected %d: %s", rc, expect, err);
    return m;
}

static void run1(mt_nn_model *m, const mt_nn_tensor *in, mt_nn_tensor *out)
{
    int rc = mt_nn_prepare(m, in, 1, err, sizeof err);
    if (rc)
        fail_msg("prepare: %s", err);
    rc = mt_nn_run(m, in, 1, out, 1, err, sizeof err);
    if (rc)
        fail_msg("run: %s", err);
}

static void test_fusion_matches_unfused(void **state)
{
    (void)state;
    pb b = {0};
    model_conv_bn_relu(&b, 1);
    mt_nn_model *f = load(&b, 0, 0, 0), *u = load(&b, 0, 1, 0);
    float x[50];
    unsigned s = 3;
    for (int i = 0; i < 50; i++) x[i] = frand(&s) * 2;
    mt_nn_tensor in = {MT_NN_FLOAT, 4, {1, 2, 5, 5}, x}, yf, yu;
    run1(f, &in, &yf);
    run1(u, &in, &yu);
    assert_int_equal(mt_nn_num_nodes(f), 1); /* BN folded, Relu fused */
    assert_int_equal(mt_nn_num_nodes(u), 3);
    assert_int_equal(yf.rank, 4);
    assert_int_equal(yf.dims[1], 3);
    int pos = 0, zero = 0;
    for (int i = 0; i < 75; i++) {
        float a = ((float *)yf.data)[i], e = ((float *)yu.data)[i];
        assert_true(fabsf(a - e) <= 1e-5f + 1e-4f * fabsf(e));
        pos += e > 0;
        zero += e == 0;
    }
    assert_true(pos > 0 && zero > 0); /* the Relu did something */
    /* prepare again for batch 2: same per-image results */
    float x2[100];
    memcpy(x2, x, sizeof x);
    memcpy(x2 + 50, x, sizeof x);
    mt_nn_tensor in2 = {MT_NN_FLOAT, 4, {2, 2, 5, 5}, x2}, y2;
    run1(f, &in2, &y2);
    assert_int_equal(y2.dims[0], 2);
    for (int i = 0; i < 75; i++)
        assert_true(fabsf(((float *)y2.data)[75 + i] - ((float *)yu.data)[i]) <= 1e-4f);
    /* run with a shape other than the prepared one */
    assert_int_equal(mt_nn_run(f, &in, 1, &y2, 1, err, sizeof err), MT_NN_ESHAPE);
    assert_non_null(strstr(err, "'X'"));
    mt_nn_free(f);
    mt_nn_free(u);
    pb_free(&b);
}

#ifdef MT_NN_HAVE_DNNL
/* X[2,16,6,6] -> Conv a (3x3, 24) -> Conv b (1x1, 24) -> Conv c (1x1, 8) -> Y; with
 * outs_ab, a and b are graph outputs too (so they stay NCHW) */
static void model_conv_chain(pb *out, int outs_ab)
{
    pb g = {0}, nd;
    unsigned s = 11;
    static float wa[24 * 16 * 9], wb[24 * 24], wc[8 * 24];
    for (size_t i = 0; i < sizeof wa / 4; i++) wa[i] = frand(&s) * .3f;
    for (size_t i = 0; i < sizeof wb / 4; i++) wb[i] = frand(&s) * .3f;
    for (size_t i = 0; i < sizeof wc / 4; i++) wc[i] = frand(&s) * .3f;
    int64_t da[4] = {24, 16, 3, 3}, db[4] = {24, 24, 1, 1}, dc[4] = {8, 24, 1, 1};
    int64_t xd[4] = {2, 16, 6, 6}, yd[4] = {2, 8, 6, 6}, ad[4] = {2, 24, 6, 6};
    ob_tensor(&g, 5, "Wa", MT_NN_FLOAT, 4, da, wa, sizeof wa);
    ob_tensor(&g, 5, "Wb", MT_NN_FLOAT, 4, db, wb, sizeof wb);
    ob_tensor(&g, 5, "Wc", MT_NN_FLOAT, 4, dc, wc, sizeof wc);
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 4, xd);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 4, yd);
    if (outs_ab) {
        ob_vinfo(&g, 12, "a", MT_NN_FLOAT, 4, ad);
        ob_vinfo(&g, 12, "b", MT_NN_FLOAT, 4, ad);
    }
    const char *ai[] = {"X", "Wa"}, *ao[] = {"a"}, *bi[] = {"a", "Wb"}, *bo[] = {"b"},
               *ci[] = {"b", "Wc"}, *co[] = {"Y"};
    int64_t pads[4] = {1, 1, 1, 1};
    ob_node_begin(&nd, "conv_a", "Conv", ai, 2, ao, 1);
    ob_attr_ints(&nd, "pads", pads, 4);
    ob_node_end(&g, &nd);
    ob_node_begin(&nd, "conv_b", "Conv", bi, 2, bo, 1);
    ob_node_end(&g, &nd);
    ob_node_begin(&nd, "conv_c", "Conv", ci, 2, co, 1);
    ob_node_end(&g, &nd);
    ob_model(out, &g, 13);
}

/* Conv outputs read only by the next Conv stay in oneDNN's blocked layout (docs/nn.md
 * "Layouts"): the result equals the same graph whose intermediates are graph outputs
 * (kept NCHW), and the backend counted blocked outputs only in the first. */
static void test_conv_chain_layouts(void **state)
{
    (void)state;
    pb b1 = {0}, b2 = {0};
    model_conv_chain(&b1, 0);
    model_conv_chain(&b2, 1);
    mt_nn_model *k = load(&b1, 0, 0, 0), *p = load(&b2, 0, 0, 0);
    static float x[2 * 16 * 36];
    unsigned s = 5;
    for (size_t i = 0; i < sizeof x / 4; i++) x[i] = frand(&s);
    mt_nn_tensor in = {MT_NN_FLOAT, 4, {2, 16, 6, 6}, x}, yk, yp[3];
    assert_int_equal(mt_nn_prepare(p, &in, 1, err, sizeof err), 0);
    for (int round = 0; round < 2; round++) {
        run1(k, &in, &yk);
        assert_int_equal(mt_nn_run(p, &in, 1, yp, 3, err, sizeof err), 0);
        for (int i = 0; i < 2 * 8 * 36; i++) {
            float a = ((float *)yk.data)[i], e = ((float *)yp[0].data)[i];
            if (!(fabsf(a - e) <= 1e-5f + 1e-5f * fabsf(e)))
                fail_msg("element %d: %g (kept layouts) vs %g (NCHW)", i, (double)a, (double)e);
        }
    }
    mt_nn_dnnl_stats sk, sp;
    mt_nn_dnnl_stats_get(k->dnnl, &sk);
    mt_nn_dnnl_stats_get(p->dnnl, &sp);
    /* a (and b, where oneDNN prefers a blocked output for it too) in both runs */
    assert_true(sk.blocked_outputs >= 2 && sk.blocked_outputs % 2 == 0);
    assert_int_equal(sp.blocked_outputs, 0);
    assert_int_equal(sk.to_plain, 0);        /* nothing needed NCHW in between */
    mt_nn_free(k);
    mt_nn_free(p);
    pb_free(&b1);
    pb_free(&b2);
}
#endif

/* X[2,3] -> Gemm(W[4,3]^T, C[4]) -> act -> Y; act: LeakyRelu or Clip(-0.2, 0.3) */
static void model_gemm_act(pb *out, int clip)
{
    pb g = {0}, nd;
    unsigned s = 5;
    float w[12], c[4], lo = -0.2f, hi = 0.3f;
    for (int i = 0; i < 12; i++) w[i] = frand(&s);
    for (int i = 0; i < 4; i++) c[i] = frand(&s);
    int64_t wd[2] = {4, 3}, cd[1] = {4}, xd[2] = {2, 3}, yd[2] = {2, 4};
    ob_tensor(&g, 5, "W", MT_NN_FLOAT, 2, wd, w, sizeof w);
    ob_tensor(&g, 5, "C", MT_NN_FLOAT, 1, cd, c, sizeof c);
    ob_tensor(&g, 5, "lo", MT_NN_FLOAT, 0, NULL, &lo, 4);
    ob_tensor(&g, 5, "hi", MT_NN_FLOAT, 0, NULL, &hi, 4);
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 2, xd);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 2, yd);
    const char *gi[] = {"X", "W", "C"}, *go[] = {"h"}, *ai[] = {"h", "lo", "hi"}, *ao[] = {"Y"};
    ob_node_begin(&nd, "fc", "Gemm", gi, 3, go, 1);
    ob_attr_i(&nd, "transB", 1);
    ob_node_end(&g, &nd);
    ob_node_begin(&nd, "act", clip ? "Clip" : "LeakyRelu", ai, clip ? 3 : 1, ao, 1);
    if (!clip)
        ob_attr_f(&nd, "alpha", 0.1f);
    ob_node_end(&g, &nd);
    ob_model(out, &g, 13);
}

static void test_gemm_activation_fusion(void **state)
{
    (void)state;
    for (int clip = 0; clip < 2; clip++) {
        pb b = {0};
        model_gemm_act(&b, clip);
        mt_nn_model *f = load(&b, 0, 0, 0), *u = load(&b, 0, 1, 0);
        float x[6] = {1, -2, 0.5f, -1, 3, 0.25f};
        mt_nn_tensor in = {MT_NN_FLOAT, 2, {2, 3}, x}, yf, yu;
        run1(f, &in, &yf);
        run1(u, &in, &yu);
        assert_int_equal(mt_nn_num_nodes(f), 1);
        assert_int_equal(mt_nn_num_nodes(u), 2);
        int clipped = 0;
        for (int i = 0; i < 8; i++) {
            float a = ((float *)yf.data)[i], e = ((float *)yu.data)[i];
            assert_true(fabsf(a - e) <= 1e-6f);
            clipped += clip && (e == -0.2f || e == 0.3f);
        }
        assert_true(!clip || clipped > 0);
        mt_nn_free(f);
        mt_nn_free(u);
        pb_free(&b);
    }
}

static void test_identity_elimination(void **state)
{
    (void)state;
    pb g = {0}, nd, b = {0};
    int64_t d[2] = {2, 2};
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 2, d);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 2, d);
    const char *a[] = {"X"}, *a1[] = {"i1"}, *a2[] = {"r"}, *a3[] = {"Y"};
    ob_node_begin(&nd, "id1", "Identity", a, 1, a1, 1);
    ob_node_end(&g, &nd);
    ob_node_begin(&nd, "relu", "Relu", a1, 1, a2, 1);
    ob_node_end(&g, &nd);
    ob_node_begin(&nd, "id2", "Identity", a2, 1, a3, 1);
    ob_node_end(&g, &nd);
    ob_model(&b, &g, 13);
    mt_nn_model *m = load(&b, 0, 0, 0);
    float x[4] = {-1, 2, NAN, -INFINITY};
    mt_nn_tensor in = {MT_NN_FLOAT, 2, {2, 2}, x}, y;
    run1(m, &in, &y);
    assert_int_equal(mt_nn_num_nodes(m), 2); /* id1 gone; id2 makes the graph output */
    float *o = y.data;
    assert_true(o[0] == 0 && o[1] == 2 && isnan(o[2]) && o[3] == 0);
    mt_nn_free(m);
    pb_free(&b);
}

static void test_malformed_protobuf(void **state)
{
    (void)state;
    pb b = {0};
    model_conv_bn_relu(&b, 1);
    mt_nn_model *m;
    for (size_t cut = 1; cut < b.n; cut += 7) {
        int rc = mt_nn_load(b.p, cut, NULL, &m, err, sizeof err);
        assert_int_not_equal(rc, 0);
        assert_null(m);
    }
    uint8_t junk[64];
    unsigned s = 1;
    for (int k = 0; k < 50; k++) {
        for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(frand(&s) * 128);
        assert_int_not_equal(mt_nn_load(junk, sizeof junk, NULL, &m, err, sizeof err), 0);
    }
    assert_int_equal(mt_nn_load((const uint8_t *)"\x0a\xff", 2, NULL, &m, err, sizeof err), MT_NN_EINVAL);
    assert_non_null(strstr(err, "malformed"));
    assert_int_equal(mt_nn_load((const uint8_t *)"", 0, NULL, &m, err, sizeof err), MT_NN_EINVAL);
    assert_non_null(strstr(err, "no graph"));
    pb_free(&b);
}

static void test_deep_nesting(void **state)
{
    (void)state;
    /* graph -> node -> attribute g -> graph -> ... 400 levels */
    pb g = {0};
    for (int i = 0; i < 400; i++) {
        pb node = {0}, attr = {0};
        pb_str(&attr, 1, "body");
        pb_msg(&attr, 6, &g);
        pb_str(&node, 4, "If");
        pb_msg(&node, 5, &attr);
        pb_msg(&g, 1, &node);
    }
    pb b = {0};
    ob_model(&b, &g, 13);
    mt_nn_model *m;
    assert_int_equal(mt_nn_load(b.p, b.n, NULL, &m, err, sizeof err), MT_NN_EINVAL);
    assert_non_null(strstr(err, "nested too deeply"));
    pb_free(&b);
}

static void test_unsupported_op_named(void **state)
{
    (void)state;
    pb g = {0}, nd, b = {0};
    int64_t d[1] = {3};
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 1, d);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 1, d);
    const char *a[] = {"X"}, *o[] = {"Y"};
    ob_node_begin(&nd, "my_node_7", "FooBar", a, 1, o, 1);
    ob_node_end(&g, &nd);
    ob_model(&b, &g, 13);
    load(&b, 0, 0, MT_NN_EUNSUPPORTED);
    assert_non_null(strstr(err, "my_node_7"));
    assert_non_null(strstr(err, "FooBar"));
    pb_free(&b);
    /* an opset out of range */
    pb g2 = {0}, b2 = {0};
    ob_vinfo(&g2, 11, "X", MT_NN_FLOAT, 1, d);
    ob_model(&b2, &g2, 99);
    load(&b2, 0, 0, MT_NN_EUNSUPPORTED);
    assert_non_null(strstr(err, "opset 99"));
    pb_free(&b2);
}

static pb model_binary(const char *op, int rank1, const int64_t *d1, int rank2, const int64_t *d2)
{
    pb g = {0}, nd, b = {0};
    ob_vinfo(&g, 11, "A", MT_NN_FLOAT, rank1, d1);
    ob_vinfo(&g, 11, "B", MT_NN_FLOAT, rank2, d2);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 0, NULL);
    const char *a[] = {"A", "B"}, *o[] = {"Y"};
    ob_node_begin(&nd, "the_node", op, a, 2, o, 1);
    ob_node_end(&g, &nd);
    ob_model(&b, &g, 13);
    return b;
}

static void test_shape_mismatch(void **state)
{
    (void)state;
    int64_t d1[2] = {2, 3}, d2[1] = {4};
    pb b = model_binary("Add", 2, d1, 1, d2);
    mt_nn_model *m = load(&b, 0, 0, 0);
    assert_int_equal(mt_nn_prepare(m, NULL, 0, err, sizeof err), MT_NN_ESHAPE);
    assert_non_null(strstr(err, "the_node"));
    assert_non_null(strstr(err, "(Add)"));
    assert_int_equal(mt_nn_run(m, NULL, 0, NULL, 0, err, sizeof err), MT_NN_EINVAL); /* not prepared */
    mt_nn_free(m);
    pb_free(&b);
    int64_t k1[2] = {2, 3}, k2[2] = {4, 5};
    b = model_binary("MatMul", 2, k1, 2, k2);
    m = load(&b, 0, 0, 0);
    assert_int_equal(mt_nn_prepare(m, NULL, 0, err, sizeof err), MT_NN_ESHAPE);
    assert_non_null(strstr(err, "inner dimensions"));
    mt_nn_free(m);
    pb_free(&b);
}

static void test_huge_declared_tensors(void **state)
{
    (void)state;
    /* an initializer declaring 2^40 x 2^40 elements (no data) */
    pb g = {0}, b = {0};
    int64_t huge[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    ob_tensor(&g, 5, "W", MT_NN_FLOAT, 2, huge, NULL, 0);
    ob_model(&b, &g, 13);
    load(&b, 0, 0, MT_NN_EINVAL);
    assert_non_null(strstr(err, "too large"));
    pb_free(&b);
    /* declared dims that do not match the data */
    pb g1 = {0}, b1 = {0};
    int64_t small[1] = {1000};
    float one = 1;
    ob_tensor(&g1, 5, "W", MT_NN_FLOAT, 1, small, &one, 4);
    ob_model(&b1, &g1, 13);
    load(&b1, 0, 0, MT_NN_EINVAL);
    assert_non_null(strstr(err, "does not match"));
    pb_free(&b1);
    /* a declared input of 2^39 x 2^39 elements */
    int64_t big[2] = {(int64_t)1 << 39, (int64_t)1 << 39};
    pb b2 = model_binary("Add", 2, big, 2, big);
    mt_nn_model *m = load(&b2, 0, 0, 0);
    assert_int_equal(mt_nn_prepare(m, NULL, 0, err, sizeof err), MT_NN_ESHAPE);
    assert_non_null(strstr(err, "'A'"));
    mt_nn_free(m);
    pb_free(&b2);
    /* negative dims */
    pb g3 = {0}, b3 = {0};
    int64_t neg[2] = {-4, 2};
    ob_tensor(&g3, 5, "W", MT_NN_FLOAT, 2, neg, NULL, 0);
    ob_model(&b3, &g3, 13);
    load(&b3, 0, 0, MT_NN_EINVAL);
    pb_free(&b3);
}

static void test_memory_cap(void **state)
{
    (void)state;
    /* constants above the cap: refused at load */
    pb g = {0}, b = {0};
    static float w[65536];
    int64_t d[1] = {65536};
    ob_tensor(&g, 5, "W", MT_NN_FLOAT, 1, d, w, sizeof w);
    ob_model(&b, &g, 13);
    load(&b, 64 * 1024, 0, MT_NN_ENOMEM);
    assert_non_null(strstr(err, "memory cap"));
    pb_free(&b);
    /* small weights, an activation arena above the cap: refused at prepare */
    pb b2 = {0};
    model_conv_bn_relu(&b2, 1);
    mt_nn_model *m = load(&b2, 1 << 20, 0, 0);
    mt_nn_tensor in = {MT_NN_FLOAT, 4, {4, 2, 512, 512}, NULL};
    assert_int_equal(mt_nn_prepare(m, &in, 1, err, sizeof err), MT_NN_ENOMEM);
    assert_non_null(strstr(err, "arena"));
    /* still usable at a size that fits */
    mt_nn_tensor in2 = {MT_NN_FLOAT, 4, {1, 2, 5, 5}, NULL};
    assert_int_equal(mt_nn_prepare(m, &in2, 1, err, sizeof err), 0);
    assert_true(mt_nn_mem_used(m) <= (1 << 20));
    mt_nn_free(m);
    pb_free(&b2);
}

static void test_nan_inf_propagate(void **state)
{
    (void)state;
    pb b = {0};
    model_conv_bn_relu(&b, 1);
    mt_nn_model *m = load(&b, 0, 0, 0);
    float x[50] = {0};
    x[12] = NAN;
    x[37] = INFINITY;
    mt_nn_tensor in = {MT_NN_FLOAT, 4, {1, 2, 5, 5}, x}, y;
    run1(m, &in, &y);
    int nans = 0;
    for (int i = 0; i < 75; i++) nans += isnan(((float *)y.data)[i]);
#ifdef MT_NN_HAVE_DNNL
    /* Relu fused into oneDNN's Conv is its JIT max(x, 0): NaN becomes 0 there
     * (docs/nn.md "Numerics"); every output is still NaN or >= 0 */
    for (int i = 0; i < 75; i++) {
        float v = ((float *)y.data)[i];
        assert_true(isnan(v) || v >= 0.f);
    }
    mt_nn_free(m);
    /* unfused, the reference Relu propagates the NaN that oneDNN's Conv produced */
    m = load(&b, 0, 1, 0);
    run1(m, &in, &y);
    nans = 0;
    for (int i = 0; i < 75; i++) nans += isnan(((float *)y.data)[i]);
#endif
    assert_true(nans > 0);
    mt_nn_free(m);
    pb_free(&b);
    /* Softmax over a row with NaN and one with +Inf */
    pb g = {0}, nd, b2 = {0};
    int64_t d[2] = {2, 3};
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 2, d);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 2, d);
    const char *a[] = {"X"}, *o[] = {"Y"};
    ob_node_begin(&nd, "sm", "Softmax", a, 1, o, 1);
    ob_node_end(&g, &nd);
    ob_model(&b2, &g, 13);
    m = load(&b2, 0, 0, 0);
    float xs[6] = {1, NAN, 2, 1, INFINITY, 2};
    mt_nn_tensor in2 = {MT_NN_FLOAT, 2, {2, 3}, xs};
    run1(m, &in2, &y);
    assert_true(isnan(((float *)y.data)[0]));
    mt_nn_free(m);
    pb_free(&b2);
}

static void test_external_data(void **state)
{
    (void)state;
    float blob[8] = {9, 9, 1, 2, 3, 4, 9, 9};
    pb g = {0}, nd, b = {0}, t = {0};
    int64_t d[1] = {4};
    pb_int(&t, 1, 4);
    pb_int(&t, 2, MT_NN_FLOAT);
    pb_str(&t, 8, "W");
    const char *kv[3][2] = {{"location", "model.onnx.data"}, {"offset", "8"}, {"length", "16"}};
    for (int i = 0; i < 3; i++) {
        pb e = {0};
        pb_str(&e, 1, kv[i][0]);
        pb_str(&e, 2, kv[i][1]);
        pb_msg(&t, 13, &e);
    }
    pb_int(&t, 14, 1); /* EXTERNAL */
    pb_msg(&g, 5, &t);
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 1, d);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 1, d);
    const char *a[] = {"X", "W"}, *o[] = {"Y"};
    ob_node_begin(&nd, "add", "Add", a, 2, o, 1);
    ob_node_end(&g, &nd);
    ob_model(&b, &g, 13);
    mt_nn_model *m;
    assert_int_equal(mt_nn_load_ext(b.p, b.n, (const uint8_t *)blob, sizeof blob, NULL, &m, err,
                                    sizeof err), 0);
    float x[4] = {10, 20, 30, 40};
    mt_nn_tensor in = {MT_NN_FLOAT, 1, {4}, x}, y;
    run1(m, &in, &y);
    float *o2 = y.data;
    assert_true(o2[0] == 11 && o2[1] == 22 && o2[2] == 33 && o2[3] == 44);
    mt_nn_free(m);
    /* no blob: refused; a blob too short: refused */
    assert_int_equal(mt_nn_load(b.p, b.n, NULL, &m, err, sizeof err), MT_NN_EUNSUPPORTED);
    assert_non_null(strstr(err, "files are not read"));
    assert_int_equal(mt_nn_load_ext(b.p, b.n, (const uint8_t *)blob, 20, NULL, &m, err, sizeof err),
                     MT_NN_EINVAL);
    assert_non_null(strstr(err, "outside"));
    pb_free(&b);
}

static void test_dynamic_shape(void **state)
{
    (void)state;
    pb g = {0}, nd, b = {0};
    int64_t d[1] = {6}, sd[1] = {2};
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 1, d);
    ob_vinfo(&g, 11, "S", MT_NN_INT64, 1, sd);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 0, NULL);
    const char *a[] = {"X", "S"}, *o[] = {"Y"};
    ob_node_begin(&nd, "rs", "Reshape", a, 2, o, 1);
    ob_node_end(&g, &nd);
    ob_model(&b, &g, 13);
    mt_nn_model *m = load(&b, 0, 0, 0);
    assert_int_equal(mt_nn_prepare(m, NULL, 0, err, sizeof err), MT_NN_EUNSUPPORTED);
    assert_non_null(strstr(err, "dynamic shapes"));
    assert_non_null(strstr(err, "'rs' (Reshape)"));
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t s[2] = {3, -1}, s2[2] = {2, 3};
    mt_nn_tensor in[2] = {{MT_NN_FLOAT, 1, {6}, x}, {MT_NN_INT64, 1, {2}, s}}, y;
    assert_int_equal(mt_nn_prepare(m, in, 2, err, sizeof err), 0); /* S pinned */
    assert_int_equal(mt_nn_run(m, in, 2, &y, 1, err, sizeof err), 0);
    assert_int_equal(y.rank, 2);
    assert_int_equal(y.dims[0], 3);
    assert_int_equal(y.dims[1], 2);
    in[1].data = s2;
    assert_int_equal(mt_nn_run(m, in, 2, &y, 1, err, sizeof err), MT_NN_EINVAL);
    assert_non_null(strstr(err, "prepare again"));
    /* a shape that does not fit */
    int64_t bad[2] = {4, 2};
    in[1].data = bad;
    assert_int_equal(mt_nn_prepare(m, in, 2, err, sizeof err), MT_NN_ESHAPE);
    mt_nn_free(m);
    pb_free(&b);
}

static void test_cycle_and_symbolic(void **state)
{
    (void)state;
    pb g = {0}, nd, b = {0};
    int64_t d[2] = {-1, 3};
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 2, d);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 2, d);
    const char *a1[] = {"X", "q"}, *o1[] = {"p"}, *a2[] = {"p"}, *o2[] = {"q"}, *a3[] = {"X"}, *o3[] = {"Y"};
    ob_node_begin(&nd, "n1", "Add", a1, 2, o1, 1);
    ob_node_end(&g, &nd);
    ob_node_begin(&nd, "n2", "Relu", a2, 1, o2, 1);
    ob_node_end(&g, &nd);
    ob_node_begin(&nd, "n3", "Relu", a3, 1, o3, 1);
    ob_node_end(&g, &nd);
    ob_model(&b, &g, 13);
    mt_nn_model *m = load(&b, 0, 0, 0);
    assert_int_equal(mt_nn_prepare(m, NULL, 0, err, sizeof err), MT_NN_EUNSUPPORTED);
    assert_non_null(strstr(err, "symbolic"));
    assert_non_null(strstr(err, "'X'"));
    mt_nn_tensor in = {MT_NN_FLOAT, 2, {2, 3}, NULL};
    assert_int_equal(mt_nn_prepare(m, &in, 1, err, sizeof err), MT_NN_EINVAL);
    assert_non_null(strstr(err, "cycle"));
    assert_int_equal(mt_nn_input_decl(m, 0, &in), 0);
    assert_int_equal(in.dims[0], -1);
    mt_nn_free(m);
    pb_free(&b);
    /* an input nobody produces */
    pb g2 = {0}, b2 = {0};
    const char *ai[] = {"nowhere"}, *ao[] = {"Y"};
    ob_node_begin(&nd, "lost", "Relu", ai, 1, ao, 1);
    ob_node_end(&g2, &nd);
    ob_vinfo(&g2, 12, "Y", MT_NN_FLOAT, 0, NULL);
    ob_model(&b2, &g2, 13);
    load(&b2, 0, 0, MT_NN_EINVAL);
    assert_non_null(strstr(err, "'lost'"));
    pb_free(&b2);
}

static void test_threads_same_results(void **state)
{
    (void)state;
    pb b = {0};
    model_conv_bn_relu(&b, 3);
    float x[150];
    unsigned s = 11;
    for (int i = 0; i < 150; i++) x[i] = frand(&s);
    mt_nn_tensor in = {MT_NN_FLOAT, 4, {3, 2, 5, 5}, x}, y1, y3;
    mt_nn_limits l1 = {0, 1, 0}, l3 = {0, 3, 0};
    mt_nn_model *m1, *m3;
    assert_int_equal(mt_nn_load(b.p, b.n, &l1, &m1, err, sizeof err), 0);
    assert_int_equal(mt_nn_load(b.p, b.n, &l3, &m3, err, sizeof err), 0);
    run1(m1, &in, &y1);
    run1(m3, &in, &y3);
    assert_memory_equal(y1.data, y3.data, 225 * sizeof(float));
    for (int k = 0; k < 3; k++) { /* repeated runs reuse the pool and the arena */
        assert_int_equal(mt_nn_run(m3, &in, 1, &y3, 1, err, sizeof err), 0);
        assert_memory_equal(y1.data, y3.data, 225 * sizeof(float));
    }
    mt_nn_free(m1);
    mt_nn_free(m3);
    pb_free(&b);
    /* batched MatMul with a broadcast B: [2,3,4] x [4,5] */
    int64_t da[3] = {2, 3, 4}, db[2] = {4, 5};
    pb mb = model_binary("MatMul", 3, da, 2, db);
    assert_int_equal(mt_nn_load(mb.p, mb.n, &l1, &m1, err, sizeof err), 0);
    assert_int_equal(mt_nn_load(mb.p, mb.n, &l3, &m3, err, sizeof err), 0);
    float A[24], B[20];
    for (int i = 0; i < 24; i++) A[i] = frand(&s);
    for (int i = 0; i < 20; i++) B[i] = frand(&s);
    mt_nn_tensor ins[2] = {{MT_NN_FLOAT, 3, {2, 3, 4}, A}, {MT_NN_FLOAT, 2, {4, 5}, B}};
    assert_int_equal(mt_nn_prepare(m1, ins, 2, err, sizeof err), 0);
    assert_int_equal(mt_nn_prepare(m3, ins, 2, err, sizeof err), 0);
    assert_int_equal(mt_nn_run(m1, ins, 2, &y1, 1, err, sizeof err), 0);
    assert_int_equal(mt_nn_run(m3, ins, 2, &y3, 1, err, sizeof err), 0);
    assert_int_equal(y1.rank, 3);
    assert_int_equal(y1.dims[2], 5);
    for (int bi = 0; bi < 2; bi++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 5; j++) {
                double e = 0;
                for (int k = 0; k < 4; k++) e += A[(bi * 3 + i) * 4 + k] * B[k * 5 + j];
                assert_true(fabs(((float *)y1.data)[(bi * 3 + i) * 5 + j] - e) < 1e-5);
            }
    assert_memory_equal(y1.data, y3.data, 30 * sizeof(float));
    mt_nn_free(m1);
    mt_nn_free(m3);
    pb_free(&mb);
}

/* Attributes whose sizes would overflow int64 arithmetic: a clear error. */
static void model_convtranspose_outpad(pb *b, int64_t outpad)
{
    pb g = {0}, nd;
    float w[2] = {1.f, 1.f};
    int64_t wd[3] = {1, 1, 2}, xd[3] = {1, 1, 3}, yd[3] = {1, 1, 4};
    ob_tensor(&g, 5, "W", MT_NN_FLOAT, 3, wd, w, sizeof w);
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 3, xd);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 3, yd);
    const char *a[] = {"X", "W"}, *o[] = {"Y"};
    ob_node_begin(&nd, "ct", "ConvTranspose", a, 2, o, 1);
    ob_attr_ints(&nd, "output_padding", &outpad, 1);
    ob_node_end(&g, &nd);
    ob_model(b, &g, 13);
}

static void model_split_wrap(pb *b)
{
    pb g = {0}, nd;
    /* INT64_MAX + INT64_MAX + 6 wraps to 4, the axis */
    int64_t sp[3] = {INT64_MAX, INT64_MAX, 6}, sd[1] = {3}, xd[1] = {4}, yd[1] = {2};
    ob_tensor(&g, 5, "S", MT_NN_INT64, 1, sd, sp, sizeof sp);
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 1, xd);
    ob_vinfo(&g, 12, "Y0", MT_NN_FLOAT, 1, yd);
    const char *a[] = {"X", "S"}, *o[] = {"Y0", "Y1", "Y2"};
    ob_node_begin(&nd, "sp", "Split", a, 2, o, 3);
    ob_node_end(&g, &nd);
    ob_model(b, &g, 13);
}

/* load then prepare: either fails with rc, err naming what */
static void refused_at_load_or_prepare(pb *b, int rc, const char *what)
{
    mt_nn_limits lim = {0, 1, 0};
    mt_nn_model *m = NULL;
    int r = mt_nn_load(b->p, b->n, &lim, &m, err, sizeof err);
    if (!r) {
        r = mt_nn_prepare(m, NULL, 0, err, sizeof err);
        mt_nn_free(m);
    }
    if (r != rc || !strstr(err, what))
        fail_msg("rc %d (want %d): %s", r, rc, err);
}

static void test_overflowing_attrs(void **state)
{
    (void)state;
    pb b = {0};
    int64_t bad[] = {INT64_MAX, INT64_MAX / 2, 1, -1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        model_convtranspose_outpad(&b, bad[i]);
        refused_at_load_or_prepare(&b, MT_NN_EINVAL, "output_padding");
        pb_free(&b);
    }
    model_convtranspose_outpad(&b, 0); /* the valid one loads and prepares */
    mt_nn_limits lim = {0, 1, 0};
    mt_nn_model *m = NULL;
    assert_int_equal(mt_nn_load(b.p, b.n, &lim, &m, err, sizeof err), 0);
    assert_int_equal(mt_nn_prepare(m, NULL, 0, err, sizeof err), 0);
    mt_nn_free(m);
    pb_free(&b);
    model_split_wrap(&b);
    refused_at_load_or_prepare(&b, MT_NN_ESHAPE, "split sizes add up to more than the axis");
    pb_free(&b);
}

static void test_tensor_parse(void **state)
{
    (void)state;
    pb t = {0};
    int64_t d[2] = {2, 2};
    int64_t v[4] = {1, -2, 3, 4};
    ob_tensor(&t, 1, "t", MT_NN_INT64, 2, d, v, sizeof v);
    /* ob_tensor wrapped it in field 1: unwrap (skip key and length) */
    mt_nn_tensor x;
    assert_int_equal(mt_nn_tensor_parse(t.p + 2, t.n - 2, 0, &x, err, sizeof err), 0);
    assert_int_equal(x.dtype, MT_NN_INT64);
    assert_int_equal(((int64_t *)x.data)[1], -2);
    mt_nn_tensor_free(&x);
    assert_int_equal(mt_nn_tensor_parse(t.p + 2, t.n - 2, 16, &x, err, sizeof err), MT_NN_ENOMEM);
    assert_int_not_equal(mt_nn_tensor_parse(t.p + 2, t.n - 5, 0, &x, err, sizeof err), 0);
    pb_free(&t);
}

/* When no random key can be drawn for the tensor-name table the load fails with an
 * error (never an unkeyed table); with a key the same model loads. */
static void test_load_no_key(void **state)
{
    (void)state;
    pb b = {0};
    model_conv_bn_relu(&b, 1);
    mt_nn_model *m = NULL;
    mt_siphash_test_fail_keys(true);
    int rc = mt_nn_load(b.p, b.n, NULL, &m, err, sizeof err);
    mt_siphash_test_fail_keys(false);
    assert_int_not_equal(rc, 0);
    assert_null(m);
    assert_non_null(strstr(err, "no random key for the tensor-name table"));
    assert_int_equal(mt_nn_load(b.p, b.n, NULL, &m, err, sizeof err), 0);
    mt_nn_free(m);
    pb_free(&b);
}

/* FNV-1a of a NUL-terminated string (the tensor-name table's hash before SipHash). */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Tensor names that all collide in FNV-1a's low 16 bits (so in every table of up to 2^16
 * slots), as a party could put in a model: the tensor-name table must not probe
 * quadratically for them. For each name "w<i>_" a 3-character suffix takes FNV-1a's state
 * to 0 in its low 16 bits (the low k bits of FNV-1a's next state depend only on the low k
 * bits of the state and the byte, and the FNV prime is invertible mod 2^64, so suffixes
 * are found by running FNV-1a backwards from 0). Counts probe steps (no timing): with an
 * unkeyed FNV-1a table the N adds and N finds take about N^2 steps; keyed SipHash, about
 * 2 N. */
static void test_tensor_names_keyed(void **state)
{
    (void)state;
    enum { K = 16, N = 3000 };
    const uint32_t mask = (1u << K) - 1;
    const uint64_t P = 1099511628211ull;
    uint64_t pinv = P;
    for (int i = 0; i < 6; i++)
        pinv *= 2 - P * pinv; /* P^-1 mod 2^64 (Newton) */
    assert_true(P * pinv == 1);
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    uint32_t *suf = malloc(((size_t)mask + 1) * sizeof *suf);
    uint8_t *have = calloc((size_t)mask + 1, 1);
    assert_non_null(suf);
    assert_non_null(have);
    for (int a = 0; a < 64; a++)
        for (int b = 0; b < 64; b++)
            for (int c = 0; c < 64; c++) {
                const uint8_t by[3] = {(uint8_t)al[a], (uint8_t)al[b], (uint8_t)al[c]};
                uint64_t x = 0;
                for (int i = 2; i >= 0; i--)
                    x = (x * pinv) ^ by[i];
                uint32_t s = (uint32_t)x & mask;
                if (!have[s]) {
                    have[s] = 1;
                    suf[s] = (uint32_t)(a | b << 6 | c << 12);
                }
            }
    char **names = calloc(N, sizeof *names);
    assert_non_null(names);
    int made = 0;
    for (int i = 0; made < N; i++) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "w%d_", i);
        uint32_t s = (uint32_t)fnv1a(buf) & mask;
        if (!have[s])
            continue;
        for (int j = 0; j < 3; j++)
            buf[n++] = al[(suf[s] >> (6 * j)) & 63];
        buf[n] = 0;
        assert_int_equal(fnv1a(buf) & mask, 0);
        names[made] = strdup(buf);
        assert_non_null(names[made]);
        made++;
    }
    /* the table as mt_nn_load_ext sets it up: a random key per model */
    mt_nn_model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    assert_true(mt_siphash_key_random(&m->hkey));
    size_t probes = 0;
    m->probe_count = &probes;
    for (int i = 0; i < N; i++) {
        assert_int_equal(nn_tensor_find(m, names[i]), -1);
        assert_int_equal(nn_tensor_add(m, names[i]), i);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(nn_tensor_find(m, names[i]), i);
    /* 3 N lookups in a table at most half full: a few steps each on average; the
     * colliding names under FNV-1a took about N^2 = 9,000,000 */
    assert_true(probes < (size_t)20 * N);
    free(m->hash);
    free(m->t);
    free(m);
    for (int i = 0; i < N; i++)
        free(names[i]);
    free(names);
    free(have);
    free(suf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fusion_matches_unfused),
        cmocka_unit_test(test_gemm_activation_fusion),
        cmocka_unit_test(test_identity_elimination),
        cmocka_unit_test(test_malformed_protobuf),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_unsupported_op_named),
        cmocka_unit_test(test_shape_mismatch),
        cmocka_unit_test(test_huge_declared_tensors),
        cmocka_unit_test(test_memory_cap),
        cmocka_unit_test(test_nan_inf_propagate),
        cmocka_unit_test(test_external_data),
        cmocka_unit_test(test_dynamic_shape),
        cmocka_unit_test(test_cycle_and_symbolic),
        cmocka_unit_test(test_threads_same_results),
        cmocka_unit_test(test_tensor_parse),
        cmocka_unit_test(test_overflowing_attrs),
        cmocka_unit_test(test_tensor_names_keyed),
        cmocka_unit_test(test_load_no_key),
#ifdef MT_NN_HAVE_DNNL
        cmocka_unit_test(test_conv_chain_layouts),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
