/* Fuzz target: the reader of the KeyStore's TPM sealed blob
 * (<data-dir>/keystore.tpm, host storage: TPM2B_PUBLIC || TPM2B_PRIVATE),
 * mt_tpm2_sealed_blob_check, which unseal runs before the blob reaches the
 * TPM. In a build without tss2 it only answers MT_EUNAVAIL. */
#include <stddef.h>
#include <stdint.h>

#include "tee_tpm2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    (void)mt_tpm2_sealed_blob_check(data, size, &err);
    return 0;
}
