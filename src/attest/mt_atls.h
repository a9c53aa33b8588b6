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

/* The verified-peer cache entry of a handshake in progress
 * (mt_policy_verify_peer) is held on its SSL (taking pd; a previous one is
 * freed; pd may be NULL to drop it) and stored by mt_atls_info_cb when the
 * handshake is done, i.e. after the peer's CertificateVerify and Finished
 * were checked; freed with the SSL otherwise. mt_atls_ctx_new installs
 * both; libmesatee's own verify callback uses them too. */
void mt_atls_hold_pending(SSL *ssl, mt_policy_pending *pd);
void mt_atls_info_cb(const SSL *ssl, int where, int ret);

/* Why the last handshake on this thread refused the peer ("" if none). */
const char *mt_atls_last_refusal(void);

/* Forgets this thread's last refusal: call before a handshake whose failure
 * must be told apart (a policy verdict sets the text; a cut or timed-out
 * handshake leaves it ""). */
void mt_atls_clear_refusal(void);

/* Writes all bytes; MT_EIO on failure. */
mt_status mt_atls_write(SSL *ssl, const void *data, size_t len, mt_err *err);

/* Parses a message head (NUL-terminated, start line and headers separated by
 * CRLF, without the blank line): *content_length from the Content-Length
 * header (0 when absent). MT_EINVAL for a malformed value, a second
 * Content-Length or any Transfer-Encoding (one framing only), MT_ETOOBIG
 * above max_body. This is the bounded reader of the executor API's message
 * heads (fuzz/atls_head.c). */
mt_status mt_atls_parse_head(const char *head, size_t max_body, size_t *content_length,
                             mt_err *err);

/* Reads a message head (start line and headers, at most head_cap - 1 bytes,
 * NUL-terminated, without the blank line) and parses it with
 * mt_atls_parse_head. The body is left unread: a caller can account for
 * *content_length (e.g. against a budget) before reading it. */
mt_status mt_atls_read_head(SSL *ssl, char *head, size_t head_cap, size_t max_body,
                            size_t *content_length, mt_err *err);

/* Reads exactly len body bytes (*body malloc'd, NUL-terminated, NULL when len
 * is 0). The buffer grows as bytes arrive (never beyond len + 1), so a peer
 * announcing more than it sends holds only what it sent; bytes after len are
 * not read (one request per connection). Timeouts are the socket's
 * (SO_RCVTIMEO) or the caller's watchdog. MT_ENOMEM or MT_EIO. */
mt_status mt_atls_read_body(SSL *ssl, size_t len, uint8_t **body, mt_err *err);

/* mt_atls_read_head then mt_atls_read_body (at most max_body bytes).
 * MT_ETOOBIG, MT_EINVAL, MT_ENOMEM or MT_EIO. */
mt_status mt_atls_read_msg(SSL *ssl, char *head, size_t head_cap, size_t max_body,
                           uint8_t **body, size_t *body_len, mt_err *err);

#endif
