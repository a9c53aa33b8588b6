/* transit_parse: readers of transit API input (contract: mt_transit_parse.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_json.h"
#include "mt_secmem.h"
#include "mt_transit_parse.h"
#include "mt_util.h"

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.';
}

bool mt_tp_name_valid(const char *s)
{
    size_t n = s ? strnlen(s, MT_TP_NAME_MAX + 1) : 0;
    if (n == 0 || n > MT_TP_NAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

static bool user_valid(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-'))
            return false;
    }
    return true;
}

bool mt_tp_key_ref(const char *seg, char owner[65], char name[MT_TP_NAME_MAX + 1])
{
    owner[0] = name[0] = '\0';
    if (!seg)
        return false;
    const char *colon = strchr(seg, ':');
    const char *nm = seg;
    if (colon) {
        size_t ol = (size_t)(colon - seg);
        if (!user_valid(seg, ol))
            return false;
        memcpy(owner, seg, ol);
        owner[ol] = '\0';
        nm = colon + 1;
    }
    if (!mt_tp_name_valid(nm)) {
        owner[0] = '\0';
        return false;
    }
    snprintf(name, MT_TP_NAME_MAX + 1, "%s", nm);
    return true;
}

bool mt_tp_segment(const char *tail, char *seg, size_t cap)
{
    if (!tail || tail[0] != '/' || cap == 0)
        return false;
    size_t n = strlen(tail + 1);
    if (n == 0 || n > 80 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(tail[1 + i]) && tail[1 + i] != ':')
            return false;
    memcpy(seg, tail + 1, n);
    seg[n] = '\0';
    return true;
}

/* ---- base64 ------------------------------------------------------------------ */

static int b64v(char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* Decodes n chars of s (padded standard base64, or unpadded base64url). */
static bool b64_decode(const char *s, size_t n, bool url, uint8_t *out, size_t *outn)
{
    size_t pad = 0;
    if (!url) {
        if (n % 4)
            return false;
        if (n && s[n - 1] == '=')
            pad++;
        if (n > 1 && s[n - 2] == '=')
            pad++;
    } else if (n % 4 == 1) {
        return false;
    }
    size_t body = n - pad, o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < body; i++) {
        int v = b64v(s[i], url);
        if (v < 0)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* leftover bits must be zero (canonical form) */
    if (bits && (acc & ((1u << bits) - 1)))
        return false;
    if (!url && pad && (body % 4) + pad != 4)
        return false;
    *outn = o;
    return true;
}

mt_status mt_tp_b64(const char *field, const char *s, size_t max, bool secret, uint8_t **out,
                    size_t *n, mt_err *err)
{
    *out = NULL;
    *n = 0;
    size_t len = strlen(s);
    if (len / 4 * 3 > max + 3)
        return mt_err_set(err, MT_ETOOBIG, "field '%s': more than %zu bytes", field, max);
    uint8_t *buf = secret ? mt_secmem_malloc(len / 4 * 3 + 3) : malloc(len / 4 * 3 + 3);
    if (!buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t o = 0;
    if (!b64_decode(s, len, false, buf, &o) || o > max) {
        mt_secmem_free(buf);
        return o > max ? mt_err_set(err, MT_ETOOBIG, "field '%s': more than %zu bytes", field, max)
                       : mt_err_set(err, MT_EINVAL, "field '%s': expected standard base64", field);
    }
    *out = buf;
    *n = o;
    return MT_OK;
}

static const char b64std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_encode(const uint8_t *in, size_t n, bool url, char *out)
{
    const char *t = url ? b64url : b64std;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = t[w >> 18];
        out[o++] = t[(w >> 12) & 63];
        out[o++] = t[(w >> 6) & 63];
        out[o++] = t[w & 63];
    }
    if (n - i == 1) {
        uint32_t w = (uint32_t)in[i] << 16;
        out[o++] = t[w >> 18];
        out[o++] = t[(w >> 12) & 63];
        if (!url) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t w = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = t[w >> 18];
        out[o++] = t[(w >> 12) & 63];
        out[o++] = t[(w >> 6) & 63];
        if (!url)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

char *mt_tp_b64url_encode(const uint8_t *in, size_t n)
{
    char *s = malloc(n / 3 * 4 + 5);
    if (s)
        b64_encode(in, n, true, s);
    return s;
}

/* ---- vault:vN: strings --------------------------------------------------------- */

mt_status mt_tp_vault_parse(const char *field, const char *s, bool url, uint32_t *version,
                            uint8_t **out, size_t *n, mt_err *err)
{
    *out = NULL;
    *n = 0;
    *version = 0;
    if (strncmp(s, "vault:v", 7) != 0)
        return mt_err_set(err, MT_EINVAL, "field '%s': expected 'vault:v<version>:<base64>'",
                          field);
    const char *p = s + 7;
    uint32_t v = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 8) {
        v = v * 10 + (uint32_t)(*p - '0');
        p++;
        digits++;
    }
    if (digits == 0 || *p != ':' || (digits > 1 && s[7] == '0') || v == 0 ||
        v > MT_TP_MAX_VERSION)
        return mt_err_set(err, MT_EINVAL,
                          "field '%s': expected 'vault:v<version>:<base64>' with a version of "
                          "1 to %d",
                          field, MT_TP_MAX_VERSION);
    p++;
    size_t len = strlen(p);
    uint8_t *buf = malloc(len / 4 * 3 + 4);
    if (!buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    size_t o = 0;
    if (len == 0 || !b64_decode(p, len, url, buf, &o)) {
        free(buf);
        return mt_err_set(err, MT_EINVAL, "field '%s': the part after 'vault:v%u:' is not %s",
                          field, (unsigned)v, url ? "base64url" : "standard base64");
    }
    *version = v;
    *out = buf;
    *n = o;
    return MT_OK;
}

char *mt_tp_vault_format(uint32_t version, const uint8_t *b, size_t n, bool url)
{
    char *s = malloc(32 + n / 3 * 4 + 5);
    if (!s)
        return NULL;
    int w = snprintf(s, 32, "vault:v%u:", (unsigned)version);
    b64_encode(b, n, url, s + w);
    return s;
}

/* ---- request items --------------------------------------------------------------- */

void mt_tp_batch_free(mt_tp_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; b->items && i < b->n; i++) {
        mt_secmem_free(b->items[i].data);
        mt_secmem_free(b->items[i].aad);
        mt_secmem_free(b->items[i].ctx);
    }
    free(b->items);
    memset(b, 0, sizeof *b);
}

/* A version given as an integer or a decimal string (Vault takes both). */
static mt_status version_opt(const json_t *o, const char *key, uint32_t *out, mt_err *err)
{
    const json_t *v = json_object_get(o, key);
    *out = 0;
    if (!v || json_is_null(v))
        return MT_OK;
    int64_t x = -1;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (n >= 1 && n <= 7 && strspn(s, "0123456789") == n)
            x = strtoll(s, NULL, 10);
    }
    if (x < 0 || x > MT_TP_MAX_VERSION)
        return mt_err_set(err, MT_EINVAL, "field '%s': expected a version from 0 to %d", key,
                          MT_TP_MAX_VERSION);
    *out = (uint32_t)x;
    return MT_OK;
}

static const char *data_field(mt_tp_op op)
{
    switch (op) {
    case MT_TP_ENCRYPT: return "plaintext";
    case MT_TP_DECRYPT:
    case MT_TP_REWRAP: return "ciphertext";
    default: return "input";
    }
}

/* Reads one item from object o. */
static mt_status item_parse(const json_t *o, mt_tp_op op, bool in_batch, mt_tp_item *it,
                            mt_err *err)
{
    static const char *const batch_keys[] = {"plaintext", "ciphertext", "input", "context",
                                             "nonce", "key_version", "associated_data",
                                             "reference", "signature", "hmac", NULL};
    if (in_batch) {
        mt_status rc = mt_json_only_keys(o, batch_keys, err);
        if (rc)
            return rc;
    }
    const char *df = data_field(op), *s = NULL, *ctx = NULL, *nonce = NULL, *aad = NULL;
    mt_status rc;
    if ((rc = mt_json_str(o, df, SIZE_MAX / 2, &s, err)) ||
        (rc = mt_json_str_opt(o, "context", 8192, &ctx, "", err)) ||
        (rc = mt_json_str_opt(o, "nonce", 4096, &nonce, "", err)) ||
        (rc = mt_json_str_opt(o, "associated_data", SIZE_MAX / 2, &aad, NULL, err)) ||
        (rc = mt_json_str_opt(o, "reference", 256, &it->reference, "", err)))
        return rc;
    if (ctx[0]) {
        if (op != MT_TP_ENCRYPT && op != MT_TP_DECRYPT && op != MT_TP_REWRAP)
            return mt_err_set(err, MT_EINVAL,
                              "field 'context': key derivation applies to encryption only "
                              "(docs/keystore.md)");
        if ((rc = mt_tp_b64("context", ctx, MT_TP_CONTEXT_MAX, true, &it->ctx, &it->ctx_len,
                            err)))
            return rc;
    }
    if (nonce[0])
        return mt_err_set(err, MT_EINVAL,
                          "field 'nonce': not taken; convergent keys derive their nonce "
                          "(docs/keystore.md)");
    if (op != MT_TP_DECRYPT && op != MT_TP_VERIFY &&
        (rc = version_opt(o, "key_version", &it->key_version, err)))
        return rc;
    if (aad) {
        if (op != MT_TP_ENCRYPT && op != MT_TP_DECRYPT && op != MT_TP_REWRAP)
            return mt_err_set(err, MT_EINVAL, "field 'associated_data' applies to encryption only");
        if ((rc = mt_tp_b64("associated_data", aad, 1u << 24, true, &it->aad, &it->aad_len, err)))
            return rc;
    }
    if (op == MT_TP_DECRYPT || op == MT_TP_REWRAP) {
        uint8_t *b = NULL;
        size_t n = 0;
        if ((rc = mt_tp_vault_parse("ciphertext", s, false, &it->data_version, &b, &n, err)))
            return rc;
        it->data = mt_secmem_malloc(n ? n : 1);
        if (!it->data) {
            free(b);
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        }
        memcpy(it->data, b, n);
        it->len = n;
        free(b);
    } else {
        if ((rc = mt_tp_b64(df, s, 1u << 26, true, &it->data, &it->len, err)))
            return rc;
    }
    if (op == MT_TP_VERIFY) {
        const char *sig = NULL, *hm = NULL;
        if ((rc = mt_json_str_opt(o, "signature", 1u << 16, &sig, NULL, err)) ||
            (rc = mt_json_str_opt(o, "hmac", 1u << 16, &hm, NULL, err)))
            return rc;
        if ((sig && hm) || (!sig && !hm))
            return mt_err_set(err, MT_EINVAL, "exactly one of 'signature' and 'hmac' is required");
        it->sig_text = sig ? sig : hm;
        it->is_hmac = hm != NULL;
    }
    return MT_OK;
}

mt_status mt_tp_batch_parse(const json_t *body, mt_tp_op op, mt_tp_batch *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(body))
        return mt_err_set(err, MT_EINVAL, "the request body must be a JSON object");
    const json_t *bi = json_object_get(body, "batch_input");
    if (bi && !json_is_null(bi)) {
        if (!json_is_array(bi) || json_array_size(bi) == 0)
            return mt_err_set(err, MT_EINVAL, "field 'batch_input': expected a non-empty array");
        if (json_array_size(bi) > MT_TP_MAX_BATCH)
            return mt_err_set(err, MT_EINVAL,
                              "field 'batch_input': more than %d items in one request",
                              MT_TP_MAX_BATCH);
        out->batch = true;
        out->n = json_array_size(bi);
    } else {
        out->n = 1;
    }
    out->items = calloc(out->n, sizeof *out->items);
    if (!out->items) {
        out->n = 0;
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < out->n; i++) {
        const json_t *o = out->batch ? json_array_get(bi, i) : body;
        mt_status rc;
        if (!json_is_object(o))
            rc = mt_err_set(err, MT_EINVAL, "expected an object");
        else
            rc = item_parse(o, op, out->batch, &out->items[i], err);
        if (rc) {
            if (out->batch)
                mt_err_prefix(err, rc, "batch_input[%zu]: ", i);
            mt_tp_batch_free(out);
            return rc;
        }
    }
    return MT_OK;
}
