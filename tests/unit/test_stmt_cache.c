/* Unit tests of the kept statements of the request connection
 * (src/core/stmt_cache.c) and of what uses them (mt_core_authenticate, the
 * store-row MACs): a kept statement is reused with its bindings cleared; a
 * nested use of the same SQL gets its own statement; a statement on another
 * connection is never kept; and authentication through the kept statements
 * sees every committed change at once (a revoked token, a tampered token
 * row, a new token), also with a second connection writing beside it; the
 * per-thread HMAC context (integrity.c) re-keys between two cores, and its
 * per-key contexts give each key's MAC when three keys alternate (t_mac_keys).
 * Also on PostgreSQL (test_stmt_cache_pg, MT_TEST_STORE_URL: kept prepared
 * statements there too); the checks that read SQLite's own statement list
 * (sqlite3_next_stmt, sqlite3_get_autocommit) run on SQLite only, and
 * t_two_cores needs two stores (one schema per test there: SQLite only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// clang-format off: cmocka.h needs the headers above first
#include <cmocka.h>
// clang-format on

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "test_core_util.h"

/* (typed: PostgreSQL cannot infer an untyped parameter's type; a
 * comparison as a value in the shared subset is a CASE) */
static const char q_one[] =
    "SELECT CASE WHEN CAST(?1 AS INTEGER) IS NULL THEN 1 ELSE 0 END, CAST(?1 AS INTEGER)";

/* SQLite's handle of a connection, NULL on PostgreSQL (its checks skipped) */
static sqlite3 *sqlite_of(mt_db *db)
{
    return tenv_store_url() ? NULL : mt_db_sqlite_handle(db);
}

typedef struct fx {
    tenv e;
    char *admin, *alice;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    tenv_init(&f->e, NULL);
    f->admin = tlogin(&f->e, "admin", ADMIN_PW);
    tadd_user(&f->e, f->admin, "alice");
    f->alice = tlogin(&f->e, "alice", USER_PW);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    free(f->admin);
    free(f->alice);
    tenv_free(&f->e);
    free(f);
    return 0;
}

static void t_reuse(void **state)
{
    fx *f = *state;
    mt_core *c = f->e.core;
    mt_err err;
    mt_db_stmt *a = NULL, *b = NULL;
    mt_status rc = MT_OK;
    pthread_mutex_lock(&c->mu);
    assert_int_equal(core_stmt_get(c, c->db, q_one, &a, &err), MT_OK);
    mt_db_bind_int64(a, 1, 7);
    assert_int_equal(mt_db_step(a, &rc, &err), MT_DB_ROW);
    assert_int_equal(mt_db_col_int64(a, 1), 7);
    core_stmt_put(c, a);
    assert_int_equal(core_stmt_get(c, c->db, q_one, &b, &err), MT_OK);
    assert_ptr_equal(a, b); /* kept */
    assert_int_equal(mt_db_step(b, &rc, &err), MT_DB_ROW);
    assert_int_equal(mt_db_col_int64(b, 0), 1); /* the binding was cleared */
    core_stmt_put(c, b);
    assert_false(mt_db_in_tx(c->db));
    if (sqlite_of(c->db))
        assert_true(sqlite3_get_autocommit(sqlite_of(c->db))); /* reset: no read left open */
    pthread_mutex_unlock(&c->mu);
}

static void t_nested(void **state)
{
    fx *f = *state;
    mt_core *c = f->e.core;
    mt_err err;
    mt_db_stmt *a = NULL, *b = NULL, *again = NULL;
    mt_status rc = MT_OK;
    pthread_mutex_lock(&c->mu);
    assert_int_equal(core_stmt_get(c, c->db, q_one, &a, &err), MT_OK);
    mt_db_bind_int64(a, 1, 1);
    assert_int_equal(mt_db_step(a, &rc, &err), MT_DB_ROW);
    assert_int_equal(core_stmt_get(c, c->db, q_one, &b, &err), MT_OK);
    assert_ptr_not_equal(a, b); /* a is in use: b is its own */
    mt_db_bind_int64(b, 1, 2);
    assert_int_equal(mt_db_step(b, &rc, &err), MT_DB_ROW);
    assert_int_equal(mt_db_col_int64(b, 1), 2);
    assert_int_equal(mt_db_col_int64(a, 1), 1);
    core_stmt_put(c, b); /* finalized (ASan would see a double use) */
    core_stmt_put(c, a);
    assert_int_equal(core_stmt_get(c, c->db, q_one, &again, &err), MT_OK);
    assert_ptr_equal(again, a);
    core_stmt_put(c, again);
    /* bad SQL: an error naming the database's message, nothing kept; on
     * PostgreSQL the server sees the text at the first step (mt_db.h:
     * prepared there once per connection), so the error comes from it */
    mt_db_stmt *bad = (mt_db_stmt *)1;
    if (!tenv_store_url()) {
        assert_int_not_equal(core_stmt_get(c, c->db, "SELEC nonsense", &bad, &err), MT_OK);
        assert_null(bad);
    } else {
        assert_int_equal(core_stmt_get(c, c->db, "SELEC nonsense", &bad, &err), MT_OK);
        rc = MT_OK;
        assert_int_equal(mt_db_step(bad, &rc, &err), -1);
        assert_int_not_equal(rc, MT_OK);
        core_stmt_put(c, bad);
        assert_false(mt_db_in_tx(c->db));
        /* the connection still works, the kept statement too */
        assert_int_equal(core_stmt_get(c, c->db, q_one, &again, &err), MT_OK);
        mt_db_bind_int64(again, 1, 3);
        rc = MT_OK;
        assert_int_equal(mt_db_step(again, &rc, &err), MT_DB_ROW);
        assert_int_equal(mt_db_col_int64(again, 1), 3);
        core_stmt_put(c, again);
    }
    pthread_mutex_unlock(&c->mu);
}

static void t_other_db(void **state)
{
    fx *f = *state;
    mt_core *c = f->e.core;
    mt_err err;
    mt_db *db2 = NULL;
    assert_int_equal(store_open(c->db_path, false, &db2, &err), MT_OK);
    mt_db_stmt *a = NULL;
    mt_status rc = MT_OK;
    pthread_mutex_lock(&c->mu);
    assert_int_equal(core_stmt_get(c, c->db, q_one, &a, &err), MT_OK);
    core_stmt_put(c, a);
    pthread_mutex_unlock(&c->mu);
    /* another connection (no lock needed): never the kept statement */
    mt_db_stmt *b = NULL;
    assert_int_equal(core_stmt_get(c, db2, q_one, &b, &err), MT_OK);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(mt_db_stmt_db(b), db2);
    assert_int_equal(mt_db_step(b, &rc, &err), MT_DB_ROW);
    core_stmt_put(c, b); /* finalized: the close below would fail otherwise */
    if (sqlite_of(db2))
        assert_null(sqlite3_next_stmt(sqlite_of(db2), NULL));
    store_close(db2);
}


/* store.c's helpers (no core passed) on the request connection use its
 * kept statements, also for a text built in a buffer that changes after;
 * a full cache evicts an idle entry in turn instead of keeping the first
 * ones for ever; another connection's helpers stay uncached. */
static void t_helpers_evict(void **state)
{
    fx *f = *state;
    mt_core *c = f->e.core;
    mt_err err;
    int64_t v = 0;
    bool found = false;
    pthread_mutex_lock(&c->mu);
    char sql[64];
    snprintf(sql, sizeof sql, "SELECT CAST(? AS INTEGER) + 1");
    assert_int_equal(store_int(c->db, &err, &v, &found, sql, "41"), MT_OK);
    assert_true(found);
    assert_int_equal(v, 42);
    sqlite3 *h = sqlite_of(c->db);
    int kept = 0;
    for (sqlite3_stmt *s = h ? sqlite3_next_stmt(h, NULL) : NULL; s; s = sqlite3_next_stmt(h, s))
        kept += !strcmp(sqlite3_sql(s), "SELECT CAST(? AS INTEGER) + 1");
    assert_true(!h || kept == 1); /* kept after its use */
    memset(sql, 'x', sizeof sql - 1); /* the caller's buffer changes: the key was copied */
    assert_int_equal(store_int(c->db, &err, &v, &found, "SELECT CAST(? AS INTEGER) + 1", "1"),
                     MT_OK);
    assert_int_equal(v, 2);
    /* 80 distinct texts through a cache of 32: always correct, and the
     * number of kept statements stays bounded */
    for (int i = 0; i < 80; i++) {
        char q[64], want[16];
        snprintf(q, sizeof q, "SELECT CAST(? AS INTEGER) + %d", i);
        assert_int_equal(store_int(c->db, &err, &v, &found, q, "1000"), MT_OK);
        snprintf(want, sizeof want, "%d", 1000 + i);
        assert_int_equal(v, atoi(want));
    }
    if (h) {
        int n = 0;
        for (sqlite3_stmt *s = sqlite3_next_stmt(h, NULL); s; s = sqlite3_next_stmt(h, s))
            n++;
        assert_true(n <= 40); /* 32 kept (+ those of the sqlite shim), not 80 */
        kept = 0;
        for (sqlite3_stmt *s = sqlite3_next_stmt(h, NULL); s; s = sqlite3_next_stmt(h, s))
            kept += !strcmp(sqlite3_sql(s), "SELECT CAST(? AS INTEGER) + 79");
        assert_int_equal(kept, 1); /* the newest one is kept: older ones made room */
        assert_true(sqlite3_get_autocommit(h)); /* every kept statement was reset */
    }
    /* evicted statements were really given up: the first texts, prepared
     * again, still answer right */
    for (int i = 0; i < 4; i++) {
        char q[64];
        snprintf(q, sizeof q, "SELECT CAST(? AS INTEGER) + %d", i);
        assert_int_equal(store_int(c->db, &err, &v, &found, q, "5"), MT_OK);
        assert_int_equal(v, 5 + i);
    }
    assert_false(mt_db_in_tx(c->db));
    pthread_mutex_unlock(&c->mu);
    mt_db *db2 = NULL;
    assert_int_equal(store_open(c->db_path, false, &db2, &err), MT_OK);
    assert_int_equal(store_int(db2, &err, &v, &found, "SELECT CAST(? AS INTEGER) + 1", "1"),
                     MT_OK);
    if (sqlite_of(db2))
        assert_null(sqlite3_next_stmt(sqlite_of(db2), NULL)); /* not kept there */
    store_close(db2);
}

/* Authentication through kept statements sees each committed change. */
static void t_auth_current(void **state)
{
    fx *f = *state;
    tenv *e = &f->e;
    json_t *o = NULL;
    for (int i = 0; i < 3; i++)
        assert_int_equal(treq(e, "GET", "/v1/users/me", f->alice, NULL, NULL), 200);
    /* revoked: the very next request fails */
    assert_int_equal(treq(e, "POST", "/v1/users/alice/revoke-tokens", f->admin, NULL, &o), 200);
    json_decref(o);
    assert_int_equal(treq(e, "GET", "/v1/users/me", f->alice, NULL, NULL), 401);
    free(f->alice);
    f->alice = tlogin(e, "alice", USER_PW); /* a new row: found at once */
    assert_int_equal(treq(e, "GET", "/v1/users/me", f->alice, NULL, NULL), 200);
    /* the token row changed outside mesatee, through another connection:
     * its MAC no longer matches and the kept MAC statement sees the change */
    mt_err err;
    mt_db *db2 = NULL;
    assert_int_equal(store_open(e->core->db_path, false, &db2, &err), MT_OK);
    assert_int_equal(store_exec(db2, "UPDATE tokens SET expires_at = expires_at + 1000", &err),
                     MT_OK);
    assert_int_equal(treq(e, "GET", "/v1/users/me", f->alice, NULL, NULL), 401);
    assert_int_equal(treq(e, "GET", "/v1/users/me", f->admin, NULL, NULL), 401);
    assert_int_equal(store_exec(db2, "UPDATE tokens SET expires_at = expires_at - 1000", &err),
                     MT_OK);
    assert_int_equal(treq(e, "GET", "/v1/users/me", f->alice, NULL, NULL), 200);
    store_close(db2);
    /* the thread's keyed HMAC context dropped: the next MAC re-keys */
    integ_mac_thread_clear();
    assert_int_equal(treq(e, "GET", "/v1/users/me", f->alice, NULL, NULL), 200);
    /* no read transaction is left open between requests */
    pthread_mutex_lock(&e->core->mu);
    assert_false(mt_db_in_tx(e->core->db));
    if (sqlite_of(e->core->db))
        assert_true(sqlite3_get_autocommit(sqlite_of(e->core->db)));
    pthread_mutex_unlock(&e->core->mu);
}

/* Two cores (two data directories, two store-integrity keys) used in turn
 * by one thread: the thread's HMAC context re-keys each time, every MAC
 * still verifies, and a token of one core is unknown to the other. */
static void t_two_cores(void **state)
{
    fx *f = *state;
    if (tenv_store_url()) {
        /* a second tenv would drop the first one's schema */
        print_message("skip: two cores need two stores (one schema per test on PostgreSQL)\n");
        skip();
    }
    tenv e2;
    tenv_init(&e2, NULL);
    char *admin2 = tlogin(&e2, "admin", ADMIN_PW);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(treq(&f->e, "GET", "/v1/users/me", f->alice, NULL, NULL), 200);
        assert_int_equal(treq(&e2, "GET", "/v1/users/me", admin2, NULL, NULL), 200);
        assert_int_equal(treq(&e2, "GET", "/v1/users/me", f->alice, NULL, NULL), 401);
    }
    free(admin2);
    tenv_free(&e2);
    assert_int_equal(treq(&f->e, "GET", "/v1/users/me", f->admin, NULL, NULL), 200);
}

/* The reference MAC of integ_mac_text (integrity.c's pre-image: the domain
 * with its NUL, the text's length as u32be, the text), computed without
 * the per-thread contexts. */
static void ref_mac(const uint8_t key[32], const char *domain, const char *text, char out[65])
{
    uint8_t pre[128], md[32];
    size_t dl = strlen(domain) + 1, tl = strlen(text);
    assert_true(dl + 4 + tl <= sizeof pre);
    memcpy(pre, domain, dl);
    pre[dl] = (uint8_t)(tl >> 24);
    pre[dl + 1] = (uint8_t)(tl >> 16);
    pre[dl + 2] = (uint8_t)(tl >> 8);
    pre[dl + 3] = (uint8_t)tl;
    memcpy(pre + dl + 4, text, tl);
    unsigned int ml = 0;
    assert_non_null(HMAC(EVP_sha256(), key, 32, pre, dl + 4 + tl, md, &ml));
    assert_int_equal(ml, 32);
    mt_hex_encode(md, 32, out);
}

/* One thread MACs under three keys in turn (more keys than it keeps
 * contexts for: integ_key and audit_key alternate in a task): every MAC is
 * the reference one of its own key, whichever context served it, also
 * after the thread's contexts are cleared. */
static void t_mac_keys(void **state)
{
    (void)state;
    uint8_t keys[3][32];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 32; i++)
            keys[k][i] = (uint8_t)(k * 32 + i + 1);
    static const int order[] = {0, 1, 0, 1, 2, 0, 2, 1, 1, 0, 2, 2, 1, 0};
    char got[65], want[65];
    mt_err err;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
            int k = order[i];
            char text[32];
            snprintf(text, sizeof text, "row %zu", i);
            assert_int_equal(integ_mac_text(keys[k], "mesatee-test/v1", text, got, &err), MT_OK);
            ref_mac(keys[k], "mesatee-test/v1", text, want);
            assert_string_equal(got, want);
        }
        integ_mac_thread_clear();
    }
}

/* ---- every thread's HMAC slots: a key is wiped from all of them --------- */

typedef struct {
    const uint8_t (*keys)[32];
    size_t n_keys;
    tenv *e;           /* with it: one request instead of the keys */
    const char *token;
    int status;        /* the request's */
    bool macs_ok;      /* every MAC was the reference one */
    size_t loops;      /* > 0: MAC keys[0] this many times, then exit */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int phase;         /* 1: the peer MACed and waits; 2: it may go on */
    atomic_bool done;  /* with loops: the peer finished them */
} mac_peer;

static void *mac_peer_main(void *arg)
{
    mac_peer *p = arg;
    char got[65], want[65];
    mt_err err;
    p->macs_ok = true;
    if (p->e)
        p->status = treq(p->e, "GET", "/v1/users/me", p->token, NULL, NULL);
    for (size_t k = 0; k < p->n_keys; k++) {
        ref_mac(p->keys[k], "mesatee-test/v1", "peer", want);
        p->macs_ok &= integ_mac_text(p->keys[k], "mesatee-test/v1", "peer", got, &err) == MT_OK &&
                      !strcmp(got, want);
    }
    for (size_t i = 0; i < p->loops; i++)
        p->macs_ok &= integ_mac_text(p->keys[0], "mesatee-test/v1", "peer", got, &err) == MT_OK &&
                      !strcmp(got, want);
    if (p->loops) {
        atomic_store(&p->done, true);
        return NULL;
    }
    pthread_mutex_lock(&p->mu);
    p->phase = 1;
    pthread_cond_broadcast(&p->cv);
    while (p->phase != 2)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    if (p->n_keys) { /* after the wipe: re-keys, the same MAC */
        p->macs_ok &= integ_mac_text(p->keys[0], "mesatee-test/v1", "peer", got, &err) == MT_OK;
        ref_mac(p->keys[0], "mesatee-test/v1", "peer", want);
        p->macs_ok &= !strcmp(got, want);
    }
    return NULL;
}

static void mac_peer_start(mac_peer *p, pthread_t *th)
{
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    assert_int_equal(pthread_create(th, NULL, mac_peer_main, p), 0);
    if (p->loops)
        return;
    pthread_mutex_lock(&p->mu);
    while (p->phase != 1)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void mac_peer_finish(mac_peer *p, pthread_t th)
{
    pthread_mutex_lock(&p->mu);
    p->phase = 2;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    assert_true(p->macs_ok);
}

/* integ_mac_forget wipes a key from another, idle thread's slots (and only
 * that key); the thread then re-keys and MACs correctly; its exit wipes the
 * rest. */
static void t_mac_forget(void **state)
{
    (void)state;
    uint8_t keys[2][32];
    for (int k = 0; k < 2; k++)
        memset(keys[k], 0xa0 + k, 32);
    mac_peer p = {.keys = (const uint8_t(*)[32])keys, .n_keys = 2};
    pthread_t th;
    mac_peer_start(&p, &th);
    assert_int_equal(integ_mac_slots_holding(keys[0]), 1);
    assert_int_equal(integ_mac_slots_holding(keys[1]), 1);
    integ_mac_forget(keys[0]);
    assert_int_equal(integ_mac_slots_holding(keys[0]), 0);
    assert_int_equal(integ_mac_slots_holding(keys[1]), 1);
    mac_peer_finish(&p, th);
    assert_int_equal(integ_mac_slots_holding(keys[0]), 0); /* thread exit */
    assert_int_equal(integ_mac_slots_holding(keys[1]), 0);
}

/* Wiping while the owner MACs with the key, over and over until it is
 * done: the owner's slot is never wiped under it (every MAC is the
 * reference one; ASan would see a context freed while in use). */
static void t_mac_forget_busy(void **state)
{
    (void)state;
    uint8_t key[1][32];
    memset(key[0], 0x5c, 32);
    mac_peer p = {.keys = (const uint8_t(*)[32])key, .n_keys = 1, .loops = 20000};
    pthread_t th;
    mac_peer_start(&p, &th);
    size_t wipes = 0;
    while (!atomic_load(&p.done) || wipes < 1000) {
        integ_mac_forget(key[0]);
        wipes++;
    }
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(p.macs_ok);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
}

/* Closing a core wipes its store-integrity and audit keys from the slots
 * of a thread that served one of its requests and still lives. */
static void t_close_wipes_other_threads(void **state)
{
    (void)state;
    tenv e;
    tenv_init(&e, NULL);
    char *admin = tlogin(&e, "admin", ADMIN_PW);
    /* the peer's slots hold both of the core's keys: the token row's MAC
     * (a request) and one MAC with each key (copies of them, which it
     * re-keys with after the close) */
    uint8_t keys[2][32];
    memcpy(keys[0], e.core->integ_key, 32);
    memcpy(keys[1], e.core->audit_key, 32);
    mac_peer p = {.e = &e, .token = admin, .keys = (const uint8_t(*)[32])keys, .n_keys = 2};
    pthread_t th;
    mac_peer_start(&p, &th);
    assert_int_equal(p.status, 200);
    uint8_t ik[32], ak[32];
    memcpy(ik, e.core->integ_key, 32);
    memcpy(ak, e.core->audit_key, 32);
    assert_true(integ_mac_slots_holding(ik) >= 1);
    assert_true(integ_mac_slots_holding(ak) >= 1);
    tenv_free(&e);
    assert_int_equal(integ_mac_slots_holding(ik), 0);
    assert_int_equal(integ_mac_slots_holding(ak), 0);
    mac_peer_finish(&p, th);
    mt_wipe(ik, sizeof ik);
    mt_wipe(ak, sizeof ak);
    mt_wipe(keys, sizeof keys);
    free(admin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(t_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(t_other_db, setup, teardown),
        cmocka_unit_test_setup_teardown(t_auth_current, setup, teardown),
        cmocka_unit_test_setup_teardown(t_two_cores, setup, teardown),
        cmocka_unit_test_setup_teardown(t_helpers_evict, setup, teardown),
        cmocka_unit_test(t_mac_keys),
        cmocka_unit_test(t_mac_forget),
        cmocka_unit_test(t_mac_forget_busy),
        cmocka_unit_test(t_close_wipes_other_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
