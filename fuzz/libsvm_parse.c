/* Fuzz target: the gbdt built-in's LIBSVM reader (svm_parse in
 * builtin_gbdt.c, through mt_libsvm_parse_view). A parsed input must be a
 * well-formed CSR matrix: indptr starts at 0, never decreases and ends at
 * nnz; indices strictly increase within a row and are below max_col (at most
 * 2^20); labels and values are finite 32-bit floats. A failure must name the
 * input slot and carry no byte of the input beyond the slot name. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_ml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const mt_libsvm_view *v, void *u)
{
    (void)u;
    if (v->indptr[0] != 0 || v->indptr[v->n] != v->nnz || v->max_col > (1u << 20))
        abort();
    for (size_t r = 0; r < v->n; r++) {
        if (v->indptr[r + 1] < v->indptr[r] || !isfinite(v->y[r]))
            abort();
        for (size_t k = v->indptr[r]; k < v->indptr[r + 1]; k++) {
            if (v->indices[k] >= v->max_col || !isfinite(v->values[k]))
                abort();
            if (k > v->indptr[r] && v->indices[k] <= v->indices[k - 1])
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the reader's contract: plaintext followed by a NUL not counted in len */
    uint8_t *buf = malloc(size + 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    buf[size] = 0;
    mt_err err;
    if (mt_libsvm_parse_view("fuzz", buf, size, check, NULL, &err) != MT_OK &&
        strncmp(err.msg, "input 'fuzz', line ", 19) != 0 && strcmp(err.msg, "out of memory") != 0)
        abort();
    free(buf);
    return 0;
}
