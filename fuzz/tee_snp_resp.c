/* Fuzz target: the /dev/sev-guest report response reader
 * (mt_snp_report_resp_parse, src/tee/tee_hw.c). */
#include <stddef.h>
#include <stdint.h>

#include "tee_hw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    const uint8_t *rep = NULL;
    if (mt_snp_report_resp_parse(data, size, &rep, &err) == MT_OK &&
        (rep < data || rep + MT_SNP_REPORT_LEN > data + size))
        __builtin_trap();
    return 0;
}
