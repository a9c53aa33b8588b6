/* Tests of mt_executor_run with real worker processes (mesatee-worker and
 * mesatee-worker-test): built-ins, sandbox kills, limits, cancellation,
 * failure cleanup and concurrency. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "mt_executor.h"
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "job_codec.h"
#include "mt_ff.h"
#include "mt_util.h"
#include "worker_stderr.h"

#ifndef MT_WORKER_PATH
#error "MT_WORKER_PATH must be defined by the build"
#endif

/* ---- simulated output sync failures --------------------------------------
 * This program defines fsync and fdatasync itself (the executor's static
 * library calls these): when armed (sync_armed: SIM_FSYNC and/or
 * SIM_FDATASYNC, the calls that fail), the first such sync of each output
 * temp file ("*.tmp.*") fails with EIO and every later one succeeds, as Linux
 * reports a writeback error once per open file and then returns 0 for pages
 * that never reached the disk (test_output_sync_error, test_flush_error).
 * Armed or not, every sync of a temp file is counted, and so is each one
 * issued on a writable descriptor: the parent must sync through its own
 * read-only open file, never the worker's (test_output_sync_own_file). */
enum { SIM_FSYNC = 1, SIM_FDATASYNC = 2 };
static atomic_int sync_armed;
static pthread_mutex_t sync_mu = PTHREAD_MUTEX_INITIALIZER;
static char sync_failed[8][PATH_MAX]; /* under sync_mu */
static atomic_int sync_n_failed;
static atomic_int sync_n_tmp, sync_n_tmp_writable;

static int sim_sync(int fd, const char *name, int which)
{
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    char p[64], t[PATH_MAX];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(p, t, sizeof t - 1);
    if (n <= 0)
        return real(fd);
    t[n] = 0;
    if (!strstr(t, ".tmp."))
        return real(fd);
    atomic_fetch_add(&sync_n_tmp, 1);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY)
        atomic_fetch_add(&sync_n_tmp_writable, 1);
    if (!(atomic_load(&sync_armed) & which))
        return real(fd);
    pthread_mutex_lock(&sync_mu);
    int k = atomic_load(&sync_n_failed);
    bool fail_it = k < 8;
    for (int i = 0; i < k; i++)
        if (!strcmp(sync_failed[i], t))
            fail_it = false; /* reported once */
    if (fail_it) {
        snprintf(sync_failed[k], sizeof sync_failed[k], "%s", t);
        atomic_store(&sync_n_failed, k + 1);
    }
    pthread_mutex_unlock(&sync_mu);
    if (!fail_it)
        return real(fd);
    errno = EIO;
    return -1;
}

int fsync(int fd);
int fdatasync(int fd);
int fsync(int fd)
{
    return sim_sync(fd, "fsync", SIM_FSYNC);
}

int fdatasync(int fd)
{
    return sim_sync(fd, "fdatasync", SIM_FDATASYNC);
}

static char dir[256];

static int setup(void **state)
{
    strcpy(dir, "/tmp/mt_exec_XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

static void key_of(uint8_t key[32], int seed)
{
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(seed * 31 + i);
}

static char *path_of(const char *name)
{
    char *p = malloc(512);
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

/* Writes plaintext encrypted under key to dir/name; returns the path. */
static char *write_ct(const char *name, const uint8_t key[32], const char *plain)
{
    uint8_t *ct;
    size_t ct_len;
    assert_int_equal(mt_ff_encrypt(key, (const uint8_t *)plain, strlen(plain), &ct, &ct_len,
                                   NULL),
                     MT_OK);
    char *p = path_of(name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(ct, 1, ct_len, f), ct_len);
    fclose(f);
    free(ct);
    return p;
}

/* Decrypts the file at path; returns NUL-terminated plaintext. */
static char *read_pt(const char *path, const uint8_t key[32])
{
    uint8_t *ct, *pt;
    size_t ct_len, pt_len;
    assert_int_equal(mt_file_read(path, 1 << 26, &ct, &ct_len, NULL), MT_OK);
    assert_int_equal(mt_ff_decrypt(key, ct, ct_len, &pt, &pt_len, NULL), MT_OK);
    free(ct);
    char *s = malloc(pt_len + 1);
    memcpy(s, pt, pt_len);
    s[pt_len] = 0;
    free(pt);
    return s;
}

static size_t count_files(void)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static mt_job base_job(const char *fn, bool test_worker)
{
    mt_job j = {0};
    j.task_id = "00000000000000000000000000000001";
    j.executor_type = "builtin";
    j.function = fn;
    j.worker_path = test_worker ? MT_WORKER_TEST_PATH : MT_WORKER_PATH;
    j.limits.wall_ms = 20000;
    return j;
}

static void test_echo(void **state)
{
    mt_job j = base_job("echo", false);
    j.arguments = json_pack("{s:s}", "message", "hello, enclave");
    mt_job_result r;
    mt_err err = {0};
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, &err), MT_OK);
    assert_true(r.ok);
    assert_false(r.canceled);
    assert_string_equal(r.return_value, "hello, enclave");
    assert_null(r.failure_reason);
    assert_non_null(r.log);
    assert_true(r.wall_ms > 0);
    assert_true(r.peak_rss_kb > 0);
    assert_int_equal(r.bytes_in, 0);
    mt_job_result_clear(&r);
    json_decref(j.arguments);

    /* missing argument: a failure with a reason, not a crash */
    j = base_job("echo", false);
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, &err), MT_OK);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure_reason, "message"));
    mt_job_result_clear(&r);

    /* the worker checks the job against the built-in's schema (mt_bschema)
     * before running it: an unknown argument, a value out of range */
    j = base_job("echo", false);
    j.arguments = json_pack("{s:s, s:s}", "message", "hi", "zz", "1");
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, &err), MT_OK);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure_reason, "echo: unknown argument 'zz'"));
    mt_job_result_clear(&r);
    json_decref(j.arguments);
    j = base_job("psi", false);
    j.arguments = json_pack("{s:s}", "x", "S3CRET");
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, &err), MT_OK);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure_reason, "psi: unknown argument 'x'"));
    assert_null(strstr(r.failure_reason, "S3CRET"));
    mt_job_result_clear(&r);
    json_decref(j.arguments);

    /* unknown built-in; test built-ins absent from the production worker */
    j = base_job("__test_crash", false);
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, &err), MT_OK);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure_reason, "unknown built-in"));
    mt_job_result_clear(&r);
    assert_true(mt_builtin_exists("psi"));
    assert_true(mt_builtin_exists("echo"));
    assert_false(mt_builtin_exists("__test_crash"));
    assert_false(mt_builtin_exists("nope"));
}

static uint64_t psi_mem; /* the psi jobs' memory limit (0: the default) */

/* Runs psi over the given lists with n_out outputs; returns the result. */
static void run_psi(const char **lists, size_t n, size_t n_out, mt_job_result *r,
                    uint8_t out_keys[][32], char **out_paths)
{
    mt_job_input in[8] = {{0}};
    mt_job_output out[4] = {{0}};
    char name[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "in%zu", i);
        in[i].slot = strdup(name);
        key_of(in[i].key, (int)i + 1);
        in[i].path = write_ct(name, in[i].key, lists[i]);
    }
    for (size_t i = 0; i < n_out; i++) {
        snprintf(name, sizeof name, "out%zu", i);
        out[i].slot = strdup(name);
        key_of(out[i].key, (int)i + 100);
        memcpy(out_keys[i], out[i].key, 32);
        out[i].path = path_of(name);
        out_paths[i] = strdup(out[i].path);
    }
    mt_job j = base_job("psi", false);
    j.limits.mem_bytes = psi_mem;
    j.inputs = in;
    j.n_inputs = n;
    j.outputs = out;
    j.n_outputs = n_out;
    mt_err err = {0};
    assert_int_equal(mt_executor_run(&j, NULL, NULL, r, &err), MT_OK);
    for (size_t i = 0; i < n; i++) {
        free(in[i].slot);
        free(in[i].path);
    }
    for (size_t i = 0; i < n_out; i++) {
        free(out[i].slot);
        free(out[i].path);
    }
}

static void check_output(const mt_job_result *r, const char *slot, const char *path,
                         const uint8_t key[32], const char *expect)
{
    char *pt = read_pt(path, key);
    assert_string_equal(pt, expect);
    free(pt);
    json_t *o = json_object_get(r->outputs, slot);
    assert_non_null(o);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "size")), sb.st_size);
    assert_int_equal(strlen(json_string_value(json_object_get(o, "sha256"))), 64);
}

static void test_psi_two(void **state)
{
    const char *lists[] = {"id-b\nid-a\nid-c\nid-a\n\n", "id-c\r\nid-x\r\nid-a\r\nid-a"};
    uint8_t keys[2][32];
    char *paths[2];
    mt_job_result r;
    run_psi(lists, 2, 2, &r, keys, paths);
    assert_true(r.ok);
    assert_string_equal(r.return_value, "intersection size: 2");
    check_output(&r, "out0", paths[0], keys[0], "id-a\nid-c\n");
    check_output(&r, "out1", paths[1], keys[1], "id-a\nid-c\n");
    assert_true(r.bytes_in > 0);
    assert_true(r.bytes_out > 0);
    /* outputs decrypt only under their own key */
    uint8_t *ct, *pt;
    size_t ctl, ptl;
    assert_int_equal(mt_file_read(paths[0], 1 << 20, &ct, &ctl, NULL), MT_OK);
    assert_int_not_equal(mt_ff_decrypt(keys[1], ct, ctl, &pt, &ptl, NULL), MT_OK);
    free(ct);
    assert_int_equal(count_files(), 4); /* 2 inputs + 2 outputs, no temp files */
    mt_job_result_clear(&r);
    free(paths[0]);
    free(paths[1]);
}

static void test_psi_three_and_empty(void **state)
{
    const char *lists[] = {"a\nb\nc\nd", "d\nc\nb\n", "b\nd\nzz\n"};
    uint8_t keys[1][32];
    char *paths[1];
    mt_job_result r;
    run_psi(lists, 3, 1, &r, keys, paths);
    assert_true(r.ok);
    assert_string_equal(r.return_value, "intersection size: 2");
    check_output(&r, "out0", paths[0], keys[0], "b\nd\n");
    mt_job_result_clear(&r);
    unlink(paths[0]);
    free(paths[0]);

    const char *lists2[] = {"a\nb\n", "", "b\n"};
    run_psi(lists2, 3, 1, &r, keys, paths);
    assert_true(r.ok);
    assert_string_equal(r.return_value, "intersection size: 0");
    check_output(&r, "out0", paths[0], keys[0], "");
    mt_job_result_clear(&r);
    free(paths[0]);
}

static void test_psi_long_id(void **state)
{
    char *big = malloc(2000);
    memset(big, 'x', 1500);
    strcpy(big + 1500, "\n");
    char *second = malloc(2100);
    snprintf(second, 2100, "ok\n%s", big);
    const char *lists[] = {"ok\n", second};
    uint8_t keys[1][32];
    char *paths[1];
    mt_job_result r;
    run_psi(lists, 2, 1, &r, keys, paths);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure_reason, "input 'in1', line 2"));
    assert_int_equal(count_files(), 2); /* the output was not left behind */
    mt_job_result_clear(&r);
    free(paths[0]);
    free(big);
    free(second);
}

/* psi whose input 0 is corrupted by how (1 flip, 2 wrong key, 3 truncate). */
static void psi_bad_input(int how)
{
    mt_job_input in[2] = {{0}};
    mt_job_output out[1] = {{0}};
    in[0].slot = "alice";
    in[1].slot = "bob";
    key_of(in[0].key, 1);
    key_of(in[1].key, 2);
    in[0].path = write_ct("alice", in[0].key, "a\nb\nc\n");
    in[1].path = write_ct("bob", in[1].key, "b\n");
    struct stat sb;
    assert_int_equal(stat(in[0].path, &sb), 0);
    if (how == 1) {
        FILE *f = fopen(in[0].path, "r+b");
        fseek(f, sb.st_size - 20, SEEK_SET);
        int c = fgetc(f);
        fseek(f, sb.st_size - 20, SEEK_SET);
        fputc(c ^ 1, f);
        fclose(f);
    } else if (how == 2) {
        in[0].key[0] ^= 1;
    } else {
        assert_int_equal(truncate(in[0].path, sb.st_size - 5), 0);
    }
    out[0].slot = "result";
    key_of(out[0].key, 9);
    out[0].path = path_of("result");
    mt_job j = base_job("psi", false);
    j.inputs = in;
    j.n_inputs = 2;
    j.outputs = out;
    j.n_outputs = 1;
    mt_job_result r;
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_false(r.ok);
    assert_string_equal(r.failure_reason,
                        "input 'alice': decryption failed (tampered, truncated or wrong key)");
    assert_null(r.outputs);
    assert_int_equal(count_files(), 2);
    assert_int_not_equal(access(out[0].path, F_OK), 0);
    mt_job_result_clear(&r);
    unlink(in[0].path);
    unlink(in[1].path);
    free(in[0].path);
    free(in[1].path);
    free(out[0].path);
}

/* SHA-256 of a file, lower-case hex. */
static void sha256_file_hex(const char *path, char hex[65])
{
    uint8_t *b, md[32];
    size_t n;
    unsigned int ml = 0;
    assert_int_equal(mt_file_read(path, 1 << 26, &b, &n, NULL), MT_OK);
    assert_int_equal(EVP_Digest(b, n, md, &ml, EVP_sha256(), NULL), 1);
    free(b);
    mt_hex_encode(md, 32, hex);
}

/* Issue 8 item 9: an input swapped for another ciphertext under the same key
 * after registration fails the task with an integrity reason, before the
 * function runs, and no output is written; outputs are bound to their task,
 * slot and file. */
static void test_substituted_input(void **state)
{
    (void)state;
    static const char FILE_ID[] = "0000000000000000000000000000abcd";
    mt_job_input in[2] = {{0}};
    mt_job_output out[1] = {{0}};
    in[0].slot = "alice";
    in[1].slot = "bob";
    key_of(in[0].key, 1);
    key_of(in[1].key, 2);
    in[0].path = write_ct("alice", in[0].key, "a\nb\nc\n");
    in[1].path = write_ct("bob", in[1].key, "b\n");
    sha256_file_hex(in[0].path, in[0].sha256);
    sha256_file_hex(in[1].path, in[1].sha256);
    out[0].slot = "result";
    key_of(out[0].key, 9);
    out[0].path = path_of("result");
    out[0].file_id = (char *)FILE_ID;
    mt_job j = base_job("psi", false);
    j.inputs = in;
    j.n_inputs = 2;
    j.outputs = out;
    j.n_outputs = 1;
    mt_job_result r;

    /* the registered ciphertexts: runs; the output is bound (format v2) */
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_true(r.ok);
    mt_job_result_clear(&r);
    uint8_t *ct;
    size_t ct_len;
    assert_int_equal(mt_file_read(out[0].path, 1 << 20, &ct, &ct_len, NULL), MT_OK);
    mt_ff_header h;
    mt_ff_binding want, other;
    assert_int_equal(mt_ff_header_parse(ct, ct_len, &h, NULL), MT_OK);
    assert_true(h.bound);
    assert_int_equal(mt_ff_binding_make(j.task_id, "result", FILE_ID, &want, NULL), MT_OK);
    assert_int_equal(mt_ff_binding_check(&h, &want, NULL), MT_OK);
    assert_int_equal(mt_ff_binding_make(j.task_id, "other", FILE_ID, &other, NULL), MT_OK);
    assert_int_equal(mt_ff_binding_check(&h, &other, NULL), MT_ECRYPTO);
    free(ct);
    char *pt = read_pt(out[0].path, out[0].key);
    assert_string_equal(pt, "b\n");
    free(pt);
    unlink(out[0].path);

    /* the host swaps alice's ciphertext for another one under the same key */
    unlink(in[0].path);
    free(in[0].path);
    in[0].path = write_ct("alice", in[0].key, "b\nx\n");
    size_t files = count_files();
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_false(r.ok);
    assert_string_equal(r.failure_reason,
                        "input 'alice': integrity check failed: its ciphertext does not match "
                        "the SHA-256 recorded at registration (substituted or modified)");
    assert_null(r.outputs);
    assert_int_equal(r.bytes_out, 0);
    assert_int_equal(count_files(), files); /* no output, no temporary file */
    assert_int_not_equal(access(out[0].path, F_OK), 0);
    mt_job_result_clear(&r);

    /* the same through a file:// URL (opened by the parent, read by the worker) */
    char url[600];
    snprintf(url, sizeof url, "file://%s", in[0].path);
    char *p0 = in[0].path;
    in[0].path = NULL;
    in[0].url = url;
    j.file_url_root = dir;
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure_reason, "integrity check failed"));
    assert_int_not_equal(access(out[0].path, F_OK), 0);
    mt_job_result_clear(&r);
    /* with the swapped file's own hash it runs (the check is the hash, nothing else) */
    sha256_file_hex(p0, in[0].sha256);
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_true(r.ok);
    mt_job_result_clear(&r);
    unlink(out[0].path);
    unlink(p0);
    unlink(in[1].path);
    free(p0);
    free(in[1].path);
    free(out[0].path);
}

/* Large inputs are decrypted two at a time (worker_main.c, a helper thread
 * takes the second of a pair): three inputs over 1 MiB each (the pair 0, 1
 * and 2 alone) give the right intersection; a failure of either input of
 * the pair names that input (the first in order when both fail) and
 * writes no output. */
static void flip_byte(const char *path, long at)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
}

static void test_psi_pair_inputs(void **state)
{
    (void)state;
    /* 17 bytes an id: 1.53 MB a list, 4.6 MB in all: over PSI_PAR_MIN
     * (4 MiB), so the PSI fast path's helper threads run inside the
     * sandboxed worker too (parse, scatter and join on two threads) */
    enum { N = 90000, SHARED = 30000 };
    char *lists[3], *want = malloc(SHARED * 17 + 1);
    size_t wl = 0;
    for (size_t i = 0; i < SHARED; i++)
        wl += (size_t)sprintf(want + wl, "%016llx\n", (unsigned long long)(i * 0x10000001ULL));
    for (int k = 0; k < 3; k++) {
        lists[k] = malloc(N * 17 + 1);
        size_t o = 0;
        for (size_t i = N; i-- > 0;) /* descending: the result is sorted by the join */
            o += (size_t)sprintf(lists[k] + o, "%016llx\n",
                                 (unsigned long long)(i < SHARED ? i * 0x10000001ULL
                                                                 : 0xf000000000000000ULL +
                                                                       ((uint64_t)k << 32) + i));
    }
    mt_job_input in[3] = {{0}};
    mt_job_output out[1] = {{0}};
    static char *const slots[] = {"a", "b", "c"};
    for (int k = 0; k < 3; k++) {
        in[k].slot = slots[k];
        key_of(in[k].key, k + 1);
    }
    out[0].slot = "result";
    key_of(out[0].key, 9);
    out[0].path = path_of("result");
    mt_job j = base_job("psi", false);
    j.inputs = in;
    j.n_inputs = 3;
    j.outputs = out;
    j.n_outputs = 1;
    /* 0: as written; 1: b tampered; 2: a and b tampered; 3: b substituted
     * (its recorded SHA-256 is another file's); 4: a truncated */
    for (int how = 0; how <= 4; how++) {
        for (int k = 0; k < 3; k++) {
            char name[8] = {'i', 'n', (char)('0' + k), 0};
            in[k].path = write_ct(name, in[k].key, lists[k]);
            in[k].sha256[0] = 0;
        }
        struct stat sb;
        assert_int_equal(stat(in[1].path, &sb), 0);
        assert_true(sb.st_size > (1 << 20));
        if (how == 1 || how == 2)
            flip_byte(in[1].path, sb.st_size / 2);
        if (how == 2)
            flip_byte(in[0].path, 100);
        if (how == 3) {
            sha256_file_hex(in[2].path, in[1].sha256);
            sha256_file_hex(in[0].path, in[0].sha256);
        }
        if (how == 4) {
            assert_int_equal(stat(in[0].path, &sb), 0);
            assert_int_equal(truncate(in[0].path, sb.st_size - 5), 0);
        }
        mt_job_result r;
        assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
        if (how == 0) {
            assert_true(r.ok);
            assert_string_equal(r.return_value, "intersection size: 30000");
            char *pt = read_pt(out[0].path, out[0].key);
            assert_int_equal(strlen(pt), wl);
            assert_memory_equal(pt, want, wl);
            free(pt);
            unlink(out[0].path);
        } else {
            assert_false(r.ok);
            const char *who = how == 1 || how == 3 ? "input 'b': " : "input 'a': ";
            assert_int_equal(strncmp(r.failure_reason, who, strlen(who)), 0);
            assert_non_null(strstr(r.failure_reason, how == 3 ? "integrity check failed"
                                                               : "decryption failed"));
            assert_null(r.outputs);
            assert_int_not_equal(access(out[0].path, F_OK), 0);
        }
        mt_job_result_clear(&r);
        for (int k = 0; k < 3; k++) {
            unlink(in[k].path);
            free(in[k].path);
        }
    }
    for (int k = 0; k < 3; k++)
        free(lists[k]);
    free(want);
    free(out[0].path);
}

/* Outputs of several MB each, three of them: sealed by the executor's
 * helpers (executor.c seal_outputs: fsync on one or two threads, the
 * SHA-256 of the odd and the even outputs on two), and flushed while the
 * worker writes them when it runs long enough (flush_thread). Whichever
 * path a run takes, every output must decrypt to the intersection and its
 * recorded size and SHA-256 must be those of the file as it lies on disk. */
static void test_psi_large_outputs(void **state)
{
    (void)state;
    enum { N = 1 << 18 }; /* every id shared: 4.4 MB of output each */
    char *list = malloc((size_t)N * 17 + 1);
    size_t len = 0;
    for (size_t i = 0; i < N; i++) /* ascending: the output is this list */
        len += (size_t)sprintf(list + len, "%016llx\n", (unsigned long long)(i * 0x9e3779b9ULL));
    mt_job_input in[2] = {{0}};
    mt_job_output out[3] = {{0}};
    static char *const islots[] = {"a", "b"}, *const oslots[] = {"x", "y", "z"};
    for (int k = 0; k < 2; k++) {
        char name[8] = {'i', 'n', (char)('0' + k), 0};
        in[k].slot = islots[k];
        key_of(in[k].key, k + 1);
        in[k].path = write_ct(name, in[k].key, list);
        sha256_file_hex(in[k].path, in[k].sha256);
    }
    for (int k = 0; k < 3; k++) {
        out[k].slot = oslots[k];
        key_of(out[k].key, k + 50);
        out[k].path = path_of(oslots[k]);
    }
    mt_job j = base_job("psi", false);
    j.inputs = in;
    j.n_inputs = 2;
    j.outputs = out;
    j.n_outputs = 3;
    mt_job_result r;
    atomic_store(&sync_n_tmp, 0);
    atomic_store(&sync_n_tmp_writable, 0);
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_true(r.ok);
    /* every output synced (the seal at least), and only ever through the
     * parent's own read-only open file: a sync on the worker's shared one
     * could find its writeback error already taken by the worker */
    assert_true(atomic_load(&sync_n_tmp) >= 3);
    assert_int_equal(atomic_load(&sync_n_tmp_writable), 0);
    uint64_t total = 0;
    for (int k = 0; k < 3; k++) {
        char *pt = read_pt(out[k].path, out[k].key);
        assert_int_equal(strlen(pt), len);
        assert_memory_equal(pt, list, len);
        free(pt);
        json_t *o = json_object_get(r.outputs, oslots[k]);
        assert_non_null(o);
        struct stat sb;
        char hex[65];
        assert_int_equal(stat(out[k].path, &sb), 0);
        sha256_file_hex(out[k].path, hex);
        assert_int_equal(json_integer_value(json_object_get(o, "size")), sb.st_size);
        assert_string_equal(json_string_value(json_object_get(o, "sha256")), hex);
        total += (uint64_t)sb.st_size;
    }
    assert_int_equal(r.bytes_out, total);
    assert_int_equal(count_files(), 5); /* 2 inputs + 3 outputs, no temp files */
    mt_job_result_clear(&r);
    for (int k = 0; k < 2; k++)
        free(in[k].path);
    for (int k = 0; k < 3; k++)
        free(out[k].path);
    free(list);
}

/* A writeback error of an output fails the task, and no output remains,
 * whichever sync meets it: the early flush while the worker writes (the
 * error is then reported to no later sync of that open file) or the seal's
 * fsync (executor.c, flush_thread and seal_outputs). */
static void test_output_sync_error(void **state)
{
    (void)state;
    enum { N = 1 << 18 };
    char *list = malloc((size_t)N * 17 + 1);
    size_t len = 0;
    for (size_t i = 0; i < N; i++)
        len += (size_t)sprintf(list + len, "%016llx\n", (unsigned long long)(i * 0x9e3779b9ULL));
    mt_job_input in[2] = {{0}};
    mt_job_output out[2] = {{0}};
    static char *const islots[] = {"a", "b"}, *const oslots[] = {"x", "y"};
    for (int k = 0; k < 2; k++) {
        char name[8] = {'i', 'n', (char)('0' + k), 0};
        in[k].slot = islots[k];
        key_of(in[k].key, k + 1);
        in[k].path = write_ct(name, in[k].key, list);
        out[k].slot = oslots[k];
        key_of(out[k].key, k + 50);
        out[k].path = path_of(oslots[k]);
    }
    mt_job j = base_job("psi", false);
    j.inputs = in;
    j.n_inputs = 2;
    j.outputs = out;
    j.n_outputs = 2;
    mt_job_result r;
    atomic_store(&sync_n_failed, 0);
    atomic_store(&sync_armed, SIM_FSYNC | SIM_FDATASYNC);
    mt_status st = mt_executor_run(&j, NULL, NULL, &r, NULL);
    atomic_store(&sync_armed, 0);
    assert_int_equal(st, MT_OK);
    assert_false(r.ok);
    assert_true(atomic_load(&sync_n_failed) >= 1);
    assert_non_null(strstr(r.failure_reason, "fsync failed"));
    assert_null(r.outputs);
    assert_int_equal(r.bytes_out, 0);
    assert_int_equal(count_files(), 2); /* the inputs only: no output, no temp file */
    mt_job_result_clear(&r);
    for (int k = 0; k < 2; k++) {
        free(in[k].path);
        free(out[k].path);
    }
    free(list);
}

/* A writeback error that only the early flushing sees (its fdatasync fails
 * once, the seal's fsync then succeeds, as Linux reports it once) fails the
 * task and leaves no output. The test worker writes 3 MiB to each output
 * (over FLUSH_MIN) and sleeps, so the flushing finds them while it runs;
 * should a loaded machine run no flush before the worker ends (no fdatasync
 * intercepted, the task succeeded), the run is repeated with a longer sleep. */
static void test_flush_error(void **state)
{
    (void)state;
    mt_job_output out[2] = {{0}};
    static char *const oslots[] = {"x", "y"};
    for (int k = 0; k < 2; k++) {
        out[k].slot = oslots[k];
        key_of(out[k].key, k + 60);
        out[k].path = path_of(oslots[k]);
    }
    mt_job_result r;
    bool flushed = false;
    for (int ms = 200; !flushed && ms <= 12800; ms *= 2) {
        char msa[16];
        snprintf(msa, sizeof msa, "%d", ms);
        mt_job j = base_job("__test_sleep", true);
        j.arguments = json_pack("{s:s,s:s}", "ms", msa, "fill", "3145728");
        j.outputs = out;
        j.n_outputs = 2;
        atomic_store(&sync_n_failed, 0);
        atomic_store(&sync_armed, SIM_FDATASYNC);
        mt_status st = mt_executor_run(&j, NULL, NULL, &r, NULL);
        atomic_store(&sync_armed, 0);
        json_decref(j.arguments);
        assert_int_equal(st, MT_OK);
        flushed = atomic_load(&sync_n_failed) >= 1;
        if (!flushed) { /* no flush ran: the task succeeded; again, longer */
            assert_true(r.ok);
            for (int k = 0; k < 2; k++)
                assert_int_equal(unlink(out[k].path), 0);
            mt_job_result_clear(&r);
        }
    }
    assert_true(flushed);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure_reason, "fsync failed"));
    assert_null(r.outputs);
    assert_int_equal(r.bytes_out, 0);
    assert_int_equal(count_files(), 0); /* no output, no temp file */
    mt_job_result_clear(&r);
    for (int k = 0; k < 2; k++)
        free(out[k].path);
}

/* The wasm module is checked against the SHA-256 registered with the function. */
static void test_module_integrity(void **state)
{
    (void)state;
    /* (module (memory (export "memory") 1) (func (export "_start"))) */
    static const uint8_t wasm[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
        0x03, 0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06, '_',
        's',  't',  'a',  'r',  't',  0x00, 0x00, 0x06, 'm',  'e',  'm',  'o',  'r',  'y',
        0x02, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b};
    mt_err err = {0};
    assert_int_equal(mt_executor_wasm_check(MT_WORKER_PATH, wasm, sizeof wasm, &err), MT_OK);
    mt_job_input m = {0};
    key_of(m.key, 5);
    uint8_t *ct, md[32];
    size_t ct_len;
    unsigned int ml = 0;
    assert_int_equal(mt_ff_encrypt(m.key, wasm, sizeof wasm, &ct, &ct_len, NULL), MT_OK);
    m.path = path_of("module");
    FILE *f = fopen(m.path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(ct, 1, ct_len, f), ct_len);
    fclose(f);
    free(ct);
    assert_int_equal(EVP_Digest(wasm, sizeof wasm, md, &ml, EVP_sha256(), NULL), 1);
    mt_hex_encode(md, 32, m.plain_sha256);
    mt_job j = base_job("main", false);
    j.executor_type = "wasm";
    j.module = &m;
    mt_job_result r;
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, &err), MT_OK);
    assert_true(r.ok);
    mt_job_result_clear(&r);
    m.plain_sha256[0] = m.plain_sha256[0] == '0' ? '1' : '0';
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, &err), MT_OK);
    assert_false(r.ok);
    assert_string_equal(r.failure_reason,
                        "the function's module: integrity check failed: it does not match the "
                        "SHA-256 registered with the function (substituted or modified)");
    mt_job_result_clear(&r);
    unlink(m.path);
    free(m.path);
}

/* A python function's module for m: src encrypted under key_of(seed) to
 * path_of(name), its plaintext SHA-256 recorded as the registration would. */
static void python_module(const char *src, size_t len, int seed, const char *name,
                          mt_job_input *m)
{
    key_of(m->key, seed);
    uint8_t *ct, md[32];
    size_t ct_len;
    unsigned int ml = 0;
    assert_int_equal(mt_ff_encrypt(m->key, (const uint8_t *)src, len, &ct, &ct_len, NULL), MT_OK);
    m->path = path_of(name);
    FILE *f = fopen(m->path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(ct, 1, ct_len, f), ct_len);
    fclose(f);
    free(ct);
    assert_int_equal(EVP_Digest(src, len, md, &ml, EVP_sha256(), NULL), 1);
    mt_hex_encode(md, 32, m->plain_sha256);
}

/* A zygote-started task without outputs ends its channel with shutdown, not
 * only close: a python function that keeps a dup of fd 3 (the python filter
 * allows dup) still gives the daemon its EOF at once. Without it the worker
 * waited to be killed (MT_ZYG_AWAIT_KILL_S, 10 s) with the daemon waiting
 * for EOF, and a task whose wall limit is under that failed. */
static void test_python_dup_channel(void **state)
{
    (void)state;
    static const char src[] = "import random\n"
                              "def entrypoint(argv):\n"
                              "    random._os.dup(3)\n"
                              "    return 'kept a dup'\n";
    mt_err err = {0};
    mt_job_input m = {0};
    python_module(src, sizeof src - 1, 6, "pydup", &m);
    mt_job j = base_job("entrypoint", false);
    j.executor_type = "python";
    j.module = &m;
    j.limits.wall_ms = 8000; /* under MT_ZYG_AWAIT_KILL_S */
    j.limits.mem_bytes = 1ULL << 30;
    mt_job_result r;
    /* the channel-shutdown path exists only for zygote-started workers: this
     * test means something only there (review Low, stop 18) */
    assert_int_equal(mt_executor_worker_start(), MT_WORKER_START_ZYGOTE);
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, &err), MT_OK);
    if (!r.ok)
        fprintf(stderr, "python dup task: %s\n%s\n", r.failure_reason ? r.failure_reason : "",
                r.log ? r.log : "");
    assert_true(r.ok);
    assert_string_equal(r.return_value, "kept a dup");
    mt_job_result_clear(&r);
    unlink(m.path);
    free(m.path);
}

static char *read_all_fd(int fd, size_t *len);

/* Runs j with this process's fd 2 (the daemon's log) on a temp file, the
 * worker stderr relay drained (earlier tests' worker output) and its budget
 * reset first, drained again after: what fd 2 received (heap, *len bytes),
 * the run's status, whether the drain finished, and (secs non-NULL) the
 * seconds from the run's start to the end of that drain. Assertions print
 * to the real stderr again once it returns. */
static char *run_capturing_log(const mt_job *j, mt_job_result *r, mt_status *st, bool *drained,
                               size_t *len, double *secs)
{
    assert_true(mt_worker_stderr_drain(-1));
    mt_worker_stderr_test_reset();
    char path[] = "/tmp/mt-test-stderr-XXXXXX";
    int cap = mkstemp(path);
    assert_true(cap >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(cap, 2) == 2);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    *st = mt_executor_run(j, NULL, NULL, r, NULL);
    *drained = mt_worker_stderr_drain(-1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fflush(stderr);
    assert_true(dup2(saved, 2) == 2);
    close(saved);
    if (secs)
        *secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    char *got = read_all_fd(cap, len);
    close(cap);
    return got;
}

/* A Python function that reaches os.write(2, ...) (the import guard is not
 * a boundary) writes into the worker stderr relay, not the daemon's stderr:
 * its forged log line arrives marked and escaped (python zygote; the other
 * cases: test_worker_stderr). */
static void test_python_stderr(void **state)
{
    (void)state;
    static const char src[] =
        "import random\n"
        "def entrypoint(argv):\n"
        "    random._os.write(2, b'2026-12-07T21:51:02.117Z info [9546] PYFORGED \\x1b]0;t\\x07\\n')\n"
        "    return 'wrote'\n";
    mt_job_input m = {0};
    python_module(src, sizeof src - 1, 7, "pyerr", &m);
    mt_job j = base_job("entrypoint", false);
    j.executor_type = "python";
    j.module = &m;
    j.limits.mem_bytes = 1ULL << 30;
    mt_job_result r;
    mt_status st;
    bool drained;
    size_t len;
    char *got = run_capturing_log(&j, &r, &st, &drained, &len, NULL);
    assert_int_equal(st, MT_OK);
    assert_true(r.ok);
    assert_string_equal(r.return_value, "wrote");
    mt_job_result_clear(&r);
    assert_true(drained);
    assert_non_null(strstr(got, MT_WORKER_STDERR_PREFIX "2026-12-07T21:51:02.117Z info [9546] "
                                                        "PYFORGED \\x1b]0;t\\x07\n"));
    assert_null(strchr(got, '\x1b'));
    free(got);
    unlink(m.path);
    free(m.path);
}

/* mt_wjob_wipe_keys (the worker runs it before sending its result, since
 * the daemon may kill it right after): every key of the decoded job (file,
 * output, module and KeyStore keys) is zero afterwards, binary and hex (in
 * the JSON tree), and the rest of the job (slots) is intact for the cleanup
 * that may follow. (That the worker calls it before its result:
 * test_killed_at_eof, through the test worker's log line.) */
static void test_job_wipe_keys(void **state)
{
    (void)state;
    mt_job_input in[1] = {{0}}, mod = {0};
    mt_job_output out[1] = {{0}};
    in[0].slot = "a";
    in[0].path = "/x";
    key_of(in[0].key, 21);
    out[0].slot = "r";
    out[0].path = "/y";
    key_of(out[0].key, 22);
    mod.path = "/m";
    key_of(mod.key, 23);
    memset(mod.plain_sha256, 'c', 64);
    mt_job j = base_job("main", false);
    j.executor_type = "wasm";
    j.module = &mod;
    j.inputs = in;
    j.n_inputs = 1;
    j.outputs = out;
    j.n_outputs = 1;
    uint8_t der[48];
    memset(der, 0x5a, sizeof der);
    mt_job_key ks = {.arg = "key", .type = "ed25519", .version = 1, .der = der,
                     .der_len = sizeof der, .ref = "alice/k"};
    j.keys = &ks;
    j.n_keys = 1;
    j.arguments = json_pack("{s:s}", "key", "alice/k");
    int ifd[1] = {4}, ofd[1] = {5};
    mt_err err = {0};
    char *txt = mt_wjob_encode(&j, ifd, ofd, 6, &err);
    assert_non_null(txt);
    json_decref(j.arguments);
    mt_wjob w;
    if (mt_wjob_decode(txt, strlen(txt), &w, &err) != MT_OK)
        fail_msg("decode: %s", err.msg);
    static const uint8_t zero[48];
    assert_int_equal(w.n_keys, 1);
    assert_int_equal(w.keys[0].der_len, sizeof der);
    assert_memory_equal(w.keys[0].der, der, sizeof der);
    assert_memory_equal(w.inputs[0].key, in[0].key, 32);
    assert_memory_equal(w.outputs[0].key, out[0].key, 32);
    assert_memory_equal(w.module.key, mod.key, 32);
    mt_wjob_wipe_keys(&w);
    assert_memory_equal(w.inputs[0].key, zero, 32);
    assert_memory_equal(w.outputs[0].key, zero, 32);
    assert_memory_equal(w.module.key, zero, 32);
    assert_memory_equal(w.keys[0].der, zero, sizeof der);
    const char *dhex =
        json_string_value(json_object_get(json_array_get(json_object_get(w.root, "keys"), 0), "der"));
    assert_non_null(dhex);
    static const char zdhex[2 * sizeof der];
    assert_memory_equal(dhex, zdhex, sizeof zdhex);
    const char *hex[3] = {
        json_string_value(json_object_get(json_array_get(json_object_get(w.root, "inputs"), 0), "key")),
        json_string_value(json_object_get(json_array_get(json_object_get(w.root, "outputs"), 0), "key")),
        json_string_value(json_object_get(json_object_get(w.root, "module"), "key"))};
    static const char zhex[64];
    for (int k = 0; k < 3; k++) {
        assert_non_null(hex[k]);
        assert_memory_equal(hex[k], zhex, 64); /* wiped in place: 64 zero bytes */
    }
    assert_string_equal(w.inputs[0].slot, "a");
    assert_string_equal(w.outputs[0].slot, "r");
    mt_wjob_wipe_keys(&w); /* idempotent */
    mt_wjob_free(&w);
    free(txt);
}

/* The job codec carries the integrity fields (issue 8 item 9) and rejects
 * malformed ones. */
static void test_job_codec_integrity_fields(void **state)
{
    (void)state;
    mt_job_input in[1] = {{0}};
    mt_job_output out[1] = {{0}};
    mt_job_input mod = {0};
    in[0].slot = "a";
    in[0].path = "/x";
    memset(in[0].sha256, 'b', 64);
    out[0].slot = "r";
    out[0].path = "/y";
    out[0].file_id = "00000000000000000000000000000011";
    mod.path = "/m";
    memset(mod.plain_sha256, 'c', 64);
    mt_job j = base_job("main", false);
    j.executor_type = "wasm";
    j.module = &mod;
    j.inputs = in;
    j.n_inputs = 1;
    j.outputs = out;
    j.n_outputs = 1;
    int ifd[1] = {4}, ofd[1] = {5};
    mt_err err = {0};
    char *txt = mt_wjob_encode(&j, ifd, ofd, 6, &err);
    assert_non_null(txt);
    mt_wjob w;
    assert_int_equal(mt_wjob_decode(txt, strlen(txt), &w, &err), MT_OK);
    assert_string_equal(w.inputs[0].sha256, in[0].sha256);
    assert_null(w.inputs[0].file_id);
    assert_string_equal(w.outputs[0].file_id, out[0].file_id);
    assert_null(w.outputs[0].sha256);
    assert_string_equal(w.module.plain_sha256, mod.plain_sha256);
    mt_wjob_free(&w);
    free(txt);

    /* without them: absent, not empty */
    in[0].sha256[0] = 0;
    out[0].file_id = NULL;
    j.module = NULL;
    j.executor_type = "builtin";
    txt = mt_wjob_encode(&j, ifd, ofd, -1, &err);
    assert_int_equal(mt_wjob_decode(txt, strlen(txt), &w, &err), MT_OK);
    assert_null(w.inputs[0].sha256);
    assert_null(w.outputs[0].file_id);
    mt_wjob_free(&w);
    free(txt);

#define K64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    static const char *const bad[] = {
        "{\"v\":1,\"task_id\":\"t\",\"function\":\"f\",\"inputs\":[{\"slot\":\"a\",\"fd\":4,"
        "\"key\":\"" K64 "\",\"sha256\":\"ABC\"}],\"outputs\":[],\"limits\":{\"mem_bytes\":0,"
        "\"cpu_seconds\":0,\"max_input_bytes\":0}}",
        "{\"v\":1,\"task_id\":\"t\",\"function\":\"f\",\"inputs\":[],\"outputs\":[{\"slot\":\"r\","
        "\"fd\":4,\"key\":\"" K64 "\",\"file_id\":\"zz\"}],\"limits\":{\"mem_bytes\":0,"
        "\"cpu_seconds\":0,\"max_input_bytes\":0}}",
        "{\"v\":1,\"task_id\":\"t\",\"function\":\"f\",\"inputs\":[],\"outputs\":[{\"slot\":\"r\","
        "\"fd\":4,\"key\":\"" K64 "\",\"sha256\":\"" /* a hash on an output: unknown field */
        "0000000000000000000000000000000000000000000000000000000000000000\"}],"
        "\"limits\":{\"mem_bytes\":0,\"cpu_seconds\":0,\"max_input_bytes\":0}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mt_wjob_decode(bad[i], strlen(bad[i]), &w, &err), MT_EINVAL);
#undef K64
}

/* KeyStore keys in the job (docs/keystore.md, "Keys in tasks"): round trip, and the
 * decoder refuses malformed entries. */
static void test_job_codec_keys(void **state)
{
    (void)state;
    uint8_t der[5] = {0x30, 0x03, 0x02, 0x01, 0x07};
    mt_job_key k = {"key", "ecdsa-p256", 3, der, sizeof der, NULL};
    mt_job j = base_job("keystore_sign", false);
    json_t *args = json_pack("{s:s}", "key", "alice/k");
    j.arguments = args;
    j.keys = &k;
    j.n_keys = 1;
    mt_err err = {0};
    char *txt = mt_wjob_encode(&j, NULL, NULL, -1, &err);
    assert_non_null(txt);
    mt_wjob w;
    assert_int_equal(mt_wjob_decode(txt, strlen(txt), &w, &err), MT_OK);
    assert_int_equal(w.n_keys, 1);
    assert_string_equal(w.keys[0].arg, "key");
    assert_string_equal(w.keys[0].type, "ecdsa-p256");
    assert_int_equal(w.keys[0].version, 3);
    assert_int_equal(w.keys[0].der_len, sizeof der);
    assert_memory_equal(w.keys[0].der, der, sizeof der);
    mt_wjob_free(&w);
    free(txt);
    json_decref(args);

#define HEAD "{\"v\":1,\"task_id\":\"t\",\"function\":\"f\",\"arguments\":{\"key\":\"a/b\"},"  \
             "\"inputs\":[],\"outputs\":[],\"limits\":{\"mem_bytes\":0,\"cpu_seconds\":0,"     \
             "\"max_input_bytes\":0},\"keys\":"
    static const char *const bad[] = {
        HEAD "[]}",                                                           /* empty */
        HEAD "{}}",                                                           /* not an array */
        HEAD "[{\"arg\":\"nope\",\"type\":\"t\",\"version\":1,\"der\":\"00\"}]}", /* no arg */
        HEAD "[{\"arg\":\"key\",\"type\":\"t\",\"version\":0,\"der\":\"00\"}]}", /* version */
        HEAD "[{\"arg\":\"key\",\"type\":\"t\",\"version\":1,\"der\":\"0\"}]}",  /* odd hex */
        HEAD "[{\"arg\":\"key\",\"type\":\"t\",\"version\":1,\"der\":\"zz\"}]}", /* not hex */
        HEAD "[{\"arg\":\"key\",\"type\":\"t\",\"version\":1,\"der\":\"\"}]}",   /* empty */
        HEAD "[{\"arg\":\"key\",\"type\":\"t\",\"version\":1,\"der\":\"00\",\"x\":1}]}",
        HEAD "[{\"arg\":\"key\",\"type\":\"t\",\"version\":1,\"der\":\"00\"},"
             "{\"arg\":\"key\",\"type\":\"t\",\"version\":1,\"der\":\"00\"}]}",     /* twice */
        HEAD "[1]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mt_status st = mt_wjob_decode(bad[i], strlen(bad[i]), &w, &err);
        if (st != MT_EINVAL)
            fail_msg("bad key job %zu: status %d", i, (int)st);
    }
#undef HEAD
}

static void test_tampered(void **state) { psi_bad_input(1); }
static void test_wrong_key(void **state) { psi_bad_input(2); }
static void test_truncated(void **state) { psi_bad_input(3); }

static void run_test_builtin(const char *fn, uint32_t wall_ms, uint64_t mem,
                             bool (*cancel)(void *), void *arg, mt_job_result *r)
{
    mt_job j = base_job(fn, true);
    j.limits.wall_ms = wall_ms;
    j.limits.mem_bytes = mem;
    mt_job_output out[1] = {{0}};
    out[0].slot = "o";
    out[0].path = path_of("o");
    j.outputs = out;
    j.n_outputs = 1;
    assert_int_equal(mt_executor_run(&j, cancel, arg, r, NULL), MT_OK);
    assert_false(r->ok);
    assert_int_equal(count_files(), 0); /* the output temp file is gone */
    free(out[0].path);
}

/* Runs test built-in fn in a zygote-started and in a spawned worker; the
 * return value of each (it must succeed) goes to check. */
static void run_both_modes(const char *fn, uint64_t mem, void (*check)(const char *ret))
{
    mt_worker_start prev = mt_executor_worker_start();
    const mt_worker_start modes[2] = {MT_WORKER_START_ZYGOTE, MT_WORKER_START_SPAWN};
    for (int i = 0; i < 2; i++) {
        mt_executor_set_worker_start(modes[i]);
        mt_job_result r;
        mt_job j = base_job(fn, true);
        j.limits.mem_bytes = mem;
        assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
        assert_true(r.ok);
        check(r.return_value);
        mt_job_result_clear(&r);
    }
    mt_executor_set_worker_start(prev);
}

static void check_env(const char *ret)
{
    assert_string_equal(ret, "OMP_WAIT_POLICY=PASSIVE; 1 variable(s)");
}

/* The worker starts with OMP_WAIT_POLICY=PASSIVE and nothing else: libgomp (oneDNN,
 * XGBoost) reads it at load time, so it must come with the environment (docs/nn.md). */
static void test_worker_env(void **state)
{
    (void)state;
    run_both_modes("__test_env", 0, check_env);
}

static void check_arena(const char *ret)
{
    if (strncmp(ret, "not measurable", 14) == 0)
        fprintf(stderr, "test_worker_arena: skipped (%s)\n", ret);
    else
        assert_string_equal(ret, "one arena");
}

/* A worker's helper threads allocate from its one malloc arena
 * (worker_main.c): a thread arena of its own would reserve 64 MiB of the
 * task's RLIMIT_AS only when that much is free, so a task near its limit
 * would pass or fail by which thread touched the heap first. Both start
 * modes (the zygote's children inherit the setting); 1 GiB leaves room for
 * a thread arena, were one made. */
static void test_worker_arena(void **state)
{
    (void)state;
    run_both_modes("__test_arena", 1ULL << 30, check_arena);
}

/* Reads all of fd from offset 0 into a NUL-terminated string. */
static char *read_all_fd(int fd, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    assert_non_null(b);
    ssize_t r;
    while ((r = pread(fd, b + n, cap - n, (off_t)n)) > 0) {
        n += (size_t)r;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
            assert_non_null(b);
        }
    }
    b[n] = '\0';
    *len = n;
    return b;
}

static size_t count_str(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* A worker's fd 2 is never the daemon's stderr (worker_stderr.h): what
 * hostile code writes there (__test_stderr: a forged daemon log line with
 * terminal escapes, a bell and a carriage return; a 300-byte line; a flood
 * of 2000 lines in one write) reaches the daemon's stderr (this process's
 * fd 2, captured in a file around the run) only as marked lines, every
 * control byte escaped, long lines cut, the flood capped by the relay's
 * bucket, with one line saying that lines were dropped; the task itself
 * succeeds. Both start modes (a zygote's child inherits the zygote's fd 2). */
static void test_worker_stderr(void **state)
{
    (void)state;
    const char *P = MT_WORKER_STDERR_PREFIX;
    char want[256], longl[512], run_over[MT_WORKER_STDERR_LINE_MAX + 2];
    memset(run_over, 'L', MT_WORKER_STDERR_LINE_MAX + 1); /* one L more than a piece */
    run_over[MT_WORKER_STDERR_LINE_MAX + 1] = '\0';
    snprintf(want, sizeof want, "%s2026-12-07T21:51:02.117Z error [1] FATAL audit FORGED "
                                "\\x1b[2J\\x1b[31mred\\x07\\x0d\n", P);
    mt_worker_start prev = mt_executor_worker_start();
    const mt_worker_start modes[2] = {MT_WORKER_START_ZYGOTE, MT_WORKER_START_SPAWN};
    for (int m = 0; m < 2; m++) {
        mt_executor_set_worker_start(modes[m]);
        mt_job j = base_job("__test_stderr", true);
        mt_job_result r;
        mt_status st;
        bool drained;
        size_t len;
        double secs;
        char *got = run_capturing_log(&j, &r, &st, &drained, &len, &secs);
        assert_int_equal(st, MT_OK);
        assert_true(r.ok);
        assert_string_equal(r.return_value, "wrote");
        mt_job_result_clear(&r);
        assert_true(drained);
        /* the forged line: marked and escaped, never raw */
        assert_non_null(strstr(got, want));
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)got[i];
            assert_true(c == '\n' || (c >= 0x20 && c < 0x7f));
        }
        for (char *line = got, *nl; *line; line = nl + 1) {
            nl = strchr(line, '\n');
            assert_non_null(nl);
            *nl = '\0';
            if (strstr(line, "FORGED") || strstr(line, "flood ") || strstr(line, "LLLL"))
                assert_non_null(strstr(line, P));
            assert_null(strstr(line, run_over)); /* no piece over the cut */
            *nl = '\n';
        }
        /* the 300-byte line: cut into 200 and 100 bytes */
        snprintf(longl, sizeof longl, "%s%.*s\n", P, MT_WORKER_STDERR_LINE_MAX, run_over);
        assert_int_equal(count_str(got, longl), 1);
        snprintf(longl, sizeof longl, "%s%.*s\n", P, 300 - MT_WORKER_STDERR_LINE_MAX, run_over);
        assert_int_equal(count_str(got, longl), 1);
        /* the flood: its first lines, then the bucket ran out; at most the
         * burst plus what refilled while this ran */
        char first[64];
        snprintf(first, sizeof first, "%sflood 0000\n", P);
        assert_non_null(strstr(got, first));
        size_t flood = count_str(got, "flood ");
        assert_true(flood < 2000);
        assert_true((double)flood <= MT_WORKER_STDERR_BURST + MT_WORKER_STDERR_RATE * (secs + 1));
        char marker[128];
        /* at least one (a relay descheduled for most of a second mid-flood
         * ends the run of drops and starts another); never a worker's line */
        snprintf(marker, sizeof marker, "%srate limit reached", MT_WORKER_STDERR_RELAY);
        assert_true(count_str(got, marker) >= 1);
        snprintf(marker, sizeof marker, "%s... rate limit reached", P);
        assert_int_equal(count_str(got, marker), 0);
        free(got);
    }
    mt_executor_set_worker_start(prev);
}

/* Key metering (key_signs): what the worker reports is taken for a job that
 * carried a KeyStore key, and refused (the task fails) for one without. */
static void test_key_signs(void **state)
{
    (void)state;
    mt_job_result r;
    mt_job j = base_job("__test_keysign", true);
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_false(r.ok);
    assert_int_equal(r.key_signs, 0);
    assert_non_null(strstr(r.failure_reason, "KeyStore signatures for a task that was given no key"));
    mt_job_result_clear(&r);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    unsigned char *der = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
    int dl = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    assert_true(dl > 0);
    mt_job_key key = {"key", "ecdsa-p256", 1, der, (size_t)dl, "alice/k"};
    j = base_job("__test_keysign", true);
    j.arguments = json_pack("{s:s}", "key", "alice/k");
    j.keys = &key;
    j.n_keys = 1;
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    if (!r.ok)
        fail_msg("with a key: %s", r.failure_reason);
    assert_int_equal(r.key_signs, 3);
    mt_job_result_clear(&r);
    /* a claim above MT_JOB_KEY_SIGNS_MAX (2^32) fails the task */
    j.function = "__test_keysign_huge";
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure_reason, "key_signs"));
    mt_job_result_clear(&r);
    json_decref(j.arguments);
    OPENSSL_free(der);
    PKCS8_PRIV_KEY_INFO_free(p8);
    EVP_PKEY_free(k);
}

static void test_crash(void **state)
{
    mt_job_result r;
    run_test_builtin("__test_crash", 20000, 0, NULL, NULL, &r);
    assert_non_null(strstr(r.failure_reason, "signal 11 (SIGSEGV)"));
    mt_job_result_clear(&r);
}

static void test_timeout(void **state)
{
    mt_job_result r;
    run_test_builtin("__test_spin", 500, 0, NULL, NULL, &r);
    assert_string_equal(r.failure_reason, "wall-clock limit of 500 ms exceeded");
    assert_false(r.canceled);
    assert_true(r.wall_ms >= 500); /* killed at the limit, not before */
    /* metered even when killed (no timing threshold: the machine may be busy) */
    assert_true(r.cpu_ms > 0);
    mt_job_result_clear(&r);
}

/* The seccomp mode of pid (/proc/PID/status), -1 when gone. */
static int seccomp_mode_of(pid_t pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    int mode = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Seccomp: %d", &mode) == 1)
            break;
    fclose(f);
    return mode;
}

/* The children of pid (/proc/PID/task/PID/children), at most max; how many. */
static size_t children_of(pid_t pid, pid_t *kids, size_t max)
{
    char p[64], buf[256] = "";
    snprintf(p, sizeof p, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    size_t k = 0;
    int v, used;
    for (const char *c = buf; k < max && sscanf(c, "%d %n", &v, &used) == 1; c += used)
        kids[k++] = v;
    return k;
}

typedef struct cancel_at {
    int64_t start;
    pid_t worker; /* zygote mode: the worker running the task, found before the cancel */
} cancel_at;

static bool cancel_after_300ms(void *arg)
{
    cancel_at *c = arg;
    if (mt_mono_ms() - c->start < 300)
        return false;
    pid_t z = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
    if (c->worker == 0 && z > 0) {
        /* the zygote's one sandboxed child: the worker of this task */
        pid_t kids[8];
        size_t n = children_of(z, kids, 8);
        for (size_t i = 0; i < n; i++)
            if (seccomp_mode_of(kids[i]) == 2) {
                assert_int_equal(c->worker, 0);
                c->worker = kids[i];
            }
        if (c->worker == 0)
            return false; /* not started yet: ask again */
    }
    return true;
}

static void test_cancel(void **state)
{
    mt_job_result r;
    cancel_at c = {.start = mt_mono_ms()};
    run_test_builtin("__test_spin", 20000, 0, cancel_after_300ms, &c, &r);
    assert_true(r.canceled);
    /* ended by the cancel, not by the task's own 20 s wall limit */
    assert_true(mt_mono_ms() - c.start < 20000);
    mt_job_result_clear(&r);
    if (mt_executor_worker_start() == MT_WORKER_START_SPAWN) {
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no zombie, no child left */
    } else {
        /* our only child is the zygote; the canceled worker is gone (killed
         * and reaped by the zygote); the zygote has no task's child left:
         * at most its spare (zygote_server.h), not yet sandboxed and
         * another process than the canceled worker */
        pid_t z = mt_executor_zygote_pid(MT_WORKER_TEST_PATH);
        assert_true(z > 0);
        assert_true(c.worker > 0);
        assert_int_equal(kill(c.worker, 0), -1);
        assert_int_equal(waitpid(-1, NULL, WNOHANG), 0);
        pid_t kids[8];
        size_t n = children_of(z, kids, 8);
        assert_true(n <= 1); /* one child at most */
        if (n == 1) {
            assert_true(kids[0] != c.worker);
            assert_int_equal(seccomp_mode_of(kids[0]), 0);
        }
    }
}

static void test_seccomp(void **state)
{
    mt_job_result r;
    run_test_builtin("__test_open", 20000, 0, NULL, NULL, &r);
    assert_string_equal(r.failure_reason, "sandbox violation: forbidden system call (SIGSYS)");
    mt_job_result_clear(&r);
}

static void test_memory_limit(void **state)
{
#if defined(MT_SANITIZER_BUILD)
    skip(); /* the sanitizer worker cannot run under RLIMIT_AS */
#else
    mt_job_result r;
    run_test_builtin("__test_alloc", 20000, 256ULL << 20, NULL, NULL, &r);
    assert_non_null(strstr(r.failure_reason, "memory"));
    assert_true(r.peak_rss_kb < 300 * 1024);
    mt_job_result_clear(&r);
#endif
}

/* A psi task larger than its memory limit (RLIMIT_AS) fails with a reason
 * that says so and names the input, and leaves no output behind. */
static void test_psi_memory_limit(void **state)
{
#if defined(MT_SANITIZER_BUILD)
    skip(); /* the sanitizer worker cannot run under RLIMIT_AS */
#else
    /* 2 x 3 Mi ids: ~100 MB of plaintext, ~150 MB of entries; ids of 15
     * hex digits take the general path (ids of 16 take the fast path, whose
     * arrays live in the inputs' own buffers: once the inputs fit, it needs
     * little more, and such a task runs in 192 MiB) */
    size_t n = 3u << 20;
    char *a = malloc(n * 16 + 1), *b = malloc(n * 16 + 1);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++) {
        snprintf(a + i * 16, 17, "%015zx\n", i * 2);
        snprintf(b + i * 16, 17, "%015zx\n", i * 3);
    }
    const char *lists[] = {a, b};
    uint8_t keys[2][32];
    char *paths[2];
    mt_job_result r;
    /* the inputs fit, their entries do not ("out of memory for the ids of
     * input 'in0'"; with a larger worker the decryption's "out of memory
     * for input ..." also names the input) */
    psi_mem = 256ULL << 20;
    run_psi(lists, 2, 2, &r, keys, paths);
    psi_mem = 0;
    assert_false(r.ok);
    assert_non_null(r.failure_reason);
    assert_non_null(strstr(r.failure_reason, "out of memory"));
    assert_non_null(strstr(r.failure_reason, "input 'in"));
    assert_int_equal(count_files(), 2); /* the 2 inputs; no output, no temp file */
    mt_job_result_clear(&r);
    free(paths[0]);
    free(paths[1]);
    free(a);
    free(b);
#endif
}

static void test_bad_worker(void **state)
{
    mt_job j = base_job("echo", false);
    j.worker_path = "/nonexistent/mesatee-worker";
    mt_job_result r;
    mt_err err = {0};
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, &err), MT_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/mesatee-worker"));
    assert_false(r.ok);
    assert_null(r.failure_reason);
}

static void test_urls(void **state)
{
    mt_job_input in[2] = {{0}};
    in[0].slot = "a";
    in[1].slot = "b";
    key_of(in[0].key, 1);
    key_of(in[1].key, 2);
    char *pa = write_ct("a", in[0].key, "x\ny\n");
    char *pb = write_ct("b", in[1].key, "y\n");
    char url_a[600], url_b[600];
    snprintf(url_a, sizeof url_a, "file://%s", pa);
    snprintf(url_b, sizeof url_b, "file://%s", pb);
    in[0].url = url_a;
    in[1].path = pb;
    mt_job j = base_job("psi", false);
    j.inputs = in;
    j.n_inputs = 2;
    j.file_url_root = dir;
    mt_job_result r;
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_true(r.ok);
    assert_string_equal(r.return_value, "intersection size: 1");
    mt_job_result_clear(&r);

    /* file:// without a root is refused */
    j.file_url_root = NULL;
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure_reason, "input 'a'"));
    mt_job_result_clear(&r);

    /* https:// to a closed local port fails cleanly inside the worker */
    in[0].url = "https://127.0.0.1:9/x";
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_false(r.ok);
    assert_non_null(strstr(r.failure_reason, "input 'a'"));
    mt_job_result_clear(&r);

    /* the outbound policy in the worker: a loopback listener is never
     * connected to by default (one generic reason), and is with the job's
     * allow-list (the TLS handshake then fails: same reason) */
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ls, 8), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    char url_h[64];
    snprintf(url_h, sizeof url_h, "https://localhost:%d/x", ntohs(sa.sin_port));
    in[0].url = url_h;
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_false(r.ok);
    assert_string_equal(r.failure_reason, "input 'a': fetch failed");
    mt_job_result_clear(&r);
    int c = accept(ls, NULL, NULL);
    assert_int_equal(c, -1); /* nothing ever connected */
    snprintf(url_h, sizeof url_h, "https://127.0.0.1:%d/x", ntohs(sa.sin_port));
    j.fetch_allow = "127.0.0.0/8";
    /* the worker waits in the TLS handshake until the peer closes: a child
     * process accepts the connection and closes it */
    pid_t closer = fork();
    if (closer == 0) {
        for (int k = 0; k < 600; k++) { /* up to 60 s */
            int a = accept(ls, NULL, NULL);
            if (a >= 0) {
                close(a);
                _exit(0);
            }
            usleep(100000);
        }
        _exit(1);
    }
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_false(r.ok);
    assert_string_equal(r.failure_reason, "input 'a': fetch failed");
    mt_job_result_clear(&r);
    int ws = 0;
    assert_int_equal(waitpid(closer, &ws, 0), closer);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0); /* the allowed peer was reached */
    close(ls);
    j.fetch_allow = NULL;
    free(pa);
    free(pb);
}

typedef struct thr_arg {
    int idx;
    int ok;
} thr_arg;

static void *thr_run(void *p)
{
    thr_arg *a = p;
    for (int k = 0; k < 3; k++) {
        mt_job j = base_job("echo", false);
        char msg[32];
        snprintf(msg, sizeof msg, "thread %d run %d", a->idx, k);
        j.arguments = json_pack("{s:s}", "message", msg);
        mt_job_result r;
        if (mt_executor_run(&j, NULL, NULL, &r, NULL) == MT_OK && r.ok &&
            strcmp(r.return_value, msg) == 0)
            a->ok++;
        mt_job_result_clear(&r);
        json_decref(j.arguments);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    pthread_t t[2];
    thr_arg a[2] = {{0, 0}, {1, 0}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thr_run, &a[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(a[0].ok, 3);
    assert_int_equal(a[1].ok, 3);
}

/* The wall-clock limit covers sealing: a worker that returns at once but
 * leaves sixteen sparse 15 GiB outputs (__test_sparse; 15 GiB + 1 byte is
 * under the worker's RLIMIT_FSIZE, MT_SANDBOX_MAX_OUTPUT_BYTES = 16 GiB)
 * would keep the executor hashing 240 GiB of zero pages far past a 3 s limit; the task fails with the
 * limit's reason, and no output remains. (Without the limit in digest_fd the
 * task succeeded after the hashing.) */
static void test_seal_wall_limit(void **state)
{
    (void)state;
    mt_job j = base_job("__test_sparse", true);
    j.limits.wall_ms = 3000;
    enum { NOUT = 16 };
    mt_job_output out[NOUT] = {{0}};
    static char slots[NOUT][4];
    for (int i = 0; i < NOUT; i++) {
        snprintf(slots[i], sizeof slots[i], "o%d", i + 1);
        out[i].slot = slots[i];
        out[i].path = path_of(slots[i]);
    }
    j.outputs = out;
    j.n_outputs = NOUT;
    mt_job_result r;
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
    assert_false(r.ok);
    assert_non_null(r.failure_reason);
    if (!strstr(r.failure_reason, "wall-clock limit of 3000 ms exceeded"))
        fail_msg("unexpected reason: %s", r.failure_reason);
    assert_int_equal(count_files(), 0);
    mt_job_result_clear(&r);
    for (int i = 0; i < NOUT; i++)
        free(out[i].path);
}

/* A worker whose result is complete (its channel closed) but which has not
 * exited (__test_linger: it sleeps a minute, as a long wipe of its inputs'
 * plaintext would) is killed at that EOF in both start modes: the task
 * succeeds with its output sealed, well inside a 5 s wall limit. (Before,
 * the daemon waited for the exit, and the task failed on the wall limit.)
 * A SIGKILL before any result still reads as one (eof_status). */
static void test_killed_at_eof(void **state)
{
    (void)state;
    mt_worker_start prev = mt_executor_worker_start();
    const mt_worker_start modes[2] = {MT_WORKER_START_ZYGOTE, MT_WORKER_START_SPAWN};
    for (int m = 0; m < 2; m++) {
        mt_executor_set_worker_start(modes[m]);
        mt_job j = base_job("__test_linger", true);
        j.limits.wall_ms = 5000;
        mt_job_output out[1] = {{0}};
        uint8_t key[32];
        out[0].slot = "result";
        key_of(out[0].key, 7);
        memcpy(key, out[0].key, 32);
        out[0].path = path_of("linger");
        j.outputs = out;
        j.n_outputs = 1;
        mt_job_result r;
        assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
        if (!r.ok)
            fail_msg("mode %d: %s", m, r.failure_reason ? r.failure_reason : "(no reason)");
        assert_string_equal(r.return_value, "lingering");
        check_output(&r, "result", out[0].path, key, "lingered\n");
        /* the job's keys were zero when the result went out (the kill may
         * come at once after it) */
        assert_non_null(r.log);
        assert_non_null(strstr(r.log, "test worker: job keys wiped before the result"));
        mt_job_result_clear(&r);
        unlink(out[0].path);
        free(out[0].path);
        /* a worker with outputs that SIGKILL ends before any result (the
         * kernel at a limit, seen as the same EOF) is still reported as
         * killed, not as one that "returned no valid result" */
        j = base_job("__test_crash", true);
        j.arguments = json_pack("{s:s}", "signal", "kill");
        out[0].path = path_of("killed");
        j.outputs = out;
        j.n_outputs = 1;
        assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
        assert_false(r.ok);
        assert_non_null(r.failure_reason);
        if (strcmp(r.failure_reason, "worker killed by signal 9 (SIGKILL): memory or CPU limit?"))
            fail_msg("mode %d: %s", m, r.failure_reason);
        assert_int_equal(count_files(), 0);
        mt_job_result_clear(&r);
        json_decref(j.arguments);
        free(out[0].path);
        /* one alive with its memory at an EOF after a truncated result is
         * killed there too, and fails as one that sent no valid result (as
         * a worker that exits after ending its channel early) */
        j = base_job("__test_linger", true);
        j.limits.wall_ms = 5000;
        j.arguments = json_pack("{s:s}", "partial", "1");
        out[0].path = path_of("partial");
        j.outputs = out;
        j.n_outputs = 1;
        assert_int_equal(mt_executor_run(&j, NULL, NULL, &r, NULL), MT_OK);
        assert_false(r.ok);
        assert_non_null(r.failure_reason);
        if (strncmp(r.failure_reason, "worker returned no valid result", 31))
            fail_msg("mode %d: %s", m, r.failure_reason);
        assert_int_equal(count_files(), 0);
        mt_job_result_clear(&r);
        json_decref(j.arguments);
        free(out[0].path);
    }
    mt_executor_set_worker_start(prev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_psi_two, setup, teardown),
        cmocka_unit_test_setup_teardown(test_psi_three_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_psi_long_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_substituted_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_psi_pair_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_psi_large_outputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_sync_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_module_integrity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_dup_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_python_stderr, setup, teardown),
        cmocka_unit_test(test_job_codec_integrity_fields),
        cmocka_unit_test(test_job_codec_keys),
        cmocka_unit_test_setup_teardown(test_key_signs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_arena, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_stderr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_wall_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_at_eof, setup, teardown),
        cmocka_unit_test(test_job_wipe_keys),
        cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seccomp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_psi_memory_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
