/* Fuzz target: the PKCS#11 module's reader of transit answers (p11_resp).
 * The first byte picks the reader, the rest is the answer. Invariants: a
 * refusal says why and returns nothing; an accepted key has a name, versions
 * in ascending order not above latest_version, and a public key of its type
 * for every version of an asymmetric key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p11_resp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A name list reader's result: a refusal says why and returns nothing; an
 * accepted list holds non-empty names of at most P11_RESP_MAX_NAME bytes. */
static void check_names(mt_status rc, const mt_err *err, char **names, size_t n)
{
    if (rc != MT_OK) {
        if (!err->msg[0] || names || n)
            abort();
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!names[i][0] || strlen(names[i]) > P11_RESP_MAX_NAME)
            abort();
    p11_names_free(names, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *json = (const char *)data + 1;
    size_t len = size - 1;
    mt_err err;
    mt_err_clear(&err);
    switch (data[0] % 7) {
    case 5: { /* bare name list (mesatee_transit_key_list) */
        char **names;
        size_t n;
        mt_status rc = p11_resp_name_list(json, len, &names, &n, &err);
        check_names(rc, &err, names, n);
        return 0;
    }
    case 6: { /* a bare vault:vN: string (NUL-terminated copy) */
        char *str = malloc(len + 1);
        if (!str)
            return 0;
        memcpy(str, json, len);
        str[len] = '\0';
        uint8_t *out;
        size_t n;
        uint32_t v = 0;
        if (p11_resp_vault_str(str, &v, &out, &n, &err) != MT_OK) {
            if (!err.msg[0] || out || n)
                abort();
        } else {
            if (v == 0)
                abort();
            free(out);
        }
        free(str);
        return 0;
    }
    case 0: {
        p11_keyinfo k;
        if (p11_resp_keyinfo(json, len, &k, &err) != MT_OK) {
            if (!err.msg[0] || k.name || k.ver || k.nver)
                abort();
            return 0;
        }
        if (!k.name || !k.name[0] || k.nver == 0 || k.latest_version == 0)
            abort();
        for (size_t i = 0; i < k.nver; i++) {
            if (i && k.ver[i].version <= k.ver[i - 1].version)
                abort();
            if (k.ver[i].version > k.latest_version)
                abort();
            bool asym = k.type != P11_KT_OTHER && k.type != P11_KT_AES256_GCM96;
            if (asym != (k.ver[i].spki != NULL && k.ver[i].spki_len > 0))
                abort();
        }
        p11_keyinfo_free(&k);
        p11_keyinfo_free(&k);
        break;
    }
    case 1: {
        char **names;
        size_t n;
        mt_status rc = p11_resp_names(json, len, &names, &n, &err);
        check_names(rc, &err, names, n);
        break;
    }
    case 2:
    case 3: {
        uint8_t *out;
        size_t n;
        uint32_t v = 0;
        mt_status rc = data[0] % 7 == 2
                           ? p11_resp_vault_blob(json, len, "signature", &v, &out, &n, &err)
                           : p11_resp_b64(json, len, "plaintext", &out, &n, &err);
        if (rc != MT_OK) {
            if (!err.msg[0] || out || n)
                abort();
            return 0;
        }
        if (data[0] % 7 == 2 && v == 0)
            abort();
        free(out);
        break;
    }
    default: {
        bool valid = true;
        if (p11_resp_valid(json, len, &valid, &err) != MT_OK && (!err.msg[0] || valid))
            abort();
        break;
    }
    }
    return 0;
}
