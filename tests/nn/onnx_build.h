/* onnx_build.h: a tiny protobuf writer for building ONNX models in tests (test_nn) and
 * for writing the fuzz seeds (nn_seedgen). Test code only: aborts on out of memory. */
#ifndef MT_ONNX_BUILD_H
#define MT_ONNX_BUILD_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *p;
    size_t n, cap;
} pb;

void pb_free(pb *b);
void pb_raw(pb *b, const void *d, size_t n);
void pb_varint(pb *b, uint64_t v);
void pb_int(pb *b, int field, int64_t v);
void pb_f32(pb *b, int field, float v);
void pb_bytes(pb *b, int field, const void *d, size_t n);
void pb_str(pb *b, int field, const char *s);
void pb_msg(pb *b, int field, pb *sub); /* appends sub as a nested message and frees it */

/* TensorProto with raw_data (field: 5 for a graph initializer, 5 in AttributeProto.t) */
void ob_tensor(pb *out, int field, const char *name, int dtype, int rank, const int64_t *dims,
               const void *raw, size_t rawlen);
/* ValueInfoProto (field 11 graph input, 12 graph output); dims[i] < 0 = symbolic */
void ob_vinfo(pb *g, int field, const char *name, int dtype, int rank, const int64_t *dims);
/* NodeProto appended to graph g when complete: ob_node_begin, attributes, ob_node_end */
void ob_node_begin(pb *node, const char *name, const char *op, const char *const *in, int nin,
                   const char *const *out, int nout);
void ob_attr_i(pb *node, const char *name, int64_t v);
void ob_attr_f(pb *node, const char *name, float v);
void ob_attr_ints(pb *node, const char *name, const int64_t *v, int n);
void ob_attr_s(pb *node, const char *name, const char *s);
void ob_node_end(pb *g, pb *node);
/* ModelProto around graph g (freed) with the default-domain opset */
void ob_model(pb *out, pb *g, int opset);

#endif
