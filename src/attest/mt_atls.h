/* mt_atls: mutually attested TLS between services (scheduler <-> executor,
 * docs/design.md "Separate roles"). Both sides present an RA-TLS certificate
 * from their own mt_tee and verify the peer's leaf INSIDE the handshake with
 * mt_policy_verify_cert (the one path of every relying party): evidence
 * valid and bound to the key, claims satisfy the caller's per-role policy. A server context requires a
 * client certificate: a peer without one, without evidence or failing the
 * policy never completes the handshake. TLS 1.3 only, no session resumption.
 * Messages are minimal HTTP/1.1 (one request per connection, Content-Length).
 * Ownership: the context borrows the policy (must outlive it) and takes its
 * own references to key and cert. Thread-safety: a context may be shared;
 * mt_atls_last_refusal is per thread. */
#ifndef MT_ATLS_H
#define MT_ATLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_policy.h"

/* A TLS 1.3 context with the identity and the attestation check. */
mt_status mt_atls_ctx_new(bool server, EVP_PKEY *key, X509 *cert, const mt_policy *policy,
                          SSL_CTX **out, mt_err *err);

/* Why the last handshake on this thread refused the peer ("" if none). */
const char *mt_atls_last_refusal(void);

/* Writes all bytes; MT_EIO on failure. */
mt_status mt_atls_write(SSL *ssl, const void *data, size_t len, mt_err *err);

/* Parses a message head (NUL-terminated, start line and headers separated by
 * CRLF, without the blank line): *content_length from the Content-Length
 * header (0 when absent). MT_EINVAL for a malformed value, MT_ETOOBIG above
 * max_body. This is the bounded reader of the executor API's message heads
 * (fuzz/atls_head.c). */
mt_status mt_atls_parse_head(const char *head, size_t max_body, size_t *content_length,
                             mt_err *err);

/* Reads one HTTP/1.1 message: the head (start line and headers, at most
 * head_cap - 1 bytes, NUL-terminated, without the blank line) and a body of
 * Content-Length bytes (at most max_body; *body malloc'd, NUL-terminated,
 * NULL when empty). MT_ETOOBIG, MT_EINVAL or MT_EIO. */
mt_status mt_atls_read_msg(SSL *ssl, char *head, size_t head_cap, size_t max_body,
                           uint8_t **body, size_t *body_len, mt_err *err);

#endif
