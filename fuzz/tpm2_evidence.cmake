# Fuzz target of the TPM 2.0 verifier (owned by attest): the mesatee TPM evidence container and MT_ATTEST_TPM2.
mt_add_fuzzer(tpm2_evidence SOURCES ${MT_FUZZ_DIR}/tpm2_evidence.c LIBS mt_attest)
