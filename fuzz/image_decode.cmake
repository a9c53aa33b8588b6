mt_add_fuzzer(image_decode SOURCES ${MT_FUZZ_DIR}/image_decode.c LIBS mt_image_decode)
