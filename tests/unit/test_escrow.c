/* Unit tests of the KeyStore escrow (src/keystore/ks_escrow.c, mt_escrow.h):
 * an escrow to recipients opens with their private keys: threshold 1 with
 * any one, 2 of 3 with every pair, never with one; a key that is no
 * recipient, a repeated key, a non-P-256 key, a tampered header field or
 * share, and garbage files are refused; mt_keystore_recover at level soft
 * rebuilds a KeyStore whose state does not open any more, with the same
 * root keys (equal KEKs), and refuses while the present state opens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_escrow.h"
#include "mt_keystore.h"
#include "mt_tee.h"
#include "mt_util.h"

typedef struct kp {
    char *pub, *priv; /* PEM texts */
} kp;

static char *bio_text(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    char *s = malloc((size_t)n + 1);
    memcpy(s, p, (size_t)n);
    s[n] = 0;
    BIO_free(b);
    return s;
}

static kp gen(const char *curve)
{
    EVP_PKEY *k = curve ? EVP_EC_gen(curve) : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(k);
    BIO *a = BIO_new(BIO_s_mem()), *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(a, k), 1);
    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    EVP_PKEY_free(k);
    kp r = {bio_text(a), bio_text(b)};
    return r;
}

static void kp_free(kp *k)
{
    free(k->pub);
    free(k->priv);
}

static uint8_t REC[3 * MT_ESCROW_RECORD];

static void records_init(void)
{
    for (int i = 0; i < 3; i++) {
        uint8_t *r = REC + i * MT_ESCROW_RECORD;
        r[0] = r[1] = r[2] = 0;
        r[3] = (uint8_t)(i + 2); /* versions 2, 3, 4 */
        for (int j = 0; j < 32; j++)
            r[4 + j] = (uint8_t)(i * 32 + j);
    }
}

static char *make(kp *ks, size_t n, unsigned t)
{
    const char *pems[8];
    size_t lens[8];
    for (size_t i = 0; i < n; i++) {
        pems[i] = ks[i].pub;
        lens[i] = strlen(ks[i].pub);
    }
    char *out = NULL;
    size_t ol = 0;
    mt_err err;
    mt_status rc = mt_escrow_make(REC, sizeof REC, 3, "soft", 1700000000, pems, lens, n, t, &out,
                                  &ol, &err);
    if (rc)
        fail_msg("make: %s", err.msg);
    assert_int_equal(strlen(out), ol);
    return out;
}

/* opens doc with the private keys of ks[idx[0..n)]; returns the status */
static mt_status open_with(const char *doc, kp *ks, const int *idx, size_t n, mt_err *err)
{
    mt_escrow *e = NULL;
    mt_status rc = mt_escrow_parse(doc, strlen(doc), &e, err);
    if (rc)
        return rc;
    const char *keys[8];
    size_t lens[8];
    for (size_t i = 0; i < n; i++) {
        keys[i] = ks[idx[i]].priv;
        lens[i] = strlen(keys[i]);
    }
    uint8_t *rec = NULL;
    size_t rl = 0;
    uint32_t cur = 0;
    rc = mt_escrow_open(e, keys, lens, n, &rec, &rl, &cur, err);
    if (!rc) {
        assert_int_equal(rl, sizeof REC);
        assert_memory_equal(rec, REC, sizeof REC);
        assert_int_equal(cur, 3);
        free(rec);
    } else {
        assert_null(rec);
    }
    mt_escrow_free(e);
    return rc;
}

static void test_threshold(void **state)
{
    (void)state;
    records_init();
    kp k[4] = {gen("P-256"), gen("P-256"), gen("P-256"), gen("P-256")};
    mt_err err;
    char *one = make(k, 3, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(open_with(one, k, (int[]){i}, 1, &err), MT_OK);
    char *two = make(k, 3, 2);
    assert_int_equal(open_with(two, k, (int[]){0}, 1, &err), MT_EPERM);
    assert_non_null(strstr(err.msg, "needs the keys of 2 of its 3 recipients"));
    int pairs[][2] = {{0, 1}, {1, 0}, {0, 2}, {2, 1}};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(open_with(two, k, pairs[i], 2, &err), MT_OK);
    assert_int_equal(open_with(two, k, (int[]){0, 1, 2}, 3, &err), MT_OK);
    /* a stranger's key, a key given twice */
    assert_int_equal(open_with(two, k, (int[]){0, 3}, 2, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "recovery key 2 is not a recipient"));
    assert_int_equal(open_with(two, k, (int[]){1, 1}, 2, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "given twice"));
    char *all = make(k, 4, 4);
    assert_int_equal(open_with(all, k, (int[]){3, 2, 1, 0}, 4, &err), MT_OK);
    assert_int_equal(open_with(all, k, (int[]){3, 2, 1}, 3, &err), MT_EPERM);
    free(one);
    free(two);
    free(all);
    for (int i = 0; i < 4; i++)
        kp_free(&k[i]);
}

/* replaces the first occurrence of from by to in doc (heap copy) */
static char *edit(const char *doc, const char *from, const char *to)
{
    const char *p = strstr(doc, from);
    assert_non_null(p);
    size_t a = (size_t)(p - doc), fl = strlen(from), tl = strlen(to);
    char *s = malloc(strlen(doc) - fl + tl + 1);
    memcpy(s, doc, a);
    memcpy(s + a, to, tl);
    strcpy(s + a + tl, p + fl);
    return s;
}

static void test_tamper_and_garbage(void **state)
{
    (void)state;
    records_init();
    kp k[3] = {gen("P-256"), gen("P-256"), gen("P-256")};
    mt_err err;
    char *doc = make(k, 3, 2);
    /* header fields are bound (AAD): each edit parses but does not open */
    const char *edits[][2] = {
        {"\"threshold\": 2", "\"threshold\": 3"},
        {"\"created_at\": 1700000000", "\"created_at\": 1700000001"},
        {"\"level\": \"soft\"", "\"level\": \"tpm2\""},
        {"\"current\": 3", "\"current\": 2"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *t = edit(doc, edits[i][0], edits[i][1]);
        mt_status rc = open_with(t, k, (int[]){0, 1, 2}, 3, &err);
        assert_int_equal(rc, MT_ECRYPTO);
        free(t);
    }
    /* current 5 is no version: refused by the parser */
    char *t = edit(doc, "\"current\": 3", "\"current\": 5");
    assert_int_equal(open_with(t, k, (int[]){0, 1}, 2, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "field 'current'"));
    free(t);
    /* a flipped byte in a share's sealed bytes */
    const char *s = strstr(doc, "\"shares\"");
    s = strstr(s, "\"sealed\": \"") + 11;
    char *u = strdup(doc);
    u[s - doc] = u[s - doc] == 'A' ? 'B' : 'A';
    assert_int_equal(open_with(u, k, (int[]){0, 1}, 2, &err), MT_ECRYPTO);
    assert_non_null(strstr(err.msg, "recovery key 1: its share does not decrypt"));
    free(u);
    /* truncated at every length, and garbage */
    size_t n = strlen(doc);
    for (size_t l = 0; l < n; l += 7) {
        mt_escrow *e = NULL;
        assert_int_not_equal(mt_escrow_parse(doc, l, &e, &err), MT_OK);
        assert_null(e);
    }
    const char *bad[] = {
        "", "[]", "{}", "{\"mesatee_keystore_escrow\": 2}", "not json",
        ("{\"mesatee_keystore_escrow\":1,\"level\":\"soft\",\"created_at\":0,\"current\":1,"
         "\"versions\":[1],\"threshold\":1,\"sealed\":\"AAAA\",\"shares\":[]}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mt_escrow *e = NULL;
        assert_int_equal(mt_escrow_parse(bad[i], strlen(bad[i]), &e, &err), MT_EINVAL);
        assert_non_null(strstr(err.msg, "escrow file: "));
    }
    free(doc);
    /* recipients: not P-256, repeated, bad threshold */
    kp ed = gen(NULL), p384 = gen("P-384");
    const char *pems[2] = {k[0].pub, ed.pub};
    size_t lens[2] = {strlen(k[0].pub), strlen(ed.pub)};
    char *out = NULL;
    size_t ol = 0;
    assert_int_equal(mt_escrow_make(REC, sizeof REC, 3, "soft", 0, pems, lens, 2, 1, &out, &ol,
                                    &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "recipient 2: expected"));
    pems[1] = p384.pub;
    lens[1] = strlen(p384.pub);
    assert_int_equal(mt_escrow_make(REC, sizeof REC, 3, "soft", 0, pems, lens, 2, 1, &out, &ol,
                                    &err),
                     MT_EINVAL);
    pems[1] = k[0].pub;
    lens[1] = lens[0];
    assert_int_equal(mt_escrow_make(REC, sizeof REC, 3, "soft", 0, pems, lens, 2, 1, &out, &ol,
                                    &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "the same key as recipient 1"));
    assert_int_equal(mt_escrow_make(REC, sizeof REC, 3, "soft", 0, pems, lens, 1, 2, &out, &ol,
                                    &err),
                     MT_EINVAL);
    assert_int_equal(mt_escrow_make(REC, sizeof REC, 9, "soft", 0, pems, lens, 1, 1, &out, &ol,
                                    &err),
                     MT_EINVAL);
    assert_null(out);
    /* a recovery key that is not a P-256 private key */
    doc = make(k, 1, 1);
    kp wrong[1] = {{NULL, ed.priv}};
    assert_int_equal(open_with(doc, wrong, (int[]){0}, 1, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "recovery key 1: expected"));
    free(doc);
    kp_free(&ed);
    kp_free(&p384);
    for (int i = 0; i < 3; i++)
        kp_free(&k[i]);
}

/* ---- mt_keystore_recover at level soft ---------------------------------------- */

static mt_keyring *release(mt_keystore *ks, mt_tee *tee)
{
    mt_keystore_node *node = NULL;
    char *req = NULL, *resp = NULL, meas[MT_KEYSTORE_MEAS_HEX + 1];
    size_t rl = 0, pl = 0;
    mt_err err;
    mt_keyring *kr = NULL;
    assert_int_equal(mt_keystore_request(tee, &node, &req, &rl, &err), MT_OK);
    assert_int_equal(mt_keystore_release(ks, req, rl, &resp, &pl, meas, &err), MT_OK);
    assert_int_equal(mt_keystore_accept(node, resp, pl, &kr, &err), MT_OK);
    mt_keystore_node_free(node);
    free(req);
    free(resp);
    return kr;
}

static void test_recover_soft(void **state)
{
    (void)state;
    char dir[64] = "/tmp/mt_escrow_test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    mt_tee *tee = NULL;
    mt_err err;
    assert_int_equal(mt_tee_open("soft", dir, &tee, &err), MT_OK);
    mt_keystore_node *node = NULL;
    char *req = NULL;
    size_t rl = 0;
    assert_int_equal(mt_keystore_request(tee, &node, &req, &rl, &err), MT_OK);
    mt_keystore *ks = NULL;
    bool created = false;
    assert_int_equal(mt_keystore_open(tee, dir, req, rl, &ks, &created, &err), MT_OK);
    assert_true(created);
    uint32_t v2 = 0;
    assert_int_equal(mt_keystore_rotate(ks, &v2, &err), MT_OK);
    mt_keyring *kr = release(ks, tee);
    uint8_t k1[32], k2[32], r1[32], r2[32];
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 1, k1, NULL, &err), MT_OK);
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 2, k2, NULL, &err), MT_OK);
    mt_keyring_free(kr);

    kp k[2] = {gen("P-256"), gen("P-256")};
    const char *pems[2] = {k[0].pub, k[1].pub};
    size_t lens[2] = {strlen(k[0].pub), strlen(k[1].pub)};
    char *doc = NULL;
    size_t dl = 0;
    assert_int_equal(mt_keystore_escrow(ks, pems, lens, 2, 2, &doc, &dl, &err), MT_OK);
    const char *keys[2] = {k[0].priv, k[1].priv};
    size_t klens[2] = {strlen(k[0].priv), strlen(k[1].priv)};

    /* the state opens: nothing to recover, nothing changed */
    mt_keystore *rk = NULL;
    assert_int_equal(mt_keystore_recover(tee, dir, NULL, req, rl, doc, dl, keys, klens, 2, &rk,
                                         &err),
                     MT_ECONFLICT);
    assert_non_null(strstr(err.msg, "nothing to recover"));
    mt_keystore_free(ks);

    /* the state is lost (here: overwritten) */
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, MT_KEYSTORE_FILE);
    FILE *f = fopen(path, "wb");
    fputs("lost", f);
    fclose(f);
    /* one key of two: refused, the file untouched */
    assert_int_equal(mt_keystore_recover(tee, dir, NULL, req, rl, doc, dl, keys, klens, 1, &rk,
                                         &err),
                     MT_EPERM);
    uint8_t *b = NULL;
    size_t bl = 0;
    assert_int_equal(mt_file_read(path, 64, &b, &bl, &err), MT_OK);
    assert_int_equal(bl, 4);
    free(b);
    assert_int_equal(mt_keystore_recover(tee, dir, NULL, req, rl, doc, dl, keys, klens, 2, &rk,
                                         &err),
                     MT_OK);
    kr = release(rk, tee);
    assert_int_equal(mt_keyring_current(kr), 2);
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 1, r1, NULL, &err), MT_OK);
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 2, r2, NULL, &err), MT_OK);
    assert_memory_equal(k1, r1, 32);
    assert_memory_equal(k2, r2, 32);
    mt_keyring_free(kr);
    mt_keystore_free(rk);
    /* reopened as an ordinary KeyStore */
    assert_int_equal(mt_keystore_open(tee, dir, req, rl, &ks, &created, &err), MT_OK);
    assert_false(created);
    mt_keystore_free(ks);

    mt_keystore_node_free(node);
    free(req);
    free(doc);
    for (int i = 0; i < 2; i++)
        kp_free(&k[i]);
    mt_tee_free(tee);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_tamper_and_garbage),
        cmocka_unit_test(test_recover_soft),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
