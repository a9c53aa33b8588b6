# Fuzz target for the ONNX engine's loader and shape inference (owned by src/nn).
# Seeds in fuzz/corpus/nn_load/ were written by tests/nn/nn_seedgen (hand-built models).
if(MT_NN_BUILT)
  mt_add_fuzzer(nn_load SOURCES ${MT_FUZZ_DIR}/nn_load.c LIBS mt_nn)
endif()
