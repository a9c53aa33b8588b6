# Fuzz target for audit checkpoints (a document clients and auditors read
# back from files) and the checkpoint route's query (owned by the core module).
mt_add_fuzzer(audit_checkpoint SOURCES ${MT_FUZZ_DIR}/audit_checkpoint.c LIBS mt_core)
target_include_directories(replay_audit_checkpoint PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
if(MT_FUZZ)
  target_include_directories(fuzz_audit_checkpoint PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
endif()
