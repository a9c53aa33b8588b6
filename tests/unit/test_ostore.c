/* Tests of the object storage backends (src/store/mt_ostore.h). One program,
 * run by ctest on each backend (tests/unit/ostore.cmake):
 *   test_ostore dir PATH     the directory backend (the core's layout)
 *   test_ostore db URL       chunked rows through mt_db: a SQLite file, and a
 *                            throw-away PostgreSQL cluster (tests/pg/pg-temp.sh,
 *                            skipped with a message where PostgreSQL is absent)
 * Covered: round trips at chunk boundaries, streaming reads and writes,
 * nothing visible before commit, replace, missing objects and bad ids, a
 * damaged chunk set (missing chunk, short chunk, inconsistent header), a
 * reader pinned to one version while the object is replaced, concurrent puts
 * of one id (never a mix), local paths and the database cache, copies between
 * backends, URL and option garbage; staged uploads (executor outputs):
 * the bound per lease, tampered, truncated and missing staged chunks refused
 * at publish, the sweep by lease. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_db.h"
#include "mt_ostore.h"
#include "mt_util.h"

#define CHUNK 100 /* small chunks: many rows from little data */

static const char *mode, *where;
static char tmpdir[] = "/tmp/test-ostore.XXXXXX";

static mt_ostore *open_store(const char *cache)
{
    mt_ostore *s = NULL;
    mt_err err = {0};
    mt_ostore_opts o = {.chunk_size = CHUNK, .cache_dir = cache, .spool_dir = tmpdir};
    mt_status rc = !strcmp(mode, "dir") ? mt_ostore_open(where, &o, &s, &err)
                                        : mt_ostore_open_db(where, &o, &s, &err);
    if (rc)
        fail_msg("open %s %s: %s", mode, where, err.msg);
    return s;
}

static bool is_db(void)
{
    return strcmp(mode, "dir") != 0;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31u + seed * 7u + (i >> 8));
    return p;
}

static void sha_hex(const uint8_t *p, size_t n, char out[65])
{
    uint8_t md[32];
    unsigned int ml = 0;
    assert_int_equal(EVP_Digest(p, n, md, &ml, EVP_sha256(), NULL), 1);
    mt_hex_encode(md, 32, out);
}

static void expect_object(mt_ostore *s, const char *id, const uint8_t *want, size_t n)
{
    uint8_t *got = NULL;
    size_t len = 0;
    mt_err err = {0};
    mt_status rc = mt_ostore_get(s, id, SIZE_MAX, &got, &len, &err);
    if (rc)
        fail_msg("get %s: %s", id, err.msg);
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
    free(got);
}

/* Database backend: no chunk row without its header row. */
static void assert_no_orphans(void)
{
    if (!is_db())
        return;
    mt_db *db = NULL;
    mt_err err = {0};
    assert_int_equal(mt_db_open(where, 0, &db, &err), MT_OK);
    mt_db_stmt *st = NULL;
    assert_int_equal(mt_db_prepare(db,
                                   "SELECT count(*) FROM object_chunks WHERE gen NOT IN "
                                   "(SELECT gen FROM object_data)",
                                   &st, &err),
                     MT_OK);
    mt_status rc = MT_OK;
    assert_int_equal(mt_db_step(st, &rc, &err), MT_DB_ROW);
    assert_int_equal(mt_db_col_int64(st, 0), 0);
    mt_db_finalize(st);
    mt_db_close(db);
}

/* ---- round trips ------------------------------------------------------------ */

static void test_roundtrip(void **state)
{
    (void)state;
    mt_ostore *s = open_store(NULL);
    size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 7};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        uint8_t *p = pattern(n, (unsigned)k);
        mt_id id;
        mt_id_new(&id);
        char sha[65], want[65];
        mt_err err = {0};
        assert_int_equal(mt_ostore_put(s, id.s, p, n, sha, &err), MT_OK);
        sha_hex(p, n, want);
        assert_string_equal(sha, want);
        uint64_t sz = 99;
        bool ex = false;
        assert_int_equal(mt_ostore_size(s, id.s, &sz, &err), MT_OK);
        assert_int_equal(sz, n);
        assert_int_equal(mt_ostore_exists(s, id.s, &ex, &err), MT_OK);
        assert_true(ex);
        expect_object(s, id.s, p, n);
        /* the streaming reader in odd pieces */
        mt_ostore_reader *r = NULL;
        assert_int_equal(mt_ostore_reader_open(s, id.s, &r, &sz, &err), MT_OK);
        assert_int_equal(sz, n);
        uint8_t *buf = malloc(n + 1);
        size_t got = 0, m = 1;
        while (m > 0) {
            assert_int_equal(mt_ostore_reader_read(r, buf + got, 13, &m, &err), MT_OK);
            got += m;
        }
        assert_int_equal(got, n);
        assert_memory_equal(buf, p, n);
        mt_ostore_reader_close(r);
        /* too big for the caller's limit */
        uint8_t *b2 = NULL;
        size_t l2 = 0;
        if (n > 0)
            assert_int_equal(mt_ostore_get(s, id.s, n - 1, &b2, &l2, &err), MT_ETOOBIG);
        assert_int_equal(mt_ostore_delete(s, id.s, &err), MT_OK);
        assert_int_equal(mt_ostore_exists(s, id.s, &ex, &err), MT_OK);
        assert_false(ex);
        free(buf);
        free(p);
    }
    mt_ostore_close(s);
}

static void test_writer(void **state)
{
    (void)state;
    mt_ostore *s = open_store(NULL);
    size_t n = 3 * CHUNK + 50;
    uint8_t *p = pattern(n, 9);
    mt_id id;
    mt_id_new(&id);
    mt_err err = {0};
    mt_ostore_writer *w = NULL;
    assert_int_equal(mt_ostore_writer_new(s, &w, &err), MT_OK);
    for (size_t off = 0; off < n; off += 37)
        assert_int_equal(mt_ostore_writer_write(w, p + off, n - off < 37 ? n - off : 37, &err),
                         MT_OK);
    assert_int_equal(mt_ostore_writer_size(w), n);
    bool ex = true;
    assert_int_equal(mt_ostore_exists(s, id.s, &ex, &err), MT_OK);
    assert_false(ex); /* nothing before the commit */
    char sha[65], want[65];
    assert_int_equal(mt_ostore_writer_commit(w, id.s, sha, &err), MT_OK);
    sha_hex(p, n, want);
    assert_string_equal(sha, want);
    /* one commit per writer */
    assert_int_equal(mt_ostore_writer_write(w, p, 1, &err), MT_EINVAL);
    assert_int_equal(mt_ostore_writer_commit(w, id.s, sha, &err), MT_EINVAL);
    mt_ostore_writer_free(w);
    expect_object(s, id.s, p, n);

    /* a writer freed without commit leaves nothing */
    mt_id id2;
    mt_id_new(&id2);
    assert_int_equal(mt_ostore_writer_new(s, &w, &err), MT_OK);
    assert_int_equal(mt_ostore_writer_write(w, p, n, &err), MT_OK);
    mt_ostore_writer_free(w);
    assert_int_equal(mt_ostore_exists(s, id2.s, &ex, &err), MT_OK);
    assert_false(ex);
    /* a bad id at commit is refused and the writer can still commit */
    assert_int_equal(mt_ostore_writer_new(s, &w, &err), MT_OK);
    assert_int_equal(mt_ostore_writer_write(w, p, 10, &err), MT_OK);
    assert_int_equal(mt_ostore_writer_commit(w, "../../etc/passwd", sha, &err), MT_EINVAL);
    assert_int_equal(mt_ostore_writer_commit(w, id2.s, sha, &err), MT_OK);
    mt_ostore_writer_free(w);
    expect_object(s, id2.s, p, 10);

    /* replace: the new version whole, the old chunks gone */
    uint8_t *q = pattern(CHUNK + 3, 4);
    assert_int_equal(mt_ostore_put(s, id.s, q, CHUNK + 3, NULL, &err), MT_OK);
    expect_object(s, id.s, q, CHUNK + 3);
    if (is_db()) {
        mt_db *db = NULL;
        assert_int_equal(mt_db_open(where, 0, &db, &err), MT_OK);
        mt_db_stmt *st = NULL;
        assert_int_equal(mt_db_prepare(db,
                                       "SELECT count(*) FROM object_chunks c JOIN object_data d "
                                       "ON c.gen = d.gen WHERE d.id IN (?, ?)",
                                       &st, &err),
                         MT_OK);
        mt_db_bind_text(st, 1, id.s);
        mt_db_bind_text(st, 2, id2.s);
        mt_status rc = MT_OK;
        assert_int_equal(mt_db_step(st, &rc, &err), MT_DB_ROW);
        assert_int_equal(mt_db_col_int64(st, 0), 2 + 1);
        mt_db_finalize(st);
        mt_db_close(db);
        assert_no_orphans(); /* the old version's chunks are deleted */
    }
    mt_ostore_delete(s, id.s, NULL);
    mt_ostore_delete(s, id2.s, NULL);
    free(q);
    free(p);
    mt_ostore_close(s);
}

/* ---- bad input ----------------------------------------------------------------- */

static void test_missing_and_bad_ids(void **state)
{
    (void)state;
    mt_ostore *s = open_store(NULL);
    mt_id id;
    mt_id_new(&id);
    mt_err err = {0};
    uint8_t *b = (uint8_t *)1;
    size_t n = 7;
    uint64_t sz = 7;
    assert_int_equal(mt_ostore_get(s, id.s, 100, &b, &n, &err), MT_ENOTFOUND);
    assert_null(b);
    assert_non_null(strstr(err.msg, "does not exist"));
    assert_int_equal(mt_ostore_size(s, id.s, &sz, &err), MT_ENOTFOUND);
    mt_ostore_reader *r = (mt_ostore_reader *)1;
    assert_int_equal(mt_ostore_reader_open(s, id.s, &r, NULL, &err), MT_ENOTFOUND);
    assert_null(r);
    assert_int_equal(mt_ostore_delete(s, id.s, &err), MT_OK);
    char path[4096];
    mt_ostore_close(s);
    s = open_store(tmpdir);
    assert_int_equal(mt_ostore_local(s, id.s, path, sizeof path, &err), MT_ENOTFOUND);
    const char *bad[] = {"", "../../etc/passwd", "0123456789ABCDEF0123456789abcdef",
                         "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
                         "0123456789abcdef/123456789abcdef"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bool ex;
        assert_int_equal(mt_ostore_put(s, bad[i], (const uint8_t *)"x", 1, NULL, &err), MT_EINVAL);
        assert_int_equal(mt_ostore_size(s, bad[i], &sz, &err), MT_EINVAL);
        assert_int_equal(mt_ostore_exists(s, bad[i], &ex, &err), MT_EINVAL);
        assert_int_equal(mt_ostore_delete(s, bad[i], &err), MT_EINVAL);
        assert_int_equal(mt_ostore_get(s, bad[i], 10, &b, &n, &err), MT_EINVAL);
        assert_int_equal(mt_ostore_local(s, bad[i], path, sizeof path, &err), MT_EINVAL);
    }
    assert_int_equal(mt_ostore_put(s, NULL, (const uint8_t *)"x", 1, NULL, &err), MT_EINVAL);
    mt_ostore_close(s);
}

/* Runs one statement on the store's database (tampering, as a hostile host could). */
static void db_exec1(const char *sql, const char *a, int64_t b)
{
    mt_db *db = NULL;
    mt_err err = {0};
    assert_int_equal(mt_db_open(where, 0, &db, &err), MT_OK);
    mt_db_stmt *st = NULL;
    if (mt_db_prepare(db, sql, &st, &err))
        fail_msg("%s: %s", sql, err.msg);
    mt_db_bind_text(st, 1, a);
    if (mt_db_param_count(st) >= 2)
        mt_db_bind_int64(st, 2, b);
    mt_status rc = MT_OK;
    mt_db_step(st, &rc, &err);
    if (rc)
        fail_msg("%s: %s", sql, err.msg);
    mt_db_finalize(st);
    mt_db_close(db);
}

static void expect_damaged(mt_ostore *s, const char *id, const char *msg_part)
{
    uint8_t *b = NULL;
    size_t n = 0;
    mt_err err = {0};
    assert_int_equal(mt_ostore_get(s, id, SIZE_MAX, &b, &n, &err), MT_EIO);
    assert_null(b);
    if (!strstr(err.msg, msg_part) || !strstr(err.msg, id))
        fail_msg("message '%s' lacks '%s' or the id", err.msg, msg_part);
    bool ex = false;
    assert_int_equal(mt_ostore_exists(s, id, &ex, &err), MT_OK);
    assert_true(ex);
}

static void test_damaged_chunks(void **state)
{
    (void)state;
    if (!is_db())
        skip();
    mt_ostore *s = open_store(NULL);
    size_t n = 4 * CHUNK + 10;
    uint8_t *p = pattern(n, 3);
    mt_id id;
    mt_id_new(&id);
    mt_err err = {0};
    const char *gen_of = "(SELECT gen FROM object_data WHERE id = ?)";
    char sql[256];

    /* a chunk missing: truncated set */
    assert_int_equal(mt_ostore_put(s, id.s, p, n, NULL, &err), MT_OK);
    snprintf(sql, sizeof sql, "DELETE FROM object_chunks WHERE gen = %s AND seq = ?", gen_of);
    db_exec1(sql, id.s, 2);
    expect_damaged(s, id.s, "chunk 2 of 5 missing");
    /* the last chunk gone */
    assert_int_equal(mt_ostore_put(s, id.s, p, n, NULL, &err), MT_OK);
    db_exec1(sql, id.s, 4);
    expect_damaged(s, id.s, "chunk 4 of 5 missing");
    /* a chunk of the wrong length */
    assert_int_equal(mt_ostore_put(s, id.s, p, n, NULL, &err), MT_OK);
    snprintf(sql, sizeof sql, "UPDATE object_chunks SET data = ? WHERE gen = %s AND seq = 1",
             gen_of);
    {
        mt_db *db = NULL;
        assert_int_equal(mt_db_open(where, 0, &db, &err), MT_OK);
        mt_db_stmt *st = NULL;
        assert_int_equal(mt_db_prepare(db, sql, &st, &err), MT_OK);
        mt_db_bind_blob(st, 1, p, 17);
        mt_db_bind_text(st, 2, id.s);
        mt_status rc = MT_OK;
        mt_db_step(st, &rc, &err);
        assert_int_equal(rc, MT_OK);
        mt_db_finalize(st);
        mt_db_close(db);
    }
    expect_damaged(s, id.s, "chunk 1 of 5 has 17 bytes, expected 100");
    /* an inconsistent header: more chunks than the size needs, a huge size,
     * the largest size (no overflow computing its chunk count), a negative
     * size, a zero chunk size: refused before any allocation */
    const char *heads[] = {"UPDATE object_data SET chunks = chunks + 1 WHERE id = ?",
                           "UPDATE object_data SET size = 9000000000000000000 WHERE id = ?",
                           "UPDATE object_data SET size = 9223372036854775807 WHERE id = ?",
                           "UPDATE object_data SET size = -5 WHERE id = ?",
                           "UPDATE object_data SET chunk_size = 0 WHERE id = ?"};
    for (size_t i = 0; i < sizeof heads / sizeof *heads; i++) {
        assert_int_equal(mt_ostore_put(s, id.s, p, n, NULL, &err), MT_OK);
        db_exec1(heads[i], id.s, 0);
        expect_damaged(s, id.s, "inconsistent");
        uint64_t sz;
        assert_int_equal(mt_ostore_size(s, id.s, &sz, &err), MT_EIO);
    }
    /* a damaged object can still be replaced and deleted */
    assert_int_equal(mt_ostore_put(s, id.s, p, n, NULL, &err), MT_OK);
    expect_object(s, id.s, p, n);
    db_exec1(heads[4], id.s, 0);
    assert_int_equal(mt_ostore_delete(s, id.s, &err), MT_OK);
    bool ex = true;
    assert_int_equal(mt_ostore_exists(s, id.s, &ex, &err), MT_OK);
    assert_false(ex);
    assert_no_orphans();
    free(p);
    mt_ostore_close(s);
}

static void test_reader_pinned(void **state)
{
    (void)state;
    mt_ostore *s = open_store(NULL);
    size_t n = 3 * CHUNK;
    uint8_t *a = pattern(n, 1), *b = pattern(n, 2);
    mt_id id;
    mt_id_new(&id);
    mt_err err = {0};
    assert_int_equal(mt_ostore_put(s, id.s, a, n, NULL, &err), MT_OK);
    mt_ostore_reader *r = NULL;
    assert_int_equal(mt_ostore_reader_open(s, id.s, &r, NULL, &err), MT_OK);
    uint8_t buf[3 * CHUNK];
    size_t m = 0;
    assert_int_equal(mt_ostore_reader_read(r, buf, CHUNK, &m, &err), MT_OK);
    assert_int_equal(m, CHUNK);
    assert_int_equal(mt_ostore_put(s, id.s, b, n, NULL, &err), MT_OK);
    size_t got = m;
    mt_status rc = MT_OK;
    while (!rc && got < n && (rc = mt_ostore_reader_read(r, buf + got, n - got, &m, &err)) == 0)
        got += m;
    if (is_db()) { /* the pinned version is gone: an error, never a mix */
        assert_int_equal(rc, MT_EIO);
        assert_non_null(strstr(err.msg, "missing"));
    } else { /* the open descriptor still reads the old file whole */
        assert_int_equal(rc, MT_OK);
        assert_memory_equal(buf, a, n);
    }
    mt_ostore_reader_close(r);
    expect_object(s, id.s, b, n);
    mt_ostore_delete(s, id.s, NULL);
    free(a);
    free(b);
    mt_ostore_close(s);
}

/* ---- concurrency ------------------------------------------------------------------ */

typedef struct racer {
    const char *id;
    const uint8_t *data;
    size_t n;
    pthread_barrier_t *bar;
    int ok;
} racer;

static void *race(void *arg)
{
    racer *x = arg;
    mt_ostore *s = open_store(NULL); /* its own connection */
    for (int i = 0; i < 5; i++) {
        mt_err err = {0};
        pthread_barrier_wait(x->bar);
        if (mt_ostore_put(s, x->id, x->data, x->n, NULL, &err) == MT_OK)
            x->ok++;
        pthread_barrier_wait(x->bar);
    }
    mt_ostore_close(s);
    return NULL;
}

static void test_concurrent_put(void **state)
{
    (void)state;
    size_t n = 6 * CHUNK + 1;
    uint8_t *a = pattern(n, 5), *b = pattern(n, 6);
    mt_id id;
    mt_id_new(&id);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    racer ra = {id.s, a, n, &bar, 0}, rb = {id.s, b, n, &bar, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, race, &ra);
    pthread_create(&tb, NULL, race, &rb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&bar);
    /* every put stored a whole version (a lost insert race runs again) */
    assert_int_equal(ra.ok + rb.ok, 10);
    assert_no_orphans(); /* each replaced version went with its chunks */
    mt_ostore *s = open_store(NULL);
    uint8_t *got = NULL;
    size_t len = 0;
    mt_err err = {0};
    assert_int_equal(mt_ostore_get(s, id.s, SIZE_MAX, &got, &len, &err), MT_OK);
    assert_int_equal(len, n);
    assert_true(!memcmp(got, a, n) || !memcmp(got, b, n)); /* one whole version */
    free(got);
    mt_ostore_delete(s, id.s, NULL);
    mt_ostore_close(s);
    free(a);
    free(b);
}

/* ---- local paths, copies ------------------------------------------------------------ */

static void test_local_and_copy(void **state)
{
    (void)state;
    char cache[300], other[300];
    snprintf(cache, sizeof cache, "%s/cache", tmpdir);
    snprintf(other, sizeof other, "dir:%s/other", tmpdir);
    mt_ostore *s = open_store(cache);
    size_t n = 2 * CHUNK + 5;
    uint8_t *a = pattern(n, 7), *b = pattern(n + 1, 8);
    mt_id id;
    mt_id_new(&id);
    mt_err err = {0};
    assert_int_equal(mt_ostore_put(s, id.s, a, n, NULL, &err), MT_OK);
    char path[4096];
    assert_int_equal(mt_ostore_local(s, id.s, path, sizeof path, &err), MT_OK);
    uint8_t *f = NULL;
    size_t fl = 0;
    assert_int_equal(mt_file_read(path, SIZE_MAX, &f, &fl, &err), MT_OK);
    assert_int_equal(fl, n);
    assert_memory_equal(f, a, n);
    free(f);
    assert_non_null(strstr(path, is_db() ? "/cache/objects/" : "/objects/"));
    /* a replace through the store drops the cached copy */
    assert_int_equal(mt_ostore_put(s, id.s, b, n + 1, NULL, &err), MT_OK);
    assert_int_equal(mt_ostore_local(s, id.s, path, sizeof path, &err), MT_OK);
    assert_int_equal(mt_file_read(path, SIZE_MAX, &f, &fl, &err), MT_OK);
    assert_int_equal(fl, n + 1);
    assert_memory_equal(f, b, n + 1);
    free(f);
    /* copy to a directory store and back under another id */
    mt_ostore *d = NULL;
    assert_int_equal(mt_ostore_open(other, NULL, &d, &err), MT_OK);
    char sha[65], want[65];
    assert_int_equal(mt_ostore_copy(s, d, id.s, sha, &err), MT_OK);
    sha_hex(b, n + 1, want);
    assert_string_equal(sha, want);
    expect_object(d, id.s, b, n + 1);
    mt_ostore_delete(s, id.s, NULL);
    assert_int_equal(mt_ostore_copy(d, s, id.s, NULL, &err), MT_OK);
    expect_object(s, id.s, b, n + 1);
    mt_id id2;
    mt_id_new(&id2);
    assert_int_equal(mt_ostore_copy(d, s, id2.s, NULL, &err), MT_ENOTFOUND);
    mt_ostore_delete(s, id.s, NULL);
    mt_ostore_close(d);
    mt_ostore_close(s);
    /* without a cache directory a database store has no local path */
    if (is_db()) {
        s = open_store(NULL);
        assert_int_equal(mt_ostore_put(s, id.s, a, n, NULL, &err), MT_OK);
        assert_int_equal(mt_ostore_local(s, id.s, path, sizeof path, &err), MT_EINVAL);
        assert_non_null(strstr(err.msg, "cache directory"));
        mt_ostore_delete(s, id.s, NULL);
        mt_ostore_close(s);
    }
    free(a);
    free(b);
}

static void test_url_and_opts_garbage(void **state)
{
    (void)state;
    assert_int_equal(mt_ostore_url_kind("postgres://h/db"), MT_OSTORE_DB);
    assert_int_equal(mt_ostore_url_kind("postgresql://h/db"), MT_OSTORE_DB);
    assert_int_equal(mt_ostore_url_kind("/var/lib/mesatee"), MT_OSTORE_DIR);
    assert_int_equal(mt_ostore_url_kind("dir:/mnt/shared"), MT_OSTORE_DIR);
    assert_int_equal(mt_ostore_url_kind("rel/dir"), MT_OSTORE_DIR);
    assert_int_equal(mt_ostore_url_kind("s3://bucket"), 0);
    assert_int_equal(mt_ostore_url_kind("file:/x"), 0);
    assert_int_equal(mt_ostore_url_kind(""), 0);
    assert_int_equal(mt_ostore_url_kind(NULL), 0);
    assert_int_equal(mt_ostore_url_kind(":x"), 0);
    mt_ostore *s = (mt_ostore *)1;
    mt_err err = {0};
    const char *bad[] = {"", "s3://bucket/x", "dir:", "mysql://u@h/db", "file:/tmp/x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(mt_ostore_open(bad[i], NULL, &s, &err), MT_EINVAL);
        assert_null(s);
        assert_non_null(strstr(err.msg, "object store URL"));
    }
    mt_ostore_opts o = {.chunk_size = 1};
    assert_int_equal(mt_ostore_open(tmpdir, &o, &s, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "chunk size"));
    o.chunk_size = (size_t)MT_OSTORE_CHUNK_MAX + 1;
    assert_int_equal(mt_ostore_open_db(where, &o, &s, &err), MT_EINVAL);
    /* an unreachable database: an error without the password */
    assert_int_not_equal(mt_ostore_open("postgres://u:s3cretpw@127.0.0.1:1/x?connect_timeout=2",
                                        NULL, &s, &err),
                         MT_OK);
    assert_null(s);
    assert_null(strstr(err.msg, "s3cretpw"));
    /* a spool directory that does not exist: the writer says so */
    if (is_db()) {
        mt_ostore_opts o2 = {.chunk_size = CHUNK, .spool_dir = "/nonexistent-mt-spool"};
        assert_int_equal(mt_ostore_open_db(where, &o2, &s, &err), MT_OK);
        mt_ostore_writer *w = (mt_ostore_writer *)1;
        assert_int_equal(mt_ostore_writer_new(s, &w, &err), MT_EIO);
        assert_null(w);
        assert_non_null(strstr(err.msg, "TMPDIR"));
        mt_ostore_close(s);
    }
}
/* The cache is used only while its digest is the recorded one: a same-size
 * change of the cached file is fetched again. put_fd stores a file; put_in
 * (database) commits and rolls back with the caller's transaction. */
static void test_cache_digest_and_put_in(void **state)
{
    (void)state;
    char cache[300], fpath[320];
    snprintf(cache, sizeof cache, "%s/cache2", tmpdir);
    mt_ostore *s = open_store(cache);
    size_t n = 3 * CHUNK + 1;
    uint8_t *a = pattern(n, 11);
    snprintf(fpath, sizeof fpath, "%s/src.bin", tmpdir);
    mt_err err = {0};
    assert_int_equal(mt_file_write_atomic(fpath, a, n, 0600, &err), MT_OK);
    int fd = open(fpath, O_RDONLY);
    assert_true(fd >= 0);
    mt_id id;
    mt_id_new(&id);
    char sha[65], want[65];
    sha_hex(a, n, want);
    assert_int_equal(mt_ostore_put_fd(s, id.s, fd, n, sha, &err), MT_OK);
    assert_string_equal(sha, want);
    assert_int_equal(mt_ostore_put_fd(s, id.s, fd, n + 1, NULL, &err), MT_EIO); /* wrong size */
    expect_object(s, id.s, a, n);
    char path[4096];
    assert_int_equal(mt_ostore_local(s, id.s, path, sizeof path, &err), MT_OK);
    if (is_db()) {
        /* same size, other bytes in the cache: refetched, not used */
        uint8_t *junk = pattern(n, 99);
        assert_int_equal(mt_file_write_atomic(path, junk, n, 0600, &err), MT_OK);
        free(junk);
        assert_int_equal(mt_ostore_local(s, id.s, path, sizeof path, &err), MT_OK);
        uint8_t *f = NULL;
        size_t fl = 0;
        assert_int_equal(mt_file_read(path, SIZE_MAX, &f, &fl, &err), MT_OK);
        assert_int_equal(fl, n);
        assert_memory_equal(f, a, n);
        free(f);
        /* bytes changed in the database under an unchanged header: refused */
        unlink(path);
        bool pg = !strncmp(where, "postgres", 8);
        db_exec1(pg ? "UPDATE object_chunks SET data = decode(repeat('00', length(data)), 'hex') "
                      "WHERE seq = ?2 AND gen = (SELECT gen FROM object_data WHERE id = ?1)"
                    : "UPDATE object_chunks SET data = zeroblob(length(data)) "
                      "WHERE seq = ?2 AND gen = (SELECT gen FROM object_data WHERE id = ?1)",
                 id.s, 1);
        assert_int_equal(mt_ostore_local(s, id.s, path, sizeof path, &err), MT_EIO);
        assert_non_null(strstr(err.msg, "do not match the SHA-256"));
        assert_int_equal(access(path, F_OK), -1); /* no bad copy left */
        /* put_in: rolled back with the caller's transaction, committed with it */
        mt_db *db = NULL;
        assert_int_equal(mt_db_open(where, 0, &db, &err), MT_OK);
        mt_id id2;
        mt_id_new(&id2);
        assert_int_equal(mt_db_begin(db, MT_DB_TX_IMMEDIATE, &err), MT_OK);
        assert_int_equal(mt_ostore_put_fd_in(s, db, id2.s, fd, n, sha, &err), MT_OK);
        assert_string_equal(sha, want);
        mt_db_rollback(db);
        bool ex = true;
        assert_int_equal(mt_ostore_exists(s, id2.s, &ex, &err), MT_OK);
        assert_false(ex);
        assert_int_equal(mt_db_begin(db, MT_DB_TX_IMMEDIATE, &err), MT_OK);
        assert_int_equal(mt_ostore_put_in(s, db, id2.s, a, n, NULL, &err), MT_OK);
        assert_int_equal(mt_db_commit(db, &err), MT_OK);
        mt_db_close(db);
        expect_object(s, id2.s, a, n);
        mt_ostore_delete(s, id2.s, NULL);
        mt_ostore_delete(s, id.s, NULL);
        assert_no_orphans();
        free(a);
        mt_ostore_close(s);
        close(fd);
        return;
    }
    /* put_in is for the database backend only */
    mt_db *db = NULL;
    assert_int_equal(mt_ostore_put_fd_in(s, db, id.s, fd, n, NULL, &err), MT_EINVAL);
    close(fd);
    mt_ostore_delete(s, id.s, NULL);
    mt_ostore_close(s);
    free(a);
}

/* ---- staged uploads (executor outputs, --objects db) -------------------------- */

static int64_t count_rows(const char *sql)
{
    mt_db *db = NULL;
    mt_err err = {0};
    assert_int_equal(mt_db_open(where, 0, &db, &err), MT_OK);
    mt_db_stmt *st = NULL;
    if (mt_db_prepare(db, sql, &st, &err))
        fail_msg("%s: %s", sql, err.msg);
    mt_status rc = MT_OK;
    assert_int_equal(mt_db_step(st, &rc, &err), MT_DB_ROW);
    int64_t n = mt_db_col_int64(st, 0);
    mt_db_finalize(st);
    mt_db_close(db);
    return n;
}

/* Stages p[0..n) as (task, fence, obj) in pieces of 37 bytes. */
static void stage(mt_ostore *s, const char *task, int64_t fence, const char *obj,
                  const uint8_t *p, size_t n, char sha[65])
{
    mt_ostore_stage *w = NULL;
    mt_err err = {0};
    if (mt_ostore_stage_begin(s, task, fence, obj, n, 1 << 20, &w, &err))
        fail_msg("stage_begin: %s", err.msg);
    for (size_t off = 0; off < n; off += 37)
        assert_int_equal(mt_ostore_stage_write(w, p + off, n - off < 37 ? n - off : 37, &err),
                         MT_OK);
    if (mt_ostore_stage_commit(w, sha, &err))
        fail_msg("stage_commit: %s", err.msg);
    mt_ostore_stage_free(w);
}

/* publish_in of (task, fence, obj) in a transaction: committed when it
 * succeeds, rolled back otherwise; returns its status (message in err). */
static mt_status publish(mt_ostore *s, const char *task, int64_t fence, const char *obj,
                         size_t n, const char *sha, mt_err *err)
{
    mt_db *db = NULL;
    assert_int_equal(mt_db_open(where, 0, &db, err), MT_OK);
    assert_int_equal(mt_db_begin(db, MT_DB_TX_IMMEDIATE, err), MT_OK);
    mt_status rc = mt_ostore_stage_publish_in(s, db, task, fence, obj, n, sha, err);
    if (rc)
        mt_db_rollback(db);
    else
        assert_int_equal(mt_db_commit(db, err), MT_OK);
    mt_db_close(db);
    return rc;
}

static bool keep_fence5(void *ctx, const char *task, int64_t fence)
{
    (void)ctx;
    (void)task;
    return fence == 5;
}

/* Concurrent uploads of different outputs of one lease (executor slots), each
 * on its own node's connection, racing to begin: together they may not pass
 * the cap, so of 4 that each take more than a third of it, at most 2 begin
 * per round (the check and the reservation are one locked transaction). */
typedef struct slot_racer {
    const char *task;
    mt_id obj;
    uint64_t size, cap;
    pthread_barrier_t *bar;
    int ok;
} slot_racer;

static void *slot_race(void *arg)
{
    slot_racer *x = arg;
    mt_ostore *s = open_store(NULL); /* its own connection */
    for (int i = 0; i < 5; i++) {
        mt_err err = {0};
        mt_ostore_stage *w = NULL;
        pthread_barrier_wait(x->bar);
        if (mt_ostore_stage_begin(s, x->task, 9 + i, x->obj.s, x->size, x->cap, &w, &err) ==
            MT_OK)
            x->ok++;
        pthread_barrier_wait(x->bar); /* every begin of the round done */
        mt_ostore_stage_free(w);
    }
    mt_ostore_close(s);
    return NULL;
}

static void test_staging_slots_race(void **state)
{
    (void)state;
    if (!is_db())
        return;
    mt_id task;
    mt_id_new(&task);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 4);
    slot_racer r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (slot_racer){task.s, {{0}}, 40, 100, &bar, 0};
        mt_id_new(&r[i].obj);
        assert_int_equal(pthread_create(&th[i], NULL, slot_race, &r[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].ok;
    }
    pthread_barrier_destroy(&bar);
    assert_int_equal(ok, 5 * 2); /* two fit in each round, never three */
    assert_int_equal(count_rows("SELECT count(*) FROM object_stage_reserve"), 0);
}

static void test_staging(void **state)
{
    (void)state;
    mt_ostore *s = open_store(NULL);
    mt_id task, obj, obj2;
    mt_id_new(&task);
    mt_id_new(&obj);
    mt_id_new(&obj2);
    mt_err err = {0};
    mt_ostore_stage *w = NULL;
    if (!is_db()) { /* the directory backend stages in files (the core) */
        assert_int_equal(mt_ostore_stage_begin(s, task.s, 1, obj.s, 1, 10, &w, &err), MT_EINVAL);
        mt_ostore_close(s);
        return;
    }
    size_t n = 3 * CHUNK + 7;
    uint8_t *p = pattern(n, 3);
    char sha[65], want[65], got[65];
    sha_hex(p, n, want);
    /* bad keys */
    assert_int_equal(mt_ostore_stage_begin(s, "../x", 1, obj.s, 1, 10, &w, &err), MT_EINVAL);
    assert_int_equal(mt_ostore_stage_begin(s, task.s, -1, obj.s, 1, 10, &w, &err), MT_EINVAL);
    assert_int_equal(mt_ostore_stage_begin(s, task.s, 1, "ABC", 1, 10, &w, &err), MT_EINVAL);
    /* round trip; nothing is the object before publish */
    stage(s, task.s, 3, obj.s, p, n, sha);
    assert_string_equal(sha, want);
    uint64_t sz = 0;
    assert_int_equal(mt_ostore_stage_info(s, task.s, 3, obj.s, &sz, got, &err), MT_OK);
    assert_int_equal(sz, n);
    assert_string_equal(got, want);
    assert_int_equal(mt_ostore_stage_info(s, task.s, 4, obj.s, &sz, got, &err), MT_ENOTFOUND);
    bool ex = true;
    assert_int_equal(mt_ostore_exists(s, obj.s, &ex, &err), MT_OK);
    assert_false(ex);
    /* the bound per lease: other outputs of the lease count, the same one
     * (a retried upload) does not */
    assert_int_equal(mt_ostore_stage_begin(s, task.s, 3, obj2.s, 1, n, &w, &err), MT_ETOOBIG);
    assert_int_equal(mt_ostore_stage_begin(s, task.s, 3, obj.s, n, n, &w, &err), MT_OK);
    /* more than announced; an incomplete commit; freed uncommitted: no rows */
    assert_int_equal(mt_ostore_stage_write(w, p, 2 * CHUNK, &err), MT_OK);
    assert_int_equal(mt_ostore_stage_write(w, p, n, &err), MT_EINVAL);
    assert_int_equal(mt_ostore_stage_commit(w, NULL, &err), MT_EINVAL);
    mt_ostore_stage_free(w);
    w = NULL;
    assert_int_equal(count_rows("SELECT count(*) FROM object_stage_chunks"), 4);
    /* a report naming other bytes; a tampered chunk (other bytes, same
     * length); a truncated chunk; a missing chunk: refused, nothing stored */
    char bad[65];
    memcpy(bad, want, 65);
    bad[0] = bad[0] == '0' ? '1' : '0';
    assert_int_equal(publish(s, task.s, 3, obj.s, n, bad, &err), MT_EIO);
    assert_int_equal(publish(s, task.s, 3, obj.s, n + 1, want, &err), MT_EIO);
    const char *gen = "(SELECT gen FROM object_stage WHERE object = ?)";
    char sql[256];
    uint8_t *other = pattern(CHUNK, 99);
    snprintf(sql, sizeof sql, "UPDATE object_stage_chunks SET data = ? WHERE gen = %s AND seq = 1",
             gen);
    {
        mt_db *db = NULL;
        assert_int_equal(mt_db_open(where, 0, &db, &err), MT_OK);
        mt_db_stmt *st = NULL;
        assert_int_equal(mt_db_prepare(db, sql, &st, &err), MT_OK);
        mt_db_bind_blob(st, 1, other, CHUNK);
        mt_db_bind_text(st, 2, obj.s);
        mt_status rc = MT_OK;
        mt_db_step(st, &rc, &err);
        assert_int_equal(rc, MT_OK);
        mt_db_finalize(st);
        mt_db_close(db);
    }
    free(other);
    assert_int_equal(publish(s, task.s, 3, obj.s, n, want, &err), MT_EIO);
    if (!strstr(err.msg, "does not match the SHA-256") || !strstr(err.msg, obj.s))
        fail_msg("tampered chunk: %s", err.msg);
    assert_int_equal(mt_ostore_exists(s, obj.s, &ex, &err), MT_OK);
    assert_false(ex);
    stage(s, task.s, 3, obj.s, p, n, sha); /* a new upload replaces the damaged one */
    bool pg = !strncmp(where, "postgres", 8);
    snprintf(sql, sizeof sql,
             pg ? "UPDATE object_stage_chunks SET data = substring(data from 1 for 17) WHERE "
                  "gen = %s AND seq = ?"
                : "UPDATE object_stage_chunks SET data = substr(data, 1, 17) WHERE gen = %s AND "
                  "seq = ?",
             gen);
    db_exec1(sql, obj.s, 2);
    assert_int_equal(publish(s, task.s, 3, obj.s, n, want, &err), MT_EIO);
    if (!strstr(err.msg, "chunk 2 of 4: wrong length"))
        fail_msg("truncated chunk: %s", err.msg);
    stage(s, task.s, 3, obj.s, p, n, sha);
    snprintf(sql, sizeof sql, "DELETE FROM object_stage_chunks WHERE gen = %s AND seq = ?", gen);
    db_exec1(sql, obj.s, 3);
    assert_int_equal(publish(s, task.s, 3, obj.s, n, want, &err), MT_EIO);
    if (!strstr(err.msg, "has 3 chunk(s), expected 4"))
        fail_msg("missing chunk: %s", err.msg);
    assert_int_equal(mt_ostore_exists(s, obj.s, &ex, &err), MT_OK);
    assert_false(ex);
    /* a good upload: becomes the object (replacing an old version), its
     * staging rows go with the commit */
    assert_int_equal(mt_ostore_put(s, obj.s, p, 5, NULL, &err), MT_OK);
    stage(s, task.s, 3, obj.s, p, n, sha);
    if (publish(s, task.s, 3, obj.s, n, want, &err))
        fail_msg("publish: %s", err.msg);
    expect_object(s, obj.s, p, n);
    assert_int_equal(mt_ostore_stage_info(s, task.s, 3, obj.s, &sz, got, &err), MT_ENOTFOUND);
    assert_int_equal(count_rows("SELECT count(*) FROM object_stage_chunks"), 0);
    assert_int_equal(publish(s, task.s, 3, obj.s, n, want, &err), MT_ENOTFOUND);
    /* the sweep: lease 4 is not kept, lease 5 (an upload in progress) is */
    stage(s, task.s, 4, obj2.s, p, n, sha);
    assert_int_equal(mt_ostore_stage_begin(s, task.s, 5, obj2.s, n, n, &w, &err), MT_OK);
    assert_int_equal(mt_ostore_stage_write(w, p, 2 * CHUNK + 1, &err), MT_OK);
    size_t dropped = 0;
    assert_int_equal(mt_ostore_stage_sweep(s, keep_fence5, NULL, &dropped, &err), MT_OK);
    assert_int_equal(dropped, 1);
    assert_int_equal(count_rows("SELECT count(*) FROM object_stage"), 0);
    assert_int_equal(count_rows("SELECT count(*) FROM object_stage_chunks"), 2);
    assert_int_equal(mt_ostore_stage_drop(s, task.s, 5, &err), MT_OK);
    assert_int_equal(count_rows("SELECT count(*) FROM object_stage_chunks"), 0);
    mt_ostore_stage_free(w);
    w = NULL;
    /* uploads in flight count against the cap too: while obj's upload of n
     * bytes is open, another output of the lease may stage only what is
     * left of the cap (two concurrent slots cannot pass it together); a
     * retried upload of the same output does not count twice; a freed
     * upload gives its share back, and a committed one counts once */
    {
        mt_ostore_stage *w2 = NULL, *w3 = NULL;
        const uint64_t cap = n + 10;
        assert_int_equal(mt_ostore_stage_begin(s, task.s, 8, obj.s, n, cap, &w, &err), MT_OK);
        assert_int_equal(mt_ostore_stage_begin(s, task.s, 8, obj2.s, 11, cap, &w2, &err),
                         MT_ETOOBIG);
        assert_null(w2);
        assert_int_equal(mt_ostore_stage_begin(s, task.s, 8, obj.s, n, cap, &w3, &err), MT_OK);
        assert_int_equal(mt_ostore_stage_begin(s, task.s, 8, obj2.s, 10, cap, &w2, &err), MT_OK);
        assert_int_equal(count_rows("SELECT count(*) FROM object_stage_reserve"), 3);
        mt_ostore_stage_free(w2);
        mt_ostore_stage_free(w3);
        assert_int_equal(count_rows("SELECT count(*) FROM object_stage_reserve"), 1);
        assert_int_equal(mt_ostore_stage_write(w, p, n, &err), MT_OK);
        assert_int_equal(mt_ostore_stage_commit(w, NULL, &err), MT_OK);
        mt_ostore_stage_free(w);
        w = NULL;
        assert_int_equal(count_rows("SELECT count(*) FROM object_stage_reserve"), 0);
        assert_int_equal(mt_ostore_stage_begin(s, task.s, 8, obj2.s, 11, cap, &w2, &err),
                         MT_ETOOBIG);
        assert_int_equal(mt_ostore_stage_begin(s, task.s, 8, obj2.s, 10, cap, &w2, &err), MT_OK);
        mt_ostore_stage_free(w2);
        assert_int_equal(mt_ostore_stage_drop(s, task.s, 8, &err), MT_OK);
    }
    /* one sweep looks at every lease, not only the first 256: 300 stale
     * leases (chunks and reservations left by a dead node) all go */
    {
        mt_db *db = NULL;
        assert_int_equal(mt_db_open(where, 0, &db, &err), MT_OK);
        assert_int_equal(mt_db_begin(db, MT_DB_TX_IMMEDIATE, &err), MT_OK);
        for (int i = 0; i < 300; i++) {
            mt_id t, g;
            mt_id_new(&t);
            mt_id_new(&g);
            mt_db_stmt *st = NULL;
            assert_int_equal(mt_db_prepare(db,
                                           i < 280 ? "INSERT INTO object_stage_chunks(gen, task_id, "
                                                   "fence, seq, data) VALUES(?, ?, 7, 0, ?)"
                                                 : "INSERT INTO object_stage_reserve(gen, task_id, "
                                                   "fence, object, size, created_at) VALUES(?, ?, "
                                                   "7, ?, 1, 0)",
                                           &st, &err),
                             MT_OK);
            mt_db_bind_text(st, 1, g.s);
            mt_db_bind_text(st, 2, t.s);
            if (i < 280)
                mt_db_bind_blob(st, 3, p, 3);
            else
                mt_db_bind_text(st, 3, obj.s);
            mt_status rc = MT_OK;
            mt_db_step(st, &rc, &err);
            if (rc)
                fail_msg("insert: %s", err.msg);
            mt_db_finalize(st);
        }
        assert_int_equal(mt_db_commit(db, &err), MT_OK);
        mt_db_close(db);
        dropped = 0;
        assert_int_equal(mt_ostore_stage_sweep(s, keep_fence5, NULL, &dropped, &err), MT_OK);
        assert_int_equal(dropped, 300);
        assert_int_equal(count_rows("SELECT count(*) FROM object_stage_chunks"), 0);
        assert_int_equal(count_rows("SELECT count(*) FROM object_stage_reserve"), 0);
    }
    /* an empty output */
    stage(s, task.s, 6, obj2.s, p, 0, sha);
    sha_hex(p, 0, want);
    if (publish(s, task.s, 6, obj2.s, 0, want, &err))
        fail_msg("publish empty: %s", err.msg);
    expect_object(s, obj2.s, p, 0);
    mt_ostore_delete(s, obj.s, NULL);
    mt_ostore_delete(s, obj2.s, NULL);
    assert_no_orphans();
    free(p);
    mt_ostore_close(s);
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "dir") && strcmp(argv[1], "db")) || !*argv[2]) {
        fprintf(stderr, "usage: test_ostore dir PATH | test_ostore db URL\n");
        return 2;
    }
    mode = argv[1];
    where = argv[2];
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_writer),
        cmocka_unit_test(test_missing_and_bad_ids), cmocka_unit_test(test_damaged_chunks),
        cmocka_unit_test(test_reader_pinned),  cmocka_unit_test(test_concurrent_put),
        cmocka_unit_test(test_local_and_copy), cmocka_unit_test(test_url_and_opts_garbage),
        cmocka_unit_test(test_cache_digest_and_put_in), cmocka_unit_test(test_staging),
        cmocka_unit_test(test_staging_slots_race),
    };
    int r = cmocka_run_group_tests_name(mode, tests, NULL, NULL);
    char cmd[sizeof tmpdir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        r = r ? r : 1;
    return r;
}
