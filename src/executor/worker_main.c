/* mesatee-worker: runs one job in a sandbox. Started by mt_executor_run with
 * an environment of only OMP_WAIT_POLICY=PASSIVE (docs/nn.md), stdin on /dev/null, the job channel on fd 3 and the
 * data files on the fds the job names (see job_codec.h for the messages).
 *
 * Order: read job -> rlimits, no-new-privs, not dumpable -> fetch https://
 * inputs -> initialise OpenSSL (RNG, AES-GCM) and the output encryptors ->
 * RLIMIT_NOFILE/NPROC + seccomp allow-list (no open, socket, exec, fork) ->
 * read and decrypt inputs (large ones two at a time, the second on a helper
 * thread: PAIR_MIN) -> run the built-in -> finish outputs -> write the
 * result JSON to fd 3 -> exit 0. Any failure is reported as {"ok":false,
 * "reason":..} and exit 0; a crash or a sandbox kill shows as a signal.
 *
 * `mesatee-worker --zygote` (zygote_server.h) is the same binary serving as
 * the daemon's zygote: each forked child enters here with its rlimits,
 * no-new-privs and (without https inputs) its seccomp filter already applied
 * before it reads the job; the steps above that it already did are skipped. */
#include <errno.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "big_alloc.h"
#include "job_codec.h"
#include "mt_bschema.h"
#include "mt_builtin.h"
#include "mt_ff.h"
#include "mt_secmem.h"
#include "mt_util.h"
#include "sandbox.h"
#include "untrusted_fetch.h"
#include "wasm_fn.h"
#include "python_fn.h"
#include "zygote_proto.h"
#include "zygote_server.h"

#define CHAN_FD MT_JOB_FIRST_FD
#if defined(MT_WORKER_TEST_BUILTINS)
extern bool mt_builtin_test_lingering; /* builtin_test.c: __test_linger ran */

static bool zero_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

/* Every key of the job zero (binary keys and KeyStore DER; the hex copies
 * in the JSON tree: mt_wjob_wipe_keys wipes them with the same loop). */
static bool job_keys_zero(const mt_wjob *j)
{
    bool z = zero_bytes(j->module.key, sizeof j->module.key);
    for (size_t i = 0; j->inputs && i < j->n_inputs; i++)
        z = z && zero_bytes(j->inputs[i].key, sizeof j->inputs[i].key);
    for (size_t i = 0; j->outputs && i < j->n_outputs; i++)
        z = z && zero_bytes(j->outputs[i].key, sizeof j->outputs[i].key);
    for (size_t i = 0; j->keys && i < j->n_keys; i++)
        z = z && (!j->keys[i].der || zero_bytes(j->keys[i].der, j->keys[i].der_len));
    return z;
}
#endif

#define READ_CHUNK (1024 * 1024)

#if defined(MT_SANITIZER_BUILD)
/* LeakSanitizer runs a ptrace helper at exit, which the seccomp filter
 * (rightly) kills; leaks are checked by the in-process unit tests instead. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_leaks=0:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0";
}
#endif

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads fd to EOF into a NUL-terminated heap buffer of at most max bytes. */
static mt_status read_to_eof(int fd, size_t max, char **out, size_t *len, mt_err *err)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    for (;;) { /* the job carries file keys: no stale copies (mt_secmem) */
        if (n == cap) {
            if (cap >= max) {
                mt_secmem_free(buf);
                return mt_err_set(err, MT_ETOOBIG, "job larger than %zu bytes", max);
            }
            cap = cap * 2 > max ? max : cap * 2;
            char *p = mt_secmem_realloc(buf, cap + 1);
            if (!p) {
                mt_secmem_free(buf);
                return mt_err_set(err, MT_ENOMEM, "out of memory");
            }
            buf = p;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            mt_secmem_free(buf);
            return mt_err_set(err, MT_EIO, "reading the job failed: %s", strerror(errno));
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return MT_OK;
}

/* ---- plaintext buffer of the input decryptor ---- */

typedef struct plain_buf {
    uint8_t *data;
    size_t len, cap;
} plain_buf;

/* The reader's sink, never called: it decrypts into the plain_buf itself
 * (mt_ff_reader_into). */
static mt_status no_sink(void *ctx, const uint8_t *buf, size_t len, mt_err *err)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return mt_err_set(err, MT_EINTERNAL, "input plaintext handed to a sink");
}

static mt_status fd_sink(void *ctx, const uint8_t *buf, size_t len, mt_err *err)
{
    int fd = *(const int *)ctx;
    int e = write_all(fd, buf, len);
    if (e)
        return mt_err_set(err, MT_EIO, "writing an output failed: %s", strerror(e));
    return MT_OK;
}

/* True when the SHA-256 in md (finalised) equals the expected hex digest. */
static bool digest_matches(EVP_MD_CTX *md, const char *expect_hex)
{
    uint8_t d[32];
    unsigned int dl = 0;
    char hex[65];
    if (EVP_DigestFinal_ex(md, d, &dl) != 1 || dl != 32)
        return false;
    mt_hex_encode(d, 32, hex);
    return mt_ct_equal(hex, expect_hex, 64);
}

/* Decrypts one input: from fd (streamed in chunks) or from ct (fetched).
 * Integrity: when io->sha256 is set, the ciphertext read must hash to it
 * (the SHA-256 recorded at registration); when io->plain_sha256 is set (the
 * module), so must the plaintext. A mismatch fails with "integrity check
 * failed" and the plaintext is wiped: the caller runs nothing on it. */
static mt_status decrypt_input(const mt_wjob_io *io, const uint8_t *ct, size_t ct_len,
                               uint64_t max, mt_bctx_input *out, mt_err *err)
{
    plain_buf pb = {0};
    mt_ff_reader *r = NULL;
    uint8_t *chunk = NULL;
    mt_status st;
    mt_err ignore;
    size_t hint = ct_len;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return mt_err_set(err, MT_EINTERNAL, "input '%s': SHA-256 unavailable", io->slot);
    }
    if (io->fd >= 0) {
        struct stat sb;
        if (fstat(io->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            EVP_MD_CTX_free(md);
            return mt_err_set(err, MT_EIO, "input '%s': not a readable file", io->slot);
        }
        if ((uint64_t)sb.st_size > max) {
            EVP_MD_CTX_free(md);
            return mt_err_set(err, MT_ETOOBIG, "input '%s' is %lld bytes, over the limit of %llu",
                              io->slot, (long long)sb.st_size, (unsigned long long)max);
        }
        hint = (size_t)sb.st_size;
    }
    pb.cap = hint;
    /* pre-sized (the plaintext is shorter than the ciphertext) and, when
     * large, populated before the decryption writes it */
    if (!(pb.data = mt_big_alloc(pb.cap + 1))) {
        EVP_MD_CTX_free(md);
        return mt_err_set(err, MT_ENOMEM, "out of memory for input '%s'", io->slot);
    }
    /* decrypted straight into pb (no copy through a sink): what a segment
     * that fails its tag wrote there is wiped before the reader returns */
    if ((st = mt_ff_reader_new(io->key, no_sink, NULL, &r, err)) != MT_OK ||
        (st = mt_ff_reader_into(r, pb.data, pb.cap, err)) != MT_OK)
        goto out;
    if (io->fd < 0) {
        if (EVP_DigestUpdate(md, ct, ct_len) != 1) {
            st = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed");
            goto out;
        }
        st = mt_ff_reader_feed(r, ct, ct_len, &ignore);
    } else {
        /* a small file (a module, say) needs no 1 MiB buffer (mmap + munmap) */
        size_t csize = hint < READ_CHUNK ? hint + 1 : READ_CHUNK;
        if (!(chunk = malloc(csize))) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        uint64_t total = 0;
        for (;;) {
            ssize_t n = read(io->fd, chunk, csize);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                st = mt_err_set(err, MT_EIO, "input '%s': read failed: %s", io->slot,
                                strerror(errno));
                goto out;
            }
            if (n == 0)
                break;
            total += (uint64_t)n;
            if (total > max) {
                st = mt_err_set(err, MT_ETOOBIG, "input '%s' is over the limit of %llu bytes",
                                io->slot, (unsigned long long)max);
                goto out;
            }
            if (EVP_DigestUpdate(md, chunk, (size_t)n) != 1) {
                st = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed");
                goto out;
            }
            if ((st = mt_ff_reader_feed(r, chunk, (size_t)n, &ignore)) != MT_OK)
                break;
        }
    }
    if (st == MT_OK)
        st = mt_ff_reader_finish(r, &ignore);
    pb.len = mt_ff_reader_out_len(r);
    if (st == MT_ETOOBIG) /* (more plaintext than ciphertext: not a valid file) */
        st = MT_ECRYPTO;
    if (st == MT_ENOMEM)
        st = mt_err_set(err, MT_ENOMEM, "input '%s': out of memory (memory limit?)", io->slot);
    else if (st != MT_OK)
        st = mt_err_set(err, MT_ECRYPTO,
                        "input '%s': decryption failed (tampered, truncated or wrong key)",
                        io->slot);
    if (st == MT_OK && io->sha256 && !digest_matches(md, io->sha256))
        st = mt_err_set(err, MT_ECRYPTO,
                        "input '%s': integrity check failed: its ciphertext does not match the "
                        "SHA-256 recorded at registration (substituted or modified)",
                        io->slot);
    if (st == MT_OK && io->plain_sha256) {
        if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(md, pb.data, pb.len) != 1 || !digest_matches(md, io->plain_sha256))
            st = mt_err_set(err, MT_ECRYPTO,
                            "%s: integrity check failed: it does not match the SHA-256 "
                            "registered with the function (substituted or modified)",
                            strcmp(io->slot, "(module)") ? io->slot : "the function's module");
    }
out:
    pb.len = mt_ff_reader_out_len(r); /* (authenticated plaintext in pb so far) */
    EVP_MD_CTX_free(md);
    free(chunk);
    mt_ff_reader_free(r);
    if (st != MT_OK) {
        mt_wipe(pb.data, pb.len);
        free(pb.data);
        return st;
    }
    pb.data[pb.len] = 0;
    out->slot = io->slot;
    out->data = pb.data;
    out->len = pb.len;
    out->scratch = pb.data; /* (mt_builtin.h: the built-in's to reuse) */
    return MT_OK;
}

/* Inputs of at least this many bytes (ciphertext) are decrypted two at a
 * time (issue 13: a PSI of 2 x 2^20 ids spends ~40 ms in SHA-256 and
 * AES-GCM of its inputs); smaller ones are not worth a thread. */
#define PAIR_MIN ((uint64_t)1 << 20)

/* The ciphertext size of an input: its file's or the fetched bytes'; 0 if
 * unknown (then it is decrypted alone, which reports any error). */
static uint64_t input_size(const mt_wjob_io *io, size_t fetched_len)
{
    struct stat sb;
    if (io->fd < 0)
        return fetched_len;
    return fstat(io->fd, &sb) == 0 && S_ISREG(sb.st_mode) ? (uint64_t)sb.st_size : 0;
}

/* One input decrypted on a helper thread: decrypt_input's arguments and
 * result. The thread touches only these and its own OpenSSL contexts. */
typedef struct dec_job {
    const mt_wjob_io *io;
    const uint8_t *ct;
    size_t ct_len;
    uint64_t max;
    mt_bctx_input *out;
    mt_err err;
    mt_status st;
} dec_job;

static void *dec_thread(void *arg)
{
    dec_job *d = arg;
    d->st = decrypt_input(d->io, d->ct, d->ct_len, d->max, d->out, &d->err);
    return NULL;
}

/* Loads OpenSSL's configuration, RNG and AES-GCM implementation while files
 * can still be opened, by running the file format once. */
static mt_status crypto_warmup(mt_err *err)
{
    OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_ADD_ALL_CIPHERS, NULL);
    uint8_t key[32], probe[1] = {0}, *ct = NULL, *pt = NULL;
    size_t ct_len = 0, pt_len = 0;
    if (RAND_bytes(key, sizeof key) != 1)
        return mt_err_set(err, MT_EINTERNAL, "worker: random number generator failed");
    mt_status st = mt_ff_encrypt(key, probe, sizeof probe, &ct, &ct_len, err);
    if (st == MT_OK)
        st = mt_ff_decrypt(key, ct, ct_len, &pt, &pt_len, err);
    free(ct);
    free(pt);
    mt_wipe(key, sizeof key);
    return st;
}

/* The worker's stage stamps, "name=CLOCK_MONOTONIC_us,..." in the result's
 * "trace" (the daemon logs them with MESATEE_TRACE_TASKS=1, mt_trace.h):
 * clock_gettime is a vDSO call, so a stamp costs no system call. */
static char g_trace[512];
static size_t g_trace_len;

static void trace_at(const char *stage, int64_t us)
{
    if (us <= 0 || g_trace_len >= sizeof g_trace)
        return;
    int n = snprintf(g_trace + g_trace_len, sizeof g_trace - g_trace_len, "%s%s=%lld",
                     g_trace_len ? "," : "", stage, (long long)us);
    if (n > 0 && (size_t)n < sizeof g_trace - g_trace_len)
        g_trace_len += (size_t)n;
    else
        g_trace[g_trace_len] = 0; /* full: the stamp is dropped whole */
}

static void trace_mark(const char *stage)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    trace_at(stage, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* fuel_used < 0: not a wasm function (no "fuel_used" field). */
static void report(int ok, const char *ret, const char *reason, const mt_bctx *ctx,
                   uint64_t fetched, json_t *outputs, int64_t fuel_used)
{
    json_t *r = json_object();
    if (!r)
        _exit(70);
    json_object_set_new(r, "ok", json_boolean(ok));
    if (ok)
        json_object_set_new(r, "return_value", json_string(ret ? ret : ""));
    else
        json_object_set_new(r, "reason", json_string(reason ? reason : "unknown failure"));
    if (!ok && ctx->detail[0])
        json_object_set_new(r, "detail", json_string(ctx->detail));
    json_object_set_new(r, "log", json_stringn(ctx->log, ctx->log_len));
    json_object_set_new(r, "fetched_bytes", json_integer((json_int_t)fetched));
    if (ok && outputs)
        json_object_set(r, "outputs", outputs);
    if (fuel_used >= 0)
        json_object_set_new(r, "fuel_used", json_integer(fuel_used));
    if (ctx->key_signs)
        json_object_set_new(r, "key_signs", json_integer((json_int_t)ctx->key_signs));
    trace_mark("report");
    json_object_set_new(r, "trace", json_string(g_trace));
    char *s = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    if (!s || strlen(s) > MT_JOB_RESULT_MAX) {
        static const char fb[] = "{\"ok\":false,\"reason\":\"worker result too large\"}";
        (void)write_all(CHAN_FD, fb, sizeof fb - 1);
    } else {
        (void)write_all(CHAN_FD, s, strlen(s));
    }
    free(s);
    /* the result is complete: the connection is shut down (both ways) and
     * the channel closed, so the daemon reads EOF at once instead of after
     * this process's teardown (issue 13); nothing can follow on it. shutdown
     * ends the connection whatever duplicates of fd 3 exist (a python
     * function may dup it: the python filter allows dup/fcntl), which
     * close() alone would not (the worker then waited to be killed with the
     * daemon still waiting for EOF). sandbox.c allows shutdown on fd 3. */
    (void)shutdown(CHAN_FD, SHUT_RDWR);
    close(CHAN_FD);
}

/* Kind "wasm_check": decodes and validates the plaintext module on its fd in
 * the sandbox (rlimits applied, seccomp closed before the first byte is
 * parsed), reports {"ok":..,"reason":..,"status":..} and exits. */
static void wasm_check(const mt_wjob *job, const mt_zyg_child *zc)
{
    mt_err err = {0};
    char *mod = NULL;
    size_t len = 0;
    mt_status st = MT_OK;
    if (job->python) {
        /* the interpreter reads its standard library before the filter closes */
        const char *why = NULL;
        if (zc->locked)
            st = mt_err_set(&err, MT_EINTERNAL, "python: the sandbox closed before the "
                                                "interpreter started");
        if (st == MT_OK)
            st = mt_python_fn_start(NULL, &err);
        if (st == MT_OK)
            st = mt_sandbox_lock_python(job->module.fd, mt_python_fn_ro_paths(), &why, &err);
    } else if (!zc->locked) {
        st = mt_sandbox_lock(job->module.fd, &err);
    }
    if (st == MT_OK)
        st = read_to_eof(job->module.fd, (size_t)MT_WASM_FN_MAX_MODULE + 1, &mod, &len, &err);
    if (st == MT_ETOOBIG)
        st = mt_err_set(&err, MT_ETOOBIG, "%s: module larger than %u bytes",
                        job->python ? "python" : "wasm", MT_WASM_FN_MAX_MODULE);
    if (st == MT_OK)
        st = job->python ? mt_python_fn_check((const uint8_t *)mod, len, &err)
                         : mt_wasm_fn_check((const uint8_t *)mod, len, &err);
    free(mod);
    json_t *r = st == MT_OK ? json_pack("{s:b}", "ok", 1)
                            : json_pack("{s:b,s:s,s:i}", "ok", 0, "reason", err.msg, "status",
                                        (int)st);
    char *s = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    if (!s)
        _exit(70);
    (void)write_all(CHAN_FD, s, strlen(s));
    free(s);
}

/* Zygote init hooks, one per executor type (zygote_server.h): work that
 * holds no secret and no per-task state. OpenSSL's configuration, providers
 * and the algorithms the file format uses are loaded here once; no random
 * bytes are drawn (each child seeds its own generator). A "python" executor
 * type would pre-import its modules in its own hook. */
static mt_status zygote_init_crypto(mt_err *err)
{
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_ADD_ALL_CIPHERS |
                                OPENSSL_INIT_ADD_ALL_DIGESTS, NULL) != 1)
        return mt_err_set(err, MT_EINTERNAL, "OpenSSL initialisation failed");
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    bool ok = c && md;
    EVP_CIPHER_free(c);
    EVP_MD_free(md);
    mt_secmem_install_json();
    /* the children's seccomp program, compiled once (sandbox.h); a failure
     * only makes each child compile its own */
    mt_err se = {0};
    if (mt_sandbox_prepare(&se) != MT_OK)
        fprintf(stderr, "mesatee-worker: zygote: %s (each worker compiles its own)\n", se.msg);
    return ok ? MT_OK : mt_err_set(err, MT_EINTERNAL, "AES-256-GCM or SHA-256 unavailable");
}

/* Spare warm-ups (zygote_server.h): a task's first steps, on constant data
 * only, in each spare before its request, so that the task finds their code
 * paged in and the heap pages they write already copied (a fresh child's
 * first job decode cost ~0.1 ms, issue 13). The job: the shape of a wasm
 * task's (no file, no key: zeros); decoded, dumped as the report is, freed. */
static void spare_warm_job(void)
{
    static const char sample[] =
        "{\"v\":1,\"task_id\":\"00000000000000000000000000000000\",\"function\":\"x\","
        "\"arguments\":{\"a\":\"b\"},\"inputs\":[],\"outputs\":[],\"limits\":{\"mem_bytes\":1,"
        "\"cpu_seconds\":1,\"max_input_bytes\":1},\"module\":{\"fd\":4,\"key\":"
        "\"0000000000000000000000000000000000000000000000000000000000000000\",\"plain_sha256\":"
        "\"0000000000000000000000000000000000000000000000000000000000000000\"}}";
    mt_wjob j;
    if (mt_wjob_decode(sample, sizeof sample - 1, &j, NULL) != MT_OK)
        return;
    char *s = json_dumps(j.root, JSON_COMPACT);
    free(s);
    mt_wjob_free(&j);
    /* the inputs' decryption: AES-256-GCM and SHA-256 over zeros with a
     * zero key (the tag check fails; no random bytes are drawn) */
    static const uint8_t zero[64];
    uint8_t out[sizeof zero + 16], dg[32];
    int n = 0;
    unsigned dl = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c && EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, zero, zero) == 1 &&
        EVP_DecryptUpdate(c, out, &n, zero, (int)sizeof zero) == 1 &&
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)zero) == 1)
        (void)EVP_DecryptFinal_ex(c, out + n, &n);
    EVP_CIPHER_CTX_free(c);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(md, zero, sizeof zero) == 1)
        (void)EVP_DigestFinal_ex(md, dg, &dl);
    EVP_MD_CTX_free(md);
}

/* The wasm engine's decoder and validator on the smallest module a task
 * runs: (module (memory (export "memory") 1) (func (export "_start"))) */
static void spare_warm_wasm(void)
{
    static const uint8_t mod[] = {
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00,
        0x03, 0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x13, 0x02, 0x06, '_',
        's',  't',  'a',  'r',  't',  0x00, 0x00, 0x06, 'm',  'e',  'm',  'o',  'r',  'y',
        0x02, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b};
    mt_err err = {0};
    (void)mt_wasm_fn_check(mod, sizeof mod, &err);
}

static const mt_zyg_hook zygote_hooks[] = {
    {"builtin", zygote_init_crypto, spare_warm_job},
    /* the interpreter needs no warm-up in the zygote: modules are per task */
    {"wasm", NULL, spare_warm_wasm},
    {"python", mt_python_fn_zygote_init, NULL}, /* CPython + numpy + pandas, once; last (main) */
};

static int worker_run(const mt_zyg_child *zc);

int main(int argc, char **argv)
{
    mt_zyg_child zc = {0};
    /* One malloc arena for every thread (the zygote's children inherit it):
     * glibc gives a thread its own arena at its first allocation or free,
     * reserving 64 MiB of address space that counts against the task's
     * RLIMIT_AS only when that much happens to be free, so a task near its
     * memory limit would pass or fail depending on which helper thread
     * (input decryption, psi, gbdt) touched the heap first (review, issue 13). */
    mallopt(M_ARENA_MAX, 1);
#if defined(MT_WORKER_TEST_BUILTINS)
    /* the test worker only: a fault in the zygote (zygote_server.h) */
    if (argc == 3 && strcmp(argv[2], "--test-fault=spare-hand") == 0) {
        mt_zygote_server_test_fault(MT_ZYG_FAULT_HAND);
        argc = 2;
    }
#endif
    /* --zygote=native: the daemon's zygote for built-in and wasm tasks, without
     * the python hook (CPython's heap would make every fork ~20x dearer);
     * --zygote=python (and --zygote): every hook (zygote.h, mt_zyg_class) */
    bool native = argc == 2 && strcmp(argv[1], "--zygote=native") == 0;
    if (argc == 2 && (native || strcmp(argv[1], "--zygote") == 0 ||
                      strcmp(argv[1], "--zygote=python") == 0)) {
        mt_err err = {0};
        size_t n_hooks = sizeof zygote_hooks / sizeof zygote_hooks[0];
        if (native)
            n_hooks--; /* the python hook is the last */
        if (mt_zygote_serve(CHAN_FD, zygote_hooks, n_hooks, &zc, &err) != MT_OK) {
            fprintf(stderr, "mesatee-worker: %s\n", err.msg);
            return 1;
        }
        /* here only in a forked child, its sandbox applied (zygote_server.h) */
    } else if (argc > 1) {
        fprintf(stderr, "mesatee-worker: started by mesatee; the only option is "
                        "--zygote[=native|=python]\n");
        return 2;
    }
    return worker_run(&zc);
}

/* One job; zc: what the zygote already applied (zeroed when spawned). */
static int worker_run(const mt_zyg_child *zc)
{
    static mt_bctx ctx; /* 64 KiB log: not on the stack */
    mt_err err = {0};
    mt_wjob job = {0};
    char *jbuf = NULL, *ret = NULL;
    size_t jlen = 0;
    uint8_t **fetched = NULL;
    size_t *fetched_len = NULL;
    uint64_t fetched_total = 0;
    json_t *outs = NULL;
    int ok = 0;
    mt_status st;
    mt_bctx_input module = {0}; /* "wasm": the decrypted module */
    uint64_t fuel_used = 0;

    /* Die with the daemon thread that started us: a worker must never outlive
     * its scheduler (e.g. after kill -9 of the daemon). */
    if (!zc->forked && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1))
        return 1; /* (a zygote child did this before its sandbox closed) */
    mt_secmem_install_json(); /* the job document carries file keys */
    trace_at("zyg_recv", zc->t_recv_us);
    trace_at("child", zc->t_child_us);
    trace_at("fds", zc->t_fds_us);
    trace_at("limits", zc->t_limits_us);
    trace_at("seccomp", zc->t_lock_us);
    trace_mark("start");

    if ((st = read_to_eof(CHAN_FD, MT_JOB_MAX, &jbuf, &jlen, &err)) != MT_OK)
        goto report;
    trace_mark("job_read");
    st = mt_wjob_decode(jbuf, jlen, &job, &err);
    mt_wipe(jbuf, jlen);
    free(jbuf);
    if (st != MT_OK)
        goto report;

    uint64_t mem = job.mem_bytes ? job.mem_bytes : (2ULL << 30);
    uint32_t cpu = job.cpu_seconds ? job.cpu_seconds : 600;
    uint64_t max_in = job.max_input_bytes ? job.max_input_bytes : (4ULL << 30);
    if (zc->forked) {
        /* the zygote's child applied the limits its request named: they
         * must be the job's (both come from the daemon's one job) */
        if (zc->mem_bytes != mem || zc->cpu_seconds != cpu) {
            st = mt_err_set(&err, MT_EINTERNAL, "worker: the sandbox limits applied differ "
                                                "from the job's");
            goto report;
        }
    } else if ((st = mt_sandbox_limits(mem, cpu, &err)) != MT_OK)
        goto report;
    if (job.wasm_check) {
        wasm_check(&job, zc);
        mt_wjob_free(&job);
        _exit(0);
    }
    mt_builtin_fn fn = job.has_module ? NULL : mt_builtin_find(job.function);
    if (!fn && !job.has_module) {
        st = mt_err_set(&err, MT_EINVAL, "unknown built-in function '%s'", job.function);
        goto report;
    }
    /* the same schema the core checked at registration and task creation
     * (mt_bschema.h); the test worker's "__test_*" built-ins have none */
    const mt_bschema *schema = job.python       ? mt_bschema_python()
                               : job.has_module ? mt_bschema_wasm()
                                                : mt_bschema_find(job.function);
    if (schema && (st = mt_bschema_check_args(schema, job.arguments, true, &err)) != MT_OK)
        goto report;

    /* https:// inputs: fetched now, while the network is still reachable. */
    fetched = calloc(job.n_inputs + 1, sizeof *fetched);
    fetched_len = calloc(job.n_inputs + 1, sizeof *fetched_len);
    ctx.inputs = calloc(job.n_inputs + 1, sizeof *ctx.inputs);
    ctx.outputs = calloc(job.n_outputs + 1, sizeof *ctx.outputs);
    if (!fetched || !fetched_len || !ctx.inputs || !ctx.outputs) {
        st = mt_err_set(&err, MT_ENOMEM, "out of memory");
        goto report;
    }
    int highest_fd = job.has_module && job.module.fd > CHAN_FD ? job.module.fd : CHAN_FD;
    for (size_t i = 0; i < job.n_inputs; i++) {
        const mt_wjob_io *io = &job.inputs[i];
        if (io->fd > highest_fd)
            highest_fd = io->fd;
        if (!io->url)
            continue;
        if (zc->locked) { /* the daemon asks for an early lock only without https inputs */
            st = mt_err_set(&err, MT_EINTERNAL, "input '%s': the sandbox closed before the fetch",
                            io->slot);
            goto report;
        }
        mt_err fe;
        char why[512] = "";
        untrusted_fetch_opts fo = {.allow = job.fetch_allow, .detail = why,
                                   .detail_cap = sizeof why};
        st = untrusted_fetch_ex(io->url, &fo, max_in > SIZE_MAX ? SIZE_MAX : (size_t)max_in,
                                &fetched[i], &fetched_len[i], &fe);
        if (st != MT_OK) {
            /* one class for every cause: no port-scan oracle in the reason */
            mt_bctx_detail(&ctx, "input '%s': %s: %s", io->slot, fe.msg, why);
            mt_err_set(&err, st, "input '%s': fetch failed", io->slot);
            goto report;
        }
        fetched_total += fetched_len[i];
        mt_bctx_log(&ctx, "fetched input '%s': %zu bytes", io->slot, fetched_len[i]);
    }

    trace_mark("job_decoded");
    /* a zygote child locked early has its OpenSSL loaded by the zygote's hook
     * and can open no file any more: the warm-up (whose point is to open
     * OpenSSL's files before the lock) would only cost ~0.25 ms; its
     * generator reseeds itself after the fork at first use (getrandom) */
    if (!zc->locked && (st = crypto_warmup(&err)) != MT_OK)
        goto report;
    trace_mark("crypto");
    ctx.args = job.arguments;
    ctx.mem_limit = mem;
    if (job.n_keys) { /* KeyStore keys: the job's buffers, wiped by mt_wjob_free */
        static mt_bctx_key keys[MT_JOB_MAX_KEYS];
        for (size_t i = 0; i < job.n_keys; i++)
            keys[i] = (mt_bctx_key){job.keys[i].arg, job.keys[i].type, job.keys[i].version,
                                    job.keys[i].der, job.keys[i].der_len};
        ctx.keys = keys;
        ctx.n_keys = job.n_keys;
    }
    ctx.n_outputs = job.n_outputs;
    for (size_t i = 0; i < job.n_outputs; i++) {
        mt_wjob_io *io = &job.outputs[i];
        struct stat sb;
        if (fstat(io->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            st = mt_err_set(&err, MT_EINTERNAL, "output '%s': fd %d is not a file", io->slot,
                            io->fd);
            goto report;
        }
        if (io->fd > highest_fd)
            highest_fd = io->fd;
        ctx.outputs[i].slot = io->slot;
        if ((st = mt_ff_writer_new(io->key, fd_sink, &io->fd, &ctx.outputs[i].writer, &err)) !=
            MT_OK)
            goto report;
        /* bind the output to its task, slot and file (mt_ff version 2) */
        if (io->file_id) {
            mt_ff_binding b;
            if ((st = mt_ff_binding_make(job.task_id, io->slot, io->file_id, &b, &err)) != MT_OK ||
                (st = mt_ff_writer_bind(ctx.outputs[i].writer, &b, &err)) != MT_OK)
                goto report;
        }
    }

    if (job.python) {
        /* CPython starts (reading its standard library), then its own filter
         * and Landlock close (sandbox.h, mt_sandbox_lock_python) before any
         * input is decrypted and before the function's code runs */
        const char *why = NULL;
        if (zc->locked) {
            st = mt_err_set(&err, MT_EINTERNAL, "python: the sandbox closed before the "
                                                "interpreter started");
            goto report;
        }
        if ((st = mt_python_fn_start(&ctx, &err)) != MT_OK ||
            (st = mt_sandbox_lock_python(highest_fd, mt_python_fn_ro_paths(), &why, &err)) !=
                MT_OK)
            goto report;
        if (why)
            mt_bctx_log(&ctx, "sandbox: %s: files are limited by the seccomp filter (read-only) "
                              "and the audit hook only",
                        why);
    } else if (!zc->locked && (st = mt_sandbox_lock(highest_fd, &err)) != MT_OK)
        goto report;

    trace_mark("outputs_ready");
    /* ---- sandboxed from here on ---- */
    for (size_t i = 0; i < job.n_inputs;) {
        /* two large inputs at a time: the next one on a helper thread
         * (reading, SHA-256 and AES-GCM of an input are independent of
         * the others'); any error is the first input's in order, as when
         * they are decrypted one by one */
        if (i + 1 < job.n_inputs && input_size(&job.inputs[i], fetched_len[i]) >= PAIR_MIN &&
            input_size(&job.inputs[i + 1], fetched_len[i + 1]) >= PAIR_MIN) {
            dec_job d = {&job.inputs[i + 1], fetched[i + 1], fetched_len[i + 1], max_in,
                         &ctx.inputs[i + 1], {0}, MT_OK};
            pthread_t th;
            pthread_attr_t at;
            bool started = false;
            if (pthread_attr_init(&at) == 0) {
                started = pthread_attr_setstacksize(&at, (size_t)1 << 20) == 0 &&
                          pthread_create(&th, &at, dec_thread, &d) == 0;
                pthread_attr_destroy(&at);
            }
            if (started) {
                st = decrypt_input(&job.inputs[i], fetched[i], fetched_len[i], max_in,
                                   &ctx.inputs[i], &err);
                pthread_join(th, NULL);
                if (st != MT_OK || d.st != MT_OK) {
                    if (st == MT_OK) { /* input i is kept (wiped below), i + 1 failed */
                        ctx.n_inputs++;
                        st = d.st;
                        err = d.err;
                    } else if (d.st == MT_OK) { /* i failed: i + 1's plaintext goes */
                        mt_wipe((void *)ctx.inputs[i + 1].data, ctx.inputs[i + 1].len);
                        free((void *)ctx.inputs[i + 1].data);
                        ctx.inputs[i + 1] = (mt_bctx_input){0};
                    }
                    goto report;
                }
                ctx.n_inputs += 2;
                for (size_t j = i; j < i + 2; j++) {
                    free(fetched[j]);
                    fetched[j] = NULL;
                }
                i += 2;
                continue;
            }
        }
        st = decrypt_input(&job.inputs[i], fetched[i], fetched_len[i], max_in, &ctx.inputs[i],
                           &err);
        if (st != MT_OK)
            goto report;
        ctx.n_inputs++;
        free(fetched[i]);
        fetched[i] = NULL;
        i++;
    }
    if (job.has_module) {
        if ((st = decrypt_input(&job.module, NULL, 0, 2ULL * MT_WASM_FN_MAX_MODULE, &module,
                                &err)) != MT_OK)
            goto report;
        trace_mark("inputs");
        if (job.python)
            st = mt_python_fn_run(&ctx, module.data, module.len, &ret, &err);
        else
            st = mt_wasm_fn_run(&ctx, module.data, module.len, &ret, &fuel_used, &err);
        if (st != MT_OK)
            goto report;
    } else {
        trace_mark("inputs");
        if ((st = fn(&ctx, &ret, &err)) != MT_OK)
            goto report;
    }
    trace_mark("ran");
    if (!(outs = json_object())) {
        st = mt_err_set(&err, MT_ENOMEM, "out of memory");
        goto report;
    }
    for (size_t i = 0; i < ctx.n_outputs; i++) {
        if ((st = mt_ff_writer_finish(ctx.outputs[i].writer, &err)) != MT_OK)
            goto report;
        json_t *o = json_pack("{s:I}", "plain_bytes", (json_int_t)ctx.outputs[i].plain_bytes);
        if (!o || json_object_set_new(outs, ctx.outputs[i].slot, o) != 0) {
            st = mt_err_set(&err, MT_ENOMEM, "out of memory");
            goto report;
        }
    }
    trace_mark("outputs_done");
    ok = 1;

report:
    /* keys first, before the result goes out: the daemon may kill this
     * process as soon as it is complete (the wipes below are best effort;
     * docs/threat-model.md "Worker memory at exit"); the writers' key
     * schedules go with them (finished or not, nothing more is written) */
    for (size_t i = 0; ctx.outputs && i < ctx.n_outputs; i++) {
        mt_ff_writer_free(ctx.outputs[i].writer);
        ctx.outputs[i].writer = NULL;
    }
    mt_wjob_wipe_keys(&job);
#if defined(MT_WORKER_TEST_BUILTINS)
    /* the test worker only: says in its log that every key of the job was
     * zero when the result went out (test_executor test_killed_at_eof) */
    if (job_keys_zero(&job))
        mt_bctx_log(&ctx, "test worker: job keys wiped before the result");
#endif
    report(ok, ret, err.msg, &ctx, fetched_total, outs,
           job.has_module && !job.python ? (int64_t)fuel_used : -1);
    if (module.data)
        mt_wipe((void *)module.data, module.len);
    free((void *)module.data);
    json_decref(outs);
    free(ret);
    /* best effort: the daemon kills this process once the result above is
     * complete (executor.c supervise; docs/threat-model.md "Worker memory
     * at exit") */
    for (size_t i = 0; i < ctx.n_inputs; i++) {
        mt_wipe((void *)ctx.inputs[i].data, ctx.inputs[i].len);
        free((void *)ctx.inputs[i].data);
    }
    for (size_t i = 0; ctx.outputs && i < ctx.n_outputs; i++)
        mt_ff_writer_free(ctx.outputs[i].writer);
    for (size_t i = 0; fetched && i < job.n_inputs; i++)
        free(fetched[i]);
    free(fetched);
    free(fetched_len);
    free(ctx.inputs);
    free(ctx.outputs);
    mt_wjob_free(&job);
#if defined(MT_WORKER_TEST_BUILTINS)
    {
        /* the test worker only: __test_linger (builtin_test.c) stays after
         * its complete result, as a long wipe would */
        struct timespec lt = {.tv_sec = 60, .tv_nsec = 0};
        while (mt_builtin_test_lingering && nanosleep(&lt, &lt) != 0 && errno == EINTR)
            ;
    }
#endif
    if (zc->await_kill) {
        /* MT_ZYG_AWAIT_KILL (zygote_proto.h): the channel is closed (the
         * result is complete); the daemon takes the usage so far and has
         * the zygote kill this process, whose memory's teardown then runs
         * off the task's path. Exits by itself if that never comes. */
        struct timespec ts = {.tv_sec = MT_ZYG_AWAIT_KILL_S, .tv_nsec = 0};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    _exit(0);
}
