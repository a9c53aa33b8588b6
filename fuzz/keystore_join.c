/* Fuzz target: the KeyStore join's readers of outside bytes (ks_join.c):
 * the join answer (mt_ks_join_parse_answer: JSON, version/op, base64, the
 * ephemeral SubjectPublicKeyInfo, sizes; no input decrypts, as in
 * keystore_response) when the first byte is even, else the --keystore-join
 * URL (mt_ks_join_parse_url, NUL-terminated copy of the rest); the
 * answer's optional "db_cert" (mt_ks_join_answer_db_cert) as well. */
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_ks_join.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *g_key;
static uint8_t g_cert[] = "not a certificate: only hashed";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    mt_err err;
    if ((data[0] & 1) == 0) {
        if (!g_key && !(g_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")))
            abort();
        uint8_t plat[MT_KS_JOIN_PLATFORM];
        mt_keyring *kr = NULL;
        if (mt_ks_join_parse_answer(g_key, g_cert, sizeof g_cert, (const char *)data + 1,
                                    size - 1, plat, &kr, &err) == MT_OK)
            __builtin_trap(); /* nobody outside can encrypt to a key made here */
        if (kr)
            __builtin_trap();
        char *pem = NULL;
        if (mt_ks_join_answer_db_cert((const char *)data + 1, size - 1, &pem, &err) == MT_OK &&
            pem && strncmp(pem, "-----BEGIN CERTIFICATE-----", 27) != 0)
            __builtin_trap();
        free(pem);
        return 0;
    }
    char *url = malloc(size);
    if (!url)
        return 0;
    memcpy(url, data + 1, size - 1);
    url[size - 1] = '\0';
    char host[256], port[8];
    if (mt_ks_join_parse_url(url, host, port, &err) == MT_OK) {
        /* what it accepted: a host that fits and a port 1..65535 */
        if (strlen(host) == 0 || strlen(host) > 253 || atoi(port) < 1 || atoi(port) > 65535)
            __builtin_trap();
    }
    free(url);
    return 0;
}
