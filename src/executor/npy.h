/* npy: bounds-checked reader and header writer for NumPy's .npy format
 * (format versions 1.0, 2.0 and 3.0), used by the onnx_infer built-in for the
 * data owner's input tensor and for its output (docs/nn.md, "onnx_infer built-in").
 *
 * Accepted: descr '<f4' (float32), '<f8' (float64) or '<i8' (int64) ('=' and, for
 * one-byte types, '|' are read as little-endian too), fortran_order False, a shape
 * tuple of at most MT_NPY_MAX_RANK dimensions each at most 2^40, the element count at
 * most 2^40, and exactly count * itemsize bytes of data after the header (nothing
 * more, nothing less). The header is a Python dict literal holding exactly the three
 * keys, in any order, with optional spaces, a trailing comma and the padding of
 * spaces and a final newline.
 *
 * Ownership: the parsed view points into the caller's buffer (data may be unaligned:
 * copy with memcpy). Errors: MT_EINVAL with a message naming the field; messages
 * never quote the file's bytes. Thread-safety: reentrant. */
#ifndef MT_NPY_H
#define MT_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_NPY_MAX_RANK 8
#define MT_NPY_MAX_HEADER 65536

typedef enum { MT_NPY_F32 = 1, MT_NPY_F64, MT_NPY_I64 } mt_npy_dtype;

typedef struct mt_npy {
    mt_npy_dtype dtype;
    int rank;
    int64_t dims[MT_NPY_MAX_RANK];
    uint64_t count;       /* product of dims (1 for rank 0) */
    size_t itemsize;      /* 4 or 8 */
    const uint8_t *data;  /* count * itemsize bytes inside the parsed buffer */
} mt_npy;

mt_status mt_npy_parse(const uint8_t *buf, size_t len, mt_npy *out, mt_err *err);

/* Writes a version 1.0 header for a C-order array of descr ("<f4", "<f8", "<i8",
 * "<i4") and dims into buf (padded with spaces so that the data starts at a
 * multiple of 64). Returns its length, or 0 when cap is too small or rank is out of
 * [0, MT_NPY_MAX_RANK]. */
size_t mt_npy_header(char *buf, size_t cap, const char *descr, int rank, const int64_t *dims);

#endif
