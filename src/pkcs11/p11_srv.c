/* p11_srv: transit calls of the PKCS#11 module (p11_srv.h). */
#include "p11_srv.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_util.h"

bool p11_srv_name_ok(const char *s, size_t len)
{
    if (!s || len == 0 || len > P11_RESP_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return !(len <= 2 && s[0] == '.'); /* no "." or ".." path segments */
}

bool p11_srv_ref_ok(const char *s, size_t len)
{
    const char *colon = s ? memchr(s, ':', len) : NULL;
    if (!colon)
        return p11_srv_name_ok(s, len);
    size_t a = (size_t)(colon - s);
    return len <= P11_RESP_MAX_NAME && p11_srv_name_ok(s, a) &&
           p11_srv_name_ok(colon + 1, len - a - 1);
}

/* POSTs body (consumed) to path; *out gets the answer. */
static int post_json(mesatee_client *c, const char *path, json_t *body, char **out)
{
    *out = NULL;
    if (!body)
        return MESATEE_ENOMEM;
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!s)
        return MESATEE_ENOMEM;
    int rc = mesatee_call(c, "POST", path, s, out);
    mt_wipe(s, strlen(s));
    free(s);
    return rc;
}

/* Maps a failure to read an answer onto the library's status. */
static int bad_answer(void) { return MESATEE_ESERVER; }

int p11_srv_list(mesatee_client *c, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    char *out = NULL;
    int rc = mesatee_call(c, "GET", "/v1/transit/keys?list=true", NULL, &out);
    if (rc == MESATEE_ENOTFOUND) { /* Vault answers 404 when there are no keys */
        mesatee_free(out);
        return MESATEE_OK;
    }
    if (rc == MESATEE_OK) {
        mt_err err;
        if (p11_resp_names(out, strlen(out), names, n, &err) != MT_OK) {
            fprintf(stderr, "libmesatee-pkcs11: %s\n", err.msg);
            rc = bad_answer();
        }
    }
    mesatee_free(out);
    return rc;
}

int p11_srv_read(mesatee_client *c, const char *name, p11_keyinfo *out)
{
    memset(out, 0, sizeof *out);
    char path[256], *ans = NULL;
    snprintf(path, sizeof path, "/v1/transit/keys/%s", name);
    int rc = mesatee_call(c, "GET", path, NULL, &ans);
    if (rc == MESATEE_OK) {
        mt_err err;
        if (p11_resp_keyinfo(ans, strlen(ans), out, &err) != MT_OK) {
            fprintf(stderr, "libmesatee-pkcs11: key %s: %s\n", name, err.msg);
            rc = bad_answer();
        }
    }
    mesatee_free(ans);
    return rc;
}

int p11_srv_create(mesatee_client *c, const char *name, p11_ktype type)
{
    char path[256], *ans = NULL;
    snprintf(path, sizeof path, "/v1/transit/keys/%s", name);
    int rc = post_json(c, path, json_pack("{s:s}", "type", p11_ktype_name(type)), &ans);
    mesatee_free(ans);
    return rc;
}

static json_t *b64_value(const uint8_t *p, size_t n)
{
    char *s = mt_b64_encode(p, n);
    if (!s)
        return NULL;
    json_t *v = json_string(s);
    mt_wipe(s, strlen(s));
    free(s);
    return v;
}

int p11_srv_sign(mesatee_client *c, const char *name, uint32_t version, const char *hash_alg,
                 const char *sig_alg, long salt_len, const uint8_t *in, size_t in_len,
                 uint8_t **sig, size_t *sig_len)
{
    *sig = NULL;
    *sig_len = 0;
    json_t *b = json_object();
    if (!b)
        return MESATEE_ENOMEM;
    int bad = json_object_set_new(b, "input", b64_value(in, in_len));
    bad |= json_object_set_new(b, "key_version", json_integer(version));
    if (hash_alg) {
        bad |= json_object_set_new(b, "prehashed", json_true());
        bad |= json_object_set_new(b, "hash_algorithm", json_string(hash_alg));
    }
    if (sig_alg)
        bad |= json_object_set_new(b, "signature_algorithm", json_string(sig_alg));
    if (salt_len >= 0)
        bad |= json_object_set_new(b, "salt_length", json_integer(salt_len));
    if (bad) {
        json_decref(b);
        return MESATEE_ENOMEM;
    }
    char path[256], *ans = NULL;
    snprintf(path, sizeof path, "/v1/transit/sign/%s", name);
    int rc = post_json(c, path, b, &ans);
    if (rc == MESATEE_OK) {
        mt_err err;
        uint32_t v = 0;
        if (p11_resp_vault_blob(ans, strlen(ans), "signature", &v, sig, sig_len, &err) != MT_OK ||
            v != version) {
            free(*sig);
            *sig = NULL;
            *sig_len = 0;
            fprintf(stderr, "libmesatee-pkcs11: sign with %s: %s\n", name,
                    v != version ? "server signed with another key version" : err.msg);
            rc = bad_answer();
        }
    }
    mesatee_free(ans);
    return rc;
}

int p11_srv_encrypt(mesatee_client *c, const char *name, uint32_t version, const uint8_t *pt,
                    size_t pt_len, const uint8_t *aad, size_t aad_len, uint8_t **ct,
                    size_t *ct_len)
{
    *ct = NULL;
    *ct_len = 0;
    json_t *b = json_object();
    if (!b)
        return MESATEE_ENOMEM;
    int bad = json_object_set_new(b, "plaintext", b64_value(pt, pt_len));
    bad |= json_object_set_new(b, "key_version", json_integer(version));
    if (aad_len)
        bad |= json_object_set_new(b, "associated_data", b64_value(aad, aad_len));
    if (bad) {
        json_decref(b);
        return MESATEE_ENOMEM;
    }
    char path[256], *ans = NULL;
    snprintf(path, sizeof path, "/v1/transit/encrypt/%s", name);
    int rc = post_json(c, path, b, &ans);
    if (rc == MESATEE_OK) {
        mt_err err;
        uint32_t v = 0;
        if (p11_resp_vault_blob(ans, strlen(ans), "ciphertext", &v, ct, ct_len, &err) != MT_OK ||
            v != version) {
            free(*ct);
            *ct = NULL;
            *ct_len = 0;
            fprintf(stderr, "libmesatee-pkcs11: encrypt with %s: %s\n", name,
                    v != version ? "server used another key version" : err.msg);
            rc = bad_answer();
        }
    }
    mesatee_free(ans);
    return rc;
}

int p11_srv_decrypt(mesatee_client *c, const char *name, uint32_t version, const uint8_t *ct,
                    size_t ct_len, const uint8_t *aad, size_t aad_len, uint8_t **pt,
                    size_t *pt_len)
{
    *pt = NULL;
    *pt_len = 0;
    char *b64 = mt_b64_encode(ct, ct_len);
    if (!b64)
        return MESATEE_ENOMEM;
    size_t n = strlen(b64) + 32;
    char *vault = malloc(n);
    if (!vault) {
        free(b64);
        return MESATEE_ENOMEM;
    }
    snprintf(vault, n, "vault:v%u:%s", version, b64);
    free(b64);
    json_t *b = json_pack("{s:s}", "ciphertext", vault);
    free(vault);
    if (b && aad_len && json_object_set_new(b, "associated_data", b64_value(aad, aad_len))) {
        json_decref(b);
        return MESATEE_ENOMEM;
    }
    char path[256], *ans = NULL;
    snprintf(path, sizeof path, "/v1/transit/decrypt/%s", name);
    int rc = post_json(c, path, b, &ans);
    if (rc == MESATEE_OK) {
        mt_err err;
        if (p11_resp_b64(ans, strlen(ans), "plaintext", pt, pt_len, &err) != MT_OK) {
            fprintf(stderr, "libmesatee-pkcs11: decrypt with %s: %s\n", name, err.msg);
            rc = bad_answer();
        }
    }
    if (ans)
        mt_wipe(ans, strlen(ans));
    mesatee_free(ans);
    return rc;
}

int p11_srv_random(mesatee_client *c, uint8_t *out, size_t n)
{
    while (n > 0) {
        size_t chunk = n > 1024 ? 1024 : n;
        char path[64], *ans = NULL;
        snprintf(path, sizeof path, "/v1/transit/random/%zu", chunk);
        int rc = post_json(c, path, json_pack("{s:s}", "format", "base64"), &ans);
        if (rc == MESATEE_OK) {
            mt_err err;
            uint8_t *buf = NULL;
            size_t len = 0;
            if (p11_resp_b64(ans, strlen(ans), "random_bytes", &buf, &len, &err) != MT_OK ||
                len != chunk) {
                fprintf(stderr, "libmesatee-pkcs11: random: %s\n",
                        buf ? "server sent the wrong number of bytes" : err.msg);
                rc = bad_answer();
            } else {
                memcpy(out, buf, chunk);
                out += chunk;
                n -= chunk;
            }
            if (buf)
                mt_wipe(buf, len);
            free(buf);
        }
        mesatee_free(ans);
        if (rc != MESATEE_OK)
            return rc;
    }
    return MESATEE_OK;
}
