# Fuzz target of the TPM 2.0 verifier (owned by attest): the TPMS_ATTEST (quote) reader.
mt_add_fuzzer(tpm2_attest SOURCES ${MT_FUZZ_DIR}/tpm2_attest.c LIBS mt_attest)
