# Unit tests of the Vault transit features added for issue 10's remainder
# (derived and convergent keys, export, ecdsa-p521, the key backup format).
mt_add_unit_test(test_transit_vault SOURCES ${MT_TEST_DIR}/unit/test_transit_vault.c
                 LIBS mt_transit PkgConfig::OPENSSL)
