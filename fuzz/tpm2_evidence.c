/* Fuzz target: the mesatee TPM evidence container and MT_ATTEST_TPM2. */
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_tpm2.h"
#include "mt_tpm2_azure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mt_tpm2_evidence ev;
    (void)mt_tpm2_evidence_parse(data, size, &ev, NULL);
    /* The whole verifier front end, with a pinned AK that is a TPMT_PUBLIC. */
    static const uint8_t ak[] = {0x00, 0x23, 0x00, 0x0b, 0x00, 0x05, 0x00, 0x72, 0x00, 0x00};
    mt_attest_collateral *c = mt_attest_collateral_new();
    if (c && mt_attest_collateral_add(c, MT_COLL_TPM2_AK, ak, sizeof ak, NULL) == MT_OK) {
        static mt_attest_claims cl;
        if (mt_attest_verify(MT_ATTEST_TPM2, data, size, c, 1800000000, &cl, NULL) == MT_OK)
            cl.n_measurements = 0; /* valid evidence is fine too */
    }
    mt_attest_collateral_free(c);
    return 0;
}
