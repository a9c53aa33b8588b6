/* Shared helpers of the built-in tests: see test_builtin_common.h. */
#include "test_builtin_common.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mt_ff.h"
#include "mt_util.h"

#ifndef MT_WORKER_PATH
#error "MT_WORKER_PATH must be defined by the build"
#endif

static char dir[256];

const char *tb_dir(void)
{
    return dir;
}

static void rm_dir_files(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
}

int tb_setup(void **state)
{
    strcpy(dir, "/tmp/mt_bi_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

int tb_teardown(void **state)
{
    rm_dir_files();
    rmdir(dir);
    return 0;
}

json_t *tb_args(const char *k, ...)
{
    if (!k)
        return NULL;
    json_t *o = json_object();
    va_list ap;
    va_start(ap, k);
    while (k) {
        const char *v = va_arg(ap, const char *);
        json_object_set_new(o, k, json_string(v));
        k = va_arg(ap, const char *);
    }
    va_end(ap);
    return o;
}

static void key_of(uint8_t key[32], const char *slot, int salt)
{
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7 + salt + (uint8_t)slot[i % (strlen(slot) ? strlen(slot) : 1)]);
}

char *tb_write_plain(const char *name, const char *s)
{
    char *p = malloc(600);
    snprintf(p, 600, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, strlen(s), f), strlen(s));
    fclose(f);
    return p;
}

static mt_job_key *next_keys;
static size_t next_n_keys;

void tb_set_keys(mt_job_key *keys, size_t n)
{
    next_keys = keys;
    next_n_keys = n;
}

static const char *next_worker;

void tb_set_worker(const char *path)
{
    next_worker = path;
}

void tb_exec(const char *fn, json_t *args, const tb_in *in, size_t n_in,
             const char *const *outs, size_t n_out, tb_run *run)
{
    memset(run, 0, sizeof *run);
    assert_true(n_out <= TB_MAX_OUT);
    mt_job_input ji[16];
    mt_job_output jo[TB_MAX_OUT];
    memset(ji, 0, sizeof ji);
    memset(jo, 0, sizeof jo);
    assert_true(n_in <= 16);
    for (size_t i = 0; i < n_in; i++) {
        ji[i].slot = (char *)in[i].slot;
        key_of(ji[i].key, in[i].slot, 1);
        size_t len = strlen(in[i].data);
        uint8_t *ct;
        size_t ct_len;
        assert_int_equal(
            mt_ff_encrypt(ji[i].key, (const uint8_t *)in[i].data, len, &ct, &ct_len, NULL),
            MT_OK);
        ji[i].path = malloc(600);
        snprintf(ji[i].path, 600, "%s/in_%s", dir, in[i].slot);
        FILE *f = fopen(ji[i].path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(ct, 1, ct_len, f), ct_len);
        fclose(f);
        free(ct);
    }
    for (size_t i = 0; i < n_out; i++) {
        jo[i].slot = (char *)outs[i];
        key_of(jo[i].key, outs[i], 2);
        jo[i].path = malloc(600);
        snprintf(jo[i].path, 600, "%s/out_%s", dir, outs[i]);
        unlink(jo[i].path);
    }
    mt_job j = {0};
    j.task_id = "00000000000000000000000000000001";
    j.executor_type = "builtin";
    j.function = fn;
    j.worker_path = next_worker ? next_worker : MT_WORKER_PATH;
    next_worker = NULL;
    j.limits.wall_ms = 20000;
    j.arguments = args;
    j.inputs = ji;
    j.n_inputs = n_in;
    j.outputs = jo;
    j.n_outputs = n_out;
    j.keys = next_keys;
    j.n_keys = next_n_keys;
    next_keys = NULL;
    next_n_keys = 0;
    mt_err err = {0};
    assert_int_equal(mt_executor_run(&j, NULL, NULL, &run->r, &err), MT_OK);
    for (size_t i = 0; i < n_out; i++) {
        if (run->r.ok) {
            uint8_t *ct, *pt;
            size_t ct_len, pt_len;
            assert_int_equal(mt_file_read(jo[i].path, 1 << 28, &ct, &ct_len, NULL), MT_OK);
            assert_int_equal(mt_ff_decrypt(jo[i].key, ct, ct_len, &pt, &pt_len, NULL), MT_OK);
            free(ct);
            run->out[i] = malloc(pt_len + 1);
            memcpy(run->out[i], pt, pt_len);
            run->out[i][pt_len] = 0;
            run->out_len[i] = pt_len;
            free(pt);
        } else {
            assert_int_not_equal(access(jo[i].path, F_OK), 0); /* no output left behind */
        }
        unlink(jo[i].path);
        free(jo[i].path);
    }
    for (size_t i = 0; i < n_in; i++) {
        unlink(ji[i].path);
        free(ji[i].path);
    }
    json_decref(args);
}

void tb_run_clear(tb_run *run)
{
    mt_job_result_clear(&run->r);
    for (size_t i = 0; i < TB_MAX_OUT; i++)
        free(run->out[i]);
    memset(run, 0, sizeof *run);
}

void tb_expect_ok(const char *fn, json_t *args, const tb_in *in, size_t n_in,
                  const char *const *outs, size_t n_out, tb_run *run)
{
    tb_exec(fn, args, in, n_in, outs, n_out, run);
    if (!run->r.ok)
        fail_msg("%s failed: %s", fn, run->r.failure_reason ? run->r.failure_reason : "?");
}

void tb_expect_fail(const char *fn, json_t *args, const tb_in *in, size_t n_in,
                    const char *const *outs, size_t n_out, const char *want)
{
    tb_run run;
    tb_exec(fn, args, in, n_in, outs, n_out, &run);
    if (run.r.ok)
        fail_msg("%s succeeded, expected a failure with '%s'", fn, want);
    if (!strstr(run.r.failure_reason, want))
        fail_msg("%s: reason '%s' lacks '%s'", fn, run.r.failure_reason, want);
    tb_run_clear(&run);
}

bool tb_shell_ok(const char *cmd)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "(%s) >/dev/null 2>&1", cmd);
    return system(buf) == 0;
}

char *tb_shell_out(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    size_t r;
    while ((r = fread(s + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (cap - n < 2) {
            cap *= 2;
            s = realloc(s, cap);
        }
    }
    s[n] = 0;
    if (pclose(p) != 0) {
        free(s);
        return NULL;
    }
    return s;
}
