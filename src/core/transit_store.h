/* transit_store: the rows of the transit API (transit_core.h "Storage") as
 * structs, their MACs, and the cache of unwrapped keys; shared by
 * transit.c (REST handlers) and transit_store.c only.
 * Threading: the cache functions run under core->mu (REST handlers). */
#ifndef MT_TRANSIT_STORE_H
#define MT_TRANSIT_STORE_H

#include "transit_core.h"

#define TSTORE_WRAPPED_MAX 4096 /* a sealed PKCS#8 RSA-4096 key is ~2.4 KB */

typedef struct tkey_row {
    char owner[65];
    char name[65];
    mt_tk_type type;
    uint32_t latest, min_dec, min_enc;
    bool deletion_allowed, exportable, imported, allow_rotation;
    int64_t created_at, updated_at;
    char mac[65];
    /* migration 10: Vault's allow_plaintext_backup, derived, convergent_encryption,
     * min_available_version (versions below it were trimmed: destroyed) */
    bool allow_plaintext_backup, derived, convergent;
    uint32_t min_avail;
} tkey_row;

typedef struct tver_row {
    char owner[65];
    char name[65];
    uint32_t version;
    uint8_t wrapped[TSTORE_WRAPPED_MAX];
    size_t wrapped_len;
    uint32_t kek_version;
    char public_key[1200];
    int64_t created_at;
    char mac[65];
} tver_row;

/* One indexed read: the key row, the version row (version 0: the latest)
 * and grantee's grant on the key, each checked against its MAC. found false
 * (MT_OK) when there is no such key; has_ver false when the version does not
 * exist; has_grant false when grantee has no grant. */
typedef struct tlookup {
    bool found, has_ver, has_grant;
    tkey_row key;
    tver_row ver;
    char grant_ops[256];
} tlookup;
mt_status tstore_lookup(mt_core *c, mt_db *db, const char *owner, const char *name,
                        uint32_t version, const char *grantee, tlookup *out, mt_err *err);

/* (Re)computes k->mac and inserts or updates the key row. */
mt_status tstore_key_write(mt_core *c, mt_db *db, tkey_row *k, bool insert, mt_err *err);
/* Wraps key under the current transit KEK and inserts version `version`. */
mt_status tstore_version_add(mt_core *c, mt_db *db, const char *owner, const char *name,
                             uint32_t version, const mt_tk_key *key, int64_t now, mt_err *err);
/* Calls cb for every version of k (MAC-checked), in order. */
typedef mt_status (*tver_cb)(void *arg, const tver_row *v, mt_err *err);
mt_status tstore_versions(mt_core *c, mt_db *db, const tkey_row *k, tver_cb cb, void *arg,
                          mt_err *err);

mt_status tstore_key_mac(mt_core *c, const tkey_row *k, char out[65], mt_err *err);
mt_status tstore_version_mac(mt_core *c, const char *owner, const char *name, uint32_t version,
                             const uint8_t *wrapped, size_t wl, uint32_t kek_version,
                             const char *pub, int64_t created_at, char out[65], mt_err *err);
mt_status tstore_grant_mac(mt_core *c, const char *owner, const char *name, const char *grantee,
                           const char *ops, int64_t created_at, char out[65], mt_err *err);

/* The unwrapped key of a (MAC-checked) version row, from the cache or
 * unwrapped into it; borrowed until the next cache call (under core->mu). */
mt_status tstore_cached_key(mt_core *c, const tver_row *v, mt_tk_type type,
                            const mt_tk_key **out, mt_err *err);
mt_status tstore_cached_key_aad(mt_core *c, const tver_row *v, const uint8_t *aad, size_t al,
                                const mt_tk_key **out, mt_err *err);

/* Drops owner's key `name` from the cache (its key was deleted). */
void tstore_cache_forget(mt_core *c, const char *owner, const char *name);

/* The import wrapping key (RSA-4096), created on first use when create is
 * true; *pem_out (optional) its public key in PEM. */
mt_status tstore_wrapping_key(mt_core *c, mt_db *db, bool create, const mt_tk_key **out,
                              char **pem_out, mt_err *err);

#endif
