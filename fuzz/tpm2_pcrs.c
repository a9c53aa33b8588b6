/* Fuzz target: the tpm2-tools PCR dump reader. */
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_tpm2.h"
#include "mt_tpm2_azure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mt_tpm2_pcrs p;
    (void)mt_tpm2_pcrs_parse_tools(data, size, &p, NULL);
    return 0;
}
