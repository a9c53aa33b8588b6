# Fuzz target of the SEV-SNP report response reader (owned by tee).
mt_add_fuzzer(tee_snp_resp SOURCES ${MT_FUZZ_DIR}/tee_snp_resp.c LIBS mt_tee)
