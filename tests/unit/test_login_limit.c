/* Failed-login rate limits shared by several nodes on one store (issue 14,
 * docs/cluster.md "Login rate limits"; auth.c "failed-login rate limits"):
 * two mt_core instances in this process on one database (argv[1]: a
 * PostgreSQL URL from tests/pg/pg-temp.sh, or "sqlite": <data dir>/mesatee.db),
 * sharing the data directory's TEE and hence the integrity key, stand for two
 * nodes. Checked on both backends:
 * - failed logins for one account spread over both nodes hit the limit at
 *   the count of one node (5), not twice that; the same for one address (20);
 * - a success on one node empties the account's count on both (the other
 *   node's own failures included);
 * - the store is untrusted: a row the host writes (no valid MAC) locks
 *   nobody out; a host that deletes the rows leaves each node its own count.
 * The buckets drain with wall-clock time (one failure per 12 s per account,
 * per 3 s per address) and each failure costs an Argon2id run, so counts are
 * checked as bounds that widen with the time taken, never as timings. */
#include "test_core_util.h"

#include <time.h>

#include "core_internal.h" /* store_run, store_int */

#ifndef MT_WORKER_TEST_PATH
#error "MT_WORKER_TEST_PATH must name the mesatee-worker-test executable"
#endif

static const char *g_url;
static unsigned g_retry; /* Retry-After of the last login answer */

typedef struct cluster {
    char dir[128];
    mt_tee *tee;
    mt_core_config cfg;
    tenv node[2];
    char *admin;
} cluster;

static cluster g_cl;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One login through node i from address peer: the HTTP status; the error
 * message (or "") in msg. */
static int login(int i, const char *peer, const char *user, const char *pw, char *msg, size_t cap)
{
    char body[256];
    snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"%s\"}", user, pw);
    mt_request rq = {"POST", "/v1/auth/login", NULL, (const uint8_t *)body, strlen(body),
                     NULL, NULL, peer, false, false};
    mt_response rs;
    mt_core_handle(g_cl.node[i].core, &rq, &rs);
    int st = rs.status;
    g_retry = rs.retry_after_s;
    if (msg)
        snprintf(msg, cap, "%s", rs.json ? terr_msg(rs.json) : "");
    if (st == 429)
        assert_true(rs.retry_after_s > 0);
    mt_response_clear(&rs);
    return st;
}

static void exec_sql(const char *sql)
{
    mt_core *c = g_cl.node[0].core;
    mt_err err;
    pthread_mutex_lock(&c->mu);
    mt_status rc = store_run(c->db, &err, NULL, sql);
    pthread_mutex_unlock(&c->mu);
    if (rc)
        fail_msg("%s: %s", sql, err.msg);
}

static int64_t count(const char *sql)
{
    mt_core *c = g_cl.node[0].core;
    mt_err err;
    int64_t n = 0;
    pthread_mutex_lock(&c->mu);
    mt_status rc = store_int(c->db, &err, &n, NULL, sql);
    pthread_mutex_unlock(&c->mu);
    if (rc)
        fail_msg("%s: %s", sql, err.msg);
    return n;
}

/* Fails logins for user from peer, on node first, then alternating when
 * alternate (else always on node first), until refused with 429; returns the
 * failures let through (401). msg: the refusal. */
static int fail_until_refused(int first, bool alternate, const char *peer, const char *user,
                              bool vary_user, int max, char *msg, size_t cap)
{
    int fails = 0;
    for (int k = 0; k < max; k++) {
        char u[64];
        if (vary_user)
            snprintf(u, sizeof u, "%s%d", user, k);
        else
            snprintf(u, sizeof u, "%s", user);
        int st = login(alternate ? (first + k) % 2 : first, peer, u, "wrong-password-1", msg, cap);
        if (st == 429)
            return fails;
        if (st != 401)
            fail_msg("failed login %d: HTTP %d %s", k, st, msg);
        fails++;
    }
    fail_msg("no 429 after %d failed logins", max);
    return -1;
}

static void test_spread_account(void **state)
{
    (void)state;
    char msg[256];
    tadd_user(&g_cl.node[0], g_cl.admin, "alice");
    double t0 = mono_s();
    int n = fail_until_refused(0, true, "10.1.0.1", "alice", false, 40, msg, sizeof msg);
    double took = mono_s() - t0;
    assert_non_null(strstr(msg, "too many failed logins for this account"));
    /* one node's burst (5), plus what drained meanwhile (one per 12 s); a
     * limit per node would let about twice the burst through */
    fprintf(stderr, "account: %d failures over two nodes before 429 (%.1f s)\n", n, took);
    assert_true(n >= 5);
    assert_true(n <= 5 + (int)(took / 12.0) + 1);
    /* one shared row for the account, written by both nodes */
    assert_int_equal(count("SELECT count(*) FROM login_limits WHERE kind = 'a' AND "
                           "lkey = 'alice'"),
                     1);
    /* a node that saw none of the failures refuses at once: it reads the
     * shared count (when node 0's refusal said 4 s or more, its bucket is at
     * least 3 s from draining below the limit) */
    tadd_user(&g_cl.node[0], g_cl.admin, "erin");
    n = fail_until_refused(0, false, "10.1.0.2", "erin", false, 40, msg, sizeof msg);
    assert_true(n >= 5);
    if (g_retry >= 4) {
        assert_int_equal(login(1, "10.1.0.3", "erin", USER_PW, msg, sizeof msg), 429);
        assert_non_null(strstr(msg, "for this account"));
    } else {
        fprintf(stderr, "note: the refusal said Retry-After %u s (a slow machine): node 1 "
                        "not asked\n", g_retry);
    }
}

static void test_spread_address(void **state)
{
    (void)state;
    char msg[256];
    double t0 = mono_s();
    int n = fail_until_refused(1, true, "10.2.0.1", "nobody", true, 80, msg, sizeof msg);
    double took = mono_s() - t0;
    assert_non_null(strstr(msg, "for this address"));
    fprintf(stderr, "address: %d failures over two nodes before 429 (%.1f s)\n", n, took);
    assert_true(n >= 20);
    assert_true(n <= 20 + (int)(took / 3.0) + 1);
}

static void test_success_clears_both(void **state)
{
    (void)state;
    char msg[256];
    tadd_user(&g_cl.node[0], g_cl.admin, "bob");
    for (int k = 0; k < 4; k++) /* two on each node: under the burst of 5 */
        assert_int_equal(login(k % 2, "10.3.0.1", "bob", "wrong-password-1", msg, sizeof msg),
                         401);
    assert_int_equal(login(0, "10.3.0.2", "bob", USER_PW, msg, sizeof msg), 200);
    /* node 1 counts from zero again: its own two failures are gone too */
    int n = fail_until_refused(1, false, "10.3.0.3", "bob", false, 40, msg, sizeof msg);
    fprintf(stderr, "after a success on node 0: %d failures on node 1 before 429\n", n);
    assert_true(n >= 5);
    assert_non_null(strstr(msg, "for this account"));
}

static void test_untrusted_rows(void **state)
{
    (void)state;
    char msg[256];
    tadd_user(&g_cl.node[0], g_cl.admin, "carol");
    tadd_user(&g_cl.node[0], g_cl.admin, "dave");
    /* the host writes a bucket full for a day, with a MAC it cannot make */
    exec_sql("INSERT INTO login_limits(kind, lkey, tat_ms, clear_ms, mac) VALUES "
             "('a', 'carol', 9000000000000, 0, "
             "'0000000000000000000000000000000000000000000000000000000000000000')");
    for (int i = 0; i < 2; i++)
        assert_int_equal(login(i, "10.4.0.1", "carol", USER_PW, msg, sizeof msg), 200);
    /* a MACed row edited by the host is ignored the same way */
    exec_sql("UPDATE login_limits SET tat_ms = 9000000000000 WHERE kind = 'a' AND "
             "lkey = 'carol'");
    assert_int_equal(login(1, "10.4.0.1", "carol", USER_PW, msg, sizeof msg), 200);
    /* the host deletes the rows: node 0 keeps its own count, node 1 knows of
     * no failure. Node 0 is asked again after 1.2 s (longer than it reuses
     * a refusal read from the store), when the refusal said 6 s or more:
     * its own bucket is still above the limit then. */
    int n = fail_until_refused(0, false, "10.4.0.2", "dave", false, 40, msg, sizeof msg);
    unsigned retry = g_retry;
    assert_true(n >= 5);
    exec_sql("DELETE FROM login_limits");
    assert_int_equal(count("SELECT count(*) FROM login_limits"), 0);
    struct timespec ts = {1, 200000000L};
    nanosleep(&ts, NULL);
    if (retry >= 6) {
        assert_int_equal(login(0, "10.4.0.3", "dave", USER_PW, msg, sizeof msg), 429);
        assert_non_null(strstr(msg, "for this account"));
    } else {
        fprintf(stderr, "note: the refusal said Retry-After %u s (a slow machine): node 0's "
                        "own count not checked\n", retry);
    }
    assert_int_equal(login(1, "10.4.0.4", "dave", USER_PW, msg, sizeof msg), 200);
}

static int group_setup(void **state)
{
    (void)state;
    cluster *cl = &g_cl;
    memset(cl, 0, sizeof *cl);
    snprintf(cl->dir, sizeof cl->dir, "/tmp/mt_login_limit.XXXXXX");
    assert_non_null(mkdtemp(cl->dir));
    mt_err err;
    assert_int_equal(mt_tee_open("none", cl->dir, &cl->tee, &err), MT_OK);
    cl->cfg.admin_password = ADMIN_PW;
    cl->cfg.worker_path = MT_WORKER_TEST_PATH;
    cl->cfg.workers = 1;
    cl->cfg.data_dir = cl->dir;
    if (mt_db_url_backend(g_url) == MT_DB_PG)
        cl->cfg.store_url = g_url;
    for (int i = 0; i < 2; i++) {
        tenv *e = &cl->node[i];
        memcpy(e->dir, cl->dir, sizeof e->dir);
        e->tee = cl->tee;
        e->cfg = cl->cfg;
        if (mt_core_open(&e->cfg, e->tee, &e->core, &err))
            fail_msg("mt_core_open %d: %s", i, err.msg);
    }
    cl->admin = tlogin(&cl->node[0], "admin", ADMIN_PW);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        mt_core_close(g_cl.node[i].core);
    free(g_cl.admin);
    mt_tee_free(g_cl.tee);
    tenv_rm(g_cl.dir);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !*argv[1]) {
        fprintf(stderr, "usage: test_login_limit STORE (\"sqlite\" or a postgres:// URL)\n");
        return 2;
    }
    g_url = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spread_account),
        cmocka_unit_test(test_spread_address),
        cmocka_unit_test(test_success_clears_both),
        cmocka_unit_test(test_untrusted_rows),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
