/* Fuzz target: the readers of the KeyStore transit API's input
 * (src/keystore/transit/mt_transit_parse.h and the BYOK import unwrap of
 * mt_transit.h). The first byte picks the reader: key references, "vault:vN:"
 * strings (standard and base64url), base64 fields, request items and
 * batch_input of each operation (through the bounded JSON reader), and import
 * blobs against a fixed RSA wrapping key. Never a crash; an accepted
 * vault string formats back to one that parses to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_json.h"
#include "mt_secmem.h"
#include "mt_transit.h"
#include "mt_transit_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mt_tk_key *wrapping;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    uint8_t mode = data[0] % 6;
    char *s = malloc(size);
    if (!s)
        return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    mt_err err;
    switch (mode) {
    case 0: {
        char owner[65], name[MT_TP_NAME_MAX + 1], seg[90];
        if (mt_tp_key_ref(s, owner, name) && (!mt_tp_name_valid(name) || strlen(owner) > 64))
            abort();
        (void)mt_tp_segment(s, seg, sizeof seg);
        break;
    }
    case 1:
    case 2: {
        uint32_t v = 0, v2 = 0;
        uint8_t *b = NULL, *b2 = NULL;
        size_t n = 0, n2 = 0;
        bool url = mode == 2;
        if (!mt_tp_vault_parse("f", s, url, &v, &b, &n, &err)) {
            char *again = mt_tp_vault_format(v, b, n, url);
            if (!again || mt_tp_vault_parse("f", again, url, &v2, &b2, &n2, &err) || v2 != v ||
                n2 != n || (n && memcmp(b, b2, n)))
                abort();
            free(again);
        }
        free(b);
        free(b2);
        break;
    }
    case 3: {
        uint8_t *b = NULL;
        size_t n = 0;
        if (!mt_tp_b64("f", s, 1 << 16, true, &b, &n, &err) && n > 1 << 16)
            abort();
        mt_secmem_free(b);
        break;
    }
    case 4: {
        if (size < 2)
            break;
        json_t *j = mt_json_parse(s + 1, strlen(s + 1), 1 << 16, 16, &err);
        if (j) {
            mt_tp_batch bt;
            if (!mt_tp_batch_parse(j, (mt_tp_op)((uint8_t)s[0] % 6), &bt, &err)) {
                if (bt.n == 0 || bt.n > MT_TP_MAX_BATCH)
                    abort();
                mt_tp_batch_free(&bt);
            }
            json_decref(j);
        }
        break;
    }
    case 5: {
        if (!wrapping && mt_tk_key_generate(MT_TK_RSA_2048, &wrapping, &err))
            abort();
        uint8_t *m = NULL;
        size_t mn = 0;
        if (!mt_tk_import_unwrap(wrapping, MT_TH_SHA2_256, data + 1, size - 1, &m, &mn, &err)) {
            mt_tk_key *k = NULL;
            /* whatever unwraps is then read as key material of each type */
            for (int t = MT_TK_AES256_GCM96; t <= MT_TK_HMAC; t++) {
                if (!mt_tk_key_from_material((mt_tk_type)t, m, mn, &k, &err))
                    mt_tk_key_free(k);
            }
        }
        mt_secmem_free(m);
        break;
    }
    }
    free(s);
    return 0;
}
