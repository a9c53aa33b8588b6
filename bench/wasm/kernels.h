/* kernels: CPU-bound benchmark kernels compiled both natively and to wasm32
 * from this same source (kernels.c). Each takes a size and returns a 32-bit
 * checksum that must be identical on every target. Freestanding: no libc
 * beyond what the compiler may call for memset/memcpy. */
#ifndef MT_BENCH_KERNELS_H
#define MT_BENCH_KERNELS_H

#include <stdint.h>

uint32_t k_list(uint32_t iters);   /* linked list: build, search, reverse, merge sort */
uint32_t k_matrix(uint32_t iters); /* integer matrix add/scale/multiply, bit extraction */
uint32_t k_state(uint32_t iters);  /* state machine that classifies number tokens */
uint32_t k_mix(uint32_t iters);    /* the three above, CoreMark-like, CRC-combined */
uint32_t k_fib(uint32_t n);        /* recursive Fibonacci */
uint32_t k_sieve(uint32_t iters);  /* sieve of Eratosthenes up to 1,000,000 */
uint32_t k_sha256(uint32_t iters); /* SHA-256 of a 16 KiB buffer, chained */
uint32_t k_fmatmul(uint32_t iters); /* f64 matrix multiply, 64x64, repeated */

#endif
