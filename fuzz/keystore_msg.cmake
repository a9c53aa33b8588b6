# Fuzz targets of the KeyStore's parsers of outside bytes (owned by keystore):
# the release request and response messages and the sealed state's plaintext.
mt_add_fuzzer(keystore_request SOURCES ${MT_FUZZ_DIR}/keystore_request.c LIBS mt_keystore)
mt_add_fuzzer(keystore_response SOURCES ${MT_FUZZ_DIR}/keystore_response.c LIBS mt_keystore)
mt_add_fuzzer(keystore_state SOURCES ${MT_FUZZ_DIR}/keystore_state.c LIBS mt_keystore)
# the TPM sealed blob of level tpm2 (keystore.tpm), read through tss2-mu (owned by tee)
mt_add_fuzzer(keystore_tpm_blob SOURCES ${MT_FUZZ_DIR}/keystore_tpm_blob.c LIBS mt_tee)
# the root-key escrow file read by `serve --keystore-recover` (owned by keystore)
mt_add_fuzzer(keystore_escrow SOURCES ${MT_FUZZ_DIR}/keystore_escrow.c LIBS mt_keystore)
# the KeyStore join answer and the --keystore-join URL (issue 14, mt_ks_join.h)
mt_add_fuzzer(keystore_join SOURCES ${MT_FUZZ_DIR}/keystore_join.c LIBS mt_keystore)
