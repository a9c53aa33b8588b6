/* Fuzz target: the transit key backup reader (mt_tb_decode,
 * src/keystore/transit/mt_transit_backup.h), the input of
 * POST /v1/transit/restore. Each input is read as it is and again with its
 * trailing SHA-256 recomputed, so that the fuzzer gets past the checksum to
 * the fields. Never a crash; an accepted backup encodes back to the same
 * bytes, and each version's material is then read as a key of the backup's
 * type as the restorer does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "mt_secmem.h"
#include "mt_transit.h"
#include "mt_transit_backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size)
{
    mt_tb_key k;
    mt_err err;
    if (mt_tb_decode(data, size, &k, &err) != MT_OK) {
        if (k.v || k.n)
            abort(); /* a refused backup leaves nothing behind */
        return;
    }
    uint8_t *again = NULL;
    size_t n = 0;
    if (mt_tb_encode(&k, &again, &n, &err) != MT_OK || n != size || memcmp(again, data, n))
        abort();
    mt_secmem_free(again);
    for (size_t i = 0; i < k.n; i++) {
        mt_tk_key *key = NULL;
        if (mt_tk_key_from_material(k.type, k.v[i].material, k.v[i].len, &key, &err) == MT_OK)
            mt_tk_key_free(key);
    }
    mt_tb_key_clear(&k);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    one(data, size);
    if (size >= SHA256_DIGEST_LENGTH) {
        uint8_t *fixed = malloc(size);
        if (!fixed)
            return 0;
        memcpy(fixed, data, size);
        SHA256(fixed, size - SHA256_DIGEST_LENGTH, fixed + size - SHA256_DIGEST_LENGTH);
        one(fixed, size);
        free(fixed);
    }
    return 0;
}
