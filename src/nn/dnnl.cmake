# oneDNN backend of the ONNX engine (src/nn/nn_dnnl.c, docs/nn.md "oneDNN backend").
# Debian's libdnnl-dev (2.6, OpenMP runtime) ships no pkg-config file; its CMake package
# drags in OpenCL, so the header and library are found directly.
find_path(DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.h)
find_library(DNNL_LIBRARY dnnl)
if(DNNL_INCLUDE_DIR AND DNNL_LIBRARY)
  option(MESATEE_WITH_DNNL "Build the oneDNN backend of the ONNX engine" ON)
else()
  set(MESATEE_WITH_DNNL OFF)
  message(STATUS "oneDNN (libdnnl-dev) not found: the ONNX engine runs on its reference kernels only")
endif()
if(MESATEE_WITH_DNNL)
  add_library(mesatee_nn_dnnl STATIC ${CMAKE_CURRENT_LIST_DIR}/nn_dnnl.c)
  target_include_directories(mesatee_nn_dnnl PUBLIC ${CMAKE_CURRENT_LIST_DIR})
  target_include_directories(mesatee_nn_dnnl SYSTEM PRIVATE ${DNNL_INCLUDE_DIR})
  target_compile_definitions(mesatee_nn_dnnl PUBLIC MT_NN_HAVE_DNNL=1)
  target_link_libraries(mesatee_nn_dnnl PUBLIC ${DNNL_LIBRARY} m ${CMAKE_DL_LIBS})
endif()
