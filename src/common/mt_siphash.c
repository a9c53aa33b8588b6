/* mt_siphash: key helpers (contract and the PRF itself: mt_siphash.h). */
#include "mt_siphash.h"

#include <sys/random.h>
#include <sys/types.h>

mt_siphash_key mt_siphash_key_from(const uint8_t bytes[16])
{
    mt_siphash_key k = {mt_siphash_le64(bytes), mt_siphash_le64(bytes + 8)};
    return k;
}

bool mt_siphash_key_random(mt_siphash_key *key)
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
        key->k0 = key->k1 = 0;
        return false;
    }
    *key = mt_siphash_key_from(b);
    memset(b, 0, sizeof b);
    return true;
}
