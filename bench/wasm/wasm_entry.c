/* The wasm side of one kernel: exports run() -> checksum, with the kernel
 * and its size chosen at compile time (-DKERNEL=k_fib -DKSIZE=KS_FIB). */
#include "kernels.h"
#include "sizes.h"

__attribute__((export_name("run"))) uint32_t run(void);
uint32_t run(void)
{
    return KERNEL(KSIZE);
}
