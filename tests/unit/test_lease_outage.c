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
 *    16) also run on SQLite (argv[1] "sqlite": test_lease_outage_sqlite);
 *  - the host puts the whole tasks row back to its state before its first
 *    claim (every column, MAC-less as a row never claimed) after an
 *    executor claimed it: the next claim got the same token, claim count and
 *    hence the same lease secret, so the first holder renewed and reported
 *    as the new one; now every claim draws a claim nonce that the lease MAC
 *    and the secret bind (v3), and the first holder is fenced;
 *  - the upgrade of v2 lease MACs to v3 (the migration after 16): a valid
 *    one moves on (a requeued task is claimed and reported again), an edited
 *    one stays refused, a remote lease in flight is requeued (not counted
 *    as an expiry; its holder's secret had no nonce: fenced) or, with its
 *    cancellation asked, canceled. Both parts run on both backends;
 *  - (lease review, Low findings) a lease that ended without a new claim
 *    (outcome stored, last expiry) whose status the host sets back to
 *    running: the old holder stays fenced (the outcome re-MACs the row
 *    under a fresh nonce); an output upload begun by the holder of a row
 *    later put back is refused at its commit; the lease migrations run
 *    again over a claimed row whose MAC the host deleted refuse the open
 *    without --seal-legacy-store, and do not log valid MACs as refused.
 *
 * Waits are bounded polls; the outage is made longer than the lease by
 * waiting for it (a precondition, not a timing assertion). */
#include "test_core_util.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "core_internal.h" /* store_int */
#include "mt_ff.h"
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

/* mesatee_executor_reports_fenced_total of this process (/metrics). */
static uint64_t fenced_total(void)
{
    char *m = mt_remote_sched_metrics();
    assert_non_null(m);
    const char *k = "\nmesatee_executor_reports_fenced_total ";
    const char *p = strstr(m, k);
    assert_non_null(p);
    uint64_t v = strtoull(p + strlen(k), NULL, 10);
    free(m);
    return v;
}

static void xfer_refused(mt_remote_sched *rs, const claim *h, mt_status want)
{
    mt_rxfer x;
    mt_err err;
    memset(&x, 0, sizeof x);
    snprintf(x.task_id, sizeof x.task_id, "%s", h->task_id);
    x.fence = (uint64_t)h->fence;
    snprintf(x.secret, sizeof x.secret, "%s", h->secret);
    char xpath[4096 + 32];
    assert_int_equal(mt_remote_sched_xfer(rs, &x, false, xpath, &err), want);
}

/* Claims the next two staged tasks (a, b in any order) into ha, hb. */
static void claim_two(mt_remote_sched *rs, const char *a, const char *b, claim *ha, claim *hb)
{
    claim x, y;
    claim_next(rs, &x);
    claim_next(rs, &y);
    if (!strcmp(x.task_id, b)) {
        claim t = x;
        x = y;
        y = t;
    }
    assert_string_equal(x.task_id, a);
    assert_string_equal(y.task_id, b);
    *ha = x;
    *hb = y;
}

/* The host's copy of a task's whole tasks row (row_snap), written back
 * over every column later (row_restore; the columns read from the store's
 * catalogue). */
static void row_snap(tenv *e, const char *tid)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "CREATE TABLE rollback_snap AS SELECT * FROM tasks WHERE task_id = '%s'", tid);
    exec_sql(e->core, sql);
}

static void row_restore(tenv *e, const char *tid)
{
    mt_err err;
    bool sqlite = mt_db_backend_of(e->core->db) == MT_DB_SQLITE;
    json_t *cols = NULL;
    pthread_mutex_lock(&e->core->mu);
    mt_status rc = store_ids(e->core->db,
                             sqlite ? "SELECT name FROM pragma_table_info('tasks') WHERE ? <> ''"
                                    : "SELECT column_name FROM information_schema.columns WHERE "
                                      "table_name = 'tasks' AND table_schema = current_schema() "
                                      "AND ? <> ''",
                             "x", &cols, &err);
    pthread_mutex_unlock(&e->core->mu);
    assert_int_equal(rc, MT_OK);
    assert_true(json_array_size(cols) > 10);
    size_t cap = 4096, n = 0;
    char *up = malloc(cap);
    assert_non_null(up);
    n += (size_t)snprintf(up + n, cap - n, "UPDATE tasks SET ");
    size_t i;
    json_t *v;
    json_array_foreach(cols, i, v)
    {
        const char *c = json_string_value(v);
        n += (size_t)snprintf(up + n, cap - n, "%s\"%s\" = (SELECT \"%s\" FROM rollback_snap)",
                              i ? ", " : "", c, c);
        assert_true(n < cap);
    }
    n += (size_t)snprintf(up + n, cap - n, " WHERE task_id = '%s'", tid);
    assert_true(n < cap);
    exec_sql(e->core, up);
    free(up);
    json_decref(cols);
    exec_sql(e->core, "DROP TABLE rollback_snap");
}

/* An output upload under h's lease: begun and written (the bytes of body),
 * not committed. */
static untrusted_upload *upload_start(mt_remote_sched *rs, const claim *h, const char *body)
{
    mt_rxfer x;
    mt_err err;
    memset(&x, 0, sizeof x);
    snprintf(x.task_id, sizeof x.task_id, "%s", h->task_id);
    x.fence = (uint64_t)h->fence;
    snprintf(x.secret, sizeof x.secret, "%s", h->secret);
    snprintf(x.slot, sizeof x.slot, "out");
    untrusted_upload *u = NULL;
    if (mt_remote_sched_upload_begin(rs, &x, strlen(body), &u, &err))
        fail_msg("upload_begin: %s", err.msg);
    assert_int_equal(mt_remote_sched_upload_write(u, (const uint8_t *)body, strlen(body), &err),
                     MT_OK);
    return u;
}

/* Completes u as the executor API does (executor_api.c serve_output): the
 * lease checked again, then the commit; u is freed. */
static mt_status upload_finish(mt_remote_sched *rs, const claim *h, untrusted_upload *u,
                               char sha[65], mt_err *err)
{
    mt_rxfer x;
    memset(&x, 0, sizeof x);
    snprintf(x.task_id, sizeof x.task_id, "%s", h->task_id);
    x.fence = (uint64_t)h->fence;
    snprintf(x.secret, sizeof x.secret, "%s", h->secret);
    snprintf(x.slot, sizeof x.slot, "out");
    mt_status rc = mt_remote_sched_upload_recheck(rs, &x, err);
    if (!rc)
        rc = mt_remote_sched_upload_commit(u, sha, err);
    mt_remote_sched_upload_free(u);
    return rc;
}

/* Staged uploads are keyed by (task, fence), and after the host put a
 * task's row back to before its claim the next claim has the same fence
 * under another nonce (test_row_rollback). The earlier holder's upload,
 * begun while it held the lease, used to complete into the later holder's
 * staging place, over the later holder's upload, whose report then failed
 * the task (size or digest mismatch); now its commit is refused. */
static void test_upload_rollback(tenv *e, mt_remote_sched *rs, const char *tok)
{
    mt_err err;
    assert_int_equal(mt_remote_sched_set_leases(rs, 600000, 3, &err), MT_OK);
    json_t *o = NULL;
    assert_int_equal(treq(e, "POST", "/v1/functions", tok,
                          "{\"name\":\"lr\",\"builtin\":\"linear_regression_train\","
                          "\"arguments\":[{\"name\":\"label\",\"default\":\"y\"}],"
                          "\"inputs\":[{\"name\":\"in\"}],\"outputs\":[{\"name\":\"out\"}]}",
                          &o),
                     201);
    char fn[33], in_id[33], out_id[33], tid[33], kh[65], path[160], body[512];
    snprintf(fn, sizeof fn, "%s", jstr(o, "function_id"));
    json_decref(o);
    uint8_t key[32], *ct;
    size_t n;
    assert_int_equal(mt_random(key, sizeof key, &err), MT_OK);
    thex(key, 32, kh);
    assert_int_equal(mt_ff_encrypt(key, (const uint8_t *)"y\n1\n", 4, &ct, &n, &err), MT_OK);
    assert_int_equal(treq_raw(e, "POST", "/v1/objects", NULL, tok, ct, n, &o, NULL, NULL), 201);
    free(ct);
    snprintf(body, sizeof body, "{\"url\":\"%s\",\"key\":\"%s\"}", jstr(o, "url"), kh);
    json_decref(o);
    assert_int_equal(treq(e, "POST", "/v1/files/inputs", tok, body, &o), 201);
    snprintf(in_id, sizeof in_id, "%s", jstr(o, "file_id"));
    json_decref(o);
    assert_int_equal(treqf(e, "POST", "/v1/files/outputs", tok, &o, "{\"key\":\"%s\"}", kh),
                     201);
    snprintf(out_id, sizeof out_id, "%s", jstr(o, "file_id"));
    json_decref(o);
    if (treqf(e, "POST", "/v1/tasks", tok, &o,
              "{\"function_id\":\"%s\",\"inputs\":[{\"name\":\"in\",\"owners\":[\"admin\"]}],"
              "\"outputs\":[{\"name\":\"out\",\"owners\":[\"admin\"]}]}",
              fn) != 201)
        fail_msg("POST /v1/tasks: %s", terr_msg(o));
    snprintf(tid, sizeof tid, "%s", jstr(o, "task_id"));
    json_decref(o);
    snprintf(path, sizeof path, "/v1/tasks/%s/assign", tid);
    assert_int_equal(treqf(e, "POST", path, tok, &o,
                           "{\"inputs\":{\"in\":\"%s\"},\"outputs\":{\"out\":\"%s\"}}", in_id,
                           out_id),
                     200);
    json_decref(o);
    snprintf(path, sizeof path, "/v1/tasks/%s/approve", tid);
    assert_int_equal(treq(e, "POST", path, tok, NULL, &o), 200);
    json_decref(o);
    snprintf(path, sizeof path, "/v1/tasks/%s/invoke", tid);
    assert_int_equal(treq(e, "POST", path, tok, NULL, &o), 200);
    json_decref(o);
    row_snap(e, tid); /* staged, before the claim: the host's copy */

    claim a, c;
    claim_next(rs, &a);
    assert_string_equal(a.task_id, tid);
    untrusted_upload *ua = upload_start(rs, &a, "from the earlier holder");
    row_restore(e, tid);
    claim_next(rs, &c);
    assert_string_equal(c.task_id, tid);
    assert_int_equal(c.fence, a.fence);
    char sha[65], sha_a[65];
    const char *mine = "the current holder's";
    if (upload_finish(rs, &c, upload_start(rs, &c, mine), sha, &err))
        fail_msg("the current holder's upload: %s", err.msg);
    uint64_t fenced = fenced_total();
    mt_status rc = upload_finish(rs, &a, ua, sha_a, &err);
    if (rc == MT_OK)
        fail_msg("the earlier holder's upload completed into the current holder's staging place");
    assert_int_equal(rc, MT_ECONFLICT);
    assert_int_equal(fenced_total(), fenced + 1);
    snprintf(body, sizeof body,
             "{\"task_id\":\"%s\",\"fence\":%lld,\"lease_secret\":\"%s\",\"ok\":true,"
             "\"outputs\":{\"out\":{\"uploaded\":true,\"size\":%zu,\"sha256\":\"%s\"}}}",
             tid, (long long)c.fence, c.secret, strlen(mine), sha);
    if (mt_remote_sched_report(rs, (const uint8_t *)body, strlen(body), &err))
        fail_msg("the current holder's report: %s", err.msg);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'finished'",
                          tid),
                     1);
    assert_int_equal(mt_remote_sched_set_leases(rs, LEASE_MS, 3, &err), MT_OK);
}

/* The host puts the whole tasks row of a task back to what it was before
 * its first claim: every column (read from the store's catalogue), from a
 * copy taken then. Before the claim nonce the next claim had the same
 * token, claim count and kind as the first, so it handed out the first
 * holder's lease secret again: that holder (an attested executor that was
 * partitioned, say) renewed and reported as if it held the new lease. Now
 * the first holder is fenced (counted in
 * mesatee_executor_reports_fenced_total) and the new holder's renewal and
 * report go through. */
static void test_row_rollback(tenv *e, mt_remote_sched *rs, const char *tok, const char *fn)
{
    mt_err err;
    assert_int_equal(mt_remote_sched_set_leases(rs, 600000, 3, &err), MT_OK);
    char tid[33];
    invoke(e, tok, fn, tid);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND "
                                   "status = 'staged' AND run_attempt = 0 AND lease_mac IS NULL",
                          tid),
                     1);
    row_snap(e, tid);
    claim h1;
    claim_next(rs, &h1);
    assert_string_equal(h1.task_id, tid);
    assert_int_equal(renew(rs, &h1, &err), MT_OK);

    /* the whole row back, column by column */
    row_restore(e, tid);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND "
                                   "status = 'staged' AND run_attempt = 0 AND lease_mac IS NULL "
                                   "AND lease_fence = 0",
                          tid),
                     1);

    /* the next claim: the same token and claim count as the first... */
    claim h2;
    claim_next(rs, &h2);
    assert_string_equal(h2.task_id, tid);
    assert_int_equal(h2.fence, h1.fence);
    assert_int_equal(qint(e->core, "SELECT run_attempt FROM tasks WHERE task_id = ?", tid), 1);
    /* ...but another secret: the first holder is fenced off */
    if (!strcmp(h1.secret, h2.secret))
        fail_msg("the claim after the row's rollback handed out the first holder's secret");
    uint64_t fenced = fenced_total();
    assert_int_equal(renew(rs, &h1, &err), MT_ECONFLICT);
    assert_int_equal(report(rs, &h1, &err), MT_ECONFLICT);
    xfer_refused(rs, &h1, MT_ECONFLICT);
    assert_int_equal(fenced_total(), fenced + 3);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'running'",
                          tid),
                     1);
    /* the new holder renews and reports */
    assert_int_equal(renew(rs, &h2, &err), MT_OK);
    if (report(rs, &h2, &err) != MT_OK)
        fail_msg("the new holder's report: %s", err.msg);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'finished'",
                          tid),
                     1);
    assert_int_equal(mt_remote_sched_set_leases(rs, LEASE_MS, 3, &err), MT_OK);
}

/* As a mesatee of schema version 16 wrote it: the v2 lease MAC (no nonce)
 * over the row's token (+ fence_delta: an edit outside mesatee), count,
 * claim count and kind. */
static void set_v2_mac(tenv *e, const char *tid, int64_t fence_delta)
{
    mt_err err;
    int64_t fence = qint(e->core, "SELECT lease_fence FROM tasks WHERE task_id = ?", tid);
    int64_t expired = qint(e->core, "SELECT lease_expired FROM tasks WHERE task_id = ?", tid);
    int64_t attempt = qint(e->core, "SELECT run_attempt FROM tasks WHERE task_id = ?", tid);
    bool remote = qint(e->core, "SELECT lease_until FROM tasks WHERE task_id = ?", tid) > 0;
    char text[160], v2[65], sql[256];
    snprintf(text, sizeof text, "%s\n%lld\n%lld\n%lld\n%s", tid, (long long)(fence + fence_delta),
             (long long)expired, (long long)attempt, remote ? "remote" : "local");
    assert_int_equal(integ_mac_text(e->core->integ_key, "mesatee-task-lease/v2", text, v2, &err),
                     MT_OK);
    snprintf(sql, sizeof sql, "UPDATE tasks SET lease_mac = '%s' WHERE task_id = '%s'", v2, tid);
    exec_sql(e->core, sql);
}

/* Takes the store's schema back to before the migration carrying marker
 * and opens another core on it, whose open migrates (again). */
static mt_status reopen_migrating_as(tenv *e, const char *marker, bool seal_legacy,
                                     mt_err *err)
{
    char sql[128];
    size_t v = store_marked_version(marker);
    assert_true(v > 0);
    snprintf(sql, sizeof sql, "DELETE FROM schema_version WHERE version >= %zu", v);
    exec_sql(e->core, sql);
    tenv b = *e;
    b.core = NULL;
    b.cfg.seal_legacy_store = seal_legacy;
    mt_status rc = mt_core_open(&b.cfg, b.tee, &b.core, err);
    if (!rc) {
        mt_core_close(b.core);
        assert_int_equal(
            qint(e->core, "SELECT max(version) FROM schema_version WHERE ? <> ''", "x"),
            (int64_t)store_schema_version());
    }
    return rc;
}

static void reopen_migrating(tenv *e, const char *marker)
{
    mt_err err;
    if (reopen_migrating_as(e, marker, false, &err))
        fail_msg("mt_core_open (migrating): %s", err.msg);
}

static int64_t audit_count(tenv *e, const char *tid, const char *action)
{
    char obj[64], sql[160];
    snprintf(obj, sizeof obj, "task:%s", tid);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM audit WHERE object = ? AND action = '%s'",
             action);
    return qint(e->core, sql, obj);
}

/* Runs reopen_migrating_as with this process's stderr (the log) going to
 * log_path. */
static mt_status reopen_logged(tenv *e, const char *marker, const char *log_path, mt_err *err)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, 2) == 2);
    close(fd);
    mt_status rc = reopen_migrating_as(e, marker, false, err);
    fflush(stderr);
    assert_true(dup2(saved, 2) == 2);
    close(saved);
    return rc;
}

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* The host deletes the schema version rows from the lease MAC v2 migration
 * on (host-owned: the lease migrations run again at the next open), and the
 * MAC of a claimed task with its token and count reset (what a release
 * before v2 left for a task only ever claimed locally). The v1 -> v2 step
 * gave that row the MAC of its state, so its next claim was accepted and its
 * expiry count (max_attempts) reset; now such rows get a MAC only under
 * --seal-legacy-store and the open is refused. A re-run on a store without
 * such rows goes through and does not log valid v3 MACs as refused (the v1
 * step read every MAC as a v1 one). */
static void test_lease_mac_rerun(tenv *e, mt_remote_sched *rs, const char *tok, const char *fn)
{
    mt_err err;
    assert_int_equal(mt_remote_sched_set_leases(rs, 600000, 3, &err), MT_OK);
    char tid[33], sql[256], log_path[4200];
    snprintf(log_path, sizeof log_path, "%s/rerun.log", e->dir);
    invoke(e, tok, fn, tid);
    claim h;
    claim_next(rs, &h);
    assert_string_equal(h.task_id, tid);
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET lease_mac = NULL, lease_fence = 0, lease_expired = 0, lease_until "
             "= 0, status = 'staged' WHERE task_id = '%s'",
             tid);
    exec_sql(e->core, sql);
    mt_status rc = reopen_logged(e, STORE_LEASE_V2_MARKER, log_path, &err);
    if (rc == MT_OK)
        fail_msg("the lease migrations run again gave a claimed row whose MAC was deleted a "
                 "MAC (its next claim is accepted, its expiry count reset)");
    assert_int_equal(rc, MT_ECONFLICT);
    assert_non_null(strstr(err.msg, "--seal-legacy-store"));
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND lease_mac "
                                   "IS NULL",
                          tid),
                     1);
    /* without that row the migrations run again harmlessly, and quietly */
    snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'canceled' WHERE task_id = '%s'", tid);
    exec_sql(e->core, sql);
    assert_true(qint(e->core, "SELECT count(*) FROM tasks WHERE lease_mac IS NOT NULL AND ? <> ''",
                     "x") > 0);
    if (reopen_logged(e, STORE_LEASE_V2_MARKER, log_path, &err))
        fail_msg("mt_core_open (the lease migrations again): %s", err.msg);
    if (file_has(log_path, "left refused at the upgrade"))
        fail_msg("the migration run again logged valid lease MACs as refused");
    assert_int_equal(mt_remote_sched_set_leases(rs, LEASE_MS, 3, &err), MT_OK);
}

/* A lease that ended without a new claim: the host sets only the status
 * back to 'running'. After a stored outcome the row kept the holder's nonce,
 * so its renewal was accepted again; the outcome's transaction now re-MACs
 * the row under a fresh nonce. The same after the last expiry (expire_one
 * fails the task under a fresh nonce). */
static void test_ended_leases(tenv *e, mt_remote_sched *rs, const char *tok, const char *fn)
{
    mt_err err;
    char tid[33], sql[256];
    assert_int_equal(mt_remote_sched_set_leases(rs, 600000, 3, &err), MT_OK);
    invoke(e, tok, fn, tid);
    claim h;
    claim_next(rs, &h);
    assert_string_equal(h.task_id, tid);
    if (report(rs, &h, &err) != MT_OK)
        fail_msg("report: %s", err.msg);
    snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'running' WHERE task_id = '%s'", tid);
    exec_sql(e->core, sql);
    uint64_t fenced = fenced_total();
    mt_status rc = renew(rs, &h, &err);
    if (rc == MT_OK)
        fail_msg("a finished lease's holder renewed after the host set the status back");
    assert_int_equal(rc, MT_ECONFLICT);
    assert_int_equal(report(rs, &h, &err), MT_ECONFLICT);
    assert_int_equal(fenced_total(), fenced + 2);
    snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'canceled' WHERE task_id = '%s'", tid);
    exec_sql(e->core, sql);

    /* the last attempt's lease runs out: failed, under a fresh nonce */
    assert_int_equal(mt_remote_sched_set_leases(rs, LEASE_MS, 1, &err), MT_OK);
    invoke(e, tok, fn, tid);
    claim_next(rs, &h);
    assert_string_equal(h.task_id, tid);
    bool failed = false;
    for (int i = 0; i < 1200 && !failed; i++) {
        sweep_ok(rs);
        failed = qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                               "'failed'",
                      tid) == 1;
        if (!failed)
            sleep_ms(100);
    }
    assert_true(failed);
    assert_int_equal(qint(e->core, "SELECT lease_expired FROM tasks WHERE task_id = ?", tid), 1);
    snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'running' WHERE task_id = '%s'", tid);
    exec_sql(e->core, sql);
    assert_true(qint(e->core, "SELECT lease_until FROM tasks WHERE task_id = ?", tid) > 0);
    assert_int_equal(renew(rs, &h, &err), MT_ECONFLICT);
    snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'failed' WHERE task_id = '%s'", tid);
    exec_sql(e->core, sql);
    assert_int_equal(mt_remote_sched_set_leases(rs, LEASE_MS, 3, &err), MT_OK);
}

/* The lease MAC's version 3 (a claim nonce) comes with a migration that
 * moves v2 MACs on: one that verifies gets its v3 MAC under a fresh nonce,
 * one that does not stays refused, and a remote lease in flight (whose
 * executor holds a secret without a nonce, which nothing accepts any more)
 * is requeued at once, without counting an expiry, or canceled when that
 * was asked. Made by writing v2 MACs and taking the schema back to before
 * that migration, then opening another core on the store. */
static void test_lease_mac_v3_upgrade(tenv *e, mt_remote_sched *rs, const char *tok,
                                      const char *fn)
{
    mt_err err;
    assert_int_equal(mt_remote_sched_set_leases(rs, 600000, 3, &err), MT_OK);
    char t5[33], t6[33], t7[33], t8[33], sql[256];
    claim h5, h6, h7, h8;
    /* t5: in flight; t6: in flight, its MAC over another token; t7: once
     * leased, its lease ran out, staged again; t8: in flight, cancel asked */
    invoke(e, tok, fn, t5);
    claim_next(rs, &h5);
    assert_string_equal(h5.task_id, t5);
    invoke(e, tok, fn, t6);
    claim_next(rs, &h6);
    assert_string_equal(h6.task_id, t6);
    invoke(e, tok, fn, t7);
    claim_next(rs, &h7);
    assert_string_equal(h7.task_id, t7);
    invoke(e, tok, fn, t8);
    claim_next(rs, &h8);
    assert_string_equal(h8.task_id, t8);
    snprintf(sql, sizeof sql,
             "UPDATE tasks SET status = 'staged', lease_until = 0, lease_expired = 1 WHERE "
             "task_id = '%s'",
             t7);
    exec_sql(e->core, sql);
    snprintf(sql, sizeof sql, "UPDATE tasks SET cancel_requested = 1 WHERE task_id = '%s'", t8);
    exec_sql(e->core, sql);
    set_v2_mac(e, t5, 0);
    set_v2_mac(e, t6, 1);
    set_v2_mac(e, t7, 0);
    set_v2_mac(e, t8, 0);
    /* a v2 MAC is no v3 MAC */
    assert_int_equal(renew(rs, &h5, &err), MT_EINTERNAL);
    assert_non_null(strstr(err.msg, "integrity check failed: lease"));

    reopen_migrating(e, STORE_LEASE_V3_MARKER);

    /* t5: requeued by the upgrade (its place and token kept, no expiry
     * counted); its holder is fenced */
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'staged' AND lease_until = 0 AND lease_expired = 0",
                          t5),
                     1);
    assert_int_equal(qint(e->core, "SELECT lease_fence FROM tasks WHERE task_id = ?", t5),
                     h5.fence);
    assert_int_equal(audit_count(e, t5, "task requeued (upgrade)"), 1);
    uint64_t fenced = fenced_total();
    assert_int_equal(renew(rs, &h5, &err), MT_ECONFLICT);
    assert_int_equal(fenced_total(), fenced + 1);
    /* its report too, counted (docs/cluster.md "Upgrading across the claim
     * nonce"; it was refused as "not running" without being counted) */
    assert_int_equal(report(rs, &h5, &err), MT_ECONFLICT);
    assert_int_equal(fenced_total(), fenced + 2);
    /* t8: canceled, as asked */
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'canceled'",
                          t8),
                     1);
    assert_int_equal(audit_count(e, t8, "task canceled"), 1);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND "
                                   "failure_reason = 'canceled while running'",
                          t8),
                     1);
    assert_int_equal(renew(rs, &h8, &err), MT_ECONFLICT);
    assert_non_null(strstr(err.msg, "no longer running"));
    /* t6: still refused */
    assert_int_equal(renew(rs, &h6, &err), MT_EINTERNAL);
    assert_non_null(strstr(err.msg, "integrity check failed: lease"));
    assert_int_equal(audit_count(e, t6, "task requeued (upgrade)"), 0);
    snprintf(sql, sizeof sql, "UPDATE tasks SET status = 'canceled' WHERE task_id = '%s'", t6);
    exec_sql(e->core, sql);
    /* t5 and t7 are claimed again (their v3 MACs verify at the claim), under
     * the next token, and their new holders' reports are stored */
    claim n5, n7;
    claim_two(rs, t5, t7, &n5, &n7);
    assert_int_equal(n5.fence, h5.fence + 1);
    assert_int_equal(n7.fence, h7.fence + 1);
    assert_int_equal(renew(rs, &n5, &err), MT_OK);
    if (report(rs, &n5, &err) != MT_OK)
        fail_msg("the report of a task requeued by the upgrade: %s", err.msg);
    if (report(rs, &n7, &err) != MT_OK)
        fail_msg("the report of a task staged at the upgrade: %s", err.msg);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'finished'",
                          t5),
                     1);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'finished'",
                          t7),
                     1);
    assert_int_equal(mt_remote_sched_set_leases(rs, LEASE_MS, 3, &err), MT_OK);
}

/* The lease MAC's version 2 (binds the claim and the kind) comes with a
 * migration that re-MACs the leases of an older store: a v1 MAC that
 * verifies becomes its v2 MAC, and then (the v3 migration in the same
 * open) its v3 MAC; one that does not stays refused. A lease in flight is
 * requeued by the v3 step (its holder's secret had no claim nonce) and
 * runs again under a new lease. Made here by writing v1 MACs and taking
 * the store's schema back to before the v2 migration, then opening
 * another core on it (whose open migrates). */
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
    /* t4 (claimed, no MAC) gets one only with the operator's measured
     * consent: nothing in the store tells it from a row whose MAC the host
     * deleted (test_lease_mac_rerun) */
    assert_int_equal(reopen_migrating_as(e, STORE_LEASE_V2_MARKER, false, &err), MT_ECONFLICT);
    assert_non_null(strstr(err.msg, "--seal-legacy-store"));
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND lease_mac "
                                   "IS NULL",
                          t4),
                     1);
    if (reopen_migrating_as(e, STORE_LEASE_V2_MARKER, true, &err))
        fail_msg("mt_core_open (migrating, --seal-legacy-store): %s", err.msg);
    /* t1's lease was valid: moved on to v3 and requeued (its holder's
     * secret has no claim nonce: fenced); t2's lease stays refused */
    assert_int_equal(renew(rs, &h1, &err), MT_ECONFLICT);
    assert_int_equal(audit_count(e, t1, "task requeued (upgrade)"), 1);
    assert_int_equal(renew(rs, &h2, &err), MT_EINTERNAL);
    assert_non_null(strstr(err.msg, "integrity check failed: lease"));
    assert_int_equal(report(rs, &h2, &err), MT_EINTERNAL);
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
    /* t1 runs again under the next token; t4 is claimed (not refused for
     * a missing MAC); both reports are stored */
    claim n1, n4;
    claim_two(rs, t1, t4, &n1, &n4);
    assert_int_equal(n1.fence, h1.fence + 1);
    assert_int_equal(n4.fence, 1);
    if (report(rs, &n1, &err) != MT_OK)
        fail_msg("the report of a lease requeued by the upgrade: %s", err.msg);
    assert_int_equal(qint(e->core, "SELECT count(*) FROM tasks WHERE task_id = ? AND status = "
                                   "'finished'",
                          t1),
                     1);
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
/* One text column of one row through the core's connection ("" when none). */
static void qtext(mt_core *c, const char *sql, const char *id, char *out, size_t n)
{
    mt_err err;
    mt_db_stmt *st = NULL;
    mt_status rc = MT_OK;
    out[0] = '\0';
    pthread_mutex_lock(&c->mu);
    if (mt_db_prepare(c->db, sql, &st, &err) == MT_OK) {
        mt_db_bind_text(st, 1, id);
        if (mt_db_step(st, &rc, &err) == MT_DB_ROW)
            snprintf(out, n, "%s", mt_db_col_null(st, 0) ? "NULL" : mt_db_col_text(st, 0));
        mt_db_finalize(st);
    } else
        rc = MT_EINTERNAL;
    pthread_mutex_unlock(&c->mu);
    if (rc)
        fail_msg("%s: %s", sql, err.msg);
}

#define FILE_STATE_SQL                                                                             \
    "SELECT CAST(written AS TEXT) || '/' || COALESCE(CAST(size AS TEXT), 'NULL') || '/' || "       \
    "COALESCE(sha256, 'NULL') || '/' || mac FROM files WHERE file_id = ?"

/* An input file of tok's user holding plain (under a fresh key). */
static void add_input(tenv *e, const char *tok, const char *plain, char id[33])
{
    json_t *o = NULL;
    uint8_t key[32], *ct = NULL;
    size_t n = 0;
    mt_err err;
    assert_int_equal(mt_random(key, sizeof key, &err), MT_OK);
    assert_int_equal(mt_ff_encrypt(key, (const uint8_t *)plain, strlen(plain), &ct, &n, &err),
                     MT_OK);
    assert_int_equal(treq_raw(e, "POST", "/v1/objects", NULL, tok, ct, n, &o, NULL, NULL), 201);
    free(ct);
    char url[128], kh[65];
    snprintf(url, sizeof url, "%s", jstr(o, "url"));
    json_decref(o);
    thex(key, 32, kh);
    assert_int_equal(
        treqf(e, "POST", "/v1/files/inputs", tok, &o, "{\"url\":\"%s\",\"key\":\"%s\"}", url, kh),
        201);
    snprintf(id, 33, "%s", jstr(o, "file_id"));
    json_decref(o);
}

/* A psi task of fn (inputs a, b; output r) of the admin, assigned and
 * approved (and invoked when invoke). */
static void psi_task(tenv *e, const char *tok, const char *fn, const char *a, const char *b,
                     const char *r, bool run, char tid[33])
{
    json_t *o = NULL;
    assert_int_equal(treqf(e, "POST", "/v1/tasks", tok, &o,
                           "{\"function_id\":\"%s\",\"inputs\":[{\"name\":\"a\",\"owners\":"
                           "[\"admin\"]},{\"name\":\"b\",\"owners\":[\"admin\"]}],\"outputs\":"
                           "[{\"name\":\"r\",\"owners\":[\"admin\"]}]}",
                           fn),
                     201);
    snprintf(tid, 33, "%s", jstr(o, "task_id"));
    json_decref(o);
    const char *acts[3] = {"assign", "approve", "invoke"};
    for (int i = 0; i < (run ? 3 : 2); i++) {
        char path[160];
        snprintf(path, sizeof path, "/v1/tasks/%s/%s", tid, acts[i]);
        if (i == 0)
            assert_int_equal(treqf(e, "POST", path, tok, &o,
                                   "{\"inputs\":{\"a\":\"%s\",\"b\":\"%s\"},\"outputs\":{\"r\":"
                                   "\"%s\"}}",
                                   a, b, r),
                             200);
        else
            assert_int_equal(treq(e, "POST", path, tok, NULL, &o), 200);
        json_decref(o);
    }
}

/* "Verified values only" on the remote paths: after an executor claimed
 * task x, the host re-points x's output slot at task y's unwritten output.
 * The output transfer (and upload: the same resolution, xfer_resolve)
 * named y's object, and the report wrote the reported ciphertext over y's
 * object and marked y's file written with x's hash under a genuine MAC,
 * x's own output left unwritten. Now every remote path takes the slot's
 * file from the verified binding.
 *  - lie false (both backends): the host edits x's task_files row. The
 *    binding no longer verifies: the transfer is refused, the report's
 *    outputs are rejected (the task fails) and y's row stays as it was.
 *  - lie true (PostgreSQL): task_files becomes a view that names y's file
 *    for x's output slot to every statement but the binding's read (each
 *    statement has its own snapshot: a host can answer a second read
 *    differently). The binding verifies; the transfer names x's object,
 *    the report writes x's output and y's row is untouched. */
static void test_output_binding(tenv *e, mt_remote_sched *rs, const char *tok, bool lie)
{
    mt_err err;
    json_t *o = NULL;
    char fbody[256];
    snprintf(fbody, sizeof fbody,
             "{\"name\":\"psi_bind%d\",\"builtin\":\"psi\",\"inputs\":[{\"name\":\"a\"},"
             "{\"name\":\"b\"}],\"outputs\":[{\"name\":\"r\"}]}",
             (int)lie);
    assert_int_equal(treq(e, "POST", "/v1/functions", tok, fbody, &o), 201);
    char fn[33], in_a[33], in_b[33], out_x[33], out_y[33], tx[33], ty[33];
    snprintf(fn, sizeof fn, "%s", jstr(o, "function_id"));
    json_decref(o);
    add_input(e, tok, "apple\n", in_a);
    add_input(e, tok, "banana\n", in_b);
    char *outs[2] = {out_x, out_y};
    for (int i = 0; i < 2; i++) {
        uint8_t k[32];
        char kh[65];
        assert_int_equal(mt_random(k, sizeof k, &err), MT_OK);
        thex(k, 32, kh);
        assert_int_equal(treqf(e, "POST", "/v1/files/outputs", tok, &o, "{\"key\":\"%s\"}", kh),
                         201);
        snprintf(outs[i], 33, "%s", jstr(o, "file_id"));
        json_decref(o);
    }
    psi_task(e, tok, fn, in_a, in_b, out_y, false, ty); /* approved, not invoked */
    psi_task(e, tok, fn, in_a, in_b, out_x, true, tx);
    claim h;
    claim_next(rs, &h);
    assert_string_equal(h.task_id, tx);
    char obj_x[80], obj_y[80], y_before[512], y_after[512], sql[1024];
    qtext(e->core, "SELECT object_id FROM files WHERE file_id = ?", out_x, obj_x, sizeof obj_x);
    qtext(e->core, "SELECT object_id FROM files WHERE file_id = ?", out_y, obj_y, sizeof obj_y);
    assert_true(obj_x[0] && obj_y[0] && strcmp(obj_x, obj_y));
    qtext(e->core, FILE_STATE_SQL, out_y, y_before, sizeof y_before);
    if (lie)
        exec_sql(e->core, "ALTER TABLE task_files RENAME TO task_files_real");
    if (lie)
        snprintf(sql, sizeof sql,
                 "CREATE VIEW task_files AS "
                 "SELECT task_id, slot, direction, CASE WHEN task_id = '%s' AND direction = "
                 "'output' AND current_query() NOT LIKE '%%UNION ALL%%' THEN '%s' ELSE file_id "
                 "END AS file_id FROM task_files_real",
                 tx, out_y);
    else
        snprintf(sql, sizeof sql,
                 "UPDATE task_files SET file_id = '%s' WHERE task_id = '%s' AND direction = "
                 "'output'",
                 out_y, tx);
    exec_sql(e->core, sql);
    mt_rxfer x;
    memset(&x, 0, sizeof x);
    snprintf(x.task_id, sizeof x.task_id, "%s", h.task_id);
    x.fence = (uint64_t)h.fence;
    snprintf(x.secret, sizeof x.secret, "%s", h.secret);
    snprintf(x.slot, sizeof x.slot, "r");
    char xpath[4096 + 32];
    mt_err_clear(&err);
    mt_status xrc = mt_remote_sched_xfer(rs, &x, true, xpath, &err);
    if (lie) { /* the output transfer goes to x's object */
        if (xrc != MT_OK)
            fail_msg("output transfer: %s", err.msg);
        assert_non_null(strstr(xpath, obj_x));
        assert_null(strstr(xpath, obj_y));
    } else {
        assert_int_equal(xrc, MT_EINTERNAL);
        assert_string_equal(err.msg, "integrity check failed: binding");
    }
    const char *ct = "the executor's output ciphertext";
    char hex[65];
    core_sha256_hex((const uint8_t *)ct, strlen(ct), hex);
    char *b64 = mt_b64_encode((const uint8_t *)ct, strlen(ct));
    assert_non_null(b64);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"task_id\":\"%s\",\"fence\":%lld,\"lease_secret\":\"%s\",\"ok\":true,"
             "\"return_value\":\"done\",\"outputs\":{\"r\":{\"ciphertext\":\"%s\",\"sha256\":"
             "\"%s\",\"size\":%zu}}}",
             h.task_id, (long long)h.fence, h.secret, b64, hex, strlen(ct));
    free(b64);
    if (mt_remote_sched_report(rs, (const uint8_t *)body, strlen(body), &err) != MT_OK)
        fail_msg("report: %s", err.msg);
    if (lie) {
        exec_sql(e->core, "DROP VIEW task_files");
        exec_sql(e->core, "ALTER TABLE task_files_real RENAME TO task_files");
    }
    char sha_x[80], reason[512];
    qtext(e->core, "SELECT status FROM tasks WHERE task_id = ?", tx, reason, sizeof reason);
    assert_string_equal(reason, lie ? "finished" : "failed");
    qtext(e->core, "SELECT COALESCE(failure_reason, '') FROM tasks WHERE task_id = ?", tx, reason,
          sizeof reason);
    if (!lie)
        assert_string_equal(reason, "the executor's outputs were rejected: integrity check "
                                    "failed: binding");
    qtext(e->core, "SELECT COALESCE(sha256, '') FROM files WHERE file_id = ? AND written = 1",
          out_x, sha_x, sizeof sha_x);
    assert_string_equal(sha_x, lie ? hex : "");
    qtext(e->core, FILE_STATE_SQL, out_y, y_after, sizeof y_after);
    assert_string_equal(y_after, y_before);
    pthread_mutex_lock(&e->core->mu);
    mt_status vy = integ_task_verify_row(e->core, e->core->db, ty, NULL, &err);
    mt_status fx = vy ? vy : integ_file_check(e->core, e->core->db, out_x, NULL, &err);
    pthread_mutex_unlock(&e->core->mu);
    if (vy || fx)
        fail_msg("after the report: %s", err.msg);
}

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
    test_output_binding(&e, rs, tok, false);
    test_row_rollback(&e, rs, tok, fn);
    test_ended_leases(&e, rs, tok, fn);
    test_upload_rollback(&e, rs, tok);
    test_lease_mac_rerun(&e, rs, tok, fn);
    test_local_run_after_lease(&e, rs, tok);
    test_lease_mac_upgrade(&e, rs, tok, fn);
    test_lease_mac_v3_upgrade(&e, rs, tok, fn);
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
    test_output_binding(&e, rs, tok, false);
    test_output_binding(&e, rs, tok, true);
    test_row_rollback(&e, rs, tok, fn);
    test_ended_leases(&e, rs, tok, fn);
    test_upload_rollback(&e, rs, tok);
    test_lease_mac_rerun(&e, rs, tok, fn);
    test_local_run_after_lease(&e, rs, tok);
    test_lease_mac_upgrade(&e, rs, tok, fn);
    test_lease_mac_v3_upgrade(&e, rs, tok, fn);
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
