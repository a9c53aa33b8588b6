/* mt_pwhash: password storage with a memory-hard KDF (Argon2id, libsodium
 * crypto_pwhash_str, "interactive" limits: 64 MiB, 2 passes).
 * The stored string is self-describing ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
 * Thread-safety: reentrant. */
#ifndef MT_PWHASH_H
#define MT_PWHASH_H

#include <stdbool.h>
#include <stddef.h>

#include "mt_err.h"

#define MT_PWHASH_STRLEN 128
#define MT_PASSWORD_MIN 8
#define MT_PASSWORD_MAX 256

/* Hashes password into out (NUL-terminated). MT_EINVAL if the password is
 * shorter than MT_PASSWORD_MIN or longer than MT_PASSWORD_MAX bytes. */
mt_status mt_pwhash_hash(const char *password, char out[MT_PWHASH_STRLEN], mt_err *err);

/* True iff password matches stored. Constant-time in the password. */
bool mt_pwhash_verify(const char *stored, const char *password);

#endif
