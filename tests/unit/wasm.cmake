# Tests of the wasm engine (owned by wasm): unit tests and the spec runner.
mt_add_unit_test(test_wasm SOURCES ${MT_TEST_DIR}/unit/test_wasm.c LIBS mt_wasm)

# The official core test suite. Fails when any command fails or fewer commands
# pass than the floor (the count reached when it was last raised); reported as
# skipped (exit 77) when ../shared or wabt are absent. assert_invalid/malformed
# refused with another message than the spec's are counted and listed, not
# failed (--strict-messages would fail them).
set(MT_WASM_SPEC_FLOOR 27356)  # all 27,356 binary-module commands of the 90 files
add_executable(wasm_spec_runner ${MT_TEST_DIR}/wasm/spec_runner.c)
target_compile_definitions(wasm_spec_runner PRIVATE
  MT_WASM_SPEC_DIR="${MT_SHARED_DIR}/testvectors/wasm-spec")
target_link_libraries(wasm_spec_runner PRIVATE mt_wasm PkgConfig::JANSSON)
add_test(NAME wasm_spec COMMAND wasm_spec_runner --floor ${MT_WASM_SPEC_FLOOR}
         --work ${CMAKE_BINARY_DIR}/wasm-spec-work)
set_tests_properties(wasm_spec PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77)

# Our own .wast tests of the translator's fused instructions (operands from
# locals and constants, local.set/tee destinations, compare-and-branch, fused
# loads and stores, two-load float binops, returns written in place,
# out-of-bounds traps, OP_SIG xor chains of shifts/rotations, LOAD_LK_D and
# LOAD_LLA_D, OP_F2L, OP_COPYN, OP_STORE_LLAK): every command must pass.
add_test(NAME wasm_fused COMMAND ${CMAKE_COMMAND} -E env
         MESATEE_WASM_SPEC_DIR=${MT_TEST_DIR}/wasm/ours
         $<TARGET_FILE:wasm_spec_runner> --floor 1400 --work ${CMAKE_BINARY_DIR}/wasm-fused-work)
set_tests_properties(wasm_fused PROPERTIES SKIP_RETURN_CODE 77)

# The runner itself: with no vectors it must report "skipped" (77), never pass.
add_test(NAME wasm_spec_runner_skips COMMAND ${CMAKE_COMMAND}
         -DRUNNER=$<TARGET_FILE:wasm_spec_runner> -DWORK=${CMAKE_BINARY_DIR}/wasm-skip-work
         -P ${MT_TEST_DIR}/wasm/runner_skips.cmake)
