/* A failed fsync of a group sync file's WAL is sticky (mt_db.h "Group sync",
 * docs/design.md "Group sync"), with Linux's semantics simulated: this
 * program defines fdatasync and fsync itself (they interpose on libc's for
 * libsqlite3, ENABLE_EXPORTS), so a WAL sync chosen by the test fails with
 * EIO once and every later one succeeds, as Linux reports a writeback error
 * once and then returns 0 for pages that never reached the disk. Every
 * commit and sync after the failure must fail: the group sync's own failure
 * and the one of a checkpoint run inside a COMMIT (the WAL hook's). */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <stdatomic.h>

#include "mt_db.h"

/* ---- the simulated fsync ------------------------------------------------- */
static atomic_int g_fail_next; /* the next WAL sync fails */
static atomic_int g_wal_syncs; /* WAL syncs that reached the simulation */
static atomic_int g_failed;    /* WAL syncs that failed */

static bool is_wal(int fd)
{
    char p[64], t[PATH_MAX];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, t, sizeof t - 1);
    if (n <= 4)
        return false;
    t[n] = '\0';
    return !strcmp(t + n - 4, "-wal");
}

static int sim_sync(int fd, const char *name)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (is_wal(fd)) {
        atomic_fetch_add(&g_wal_syncs, 1);
        if (atomic_exchange(&g_fail_next, 0)) {
            atomic_fetch_add(&g_failed, 1);
            errno = EIO; /* reported once: the next sync of the file succeeds */
            return -1;
        }
    }
    return real(fd);
}

int fdatasync(int fd)
{
    return sim_sync(fd, "fdatasync");
}

int fsync(int fd)
{
    return sim_sync(fd, "fsync");
}

/* ---- the tests ------------------------------------------------------------ */
static char g_dir[64];

static void open_pair(const char *name, mt_db **a, mt_db **b)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    mt_err err;
    assert_int_equal(mt_db_open_sqlite_path(path, 0, a, &err), MT_OK);
    assert_int_equal(mt_db_open_sqlite_path(path, 0, b, &err), MT_OK);
    assert_int_equal(mt_db_exec(*a, "CREATE TABLE t(k TEXT, v BLOB)", &err), MT_OK);
    assert_int_equal(mt_db_set_group_sync(*a, &err), MT_OK);
    assert_int_equal(mt_db_set_group_sync(*b, &err), MT_OK);
}

static mt_status insert(mt_db *db, const char *sql, mt_err *err)
{
    mt_status rc = mt_db_begin(db, MT_DB_TX_IMMEDIATE, err);
    if (!rc && (rc = mt_db_exec(db, sql, err)) != MT_OK)
        mt_db_rollback(db);
    if (!rc && (rc = mt_db_commit(db, err)) != MT_OK)
        mt_db_rollback(db);
    return rc;
}

/* after the failure: nothing on the file is reported durable again, and no
 * WAL sync runs (its success would be a lie) */
static void assert_broken(mt_db *a, mt_db *b)
{
    int syncs = atomic_load(&g_wal_syncs);
    mt_err err;
    assert_int_equal(insert(a, "INSERT INTO t(k) VALUES ('after a')", &err), MT_EIO);
    assert_non_null(strstr(err.msg, "an earlier WAL sync failed"));
    assert_int_equal(insert(b, "INSERT INTO t(k) VALUES ('after b')", &err), MT_EIO);
    assert_int_equal(mt_db_sync(a, &err), MT_EIO);
    assert_int_equal(mt_db_sync(b, &err), MT_EIO);
    assert_false(mt_db_in_tx(a));
    assert_false(mt_db_in_tx(b));
    assert_int_equal(atomic_load(&g_wal_syncs), syncs);
}

static void test_group_sync_fails(void **state)
{
    (void)state;
    mt_db *a, *b;
    open_pair("group.db", &a, &b);
    mt_err err;
    int syncs = atomic_load(&g_wal_syncs);
    assert_int_equal(insert(a, "INSERT INTO t(k) VALUES ('r1')", &err), MT_OK);
    assert_true(atomic_load(&g_wal_syncs) > syncs); /* the simulation sees the syncs */
    int failed = atomic_load(&g_failed);
    atomic_store(&g_fail_next, 1);
    assert_int_equal(insert(b, "INSERT INTO t(k) VALUES ('r2')", &err), MT_EIO);
    assert_non_null(strstr(err.msg, "committed, but the sync failed"));
    assert_true(mt_db_outcome_unknown(b));
    assert_int_equal(atomic_load(&g_failed), failed + 1);
    assert_broken(a, b);
    mt_db_close(a);
    mt_db_close(b);
}

/* A COMMIT whose WAL passed the checkpoint threshold checkpoints in its WAL
 * hook, which fsyncs the WAL first: that fsync fails. SQLite's own
 * auto-checkpoint would ignore it, and the group sync after it would
 * succeed. */
static void test_checkpoint_sync_fails(void **state)
{
    (void)state;
    mt_db *a, *b;
    open_pair("ckpt.db", &a, &b);
    mt_err err;
    assert_int_equal(insert(a, "INSERT INTO t(k) VALUES ('r1')", &err), MT_OK);
    int failed = atomic_load(&g_failed);
    atomic_store(&g_fail_next, 1);
    /* about 1500 pages of 4 KiB in the WAL: past the threshold (1000) */
    assert_int_equal(insert(b, "INSERT INTO t(k, v) VALUES ('big', randomblob(6000000))", &err),
                     MT_EIO);
    assert_null(strstr(err.msg, "committed, but the sync failed")); /* the checkpoint's */
    assert_true(mt_db_outcome_unknown(b));                          /* it stood */
    assert_int_equal(atomic_load(&g_failed), failed + 1);
    assert_broken(a, b);
    mt_db_close(a);
    mt_db_close(b);
}

/* A connection without group sync (synchronous=FULL: its COMMIT fsyncs the
 * WAL itself) whose commit's fsync fails breaks the file's group as well. */
static void test_full_commit_fails(void **state)
{
    (void)state;
    mt_db *a, *c;
    char path[128];
    snprintf(path, sizeof path, "%s/full.db", g_dir);
    mt_err err;
    assert_int_equal(mt_db_open_sqlite_path(path, 0, &a, &err), MT_OK);
    assert_int_equal(mt_db_open_sqlite_path(path, 0, &c, &err), MT_OK);
    assert_int_equal(mt_db_exec(a, "CREATE TABLE t(k TEXT, v BLOB)", &err), MT_OK);
    assert_int_equal(mt_db_set_group_sync(a, &err), MT_OK);
    assert_int_equal(insert(c, "INSERT INTO t(k) VALUES ('r1')", &err), MT_OK);
    int failed = atomic_load(&g_failed);
    atomic_store(&g_fail_next, 1);
    assert_int_equal(insert(c, "INSERT INTO t(k) VALUES ('r2')", &err), MT_EIO);
    assert_int_equal(atomic_load(&g_failed), failed + 1);
    assert_broken(a, c);
    mt_db_close(a);
    mt_db_close(c);
}

/* The daemon's setting (mt_db_set_sync_fatal, `mesatee serve`): the
 * process exits with MT_DB_SYNC_FATAL_EXIT at the failure, in a child here. */
static void test_fatal_exit(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        mt_db *a, *b;
        mt_err err;
        char path[128];
        snprintf(path, sizeof path, "%s/fatal.db", g_dir);
        if (mt_db_open_sqlite_path(path, 0, &a, &err) ||
            mt_db_open_sqlite_path(path, 0, &b, &err) ||
            mt_db_exec(a, "CREATE TABLE t(k TEXT, v BLOB)", &err) ||
            mt_db_set_group_sync(a, &err) || mt_db_set_group_sync(b, &err))
            _exit(1);
        mt_db_set_sync_fatal(true);
        atomic_store(&g_fail_next, 1);
        insert(b, "INSERT INTO t(k) VALUES ('r1')", &err);
        _exit(2); /* not reached */
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), MT_DB_SYNC_FATAL_EXIT);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/mt_walfail.XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_sync_fails),
        cmocka_unit_test(test_checkpoint_sync_fails),
        cmocka_unit_test(test_full_commit_fails),
        cmocka_unit_test(test_fatal_exit),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    const char *names[] = {"group.db", "ckpt.db", "full.db", "fatal.db"};
    const char *sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 3; j++) {
            char p[160];
            snprintf(p, sizeof p, "%s/%s%s", g_dir, names[i], sfx[j]);
            unlink(p);
        }
    rmdir(g_dir);
    return rc;
}
