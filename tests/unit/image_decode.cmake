# The JPEG/PNG decoder of image_classify and face_detect (src/executor/image_decode.c):
# every PNG colour conversion, JPEG baseline/progressive/grayscale, refusals (CMYK,
# truncation, size bombs, too many scans). Images made with libspng's encoder and
# libjpeg's compressor; crc32 from zlib (a libspng dependency).
find_library(MT_ZLIB z REQUIRED)
mt_add_unit_test(test_image_decode SOURCES ${MT_TEST_DIR}/unit/test_image_decode.c
                 LIBS mt_image_decode ${MT_ZLIB})
