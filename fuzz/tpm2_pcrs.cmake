# Fuzz target of the TPM 2.0 verifier (owned by attest): the tpm2-tools PCR dump reader.
mt_add_fuzzer(tpm2_pcrs SOURCES ${MT_FUZZ_DIR}/tpm2_pcrs.c LIBS mt_attest)
