/* The kernels of kernels.c again, as nv_k_* and compiled with
 * -fno-tree-vectorize (bench/wasm/CMakeLists.txt): a second native anchor.
 * gcc -O2 vectorises the matrix and fmatmul loops natively, which a scalar
 * interpreter cannot; bench_wasm prints both ratios, labelled. */
#define k_list nv_k_list
#define k_matrix nv_k_matrix
#define k_state nv_k_state
#define k_mix nv_k_mix
#define k_fib nv_k_fib
#define k_sieve nv_k_sieve
#define k_sha256 nv_k_sha256
#define k_fmatmul nv_k_fmatmul
#include "kernels.c"
