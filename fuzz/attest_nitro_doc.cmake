# Fuzz target of the attestation verifiers (owned by attest).
mt_add_fuzzer(attest_nitro_doc SOURCES ${MT_FUZZ_DIR}/attest_nitro_doc.c LIBS mt_attest)
