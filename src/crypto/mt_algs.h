/* mt_algs: the OpenSSL algorithms the daemon and worker use on hot paths,
 * fetched from the provider once per process.
 *
 * EVP_sha256() / EVP_aes_256_gcm() passed to an init or digest call make
 * OpenSSL 3 fetch the implementation by name on every call (a locked name
 * lookup: ~10% of a 16 KiB mt_ff_encrypt, ~40% of an audit entry's hash).
 * These return objects fetched once and kept for the process's lifetime
 * (never freed: OpenSSL's exit handler tears the providers down; they hold
 * no key material). When the fetch failed they return the implicit
 * EVP_sha256() / EVP_aes_256_gcm(), which then fail as before.
 * Thread-safety: safe from any thread (pthread_once). */
#ifndef MT_ALGS_H
#define MT_ALGS_H

#include <openssl/evp.h>

const EVP_MD *mt_algs_sha256(void);
const EVP_CIPHER *mt_algs_aes256gcm(void);

#endif
