/* libmesatee transit calls (mesatee_transit_*): the KeyStore's
 * Vault-transit-compatible API (docs/keystore.md) with raw bytes in and out.
 * Contract: mesatee.h, "KeyStore transit API". Each call is one
 * mesatee_call; answers are read with jansson and checked field by field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client_internal.h"
#include "mesatee.h"
#include "mt_secmem.h"
#include "mt_transit.h"
#include "mt_transit_parse.h"
#include "mt_util.h"

/* "/v1/transit/<what>/<name><tail>" into buf after checking name. */
static int tpath(mesatee_client *c, char *buf, size_t cap, const char *what, const char *name,
                 const char *tail)
{
    char owner[65], nm[MT_TP_NAME_MAX + 1];
    if (!c)
        return mt_client_set_errf(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!name || !mt_tp_key_ref(name, owner, nm))
        return mt_client_set_errf(c, MESATEE_EINVAL,
                                  "invalid key name: 1 to 64 of [A-Za-z0-9_.-], or owner:name");
    snprintf(buf, cap, "/v1/transit/%s/%s%s", what, name, tail ? tail : "");
    return MESATEE_OK;
}

/* POSTs body (consumed) to path; *data gets the answer's "data" object
 * (a new reference) when data is not NULL; json_out (optional) the body. */
static int tpost(mesatee_client *c, const char *method, const char *path, json_t *body,
                 json_t **data, char **json_out)
{
    if (data)
        *data = NULL;
    char *req = NULL;
    if (body) {
        req = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (!req)
            return mt_client_set_errf(c, MESATEE_ENOMEM, "out of memory");
    }
    char *resp = NULL;
    int st = mesatee_call(c, method, path, req, &resp);
    if (req) {
        mt_wipe(req, strlen(req));
        free(req);
    }
    if (st == MESATEE_OK && data) {
        json_t *root = resp ? json_loads(resp, 0, NULL) : NULL;
        json_t *d = json_object_get(root, "data");
        if (!json_is_object(d))
            st = mt_client_set_errf(c, MESATEE_ESERVER, "server answer has no 'data' object");
        else
            *data = json_incref(d);
        json_decref(root);
    }
    if (json_out)
        *json_out = resp;
    else if (resp) {
        mt_wipe(resp, strlen(resp));
        mesatee_free(resp);
    }
    return st;
}

static int tstr(mesatee_client *c, json_t *d, const char *field, char **out)
{
    const char *v = json_string_value(json_object_get(d, field));
    if (!v)
        return mt_client_set_errf(c, MESATEE_ESERVER, "server answer has no string field '%s'",
                                  field);
    if (!(*out = mt_strdup(v)))
        return mt_client_set_errf(c, MESATEE_ENOMEM, "out of memory");
    return MESATEE_OK;
}

static void reset(char **p)
{
    if (p)
        *p = NULL;
}

MESATEE_API int mesatee_transit_key_create(mesatee_client *c, const char *name, const char *type,
                                           char **json_out)
{
    reset(json_out);
    char path[200];
    int st = tpath(c, path, sizeof path, "keys", name, NULL);
    if (st)
        return st;
    json_t *b = type ? json_pack("{s:s}", "type", type) : json_object();
    return tpost(c, "POST", path, b, NULL, json_out);
}

MESATEE_API int mesatee_transit_key_read(mesatee_client *c, const char *name, char **json_out)
{
    reset(json_out);
    char path[200];
    int st = tpath(c, path, sizeof path, "keys", name, NULL);
    return st ? st : tpost(c, "GET", path, NULL, NULL, json_out);
}

MESATEE_API int mesatee_transit_key_list(mesatee_client *c, char **names_out)
{
    reset(names_out);
    if (!c)
        return mt_client_set_errf(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!names_out)
        return mt_client_set_errf(c, MESATEE_EINVAL, "names_out must not be NULL");
    json_t *d = NULL;
    int st = tpost(c, "GET", "/v1/transit/keys?list=true", NULL, &d, NULL);
    if (st == MESATEE_ENOTFOUND) { /* Vault's answer to an empty list */
        *names_out = mt_strdup("[]");
        return *names_out ? MESATEE_OK : mt_client_set_errf(c, MESATEE_ENOMEM, "out of memory");
    }
    if (st)
        return st;
    json_t *keys = json_object_get(d, "keys");
    if (!json_is_array(keys))
        st = mt_client_set_errf(c, MESATEE_ESERVER, "server answer has no 'keys' array");
    else if (!(*names_out = json_dumps(keys, JSON_COMPACT)))
        st = mt_client_set_errf(c, MESATEE_ENOMEM, "out of memory");
    json_decref(d);
    return st;
}

MESATEE_API int mesatee_transit_key_delete(mesatee_client *c, const char *name)
{
    char path[200];
    int st = tpath(c, path, sizeof path, "keys", name, NULL);
    return st ? st : tpost(c, "DELETE", path, NULL, NULL, NULL);
}

MESATEE_API int mesatee_transit_key_rotate(mesatee_client *c, const char *name, char **json_out)
{
    reset(json_out);
    char path[200];
    int st = tpath(c, path, sizeof path, "keys", name, "/rotate");
    return st ? st : tpost(c, "POST", path, json_object(), NULL, json_out);
}

MESATEE_API int mesatee_transit_key_config(mesatee_client *c, const char *name,
                                           const char *config_json, char **json_out)
{
    reset(json_out);
    char path[200];
    int st = tpath(c, path, sizeof path, "keys", name, "/config");
    if (st)
        return st;
    json_t *b = config_json ? json_loads(config_json, 0, NULL) : NULL;
    if (!json_is_object(b)) {
        json_decref(b);
        return mt_client_set_errf(c, MESATEE_EINVAL, "config_json must be a JSON object");
    }
    return tpost(c, "POST", path, b, NULL, json_out);
}

/* base64 of bytes as a JSON string (NULL on allocation failure). */
static json_t *b64_json(const uint8_t *b, size_t n)
{
    char *s = mt_b64_encode(b ? b : (const uint8_t *)"", n);
    if (!s)
        return NULL;
    json_t *j = json_string(s);
    mt_wipe(s, strlen(s));
    free(s);
    return j;
}

MESATEE_API int mesatee_transit_encrypt(mesatee_client *c, const char *name, const uint8_t *pt,
                                        size_t pt_len, const uint8_t *aad, size_t aad_len,
                                        uint32_t key_version, char **ciphertext_out)
{
    reset(ciphertext_out);
    char path[200];
    int st = tpath(c, path, sizeof path, "encrypt", name, NULL);
    if (st)
        return st;
    if (!ciphertext_out || (!pt && pt_len))
        return mt_client_set_errf(c, MESATEE_EINVAL,
                                  "plaintext and ciphertext_out must not be NULL");
    json_t *b = json_object();
    json_object_set_new(b, "plaintext", b64_json(pt, pt_len));
    if (aad)
        json_object_set_new(b, "associated_data", b64_json(aad, aad_len));
    if (key_version)
        json_object_set_new(b, "key_version", json_integer(key_version));
    json_t *d = NULL;
    if ((st = tpost(c, "POST", path, b, &d, NULL)))
        return st;
    st = tstr(c, d, "ciphertext", ciphertext_out);
    json_decref(d);
    return st;
}

MESATEE_API int mesatee_transit_decrypt(mesatee_client *c, const char *name,
                                        const char *ciphertext, const uint8_t *aad,
                                        size_t aad_len, uint8_t **pt_out, size_t *pt_len)
{
    if (pt_out)
        *pt_out = NULL;
    if (pt_len)
        *pt_len = 0;
    char path[200];
    int st = tpath(c, path, sizeof path, "decrypt", name, NULL);
    if (st)
        return st;
    if (!ciphertext || !pt_out || !pt_len)
        return mt_client_set_errf(c, MESATEE_EINVAL,
                                  "ciphertext, pt_out and pt_len must not be NULL");
    json_t *b = json_pack("{s:s}", "ciphertext", ciphertext);
    if (aad)
        json_object_set_new(b, "associated_data", b64_json(aad, aad_len));
    json_t *d = NULL;
    if ((st = tpost(c, "POST", path, b, &d, NULL)))
        return st;
    const char *p = json_string_value(json_object_get(d, "plaintext"));
    mt_err err;
    if (!p || mt_tp_b64("plaintext", p, SIZE_MAX / 4, true, pt_out, pt_len, &err))
        st = mt_client_set_errf(c, MESATEE_ESERVER, "server answer has no base64 'plaintext'");
    json_decref(d);
    return st;
}

/* The sign/verify request body. */
static json_t *sig_body(const uint8_t *in, size_t n, const char *hash_algorithm, int prehashed,
                        const char *signature_algorithm, const char *marshaling_algorithm)
{
    json_t *b = json_object();
    json_object_set_new(b, "input", b64_json(in, n));
    if (hash_algorithm)
        json_object_set_new(b, "hash_algorithm", json_string(hash_algorithm));
    if (prehashed)
        json_object_set_new(b, "prehashed", json_true());
    if (signature_algorithm)
        json_object_set_new(b, "signature_algorithm", json_string(signature_algorithm));
    if (marshaling_algorithm)
        json_object_set_new(b, "marshaling_algorithm", json_string(marshaling_algorithm));
    return b;
}

MESATEE_API int mesatee_transit_sign(mesatee_client *c, const char *name, const uint8_t *in,
                                     size_t n, const char *hash_algorithm, int prehashed,
                                     const char *signature_algorithm,
                                     const char *marshaling_algorithm, uint32_t key_version,
                                     char **signature_out)
{
    reset(signature_out);
    char path[200];
    int st = tpath(c, path, sizeof path, "sign", name, NULL);
    if (st)
        return st;
    if (!signature_out || (!in && n))
        return mt_client_set_errf(c, MESATEE_EINVAL, "input and signature_out must not be NULL");
    json_t *b = sig_body(in, n, hash_algorithm, prehashed, signature_algorithm,
                         marshaling_algorithm);
    if (key_version)
        json_object_set_new(b, "key_version", json_integer(key_version));
    json_t *d = NULL;
    if ((st = tpost(c, "POST", path, b, &d, NULL)))
        return st;
    st = tstr(c, d, "signature", signature_out);
    json_decref(d);
    return st;
}

MESATEE_API int mesatee_transit_verify(mesatee_client *c, const char *name, const uint8_t *in,
                                       size_t n, const char *hash_algorithm, int prehashed,
                                       const char *signature_algorithm,
                                       const char *marshaling_algorithm, const char *signature,
                                       int *valid_out)
{
    if (valid_out)
        *valid_out = 0;
    char path[200];
    int st = tpath(c, path, sizeof path, "verify", name, NULL);
    if (st)
        return st;
    if (!signature || !valid_out || (!in && n))
        return mt_client_set_errf(c, MESATEE_EINVAL,
                                  "input, signature and valid_out must not be NULL");
    json_t *b = sig_body(in, n, hash_algorithm, prehashed, signature_algorithm,
                         marshaling_algorithm);
    json_object_set_new(b, "signature", json_string(signature));
    json_t *d = NULL;
    if ((st = tpost(c, "POST", path, b, &d, NULL)))
        return st;
    json_t *v = json_object_get(d, "valid");
    if (!json_is_boolean(v))
        st = mt_client_set_errf(c, MESATEE_ESERVER, "server answer has no boolean 'valid'");
    else
        *valid_out = json_is_true(v);
    json_decref(d);
    return st;
}

MESATEE_API int mesatee_transit_random(mesatee_client *c, size_t n, uint8_t **out)
{
    if (out)
        *out = NULL;
    if (!c)
        return mt_client_set_errf(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!out || n == 0 || n > 65536)
        return mt_client_set_errf(c, MESATEE_EINVAL, "out must not be NULL; n is 1 to 65536");
    json_t *d = NULL;
    int st = tpost(c, "POST", "/v1/transit/random",
                   json_pack("{s:I, s:s}", "bytes", (json_int_t)n, "format", "base64"), &d,
                   NULL);
    if (st)
        return st;
    const char *s = json_string_value(json_object_get(d, "random_bytes"));
    size_t got = 0;
    mt_err err;
    if (!s || mt_tp_b64("random_bytes", s, n, true, out, &got, &err) || got != n) {
        mt_secmem_free(*out);
        *out = NULL;
        st = mt_client_set_errf(c, MESATEE_ESERVER, "server answer has no %zu random bytes", n);
    }
    json_decref(d);
    return st;
}

/* PEM of an ed25519 public key from its 32 raw bytes (SPKI DER: a fixed
 * 12-byte prefix, RFC 8410). */
static char *ed25519_pem(const uint8_t raw[32])
{
    static const uint8_t pre[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                    0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
    uint8_t der[44];
    memcpy(der, pre, 12);
    memcpy(der + 12, raw, 32);
    char *b = mt_b64_encode(der, sizeof der);
    if (!b)
        return NULL;
    size_t need = strlen(b) + 80;
    char *pem = malloc(need);
    if (pem)
        snprintf(pem, need, "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", b);
    free(b);
    return pem;
}

MESATEE_API int mesatee_transit_public_key(mesatee_client *c, const char *name, uint32_t version,
                                           char **pem_out, uint32_t *version_out)
{
    reset(pem_out);
    if (version_out)
        *version_out = 0;
    char path[200];
    int st = tpath(c, path, sizeof path, "keys", name, NULL);
    if (st)
        return st;
    if (!pem_out)
        return mt_client_set_errf(c, MESATEE_EINVAL, "pem_out must not be NULL");
    json_t *d = NULL;
    if ((st = tpost(c, "GET", path, NULL, &d, NULL)))
        return st;
    const char *type = json_string_value(json_object_get(d, "type"));
    json_t *lv = json_object_get(d, "latest_version");
    uint32_t v = version ? version : (uint32_t)json_integer_value(lv);
    char num[16];
    snprintf(num, sizeof num, "%u", (unsigned)v);
    json_t *e = json_object_get(json_object_get(d, "keys"), num);
    const char *pub = json_string_value(json_object_get(e, "public_key"));
    if (!type || !json_is_integer(lv)) {
        st = mt_client_set_errf(c, MESATEE_ESERVER, "server answer is not a key description");
    } else if (!pub) {
        st = mt_client_set_errf(
            c, json_is_object(e) || !e ? MESATEE_ENOTFOUND : MESATEE_EINVAL,
            "key has no public key for version %u (symmetric key or no such version)", (unsigned)v);
    } else if (!strcmp(type, "ed25519")) {
        uint8_t *raw = NULL;
        size_t rl = 0;
        mt_err err;
        if (mt_tp_b64("public_key", pub, 32, false, &raw, &rl, &err) || rl != 32 ||
            !(*pem_out = ed25519_pem(raw)))
            st = mt_client_set_errf(c, MESATEE_ESERVER,
                                    "server answer has a malformed ed25519 public key");
        free(raw);
    } else if (!(*pem_out = mt_strdup(pub))) {
        st = mt_client_set_errf(c, MESATEE_ENOMEM, "out of memory");
    }
    if (!st && version_out)
        *version_out = v;
    json_decref(d);
    return st;
}

MESATEE_API int mesatee_transit_key_import(mesatee_client *c, const char *name, const char *type,
                                           const uint8_t *material, size_t n, int allow_rotation,
                                           char **json_out)
{
    reset(json_out);
    char path[200];
    int st = tpath(c, path, sizeof path, "keys", name, "/import");
    if (st)
        return st;
    if (!material || !n)
        return mt_client_set_errf(c, MESATEE_EINVAL, "key material must not be empty");
    json_t *d = NULL;
    if ((st = tpost(c, "GET", "/v1/transit/wrapping_key", NULL, &d, NULL)))
        return st;
    const char *pem = json_string_value(json_object_get(d, "public_key"));
    uint8_t *blob = NULL;
    size_t bl = 0;
    mt_err err;
    if (!pem)
        st = mt_client_set_errf(c, MESATEE_ESERVER, "server answer has no 'public_key'");
    else if (mt_tk_import_wrap(pem, MT_TH_SHA2_256, material, n, &blob, &bl, &err))
        st = mt_client_set_errf(c, MESATEE_EINVAL, "cannot wrap the key for import: %s", err.msg);
    json_decref(d);
    if (st)
        return st;
    json_t *b = json_pack("{s:o, s:s, s:s, s:b}", "ciphertext", b64_json(blob, bl),
                          "hash_function", "SHA256", "type", type ? type : "aes256-gcm96",
                          "allow_rotation", allow_rotation ? 1 : 0);
    free(blob);
    return tpost(c, "POST", path, b, NULL, json_out);
}

MESATEE_API int mesatee_transit_grant(mesatee_client *c, const char *name, const char *user,
                                      const char *const *operations, size_t n_ops,
                                      char **json_out)
{
    reset(json_out);
    char path[200];
    int st = tpath(c, path, sizeof path, "keys", name, "/grants");
    if (st)
        return st;
    if (!user || !operations || !n_ops)
        return mt_client_set_errf(c, MESATEE_EINVAL,
                                  "user and at least one operation are required");
    json_t *ops = json_array();
    for (size_t i = 0; i < n_ops; i++)
        json_array_append_new(ops, json_string(operations[i] ? operations[i] : ""));
    return tpost(c, "POST", path, json_pack("{s:s, s:o}", "user", user, "operations", ops), NULL,
                 json_out);
}

MESATEE_API int mesatee_transit_revoke(mesatee_client *c, const char *name, const char *user)
{
    char path[300], tail[80];
    if (!user || strlen(user) > 64 || strchr(user, '/'))
        return mt_client_set_errf(c, MESATEE_EINVAL, "user must be a username");
    snprintf(tail, sizeof tail, "/grants/%s", user);
    int st = tpath(c, path, sizeof path, "keys", name, tail);
    return st ? st : tpost(c, "DELETE", path, NULL, NULL, NULL);
}

MESATEE_API int mesatee_transit_decode(const char *s, uint32_t *version, uint8_t **out,
                                       size_t *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!s || !version || !out || !n)
        return mt_client_set_errf(NULL, MESATEE_EINVAL, "arguments must not be NULL");
    mt_err err;
    if (mt_tp_vault_parse("value", s, false, version, out, n, &err) &&
        mt_tp_vault_parse("value", s, true, version, out, n, &err))
        return mt_client_set_errf(NULL, MESATEE_EINVAL, "%s", err.msg);
    return MESATEE_OK;
}
