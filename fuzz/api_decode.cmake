# Fuzz target for the core's request-body decoders (owned by the core module).
mt_add_fuzzer(api_decode SOURCES ${MT_FUZZ_DIR}/api_decode.c LIBS mt_core)
target_include_directories(replay_api_decode PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
if(MT_FUZZ)
  target_include_directories(fuzz_api_decode PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
endif()
