/* Fuzz target: the plaintext of the KeyStore's sealed state file
 * (mt_keystore_parse_state): versions, keys, release policy lists, release
 * signers (PEM bundle); and the release-policy change document auditors
 * sign (mt_keystore_parse_release_doc, read from a file by `mesatee policy
 * sign`); and the release policy as the server shows it, which `mesatee admin
 * release draft` edits (mt_keystore_release_draft, mt_keystore_signers_draft)
 * and mt_keystore_hw_decide checks claims against. The
 * envelope is AES-GCM under a TEE key, so only this reader sees bytes the
 * host could not forge without that key; it is fuzzed all the same. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

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
    return 0;
}
