/* mt_pwhash: Argon2id password hashing via libsodium. See mt_pwhash.h. */
#include "mt_pwhash.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "mt_util.h"

#define PW_PREFIX "$argon2id$"

static pthread_once_t g_sodium_once = PTHREAD_ONCE_INIT;
static int g_sodium_rc = -1;

static void sodium_init_once(void)
{
    g_sodium_rc = sodium_init();
}

/* True once libsodium is initialised (sodium_init returns 1 if it already was). */
static bool sodium_ready(void)
{
    pthread_once(&g_sodium_once, sodium_init_once);
    return g_sodium_rc >= 0;
}

mt_status mt_pwhash_hash(const char *password, char out[MT_PWHASH_STRLEN], mt_err *err)
{
    _Static_assert(MT_PWHASH_STRLEN == crypto_pwhash_argon2id_STRBYTES,
                   "MT_PWHASH_STRLEN must match libsodium's string size");
    if (!password || !out)
        return mt_err_set(err, MT_EINVAL, "mt_pwhash_hash: NULL argument");
    out[0] = '\0';
    size_t n = strnlen(password, MT_PASSWORD_MAX + 1);
    if (n < MT_PASSWORD_MIN || n > MT_PASSWORD_MAX)
        return mt_err_set(err, MT_EINVAL, "password must be %d to %d bytes long", MT_PASSWORD_MIN,
                          MT_PASSWORD_MAX);
    if (!sodium_ready())
        return mt_err_set(err, MT_EINTERNAL, "libsodium failed to initialise");
    if (crypto_pwhash_argon2id_str(out, password, n, crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
                                   crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE) != 0) {
        out[0] = '\0';
        return mt_err_set(err, MT_ENOMEM,
                          "password hashing failed: Argon2id needs 64 MiB of memory");
    }
    return MT_OK;
}

bool mt_pwhash_verify(const char *stored, const char *password)
{
    if (!stored || !password)
        return false;
    size_t sl = strnlen(stored, MT_PWHASH_STRLEN);
    if (sl == MT_PWHASH_STRLEN || strncmp(stored, PW_PREFIX, sizeof PW_PREFIX - 1) != 0)
        return false; /* not NUL-terminated within bounds, or not Argon2id */
    size_t n = strnlen(password, MT_PASSWORD_MAX + 1);
    if (n < MT_PASSWORD_MIN || n > MT_PASSWORD_MAX)
        return false;
    if (!sodium_ready())
        return false;
    return crypto_pwhash_argon2id_str_verify(stored, password, n) == 0;
}
