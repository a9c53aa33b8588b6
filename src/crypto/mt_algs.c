/* mt_algs: algorithms fetched once per process (mt_algs.h). */
#include "mt_algs.h"

#include <pthread.h>

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_CIPHER *alg_gcm;
static EVP_MD *alg_sha256;

static void algs_fetch(void)
{
    alg_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    alg_sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

const EVP_MD *mt_algs_sha256(void)
{
    (void)pthread_once(&algs_once, algs_fetch);
    return alg_sha256 ? alg_sha256 : EVP_sha256();
}

const EVP_CIPHER *mt_algs_aes256gcm(void)
{
    (void)pthread_once(&algs_once, algs_fetch);
    return alg_gcm ? alg_gcm : EVP_aes_256_gcm();
}
