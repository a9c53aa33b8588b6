# Fuzz target of the TPM enrolment record reader (owned by attest; issue 8).
mt_add_fuzzer(tpm2_record SOURCES ${MT_FUZZ_DIR}/tpm2_record.c LIBS mt_attest)
