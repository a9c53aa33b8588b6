/* p11_conf: the one reader of libmesatee-pkcs11's configuration file.
 *
 * Format (docs/keystore.md, "PKCS#11 module"): UTF-8 text, one `key = value` per line;
 * blank lines and lines whose first non-blank character is '#' are ignored;
 * spaces and tabs around key and value are trimmed; CRLF accepted. Keys:
 *   server          https://HOST[:PORT] of the mesatee server (required)
 *   policy          attestation policy file: attested TLS (excludes ca)
 *   policy_signers  PEM bundle of auditor keys that must sign the policy
 *   ca              pinned CA / server certificate (PEM) (excludes policy)
 *   tls_server_name name to verify instead of the URL's host
 *   user            user name: the PIN is then that user's password;
 *                   without it the PIN is a mesatee token
 *   token_label     label of the token (at most 32 bytes; default "mesatee")
 *   timeout         seconds per request, 1..3600 (default 30)
 * A key may appear once; values may not be empty; a line is at most
 * P11_CONF_MAX_LINE bytes; no NUL bytes; the file at most P11_CONF_MAX_BYTES.
 *
 * Ownership: p11_conf_parse fills out with heap strings released with
 * p11_conf_clear (also after a failure; clear on a zeroed struct is a no-op).
 * Errors: MT_EINVAL with the reason naming the line (a key is quoted at most
 * 32 bytes, a value never), MT_ENOMEM. On failure out holds no values.
 * Thread-safety: reentrant, no shared state. */
#ifndef MT_P11_CONF_H
#define MT_P11_CONF_H

#include <stddef.h>

#include "mt_err.h"

#define P11_CONF_MAX_LINE 1023
#define P11_CONF_MAX_BYTES (64 * 1024)
#define P11_CONF_DEFAULT_PATH "/etc/mesatee/pkcs11.conf"
#define P11_CONF_ENV "MESATEE_PKCS11_CONF"

typedef struct p11_conf {
    char *server;
    char *policy;
    char *policy_signers;
    char *ca;
    char *tls_server_name;
    char *user;
    char *token_label; /* never NULL after a successful parse */
    long timeout;
} p11_conf;

mt_status p11_conf_parse(const char *text, size_t len, p11_conf *out, mt_err *err);
/* Reads and parses the file at path (at most P11_CONF_MAX_BYTES). */
mt_status p11_conf_load(const char *path, p11_conf *out, mt_err *err);
void p11_conf_clear(p11_conf *c);

#endif
