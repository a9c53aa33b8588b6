/* mt_transit_parse: the readers of user input to the transit API
 * (docs/keystore.md): key names and references to another user's key,
 * Vault's "vault:vN:<base64>" ciphertext/signature/HMAC strings, base64
 * fields, and the items of a request (its top-level fields or its
 * batch_input array). Everything here is bytes from outside: strict,
 * bounded, no trailing bytes; errors name the field (and the batch item) but
 * never echo its content.
 * Ownership: an mt_tp_batch owns its items' decoded bytes (wiping memory for
 * plaintexts); free it with mt_tp_batch_free (NULL-safe). Strings in items
 * that come from the JSON (reference) point into the json_t, which must
 * outlive the batch.
 * Thread-safety: reentrant. */
#ifndef MT_TRANSIT_PARSE_H
#define MT_TRANSIT_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"

#define MT_TP_NAME_MAX 64     /* key name: [A-Za-z0-9_.-]{1,64}, not "." or ".." */
#define MT_TP_MAX_BATCH 1000  /* items of one batch_input */
#define MT_TP_MAX_VERSION 1000000
#define MT_TP_CONTEXT_MAX 4096 /* decoded bytes of a derivation context */

/* True if s is a valid key name. */
bool mt_tp_name_valid(const char *s);
/* Splits a path segment naming a key: "name" (the caller's own key: owner
 * "" on return) or "owner:name" (another user's key; owner is a username,
 * [a-z0-9_.-]{1,64}). False when malformed. */
bool mt_tp_key_ref(const char *seg, char owner[65], char name[MT_TP_NAME_MAX + 1]);

/* Strict standard base64 (with padding) of at most max decoded bytes into a
 * new block (mt_secmem when secret). MT_EINVAL "field 'F': ..." otherwise. */
mt_status mt_tp_b64(const char *field, const char *s, size_t max, bool secret, uint8_t **out,
                    size_t *n, mt_err *err);
/* base64url without padding (JWS), new heap string. */
char *mt_tp_b64url_encode(const uint8_t *in, size_t n);

/* "vault:v<N>:<base64>" (N 1..MT_TP_MAX_VERSION, no leading zero); with
 * url true the body is base64url without padding (JWS signatures).
 * MT_EINVAL "field 'F': ..." when malformed. *out is malloc'ed. */
mt_status mt_tp_vault_parse(const char *field, const char *s, bool url, uint32_t *version,
                            uint8_t **out, size_t *n, mt_err *err);
/* "vault:v<N>:" + base64 (url: base64url, no padding) of b; heap string. */
char *mt_tp_vault_format(uint32_t version, const uint8_t *b, size_t n, bool url);

typedef enum mt_tp_op {
    MT_TP_ENCRYPT, /* plaintext (base64), associated_data, key_version */
    MT_TP_DECRYPT, /* ciphertext (vault string), associated_data */
    MT_TP_REWRAP,  /* ciphertext, associated_data, key_version */
    MT_TP_SIGN,    /* input (base64), key_version */
    MT_TP_VERIFY,  /* input, signature or hmac (vault strings) */
    MT_TP_HMAC,    /* input, key_version */
} mt_tp_op;

typedef struct mt_tp_item {
    uint8_t *data; /* decoded plaintext / ciphertext / input */
    size_t len;
    uint8_t *aad; /* associated_data, NULL when absent */
    size_t aad_len;
    uint8_t *ctx; /* context (encrypt, decrypt, rewrap; derived keys), NULL when absent */
    size_t ctx_len;
    uint32_t key_version;  /* 0 = latest (encrypt, rewrap, sign, hmac) */
    uint32_t data_version; /* the N of a ciphertext (decrypt, rewrap) */
    const char *sig_text;  /* verify: the signature / hmac string, unparsed */
    bool is_hmac;          /* verify: sig_text came from "hmac" */
    const char *reference; /* "reference" echoed back, "" when absent */
} mt_tp_item;

typedef struct mt_tp_batch {
    mt_tp_item *items;
    size_t n;
    bool batch; /* the request had batch_input: answer with batch_results */
} mt_tp_batch;

/* Reads a request body's items for op: batch_input when present (1 to
 * MT_TP_MAX_BATCH objects; then the top-level data fields are ignored, as
 * Vault does), else the top-level fields as one item. A non-empty context
 * (derived keys) is decoded for encrypt/decrypt/rewrap and refused for the
 * others; a non-empty nonce is refused (convergent keys derive theirs). Unknown
 * fields of an item are refused. */
mt_status mt_tp_batch_parse(const json_t *body, mt_tp_op op, mt_tp_batch *out, mt_err *err);
void mt_tp_batch_free(mt_tp_batch *b);

/* Splits "<a>" off the path tail "/<a>" (one segment, [A-Za-z0-9_.:-]{1,80})
 * into seg; false when tail is not exactly one such segment. */
bool mt_tp_segment(const char *tail, char *seg, size_t cap);

#endif
