/* Fuzz target: the TPMS_ATTEST (quote) reader. */
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_tpm2.h"
#include "mt_tpm2_azure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_tpm2_quote q;
    (void)mt_tpm2_quote_parse(data, size, &q, NULL);
    return 0;
}
