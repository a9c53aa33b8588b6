/* mt_vcache: a bounded cache of verified attested-TLS peers, so that a
 * relying party that sees the same RA-TLS certificate again (every handshake
 * with the same gateway or executor) does not parse it, verify its
 * self-signature and verify its evidence again.
 *
 * Key: SHA-256 over a domain tag, the accepted forms, the SHA-256 of the
 * certificate's exact bytes (DER or PEM, as given) and the digest of the
 * policy it was checked against (mt_policy: its document, base directory,
 * collateral and enrolment bytes and expected values), so a certificate that
 * differs in one byte, or any change of policy, misses.
 * Value: the claims and mt_ratls_info that mt_ratls_verify_cert returned.
 * An entry is used only at a time `now` with verified_at <= now < expires,
 * where expires is the earliest of verified_at + TTL, the certificate's
 * notAfter and claims.valid_until (the collateral's end: PCK chain and CRL
 * validity, TCB info / QE identity nextUpdate, VCEK chain, Nitro chain);
 * a result whose valid_until is 0 (cannot be told) is never stored. Beyond
 * the capacity the least recently used entry is evicted. Only successes are
 * stored (the caller puts after a full verification and policy check); a
 * failure is verified in full every time. The cache never replaces the TLS
 * handshake's proof of possession of the certificate's key (checked by
 * OpenSSL in every handshake); it only skips re-verifying the certificate.
 *
 * Ownership: opaque handle, _new/_free (free(NULL) no-op); entries are
 * copies. The process-wide instance (mt_vcache_global) is used by
 * mt_policy_verify_cert and lives until exit.
 * Thread-safety: every function takes the handle's mutex; a handle may be
 * shared by any number of threads. Failure: a cache that cannot allocate
 * simply does not remember (get then misses). */
#ifndef MT_VCACHE_H
#define MT_VCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_ratls.h"

#define MT_VCACHE_DEFAULT_CAP 256u
#define MT_VCACHE_DEFAULT_TTL_S 600
#define MT_VCACHE_MAX_CAP 65536u

typedef struct mt_vcache mt_vcache;

typedef struct mt_vcache_stats {
    uint64_t hits;    /* gets answered from an entry */
    uint64_t misses;  /* gets that found no usable entry (absent or expired) */
    uint64_t stored;  /* puts that stored an entry */
    uint64_t evicted; /* entries dropped for capacity */
    uint64_t expired; /* entries dropped because their time was over */
    size_t entries;   /* entries now held */
} mt_vcache_stats;

/* A cache of at most cap entries (1..MT_VCACHE_MAX_CAP; 0 disables it) with
 * the given TTL in seconds (>= 1). NULL on allocation failure or bad values. */
mt_vcache *mt_vcache_new(size_t cap, int64_t ttl_s);
void mt_vcache_free(mt_vcache *c);
/* The process-wide cache (MT_VCACHE_DEFAULT_CAP, MT_VCACHE_DEFAULT_TTL_S);
 * never NULL. */
mt_vcache *mt_vcache_global(void);
/* Forgets every entry, zeroes the counters and sets capacity (0 disables) and TTL (>= 1 s).
 * MT_EINVAL for values out of range (nothing changed). */
mt_status mt_vcache_configure(mt_vcache *c, size_t cap, int64_t ttl_s, mt_err *err);

/* The key of (certificate bytes, forms, policy digest). */
void mt_vcache_key(const uint8_t *cert, size_t len, unsigned forms,
                   const uint8_t policy_digest[32], uint8_t key[32]);
/* Copies the entry of key into *claims and *info (may be NULL) when one is
 * usable at now (see above); an expired entry is dropped. */
bool mt_vcache_get(mt_vcache *c, const uint8_t key[32], int64_t now, mt_attest_claims *claims,
                   mt_ratls_info *info);
/* Remembers a successful verification done at verified_at. Does nothing
 * when the result cannot be reused (valid_until 0, or its expiry is not
 * after verified_at) or the cache is disabled. */
void mt_vcache_put(mt_vcache *c, const uint8_t key[32], int64_t verified_at,
                   const mt_attest_claims *claims, const mt_ratls_info *info);
/* Drops the entry of key, if any. */
void mt_vcache_drop(mt_vcache *c, const uint8_t key[32]);
void mt_vcache_stats_get(mt_vcache *c, mt_vcache_stats *out);

#endif
