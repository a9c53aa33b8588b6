/* bench_fileformat: throughput of mt_ff (AES-256-GCM, 64 KiB segments).
 * Encrypts and decrypts one buffer (default 256 MiB, fixed-seed contents)
 * several times with the one-shot helpers and with the streaming writer and
 * reader (1 MiB chunks, sink copying into a preallocated buffer), and prints
 * the best and median rate of each in GB/s (10^9 bytes of plaintext per
 * second, the unit of `openssl speed`). Machine-readable lines start with
 * "RESULT <name> <best_gbps> <median_gbps>".
 * Usage: bench_fileformat [MiB] [iterations]
 *
 * The honest comparison with `openssl speed` (bench/fileformat/run.sh runs
 * these, each in a fresh process, interleaved with the anchor):
 *   bench_fileformat small BYTES SECONDS
 *       mt_ff_encrypt / mt_ff_decrypt of one BYTES buffer (e.g. 16384, the
 *       size `openssl speed -bytes 16384` uses) repeated for SECONDS each,
 *       rate over the process's CPU time (what `openssl speed` divides by)
 *       and over wall time: "RESULT small_<op> <cpu_gbps> <wall_gbps>".
 *   bench_fileformat big MiB
 *       one one-shot encrypt and one decrypt of a MiB buffer, wall and CPU:
 *       "RESULT big_<op> <wall_gbps> <cpu_gbps>" (compare with
 *       `openssl speed -elapsed -bytes <MiB << 20>`).
 *   bench_fileformat seg MiB SECONDS
 *       like with like at the segment size: mt_ff_encrypt_into /
 *       mt_ff_decrypt_into of one MiB buffer into output buffers allocated
 *       and touched once, repeated for SECONDS each, so the rate is the
 *       per-segment cost (64 KiB AES-GCM with its IV, AAD and tag) plus the
 *       per-call cost spread over MiB: "RESULT seg_<op> <cpu_gbps>
 *       <wall_gbps>" (compare with `openssl speed [-aead] -bytes 65536`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_ff.h"

#define CHUNK (1u << 20)

typedef struct {
    uint8_t *p;
    size_t len, cap;
} sinkbuf;

static mt_status copy_sink(void *ctx, const uint8_t *buf, size_t len, mt_err *err)
{
    sinkbuf *s = ctx;
    if (s->len + len > s->cap)
        return mt_err_set(err, MT_ETOOBIG, "bench sink overflow");
    memcpy(s->p + s->len, buf, len);
    s->len += len;
    return MT_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void die(const char *what, const mt_err *e)
{
    fprintf(stderr, "bench_fileformat: %s failed: %s\n", what, e->msg);
    exit(1);
}

static void report(const char *name, double *gbps, int n)
{
    qsort(gbps, (size_t)n, sizeof *gbps, cmp_double);
    printf("RESULT %-16s %6.2f %6.2f\n", name, gbps[n - 1], gbps[n / 2]);
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(uint8_t *p, size_t n)
{
    uint64_t s = 0x2545f4914f6cdd1dull; /* fixed seed */
    for (size_t i = 0; i + 8 <= n; i += 8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        memcpy(p + i, &s, 8);
    }
}

/* small BYTES SECONDS: the same buffer size as openssl speed, CPU time. */
static int small_mode(size_t n, double secs)
{
    uint8_t key[MT_FF_KEY_LEN] = {0x42}, *plain = malloc(n), *c = NULL, *p = NULL;
    size_t cl = 0, pl = 0;
    mt_err e;
    if (!plain)
        return 1;
    fill(plain, n);
    for (int op = 0; op < 2; op++) {
        double t0 = now_s(), c0 = cpu_s(), t;
        size_t calls = 0;
        do {
            for (int k = 0; k < 64; k++, calls++) {
                if (op == 0) {
                    free(c);
                    if (mt_ff_encrypt(key, plain, n, &c, &cl, &e) != MT_OK)
                        die("mt_ff_encrypt", &e);
                } else {
                    if (mt_ff_decrypt(key, c, cl, &p, &pl, &e) != MT_OK)
                        die("mt_ff_decrypt", &e);
                    free(p);
                }
            }
            t = now_s() - t0;
        } while (t < secs);
        double cp = cpu_s() - c0, bytes = (double)n * (double)calls;
        printf("RESULT small_%s %.2f %.2f\n", op ? "decrypt" : "encrypt", bytes / cp / 1e9,
               bytes / t / 1e9);
    }
    free(c);
    free(plain);
    return 0;
}

/* big MiB: one cold one-shot encrypt and decrypt, wall and CPU. */
static int big_mode(size_t n)
{
    uint8_t key[MT_FF_KEY_LEN] = {0x42}, *plain = malloc(n), *c = NULL, *p = NULL;
    size_t cl = 0, pl = 0;
    mt_err e;
    if (!plain)
        return 1;
    fill(plain, n);
    double t0 = now_s(), c0 = cpu_s();
    if (mt_ff_encrypt(key, plain, n, &c, &cl, &e) != MT_OK)
        die("mt_ff_encrypt", &e);
    double t1 = now_s(), c1 = cpu_s();
    if (mt_ff_decrypt(key, c, cl, &p, &pl, &e) != MT_OK)
        die("mt_ff_decrypt", &e);
    double t2 = now_s(), c2 = cpu_s();
    if (pl != n || memcmp(p, plain, n) != 0) {
        fprintf(stderr, "bench_fileformat: round trip mismatch\n");
        return 1;
    }
    printf("RESULT big_encrypt %.2f %.2f\nRESULT big_decrypt %.2f %.2f\n",
           (double)n / (t1 - t0) / 1e9, (double)n / (c1 - c0) / 1e9, (double)n / (t2 - t1) / 1e9,
           (double)n / (c2 - c1) / 1e9);
    free(c);
    free(p);
    free(plain);
    return 0;
}

/* seg MiB SECONDS: the one-shot helpers into reused, pre-touched buffers. */
static int seg_mode(size_t n, double secs)
{
    uint8_t key[MT_FF_KEY_LEN] = {0x42};
    size_t cap = (size_t)mt_ff_ciphertext_size(n), cl = 0, pl = 0;
    uint8_t *plain = malloc(n), *c = malloc(cap), *p = malloc(n);
    mt_err e;
    if (!plain || !c || !p)
        return 1;
    fill(plain, n);
    memset(c, 0, cap); /* first touch outside the timing */
    memset(p, 0, n);
    for (int op = 0; op < 2; op++) {
        double t0 = now_s(), c0 = cpu_s(), t;
        size_t calls = 0;
        do {
            if (op == 0) {
                if (mt_ff_encrypt_into(key, plain, n, c, cap, &cl, &e) != MT_OK)
                    die("mt_ff_encrypt_into", &e);
            } else if (mt_ff_decrypt_into(key, c, cl, p, n, &pl, &e) != MT_OK) {
                die("mt_ff_decrypt_into", &e);
            }
            calls++;
            t = now_s() - t0;
        } while (t < secs);
        double cp = cpu_s() - c0, bytes = (double)n * (double)calls;
        printf("RESULT seg_%s %.2f %.2f\n", op ? "decrypt" : "encrypt", bytes / cp / 1e9,
               bytes / t / 1e9);
    }
    if (pl != n || memcmp(p, plain, n) != 0) {
        fprintf(stderr, "bench_fileformat: round trip mismatch\n");
        return 1;
    }
    free(plain);
    free(c);
    free(p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "seg") == 0)
        return seg_mode(((size_t)strtoul(argv[2], NULL, 10) ? (size_t)strtoul(argv[2], NULL, 10)
                                                             : 64)
                            << 20,
                        atof(argv[3]) > 0 ? atof(argv[3]) : 1.0);
    if (argc == 4 && strcmp(argv[1], "small") == 0)
        return small_mode((size_t)strtoul(argv[2], NULL, 10) ? (size_t)strtoul(argv[2], NULL, 10)
                                                              : 16384,
                          atof(argv[3]) > 0 ? atof(argv[3]) : 1.0);
    if (argc == 3 && strcmp(argv[1], "big") == 0)
        return big_mode(((size_t)strtoul(argv[2], NULL, 10) ? (size_t)strtoul(argv[2], NULL, 10)
                                                             : 256)
                        << 20);
    size_t mib = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 256;
    int iters = argc > 2 ? atoi(argv[2]) : 5;
    if (mib == 0 || iters < 1 || iters > 100) {
        fprintf(stderr, "usage: bench_fileformat [MiB >= 1] [iterations 1..100]\n");
        return 2;
    }
    size_t n = mib << 20;
    uint8_t key[MT_FF_KEY_LEN];
    for (int i = 0; i < MT_FF_KEY_LEN; i++)
        key[i] = (uint8_t)(0x42 + i);
    uint8_t *plain = malloc(n);
    size_t ct_cap = (size_t)mt_ff_ciphertext_size(n);
    sinkbuf ct = {malloc(ct_cap), 0, ct_cap}, pt = {malloc(n), 0, n};
    double *r = calloc((size_t)iters, sizeof *r);
    if (!plain || !ct.p || !pt.p || !r) {
        fprintf(stderr, "bench_fileformat: cannot allocate 3 x %zu MiB\n", mib);
        return 1;
    }
    uint64_t s = 0x2545f4914f6cdd1dull; /* fixed seed */
    for (size_t i = 0; i + 8 <= n; i += 8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        memcpy(plain + i, &s, 8);
    }
    memset(ct.p, 0, ct_cap); /* fault the pages in before timing */
    memset(pt.p, 0, n);
    mt_err e;
    printf("bench_fileformat: %zu MiB, %d iterations, segment %d bytes\n", mib, iters,
           MT_FF_DEFAULT_SEGMENT);

    /* one-shot: includes allocating the returned buffer, as callers pay it */
    uint8_t *c1 = NULL, *p1 = NULL;
    size_t c1l = 0, p1l = 0;
    for (int it = 0; it < iters; it++) {
        free(c1);
        double t = now_s();
        if (mt_ff_encrypt(key, plain, n, &c1, &c1l, &e) != MT_OK)
            die("mt_ff_encrypt", &e);
        r[it] = (double)n / (now_s() - t) / 1e9;
    }
    report("oneshot_encrypt", r, iters);
    for (int it = 0; it < iters; it++) {
        double t = now_s();
        if (mt_ff_decrypt(key, c1, c1l, &p1, &p1l, &e) != MT_OK)
            die("mt_ff_decrypt", &e);
        r[it] = (double)n / (now_s() - t) / 1e9;
        if (p1l != n || memcmp(p1, plain, n) != 0) {
            fprintf(stderr, "bench_fileformat: one-shot round trip mismatch\n");
            return 1;
        }
        free(p1);
    }
    report("oneshot_decrypt", r, iters);
    free(c1);

    /* streaming: 1 MiB writes/feeds, sink copies into a preallocated buffer */
    for (int it = 0; it < iters; it++) {
        ct.len = 0;
        double t = now_s();
        mt_ff_writer *w = NULL;
        if (mt_ff_writer_new(key, copy_sink, &ct, &w, &e) != MT_OK)
            die("mt_ff_writer_new", &e);
        for (size_t off = 0; off < n; off += CHUNK)
            if (mt_ff_writer_write(w, plain + off, n - off < CHUNK ? n - off : CHUNK, &e) != MT_OK)
                die("mt_ff_writer_write", &e);
        if (mt_ff_writer_finish(w, &e) != MT_OK)
            die("mt_ff_writer_finish", &e);
        mt_ff_writer_free(w);
        r[it] = (double)n / (now_s() - t) / 1e9;
    }
    report("stream_encrypt", r, iters);
    for (int it = 0; it < iters; it++) {
        pt.len = 0;
        double t = now_s();
        mt_ff_reader *rd = NULL;
        if (mt_ff_reader_new(key, copy_sink, &pt, &rd, &e) != MT_OK)
            die("mt_ff_reader_new", &e);
        for (size_t off = 0; off < ct.len; off += CHUNK)
            if (mt_ff_reader_feed(rd, ct.p + off, ct.len - off < CHUNK ? ct.len - off : CHUNK,
                                  &e) != MT_OK)
                die("mt_ff_reader_feed", &e);
        if (mt_ff_reader_finish(rd, &e) != MT_OK)
            die("mt_ff_reader_finish", &e);
        mt_ff_reader_free(rd);
        r[it] = (double)n / (now_s() - t) / 1e9;
    }
    if (pt.len != n || memcmp(pt.p, plain, n) != 0) {
        fprintf(stderr, "bench_fileformat: streaming round trip mismatch\n");
        return 1;
    }
    report("stream_decrypt", r, iters);
    free(plain);
    free(ct.p);
    free(pt.p);
    free(r);
    return 0;
}
