/* mt_siphash: SipHash, the keyed pseudorandom function of Aumasson and
 * Bernstein ("SipHash: a fast short-input PRF", INDOCRYPT 2012), written
 * from that paper's specification; the paper's test vector and OpenSSL's
 * independent implementation check it (tests/unit/test_siphash.c).
 *
 * Contract.
 * - What it is for: every hash table whose keys an untrusted party chooses
 *   (export names of a user's wasm module, CSV/set-operation keys, PSI ids,
 *   tensor names of an ONNX model)
 *   hashes them with mt_siphash13 under a key drawn at random per table
 *   (or per task), so that the party cannot find colliding keys without the
 *   key and cannot force the tables' quadratic case. A keyed non-PRF (FNV-1a
 *   or a multiply-fold hash with a random seed mixed in) does not give that:
 *   both have collisions that hold for every seed.
 * - mt_siphash24 is SipHash-2-4 (the paper's recommended, conservative
 *   variant: use it where the output is a MAC or leaves the process);
 *   mt_siphash13 is SipHash-1-3 (one compression and three finalisation
 *   rounds: the variant Rust's and CPython's hash tables use, enough for a
 *   table whose outputs are never shown to the party). Both return the
 *   64-bit output; the 16-byte key is k0 = bytes 0..7, k1 = bytes 8..15,
 *   little-endian, as in the paper.
 * - Pure functions of (key, bytes): no allocation, no failure, thread-safe.
 *   They are inline (hot loops call them per id).
 * - mt_siphash_key_random fills a key from getrandom(2) directly (not
 *   OpenSSL's RNG: it is also called after a worker's seccomp filter is
 *   locked, where a first use of OpenSSL's RNG could open files), blocking
 *   until the kernel's pool is initialised. On failure (the call refused)
 *   it returns false and the key is all zero: callers must then refuse
 *   their input (a table keyed so is correct but exposed), never use it. */
#ifndef MT_SIPHASH_H
#define MT_SIPHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct mt_siphash_key {
    uint64_t k0, k1;
} mt_siphash_key;

/* The key from 16 bytes, k0 and k1 little-endian (the paper's convention). */
mt_siphash_key mt_siphash_key_from(const uint8_t bytes[16]);

/* A random key from getrandom(2); false (key all zero) when that fails. */
bool mt_siphash_key_random(mt_siphash_key *key);

/* Tests only: while on, mt_siphash_key_random fails (as when getrandom is refused). */
void mt_siphash_test_fail_keys(bool on);

#define MT_SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define MT_SIP_ROUND(v0, v1, v2, v3)                                                               \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = MT_SIP_ROTL(v1, 13);                                                                  \
        v1 ^= v0;                                                                                  \
        v0 = MT_SIP_ROTL(v0, 32);                                                                  \
        v2 += v3;                                                                                  \
        v3 = MT_SIP_ROTL(v3, 16);                                                                  \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = MT_SIP_ROTL(v3, 21);                                                                  \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = MT_SIP_ROTL(v1, 17);                                                                  \
        v1 ^= v2;                                                                                  \
        v2 = MT_SIP_ROTL(v2, 32);                                                                  \
    } while (0)

static inline uint64_t mt_siphash_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

/* SipHash-c-d of p[0..n) under key (c compression rounds per 8-byte word,
 * d finalisation rounds), as specified in the paper's section 2. */
static inline uint64_t mt_siphash_cd(const mt_siphash_key *key, const void *p, size_t n, int c,
                                     int d)
{
    const uint8_t *m = (const uint8_t *)p;
    uint64_t v0 = key->k0 ^ UINT64_C(0x736f6d6570736575);
    uint64_t v1 = key->k1 ^ UINT64_C(0x646f72616e646f6d);
    uint64_t v2 = key->k0 ^ UINT64_C(0x6c7967656e657261);
    uint64_t v3 = key->k1 ^ UINT64_C(0x7465646279746573);
    size_t full = n & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t w = mt_siphash_le64(m + i);
        v3 ^= w;
        for (int r = 0; r < c; r++)
            MT_SIP_ROUND(v0, v1, v2, v3);
        v0 ^= w;
    }
    /* the last word: the 0..7 remaining bytes and n mod 256 in the top byte */
    uint64_t b = (uint64_t)n << 56;
    for (size_t j = 0; j < (n & 7); j++)
        b |= (uint64_t)m[full + j] << (8 * j);
    v3 ^= b;
    for (int r = 0; r < c; r++)
        MT_SIP_ROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    for (int r = 0; r < d; r++)
        MT_SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* SipHash-2-4 of p[0..n) under key. */
static inline uint64_t mt_siphash24(const mt_siphash_key *key, const void *p, size_t n)
{
    return mt_siphash_cd(key, p, n, 2, 4);
}

/* SipHash-1-3 of p[0..n) under key. */
static inline uint64_t mt_siphash13(const mt_siphash_key *key, const void *p, size_t n)
{
    return mt_siphash_cd(key, p, n, 1, 3);
}

#endif
