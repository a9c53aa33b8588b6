mt_add_fuzzer(cli_config SOURCES ${MT_FUZZ_DIR}/cli_config.c LIBS mt_cli_config)
