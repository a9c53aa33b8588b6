# Fuzz target of the attestation verifiers (owned by attest).
mt_add_fuzzer(attest_snp_report SOURCES ${MT_FUZZ_DIR}/attest_snp_report.c LIBS mt_attest)
