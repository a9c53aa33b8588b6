/* bench_psi_task: PSI as a whole task (issue 13 "Cold memory"): what a
 * participant waits for once the task runs, measured the way the daemon
 * runs it: mt_executor_run of a psi job on encrypted input files (mt_ff),
 * in a fresh worker (forked by the zygote, or posix_spawn), which reads and
 * checks the ciphertexts, decrypts them, computes, encrypts and writes both
 * outputs, and exits. One cold call per run: every run is a new worker
 * process, nothing is warm but the page cache of the input files.
 *
 * Two parties x 2^L ids (16 hex characters, fixed seed, half shared).
 * Workers A and B (e.g. this build's and an older build's mesatee-worker)
 * run interleaved A B B A A B ... (the first of a pair meets the memory the
 * machine had idle; the second reuses what the first just freed), every run
 * printed: wall ms of
 * mt_executor_run (the whole worker, start to exit), the worker's own wall
 * and CPU ms and its peak RSS as the executor reports them.
 *
 * -p MS pauses before every run: memory freed by the last run may then have
 * gone back to the host (free page reporting on a VM), and the run meets
 * cold memory, as a task arriving after a quiet while does.
 *
 * Usage: bench_psi_task [-l LOG2N] [-r RUNS] [-s zygote|spawn] [-p MS]
 *        -a WORKER [-b WORKER] */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mt_executor.h"
#include "mt_ff.h"
#include "mt_util.h"

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

int main(int argc, char **argv)
{
    int log2n = 20, runs = 5, pause_ms = 0, opt;
    const char *wa = NULL, *wb = NULL;
    mt_worker_start mode = MT_WORKER_START_ZYGOTE;
    while ((opt = getopt(argc, argv, "l:r:s:a:b:p:")) != -1) {
        switch (opt) {
        case 'p': pause_ms = atoi(optarg); break;
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
        pause_ms > 60000)
        die("usage", "-a WORKER [-b WORKER] [-l 4..26] [-r 1..100] [-s zygote|spawn] "
                     "[-p 0..60000]");
    mt_executor_set_worker_start(mode);
    char dir[] = "/tmp/bench-psi-task-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");
    size_t n = (size_t)1 << log2n;
    mt_job_input in[2] = {{0}};
    mt_job_output out[2] = {{0}};
    char path[4][600];
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *plain = gen_list(n, (uint64_t)i + 1, &len);
        for (int k = 0; k < 32; k++) {
            in[i].key[k] = (uint8_t)(i * 31 + k);
            out[i].key[k] = (uint8_t)(i * 17 + k + 100);
        }
        uint8_t *ct;
        size_t ct_len;
        mt_err err = {0};
        if (mt_ff_encrypt(in[i].key, (const uint8_t *)plain, len, &ct, &ct_len, &err) != MT_OK)
            die("encrypt", err.msg);
        free(plain);
        snprintf(path[i], sizeof path[i], "%s/in%d", dir, i);
        write_file(path[i], ct, ct_len);
        free(ct);
        in[i].slot = i ? "b" : "a";
        in[i].path = path[i];
        snprintf(path[2 + i], sizeof path[2 + i], "%s/out%d", dir, i);
        out[i].slot = i ? "rb" : "ra";
        out[i].path = path[2 + i];
    }
    mt_job j = {0};
    j.task_id = "00000000000000000000000000000001";
    j.executor_type = "builtin";
    j.function = "psi";
    j.inputs = in;
    j.n_inputs = 2;
    j.outputs = out;
    j.n_outputs = 2;
    j.limits.wall_ms = 600000;
    j.limits.mem_bytes = (uint64_t)8 << 30;
    const char *workers[2] = {wa, wb};
    int nw = wb ? 2 : 1;
    printf("bench_psi_task: psi 2 x 2^%d ids (16 hex chars, half shared), whole worker "
           "(%s), %d run(s) each, interleaved, %d ms pause before each\n",
           log2n, mode == MT_WORKER_START_ZYGOTE ? "zygote" : "spawn", runs, pause_ms);
    printf("| run | worker | task ms (mt_executor_run) | worker wall ms | worker cpu ms | "
           "peak RSS MiB |\n|---|---|---|---|---|---|\n");
    /* start each zygote before the clock: a task never pays for it */
    for (int w = 0; w < nw && mode == MT_WORKER_START_ZYGOTE; w++) {
        mt_err err = {0};
        if (mt_executor_zygote_prestart(workers[w], &err) != MT_OK)
            die("zygote", err.msg);
    }
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < nw; k++) {
            int w = r % 2 ? nw - 1 - k : k; /* A B, B A, A B ... */
            j.worker_path = workers[w];
            if (pause_ms) {
                struct timespec ts = {pause_ms / 1000, (long)(pause_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            mt_job_result res;
            mt_err err = {0};
            double t0 = now_ms();
            if (mt_executor_run(&j, NULL, NULL, &res, &err) != MT_OK)
                die("run", err.msg);
            double t = now_ms() - t0;
            if (!res.ok)
                die("psi task failed", res.failure_reason ? res.failure_reason : "?");
            printf("| %d | %s | %.1f | %llu | %llu | %.1f |\n", r + 1, w ? "B" : "A", t,
                   (unsigned long long)res.wall_ms, (unsigned long long)res.cpu_ms,
                   (double)res.peak_rss_kb / 1024.0);
            fflush(stdout);
            mt_job_result_clear(&res);
            unlink(path[2]);
            unlink(path[3]);
        }
    }
    unlink(path[0]);
    unlink(path[1]);
    rmdir(dir);
    return 0;
}
