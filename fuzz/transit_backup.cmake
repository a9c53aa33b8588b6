# Fuzz target for the transit key backup reader (POST /v1/transit/restore
# input; owned by the transit part of the keystore module).
mt_add_fuzzer(transit_backup SOURCES ${MT_FUZZ_DIR}/transit_backup.c LIBS mt_transit PkgConfig::OPENSSL)
