/* Fuzz target: the TPMT_SIGNATURE reader. */
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_tpm2.h"
#include "mt_tpm2_azure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_tpm2_sig s;
    (void)mt_tpm2_sig_parse(data, size, &s, NULL);
    return 0;
}
