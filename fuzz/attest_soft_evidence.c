/* Fuzz target: the soft evidence reader and verifier (mt_soft). */
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_soft.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    mt_soft_evidence e;
    (void)mt_soft_evidence_parse(data, size, &e, &err);
    mt_attest_claims c;
    if (mt_attest_verify(MT_ATTEST_SOFT, data, size, NULL, 1700000000, &c, &err) == MT_OK)
        c.n_measurements = 0;
    return 0;
}
