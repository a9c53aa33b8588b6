# Fuzz target for the local audit spool file (src/core/untrusted_spool.c):
# host-disk bytes read back by the daemon (docs/formats.md "Audit spool file").
mt_add_fuzzer(audit_spool SOURCES ${MT_FUZZ_DIR}/audit_spool.c LIBS mt_core)
target_include_directories(replay_audit_spool PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
if(MT_FUZZ)
  target_include_directories(fuzz_audit_spool PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
endif()
