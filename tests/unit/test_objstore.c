/* Tests of untrusted_objstore: put/get/size/delete, id checks, sweep. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mt_util.h"
#include "untrusted_objstore.h"

static char dir[256];

static void rm_tree(void)
{
    char p[512];
    snprintf(p, sizeof p, "%s/objects", dir);
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char f[1024];
        snprintf(f, sizeof f, "%s/%s", p, e->d_name);
        unlink(f);
    }
    if (d)
        closedir(d);
    rmdir(p);
    rmdir(dir);
}

static void test_roundtrip(void **state)
{
    strcpy(dir, "/tmp/mt_obj_XXXXXX");
    assert_non_null(mkdtemp(dir));
    mt_objstore *s;
    mt_err err = {0};
    assert_int_equal(untrusted_objstore_open(dir, &s, &err), MT_OK);
    mt_id id;
    mt_id_new(&id);
    char sha[65];
    assert_int_equal(untrusted_objstore_put(s, id.s, (const uint8_t *)"abc", 3, sha, &err),
                     MT_OK);
    assert_string_equal(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    uint64_t size;
    assert_int_equal(untrusted_objstore_size(s, id.s, &size, &err), MT_OK);
    assert_int_equal(size, 3);
    uint8_t *data;
    size_t len;
    assert_int_equal(untrusted_objstore_get(s, id.s, 100, &data, &len, &err), MT_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "abc", 3);
    free(data);
    assert_int_equal(untrusted_objstore_get(s, id.s, 2, &data, &len, &err), MT_ETOOBIG);
    /* overwrite is atomic and replaces */
    assert_int_equal(untrusted_objstore_put(s, id.s, (const uint8_t *)"", 0, sha, &err), MT_OK);
    assert_int_equal(untrusted_objstore_size(s, id.s, &size, &err), MT_OK);
    assert_int_equal(size, 0);
    char path[512];
    assert_int_equal(untrusted_objstore_path(s, id.s, path, sizeof path, &err), MT_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(untrusted_objstore_delete(s, id.s, &err), MT_OK);
    assert_int_equal(untrusted_objstore_size(s, id.s, &size, &err), MT_ENOTFOUND);
    assert_int_equal(untrusted_objstore_get(s, id.s, 100, &data, &len, &err), MT_ENOTFOUND);
    assert_int_equal(untrusted_objstore_delete(s, id.s, &err), MT_OK); /* absent: fine */
    untrusted_objstore_close(s);
    untrusted_objstore_close(NULL);
    rm_tree();
}

static void test_bad_ids(void **state)
{
    strcpy(dir, "/tmp/mt_obj_XXXXXX");
    assert_non_null(mkdtemp(dir));
    mt_objstore *s;
    assert_int_equal(untrusted_objstore_open(dir, &s, NULL), MT_OK);
    const char *bad[] = {"../../../../etc/passwd", "", "ABCDEF0123456789ABCDEF0123456789",
                         "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
                         "0123456789abcdef/123456789abcdef", NULL};
    char sha[65];
    uint64_t size;
    for (int i = 0; bad[i]; i++) {
        mt_err err = {0};
        assert_int_equal(untrusted_objstore_put(s, bad[i], (const uint8_t *)"x", 1, sha, &err),
                         MT_EINVAL);
        assert_true(strlen(err.msg) > 0);
        assert_int_equal(untrusted_objstore_size(s, bad[i], &size, NULL), MT_EINVAL);
        assert_int_equal(untrusted_objstore_delete(s, bad[i], NULL), MT_EINVAL);
    }
    untrusted_objstore_close(s);
    rm_tree();
}

static void test_sweep(void **state)
{
    strcpy(dir, "/tmp/mt_obj_XXXXXX");
    assert_non_null(mkdtemp(dir));
    mt_objstore *s;
    assert_int_equal(untrusted_objstore_open(dir, &s, NULL), MT_OK);
    mt_id id;
    mt_id_new(&id);
    char sha[65], path[512], tmp[600];
    assert_int_equal(untrusted_objstore_put(s, id.s, (const uint8_t *)"v1", 2, sha, NULL), MT_OK);
    /* a crash in the middle of a second put leaves a temp file behind */
    assert_int_equal(untrusted_objstore_path(s, id.s, path, sizeof path, NULL), MT_OK);
    snprintf(tmp, sizeof tmp, "%s.tmp.1234.deadbeef", path);
    FILE *f = fopen(tmp, "w");
    fputs("partial", f);
    fclose(f);
    snprintf(tmp, sizeof tmp, "%s.tmp.abcdef012345", path); /* executor output temp */
    f = fopen(tmp, "w");
    fclose(f);
    assert_int_equal(untrusted_objstore_sweep(s), 2);
    assert_int_equal(untrusted_objstore_sweep(s), 0);
    uint8_t *data;
    size_t len;
    assert_int_equal(untrusted_objstore_get(s, id.s, 100, &data, &len, NULL), MT_OK);
    assert_memory_equal(data, "v1", 2); /* the committed object survives intact */
    free(data);
    untrusted_objstore_close(s);
    rm_tree();
}

/* Count of files in <dir>/objects whose name contains sub. */
static int count_files(const char *sub)
{
    char p[512];
    snprintf(p, sizeof p, "%s/objects", dir);
    DIR *d = opendir(p);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && strstr(e->d_name, sub))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Streaming writer (issue 8 item 6): pieces hashed as written, committed by
 * rename, removed when freed uncommitted, swept after a crash. */
static void test_writer(void **state)
{
    strcpy(dir, "/tmp/mt_obj_XXXXXX");
    assert_non_null(mkdtemp(dir));
    mt_objstore *s;
    mt_err err = {0};
    assert_int_equal(untrusted_objstore_open(dir, &s, &err), MT_OK);
    mt_objstore_writer *w;
    assert_int_equal(untrusted_objstore_writer_new(s, &w, &err), MT_OK);
    assert_int_equal(count_files(".tmp."), 1);
    assert_int_equal(untrusted_objstore_writer_write(w, (const uint8_t *)"a", 1, &err), MT_OK);
    assert_int_equal(untrusted_objstore_writer_write(w, (const uint8_t *)"bc", 2, &err), MT_OK);
    assert_int_equal(untrusted_objstore_writer_size(w), 3);
    uint8_t pre[8];
    assert_int_equal(untrusted_objstore_writer_prefix(w, pre, sizeof pre), 3);
    assert_memory_equal(pre, "abc", 3);
    mt_id id;
    mt_id_new(&id);
    char sha[65];
    assert_int_equal(untrusted_objstore_writer_commit(w, id.s, sha, &err), MT_OK);
    assert_string_equal(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_not_equal(untrusted_objstore_writer_write(w, (const uint8_t *)"x", 1, &err), MT_OK);
    untrusted_objstore_writer_free(w);
    assert_int_equal(count_files(".tmp."), 0);
    uint8_t *data;
    size_t len;
    assert_int_equal(untrusted_objstore_get(s, id.s, 100, &data, &len, &err), MT_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "abc", 3);
    free(data);
    /* freed without commit: nothing is left */
    assert_int_equal(untrusted_objstore_writer_new(s, &w, &err), MT_OK);
    assert_int_equal(untrusted_objstore_writer_write(w, (const uint8_t *)"zz", 2, &err), MT_OK);
    untrusted_objstore_writer_free(w);
    untrusted_objstore_writer_free(NULL);
    assert_int_equal(count_files(".tmp."), 0);
    /* a crash mid-upload leaves a temp file that the sweep removes */
    assert_int_equal(untrusted_objstore_writer_new(s, &w, &err), MT_OK);
    assert_int_equal(untrusted_objstore_sweep(s), 1);
    untrusted_objstore_writer_free(w);
    untrusted_objstore_close(s);
    rm_tree();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
