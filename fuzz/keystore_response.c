/* Fuzz target: the KeyStore release response reader (ks_release_decrypt)
 * with a fixed node key and certificate made once: JSON, base64, the
 * ephemeral SubjectPublicKeyInfo, sizes; no input decrypts (the key
 * agreement needs the node's certificate, and the tag must verify). */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ks_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *g_key;
static uint8_t g_cert[] = "not a certificate: only hashed";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_key && !(g_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")))
        abort();
    mt_err err;
    uint8_t *plain = NULL;
    size_t pl = 0;
    uint32_t cur = 0;
    if (ks_release_decrypt(g_key, g_cert, sizeof g_cert, (const char *)data, size, &plain, &pl,
                           &cur, &err) == MT_OK)
        __builtin_trap(); /* nobody outside can encrypt to a key made here */
    free(plain);
    return 0;
}
