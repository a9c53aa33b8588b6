/* Unit tests of the transit API's store side (src/core/transit*.c) through
 * mt_core_handle: rows edited by the host are caught by their MACs and
 * nothing is served from them; a blob moved to another key does not unwrap;
 * the KEK rewrap keeps every key usable; transit_task_key_load (for tasks)
 * returns the key the API uses and honours min_encryption_version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>

#include "mt_secmem.h"
#include "mt_transit_backup.h"
#include "mt_util.h"
#include "test_core_util.h"
#include "transit_core.h"

typedef tfx fx; /* admin + alice, test_core_util.h */

/* On the core's own connection (SQLite or MT_TEST_STORE_URL). */
static void db_exec(fx *f, const char *sql)
{
    mt_err err;
    if (mt_db_exec(f->e.core->db, sql, &err) != MT_OK)
        fail_msg("%s: %s", sql, err.msg);
}

/* Every wrapped key version blob, hex, in one string (heap). */
static char *wrapped_all(fx *f)
{
    mt_db_stmt *q = NULL;
    mt_err err;
    mt_status rc = MT_OK;
    assert_int_equal(mt_db_prepare(f->e.core->db,
                                   "SELECT wrapped FROM transit_key_versions "
                                   "ORDER BY owner, name, version",
                                   &q, &err),
                     MT_OK);
    size_t cap = 1, len = 0;
    char *out = calloc(1, 1);
    while (!rc && mt_db_step(q, &rc, &err) == MT_DB_ROW) {
        size_t n = 0;
        const uint8_t *b = mt_db_col_blob(q, 0, &n);
        out = realloc(out, cap += 2 * n + 1);
        assert_non_null(out);
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(out + len, cap - len, "%02x", b[i]);
        out[len++] = ',';
        out[len] = 0;
    }
    assert_int_equal(rc, MT_OK);
    mt_db_finalize(q);
    return out;
}

/* Encrypts "hi" with key; returns the ciphertext (heap) or NULL with *status. */
static char *encrypt(fx *f, const char *key, int *status)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/transit/encrypt/%s", key);
    json_t *o = NULL;
    *status = treq(&f->e, "POST", path, f->alice, "{\"plaintext\":\"aGk=\"}", &o);
    char *ct = *status == 200 ? strdup(jstr(json_object_get(o, "data"), "ciphertext")) : NULL;
    json_decref(o);
    return ct;
}

static int decrypt(fx *f, const char *key, const char *ct, json_t **o)
{
    char path[128], body[512];
    snprintf(path, sizeof path, "/v1/transit/decrypt/%s", key);
    snprintf(body, sizeof body, "{\"ciphertext\":\"%s\"}", ct);
    return treq(&f->e, "POST", path, f->alice, body, o);
}

static void test_tampering(void **state)
{
    fx *f = *state;
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/a", f->alice, "{}", NULL), 200);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/b", f->alice, "{}", NULL), 200);
    int st = 0;
    char *ct = encrypt(f, "a", &st);
    assert_non_null(ct);
    /* the host lowers min_decryption_version's guard by editing the key row */
    db_exec(f, "UPDATE transit_keys SET deletion_allowed = 1 WHERE name = 'a'");
    json_t *o = NULL;
    assert_int_equal(decrypt(f, "a", ct, &o), 500);
    assert_non_null(strstr(terr_msg(o), "integrity check failed: transit key"));
    json_decref(o);
    assert_int_equal(treq(&f->e, "DELETE", "/v1/transit/keys/a", f->alice, NULL, NULL), 500);
    db_exec(f, "UPDATE transit_keys SET deletion_allowed = 0 WHERE name = 'a'");
    assert_int_equal(decrypt(f, "a", ct, NULL), 200);
    /* b's blob and MAC moved onto a's version: the MAC binds the name */
    db_exec(f, "CREATE TABLE saved AS SELECT * FROM transit_key_versions WHERE name = 'a';"
               "UPDATE transit_key_versions SET (wrapped, mac) = (SELECT wrapped, mac FROM "
               "transit_key_versions WHERE name = 'b') WHERE name = 'a'");
    assert_int_equal(decrypt(f, "a", ct, &o), 500);
    assert_non_null(strstr(terr_msg(o), "integrity check failed"));
    json_decref(o);
    assert_int_equal(encrypt(f, "a", &st) == NULL, true);
    assert_int_equal(st, 500);
    db_exec(f, "UPDATE transit_key_versions SET (wrapped, mac) = (SELECT wrapped, mac FROM saved) "
               "WHERE name = 'a'; DROP TABLE saved");
    assert_int_equal(decrypt(f, "a", ct, NULL), 200);
    /* a grant written by the host is refused */
    db_exec(f, "INSERT INTO transit_grants VALUES ('alice', 'a', 'admin', 'decrypt', 1, "
               "'0000000000000000000000000000000000000000000000000000000000000000')");
    char body[512];
    snprintf(body, sizeof body, "{\"ciphertext\":\"%s\"}", ct);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/decrypt/alice:a", f->admin, body, &o), 500);
    json_decref(o);
    db_exec(f, "DELETE FROM transit_grants");
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/decrypt/alice:a", f->admin, body, &o), 404);
    json_decref(o);
    free(ct);
}

static void test_rewrap_and_task_load(void **state)
{
    fx *f = *state;
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/s", f->alice,
                          "{\"type\":\"ecdsa-p256\"}", NULL),
                     200);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/c", f->alice, "{}", NULL), 200);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/c/rotate", f->alice, NULL, NULL), 200);
    int st = 0;
    char *ct = encrypt(f, "c", &st);
    assert_non_null(ct);
    json_t *o = NULL;
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/sign/s", f->alice, "{\"input\":\"aGk=\"}", &o),
                     200);
    char *sig = strdup(jstr(json_object_get(o, "data"), "signature"));
    json_decref(o);

    /* rewrap: every version row gets a new blob, keys keep working */
    char *before = wrapped_all(f);
    mt_err err;
    unsigned done = 0;
    assert_int_equal(treq(&f->e, "GET", "/v1/transit/wrapping_key", f->alice, NULL, &o), 200);
    char *wpem = strdup(jstr(json_object_get(o, "data"), "public_key"));
    json_decref(o);
    assert_int_equal(transit_rewrap_batch(f->e.core, f->e.core->db, 1, 100, &done, &err), MT_OK);
    assert_int_equal(done, 0); /* nothing is below the current KEK version */
    assert_int_equal(transit_rewrap_batch(f->e.core, f->e.core->db, 2, 2, &done, &err), MT_OK);
    assert_int_equal(done, 2); /* the limit */
    assert_int_equal(transit_rewrap_batch(f->e.core, f->e.core->db, 2, 100, &done, &err), MT_OK);
    assert_int_equal(done, 4); /* three key versions and the wrapping key */
    /* the wrapping key still unwraps imports, under the same public key */
    assert_int_equal(treq(&f->e, "GET", "/v1/transit/wrapping_key", f->alice, NULL, &o), 200);
    assert_string_equal(wpem, jstr(json_object_get(o, "data"), "public_key"));
    json_decref(o);
    uint8_t mat[32] = {9}, *blob = NULL;
    size_t bl = 0;
    assert_int_equal(mt_tk_import_wrap(wpem, MT_TH_SHA2_256, mat, 32, &blob, &bl, &err), MT_OK);
    char *bb = mt_b64_encode(blob, bl);
    free(blob);
    json_t *ib = json_pack("{s:s}", "ciphertext", bb);
    char *ibs = json_dumps(ib, 0);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/imp/import", f->alice, ibs, NULL), 200);
    free(ibs);
    json_decref(ib);
    free(bb);
    free(wpem);
    char *after = wrapped_all(f);
    assert_string_not_equal(before, after);
    free(after);
    free(before);
    assert_int_equal(decrypt(f, "c", ct, NULL), 200);
    char body[512];
    snprintf(body, sizeof body, "{\"input\":\"aGk=\",\"signature\":\"%s\"}", sig);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/verify/s", f->alice, body, &o), 200);
    assert_true(json_is_true(json_object_get(json_object_get(o, "data"), "valid")));
    json_decref(o);

    /* a task loads the same key: its signature verifies through the API */
    mt_tk_key *k = NULL;
    uint32_t used = 0;
    assert_int_equal(
        transit_task_key_load(f->e.core, f->e.core->db, "alice", "s", 0, &k, &used, &err), MT_OK);
    assert_int_equal(used, 1);
    uint8_t *raw = NULL;
    size_t rl = 0;
    assert_int_equal(mt_tk_sign(k, MT_TH_SHA2_256, false, MT_TS_DEFAULT, MT_TM_ASN1,
                                (const uint8_t *)"hi", 2, &raw, &rl, &err),
                     MT_OK);
    mt_tk_key_free(k);
    char *b64 = mt_b64_encode(raw, rl);
    snprintf(body, sizeof body, "{\"input\":\"aGk=\",\"signature\":\"vault:v1:%s\"}", b64);
    free(b64);
    free(raw);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/verify/s", f->alice, body, &o), 200);
    assert_true(json_is_true(json_object_get(json_object_get(o, "data"), "valid")));
    json_decref(o);
    assert_int_equal(
        transit_task_key_load(f->e.core, f->e.core->db, "alice", "nokey", 0, &k, NULL, &err),
        MT_ENOTFOUND);
    assert_int_equal(
        transit_task_key_load(f->e.core, f->e.core->db, "alice", "c", 3, &k, NULL, &err),
        MT_ENOTFOUND);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/c/config", f->alice,
                          "{\"min_encryption_version\":2}", NULL),
                     200);
    assert_int_equal(
        transit_task_key_load(f->e.core, f->e.core->db, "alice", "c", 1, &k, NULL, &err),
        MT_EINVAL);
    assert_null(k);
    assert_int_equal(
        transit_task_key_load(f->e.core, f->e.core->db, "alice", "c", 2, &k, &used, &err), MT_OK);
    assert_int_equal(mt_tk_key_type(k), MT_TK_AES256_GCM96);
    mt_tk_key_free(k);
    free(ct);
    free(sig);
}

/* Key generation (RSA-4096: seconds) runs off the store lock: create and
 * rotate are slow routes; concurrent rotations never lose or reuse a version. */
typedef struct rot_arg {
    fx *f;
    int ok, conflict;
} rot_arg;

static void *rotator(void *p)
{
    rot_arg *a = p;
    for (int i = 0; i < 5; i++) {
        int st = treq(&a->f->e, "POST", "/v1/transit/keys/r/rotate", a->f->alice, NULL, NULL);
        if (st == 200)
            a->ok++;
        else if (st == 409)
            a->conflict++;
    }
    return NULL;
}

static void test_slow_rotate(void **state)
{
    fx *f = *state;
    assert_true(mt_core_route_is_slow("POST", "/v1/transit/keys/k1"));
    assert_true(mt_core_route_is_slow("POST", "/v1/transit/keys/alice:k1/rotate"));
    assert_false(mt_core_route_is_slow("POST", "/v1/transit/encrypt/k1"));
    assert_false(mt_core_route_is_slow("GET", "/v1/transit/keys/k1"));
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/r", f->alice, "{\"type\":\"ed25519\"}",
                          NULL),
                     200);
    rot_arg a = {f, 0, 0}, b = {f, 0, 0};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, rotator, &a), 0);
    assert_int_equal(pthread_create(&t2, NULL, rotator, &b), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(a.ok + a.conflict + b.ok + b.conflict, 10);
    json_t *o = NULL;
    assert_int_equal(treq(&f->e, "GET", "/v1/transit/keys/r", f->alice, NULL, &o), 200);
    json_t *d = json_object_get(o, "data");
    int latest = (int)json_integer_value(json_object_get(d, "latest_version"));
    assert_int_equal(latest, 1 + a.ok + b.ok);
    assert_int_equal((int)json_object_size(json_object_get(d, "keys")), latest);
    json_decref(o);
}

/* At most 1000 keys per owner: the 1001st is a 429 and nothing is written. */
static void test_key_limit(void **state)
{
    fx *f = *state;
    db_exec(f, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 999) "
               "INSERT INTO transit_keys(owner, name, type, latest_version, created_at, "
               "updated_at, mac) SELECT 'alice', 'f' || i, 'aes256-gcm96', 1, 1, 1, 'x' FROM n");
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/last", f->alice, "{}", NULL), 200);
    json_t *o = NULL;
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/more", f->alice, "{}", &o), 429);
    assert_non_null(strstr(terr_msg(o), "1000"));
    json_decref(o);
    assert_int_equal(treq(&f->e, "GET", "/v1/transit/keys/more", f->alice, NULL, NULL), 404);
    /* other users are not affected */
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/more", f->admin, "{}", NULL), 200);
}

static int64_t db_count(fx *f, const char *sql)
{
    mt_db_stmt *st = NULL;
    mt_err err;
    mt_status rc = MT_OK;
    assert_int_equal(mt_db_prepare(f->e.core->db, sql, &st, &err), MT_OK);
    assert_int_equal(mt_db_step(st, &rc, &err), MT_DB_ROW);
    int64_t n = mt_db_col_int64(st, 0);
    mt_db_finalize(st);
    return n;
}

/* Migration 10's columns: under the key row's MAC (either way), and rows of the
 * defaults keep the MAC of the columns before it. */
static void test_vault_columns(void **state)
{
    fx *f = *state;
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/a", f->alice, "{}", NULL), 200);
    int st = 0;
    char *ct = encrypt(f, "a", &st);
    assert_non_null(ct);
    static const char *const cols[] = {"derived", "convergent_encryption",
                                       "allow_plaintext_backup", "min_available_version"};
    char sql[200];
    for (size_t i = 0; i < 4; i++) {
        snprintf(sql, sizeof sql, "UPDATE transit_keys SET %s = 1 WHERE name = 'a'", cols[i]);
        db_exec(f, sql);
        json_t *o = NULL;
        assert_int_equal(decrypt(f, "a", ct, &o), 500);
        assert_non_null(strstr(terr_msg(o), "integrity check failed: transit key"));
        json_decref(o);
        snprintf(sql, sizeof sql, "UPDATE transit_keys SET %s = 0 WHERE name = 'a'", cols[i]);
        db_exec(f, sql);
        assert_int_equal(decrypt(f, "a", ct, NULL), 200);
    }
    free(ct);
    /* a derived key set back to not derived by the host is refused too */
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/d", f->alice, "{\"derived\":true}",
                          NULL),
                     200);
    db_exec(f, "UPDATE transit_keys SET derived = 0 WHERE name = 'd'");
    json_t *o = NULL;
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/encrypt/d", f->alice,
                          "{\"plaintext\":\"aGk=\"}", &o),
                     500);
    json_decref(o);
    /* trim: the rows are gone, the minimum is under the MAC */
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/t", f->alice, "{}", NULL), 200);
    for (int i = 0; i < 2; i++)
        assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/t/rotate", f->alice, "{}", NULL),
                         200);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/t/config", f->alice,
                          "{\"min_decryption_version\":3,\"min_encryption_version\":3}", NULL),
                     200);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/t/trim", f->alice,
                          "{\"min_available_version\":3}", NULL),
                     200);
    assert_int_equal(db_count(f, "SELECT count(*) FROM transit_key_versions WHERE name = 't'"), 1);
    db_exec(f, "UPDATE transit_keys SET min_available_version = 1 WHERE name = 't'");
    assert_int_equal(treq(&f->e, "GET", "/v1/transit/keys/t", f->alice, NULL, NULL), 500);
    db_exec(f, "UPDATE transit_keys SET min_available_version = 3 WHERE name = 't'");
    assert_int_equal(treq(&f->e, "GET", "/v1/transit/keys/t", f->alice, NULL, NULL), 200);
}

/* A restore whose second version's material is bad writes nothing, and a forced one
 * that fails leaves the existing key as it was. */
static void test_restore_atomic(void **state)
{
    fx *f = *state;
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/keys/keep", f->alice, "{}", NULL), 200);
    int st = 0;
    char *ct = encrypt(f, "keep", &st);
    assert_non_null(ct);
    mt_tb_key k;
    memset(&k, 0, sizeof k);
    k.type = MT_TK_AES256_GCM96;
    snprintf(k.name, sizeof k.name, "keep");
    k.latest = 2;
    k.min_dec = 1;
    k.n = 2;
    k.v = calloc(2, sizeof *k.v);
    for (size_t i = 0; i < 2; i++) {
        k.v[i].version = (uint32_t)i + 1;
        k.v[i].len = i ? 31 : 32; /* version 2: not an aes256-gcm96 key */
        k.v[i].material = mt_secmem_malloc(32);
        memset(k.v[i].material, 7, 32);
    }
    uint8_t *bin = NULL;
    size_t bl = 0;
    mt_err err;
    assert_int_equal(mt_tb_encode(&k, &bin, &bl, &err), MT_OK);
    char *b64 = mt_b64_encode(bin, bl);
    char *body = malloc(strlen(b64) + 64);
    sprintf(body, "{\"backup\":\"%s\",\"force\":true}", b64);
    json_t *o = NULL;
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/restore/fresh", f->alice, body, &o), 400);
    assert_non_null(strstr(terr_msg(o), "version 2 is not a valid aes256-gcm96 key"));
    json_decref(o);
    assert_int_equal(db_count(f, "SELECT count(*) FROM transit_keys WHERE name = 'fresh'"), 0);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/restore", f->alice, body, NULL), 400);
    assert_int_equal(decrypt(f, "keep", ct, NULL), 200); /* the forced restore changed nothing */
    /* the same backup with good material restores both versions */
    mt_secmem_free(bin);
    k.v[1].len = 32;
    assert_int_equal(mt_tb_encode(&k, &bin, &bl, &err), MT_OK);
    free(b64);
    b64 = mt_b64_encode(bin, bl);
    free(body);
    body = malloc(strlen(b64) + 64);
    sprintf(body, "{\"backup\":\"%s\"}", b64);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/restore/fresh", f->alice, body, NULL), 204);
    assert_int_equal(db_count(f, "SELECT count(*) FROM transit_key_versions WHERE name = 'fresh'"),
                     2);
    assert_int_equal(treq(&f->e, "POST", "/v1/transit/restore/admin:x", f->alice, body, &o), 403);
    json_decref(o);
    mt_tb_key_clear(&k);
    mt_secmem_free(bin);
    free(b64);
    free(body);
    free(ct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tampering, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_rewrap_and_task_load, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_slow_rotate, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_key_limit, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_vault_columns, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_restore_atomic, tfx_setup, tfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
