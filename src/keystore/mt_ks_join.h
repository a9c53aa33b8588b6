/* mt_ks_join: several `mesatee serve` nodes on one database (issue 14,
 * docs/cluster.md "Several nodes"). The first node, the KeyStore node, holds
 * keystore.sealed; every other node joins it over mutually attested TLS and
 * receives, encrypted to its attested key, the live root key versions AND
 * the shared platform keys (the KeyStore node's output-key-fingerprint,
 * store-integrity and audit-chain keys), so that every node verifies and
 * writes the same MACs, the same audit chain and unwraps the same file keys.
 *
 * Protocol (one request per connection, minimal HTTP/1.1 as mt_atls):
 *   client -> POST /v1/keystore/join, body = a KeyStore release request
 *             (mt_keystore_request format, version 1) whose evidence is the
 *             certificate the client presented in the TLS handshake;
 *   server <- 200 + the join answer (docs/formats.md "KeyStore release
 *             messages", version 2): {"mesatee_keystore": 2, "op": "join",
 *             "current", "ephemeral", "sealed"}, built as the version-1
 *             release response under the label "mesatee-keystore-join/v2",
 *             plaintext = key_fp(32) || integ(32) || audit(32) || records;
 *          or 403 + a fixed text naming the peer's own measurement when the
 *             release policy refuses it (the KeyStore's release decision,
 *             ks_attest_request: the same decision as a local release and as
 *             ks_dbcert), 400 for a malformed request. Nothing else.
 * The server presents an RA-TLS certificate of its own mt_tee; the client
 * verifies it INSIDE the handshake against the policy file it was given
 * (mt_atls, as executors verify the scheduler). The server requires a client
 * certificate and decides on it after the handshake (the policy is the
 * KeyStore's, which mt_atls cannot express), refusing a request whose
 * evidence is not that certificate.
 *
 * Errors: MT_EPERM refused by a policy (either side), MT_EINVAL malformed,
 * MT_EIO network, MT_ECRYPTO an answer that does not open.
 * Both roles set SIGPIPE to ignored (a peer closing mid-write), as the
 * gateway and the executor do.
 * Ownership: opaque handles; *_free/stop(NULL) are no-ops.
 * Thread-safety: the server accepts on one thread and serves each join on a
 * thread of its own (at most 8 at once, each cut after 20 s whatever the
 * peer sends); an mt_ks_joined serialises its joins (refresh, renewal) and
 * its database certificate on a mutex of its own; take_keyring is for the
 * core's first open only. */
#ifndef MT_KS_JOIN_H
#define MT_KS_JOIN_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mt_err.h"
#include "mt_keystore.h"
#include "mt_policy.h"
#include "mt_tee.h"

#define MT_KS_JOIN_PLATFORM 96 /* key_fp || integ || audit */
#define MT_KS_JOIN_URL_FILE "keystore.url" /* written by the server: its join URL */

typedef struct mt_ks_join_server mt_ks_join_server;
typedef struct mt_ks_joined mt_ks_joined;

/* ---- the KeyStore node -------------------------------------------------- */

/* Listens on listen (HOST:PORT, port 0 = any) and serves joins from ks
 * (borrowed, must outlive the server) with the platform keys platform
 * (copied). data_dir: where MT_KS_JOIN_URL_FILE is written: the URL joining
 * nodes use, advertise ("https://HOST:PORT", checked as
 * mt_ks_join_parse_url; MT_EINVAL naming --keystore-advertise) or, when
 * NULL, https://HOST:PORT of the listen address with the bound port, or
 * https://127.0.0.1:PORT when its host is a wildcard (0.0.0.0, ::, empty). */
mt_status mt_ks_join_server_start(const char *listen, const char *advertise, mt_tee *tee,
                                  mt_keystore *ks, const uint8_t platform[MT_KS_JOIN_PLATFORM],
                                  const char *data_dir, mt_ks_join_server **out, mt_err *err);
/* The URL written to MT_KS_JOIN_URL_FILE (no trailing newline). */
const char *mt_ks_join_server_url(const mt_ks_join_server *s);
/* Tests only: the options (SSL_CTX_get_options) of the listener's TLS
 * context (set once at start), 0 for NULL. */
uint64_t mt_ks_join_server_tls_options(const mt_ks_join_server *s);
void mt_ks_join_server_stop(mt_ks_join_server *s);
/* Told every decision (on the server's thread, before the answer is sent):
 * released or not, and the peer's evidence measurement (hex, "" when none).
 * For the audit log: returns whether the entry was recorded durably; a
 * release that could not be recorded is not made (503, fail closed). Set
 * before joins arrive; NULL = none. */
typedef bool (*mt_ks_join_audit_fn)(void *ctx, bool released, const char *measurement);
void mt_ks_join_server_set_audit(mt_ks_join_server *s, mt_ks_join_audit_fn fn, void *ctx);
/* Database credentials after attestation (docs/cluster.md): with a CA
 * (borrowed, must outlive the server), every released join also gets a
 * client certificate for role (mt_keystore_db_cert: the node's attested key,
 * ttl_s seconds) in the answer's "db_cert" (public, outside "sealed"); its
 * issuance is told to the audit function as well (db_fn). */
typedef struct mt_dbcert_ca mt_dbcert_ca;
typedef void (*mt_ks_join_dbcert_fn)(void *ctx, bool issued, const char *measurement);
void mt_ks_join_server_set_db_ca(mt_ks_join_server *s, const mt_dbcert_ca *ca, const char *role,
                                 uint32_t ttl_s, mt_ks_join_dbcert_fn db_fn);

/* ---- a joining node ----------------------------------------------------- */

/* A whole join's deadline by default (--keystore-join-timeout-s 60). */
#define MT_KS_JOIN_DEADLINE_MS_DEFAULT 60000u

/* Joins the KeyStore node at url ("https://HOST:PORT") whose evidence must
 * satisfy policy (borrowed, must outlive *out, as tee): a fresh attested
 * identity of tee, the request, the answer opened. deadline_ms (0:
 * MT_KS_JOIN_DEADLINE_MS_DEFAULT) bounds every join of *out, this one and
 * each refresh or renewal, end to end (see "Bounds" below). */
mt_status mt_ks_join_open(mt_tee *tee, const char *url, const mt_policy *policy,
                          uint32_t deadline_ms, mt_ks_joined **out, mt_err *err);
/* A fresh join (e.g. after a rotation on the KeyStore node): *kr the new
 * keyring (caller frees). The platform keys must not have changed
 * (MT_ECONFLICT otherwise: a different KeyStore node). */
mt_status mt_ks_join_refresh(mt_ks_joined *j, mt_keyring **kr, mt_err *err);
/* The database client certificate (PEM, of the first join or of the last
 * renewal; *cert_pem heap) and, with key_pem, the private key of the
 * identity it certifies (unencrypted PKCS#8 PEM, *key_pem heap: wipe and
 * free; write it mode 0600); its notBefore/notAfter (Unix seconds; may be
 * NULL). MT_ENOTFOUND when the KeyStore node gave none. Any thread. */
mt_status mt_ks_joined_db_cert(mt_ks_joined *j, char **cert_pem, char **key_pem,
                               int64_t *not_before, int64_t *not_after, mt_err *err);
/* Renews the database certificate: a join with fresh evidence for the SAME
 * key (mt_tee_tls_identity_for_key), so db-client.key stays and only the
 * certificate changes; the answer's keyring is dropped (the core refreshes
 * its own). MT_ENOTFOUND when the first join gave no certificate,
 * MT_EUNAVAIL when this answer has none, MT_ECONFLICT when the platform keys
 * changed, else join_once's errors (MT_EIO unreachable, MT_EPERM refused).
 * Any thread; serialised with mt_ks_join_refresh. */
mt_status mt_ks_join_renew_db_cert(mt_ks_joined *j, mt_err *err);
/* The 96 bytes key_fp || integ || audit. */
const uint8_t *mt_ks_joined_platform(const mt_ks_joined *j);
/* The keyring of the last join; the caller owns it (NULL after the first
 * call). */
mt_keyring *mt_ks_joined_take_keyring(mt_ks_joined *j);
const char *mt_ks_joined_url(const mt_ks_joined *j);
/* Bounds: a join resolves the KeyStore host within 5 s (mt_resolve.h: a
 * numeric address at once; then MT_EIO "cannot resolve H: no answer within
 * ..."), connects within 5 s per address of it (then MT_EIO "no connection
 * within ..."), and each read or write of the attested channel within 10 s;
 * the whole join (the identity, every step, the answer's checks) within the
 * deadline of mt_ks_join_open: past it the join in flight is stopped as by a
 * cancel (its socket shut down, a resolution or connect given up within
 * 100 ms) and fails with MT_EIO "not done within N ms"; the next join has a
 * deadline of its own. Only what the watchdog can shut down or give up is
 * interrupted: the identity step (a fresh attested identity from tee, e.g.
 * a TPM quote or key creation) is one blocking call; a slow one is not
 * interrupted, the join fails with the deadline's error once it returns
 * (so a hung TPM holds the join past its deadline).
 * mt_ks_join_cancel (any thread, never blocks on a join in flight; NULL:
 * no-op) makes the join in flight fail at once (its socket is shut down, a
 * resolution or connect in progress given up within 100 ms) and every
 * later join fail with MT_EIO "canceled (this node is
 * stopping)": for a node's shutdown, so that a renewal or a re-join stuck
 * on an unreachable KeyStore node does not delay it. Irreversible. */
void mt_ks_join_cancel(mt_ks_joined *j);
void mt_ks_joined_free(mt_ks_joined *j);

/* ---- parsers (exposed for tests and the fuzz target) -------------------- */

/* Opens a join answer with the node's private key priv and its evidence
 * certificate (DER): platform keys and keyring. Bounded reader of outside
 * bytes (fuzz/keystore_join.c). */
mt_status mt_ks_join_parse_answer(EVP_PKEY *priv, const uint8_t *cert, size_t cert_len,
                                  const char *resp, size_t len,
                                  uint8_t platform[MT_KS_JOIN_PLATFORM], mt_keyring **kr,
                                  mt_err *err);
/* The answer for cert (server side, exposed for tests): platform keys and
 * the records of ks. *resp heap. */
mt_status mt_ks_join_make_answer(mt_keystore *ks, const uint8_t platform[MT_KS_JOIN_PLATFORM],
                                 const uint8_t *cert, size_t cert_len, char **resp,
                                 size_t *resp_len, mt_err *err);
/* The "db_cert" of an answer (PEM, at most MT_KS_JOIN_DBCERT_MAX bytes,
 * *pem heap; NULL when absent). MT_EINVAL when malformed. */
#define MT_KS_JOIN_DBCERT_MAX (16u * 1024u)
mt_status mt_ks_join_answer_db_cert(const char *resp, size_t len, char **pem, mt_err *err);
/* Parses "https://HOST:PORT" (host 1..253 bytes of [A-Za-z0-9.-] or
 * [v6], port 1..65535, an optional trailing '/'). */
mt_status mt_ks_join_parse_url(const char *url, char host[256], char port[8], mt_err *err);
/* The same check for a --keystore-advertise URL (named in the message). */
mt_status mt_ks_join_check_advertise(const char *url, mt_err *err);

#endif
