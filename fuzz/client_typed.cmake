# Fuzz target for libmesatee's reader of typed server answers (owned by the client module).
mt_add_fuzzer(client_typed SOURCES ${MT_FUZZ_DIR}/client_typed.c LIBS mt_client_typed)
