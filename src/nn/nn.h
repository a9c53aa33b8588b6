/* nn.h: the ONNX inference engine (issue 12). Runs only inside the sandboxed worker.
 *
 * A model is loaded from an ONNX ModelProto (protobuf, opsets 7-17; older opsets are
 * accepted for operators whose latest version is older; default domain only) held in
 * memory. External data (initializers with data_location EXTERNAL) is read from one blob
 * carried in the same payload (mt_nn_load_ext: offset/length into that blob, whatever the
 * location names; files are never opened). Every bound
 * is checked before use (see docs/nn.md "Limits"): the caller's memory cap covers the
 * model's constants, folded constants and the planned arena together.
 *
 * Life cycle: mt_nn_load -> mt_nn_prepare (concrete input shapes: shape inference,
 * constant folding, Identity elimination, BatchNorm folding, Conv/Gemm + activation
 * fusion, arena planning) -> mt_nn_run any number of times (no allocation per
 * inference) -> mt_nn_free. mt_nn_prepare may be called again with other shapes.
 *
 * Errors: MT_NN_OK or a negative MT_NN_E* code; err gets a message naming the node
 * (name and op type) or the field, never tensor contents.
 * Thread-safety: a model is used by one thread at a time; it may use `threads` worker
 * threads itself inside mt_nn_run.
 */
#ifndef MT_NN_H
#define MT_NN_H

#include <stddef.h>
#include <stdint.h>

#define MT_NN_OK 0
#define MT_NN_EINVAL (-1)       /* malformed model or inputs */
#define MT_NN_EUNSUPPORTED (-2) /* op, attribute, type or dynamic shape not supported */
#define MT_NN_ENOMEM (-3)       /* above the caller's memory cap, or out of memory */
#define MT_NN_ESHAPE (-4)       /* shapes do not fit */

#define MT_NN_MAX_RANK 8

/* Element types: ONNX TensorProto.DataType numbers. */
enum {
    MT_NN_FLOAT = 1, MT_NN_UINT8 = 2, MT_NN_INT8 = 3, MT_NN_UINT16 = 4, MT_NN_INT16 = 5,
    MT_NN_INT32 = 6, MT_NN_INT64 = 7, MT_NN_STRING = 8, MT_NN_BOOL = 9, MT_NN_FLOAT16 = 10,
    MT_NN_DOUBLE = 11, MT_NN_UINT32 = 12, MT_NN_UINT64 = 13, MT_NN_BFLOAT16 = 16
};

typedef struct {
    int dtype;
    int rank;
    int64_t dims[MT_NN_MAX_RANK];
    void *data; /* dense, row-major; for outputs: owned by the model, valid until the
                   next mt_nn_run/mt_nn_prepare/mt_nn_free */
} mt_nn_tensor;

typedef struct {
    size_t mem_cap;   /* bytes: constants + folded constants + arena (0 = 1 GiB) */
    int threads;      /* >= 1 (0 = 1) */
    int no_passes;    /* 1: no BatchNorm folding or activation fusion (tests compare both) */
} mt_nn_limits;

typedef struct mt_nn_model mt_nn_model;

int mt_nn_load(const uint8_t *buf, size_t len, const mt_nn_limits *lim, mt_nn_model **out,
               char *err, size_t errlen);
int mt_nn_load_ext(const uint8_t *buf, size_t len, const uint8_t *ext, size_t extlen,
                   const mt_nn_limits *lim, mt_nn_model **out, char *err, size_t errlen);
void mt_nn_free(mt_nn_model *m);

/* The graph's real inputs (initializers excluded) and outputs, in graph order. The
 * declared shape has -1 for a symbolic or unknown dimension. */
size_t mt_nn_num_inputs(const mt_nn_model *m);
size_t mt_nn_num_outputs(const mt_nn_model *m);
const char *mt_nn_input_name(const mt_nn_model *m, size_t i);
const char *mt_nn_output_name(const mt_nn_model *m, size_t i);
int mt_nn_input_decl(const mt_nn_model *m, size_t i, mt_nn_tensor *decl);

/* shapes[i]: dtype/rank/dims of input i; NULL = the declared shapes (an error naming the
 * input when one is symbolic). shapes[i].data may give the input's values (copied, at most
 * 4096 elements, else ignored): such a "pinned" input may decide shapes (a Reshape shape,
 * Slice starts...), and mt_nn_run then requires the same values. */
int mt_nn_prepare(mt_nn_model *m, const mt_nn_tensor *shapes, size_t n, char *err,
                  size_t errlen);

/* inputs must match the prepared shapes; outputs[i] receives views of the results. */
int mt_nn_run(mt_nn_model *m, const mt_nn_tensor *inputs, size_t nin, mt_nn_tensor *outputs,
              size_t nout, char *err, size_t errlen);

/* After prepare: the bytes reserved (constants + arena) and the nodes left to run. */
size_t mt_nn_mem_used(const mt_nn_model *m);
size_t mt_nn_num_nodes(const mt_nn_model *m);

/* Parses one TensorProto (the conformance data's input_N.pb/output_N.pb) into a tensor
 * whose data is malloc'ed (free with mt_nn_tensor_free). */
int mt_nn_tensor_parse(const uint8_t *buf, size_t len, size_t cap, mt_nn_tensor *t,
                       char *err, size_t errlen);
void mt_nn_tensor_free(mt_nn_tensor *t);
size_t mt_nn_dtype_size(int dtype); /* 0 for unsupported types */

#endif
