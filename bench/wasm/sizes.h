/* Kernel sizes shared by the native driver and the wasm builds: each is set
 * so the native run takes some tens of milliseconds. */
#ifndef MT_BENCH_SIZES_H
#define MT_BENCH_SIZES_H
#define KS_MIX 300
#define KS_LIST 400
#define KS_MATRIX 600
#define KS_STATE 1500
#define KS_FIB 32
#define KS_SIEVE 10
#define KS_SHA256 1200
#define KS_FMATMUL 500
#endif
