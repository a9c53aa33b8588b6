# Fuzz target for libmesatee-pkcs11's configuration-file reader (src/pkcs11/p11_conf.c).
mt_add_fuzzer(p11_conf SOURCES ${MT_FUZZ_DIR}/p11_conf.c LIBS mt_p11_read)
