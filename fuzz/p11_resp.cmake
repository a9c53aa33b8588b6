# Fuzz target for libmesatee-pkcs11's reader of transit answers (src/pkcs11/p11_resp.c).
mt_add_fuzzer(p11_resp SOURCES ${MT_FUZZ_DIR}/p11_resp.c LIBS mt_p11_read)
