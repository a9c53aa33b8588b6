/* mt_rd: the bounds-checked byte reader every evidence parser of mt_attest
 * is built on, plus a DER TLV reader for certificate extensions.
 *
 * A reader is a cursor over borrowed bytes. Every read checks the remaining
 * length first; on a short read it sets the reader's failed flag, zeroes the
 * output and leaves the cursor at the end, so a parser can read a whole
 * structure and test mt_rd_ok() once. Nothing here allocates.
 * Thread-safety: a reader is owned by one thread; functions are reentrant. */
#ifndef MT_RD_H
#define MT_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mt_rd {
    const uint8_t *p;
    size_t len, off;
    bool failed;
} mt_rd;

void mt_rd_init(mt_rd *r, const uint8_t *p, size_t len);
bool mt_rd_ok(const mt_rd *r);
size_t mt_rd_left(const mt_rd *r);
/* Current position (borrowed); valid while the underlying buffer lives. */
const uint8_t *mt_rd_ptr(const mt_rd *r);
uint8_t mt_rd_u8(mt_rd *r);
uint16_t mt_rd_u16le(mt_rd *r);
uint32_t mt_rd_u32le(mt_rd *r);
uint64_t mt_rd_u64le(mt_rd *r);
uint16_t mt_rd_u16be(mt_rd *r);
uint32_t mt_rd_u32be(mt_rd *r);
uint64_t mt_rd_u64be(mt_rd *r);
/* Copies n bytes into out. */
void mt_rd_bytes(mt_rd *r, void *out, size_t n);
/* Borrows n bytes (NULL and failed if short). */
const uint8_t *mt_rd_take(mt_rd *r, size_t n);
void mt_rd_skip(mt_rd *r, size_t n);
/* A sub-reader over the next n bytes (advances r). */
mt_rd mt_rd_sub(mt_rd *r, size_t n);

/* One DER TLV: tag (single byte tags only; high-tag-number form fails),
 * definite length (at most 4 length bytes, minimal not enforced), value
 * borrowed. Returns false (and fails r) if malformed or short. */
typedef struct mt_der {
    uint8_t tag;
    const uint8_t *val;
    size_t len;
} mt_der;
bool mt_der_next(mt_rd *r, mt_der *out);
/* A DER INTEGER value (non-negative, at most 8 significant bytes) as u64. */
bool mt_der_uint(const mt_der *d, uint64_t *out);
/* Dotted text of a DER OBJECT IDENTIFIER value into out (false if malformed
 * or longer than cap-1). */
bool mt_der_oid_text(const uint8_t *val, size_t len, char *out, size_t cap);

#endif
