/* cmd_key: helpers shared by cmd_key.c (the first `mesatee key` commands) and
 * cmd_key_vault.c (export, backup, restore, trim and the Vault options of
 * create/config/encrypt/decrypt/rewrap/datakey: docs/cli.md, docs/keystore.md). */
#ifndef MT_CLI_CMD_KEY_H
#define MT_CLI_CMD_KEY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

/* Prints an answer (json: unchanged; text: data.field, or every member of
 * data as "key: value"); frees resp. */
int key_emit(cli_ctx *ctx, int st, char *resp, const char *field);
/* Reads the file of option opt (required when req) into a new block. */
int read_opt_file(cli_ctx *ctx, const char *opt, bool req, uint8_t **out, size_t *n);
/* A version option (0 when absent); CLI_USAGE when malformed. */
int version_opt(cli_ctx *ctx, const char *opt, uint32_t *v);
/* CLI_USAGE unless name is a key name or owner:name. */
int key_name_check(cli_ctx *ctx, const char *name);
/* POSTs body (consumed) to /v1/transit/<what>[/<name>]. */
int key_post(cli_ctx *ctx, const char *what, const char *name, json_t *body, char **resp);
/* A JSON string of base64(p). */
json_t *b64_json(const uint8_t *p, size_t n);

/* cmd_key_vault.c */
/* The Vault flags given (create: --exportable, --allow-plaintext-backup, --derived,
 * --convergent; config: the first two) as a new JSON object, NULL when none. */
json_t *key_vault_flags(cli_ctx *ctx, bool create);
/* Sets body.context to base64(--context) when the option is given. */
void key_context_set(cli_ctx *ctx, json_t *body);
/* `key encrypt --context`: prints the ciphertext; a CLI_ code. */
int key_encrypt_context(cli_ctx *ctx, const uint8_t *in, size_t n, const uint8_t *aad, size_t an,
                        uint32_t version);
/* `key decrypt --context`: a mesatee status, or -1 after printing why the answer was
 * refused; *pt (mesatee_free) and *pn the plaintext. */
int key_decrypt_context(cli_ctx *ctx, const uint8_t *aad, size_t an, uint8_t **pt, size_t *pn);

#endif
