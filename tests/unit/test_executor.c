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
#include "mt_ff.h"
#include "mt_util.h"

#ifndef MT_WORKER_PATH
#error "MT_WORKER_PATH must be defined by the build"
#endif

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
    assert_true(r.wall_ms >= 500 && r.wall_ms < 5000);
    assert_true(r.cpu_ms > 100); /* metered even when killed */
    mt_job_result_clear(&r);
}

static bool cancel_after_300ms(void *arg)
{
    int64_t *start = arg;
    return mt_mono_ms() - *start >= 300;
}

static void test_cancel(void **state)
{
    mt_job_result r;
    int64_t start = mt_mono_ms();
    run_test_builtin("__test_spin", 20000, 0, cancel_after_300ms, &start, &r);
    assert_true(r.canceled);
    assert_true(mt_mono_ms() - start < 3000);
    mt_job_result_clear(&r);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no zombie, no child left */
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
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* the sanitizer worker cannot run under RLIMIT_AS */
#else
    mt_job_result r;
    run_test_builtin("__test_alloc", 20000, 256ULL << 20, NULL, NULL, &r);
    assert_non_null(strstr(r.failure_reason, "memory"));
    assert_true(r.peak_rss_kb < 300 * 1024);
    mt_job_result_clear(&r);
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
        cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seccomp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
