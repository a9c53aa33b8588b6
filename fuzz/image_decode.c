/* libFuzzer target: the JPEG/PNG decoder of image_classify and face_detect
 * (src/executor/image_decode.h). Every accepted image must be within the limits and
 * its pixel buffer readable in full (ASan checks the bounds); a rejected one must
 * leave the output empty. Limits kept small so the fuzzer explores rather than
 * allocates. */
#include <stdint.h>
#include <stdlib.h>

#include "image_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_image_limits lim = {.max_side = 4096, .max_pixels = 1u << 20};
    mt_image im;
    mt_err err;
    if (mt_image_decode(data, size, &lim, &im, &err) != MT_OK) {
        if (im.rgb || im.width || im.height)
            abort();
        return 0;
    }
    if (!im.rgb || im.width > lim.max_side || im.height > lim.max_side ||
        (uint64_t)im.width * im.height > lim.max_pixels)
        abort();
    volatile uint8_t x = 0;
    for (size_t i = 0; i < (size_t)im.width * im.height * 3; i++)
        x ^= im.rgb[i];
    (void)x;
    mt_image_free(&im);
    return 0;
}
