/* Unit tests of the Vault transit features of src/keystore/transit: derived
 * keys (HKDF per context) checked against an independent HKDF, convergent
 * encryption (deterministic, and different for another plaintext, context
 * or aad), export forms read back by OpenSSL, ecdsa-p521, and the backup
 * format (round trip, every rule, truncation, checksum, trailing bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mt_secmem.h"
#include "mt_transit.h"
#include "mt_transit_backup.h"
#include "mt_util.h"

static const uint8_t k32[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* HKDF-SHA256 through EVP_KDF (another OpenSSL API than the module's). */
static void ref_hkdf(const uint8_t *ikm, size_t il, const char *salt, const uint8_t *info,
                     size_t nl, uint8_t out[32])
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *c = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, il),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, strlen(salt)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, nl),
        OSSL_PARAM_construct_end()};
    assert_int_equal(EVP_KDF_derive(c, out, 32, p), 1);
    EVP_KDF_CTX_free(c);
    EVP_KDF_free(kdf);
}

static void test_derive(void **state)
{
    (void)state;
    mt_err err;
    mt_tk_key *k = NULL, *d1 = NULL, *d2 = NULL, *d3 = NULL;
    assert_int_equal(mt_tk_key_from_material(MT_TK_AES256_GCM96, k32, 32, &k, &err), MT_OK);
    assert_int_equal(mt_tk_derive(k, (const uint8_t *)"alice", 5, &d1, &err), MT_OK);
    assert_int_equal(mt_tk_derive(k, (const uint8_t *)"alice", 5, &d2, &err), MT_OK);
    assert_int_equal(mt_tk_derive(k, (const uint8_t *)"bob", 3, &d3, &err), MT_OK);
    uint8_t *m1 = NULL, *m2 = NULL, *m3 = NULL, ref[32];
    size_t n1, n2, n3;
    assert_int_equal(mt_tk_key_material(d1, &m1, &n1, &err), MT_OK);
    assert_int_equal(mt_tk_key_material(d2, &m2, &n2, &err), MT_OK);
    assert_int_equal(mt_tk_key_material(d3, &m3, &n3, &err), MT_OK);
    ref_hkdf(k32, 32, "mesatee-transit-derived/v1", (const uint8_t *)"alice", 5, ref);
    assert_int_equal(n1, 32);
    assert_memory_equal(m1, ref, 32);
    assert_memory_equal(m1, m2, 32);
    assert_memory_not_equal(m1, m3, 32);
    assert_memory_not_equal(m1, k32, 32);
    /* a ciphertext of one context does not decrypt under another */
    uint8_t *ct = NULL, *pt = NULL;
    size_t cl = 0, pl = 0;
    assert_int_equal(mt_tk_encrypt(d1, (const uint8_t *)"hi", 2, NULL, 0, &ct, &cl, &err), MT_OK);
    assert_int_equal(mt_tk_decrypt(d3, ct, cl, NULL, 0, &pt, &pl, &err), MT_ECRYPTO);
    assert_int_equal(mt_tk_decrypt(d2, ct, cl, NULL, 0, &pt, &pl, &err), MT_OK);
    assert_int_equal(pl, 2);
    mt_secmem_free(pt);
    free(ct);
    /* no context, too long a context, a key type that does not derive */
    mt_tk_key *bad = NULL, *ec = NULL;
    assert_int_equal(mt_tk_derive(k, (const uint8_t *)"", 0, &bad, &err), MT_EINVAL);
    uint8_t big[MT_TK_CONTEXT_MAX + 1] = {0};
    assert_int_equal(mt_tk_derive(k, big, sizeof big, &bad, &err), MT_EINVAL);
    assert_int_equal(mt_tk_derive(k, big, sizeof big - 1, &bad, &err), MT_OK);
    mt_tk_key_free(bad);
    bad = NULL;
    assert_int_equal(mt_tk_key_generate(MT_TK_ECDSA_P256, &ec, &err), MT_OK);
    assert_int_equal(mt_tk_derive(ec, (const uint8_t *)"x", 1, &bad, &err), MT_EINVAL);
    assert_null(bad);
    mt_secmem_free(m1);
    mt_secmem_free(m2);
    mt_secmem_free(m3);
    mt_tk_key_free(k);
    mt_tk_key_free(d1);
    mt_tk_key_free(d2);
    mt_tk_key_free(d3);
    mt_tk_key_free(ec);
}

static void test_convergent(void **state)
{
    (void)state;
    mt_err err;
    for (int t = MT_TK_AES256_GCM96; t <= MT_TK_CHACHA20_POLY1305; t++) {
        mt_tk_key *k = NULL, *d = NULL;
        assert_int_equal(mt_tk_key_from_material((mt_tk_type)t, k32, 32, &k, &err), MT_OK);
        assert_int_equal(mt_tk_derive(k, (const uint8_t *)"ctx", 3, &d, &err), MT_OK);
        uint8_t *c[5] = {0}, *pt = NULL;
        size_t l[5] = {0}, pl = 0;
        const uint8_t *ctx = (const uint8_t *)"ctx";
        assert_int_equal(mt_tk_encrypt_convergent(d, ctx, 3, (const uint8_t *)"same", 4, NULL, 0,
                                                  &c[0], &l[0], &err),
                         MT_OK);
        assert_int_equal(mt_tk_encrypt_convergent(d, ctx, 3, (const uint8_t *)"same", 4, NULL, 0,
                                                  &c[1], &l[1], &err),
                         MT_OK);
        assert_int_equal(mt_tk_encrypt_convergent(d, ctx, 3, (const uint8_t *)"samf", 4, NULL, 0,
                                                  &c[2], &l[2], &err),
                         MT_OK);
        assert_int_equal(mt_tk_encrypt_convergent(d, ctx, 3, (const uint8_t *)"same", 4,
                                                  (const uint8_t *)"a", 1, &c[3], &l[3], &err),
                         MT_OK);
        assert_int_equal(mt_tk_encrypt_convergent(d, ctx, 2, (const uint8_t *)"same", 4, NULL, 0,
                                                  &c[4], &l[4], &err),
                         MT_OK);
        assert_int_equal(l[0], 12 + 4 + 16);
        assert_memory_equal(c[0], c[1], l[0]); /* deterministic */
        for (int i = 2; i < 5; i++)            /* another nonce for anything else */
            assert_memory_not_equal(c[0], c[i], 12);
        assert_int_equal(mt_tk_decrypt(d, c[0], l[0], NULL, 0, &pt, &pl, &err), MT_OK);
        assert_memory_equal(pt, "same", 4);
        mt_secmem_free(pt);
        pt = NULL;
        assert_int_equal(mt_tk_decrypt(d, c[3], l[3], (const uint8_t *)"a", 1, &pt, &pl, &err),
                         MT_OK);
        mt_secmem_free(pt);
        for (int i = 0; i < 5; i++)
            free(c[i]);
        uint8_t *x = NULL;
        size_t xl = 0;
        assert_int_equal(mt_tk_encrypt_convergent(k, ctx, 3, (const uint8_t *)"", 0, NULL, 0, &x,
                                                  &xl, &err),
                         MT_OK); /* the empty plaintext works too */
        free(x);
        mt_tk_key_free(k);
        mt_tk_key_free(d);
    }
}

static EVP_PKEY *pem_private(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *p = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    return p;
}

static void test_export(void **state)
{
    (void)state;
    mt_err err;
    char *s = NULL;
    /* aes: the 32 bytes */
    mt_tk_key *k = NULL;
    assert_int_equal(mt_tk_key_from_material(MT_TK_AES256_GCM96, k32, 32, &k, &err), MT_OK);
    assert_int_equal(mt_tk_export(k, MT_TX_ENCRYPTION, &s, &err), MT_OK);
    uint8_t *raw = NULL;
    size_t rl = 0;
    assert_int_equal(mt_b64_decode(s, &raw, &rl, &err), MT_OK);
    assert_int_equal(rl, 32);
    assert_memory_equal(raw, k32, 32);
    free(raw);
    mt_secmem_free(s);
    assert_int_equal(mt_tk_export(k, MT_TX_SIGNING, &s, &err), MT_EINVAL);
    assert_null(s);
    assert_int_equal(mt_tk_export(k, MT_TX_PUBLIC, &s, &err), MT_EINVAL);
    /* the HMAC key exported is the one mt_tk_hmac uses */
    assert_int_equal(mt_tk_export(k, MT_TX_HMAC, &s, &err), MT_OK);
    assert_int_equal(mt_b64_decode(s, &raw, &rl, &err), MT_OK);
    uint8_t mac[64], ref[64];
    size_t ml = 0;
    unsigned int rml = 0;
    assert_int_equal(mt_tk_hmac(k, MT_TH_SHA2_256, (const uint8_t *)"m", 1, mac, &ml, &err),
                     MT_OK);
    HMAC(EVP_sha256(), raw, (int)rl, (const uint8_t *)"m", 1, ref, &rml);
    assert_int_equal(ml, rml);
    assert_memory_equal(mac, ref, ml);
    free(raw);
    mt_secmem_free(s);
    mt_tk_key_free(k);
    /* ecdsa-p521 and rsa: a PEM private key OpenSSL reads, matching the key */
    static const mt_tk_type ts[] = {MT_TK_ECDSA_P521, MT_TK_RSA_2048, MT_TK_ED25519};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(mt_tk_key_generate(ts[i], &k, &err), MT_OK);
        assert_int_equal(mt_tk_export(k, MT_TX_SIGNING, &s, &err), MT_OK);
        char *pub = NULL, *pub2 = NULL;
        assert_int_equal(mt_tk_public_pem(k, &pub, &err), MT_OK);
        EVP_PKEY *p = NULL;
        if (ts[i] == MT_TK_ED25519) {
            assert_int_equal(mt_b64_decode(s, &raw, &rl, &err), MT_OK);
            assert_int_equal(rl, 64);
            p = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw, 32);
            free(raw);
        } else {
            assert_non_null(strstr(s, ts[i] == MT_TK_RSA_2048 ? "BEGIN RSA PRIVATE KEY"
                                                                : "BEGIN EC PRIVATE KEY"));
            p = pem_private(s);
        }
        assert_non_null(p);
        BIO *b = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_PUBKEY(b, p), 1);
        char *d = NULL;
        long dl = BIO_get_mem_data(b, &d);
        pub2 = strndup(d, (size_t)dl);
        assert_string_equal(pub, pub2);
        BIO_free(b);
        EVP_PKEY_free(p);
        free(pub2);
        mt_secmem_free(s);
        assert_int_equal(mt_tk_export(k, MT_TX_PUBLIC, &s, &err), MT_OK);
        if (ts[i] != MT_TK_ED25519)
            assert_string_equal(s, pub);
        free(s);
        free(pub);
        assert_int_equal(mt_tk_export(k, MT_TX_ENCRYPTION, &s, &err),
                         ts[i] == MT_TK_RSA_2048 ? MT_OK : MT_EINVAL);
        mt_secmem_free(s);
        s = NULL;
        mt_tk_key_free(k);
    }
}

/* ---- backup format ------------------------------------------------------------ */

static void sample(mt_tb_key *k, uint8_t *mat)
{
    memset(k, 0, sizeof *k);
    k->type = MT_TK_AES256_GCM96;
    snprintf(k->name, sizeof k->name, "orders");
    k->latest = 3;
    k->min_dec = 2;
    k->min_enc = 3;
    k->min_avail = 2;
    k->exportable = k->allow_plaintext_backup = k->derived = k->convergent = true;
    k->created_at = 1700000000;
    k->n = 2;
    k->v = calloc(2, sizeof *k->v);
    for (size_t i = 0; i < 2; i++) {
        k->v[i].version = (uint32_t)(2 + i);
        k->v[i].created_at = 1700000000 + (int64_t)i;
        k->v[i].material = mt_secmem_malloc(32);
        memcpy(k->v[i].material, mat, 32);
        k->v[i].material[0] = (uint8_t)i;
        k->v[i].len = 32;
    }
}

/* Re-checksums a backup after the test changed a byte. */
static void resum(uint8_t *b, size_t n)
{
    SHA256(b, n - 32, b + n - 32);
}

static void test_backup(void **state)
{
    (void)state;
    mt_err err;
    mt_tb_key k, d;
    sample(&k, (uint8_t *)k32);
    uint8_t *b = NULL;
    size_t n = 0;
    assert_int_equal(mt_tb_encode(&k, &b, &n, &err), MT_OK);
    assert_int_equal(mt_tb_decode(b, n, &d, &err), MT_OK);
    assert_int_equal(d.type, k.type);
    assert_string_equal(d.name, "orders");
    assert_int_equal(d.latest, 3);
    assert_int_equal(d.min_dec, 2);
    assert_int_equal(d.min_enc, 3);
    assert_int_equal(d.min_avail, 2);
    assert_true(d.exportable && d.allow_plaintext_backup && d.derived && d.convergent);
    assert_false(d.deletion_allowed || d.imported || d.allow_rotation);
    assert_int_equal(d.n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(d.v[i].version, k.v[i].version);
        assert_int_equal(d.v[i].created_at, k.v[i].created_at);
        assert_int_equal(d.v[i].len, 32);
        assert_memory_equal(d.v[i].material, k.v[i].material, 32);
    }
    mt_tb_key_clear(&d);
    /* every truncation and every trailing byte is refused */
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(mt_tb_decode(b, cut, &d, &err), MT_EINVAL);
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, b, n - 32);
    longer[n - 32] = 0;
    resum(longer, n + 1);
    assert_int_equal(mt_tb_decode(longer, n + 1, &d, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "trailing"));
    free(longer);
    /* a flipped bit fails the checksum */
    b[20] ^= 1;
    assert_int_equal(mt_tb_decode(b, n, &d, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "checksum"));
    b[20] ^= 1;
    /* fields that break a rule, with a valid checksum: flags byte 128, a type, counts */
    size_t off_flags = 8 + 1 + strlen("aes256-gcm96") + 1 + strlen("orders") + 16;
    b[off_flags] |= 128;
    resum(b, n);
    assert_int_equal(mt_tb_decode(b, n, &d, &err), MT_EINVAL);
    b[off_flags] &= 127;
    b[9] = 'X'; /* "Xes256-gcm96" */
    resum(b, n);
    assert_int_equal(mt_tb_decode(b, n, &d, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "type"));
    b[9] = 'a';
    size_t off_count = off_flags + 1 + 8;
    b[off_count] = 0xff; /* a count the input cannot hold: refused before allocating */
    resum(b, n);
    assert_int_equal(mt_tb_decode(b, n, &d, &err), MT_EINVAL);
    b[off_count] = 0;
    resum(b, n);
    assert_int_equal(mt_tb_decode(b, n, &d, &err), MT_OK);
    mt_tb_key_clear(&d);
    mt_secmem_free(b);
    /* the encoder checks the same rules */
    struct {
        int field;
        const char *msg;
    } rules[] = {{0, "convergent"}, {1, "min_available"}, {2, "latest version"},
                 {3, "out of order"}, {4, "min_decryption"}, {5, "derived"}};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        mt_tb_key_clear(&k);
        sample(&k, (uint8_t *)k32);
        switch (rules[i].field) {
        case 0: k.derived = false; break;
        case 1: k.min_avail = 3; break;
        case 2: k.latest = 4; k.min_enc = 4; break;
        case 3: k.v[1].version = 2; break;
        case 4: k.min_dec = 4; break;
        case 5: k.type = MT_TK_ECDSA_P256; break;
        }
        assert_int_equal(mt_tb_encode(&k, &b, &n, &err), MT_EINVAL);
        if (!strstr(err.msg, rules[i].msg))
            fail_msg("rule %zu: '%s' lacks '%s'", i, err.msg, rules[i].msg);
        assert_null(b);
    }
    mt_tb_key_clear(&k);
    mt_tb_key_clear(&k); /* twice: safe */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive),
        cmocka_unit_test(test_convergent),
        cmocka_unit_test(test_export),
        cmocka_unit_test(test_backup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
