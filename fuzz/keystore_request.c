/* Fuzz target: the KeyStore release request reader
 * (mt_keystore_parse_request): JSON, base64 certificate, sizes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mt_keystore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    uint8_t *cert = NULL;
    size_t len = 0;
    if (mt_keystore_parse_request((const char *)data, size, &cert, &len, &err) == MT_OK &&
        (!cert || len == 0))
        __builtin_trap(); /* success always yields a certificate */
    free(cert);
    return 0;
}
