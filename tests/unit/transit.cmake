# Unit tests of the KeyStore transit API's crypto core and input readers
# (src/keystore/transit; owned by the transit part of the keystore module).
mt_add_unit_test(test_transit SOURCES ${MT_TEST_DIR}/unit/test_transit.c
                 LIBS mt_transit PkgConfig::OPENSSL)
# The store side (src/core/transit*.c): MACs, rewrap, the loader for tasks.
mt_add_unit_test(test_transit_store SOURCES ${MT_TEST_DIR}/unit/test_transit_store.c
                 LIBS mt_core mt_crypto mt_tee PkgConfig::SQLITE Threads::Threads)
target_include_directories(test_transit_store PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
# Audit group commit, core side (mt_core_audit_batch, mt_request.audit_later).
mt_add_unit_test(test_audit_group SOURCES ${MT_TEST_DIR}/unit/test_audit_group.c
                 LIBS mt_core mt_crypto mt_tee PkgConfig::SQLITE Threads::Threads)
target_include_directories(test_audit_group PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
# Statements of the request connection kept prepared (src/core/stmt_cache.c).
mt_add_unit_test(test_stmt_cache SOURCES ${MT_TEST_DIR}/unit/test_stmt_cache.c
                 LIBS mt_core mt_crypto mt_tee PkgConfig::SQLITE Threads::Threads)
target_include_directories(test_stmt_cache PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
