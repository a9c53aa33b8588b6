/* mt_transit_backup: the plaintext backup of one transit key
 * (GET /v1/transit/backup/{key}, POST /v1/transit/restore[/{name}];
 * docs/formats.md "Transit key backup"). A backup is outside input when it
 * is restored: mt_tb_decode is the one bounds-checked reader of it (fuzzed:
 * fuzz/transit_backup.c); it rejects trailing bytes, a bad checksum and
 * every inconsistent field, naming the field but never echoing its bytes.
 *
 * Format, all integers big-endian:
 *   magic "MTTKBK01" (8)
 *   type   u8 length (1..32) + Vault type name ("aes256-gcm96", ...)
 *   name   u8 length (1..64) + key name ([A-Za-z0-9_.-])
 *   latest, min_decryption, min_encryption, min_available: u32 each
 *   flags  u8: 1 deletion_allowed, 2 exportable, 4 allow_plaintext_backup,
 *          8 derived, 16 convergent_encryption, 32 imported, 64 allow_rotation
 *          (128 must be clear)
 *   created_at i64 (unix seconds)
 *   count  u32 (1..MT_TB_MAX_VERSIONS)
 *   count x { version u32, created_at i64, material u32 length
 *             (1..MT_TB_MATERIAL_MAX) + bytes (mt_tk_key_material form) }
 *   sha256 (32) of everything before it
 * Versions are strictly increasing, the last one is `latest`, none is below
 * min_available; min_decryption is 1..latest, min_encryption 0 or
 * min_decryption..latest, min_available 0 or at most min_decryption (and
 * min_encryption when set); convergent needs derived, derived needs an
 * aes256-gcm96 or chacha20-poly1305 key. Key material is checked by the
 * restorer (mt_tk_key_from_material).
 *
 * Ownership: an mt_tb_key owns its versions' material (wiping memory);
 * mt_tb_key_clear frees it (safe on a zeroed or cleared struct).
 * Thread-safety: reentrant. */
#ifndef MT_TRANSIT_BACKUP_H
#define MT_TRANSIT_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_transit.h"

#define MT_TB_MAX_VERSIONS 10000
#define MT_TB_MATERIAL_MAX 16384

typedef struct mt_tb_version {
    uint32_t version;
    int64_t created_at;
    uint8_t *material; /* mt_secmem */
    size_t len;
} mt_tb_version;

typedef struct mt_tb_key {
    mt_tk_type type;
    char name[65];
    uint32_t latest, min_dec, min_enc, min_avail;
    bool deletion_allowed, exportable, allow_plaintext_backup, derived, convergent, imported,
        allow_rotation;
    int64_t created_at;
    mt_tb_version *v;
    size_t n;
} mt_tb_key;

/* Encodes k (which must satisfy the rules above: MT_EINVAL otherwise) into
 * a new mt_secmem block. */
mt_status mt_tb_encode(const mt_tb_key *k, uint8_t **out, size_t *n, mt_err *err);
/* Decodes a backup into *out (cleared first). MT_EINVAL "backup: ..." for
 * any malformed input; *out is then empty. */
mt_status mt_tb_decode(const uint8_t *in, size_t n, mt_tb_key *out, mt_err *err);
void mt_tb_key_clear(mt_tb_key *k);

#endif
