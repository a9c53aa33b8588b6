/* Fuzz target: the RA-TLS extension value and claims readers (mt_ratls), the
 * certificate path (DER) of mt_ratls_verify_cert, and the self-signature
 * check of any certificate OpenSSL reads (mt_x5_verify_self_sig: the Nettle
 * P-384 path and its TBSCertificate walk). */
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_ratls.h"
#include "mt_x5.h"

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
    const uint8_t *p = data;
    X509 *x = d2i_X509(NULL, &p, (long)size);
    if (x)
        (void)mt_x5_verify_self_sig(x);
    X509_free(x);
    ERR_clear_error();
    return 0;
}
