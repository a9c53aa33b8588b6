# oneDNN backend of the ONNX engine (src/nn/nn_dnnl.c): every operator against a
# naive double-precision reference, cache behaviour, bad parameters, thread count.
if(TARGET mesatee_nn_dnnl)
  mt_add_unit_test(test_nn_dnnl SOURCES ${MT_TEST_DIR}/unit/test_nn_dnnl.c
                   LIBS mesatee_nn_dnnl m)
  set_tests_properties(test_nn_dnnl PROPERTIES TIMEOUT 120)
endif()
