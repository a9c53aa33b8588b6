mt_add_fuzzer(serve_config SOURCES ${MT_FUZZ_DIR}/serve_config.c LIBS mt_serve_config)
