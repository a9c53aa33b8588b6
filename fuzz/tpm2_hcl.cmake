# Fuzz target of the TPM 2.0 verifier (owned by attest): the Azure HCL report reader.
mt_add_fuzzer(tpm2_hcl SOURCES ${MT_FUZZ_DIR}/tpm2_hcl.c LIBS mt_attest)
