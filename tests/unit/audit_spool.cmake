# issue 14: the local audit spool (src/core/untrusted_spool.c, audit_spool.c):
# write, replay in order with original times, tamper, truncate, cap.
mt_add_unit_test(test_audit_spool SOURCES ${MT_TEST_DIR}/unit/test_audit_spool.c
                 LIBS mt_core mt_crypto mt_tee PkgConfig::SQLITE Threads::Threads)
target_include_directories(test_audit_spool PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
