/* transit_core: the store side of the user KeyStore's transit API
 * (docs/keystore.md): named keys per owner with versions, grants, the import
 * wrapping key, a cache of unwrapped keys, and the entry points other core
 * modules use (tasks that sign with a KeyStore key; the background rewrap
 * after a KEK rotation).
 *
 * Storage (migration 8, docs/keystore.md "Storage"):
 *   transit_keys(owner, name, type, latest_version, min_decryption_version,
 *     min_encryption_version, deletion_allowed, exportable, imported,
 *     allow_rotation, created_at, updated_at, mac)        PK (owner, name)
 *   transit_key_versions(owner, name, version, wrapped, kek_version,
 *     public_key, created_at, mac)                        PK (owner, name, version)
 *   transit_grants(owner, name, grantee, operations, created_at, mac)
 *   transit_wrapping_key(id = 1, wrapped, kek_version, public_key, created_at, mac)
 * wrapped = mt_tk_seal(core_kek("transit-keys", kek_version), AAD, material)
 * with AAD = transit_version_aad(owner, name, version) ("transit-keys/v1" NUL
 * owner NUL name NUL decimal version; the wrapping key: "transit-wrapping-key/v1").
 * Every row is MACed under the store-integrity key (domains "transit-key",
 * "transit-key-version", "transit-grant", "transit-wrapping-key") over a
 * compact JSON array of its columns (transit_store.c); a row whose MAC
 * fails is an "integrity check failed: transit key" error, never used.
 *
 * Threading: everything takes the caller's connection; the REST handlers run
 * under core->mu (api.c), which also guards the unwrapped-key cache.
 * transit_task_key_load does not use the cache and may run on any thread
 * with its own connection. */
#ifndef MT_TRANSIT_CORE_H
#define MT_TRANSIT_CORE_H

#include <stdint.h>

#include "core_internal.h"
#include "mt_transit.h"

#define TRANSIT_KEK_PURPOSE "transit-keys"

/* The AAD binding a wrapped blob to its key and version (out: 200 bytes). */
size_t transit_version_aad(const char *owner, const char *name, uint32_t version,
                           uint8_t out[200]);

/* For tasks (usebench): loads version `version` (0 = latest) of owner's key
 * `name` after checking both rows' MACs and the key's min_encryption_version
 * (a version below it is not used to sign: MT_EINVAL). The caller has
 * established that the task may use the key (its participants approved the
 * key id in the task's arguments); this function does no authorisation.
 * *out is a new key the caller frees with mt_tk_key_free; *used (may be
 * NULL) receives the version loaded. MT_ENOTFOUND when the key or version
 * does not exist. Any thread, its own connection; no cache. */
mt_status transit_task_key_load(mt_core *c, mt_db *db, const char *owner, const char *name,
                                uint32_t version, mt_tk_key **out, uint32_t *used, mt_err *err);

/* For the KEK rotation (root): rewraps up to `limit` transit key versions
 * whose kek_version is below `below` (the current KEK version after a
 * rotation) to the current KEK version, re-sealing each row's MAC, in the
 * caller's write transaction (a crash leaves every row either old or new,
 * both usable while the old KEK version exists). *done receives the number
 * rewrapped: call again until it is 0. The import wrapping key (one row) is
 * rewrapped the same way, after the key versions. Uses the unwrapped-key
 * cache: call it under core->mu (with core->db or a connection of its own). */
mt_status transit_rewrap_batch(mt_core *c, mt_db *db, uint32_t below, unsigned limit,
                               unsigned *done, mt_err *err);

/* Frees the unwrapped-key cache (core close). */
void transit_cache_free(mt_core *c);

#endif
