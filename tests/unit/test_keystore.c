/* Unit tests of mt_keystore (src/keystore): at level soft, the first open
 * creates root v1 and a policy allowing exactly this node; the release
 * answers only an allowed measurement, encrypted so that only the requesting
 * node opens it; policy edits, rotation and retirement persist in the sealed
 * state across reopen; a tampered or foreign state file and garbage messages
 * are refused; KEKs are deterministic per (version, purpose) and separate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mt_dbcert.h"
#include "mt_escrow.h"
#include "mt_keystore.h"
#include "mt_policy_sig.h"
#include "mt_tee.h"
#include "mt_util.h"

#define HEX64A "4f0f8b5b1e2c7a9d3e6f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7"

typedef struct env {
    char dir[64];
    mt_tee *tee;
} env;

static int setup(void **state)
{
    env *e = calloc(1, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/mt_keystore_test.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    mt_err err;
    assert_int_equal(mt_tee_open("soft", e->dir, &e->tee, &err), MT_OK);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    mt_tee_free(e->tee);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
    free(e);
    return 0;
}

/* A release round trip; returns the status of the release step. */
static mt_status round_trip(mt_keystore *ks, mt_tee *tee, mt_keyring **kr,
                            char meas[MT_KEYSTORE_MEAS_HEX + 1])
{
    mt_keystore_node *node = NULL;
    char *req = NULL, *resp = NULL;
    size_t rl = 0, pl = 0;
    mt_err err;
    *kr = NULL;
    assert_int_equal(mt_keystore_request(tee, &node, &req, &rl, &err), MT_OK);
    mt_status rc = mt_keystore_release(ks, req, rl, &resp, &pl, meas, &err);
    if (!rc)
        assert_int_equal(mt_keystore_accept(node, resp, pl, kr, &err), MT_OK);
    else
        assert_null(resp);
    mt_keystore_node_free(node);
    free(req);
    free(resp);
    return rc;
}

static mt_keystore *open_ks(env *e, bool *created)
{
    mt_keystore_node *node = NULL;
    char *req = NULL;
    size_t rl = 0;
    mt_err err;
    mt_keystore *ks = NULL;
    assert_int_equal(mt_keystore_request(e->tee, &node, &req, &rl, &err), MT_OK);
    mt_status rc = mt_keystore_open(e->tee, e->dir, req, rl, &ks, created, &err);
    if (rc)
        fail_msg("mt_keystore_open: %s", err.msg);
    mt_keystore_node_free(node);
    free(req);
    return ks;
}

static void test_bootstrap_release(void **state)
{
    env *e = *state;
    bool created = false;
    mt_keystore *ks = open_ks(e, &created);
    assert_true(created);
    char m[65], pk[65], got[MT_KEYSTORE_MEAS_HEX + 1];
    mt_tee_soft_ids(e->tee, m, pk);
    json_t *p = mt_keystore_policy(ks);
    assert_string_equal(json_string_value(json_object_get(p, "level")), "soft");
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "measurements"), 0)), m);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(p, "soft_platform_keys"), 0)), pk);
    json_decref(p);
    mt_keyring *kr = NULL;
    assert_int_equal(round_trip(ks, e->tee, &kr, got), MT_OK);
    assert_string_equal(got, m);
    assert_int_equal(mt_keyring_current(kr), 1);
    uint8_t a[32], b[32], c[32];
    uint32_t used = 0;
    mt_err err;
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 0, a, &used, &err), MT_OK);
    assert_int_equal(used, 1);
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 1, b, NULL, &err), MT_OK);
    assert_memory_equal(a, b, 32);
    assert_int_equal(mt_keyring_kek(kr, "transit-keys", 1, c, NULL, &err), MT_OK);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 2, c, NULL, &err), MT_ENOTFOUND);
    assert_int_equal(mt_keyring_kek(kr, "Bad Purpose", 1, c, NULL, &err), MT_EINVAL);
    assert_int_equal(mt_keyring_kek(kr, "", 1, c, NULL, &err), MT_EINVAL);
    mt_keyring_free(kr);
    mt_keystore_free(ks);
    /* reopened: the same root key (same KEK), not a new bootstrap */
    ks = open_ks(e, &created);
    assert_false(created);
    assert_int_equal(round_trip(ks, e->tee, &kr, got), MT_OK);
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 1, b, NULL, &err), MT_OK);
    assert_memory_equal(a, b, 32);
    mt_keyring_free(kr);
    mt_keystore_free(ks);
}

static void test_policy_refuses(void **state)
{
    env *e = *state;
    mt_keystore *ks = open_ks(e, NULL);
    char m[65], pk[65], got[MT_KEYSTORE_MEAS_HEX + 1];
    mt_tee_soft_ids(e->tee, m, pk);
    mt_err err;
    bool changed = false;
    char other[65];
    memset(other, 'a', 64);
    other[64] = '\0';
    assert_int_equal(mt_keystore_policy_revoke(ks, "measurement", m, &err), MT_ECONFLICT);
    assert_int_equal(mt_keystore_policy_revoke(ks, "soft_platform_key", pk, &err), MT_ECONFLICT);
    assert_int_equal(mt_keystore_policy_allow(ks, "measurement", other, &changed, &err), MT_OK);
    assert_true(changed);
    assert_int_equal(mt_keystore_policy_allow(ks, "measurement", other, &changed, &err), MT_OK);
    assert_false(changed);
    assert_int_equal(mt_keystore_policy_allow(ks, "measurement", "AB", &changed, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_policy_allow(ks, "root", other, &changed, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_policy_revoke(ks, "tpm2_ak", other, &err), MT_ENOTFOUND);
    assert_int_equal(mt_keystore_policy_revoke(ks, "measurement", m, &err), MT_OK);
    mt_keyring *kr = NULL;
    assert_int_equal(round_trip(ks, e->tee, &kr, got), MT_EPERM);
    assert_string_equal(got, m); /* the refused measurement is named */
    assert_null(kr);
    /* the refusal persists across reopen; allowing again releases again */
    mt_keystore_free(ks);
    ks = open_ks(e, NULL);
    assert_int_equal(round_trip(ks, e->tee, &kr, got), MT_EPERM);
    assert_int_equal(mt_keystore_policy_allow(ks, "measurement", m, &changed, &err), MT_OK);
    /* another platform key only: refused on the platform key rule */
    assert_int_equal(mt_keystore_policy_allow(ks, "soft_platform_key", other, &changed, &err),
                     MT_OK);
    assert_int_equal(mt_keystore_policy_revoke(ks, "soft_platform_key", pk, &err), MT_OK);
    assert_int_equal(round_trip(ks, e->tee, &kr, got), MT_EPERM);
    assert_int_equal(mt_keystore_policy_allow(ks, "soft_platform_key", pk, &changed, &err),
                     MT_OK);
    assert_int_equal(round_trip(ks, e->tee, &kr, got), MT_OK);
    mt_keyring_free(kr);
    mt_keystore_free(ks);
}

static void test_rotate_retire(void **state)
{
    env *e = *state;
    mt_keystore *ks = open_ks(e, NULL);
    mt_err err;
    uint32_t v = 0, list[8];
    size_t n = 0;
    mt_keyring *kr = NULL;
    char got[MT_KEYSTORE_MEAS_HEX + 1];
    uint8_t k1[32], k1b[32], k2[32];
    assert_int_equal(round_trip(ks, e->tee, &kr, got), MT_OK);
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 1, k1, NULL, &err), MT_OK);
    mt_keyring_free(kr);
    assert_int_equal(mt_keystore_rotate(ks, &v, &err), MT_OK);
    assert_int_equal(v, 2);
    assert_int_equal(mt_keystore_versions(ks, list, 8, &n), 2);
    assert_int_equal(n, 2);
    assert_int_equal(round_trip(ks, e->tee, &kr, got), MT_OK);
    assert_int_equal(mt_keyring_current(kr), 2);
    assert_true(mt_keyring_has(kr, 1) && mt_keyring_has(kr, 2));
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 1, k1b, NULL, &err), MT_OK);
    assert_memory_equal(k1, k1b, 32);
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 0, k2, &v, &err), MT_OK);
    assert_int_equal(v, 2);
    assert_memory_not_equal(k1, k2, 32);
    mt_keyring_free(kr);
    assert_int_equal(mt_keystore_retire(ks, 2, &err), MT_ECONFLICT);
    assert_int_equal(mt_keystore_retire(ks, 9, &err), MT_ENOTFOUND);
    assert_int_equal(mt_keystore_retire(ks, 1, &err), MT_OK);
    mt_keystore_free(ks);
    ks = open_ks(e, NULL); /* persisted */
    assert_int_equal(mt_keystore_versions(ks, list, 8, &n), 2);
    assert_int_equal(n, 1);
    assert_int_equal(round_trip(ks, e->tee, &kr, got), MT_OK);
    assert_false(mt_keyring_has(kr, 1));
    assert_int_equal(mt_keyring_kek(kr, "file-keys", 1, k1b, NULL, &err), MT_ENOTFOUND);
    mt_keyring_free(kr);
    mt_keystore_free(ks);
}

static void test_other_node_and_garbage(void **state)
{
    env *e = *state;
    mt_keystore *ks = open_ks(e, NULL);
    mt_err err;
    mt_keystore_node *a = NULL, *b = NULL;
    char *ra = NULL, *rb = NULL, *resp = NULL;
    size_t la = 0, lb = 0, pl = 0;
    assert_int_equal(mt_keystore_request(e->tee, &a, &ra, &la, &err), MT_OK);
    assert_int_equal(mt_keystore_request(e->tee, &b, &rb, &lb, &err), MT_OK);
    assert_int_equal(mt_keystore_release(ks, ra, la, &resp, &pl, NULL, &err), MT_OK);
    mt_keyring *kr = NULL;
    /* only the node whose key the evidence certified opens the answer */
    assert_int_equal(mt_keystore_accept(b, resp, pl, &kr, &err), MT_ECRYPTO);
    assert_null(kr);
    resp[pl / 2] ^= 1; /* a changed byte anywhere: refused, never a crash */
    assert_int_not_equal(mt_keystore_accept(a, resp, pl, &kr, &err), MT_OK);
    free(resp);
    static const char *const bad[] = {
        "", "{}", "[]", "{\"mesatee_keystore\":1,\"op\":\"release\"}",
        "{\"mesatee_keystore\":2,\"op\":\"release\",\"evidence\":\"AAAA\"}",
        "{\"mesatee_keystore\":1,\"op\":\"rotate\",\"evidence\":\"AAAA\"}",
        "{\"mesatee_keystore\":1,\"op\":\"release\",\"evidence\":\"!!\"}",
        "{\"mesatee_keystore\":1,\"op\":\"release\",\"evidence\":\"AAAA\"}",
        "{\"mesatee_keystore\":1,\"op\":\"release\",\"evidence\":\"AAAA\",\"x\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        resp = NULL;
        mt_status rc = mt_keystore_release(ks, bad[i], strlen(bad[i]), &resp, &pl, NULL, &err);
        assert_int_not_equal(rc, MT_OK);
        assert_null(resp);
    }
    mt_keystore_node_free(a);
    mt_keystore_node_free(b);
    free(ra);
    free(rb);
    mt_keystore_free(ks);
}

static void test_state_file(void **state)
{
    env *e = *state;
    mt_keystore_free(open_ks(e, NULL));
    char path[128];
    snprintf(path, sizeof path, "%s/%s", e->dir, MT_KEYSTORE_FILE);
    uint8_t *buf = NULL;
    size_t len = 0;
    mt_err err;
    assert_int_equal(mt_file_read(path, 1 << 20, &buf, &len, &err), MT_OK);
    assert_null(memmem(buf, len, "measurements", 12)); /* sealed, not plain JSON */
    mt_keystore *ks = NULL;
    buf[len - 3] ^= 0x40;
    assert_int_equal(mt_file_write_atomic(path, buf, len, 0600, &err), MT_OK);
    assert_int_equal(mt_keystore_open(e->tee, e->dir, NULL, 0, &ks, NULL, &err), MT_ECRYPTO);
    assert_non_null(strstr(err.msg, "does not open"));
    assert_int_equal(mt_file_write_atomic(path, "MTKS", 4, 0600, &err), MT_OK);
    assert_int_equal(mt_keystore_open(e->tee, e->dir, NULL, 0, &ks, NULL, &err), MT_EINVAL);
    buf[len - 3] ^= 0x40;
    assert_int_equal(mt_file_write_atomic(path, buf, len, 0600, &err), MT_OK);
    free(buf);
    /* the same state at another level (here none) is refused */
    mt_tee *none = NULL;
    assert_int_equal(mt_tee_open("none", e->dir, &none, &err), MT_OK);
    assert_int_equal(mt_keystore_open(none, e->dir, NULL, 0, &ks, NULL, &err), MT_ECONFLICT);
    mt_tee_free(none);
    /* the plaintext reader refuses bad states */
    static const char *const bad[] = {
        "{}", "{\"mesatee_keystore_state\":1,\"current\":1,\"versions\":[],\"policy\":{\"level\":\"soft\",\"seq\":0}}",
        "{\"mesatee_keystore_state\":1,\"current\":1,\"versions\":[{\"version\":1,\"key\":\"00\",\"created_at\":0}],\"policy\":{\"level\":\"soft\",\"seq\":0}}",
        "{\"mesatee_keystore_state\":1,\"current\":1,\"versions\":[{\"version\":1,\"key\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"created_at\":0}],\"policy\":{\"level\":\"nitro\",\"seq\":0}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mt_keystore_parse_state(bad[i], strlen(bad[i]), &err), MT_EINVAL);
    const char *good = "{\"mesatee_keystore_state\":1,\"current\":1,\"versions\":[{\"version\":1,\"key\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"created_at\":0}],\"policy\":{\"level\":\"none\",\"seq\":0}}";
    assert_int_equal(mt_keystore_parse_state(good, strlen(good), &err), MT_OK);
}

/* The database CA sealed in the state (optional "db_ca"): a state file
 * without it (as every build before wrote it) opens and has none; set
 * persists across a reopen; the same pair again saves nothing; garbage is
 * refused by the setter and by the plaintext reader. */
static void test_db_ca_sealed(void **state)
{
    env *e = *state;
    mt_keystore *ks = open_ks(e, NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", e->dir, MT_KEYSTORE_FILE);
    uint8_t *old = NULL;
    size_t old_len = 0;
    mt_err err;
    assert_int_equal(mt_file_read(path, 1 << 20, &old, &old_len, &err), MT_OK);
    char *c = NULL, *k = NULL;
    assert_int_equal(mt_keystore_db_ca_get(ks, &c, &k, &err), MT_ENOTFOUND);
    assert_null(c);
    char *cp = NULL, *kp = NULL;
    assert_int_equal(mt_dbcert_ca_create(NULL, 30, &cp, &kp, &err), MT_OK);
    bool changed = false;
    /* garbage: a certificate as key, a key as certificate, empty, mismatched */
    char *cp2 = NULL, *kp2 = NULL;
    assert_int_equal(mt_dbcert_ca_create("other", 30, &cp2, &kp2, &err), MT_OK);
    assert_int_equal(mt_keystore_db_ca_set(ks, cp, cp, &changed, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_db_ca_set(ks, kp, kp, &changed, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_db_ca_set(ks, "", kp, &changed, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_db_ca_set(ks, cp, kp2, &changed, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "does not match"));
    assert_false(changed);
    assert_int_equal(mt_keystore_db_ca_set(ks, cp, kp, &changed, &err), MT_OK);
    assert_true(changed);
    assert_int_equal(mt_keystore_db_ca_set(ks, cp, kp, &changed, &err), MT_OK);
    assert_false(changed); /* the same pair: nothing saved */
    mt_keystore_free(ks);
    /* sealed: not in the file in clear, back after a reopen */
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(mt_file_read(path, 1 << 20, &buf, &len, &err), MT_OK);
    assert_null(memmem(buf, len, "BEGIN", 5));
    free(buf);
    ks = NULL;
    assert_int_equal(mt_keystore_open(e->tee, e->dir, NULL, 0, &ks, NULL, &err), MT_OK);
    assert_int_equal(mt_keystore_db_ca_get(ks, &c, &k, &err), MT_OK);
    assert_string_equal(c, cp);
    assert_string_equal(k, kp);
    mt_dbcert_ca *ca = NULL;
    assert_int_equal(mt_dbcert_ca_load(c, strlen(c), k, strlen(k), &ca, &err), MT_OK);
    mt_dbcert_ca_free(ca);
    free(c);
    free(k);
    /* another CA replaces it */
    assert_int_equal(mt_keystore_db_ca_set(ks, cp2, kp2, &changed, &err), MT_OK);
    assert_true(changed);
    mt_keystore_free(ks);
    /* the state file as it was before any CA (the old format) still opens */
    assert_int_equal(mt_file_write_atomic(path, old, old_len, 0600, &err), MT_OK);
    ks = NULL;
    assert_int_equal(mt_keystore_open(e->tee, e->dir, NULL, 0, &ks, NULL, &err), MT_OK);
    assert_int_equal(mt_keystore_db_ca_get(ks, &c, &k, &err), MT_ENOTFOUND);
    mt_keystore_free(ks);
    free(old);
    /* the plaintext reader: "db_ca" must be an object of two PEM strings */
    static const char pre[] =
        "{\"mesatee_keystore_state\":1,\"current\":1,\"versions\":[{\"version\":1,\"key\":"
        "\"0000000000000000000000000000000000000000000000000000000000000000\",\"created_at\":"
        "0}],\"policy\":{\"level\":\"none\",\"seq\":0}";
    static const char *const tails[] = {
        ",\"db_ca\":1}", ",\"db_ca\":{}}", ",\"db_ca\":{\"cert\":\"-----BEGIN x\"}}",
        ",\"db_ca\":{\"cert\":\"x\",\"key\":\"-----BEGIN x\"}}",
        ",\"db_ca\":{\"cert\":\"-----BEGIN x\",\"key\":\"-----BEGIN y\",\"z\":1}}"};
    char doc[512];
    for (size_t i = 0; i < sizeof tails / sizeof *tails; i++) {
        snprintf(doc, sizeof doc, "%s%s", pre, tails[i]);
        assert_int_equal(mt_keystore_parse_state(doc, strlen(doc), &err), MT_EINVAL);
    }
    snprintf(doc, sizeof doc, "%s%s", pre,
             ",\"db_ca\":{\"cert\":\"-----BEGIN x\",\"key\":\"-----BEGIN y\"}}");
    assert_int_equal(mt_keystore_parse_state(doc, strlen(doc), &err), MT_OK);
    /* too long a PEM */
    size_t big = MT_KEYSTORE_DBCA_PEM_MAX + 16;
    char *huge = malloc(sizeof pre + big + 64);
    char *pem = malloc(big + 1);
    memset(pem, 'A', big);
    memcpy(pem, "-----BEGIN ", 11);
    pem[big] = '\0';
    sprintf(huge, "%s,\"db_ca\":{\"cert\":\"%s\",\"key\":\"-----BEGIN y\"}}", pre, pem);
    assert_int_equal(mt_keystore_parse_state(huge, strlen(huge), &err), MT_EINVAL);
    free(huge);
    free(pem);
    mt_wipe(kp, strlen(kp));
    mt_wipe(kp2, strlen(kp2));
    free(cp);
    free(kp);
    free(cp2);
    free(kp2);
}

/* ---- auditor signatures over release-policy changes --------------------- */

static EVP_PKEY *p256(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

/* Appends k's public key (PEM) to buf. */
static void pub_pem(EVP_PKEY *k, char *buf, size_t cap)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    size_t have = strlen(buf);
    assert_true(have + (size_t)n < cap);
    memcpy(buf + have, p, (size_t)n);
    buf[have + (size_t)n] = '\0';
    BIO_free(b);
}

/* The document auditors sign for "allow measurement hex" (what `mesatee
 * admin release draft` computes from the policy JSON). */
static char *draft_allow(mt_keystore *ks, const char *hex)
{
    json_t *p = mt_keystore_policy(ks);
    assert_non_null(p);
    json_object_del(p, "release_signers");
    json_array_append_new(json_object_get(p, "measurements"), json_string(hex));
    json_object_set_new(p, "seq", json_integer(json_integer_value(json_object_get(p, "seq")) + 1));
    json_object_set_new(p, "mesatee_release_policy", json_integer(1));
    char *t = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(p);
    size_t n = strlen(t);
    char *d = malloc(n + 2);
    memcpy(d, t, n);
    memcpy(d + n, "\n", 2);
    free(t);
    return d;
}

static void test_release_signers(void **state)
{
    env *e = *state;
    mt_keystore *ks = open_ks(e, NULL);
    EVP_PKEY *a = p256(), *b = p256(), *c = p256();
    char ab[4096] = "", ac[4096] = "";
    pub_pem(a, ab, sizeof ab);
    pub_pem(b, ab, sizeof ab);
    pub_pem(a, ac, sizeof ac);
    pub_pem(c, ac, sizeof ac);
    mt_err err;
    bool changed = false;
    char m1[65], m2[65];
    memset(m1, 'b', 64);
    memset(m2, 'c', 64);
    m1[64] = m2[64] = '\0';
    /* bad configurations */
    assert_int_equal(mt_keystore_set_signers(ks, ab, strlen(ab), 3, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_set_signers(ks, "junk", 4, 1, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_set_signers(ks, ab, strlen(ab), 0, &err), MT_OK); /* all: 2 */
    assert_int_equal(mt_keystore_set_signers(ks, ab, strlen(ab), 2, &err), MT_OK);  /* same */
    assert_int_equal(mt_keystore_set_signers(ks, ac, strlen(ac), 2, &err), MT_ECONFLICT);
    assert_int_equal(mt_keystore_set_signers(ks, ab, strlen(ab), 1, &err), MT_ECONFLICT);
    /* unsigned and half-signed changes: refused, nothing changed */
    json_t *before = mt_keystore_policy(ks);
    assert_int_equal(mt_keystore_policy_allow(ks, "measurement", m1, &changed, &err), MT_EPERM);
    char *doc = draft_allow(ks, m1);
    assert_int_equal(mt_keystore_parse_release_doc(doc, strlen(doc), &err), MT_OK);
    char *sig1 = NULL, *sig2 = NULL, *sigx = NULL;
    assert_int_equal(mt_policy_sig_sign((const uint8_t *)doc, strlen(doc), a, NULL, 0, &sig1, &err),
                     MT_OK);
    assert_int_equal(mt_keystore_policy_allow_signed(ks, "measurement", m1, sig1, strlen(sig1),
                                                     &changed, &err),
                     MT_EPERM);
    assert_non_null(strstr(err.msg, "1 of 2"));
    assert_int_equal(mt_keystore_policy_allow_signed(ks, "measurement", m1, "garbage", 7,
                                                     &changed, &err),
                     MT_EINVAL);
    /* both auditors, but over the document for m2: refused */
    char *doc2 = draft_allow(ks, m2);
    assert_int_equal(mt_policy_sig_sign((const uint8_t *)doc2, strlen(doc2), a, NULL, 0, &sigx, &err),
                     MT_OK);
    char *tmp = NULL;
    assert_int_equal(mt_policy_sig_sign((const uint8_t *)doc2, strlen(doc2), b,
                                        (const uint8_t *)sigx, strlen(sigx), &tmp, &err),
                     MT_OK);
    assert_int_equal(mt_keystore_policy_allow_signed(ks, "measurement", m1, tmp, strlen(tmp),
                                                     &changed, &err),
                     MT_EPERM);
    json_t *after = mt_keystore_policy(ks);
    assert_true(json_equal(before, after));
    json_decref(after);
    /* both over the right document: accepted, persisted */
    assert_int_equal(mt_policy_sig_sign((const uint8_t *)doc, strlen(doc), b,
                                        (const uint8_t *)sig1, strlen(sig1), &sig2, &err),
                     MT_OK);
    assert_int_equal(mt_keystore_policy_allow_signed(ks, "measurement", m1, sig2, strlen(sig2),
                                                     &changed, &err),
                     MT_OK);
    assert_true(changed);
    /* the signatures do not serve twice (seq moved on) */
    assert_int_equal(mt_keystore_policy_revoke_signed(ks, "measurement", m1, sig2, strlen(sig2),
                                                      &err),
                     MT_EPERM);
    mt_keystore_free(ks);
    /* reopened: the signers are in the sealed state */
    ks = open_ks(e, NULL);
    json_t *p = mt_keystore_policy(ks);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "release_signers"),
                                                        "threshold")),
                     2);
    assert_int_equal(json_array_size(json_object_get(p, "measurements")), 2);
    json_decref(p);
    assert_int_equal(mt_keystore_policy_allow(ks, "measurement", m2, &changed, &err), MT_EPERM);
    assert_int_equal(mt_keystore_set_signers(ks, ac, strlen(ac), 2, &err), MT_ECONFLICT);
    /* garbage change documents */
    static const char *const bad[] = {
        "{}", "[1]", "{\"mesatee_release_policy\":2,\"level\":\"soft\",\"seq\":1}",
        "{\"mesatee_release_policy\":1,\"level\":\"nitro\",\"seq\":1}",
        "{\"mesatee_release_policy\":1,\"level\":\"soft\",\"seq\":1,\"measurements\":[\"AB\"]}",
        "{\"mesatee_release_policy\":1,\"level\":\"soft\",\"seq\":1,\"x\":1}", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(mt_keystore_parse_release_doc(bad[i], strlen(bad[i]), &err), MT_EINVAL);
    /* escrow with auditors recorded (security review): unsigned, half-signed,
     * foreign and replayed signatures refused; the escrow draft signed by both
     * works once */
    static const char rpub[] = "-----BEGIN PUBLIC KEY-----\n"
                               "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEr2uWA7BiKy54zNgUabQ9N5JM2Zco\n"
                               "dOlsj7rXrjnOEGKHd1Vqq4dSnD9syvhQ0xRKpMF3/ZcdhBKvb1WqeAonJw==\n"
                               "-----END PUBLIC KEY-----\n";
    const char *rp[] = {rpub};
    size_t rl[] = {sizeof rpub - 1};
    char *esc = NULL, *edoc = NULL, *es1 = NULL, *es2 = NULL;
    size_t el = 0;
    bool by = true;
    assert_int_equal(mt_keystore_escrow(ks, rp, rl, 1, 1, &esc, &el, &err), MT_EPERM);
    assert_null(esc);
    assert_non_null(strstr(err.msg, "needs 2 auditor signatures"));
    json_t *pj = mt_keystore_policy(ks);
    char *ptext = json_dumps(pj, JSON_COMPACT);
    json_decref(pj);
    assert_int_equal(mt_keystore_escrow_draft(ptext, strlen(ptext), rp, rl, 1, 1, &edoc, &err),
                     MT_OK);
    assert_int_equal(mt_keystore_parse_release_doc(edoc, strlen(edoc), &err), MT_OK);
    assert_non_null(strstr(edoc, "\"escrow\":{\"purpose\":\"escrow\",\"recipients\":[\""));
    assert_int_equal(mt_policy_sig_sign((const uint8_t *)edoc, strlen(edoc), a, NULL, 0, &es1,
                                        &err),
                     MT_OK);
    assert_int_equal(mt_keystore_escrow_signed(ks, rp, rl, 1, 1, es1, strlen(es1), &esc, &el,
                                               &by, &err),
                     MT_EPERM);
    assert_false(by);
    assert_int_equal(mt_keystore_escrow_signed(ks, rp, rl, 1, 1, "garbage", 7, &esc, &el, &by,
                                               &err),
                     MT_EINVAL);
    /* the release-policy change's signatures (doc) do not serve an escrow */
    assert_int_equal(mt_keystore_escrow_signed(ks, rp, rl, 1, 1, sig2, strlen(sig2), &esc, &el,
                                               &by, &err),
                     MT_EPERM);
    assert_int_equal(mt_policy_sig_sign((const uint8_t *)edoc, strlen(edoc), b,
                                        (const uint8_t *)es1, strlen(es1), &es2, &err),
                     MT_OK);
    pj = mt_keystore_policy(ks);
    int64_t seq0 = json_integer_value(json_object_get(pj, "seq"));
    json_decref(pj);
    assert_int_equal(mt_keystore_escrow_signed(ks, rp, rl, 1, 1, es2, strlen(es2), &esc, &el,
                                               &by, &err),
                     MT_OK);
    assert_true(by);
    assert_non_null(esc);
    free(esc);
    esc = NULL;
    pj = mt_keystore_policy(ks);
    assert_int_equal(json_integer_value(json_object_get(pj, "seq")), seq0 + 1);
    json_decref(pj);
    assert_int_equal(mt_keystore_escrow_signed(ks, rp, rl, 1, 1, es2, strlen(es2), &esc, &el,
                                               &by, &err),
                     MT_EPERM); /* replay: the seq moved on */
    assert_null(esc);
    free(ptext);
    free(edoc);
    free(es1);
    free(es2);
    /* escrow documents: the "escrow" object is checked */
    static const char *const ebad[] = {
        "{\"mesatee_release_policy\":1,\"level\":\"soft\",\"seq\":1,\"escrow\":1}",
        "{\"mesatee_release_policy\":1,\"level\":\"soft\",\"seq\":1,\"escrow\":{\"purpose\":"
        "\"release\",\"recipients\":[\"" HEX64A "\"],\"threshold\":1}}",
        "{\"mesatee_release_policy\":1,\"level\":\"soft\",\"seq\":1,\"escrow\":{\"purpose\":"
        "\"escrow\",\"recipients\":[\"" HEX64A "\",\"" HEX64A "\"],\"threshold\":1}}",
        "{\"mesatee_release_policy\":1,\"level\":\"soft\",\"seq\":1,\"escrow\":{\"purpose\":"
        "\"escrow\",\"recipients\":[\"" HEX64A "\"],\"threshold\":2}}",
        "{\"mesatee_release_policy\":1,\"level\":\"soft\",\"seq\":1,\"escrow\":{\"purpose\":"
        "\"escrow\",\"recipients\":[\"AB\"],\"threshold\":1}}",
        "{\"mesatee_release_policy\":1,\"level\":\"soft\",\"seq\":1,\"escrow\":{\"purpose\":"
        "\"escrow\",\"recipients\":[],\"threshold\":1}}",
        "{\"mesatee_release_policy\":1,\"level\":\"soft\",\"seq\":1,\"escrow\":{\"purpose\":"
        "\"escrow\",\"recipients\":[\"" HEX64A "\"],\"threshold\":1,\"x\":1}}",
        NULL};
    for (int i = 0; ebad[i]; i++)
        assert_int_equal(mt_keystore_parse_release_doc(ebad[i], strlen(ebad[i]), &err), MT_EINVAL);
    json_decref(before);
    free(doc);
    free(doc2);
    free(sig1);
    free(sig2);
    free(sigx);
    free(tmp);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    EVP_PKEY_free(c);
    mt_keystore_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bootstrap_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_retire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_node_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_db_ca_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_signers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
