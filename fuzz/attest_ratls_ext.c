/* Fuzz target: the RA-TLS extension value and claims readers (mt_ratls), and
 * the certificate path (DER) of mt_ratls_verify_cert. */
#include <stddef.h>
#include <stdint.h>

#include "mt_ratls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    mt_ratls_ext e;
    mt_ratls_claims c;
    if (mt_ratls_ext_parse(data, size, &e, &err) == MT_OK)
        (void)mt_ratls_claims_parse(e.claims, e.claims_len, &c, &err);
    (void)mt_ratls_claims_parse(data, size, &c, &err);
    mt_attest_claims ac;
    if (mt_ratls_verify_cert(data, size, MT_RATLS_FORM_CCC | MT_RATLS_FORM_LEGACY, NULL,
                             1700000000, &ac, NULL, &err) == MT_OK)
        ac.n_measurements = 0;
    return 0;
}
