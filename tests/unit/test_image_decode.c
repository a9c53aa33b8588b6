/* test_image_decode: src/executor/image_decode.h (the JPEG/PNG decoder of
 * image_classify and face_detect). Images are made here with libspng's encoder and
 * libjpeg's compressor (the libraries under test decode them), plus hand-made
 * headers for the refusals: every PNG colour conversion exact, JPEG within the
 * codec's error, CMYK and 12-bit refused, truncations, size bombs before any pixel
 * memory, too many progressive scans, and messages that quote nothing decoded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jpeglib.h>
#include <spng.h>
#include <zlib.h>

#include "image_decode.h"

static const mt_image_limits LIM = {.max_side = 16384, .max_pixels = 1u << 24};

#define W 13
#define H 7

/* a deterministic RGB8 test pattern */
static void pattern(uint8_t *p, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            p[(y * w + x) * 3 + 0] = (uint8_t)(x * 19 + y * 3);
            p[(y * w + x) * 3 + 1] = (uint8_t)(y * 31 + 7);
            p[(y * w + x) * 3 + 2] = (uint8_t)((x * y * 11) ^ 0x5a);
        }
}

static uint8_t *png_encode(struct spng_ihdr ih, const void *img, size_t len,
                           const struct spng_plte *plte, size_t *out_len)
{
    spng_ctx *c = spng_ctx_new(SPNG_CTX_ENCODER);
    assert_non_null(c);
    assert_int_equal(spng_set_option(c, SPNG_ENCODE_TO_BUFFER, 1), 0);
    assert_int_equal(spng_set_ihdr(c, &ih), 0);
    if (plte)
        assert_int_equal(spng_set_plte(c, (struct spng_plte *)plte), 0);
    int r = spng_encode_image(c, img, len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
    if (r) {
        fprintf(stderr, "spng_encode_image: %s\n", spng_strerror(r));
        fail();
    }
    int e = 0;
    uint8_t *b = spng_get_png_buffer(c, out_len, &e);
    assert_int_equal(e, 0);
    spng_ctx_free(c);
    return b;
}

static void decode_ok(const uint8_t *b, size_t n, mt_image *im)
{
    mt_err err = {0};
    mt_status rc = mt_image_decode(b, n, &LIM, im, &err);
    if (rc != MT_OK)
        fprintf(stderr, "decode: %s\n", err.msg);
    assert_int_equal(rc, MT_OK);
}

static void test_png_types(void **state)
{
    (void)state;
    uint8_t rgb[W * H * 3];
    pattern(rgb, W, H);
    mt_image im;
    size_t n;
    /* RGB8, plain and Adam7-interlaced */
    for (int il = 0; il < 2; il++) {
        struct spng_ihdr ih = {.width = W, .height = H, .bit_depth = 8,
                               .color_type = SPNG_COLOR_TYPE_TRUECOLOR,
                               .interlace_method = (uint8_t)il};
        uint8_t *b = png_encode(ih, rgb, sizeof rgb, NULL, &n);
        decode_ok(b, n, &im);
        assert_int_equal(im.width, W);
        assert_int_equal(im.height, H);
        assert_int_equal(im.format, MT_IMAGE_PNG);
        assert_memory_equal(im.rgb, rgb, sizeof rgb);
        mt_image_free(&im);
        free(b);
    }
    /* RGB16 holding v * 257: reduced to v */
    uint8_t rgb16[W * H * 6];
    for (size_t i = 0; i < W * H * 3; i++)
        rgb16[2 * i] = rgb16[2 * i + 1] = rgb[i]; /* big-endian v*257 */
    struct spng_ihdr ih16 = {.width = W, .height = H, .bit_depth = 16,
                             .color_type = SPNG_COLOR_TYPE_TRUECOLOR};
    uint8_t *b = png_encode(ih16, rgb16, sizeof rgb16, NULL, &n);
    decode_ok(b, n, &im);
    assert_memory_equal(im.rgb, rgb, sizeof rgb);
    mt_image_free(&im);
    free(b);
    /* RGBA8: the alpha channel dropped, not composited */
    uint8_t rgba[W * H * 4];
    for (size_t i = 0; i < W * H; i++) {
        memcpy(rgba + 4 * i, rgb + 3 * i, 3);
        rgba[4 * i + 3] = (uint8_t)(i * 7);
    }
    struct spng_ihdr iha = {.width = W, .height = H, .bit_depth = 8,
                            .color_type = SPNG_COLOR_TYPE_TRUECOLOR_ALPHA};
    b = png_encode(iha, rgba, sizeof rgba, NULL, &n);
    decode_ok(b, n, &im);
    assert_memory_equal(im.rgb, rgb, sizeof rgb);
    mt_image_free(&im);
    free(b);
    /* grayscale 8-bit: replicated to three channels */
    uint8_t g[W * H];
    for (size_t i = 0; i < sizeof g; i++)
        g[i] = (uint8_t)(i * 5);
    struct spng_ihdr ihg = {.width = W, .height = H, .bit_depth = 8,
                            .color_type = SPNG_COLOR_TYPE_GRAYSCALE};
    b = png_encode(ihg, g, sizeof g, NULL, &n);
    decode_ok(b, n, &im);
    for (size_t i = 0; i < sizeof g; i++)
        for (int c = 0; c < 3; c++)
            assert_int_equal(im.rgb[3 * i + (size_t)c], g[i]);
    mt_image_free(&im);
    free(b);
    /* palette 8-bit: expanded through the palette */
    struct spng_plte pl = {.n_entries = 4};
    for (int i = 0; i < 4; i++)
        pl.entries[i] = (struct spng_plte_entry){(uint8_t)(60 * i), (uint8_t)(255 - 50 * i),
                                                 (uint8_t)(i * i), 0};
    uint8_t idx[W * H];
    for (size_t i = 0; i < sizeof idx; i++)
        idx[i] = (uint8_t)(i % 4);
    struct spng_ihdr ihp = {.width = W, .height = H, .bit_depth = 8,
                            .color_type = SPNG_COLOR_TYPE_INDEXED};
    b = png_encode(ihp, idx, sizeof idx, &pl, &n);
    decode_ok(b, n, &im);
    for (size_t i = 0; i < sizeof idx; i++) {
        assert_int_equal(im.rgb[3 * i], pl.entries[idx[i]].red);
        assert_int_equal(im.rgb[3 * i + 1], pl.entries[idx[i]].green);
        assert_int_equal(im.rgb[3 * i + 2], pl.entries[idx[i]].blue);
    }
    mt_image_free(&im);
    /* truncated anywhere up to IEND's CRC (libspng does not read that one) and a flipped
     * CRC byte: refused */
    mt_err err = {0};
    for (size_t cut = 8; cut < n - 4; cut += 3) {
        assert_int_not_equal(mt_image_decode(b, cut, &LIM, &im, &err), MT_OK);
        assert_null(im.rgb);
        assert_true(strncmp(err.msg, "PNG: ", 5) == 0);
    }
    b[29] ^= 1; /* the IHDR's CRC */
    assert_int_equal(mt_image_decode(b, n, &LIM, &im, &err), MT_EINVAL);
    free(b);
}

/* a PNG whose IHDR declares w x h, with a valid CRC and no pixel data */
static size_t png_header(uint8_t *b, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    memcpy(b, sig, 8);
    uint8_t ch[17] = {'I', 'H', 'D', 'R', (uint8_t)(w >> 24), (uint8_t)(w >> 16),
                      (uint8_t)(w >> 8), (uint8_t)w, (uint8_t)(h >> 24), (uint8_t)(h >> 16),
                      (uint8_t)(h >> 8), (uint8_t)h, 8, 2, 0, 0, 0};
    b[8] = b[9] = b[10] = 0;
    b[11] = 13;
    memcpy(b + 12, ch, 17);
    uLong crc = crc32(0, ch, 17);
    b[29] = (uint8_t)(crc >> 24);
    b[30] = (uint8_t)(crc >> 16);
    b[31] = (uint8_t)(crc >> 8);
    b[32] = (uint8_t)crc;
    return 33;
}

static void test_png_bombs(void **state)
{
    (void)state;
    uint8_t b[64];
    mt_image im;
    mt_err err = {0};
    /* 60000 x 60000 (3.6 G pixels): refused from the header, nothing allocated */
    size_t n = png_header(b, 60000, 60000);
    assert_int_equal(mt_image_decode(b, n, &LIM, &im, &err), MT_ETOOBIG);
    assert_null(strstr(err.msg, "60000"));
    /* within the side limit but above the pixel limit */
    n = png_header(b, 5000, 5000);
    assert_int_equal(mt_image_decode(b, n, &LIM, &im, &err), MT_ETOOBIG);
    /* a side above the caller's limit */
    mt_image_limits small = {.max_side = 100, .max_pixels = 1u << 24};
    n = png_header(b, 101, 1);
    assert_int_equal(mt_image_decode(b, n, &small, &im, &err), MT_ETOOBIG);
    /* within the limits, no IDAT: the stream is truncated */
    n = png_header(b, 4, 4);
    assert_int_equal(mt_image_decode(b, n, &LIM, &im, &err), MT_EINVAL);
    assert_null(im.rgb);
}

/* ---- JPEG ---- */

typedef struct {
    J_COLOR_SPACE cs;
    int comps;
    bool progressive;
    bool many_scans;
} jpeg_opts;

static uint8_t *jpeg_encode(const uint8_t *px, int w, int h, jpeg_opts o, size_t *out_len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &buf, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = o.comps;
    c.in_color_space = o.cs;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 100, TRUE);
    static jpeg_scan_info scans[1 + 3 * 63 * 2];
    if (o.many_scans) {
        /* a valid progression of 379 scans: DC, then every AC coefficient of every
         * component alone, first at Al=1 then refined */
        int k = 0;
        scans[k++] = (jpeg_scan_info){3, {0, 1, 2, 0}, 0, 0, 0, 0};
        for (int ci = 0; ci < 3; ci++)
            for (int s = 1; s < 64; s++) {
                scans[k++] = (jpeg_scan_info){1, {ci, 0, 0, 0}, s, s, 0, 1};
                scans[k++] = (jpeg_scan_info){1, {ci, 0, 0, 0}, s, s, 1, 0};
            }
        c.scan_info = scans;
        c.num_scans = k;
    } else if (o.progressive) {
        jpeg_simple_progression(&c);
    }
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = (JSAMPROW)(px + (size_t)c.next_scanline * (size_t)w * (size_t)o.comps);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *out_len = len;
    return buf;
}

static void test_jpeg(void **state)
{
    (void)state;
    enum { JW = 24, JH = 16 };
    uint8_t rgb[JW * JH * 3];
    for (int y = 0; y < JH; y++)
        for (int x = 0; x < JW; x++) {
            rgb[(y * JW + x) * 3 + 0] = (uint8_t)(x * 8);
            rgb[(y * JW + x) * 3 + 1] = (uint8_t)(y * 12);
            rgb[(y * JW + x) * 3 + 2] = 128;
        }
    mt_image im;
    mt_err err = {0};
    size_t n;
    uint8_t *base = NULL;
    size_t base_n = 0;
    for (int prog = 0; prog < 2; prog++) {
        uint8_t *b = jpeg_encode(rgb, JW, JH, (jpeg_opts){JCS_RGB, 3, prog, false}, &n);
        decode_ok(b, n, &im);
        assert_int_equal(im.width, JW);
        assert_int_equal(im.height, JH);
        assert_int_equal(im.format, MT_IMAGE_JPEG);
        for (size_t i = 0; i < sizeof rgb; i++)
            assert_true(abs((int)im.rgb[i] - (int)rgb[i]) <= 12);
        mt_image_free(&im);
        if (!prog) {
            base = b;
            base_n = n;
        } else {
            free(b);
        }
    }
    /* grayscale: three equal channels */
    uint8_t g[JW * JH];
    for (size_t i = 0; i < sizeof g; i++)
        g[i] = (uint8_t)(i % 200);
    uint8_t *b = jpeg_encode(g, JW, JH, (jpeg_opts){JCS_GRAYSCALE, 1, false, false}, &n);
    decode_ok(b, n, &im);
    for (size_t i = 0; i < sizeof g; i++)
        assert_true(im.rgb[3 * i] == im.rgb[3 * i + 1] && im.rgb[3 * i] == im.rgb[3 * i + 2]);
    mt_image_free(&im);
    free(b);
    /* CMYK: refused by name */
    uint8_t cmyk[JW * JH * 4];
    memset(cmyk, 77, sizeof cmyk);
    b = jpeg_encode(cmyk, JW, JH, (jpeg_opts){JCS_CMYK, 4, false, false}, &n);
    assert_int_equal(mt_image_decode(b, n, &LIM, &im, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "colour space"));
    free(b);
    /* 379 progressive scans: refused at the scan limit */
    b = jpeg_encode(rgb, JW, JH, (jpeg_opts){JCS_RGB, 3, true, true}, &n);
    assert_int_equal(mt_image_decode(b, n, &LIM, &im, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "progressive scans"));
    assert_null(im.rgb);
    free(b);
    /* truncated anywhere: refused (libjpeg would pad with grey and warn) */
    for (size_t cut = 3; cut < base_n; cut += 13) {
        assert_int_not_equal(mt_image_decode(base, cut, &LIM, &im, &err), MT_OK);
        assert_null(im.rgb);
        assert_true(strncmp(err.msg, "JPEG: ", 6) == 0);
    }
    /* a header claiming 60000 x 60000: refused before decoding */
    uint8_t *big = malloc(base_n);
    memcpy(big, base, base_n);
    bool patched = false;
    for (size_t i = 2; i + 9 < base_n; i++)
        if (big[i] == 0xff && big[i + 1] == 0xc0) { /* SOF0: len(2) P(1) Y(2) X(2) */
            big[i + 5] = big[i + 7] = 60000 >> 8;
            big[i + 6] = big[i + 8] = 60000 & 0xff;
            patched = true;
            break;
        }
    assert_true(patched);
    assert_int_equal(mt_image_decode(big, base_n, &LIM, &im, &err), MT_ETOOBIG);
    assert_null(strstr(err.msg, "60000"));
    /* a corrupt byte in the entropy-coded data: fails or decodes, never crashes */
    memcpy(big, base, base_n);
    big[base_n - 20] ^= 0xff;
    if (mt_image_decode(big, base_n, &LIM, &im, &err) == MT_OK)
        mt_image_free(&im);
    free(big);
    free(base);
}

static void test_refusals(void **state)
{
    (void)state;
    mt_image im;
    mt_err err = {0};
    assert_int_equal(mt_image_decode((const uint8_t *)"", 0, &LIM, &im, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(mt_image_decode((const uint8_t *)"GIF89aSECRET", 12, &LIM, &im, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "unknown signature"));
    assert_null(strstr(err.msg, "SECRET"));
    assert_int_equal(mt_image_decode((const uint8_t *)"\xff\xd8\xff", 3, &LIM, &im, &err),
                     MT_EINVAL);
    assert_int_equal(
        mt_image_decode((const uint8_t *)"\x89PNG\r\n\x1a\n", 8, &LIM, &im, &err), MT_EINVAL);
    assert_null(im.rgb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_types),
        cmocka_unit_test(test_png_bombs),
        cmocka_unit_test(test_jpeg),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
