/* libFuzzer target: the .npy reader of the onnx_infer built-in (src/executor/npy.h).
 * Every accepted array must lie inside the buffer and agree with its header; the
 * header writer's output must parse back to the same shape. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_npy a;
    mt_err err;
    if (mt_npy_parse(data, size, &a, &err) != MT_OK)
        return 0;
    if (a.data < data || (size_t)(a.data - data) + a.count * a.itemsize != size)
        abort();
    /* touch every byte of the view (ASan checks the bounds) */
    volatile uint8_t x = 0;
    for (size_t i = 0; i < a.count * a.itemsize; i++)
        x ^= a.data[i];
    (void)x;
    char hdr[1024];
    size_t hl = mt_npy_header(hdr, sizeof hdr, a.dtype == MT_NPY_F32 ? "<f4"
                                                : a.dtype == MT_NPY_F64 ? "<f8" : "<i8",
                              a.rank, a.dims);
    if (!hl)
        abort();
    size_t n = a.count * a.itemsize;
    uint8_t *b = malloc(hl + n + 1);
    if (!b)
        return 0;
    memcpy(b, hdr, hl);
    if (n)
        memcpy(b + hl, a.data, n);
    mt_npy c;
    if (mt_npy_parse(b, hl + n, &c, &err) != MT_OK || c.rank != a.rank || c.count != a.count ||
        c.dtype != a.dtype || memcmp(c.dims, a.dims, sizeof a.dims[0] * (size_t)a.rank) != 0)
        abort();
    free(b);
    return 0;
}
