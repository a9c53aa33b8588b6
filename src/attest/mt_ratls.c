/* mt_ratls: RA-TLS certificate extension (CCC form + Gramine legacy); see
 * mt_ratls.h and docs/attestation.md. */
#include "mt_ratls.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_attest_int.h"
#include "mt_cbor.h"
#include "mt_tpm2.h"
#include "mt_x5.h"

#define CLAIMS_MAX 4096

/* DER contents of the OIDs we look for. */
static const uint8_t OID_CCC[] = {0x67, 0x81, 0x05, 0x05, 0x04, 0x09};
static const uint8_t OID_LEGACY[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x8a, 0x39, 0x06};
/* Gramine's mis-encoded legacy OID: the tag and length ended up inside. */
static const uint8_t OID_LEGACY_GRAMINE[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                             0xf8, 0x4d, 0x8a, 0x39, 0x06};

/* ---- extension and claims readers ---------------------------------------- */

mt_status mt_ratls_ext_parse(const uint8_t *val, size_t len, mt_ratls_ext *out, mt_err *err)
{
    if (!out)
        return mt_err_set(err, MT_EINVAL, "mt_ratls_ext_parse: NULL argument");
    memset(out, 0, sizeof *out);
    if (!val || len == 0 || len > MT_RATLS_EXT_MAX)
        return mt_err_set(err, MT_EINVAL, "RA-TLS extension is %zu bytes (1 to %u expected)",
                          len, MT_RATLS_EXT_MAX);
    mt_rd r;
    mt_rd_init(&r, val, len);
    uint8_t major;
    uint64_t arg;
    if (!mt_cbor_head(&r, &major, &arg) || major != MT_CBOR_TAG)
        return mt_err_set(err, MT_EINVAL, "RA-TLS extension does not start with a CBOR tag");
    out->tag = arg;
    if (!mt_cbor_head(&r, &major, &arg) || major != MT_CBOR_ARRAY || arg != 2)
        return mt_err_set(err, MT_EINVAL,
                          "RA-TLS extension: expected an array [evidence, claims] after tag %llu",
                          (unsigned long long)out->tag);
    if (!mt_cbor_bstr(&r, &out->evidence, &out->evidence_len) || out->evidence_len == 0)
        return mt_err_set(err, MT_EINVAL, "RA-TLS extension: evidence is not a byte string");
    if (!mt_cbor_bstr(&r, &out->claims, &out->claims_len) || out->claims_len == 0)
        return mt_err_set(err, MT_EINVAL, "RA-TLS extension: claims are not a byte string");
    if (mt_rd_left(&r) != 0) {
        memset(out, 0, sizeof *out);
        return mt_err_set(err, MT_EINVAL, "RA-TLS extension: %zu trailing bytes",
                          mt_rd_left(&r));
    }
    return MT_OK;
}

static size_t hash_len_of(int alg)
{
    return alg == 1 ? 32 : alg == 7 ? 48 : alg == 8 ? 64 : 0;
}

static const EVP_MD *hash_md_of(int alg)
{
    return alg == 1 ? EVP_sha256() : alg == 7 ? EVP_sha384() : alg == 8 ? EVP_sha512() : NULL;
}

/* [alg, bstr hash] from r into c. */
static int rd_pubkey_hash(mt_rd *r, mt_ratls_claims *c)
{
    uint8_t major;
    uint64_t arg;
    int64_t alg;
    const uint8_t *h;
    size_t hl;
    if (!mt_cbor_head(r, &major, &arg) || major != MT_CBOR_ARRAY || arg != 2 ||
        !mt_cbor_int(r, &alg) || !mt_cbor_bstr(r, &h, &hl))
        return 0;
    if (alg < 0 || alg > 255 || hash_len_of((int)alg) == 0 || hl != hash_len_of((int)alg))
        return 0;
    c->hash_alg = (int)alg;
    memcpy(c->pubkey_hash, h, hl);
    c->pubkey_hash_len = hl;
    return 1;
}

mt_status mt_ratls_claims_parse(const uint8_t *p, size_t len, mt_ratls_claims *out,
                                mt_err *err)
{
    if (!out)
        return mt_err_set(err, MT_EINVAL, "mt_ratls_claims_parse: NULL argument");
    memset(out, 0, sizeof *out);
    if (!p || len == 0 || len > CLAIMS_MAX)
        return mt_err_set(err, MT_EINVAL, "RA-TLS claims are %zu bytes (1 to %d expected)", len,
                          CLAIMS_MAX);
    mt_rd r;
    mt_rd_init(&r, p, len);
    uint8_t major;
    uint64_t n;
    if (!mt_cbor_map_unique(&r) || !mt_cbor_head(&r, &major, &n) || major != MT_CBOR_MAP ||
        n > mt_rd_left(&r))
        return mt_err_set(err, MT_EINVAL,
                          "RA-TLS claims are not a CBOR map of at most %d distinct keys",
                          MT_CBOR_MAX_MAP_KEYS);
    int seen_hash = 0, seen_nonce = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t km;
        const char *k = NULL;
        size_t kl = 0;
        if (!mt_cbor_peek(&r, &km))
            goto bad;
        if (km == MT_CBOR_TSTR) {
            if (!mt_cbor_tstr(&r, &k, &kl))
                goto bad;
        } else if (!mt_cbor_skip(&r)) {
            goto bad;
        }
        if (k && kl == 11 && memcmp(k, "pubkey-hash", 11) == 0) {
            if (seen_hash++)
                return mt_err_set(err, MT_EINVAL, "RA-TLS claims: 'pubkey-hash' is repeated");
            uint8_t vm;
            if (!mt_cbor_peek(&r, &vm))
                goto bad;
            int ok;
            if (vm == MT_CBOR_BSTR) { /* the CCC form: bstr .cbor [alg, hash] */
                const uint8_t *inner;
                size_t il;
                mt_rd sub;
                ok = mt_cbor_bstr(&r, &inner, &il);
                if (ok) {
                    mt_rd_init(&sub, inner, il);
                    ok = rd_pubkey_hash(&sub, out) && mt_rd_left(&sub) == 0;
                }
            } else {
                ok = rd_pubkey_hash(&r, out);
            }
            if (!ok)
                return mt_err_set(err, MT_EINVAL,
                                  "RA-TLS claims: 'pubkey-hash' is not [1|7|8, hash of the "
                                  "matching length]");
        } else if (k && kl == 5 && memcmp(k, "nonce", 5) == 0) {
            const uint8_t *nv;
            size_t nl;
            if (seen_nonce++)
                return mt_err_set(err, MT_EINVAL, "RA-TLS claims: 'nonce' is repeated");
            if (!mt_cbor_bstr(&r, &nv, &nl) || nl > sizeof out->nonce)
                return mt_err_set(err, MT_EINVAL,
                                  "RA-TLS claims: 'nonce' is not a byte string of at most 64 "
                                  "bytes");
            memcpy(out->nonce, nv, nl);
            out->nonce_len = nl;
        } else if (!mt_cbor_skip(&r)) {
            goto bad;
        }
    }
    if (!mt_rd_ok(&r) || mt_rd_left(&r) != 0)
        goto bad;
    if (!seen_hash) {
        memset(out, 0, sizeof *out);
        return mt_err_set(err, MT_EINVAL, "RA-TLS claims have no 'pubkey-hash'");
    }
    return MT_OK;
bad:
    memset(out, 0, sizeof *out);
    return mt_err_set(err, MT_EINVAL, "RA-TLS claims are malformed CBOR or have trailing bytes");
}

/* ---- encoders ----------------------------------------------------------- */

mt_status mt_ratls_claims_encode(const uint8_t spki_sha256[32], const uint8_t *nonce,
                                 size_t nonce_len, uint8_t *out, size_t cap, size_t *len,
                                 mt_err *err)
{
    if (!spki_sha256 || !out || !len || (nonce_len && !nonce) || nonce_len > 64)
        return mt_err_set(err, MT_EINVAL, "mt_ratls_claims_encode: bad argument");
    uint8_t b[160];
    size_t n = 0;
    n += mt_cbor_put_head(b + n, MT_CBOR_MAP, nonce_len ? 2 : 1);
    n += mt_cbor_put_head(b + n, MT_CBOR_TSTR, 11);
    memcpy(b + n, "pubkey-hash", 11);
    n += 11;
    n += mt_cbor_put_head(b + n, MT_CBOR_BSTR, 36); /* [1, h'32 bytes'] is 36 bytes */
    n += mt_cbor_put_head(b + n, MT_CBOR_ARRAY, 2);
    n += mt_cbor_put_head(b + n, MT_CBOR_UINT, 1);
    n += mt_cbor_put_head(b + n, MT_CBOR_BSTR, 32);
    memcpy(b + n, spki_sha256, 32);
    n += 32;
    if (nonce_len) {
        n += mt_cbor_put_head(b + n, MT_CBOR_TSTR, 5);
        memcpy(b + n, "nonce", 5);
        n += 5;
        n += mt_cbor_put_head(b + n, MT_CBOR_BSTR, nonce_len);
        memcpy(b + n, nonce, nonce_len);
        n += nonce_len;
    }
    if (n > cap)
        return mt_err_set(err, MT_ETOOBIG, "RA-TLS claims do not fit in %zu bytes", cap);
    memcpy(out, b, n);
    *len = n;
    return MT_OK;
}

mt_status mt_ratls_ext_encode(uint64_t tag, const uint8_t *evidence, size_t ev_len,
                              const uint8_t *claims, size_t claims_len, uint8_t **out,
                              size_t *len, mt_err *err)
{
    if (!evidence || !ev_len || !claims || !claims_len || !out || !len ||
        ev_len > MT_RATLS_EXT_MAX || claims_len > CLAIMS_MAX)
        return mt_err_set(err, MT_EINVAL, "mt_ratls_ext_encode: bad argument");
    size_t cap = 9 + 1 + 9 + ev_len + 9 + claims_len;
    uint8_t *b = malloc(cap);
    if (!b)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t n = mt_cbor_put_head(b, MT_CBOR_TAG, tag);
    n += mt_cbor_put_head(b + n, MT_CBOR_ARRAY, 2);
    n += mt_cbor_put_head(b + n, MT_CBOR_BSTR, ev_len);
    memcpy(b + n, evidence, ev_len);
    n += ev_len;
    n += mt_cbor_put_head(b + n, MT_CBOR_BSTR, claims_len);
    memcpy(b + n, claims, claims_len);
    n += claims_len;
    *out = b;
    *len = n;
    return MT_OK;
}

/* ---- certificate -------------------------------------------------------- */

static X509 *cert_load(const uint8_t *buf, size_t len)
{
    if (!buf || len == 0 || len > 1024 * 1024)
        return NULL;
    X509 *x = NULL;
    static const char pem[] = "-----BEGIN";
    if (len >= sizeof pem - 1 && memcmp(buf, pem, sizeof pem - 1) == 0) {
        BIO *b = BIO_new_mem_buf(buf, (int)len);
        x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    } else {
        const uint8_t *p = buf;
        x = d2i_X509(NULL, &p, (long)len);
        if (x && p != buf + len) {
            X509_free(x);
            x = NULL;
        }
    }
    ERR_clear_error();
    return x;
}

static int oid_is(const ASN1_OBJECT *o, const uint8_t *want, size_t wl)
{
    const unsigned char *d = OBJ_get0_data(o);
    return d && OBJ_length(o) == wl && memcmp(d, want, wl) == 0;
}

/* Finds the extension of one form. 1 found, 0 absent, -1 repeated. */
static int find_ext(X509 *x, unsigned form, X509_EXTENSION **out)
{
    int found = 0;
    *out = NULL;
    for (int i = 0; i < X509_get_ext_count(x); i++) {
        X509_EXTENSION *e = X509_get_ext(x, i);
        const ASN1_OBJECT *o = e ? X509_EXTENSION_get_object(e) : NULL;
        if (!o)
            continue;
        int m = form == MT_RATLS_FORM_CCC
                    ? oid_is(o, OID_CCC, sizeof OID_CCC)
                    : oid_is(o, OID_LEGACY, sizeof OID_LEGACY) ||
                          oid_is(o, OID_LEGACY_GRAMINE, sizeof OID_LEGACY_GRAMINE);
        if (!m)
            continue;
        if (found++)
            return -1;
        *out = e;
    }
    return found;
}

int mt_ratls_cert_has_evidence(const uint8_t *der, size_t len, unsigned forms)
{
    X509 *x = cert_load(der, len);
    if (!x)
        return 0;
    X509_EXTENSION *e;
    int has = ((forms & MT_RATLS_FORM_CCC) && find_ext(x, MT_RATLS_FORM_CCC, &e) != 0) ||
              ((forms & MT_RATLS_FORM_LEGACY) && find_ext(x, MT_RATLS_FORM_LEGACY, &e) != 0);
    X509_free(x);
    return has;
}

static int64_t asn1_time_secs(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return INT64_MIN;
    char s[40];
    snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    int64_t v;
    return mt_attest_time_parse(s, &v, NULL) == MT_OK ? v : INT64_MIN;
}

static int sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    unsigned int l = 0;
    return EVP_Digest(p, n, out, &l, EVP_sha256(), NULL) == 1 && l == 32;
}

/* report_data = h || 32 zero bytes: all 64 bytes, as the CCC interoperable
 * form and Gramine's legacy form define them (and as every producer in the
 * test vectors and in mt_tee writes them). */
static bool report_data_binds(const mt_attest_claims *c, const uint8_t h[32])
{
    static const uint8_t zero[32];
    return c->report_data_len == 64 && CRYPTO_memcmp(c->report_data, h, 32) == 0 &&
           CRYPTO_memcmp(c->report_data + 32, zero, 32) == 0;
}

/* An RA-TLS certificate is self-issued (issuer name = subject name, RFC 5280
 * 3.4.61) and self-signed: its signature verifies with its own key. A
 * certificate issued by another party cannot be checked here (there is no
 * issuer to verify against), so it is refused rather than accepted unsigned.
 * Key usage is not consulted (X509_check_issued would treat a self-signed
 * certificate without keyCertSign as "not self-issued"). */
static mt_status check_self_signed(X509 *x, bool peer_proves_key, mt_err *err)
{
    if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) != 0)
        return mt_err_set(err, MT_EAUTH,
                          "the RA-TLS certificate is not self-issued (its issuer is another "
                          "name) and its issuer's signature cannot be verified: refused");
    /* MT_RATLS_PEER_PROVES_KEY (mt_ratls.h): the caller's handshake proves
     * possession of the key, which is all a self-signature proves. */
    if (!peer_proves_key && !mt_x5_verify_self_sig(x))
        return mt_err_set(err, MT_EAUTH, "the self-issued certificate's signature does not "
                                         "verify with its own key");
    return MT_OK;
}

/* Verifies quote evidence of a kind read from its header. */
static mt_status verify_quote(const uint8_t *q, size_t n, const mt_attest_collateral *coll,
                              int64_t at, mt_attest_claims *claims, mt_err *err)
{
    if (n < 8)
        return mt_err_set(err, MT_EINVAL, "RA-TLS evidence is too short for a DCAP quote");
    uint32_t tee = (uint32_t)q[4] | (uint32_t)q[5] << 8 | (uint32_t)q[6] << 16 |
                   (uint32_t)q[7] << 24;
    mt_attest_kind kind = tee == 0x81 ? MT_ATTEST_TDX : MT_ATTEST_SGX;
    return mt_attest_verify(kind, q, n, coll, at, claims, err);
}

/* TPM evidence in a certificate: the AK pinned in coll, else the evidence's
 * own AK (the policy pins it); an EK CA in coll is passed on. The evidence
 * has no wall time: the certificate's notBefore stands for it. */
static mt_status verify_tpm2(const uint8_t *ev, size_t n, const mt_attest_collateral *coll,
                             int64_t at, int64_t not_before, mt_attest_claims *claims,
                             mt_err *err)
{
    size_t pin_len = 0, ca_len = 0;
    const uint8_t *pin = mt_attest_coll_get(coll, MT_COLL_TPM2_AK, &pin_len);
    const uint8_t *ca = mt_attest_coll_get(coll, MT_COLL_TPM2_EK_CA, &ca_len);
    mt_tpm2_evidence *e = NULL;
    mt_attest_collateral *own = NULL;
    mt_status st = MT_OK;
    if (!pin) {
        e = malloc(sizeof *e);
        own = mt_attest_collateral_new();
        if (!e || !own) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        if ((st = mt_tpm2_evidence_parse(ev, n, e, err)) != MT_OK ||
            (st = mt_attest_collateral_add(own, MT_COLL_TPM2_AK, e->ak_public, e->ak_public_len,
                                           err)) != MT_OK ||
            (ca && (st = mt_attest_collateral_add(own, MT_COLL_TPM2_EK_CA, ca, ca_len, err)) !=
                       MT_OK))
            goto out;
        coll = own;
    }
    if ((st = mt_attest_verify(MT_ATTEST_TPM2, ev, n, coll, at, claims, err)) != MT_OK)
        goto out;
    if (claims->timestamp <= 0)
        claims->timestamp = not_before * 1000;
out:
    mt_attest_collateral_free(own);
    free(e);
    return st;
}

/* mt_ratls_verify_cert's checks on a parsed certificate (claims zeroed). */
static mt_status verify_x509(X509 *x, unsigned forms, const mt_attest_collateral *coll,
                             int64_t at, mt_attest_claims *claims, mt_ratls_info *info,
                             mt_err *err)
{
    mt_ratls_info inf;
    memset(&inf, 0, sizeof inf);
    mt_status st = MT_OK;
    uint8_t *spki = NULL;
    X509_EXTENSION *ext = NULL;
    int found = 0;
    if ((forms & MT_RATLS_FORM_CCC) && (found = find_ext(x, MT_RATLS_FORM_CCC, &ext)) != 0)
        inf.form = MT_RATLS_FORM_CCC;
    else if ((forms & MT_RATLS_FORM_LEGACY) &&
             (found = find_ext(x, MT_RATLS_FORM_LEGACY, &ext)) != 0)
        inf.form = MT_RATLS_FORM_LEGACY;
    if (found < 0) {
        st = mt_err_set(err, MT_EINVAL, "the certificate carries two RA-TLS evidence extensions");
        goto out;
    }
    if (!found) {
        st = mt_err_set(err, MT_ENOTFOUND,
                        "the certificate carries no attestation evidence (no RA-TLS extension "
                        "%s): the server runs at level none",
                        MT_RATLS_OID);
        goto out;
    }
    if (X509_EXTENSION_get_critical(ext)) {
        st = mt_err_set(err, MT_EINVAL, "the RA-TLS extension is marked critical; the CCC form "
                                        "is non-critical");
        goto out;
    }
    /* validity and self-signature */
    inf.not_before = asn1_time_secs(X509_get0_notBefore(x));
    inf.not_after = asn1_time_secs(X509_get0_notAfter(x));
    if (inf.not_before == INT64_MIN || inf.not_after == INT64_MIN) {
        st = mt_err_set(err, MT_EINVAL, "the certificate's validity dates cannot be read");
        goto out;
    }
    if (at < inf.not_before || at > inf.not_after) {
        char a[32], b[32], c[32];
        mt_attest_time_str(inf.not_before, a);
        mt_attest_time_str(inf.not_after, b);
        mt_attest_time_str(at, c);
        st = mt_err_set(err, MT_EAUTH,
                        "the RA-TLS certificate is valid from %s to %s, not at %s", a, b, c);
        goto out;
    }
    EVP_PKEY *pub = X509_get0_pubkey(x);
    if (!pub) {
        st = mt_err_set(err, MT_EINVAL, "the certificate's public key cannot be read");
        goto out;
    }
    int sl = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
    if (sl <= 0 || !sha256(spki, (size_t)sl, inf.spki_sha256)) {
        st = mt_err_set(err, MT_EINTERNAL, "encoding the certificate's public key failed");
        goto out;
    }
    ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(ext);
    const uint8_t *val = os ? ASN1_STRING_get0_data(os) : NULL;
    size_t vlen = os ? (size_t)ASN1_STRING_length(os) : 0;
    uint8_t want[32];
    if (inf.form == MT_RATLS_FORM_LEGACY) {
        if ((st = verify_quote(val, vlen, coll, at, claims, err)) != MT_OK)
            goto out;
        memcpy(want, inf.spki_sha256, 32);
        if (!report_data_binds(claims, want)) {
            st = mt_err_set(err, MT_EAUTH, "legacy RA-TLS: the quote's report_data is not "
                                           "SHA-256 of the certificate's key followed by 32 zero "
                                           "bytes");
            goto out;
        }
        goto sig;
    }
    mt_ratls_ext e;
    if ((st = mt_ratls_ext_parse(val, vlen, &e, err)) != MT_OK ||
        (st = mt_ratls_claims_parse(e.claims, e.claims_len, &inf.claims, err)) != MT_OK)
        goto out;
    inf.tag = e.tag;
    uint8_t ph[64];
    unsigned int phl = 0;
    if (EVP_Digest(spki, (size_t)sl, ph, &phl, hash_md_of(inf.claims.hash_alg), NULL) != 1 ||
        phl != inf.claims.pubkey_hash_len) {
        st = mt_err_set(err, MT_EINTERNAL, "hashing the certificate's key failed");
        goto out;
    }
    if (CRYPTO_memcmp(ph, inf.claims.pubkey_hash, phl) != 0) {
        st = mt_err_set(err, MT_EAUTH, "RA-TLS claims' pubkey-hash does not match the "
                                       "certificate's key (evidence made for another key)");
        goto out;
    }
    if (e.tag == MT_RATLS_TAG_QUOTE)
        st = verify_quote(e.evidence, e.evidence_len, coll, at, claims, err);
    else if (e.tag == MT_RATLS_TAG_SOFT)
        st = mt_attest_verify(MT_ATTEST_SOFT, e.evidence, e.evidence_len, coll, at, claims, err);
    else if (e.tag == MT_RATLS_TAG_TPM2)
        st = verify_tpm2(e.evidence, e.evidence_len, coll, at, inf.not_before, claims, err);
    else if (e.tag == MT_RATLS_TAG_SNP)
        st = mt_attest_verify(MT_ATTEST_SEV_SNP, e.evidence, e.evidence_len, coll, at, claims,
                              err);
    else
        st = mt_err_set(err, MT_EINVAL,
                        "RA-TLS evidence tag %llu is not supported (60000 SGX/TDX quote, %u "
                        "mesatee soft, %u mesatee tpm2, %u SEV-SNP report)",
                        (unsigned long long)e.tag, MT_RATLS_TAG_SOFT, MT_RATLS_TAG_TPM2,
                        MT_RATLS_TAG_SNP);
    if (st != MT_OK)
        goto out;
    if (!sha256(e.claims, e.claims_len, want)) {
        st = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
        goto out;
    }
    if (!report_data_binds(claims, want)) {
        st = mt_err_set(err, MT_EAUTH, "RA-TLS evidence's report_data does not hold SHA-256 of "
                                       "the claims followed by 32 zero bytes (claims changed or "
                                       "evidence reused)");
        goto out;
    }
sig:
    /* Last, so that a failure above names the binding that failed; nothing
     * is returned before it. */
    if ((st = check_self_signed(x, (forms & MT_RATLS_PEER_PROVES_KEY) != 0, err)) != MT_OK)
        goto out;
    if (info)
        *info = inf;
out:
    if (st != MT_OK)
        memset(claims, 0, sizeof *claims);
    OPENSSL_free(spki);
    ERR_clear_error();
    return st;
}

mt_status mt_ratls_verify_cert(const uint8_t *cert, size_t len, unsigned forms,
                               const mt_attest_collateral *coll, int64_t at,
                               mt_attest_claims *claims, mt_ratls_info *info, mt_err *err)
{
    if (!claims)
        return mt_err_set(err, MT_EINVAL, "mt_ratls_verify_cert: NULL claims");
    memset(claims, 0, sizeof *claims);
    X509 *x = cert_load(cert, len);
    if (!x)
        return mt_err_set(err, MT_EINVAL, "the certificate is not one DER or PEM X.509 certificate");
    mt_status st = verify_x509(x, forms, coll, at, claims, info, err);
    X509_free(x);
    return st;
}

mt_status mt_ratls_verify_x509(X509 *cert, unsigned forms, const mt_attest_collateral *coll,
                               int64_t at, mt_attest_claims *claims, mt_ratls_info *info,
                               mt_err *err)
{
    if (!claims)
        return mt_err_set(err, MT_EINVAL, "mt_ratls_verify_x509: NULL claims");
    memset(claims, 0, sizeof *claims);
    if (!cert)
        return mt_err_set(err, MT_EINVAL, "the certificate is not one DER or PEM X.509 certificate");
    return verify_x509(cert, forms, coll, at, claims, info, err);
}
