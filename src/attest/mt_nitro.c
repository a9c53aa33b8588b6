/* mt_nitro: Nitro attestation document reader and verifier; see mt_nitro.h. */
#include "mt_nitro.h"

#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "mt_attest_int.h"
#include "mt_cbor.h"
#include "mt_cose.h"
#include "mt_util.h"
#include "mt_x5.h"

/* SHA-256 of the DER AWS Nitro Enclaves root G1 (P-384, 2019 -> 2049). */
static const char *const aws_root_pin =
    "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";

#define BLOB_MAX 1024
/* Documents may not be more than this far ahead of the verification time. */
#define CLOCK_SKEW_S 300

static bool key_is(const char *k, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(k, want, n) == 0;
}

/* A bstr, or null for optional fields. */
static bool opt_bstr(mt_rd *r, mt_nitro_bytes *out)
{
    uint8_t mt;
    if (!mt_cbor_peek(r, &mt))
        return false;
    if (mt == MT_CBOR_SIMPLE) {
        out->p = NULL;
        out->n = 0;
        return mt_cbor_null(r);
    }
    return mt_cbor_bstr(r, &out->p, &out->n) && out->n <= BLOB_MAX;
}

/* The bit of a known top-level key, 0 for an unknown one. */
static unsigned key_bit(const char *k, size_t kl)
{
    static const char *const names[] = {"module_id",  "digest",    "timestamp",
                                        "pcrs",       "certificate", "cabundle",
                                        "public_key", "user_data", "nonce"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (key_is(k, kl, names[i]))
            return 1u << i;
    return 0;
}

mt_status mt_nitro_doc_parse(const uint8_t *buf, size_t len, mt_nitro_doc *o, mt_err *err)
{
    memset(o, 0, sizeof *o);
    mt_rd r;
    mt_rd_init(&r, buf, len);
    uint8_t mt;
    uint64_t n;
    /* Every key is checked for repetition before any value is read (a map
     * with duplicate keys is invalid CBOR); the seen bits below repeat the
     * check per known field, before its value is read. */
    if (!mt_cbor_peek(&r, &mt) || mt != MT_CBOR_MAP)
        return mt_err_set(err, MT_EINVAL, "Nitro document payload is not a CBOR map");
    if (!mt_cbor_map_unique(&r))
        return mt_err_set(err, MT_EINVAL, "Nitro document payload map is malformed, has over %d "
                                          "keys or repeats a key",
                          MT_CBOR_MAX_MAP_KEYS);
    if (!mt_cbor_head(&r, &mt, &n) || mt != MT_CBOR_MAP)
        return mt_err_set(err, MT_EINVAL, "Nitro document payload is not a CBOR map");
    unsigned seen = 0;
    for (uint64_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (!mt_cbor_tstr(&r, &k, &kl))
            return mt_err_set(err, MT_EINVAL, "Nitro document key %llu is not a text string",
                              (unsigned long long)i);
        unsigned bit = key_bit(k, kl);
        if (!bit)
            return mt_err_set(err, MT_EINVAL, "Nitro document has an unknown field '%.*s'",
                              (int)(kl > 32 ? 32 : kl), k);
        if (seen & bit)
            return mt_err_set(err, MT_EINVAL, "Nitro document repeats field '%.*s'", (int)kl, k);
        seen |= bit;
        if (bit == 1) { /* module_id */
            if (!mt_cbor_tstr(&r, &o->module_id, &o->module_id_len) || o->module_id_len == 0 ||
                o->module_id_len > 64)
                goto bad;
        } else if (bit == 2) { /* digest */
            const char *d;
            size_t dl;
            if (!mt_cbor_tstr(&r, &d, &dl))
                goto bad;
            if (!key_is(d, dl, "SHA384"))
                return mt_err_set(err, MT_EINVAL, "Nitro document digest is not SHA384");
        } else if (bit == 4) { /* timestamp */
            int64_t t;
            if (!mt_cbor_int(&r, &t) || t <= 0)
                goto bad;
            o->timestamp_ms = (uint64_t)t;
        } else if (bit == 8) { /* pcrs */
            uint64_t np;
            if (!mt_cbor_peek(&r, &mt) || mt != MT_CBOR_MAP || !mt_cbor_map_unique(&r) ||
                !mt_cbor_head(&r, &mt, &np) || np == 0 || np > MT_NITRO_MAX_PCRS)
                return mt_err_set(err, MT_EINVAL,
                                  "Nitro document pcrs is not a map of 1 to %d distinct indexes",
                                  MT_NITRO_MAX_PCRS);
            for (uint64_t k2 = 0; k2 < np; k2++) {
                int64_t idx;
                mt_nitro_bytes v;
                /* o->n_pcrs == k2 < np <= MT_NITRO_MAX_PCRS: the write is in bounds. */
                if (o->n_pcrs >= MT_NITRO_MAX_PCRS || !mt_cbor_int(&r, &idx) || idx < 0 ||
                    idx >= MT_NITRO_MAX_PCRS || !mt_cbor_bstr(&r, &v.p, &v.n) || v.n != 48)
                    return mt_err_set(err, MT_EINVAL,
                                      "Nitro document PCR entry %llu is not index -> 48 bytes",
                                      (unsigned long long)k2);
                for (size_t j = 0; j < o->n_pcrs; j++)
                    if (o->pcr_index[j] == idx)
                        return mt_err_set(err, MT_EINVAL, "Nitro document repeats PCR %lld",
                                          (long long)idx);
                o->pcr[o->n_pcrs] = v;
                o->pcr_index[o->n_pcrs++] = (uint8_t)idx;
            }
        } else if (bit == 16) { /* certificate */
            if (!mt_cbor_bstr(&r, &o->certificate.p, &o->certificate.n) || !o->certificate.n)
                goto bad;
        } else if (bit == 32) { /* cabundle */
            uint64_t nc;
            if (!mt_cbor_head(&r, &mt, &nc) || mt != MT_CBOR_ARRAY || nc == 0 ||
                nc > MT_NITRO_MAX_CABUNDLE)
                return mt_err_set(err, MT_EINVAL, "Nitro document cabundle is not 1 to %d certificates",
                                  MT_NITRO_MAX_CABUNDLE);
            for (uint64_t c = 0; c < nc; c++)
                if (!mt_cbor_bstr(&r, &o->cabundle[c].p, &o->cabundle[c].n) || !o->cabundle[c].n)
                    goto bad;
            o->n_cabundle = (size_t)nc;
        } else if (bit == 64) {
            if (!opt_bstr(&r, &o->public_key))
                goto bad;
        } else if (bit == 128) {
            if (!opt_bstr(&r, &o->user_data))
                goto bad;
        } else {
            if (!opt_bstr(&r, &o->nonce))
                goto bad;
        }
    }
    if (!mt_rd_ok(&r))
        goto bad;
    if (mt_rd_left(&r) != 0)
        return mt_err_set(err, MT_EINVAL, "Nitro document payload has %zu trailing bytes",
                          mt_rd_left(&r));
    if ((seen & 63) != 63)
        return mt_err_set(err, MT_EINVAL,
                          "Nitro document lacks a required field (module_id, digest, timestamp, "
                          "pcrs, certificate, cabundle)");
    return MT_OK;
bad:
    return mt_err_set(err, MT_EINVAL, "Nitro document payload is malformed");
}

/* A DER certificate (whole buffer). */
static X509 *der_cert(const mt_nitro_bytes *b)
{
    const unsigned char *p = b->p;
    X509 *c = d2i_X509(NULL, &p, (long)b->n);
    if (c && p != b->p + b->n) {
        X509_free(c);
        c = NULL;
    }
    return c;
}

static void copy_blob(const mt_nitro_bytes *b, uint8_t *out, size_t *outlen)
{
    *outlen = 0;
    if (b->p && b->n <= MT_ATTEST_BLOB_MAX) {
        memcpy(out, b->p, b->n);
        *outlen = b->n;
    }
}

mt_status mt_nitro_verify(const uint8_t *ev, size_t len, int64_t at, mt_attest_claims *claims,
                          mt_err *err)
{
    mt_cose_sign1 cose;
    mt_nitro_doc d;
    mt_status st = mt_cose_sign1_parse(ev, len, &cose, err);
    if (st != MT_OK)
        return st;
    if ((st = mt_nitro_doc_parse(cose.payload, cose.payload_len, &d, err)) != MT_OK)
        return st;

    X509 *leaf = der_cert(&d.certificate), *root = der_cert(&d.cabundle[0]);
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (!leaf || !root || !untrusted) {
        st = mt_err_set(err, MT_EINVAL, "Nitro document certificate or cabundle[0] is not DER X.509");
        goto out;
    }
    for (size_t i = 1; i < d.n_cabundle; i++) {
        X509 *c = der_cert(&d.cabundle[i]);
        if (!c || !sk_X509_push(untrusted, c)) {
            X509_free(c);
            st = mt_err_set(err, MT_EINVAL, "Nitro document cabundle[%zu] is not DER X.509", i);
            goto out;
        }
    }
    if (!mt_x5_is_pinned(root, aws_root_pin)) {
        st = mt_err_set(err, MT_EAUTH, "Nitro cabundle[0] is not the pinned AWS Nitro Enclaves root G1");
        goto out;
    }
    int64_t ts = (int64_t)(d.timestamp_ms / 1000);
    if (ts > at + CLOCK_SKEW_S) {
        char a[32], b[32];
        mt_attest_time_str(ts, a);
        mt_attest_time_str(at, b);
        st = mt_err_set(err, MT_EAUTH, "Nitro document timestamp %s is after the verification time %s",
                        a, b);
        goto out;
    }
    if ((st = mt_x5_verify_chain(leaf, untrusted, root, NULL, at, "Nitro leaf -> AWS Nitro root G1",
                                 err)) != MT_OK)
        goto out;
    {
        int64_t lo, hi, lo2, hi2;
        bool known = mt_x5_validity(untrusted, leaf, NULL, &lo, &hi) &&
                     mt_x5_validity(NULL, root, NULL, &lo2, &hi2);
        mt_attest_claims_until(claims, known ? (hi < hi2 ? hi : hi2) : at);
    }
    EVP_PKEY *pk = X509_get0_pubkey(leaf);
    if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC || EVP_PKEY_get_bits(pk) != 384) {
        st = mt_err_set(err, MT_EAUTH, "Nitro leaf key is not ECDSA P-384");
        goto out;
    }
    if (!mt_cose_sign1_verify(&cose, pk)) {
        st = mt_err_set(err, MT_EAUTH, "COSE ES384 signature over the Nitro document does not verify");
        goto out;
    }

    /* Claims. */
    snprintf(claims->product, sizeof claims->product, "aws-nitro %.*s", (int)d.module_id_len,
             d.module_id);
    snprintf(claims->endorsement, sizeof claims->endorsement, "nitro leaf");
    bool pcr0_zero = false;
    for (size_t i = 0; i < d.n_pcrs; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "pcr%u", d.pcr_index[i]);
        mt_attest_claims_add_meas(claims, nm, d.pcr[i].p, d.pcr[i].n);
        bool zero = true;
        for (size_t k = 0; k < d.pcr[i].n; k++)
            zero = zero && d.pcr[i].p[k] == 0;
        if (d.pcr_index[i] == 0)
            pcr0_zero = zero;
        if (d.pcr_index[i] == 8 && !zero) {
            memcpy(claims->signer, d.pcr[i].p, 48);
            claims->signer_len = 48;
        }
    }
    claims->debug = pcr0_zero; /* NSM reports zero PCRs in debug mode */
    claims->timestamp = (int64_t)d.timestamp_ms;
    claims->tcb_status = MT_TCB_NOT_EVALUATED;
    copy_blob(&d.user_data, claims->user_data, &claims->user_data_len);
    copy_blob(&d.nonce, claims->nonce, &claims->nonce_len);
    copy_blob(&d.public_key, claims->public_key, &claims->public_key_len);
    if (d.user_data.p && d.user_data.n <= 64) {
        memcpy(claims->report_data, d.user_data.p, d.user_data.n);
        claims->report_data_len = 64;
    }
    st = MT_OK;
out:
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(leaf);
    X509_free(root);
    return st;
}
