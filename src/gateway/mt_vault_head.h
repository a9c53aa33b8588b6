/* mt_vault_head: what lets an unmodified Vault client (hvac, the vault CLI)
 * talk to /v1/transit/ (docs/keystore.md). Vault clients send their token as
 * "X-Vault-Token: <token>" and list with the LIST method, which evhttp
 * (libevent 2.1) cannot parse. Before the gateway judges a request head
 * (gw_decide), this rewrites a head whose target is under /v1/transit/:
 *  - "LIST <target>" becomes "GET <target>?list=true" (Vault's own
 *    equivalent of LIST);
 *  - without an Authorization header, the X-Vault-Token header line is
 *    replaced by "Authorization: Bearer <its value>" (same number of lines).
 * The rewritten head then goes through every check of the gateway like any
 * other (strict parse, token check, limits, audit, metering): nothing is
 * bypassed, and other paths are never touched.
 * Ownership: *out is a new heap block (NUL-terminated; the caller wipes and
 * frees it: it may hold a token). Thread-safety: reentrant. */
#ifndef MT_VAULT_HEAD_H
#define MT_VAULT_HEAD_H

#include <stdbool.h>
#include <stddef.h>

/* h: n bytes ending with CRLF CRLF, h[n] == NUL. True with *out and *out_n set
 * when the head was rewritten; false (nothing allocated) otherwise. */
bool mt_vault_head_rewrite(const char *h, size_t n, char **out, size_t *out_n);

#endif
