/* Unit tests of executor type "wasm" (src/executor/wasm_fn.c) in process:
 * the registration check, the mesatee host API and the WASI subset, limits
 * from task arguments, traps and exit statuses. Modules are written in the
 * text format and converted with wabt's wat2wasm at run time (the tests are
 * skipped when it is absent). */
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

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "mt_builtin.h"
#include "mt_ff.h"
#include "mt_util.h"
#include "wasm_fn.h"

static char tmpdir[] = "/tmp/mt_wasm_fn.XXXXXX";
static int have_wat2wasm;

/* wat text -> module bytes (heap), via wat2wasm. */
static uint8_t *wat(const char *text, size_t *len)
{
    char in[128], out[128], cmd[512];
    static int seq;
    snprintf(in, sizeof in, "%s/m%d.wat", tmpdir, seq);
    snprintf(out, sizeof out, "%s/m%d.wasm", tmpdir, seq++);
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "wat2wasm %s -o %s", in, out);
    assert_int_equal(system(cmd), 0);
    uint8_t *b = NULL;
    mt_err err;
    assert_int_equal(mt_file_read(out, 1 << 20, &b, len, &err), MT_OK);
    return b;
}

/* ---- a built-in context with one input "in" and one output "out" ---------- */

typedef struct sinkbuf {
    uint8_t *p;
    size_t n;
} sinkbuf;

static mt_status sink(void *ctx, const uint8_t *buf, size_t len, mt_err *err)
{
    (void)err;
    sinkbuf *s = ctx;
    s->p = realloc(s->p, s->n + len);
    memcpy(s->p + s->n, buf, len);
    s->n += len;
    return MT_OK;
}

typedef struct fx {
    mt_bctx ctx;
    mt_bctx_input in;
    mt_bctx_output out;
    sinkbuf ct;
    uint8_t key[32];
    json_t *args;
} fx;

static fx *fx_new(const char *args_json)
{
    fx *f = calloc(1, sizeof *f);
    f->args = json_loads(args_json ? args_json : "{}", 0, NULL);
    assert_non_null(f->args);
    f->ctx.args = f->args;
    f->in.slot = "in";
    f->in.data = (const uint8_t *)"input bytes";
    f->in.len = 11;
    f->ctx.inputs = &f->in;
    f->ctx.n_inputs = 1;
    memset(f->key, 7, sizeof f->key);
    f->out.slot = "out";
    assert_int_equal(mt_ff_writer_new(f->key, sink, &f->ct, &f->out.writer, NULL), MT_OK);
    f->ctx.outputs = &f->out;
    f->ctx.n_outputs = 1;
    return f;
}

/* The plaintext written to "out" (heap, NUL-terminated). */
static char *fx_output(fx *f)
{
    assert_int_equal(mt_ff_writer_finish(f->out.writer, NULL), MT_OK);
    uint8_t *pt = NULL;
    size_t n = 0;
    assert_int_equal(mt_ff_decrypt(f->key, f->ct.p, f->ct.n, &pt, &n, NULL), MT_OK);
    char *s = malloc(n + 1);
    memcpy(s, pt, n);
    s[n] = 0;
    free(pt);
    return s;
}

static void fx_free(fx *f)
{
    mt_ff_writer_free(f->out.writer);
    free(f->ct.p);
    json_decref(f->args);
    free(f);
}

/* Runs text with args; returns the status, fills ret/err/fuel. */
static mt_status run(fx *f, const char *text, char **ret, uint64_t *fuel, mt_err *err)
{
    size_t len;
    uint8_t *m = wat(text, &len);
    mt_status st = mt_wasm_fn_run(&f->ctx, m, len, ret, fuel, err);
    free(m);
    return st;
}

#define SKIP_WITHOUT_WABT()                                                                        \
    do {                                                                                           \
        if (!have_wat2wasm)                                                                        \
            skip();                                                                                \
    } while (0)

static const char IO_MODULE[] =
    "(module\n"
    " (import \"mesatee\" \"arg_get\" (func $arg (param i32 i32 i32 i32) (result i32)))\n"
    " (import \"mesatee\" \"input_open\" (func $iopen (param i32 i32) (result i32)))\n"
    " (import \"mesatee\" \"input_size\" (func $isize (param i32) (result i64)))\n"
    " (import \"mesatee\" \"input_read\" (func $iread (param i32 i32 i32) (result i32)))\n"
    " (import \"mesatee\" \"output_open\" (func $oopen (param i32 i32) (result i32)))\n"
    " (import \"mesatee\" \"output_write\" (func $owrite (param i32 i32 i32) (result i32)))\n"
    " (import \"mesatee\" \"log\" (func $log (param i32 i32)))\n"
    " (import \"mesatee\" \"set_result\" (func $res (param i32 i32) (result i32)))\n"
    " (memory (export \"memory\") 1)\n"
    " (data (i32.const 0) \"in\")\n"
    " (data (i32.const 8) \"out\")\n"
    " (data (i32.const 16) \"word\")\n"
    " (data (i32.const 24) \"hello\")\n"
    " (data (i32.const 32) \"nope\")\n"
    " (func (export \"_start\") (local $h i32) (local $n i32) (local $o i32) (local $v i32)\n"
    "  (local.set $h (call $iopen (i32.const 0) (i32.const 2)))\n"
    "  (if (i32.ne (local.get $h) (i32.const 0)) (then unreachable))\n"
    "  (if (i64.ne (call $isize (local.get $h)) (i64.const 11)) (then unreachable))\n"
    "  (if (i32.ne (call $iopen (i32.const 32) (i32.const 4)) (i32.const -1)) (then unreachable))\n"
    "  ;; read in two pieces: 5 + 6 bytes, then 0 at the end\n"
    "  (local.set $n (call $iread (local.get $h) (i32.const 100) (i32.const 5)))\n"
    "  (local.set $n (i32.add (local.get $n) (call $iread (local.get $h) (i32.const 105) "
    "(i32.const 50))))\n"
    "  (if (i32.ne (local.get $n) (i32.const 11)) (then unreachable))\n"
    "  (if (i32.ne (call $iread (local.get $h) (i32.const 200) (i32.const 5)) (i32.const 0)) (then "
    "unreachable))\n"
    "  (local.set $o (call $oopen (i32.const 8) (i32.const 3)))\n"
    "  (drop (call $owrite (local.get $o) (i32.const 100) (i32.const 11)))\n"
    "  (if (i32.ne (call $owrite (i32.const 9) (i32.const 100) (i32.const 1)) (i32.const -2)) "
    "(then unreachable))\n"
    "  (call $log (i32.const 24) (i32.const 5))\n"
    "  ;; argument 'word' -> return value; absent argument -> -1\n"
    "  (local.set $v (call $arg (i32.const 16) (i32.const 4) (i32.const 300) (i32.const 64)))\n"
    "  (if (i32.ne (call $arg (i32.const 32) (i32.const 4) (i32.const 400) (i32.const 8)) "
    "(i32.const -1)) (then unreachable))\n"
    "  (drop (call $res (i32.const 300) (local.get $v))))\n"
    ")\n";

static void test_host_io(void **state)
{
    (void)state;
    SKIP_WITHOUT_WABT();
    fx *f = fx_new("{\"word\":\"bonjour\"}");
    char *ret = NULL;
    uint64_t fuel = 0;
    mt_err err = {0};
    assert_int_equal(run(f, IO_MODULE, &ret, &fuel, &err), MT_OK);
    assert_string_equal(ret, "bonjour");
    assert_true(fuel > 0);
    assert_non_null(strstr(f->ctx.log, "hello"));
    char *out = fx_output(f);
    assert_string_equal(out, "input bytes");
    free(out);
    free(ret);
    fx_free(f);
}

static void test_wasi(void **state)
{
    (void)state;
    SKIP_WITHOUT_WABT();
    static const char m[] =
        "(module\n"
        " (import \"wasi_snapshot_preview1\" \"fd_write\" (func $w (param i32 i32 i32 i32) (result "
        "i32)))\n"
        " (import \"wasi_snapshot_preview1\" \"args_sizes_get\" (func $as (param i32 i32) (result "
        "i32)))\n"
        " (import \"wasi_snapshot_preview1\" \"args_get\" (func $ag (param i32 i32) (result "
        "i32)))\n"
        " (import \"wasi_snapshot_preview1\" \"random_get\" (func $rg (param i32 i32) (result "
        "i32)))\n"
        " (import \"wasi_snapshot_preview1\" \"clock_time_get\" (func $ct (param i32 i64 i32) "
        "(result i32)))\n"
        " (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))\n"
        " (import \"mesatee\" \"output_open\" (func $oopen (param i32 i32) (result i32)))\n"
        " (import \"mesatee\" \"output_write\" (func $owrite (param i32 i32 i32) (result i32)))\n"
        " (memory (export \"memory\") 1)\n"
        " (data (i32.const 0) \"\\40\\00\\00\\00\\0c\\00\\00\\00\")\n" /* iov: ptr 64, len 12 */
        " (data (i32.const 8) \"\\50\\00\\00\\00\\03\\00\\00\\00\")\n" /* iov: ptr 80, len 3 */
        " (data (i32.const 64) \"line1\\nline2\\n\")\n"
        " (data (i32.const 80) \"err\")\n"
        " (data (i32.const 96) \"out\")\n"
        " (func (export \"_start\") (local $e i32)\n"
        "  (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))\n"
        "  (drop (call $w (i32.const 2) (i32.const 8) (i32.const 1) (i32.const 32)))\n"
        "  (if (i32.ne (call $w (i32.const 5) (i32.const 8) (i32.const 1) (i32.const 32)) "
        "(i32.const 8)) (then unreachable))\n"
        "  ;; argv: main, a=1, b=x[, wasm_clock=1] -> argc >= 3\n"
        "  (drop (call $as (i32.const 200) (i32.const 204)))\n"
        "  (if (i32.lt_u (i32.load (i32.const 200)) (i32.const 3)) (then unreachable))\n"
        "  (drop (call $ag (i32.const 300) (i32.const 400)))\n"
        "  (drop (call $oopen (i32.const 96) (i32.const 3)))\n"
        "  (drop (call $owrite (i32.const 0) (i32.const 400) (i32.load (i32.const 204))))\n"
        "  (drop (call $rg (i32.const 500) (i32.const 32)))\n"
        "  (local.set $e (call $ct (i32.const 1) (i64.const 0) (i32.const 600)))\n"
        "  (call $exit (local.get $e))\n"
        "  unreachable)\n"
        ")\n";
    fx *f = fx_new("{\"b\":\"x\",\"a\":\"1\"}");
    char *ret = NULL;
    uint64_t fuel;
    mt_err err = {0};
    /* no clock: clock_time_get answers EACCES (2), the module exits with it */
    assert_int_equal(run(f, m, &ret, &fuel, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "exited with status 2"));
    assert_non_null(strstr(f->ctx.log, "line1\nline2\nstderr: err\n"));
    fx_free(f);
    /* with wasm_clock=1 it succeeds and argv is main\0a=1\0b=x\0 (sorted) */
    f = fx_new("{\"b\":\"x\",\"a\":\"1\",\"wasm_clock\":\"1\"}");
    assert_int_equal(run(f, m, &ret, &fuel, &err), MT_OK);
    assert_string_equal(ret, "");
    free(ret);
    char *out = fx_output(f);
    assert_memory_equal(out, "main\0a=1\0b=x\0wasm_clock=1\0", 26);
    free(out);
    fx_free(f);
}

static void test_traps_and_limits(void **state)
{
    (void)state;
    SKIP_WITHOUT_WABT();
    char *ret = NULL;
    uint64_t fuel = 0;
    mt_err err = {0};
    fx *f = fx_new(NULL);
    /* a pointer outside memory traps */
    assert_int_equal(run(f,
                         "(module (import \"mesatee\" \"log\" (func $l (param i32 i32)))"
                         " (memory (export \"memory\") 1)"
                         " (func (export \"_start\") (call $l (i32.const 65530) (i32.const 10))))",
                         &ret, &fuel, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "outside the module's memory"));
    assert_null(ret);
    /* a wasm trap is reported with the spec's message */
    assert_int_equal(run(f,
                         "(module (memory (export \"memory\") 1) (func (export \"_start\")"
                         " (drop (i32.div_u (i32.const 1) (i32.const 0)))))",
                         &ret, &fuel, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "integer divide by zero"));
    /* proc_exit(0) succeeds */
    assert_int_equal(
        run(f,
            "(module (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $e (param i32)))"
            " (memory (export \"memory\") 1)"
            " (func (export \"_start\") (call $e (i32.const 0)) unreachable))",
            &ret, &fuel, &err),
        MT_OK);
    free(ret);
    fx_free(f);
    /* fuel from the task argument */
    f = fx_new("{\"wasm_fuel\":\"5000\"}");
    assert_int_equal(run(f,
                         "(module (memory (export \"memory\") 1)"
                         " (func (export \"_start\") (loop (br 0))))",
                         &ret, &fuel, &err),
                     MT_EQUOTA);
    assert_non_null(strstr(err.msg, "fuel exhausted after 5000"));
    assert_true(fuel >= 4990 && fuel <= 5000);
    fx_free(f);
    /* memory cap from the task argument: 1 MiB = 16 pages */
    f = fx_new("{\"wasm_memory_mb\":\"1\"}");
    assert_int_equal(
        run(f,
            "(module (memory (export \"memory\") 2) (func (export \"_start\")"
            " (if (i32.ne (memory.grow (i32.const 20)) (i32.const -1)) (then unreachable))"
            " (if (i32.ne (memory.grow (i32.const 10)) (i32.const 2)) (then unreachable))))",
            &ret, &fuel, &err),
        MT_OK);
    free(ret);
    assert_int_equal(run(f, "(module (memory (export \"memory\") 17) (func (export \"_start\")))",
                         &ret, &fuel, &err),
                     MT_ETOOBIG);
    assert_non_null(strstr(err.msg, "wasm_memory_mb"));
    fx_free(f);
    /* bad limit arguments */
    f = fx_new("{\"wasm_fuel\":\"lots\"}");
    assert_int_equal(run(f, "(module (memory (export \"memory\") 1) (func (export \"_start\")))",
                         &ret, &fuel, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "wasm_fuel"));
    fx_free(f);
    f = fx_new("{\"wasm_memory_mb\":\"4096\"}");
    assert_int_equal(run(f, "(module (memory (export \"memory\") 1) (func (export \"_start\")))",
                         &ret, &fuel, &err),
                     MT_EINVAL);
    fx_free(f);
    /* set_result refuses bytes that are not UTF-8 */
    f = fx_new(NULL);
    assert_int_equal(
        run(f,
            "(module (import \"mesatee\" \"set_result\" (func $r (param i32 i32) (result i32)))"
            " (memory (export \"memory\") 1) (data (i32.const 0) \"\\ff\\fe\")"
            " (func (export \"_start\")"
            "  (if (i32.ne (call $r (i32.const 0) (i32.const 2)) (i32.const -3)) (then "
            "unreachable))))",
            &ret, &fuel, &err),
        MT_OK);
    assert_string_equal(ret, "");
    free(ret);
    /* a wrong import signature fails at instantiation */
    assert_int_equal(run(f,
                         "(module (import \"mesatee\" \"log\" (func $l (param i32)))"
                         " (memory (export \"memory\") 1) (func (export \"_start\")))",
                         &ret, &fuel, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "instantiation failed"));
    fx_free(f);
}

static void test_check(void **state)
{
    (void)state;
    mt_err err = {0};
    assert_int_equal(mt_wasm_fn_check((const uint8_t *)"garbage!", 8, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "offset"));
    assert_int_equal(mt_wasm_fn_check((const uint8_t *)"\0asm\1\0\0\0", 8, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "_start"));
    if (!have_wat2wasm)
        return;
    size_t len;
    uint8_t *m = wat("(module (import \"wasi_snapshot_preview1\" \"path_open\""
                     " (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"
                     " (memory (export \"memory\") 1) (func (export \"_start\")))",
                     &len);
    assert_int_equal(mt_wasm_fn_check(m, len, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "path_open"));
    free(m);
    m = wat("(module (import \"mesatee\" \"log\" (func (param i32 i32)))"
            " (memory (export \"memory\") 1) (func (export \"_start\")))",
            &len);
    assert_int_equal(mt_wasm_fn_check(m, len, &err), MT_OK);
    free(m);
    m = wat("(module (memory (export \"memory\") 1) (func (export \"main\")))", &len);
    assert_int_equal(mt_wasm_fn_check(m, len, &err), MT_EINVAL);
    free(m);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    have_wat2wasm = system("wat2wasm --version >/dev/null 2>&1") == 0;
    if (!have_wat2wasm)
        fprintf(stderr, "wat2wasm (wabt) not found: module tests skipped\n");
    return 0;
}

/* mesatee.key_sign: the module signs its input with the KeyStore key the
 * scheduler put in the job for the argument wasm_key; the signature (written
 * to "out") verifies with the public key; -1 without a key, -2 when the
 * buffer is short. */
static void test_key_sign(void **state)
{
    (void)state;
    SKIP_WITHOUT_WABT();
    static const char m[] =
        "(module\n"
        " (import \"mesatee\" \"key_sign\" (func $sign (param i32 i32 i32 i32) (result i32)))\n"
        " (import \"mesatee\" \"output_open\" (func $oopen (param i32 i32) (result i32)))\n"
        " (import \"mesatee\" \"output_write\" (func $owrite (param i32 i32 i32) (result i32)))\n"
        " (import \"mesatee\" \"set_result\" (func $res (param i32 i32) (result i32)))\n"
        " (memory (export \"memory\") 1)\n"
        " (data (i32.const 0) \"out\")\n"
        " (data (i32.const 8) \"hello\")\n"
        " (data (i32.const 16) \"ok-1-2\")\n"
        " (func (export \"_start\") (local $n i32)\n"
        "  (local.set $n (call $sign (i32.const 8) (i32.const 5) (i32.const 100) (i32.const "
        "512)))\n"
        "  (if (i32.lt_s (local.get $n) (i32.const 0)) (then\n"
        "    (drop (call $res (i32.const 16) (i32.const 4))) (return)))\n"
        "  (if (i32.ne (call $sign (i32.const 8) (i32.const 5) (i32.const 600) (i32.const 4))\n"
        "        (i32.const -2)) (then unreachable))\n"
        "  (drop (call $owrite (call $oopen (i32.const 0) (i32.const 3)) (i32.const 100)\n"
        "        (local.get $n)))\n"
        "  (drop (call $res (i32.const 16) (i32.const 2))))\n"
        ")\n";
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    unsigned char *der = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(k);
    int dl = i2d_PKCS8_PRIV_KEY_INFO(p8, &der);
    assert_true(dl > 0);
    PKCS8_PRIV_KEY_INFO_free(p8);
    mt_bctx_key key = {"wasm_key", "ecdsa-p256", 1, der, (size_t)dl};

    fx *f = fx_new("{\"wasm_key\":\"alice/k\"}");
    f->ctx.keys = &key;
    f->ctx.n_keys = 1;
    char *ret = NULL;
    uint64_t fuel = 0;
    mt_err err = {0};
    assert_int_equal(run(f, m, &ret, &fuel, &err), MT_OK);
    assert_string_equal(ret, "ok");
    /* metered: both calls signed (the second's signature did not fit) */
    assert_int_equal(f->ctx.key_signs, 2);
    assert_int_equal(mt_ff_writer_finish(f->out.writer, NULL), MT_OK);
    uint8_t *sig = NULL;
    size_t sl = 0;
    assert_int_equal(mt_ff_decrypt(f->key, f->ct.p, f->ct.n, &sig, &sl, NULL), MT_OK);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(c, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestVerify(c, sig, sl, (const uint8_t *)"hello", 5), 1);
    EVP_MD_CTX_free(c);
    free(sig);
    free(ret);
    fx_free(f);

    /* no key in the job: -1, the module reports it */
    f = fx_new("{}");
    ret = NULL;
    assert_int_equal(run(f, m, &ret, &fuel, &err), MT_OK);
    assert_string_equal(ret, "ok-1");
    free(ret);
    fx_free(f);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

/* ---- host-call fuel (docs/wasm-functions.md, "Fuel") ------------------------ */

/* The fuel a run of the module printf(fmt, ...) uses with task arguments
 * args_json; the run must succeed. Fuel is compared between two modules that
 * differ only in a host call's arguments: the wasm instructions cost the same,
 * so the difference is what the host calls charge. */
static uint64_t fuel_of(const char *args_json, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static uint64_t fuel_of(const char *args_json, const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof text);
    fx *f = fx_new(args_json);
    char *ret = NULL;
    uint64_t fuel = 0;
    mt_err err = {0};
    assert_int_equal(run(f, text, &ret, &fuel, &err), MT_OK);
    free(ret);
    fx_free(f);
    return fuel;
}

#define WASI "\"wasi_snapshot_preview1\""

/* set_result(0, len) on len bytes of 0xff: refused (-3), but the scan of len
 * bytes is paid, len / 16, as for a valid result. */
#define SETRES_MODULE                                                                              \
    "(module (import \"mesatee\" \"set_result\" (func $sr (param i32 i32) (result i32)))\n"        \
    " (memory (export \"memory\") 1) (data (i32.const 0) \"\\ff\")\n"                              \
    " (func (export \"_start\")\n"                                                                 \
    "  (if (i32.ne (call $sr (i32.const 0) (i32.const %u)) (i32.const %d))\n"                      \
    "   (then unreachable))))"

/* fd_write(1, 0, niov, 8192) after filling [1024, 1024+len) with byte b and
 * pointing the first iovec at it (the others are zero: empty ranges). */
#define FDWRITE_MODULE                                                                             \
    "(module (import " WASI " \"fd_write\" (func $w (param i32 i32 i32 i32) (result i32)))\n"      \
    " (memory (export \"memory\") 1)\n"                                                            \
    " (func (export \"_start\")\n"                                                                 \
    "  (memory.fill (i32.const 1024) (i32.const %d) (i32.const %u))\n"                             \
    "  (i32.store (i32.const 0) (i32.const 1024)) (i32.store (i32.const 4) (i32.const %u))\n"      \
    "  (if (call $w (i32.const 1) (i32.const 0) (i32.const %u) (i32.const 8192))\n"                \
    "   (then unreachable))))"

static uint64_t fdw_fuel(int b, unsigned len, unsigned niov)
{
    return fuel_of(NULL, FDWRITE_MODULE, b, len, len, niov);
}

static void test_fuel_set_result(void **state)
{
    (void)state;
    SKIP_WITHOUT_WABT();
    /* invalid UTF-8 of 4096 bytes vs an empty (valid) result: 4096 / 16 */
    uint64_t bad = fuel_of(NULL, SETRES_MODULE, 4096u, -3);
    uint64_t empty = fuel_of(NULL, SETRES_MODULE, 0u, 0);
    assert_int_equal(bad - empty, 4096 / 16);
    /* the longest result there is (MT_WASM_FN_MAX_RESULT, scanned and refused at
     * its first byte): still charged by its whole length */
    uint64_t big = fuel_of(NULL, SETRES_MODULE, 65536u, -3);
    assert_int_equal(big - empty, 65536 / 16);
}

static void test_fuel_fd_write(void **state)
{
    (void)state;
    SKIP_WITHOUT_WABT();
    /* 1,024 empty iovecs vs none: 1 per iovec */
    assert_int_equal(fdw_fuel('a', 0, 1024) - fdw_fuel('a', 0, 0), 1024);
    /* 160 newlines vs 160 letters: the same bytes, 160 log lines at 8 each */
    assert_int_equal(fdw_fuel('\n', 160, 1) - fdw_fuel('a', 160, 1), 160 * 8);
    /* 2,500 letters: 1 iovec, 2500 / 16 bytes, and the 2 log lines of 1,000
     * bytes they fill (the last 500 are logged at the end of the run, free) */
    assert_int_equal(fdw_fuel('a', 2500, 1) - fdw_fuel('a', 2500, 0), 1 + 2500 / 16 + 2 * 8);
    /* 1,000 letters without a newline: one line's worth, logged at the end of
     * the run (free): no line charge */
    assert_int_equal(fdw_fuel('a', 1000, 1) - fdw_fuel('a', 1000, 0), 1 + 1000 / 16);
}

/* A budget one unit short of a run that logs (the host call is its last
 * charge): the charge comes first, so the run traps before logging anything. */
static void test_fuel_before_log(void **state)
{
    (void)state;
    SKIP_WITHOUT_WABT();
    static const char logm[] =
        "(module (import \"mesatee\" \"log\" (func $log (param i32 i32)))\n"
        " (memory (export \"memory\") 1) (data (i32.const 0) \"hello\")\n"
        " (func (export \"_start\") (call $log (i32.const 0) (i32.const 5))))";
    static const char fdwm[] =
        "(module (import " WASI " \"fd_write\" (func $w (param i32 i32 i32 i32) (result i32)))\n"
        " (memory (export \"memory\") 1)\n"
        " (data (i32.const 0) \"\\10\\00\\00\\00\\40\\00\\00\\00\") (data (i32.const 16) "
        "\"\\0a\")\n"
        " (func (export \"_start\")\n" /* one iovec: 64 bytes at 16, a newline first */
        "  (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))";
    const char *mods[] = {logm, fdwm};
    for (size_t i = 0; i < 2; i++) {
        uint64_t need = fuel_of(NULL, "%s", mods[i]);
        char args[64];
        snprintf(args, sizeof args, "{\"wasm_fuel\":\"%llu\"}", (unsigned long long)need - 1);
        fx *f = fx_new(args);
        char *ret = NULL;
        uint64_t fuel = 0;
        mt_err err = {0};
        assert_int_equal(run(f, mods[i], &ret, &fuel, &err), MT_EQUOTA);
        assert_int_equal(f->ctx.log_len, 0);
        fx_free(f);
    }
    /* mesatee.log costs 10 + 8 for its line + len / 16: vs set_result(0, 0)
     * (10, and one more instruction to drop its result) */
    uint64_t lg =
        fuel_of(NULL, "(module (import \"mesatee\" \"log\" (func $f (param i32 i32)))\n"
                      " (memory (export \"memory\") 1)\n"
                      " (func (export \"_start\") (call $f (i32.const 0) (i32.const 0))))");
    uint64_t sr_drop = fuel_of(
        NULL, "(module (import \"mesatee\" \"set_result\" (func $f (param i32 i32) (result i32)))\n"
              " (memory (export \"memory\") 1)\n"
              " (func (export \"_start\") (drop (call $f (i32.const 0) (i32.const 0)))))");
    assert_int_equal(lg + 1 - sr_drop, 8);
}

/* A call with the given import and argument list (i32s, or an i64 where the
 * signature has one), its result dropped. */
#define CALL_MODULE                                                                                \
    "(module (import %s \"%s\" (func $f (param %s) (result i32)))\n"                               \
    " (memory (export \"memory\") 1)\n"                                                            \
    " (func (export \"_start\") (drop (call $f %s))))"

static void test_fuel_other_calls(void **state)
{
    (void)state;
    SKIP_WITHOUT_WABT();
    /* input_open / output_open: a 128-byte name against 1 slot: the copy and
     * one strcmp, 2 * 129 bytes, vs an empty name (2 bytes) */
    const char *opens[] = {"input_open", "output_open"};
    for (size_t i = 0; i < 2; i++) {
        uint64_t l = fuel_of(NULL, CALL_MODULE, "\"mesatee\"", opens[i], "i32 i32",
                             "(i32.const 0) (i32.const 128)");
        uint64_t z = fuel_of(NULL, CALL_MODULE, "\"mesatee\"", opens[i], "i32 i32",
                             "(i32.const 0) (i32.const 0)");
        assert_int_equal(l - z, 2 * 129 / 16);
    }
    /* arg_get: the name's bytes (64) are paid */
    uint64_t a = fuel_of(NULL, CALL_MODULE, "\"mesatee\"", "arg_get", "i32 i32 i32 i32",
                         "(i32.const 0) (i32.const 64) (i32.const 0) (i32.const 0)");
    uint64_t a0 = fuel_of(NULL, CALL_MODULE, "\"mesatee\"", "arg_get", "i32 i32 i32 i32",
                          "(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)");
    assert_int_equal(a - a0, 64 / 16);
    /* args_get: argv is main + 20 arguments "kNN=" (105 bytes) and 21
     * pointers (84 bytes); args_sizes_get, the same shape, costs 10 */
    char args[512] = "{";
    for (int i = 0; i < 20; i++)
        snprintf(args + strlen(args), sizeof args - strlen(args), "%s\"k%02d\":\"\"", i ? "," : "",
                 i);
    strcat(args, "}");
    uint64_t ag =
        fuel_of(args, CALL_MODULE, WASI, "args_get", "i32 i32", "(i32.const 0) (i32.const 1024)");
    uint64_t as = fuel_of(args, CALL_MODULE, WASI, "args_sizes_get", "i32 i32",
                          "(i32.const 0) (i32.const 1024)");
    assert_int_equal(ag - as, (84 + 105) / 16);
    /* random_get: 128 for a request of 1 byte or more, plus len / 16 */
    uint64_t r =
        fuel_of(NULL, CALL_MODULE, WASI, "random_get", "i32 i32", "(i32.const 0) (i32.const 32)");
    uint64_t r0 =
        fuel_of(NULL, CALL_MODULE, WASI, "random_get", "i32 i32", "(i32.const 0) (i32.const 0)");
    assert_int_equal(r - r0, 128 + 32 / 16);
    /* clock_time_get: a CPU-time clock (a system call) costs 64 more than the
     * monotonic clock */
    const char *clk = "{\"wasm_clock\":\"1\"}";
    uint64_t c2 = fuel_of(clk, CALL_MODULE, WASI, "clock_time_get", "i32 i64 i32",
                          "(i32.const 2) (i64.const 0) (i32.const 0)");
    uint64_t c1 = fuel_of(clk, CALL_MODULE, WASI, "clock_time_get", "i32 i64 i32",
                          "(i32.const 1) (i64.const 0) (i32.const 0)");
    assert_int_equal(c2 - c1, 64);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_host_io),
        cmocka_unit_test(test_wasi),
        cmocka_unit_test(test_traps_and_limits),
        cmocka_unit_test(test_key_sign),
        cmocka_unit_test(test_fuel_set_result),
        cmocka_unit_test(test_fuel_fd_write),
        cmocka_unit_test(test_fuel_before_log),
        cmocka_unit_test(test_fuel_other_calls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
