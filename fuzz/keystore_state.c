/* Fuzz target: the plaintext of the KeyStore's sealed state file
 * (mt_keystore_parse_state): versions, keys, release policy lists, release
 * signers (PEM bundle); and the release-policy change document auditors
 * sign (mt_keystore_parse_release_doc, read from a file by `mesatee policy
 * sign`, also an escrow's document); and the release policy as the server shows it, which `mesatee admin
 * release draft` edits (mt_keystore_release_draft, mt_keystore_signers_draft,
 * mt_keystore_escrow_draft)
 * and mt_keystore_hw_decide checks claims against. The
 * envelope is AES-GCM under a TEE key, so only this reader sees bytes the
 * host could not forge without that key; it is fuzzed all the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mt_escrow.h"
#include "mt_keystore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    (void)mt_keystore_parse_state((const char *)data, size, &err);
    (void)mt_keystore_parse_release_doc((const char *)data, size, &err);
    char *doc = NULL;
    if (mt_keystore_release_draft((const char *)data, size, size & 1, "min_svn",
                                  size & 1 ? "isv_svn=3" : "isv_svn", &doc, &err) == MT_OK)
        free(doc);
    doc = NULL;
    if (mt_keystore_release_draft((const char *)data, size, true, "isv_prod_id", "7", &doc,
                                  &err) == MT_OK)
        free(doc);
    static mt_attest_claims claims; /* zero: no measurement, no SVN */
    (void)mt_keystore_hw_decide((const char *)data, size, &claims, &err);
    /* the escrow document auditors sign (`admin keystore escrow draft`) */
    static const char pub[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEr2uWA7BiKy54zNgUabQ9N5JM2Zco\n"
                              "dOlsj7rXrjnOEGKHd1Vqq4dSnD9syvhQ0xRKpMF3/ZcdhBKvb1WqeAonJw==\n"
                              "-----END PUBLIC KEY-----\n";
    const char *pems[] = {pub};
    size_t lens[] = {sizeof pub - 1};
    doc = NULL;
    if (mt_keystore_escrow_draft((const char *)data, size, pems, lens, 1, 1, &doc, &err) ==
        MT_OK)
        free(doc);
    return 0;
}
