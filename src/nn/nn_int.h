/* nn_int.h: the engine's internal structures, shared by nn_load.c, nn_graph.c and the
 * kernels (nn_ops*.c). Not installed; not for other modules. */
#ifndef MT_NN_INT_H
#define MT_NN_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_siphash.h"
#include "nn.h"
#include "nn_dnnl.h"
#include "onnx/onnx.pb-c.h"

/* limits checked by the loader (docs/nn.md) */
#define NN_MAX_NODES 100000
#define NN_MAX_TENSORS 400000
#define NN_MAX_NAME 4096
#define NN_MAX_DIM ((int64_t)1 << 40)
#define NN_MAX_IO 4096
#define NN_ALIGN 64
#define NN_MAX_PIN 4096 /* elements of an input pinned at prepare */

enum { NN_T_NONE = 0, NN_T_INPUT, NN_T_CONST, NN_T_INTER };

typedef struct {
    const char *name;
    int dtype, rank;
    int64_t dims[MT_NN_MAX_RANK];
    size_t count;
    void *data;
    int kind;
    int shaped;
    int init;      /* initializer (kept across prepare) */
    void *own;     /* owned buffer (initializers, folded constants) */
    size_t own_bytes;
    int producer;  /* node index in the working list, -1 */
    int first, last; /* execution positions (arena lifetime) */
    size_t off;
    int graph_out;
    int pinned;    /* input whose values were given at prepare (they may decide shapes) */
    /* oneDNN layouts kept between Conv nodes (docs/nn.md "Layouts"): blk_ok = every
     * consumer is a Conv reading it as its input 0 and it is no graph output (decided at
     * prepare; its arena slot then has room for the padded blocked form); layout = the
     * layout its data is in now (NULL: plain), set by the producer at run */
    int blk_ok;
    const mt_nn_dnnl_layout *layout;
} nn_t;

struct nn_node;
typedef int (*nn_op_fn)(mt_nn_model *m, struct nn_node *n, int run);

typedef struct {
    const char *name;
    nn_op_fn fn;
    int flags;
} nn_opdef;
#define NN_OP_SHAPEONLY 1 /* output depends only on input shapes: always folded */

typedef struct nn_node {
    const Onnx__NodeProto *p;
    const char *name, *op;
    int nin, nout;
    int *in, *out;
    int dead;
    mt_nn_post post;
    const nn_opdef *def;
    int bn_folded; /* Conv whose weights/bias were replaced by the BN folding pass */
} nn_node;

struct mt_nn_model {
    Onnx__ModelProto *mp;
    size_t cap;
    int threads;
    int opset;
    nn_t *t;
    size_t nt, nt_orig, tcap;
    nn_node *orig;
    size_t norig;
    nn_node *nodes; /* working copy made by prepare */
    size_t nn;
    int *inputs, *outputs;
    size_t nin, nout;
    int *order;
    size_t norder;
    uint8_t *arena;
    size_t arena_size;
    size_t const_bytes;  /* initializers */
    size_t fold_bytes;   /* constants made by prepare */
    int prepared;
    int no_passes;
    char *err;
    size_t errlen;
    void *dnnl;
    struct nn_pool *pool;
    /* name -> tensor index: open addressing, linear probing, keyed by SipHash-1-3 under
     * hkey (drawn at random per model by mt_nn_load_ext) */
    int *hash;
    size_t hcap;
    mt_siphash_key hkey;
    size_t *probe_count; /* tests only: when set, add and find add their probe steps to it */
};

/* errors: write "node 'name' (Op): ..." into m->err; return code */
int nn_fail(mt_nn_model *m, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int nn_node_fail(mt_nn_model *m, const nn_node *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* tensors */
int nn_tensor_add(mt_nn_model *m, const char *name);
/* makes room for tensor m->nt and clears it (name "", no producer) without adding it:
 * 0, or -1 when out of memory */
int nn_tensor_slot(mt_nn_model *m);
int nn_tensor_find(const mt_nn_model *m, const char *name);
int nn_count(const int64_t *dims, int rank, size_t *count);
int nn_bytes(int dtype, size_t count, size_t *bytes);
int nn_tensor_from_proto(mt_nn_model *m, const Onnx__TensorProto *tp, const uint8_t *payload,
                         size_t plen, nn_t *t, const char *what);
int nn_charge(mt_nn_model *m, size_t bytes, const char *what);

/* kernels */
const nn_opdef *nn_op_lookup(const char *op);
/* In kernels: */
nn_t *nn_in(mt_nn_model *m, nn_node *n, int i);   /* NULL when absent */
nn_t *nn_out(mt_nn_model *m, nn_node *n, int i);  /* NULL when absent */
int nn_set_out(mt_nn_model *m, nn_node *n, int i, int dtype, int rank, const int64_t *dims);
int nn_is_const(const nn_t *t);
int nn_known(const nn_t *t); /* constant, or an input pinned at prepare */

/* attributes */
const Onnx__AttributeProto *nn_attr(const nn_node *n, const char *name);
int64_t nn_attr_i(const nn_node *n, const char *name, int64_t def);
float nn_attr_f(const nn_node *n, const char *name, float def);
const char *nn_attr_s(const nn_node *n, const char *name, const char *def);
size_t nn_attr_ints(const nn_node *n, const char *name, const int64_t **v);
size_t nn_attr_floats(const nn_node *n, const char *name, const float **v);

/* element access in any numeric type */
double nn_ld(const void *p, int dt, size_t i);
void nn_st(void *p, int dt, size_t i, double v);
int64_t nn_ldi(const void *p, int dt, size_t i);
void nn_sti(void *p, int dt, size_t i, int64_t v);
int nn_is_float(int dt);
int nn_is_numeric(int dt);

/* worker threads (nn_pool.c): created at prepare when threads > 1 */
typedef struct nn_pool nn_pool;
typedef void (*nn_task)(void *ctx, size_t begin, size_t end);
nn_pool *nn_pool_create(int threads);
void nn_pool_free(nn_pool *p);
void nn_parallel(mt_nn_model *m, size_t n, nn_task fn, void *ctx);

/* dnnl (NULL when not built) */
mt_nn_dnnl *nn_dnnl(mt_nn_model *m);
/* t's data in plain row-major layout: reorders a kept oneDNN layout in place (0, or an
 * error code written like the kernels' errors) */
int nn_plain(mt_nn_model *m, const nn_node *n, nn_t *t);

#endif
