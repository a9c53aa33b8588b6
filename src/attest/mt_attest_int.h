/* mt_attest_int: internals shared by the verifiers of mt_attest (not
 * installed). Collateral access, claims builders, and the per-kind verifiers
 * that mt_attest_verify dispatches to. Each verifier fills a zeroed claims
 * struct and returns an mt_status with a precise message. */
#ifndef MT_ATTEST_INT_H
#define MT_ATTEST_INT_H

#include "mt_attest.h"

/* Largest evidence and collateral item accepted. */
#define MT_ATTEST_EVIDENCE_MAX (64u * 1024u)
#define MT_ATTEST_COLL_MAX (1024u * 1024u)

/* Borrowed bytes of one collateral item (NULL and 0 when absent). */
const uint8_t *mt_attest_coll_get(const mt_attest_collateral *c, mt_attest_coll_item item,
                                  size_t *len);

/* The DCAP verification cache of a handle (mt_dcap_coll.h); NULL for a
 * NULL handle. Logically const: the cache changes only what is remembered,
 * never what a verification returns, and has its own lock. */
struct mt_dcap_cache *mt_attest_coll_dcap_cache(const mt_attest_collateral *c);

/* Claims builders: silently ignore overflow of the fixed arrays (the
 * verifiers add a bounded number). */
void mt_attest_claims_add_meas(mt_attest_claims *c, const char *name, const uint8_t *v,
                               size_t len);
void mt_attest_claims_add_svn(mt_attest_claims *c, const char *name, uint64_t v);
void mt_attest_claims_add_advisory(mt_attest_claims *c, const char *id);

/* Lowers claims->valid_until to t (the first bound sets it); t < 1 counts
 * as 1 (already past: never reused). */
void mt_attest_claims_until(mt_attest_claims *c, int64_t t);

/* "2025-06-19T10:56:11Z" into out[32]. */
void mt_attest_time_str(int64_t t, char out[32]);

mt_status mt_snp_verify(const uint8_t *ev, size_t len, const mt_attest_collateral *coll,
                        int64_t at, mt_attest_claims *claims, mt_err *err);
mt_status mt_dcap_verify(mt_attest_kind kind, const uint8_t *ev, size_t len,
                         const mt_attest_collateral *coll, int64_t at,
                         mt_attest_claims *claims, mt_err *err);
mt_status mt_nitro_verify(const uint8_t *ev, size_t len, int64_t at, mt_attest_claims *claims,
                          mt_err *err);

#endif
