/* transit_ext: the Vault transit features added after the first transit API
 * (docs/keystore.md): export, trim, backup and restore (transit_ext.c), and
 * the few helpers of transit.c they share. Same contract as transit.c: the
 * handlers run under core->mu in api.c's transaction (export, backup,
 * restore and trim are TX_WRITE routes: their audit entry commits before the
 * answer leaves); errors never echo input bytes. */
#ifndef MT_TRANSIT_EXT_H
#define MT_TRANSIT_EXT_H

#include "transit_store.h"

/* transit.c's path_seg, body_parse, vault_reply, key_resolve and reply_key. */
bool transit_x_seg(core_ctx *x, unsigned n, char *out, size_t cap);
mt_status transit_x_body(core_ctx *x, json_t **out);
void transit_x_reply(core_ctx *x, int status, json_t *data);
mt_status transit_x_resolve(core_ctx *x, const char *seg, const char *op, uint32_t version,
                            tlookup *l);
mt_status transit_x_reply_key(core_ctx *x, const tkey_row *k);

#endif
