/* mt_cose: COSE_Sign1 reader and verifier; see mt_cose.h. */
#include "mt_cose.h"

#include <stdlib.h>
#include <string.h>

#include "mt_cbor.h"
#include "mt_x5.h"

#define COSE_ALG_ES384 (-35)

mt_status mt_cose_sign1_parse(const uint8_t *buf, size_t len, mt_cose_sign1 *o, mt_err *err)
{
    memset(o, 0, sizeof *o);
    mt_rd r;
    mt_rd_init(&r, buf, len);
    uint8_t mt;
    uint64_t arg;
    if (!mt_cbor_head(&r, &mt, &arg))
        goto bad;
    if (mt == MT_CBOR_TAG) {
        if (arg != 18)
            return mt_err_set(err, MT_EINVAL, "COSE tag %llu is not 18 (COSE_Sign1)",
                              (unsigned long long)arg);
        if (!mt_cbor_head(&r, &mt, &arg))
            goto bad;
    }
    if (mt != MT_CBOR_ARRAY || arg != 4)
        return mt_err_set(err, MT_EINVAL, "COSE_Sign1 is not an array of 4 items");
    if (!mt_cbor_bstr(&r, &o->protected_hdr, &o->protected_len))
        goto bad;
    uint8_t peek;
    if (!mt_cbor_peek(&r, &peek) || peek != MT_CBOR_MAP || !mt_cbor_map_unique(&r) ||
        !mt_cbor_skip(&r))
        return mt_err_set(err, MT_EINVAL,
                          "COSE_Sign1 unprotected header is not a map of distinct keys");
    if (!mt_cbor_bstr(&r, &o->payload, &o->payload_len))
        return mt_err_set(err, MT_EINVAL, "COSE_Sign1 payload is not a byte string");
    if (!mt_cbor_bstr(&r, &o->sig, &o->sig_len))
        goto bad;
    if (mt_rd_left(&r) != 0)
        return mt_err_set(err, MT_EINVAL, "COSE_Sign1 has %zu trailing bytes", mt_rd_left(&r));

    /* Protected header: a map holding alg = ES384. */
    mt_rd h;
    mt_rd_init(&h, o->protected_hdr, o->protected_len);
    if (!mt_cbor_map_unique(&h))
        return mt_err_set(err, MT_EINVAL, "COSE protected header is not a map of distinct keys");
    if (!mt_cbor_head(&h, &mt, &arg) || mt != MT_CBOR_MAP)
        return mt_err_set(err, MT_EINVAL, "COSE protected header is not a map");
    int64_t alg = 0;
    bool have_alg = false;
    for (uint64_t i = 0; i < arg; i++) {
        int64_t key;
        if (!mt_cbor_peek(&h, &peek))
            goto bad;
        if (peek == MT_CBOR_UINT || peek == MT_CBOR_NINT) {
            if (!mt_cbor_int(&h, &key))
                goto bad;
            if (key == 1) {
                if (have_alg || !mt_cbor_int(&h, &alg))
                    return mt_err_set(err, MT_EINVAL, "COSE alg is repeated or not an integer");
                have_alg = true;
                continue;
            }
        } else if (!mt_cbor_skip(&h)) {
            goto bad;
        }
        if (!mt_cbor_skip(&h))
            goto bad;
    }
    if (!mt_rd_ok(&h) || mt_rd_left(&h) != 0)
        goto bad;
    if (!have_alg || alg != COSE_ALG_ES384)
        return mt_err_set(err, MT_EINVAL, "COSE algorithm %lld is not ES384 (-35)", (long long)alg);
    if (o->sig_len != 96)
        return mt_err_set(err, MT_EINVAL, "COSE ES384 signature is %zu bytes, expected 96",
                          o->sig_len);
    return MT_OK;
bad:
    return mt_err_set(err, MT_EINVAL, "COSE_Sign1 is not well-formed CBOR");
}

bool mt_cose_sign1_verify(const mt_cose_sign1 *m, EVP_PKEY *key)
{
    static const char ctx[] = "Signature1";
    size_t cap = 1 + 1 + (sizeof ctx - 1) + 9 + m->protected_len + 1 + 9 + m->payload_len;
    uint8_t *tbs = malloc(cap);
    if (!tbs)
        return false;
    size_t n = 0;
    n += mt_cbor_put_head(tbs + n, MT_CBOR_ARRAY, 4);
    n += mt_cbor_put_head(tbs + n, MT_CBOR_TSTR, sizeof ctx - 1);
    memcpy(tbs + n, ctx, sizeof ctx - 1);
    n += sizeof ctx - 1;
    n += mt_cbor_put_head(tbs + n, MT_CBOR_BSTR, m->protected_len);
    memcpy(tbs + n, m->protected_hdr, m->protected_len);
    n += m->protected_len;
    n += mt_cbor_put_head(tbs + n, MT_CBOR_BSTR, 0);
    n += mt_cbor_put_head(tbs + n, MT_CBOR_BSTR, m->payload_len);
    memcpy(tbs + n, m->payload, m->payload_len);
    n += m->payload_len;
    bool ok = mt_x5_ecdsa_verify(key, EVP_sha384(), tbs, n, m->sig, m->sig + 48, 48, false);
    free(tbs);
    return ok;
}
