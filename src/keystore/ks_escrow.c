/* ks_escrow: escrow of the KeyStore root keys to recovery recipients, and
 * its reader (see mt_escrow.h; the file format is in docs/formats.md,
 * "KeyStore escrow file"). The parser is the one reader of escrow files, an
 * outside input: every field goes through mt_json's bounded readers, base64
 * fields are decoded to exact sizes, and trailing or unknown keys are
 * refused (fuzz target fuzz/keystore_escrow.c). */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ks_internal.h"
#include "mt_escrow.h"
#include "mt_json.h"
#include "mt_log.h"
#include "mt_util.h"

#define LABEL "mesatee-keystore-escrow/v1"
#define LABEL_SHARE "mesatee-keystore-escrow-share/v1"
#define SPKI_MAX 200
#define SHARE_SEALED (KS_GCM_OVERHEAD + 32)

typedef struct esc_share {
    uint8_t index;     /* x coordinate, 1..255 */
    uint8_t fp[32];    /* SHA-256 of the recipient's SPKI DER */
    uint8_t eph[SPKI_MAX];
    size_t eph_len;
    uint8_t sealed[SHARE_SEALED];
} esc_share;

struct mt_escrow {
    char level[16];
    int64_t created_at;
    uint32_t current;
    unsigned threshold;
    uint32_t versions[MT_KEYSTORE_MAX_VERSIONS];
    size_t n_versions;
    esc_share shares[MT_ESCROW_MAX_RECIPIENTS];
    size_t n_shares;
    uint8_t *sealed; /* nonce || records || tag */
    size_t sealed_len;
};

/* ---- GF(2^8) (AES polynomial), constant time --------------------------- */

static uint8_t gf_mul(uint8_t a, uint8_t b)
{
    uint8_t p = 0;
    for (int i = 0; i < 8; i++) {
        p ^= (uint8_t)(-(b & 1) & a);
        uint8_t hi = (uint8_t)-(a >> 7);
        a = (uint8_t)((a << 1) ^ (hi & 0x1b));
        b >>= 1;
    }
    return p;
}

static uint8_t gf_inv(uint8_t a) /* a^254; 0 for 0 */
{
    uint8_t r = 1, x = a;
    for (int i = 0; i < 7; i++) {
        x = gf_mul(x, x);
        r = gf_mul(r, x);
    }
    return r;
}

/* ---- header hash ---------------------------------------------------------- */

static void put_u64(uint8_t *p, uint64_t v)
{
    ks_put_u32(p, (uint32_t)(v >> 32));
    ks_put_u32(p + 4, (uint32_t)v);
}

/* H: SHA-256 over everything in the file but the sealed bytes (see the
 * header comment of mt_escrow.h). */
static mt_status header_hash(const mt_escrow *e, uint8_t h[32], mt_err *err)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    uint8_t b[8];
    uint8_t ll = (uint8_t)strlen(e->level);
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(c, LABEL, sizeof LABEL) == 1 && EVP_DigestUpdate(c, &ll, 1) == 1 &&
              EVP_DigestUpdate(c, e->level, ll) == 1;
    put_u64(b, (uint64_t)e->created_at);
    ok = ok && EVP_DigestUpdate(c, b, 8) == 1;
    ks_put_u32(b, e->current);
    ks_put_u32(b + 4, e->threshold);
    ok = ok && EVP_DigestUpdate(c, b, 8) == 1;
    ks_put_u32(b, (uint32_t)e->n_versions);
    ok = ok && EVP_DigestUpdate(c, b, 4) == 1;
    for (size_t i = 0; ok && i < e->n_versions; i++) {
        ks_put_u32(b, e->versions[i]);
        ok = EVP_DigestUpdate(c, b, 4) == 1;
    }
    ks_put_u32(b, (uint32_t)e->n_shares);
    ok = ok && EVP_DigestUpdate(c, b, 4) == 1;
    for (size_t i = 0; ok && i < e->n_shares; i++)
        ok = EVP_DigestUpdate(c, &e->shares[i].index, 1) == 1 &&
             EVP_DigestUpdate(c, e->shares[i].fp, 32) == 1;
    unsigned hl = 0;
    ok = ok && EVP_DigestFinal_ex(c, h, &hl) == 1 && hl == 32;
    EVP_MD_CTX_free(c);
    return ok ? MT_OK : mt_err_set(err, MT_EINTERNAL, "SHA-256 failed");
}

/* ---- keys ------------------------------------------------------------------ */

static bool is_p256(EVP_PKEY *k)
{
    char g[32] = "";
    size_t gl = 0;
    return k && EVP_PKEY_is_a(k, "EC") &&
           EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, g, sizeof g, &gl) == 1 &&
           !strcmp(g, "prime256v1");
}

/* SHA-256 of k's SubjectPublicKeyInfo DER. */
static mt_status key_fp(EVP_PKEY *k, uint8_t fp[32], mt_err *err)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    unsigned hl = 0;
    bool ok = n > 0 && EVP_Digest(der, (size_t)n, fp, &hl, EVP_sha256(), NULL) == 1;
    OPENSSL_free(der);
    return ok ? MT_OK : mt_err_set(err, MT_EINTERNAL, "public key does not encode");
}

/* A recipient's public key from a certificate or PUBLIC KEY PEM. */
static EVP_PKEY *recipient_key(const char *pem, size_t len)
{
    if (len == 0 || len > MT_ESCROW_PEM_MAX)
        return NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = x ? X509_get_pubkey(x) : NULL;
    X509_free(x);
    if (!k && b && BIO_reset(b) == 1)
        k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    BIO_free(b);
    if (k && !is_p256(k)) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

/* A recipient's private key (unencrypted PEM, P-256); no passphrase prompt. */
static int no_pass(char *buf, int size, int rw, void *u)
{
    (void)buf, (void)size, (void)rw, (void)u;
    return -1;
}

static EVP_PKEY *private_key(const char *pem, size_t len)
{
    if (len == 0 || len > MT_ESCROW_PEM_MAX)
        return NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_pass, NULL) : NULL;
    BIO_free(b);
    if (k && !is_p256(k)) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

/* K for share index of recipient fp, from ECDH(mine, peer). */
static mt_status share_key(EVP_PKEY *mine, EVP_PKEY *peer, const uint8_t h[32], uint8_t index,
                           const uint8_t fp[32], const uint8_t *eph, size_t eph_len,
                           uint8_t key[32], mt_err *err)
{
    uint8_t info[sizeof LABEL_SHARE - 1 + 1 + 32 + SPKI_MAX];
    size_t il = 0;
    memcpy(info, LABEL_SHARE, sizeof LABEL_SHARE - 1);
    il += sizeof LABEL_SHARE - 1;
    info[il++] = index;
    memcpy(info + il, fp, 32);
    il += 32;
    memcpy(info + il, eph, eph_len);
    il += eph_len;
    return ks_ecdh_hkdf(mine, peer, h, info, il, key, err);
}

static void share_aad(const uint8_t h[32], uint8_t index, uint8_t aad[33])
{
    memcpy(aad, h, 32);
    aad[32] = index;
}

/* ---- records ---------------------------------------------------------------- */

/* Checks records (versions ascending, 1..max) and that current is among
 * them; fills versions. */
static mt_status records_check(const uint8_t *rec, size_t len, uint32_t current,
                               uint32_t *versions, size_t *n, mt_err *err)
{
    if (len == 0 || len % MT_ESCROW_RECORD || len / MT_ESCROW_RECORD > MT_KEYSTORE_MAX_VERSIONS)
        return mt_err_set(err, MT_EINVAL, "escrow: 1 to %d root key versions expected",
                          MT_KEYSTORE_MAX_VERSIONS);
    bool cur = false;
    *n = len / MT_ESCROW_RECORD;
    for (size_t i = 0; i < *n; i++) {
        uint32_t v = ks_get_u32(rec + i * MT_ESCROW_RECORD);
        if (v == 0 || (i && v <= versions[i - 1]))
            return mt_err_set(err, MT_EINVAL, "escrow: root key versions not ascending");
        versions[i] = v;
        cur |= v == current;
    }
    return cur ? MT_OK
               : mt_err_set(err, MT_EINVAL, "escrow: the current version %u is not among them",
                            current);
}

/* ---- make ------------------------------------------------------------------ */

static bool level_ok(const char *l)
{
    static const char *const levels[] = {"none", "soft", "tpm2", "sev-snp", "tdx", "sgx", NULL};
    for (size_t i = 0; levels[i]; i++)
        if (!strcmp(l, levels[i]))
            return true;
    return false;
}

mt_status mt_escrow_make(const uint8_t *records, size_t rec_len, uint32_t current,
                         const char *level, int64_t created_at, const char *const *pems,
                         const size_t *pem_lens, size_t n, unsigned threshold, char **out,
                         size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    if (n == 0 || n > MT_ESCROW_MAX_RECIPIENTS)
        return mt_err_set(err, MT_EINVAL, "escrow: 1 to %d recipients expected",
                          MT_ESCROW_MAX_RECIPIENTS);
    if (threshold == 0 || threshold > n)
        return mt_err_set(err, MT_EINVAL,
                          "escrow: threshold %u: expected 1 to the number of recipients (%zu)",
                          threshold, n);
    if (!level || !level_ok(level) || created_at < 0)
        return mt_err_set(err, MT_EINVAL, "escrow: bad level or time");
    mt_escrow *e = calloc(1, sizeof *e);
    if (!e)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    snprintf(e->level, sizeof e->level, "%s", level);
    e->created_at = created_at;
    e->current = current;
    e->threshold = threshold;
    e->n_shares = n;
    uint8_t ekey[32], coef[MT_ESCROW_MAX_RECIPIENTS][32], share[32], h[32], k[32], aad[33];
    EVP_PKEY *rk[MT_ESCROW_MAX_RECIPIENTS] = {0};
    json_t *doc = NULL;
    mt_status rc = records_check(records, rec_len, current, e->versions, &e->n_versions, err);
    for (size_t i = 0; !rc && i < n; i++) {
        if (!(rk[i] = recipient_key(pems[i], pem_lens[i]))) {
            rc = mt_err_set(err, MT_EINVAL,
                            "recipient %zu: expected an X.509 certificate or PUBLIC KEY PEM of "
                            "a P-256 (prime256v1) key",
                            i + 1);
            break;
        }
        e->shares[i].index = (uint8_t)(i + 1);
        if ((rc = key_fp(rk[i], e->shares[i].fp, err)))
            break;
        for (size_t j = 0; j < i; j++)
            if (!memcmp(e->shares[j].fp, e->shares[i].fp, 32))
                rc = mt_err_set(err, MT_EINVAL, "recipient %zu: the same key as recipient %zu",
                                i + 1, j + 1);
    }
    if (!rc)
        rc = header_hash(e, h, err);
    if (!rc)
        rc = mt_random(ekey, sizeof ekey, err);
    if (!rc)
        rc = mt_random(&coef[0][0], sizeof coef, err); /* coef[1..t-1] used */
    if (!rc) {
        e->sealed_len = rec_len + KS_GCM_OVERHEAD;
        if (!(e->sealed = malloc(e->sealed_len)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = ks_gcm_seal(ekey, h, 32, records, rec_len, e->sealed, err);
    for (size_t i = 0; !rc && i < n; i++) {
        esc_share *s = &e->shares[i];
        /* f(x) = E + c1 x + ... + c(t-1) x^(t-1), per byte (Horner) */
        for (size_t b = 0; b < 32; b++) {
            uint8_t y = 0;
            for (size_t d = threshold - 1; d >= 1; d--)
                y = gf_mul((uint8_t)(y ^ coef[d][b]), s->index);
            share[b] = (uint8_t)(y ^ ekey[b]);
        }
        EVP_PKEY *eph = EVP_EC_gen("P-256");
        unsigned char *spki = NULL;
        int sl = eph ? i2d_PUBKEY(eph, &spki) : -1;
        if (sl <= 0 || sl > SPKI_MAX) {
            rc = mt_err_set(err, MT_EINTERNAL, "P-256 key generation failed");
        } else {
            memcpy(s->eph, spki, (size_t)sl);
            s->eph_len = (size_t)sl;
            rc = share_key(eph, rk[i], h, s->index, s->fp, s->eph, s->eph_len, k, err);
        }
        OPENSSL_free(spki);
        EVP_PKEY_free(eph);
        share_aad(h, s->index, aad);
        if (!rc)
            rc = ks_gcm_seal(k, aad, sizeof aad, share, 32, s->sealed, err);
    }
    /* the document */
    if (!rc) {
        doc = json_pack("{s:i, s:s, s:I, s:I, s:[], s:i, s:[]}", "mesatee_keystore_escrow", 1,
                        "level", e->level, "created_at", (json_int_t)e->created_at, "current",
                        (json_int_t)e->current, "versions", "threshold", (int)e->threshold,
                        "shares");
        if (!doc)
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; !rc && i < e->n_versions; i++)
        if (json_array_append_new(json_object_get(doc, "versions"),
                                  json_integer((json_int_t)e->versions[i])))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    char *b64 = NULL;
    if (!rc && (!(b64 = mt_b64_encode(e->sealed, e->sealed_len)) ||
                json_object_set_new(doc, "sealed", json_string(b64))))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    free(b64);
    for (size_t i = 0; !rc && i < n; i++) {
        const esc_share *s = &e->shares[i];
        char fph[65];
        mt_hex_encode(s->fp, 32, fph);
        char *eb = mt_b64_encode(s->eph, s->eph_len), *sb = mt_b64_encode(s->sealed, SHARE_SEALED);
        json_t *o = eb && sb ? json_pack("{s:i, s:s, s:s, s:s}", "index", (int)s->index,
                                         "recipient", fph, "ephemeral", eb, "sealed", sb)
                             : NULL;
        free(eb);
        free(sb);
        if (!o || json_array_append_new(json_object_get(doc, "shares"), o))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    if (!rc) {
        char *t = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
        if (!t)
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else {
            *out = t;
            *out_len = strlen(t);
        }
    }
    json_decref(doc);
    for (size_t i = 0; i < n && i < MT_ESCROW_MAX_RECIPIENTS; i++)
        EVP_PKEY_free(rk[i]);
    mt_wipe(ekey, sizeof ekey);
    mt_wipe(coef, sizeof coef);
    mt_wipe(share, sizeof share);
    mt_wipe(k, sizeof k);
    mt_escrow_free(e);
    return rc;
}

/* ---- parse ------------------------------------------------------------------- */

void mt_escrow_free(mt_escrow *e)
{
    if (!e)
        return;
    free(e->sealed);
    free(e);
}

unsigned mt_escrow_threshold(const mt_escrow *e)
{
    return e->threshold;
}

unsigned mt_escrow_recipients(const mt_escrow *e)
{
    return (unsigned)e->n_shares;
}

uint32_t mt_escrow_current(const mt_escrow *e)
{
    return e->current;
}

const char *mt_escrow_level(const mt_escrow *e)
{
    return e->level;
}

/* base64 field key of obj decoded to [min, max] bytes into out (heap). */
static mt_status b64_field(const json_t *obj, const char *key, size_t min, size_t max,
                           uint8_t **out, size_t *len, mt_err *err)
{
    const char *s = NULL;
    mt_status rc = mt_json_str(obj, key, max * 4 / 3 + 4, &s, err);
    if (!rc && (rc = mt_b64_decode(s, out, len, err)))
        return mt_err_prefix(err, rc, "field '%s': ", key);
    if (!rc && (*len < min || *len > max)) {
        free(*out);
        *out = NULL;
        rc = mt_err_set(err, MT_EINVAL, "field '%s': %zu bytes, expected %zu to %zu", key, *len,
                        min, max);
    }
    return rc;
}

static mt_status parse_share(const json_t *o, size_t i, esc_share *s, mt_err *err)
{
    static const char *const keys[] = {"index", "recipient", "ephemeral", "sealed", NULL};
    if (!json_is_object(o))
        return mt_err_set(err, MT_EINVAL, "shares[%zu]: expected an object", i);
    int64_t idx = 0;
    const char *fp = NULL;
    uint8_t *b = NULL;
    size_t bl = 0;
    mt_status rc = mt_json_only_keys(o, keys, err);
    if (!rc)
        rc = mt_json_int(o, "index", 1, 255, &idx, err);
    if (!rc)
        rc = mt_json_str(o, "recipient", 64, &fp, err);
    if (!rc && (strlen(fp) != 64 || strspn(fp, "0123456789abcdef") != 64 ||
                mt_hex_decode(fp, s->fp, 32, err)))
        rc = mt_err_set(err, MT_EINVAL, "field 'recipient': expected 64 lowercase hex");
    if (!rc && !(rc = b64_field(o, "ephemeral", 1, SPKI_MAX, &b, &bl, err))) {
        memcpy(s->eph, b, bl);
        s->eph_len = bl;
        free(b);
        b = NULL;
    }
    if (!rc && !(rc = b64_field(o, "sealed", SHARE_SEALED, SHARE_SEALED, &b, &bl, err))) {
        memcpy(s->sealed, b, bl);
        free(b);
    }
    s->index = (uint8_t)idx;
    return rc ? mt_err_prefix(err, rc, "shares[%zu]: ", i) : MT_OK;
}

mt_status mt_escrow_parse(const char *text, size_t len, mt_escrow **out, mt_err *err)
{
    *out = NULL;
    json_t *doc = mt_json_parse(text, len, MT_ESCROW_MAX_BYTES, 4, err);
    if (!doc)
        return mt_err_prefix(err, MT_EINVAL, "escrow file: ");
    static const char *const keys[] = {"mesatee_keystore_escrow", "level", "created_at",
                                       "current", "versions", "threshold", "sealed", "shares",
                                       NULL};
    mt_escrow *e = calloc(1, sizeof *e);
    int64_t v = 0, cur = 0, th = 0;
    const char *level = NULL;
    json_t *vers = NULL, *shares = NULL;
    mt_status rc = e ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
    if (!rc && !json_is_object(doc))
        rc = mt_err_set(err, MT_EINVAL, "expected a JSON object");
    if (!rc)
        rc = mt_json_only_keys(doc, keys, err);
    if (!rc)
        rc = mt_json_int(doc, "mesatee_keystore_escrow", 1, 1, &v, err);
    if (!rc)
        rc = mt_json_str(doc, "level", 15, &level, err);
    if (!rc && !level_ok(level))
        rc = mt_err_set(err, MT_EINVAL, "field 'level': not a security level");
    if (!rc) {
        snprintf(e->level, sizeof e->level, "%s", level);
        rc = mt_json_int(doc, "created_at", 0, INT64_MAX, &e->created_at, err);
    }
    if (!rc)
        rc = mt_json_int(doc, "current", 1, UINT32_MAX, &cur, err);
    if (!rc)
        rc = mt_json_array(doc, "versions", MT_KEYSTORE_MAX_VERSIONS, &vers, err);
    if (!rc)
        rc = mt_json_array(doc, "shares", MT_ESCROW_MAX_RECIPIENTS, &shares, err);
    if (!rc && (json_array_size(vers) == 0 || json_array_size(shares) == 0))
        rc = mt_err_set(err, MT_EINVAL, "fields 'versions' and 'shares' must not be empty");
    if (!rc)
        rc = mt_json_int(doc, "threshold", 1, (int64_t)json_array_size(shares), &th, err);
    if (!rc) {
        e->current = (uint32_t)cur;
        e->threshold = (unsigned)th;
        e->n_versions = json_array_size(vers);
        e->n_shares = json_array_size(shares);
    }
    bool have_cur = false;
    for (size_t i = 0; !rc && i < e->n_versions; i++) {
        const json_t *x = json_array_get(vers, i);
        json_int_t n = json_is_integer(x) ? json_integer_value(x) : 0;
        if (n < 1 || n > (json_int_t)UINT32_MAX || (i && (uint32_t)n <= e->versions[i - 1]))
            rc = mt_err_set(err, MT_EINVAL,
                            "field 'versions': expected ascending integers 1 to 4294967295");
        else
            e->versions[i] = (uint32_t)n;
        have_cur |= !rc && e->versions[i] == e->current;
    }
    if (!rc && !have_cur)
        rc = mt_err_set(err, MT_EINVAL, "field 'current': not among 'versions'");
    for (size_t i = 0; !rc && i < e->n_shares; i++) {
        rc = parse_share(json_array_get(shares, i), i, &e->shares[i], err);
        for (size_t j = 0; !rc && j < i; j++)
            if (e->shares[j].index == e->shares[i].index ||
                !memcmp(e->shares[j].fp, e->shares[i].fp, 32))
                rc = mt_err_set(err, MT_EINVAL, "shares[%zu]: index or recipient repeated", i);
    }
    if (!rc) {
        size_t want = e->n_versions * MT_ESCROW_RECORD + KS_GCM_OVERHEAD;
        rc = b64_field(doc, "sealed", want, want, &e->sealed, &e->sealed_len, err);
    }
    json_decref(doc);
    if (rc) {
        mt_escrow_free(e);
        return mt_err_prefix(err, rc, "escrow file: ");
    }
    *out = e;
    return MT_OK;
}

/* ---- open -------------------------------------------------------------------- */

mt_status mt_escrow_open(const mt_escrow *e, const char *const *keys, const size_t *key_lens,
                         size_t n, uint8_t **records, size_t *rec_len, uint32_t *current,
                         mt_err *err)
{
    *records = NULL;
    *rec_len = 0;
    *current = 0;
    uint8_t h[32], k[32], aad[33], got[MT_ESCROW_MAX_RECIPIENTS][32], ekey[32];
    uint8_t xs[MT_ESCROW_MAX_RECIPIENTS];
    size_t have = 0;
    mt_status rc = header_hash(e, h, err);
    for (size_t i = 0; !rc && i < n; i++) {
        EVP_PKEY *pk = private_key(keys[i], key_lens[i]);
        uint8_t fp[32];
        if (!pk) {
            rc = mt_err_set(err, MT_EINVAL,
                            "recovery key %zu: expected an unencrypted PEM private key of a "
                            "P-256 (prime256v1) key",
                            i + 1);
            break;
        }
        const esc_share *s = NULL;
        if (!(rc = key_fp(pk, fp, err))) {
            for (size_t j = 0; j < e->n_shares; j++)
                if (!memcmp(e->shares[j].fp, fp, 32))
                    s = &e->shares[j];
            if (!s)
                rc = mt_err_set(err, MT_EINVAL,
                                "recovery key %zu is not a recipient of this escrow", i + 1);
        }
        for (size_t j = 0; !rc && j < have; j++)
            if (xs[j] == s->index)
                rc = mt_err_set(err, MT_EINVAL, "recovery key %zu is given twice", i + 1);
        EVP_PKEY *eph = NULL;
        if (!rc) {
            const unsigned char *p = s->eph;
            eph = d2i_PUBKEY(NULL, &p, (long)s->eph_len);
            if (!is_p256(eph) || p != s->eph + s->eph_len)
                rc = mt_err_set(err, MT_EINVAL,
                                "escrow file: share %u: the ephemeral key is not a P-256 key",
                                (unsigned)s->index);
        }
        if (!rc)
            rc = share_key(pk, eph, h, s->index, s->fp, s->eph, s->eph_len, k, err);
        if (!rc) {
            share_aad(h, s->index, aad);
            if (ks_gcm_open(k, aad, sizeof aad, s->sealed, SHARE_SEALED, got[have], err))
                rc = mt_err_set(err, MT_ECRYPTO,
                                "recovery key %zu: its share does not decrypt (the escrow file "
                                "was altered)",
                                i + 1);
            else
                xs[have++] = s->index;
        }
        EVP_PKEY_free(eph);
        EVP_PKEY_free(pk);
    }
    if (!rc && have < e->threshold)
        rc = mt_err_set(err, MT_EPERM,
                        "the escrow needs the keys of %u of its %zu recipients; %zu given",
                        e->threshold, e->n_shares, have);
    if (!rc) {
        /* E = f(0) = sum y_i * prod_{m != i} x_m / (x_m + x_i), over the first t */
        memset(ekey, 0, sizeof ekey);
        for (size_t i = 0; i < e->threshold; i++) {
            uint8_t l = 1;
            for (size_t m = 0; m < e->threshold; m++)
                if (m != i)
                    l = gf_mul(l, gf_mul(xs[m], gf_inv((uint8_t)(xs[m] ^ xs[i]))));
            for (size_t b = 0; b < 32; b++)
                ekey[b] ^= gf_mul(got[i][b], l);
        }
        size_t rl = e->sealed_len - KS_GCM_OVERHEAD;
        if (!(*records = malloc(rl)))
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        else if (ks_gcm_open(ekey, h, 32, e->sealed, e->sealed_len, *records, err))
            rc = mt_err_set(err, MT_ECRYPTO,
                            "the recipients' shares do not open the escrow (the file was altered, "
                            "or the shares belong to another escrow)");
        uint32_t vs[MT_KEYSTORE_MAX_VERSIONS];
        size_t nv = 0;
        if (!rc && (rc = records_check(*records, rl, e->current, vs, &nv, err)) == MT_OK &&
            (nv != e->n_versions || memcmp(vs, e->versions, nv * sizeof vs[0])))
            rc = mt_err_set(err, MT_EINVAL, "escrow: the sealed versions differ from the header");
        if (rc) {
            if (*records)
                mt_wipe(*records, rl);
            free(*records);
            *records = NULL;
        } else {
            *rec_len = rl;
            *current = e->current;
        }
    }
    mt_wipe(got, sizeof got);
    mt_wipe(ekey, sizeof ekey);
    mt_wipe(k, sizeof k);
    return rc;
}

/* ---- the KeyStore's side ------------------------------------------------------ */

/* The "escrow" object auditors sign: the recipients' fingerprints (hex, in
 * share order; each a P-256 key, all distinct) and the threshold. */
static mt_status escrow_obj(const char *const *pems, const size_t *pem_lens, size_t n,
                            unsigned threshold, json_t **out, mt_err *err)
{
    *out = NULL;
    if (n == 0 || n > MT_ESCROW_MAX_RECIPIENTS)
        return mt_err_set(err, MT_EINVAL, "escrow: 1 to %d recipients expected",
                          MT_ESCROW_MAX_RECIPIENTS);
    if (threshold < 1 || threshold > n)
        return mt_err_set(err, MT_EINVAL,
                          "escrow: threshold %u: expected 1 to the number of recipients (%zu)",
                          threshold, n);
    uint8_t fps[MT_ESCROW_MAX_RECIPIENTS][32];
    json_t *o = json_pack("{s:s, s:[], s:I}", "purpose", "escrow", "recipients", "threshold",
                          (json_int_t)threshold);
    mt_status rc = o ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        EVP_PKEY *k = recipient_key(pems[i], pem_lens[i]);
        if (!k)
            rc = mt_err_set(err, MT_EINVAL,
                            "recipient %zu: expected an X.509 certificate or PUBLIC KEY PEM of "
                            "a P-256 (prime256v1) key",
                            i + 1);
        if (!rc)
            rc = key_fp(k, fps[i], err);
        EVP_PKEY_free(k);
        for (size_t j = 0; !rc && j < i; j++)
            if (!memcmp(fps[i], fps[j], 32))
                rc = mt_err_set(err, MT_EINVAL, "recipient %zu: the same key as recipient %zu",
                                i + 1, j + 1);
        char hex[65];
        if (!rc) {
            mt_hex_encode(fps[i], 32, hex);
            if (json_array_append_new(json_object_get(o, "recipients"), json_string(hex)))
                rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        }
    }
    ERR_clear_error();
    if (rc)
        json_decref(o);
    else
        *out = o;
    return rc;
}

mt_status mt_keystore_escrow_signed(mt_keystore *ks, const char *const *pems,
                                    const size_t *pem_lens, size_t n, unsigned threshold,
                                    const char *sig, size_t sig_len, char **out, size_t *out_len,
                                    bool *signed_by, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    json_t *eo = NULL;
    bool by = false;
    /* recipients checked first, so a bad request spends no signed seq */
    mt_status rc = escrow_obj(pems, pem_lens, n, threshold, &eo, err);
    if (!rc)
        rc = ks_escrow_authorize(ks, eo, sig, sig_len, &by, err);
    json_decref(eo);
    uint8_t *rec = NULL;
    size_t rl = 0;
    uint32_t cur = 0;
    char level[16];
    if (!rc)
        rc = ks_export_roots(ks, &rec, &rl, &cur, level, err);
    if (!rc)
        rc = mt_escrow_make(rec, rl, cur, level, mt_now(), pems, pem_lens, n, threshold, out,
                            out_len, err);
    if (rec)
        mt_wipe(rec, rl);
    free(rec);
    if (signed_by)
        *signed_by = by;
    return rc;
}

mt_status mt_keystore_escrow(mt_keystore *ks, const char *const *pems, const size_t *pem_lens,
                             size_t n, unsigned threshold, char **out, size_t *out_len,
                             mt_err *err)
{
    return mt_keystore_escrow_signed(ks, pems, pem_lens, n, threshold, NULL, 0, out, out_len,
                                     NULL, err);
}

mt_status mt_keystore_escrow_draft(const char *policy, size_t len, const char *const *pems,
                                   const size_t *pem_lens, size_t n, unsigned threshold,
                                   char **doc, mt_err *err)
{
    *doc = NULL;
    json_t *eo = NULL;
    mt_status rc = escrow_obj(pems, pem_lens, n, threshold, &eo, err);
    if (!rc)
        rc = ks_escrow_doc(policy, len, eo, doc, err);
    json_decref(eo);
    return rc;
}

/* Renames data_dir/name to name.lost-<t> if present; *moved says whether. */
static mt_status set_aside(const char *data_dir, const char *name, int64_t t, bool *moved,
                           mt_err *err)
{
    char from[4096], to[4200];
    *moved = false;
    snprintf(from, sizeof from, "%s/%s", data_dir, name);
    snprintf(to, sizeof to, "%s.lost-%lld", from, (long long)t);
    if (access(from, F_OK) != 0)
        return MT_OK;
    if (access(to, F_OK) == 0)
        return mt_err_set(err, MT_ECONFLICT, "KeyStore recovery: %s exists already", to);
    if (rename(from, to) != 0)
        return mt_err_set(err, MT_EIO, "KeyStore recovery: cannot rename %s: %s", from,
                          strerror(errno));
    *moved = true;
    return MT_OK;
}

static void put_back(const char *data_dir, const char *name, int64_t t)
{
    char from[4096], to[4200];
    snprintf(from, sizeof from, "%s/%s", data_dir, name);
    snprintf(to, sizeof to, "%s.lost-%lld", from, (long long)t);
    unlink(from);
    if (rename(to, from) != 0)
        mt_error("KeyStore recovery: could not put %s back to %s: %s", to, from, strerror(errno));
}

mt_status mt_keystore_recover(mt_tee *tee, const char *data_dir, const char *coll_dir,
                              const char *first_req, size_t first_req_len, const char *escrow,
                              size_t escrow_len, const char *const *keys, const size_t *key_lens,
                              size_t n_keys, mt_keystore **out, mt_err *err)
{
    *out = NULL;
    mt_escrow *e = NULL;
    uint8_t *rec = NULL;
    size_t rl = 0;
    uint32_t cur = 0;
    mt_status rc = mt_escrow_parse(escrow, escrow_len, &e, err);
    if (!rc)
        rc = mt_escrow_open(e, keys, key_lens, n_keys, &rec, &rl, &cur, err);
    if (!rc && strcmp(mt_escrow_level(e), mt_tee_level(tee)) != 0)
        rc = mt_err_set(err, MT_ECONFLICT,
                        "KeyStore recovery: the escrow is of level %s; this daemon runs at "
                        "level %s",
                        mt_escrow_level(e), mt_tee_level(tee));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", data_dir, MT_KEYSTORE_FILE);
    if (!rc && access(path, F_OK) == 0) {
        /* the present state must not open: nothing replaces a working KeyStore */
        mt_keystore *probe = NULL;
        mt_err perr;
        mt_err_clear(&perr);
        if (mt_keystore_open_coll(tee, data_dir, coll_dir, NULL, 0, &probe, NULL, &perr) ==
            MT_OK) {
            mt_keystore_free(probe);
            rc = mt_err_set(err, MT_ECONFLICT,
                            "KeyStore recovery: the KeyStore of %s opens on this machine: there "
                            "is nothing to recover (start without --keystore-recover)",
                            data_dir);
        } else {
            mt_warn("KeyStore recovery: the present state does not open (%s); replacing it "
                    "from the escrow",
                    perr.msg);
        }
    }
    int64_t t = mt_now();
    bool mv_state = false, mv_tpm = false;
    if (!rc)
        rc = set_aside(data_dir, MT_KEYSTORE_FILE, t, &mv_state, err);
    if (!rc && (rc = set_aside(data_dir, MT_KEYSTORE_TPM_FILE, t, &mv_tpm, err)) && mv_state)
        put_back(data_dir, MT_KEYSTORE_FILE, t);
    if (!rc) {
        rc = ks_open_with_roots(tee, data_dir, coll_dir, first_req, first_req_len, rec, rl, cur,
                                out, err);
        if (rc) {
            char p2[4096];
            snprintf(p2, sizeof p2, "%s/%s", data_dir, MT_KEYSTORE_TPM_FILE);
            if (mv_state)
                put_back(data_dir, MT_KEYSTORE_FILE, t);
            else
                unlink(path);
            if (mv_tpm)
                put_back(data_dir, MT_KEYSTORE_TPM_FILE, t);
            else
                unlink(p2);
        } else {
            mt_info("KeyStore recovery: done with %u of %u recipients' keys; the old state "
                    "files were kept as *.lost-%lld; make a new escrow now",
                    mt_escrow_threshold(e), mt_escrow_recipients(e), (long long)t);
        }
    }
    if (rec)
        mt_wipe(rec, rl);
    free(rec);
    mt_escrow_free(e);
    return rc;
}
