/* Fuzz target: the KeyStore escrow file (mt_escrow_parse, src/keystore/
 * ks_escrow.c), read by `mesatee serve --keystore-recover FILE` from outside
 * (docs/formats.md "KeyStore escrow file"). A parsed file is also opened
 * with a fixed P-256 key (KEY), the recipient of the seed escrows in
 * fuzz/corpus/keystore_escrow, so that share decryption, the combination and
 * the records' checks are reached. Not secret: a test key. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mt_escrow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char KEY[] = "-----BEGIN PRIVATE KEY-----\n"
                          "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5xZJ6uI/Ac950+2R\n"
                          "3mIz+kCjbnZ5u/i/iPHNhzHpxzGhRANCAASva5YDsGIrLnjM2BRptD03kkzZlyh0\n"
                          "6WyPuteuOc4QYod3VWqrh1KcP2zK+FDTFEqkwXf9lx2EEq9vVap4Cicn\n"
                          "-----END PRIVATE KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    mt_escrow *e = NULL;
    if (mt_escrow_parse((const char *)data, size, &e, &err) == MT_OK) {
        const char *keys[1] = {KEY};
        size_t lens[1] = {sizeof KEY - 1};
        uint8_t *rec = NULL;
        size_t rl = 0;
        uint32_t cur = 0;
        if (mt_escrow_open(e, keys, lens, 1, &rec, &rl, &cur, &err) == MT_OK) {
            if (rl == 0 || rl % MT_ESCROW_RECORD)
                __builtin_trap(); /* open returns whole records only */
            free(rec);
        }
        mt_escrow_free(e);
    }
    return 0;
}
