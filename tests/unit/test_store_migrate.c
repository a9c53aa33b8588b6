/* Schema migrations from the earlier released store schemas (store.c
 * migrations 1..7): a store at version 1, 2, 3, 4 and 6 (SQL text fixtures made by
 * tests/unit/fixtures/make_store_fixtures.sh) is opened by the current code.
 * Versions 1 and 2 have no integrity MACs: refused (and left unchanged)
 * without --seal-legacy-store, sealed with it. Version 3 carries MACs under
 * the platform key of the fixture's sealing key and opens as it is. Then the
 * data survives: users log in with their passwords, both parties see the
 * finished task and its outputs, the audit chain verifies. A store from a
 * newer mesatee is refused. */
#include <sqlite3.h>
#include <unistd.h>

#include "test_core_util.h"

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

static void check_data(tenv *e)
{
    char *tasks = read_text("store_tasks.txt");
    char t1[33], t2[33];
    assert_int_equal(sscanf(tasks, "%32s %32s", t1, t2), 2);
    free(tasks);
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
    assert_int_equal(json_array_size(files), 2); /* her input and her written output */
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
     * tests/unit/fixtures/make_store_fixtures.sh, and a test_from_vN below. */
    assert_int_equal(db_int(e.dir, "SELECT max(version) FROM schema_version"), 10);
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
    assert_int_equal(mt_core_audit_verify_dir(e.dir, NULL, 0, &n, &err), MT_OK);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_v1),
        cmocka_unit_test(test_from_v2),
        cmocka_unit_test(test_from_v3),
        cmocka_unit_test(test_from_v4),
        cmocka_unit_test(test_from_v6),
        cmocka_unit_test(test_v6_soft_legacy),
        cmocka_unit_test(test_v3_tampered),
        cmocka_unit_test(test_newer_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
