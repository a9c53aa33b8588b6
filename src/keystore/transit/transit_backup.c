/* transit_backup: the transit key backup format (contract: mt_transit_backup.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "mt_secmem.h"
#include "mt_transit_backup.h"
#include "mt_transit_parse.h"

static const char magic[8] = {'M', 'T', 'T', 'K', 'B', 'K', '0', '1'};

enum {
    F_DEL = 1,
    F_EXP = 2,
    F_BACKUP = 4,
    F_DERIVED = 8,
    F_CONV = 16,
    F_IMPORTED = 32,
    F_ROT = 64,
};

void mt_tb_key_clear(mt_tb_key *k)
{
    if (!k)
        return;
    for (size_t i = 0; k->v && i < k->n; i++)
        mt_secmem_free(k->v[i].material);
    free(k->v);
    memset(k, 0, sizeof *k);
}

/* The rules every backup satisfies (both directions). */
static mt_status check_key(const mt_tb_key *k, mt_err *err)
{
    if (!mt_tk_type_name(k->type))
        return mt_err_set(err, MT_EINVAL, "backup: unknown key type");
    if (!mt_tp_name_valid(k->name))
        return mt_err_set(err, MT_EINVAL, "backup: invalid key name");
    if (k->latest < 1 || k->latest > MT_TP_MAX_VERSION)
        return mt_err_set(err, MT_EINVAL, "backup: latest version out of range");
    if (k->min_dec < 1 || k->min_dec > k->latest)
        return mt_err_set(err, MT_EINVAL, "backup: min_decryption_version out of range");
    if (k->min_enc && (k->min_enc < k->min_dec || k->min_enc > k->latest))
        return mt_err_set(err, MT_EINVAL, "backup: min_encryption_version out of range");
    if (k->min_avail && (k->min_avail > k->min_dec || (k->min_enc && k->min_avail > k->min_enc)))
        return mt_err_set(err, MT_EINVAL, "backup: min_available_version out of range");
    if (k->convergent && !k->derived)
        return mt_err_set(err, MT_EINVAL, "backup: convergent_encryption without derived");
    if (k->derived && !mt_tk_type_derives(k->type))
        return mt_err_set(err, MT_EINVAL, "backup: derived on a key type that cannot derive");
    if (k->n < 1 || k->n > MT_TB_MAX_VERSIONS)
        return mt_err_set(err, MT_EINVAL, "backup: 1 to %d versions", MT_TB_MAX_VERSIONS);
    uint32_t floor = k->min_avail ? k->min_avail : 1;
    for (size_t i = 0; i < k->n; i++) {
        const mt_tb_version *v = &k->v[i];
        if (v->version < floor || v->version > k->latest || (i && v->version <= k->v[i - 1].version))
            return mt_err_set(err, MT_EINVAL, "backup: version %zu out of order or range", i);
        if (v->len < 1 || v->len > MT_TB_MATERIAL_MAX)
            return mt_err_set(err, MT_EINVAL, "backup: version %zu material length", i);
    }
    if (k->v[k->n - 1].version != k->latest)
        return mt_err_set(err, MT_EINVAL, "backup: the latest version is missing");
    if (k->v[0].version > k->min_dec)
        return mt_err_set(err, MT_EINVAL, "backup: versions from min_decryption_version missing");
    return MT_OK;
}

/* ---- writer ---------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} wbuf;

static void put(wbuf *w, const void *b, size_t n)
{
    if (w->len + n <= w->cap)
        memcpy(w->p + w->len, b, n);
    w->len += n;
}

static void put_be(wbuf *w, uint64_t v, unsigned bytes)
{
    uint8_t b[8];
    for (unsigned i = 0; i < bytes; i++)
        b[bytes - 1 - i] = (uint8_t)(v >> (8 * i));
    put(w, b, bytes);
}

static void put_str8(wbuf *w, const char *s)
{
    size_t l = strlen(s);
    put_be(w, l, 1);
    put(w, s, l);
}

static void encode_into(const mt_tb_key *k, wbuf *w)
{
    put(w, magic, sizeof magic);
    put_str8(w, mt_tk_type_name(k->type));
    put_str8(w, k->name);
    put_be(w, k->latest, 4);
    put_be(w, k->min_dec, 4);
    put_be(w, k->min_enc, 4);
    put_be(w, k->min_avail, 4);
    uint8_t f = (uint8_t)((k->deletion_allowed ? F_DEL : 0) | (k->exportable ? F_EXP : 0) |
                          (k->allow_plaintext_backup ? F_BACKUP : 0) |
                          (k->derived ? F_DERIVED : 0) | (k->convergent ? F_CONV : 0) |
                          (k->imported ? F_IMPORTED : 0) | (k->allow_rotation ? F_ROT : 0));
    put_be(w, f, 1);
    put_be(w, (uint64_t)k->created_at, 8);
    put_be(w, k->n, 4);
    for (size_t i = 0; i < k->n; i++) {
        put_be(w, k->v[i].version, 4);
        put_be(w, (uint64_t)k->v[i].created_at, 8);
        put_be(w, k->v[i].len, 4);
        put(w, k->v[i].material, k->v[i].len);
    }
}

mt_status mt_tb_encode(const mt_tb_key *k, uint8_t **out, size_t *n, mt_err *err)
{
    *out = NULL;
    *n = 0;
    mt_status rc = check_key(k, err);
    if (rc)
        return rc;
    wbuf w = {0};
    encode_into(k, &w); /* measures */
    size_t need = w.len + SHA256_DIGEST_LENGTH;
    w = (wbuf){mt_secmem_malloc(need), 0, need};
    if (!w.p)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    encode_into(k, &w);
    SHA256(w.p, w.len, w.p + w.len);
    *out = w.p;
    *n = need;
    return MT_OK;
}

/* ---- reader ---------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t len, off;
    bool failed;
} rbuf;

static const uint8_t *take(rbuf *r, size_t n)
{
    if (r->failed || n > r->len - r->off) {
        r->failed = true;
        r->off = r->len;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t get_be(rbuf *r, unsigned bytes)
{
    const uint8_t *p = take(r, bytes);
    uint64_t v = 0;
    for (unsigned i = 0; p && i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

/* A u8-length string of 1..max bytes without NUL into out (max + 1 bytes). */
static bool get_str8(rbuf *r, char *out, size_t max)
{
    size_t l = (size_t)get_be(r, 1);
    const uint8_t *p = take(r, l);
    if (!p || l < 1 || l > max || memchr(p, 0, l))
        return false;
    memcpy(out, p, l);
    out[l] = '\0';
    return true;
}

mt_status mt_tb_decode(const uint8_t *in, size_t n, mt_tb_key *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    if (n < sizeof magic + SHA256_DIGEST_LENGTH || memcmp(in, magic, sizeof magic) != 0)
        return mt_err_set(err, MT_EINVAL, "backup: not a mesatee transit key backup");
    uint8_t sum[SHA256_DIGEST_LENGTH];
    SHA256(in, n - sizeof sum, sum);
    if (CRYPTO_memcmp(sum, in + n - sizeof sum, sizeof sum) != 0)
        return mt_err_set(err, MT_EINVAL, "backup: checksum mismatch (damaged or truncated)");
    rbuf r = {in, n - sizeof sum, sizeof magic, false};
    char type[33];
    if (!get_str8(&r, type, 32) || (out->type = mt_tk_type_parse(type)) == MT_TK_NONE)
        return mt_err_set(err, MT_EINVAL, "backup: unknown key type");
    if (!get_str8(&r, out->name, 64))
        return mt_err_set(err, MT_EINVAL, "backup: invalid key name");
    out->latest = (uint32_t)get_be(&r, 4);
    out->min_dec = (uint32_t)get_be(&r, 4);
    out->min_enc = (uint32_t)get_be(&r, 4);
    out->min_avail = (uint32_t)get_be(&r, 4);
    uint8_t f = (uint8_t)get_be(&r, 1);
    out->deletion_allowed = f & F_DEL;
    out->exportable = f & F_EXP;
    out->allow_plaintext_backup = f & F_BACKUP;
    out->derived = f & F_DERIVED;
    out->convergent = f & F_CONV;
    out->imported = f & F_IMPORTED;
    out->allow_rotation = f & F_ROT;
    out->created_at = (int64_t)get_be(&r, 8);
    uint64_t count = get_be(&r, 4);
    mt_status rc = MT_OK;
    if (r.failed)
        rc = mt_err_set(err, MT_EINVAL, "backup: truncated header");
    else if (f & 128)
        rc = mt_err_set(err, MT_EINVAL, "backup: unknown flags");
    else if (count < 1 || count > MT_TB_MAX_VERSIONS)
        rc = mt_err_set(err, MT_EINVAL, "backup: 1 to %d versions", MT_TB_MAX_VERSIONS);
    /* each version takes at least 17 bytes: a count the input cannot hold is refused
     * before anything is allocated for it */
    else if (count > (r.len - r.off) / 17)
        rc = mt_err_set(err, MT_EINVAL, "backup: truncated versions");
    else if (!(out->v = calloc((size_t)count, sizeof *out->v)))
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < count; i++) {
        mt_tb_version *v = &out->v[i];
        v->version = (uint32_t)get_be(&r, 4);
        v->created_at = (int64_t)get_be(&r, 8);
        size_t l = (size_t)get_be(&r, 4);
        const uint8_t *m = r.failed || l < 1 || l > MT_TB_MATERIAL_MAX ? NULL : take(&r, l);
        if (!m) {
            rc = mt_err_set(err, MT_EINVAL, "backup: version %zu truncated or too large", i);
            break;
        }
        if (!(v->material = mt_secmem_malloc(l))) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            break;
        }
        memcpy(v->material, m, l);
        v->len = l;
        out->n = i + 1;
    }
    if (!rc && r.off != r.len)
        rc = mt_err_set(err, MT_EINVAL, "backup: trailing bytes");
    if (!rc)
        rc = check_key(out, err);
    if (rc)
        mt_tb_key_clear(out);
    return rc;
}
