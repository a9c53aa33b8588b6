/* client_tls: libmesatee's explanations of a failed server verification and
 * the check of --tls-server-name values. Internal to libmesatee (not
 * exported).
 *
 * client_tls_explain turns what the handshake saw (the server's leaf
 * certificate, the chain verification error, the name that was checked) and
 * the CA file the client trusts into one actionable sentence that tells
 * apart:
 *   - a name mismatch: the chain verified, the certificate does not name the
 *     host (it lists the names it has, suggests --tls-server-name);
 *   - a changed certificate: the CA file pins a server certificate (a
 *     non-CA certificate) and the server presents another one (both SHA-256
 *     fingerprints are shown);
 *   - an unknown CA: the certificate is not issued by a CA in the CA file
 *     (or, without one, in the system store);
 *   - an expired or not-yet-valid certificate.
 * Thread-safety: no shared state. */
#ifndef MT_CLIENT_TLS_H
#define MT_CLIENT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the verification saw. leaf: DER of the server's certificate (NULL
 * when the handshake ended before it was seen); verr: the X509 verification
 * error (0 = the chain verified); host: the name or address checked;
 * ca_file: the trusted file (NULL = system store). Writes the message into
 * out (always NUL-terminated). */
typedef struct client_tls_seen {
    const uint8_t *leaf;
    size_t leaf_len;
    int verr;
    const char *host;
    const char *ca_file;
} client_tls_seen;

void client_tls_explain(const client_tls_seen *seen, const char *detail, char *out, size_t cap);

/* True when name is a DNS host name or an IPv4/IPv6 address (no brackets,
 * no port). */
bool client_tls_name_ok(const char *name);

/* True when name is an IPv6 address (it goes into URLs in brackets). */
bool client_tls_name_is_v6(const char *name);

#endif
