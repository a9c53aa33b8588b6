/* mt_tls_id: the server's TLS identity at level none, and the names it
 * carries at every level.
 *
 *  - Subject alternative names (SANs): mt_tls_san_list turns the operator's
 *    `--tls-san NAME|IP` values (or, without any, the defaults: the listen
 *    address's host unless it is a wildcard, this machine's host name,
 *    localhost and 127.0.0.1) into OpenSSL's "DNS:a,IP:b" form, which
 *    mt_tee_set_tls_san gives to every certificate the TEE provider makes.
 *  - Stable identity (mt_tls_id_self): <data-dir>/tls/server-key.pem (P-256,
 *    PKCS#8 PEM, mode 0600) made at the first start and reused at every
 *    restart, with a self-signed certificate <data-dir>/tls/server-cert.pem
 *    (MT_TLS_ID_DAYS days). The certificate is reissued (same key) only when
 *    it is missing, belongs to another key, names other SANs than configured,
 *    or expires within MT_TLS_ID_RENEW_DAYS days; the log says which.
 *  - Operator identity (mt_tls_id_operator): a certificate file (PEM: the
 *    server's certificate first, then its issuers) and a key file from the
 *    operator's CA, checked before use: the key belongs to the certificate,
 *    the certificate is valid now and usable by a TLS server, each chain
 *    certificate issued the one before it.
 * Errors name the file and the problem, with the fix. Nothing here reads
 * input from the network: the files are the operator's.
 * Ownership: *key, *cert and *chain go to the caller (EVP_PKEY_free,
 * X509_free, OSSL_STACK_OF_X509_free / sk_X509_pop_free).
 * Thread-safety: no shared state; mt_tls_id_self must not run concurrently
 * on one data directory (the gateway thread calls it). */
#ifndef MT_TLS_ID_H
#define MT_TLS_ID_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

#include "mt_err.h"
#include "mt_tee.h"

#define MT_TLS_SAN_MAX 32        /* names in one list */
#define MT_TLS_SAN_TEXT_MAX 4096 /* bytes of "DNS:a,IP:b" text, NUL included */
#define MT_TLS_ID_DAYS 3650      /* validity of the level-none certificate */
#define MT_TLS_ID_RENEW_DAYS 30  /* reissue it when it expires sooner */

/* MT_OK when name is a DNS host name (letters, digits, '-', dot-separated
 * labels of 1-63 bytes, 253 at most, not all-numeric at the end) or an IPv4
 * or IPv6 address; MT_EINVAL naming it (printable, truncated) otherwise. */
mt_status mt_tls_san_check(const char *name, mt_err *err);

/* Builds the SAN text ("DNS:host,IP:addr", lower-case names, canonical
 * addresses, duplicates dropped) into out. names: n values, each one name
 * or a comma-separated list of names (spaces around them ignored). n == 0:
 * the defaults, from listen ("HOST:PORT" or "[V6]:PORT"; NULL = the default
 * 127.0.0.1). MT_EINVAL for a bad or empty name or more than
 * MT_TLS_SAN_MAX names. */
mt_status mt_tls_san_list(const char *const *names, size_t n, const char *listen, char *out,
                          size_t cap, mt_err *err);

/* The DNS and IP SANs of cert in the same form (other kinds skipped; ""
 * when none). False when they do not fit in cap. */
bool mt_tls_cert_san(X509 *cert, char *out, size_t cap);

/* True when the two SAN texts hold the same entries, in any order. */
bool mt_tls_san_equal(const char *a, const char *b);

/* "sha256:" and the 64 hex digits of SHA-256 over the DER certificate:
 * what `openssl x509 -noout -fingerprint -sha256` prints, without colons. */
void mt_tls_fingerprint(X509 *cert, char out[72]);

/* Level none: the stable identity in data_dir (see above) for the SANs in
 * san (mt_tls_san_list's text; tee must have been given the same with
 * mt_tee_set_tls_san). Creates tls/ (0700), the key and the certificate as
 * needed and logs what it did. A key file that is not a private key, or
 * that group/other may read, is refused (MT_EINVAL / MT_EPERM) rather than
 * replaced: replacing it changes the identity clients pinned. */
mt_status mt_tls_id_self(mt_tee *tee, const char *data_dir, const char *san, EVP_PKEY **key,
                         X509 **cert, mt_err *err);

/* The operator's certificate (chain allowed) and key, checked as above.
 * want_san (may be NULL): names the operator configured with --tls-san; a
 * warning is logged for each one the certificate does not cover. *chain is
 * NULL when the file holds only the server's certificate. A key file that
 * every user may read is refused (MT_EPERM); an encrypted key is refused. */
mt_status mt_tls_id_operator(const char *cert_file, const char *key_file, const char *want_san,
                             EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain, mt_err *err);

#endif
