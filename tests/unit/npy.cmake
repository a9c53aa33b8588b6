# The .npy reader of the onnx_infer built-in (src/executor/npy.c): accepted forms,
# every refusal, the header writer's round trip.
mt_add_unit_test(test_npy SOURCES ${MT_TEST_DIR}/unit/test_npy.c LIBS mt_worker_lib)
