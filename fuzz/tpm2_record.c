/* Fuzz target: the TPM enrolment record reader (mt_tpm2_record_verify), which
 * policies run at load on files named by tpm2_enrolments. */
#include <stddef.h>
#include <stdint.h>

#include "mt_tpm2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t enrollers[1][32] = {{0x5a}};
    static mt_tpm2_record rec;
    if (mt_tpm2_record_verify(data, size, enrollers, 1, NULL, 0, &rec, NULL) == MT_OK)
        rec.enrolled_at = 0; /* a valid record is fine too */
    return 0;
}
