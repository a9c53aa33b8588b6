# Fuzz target of the TPM 2.0 verifier (owned by attest): the TPMT_SIGNATURE reader.
mt_add_fuzzer(tpm2_sig SOURCES ${MT_FUZZ_DIR}/tpm2_sig.c LIBS mt_attest)
