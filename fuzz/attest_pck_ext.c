/* Fuzz target: the DER reader of PCK certificate SGX extensions. */
#include <stddef.h>
#include <stdint.h>

#include "mt_dcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_pck_ext x;
    mt_err err;
    (void)mt_dcap_pck_ext_parse(data, size, &x, &err);
    return 0;
}
