/* Backup archives (src/core/backup_archive.c) and data-directory backup and
 * restore (src/core/backup.c): round trip, every truncation and every
 * single-byte change refused, entry names, and a real store backed up and
 * restored with its rows and files intact. */
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "mt_backup.h"
#include "mt_ff.h"
#include "test_core_util.h"

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

/* An archive of the given (name, content) pairs, names sorted. */
static blob make_archive(const char *const *names, const char *const *data, size_t n)
{
    char path[] = "/tmp/mt_backup_arc.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    mt_err err;
    mt_backup_writer *w;
    assert_int_equal(mt_backup_writer_new(fd, "soft", 1765000000, &w, &err), MT_OK);
    for (size_t i = 0; i < n; i++) {
        char src[] = "/tmp/mt_backup_src.XXXXXX";
        int s = mkstemp(src);
        assert_true(s >= 0);
        unlink(src);
        size_t l = strlen(data[i]);
        assert_int_equal(write(s, data[i], l), (ssize_t)l);
        lseek(s, 0, SEEK_SET);
        assert_int_equal(mt_backup_writer_add_fd(w, names[i], 0600, s, l, &err), MT_OK);
        close(s);
    }
    assert_int_equal(mt_backup_writer_finish(w, &err), MT_OK);
    mt_backup_writer_free(w);
    blob b;
    b.n = (size_t)lseek(fd, 0, SEEK_END);
    b.p = malloc(b.n);
    assert_int_equal(pread(fd, b.p, b.n, 0), (ssize_t)b.n);
    close(fd);
    return b;
}

static const char *const NAMES[] = {"mesatee.db", "objects/00112233445566778899aabbccddeeff",
                                    "sealing.key", "tls/server-cert.pem"};
static const char *const DATA[] = {"SQLite format 3", "ciphertext bytes",
                                   "0123456789abcdef0123456789abcdef", ""};

static void test_round_trip(void **s)
{
    (void)s;
    blob b = make_archive(NAMES, DATA, 4);
    mt_backup_info info;
    mt_err err;
    assert_int_equal(mt_backup_read_mem(b.p, b.n, NULL, NULL, &info, &err), MT_OK);
    assert_int_equal(info.entries, 4);
    assert_string_equal(info.level, "soft");
    assert_int_equal(info.created, 1765000000);
    assert_int_equal(info.bytes, 15 + 16 + 32);
    free(b.p);
}

static void test_every_truncation_and_flip_refused(void **s)
{
    (void)s;
    blob b = make_archive(NAMES, DATA, 4);
    mt_err err;
    for (size_t n = 0; n < b.n; n++)
        if (mt_backup_read_mem(b.p, n, NULL, NULL, NULL, &err) != MT_EINVAL)
            fail_msg("truncation at %zu accepted", n);
    for (size_t i = 0; i < b.n; i++) {
        b.p[i] ^= 0x01;
        if (mt_backup_read_mem(b.p, b.n, NULL, NULL, NULL, &err) == MT_OK)
            fail_msg("a change of byte %zu accepted", i);
        b.p[i] ^= 0x01;
    }
    uint8_t *longer = malloc(b.n + 1);
    memcpy(longer, b.p, b.n);
    longer[b.n] = 0;
    assert_int_equal(mt_backup_read_mem(longer, b.n + 1, NULL, NULL, NULL, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "trailing"));
    free(longer);
    free(b.p);
}

static void test_names(void **s)
{
    (void)s;
    static const char *const good[] = {"mesatee.db", "a/b/c", "tls/server-key.pem", ".hidden",
                                       "a..b"};
    static const char *const badn[] = {"", "/abs", "a//b", "a/", "..", "a/../b", ".", "a/./b",
                                       "sp ace", "new\nline", "x\\y"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(mt_backup_name_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof badn / sizeof *badn; i++)
        assert_false(mt_backup_name_valid(badn[i], strlen(badn[i])));
    char longname[300];
    memset(longname, 'a', sizeof longname);
    assert_false(mt_backup_name_valid(longname, 256));
    assert_true(mt_backup_name_valid(longname, 255));
    /* the writer refuses names out of order and an archive without a store */
    mt_err err;
    mt_backup_writer *w;
    int fd = open("/dev/null", O_WRONLY);
    assert_int_equal(mt_backup_writer_new(fd, "none", 0, &w, &err), MT_OK);
    int z = open("/dev/zero", O_RDONLY);
    assert_int_equal(mt_backup_writer_add_fd(w, "b", 0600, z, 1, &err), MT_OK);
    assert_int_not_equal(mt_backup_writer_add_fd(w, "a", 0600, z, 1, &err), MT_OK);
    mt_backup_writer_free(w);
    assert_int_equal(mt_backup_writer_new(fd, "Bad Level", 0, &w, &err), MT_EINVAL);
    close(z);
    close(fd);
    const char *const nodb[] = {"sealing.key"};
    blob b = make_archive(nodb, DATA, 1);
    assert_int_equal(mt_backup_read_mem(b.p, b.n, NULL, NULL, NULL, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "mesatee.db"));
    free(b.p);
}

/* mt_backup_store_check: the default and the data directory's own file pass;
 * PostgreSQL, another SQLite file and garbage are refused with what to do. */
static void test_store_check(void **s)
{
    (void)s;
    char dir[] = "/tmp/test-backup-store.XXXXXX", db[64], other[64], url[80];
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/mesatee.db", dir);
    snprintf(other, sizeof other, "%s/other.db", dir);
    FILE *f = fopen(db, "w");
    assert_non_null(f);
    fclose(f);
    assert_non_null(f = fopen(other, "w"));
    fclose(f);
    mt_err err = {0};
    assert_int_equal(mt_backup_store_check(dir, NULL, &err), MT_OK);
    assert_int_equal(mt_backup_store_check(dir, "", &err), MT_OK);
    assert_int_equal(mt_backup_store_check(dir, db, &err), MT_OK);
    snprintf(url, sizeof url, "file:%s", db);
    assert_int_equal(mt_backup_store_check(dir, url, &err), MT_OK);
    assert_int_equal(mt_backup_store_check(dir, "postgresql://u:s3cret@db1,db2/mesatee", &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "pg_basebackup or pg_dump"));
    assert_null(strstr(err.msg, "s3cret"));
    assert_int_equal(mt_backup_store_check(dir, "postgres://h/db", &err), MT_EINVAL);
    assert_int_equal(mt_backup_store_check(dir, other, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "inside the data directory"));
    assert_int_equal(mt_backup_store_check(dir, "/nonexistent/mesatee.db", &err), MT_EINVAL);
    assert_int_equal(mt_backup_store_check(dir, "mysql://h/db", &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "unknown URL scheme"));
    assert_int_equal(mt_backup_store_check(dir, "file:", &err), MT_EINVAL);
    assert_int_equal(mt_backup_store_check(NULL, db, &err), MT_EINVAL);
    unlink(db);
    unlink(other);
    rmdir(dir);
}

static void test_store_backup_restore(void **s)
{
    (void)s;
    tenv e;
    tenv_init(&e, NULL);
    char *admin = tlogin(&e, "admin", ADMIN_PW);
    tadd_user(&e, admin, "alice");
    char *alice = tlogin(&e, "alice", USER_PW);
    /* an uploaded object (the store names it; it must be in the backup) */
    uint8_t key[32] = {1, 2, 3}, *ct = NULL;
    size_t ctl = 0;
    mt_err err;
    assert_int_equal(mt_ff_encrypt(key, (const uint8_t *)"some ids", 8, &ct, &ctl, &err), MT_OK);
    json_t *o = NULL;
    assert_int_equal(treq_raw(&e, "POST", "/v1/objects", NULL, alice, ct, ctl, &o, NULL, NULL),
                     201);
    char url[128];
    snprintf(url, sizeof url, "%s", jstr(o, "url"));
    json_decref(o);
    char out[200], target[128];
    snprintf(out, sizeof out, "%s.mtb", e.dir);
    snprintf(target, sizeof target, "%.100s.restored", e.dir);
    mt_backup_info info;
    /* online: the core is open */
    if (mt_backup_create(e.dir, "none", out, &info, &err) != MT_OK)
        fail_msg("backup: %s", err.msg);
    assert_true(info.entries >= 3);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* into a non-empty directory: refused, nothing changed */
    assert_int_equal(mt_backup_restore(out, e.dir, NULL, &err), MT_ECONFLICT);
    assert_non_null(strstr(err.msg, "not empty"));
    if (mt_backup_restore(out, target, &info, &err) != MT_OK)
        fail_msg("restore: %s", err.msg);
    tenv_close_core(&e);
    mt_tee_free(e.tee);
    e.tee = NULL;
    /* serve the restored directory */
    tenv r;
    memset(&r, 0, sizeof r);
    snprintf(r.dir, sizeof r.dir, "%s", target);
    tenv_open_core(&r);
    char *alice2 = tlogin(&r, "alice", USER_PW);
    assert_int_equal(treq(&r, "GET", "/v1/users/me", alice, NULL, &o), 200); /* old token */
    json_decref(o);
    const char *id = strrchr(url, '/') + 1;
    char p[512];
    snprintf(p, sizeof p, "%s/objects/%s", target, id);
    uint8_t *got = NULL;
    size_t gl = 0;
    assert_int_equal(mt_file_read(p, 4096, &got, &gl, &err), MT_OK);
    assert_int_equal(gl, ctl);
    assert_memory_equal(got, ct, ctl);
    free(got);
    free(ct);
    uint64_t n = 0;
    assert_int_equal(mt_core_audit_verify_dir(target, NULL, NULL, 0, &n, &err), MT_OK);
    free(alice2);
    tenv_free(&r);
    tenv_rm(e.dir);
    unlink(out);
    free(admin);
    free(alice);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_truncation_and_flip_refused),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_store_backup_restore),
        cmocka_unit_test(test_store_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
