/* p11_srv: transit calls of the PKCS#11 module (p11_srv.h). */
#include "p11_srv.h"

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

/* Maps a failure to read an answer onto the library's status. */
static int bad_answer(void) { return MESATEE_ESERVER; }

int p11_srv_list(mesatee_client *c, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    char *out = NULL;
    int rc = mesatee_transit_key_list(c, &out);
    if (rc == MESATEE_OK) {
        mt_err err;
        if (p11_resp_name_list(out, strlen(out), names, n, &err) != MT_OK) {
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
    char *ans = NULL;
    int rc = mesatee_transit_key_read(c, name, &ans);
    if (rc == MESATEE_OK) {
        mt_err err;
        if (!ans || p11_resp_keyinfo(ans, strlen(ans), out, &err) != MT_OK) {
            fprintf(stderr, "libmesatee-pkcs11: key %s: %s\n", name,
                    ans ? err.msg : "empty answer");
            rc = bad_answer();
        }
    }
    mesatee_free(ans);
    return rc;
}

int p11_srv_create(mesatee_client *c, const char *name, p11_ktype type)
{
    char *ans = NULL;
    int rc = mesatee_transit_key_create(c, name, p11_ktype_name(type), &ans);
    mesatee_free(ans);
    return rc;
}

/* Reads a "vault:vN:..." answer of the expected version into *out. */
static int vault_answer(const char *what, const char *name, const char *s, uint32_t version,
                        uint8_t **out, size_t *out_len)
{
    mt_err err;
    uint32_t v = 0;
    if (p11_resp_vault_str(s, &v, out, out_len, &err) != MT_OK || v != version) {
        free(*out);
        *out = NULL;
        *out_len = 0;
        fprintf(stderr, "libmesatee-pkcs11: %s with %s: %s\n", what, name,
                v && v != version ? "the server used another key version" : err.msg);
        return bad_answer();
    }
    return MESATEE_OK;
}

int p11_srv_sign(mesatee_client *c, const char *name, uint32_t version, const char *hash_alg,
                 const char *sig_alg, const uint8_t *in, size_t in_len, uint8_t **sig,
                 size_t *sig_len)
{
    *sig = NULL;
    *sig_len = 0;
    char *s = NULL;
    int rc = mesatee_transit_sign(c, name, in, in_len, hash_alg, hash_alg != NULL, sig_alg,
                                  NULL /* asn1: DER */, version, &s);
    if (rc == MESATEE_OK)
        rc = vault_answer("sign", name, s, version, sig, sig_len);
    mesatee_free(s);
    return rc;
}

int p11_srv_encrypt(mesatee_client *c, const char *name, uint32_t version, const uint8_t *pt,
                    size_t pt_len, const uint8_t *aad, size_t aad_len, uint8_t **ct,
                    size_t *ct_len)
{
    *ct = NULL;
    *ct_len = 0;
    char *s = NULL;
    int rc = mesatee_transit_encrypt(c, name, pt, pt_len, aad_len ? aad : NULL, aad_len, version,
                                     &s);
    if (rc == MESATEE_OK)
        rc = vault_answer("encrypt", name, s, version, ct, ct_len);
    mesatee_free(s);
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
    uint8_t *p = NULL;
    size_t pl = 0;
    int rc = mesatee_transit_decrypt(c, name, vault, aad_len ? aad : NULL, aad_len, &p, &pl);
    free(vault);
    if (rc == MESATEE_OK) { /* into our own heap buffer: the caller frees with free() */
        *pt = malloc(pl ? pl : 1);
        if (!*pt)
            rc = MESATEE_ENOMEM;
        else if (pl)
            memcpy(*pt, p, pl);
        *pt_len = *pt ? pl : 0;
    }
    if (p)
        mt_wipe(p, pl);
    mesatee_free(p);
    return rc;
}

int p11_srv_random(mesatee_client *c, uint8_t *out, size_t n)
{
    while (n > 0) {
        size_t chunk = n > 65536 ? 65536 : n;
        uint8_t *buf = NULL;
        int rc = mesatee_transit_random(c, chunk, &buf);
        if (rc != MESATEE_OK) {
            mesatee_free(buf);
            return rc;
        }
        memcpy(out, buf, chunk);
        mt_wipe(buf, chunk);
        mesatee_free(buf);
        out += chunk;
        n -= chunk;
    }
    return MESATEE_OK;
}

int p11_srv_import(mesatee_client *c, const char *name, p11_ktype type, const uint8_t *material,
                   size_t n)
{
    char *ans = NULL;
    int rc = mesatee_transit_key_import(c, name, p11_ktype_name(type), material, n, 0, &ans);
    mesatee_free(ans);
    return rc;
}

int p11_srv_delete(mesatee_client *c, const char *name)
{
    return mesatee_transit_key_delete(c, name);
}
