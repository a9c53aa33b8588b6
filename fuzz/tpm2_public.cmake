# Fuzz target of the TPM 2.0 verifier (owned by attest): the TPMT_PUBLIC reader, key construction and name.
mt_add_fuzzer(tpm2_public SOURCES ${MT_FUZZ_DIR}/tpm2_public.c LIBS mt_attest)
