/* Unit tests of the local audit spool (src/core/untrusted_spool.c, the file;
 * src/core/audit_spool.c, the core side): records written and read back
 * (strings cut at the chain's caps), a replay that appends them to the
 * chain in order with their original times while new entries queue behind
 * them, a spool left by a run appended at the next open, a tampered,
 * reordered, cut or foreign-key spool refused whole (moved aside, counted,
 * recorded in the chain, none of its entries appended), and the cap: past
 * it an entry is refused (the gateway then answers 503) and the file is
 * unchanged. Strict order: an entry on its way into the spool is not
 * overtaken by a later one appended directly, and one failed store attempt
 * per outage (the entries behind it go to the spool untried). A change
 * made while spooled entries wait lands behind them, or is refused (503)
 * while they cannot be appended; a change made while a stream of audited
 * requests keeps adding entries behind the replay is answered while the
 * stream goes on (it waits for the entries spooled before it, not for an
 * empty spool); an open with a spool the store will not take yet goes on
 * when no task was left running. The store is made to fail with a trigger that refuses every
 * audit insert (SQLite, or PostgreSQL under MT_TEST_STORE_URL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// clang-format off: cmocka.h needs the headers above first
#include <cmocka.h>
// clang-format on

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <sys/stat.h>

#include "core_internal.h"
#include "test_core_util.h"
#include "untrusted_spool.h"

typedef tfx fx;

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static mt_spool_rec rec(int64_t t, int st, const char *actor, const char *action,
                        const char *object)
{
    mt_spool_rec r;
    memset(&r, 0, sizeof r);
    r.time = t;
    r.status = st;
    snprintf(r.actor, sizeof r.actor, "%s", actor);
    snprintf(r.action, sizeof r.action, "%s", action);
    snprintf(r.object, sizeof r.object, "%s", object);
    return r;
}

static void tmpdir(char *d, size_t n)
{
    snprintf(d, n, "/tmp/mt_spool_test.XXXXXX");
    assert_non_null(mkdtemp(d));
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- the file ----------------------------------------------------------- */

static void test_write_read(void **state)
{
    (void)state;
    char d[64], path[128];
    tmpdir(d, sizeof d);
    snprintf(path, sizeof path, "%s/audit-spool", d);
    mt_spool *s;
    mt_err err;
    assert_int_equal(mt_spool_open(path, KEY, 1 << 20, &s, &err), MT_OK);
    mt_spool_rec *got;
    size_t n;
    assert_int_equal(mt_spool_load(s, &got, &n, &err), MT_OK);
    assert_int_equal(n, 0);
    char long_action[400];
    memset(long_action, 'x', sizeof long_action - 1);
    long_action[sizeof long_action - 1] = '\0';
    mt_spool_rec in[3] = {rec(1000, 200, "alice", "GET /v1/users/me", "-"),
                          rec(1001, 404, "-", "GET /v1/files/{id}", "file:abc"),
                          rec(1002, 503, "bob", "", "")};
    snprintf(in[2].action, sizeof in[2].action, "%.*s", (int)MT_SPOOL_ACTION_MAX, long_action);
    assert_int_equal(mt_spool_append(s, in, 2, &err), MT_OK);
    assert_int_equal(mt_spool_append(s, in + 2, 1, &err), MT_OK);
    assert_int_equal(mt_spool_records(s), 3);
    assert_int_equal(mt_spool_load(s, &got, &n, &err), MT_OK);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(got[i].time, in[i].time);
        assert_int_equal(got[i].status, in[i].status);
        assert_string_equal(got[i].actor, in[i].actor);
        assert_string_equal(got[i].action, in[i].action);
        assert_string_equal(got[i].object, in[i].object);
    }
    assert_int_equal(strlen(got[2].action), MT_SPOOL_ACTION_MAX);
    free(got);
    /* a second handle (a restart) reads the same records */
    mt_spool *s2;
    assert_int_equal(mt_spool_open(path, KEY, 1 << 20, &s2, &err), MT_OK);
    assert_int_equal(mt_spool_load(s2, &got, &n, &err), MT_OK);
    assert_int_equal(n, 3);
    free(got);
    mt_spool_free(s2);
    /* reset keeps the tail (the records not yet in the chain) */
    assert_int_equal(mt_spool_reset(s, in + 1, 2, &err), MT_OK);
    assert_int_equal(mt_spool_load(s, &got, &n, &err), MT_OK);
    assert_int_equal(n, 2);
    assert_string_equal(got[0].object, "file:abc");
    free(got);
    assert_int_equal(mt_spool_append(s, in, 1, &err), MT_OK);
    assert_int_equal(mt_spool_load(s, &got, &n, &err), MT_OK);
    assert_int_equal(n, 3);
    assert_string_equal(got[2].actor, "alice");
    free(got);
    assert_int_equal(mt_spool_reset(s, NULL, 0, &err), MT_OK);
    assert_false(exists(path));
    assert_int_equal(mt_spool_load(s, &got, &n, &err), MT_OK);
    assert_int_equal(n, 0);
    mt_spool_free(s);
    tenv_rm(d);
}

/* A fresh handle (as after a restart) loading path: the status. */
static mt_status load_fresh(const char *path, const uint8_t key[32])
{
    mt_spool *s;
    mt_err err;
    assert_int_equal(mt_spool_open(path, key, 1 << 20, &s, &err), MT_OK);
    mt_spool_rec *got = NULL;
    size_t n = 0;
    mt_status rc = mt_spool_load(s, &got, &n, &err);
    if (rc)
        assert_null(got);
    free(got);
    mt_spool_free(s);
    return rc;
}

static void test_tamper_truncate(void **state)
{
    (void)state;
    char d[64], path[128];
    tmpdir(d, sizeof d);
    snprintf(path, sizeof path, "%s/audit-spool", d);
    mt_spool *s;
    mt_err err;
    assert_int_equal(mt_spool_open(path, KEY, 1 << 20, &s, &err), MT_OK);
    mt_spool_rec *got;
    size_t n;
    assert_int_equal(mt_spool_load(s, &got, &n, &err), MT_OK);
    /* three records of the same length, so that two can be swapped */
    mt_spool_rec in[3] = {rec(1, 200, "aa", "GET /a", "-"), rec(2, 200, "bb", "GET /b", "-"),
                          rec(3, 200, "cc", "GET /c", "-")};
    assert_int_equal(mt_spool_append(s, in, 3, &err), MT_OK);
    size_t len;
    uint8_t *orig = slurp(path, &len);
    size_t rl = (len - MT_SPOOL_HEADER_LEN) / 3;
    assert_int_equal(load_fresh(path, KEY), MT_OK);
    /* every byte matters: flip each (XOR, never a constant) */
    for (size_t i = 0; i < len; i++) {
        uint8_t *b = malloc(len);
        memcpy(b, orig, len);
        b[i] ^= 0x01;
        spit(path, b, len);
        free(b);
        if (load_fresh(path, KEY) != MT_ECRYPTO)
            fail_msg("flipped byte %zu accepted", i);
    }
    /* cut anywhere: refused (a cut record), except at record boundaries
     * where only this run's memory can tell (below) */
    for (size_t cut = 0; cut < len; cut++) {
        spit(path, orig, cut);
        bool boundary = cut >= MT_SPOOL_HEADER_LEN && (cut - MT_SPOOL_HEADER_LEN) % rl == 0;
        mt_status rc = load_fresh(path, KEY);
        if (boundary)
            assert_int_equal(rc, MT_OK);
        else if (rc != MT_ECRYPTO)
            fail_msg("cut at %zu accepted", cut);
    }
    /* whole records cut from the end while this process runs: refused */
    spit(path, orig, len - rl);
    assert_int_equal(mt_spool_load(s, &got, &n, &err), MT_ECRYPTO);
    assert_non_null(strstr(err.msg, "truncated"));
    /* the file removed while this process runs: refused */
    unlink(path);
    assert_int_equal(mt_spool_load(s, &got, &n, &err), MT_ECRYPTO);
    /* two records swapped */
    uint8_t *sw = malloc(len);
    memcpy(sw, orig, len);
    memcpy(sw + MT_SPOOL_HEADER_LEN, orig + MT_SPOOL_HEADER_LEN + rl, rl);
    memcpy(sw + MT_SPOOL_HEADER_LEN + rl, orig + MT_SPOOL_HEADER_LEN, rl);
    spit(path, sw, len);
    free(sw);
    assert_int_equal(load_fresh(path, KEY), MT_ECRYPTO);
    /* the first record removed */
    uint8_t *rm = malloc(len);
    memcpy(rm, orig, MT_SPOOL_HEADER_LEN);
    memcpy(rm + MT_SPOOL_HEADER_LEN, orig + MT_SPOOL_HEADER_LEN + rl, len - MT_SPOOL_HEADER_LEN - rl);
    spit(path, rm, len - rl);
    free(rm);
    assert_int_equal(load_fresh(path, KEY), MT_ECRYPTO);
    /* another key (another platform's spool) */
    spit(path, orig, len);
    uint8_t other[32];
    memcpy(other, KEY, 32);
    other[0] ^= 0x80;
    assert_int_equal(load_fresh(path, other), MT_ECRYPTO);
    assert_int_equal(load_fresh(path, KEY), MT_OK);
    /* records of one spool spliced into another (same key, another id) */
    mt_spool_rec one = rec(9, 200, "zz", "GET /z", "-");
    uint8_t id2[16] = {7}, *img;
    size_t il;
    assert_int_equal(mt_spool_image(KEY, id2, &one, 1, &img, &il, &err), MT_OK);
    uint8_t *mix = malloc(il + rl);
    memcpy(mix, img, il);
    memcpy(mix + il, orig + MT_SPOOL_HEADER_LEN + rl, rl);
    spit(path, mix, il + rl);
    assert_int_equal(load_fresh(path, KEY), MT_ECRYPTO);
    free(mix);
    free(img);
    free(orig);
    mt_spool_free(s);
    tenv_rm(d);
}

static void test_cap(void **state)
{
    (void)state;
    char d[64], path[128];
    tmpdir(d, sizeof d);
    snprintf(path, sizeof path, "%s/audit-spool", d);
    mt_spool *s;
    mt_err err;
    assert_int_equal(mt_spool_open(path, KEY, 16, &s, &err), MT_EINVAL); /* below the minimum */
    uint64_t cap = MT_SPOOL_HEADER_LEN + MT_SPOOL_REC_OVERHEAD + MT_SPOOL_BODY_MAX;
    assert_int_equal(mt_spool_open(path, KEY, cap, &s, &err), MT_OK);
    mt_spool_rec *got;
    size_t n;
    assert_int_equal(mt_spool_load(s, &got, &n, &err), MT_OK);
    mt_spool_rec r = rec(5, 200, "alice", "GET /v1/users/me", "-");
    size_t ok = 0;
    mt_status rc;
    while ((rc = mt_spool_append(s, &r, 1, &err)) == MT_OK)
        ok++;
    assert_int_equal(rc, MT_ETOOBIG);
    assert_non_null(strstr(err.msg, "full"));
    assert_true(ok >= 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size <= cap);
    assert_int_equal((uint64_t)st.st_size, mt_spool_bytes(s));
    /* a refused batch changes nothing: all or nothing */
    mt_spool_rec two[2] = {r, r};
    assert_int_equal(mt_spool_append(s, two, 2, &err), MT_ETOOBIG);
    assert_int_equal(mt_spool_load(s, &got, &n, &err), MT_OK);
    assert_int_equal(n, ok);
    free(got);
    mt_spool_free(s);
    tenv_rm(d);
}

/* ---- the core side ------------------------------------------------------ */

static void fail_store(fx *f, bool on)
{
    mt_err err;
    const char *sql;
    if (tenv_store_url())
        sql = on ? "CREATE FUNCTION t_fail_fn() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'injected'; END $$; "
                   "CREATE TRIGGER t_fail BEFORE INSERT ON audit FOR EACH ROW "
                   "EXECUTE FUNCTION t_fail_fn()"
                 : "DROP TRIGGER t_fail ON audit; DROP FUNCTION t_fail_fn()";
    else
        sql = on ? "CREATE TRIGGER t_fail BEFORE INSERT ON audit "
                   "BEGIN SELECT RAISE(ABORT, 'injected'); END"
                 : "DROP TRIGGER t_fail";
    if (f->e.core) {
        pthread_mutex_lock(&f->e.core->mu);
        mt_status rc = mt_db_exec(f->e.core->db, sql, &err);
        pthread_mutex_unlock(&f->e.core->mu);
        if (rc)
            fail_msg("%s: %s", sql, err.msg);
    } else {
        tenv_sql_dir(f->e.dir, sql);
    }
}

static int64_t chain_count(fx *f, const char *where)
{
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM audit WHERE %s", where);
    return tenv_sql_int_dir(f->e.dir, sql);
}

static void spool_path(fx *f, char *p, size_t n)
{
    snprintf(p, n, "%s/audit-spool", f->e.dir);
}

static void record(fx *f, const char *actor, const char *action, int64_t t, bool want_spooled)
{
    mt_audit_item it = {actor, action, "-", 200, t};
    bool sp = false;
    mt_err err;
    mt_status rc = mt_core_audit_record(f->e.core, &it, 1, &sp, &err);
    if (rc)
        fail_msg("mt_core_audit_record: %s", err.msg);
    assert_int_equal(sp, want_spooled);
}

static void verify_chain(fx *f)
{
    mt_err err;
    uint64_t n = 0;
    tenv_close_core(&f->e);
    if (mt_core_audit_verify_dir(f->e.dir, tenv_store_url(), NULL, 0, &n, &err))
        fail_msg("audit verify: %s", err.msg);
    tenv_open_core(&f->e);
}

static void test_replay_in_order(void **state)
{
    fx *f = *state;
    const int64_t t0 = 1000000000; /* 2001: the original time must survive */
    record(f, "sp", "first", 0, false); /* the store works: straight into the chain */
    fail_store(f, true);
    record(f, "sp", "a", t0, true);
    record(f, "sp", "b", t0 + 1, true);
    uint64_t entries, bytes;
    mt_core_audit_spool_state(f->e.core, &entries, &bytes);
    assert_int_equal(entries, 2);
    assert_true(bytes > MT_SPOOL_HEADER_LEN);
    assert_int_equal(chain_count(f, "actor = 'sp'"), 1);
    fail_store(f, false);
    /* the store is back but older entries wait: a new one queues behind */
    record(f, "sp", "c", 0, true);
    mt_err err;
    assert_int_equal(mt_core_audit_spool_replay(f->e.core, &err), MT_OK);
    mt_core_audit_spool_state(f->e.core, &entries, &bytes);
    assert_int_equal(entries, 0);
    char p[200];
    spool_path(f, p, sizeof p);
    assert_false(exists(p));
    assert_int_equal(chain_count(f, "actor = 'sp'"), 4);
    /* in order, with their times */
    assert_int_equal(tenv_sql_int_dir(f->e.dir, "SELECT time FROM audit WHERE actor = 'sp' AND "
                                                "action = 'a'"),
                     t0);
    assert_int_equal(tenv_sql_int_dir(f->e.dir, "SELECT time FROM audit WHERE actor = 'sp' AND "
                                                "action = 'b'"),
                     t0 + 1);
    assert_true(tenv_sql_int_dir(f->e.dir, "SELECT count(*) FROM audit a, audit b, audit c WHERE "
                                           "a.action = 'a' AND b.action = 'b' AND c.action = 'c' "
                                           "AND a.actor = 'sp' AND b.actor = 'sp' AND c.actor = "
                                           "'sp' AND a.seq < b.seq AND b.seq < c.seq") == 1);
    char *m = mt_core_metrics(f->e.core);
    assert_non_null(strstr(m, "mesatee_audit_spooled_total 3\n"));
    assert_non_null(strstr(m, "mesatee_audit_spool_replayed_total 3\n"));
    assert_non_null(strstr(m, "mesatee_audit_spool_entries 0\n"));
    free(m);
    /* empty again: straight into the chain */
    record(f, "sp", "d", 0, false);
    verify_chain(f);
}

static void test_replay_at_open(void **state)
{
    fx *f = *state;
    fail_store(f, true);
    record(f, "rs", "a", 1000000000, true);
    record(f, "rs", "b", 0, true);
    tenv_close_core(&f->e); /* the entries stay in the spool */
    char p[200];
    spool_path(f, p, sizeof p);
    assert_true(exists(p));
    fail_store(f, false);
    tenv_open_core(&f->e); /* appended before anything is served */
    assert_int_equal(chain_count(f, "actor = 'rs'"), 2);
    assert_false(exists(p));
    verify_chain(f);
}

static int count_refused_files(fx *f)
{
    DIR *d = opendir(f->e.dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, "audit-spool.refused-", 20))
            n++;
    closedir(d);
    return n;
}

static void test_tampered_at_open(void **state)
{
    fx *f = *state;
    fail_store(f, true);
    record(f, "tp", "a", 0, true);
    record(f, "tp", "b", 0, true);
    tenv_close_core(&f->e);
    fail_store(f, false);
    char p[200];
    spool_path(f, p, sizeof p);
    size_t len;
    uint8_t *b = slurp(p, &len);
    b[len - 40] ^= 0x01; /* in the last record's body */
    spit(p, b, len);
    free(b);
    tenv_open_core(&f->e);
    assert_int_equal(chain_count(f, "actor = 'tp'"), 0); /* nothing of it appended */
    assert_int_equal(chain_count(f, "action LIKE 'audit spool refused:%'"), 1);
    assert_false(exists(p));
    assert_int_equal(count_refused_files(f), 1);
    char *m = mt_core_metrics(f->e.core);
    assert_non_null(strstr(m, "mesatee_audit_spool_refused_total 1\n"));
    free(m);
    verify_chain(f);
}

static void test_truncated_while_running(void **state)
{
    fx *f = *state;
    fail_store(f, true);
    record(f, "tr", "a", 0, true);
    record(f, "tr", "b", 0, true);
    char p[200];
    spool_path(f, p, sizeof p);
    size_t len;
    uint8_t *b = slurp(p, &len);
    mt_spool_rec *rs;
    size_t n;
    mt_err err;
    uint8_t k[32];
    mt_spool_key(f->e.core->audit_key, k);
    assert_int_equal(mt_spool_parse(b, len, k, &rs, &n, NULL, NULL, &err), MT_OK);
    assert_int_equal(n, 2);
    free(rs);
    /* the last whole record removed: only this run can tell */
    size_t rl = (len - MT_SPOOL_HEADER_LEN) / 2;
    spit(p, b, len - rl);
    free(b);
    fail_store(f, false);
    assert_int_not_equal(mt_core_audit_spool_replay(f->e.core, &err), MT_OK);
    assert_int_equal(chain_count(f, "actor = 'tr'"), 0);
    assert_int_equal(chain_count(f, "action LIKE 'audit spool refused:%truncated%'"), 1);
    assert_int_equal(count_refused_files(f), 1);
    /* a fresh spool afterwards */
    record(f, "tr", "c", 0, false);
    verify_chain(f);
}

static void test_full_fails_closed(void **state)
{
    fx *f = *state;
    tenv_close_core(&f->e);
    f->e.cfg.audit_spool_max = MT_SPOOL_HEADER_LEN + MT_SPOOL_REC_OVERHEAD + MT_SPOOL_BODY_MAX;
    tenv_open_core(&f->e);
    fail_store(f, true);
    mt_audit_item it = {"fl", "GET /v1/users/me", "-", 200, 0};
    mt_err err;
    mt_status rc;
    int ok = 0;
    bool sp;
    while ((rc = mt_core_audit_record(f->e.core, &it, 1, &sp, &err)) == MT_OK) {
        assert_true(sp);
        ok++;
    }
    assert_int_equal(rc, MT_ETOOBIG);
    assert_true(ok >= 1);
    char *m = mt_core_metrics(f->e.core);
    assert_non_null(strstr(m, "mesatee_audit_spool_full_total 1\n"));
    free(m);
    fail_store(f, false);
    assert_int_equal(mt_core_audit_spool_replay(f->e.core, &err), MT_OK);
    assert_int_equal(chain_count(f, "actor = 'fl'"), ok); /* the refused one is not there */
    /* room again */
    assert_int_equal(mt_core_audit_record(f->e.core, &it, 1, &sp, &err), MT_OK);
    assert_false(sp);
    verify_chain(f);
}

/* ---- order across the spool boundary ----------------------------------- */

typedef struct late_rec {
    fx *f;
    const char *action;
    atomic_bool done;
    mt_status rc;
    bool spooled;
} late_rec;

static void *late_main(void *arg)
{
    late_rec *l = arg;
    mt_audit_item it = {"or", l->action, "-", 200, 0};
    mt_err err;
    l->rc = mt_core_audit_record(l->f->e.core, &it, 1, &l->spooled, &err);
    atomic_store(&l->done, true);
    return NULL;
}

typedef struct order_hook {
    fx *f;
    bool store_back; /* drop the failing trigger before the later entry */
    late_rec late;
    pthread_t th;
    bool fired;
} order_hook;

/* Runs in the window between a failed direct append and its spooling: a
 * later request records its entry meanwhile. It is given up to 2 s to
 * finish (with strict order it cannot: it waits for the earlier entry to
 * be spooled; the wait only bounds how long a broken build gets to show
 * its overtaking). */
static void order_after_fail(void *arg)
{
    order_hook *h = arg;
    if (h->fired)
        return; /* the later entry's own failure (only without order_mu) */
    h->fired = true;
    if (h->store_back)
        fail_store(h->f, false);
    h->late.f = h->f;
    assert_int_equal(pthread_create(&h->th, NULL, late_main, &h->late), 0);
    for (int i = 0; i < 200 && !atomic_load(&h->late.done); i++)
        usleep(10 * 1000);
}

static uint64_t metric(fx *f, const char *name)
{
    char *m = mt_core_metrics(f->e.core);
    char key[120];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(m, key);
    assert_non_null(p);
    uint64_t v = strtoull(p + strlen(key), NULL, 10);
    free(m);
    return v;
}

/* Strict order: an entry whose direct append failed is on its way into the
 * spool when the store comes back and a later request records its entry:
 * that later entry must not overtake it (it goes into the spool behind
 * it), so the chain is in the order of the requests. And while the spool
 * is in use, a request does not try the store again: one failed attempt
 * for an outage, not one per request waiting for the store's error. */
static void test_order_across_spool(void **state)
{
    fx *f = *state;
    order_hook h = {.f = f, .store_back = true, .late.action = "late"};
    fail_store(f, true);
    core_aspool_test_arg = &h;
    core_aspool_test_after_fail = order_after_fail;
    bool sp = false;
    mt_audit_item it = {"or", "early", "-", 200, 0};
    mt_err err;
    assert_int_equal(mt_core_audit_record(f->e.core, &it, 1, &sp, &err), MT_OK);
    assert_true(sp);
    assert_true(h.fired);
    pthread_join(h.th, NULL);
    assert_int_equal(h.late.rc, MT_OK);
    assert_true(h.late.spooled); /* behind "early", not around it */
    assert_int_equal(mt_core_audit_spool_replay(f->e.core, &err), MT_OK);
    assert_int_equal(tenv_sql_int_dir(f->e.dir, "SELECT count(*) FROM audit a, audit b WHERE "
                                                "a.actor = 'or' AND b.actor = 'or' AND a.action = "
                                                "'early' AND b.action = 'late' AND a.seq < b.seq"),
                     1);
    /* one failed attempt per outage: the request queued behind the failing
     * one finds the spool in use and does not try the store */
    uint64_t failed0 = metric(f, "mesatee_audit_store_failures_total");
    order_hook h2 = {.f = f, .store_back = false, .late.action = "late2"};
    core_aspool_test_arg = &h2;
    fail_store(f, true);
    it.action = "early2";
    assert_int_equal(mt_core_audit_record(f->e.core, &it, 1, &sp, &err), MT_OK);
    assert_true(sp);
    pthread_join(h2.th, NULL);
    assert_int_equal(h2.late.rc, MT_OK);
    assert_true(h2.late.spooled);
    assert_int_equal(metric(f, "mesatee_audit_store_failures_total"), failed0 + 1);
    core_aspool_test_after_fail = NULL;
    core_aspool_test_arg = NULL;
    record(f, "or", "late3", 0, true); /* still pending: spooled, store untried */
    assert_int_equal(metric(f, "mesatee_audit_store_failures_total"), failed0 + 1);
    fail_store(f, false);
    assert_int_equal(mt_core_audit_spool_replay(f->e.core, &err), MT_OK);
    assert_int_equal(tenv_sql_int_dir(f->e.dir, "SELECT count(*) FROM audit a, audit b, audit c "
                                                "WHERE a.actor = 'or' AND b.actor = 'or' AND "
                                                "c.actor = 'or' AND a.action = 'early2' AND "
                                                "b.action = 'late2' AND c.action = 'late3' AND "
                                                "a.seq < b.seq AND b.seq < c.seq"),
                     1);
    record(f, "or", "after", 0, false); /* the store is used again */
    verify_chain(f);
}

/* A store that takes every entry but those of actor "blk" (a spooled entry
 * it refuses while changes still commit). */
static void refuse_blk(fx *f, bool on)
{
    mt_err err;
    const char *sql;
    if (tenv_store_url())
        sql = on ? "CREATE FUNCTION t_blk_fn() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN IF NEW.actor = 'blk' THEN RAISE EXCEPTION 'injected'; END IF; "
                   "RETURN NEW; END $$; "
                   "CREATE TRIGGER t_blk BEFORE INSERT ON audit FOR EACH ROW "
                   "EXECUTE FUNCTION t_blk_fn()"
                 : "DROP TRIGGER t_blk ON audit; DROP FUNCTION t_blk_fn()";
    else
        sql = on ? "CREATE TRIGGER t_blk BEFORE INSERT ON audit WHEN NEW.actor = 'blk' "
                   "BEGIN SELECT RAISE(ABORT, 'injected'); END"
                 : "DROP TRIGGER t_blk";
    pthread_mutex_lock(&f->e.core->mu);
    mt_status rc = mt_db_exec(f->e.core->db, sql, &err);
    pthread_mutex_unlock(&f->e.core->mu);
    if (rc)
        fail_msg("%s: %s", sql, err.msg);
}

/* seq of the one entry matching where (fails unless there is exactly one) */
static int64_t seq_of(fx *f, const char *where)
{
    assert_int_equal(chain_count(f, where), 1);
    char sql[300];
    snprintf(sql, sizeof sql, "SELECT seq FROM audit WHERE %s", where);
    return tenv_sql_int_dir(f->e.dir, sql);
}

/* A change made right after the store came back, while spooled entries
 * still wait (no replay runs here unless a change starts one), lands in the
 * chain behind them, not ahead: a route of the request loop (its
 * transaction begun by mt_core_handle) and a slow route (which begins its
 * own). And when the store takes changes but still not the spooled entries,
 * the change is refused (503, nothing of it committed) until it does. */
static void test_change_after_outage(void **state)
{
    fx *f = *state;
    fail_store(f, true);
    record(f, "ch", "a", 0, true);
    record(f, "ch", "b", 0, true);
    fail_store(f, false);
    uint64_t entries, bytes;
    mt_core_audit_spool_state(f->e.core, &entries, &bytes);
    assert_int_equal(entries, 2); /* still waiting: the change comes now */
    assert_int_equal(treq(&f->e, "POST", "/v1/users/alice/disable", f->admin, NULL, NULL), 200);
    int64_t ch = seq_of(f, "action = 'POST /v1/users/{name}/disable' AND object = 'user:alice'");
    assert_true(seq_of(f, "actor = 'ch' AND action = 'a'") <
                seq_of(f, "actor = 'ch' AND action = 'b'"));
    assert_true(seq_of(f, "actor = 'ch' AND action = 'b'") < ch);
    mt_core_audit_spool_state(f->e.core, &entries, &bytes);
    assert_int_equal(entries, 0);
    /* a slow route (POST /v1/users: its own transaction) */
    fail_store(f, true);
    record(f, "ch", "c", 0, true);
    fail_store(f, false);
    tadd_user(&f->e, f->admin, "bob");
    assert_true(seq_of(f, "actor = 'ch' AND action = 'c'") <
                seq_of(f, "action = 'POST /v1/users' AND object = 'user:bob'"));
    /* the store takes the change but not what waits: refused, not reordered */
    refuse_blk(f, true);
    record(f, "blk", "x", 0, true);
    json_t *o = NULL;
    assert_int_equal(treq(&f->e, "POST", "/v1/users/alice/enable", f->admin, NULL, &o), 503);
    assert_string_equal(terr_code(o), "unavailable");
    assert_non_null(strstr(terr_msg(o), "spooled"));
    json_decref(o);
    o = NULL;
    int st = treqf(&f->e, "POST", "/v1/users", f->admin, &o,
                   "{\"username\":\"carol\",\"password\":\"" USER_PW "\",\"role\":\"user\"}");
    assert_int_equal(st, 503);
    json_decref(o);
    assert_int_equal(chain_count(f, "action = 'POST /v1/users/{name}/enable'"), 0);
    assert_int_equal(chain_count(f, "object = 'user:carol'"), 0);
    assert_int_equal(tenv_sql_int_dir(f->e.dir, "SELECT count(*) FROM users WHERE username = "
                                                "'carol'"),
                     0);
    assert_int_equal(metric(f, "mesatee_audit_spool_change_refused_total"), 2);
    refuse_blk(f, false);
    assert_int_equal(treq(&f->e, "POST", "/v1/users/alice/enable", f->admin, NULL, NULL), 200);
    assert_true(seq_of(f, "actor = 'blk' AND action = 'x'") <
                seq_of(f, "action = 'POST /v1/users/{name}/enable' AND object = 'user:alice'"));
    /* nothing waits: straight into the chain again */
    record(f, "ch", "d", 0, false);
    verify_chain(f);
}

/* A stream of audited requests (mt_core_audit_record in a loop) until
 * told to stop or its own deadline (60 s) passes. */
typedef struct stream {
    fx *f;
    const char *actor;
    atomic_bool stop, ended;
    atomic_int n, spooled, failed;
} stream;

static void *stream_main(void *arg)
{
    stream *st = arg;
    int64_t end = mt_mono_ms() + 60 * 1000;
    while (!atomic_load(&st->stop) && mt_mono_ms() < end) {
        mt_audit_item it = {st->actor, "tick", "-", 200, 0};
        bool sp = false;
        mt_err err;
        if (mt_core_audit_record(st->f->e.core, &it, 1, &sp, &err))
            atomic_fetch_add(&st->failed, 1);
        atomic_fetch_add(&st->n, 1);
        if (sp)
            atomic_fetch_add(&st->spooled, 1);
    }
    atomic_store(&st->ended, true);
    return NULL;
}

/* A change made while a steady stream of audited requests keeps adding
 * entries to the spool behind the ones it must follow: it waits for the
 * entries spooled before it began, not for the spool to be empty (which
 * the stream might never let happen), so it is answered while the stream
 * still runs; the entries spooled before it precede it in the chain. With
 * and without the replay thread. */
static void chase(fx *f, const char *user, const char *tag)
{
    fail_store(f, true);
    record(f, "pre", tag, 0, true);
    stream st = {.f = f, .actor = tag};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stream_main, &st), 0);
    /* the stream's entries go to the spool (behind "pre") */
    for (int i = 0; i < 6000 && atomic_load(&st.spooled) < 20 && !atomic_load(&st.ended); i++)
        usleep(10 * 1000);
    assert_true(atomic_load(&st.spooled) >= 20);
    fail_store(f, false);
    char path[120];
    snprintf(path, sizeof path, "/v1/users/%s/disable", user);
    int code = 0;
    /* 503 is allowed (the replay thread's pass may be beyond what a change
     * waits for); the stream must still run when the change is answered */
    for (int i = 0; i < 600 && !atomic_load(&st.ended); i++) {
        if ((code = treq(&f->e, "POST", path, f->admin, NULL, NULL)) == 200)
            break;
        assert_int_equal(code, 503);
        usleep(50 * 1000);
    }
    bool ended = atomic_load(&st.ended);
    int n_at_change = atomic_load(&st.n);
    /* the stream goes on after the change: new entries reach the chain */
    for (int i = 0; i < 6000 && atomic_load(&st.n) < n_at_change + 10 && !atomic_load(&st.ended);
         i++)
        usleep(10 * 1000);
    atomic_store(&st.stop, true);
    pthread_join(th, NULL);
    assert_false(ended);
    assert_int_equal(code, 200);
    assert_int_equal(atomic_load(&st.failed), 0);
    char where[200];
    snprintf(where, sizeof where, "action = 'POST /v1/users/{name}/disable' AND object = 'user:%s'",
             user);
    int64_t ch = seq_of(f, where);
    snprintf(where, sizeof where, "actor = 'pre' AND action = '%s'", tag);
    assert_true(seq_of(f, where) < ch);
    /* every entry of the stream reaches the chain (the thread's replay or
     * the manual one here) */
    mt_err err;
    uint64_t entries = 1, bytes;
    for (int i = 0; i < 1200 && entries; i++) {
        mt_status rc = mt_core_audit_spool_replay(f->e.core, &err);
        mt_core_audit_spool_state(f->e.core, &entries, &bytes);
        if (rc && entries)
            usleep(50 * 1000);
    }
    assert_int_equal(entries, 0);
    snprintf(where, sizeof where, "actor = '%s'", tag);
    assert_int_equal(chain_count(f, where), atomic_load(&st.n));
}

/* A deterministic chase: after every chunk a replay pass appends, a new
 * entry is recorded (spooled while the spool is in use) before the pass
 * looks again, up to CHASE_MAX times. A pass that runs until the spool is
 * empty never gets there before the hook gives up, so the change would be
 * answered only after CHASE_MAX entries; it must be answered long before. */
#define CHASE_MAX 40
typedef struct chaser {
    fx *f;
    atomic_int fired;
    pthread_t th[CHASE_MAX];
    int n_th;
} chaser;

static void *chase_rec_main(void *arg)
{
    chaser *ch = arg;
    mt_audit_item it = {"chase", "tick", "-", 200, 0};
    mt_err err;
    if (mt_core_audit_record(ch->f->e.core, &it, 1, NULL, &err))
        fail_msg("mt_core_audit_record: %s", err.msg);
    return NULL;
}

static void chase_after_chunk(void *arg, bool order_held)
{
    chaser *ch = arg;
    if (atomic_load(&ch->fired) >= CHASE_MAX)
        return;
    atomic_fetch_add(&ch->fired, 1);
    if (order_held) { /* it would wait for this pass: another request's thread */
        assert_int_equal(pthread_create(&ch->th[ch->n_th++], NULL, chase_rec_main, ch), 0);
        return;
    }
    chase_rec_main(ch); /* into the spool behind what the pass appends */
}

static void test_change_while_chased(void **state)
{
    fx *f = *state;
    fail_store(f, true);
    record(f, "pre", "x", 0, true);
    fail_store(f, false);
    chaser ch = {.f = f};
    core_aspool_test_arg = &ch;
    core_aspool_test_after_chunk = chase_after_chunk;
    assert_int_equal(treq(&f->e, "POST", "/v1/users/alice/disable", f->admin, NULL, NULL), 200);
    int fired = atomic_load(&ch.fired);
    core_aspool_test_after_chunk = NULL;
    core_aspool_test_arg = NULL;
    for (int i = 0; i < ch.n_th; i++)
        pthread_join(ch.th[i], NULL);
    assert_true(fired < CHASE_MAX);
    assert_true(seq_of(f, "actor = 'pre' AND action = 'x'") <
                seq_of(f, "action = 'POST /v1/users/{name}/disable' AND object = 'user:alice'"));
    mt_err err;
    mt_status rc = mt_core_audit_spool_replay(f->e.core, &err);
    if (rc)
        fail_msg("replay: %s", err.msg);
    assert_int_equal(chain_count(f, "actor = 'chase'"), fired);
    verify_chain(f);
}

static void test_change_while_stream(void **state)
{
    fx *f = *state;
    tadd_user(&f->e, f->admin, "bob");
    chase(f, "alice", "manual");
    tenv_close_core(&f->e);
    setenv("MESATEE_TEST_AUDIT_SPOOL_MANUAL", "0", 1);
    tenv_open_core(&f->e);
    chase(f, "bob", "thread");
    setenv("MESATEE_TEST_AUDIT_SPOOL_MANUAL", "1", 1);
    verify_chain(f);
}

/* A spool the store will not take, left by a run: the next open goes on
 * (it has no task left running to recover, so no change to make) and
 * serves; changes are refused until the store takes the spooled entries,
 * then they land behind them. */
static void test_open_with_stuck_spool(void **state)
{
    fx *f = *state;
    fail_store(f, true);
    record(f, "blk", "left", 0, true);
    tenv_close_core(&f->e);
    /* the store is back but refuses the spooled entry */
    const char *off = tenv_store_url() ? "DROP TRIGGER t_fail ON audit; DROP FUNCTION t_fail_fn()"
                                       : "DROP TRIGGER t_fail";
    tenv_sql_dir(f->e.dir, off);
    const char *blk =
        tenv_store_url() ? "CREATE FUNCTION t_blk_fn() RETURNS trigger LANGUAGE plpgsql AS "
                           "$$ BEGIN IF NEW.actor = 'blk' THEN RAISE EXCEPTION 'injected'; END IF; "
                           "RETURN NEW; END $$; "
                           "CREATE TRIGGER t_blk BEFORE INSERT ON audit FOR EACH ROW "
                           "EXECUTE FUNCTION t_blk_fn()"
                         : "CREATE TRIGGER t_blk BEFORE INSERT ON audit WHEN NEW.actor = 'blk' "
                           "BEGIN SELECT RAISE(ABORT, 'injected'); END";
    tenv_sql_dir(f->e.dir, blk);
    tenv_open_core(&f->e); /* fails the test if the open fails */
    uint64_t entries, bytes;
    mt_core_audit_spool_state(f->e.core, &entries, &bytes);
    assert_int_equal(entries, 1);
    assert_int_equal(treq(&f->e, "POST", "/v1/users/alice/disable", f->admin, NULL, NULL), 503);
    refuse_blk(f, false);
    assert_int_equal(treq(&f->e, "POST", "/v1/users/alice/disable", f->admin, NULL, NULL), 200);
    assert_true(seq_of(f, "actor = 'blk' AND action = 'left'") <
                seq_of(f, "action = 'POST /v1/users/{name}/disable' AND object = 'user:alice'"));
    verify_chain(f);
}

/* The replay thread (the other tests run without it, so that they decide
 * when a replay happens): the entries reach the chain on their own once the
 * store is back. */
static void test_background_replay(void **state)
{
    fx *f = *state;
    tenv_close_core(&f->e);
    setenv("MESATEE_TEST_AUDIT_SPOOL_MANUAL", "0", 1);
    tenv_open_core(&f->e);
    fail_store(f, true);
    record(f, "bg", "a", 0, true);
    record(f, "bg", "b", 0, true);
    fail_store(f, false);
    uint64_t entries = 1, bytes;
    for (int i = 0; i < 1200 && entries; i++) { /* up to 60 s on a loaded machine */
        usleep(50 * 1000);
        mt_core_audit_spool_state(f->e.core, &entries, &bytes);
    }
    assert_int_equal(entries, 0);
    assert_int_equal(chain_count(f, "actor = 'bg'"), 2);
    setenv("MESATEE_TEST_AUDIT_SPOOL_MANUAL", "1", 1);
    verify_chain(f);
}

int main(void)
{
    setenv("MESATEE_TEST_AUDIT_SPOOL_MANUAL", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read),
        cmocka_unit_test(test_tamper_truncate),
        cmocka_unit_test(test_cap),
        cmocka_unit_test_setup_teardown(test_replay_in_order, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_replay_at_open, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_tampered_at_open, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated_while_running, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_full_fails_closed, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_background_replay, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_order_across_spool, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_change_after_outage, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_change_while_chased, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_change_while_stream, tfx_setup, tfx_teardown),
        cmocka_unit_test_setup_teardown(test_open_with_stuck_spool, tfx_setup, tfx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
