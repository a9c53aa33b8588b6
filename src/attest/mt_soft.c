/* mt_soft: soft-level evidence format and verifier; see mt_soft.h. */
#include "mt_soft.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "mt_attest_int.h"
#include "mt_cbor.h"
#include "mt_x5.h"

#define SOFT_FUTURE_SKEW_S 300

/* ---- encoder ------------------------------------------------------------ */

typedef struct wr {
    uint8_t *p;
    size_t cap, len;
    int overflow;
} wr;

static void wr_bytes(wr *w, const void *b, size_t n)
{
    if (w->overflow || n > w->cap - w->len) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p + w->len, b, n);
    w->len += n;
}

static void wr_head(wr *w, uint8_t major, uint64_t arg)
{
    uint8_t h[9];
    wr_bytes(w, h, mt_cbor_put_head(h, major, arg));
}

static void wr_tstr(wr *w, const char *s)
{
    size_t n = strlen(s);
    wr_head(w, MT_CBOR_TSTR, n);
    wr_bytes(w, s, n);
}

static void wr_bstr(wr *w, const uint8_t *b, size_t n)
{
    wr_head(w, MT_CBOR_BSTR, n);
    wr_bytes(w, b, n);
}

mt_status mt_soft_evidence_encode(const mt_soft_evidence *e, int with_signature, uint8_t *out,
                                  size_t cap, size_t *len, mt_err *err)
{
    if (!e || !out || !len)
        return mt_err_set(err, MT_EINVAL, "mt_soft_evidence_encode: NULL argument");
    *len = 0;
    if (e->time < 0)
        return mt_err_set(err, MT_EINVAL, "soft evidence: negative time");
    if (e->platform_key_len == 0 || e->platform_key_len > MT_SOFT_KEY_MAX)
        return mt_err_set(err, MT_EINVAL, "soft evidence: platform key of %zu bytes",
                          e->platform_key_len);
    wr w = {out, cap, 0, 0};
    wr_head(&w, MT_CBOR_MAP, with_signature ? 6 : 5);
    wr_tstr(&w, "kind");
    wr_tstr(&w, "soft");
    wr_tstr(&w, "time");
    wr_head(&w, MT_CBOR_UINT, (uint64_t)e->time);
    if (with_signature) {
        wr_tstr(&w, "signature");
        wr_bstr(&w, e->signature, sizeof e->signature);
    }
    wr_tstr(&w, "measurement");
    wr_bstr(&w, e->measurement, sizeof e->measurement);
    wr_tstr(&w, "report_data");
    wr_bstr(&w, e->report_data, sizeof e->report_data);
    wr_tstr(&w, "platform_key");
    wr_bstr(&w, e->platform_key, e->platform_key_len);
    if (w.overflow)
        return mt_err_set(err, MT_ETOOBIG, "soft evidence does not fit in %zu bytes", cap);
    *len = w.len;
    return MT_OK;
}

/* ---- reader ------------------------------------------------------------- */

/* Reads text key `want` from r; false if it is another key. */
static int rd_key(mt_rd *r, const char *want)
{
    const char *k;
    size_t n;
    return mt_cbor_tstr(r, &k, &n) && n == strlen(want) && memcmp(k, want, n) == 0;
}

/* A byte string of exactly `want` bytes (or at most max when want == 0). */
static int rd_fixed(mt_rd *r, uint8_t *out, size_t want, size_t max, size_t *got)
{
    const uint8_t *p;
    size_t n;
    if (!mt_cbor_bstr(r, &p, &n))
        return 0;
    if (want ? n != want : (n == 0 || n > max))
        return 0;
    memcpy(out, p, n);
    if (got)
        *got = n;
    return 1;
}

mt_status mt_soft_evidence_parse(const uint8_t *p, size_t len, mt_soft_evidence *out,
                                 mt_err *err)
{
    if (!out)
        return mt_err_set(err, MT_EINVAL, "mt_soft_evidence_parse: NULL argument");
    memset(out, 0, sizeof *out);
    if (!p || len == 0 || len > MT_SOFT_EVIDENCE_MAX)
        return mt_err_set(err, MT_EINVAL, "soft evidence is %zu bytes (1 to %d expected)", len,
                          MT_SOFT_EVIDENCE_MAX);
    mt_rd r;
    mt_rd_init(&r, p, len);
    uint8_t major;
    uint64_t arg;
    const char *field = "map";
    const char *s;
    size_t n;
    int64_t t;
    if (!mt_cbor_head(&r, &major, &arg) || major != MT_CBOR_MAP || arg != 6)
        goto bad;
    field = "kind";
    if (!rd_key(&r, "kind") || !mt_cbor_tstr(&r, &s, &n) || n != 4 || memcmp(s, "soft", 4) != 0)
        goto bad;
    field = "time";
    if (!rd_key(&r, "time") || !mt_cbor_int(&r, &t) || t < 0)
        goto bad;
    out->time = t;
    field = "signature";
    if (!rd_key(&r, "signature") || !rd_fixed(&r, out->signature, 64, 0, NULL))
        goto bad;
    field = "measurement";
    if (!rd_key(&r, "measurement") || !rd_fixed(&r, out->measurement, 32, 0, NULL))
        goto bad;
    field = "report_data";
    if (!rd_key(&r, "report_data") || !rd_fixed(&r, out->report_data, 64, 0, NULL))
        goto bad;
    field = "platform_key";
    if (!rd_key(&r, "platform_key") ||
        !rd_fixed(&r, out->platform_key, 0, MT_SOFT_KEY_MAX, &out->platform_key_len))
        goto bad;
    if (!mt_rd_ok(&r) || mt_rd_left(&r) != 0) {
        field = "end (trailing bytes)";
        goto bad;
    }
    /* One encoding only: the canonical bytes must be what we read. */
    uint8_t again[MT_SOFT_EVIDENCE_MAX];
    size_t alen = 0;
    if (mt_soft_evidence_encode(out, 1, again, sizeof again, &alen, NULL) != MT_OK ||
        alen != len || memcmp(again, p, len) != 0) {
        field = "encoding (not deterministic CBOR)";
        goto bad;
    }
    return MT_OK;
bad:
    memset(out, 0, sizeof *out);
    return mt_err_set(err, MT_EINVAL, "soft evidence is malformed at field '%s'", field);
}

/* ---- verifier ----------------------------------------------------------- */

mt_status mt_soft_verify(const uint8_t *ev, size_t len, int64_t at, mt_attest_claims *claims,
                         mt_err *err)
{
    mt_soft_evidence e;
    mt_status st = mt_soft_evidence_parse(ev, len, &e, err);
    if (st != MT_OK)
        return st;
    EVP_PKEY *key = NULL;
    if (!mt_x5_p256_spki(e.platform_key, e.platform_key_len, &key)) {
        const uint8_t *kp = e.platform_key;
        key = d2i_PUBKEY(NULL, &kp, (long)e.platform_key_len);
        if (key && kp != e.platform_key + e.platform_key_len) {
            EVP_PKEY_free(key);
            key = NULL;
        }
    }
    char group[32] = "";
    size_t gl = 0;
    if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &gl) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        EVP_PKEY_free(key);
        return mt_err_set(err, MT_EINVAL,
                          "soft evidence: platform_key is not a DER P-256 public key");
    }
    uint8_t tbs[MT_SOFT_EVIDENCE_MAX];
    size_t tl = 0;
    st = mt_soft_evidence_encode(&e, 0, tbs, sizeof tbs, &tl, err);
    bool ok = st == MT_OK &&
              mt_x5_ecdsa_verify(key, EVP_sha256(), tbs, tl, e.signature, e.signature + 32, 32,
                                 false);
    EVP_PKEY_free(key);
    if (st != MT_OK)
        return st;
    if (!ok)
        return mt_err_set(err, MT_EAUTH,
                          "soft evidence: the platform key's signature does not verify");
    if (e.time > at + SOFT_FUTURE_SKEW_S) {
        char a[32], b[32];
        mt_attest_time_str(e.time, a);
        mt_attest_time_str(at, b);
        return mt_err_set(err, MT_EAUTH,
                          "soft evidence made at %s, after the verification time %s", a, b);
    }
    snprintf(claims->product, sizeof claims->product, "mesatee soft");
    snprintf(claims->endorsement, sizeof claims->endorsement, "platform key");
    mt_attest_claims_add_meas(claims, "measurement", e.measurement, sizeof e.measurement);
    unsigned int hl = 0;
    if (EVP_Digest(e.platform_key, e.platform_key_len, claims->signer, &hl, EVP_sha256(),
                   NULL) != 1 || hl != 32)
        return mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
    claims->signer_len = 32;
    memcpy(claims->report_data, e.report_data, 64);
    claims->report_data_len = 64;
    claims->tcb_status = MT_TCB_NOT_EVALUATED;
    claims->timestamp = e.time * 1000;
    return MT_OK;
}
