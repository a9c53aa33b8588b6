/* bench_psi_task: PSI as a whole task (issue 13 "Cold memory"): what a
 * participant waits for once the task runs, measured the way the daemon
 * runs it: mt_executor_run of a psi job on encrypted input files (mt_ff),
 * in a fresh worker (forked by the zygote, or posix_spawn), which reads and
 * checks the ciphertexts (against their SHA-256, as a registered file's),
 * decrypts them, computes, encrypts and writes both outputs, and exits. One
 * cold call per run: every run is a new worker process, nothing is warm but
 * the page cache of the input files.
 *
 * Two parties x 2^L ids (16 hex characters, fixed seed, half shared).
 * Workers A and B (e.g. this build's and an older build's mesatee-worker)
 * run interleaved A B B A A B ... (the first of a pair meets the memory the
 * machine had idle; the second reuses what the first just freed), every run
 * printed: wall ms of
 * mt_executor_run (the whole worker, start to exit, and the executor's
 * fsync + hash of the outputs), the worker's own wall and CPU ms and its peak
 * RSS as the executor reports them, and the CPU ms this process spent in
 * mt_executor_run (the executor: supervising, output fsync + hash on its
 * helper threads; getrusage RUSAGE_SELF), which the worker's CPU ms leaves
 * out. Threads: the psi builtin works on two threads when its inputs total
 * at least 4 MiB (builtin_psi.c PSI_PAR_MIN; 1 below), the anchors on one;
 * the table prints each row's count (ours: by that rule, not measured).
 *
 * -p MS pauses before every run: memory freed by the last run may then have
 * gone back to the host (free page reporting on a VM), and the run meets
 * cold memory, as a task arriving after a quiet while does.
 *
 * Anchors, each run in a fresh process (fork) interleaved with ours in every
 * round (A [B] naive [ecdh], then reversed), on the same ids as plaintext
 * files (the anchors neither decrypt nor encrypt: they are given that much):
 *  -n  the naive join (psi_anchors.c): read the k files, join, exit;
 *  -e  two-party ECDH-PSI on ristretto255 over all n ids, MEASURED (2 parties
 *      and n <= 2^16 only; larger sizes are estimates, made by run.sh).
 * Wall ms and CPU ms (user + sys of the whole child process, wait4) of every
 * run.
 *
 * Usage: bench_psi_task [-k PARTIES] [-l LOG2N] [-r RUNS] [-s zygote|spawn]
 *        [-p MS] [-n] [-e] -a WORKER [-b WORKER] */
#include <getopt.h>
#include <sodium.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mt_executor.h"
#include "mt_ff.h"
#include "mt_util.h"
#include "psi_anchors.h"

static uint64_t rng_state;
static uint64_t rng(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_psi_task: %s: %s\n", what, msg);
    exit(2);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* n ids of 16 hex chars + LF; the first n/2 are the same for every party. */
static char *gen_list(size_t n, uint64_t seed, size_t *len)
{
    char *p = malloc(n * 17 + 1);
    if (!p)
        die("gen", "out of memory");
    for (size_t i = 0; i < n; i++) {
        rng_state = i < n / 2 ? 0x5eed0000ULL + i : seed * 0x100000001ULL + i;
        snprintf(p + i * 17, 18, "%016llx\n", (unsigned long long)rng());
    }
    *len = n * 17;
    return p;
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f))
        die(path, "cannot write");
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f || fseek(f, 0, SEEK_END) != 0)
        die(path, "cannot read");
    long sz = ftell(f);
    char *b = malloc(sz > 0 ? (size_t)sz : 1);
    rewind(f);
    if (sz < 0 || !b || fread(b, 1, (size_t)sz, f) != (size_t)sz)
        die(path, "cannot read");
    fclose(f);
    *len = (size_t)sz;
    return b;
}

/* Runs one anchor in a fresh child process: it reads the k plaintext
 * files, computes the intersection and exits with its size mod 256 checked
 * by the parent through a pipe. Wall and CPU ms (the child's rusage). */
static size_t run_anchor(int ecdh, char (*plain)[600], int k, size_t n, double *wall_ms,
                         double *cpu_ms)
{
    int fd[2];
    if (pipe(fd) != 0)
        die("pipe", "failed");
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0)
        die("fork", "failed");
    if (pid == 0) {
        close(fd[0]);
        char *lists[PSI_MAX_PARTIES];
        size_t lens[PSI_MAX_PARTIES];
        for (int i = 0; i < k; i++)
            lists[i] = read_file(plain[i], &lens[i]);
        size_t m = ecdh ? psi_ecdh(lists[0], lists[1], n) : psi_naive_join(lists, lens, (size_t)k);
        if (write(fd[1], &m, sizeof m) != (ssize_t)sizeof m)
            _exit(3);
        _exit(0);
    }
    close(fd[1]);
    size_t m = 0;
    ssize_t got = read(fd[0], &m, sizeof m);
    close(fd[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        got != (ssize_t)sizeof m)
        die("anchor", "child failed");
    *wall_ms = now_ms() - t0;
    *cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    return m;
}

/* CPU ms (user + sys) of this process, all its threads, reaped children not
 * included. */
static double self_cpu_ms(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* The psi builtin's threshold for its second thread (builtin_psi.c
 * PSI_PAR_MIN: inputs of at least this many bytes in all). */
#define BENCH_PSI_PAR_MIN ((size_t)4 << 20)

int main(int argc, char **argv)
{
    int log2n = 20, runs = 5, pause_ms = 0, opt, k = 2, naive = 0, ecdh = 0;
    const char *wa = NULL, *wb = NULL;
    mt_worker_start mode = MT_WORKER_START_ZYGOTE;
    while ((opt = getopt(argc, argv, "k:l:r:s:a:b:p:ne")) != -1) {
        switch (opt) {
        case 'p': pause_ms = atoi(optarg); break;
        case 'k': k = atoi(optarg); break;
        case 'n': naive = 1; break;
        case 'e': ecdh = 1; break;
        case 'l': log2n = atoi(optarg); break;
        case 'r': runs = atoi(optarg); break;
        case 's':
            if (!mt_worker_start_parse(optarg, &mode))
                die("-s", "zygote or spawn");
            break;
        case 'a': wa = optarg; break;
        case 'b': wb = optarg; break;
        default: die("usage", "see the comment at the top of bench_psi_task.c");
        }
    }
    if (!wa || log2n < 4 || log2n > 26 || runs < 1 || runs > 100 || pause_ms < 0 ||
        pause_ms > 60000 || k < 2 || k > PSI_MAX_PARTIES || (ecdh && (k != 2 || log2n > 16)))
        die("usage", "-a WORKER [-b WORKER] [-k 2..8] [-l 4..26] [-r 1..100] [-s zygote|spawn] "
                     "[-p 0..60000] [-n] [-e: only -k 2 and -l <= 16]");
    if (sodium_init() < 0)
        die("libsodium", "init failed");
    mt_executor_set_worker_start(mode);
    char dir[] = "/tmp/bench-psi-task-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");
    size_t n = (size_t)1 << log2n;
    mt_job_input in[PSI_MAX_PARTIES] = {{0}};
    mt_job_output out[PSI_MAX_PARTIES] = {{0}};
    char path[2 * PSI_MAX_PARTIES][600], plain_path[PSI_MAX_PARTIES][600];
    static char *const slots[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    static char *const oslots[] = {"ra", "rb", "rc", "rd", "re", "rf", "rg", "rh"};
    char file_ids[PSI_MAX_PARTIES][33];
    for (int i = 0; i < k; i++)
        snprintf(file_ids[i], sizeof file_ids[i], "%032x", i + 1);
    for (int i = 0; i < k; i++) {
        size_t len;
        char *plain = gen_list(n, (uint64_t)i + 1, &len);
        for (int b = 0; b < 32; b++) {
            in[i].key[b] = (uint8_t)(i * 31 + b);
            out[i].key[b] = (uint8_t)(i * 17 + b + 100);
        }
        snprintf(plain_path[i], sizeof plain_path[i], "%s/plain%d", dir, i);
        write_file(plain_path[i], (const uint8_t *)plain, len);
        uint8_t *ct;
        size_t ct_len;
        mt_err err = {0};
        if (mt_ff_encrypt(in[i].key, (const uint8_t *)plain, len, &ct, &ct_len, &err) != MT_OK)
            die("encrypt", err.msg);
        free(plain);
        snprintf(path[i], sizeof path[i], "%s/in%d", dir, i);
        write_file(path[i], ct, ct_len);
        /* checked by the worker as the daemon has it checked: the SHA-256
         * recorded at registration */
        uint8_t digest[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(digest, ct, ct_len);
        mt_hex_encode(digest, sizeof digest, in[i].sha256);
        free(ct);
        in[i].slot = slots[i];
        in[i].path = path[i];
        snprintf(path[k + i], sizeof path[k + i], "%s/out%d", dir, i);
        out[i].slot = oslots[i];
        out[i].path = path[k + i];
        out[i].file_id = file_ids[i]; /* bound (mt_ff version 2), as the daemon writes */
    }
    mt_job j = {0};
    j.task_id = "00000000000000000000000000000001";
    j.executor_type = "builtin";
    j.function = "psi";
    j.inputs = in;
    j.n_inputs = (size_t)k;
    j.outputs = out;
    j.n_outputs = (size_t)k;
    j.limits.wall_ms = 600000;
    j.limits.mem_bytes = (uint64_t)8 << 30;
    const char *workers[2] = {wa, wb};
    int nw = wb ? 2 : 1;
    /* what to run in each round: workers 0..nw-1, then the anchors */
    int who[4], nwho = 0;
    for (int w = 0; w < nw; w++)
        who[nwho++] = w;
    if (naive)
        who[nwho++] = 2;
    if (ecdh)
        who[nwho++] = 3;
    printf("bench_psi_task: psi %d x 2^%d ids (16 hex chars, half shared), ours = whole cold "
           "task (%s worker: read, decrypt, PSI, encrypt, write); anchors in a fresh process "
           "on plaintext; %d round(s), interleaved, %d ms pause before each run\n",
           k, log2n, mode == MT_WORKER_START_ZYGOTE ? "zygote" : "spawn", runs, pause_ms);
    int ours_threads = (size_t)k * n * 17 >= BENCH_PSI_PAR_MIN ? 2 : 1;
    printf("threads: ours %d (the psi builtin: 2 when its inputs total >= 4 MiB, builtin_psi.c "
           "PSI_PAR_MIN, else 1; by that rule, not measured), naive join 1, ECDH-PSI 1\n"
           "cpu ms: ours = the worker process alone (user + sys, as the executor reports it; "
           "worker wall in brackets); executor cpu ms = this process during mt_executor_run "
           "(supervising, output fsync + hash on its helper threads), counted in wall ms, not in "
           "cpu ms; anchors = the whole anchor process (user + sys)\n",
           ours_threads);
    printf("| run | what | wall ms | cpu ms | peak RSS MiB | intersection | threads | executor "
           "cpu ms |\n"
           "|---|---|---|---|---|---|---|---|\n");
    static const char *const names[] = {"ours (A)", "ours (B)", "naive join (anchor)",
                                        "ECDH-PSI (anchor, measured)"};
    /* start each zygote before the clock: a task never pays for it */
    for (int w = 0; w < nw && mode == MT_WORKER_START_ZYGOTE; w++) {
        mt_err err = {0};
        if (mt_executor_zygote_prestart(workers[w], &err) != MT_OK)
            die("zygote", err.msg);
    }
    for (int r = 0; r < runs; r++) {
        for (int q = 0; q < nwho; q++) {
            int w = who[r % 2 ? nwho - 1 - q : q]; /* A B n e, e n B A, ... */
            if (pause_ms) {
                struct timespec ts = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            if (w >= 2) {
                double wall, cpu;
                size_t m = run_anchor(w == 3, plain_path, k, n, &wall, &cpu);
                printf("| %d | %s | %.1f | %.1f | | %zu%s | 1 | |\n", r + 1, names[w], wall, cpu,
                       m, m == n / 2 ? "" : " WRONG");
                fflush(stdout);
                if (m != n / 2)
                    die("anchor", "wrong intersection size");
                continue;
            }
            j.worker_path = workers[w];
            mt_job_result res;
            mt_err err = {0};
            double c0 = self_cpu_ms();
            double t0 = now_ms();
            if (mt_executor_run(&j, NULL, NULL, &res, &err) != MT_OK)
                die("run", err.msg);
            double t = now_ms() - t0;
            double xcpu = self_cpu_ms() - c0;
            if (!res.ok)
                die("psi task failed", res.failure_reason ? res.failure_reason : "?");
            printf("| %d | %s | %.1f | %llu (worker wall %llu) | %.1f | | %d | %.1f |\n", r + 1,
                   names[w], t, (unsigned long long)res.cpu_ms, (unsigned long long)res.wall_ms,
                   (double)res.peak_rss_kb / 1024.0, ours_threads, xcpu);
            fflush(stdout);
            mt_job_result_clear(&res);
            for (int i = 0; i < k; i++)
                unlink(path[k + i]);
        }
    }
    for (int i = 0; i < k; i++) {
        unlink(path[i]);
        unlink(plain_path[i]);
    }
    rmdir(dir);
    return 0;
}
