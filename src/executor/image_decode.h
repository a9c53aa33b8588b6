/* image_decode: JPEG and PNG images from outside (the data owner's input slots of
 * image_classify and face_detect, docs/nn.md "image_classify built-in") decoded to
 * 8-bit RGB with Debian's libjpeg-turbo (libjpeg62-turbo) and libspng.
 *
 * Accepted: JPEG (signature FF D8 FF; baseline, extended or progressive; 8-bit
 * samples; grayscale, YCbCr or RGB: grayscale is replicated to three channels) and
 * PNG (signature 89 'PNG' 0D 0A 1A 0A; every colour type and bit depth, interlaced
 * or not: palette and grayscale expanded to RGB, 16-bit samples reduced to 8 bits,
 * an alpha channel or tRNS transparency dropped (not composited), no gamma or colour
 * profile applied). Refused with a clear error: an empty buffer, an unknown signature,
 * CMYK/YCCK or other JPEG colour spaces, 12-bit JPEG, a width or height above
 * lim->max_side, width * height above lim->max_pixels (checked from the header,
 * before any pixel memory is allocated), a progressive JPEG with more than
 * MT_IMAGE_MAX_SCANS scans, any libjpeg warning (a truncated or corrupt JPEG, which
 * libjpeg would otherwise pad with grey), a PNG with a bad CRC, a PNG truncated
 * anywhere before IEND's CRC (which libspng does not read) or otherwise corrupt, and
 * PNG ancillary chunks above 16 MiB in all.
 *
 * Ownership: on MT_OK out->rgb is malloc'ed (width * height * 3 bytes, rows top to
 * bottom, pixels R,G,B): free with mt_image_free. On error out is zeroed.
 * Errors: MT_EINVAL (MT_ETOOBIG for the size limits) with a message that names the
 * format and the kind of problem; messages never carry the image's bytes or
 * anything decoded from them (not even its dimensions); libjpeg's own message
 * codes are given as numbers. Nothing is written to stderr.
 * Thread-safety: reentrant (no global state). */
#ifndef MT_IMAGE_DECODE_H
#define MT_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_IMAGE_MAX_SCANS 256
#define MT_IMAGE_MAX_SIDE 65535u

typedef struct mt_image_limits {
    uint32_t max_side;   /* width and height at most this (<= MT_IMAGE_MAX_SIDE) */
    uint64_t max_pixels; /* width * height at most this */
} mt_image_limits;

typedef enum { MT_IMAGE_JPEG = 1, MT_IMAGE_PNG = 2 } mt_image_format;

typedef struct mt_image {
    uint32_t width, height;
    mt_image_format format;
    uint8_t *rgb;
} mt_image;

mt_status mt_image_decode(const uint8_t *buf, size_t len, const mt_image_limits *lim,
                          mt_image *out, mt_err *err);
void mt_image_free(mt_image *img);

#endif
