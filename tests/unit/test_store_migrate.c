/* Schema migrations from the earlier released store schemas (store.c
 * migrations 1..9): a store at version 1, 2, 3, 4 and 6 (SQL text fixtures made by
 * tests/unit/fixtures/make_store_fixtures.sh) and a data dir at version 8
 * (store, KeyStore state and objects, make_store_fixture_v8.sh; test_from_v8)
 * is opened by the current code.
 * Versions 1 and 2 have no integrity MACs: refused (and left unchanged)
 * without --seal-legacy-store, sealed with it. Version 3 carries MACs under
 * the platform key of the fixture's sealing key and opens as it is. Then the
 * data survives: users log in with their passwords, both parties see the
 * finished task and its outputs, the audit chain verifies. A store from a
 * newer mesatee is refused. */
#include <sqlite3.h>
#include <unistd.h>

#include "mt_ff.h"
#include "test_core_util.h"

/* the newest schema (store.c; core_internal.h): migrations are appended,
 * so the tests never name the count */
size_t store_schema_version(void);

#ifndef MT_WORKER_PATH
#error "MT_WORKER_PATH must name the mesatee-worker executable"
#endif

static char *read_text(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", MT_FIXTURE_DIR, name);
    uint8_t *b = NULL;
    size_t n = 0;
    mt_err err;
    if (mt_file_read(path, 1 << 20, &b, &n, &err) != MT_OK)
        fail_msg("%s: %s", path, err.msg);
    return (char *)b;
}

static int64_t db_int(const char *dir, const char *sql)
{
    char p[256];
    snprintf(p, sizeof p, "%s/mesatee.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A data dir with the fixture's sealing key and the store of fixture name
 * (schema version v), opened at level. */
static void make_dir_at(tenv *e, const char *name, int v, const char *level);

/* A data dir with the fixture's sealing key and its store at version v. */
static void make_dir(tenv *e, int v)
{
    char name[32];
    snprintf(name, sizeof name, "store_v%d.sql", v);
    make_dir_at(e, name, v, "none");
}

static void make_dir_at(tenv *e, const char *name, int v, const char *level)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/mt_migrate_test.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    char *hex = read_text("store_sealing_key.hex");
    uint8_t key[32];
    mt_err err;
    hex[64] = '\0';
    assert_int_equal(mt_hex_decode(hex, key, 32, &err), MT_OK);
    free(hex);
    char p[256];
    snprintf(p, sizeof p, "%s/sealing.key", e->dir);
    assert_int_equal(mt_file_write_atomic(p, key, 32, 0600, &err), MT_OK);
    char *sql = read_text(name);
    snprintf(p, sizeof p, "%s/mesatee.db", e->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", name, msg);
    sqlite3_close(db);
    free(sql);
    assert_int_equal(db_int(e->dir, "SELECT max(version) FROM schema_version"), v);
    assert_int_equal(mt_tee_open(level, e->dir, &e->tee, &err), MT_OK);
    e->cfg.data_dir = e->dir;
    e->cfg.workers = 1;
}

/* The data of a fixture whose task t1 finished and t2 was created; alice
 * has alice_files files. */
static void check_data_tasks(tenv *e, const char *t1, const char *t2, size_t alice_files)
{
    char *admin = tlogin(e, "admin", "fixture-admin-password");
    char *alice = tlogin(e, "alice", "fixture-alice-password");
    char *bob = tlogin(e, "bob", "fixture-bob-password");
    json_t *o = NULL;
    char path[64];
    snprintf(path, sizeof path, "/v1/tasks/%s", t1);
    assert_int_equal(treq(e, "GET", path, alice, NULL, &o), 200);
    assert_string_equal(jstr(o, "status"), "finished");
    json_decref(o);
    assert_int_equal(treq(e, "GET", path, bob, NULL, &o), 200);
    assert_string_equal(jstr(o, "status"), "finished");
    json_decref(o);
    snprintf(path, sizeof path, "/v1/tasks/%s", t2);
    assert_int_equal(treq(e, "GET", path, bob, NULL, &o), 200);
    assert_string_equal(jstr(o, "status"), "created");
    json_decref(o);
    assert_int_equal(treq(e, "GET", "/v1/files", alice, NULL, &o), 200);
    json_t *files = json_object_get(o, "files");
    assert_int_equal(json_array_size(files), alice_files); /* her input, her written output */
    json_decref(o);
    assert_int_equal(treq(e, "GET", "/v1/users", admin, NULL, &o), 200);
    assert_int_equal(json_array_size(json_object_get(o, "users")), 3);
    json_decref(o);
    /* the daemon signs a checkpoint only over a chain whose MACs all verify */
    assert_int_equal(treq(e, "GET", "/v1/audit/checkpoint", admin, NULL, &o), 200);
    json_decref(o);
    free(admin);
    free(alice);
    free(bob);
}

static void check_data(tenv *e)
{
    char *tasks = read_text("store_tasks.txt");
    char t1[33], t2[33];
    assert_int_equal(sscanf(tasks, "%32s %32s", t1, t2), 2);
    free(tasks);
    check_data_tasks(e, t1, t2, 2);
}

/* Waits (polling the admin status) until the rewrap pass is done and no
 * legacy-wrapped key is left. */
static void wait_rewrapped(tenv *e)
{
    char *admin = tlogin(e, "admin", "fixture-admin-password");
    for (int i = 0;; i++) {
        json_t *o = NULL;
        assert_int_equal(treq(e, "GET", "/v1/admin/keystore", admin, NULL, &o), 200);
        json_t *rw = json_object_get(o, "rewrap");
        bool done = json_integer_value(json_object_get(o, "legacy_rows")) == 0 &&
                    !json_is_true(json_object_get(rw, "running")) &&
                    json_integer_value(json_object_get(rw, "pending")) == 0;
        json_decref(o);
        if (done)
            break;
        if (i > 2400)
            fail_msg("the KeyStore rewrap did not finish");
        usleep(50000);
    }
    free(admin);
}

static void from_version(int v)
{
    tenv e;
    make_dir(&e, v);
    mt_err err;
    if (v < 3) {
        /* no MACs: refused without the operator's consent, store untouched */
        assert_int_equal(mt_core_open(&e.cfg, e.tee, &e.core, &err), MT_ECONFLICT);
        assert_non_null(strstr(err.msg, "--seal-legacy-store"));
        assert_null(e.core);
        assert_int_equal(db_int(e.dir, "SELECT max(version) FROM schema_version"), v);
        e.cfg.seal_legacy_store = true;
    }
    if (mt_core_open(&e.cfg, e.tee, &e.core, &err) != MT_OK)
        fail_msg("open of a version %d store: %s", v, err.msg);
    /* The schema this mesatee writes. A new migration fails here until a
     * fixture of the schema before it (the last released one) is added:
     * tests/unit/fixtures/make_store_fixtures.sh (make_store_fixture_v8.sh
     * for a data dir with a KeyStore), and a test_from_vN below. */
    assert_int_equal(db_int(e.dir, "SELECT max(version) FROM schema_version"),
                     (int)store_schema_version());
    /* migration 14 (shared login limits): a new, empty table */
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM login_limits"), 0);
    /* migration 11 (several nodes): old runs belong to no node ('') */
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM tasks WHERE run_node != ''"), 0);
    /* migration 10 (fleet, leases): no old task holds a lease */
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM tasks WHERE lease_fence != 0 OR "
                                   "lease_expired != 0 OR lease_mac IS NOT NULL"),
                     0);
    /* migration 9 (ks-tasks): key_signs metering, 0 for the old tasks */
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM tasks WHERE key_signs != 0"), 0);
    /* migration 8 (issue 10): the transit API's four tables, empty */
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                                   "name IN ('transit_keys', 'transit_key_versions', "
                                   "'transit_grants', 'transit_wrapping_key')"),
                     4);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM transit_key_versions"), 0);
    check_data(&e);
    /* issue 10: the file and function keys wrapped before the KeyStore
     * (measurement-bound legacy key; at level none bound to nothing) are
     * rewrapped under KeyStore KEK version 1 by the background pass */
    wait_rewrapped(&e);
    assert_true(db_int(e.dir, "SELECT count(*) FROM files") >= 4);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM files WHERE kek_version != 1"), 0);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM functions WHERE payload_key IS NOT "
                                   "NULL AND payload_kek_version != 1"),
                     0);
    tenv_close_core(&e);
    /* reopened as the upgraded store, without the flag */
    e.cfg.seal_legacy_store = false;
    if (mt_core_open(&e.cfg, e.tee, &e.core, &err) != MT_OK)
        fail_msg("reopen of an upgraded version %d store: %s", v, err.msg);
    check_data(&e);
    uint64_t n = 0;
    assert_int_equal(mt_core_audit_verify_dir(e.dir, NULL, NULL, 0, &n, &err), MT_OK);
    assert_true(n > 10);
    tenv_free(&e);
}

static void test_from_v1(void **s)
{
    (void)s;
    from_version(1);
}

static void test_from_v2(void **s)
{
    (void)s;
    from_version(2);
}

static void test_from_v3(void **s)
{
    (void)s;
    from_version(3);
}

static void test_from_v4(void **s)
{
    (void)s;
    from_version(4);
}

/* The last release before the KeyStore (schema 6): keys wrapped under the
 * sealing key are carried over (level none: not measurement-bound). */
static void test_from_v6(void **s)
{
    (void)s;
    from_version(6);
}

static int64_t legacy_rows(tenv *e, const char *admin)
{
    json_t *o = NULL;
    assert_int_equal(treq(e, "GET", "/v1/admin/keystore", admin, NULL, &o), 200);
    int64_t n = json_integer_value(json_object_get(o, "legacy_rows"));
    json_decref(o);
    return n;
}

/* Waits until the rewrap pass started by the last call is over. */
static void wait_idle(tenv *e, const char *admin)
{
    for (int i = 0;; i++) {
        json_t *o = NULL;
        assert_int_equal(treq(e, "GET", "/v1/admin/keystore", admin, NULL, &o), 200);
        bool running = json_is_true(json_object_get(json_object_get(o, "rewrap"), "running"));
        json_decref(o);
        if (!running)
            return;
        if (i > 2400)
            fail_msg("the KeyStore rewrap did not finish");
        usleep(50000);
    }
}

/* A schema-6 store written at level soft by the old build: its file keys are
 * bound to that build's measurement (store_v6_soft.meas, the old binary's
 * SHA-256), so this build cannot open them until the operator names that
 * measurement once; then the background pass rewraps them under the
 * KeyStore KEK. A wrong measurement, garbage and a non-admin change nothing. */
static void test_v6_soft_legacy(void **s)
{
    (void)s;
    tenv e;
    make_dir_at(&e, "store_v6_soft.sql", 6, "soft");
    mt_err err;
    if (mt_core_open(&e.cfg, e.tee, &e.core, &err) != MT_OK)
        fail_msg("open of the soft v6 store: %s", err.msg);
    char *admin = tlogin(&e, "admin", "fixture-admin-password");
    char *alice = tlogin(&e, "alice", "fixture-alice-password");
    wait_idle(&e, admin);
    assert_int_equal(legacy_rows(&e, admin), 2);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM files WHERE kek_version = 0"), 2);
    json_t *o = NULL;
    char *meas = read_text("store_v6_soft.meas");
    meas[64] = '\0';
    char body[128];
    snprintf(body, sizeof body, "{\"measurement\":\"%s\"}", meas);
    assert_int_equal(treq(&e, "POST", "/v1/admin/keystore/legacy", alice, body, NULL), 403);
    const char *bad[] = {"{\"measurement\":\"xyz\"}", "{}", "{\"measurement\":1}",
                         "{\"measurement\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\",\"x\":1}",
                         "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(treq(&e, "POST", "/v1/admin/keystore/legacy", admin, bad[i], NULL), 400);
    /* a measurement that is not the old build's: nothing opens */
    assert_int_equal(treq(&e, "POST", "/v1/admin/keystore/legacy", admin,
                          "{\"measurement\":\"" "1111111111111111111111111111111111111111111111111111111111111111" "\"}",
                          &o),
                     202);
    json_decref(o);
    wait_idle(&e, admin);
    assert_int_equal(legacy_rows(&e, admin), 2);
    assert_int_equal(treq(&e, "POST", "/v1/admin/keystore/legacy", admin, body, &o), 202);
    assert_int_equal(json_integer_value(json_object_get(o, "legacy_rows")), 2);
    json_decref(o);
    wait_idle(&e, admin);
    assert_int_equal(legacy_rows(&e, admin), 0);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM files WHERE kek_version = 1"), 2);
    /* the rows' MACs were resealed: alice still sees her files */
    assert_int_equal(treq(&e, "GET", "/v1/files", alice, NULL, &o), 200);
    assert_int_equal(json_array_size(json_object_get(o, "files")), 2);
    json_decref(o);
    tenv_close_core(&e);
    /* reopened: nothing legacy left, no measurement needed any more */
    assert_int_equal(mt_core_open(&e.cfg, e.tee, &e.core, &err), MT_OK);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM files WHERE kek_version != 1"), 0);
    free(meas);
    free(admin);
    free(alice);
    tenv_free(&e);
}

/* A version 3 store whose user row was edited by the host (alice made an
 * admin): the MACs carried over from version 3 catch it. */
static void test_v3_tampered(void **s)
{
    (void)s;
    tenv e;
    make_dir(&e, 3);
    char p[256];
    snprintf(p, sizeof p, "%s/mesatee.db", e.dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "UPDATE users SET role = 'admin' WHERE username = 'alice'", NULL, NULL,
                     NULL),
        SQLITE_OK);
    sqlite3_close(db);
    mt_err err;
    assert_int_equal(mt_core_open(&e.cfg, e.tee, &e.core, &err), MT_OK);
    json_t *o = NULL;
    int st = treqf(&e, "POST", "/v1/auth/login", NULL, &o,
                   "{\"username\":\"alice\",\"password\":\"fixture-alice-password\"}");
    assert_int_not_equal(st, 200);
    json_decref(o);
    char *bob = tlogin(&e, "bob", "fixture-bob-password"); /* the others are fine */
    free(bob);
    tenv_free(&e);
}

static void test_newer_refused(void **s)
{
    (void)s;
    tenv e;
    make_dir(&e, 3);
    char p[256];
    snprintf(p, sizeof p, "%s/mesatee.db", e.dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_version VALUES (99)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    mt_err err;
    assert_int_equal(mt_core_open(&e.cfg, e.tee, &e.core, &err), MT_ECONFLICT);
    assert_non_null(strstr(err.msg, "newer than this mesatee"));
    assert_int_equal(db_int(e.dir, "SELECT max(version) FROM schema_version"), 99);
    tenv_free(&e);
}

/* ---- schema 8 (the last release before migrations 9 and 10) ------------ */

/* Value name of store_v8_values.txt (make_store_fixture_v8.sh), heap. */
static char *v8_value(const char *name)
{
    char *t = read_text("store_v8_values.txt");
    size_t nl = strlen(name);
    char *out = NULL;
    for (char *line = t; line && *line && !out;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        if (!strncmp(line, name, nl) && line[nl] == ' ')
            out = strdup(line + nl + 1);
        line = end ? end + 1 : NULL;
    }
    free(t);
    if (!out)
        fail_msg("store_v8_values.txt has no %s", name);
    return out;
}

/* A 32-byte key from a hex key file's text in the values. */
static void v8_key(const char *name, uint8_t key[32])
{
    char *hex = v8_value(name);
    mt_err err;
    hex[64] = '\0';
    assert_int_equal(mt_hex_decode(hex, key, 32, &err), MT_OK);
    free(hex);
}

/* The schema-8 data dir of the fixture: its store, its KeyStore state
 * (keystore.sealed) and its object directory. */
static void make_dir_v8(tenv *e)
{
    make_dir_at(e, "store_v8.sql", 8, "none");
    char p[512];
    mt_err err;
    char *hex = read_text("store_v8_keystore.hex");
    size_t hl = strcspn(hex, "\n");
    hex[hl] = '\0';
    uint8_t *ks = malloc(hl / 2);
    assert_non_null(ks);
    assert_int_equal(mt_hex_decode(hex, ks, hl / 2, &err), MT_OK);
    snprintf(p, sizeof p, "%s/keystore.sealed", e->dir);
    assert_int_equal(mt_file_write_atomic(p, ks, hl / 2, 0600, &err), MT_OK);
    free(ks);
    free(hex);
    snprintf(p, sizeof p, "%s/objects", e->dir);
    assert_int_equal(mt_mkdirs(p, 0700, &err), MT_OK);
    char *objs = read_text("store_v8_objects.txt");
    int n = 0;
    for (char *line = objs; line && *line; n++) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        char *sp = strchr(line, ' ');
        assert_non_null(sp);
        *sp = '\0';
        size_t bl = strlen(sp + 1) / 2;
        uint8_t *b = malloc(bl ? bl : 1);
        assert_non_null(b);
        assert_int_equal(mt_hex_decode(sp + 1, b, bl, &err), MT_OK);
        snprintf(p, sizeof p, "%s/objects/%s", e->dir, line);
        assert_int_equal(mt_file_write_atomic(p, b, bl, 0600, &err), MT_OK);
        free(b);
        line = end ? end + 1 : NULL;
    }
    assert_int_equal(n, 4); /* two uploaded inputs, two written outputs */
    free(objs);
    e->cfg.worker_path = MT_WORKER_PATH;
}

static void db_exec_dir(const char *dir, const char *sql)
{
    char p[256];
    snprintf(p, sizeof p, "%s/mesatee.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

/* POST path with body as token; expects status; returns data.field (heap) or NULL. */
static char *tr_post(tenv *e, const char *path, const char *tok, const char *body, int want,
                     const char *field)
{
    json_t *o = NULL;
    int st = treq(e, "POST", path, tok, body, &o);
    if (st != want)
        fail_msg("POST %s -> %d (want %d): %s", path, st, want, o ? terr_msg(o) : "");
    const char *v = field ? jstr(json_object_get(o, "data"), field) : NULL;
    char *out = v ? strdup(v) : NULL;
    if (field && want == 200 && !out)
        fail_msg("POST %s: no data.%s", path, field);
    json_decref(o);
    return out;
}

/* alice (or bob through the grant, key "alice:k1") decrypts ct; 200 or the
 * status; with 200 the plaintext must be the fixture's. */
static void v8_decrypt(tenv *e, const char *tok, const char *key, const char *ct, int want)
{
    char path[96], body[512];
    snprintf(path, sizeof path, "/v1/transit/decrypt/%s", key);
    snprintf(body, sizeof body, "{\"ciphertext\":\"%s\"}", ct);
    char *pt = tr_post(e, path, tok, body, want, want == 200 ? "plaintext" : NULL);
    if (want == 200) {
        char *want_pt = v8_value("plaintext");
        assert_string_equal(pt, want_pt);
        free(want_pt);
    }
    free(pt);
}

/* GET /v1/files/<id>/content decrypted with key must be the fixture's
 * result of alice (the psi intersection, ids 30..40). */
static void v8_check_output(tenv *e, const char *tok, const char *file_id, const uint8_t key[32])
{
    char path[96];
    snprintf(path, sizeof path, "/v1/files/%s/content", file_id);
    uint8_t *raw = NULL, *pt = NULL;
    size_t rl = 0, pl = 0;
    assert_int_equal(treq_raw(e, "GET", path, NULL, tok, NULL, 0, NULL, &raw, &rl), 200);
    mt_err err;
    if (mt_ff_decrypt(key, raw, rl, &pt, &pl, &err) != MT_OK)
        fail_msg("output %s: %s", file_id, err.msg);
    char *b64 = mt_b64_encode(pt, pl), *want = v8_value("result_alice");
    assert_string_equal(b64, want);
    free(want);
    free(b64);
    free(pt);
    free(raw);
}

static void check_data_v8(tenv *e, size_t alice_files)
{
    char *t1 = v8_value("task_finished"), *t2 = v8_value("task_created");
    check_data_tasks(e, t1, t2, alice_files);
    free(t1);
    free(t2);
}

/* The transit data of the fixture is usable as it was written. */
static void v8_check_transit(tenv *e, const char *alice, const char *bob)
{
    char *ct1 = v8_value("k1_v1"), *ct2 = v8_value("k1_v2"), *sig = v8_value("e1_sig"),
         *hm = v8_value("h1_hmac"), *msg = v8_value("plaintext"), *pub = v8_value("e1_pub");
    v8_decrypt(e, alice, "k1", ct1, 200);
    v8_decrypt(e, alice, "k1", ct2, 200);
    v8_decrypt(e, bob, "alice:k1", ct1, 200); /* the grant */
    char body[1024];
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"signature\":\"%s\"}", msg, sig);
    json_t *o = NULL;
    assert_int_equal(treq(e, "POST", "/v1/transit/verify/e1", alice, body, &o), 200);
    assert_true(json_is_true(json_object_get(json_object_get(o, "data"), "valid")));
    json_decref(o);
    snprintf(body, sizeof body, "{\"input\":\"%s\"}", msg);
    char *hm2 = tr_post(e, "/v1/transit/hmac/h1", alice, body, 200, "hmac");
    assert_string_equal(hm2, hm); /* the same key material: the same HMAC */
    free(hm2);
    snprintf(body, sizeof body, "{\"input\":\"%s\",\"hmac\":\"%s\"}", msg, hm);
    assert_int_equal(treq(e, "POST", "/v1/transit/verify/h1", alice, body, &o), 200);
    assert_true(json_is_true(json_object_get(json_object_get(o, "data"), "valid")));
    json_decref(o);
    /* the public key is the one the old build showed */
    assert_int_equal(treq(e, "GET", "/v1/transit/keys/e1", alice, NULL, &o), 200);
    const char *pem = jstr(json_object_get(json_object_get(json_object_get(o, "data"), "keys"), "1"),
                           "public_key");
    assert_non_null(pem);
    uint8_t *pd = NULL;
    size_t pdl = 0, pl = strlen(pem);
    mt_err err;
    assert_int_equal(mt_b64_decode(pub, &pd, &pdl, &err), MT_OK);
    while (pdl && pd[pdl - 1] == '\n') /* jq printed it with a newline */
        pdl--;
    while (pl && pem[pl - 1] == '\n')
        pl--;
    assert_int_equal(pdl, pl);
    assert_memory_equal(pd, pem, pl);
    free(pd);
    json_decref(o);
    /* bob's grant is decrypt and encrypt: rotating is the owner's */
    assert_int_equal(treq(e, "POST", "/v1/transit/keys/alice:k1/rotate", bob, NULL, NULL), 403);
    free(ct1);
    free(ct2);
    free(sig);
    free(hm);
    free(msg);
    free(pub);
}

static char *v8_wait_task(tenv *e, const char *tok, const char *tid)
{
    char *s = NULL;
    for (int i = 0; i < 1200; i++) {
        free(s);
        s = ttask_status(e, tok, tid);
        if (!strcmp(s, "finished") || !strcmp(s, "failed") || !strcmp(s, "canceled"))
            break;
        usleep(50000);
    }
    return s;
}

/* Waits until the KEK rewrap pass to version target is over. */
static void v8_wait_kek(tenv *e, const char *admin, int64_t target)
{
    for (int i = 0;; i++) {
        json_t *o = NULL;
        assert_int_equal(treq(e, "GET", "/v1/admin/keystore", admin, NULL, &o), 200);
        json_t *rw = json_object_get(o, "rewrap");
        bool done = json_integer_value(json_object_get(o, "current")) == target &&
                    json_array_size(json_object_get(o, "versions")) == 1 &&
                    !json_is_true(json_object_get(rw, "running")) &&
                    json_integer_value(json_object_get(rw, "pending")) == 0;
        if (done)
            assert_int_equal(json_integer_value(json_object_get(rw, "stuck")), 0);
        json_decref(o);
        if (done)
            return;
        if (i > 2400)
            fail_msg("the KEK rewrap to version %lld did not finish", (long long)target);
        usleep(50000);
    }
}

/* The last released schema (8, commit c7e9085, with the KeyStore and the
 * transit API) opened by this build: migrations 9 and 10 run, and everything
 * the old build wrote is usable: the transit ciphertexts decrypt, the
 * signature verifies, the HMAC is the same, bob's grant works, the finished
 * task's output is served and decrypts, the old input files (their keys
 * wrapped under KEK version 1) run in a new task, the row MACs of the old rows
 * verify; then rotate, trim and export on an upgraded key, and a KEK rotation
 * that rewraps every old wrapped key. */
static void test_from_v8(void **s)
{
    (void)s;
    tenv e;
    make_dir_v8(&e);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM transit_keys"), 3);
    mt_err err;
    if (mt_core_open(&e.cfg, e.tee, &e.core, &err) != MT_OK)
        fail_msg("open of a version 8 store: %s", err.msg);
    assert_int_equal(mt_core_start_scheduler(e.core, &err), MT_OK);
    assert_int_equal(db_int(e.dir, "SELECT max(version) FROM schema_version"),
                     (int)store_schema_version());
    /* migration 14 (shared login limits): a new, empty table */
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM login_limits"), 0);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM tasks WHERE key_signs != 0"), 0);
    /* migration 10: the old keys at the defaults of the new columns */
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM transit_keys WHERE "
                                   "allow_plaintext_backup = 0 AND derived = 0 AND "
                                   "convergent_encryption = 0 AND min_available_version = 0"),
                     3);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM transit_key_versions"), 4);
    check_data_v8(&e, 2);
    char *admin = tlogin(&e, "admin", "fixture-admin-password");
    char *alice = tlogin(&e, "alice", "fixture-alice-password");
    char *bob = tlogin(&e, "bob", "fixture-bob-password");
    wait_idle(&e, admin);
    assert_int_equal(legacy_rows(&e, admin), 0);
    v8_check_transit(&e, alice, bob);

    /* the finished task's output, as the old build wrote it */
    char *out_id = v8_value("alice_out");
    uint8_t out_key[32], in_key[32];
    v8_key("alice_out_key", out_key);
    v8_key("alice_in_key", in_key);
    v8_check_output(&e, alice, out_id, out_key);
    /* the old inputs (keys wrapped by the old build) run in a new task */
    char *fn = v8_value("function"), *a_in = v8_value("alice_in"), *b_in = v8_value("bob_in");
    uint8_t k_a[32], k_b[32];
    mt_random(k_a, 32, NULL);
    mt_random(k_b, 32, NULL);
    char kh[65], oa[33], ob[33], tid[33];
    json_t *o = NULL;
    thex(k_a, 32, kh);
    assert_int_equal(treqf(&e, "POST", "/v1/files/outputs", alice, &o, "{\"key\":\"%s\"}", kh), 201);
    snprintf(oa, sizeof oa, "%s", jstr(o, "file_id"));
    json_decref(o);
    thex(k_b, 32, kh);
    assert_int_equal(treqf(&e, "POST", "/v1/files/outputs", bob, &o, "{\"key\":\"%s\"}", kh), 201);
    snprintf(ob, sizeof ob, "%s", jstr(o, "file_id"));
    json_decref(o);
    assert_int_equal(
        treqf(&e, "POST", "/v1/tasks", alice, &o,
              "{\"function_id\":\"%s\",\"inputs\":[{\"name\":\"a\",\"owners\":[\"alice\"]},"
              "{\"name\":\"b\",\"owners\":[\"bob\"]}],\"outputs\":[{\"name\":\"ra\",\"owners\":"
              "[\"alice\"]},{\"name\":\"rb\",\"owners\":[\"bob\"]}]}",
              fn),
        201);
    snprintf(tid, sizeof tid, "%s", jstr(o, "task_id"));
    json_decref(o);
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s/assign", tid);
    assert_int_equal(treqf(&e, "POST", path, alice, NULL,
                           "{\"inputs\":{\"a\":\"%s\"},\"outputs\":{\"ra\":\"%s\"}}", a_in, oa),
                     200);
    assert_int_equal(treqf(&e, "POST", path, bob, NULL,
                           "{\"inputs\":{\"b\":\"%s\"},\"outputs\":{\"rb\":\"%s\"}}", b_in, ob),
                     200);
    snprintf(path, sizeof path, "/v1/tasks/%s/approve", tid);
    assert_int_equal(treq(&e, "POST", path, alice, NULL, NULL), 200);
    assert_int_equal(treq(&e, "POST", path, bob, NULL, NULL), 200);
    snprintf(path, sizeof path, "/v1/tasks/%s/invoke", tid);
    assert_int_equal(treq(&e, "POST", path, alice, NULL, NULL), 200);
    char *st = v8_wait_task(&e, alice, tid);
    assert_string_equal(st, "finished");
    free(st);
    v8_check_output(&e, alice, oa, k_a);

    /* rotate, trim and export on an upgraded key */
    char *ct3 = NULL, *msg = v8_value("plaintext"), *ct1 = v8_value("k1_v1"),
         *ct2 = v8_value("k1_v2");
    char body[512];
    tr_post(&e, "/v1/transit/keys/k1/rotate", alice, NULL, 200, NULL);
    snprintf(body, sizeof body, "{\"plaintext\":\"%s\"}", msg);
    ct3 = tr_post(&e, "/v1/transit/encrypt/k1", alice, body, 200, "ciphertext");
    assert_non_null(strstr(ct3, "vault:v3:"));
    v8_decrypt(&e, alice, "k1", ct3, 200);
    /* an old ciphertext rewraps to the new version */
    snprintf(body, sizeof body, "{\"ciphertext\":\"%s\"}", ct1);
    char *rw = tr_post(&e, "/v1/transit/rewrap/k1", alice, body, 200, "ciphertext");
    assert_non_null(strstr(rw, "vault:v3:"));
    v8_decrypt(&e, alice, "k1", rw, 200);
    free(rw);
    tr_post(&e, "/v1/transit/keys/k1/config", alice,
            "{\"min_decryption_version\":2,\"min_encryption_version\":2,\"exportable\":true}",
            200, NULL);
    tr_post(&e, "/v1/transit/keys/k1/trim", alice, "{\"min_available_version\":2}", 200, NULL);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM transit_key_versions WHERE name = 'k1'"),
                     2);
    v8_decrypt(&e, alice, "k1", ct1, 400); /* version 1 is gone */
    v8_decrypt(&e, alice, "k1", ct2, 200);
    v8_decrypt(&e, bob, "alice:k1", ct2, 200);
    assert_int_equal(treq(&e, "GET", "/v1/transit/export/encryption-key/k1", alice, NULL, &o), 200);
    json_t *keys = json_object_get(json_object_get(o, "data"), "keys");
    assert_int_equal(json_object_size(keys), 2);
    assert_non_null(json_object_get(keys, "2"));
    assert_non_null(json_object_get(keys, "3"));
    json_decref(o);
    /* a key that was never made exportable is not */
    assert_int_equal(treq(&e, "GET", "/v1/transit/export/hmac-key/h1", alice, NULL, NULL), 403);
    assert_int_equal(treq(&e, "GET", "/v1/transit/export/public-key/e1", alice, NULL, NULL), 200);

    /* a KEK rotation rewraps every key the old build wrapped (file keys,
     * function payload keys, transit versions) without a stuck row */
    assert_int_equal(treq(&e, "POST", "/v1/admin/keystore/rotate", admin, NULL, &o), 202);
    json_decref(o);
    v8_wait_kek(&e, admin, 2);
    assert_int_equal(db_int(e.dir, "SELECT count(*) FROM files WHERE kek_version != 2"), 0);
    assert_int_equal(
        db_int(e.dir, "SELECT count(*) FROM transit_key_versions WHERE kek_version != 2"), 0);
    v8_check_output(&e, alice, out_id, out_key);
    v8_decrypt(&e, alice, "k1", ct2, 200);

    /* reopened: the upgraded store, the new columns under the row MACs */
    tenv_close_core(&e);
    if (mt_core_open(&e.cfg, e.tee, &e.core, &err) != MT_OK)
        fail_msg("reopen of an upgraded version 8 store: %s", err.msg);
    check_data_v8(&e, 3); /* and the output of the new task */
    free(admin);
    free(alice);
    free(bob);
    admin = tlogin(&e, "admin", "fixture-admin-password");
    alice = tlogin(&e, "alice", "fixture-alice-password");
    bob = tlogin(&e, "bob", "fixture-bob-password");
    v8_decrypt(&e, alice, "k1", ct2, 200);
    v8_decrypt(&e, alice, "k1", ct3, 200);
    v8_decrypt(&e, bob, "alice:k1", ct3, 200);
    snprintf(body, sizeof body, "{\"input\":\"%s\"}", msg);
    char *hm = tr_post(&e, "/v1/transit/hmac/h1", alice, body, 200, "hmac"),
         *hm0 = v8_value("h1_hmac");
    assert_string_equal(hm, hm0);
    free(hm);
    free(hm0);
    /* the host lowers the trimmed minimum again: refused by the row MAC */
    db_exec_dir(e.dir, "UPDATE transit_keys SET min_available_version = 1 WHERE name = 'k1'");
    assert_int_equal(treq(&e, "POST", "/v1/transit/decrypt/k1", alice, "{\"ciphertext\":"
                          "\"vault:v2:AAAA\"}", &o),
                     500);
    assert_non_null(strstr(terr_msg(o), "integrity check failed"));
    json_decref(o);
    tenv_close_core(&e);
    uint64_t n = 0;
    assert_int_equal(mt_core_audit_verify_dir(e.dir, NULL, NULL, 0, &n, &err), MT_OK);
    assert_true(n > 30);
    free(ct1);
    free(ct2);
    free(ct3);
    free(msg);
    free(fn);
    free(a_in);
    free(b_in);
    free(out_id);
    free(admin);
    free(alice);
    free(bob);
    tenv_free(&e);
}

/* Rows of the schema-8 fixture edited by the host before the upgrade: the MACs
 * the old build wrote are checked by this build (each edit alone). */
static void test_v8_tampered(void **s)
{
    (void)s;
    static const char *const edits[] = {
        /* alice's key made exportable behind her back */
        "UPDATE transit_keys SET exportable = 1 WHERE name = 'k1'",
        /* version 1 of k1 swapped for the hmac key's */
        ("UPDATE transit_key_versions SET (wrapped, mac) = (SELECT wrapped, mac FROM "
         "transit_key_versions WHERE name = 'h1') WHERE name = 'k1' AND version = 1"),
        /* bob's grant widened to sign */
        "UPDATE transit_grants SET operations = 'encrypt,decrypt,sign' WHERE grantee = 'bob'",
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        tenv e;
        make_dir_v8(&e);
        db_exec_dir(e.dir, edits[i]);
        mt_err err;
        if (mt_core_open(&e.cfg, e.tee, &e.core, &err) != MT_OK)
            fail_msg("open of a version 8 store: %s", err.msg);
        char *alice = tlogin(&e, "alice", "fixture-alice-password");
        char *bob = tlogin(&e, "bob", "fixture-bob-password");
        char *ct1 = v8_value("k1_v1");
        json_t *o = NULL;
        char body[512];
        snprintf(body, sizeof body, "{\"ciphertext\":\"%s\"}", ct1);
        const char *tok = i == 2 ? bob : alice, *key = i == 2 ? "alice:k1" : "k1";
        char path[64];
        snprintf(path, sizeof path, "/v1/transit/decrypt/%s", key);
        int st = treq(&e, "POST", path, tok, body, &o);
        if (st != 500 || !strstr(terr_msg(o), "integrity check failed"))
            fail_msg("edit %zu: decrypt -> %d %s", i, st, o ? terr_msg(o) : "");
        json_decref(o);
        /* the other keys are fine */
        snprintf(body, sizeof body, "{\"input\":\"%s\"}", "aGk=");
        assert_int_equal(treq(&e, "POST", "/v1/transit/hmac/h1", alice, body, NULL), 200);
        free(ct1);
        free(alice);
        free(bob);
        tenv_free(&e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_v1),
        cmocka_unit_test(test_from_v2),
        cmocka_unit_test(test_from_v3),
        cmocka_unit_test(test_from_v4),
        cmocka_unit_test(test_from_v6),
        cmocka_unit_test(test_v6_soft_legacy),
        cmocka_unit_test(test_from_v8),
        cmocka_unit_test(test_v8_tampered),
        cmocka_unit_test(test_v3_tampered),
        cmocka_unit_test(test_newer_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
