/* Unit tests of the audit group commit's core side (audit.c
 * mt_core_audit_batch, api.c mt_request.audit_later): batches from several
 * threads at once, beside single appends, make one linear chain that
 * verifies, with every entry present once; a batch that cannot commit keeps
 * none of its entries; a stateless transit route with audit_later writes no
 * entry itself (the caller's batch does) and a state change still writes its
 * own, while without audit_later the route audits itself as before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// clang-format off: cmocka.h needs the headers above first
#include <cmocka.h>
// clang-format on

#include <pthread.h>
#include <sqlite3.h>

#include "core_internal.h"
#include "test_core_util.h"

#define THREADS 4
#define ROUNDS 20
#define BATCH 5

typedef tfx fx; /* admin + alice, test_core_util.h */

static int64_t count(fx *f, const char *where)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM audit WHERE %s", where);
    mt_db_stmt *st = NULL;
    mt_err err;
    mt_status rc = MT_OK;
    pthread_mutex_lock(&f->e.core->mu);
    assert_int_equal(mt_db_prepare(f->e.core->db, sql, &st, &err), MT_OK);
    assert_int_equal(mt_db_step(st, &rc, &err), MT_DB_ROW);
    int64_t n = mt_db_col_int64(st, 0);
    mt_db_finalize(st);
    pthread_mutex_unlock(&f->e.core->mu);
    return n;
}

/* On the core's own connection (SQLite or MT_TEST_STORE_URL). */
static void db_exec(fx *f, const char *sql)
{
    mt_err err;
    pthread_mutex_lock(&f->e.core->mu);
    mt_status rc = mt_db_exec(f->e.core->db, sql, &err);
    pthread_mutex_unlock(&f->e.core->mu);
    if (rc != MT_OK)
        fail_msg("%s: %s", sql, err.msg);
}

static void *batcher(void *arg)
{
    fx *f = arg;
    mt_audit_item items[BATCH];
    for (int i = 0; i < BATCH; i++)
        items[i] = (mt_audit_item){"batcher", "POST /v1/transit/encrypt/{key}", "-", 200, 0};
    for (int r = 0; r < ROUNDS; r++) {
        mt_err err;
        if (mt_core_audit_batch(f->e.core, items, BATCH, &err) != MT_OK)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_batches(void **state)
{
    fx *f = *state;
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, batcher, f), 0);
    /* single appends on the main connection meanwhile */
    for (int i = 0; i < ROUNDS; i++) {
        mt_err err;
        assert_int_equal(mt_core_audit(f->e.core, "single", "GET /v1/users/me", "-", 200, &err),
                         MT_OK);
    }
    for (int i = 0; i < THREADS; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    assert_int_equal(count(f, "actor = 'batcher'"), THREADS * ROUNDS * BATCH);
    assert_int_equal(count(f, "actor = 'single'"), ROUNDS);
    mt_err err;
    assert_int_equal(mt_core_audit_batch(f->e.core, NULL, 0, &err), MT_OK);
    tenv_close_core(&f->e);
    uint64_t n = 0;
    assert_int_equal(mt_core_audit_verify_dir(f->e.dir, tenv_store_url(), NULL, 0, &n, &err), MT_OK);
    assert_true(n >= (uint64_t)(THREADS * ROUNDS * BATCH + ROUNDS));
    tenv_open_core(&f->e);
}

static void test_failed_batch_keeps_nothing(void **state)
{
    fx *f = *state;
    if (tenv_store_url())
        db_exec(f, "CREATE FUNCTION t_fail_fn() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'injected'; END $$; "
                   "CREATE TRIGGER t_fail BEFORE INSERT ON audit FOR EACH ROW "
                   "WHEN (NEW.actor = 'bad') EXECUTE FUNCTION t_fail_fn()");
    else
        db_exec(f, "CREATE TRIGGER t_fail BEFORE INSERT ON audit WHEN NEW.actor = 'bad' "
                   "BEGIN SELECT RAISE(ABORT, 'injected'); END");
    mt_audit_item items[3] = {
        {"good", "a", "-", 200, 0}, {"bad", "b", "-", 200, 0}, {"good", "c", "-", 200, 0}};
    mt_err err;
    assert_int_not_equal(mt_core_audit_batch(f->e.core, items, 3, &err), MT_OK);
    assert_int_equal(count(f, "actor IN ('good', 'bad')"), 0);
    db_exec(f, tenv_store_url() ? "DROP TRIGGER t_fail ON audit; DROP FUNCTION t_fail_fn()"
                                : "DROP TRIGGER t_fail");
    items[1].actor = "good";
    assert_int_equal(mt_core_audit_batch(f->e.core, items, 3, &err), MT_OK);
    assert_int_equal(count(f, "actor = 'good'"), 3);
    tenv_close_core(&f->e);
    uint64_t n = 0;
    assert_int_equal(mt_core_audit_verify_dir(f->e.dir, tenv_store_url(), NULL, 0, &n, &err), MT_OK);
    tenv_open_core(&f->e);
}

static int handle(fx *f, const char *method, const char *path, const char *body, bool later,
                  bool *audited)
{
    mt_principal who;
    mt_err err;
    assert_int_equal(mt_core_authenticate(f->e.core, f->alice, &who, &err), MT_OK);
    mt_request rq = {.method = method,
                     .path = path,
                     .body = (const uint8_t *)body,
                     .body_len = strlen(body),
                     .who = &who,
                     .audit_later = later};
    mt_response rs;
    mt_core_handle(f->e.core, &rq, &rs);
    int status = rs.status;
    *audited = rs.audited;
    mt_response_clear(&rs);
    return status;
}

static void test_audit_later(void **state)
{
    fx *f = *state;
    bool audited = true;
    assert_true(mt_core_route_audit_only("POST", "/v1/transit/encrypt/k"));
    assert_true(mt_core_route_audit_only("POST", "/v1/transit/sign/k/pss"));
    assert_true(mt_core_route_audit_only("POST", "/v1/transit/hash"));
    assert_false(mt_core_route_audit_only("POST", "/v1/transit/keys/k"));
    assert_false(mt_core_route_audit_only("POST", "/v1/transit/keys/k/config"));
    assert_false(mt_core_route_audit_only("GET", "/v1/transit/wrapping_key"));
    assert_false(mt_core_route_audit_only("POST", "/v1/nope"));
    /* a state change audits itself even when the caller would */
    assert_int_equal(handle(f, "POST", "/v1/transit/keys/k", "{}", true, &audited), 200);
    int64_t before = count(f, "action = 'POST /v1/transit/keys/{key}/config'");
    assert_int_equal(handle(f, "POST", "/v1/transit/keys/k/config", "{\"deletion_allowed\":true}",
                            true, &audited),
                     200);
    assert_true(audited);
    assert_int_equal(count(f, "action = 'POST /v1/transit/keys/{key}/config'"), before + 1);
    /* a stateless operation leaves its entry to the caller */
    const char *enc = "POST /v1/transit/encrypt/{key}";
    char where[128];
    snprintf(where, sizeof where, "action = '%s'", enc);
    assert_int_equal(
        handle(f, "POST", "/v1/transit/encrypt/k", "{\"plaintext\":\"aGk=\"}", true, &audited),
        200);
    assert_false(audited);
    assert_int_equal(count(f, where), 0);
    /* refused: still the caller's */
    assert_int_equal(
        handle(f, "POST", "/v1/transit/encrypt/nosuch", "{\"plaintext\":\"aGk=\"}", true, &audited),
        404);
    assert_false(audited);
    assert_int_equal(count(f, where), 0);
    /* without audit_later: audited in its own transaction, as before */
    assert_int_equal(
        handle(f, "POST", "/v1/transit/encrypt/k", "{\"plaintext\":\"aGk=\"}", false, &audited),
        200);
    assert_true(audited);
    assert_int_equal(count(f, where), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concurrent_batches, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_failed_batch_keeps_nothing, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_audit_later, tfx_setup, tfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
