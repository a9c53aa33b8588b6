/* Fuzz target: the TPMT_PUBLIC reader, key construction and name. */
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_tpm2.h"
#include "mt_tpm2_azure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_tpm2_public p;
    if (mt_tpm2_public_parse(data, size, &p, NULL) == MT_OK) {
        EVP_PKEY *k = NULL;
        if (mt_tpm2_public_key(&p, &k, NULL) == MT_OK)
            EVP_PKEY_free(k);
        uint8_t name[66];
        size_t nl = 0;
        (void)mt_tpm2_public_name(data, size, name, &nl, NULL);
    }
    return 0;
}
