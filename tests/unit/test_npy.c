/* test_npy: src/executor/npy.h (the onnx_infer built-in's .npy reader). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "npy.h"

/* a v1 file: header dict (padded to 64) + data */
static size_t mk(uint8_t *out, const char *dict, const void *data, size_t n)
{
    size_t dl = strlen(dict);
    size_t total = (10 + dl + 1 + 63) / 64 * 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (uint8_t)((total - 10) & 0xff);
    out[9] = (uint8_t)((total - 10) >> 8);
    memcpy(out + 10, dict, dl);
    memset(out + 10 + dl, ' ', total - 10 - dl - 1);
    out[total - 1] = '\n';
    if (n)
        memcpy(out + total, data, n);
    return total + n;
}

static void test_accepts(void **state)
{
    (void)state;
    uint8_t buf[512];
    float f[6] = {1, 2, 3, 4, 5, 6};
    mt_npy a;
    mt_err err;
    size_t n = mk(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f);
    assert_int_equal(mt_npy_parse(buf, n, &a, &err), MT_OK);
    assert_int_equal(a.dtype, MT_NPY_F32);
    assert_int_equal(a.rank, 2);
    assert_int_equal(a.dims[0], 2);
    assert_int_equal(a.dims[1], 3);
    assert_int_equal(a.count, 6);
    assert_memory_equal(a.data, f, sizeof f);
    /* keys in another order, double quotes, no trailing comma, 1-tuple, int64 */
    int64_t i[3] = {7, -8, 9};
    n = mk(buf, "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<i8\"}", i, sizeof i);
    assert_int_equal(mt_npy_parse(buf, n, &a, &err), MT_OK);
    assert_int_equal(a.dtype, MT_NPY_I64);
    assert_int_equal(a.rank, 1);
    assert_int_equal(a.count, 3);
    /* a scalar (rank 0) float64, and an empty array */
    double d = 2.5;
    n = mk(buf, "{'descr': '<f8', 'fortran_order': False, 'shape': ()}", &d, sizeof d);
    assert_int_equal(mt_npy_parse(buf, n, &a, &err), MT_OK);
    assert_int_equal(a.rank, 0);
    assert_int_equal(a.count, 1);
    n = mk(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4)}", NULL, 0);
    assert_int_equal(mt_npy_parse(buf, n, &a, &err), MT_OK);
    assert_int_equal(a.count, 0);
    /* the writer's header reads back */
    char hdr[640];
    int64_t dims[3] = {2, 1, 3};
    size_t hl = mt_npy_header(hdr, sizeof hdr, "<f4", 3, dims);
    assert_int_equal(hl % 64, 0);
    memcpy(buf, hdr, hl);
    memcpy(buf + hl, f, sizeof f);
    assert_int_equal(mt_npy_parse(buf, hl + sizeof f, &a, &err), MT_OK);
    assert_int_equal(a.rank, 3);
    assert_int_equal(a.dims[2], 3);
    assert_int_equal(mt_npy_header(hdr, 16, "<f4", 3, dims), 0);
    assert_int_equal(mt_npy_header(hdr, sizeof hdr, "<f4", 9, dims), 0);
}

static void refuse(const char *dict, size_t data_len, const char *want)
{
    static uint8_t buf[1 << 16];
    static const uint8_t zeros[256];
    size_t n = mk(buf, dict, zeros, data_len);
    mt_npy a;
    mt_err err;
    assert_int_equal(mt_npy_parse(buf, n, &a, &err), MT_EINVAL);
    if (!strstr(err.msg, want))
        fail_msg("'%s': expected '%s' in: %s", dict, want, err.msg);
    /* every cut inside the header is refused too, without reading past it */
    for (size_t k = 0; k < n - data_len; k++)
        assert_int_equal(mt_npy_parse(buf, k, &a, &err), MT_EINVAL);
}

static void test_refuses(void **state)
{
    (void)state;
    refuse("{'descr': '>f4', 'fortran_order': False, 'shape': (2,)}", 8, "dtype not supported");
    refuse("{'descr': '<i4', 'fortran_order': False, 'shape': (2,)}", 8, "dtype not supported");
    refuse("{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}", 8, "fortran_order True");
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 8, "data shorter");
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 8, "bytes after the data");
    refuse("{'descr': '<f4', 'fortran_order': False}", 8, "required");
    refuse("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8,
           "repeated");
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, "unknown");
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", 4,
           "more than 8");
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627777,)}", 8,
           "not an integer in [0, 2^40]");
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576, 2)}", 8,
           "more than 2^40");
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}", 8, "not an integer");
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", 8, "not a tuple");
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8, "after the dict");
    refuse("['descr']", 8, "not a dict");
    refuse("{'descr': '<f4\\x', 'fortran_order': False, 'shape': (2,)}", 8, "descr");
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)\x01}", 8, "printable");
    mt_npy a;
    mt_err err;
    assert_int_equal(mt_npy_parse((const uint8_t *)"\x93NUMPZ\x01\x00\x00\x00", 10, &a, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "magic"));
    assert_int_equal(mt_npy_parse((const uint8_t *)"\x93NUMPY\x04\x00\x00\x00", 10, &a, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "version 4"));
    /* a header length beyond the file */
    assert_int_equal(mt_npy_parse((const uint8_t *)"\x93NUMPY\x01\x00\xff\x00{", 11, &a, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_int_equal(mt_npy_parse(NULL, 0, &a, &err), MT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
