# Checks spec_runner's exit codes (issue 8, item 17): absent vectors -> 77
# (CTest "skipped"), never 0; a failing command -> 1 even with floor 0.
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${CMAKE_COMMAND} -E env MESATEE_WASM_SPEC_DIR=${WORK}/absent
                ${RUNNER} --work ${WORK}/w RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 77)
  message(FATAL_ERROR "absent vectors: exit ${rc}, expected 77:\n${out}")
endif()
file(MAKE_DIRECTORY ${WORK}/empty)
execute_process(COMMAND ${CMAKE_COMMAND} -E env MESATEE_WASM_SPEC_DIR=${WORK}/empty
                ${RUNNER} --work ${WORK}/w RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 77)
  message(FATAL_ERROR "no .wast files: exit ${rc}, expected 77:\n${out}")
endif()
find_program(WAST2JSON wast2json)
if(WAST2JSON)
  file(MAKE_DIRECTORY ${WORK}/bad)
  file(WRITE ${WORK}/bad/bad.wast
       "(module (func (export \"f\") (result i32) (i32.const 1)))\n"
       "(assert_return (invoke \"f\") (i32.const 1))\n"
       "(assert_return (invoke \"f\") (i32.const 2))\n")
  execute_process(COMMAND ${CMAKE_COMMAND} -E env MESATEE_WASM_SPEC_DIR=${WORK}/bad
                  ${RUNNER} --floor 0 --work ${WORK}/w RESULT_VARIABLE rc OUTPUT_VARIABLE out)
  if(NOT rc EQUAL 1)
    message(FATAL_ERROR "one failed command: exit ${rc}, expected 1:\n${out}")
  endif()
endif()
