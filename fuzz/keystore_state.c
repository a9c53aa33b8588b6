/* Fuzz target: the plaintext of the KeyStore's sealed state file
 * (mt_keystore_parse_state): versions, keys, release policy lists, release
 * signers (PEM bundle); and the release-policy change document auditors
 * sign (mt_keystore_parse_release_doc, read from a file by `mesatee policy
 * sign`). The
 * envelope is AES-GCM under a TEE key, so only this reader sees bytes the
 * host could not forge without that key; it is fuzzed all the same. */
#include <stddef.h>
#include <stdint.h>

#include "mt_keystore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    (void)mt_keystore_parse_state((const char *)data, size, &err);
    (void)mt_keystore_parse_release_doc((const char *)data, size, &err);
    return 0;
}
