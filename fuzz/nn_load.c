/* Fuzz target for the ONNX engine's loader and shape inference (src/nn, docs/nn.md):
 * the input is a ModelProto. Loading must accept or refuse with an error; an accepted
 * model is prepared with its declared shapes (symbolic dims as 1) under a small memory
 * cap, and a prepared small model is run once on zeroed inputs. Never a crash, leak or
 * out-of-bounds access. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_nn_limits lim = {(size_t)8 << 20, 1, 0};
    mt_nn_model *m = NULL;
    char err[256];
    if (mt_nn_load(data, size, &lim, &m, err, sizeof err) != MT_NN_OK) {
        if (m)
            abort();
        return 0;
    }
    size_t n = mt_nn_num_inputs(m);
    if (n > 16) {
        mt_nn_free(m);
        return 0;
    }
    mt_nn_tensor in[16];
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        if (mt_nn_input_decl(m, i, &in[i])) {
            ok = 0;
            break;
        }
        for (int k = 0; k < in[i].rank; k++)
            if (in[i].dims[k] < 0)
                in[i].dims[k] = 1;
    }
    if (ok && mt_nn_prepare(m, in, n, err, sizeof err) == MT_NN_OK &&
        mt_nn_mem_used(m) < (256u << 10)) {
        void *bufs[16] = {0};
        size_t total = 0;
        for (size_t i = 0; i < n && ok; i++) {
            size_t cnt = 1;
            for (int k = 0; k < in[i].rank; k++)
                cnt *= (size_t)in[i].dims[k];
            total += cnt;
            if (total > 65536) {
                ok = 0;
                break;
            }
            bufs[i] = calloc(cnt ? cnt : 1, 8);
            in[i].data = bufs[i];
        }
        mt_nn_tensor out[4];
        size_t no = mt_nn_num_outputs(m) < 4 ? mt_nn_num_outputs(m) : 4;
        if (ok)
            (void)mt_nn_run(m, in, n, out, no, err, sizeof err);
        for (size_t i = 0; i < n; i++)
            free(bufs[i]);
    }
    mt_nn_free(m);
    return 0;
}
