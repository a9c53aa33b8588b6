/* nn_dnnl.h: the heavy ONNX operators on Intel oneDNN (libdnnl 2.6, C API).
 *
 * This is the fixed interface between the ONNX engine (src/nn, the graph, loader and
 * reference kernels) and its oneDNN backend (nn_dnnl.c). The engine calls these for the
 * operators oneDNN does well; everything else runs on the engine's reference kernels.
 *
 * Tensors: dense float32 in ONNX's default layout (row-major; NCHW for images; conv
 * weights [M, C/group, kH, kW]; ConvTranspose weights [C, M/group, kH, kW]). The caller
 * owns every buffer; the functions never keep a pointer to src/dst after returning.
 * Weights (and bias) passed with a non-NULL node key are treated as constant for that key:
 * the backend may cache a reordered copy (blocked layout chosen by oneDNN) and the
 * primitive itself, keyed by (node, shapes); the engine guarantees a key's weights never
 * change while the context lives. A NULL key means "do not cache".
 *
 * Errors: 0 on success; MT_NN_DNNL_EINVAL for parameters that do not make sense (a message
 * naming the parameter, never tensor contents, is written into err), MT_NN_DNNL_ENOMEM,
 * MT_NN_DNNL_EUNSUPPORTED (oneDNN has no implementation: the engine falls back to its
 * reference kernel), MT_NN_DNNL_EFAIL (other oneDNN error).
 *
 * Thread-safety: a context is used by one thread at a time (one inference); it owns an
 * engine, a stream, a primitive cache and a scratchpad arena that grows to the largest
 * need and is reused (no allocation per inference once warm). oneDNN's own threads (OpenMP)
 * are limited to the count given at creation.
 */
#ifndef MT_NN_DNNL_H
#define MT_NN_DNNL_H

#include <stddef.h>
#include <stdint.h>

#define MT_NN_DNNL_EINVAL (-1)
#define MT_NN_DNNL_ENOMEM (-2)
#define MT_NN_DNNL_EUNSUPPORTED (-3)
#define MT_NN_DNNL_EFAIL (-4)

typedef struct mt_nn_dnnl mt_nn_dnnl;

/* threads >= 1. Returns NULL and writes err on failure. */
mt_nn_dnnl *mt_nn_dnnl_create(int threads, char *err, size_t errlen);
void mt_nn_dnnl_free(mt_nn_dnnl *ctx);

typedef enum {
    MT_NN_POST_NONE = 0,
    MT_NN_POST_RELU,      /* max(x, 0) */
    MT_NN_POST_CLIP,      /* min(max(x, lo), hi) (ReLU6 = CLIP 0..6) */
    MT_NN_POST_LEAKY_RELU /* x < 0 ? alpha * x : x */
} mt_nn_post_kind;

typedef struct {
    mt_nn_post_kind kind;
    float lo, hi;  /* CLIP */
    float alpha;   /* LEAKY_RELU */
} mt_nn_post;

/* 2-D convolution (ONNX Conv with 4-D tensors) or, with transposed=1, ConvTranspose
 * (output_padding in out_pad; the output size is given explicitly in oh/ow).
 * x [n, c, h, w]; w as in the header comment; bias [m] or NULL; y [n, m, oh, ow]. */
typedef struct {
    int64_t n, c, h, w;        /* input */
    int64_t m, oh, ow;         /* output channels and spatial size (computed by the engine) */
    int64_t kh, kw;
    int64_t group;
    int64_t stride_h, stride_w;
    int64_t dil_h, dil_w;      /* ONNX dilations (1 = dense) */
    int64_t pad_t, pad_l, pad_b, pad_r;
    int transposed;
    int64_t out_pad_h, out_pad_w;
    mt_nn_post post;
} mt_nn_conv_desc;

int mt_nn_dnnl_conv(mt_nn_dnnl *ctx, const void *key, const mt_nn_conv_desc *d,
                    const float *x, const float *w, const float *bias, float *y,
                    char *err, size_t errlen);

/* Activation layouts kept between operators. A layout handle names the blocked layout
 * oneDNN chose for a Conv's output (nChw8c, nChw16c...; channels padded to the block,
 * padding zero): it is owned by the context and valid until mt_nn_dnnl_free. NULL means
 * plain NCHW. A buffer in a blocked layout holds at most n * ceil(c / 16) * 16 * h * w
 * floats (MT_NN_DNNL_BLOCKED_BYTES), which the engine reserves for such tensors. */
typedef struct mt_nn_dnnl_layout mt_nn_dnnl_layout;
#define MT_NN_DNNL_BLOCKED_BYTES(n, c, h, w) \
    ((size_t)(n) * (((size_t)(c) + 15) / 16 * 16) * (size_t)(h) * (size_t)(w) * sizeof(float))

typedef struct {
    const mt_nn_dnnl_layout *x_layout; /* in: the layout x is in (NULL: NCHW) */
    size_t y_cap;    /* in: bytes available at y for a blocked output; 0: NCHW output */
    const mt_nn_dnnl_layout *y_layout; /* out: the layout written to y (NULL: NCHW) */
} mt_nn_dnnl_io;

/* mt_nn_dnnl_conv with layouts: x is read in io->x_layout (reordered only when the
 * primitive wants another layout); with io->y_cap > 0, a non-NULL key and a primitive
 * whose preferred output layout is blocked and fits y_cap, y is written in that layout
 * (no reorder back) and io->y_layout names it; otherwise y is NCHW and y_layout NULL. On
 * MT_NN_DNNL_EUNSUPPORTED nothing was written (x still in its layout). */
int mt_nn_dnnl_conv_io(mt_nn_dnnl *ctx, const void *key, const mt_nn_conv_desc *d,
                       const float *x, const float *w, const float *bias, float *y,
                       mt_nn_dnnl_io *io, char *err, size_t errlen);

/* Reorders the tensor at buf from layout l into NCHW, in place (through a buffer of the
 * context); buf must hold the blocked tensor (its padded size). */
int mt_nn_dnnl_to_plain(mt_nn_dnnl *ctx, const mt_nn_dnnl_layout *l, float *buf, char *err,
                        size_t errlen);

/* Gemm: Y[M,N] = alpha * op(A) * op(B) + beta * C, op = transpose when trans_* is set;
 * A is [M,K] (or [K,M] transposed), B [K,N] (or [N,K]). C is NULL or broadcastable to
 * [M,N] given as its own 2-D shape (c_rows, c_cols each 1 or the full size).
 * B (and C) are constant for a non-NULL key. */
typedef struct {
    int64_t m, k, n;
    int trans_a, trans_b;
    float alpha, beta;
    int64_t c_rows, c_cols;
    mt_nn_post post;
} mt_nn_gemm_desc;

int mt_nn_dnnl_gemm(mt_nn_dnnl *ctx, const void *key, const mt_nn_gemm_desc *d,
                    const float *a, const float *b, const float *c, float *y,
                    char *err, size_t errlen);

/* Batched MatMul: Y[b] = A[b] (M x K) * B[b] (K x N) for b < batch, with a_batch/b_batch
 * each either 1 (broadcast) or batch. (The engine flattens numpy-style broadcasting of
 * leading dims into this form or falls back to its reference kernel.) */
int mt_nn_dnnl_matmul(mt_nn_dnnl *ctx, const void *key, int64_t batch, int64_t a_batch,
                      int64_t b_batch, int64_t m, int64_t k, int64_t n, const float *a,
                      const float *b, float *y, char *err, size_t errlen);

/* 2-D pooling on [n, c, h, w] -> [n, c, oh, ow]. avg_include_pad follows ONNX
 * count_include_pad. Global pooling = kernel equal to the input size, no pads. */
typedef struct {
    int max; /* 1 = MaxPool, 0 = AveragePool */
    int avg_include_pad;
    int64_t n, c, h, w, oh, ow;
    int64_t kh, kw, stride_h, stride_w, dil_h, dil_w;
    int64_t pad_t, pad_l, pad_b, pad_r;
} mt_nn_pool_desc;

int mt_nn_dnnl_pool(mt_nn_dnnl *ctx, const mt_nn_pool_desc *d, const float *x, float *y,
                    char *err, size_t errlen);

/* BatchNormalization (inference) on [n, c, spatial...] flattened to [n, c, s]. */
int mt_nn_dnnl_batchnorm(mt_nn_dnnl *ctx, int64_t n, int64_t c, int64_t s, float eps,
                         const float *scale, const float *bias, const float *mean,
                         const float *var, const float *x, float *y, char *err,
                         size_t errlen);

/* LRN across channels on [n, c, h, w] (ONNX LRN: size, alpha, beta, bias). */
int mt_nn_dnnl_lrn(mt_nn_dnnl *ctx, int64_t n, int64_t c, int64_t h, int64_t w,
                   int64_t size, float alpha, float beta, float bias, const float *x,
                   float *y, char *err, size_t errlen);

/* Softmax (log=0) or LogSoftmax (log=1) over the middle axis of [outer, axis, inner].
 * An input holding NaN answers MT_NN_DNNL_EUNSUPPORTED (oneDNN's max reduction would
 * drop it), so the engine's reference kernel propagates the NaN. */
int mt_nn_dnnl_softmax(mt_nn_dnnl *ctx, int log, int64_t outer, int64_t axis,
                       int64_t inner, const float *x, float *y, char *err, size_t errlen);

#endif
