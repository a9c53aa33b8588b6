/* Executor leases across a store outage (issue 14, docs/design.md "Executor
 * leases"): the PostgreSQL of tests/pg/pg-temp.sh (argv[1] its URL, argv[2]
 * its directory, argv[3] pg-temp.sh) is halted for longer than the lease
 * while a remote task runs. Renewals fail meanwhile (the executor API answers
 * them 503); once the store is back the sweeper must not requeue the task
 * (its renewals could not reach the store) and the holder's renewals and
 * report are accepted again. Then, for a second claim whose holder never
 * renews (a dead executor), the lease still expires after the outage
 * handling, the task is requeued, and the dead holder's late report is
 * refused by fencing while the new holder's is stored.
 *
 * Then (issue 14 review findings, both fail without their fix):
 *  - a flapping store: every ended outage used to extend every live lease
 *    again, so a dead executor's task was held as long as the connection
 *    kept flapping. Two outages in a row now extend a never-renewed lease
 *    once (tasks.lease_graced), while a lease renewed between them is
 *    extended again;
 *  - a mixed cluster: a task whose lease ran out is claimed by another
 *    node's local scheduler (a second mt_core on the same store) and keeps
 *    its old fencing token with lease_until 0. The remote lease sweeper must
 *    not take that local run for an expired lease (it requeued it), and the
 *    old holder's renewal and report must be refused (they were accepted);
 *  - the host deletes the lease MAC of a requeued task and resets its token
 *    and count: the next claim handed out the old holder's token and secret
 *    again (its report was stored); now the claim fails the task;
 *  - then the host sets lease_until on that local run (also with run_attempt
 *    put back): the lease MAC (v2) binds the kind and the claim, so the old
 *    holder's report, renewal and transfer are still refused (the report was
 *    stored before). This part and the upgrade of v1 lease MACs (migration
 *    16) also run on SQLite (argv[1] "sqlite": test_lease_outage_sqlite).
 *
 * Waits are bounded polls; the outage is made longer than the lease by
 * waiting for it (a precondition, not a timing assertion). */
#include "test_core_util.h"

#include <time.h>

#include "core_internal.h" /* store_int */
#include "mt_remote_sched.h"

#ifndef MT_WORKER_TEST_PATH
#error "MT_WORKER_TEST_PATH must name the mesatee-worker-test executable"
#endif

#define LEASE_MS 2000u

static const char *g_url, *g_pgdir, *g_pgtemp;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pg(const char *verb)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s' %s '%s'", g_pgtemp, verb, g_pgdir);
    if (system(cmd) != 0)
        fail_msg("%s failed", cmd);
}

/* One integer from the store through the core's connection (the core
 * reconnects by itself). */
static int64_t qint(mt_core *c, const char *sql, const char *tid)
{
    int64_t v = -1;
    bool found = false;
    mt_err err;
    pthread_mutex_lock(&c->mu);
    mt_status rc = store_int(c->db, &err, &v, &found, sql, tid);
    pthread_mutex_unlock(&c->mu);
    if (rc)
        fail_msg("%s: %s", sql, err.msg);
    return found ? v : -1;
}

static void invoke(tenv *e, const char *tok, const char *fn, char tid[33])
{
    json_t *o = NULL;
    assert_int_equal(treqf(e, "POST", "/v1/tasks", tok, &o,
                           "{\"function_id\":\"%s\",\"arguments\":{\"message\":\"m\"}}", fn),
                     201);
    snprintf(tid, 33, "%s", jstr(o, "task_id"));
    json_decref(o);
    char path[160];
    snprintf(path, sizeof path, "/v1/tasks/%s/approve", tid);
    assert_int_equal(treq(e, "POST", path, tok, NULL, &o), 200);
    json_decref(o);
    snprintf(path, sizeof path, "/v1/tasks/%s/invoke", tid);
    assert_int_equal(treq(e, "POST", path, tok, NULL, &o), 200);
    json_decref(o);
}

typedef struct claim {
    char task_id[33];
    json_int_t fence;
    char secret[65];
} claim;

/* Claims the next staged task (polling: the claim may meet a busy store). */
static void claim_next(mt_remote_sched *rs, claim *c)
{
    json_t *job = NULL;
    mt_err err;
    for (int i = 0; i < 600 && !job; i++) {
        mt_status rc = mt_remote_sched_claim(rs, &job, &err);
        if (rc && rc != MT_EUNAVAIL)
            fail_msg("claim: %s", err.msg);
        if (!job)
            sleep_ms(100);
    }
    assert_non_null(job);
    snprintf(c->task_id, sizeof c->task_id, "%s", jstr(job, "task_id"));
    json_t *l = json_object_get(job, "lease");
    assert_non_null(l);
    c->fence = json_integer_value(json_object_get(l, "fence"));
    snprintf(c->secret, sizeof c->secret, "%s", json_string_value(json_object_get(l, "secret")));
    assert_true(c->fence > 0);
    json_decref(job);
}

static mt_status renew(mt_remote_sched *rs, const claim *c, mt_err *err)
{
    char body[256];
    snprintf(body, sizeof body, "{\"task_id\":\"%s\",\"fence\":%lld,\"secret\":\"%s\"}",
             c->task_id, (long long)c->fence, c->secret);
    json_t *ans = NULL;
    mt_status rc = mt_remote_sched_renew(rs, (const uint8_t *)body, strlen(body), &ans, err);
    json_decref(ans);
    return rc;
}

static mt_status report(mt_remote_sched *rs, const claim *c, mt_err *err)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"task_id\":\"%s\",\"fence\":%lld,\"lease_secret\":\"%s\",\"ok\":true,"
             "\"return_value\":\"holder %lld\"}",
             c->task_id, (long long)c->fence, c->secret, (long long)c->fence);
    return mt_remote_sched_report(rs, (const uint8_t *)body, strlen(body), err);
}

/* Sweeps until a sweep reaches the store (after an outage). */
static void sweep_ok(mt_remote_sched *rs)
{
    mt_err err;
    for (int i = 0; i < 600; i++) {
        if (mt_remote_sched_sweep(rs, &err) == MT_OK)
            return;
        sleep_ms(100);
    }
    fail_msg("the sweep never reached the store again: %s", err.msg);
}

/* Halts the store until a sweep fails (this process has seen the outage
 * begin), then resumes it and sweeps until the outage is answered. */
static void flap(mt_remote_sched *rs)
{
    uint64_t before, after;
    int64_t since;
    mt_db_outages(&before, &since);
    pg("halt");
    mt_err err;
    bool failed = false;
    for (int i = 0; i < 600 && !failed; i++) {
        failed = mt_remote_sched_sweep(rs, &err) != MT_OK;
        if (!failed)
            sleep_ms(100);
    }
    assert_true(failed);
    pg("resume");
    sweep_ok(rs);
    mt_db_outages(&after, &since);
    assert_true(after > before);
}

static void test_flapping_store(tenv *e, mt_remote_sched *rs, const char *tok, const char *fn)
{
    mt_err err;
    /* leases long enough that the second outage begins while the first
     * extension is live (else the old code would not extend it either) */
    const uint32_t lease = 60000;
    assert_int_equal(mt_remote_sched_set_leases(rs, lease, 3, &err), MT_OK);
    char dead_id[33], live_id[33];
    invoke(e, tok, fn, dead_id);
    claim dead;
    claim_next(rs, &dead);
    assert_string_equal(dead.task_id, dead_id);
    invoke(e, tok, fn, live_id);
    claim live;
    claim_next(rs, &live);
    assert_string_equal(live.task_id, live_id);

    flap(rs);
    int64_t dead1 = qint(e->core, "SELECT lease_until FROM tasks WHERE task_id = ?", dead_id);
    int64_t live1 = qint(e->core, "SELECT lease_until FROM tasks WHERE task_id = ?", live_id);
    assert_int_equal(qint(e->core, "SELECT lease_graced FROM tasks WHERE task_id = ?", dead_id),
                     1);
    /* the live executor renews after the store is back: re-armed */
    assert_int_equal(renew(rs, &live, &err), MT_OK);
    assert_int_equal(qint(e->core, "SELECT lease_graced FROM tasks WHERE task_id = ?", live_id),
                     0);
    live1 = qint(e->core, "SELECT lease_until FROM tasks WHERE task_id = ?", live_id);

    flap(rs);
    /* the dead executor's lease was not extended again; the renewed one was */
    assert_int_equal(qint(e->core, "SELECT lease_until FROM tasks WHERE task_id = ?", dead_id),
                     dead1);
    assert_true(qint(e->core, "SELECT lease_until FROM tasks WHERE task_id = ?", live_id) >
                live1);
    /* both out of the way of the next step (the "dead" holder still holds
     * its lease: its report is stored) */
    assert_int_equal(report(rs, &live, &err), MT_OK);
    assert_int_equal(report(rs, &dead, &err), MT_OK);
    assert_int_equal(mt_remote_sched_set_leases(rs, LEASE_MS, 3, &err), MT_OK);
}

/* A second node with a local scheduler (same store, same platform keys)
 * claims a task whose lease ran out. */
static void test_local_run_after_lease(tenv *e, mt_remote_sched *rs, const char *tok)
{
    mt_err err;
    /* a task that never ends on its own (echo made __test_spin, resealed) */
    json_t *o = NULL;
    assert_int_equal(treq(e, "POST", "/v1/functions", tok,
                          "{\"name\":\"spin\",\"builtin\":\"echo\",\"arguments\":[{\"name\":"
                          "\"message\",\"default\":\"hi\",\"overridable\":true}]}",
                          &o),
                     201);
    char fn[33], sql[200];
    snprintf(fn, sizeof fn, "%s", jstr(o, "function_id"));
    json_decref(o);
    snprintf(sql, sizeof sql,
             "UPDATE functions SET builtin = '__test_spin' WHERE function_id = '%s'", fn);
    pthread_mutex_lock(&e->core->mu);
    mt_status rc = store_run(e->core->db, &err, NULL, sql);
    if (!rc)
        rc = integ_function_seal(e->core, e->core->db, fn, &err);
    pthread_mutex_unlock(&e->core->mu);
    assert_int_equal(rc, MT_OK);

    /* an executor claims it and dies: the lease runs out, back in the queue */
    char tid[33];
    invoke(e, tok, fn, tid);
    claim dead;
    claim_next(rs, &dead);
    assert_string_equal(dead.task_id, tid);
    bool requeued = false;
    for (int i = 0; i < 1200 && !requeued; i++) {
        sweep_ok(rs);
        requeued = qint(e->core, "SELECT lease_expired FROM tasks WHERE task_id = ?", tid) == 1;
        if (!requeued)
            sleep_ms(100);
    }
    assert_true(requeued);

    /* node B, local scheduler: claims it (the old token stays) */
    tenv b = *e;
    b.cfg.keep_leased = false;
    b.core = NULL;
    if (mt_core_open(&b.cfg, b.tee, &b.core, &err))
        fail_msg("mt_core_open (node B): %s", err.msg);
    assert_int_equal(mt_core_start_scheduler(b.core, &err), MT_OK);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM tasks WHERE task_id = ? AND status = 'running' AND "
             "run_node = '%s'",
             b.core->node_id);
    for (int i = 0; i < 600 && qint(e->core, sql, tid) != 1; i++)
        sleep_ms(100);
    assert_int_equal(qint(e->core, sql, tid), 1);
    assert_int_equal(qint(e->core, "SELECT lease_fence FROM tasks WHERE task_id = ?", tid),
                     dead.fence);

    /* the remote lease sweeper leaves the local run alone (it used to
     * requeue it as an expired lease, lease_until 0 being in the past) */
    for (int i = 0; i < 5; i++) {
        sweep_ok(rs);
        sleep_ms(50);
    }
    assert_int_equal(qint(e->core, sql, tid), 1);
    assert_int_equal(qint(e->core, "SELECT lease_expired FROM tasks WHERE task_id = ?", tid), 1);
    char obj[64];
    snprintf(obj, sizeof obj, "task:%s", tid);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM audit WHERE object = ? AND action = "
                                   "'task requeued (lease expired)'",
                          obj),
                     1);
    /* the old holder can neither renew nor report the local run */
    assert_int_equal(renew(rs, &dead, &err), MT_ECONFLICT);
    assert_int_equal(report(rs, &dead, &err), MT_ECONFLICT);
    assert_int_equal(qint(e->core, sql, tid), 1);

    /* the host makes the local run look like the old lease again: it sets
     * lease_until (and, second round, also puts run_attempt back to the
     * lease's claim). The lease MAC binds the kind and the claim, and the
     * local claim re-MACed the row, so the old holder's report, renewal and
     * transfer are still refused (before, the report was stored) */
    for (int round = 0; round < 2; round++) {
        char tamper[256];
        snprintf(tamper, sizeof tamper,
                 "UPDATE tasks SET lease_until = %lld%s WHERE task_id = '%s'",
                 (long long)(now_ms() + 600000), round ? ", run_attempt = run_attempt - 1" : "",
                 tid);
        pthread_mutex_lock(&e->core->mu);
        rc = store_run(e->core->db, &err, NULL, tamper);
        pthread_mutex_unlock(&e->core->mu);
        assert_int_equal(rc, MT_OK);
        assert_true(qint(e->core, "SELECT lease_until FROM tasks WHERE task_id = ?", tid) > 0);
        mt_status r1 = report(rs, &dead, &err);
        if (r1 == MT_OK)
            fail_msg("round %d: the old holder's report on a local run was stored", round);
        assert_int_equal(r1, MT_EINTERNAL);
        assert_non_null(strstr(err.msg, "integrity check failed: lease"));
        assert_int_equal(renew(rs, &dead, &err), MT_EINTERNAL);
        mt_rxfer x;
        memset(&x, 0, sizeof x);
        snprintf(x.task_id, sizeof x.task_id, "%s", dead.task_id);
        x.fence = (uint64_t)dead.fence;
        snprintf(x.secret, sizeof x.secret, "%s", dead.secret);
        char xpath[4096 + 32];
        assert_int_equal(mt_remote_sched_xfer(rs, &x, false, xpath, &err), MT_EINTERNAL);
        assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND "
                                       "status = 'running'",
                              tid),
                         1);
    }
    /* undone: the row is B's local run again */
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET lease_until = 0, run_attempt = run_attempt + 1 WHERE task_id = "
             "'%s'",
             tid);
    pthread_mutex_lock(&e->core->mu);
    rc = store_run(e->core->db, &err, NULL, sql);
    pthread_mutex_unlock(&e->core->mu);
    assert_int_equal(rc, MT_OK);

    /* out of the way: the run stops once its row is no longer its claim */
    snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'canceled' WHERE task_id = '%s'", tid);
    pthread_mutex_lock(&e->core->mu);
    rc = store_run(e->core->db, &err, NULL, sql);
    pthread_mutex_unlock(&e->core->mu);
    assert_int_equal(rc, MT_OK);
    mt_core_close(b.core);
}

static void exec_sql(mt_core *c, const char *sql)
{
    mt_err err;
    pthread_mutex_lock(&c->mu);
    mt_status rc = store_run(c->db, &err, NULL, sql);
    pthread_mutex_unlock(&c->mu);
    if (rc)
        fail_msg("%s: %s", sql, err.msg);
}

/* The lease MAC's version 2 (binds the claim and the kind) comes with a
 * migration that re-MACs the leases of an older store: a v1 MAC that
 * verifies becomes its v2 MAC (the holder goes on renewing and reports),
 * one that does not stays refused. Made here by writing v1 MACs and
 * taking the store's last schema version back, then opening another core
 * on it (whose open migrates). */
static void test_lease_mac_upgrade(tenv *e, mt_remote_sched *rs, const char *tok,
                                   const char *fn)
{
    mt_err err;
    assert_int_equal(mt_remote_sched_set_leases(rs, 600000, 3, &err), MT_OK);
    char t1[33], t2[33];
    claim h1, h2;
    invoke(e, tok, fn, t1);
    claim_next(rs, &h1);
    assert_string_equal(h1.task_id, t1);
    invoke(e, tok, fn, t2);
    claim_next(rs, &h2);
    assert_string_equal(h2.task_id, t2);
    /* as a mesatee before the migration wrote them: v1 over (task, token,
     * count); t2's over another token (edited outside mesatee) */
    char text[128], v1[65], sql[512];
    const claim *h[2] = {&h1, &h2};
    for (int i = 0; i < 2; i++) {
        snprintf(text, sizeof text, "%s\n%lld\n0", h[i]->task_id,
                 (long long)h[i]->fence + (i ? 1 : 0));
        assert_int_equal(integ_mac_text(e->core->integ_key, "mesatee-task-lease/v1", text, v1,
                                         &err),
                         MT_OK);
        snprintf(sql, sizeof sql, "UPDATE tasks SET lease_mac = '%s' WHERE task_id = '%s'", v1,
                 h[i]->task_id);
        exec_sql(e->core, sql);
    }
    /* t3 (SQLite, whose text may be any bytes): a MAC edited into invalid
     * UTF-8, which made the migration fail ("out of memory"); it must stay
     * refused like any bad MAC. t4: a task of a store before the migration
     * that a node ran locally and requeued: claimed once, no MAC (then "never
     * leased"); the migration gives it the MAC of that state, so its next
     * claim is not refused for a missing MAC. */
    bool sqlite = mt_db_backend_of(e->core->db) == MT_DB_SQLITE;
    char t3[33] = "", t4[33];
    claim h3, h4;
    if (sqlite) {
        invoke(e, tok, fn, t3);
        claim_next(rs, &h3);
        assert_string_equal(h3.task_id, t3);
        snprintf(sql, sizeof sql,
                 "UPDATE tasks SET lease_mac = CAST(X'FF41' AS TEXT) WHERE task_id = '%s'", t3);
        exec_sql(e->core, sql);
    }
    invoke(e, tok, fn, t4);
    claim_next(rs, &h4);
    assert_string_equal(h4.task_id, t4);
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET lease_mac = NULL, lease_fence = 0, lease_expired = 0, "
             "lease_until = 0, status = 'staged' WHERE task_id = '%s'",
             t4);
    exec_sql(e->core, sql);
    /* v1 MACs are not accepted as they are */
    assert_int_equal(renew(rs, &h1, &err), MT_EINTERNAL);
    snprintf(sql, sizeof sql, "DELETE FROM schema_version WHERE version >= %zu",
             store_marker_version(STORE_LEASE_V2_MARKER)); /* it and any after it */
    exec_sql(e->core, sql);
    tenv b = *e;
    b.core = NULL;
    if (mt_core_open(&b.cfg, b.tee, &b.core, &err))
        fail_msg("mt_core_open (migrating): %s", err.msg);
    mt_core_close(b.core);
    assert_int_equal(qint(e->core, "SELECT max(version) FROM schema_version WHERE ? <> ''", "x"),
                     (int64_t)store_schema_version());
    /* t1's holder renews and reports as before; t2's lease stays refused */
    assert_int_equal(renew(rs, &h1, &err), MT_OK);
    assert_int_equal(renew(rs, &h2, &err), MT_EINTERNAL);
    assert_non_null(strstr(err.msg, "integrity check failed: lease"));
    if (report(rs, &h1, &err) != MT_OK)
        fail_msg("the holder's report after the upgrade: %s", err.msg);
    assert_int_equal(report(rs, &h2, &err), MT_EINTERNAL);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'finished'",
                          t1),
                     1);
    snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'canceled' WHERE task_id = '%s'", t2);
    exec_sql(e->core, sql);
    if (sqlite) {
        assert_int_equal(renew(rs, &h3, &err), MT_EINTERNAL);
        assert_non_null(strstr(err.msg, "integrity check failed: lease"));
        snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'canceled' WHERE task_id = '%s'",
                 t3);
        exec_sql(e->core, sql);
    }
    assert_true(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND lease_mac IS "
                              "NOT NULL",
                     t4) == 1);
    claim n4;
    claim_next(rs, &n4);
    assert_string_equal(n4.task_id, t4);
    assert_int_equal(n4.fence, 1);
    if (report(rs, &n4, &err) != MT_OK)
        fail_msg("the report of a task claimed locally before the upgrade: %s", err.msg);
    assert_int_equal(mt_remote_sched_set_leases(rs, LEASE_MS, 3, &err), MT_OK);
}


/* The host deletes the lease MAC of a task whose lease expired and resets
 * its token and count (what a row never leased looked like before every
 * claim MACed its row): the next remote claim handed out the old holder's
 * token and secret again, and its late report was stored. Now the row is
 * refused: the claim fails the task, the old holder's report is refused. */
static void test_mac_deleted(tenv *e, mt_remote_sched *rs, const char *tok, const char *fn)
{
    mt_err err;
    char tid[33], sql[256];
    invoke(e, tok, fn, tid);
    claim dead;
    claim_next(rs, &dead);
    assert_string_equal(dead.task_id, tid);
    bool requeued = false;
    for (int i = 0; i < 1200 && !requeued; i++) {
        sweep_ok(rs);
        requeued = qint(e->core, "SELECT lease_expired FROM tasks WHERE task_id = ?", tid) == 1;
        if (!requeued)
            sleep_ms(100);
    }
    assert_true(requeued);
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET lease_mac = NULL, lease_fence = 0, lease_expired = 0 WHERE "
             "task_id = '%s'",
             tid);
    exec_sql(e->core, sql);
    json_t *job = NULL;
    mt_status rc = MT_EUNAVAIL;
    for (int i = 0; i < 600 && rc == MT_EUNAVAIL; i++) {
        rc = mt_remote_sched_claim(rs, &job, &err);
        if (rc == MT_EUNAVAIL)
            sleep_ms(100);
    }
    if (rc == MT_OK) {
        json_t *l = json_object_get(job, "lease");
        fail_msg("the tampered task was claimed again with token %lld (the old holder's: %lld)",
                 (long long)json_integer_value(json_object_get(l, "fence")),
                 (long long)dead.fence);
    }
    assert_int_equal(rc, MT_EINTERNAL);
    assert_non_null(strstr(err.msg, "integrity check failed: lease"));
    assert_null(job);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'failed'",
                          tid),
                     1);
    assert_int_not_equal(report(rs, &dead, &err), MT_OK);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'finished'",
                          tid),
                     0);
}

/* A core (keep_leased: a node with remote executors) on the test's store,
 * its remote scheduler, the admin's token and an echo function. */
static void lease_env_open(tenv *ep, mt_remote_sched **rsp, char **tokp, char fn[33])
{
    memset(ep, 0, sizeof *ep);
    snprintf(ep->dir, sizeof ep->dir, "/tmp/mt_lease_outage.XXXXXX");
    assert_non_null(mkdtemp(ep->dir));
    ep->cfg.admin_password = ADMIN_PW;
    ep->cfg.worker_path = MT_WORKER_TEST_PATH;
    ep->cfg.workers = 1;
    ep->cfg.keep_leased = true;
    ep->cfg.data_dir = ep->dir;
    ep->cfg.store_url = g_url;
    mt_err err;
    assert_int_equal(mt_tee_open("none", ep->dir, &ep->tee, &err), MT_OK);
    if (mt_core_open(&ep->cfg, ep->tee, &ep->core, &err))
        fail_msg("mt_core_open: %s", err.msg);
    mt_remote_sched *rs = NULL;
    assert_int_equal(mt_remote_sched_new(ep->core, &rs, &err), MT_OK);
    assert_int_equal(mt_remote_sched_set_leases(rs, LEASE_MS, 3, &err), MT_OK);
    char *tok = tlogin(ep, "admin", ADMIN_PW);
    json_t *o = NULL;
    assert_int_equal(treq(ep, "POST", "/v1/functions", tok,
                          "{\"name\":\"echo\",\"builtin\":\"echo\",\"arguments\":[{\"name\":"
                          "\"message\",\"default\":\"hi\",\"overridable\":true}]}",
                          &o),
                     201);
    snprintf(fn, 33, "%s", jstr(o, "function_id"));
    json_decref(o);
    *rsp = rs;
    *tokp = tok;
}

static void lease_env_close(tenv *e, mt_remote_sched *rs, char *tok)
{
    free(tok);
    mt_remote_sched_free(rs);
    mt_core_close(e->core);
    mt_tee_free(e->tee);
    tenv_rm(e->dir);
}

/* Both backends (no outage): a local run of a task that once had a lease. */
static void test_local_run_only(void **state)
{
    (void)state;
    tenv e;
    mt_remote_sched *rs;
    char *tok, fn[33];
    lease_env_open(&e, &rs, &tok, fn);
    test_mac_deleted(&e, rs, tok, fn);
    test_local_run_after_lease(&e, rs, tok);
    test_lease_mac_upgrade(&e, rs, tok, fn);
    lease_env_close(&e, rs, tok);
}

static void test_outage_longer_than_lease(void **state)
{
    (void)state;
    tenv e;
    mt_remote_sched *rs;
    char *tok, fn[33];
    lease_env_open(&e, &rs, &tok, fn);
    mt_err err;

    /* 1. an executor holds task A and renews it */
    char tid[33];
    invoke(&e, tok, fn, tid);
    claim a;
    claim_next(rs, &a);
    assert_string_equal(a.task_id, tid);
    assert_int_equal(renew(rs, &a, &err), MT_OK);
    int64_t until_before = qint(e.core, "SELECT lease_until FROM tasks WHERE task_id = ?", tid);

    /* 2. the store goes away for longer than the lease; the holder keeps
     * renewing (refused: the store is unreachable), the sweeper keeps
     * trying */
    pg("halt");
    int failed_renewals = 0;
    while (now_ms() < until_before + 2 * (int64_t)LEASE_MS) {
        if (renew(rs, &a, &err) != MT_OK)
            failed_renewals++;
        (void)mt_remote_sched_sweep(rs, &err);
        sleep_ms(LEASE_MS / 3);
    }
    assert_true(failed_renewals > 0);
    uint64_t outages_before;
    int64_t since;
    mt_db_outages(&outages_before, &since);
    pg("resume");

    /* 3. the sweeper runs first once the store is back: the lease that ran
     * out while renewals could not be stored is not expired... */
    sweep_ok(rs);
    uint64_t outages_after;
    mt_db_outages(&outages_after, &since);
    assert_true(outages_after > outages_before);
    assert_true(since > 0);
    assert_int_equal(qint(e.core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                  "'running'",
                          tid),
                     1);
    assert_int_equal(qint(e.core, "SELECT lease_fence FROM tasks WHERE task_id = ?", tid),
                     a.fence);
    assert_int_equal(qint(e.core, "SELECT lease_expired FROM tasks WHERE task_id = ?", tid), 0);
    /* ...the holder's renewals are accepted again, and so is its report */
    assert_int_equal(renew(rs, &a, &err), MT_OK);
    sweep_ok(rs);
    if (report(rs, &a, &err) != MT_OK)
        fail_msg("the holder's report after the outage: %s", err.msg);
    assert_int_equal(qint(e.core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                  "'finished'",
                          tid),
                     1);

    /* 4. a dead executor: task B is claimed and never renewed; its lease
     * still runs out and the task goes back to the queue */
    char tid_b[33];
    invoke(&e, tok, fn, tid_b);
    claim dead;
    claim_next(rs, &dead);
    assert_string_equal(dead.task_id, tid_b);
    bool requeued = false;
    for (int i = 0; i < 1200 && !requeued; i++) { /* up to 2 min on a loaded machine */
        sweep_ok(rs);
        requeued = qint(e.core, "SELECT lease_expired FROM tasks WHERE task_id = ?", tid_b) == 1;
        if (!requeued)
            sleep_ms(100);
    }
    assert_true(requeued);
    assert_int_equal(qint(e.core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                  "'staged'",
                          tid_b),
                     1);
    /* the next holder gets a newer fencing token; the dead holder's late
     * renewal and report are refused, the new holder's report is stored */
    claim next;
    claim_next(rs, &next);
    assert_string_equal(next.task_id, tid_b);
    assert_true(next.fence > dead.fence);
    assert_int_equal(renew(rs, &dead, &err), MT_ECONFLICT);
    assert_int_equal(report(rs, &dead, &err), MT_ECONFLICT);
    assert_int_equal(report(rs, &next, &err), MT_OK);
    assert_int_equal(qint(e.core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                  "'finished'",
                          tid_b),
                     1);
    /* task A ran under one lease: no requeue in the audit chain */
    char obj[64];
    snprintf(obj, sizeof obj, "task:%s", tid);
    assert_int_equal(qint(e.core, "SELECT count(*) FROM audit WHERE object = ? AND action = "
                                  "'task requeued (lease expired)'",
                          obj),
                     0);
    snprintf(obj, sizeof obj, "task:%s", tid_b);
    assert_int_equal(qint(e.core, "SELECT count(*) FROM audit WHERE object = ? AND action = "
                                  "'task requeued (lease expired)'",
                          obj),
                     1);

    test_flapping_store(&e, rs, tok, fn);
    test_local_run_after_lease(&e, rs, tok);
    test_lease_mac_upgrade(&e, rs, tok, fn);
    lease_env_close(&e, rs, tok);
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "sqlite")) {
        /* SQLite (no outage to make): the local run of a once-leased task */
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_local_run_only),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
    }
    if (argc < 4 || mt_db_url_backend(argv[1]) != MT_DB_PG) {
        fprintf(stderr, "SKIP: usage: test_lease_outage POSTGRES_URL PG_TEMP_DIR pg-temp.sh "
                        "(needs a store it can stop: tests/pg/pg-temp.sh)\n");
        return 77;
    }
    g_url = argv[1];
    g_pgdir = argv[2];
    g_pgtemp = argv[3];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outage_longer_than_lease),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
