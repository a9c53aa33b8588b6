# ONNX engine (src/nn, docs/nn.md): unit/bad-input tests and the conformance runner
# over Debian's libonnx-testdata node tests (skips when the data is absent).
if(MT_NN_BUILT)
  add_executable(nn_conformance ${MT_TEST_DIR}/nn/nn_conformance.c)
  target_link_libraries(nn_conformance PRIVATE mt_nn)
  set(MT_ONNX_NODE_DATA "/usr/share/libonnx-testdata/data/node" CACHE PATH "ONNX node test data")
  add_test(NAME nn_conformance COMMAND nn_conformance ${MT_ONNX_NODE_DATA}
           ${MT_TEST_DIR}/nn/conformance.floor)
  set_tests_properties(nn_conformance PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  # the small torch-exported models of the same package, each with its own floor
  foreach(set pytorch-converted pytorch-operator)
    add_test(NAME nn_conformance_${set} COMMAND nn_conformance
             ${MT_ONNX_NODE_DATA}/../${set} ${MT_TEST_DIR}/nn/conformance-${set}.floor)
    set_tests_properties(nn_conformance_${set} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  endforeach()
endif()
if(MT_NN_BUILT AND CMOCKA_FOUND)
  mt_add_unit_test(test_nn SOURCES ${MT_TEST_DIR}/unit/test_nn.c ${MT_TEST_DIR}/nn/onnx_build.c
                   LIBS mt_nn)
  target_include_directories(test_nn PRIVATE ${MT_TEST_DIR}/nn)
endif()
if(MT_NN_BUILT)
  # writes the nn_load fuzz seeds (fuzz/corpus/nn_load/); not a test
  add_executable(nn_seedgen ${MT_TEST_DIR}/nn/nn_seedgen.c ${MT_TEST_DIR}/nn/onnx_build.c)
  target_link_libraries(nn_seedgen PRIVATE mt_nn)
  target_include_directories(nn_seedgen PRIVATE ${MT_TEST_DIR}/nn)
endif()
if(MT_NN_BUILT)
  # real models (docs/nn.md "Real models"): torchvision exports at test time compared
  # with torch's output; skips (77) without python3-torch/python3-torchvision.
  add_executable(nn_torch_run ${MT_TEST_DIR}/nn/nn_torch_run.c)
  target_link_libraries(nn_torch_run PRIVATE mt_nn m)
  add_test(NAME nn_torch_models COMMAND /usr/bin/python3 ${MT_TEST_DIR}/nn/torch_models.py
           $<TARGET_FILE:nn_torch_run>)
  set_tests_properties(nn_torch_models PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                       ENVIRONMENT "OMP_WAIT_POLICY=passive")
endif()
