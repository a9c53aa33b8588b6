# The daemon's settings (src/cli/serve_config.c): file, environment, flags.
mt_add_unit_test(test_serve_config SOURCES ${MT_TEST_DIR}/unit/test_serve_config.c
                 LIBS mt_serve_config)
