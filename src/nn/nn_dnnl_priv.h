/* nn_dnnl_priv.h: introspection and tuning of the oneDNN backend, for its unit tests
 * and bench/nn only. The engine uses nn_dnnl.h; nothing here is part of that contract.
 *
 * Thread-safety: as nn_dnnl.h (one thread at a time per context). */
#ifndef MT_NN_DNNL_PRIV_H
#define MT_NN_DNNL_PRIV_H

#include "nn_dnnl.h"

typedef struct {
    size_t entries;          /* primitives held in the context's cache */
    size_t builds;           /* primitive sets built since creation (cached or not) */
    size_t weight_reorders;  /* weight reorders executed since creation */
    size_t arena_bytes;      /* scratchpad arena size */
    size_t arena_grows;      /* times the arena was (re)allocated */
    size_t cached_weight_bytes; /* bytes of reordered weights kept by the cache */
    size_t blocked_outputs;  /* Conv outputs left in a blocked layout (mt_nn_dnnl_conv_io) */
    size_t to_plain;         /* mt_nn_dnnl_to_plain reorders run */
} mt_nn_dnnl_stats;

void mt_nn_dnnl_stats_get(const mt_nn_dnnl *ctx, mt_nn_dnnl_stats *out);

/* Layout of Conv/ConvTranspose activations. 1 (default): src/dst in the blocked layout
 * oneDNN prefers, reordered from/to NCHW on every call; 0: oneDNN runs on NCHW directly.
 * Applies to primitives built after the call (the cache keeps both kinds apart). */
void mt_nn_dnnl_set_blocked(mt_nn_dnnl *ctx, int blocked);

/* The thread count OpenMP will use for this context's primitives (after it was
 * applied by a call); -1 when the OpenMP runtime was not found. */
int mt_nn_dnnl_omp_threads(mt_nn_dnnl *ctx);

#endif
