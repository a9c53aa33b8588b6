/* Helpers for the mt_core tests: a temporary data directory with a TEE and
 * an open core, and request helpers that go through mt_core_authenticate and
 * mt_core_handle exactly as the gateway does. */
#ifndef TEST_CORE_UTIL_H
#define TEST_CORE_UTIL_H

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_core.h"
#include "mt_db.h"
#include "mt_tee.h"
#include "mt_util.h"

#define ADMIN_PW "admin-password-1"
#define USER_PW "user-password-1"

typedef struct tenv {
    char dir[128];
    mt_tee *tee;
    mt_core *core;
    mt_core_config cfg;
} tenv;

static inline void tenv_rm(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* MT_TEST_STORE_URL (docs/cluster.md "Tests"): the store the core runs on,
 * e.g. the PostgreSQL of `tests/pg/pg-temp.sh run`; every tenv_init starts
 * it on a fresh schema. Unset or empty: <dir>/mesatee.db (SQLite). */
static inline const char *tenv_store_url(void)
{
    const char *u = getenv("MT_TEST_STORE_URL");
    return u && *u ? u : NULL;
}

/* A connection of the test's own to the store of the core in dir (the test
 * plays the host editing the untrusted store); the same on both backends. */
static inline mt_db *tenv_db_open_dir(const char *dir)
{
    mt_err err;
    mt_db *db = NULL;
    mt_status rc;
    if (tenv_store_url()) {
        rc = mt_db_open(tenv_store_url(), 0, &db, &err);
    } else {
        char path[256];
        snprintf(path, sizeof path, "%s/mesatee.db", dir);
        rc = mt_db_open_sqlite_path(path, 0, &db, &err);
    }
    if (rc != MT_OK)
        fail_msg("open the test's store: %s", err.msg);
    (void)mt_db_set_busy_timeout(db, 5000, &err);
    return db;
}

/* Runs statements (no results) on the store of the core in dir. */
static inline void tenv_sql_dir(const char *dir, const char *sql)
{
    mt_err err;
    mt_db *db = tenv_db_open_dir(dir);
    if (mt_db_exec(db, sql, &err) != MT_OK)
        fail_msg("sql failed: %s", err.msg);
    mt_db_close(db);
}

/* The first column of the first row of a query, as an integer. */
static inline int64_t tenv_sql_int_dir(const char *dir, const char *sql)
{
    mt_err err;
    mt_status rc = MT_OK;
    mt_db *db = tenv_db_open_dir(dir);
    mt_db_stmt *st = NULL;
    if (mt_db_prepare(db, sql, &st, &err) != MT_OK)
        fail_msg("prepare: %s", err.msg);
    if (mt_db_step(st, &rc, &err) != MT_DB_ROW)
        fail_msg("no row: %s", rc ? err.msg : sql);
    int64_t v = mt_db_col_int64(st, 0);
    mt_db_finalize(st);
    mt_db_close(db);
    return v;
}

/* A test's first core starts on an empty store: with MT_TEST_STORE_URL, a
 * fresh schema (no state from the test before); a new e->dir is empty anyway. */
static inline void tenv_fresh_store(tenv *e)
{
    if (tenv_store_url())
        tenv_sql_dir(e->dir, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
}

/* Opens (or re-opens, when dir is already set) a core in e->dir. */
static inline void tenv_open_core(tenv *e)
{
    mt_err err;
    if (!e->tee)
        assert_int_equal(mt_tee_open("none", e->dir, &e->tee, &err), MT_OK);
    e->cfg.data_dir = e->dir;
    e->cfg.store_url = tenv_store_url();
    mt_status rc = mt_core_open(&e->cfg, e->tee, &e->core, &err);
    if (rc)
        fail_msg("mt_core_open: %s", err.msg);
}

static inline void tenv_init(tenv *e, const char *worker)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/mt_core_test.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    tenv_fresh_store(e);
    e->cfg.admin_password = ADMIN_PW;
    e->cfg.worker_path = worker;
    e->cfg.workers = 2;
    tenv_open_core(e);
}

static inline void tenv_close_core(tenv *e)
{
    mt_core_close(e->core);
    e->core = NULL;
}

static inline void tenv_free(tenv *e)
{
    tenv_close_core(e);
    mt_tee_free(e->tee);
    e->tee = NULL;
    tenv_rm(e->dir);
}

/* One request; returns the HTTP status, *out (optional) gets the JSON body
 * (new reference) and raw/raw_len (optional) the raw body. */
static inline int treq_raw(tenv *e, const char *method, const char *path, const char *query,
                           const char *token, const void *body, size_t body_len, json_t **out,
                           uint8_t **raw, size_t *raw_len)
{
    mt_principal who;
    bool authed = false;
    if (token) {
        mt_err err;
        if (mt_core_authenticate(e->core, token, &who, &err) != MT_OK)
            return 401;
        authed = true;
    }
    mt_request rq = {method, path, query, body, body_len, authed ? &who : NULL, NULL, NULL, false, false};
    mt_response rs;
    mt_core_handle(e->core, &rq, &rs);
    int status = rs.status;
    if (out)
        *out = rs.json ? json_incref(rs.json) : NULL;
    if (raw && rs.has_raw_fd) {
        /* a streamed body (downloads): read what the gateway would send */
        *raw = malloc(rs.raw_fd_len ? (size_t)rs.raw_fd_len : 1);
        *raw_len = 0;
        while (*raw && *raw_len < rs.raw_fd_len) {
            ssize_t n = pread(rs.raw_fd, *raw + *raw_len, (size_t)rs.raw_fd_len - *raw_len,
                              (off_t)*raw_len);
            if (n <= 0)
                break;
            *raw_len += (size_t)n;
        }
    } else if (raw) {
        *raw = rs.raw;
        *raw_len = rs.raw_len;
        rs.raw = NULL;
    }
    mt_response_clear(&rs);
    return status;
}

static inline int treq(tenv *e, const char *method, const char *path, const char *token,
                       const char *body, json_t **out)
{
    return treq_raw(e, method, path, NULL, token, body, body ? strlen(body) : 0, out, NULL, NULL);
}

/* Like treq with a printf-formatted body. */
static inline int treqf(tenv *e, const char *method, const char *path, const char *token,
                        json_t **out, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static inline int treqf(tenv *e, const char *method, const char *path, const char *token,
                        json_t **out, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return treq(e, method, path, token, buf, out);
}

static inline const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Logs in; returns a heap token (assert on failure). */
static inline char *tlogin(tenv *e, const char *user, const char *pw)
{
    json_t *o = NULL;
    int st = treqf(e, "POST", "/v1/auth/login", NULL, &o,
                   "{\"username\":\"%s\",\"password\":\"%s\"}", user, pw);
    assert_int_equal(st, 200);
    char *t = strdup(jstr(o, "token"));
    assert_int_equal(strlen(t), 43);
    json_decref(o);
    return t;
}

static inline void tadd_user(tenv *e, const char *admin_token, const char *user)
{
    json_t *o = NULL;
    int st = treqf(e, "POST", "/v1/users", admin_token, &o,
                   "{\"username\":\"%s\",\"password\":\"" USER_PW "\",\"role\":\"user\"}", user);
    assert_int_equal(st, 201);
    json_decref(o);
}

/* Error code string of an error response. */
static inline const char *terr_code(const json_t *o)
{
    return jstr(json_object_get(o, "error"), "code");
}
static inline const char *terr_msg(const json_t *o)
{
    return jstr(json_object_get(o, "error"), "message");
}

/* GET /v1/tasks/<id> status, or "" if not visible. */
static inline char *ttask_status(tenv *e, const char *token, const char *task_id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/tasks/%s", task_id);
    json_t *o = NULL;
    int st = treq(e, "GET", path, token, NULL, &o);
    char *s = strdup(st == 200 ? jstr(o, "status") : "");
    json_decref(o);
    return s;
}

static inline void thex(const uint8_t *k, size_t n, char *out)
{
    mt_hex_encode(k, n, out);
}

/* A cmocka fixture: a fresh core with the admin and one user, alice, both
 * logged in (tfx_setup / tfx_teardown as the setup and teardown). */
typedef struct tfx {
    tenv e;
    char *admin, *alice;
} tfx;

static inline int tfx_setup(void **state)
{
    tfx *f = calloc(1, sizeof *f);
    tenv_init(&f->e, NULL);
    f->admin = tlogin(&f->e, "admin", ADMIN_PW);
    tadd_user(&f->e, f->admin, "alice");
    f->alice = tlogin(&f->e, "alice", USER_PW);
    *state = f;
    return 0;
}

static inline int tfx_teardown(void **state)
{
    tfx *f = *state;
    free(f->admin);
    free(f->alice);
    tenv_free(&f->e);
    free(f);
    return 0;
}

#endif
