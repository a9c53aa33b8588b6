/* nn_ops.h: kernels shared between nn_ops.c (table, element-wise, shape ops) and
 * nn_ops_nn.c (convolution, pooling, normalisation, GEMM/MatMul, softmax, RNNs). */
#ifndef MT_NN_OPS_H
#define MT_NN_OPS_H

#include "nn_int.h"

int nn_axis(mt_nn_model *m, nn_node *n, int64_t a, int rank, int *out);
int nn_need(mt_nn_model *m, nn_node *n, int i, int float_only);
int nn_const_ints(mt_nn_model *m, nn_node *n, int i, int64_t *v, size_t max, size_t *cnt);
int nn_bcast_shape(mt_nn_model *m, nn_node *n, nn_t **ts, int k, int64_t *od, int *orank);
void nn_bcast_strides(const nn_t *t, int rank, const int64_t *od, int64_t *st);
size_t nn_op_count(void);
const char *nn_op_name(size_t i);

#define NN_OP(x) int x(mt_nn_model *m, nn_node *n, int run)
NN_OP(nn_op_conv); NN_OP(nn_op_convtranspose); NN_OP(nn_op_maxpool); NN_OP(nn_op_avgpool);
NN_OP(nn_op_gavgpool); NN_OP(nn_op_gmaxpool); NN_OP(nn_op_batchnorm); NN_OP(nn_op_instnorm);
NN_OP(nn_op_layernorm); NN_OP(nn_op_mvn); NN_OP(nn_op_lrn); NN_OP(nn_op_gemm);
NN_OP(nn_op_matmul); NN_OP(nn_op_softmax); NN_OP(nn_op_logsoftmax); NN_OP(nn_op_hardmax);
NN_OP(nn_op_lstm); NN_OP(nn_op_gru); NN_OP(nn_op_rnn); NN_OP(nn_op_nll); NN_OP(nn_op_sce);
NN_OP(nn_op_resize);
#undef NN_OP

#endif
