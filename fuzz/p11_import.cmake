# Fuzz target for libmesatee-pkcs11's reader of C_CreateObject templates (src/pkcs11/p11_import.c).
mt_add_fuzzer(p11_import SOURCES ${MT_FUZZ_DIR}/p11_import.c LIBS mt_p11_read)
