# Unit tests of the KeyStore transit API's crypto core and input readers
# (src/keystore/transit; owned by the transit part of the keystore module).
mt_add_unit_test(test_transit SOURCES ${MT_TEST_DIR}/unit/test_transit.c
                 LIBS mt_transit PkgConfig::OPENSSL)
