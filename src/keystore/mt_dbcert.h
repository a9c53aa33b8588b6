/* mt_dbcert: database client certificates issued by the KeyStore after
 * attestation (issue 14, docs/cluster.md "Database credentials after
 * attestation").
 *
 * PostgreSQL authenticates mesatee nodes with `hostssl ... cert
 * clientcert=verify-full` against a CA (ssl_ca_file). The KeyStore holds that
 * CA's key and signs, for a node whose attestation evidence satisfies the
 * KeyStore's release policy (exactly the decision of mt_keystore_release),
 * a short-lived X.509 client certificate:
 *   subject      CN=<database role>            (PostgreSQL maps CN -> role)
 *   public key   the key of the node's attested identity (the RA-TLS
 *                certificate of its release request): the private key never
 *                leaves the node, and only the attested key is certified
 *   validity     now - 60 s .. now + ttl_s (clamped to the CA's notAfter)
 *   extensions   basicConstraints CA:FALSE (critical), keyUsage
 *                digitalSignature (critical), extendedKeyUsage clientAuth,
 *                subject/authority key identifiers
 *   serial       128 random bits
 * A node that fails attestation gets MT_EPERM and no certificate, so it
 * cannot open the database (its own self-signed identity is not from the CA).
 *
 * The request is the node's ordinary release request (mt_keystore_request):
 * the same attested identity asks for root keys and for a certificate.
 *
 * The CA is handed to mt_dbcert_ca_load by the caller: `mesatee serve`
 * keeps it sealed in keystore.sealed (mt_keystore_db_ca_set/get; imported
 * once from a PEM file or made by mt_dbcert_ca_create) and issues over the
 * KeyStore join (mt_ks_join.h); joined nodes renew (mt_dbrenew.h). No
 * revocation list (certificates are short-lived instead).
 *
 * Errors: MT_EPERM (attestation refused; the message names the measurement
 * and the rule, as a release does), MT_EINVAL (malformed request, role, ttl
 * or CA material; the field is named, never its value), MT_ENOMEM,
 * MT_ECRYPTO (signing failed).
 * Ownership: *cert_pem / *pem are heap strings (free()); mt_dbcert_ca is
 * opaque, mt_dbcert_ca_free(NULL) is a no-op.
 * Thread-safety: an mt_dbcert_ca is immutable after load and may be shared;
 * mt_keystore_db_cert serialises on the KeyStore like a release. */
#ifndef MT_DBCERT_H
#define MT_DBCERT_H

#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_keystore.h"

#define MT_DBCERT_TTL_MIN 10u     /* seconds (short ones are for tests, --keystore-db-cert-ttl) */
#define MT_DBCERT_TTL_MAX 86400u  /* one day: certificates are short-lived */
#define MT_DBCERT_ROLE_MAX 63     /* PostgreSQL's NAMEDATALEN - 1 */
#define MT_DBCERT_PEM_MAX (64u * 1024u)

typedef struct mt_dbcert_ca mt_dbcert_ca;

/* Loads the database CA: a PEM certificate with basicConstraints CA:TRUE
 * (and keyCertSign when keyUsage is present), valid now, and its PEM private
 * key (EC P-256, unencrypted), which must match the certificate. */
mt_status mt_dbcert_ca_load(const char *cert_pem, size_t cert_len, const char *key_pem,
                            size_t key_len, mt_dbcert_ca **out, mt_err *err);
void mt_dbcert_ca_free(mt_dbcert_ca *ca);
/* A fresh database CA (`serve --keystore-db-ca-create`): a P-256 key and a
 * self-signed certificate CN=<cn> (NULL: "mesatee database CA"),
 * basicConstraints CA:TRUE pathlen 0 (critical), keyUsage keyCertSign and
 * cRLSign (critical), subject key identifier, a 128-bit random serial,
 * valid from now - 60 s for days days (1..36500). Both PEM heap (wipe and
 * free the key). */
#define MT_DBCERT_CA_DAYS 3650u
/* The CA's certificate and key as separate PEM texts (PKCS#8 key), e.g.
 * to seal them (mt_keystore_db_ca_set) from a combined file. Heap (wipe
 * and free the key). */
mt_status mt_dbcert_ca_pem(const mt_dbcert_ca *ca, char **cert_pem, char **key_pem, mt_err *err);
mt_status mt_dbcert_ca_create(const char *cn, unsigned days, char **cert_pem, char **key_pem,
                              mt_err *err);

/* Checks a database role name: 1..MT_DBCERT_ROLE_MAX characters of
 * [a-z0-9_], not starting with a digit (an unquoted PostgreSQL identifier). */
mt_status mt_dbcert_check_role(const char *role, mt_err *err);

/* Attests the release request req (mt_keystore_request) against ks's
 * release policy and, when it passes, issues a client certificate for role
 * valid ttl_s seconds (MT_DBCERT_TTL_MIN..MT_DBCERT_TTL_MAX). measurement
 * (may be NULL) receives the evidence measurement, also on MT_EPERM. */
mt_status mt_keystore_db_cert(mt_keystore *ks, const mt_dbcert_ca *ca, const char *req,
                              size_t len, const char *role, uint32_t ttl_s, char **cert_pem,
                              char measurement[MT_KEYSTORE_MEAS_HEX + 1], mt_err *err);

/* Node side: the private key of the node's attested identity as an
 * unencrypted PKCS#8 PEM (what libpq's sslkey reads; write it mode 0600). */
mt_status mt_keystore_node_key_pem(const mt_keystore_node *node, char **pem, mt_err *err);
/* Node side: the node's own (self-signed, attested) identity certificate as
 * PEM: what a node that got no database certificate holds. */
mt_status mt_keystore_node_cert_pem(const mt_keystore_node *node, char **pem, mt_err *err);

#endif
