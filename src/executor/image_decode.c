/* image_decode: JPEG (libjpeg-turbo) and PNG (libspng) to RGB8; contract in image_decode.h. */
#include "image_decode.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <spng.h>

/* ancillary PNG chunks (text, ICC profile...) cached by libspng: 16 MiB in all,
 * one chunk at most 8 MiB */
#define PNG_CHUNK_MAX (8u << 20)
#define PNG_CACHE_MAX (16u << 20)

static bool too_big(uint64_t w, uint64_t h, const mt_image_limits *lim)
{
    uint32_t side = lim->max_side && lim->max_side < MT_IMAGE_MAX_SIDE ? lim->max_side
                                                                        : MT_IMAGE_MAX_SIDE;
    return w > side || h > side || w * h > lim->max_pixels;
}

static mt_status size_err(const char *fmt, const mt_image_limits *lim, mt_err *err)
{
    return mt_err_set(err, MT_ETOOBIG,
                      "%s: the image is larger than the limits (at most %u pixels a side and "
                      "%llu pixels in all)",
                      fmt, lim->max_side, (unsigned long long)lim->max_pixels);
}

/* ---- JPEG ------------------------------------------------------------------------ */

typedef struct {
    struct jpeg_error_mgr pub;
    struct jpeg_progress_mgr progress;
    jmp_buf jb;
    int code;     /* libjpeg's message code of the error or first warning */
    int warnings; /* warnings seen (corrupt or truncated data) */
    bool scans;   /* stopped for too many progressive scans */
} jpeg_err;

static void jpeg_on_error(j_common_ptr c)
{
    jpeg_err *e = (jpeg_err *)c->err;
    e->code = e->pub.msg_code;
    longjmp(e->jb, 1);
}

/* warnings (level -1: corrupt data, premature end) fail the decode; trace messages
 * (level >= 0) are ignored; nothing is printed */
static void jpeg_on_message(j_common_ptr c, int level)
{
    jpeg_err *e = (jpeg_err *)c->err;
    if (level < 0) {
        if (!e->warnings++)
            e->code = e->pub.msg_code;
        longjmp(e->jb, 2);
    }
}

static void jpeg_on_output(j_common_ptr c)
{
    (void)c;
}

static void jpeg_on_progress(j_common_ptr c)
{
    if (!c->is_decompressor)
        return;
    j_decompress_ptr d = (j_decompress_ptr)c;
    jpeg_err *e = (jpeg_err *)c->err;
    if (d->input_scan_number > MT_IMAGE_MAX_SCANS) {
        e->scans = true;
        longjmp(e->jb, 3);
    }
}

static mt_status decode_jpeg(const uint8_t *buf, size_t len, const mt_image_limits *lim,
                             mt_image *out, mt_err *err)
{
    struct jpeg_decompress_struct d;
    jpeg_err e;
    memset(&d, 0, sizeof d);
    memset(&e, 0, sizeof e);
    uint8_t *volatile rgb = NULL;
    volatile int stage = 0;
    d.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = jpeg_on_error;
    e.pub.emit_message = jpeg_on_message;
    e.pub.output_message = jpeg_on_output;
    e.progress.progress_monitor = jpeg_on_progress;
    int how = setjmp(e.jb);
    if (how) {
        jpeg_destroy_decompress(&d);
        free(rgb);
        if (how == 3)
            return mt_err_set(err, MT_EINVAL,
                              "JPEG: more than %d progressive scans (refused)",
                              MT_IMAGE_MAX_SCANS);
        if (how == 2)
            return mt_err_set(err, MT_EINVAL,
                              "JPEG: the data is truncated or corrupt (libjpeg warning code %d)",
                              e.code);
        if (stage == 0)
            return mt_err_set(err, MT_EINVAL,
                              "JPEG: the header is malformed or truncated (libjpeg code %d)",
                              e.code);
        return mt_err_set(err, MT_EINVAL,
                          "JPEG: the data is corrupt or uses a feature the decoder does not "
                          "support (libjpeg code %d)",
                          e.code);
    }
    jpeg_create_decompress(&d);
    d.progress = &e.progress;
    jpeg_mem_src(&d, buf, (unsigned long)len);
    jpeg_read_header(&d, TRUE);
    stage = 1;
    if (d.data_precision != 8) {
        jpeg_destroy_decompress(&d);
        return mt_err_set(err, MT_EINVAL, "JPEG: only 8-bit samples are supported");
    }
    if (too_big(d.image_width, d.image_height, lim)) {
        jpeg_destroy_decompress(&d);
        return size_err("JPEG", lim, err);
    }
    switch (d.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB: break;
    default:
        jpeg_destroy_decompress(&d);
        return mt_err_set(err, MT_EINVAL,
                          "JPEG: colour space not supported (CMYK, YCCK or other; grayscale, "
                          "YCbCr and RGB are)");
    }
    d.out_color_space = JCS_RGB;
    /* libjpeg-turbo's allocator counts against this (no backing store): the coefficient
     * buffer of a progressive image plus the work arrays, bounded by the pixel limit */
    d.mem->max_memory_to_use = (long)((uint64_t)d.image_width * d.image_height * 8 + (32u << 20));
    jpeg_start_decompress(&d);
    if (d.output_components != 3 || d.output_width != d.image_width ||
        d.output_height != d.image_height) {
        jpeg_destroy_decompress(&d);
        return mt_err_set(err, MT_EINTERNAL, "JPEG: unexpected decoder output");
    }
    size_t row = (size_t)d.output_width * 3;
    size_t total = row * d.output_height;
    rgb = malloc(total ? total : 1);
    if (!rgb) {
        jpeg_destroy_decompress(&d);
        return mt_err_set(err, MT_ENOMEM, "JPEG: out of memory for the pixels");
    }
    while (d.output_scanline < d.output_height) {
        JSAMPROW r = rgb + row * d.output_scanline;
        if (jpeg_read_scanlines(&d, &r, 1) != 1) {
            /* a suspending source never happens with jpeg_mem_src; refuse all the same */
            jpeg_destroy_decompress(&d);
            free(rgb);
            return mt_err_set(err, MT_EINVAL, "JPEG: the data is truncated");
        }
    }
    jpeg_finish_decompress(&d);
    out->width = d.output_width;
    out->height = d.output_height;
    out->format = MT_IMAGE_JPEG;
    out->rgb = rgb;
    jpeg_destroy_decompress(&d);
    return MT_OK;
}

/* ---- PNG ------------------------------------------------------------------------- */

static mt_status decode_png(const uint8_t *buf, size_t len, const mt_image_limits *lim,
                            mt_image *out, mt_err *err)
{
    spng_ctx *c = spng_ctx_new(0);
    if (!c)
        return mt_err_set(err, MT_ENOMEM, "PNG: out of memory");
    uint32_t side = lim->max_side && lim->max_side < MT_IMAGE_MAX_SIDE ? lim->max_side
                                                                        : MT_IMAGE_MAX_SIDE;
    mt_status rc = MT_OK;
    uint8_t *rgb = NULL;
    struct spng_ihdr ih;
    int r = spng_set_image_limits(c, side, side);
    if (!r)
        r = spng_set_chunk_limits(c, PNG_CHUNK_MAX, PNG_CACHE_MAX);
    /* a bad CRC fails a critical chunk (libspng's default) and an ancillary one too */
    if (!r)
        r = spng_set_crc_action(c, SPNG_CRC_ERROR, SPNG_CRC_ERROR);
    if (!r)
        r = spng_set_png_buffer(c, buf, len);
    if (r) {
        rc = mt_err_set(err, MT_EINTERNAL, "PNG: decoder set-up failed (%s)", spng_strerror(r));
        goto done;
    }
    r = spng_get_ihdr(c, &ih);
    if (r == SPNG_EUSER_WIDTH || r == SPNG_EUSER_HEIGHT) {
        rc = size_err("PNG", lim, err);
        goto done;
    }
    if (r) {
        rc = mt_err_set(err, MT_EINVAL, "PNG: the header is malformed or truncated (%s)",
                        spng_strerror(r));
        goto done;
    }
    if (too_big(ih.width, ih.height, lim)) {
        rc = size_err("PNG", lim, err);
        goto done;
    }
    size_t n = 0;
    r = spng_decoded_image_size(c, SPNG_FMT_RGB8, &n);
    if (r || n != (size_t)ih.width * ih.height * 3) {
        rc = mt_err_set(err, MT_EINVAL, "PNG: this colour type and bit depth is not supported%s%s",
                        r ? ": " : "", r ? spng_strerror(r) : "");
        goto done;
    }
    rgb = malloc(n ? n : 1);
    if (!rgb) {
        rc = mt_err_set(err, MT_ENOMEM, "PNG: out of memory for the pixels");
        goto done;
    }
    r = spng_decode_image(c, rgb, n, SPNG_FMT_RGB8, 0);
    /* the rest of the file up to IEND must be there and intact as well (a file cut in
     * the last CRC or before IEND is a truncated file) */
    if (!r)
        r = spng_decode_chunks(c);
    if (r) {
        rc = mt_err_set(err, MT_EINVAL, "PNG: the data is truncated or corrupt (%s)",
                        spng_strerror(r));
        goto done;
    }
    out->width = ih.width;
    out->height = ih.height;
    out->format = MT_IMAGE_PNG;
    out->rgb = rgb;
    rgb = NULL;
done:
    free(rgb);
    spng_ctx_free(c);
    return rc;
}

mt_status mt_image_decode(const uint8_t *buf, size_t len, const mt_image_limits *lim,
                          mt_image *out, mt_err *err)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    memset(out, 0, sizeof *out);
    if (!len)
        return mt_err_set(err, MT_EINVAL, "image: the file is empty");
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return decode_jpeg(buf, len, lim, out, err);
    if (len >= 8 && !memcmp(buf, png_sig, 8))
        return decode_png(buf, len, lim, out, err);
    return mt_err_set(err, MT_EINVAL, "image: not a JPEG or PNG file (unknown signature)");
}

void mt_image_free(mt_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    img->rgb = NULL;
}
