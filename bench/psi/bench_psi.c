/* bench_psi: the PSI compute alone, in process, warm (NOT what a task
 * costs: bench_psi_task measures that, one cold worker per run with decrypt
 * and encrypt; this table only splits the compute from the rest).
 * k parties x n ids (16 hex chars, fixed seed, n/2 shared by every party)
 * at 2 x 2^20, 2 x 2^24 (skipped with PSI_BENCH_BIG=0) and 5 x 2^20.
 * For each, beside each other, interleaved (ours, naive, ours, naive ...):
 *  (a) mt_psi_compute, the function the psi built-in runs inside the worker
 *      (parse, hash, partition, join, sort, format; large inputs are parsed
 *      and partitioned on two threads), every run;
 *  (b) a naive in-memory join (psi_anchors.c), every run;
 *  (c) ECDH-PSI on ristretto255 (psi_anchors.c), measured directly on
 *      2 x 2^14 ids and only ESTIMATED for the cases: scaled by n/2^14 and,
 *      for k parties, by k^2/4 (every id blinded by all k keys; the
 *      commutative-encryption multi-party protocol, network not counted).
 * Times are wall and process CPU seconds (all threads) of each run; ours
 * may use 2 threads (1 with PSI_BENCH_ONE_THREAD=1), the naive join 1, so
 * compare wall-time ratios with the thread counts (printed with the table).
 * After each naive run the heap it freed is consolidated (malloc_trim(0))
 * outside both timed windows; that time is its own column ("trim"), not
 * charged to the naive join (an earlier version timed it inside the naive
 * join's window) nor left to slow ours down. No target is judged
 * here (the targets are for the whole task). Exit status 1 if any method
 * finds a wrong intersection size.
 * Usage: bench_psi [--ours-only] [KxL ...]   (cases, e.g. 2x20 5x20; default all)
 * env PSI_BENCH_BIG=0 skips 2 x 2^24, PSI_BENCH_RUNS=N runs per method,
 * PSI_BENCH_ONE_THREAD=1 keeps ours on one thread (MT_PSI_ONE_THREAD). */
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_builtin.h"
#include "psi_anchors.h"

#define ECDH_N (1u << 14)
#define ID_LEN 16
#define MAX_PARTIES PSI_MAX_PARTIES

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state;
static uint64_t rng(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_psi: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return p;
}

/* Builds a list of n ids ("%016llx\n"): the shared ids plus own random ones,
 * shuffled. */
static char *make_list(const uint64_t *shared, size_t n_shared, size_t n, size_t *len)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t *v = xmalloc(n * sizeof *v);
    memcpy(v, shared, n_shared * sizeof *v);
    for (size_t i = n_shared; i < n; i++)
        v[i] = rng();
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng() % (i + 1));
        uint64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    char *buf = xmalloc(n * (ID_LEN + 1));
    for (size_t i = 0; i < n; i++) {
        char *o = buf + i * (ID_LEN + 1);
        for (int d = 0; d < ID_LEN; d++)
            o[d] = hex[(v[i] >> (4 * (ID_LEN - 1 - d))) & 15];
        o[ID_LEN] = '\n';
    }
    free(v);
    *len = n * (ID_LEN + 1);
    return buf;
}

/* PSI_BENCH_ONE_THREAD=1: mt_psi_compute_ex's MT_PSI_ONE_THREAD (no helper
 * thread), to compare with the default */
static unsigned psi_flags;

/* ---- one case ---- */

typedef struct bcase {
    size_t parties;
    unsigned log2n;
    int runs;        /* runs of ours */
    int naive_runs;
} bcase;

typedef struct bres {
    double ecdh_cpu;
    char runs_txt[1024]; /* every run: "ours WALL/CPU, naive WALL/CPU, trim WALL; ..." */
    size_t ours_m, naive_m, expect;
    int ok;
} bres;

static int run_case(const bcase *c, int ours_only, double ecdh_pair_cpu, bres *r)
{
    size_t n = (size_t)1 << c->log2n, shared_n = n / 2;
    rng_state = 0x6d65736174656521ULL ^ (c->parties << 8) ^ c->log2n;
    uint64_t *shared = xmalloc(shared_n * sizeof *shared);
    for (size_t i = 0; i < shared_n; i++)
        shared[i] = rng();
    char *lists[MAX_PARTIES];
    size_t lens[MAX_PARTIES];
    mt_psi_input in[MAX_PARTIES];
    static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (size_t i = 0; i < c->parties; i++) {
        lists[i] = make_list(shared, shared_n, n, &lens[i]);
        in[i] = (mt_psi_input){names[i], (const uint8_t *)lists[i], lens[i], NULL};
    }
    free(shared);
    r->expect = shared_n;
    r->naive_m = r->expect;
    r->runs_txt[0] = 0;
    size_t used = 0;
    for (int k = 0; k < c->runs; k++) {
        uint8_t *out;
        size_t ol;
        mt_err err;
        double t0 = now_s(), c0 = cpu_s();
        if (mt_psi_compute_ex(in, c->parties, 0x1234 + (uint64_t)k, psi_flags, &out, &ol,
                              &r->ours_m, &err) !=
            MT_OK) {
            fprintf(stderr, "psi failed: %s\n", err.msg);
            return -1;
        }
        double t = now_s() - t0, cp = cpu_s() - c0;
        free(out);
        used += (size_t)snprintf(r->runs_txt + used, sizeof r->runs_txt - used,
                                 "%sours %.3f/%.3f", k ? "; " : "", t, cp);
        if (!ours_only && k < c->naive_runs) {
            t0 = now_s();
            c0 = cpu_s();
            r->naive_m = psi_naive_join(lists, lens, c->parties);
            t = now_s() - t0;
            cp = cpu_s() - c0;
            /* the naive join frees millions of small blocks; glibc merges
             * them (malloc_consolidate) only at the next large malloc,
             * which would be ours: 2 x 2^20 took 0.35 s instead of 0.1 s
             * after a naive run. The heap is consolidated here, outside
             * both timed windows, and its time reported as its own
             * column (trim) rather than charged to either method. */
            double t1 = now_s();
            malloc_trim(0);
            double tt = now_s() - t1;
            used += (size_t)snprintf(r->runs_txt + used, sizeof r->runs_txt - used,
                                     ", naive %.3f/%.3f, trim %.3f", t, cp, tt);
        }
        if (used >= sizeof r->runs_txt)
            used = sizeof r->runs_txt - 1;
    }
    r->ecdh_cpu = ecdh_pair_cpu * (double)(n / ECDH_N) * (double)(c->parties * c->parties) / 4.0;
    for (size_t i = 0; i < c->parties; i++)
        free(lists[i]);
    r->ok = r->ours_m == r->expect && r->naive_m == r->expect;
    return 0;
}

int main(int argc, char **argv)
{
    int ours_only = argc > 1 && strcmp(argv[1], "--ours-only") == 0;
    const char *one = getenv("PSI_BENCH_ONE_THREAD");
    psi_flags = one && strcmp(one, "1") == 0 ? MT_PSI_ONE_THREAD : 0;
    int first_case = 1 + ours_only;
    const char *big = getenv("PSI_BENCH_BIG");
    int skip_big = big && strcmp(big, "0") == 0;
    if (sodium_init() < 0)
        return 1;
    const bcase cases[] = {
        {2, 20, 5, 3},
        {2, 24, 3, 1},
        {5, 20, 3, 2},
    };
    size_t ncases = sizeof cases / sizeof cases[0];
    const char *runs_env = getenv("PSI_BENCH_RUNS");
    int runs_override = runs_env ? atoi(runs_env) : 0;

    /* (c) ECDH on the first 2^14 ids of two parties, once */
    double ecdh_sub = 0;
    size_t m_ecdh = 0;
    if (!ours_only) {
        rng_state = 99;
        uint64_t *sh = xmalloc((ECDH_N / 2) * sizeof *sh);
        for (size_t i = 0; i < ECDH_N / 2; i++)
            sh[i] = rng();
        size_t la, lb;
        char *a = make_list(sh, ECDH_N / 2, ECDH_N, &la), *b = make_list(sh, ECDH_N / 2, ECDH_N, &lb);
        double c0 = cpu_s();
        m_ecdh = psi_ecdh(a, b, ECDH_N);
        ecdh_sub = cpu_s() - c0;
        free(a);
        free(b);
        free(sh);
    }

    printf("PSI compute alone, in process, warm (not a task: see bench_psi_task): k parties x "
           "n ids (16 hex chars), n/2 shared by all, fixed seed\n");
    printf("every run as wall/process-CPU seconds (all threads), ours and the naive join interleaved\n");
    printf("threads: ours %s, the naive join 1 (compare wall times with that in mind); trim: "
           "malloc_trim(0) after each naive run, wall s, in neither timed window\n",
           psi_flags & MT_PSI_ONE_THREAD ? "1 (PSI_BENCH_ONE_THREAD=1)"
                                         : "up to 2 (inputs >= 4 MiB in all)");
    if (!ours_only)
        printf("ECDH-PSI ristretto255 MEASURED on 2 x 2^14 ids: %.3f s CPU (%zu of %u found); "
               "the ECDH column is an ESTIMATE from it, scaled by n/2^14 x k^2/4\n",
               ecdh_sub, m_ecdh, ECDH_N / 2);
    printf("\n| %-9s | %-s | %s |\n", "case", "runs: ours WALL/CPU, naive WALL/CPU, trim WALL (s)",
           "ECDH CPU s (estimate)");
    printf("|-----------|---|---:|\n");
    int bad = 0;
    for (size_t i = 0; i < ncases; i++) {
        const bcase *c = &cases[i];
        char name[32];
        snprintf(name, sizeof name, "%zu x 2^%u", c->parties, c->log2n);
        int wanted = first_case >= argc;
        for (int a = first_case; a < argc; a++)
            wanted |= strcmp(argv[a], name + 0) == 0 ||
                      (strchr(argv[a], 'x') && (size_t)atoi(argv[a]) == c->parties &&
                       (unsigned)atoi(strchr(argv[a], 'x') + 1) == c->log2n);
        if (!wanted)
            continue;
        if (skip_big && c->log2n > 20) {
            printf("| %-9s | skipped (PSI_BENCH_BIG=0) | |\n", name);
            continue;
        }
        bcase cc = *c;
        if (runs_override > 0)
            cc.runs = cc.naive_runs = runs_override;
        bres r;
        if (run_case(&cc, ours_only, ecdh_sub, &r) != 0)
            return 1;
        bad |= !r.ok;
        char ecdh[32] = "-";
        if (r.ecdh_cpu > 0)
            snprintf(ecdh, sizeof ecdh, "%.0f (estimate)", r.ecdh_cpu);
        printf("| %-9s | %s | %s |%s\n", name, r.runs_txt, ecdh,
               r.ok ? "" : " WRONG intersection size");
        fflush(stdout);
    }
    return bad;
}
