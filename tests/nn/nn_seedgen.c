/* nn_seedgen DIR: writes the hand-built seed models of the nn_load fuzz target
 * (fuzz/corpus/nn_load/) with tests/nn/onnx_build.c. Not a test; run by hand when the
 * seeds should change. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nn.h"
#include "onnx_build.h"

static int save(const char *dir, const char *name, pb *b)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s/%s", dir, name) >= (int)sizeof p)
        return 1;
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(b->p, 1, b->n, f) != b->n) {
        if (f)
            fclose(f);
        return 1;
    }
    pb_free(b);
    return fclose(f) != 0;
}

static void unary(pb *b, const char *op, int rank, const int64_t *d)
{
    pb g = {0}, nd;
    ob_vinfo(&g, 11, "X", MT_NN_FLOAT, rank, d);
    ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, rank, d);
    const char *a[] = {"X"}, *o[] = {"Y"};
    ob_node_begin(&nd, "n", op, a, 1, o, 1);
    ob_node_end(&g, &nd);
    ob_model(b, &g, 13);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: nn_seedgen DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    int rc = 0;
    pb b = {0};
    int64_t d2[2] = {2, 3}, d4[4] = {1, 2, 4, 4};
    unary(&b, "Relu", 2, d2);
    rc |= save(dir, "relu.onnx", &b);
    unary(&b, "Softmax", 2, d2);
    rc |= save(dir, "softmax.onnx", &b);
    { /* Conv + Relu with weights, pads and strides */
        pb g = {0}, nd;
        float w[2 * 2 * 9] = {0};
        int64_t wd[4] = {2, 2, 3, 3}, yd[4] = {1, 2, 2, 2};
        ob_tensor(&g, 5, "W", MT_NN_FLOAT, 4, wd, w, sizeof w);
        ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 4, d4);
        ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 4, yd);
        const char *a[] = {"X", "W"}, *o[] = {"c"}, *ra[] = {"c"}, *ro[] = {"Y"};
        ob_node_begin(&nd, "conv", "Conv", a, 2, o, 1);
        int64_t pads[4] = {1, 1, 1, 1}, st[2] = {2, 2};
        ob_attr_ints(&nd, "pads", pads, 4);
        ob_attr_ints(&nd, "strides", st, 2);
        ob_node_end(&g, &nd);
        ob_node_begin(&nd, "relu", "Relu", ra, 1, ro, 1);
        ob_node_end(&g, &nd);
        ob_model(&b, &g, 13);
        rc |= save(dir, "conv_relu.onnx", &b);
    }
    { /* Shape -> Gather -> Unsqueeze -> Concat -> Reshape: a shape subgraph */
        pb g = {0}, nd;
        int64_t one = 1, zero = 0, idx_d[1] = {1}, neg[1] = {-1};
        ob_tensor(&g, 5, "i0", MT_NN_INT64, 0, NULL, &zero, 8);
        ob_tensor(&g, 5, "ax", MT_NN_INT64, 1, idx_d, &zero, 8);
        ob_tensor(&g, 5, "m1", MT_NN_INT64, 1, idx_d, neg, 8);
        (void)one;
        ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 4, d4);
        ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 2, d2);
        const char *s_in[] = {"X"}, *s_out[] = {"s"};
        ob_node_begin(&nd, "shape", "Shape", s_in, 1, s_out, 1);
        ob_node_end(&g, &nd);
        const char *g_in[] = {"s", "i0"}, *g_out[] = {"n"};
        ob_node_begin(&nd, "gather", "Gather", g_in, 2, g_out, 1);
        ob_node_end(&g, &nd);
        const char *u_in[] = {"n", "ax"}, *u_out[] = {"n1"};
        ob_node_begin(&nd, "unsq", "Unsqueeze", u_in, 2, u_out, 1);
        ob_node_end(&g, &nd);
        const char *c_in[] = {"n1", "m1"}, *c_out[] = {"shp"};
        ob_node_begin(&nd, "cat", "Concat", c_in, 2, c_out, 1);
        ob_attr_i(&nd, "axis", 0);
        ob_node_end(&g, &nd);
        const char *r_in[] = {"X", "shp"}, *r_out[] = {"Y"};
        ob_node_begin(&nd, "reshape", "Reshape", r_in, 2, r_out, 1);
        ob_node_end(&g, &nd);
        ob_model(&b, &g, 13);
        rc |= save(dir, "shape_subgraph.onnx", &b);
    }
    { /* Gemm with transB and a bias, then Sigmoid */
        pb g = {0}, nd;
        float w[4 * 3] = {0}, c[4] = {0};
        int64_t wd[2] = {4, 3}, cd[1] = {4}, yd[2] = {2, 4};
        ob_tensor(&g, 5, "W", MT_NN_FLOAT, 2, wd, w, sizeof w);
        ob_tensor(&g, 5, "C", MT_NN_FLOAT, 1, cd, c, sizeof c);
        ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 2, d2);
        ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 2, yd);
        const char *a[] = {"X", "W", "C"}, *o[] = {"h"}, *sa[] = {"h"}, *so[] = {"Y"};
        ob_node_begin(&nd, "gemm", "Gemm", a, 3, o, 1);
        ob_attr_i(&nd, "transB", 1);
        ob_attr_f(&nd, "alpha", 0.5f);
        ob_node_end(&g, &nd);
        ob_node_begin(&nd, "sig", "Sigmoid", sa, 1, so, 1);
        ob_node_end(&g, &nd);
        ob_model(&b, &g, 11);
        rc |= save(dir, "gemm_sigmoid.onnx", &b);
    }
    { /* MaxPool + Transpose with a symbolic batch */
        pb g = {0}, nd;
        int64_t xd[4] = {-1, 2, 4, 4};
        ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 4, xd);
        ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 0, NULL);
        const char *a[] = {"X"}, *o[] = {"p"}, *ta[] = {"p"}, *to[] = {"Y"};
        ob_node_begin(&nd, "pool", "MaxPool", a, 1, o, 1);
        int64_t k[2] = {2, 2};
        ob_attr_ints(&nd, "kernel_shape", k, 2);
        ob_attr_ints(&nd, "strides", k, 2);
        ob_node_end(&g, &nd);
        ob_node_begin(&nd, "tr", "Transpose", ta, 1, to, 1);
        int64_t perm[4] = {0, 2, 3, 1};
        ob_attr_ints(&nd, "perm", perm, 4);
        ob_node_end(&g, &nd);
        ob_model(&b, &g, 13);
        rc |= save(dir, "pool_transpose.onnx", &b);
    }
    { /* ConvTranspose with an output_padding far past the stride (refused) */
        pb g = {0}, nd;
        float w[2] = {1.f, 1.f};
        int64_t wd[3] = {1, 1, 2}, xd[3] = {1, 1, 3}, op = INT64_MAX / 2;
        ob_tensor(&g, 5, "W", MT_NN_FLOAT, 3, wd, w, sizeof w);
        ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 3, xd);
        ob_vinfo(&g, 12, "Y", MT_NN_FLOAT, 3, xd);
        const char *a[] = {"X", "W"}, *o[] = {"Y"};
        ob_node_begin(&nd, "ct", "ConvTranspose", a, 2, o, 1);
        ob_attr_ints(&nd, "output_padding", &op, 1);
        ob_node_end(&g, &nd);
        ob_model(&b, &g, 13);
        rc |= save(dir, "convtranspose_outpad_overflow.onnx", &b);
    }
    { /* Split sizes whose sum wraps around to the axis (refused) */
        pb g = {0}, nd;
        int64_t sp[3] = {INT64_MAX, INT64_MAX, 6}, sd[1] = {3}, xd[1] = {4};
        ob_tensor(&g, 5, "S", MT_NN_INT64, 1, sd, sp, sizeof sp);
        ob_vinfo(&g, 11, "X", MT_NN_FLOAT, 1, xd);
        ob_vinfo(&g, 12, "Y0", MT_NN_FLOAT, 1, xd);
        const char *a[] = {"X", "S"}, *o[] = {"Y0", "Y1", "Y2"};
        ob_node_begin(&nd, "sp", "Split", a, 2, o, 3);
        ob_node_end(&g, &nd);
        ob_model(&b, &g, 13);
        rc |= save(dir, "split_sum_wraps.onnx", &b);
    }
    return rc;
}
