/* p11_resp: reader of the server's transit answers (p11_resp.h). */
#include "p11_resp.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "mt_json.h"
#include "mt_util.h"

static const struct {
    p11_ktype t;
    const char *name;
} ktypes[] = {
    {P11_KT_AES256_GCM96, "aes256-gcm96"}, {P11_KT_ECDSA_P256, "ecdsa-p256"},
    {P11_KT_ECDSA_P384, "ecdsa-p384"},     {P11_KT_ED25519, "ed25519"},
    {P11_KT_RSA2048, "rsa-2048"},          {P11_KT_RSA3072, "rsa-3072"},
    {P11_KT_RSA4096, "rsa-4096"},
};

const char *p11_ktype_name(p11_ktype t)
{
    for (size_t i = 0; i < sizeof ktypes / sizeof ktypes[0]; i++)
        if (ktypes[i].t == t)
            return ktypes[i].name;
    return NULL;
}

p11_ktype p11_ktype_from_name(const char *s)
{
    for (size_t i = 0; i < sizeof ktypes / sizeof ktypes[0]; i++)
        if (!strcmp(ktypes[i].name, s))
            return ktypes[i].t;
    return P11_KT_OTHER;
}

/* Parses the answer and returns its "data" object (borrowed from *root). */
static mt_status resp_data(const char *json, size_t len, json_t **root, json_t **data,
                           mt_err *err)
{
    *root = mt_json_parse(json, len, P11_RESP_MAX_BYTES, MT_JSON_DEFAULT_DEPTH, err);
    if (!*root)
        return mt_err_prefix(err, MT_EINVAL, "server answer: ");
    *data = json_object_get(*root, "data");
    if (!json_is_object(*data)) {
        json_decref(*root);
        *root = NULL;
        return mt_err_set(err, MT_EINVAL, "server answer: no 'data' object");
    }
    return MT_OK;
}

void p11_keyinfo_free(p11_keyinfo *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->nver; i++)
        free(k->ver[i].spki);
    free(k->ver);
    free(k->name);
    memset(k, 0, sizeof *k);
}

/* PEM public key -> DER SubjectPublicKeyInfo of the expected algorithm. */
static mt_status pem_to_spki(const char *pem, p11_ktype t, uint8_t **der, size_t *der_len,
                             mt_err *err)
{
    EVP_PKEY *pk = NULL;
    if (t == P11_KT_ED25519 && strncmp(pem, "-----", 5) != 0) {
        /* Vault's form for ed25519: base64 of the 32 raw bytes */
        uint8_t *raw = NULL;
        size_t rn = 0;
        if (mt_b64_decode(pem, &raw, &rn, NULL) == MT_OK && rn == 32)
            pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, rn);
        free(raw);
        if (!pk)
            return mt_err_set(err, MT_EINVAL,
                              "server answer: public_key is not a 32-byte base64 ed25519 key");
    } else {
        BIO *b = BIO_new_mem_buf(pem, (int)strlen(pem));
        pk = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    }
    if (!pk)
        return mt_err_set(err, MT_EINVAL, "server answer: public_key is not a PEM public key");
    int id = EVP_PKEY_get_base_id(pk), bits = EVP_PKEY_get_bits(pk);
    int ok = 0;
    switch (t) {
    case P11_KT_ECDSA_P256: ok = id == EVP_PKEY_EC && bits == 256; break;
    case P11_KT_ECDSA_P384: ok = id == EVP_PKEY_EC && bits == 384; break;
    case P11_KT_ED25519: ok = id == EVP_PKEY_ED25519; break;
    case P11_KT_RSA2048: ok = id == EVP_PKEY_RSA && bits == 2048; break;
    case P11_KT_RSA3072: ok = id == EVP_PKEY_RSA && bits == 3072; break;
    case P11_KT_RSA4096: ok = id == EVP_PKEY_RSA && bits == 4096; break;
    default: break;
    }
    if (!ok) {
        EVP_PKEY_free(pk);
        return mt_err_set(err, MT_EINVAL, "server answer: public_key does not match the key type");
    }
    unsigned char *buf = NULL;
    int n = i2d_PUBKEY(pk, &buf);
    EVP_PKEY_free(pk);
    if (n <= 0)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    *der = malloc((size_t)n);
    if (!*der) {
        OPENSSL_free(buf);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    memcpy(*der, buf, (size_t)n);
    OPENSSL_free(buf);
    *der_len = (size_t)n;
    return MT_OK;
}

static int ver_cmp(const void *a, const void *b)
{
    uint32_t x = ((const p11_key_version *)a)->version, y = ((const p11_key_version *)b)->version;
    return x < y ? -1 : x > y;
}

/* "1".."4294967295" without leading zeros. */
static int parse_version_key(const char *s, uint32_t *out)
{
    uint64_t v = 0;
    if (!*s || *s == '0' || strlen(s) > 10)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

mt_status p11_resp_keyinfo(const char *json, size_t len, p11_keyinfo *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *root = NULL, *d = NULL;
    mt_status rc = resp_data(json, len, &root, &d, err);
    if (rc != MT_OK)
        return rc;
    const char *name, *type;
    int64_t latest, mindec;
    json_t *keys = json_object_get(d, "keys");
    if ((rc = mt_json_str(d, "name", P11_RESP_MAX_NAME, &name, err)) != MT_OK ||
        (rc = mt_json_str(d, "type", 64, &type, err)) != MT_OK ||
        (rc = mt_json_int(d, "latest_version", 1, UINT32_MAX, &latest, err)) != MT_OK ||
        (rc = mt_json_int_opt(d, "min_decryption_version", 0, UINT32_MAX, &mindec, 1, err)) !=
            MT_OK) {
        rc = mt_err_prefix(err, MT_EINVAL, "server answer: ");
        goto out;
    }
    if (!*name || !json_is_object(keys) || json_object_size(keys) == 0 ||
        json_object_size(keys) > P11_RESP_MAX_VERSIONS) {
        rc = mt_err_set(err, MT_EINVAL, "server answer: bad key name or 'keys' object");
        goto out;
    }
    out->type = p11_ktype_from_name(type);
    out->latest_version = (uint32_t)latest;
    out->min_decryption_version = (uint32_t)mindec;
    if (!(out->name = mt_strdup(name)) ||
        !(out->ver = calloc(json_object_size(keys), sizeof *out->ver))) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    const char *vk;
    json_t *vv;
    json_object_foreach(keys, vk, vv)
    {
        p11_key_version *v = &out->ver[out->nver];
        if (parse_version_key(vk, &v->version) != 0) {
            rc = mt_err_set(err, MT_EINVAL, "server answer: 'keys' has a bad version number");
            goto out;
        }
        out->nver++;
        if (out->type == P11_KT_OTHER || out->type == P11_KT_AES256_GCM96)
            continue; /* symmetric: the value is a creation time, not used */
        const char *pem;
        if (!json_is_object(vv) ||
            mt_json_str(vv, "public_key", 16384, &pem, err) != MT_OK) {
            rc = mt_err_set(err, MT_EINVAL, "server answer: key version %u has no public_key",
                            v->version);
            goto out;
        }
        if ((rc = pem_to_spki(pem, out->type, &v->spki, &v->spki_len, err)) != MT_OK)
            goto out;
    }
    qsort(out->ver, out->nver, sizeof *out->ver, ver_cmp);
    for (size_t i = 1; i < out->nver; i++)
        if (out->ver[i].version == out->ver[i - 1].version) {
            rc = mt_err_set(err, MT_EINVAL, "server answer: duplicate key version");
            goto out;
        }
    if (out->ver[out->nver - 1].version > out->latest_version) {
        rc = mt_err_set(err, MT_EINVAL, "server answer: a version is above latest_version");
        goto out;
    }
out:
    json_decref(root);
    if (rc != MT_OK)
        p11_keyinfo_free(out);
    return rc;
}

void p11_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* Copies the names of arr (NULL: none) into *names / *n. */
static mt_status names_from_array(const json_t *arr, char ***names, size_t *n, mt_err *err)
{
    mt_status rc = MT_OK;
    if (!arr || json_array_size(arr) == 0)
        return MT_OK;
    if (json_array_size(arr) > P11_RESP_MAX_KEYS)
        return mt_err_set(err, MT_EINVAL, "server answer: more than %d keys", P11_RESP_MAX_KEYS);
    char **v = calloc(json_array_size(arr), sizeof *v);
    if (!v) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *s = json_string_value(e);
        if (!s || !*s || json_string_length(e) > P11_RESP_MAX_NAME ||
            strlen(s) != json_string_length(e)) {
            p11_names_free(v, i);
            rc = mt_err_set(err, MT_EINVAL, "server answer: 'keys' item %zu is not a key name", i);
            goto out;
        }
        if (!(v[i] = mt_strdup(s))) {
            p11_names_free(v, i);
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
    }
    *names = v;
    *n = json_array_size(arr);
out:
    return rc;
}

mt_status p11_resp_names(const char *json, size_t len, char ***names, size_t *n, mt_err *err)
{
    *names = NULL;
    *n = 0;
    json_t *root = NULL, *d = NULL, *arr = NULL;
    mt_status rc = resp_data(json, len, &root, &d, err);
    if (rc != MT_OK)
        return rc;
    if ((rc = mt_json_array_opt(d, "keys", P11_RESP_MAX_KEYS, &arr, err)) != MT_OK)
        rc = mt_err_prefix(err, MT_EINVAL, "server answer: ");
    else
        rc = names_from_array(arr, names, n, err);
    json_decref(root);
    return rc;
}

mt_status p11_resp_name_list(const char *json, size_t len, char ***names, size_t *n, mt_err *err)
{
    *names = NULL;
    *n = 0;
    json_t *root = mt_json_parse(json, len, P11_RESP_MAX_BYTES, MT_JSON_DEFAULT_DEPTH, err);
    if (!root)
        return mt_err_prefix(err, MT_EINVAL, "server answer: ");
    mt_status rc = json_is_array(root)
                       ? names_from_array(root, names, n, err)
                       : mt_err_set(err, MT_EINVAL, "server answer: the key list is not an array");
    json_decref(root);
    return rc;
}

/* The string field of the answer's data object into *s (owned by *root,
 * which the caller json_decref()s, also on failure: NULL then). */
static mt_status resp_str(const char *json, size_t len, const char *field, json_t **root,
                          const char **s, mt_err *err)
{
    json_t *d = NULL;
    mt_status rc = resp_data(json, len, root, &d, err);
    if (rc == MT_OK && (rc = mt_json_str(d, field, P11_RESP_MAX_BYTES, s, err)) != MT_OK)
        rc = mt_err_prefix(err, MT_EINVAL, "server answer: ");
    return rc;
}

mt_status p11_resp_vault_blob(const char *json, size_t len, const char *field, uint32_t *version,
                              uint8_t **out, size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    json_t *root;
    const char *s;
    mt_status rc = resp_str(json, len, field, &root, &s, err);
    if (rc == MT_OK && (rc = p11_resp_vault_str(s, version, out, out_len, err)) != MT_OK)
        rc = mt_err_prefix(err, MT_EINVAL, "'%s': ", field);
    json_decref(root);
    return rc;
}

mt_status p11_resp_vault_str(const char *s, uint32_t *version, uint8_t **out, size_t *out_len,
                             mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    const char *field = "value";
    mt_status rc = MT_OK;
    if (!s || strlen(s) > P11_RESP_MAX_BYTES) {
        rc = mt_err_set(err, MT_EINVAL, "server answer: no vault:vN: value");
        goto out;
    }
    if (strncmp(s, "vault:v", 7) != 0) {
        rc = mt_err_set(err, MT_EINVAL, "server answer: '%s' is not in vault:vN: form", field);
        goto out;
    }
    const char *colon = strchr(s + 7, ':');
    char num[16];
    size_t nl = colon ? (size_t)(colon - (s + 7)) : 0;
    if (!colon || nl == 0 || nl >= sizeof num) {
        rc = mt_err_set(err, MT_EINVAL, "server answer: '%s' is not in vault:vN: form", field);
        goto out;
    }
    memcpy(num, s + 7, nl);
    num[nl] = '\0';
    if (parse_version_key(num, version) != 0) {
        rc = mt_err_set(err, MT_EINVAL, "server answer: '%s' has a bad version", field);
        goto out;
    }
    if ((rc = mt_b64_decode(colon + 1, out, out_len, err)) != MT_OK) {
        rc = mt_err_set(err, MT_EINVAL, "server answer: '%s' is not valid base64", field);
        goto out;
    }
out:
    return rc;
}

mt_status p11_resp_b64(const char *json, size_t len, const char *field, uint8_t **out,
                       size_t *out_len, mt_err *err)
{
    *out = NULL;
    *out_len = 0;
    json_t *root;
    const char *s;
    mt_status rc = resp_str(json, len, field, &root, &s, err);
    if (rc == MT_OK && mt_b64_decode(s, out, out_len, err) != MT_OK)
        rc = mt_err_set(err, MT_EINVAL, "server answer: '%s' is not valid base64", field);
    json_decref(root);
    return rc;
}

mt_status p11_resp_valid(const char *json, size_t len, bool *valid, mt_err *err)
{
    *valid = false;
    json_t *root = NULL, *d = NULL;
    mt_status rc = resp_data(json, len, &root, &d, err);
    if (rc != MT_OK)
        return rc;
    json_t *v = json_object_get(d, "valid");
    if (!json_is_boolean(v))
        rc = mt_err_set(err, MT_EINVAL, "server answer: 'valid' is not a boolean");
    else
        *valid = json_is_true(v);
    json_decref(root);
    return rc;
}
