/* Fuzz target: the Azure HCL report reader. */
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_tpm2.h"
#include "mt_tpm2_azure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_hcl_report h;
    (void)mt_hcl_report_parse(data, size, &h, NULL);
    return 0;
}
