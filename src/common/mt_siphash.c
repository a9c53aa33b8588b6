/* mt_siphash: key helpers (contract and the PRF itself: mt_siphash.h). */
#include "mt_siphash.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/random.h>
#include <sys/types.h>

#include "mt_util.h"

mt_siphash_key mt_siphash_key_from(const uint8_t bytes[16])
{
    mt_siphash_key k = {mt_siphash_le64(bytes), mt_siphash_le64(bytes + 8)};
    return k;
}

static _Atomic bool fail_keys; /* mt_siphash_test_fail_keys */

void mt_siphash_test_fail_keys(bool on)
{
    atomic_store_explicit(&fail_keys, on, memory_order_relaxed);
}

bool mt_siphash_key_random(mt_siphash_key *key)
{
    key->k0 = key->k1 = 0;
    if (atomic_load_explicit(&fail_keys, memory_order_relaxed))
        return false;
    uint8_t b[16];
    ssize_t r;
    /* flags 0: blocks until the kernel's pool is initialised (only early at boot) instead
     * of failing with EAGAIN; 16 bytes come whole or not at all (at most 256 do) */
    do
        r = getrandom(b, sizeof b, 0);
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof b) {
        mt_wipe(b, sizeof b);
        return false;
    }
    *key = mt_siphash_key_from(b);
    mt_wipe(b, sizeof b);
    return true;
}
