/* bench_wasm: CPU-bound kernels (kernels.c) run natively, on mt_wasm and on
 * wabt's wasm-interp in one run, from the same C source; prints the CPU time
 * of every round (each round runs native, novec, mt_wasm and wabt in turn:
 * interleaved), the slowdown of mt_wasm vs native and its speedup vs wabt
 * per round, a summary row "best" (the lowest of each column), checks that
 * every run returns the same checksum, then times decode + validate +
 * translate + instantiate of a synthetic 1 MiB module.
 *
 * Usage: bench_wasm DIR [--no-wabt | --wabt-once] [--quick]
 *   DIR holds <kernel>.wasm (built by this directory's CMakeLists.txt).
 *   --wabt-once runs wabt in round 1 only (it takes minutes per round);
 *   --no-wabt leaves it out.
 *   --quick runs each kernel once natively and on mt_wasm, no wabt (a smoke
 *   test: checksums must agree). */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kernels.h"
#include "mt_util.h"
#include "mt_wasm.h"
#include "sizes.h"

extern char **environ;

/* kernels_novec.c: the same kernels built with -fno-tree-vectorize */
uint32_t nv_k_list(uint32_t), nv_k_matrix(uint32_t), nv_k_state(uint32_t), nv_k_mix(uint32_t),
    nv_k_fib(uint32_t), nv_k_sieve(uint32_t), nv_k_sha256(uint32_t), nv_k_fmatmul(uint32_t);

typedef struct kernel {
    const char *name;
    uint32_t (*fn)(uint32_t), (*nv)(uint32_t);
    uint32_t size;
} kernel;

static const kernel kernels[] = {
    {"mix", k_mix, nv_k_mix, KS_MIX},
    {"list", k_list, nv_k_list, KS_LIST},
    {"matrix", k_matrix, nv_k_matrix, KS_MATRIX},
    {"state", k_state, nv_k_state, KS_STATE},
    {"fib", k_fib, nv_k_fib, KS_FIB},
    {"sieve", k_sieve, nv_k_sieve, KS_SIEVE},
    {"sha256", k_sha256, nv_k_sha256, KS_SHA256},
    {"fmatmul", k_fmatmul, nv_k_fmatmul, KS_FMATMUL},
};

/* CPU seconds of this process: steadier than wall time on a shared machine. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static mt_status no_imports(void *env, const char *module, size_t mlen, const char *name,
                            size_t nlen, mt_wasm_extern *out, mt_err *err)
{
    (void)env;
    (void)out;
    return mt_err_set(err, MT_ENOTFOUND, "no import %.*s.%.*s", (int)mlen, module, (int)nlen, name);
}

/* A kernel module loaded and instantiated on mt_wasm once; each round calls
 * its run() export once (ours_call). */
typedef struct ours {
    uint8_t *bytes;
    mt_wasm_module *m;
    mt_wasm_store *s;
    mt_wasm_extern run;
} ours;

static void ours_close(ours *o)
{
    mt_wasm_store_free(o->s);
    mt_wasm_module_free(o->m);
    free(o->bytes);
    memset(o, 0, sizeof *o);
}

/* Loads and instantiates the kernel module at path; 0 or -1 (message on stderr). */
static int ours_open(const char *path, ours *o)
{
    size_t len = 0;
    mt_err err;
    mt_wasm_instance *inst;
    memset(o, 0, sizeof *o);
    if (mt_file_read(path, 64u << 20, &o->bytes, &len, &err) != MT_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return -1;
    }
    if (mt_wasm_module_new(o->bytes, len, NULL, &o->m, &err) != MT_OK ||
        !(o->s = mt_wasm_store_new(NULL)) ||
        mt_wasm_instantiate(o->s, o->m, no_imports, NULL, &inst, &err) != MT_OK ||
        mt_wasm_instance_export(inst, "run", 3, &o->run, &err) != MT_OK) {
        fprintf(stderr, "%s: %s\n", path, o->s || !o->m ? err.msg : "out of memory");
        ours_close(o);
        return -1;
    }
    return 0;
}

/* One call of run(); returns its CPU seconds or -1. */
static double ours_call(ours *o, const char *path, uint32_t *sum)
{
    mt_err err;
    mt_wasm_val res;
    if (!o->s)
        return -1;
    double t0 = cpu_s();
    if (mt_wasm_func_call(o->s, o->run.of.func, NULL, 0, &res, 1, &err) != MT_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return -1;
    }
    double d = cpu_s() - t0;
    *sum = res.of.i32;
    return d;
}

/* Runs `wasm-interp path --run-all-exports`; returns its CPU seconds (user +
 * system, from wait4) or -1. */
static double run_wabt(const char *path, uint32_t *sum)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *argv[] = {"wasm-interp", (char *)path, "--run-all-exports", NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "wasm-interp", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return -1;
    }
    char out[512];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(fds[0]);
    int ws;
    struct rusage ru;
    while (wait4(pid, &ws, 0, &ru) < 0 && errno == EINTR)
        ;
    double t = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    const char *p = strstr(out, "i32:");
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || !p)
        return -1;
    *sum = (uint32_t)strtoul(p + 4, NULL, 10);
    return t;
}

/* ---- a synthetic 1 MiB module ---------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put1(buf *b, uint8_t v)
{
    put(b, &v, 1);
}

static void leb(buf *b, uint32_t v)
{
    do {
        uint8_t c = v & 0x7F;
        v >>= 7;
        put1(b, (uint8_t)(c | (v ? 0x80 : 0)));
    } while (v);
}

static void section(buf *mod, uint8_t id, const buf *body)
{
    put1(mod, id);
    leb(mod, (uint32_t)body->n);
    put(mod, body->p, body->n);
}

/* About `target` bytes: nfn functions (i32) -> i32 with arithmetic, if/else
 * and calls to the previous function, the kind of code a compiler emits. */
static void big_module(size_t target, buf *mod)
{
    static const uint8_t pat[] = {
        0x20, 0x00, 0x41, 0x07, 0x6a, 0x22, 0x01,       /* local.get 0; i32.const 7; add; tee 1 */
        0x41, 0x03, 0x71, 0x04, 0x7f,                   /* i32.const 3; and; if (result i32) */
        0x20, 0x01, 0x41, 0x01, 0x74,                   /*   local.get 1; i32.const 1; shl */
        0x05, 0x20, 0x01, 0x41, 0x05, 0x6c, 0x0b,       /* else local.get 1; i32.const 5; mul end */
        0x21, 0x00,                                     /* local.set 0 */
        0x02, 0x40, 0x20, 0x00, 0x45, 0x0d, 0x00, 0x0b, /* block; local.get 0; eqz; br_if 0; end */
    };
    const size_t per_fn = 60;
    size_t body_bytes = per_fn * sizeof pat + 16;
    uint32_t nfn = (uint32_t)(target / body_bytes);
    buf sec = {0}, code = {0};
    static const uint8_t hdr[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
    put(mod, hdr, sizeof hdr);
    static const uint8_t types[] = {0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f};
    sec.n = 0;
    put(&sec, types, sizeof types);
    section(mod, 1, &sec);
    sec.n = 0;
    leb(&sec, nfn);
    for (uint32_t i = 0; i < nfn; i++)
        put1(&sec, 0);
    section(mod, 3, &sec);
    sec.n = 0;
    leb(&sec, 1);
    leb(&sec, 2);
    put(&sec, "f0", 2);
    put1(&sec, 0);
    leb(&sec, 0);
    section(mod, 7, &sec);
    sec.n = 0;
    leb(&sec, nfn);
    for (uint32_t f = 0; f < nfn; f++) {
        code.n = 0;
        static const uint8_t locals[] = {0x01, 0x01, 0x7f};
        put(&code, locals, sizeof locals);
        for (size_t k = 0; k < per_fn; k++) {
            put(&code, pat, sizeof pat);
            if (f > 0 && k % 20 == 0) { /* local.get 0; call f-1; local.set 0 */
                put1(&code, 0x20);
                put1(&code, 0x00);
                put1(&code, 0x10);
                leb(&code, f - 1);
                put1(&code, 0x21);
                put1(&code, 0x00);
            }
        }
        put1(&code, 0x20);
        put1(&code, 0x00);
        put1(&code, 0x0b);
        leb(&sec, (uint32_t)code.n);
        put(&sec, code.p, code.n);
    }
    section(mod, 10, &sec);
    free(sec.p);
    free(code.p);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench_instantiate(void)
{
    buf mod = {0};
    big_module(1u << 20, &mod);
    enum { REPS = 21 };
    double load[REPS], inst[REPS];
    for (int r = 0; r < REPS; r++) {
        mt_err err;
        mt_wasm_module *m = NULL;
        mt_wasm_instance *in;
        double t0 = cpu_s();
        if (mt_wasm_module_new(mod.p, mod.n, NULL, &m, &err) != MT_OK) {
            fprintf(stderr, "1 MiB module: %s\n", err.msg);
            free(mod.p);
            return 1;
        }
        double t1 = cpu_s();
        mt_wasm_store *s = mt_wasm_store_new(NULL);
        if (!s || mt_wasm_instantiate(s, m, no_imports, NULL, &in, &err) != MT_OK) {
            fprintf(stderr, "1 MiB module: %s\n", s ? err.msg : "out of memory");
            mt_wasm_store_free(s);
            mt_wasm_module_free(m);
            free(mod.p);
            return 1;
        }
        double t2 = cpu_s();
        load[r] = (t1 - t0) * 1e3;
        inst[r] = (t2 - t1) * 1e3;
        mt_wasm_store_free(s);
        mt_wasm_module_free(m);
    }
    char runs[REPS * 12 + 1];
    size_t at = 0;
    for (int r = 0; r < REPS && at < sizeof runs; r++) /* every run, in order (CPU ms) */
        at += (size_t)snprintf(runs + at, sizeof runs - at, " %.2f", load[r]);
    qsort(load, REPS, sizeof load[0], cmp_d);
    qsort(inst, REPS, sizeof inst[0], cmp_d);
    printf("\n1 MiB module (%zu bytes, synthetic code): decode+validate+translate median %.2f ms "
           "(min %.2f), instantiate median %.3f ms, total median %.2f ms (target <= 10 ms)\n",
           mod.n, load[REPS / 2], load[0], inst[REPS / 2], load[REPS / 2] + inst[REPS / 2]);
    printf("  decode+validate+translate, every run in order (CPU ms):%s\n", runs);
    free(mod.p);
    return 0;
}

static double geomean(const double *v, size_t n)
{
    double s = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] > 0) {
            s += __builtin_log(v[i]);
            k++;
        }
    return k ? __builtin_exp(s / (double)k) : 0;
}

/* "%10.4f" of t, or "-" when t < 0 (not run or failed) */
static const char *fmt_s(char *b, size_t n, double t, int prec)
{
    if (t < 0)
        snprintf(b, n, "-");
    else
        snprintf(b, n, "%.*f", prec, t);
    return b;
}

/* "%.1fx" of a / b, or "-" when either is not a time */
static const char *fmt_x(char *b, size_t n, double a, double c)
{
    if (a > 0 && c > 0)
        snprintf(b, n, "%.1fx", a / c);
    else
        snprintf(b, n, "-");
    return b;
}

static void print_row(const char *name, const char *round, double tn, double tnv, double to,
                      double tw, uint32_t sum, const char *note)
{
    char a[32], b[32], c[32], d[32], e[32], f[32], g[32];
    printf("%-8s %-5s %10s %10s %10s %10s %9s %9s %9s  %08x%s\n", name, round,
           fmt_s(a, sizeof a, tn, 4), fmt_s(b, sizeof b, tnv, 4), fmt_s(c, sizeof c, to, 4),
           fmt_s(d, sizeof d, tw, 3), fmt_x(e, sizeof e, to, tn), fmt_x(f, sizeof f, to, tnv),
           fmt_x(g, sizeof g, tw, to), sum, note);
}

static double best_of(const double *v, int n)
{
    double b = -1;
    for (int i = 0; i < n; i++)
        if (v[i] >= 0 && (b < 0 || v[i] < b))
            b = v[i];
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_wasm DIR [--no-wabt | --wabt-once] [--quick]\n");
        return 2;
    }
    const char *dir = argv[1];
    int wabt = 1, wabt_once = 0, quick = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--no-wabt"))
            wabt = 0;
        else if (!strcmp(argv[i], "--wabt-once"))
            wabt_once = 1;
        else if (!strcmp(argv[i], "--quick"))
            quick = 1, wabt = 0;
    }
    enum { ROUNDS_MAX = 3 };
    const int rounds = quick ? 1 : ROUNDS_MAX;
    size_t nk = sizeof kernels / sizeof kernels[0];
    double slow[16], fast[16], slow_nv[16];
    int bad = 0;
    printf("CPU seconds of every round; each round runs native, novec, mt_wasm%s in turn "
           "(interleaved), %d round%s per kernel;\n",
           wabt ? (wabt_once ? ", wabt (round 1 only)" : ", wabt") : "", rounds,
           rounds == 1 ? "" : "s");
    printf("row \"best\" (summary): the lowest time of each column over the rounds, ratios of "
           "those; \"-\": not run\n");
    printf("native: gcc -O2 (as built); novec: the same with -fno-tree-vectorize (second "
           "anchor); mt_wasm: one instance per kernel, run() called once per round%s\n",
           wabt ? "; wabt: wasm-interp --run-all-exports, a fresh process (CPU from wait4)" : "");
    printf("%-8s %-5s %10s %10s %10s %10s %9s %9s %9s  %s\n", "kernel", "round", "native s",
           "novec s", "mt_wasm s", "wabt s", "vs native", "vs novec", "vs wabt", "checksum");
    for (size_t i = 0; i < nk; i++) {
        const kernel *k = &kernels[i];
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.wasm", dir, k->name);
        double tn[ROUNDS_MAX], tnv[ROUNDS_MAX], to[ROUNDS_MAX], tw[ROUNDS_MAX];
        int ok = 1;
        uint32_t so = 0;
        ours o;
        int loaded = ours_open(path, &o) == 0;
        for (int r = 0; r < rounds; r++) {
            uint32_t sn, snv, sw = 0;
            double t0 = cpu_s();
            sn = k->fn(k->size);
            tn[r] = cpu_s() - t0;
            t0 = cpu_s();
            snv = k->nv(k->size);
            tnv[r] = cpu_s() - t0;
            to[r] = loaded ? ours_call(&o, path, &so) : -1;
            int do_wabt = wabt && (!wabt_once || r == 0);
            tw[r] = do_wabt ? run_wabt(path, &sw) : -1;
            int rok = to[r] >= 0 && so == sn && snv == sn && (!do_wabt || (tw[r] >= 0 && sw == so));
            if (!rok)
                ok = 0;
            char rn[8];
            snprintf(rn, sizeof rn, "%d", r + 1);
            print_row(k->name, rn, tn[r], tnv[r], to[r], tw[r], so,
                      rok ? "" : "  MISMATCH or failure");
        }
        ours_close(&o);
        double bn = best_of(tn, rounds), bnv = best_of(tnv, rounds), bo = best_of(to, rounds),
               bw = best_of(tw, rounds);
        slow[i] = bn > 0 && bo > 0 ? bo / bn : 0;
        slow_nv[i] = bnv > 0 && bo > 0 ? bo / bnv : 0;
        fast[i] = bw > 0 && bo > 0 ? bw / bo : 0;
        if (!ok)
            bad = 1;
        if (rounds > 1)
            print_row(k->name, "best", bn, bnv, bo, bw, so, ok ? "" : "  MISMATCH or failure");
    }
    if (!quick) {
        printf("\nfrom the best rows: mix: %.1fx native (target <= 15x); ", slow[0]);
        if (wabt)
            printf("%.1fx faster than wabt (target >= 10x)\n", fast[0]);
        else
            printf("wabt not run\n");
        printf("geometric mean over all kernels: %.1fx native, %.1fx novec", geomean(slow, nk),
               geomean(slow_nv, nk));
        if (wabt)
            printf(", %.1fx faster than wabt", geomean(fast, nk));
        printf("\n");
    }
    if (bench_instantiate() != 0)
        bad = 1;
    return bad;
}
