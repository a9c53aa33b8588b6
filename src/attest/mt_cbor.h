/* mt_cbor: a minimal bounds-checked CBOR (RFC 8949) reader over mt_rd, for
 * COSE and the Nitro attestation document. Definite lengths only (indefinite
 * lengths, as NSM never emits them, are rejected); nesting is limited.
 * Strings are borrowed from the input. Thread-safety: reentrant. */
#ifndef MT_CBOR_H
#define MT_CBOR_H

#include <stdbool.h>
#include <stdint.h>

#include "mt_rd.h"

enum {
    MT_CBOR_UINT = 0,
    MT_CBOR_NINT = 1,
    MT_CBOR_BSTR = 2,
    MT_CBOR_TSTR = 3,
    MT_CBOR_ARRAY = 4,
    MT_CBOR_MAP = 5,
    MT_CBOR_TAG = 6,
    MT_CBOR_SIMPLE = 7,
};
#define MT_CBOR_MAX_DEPTH 16

/* Reads an item head: major type and argument (length, value, tag number,
 * or simple value). False (and r failed) if malformed or indefinite. */
bool mt_cbor_head(mt_rd *r, uint8_t *major, uint64_t *arg);
/* Peeks at the next major type without consuming (false at end). */
bool mt_cbor_peek(const mt_rd *r, uint8_t *major);
/* Skips one complete item. */
bool mt_cbor_skip(mt_rd *r);
/* A byte or text string (borrowed). */
bool mt_cbor_bstr(mt_rd *r, const uint8_t **p, size_t *n);
bool mt_cbor_tstr(mt_rd *r, const char **p, size_t *n);
/* An unsigned or negative integer as int64 (false if out of range). */
bool mt_cbor_int(mt_rd *r, int64_t *out);
/* The simple value null (0xf6). */
bool mt_cbor_null(mt_rd *r);
/* Checks, without consuming r, that the next item is a map of at most
 * MT_CBOR_MAX_MAP_KEYS entries whose keys are all different (RFC 8949 §5.6:
 * a map with duplicate keys is not valid). Integer keys compare by value,
 * string keys by type and bytes, other keys by their encoding. False if the
 * item is not such a map or is malformed. Call it before reading any entry,
 * so no value is used before a repeated key is seen. */
#define MT_CBOR_MAX_MAP_KEYS 64
bool mt_cbor_map_unique(const mt_rd *r);
/* Encodes a head into out (at most 9 bytes); returns its length. */
size_t mt_cbor_put_head(uint8_t *out, uint8_t major, uint64_t arg);

#endif
