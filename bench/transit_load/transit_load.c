/* transit_load: closed-loop load on one KeyStore transit route over REST.
 * Each of -c threads keeps one keep-alive HTTPS connection (a reused libcurl
 * easy handle) and sends POST /v1/transit/encrypt/KEY (1 KiB plaintext) or
 * /v1/transit/sign/KEY (32-byte input) back to back, with the token from -t
 * in X-Vault-Token, for -d seconds or -n requests per thread. Prints the
 * requests answered 200, the others, and ops/s. TLS is checked against the
 * server certificate (-C), not through attestation (bench/keystore does that).
 * -o healthz sends GET /healthz instead on the same kind of connection: the
 * anchor run.sh measures beside the transit routes (the gateway's floor:
 * TLS record, HTTP parse, thread hand-off, no token check, crypto or store).
 * Exit status 1 when any request did not get 200.
 * Usage: transit_load -s URL -C CA -t TOKEN_FILE -k KEY [-o encrypt|sign|healthz]
 *                     [-c CONNS] [-d SECONDS | -n REQUESTS] */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256

static const char *url_base, *ca, *key, *op = "encrypt";
static char token_hdr[600];
static char *body;
static double secs = 3;
static long per_thread; /* > 0: requests per thread instead of a duration */
static atomic_long ok_n, bad_n;
static atomic_bool stop;

static size_t sink(char *p, size_t sz, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return sz * n;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
    (void)arg;
    CURL *h = curl_easy_init();
    if (!h) {
        atomic_fetch_add(&bad_n, 1);
        return NULL;
    }
    char url[1024];
    bool health = strcmp(op, "healthz") == 0;
    if (health)
        snprintf(url, sizeof url, "%s/healthz", url_base);
    else
        snprintf(url, sizeof url, "%s/v1/transit/%s/%s", url_base, op, key);
    struct curl_slist *hd = curl_slist_append(NULL, token_hdr);
    hd = curl_slist_append(hd, "Content-Type: application/json");
    hd = curl_slist_append(hd, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (!health)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    for (long i = 0; per_thread ? i < per_thread : !atomic_load(&stop); i++) {
        long code = 0;
        if (curl_easy_perform(h) == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        atomic_fetch_add(code == 200 ? &ok_n : &bad_n, 1);
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return NULL;
}

static char *b64_random(size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char *raw = malloc(n);
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!raw || !out)
        exit(2);
    for (size_t i = 0; i < n; i++)
        raw[i] = (unsigned char)rand();
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)raw[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)raw[i + 1] << 8;
        if (i + 2 < n)
            v |= raw[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
    free(raw);
    return out;
}

int main(int argc, char **argv)
{
    const char *token_file = NULL;
    unsigned conns = 4;
    int c;
    while ((c = getopt(argc, argv, "s:C:t:k:o:c:d:n:")) != -1) {
        switch (c) {
        case 's':
            url_base = optarg;
            break;
        case 'C':
            ca = optarg;
            break;
        case 't':
            token_file = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'o':
            op = optarg;
            break;
        case 'c':
            conns = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            secs = strtod(optarg, NULL);
            break;
        case 'n':
            per_thread = strtol(optarg, NULL, 10);
            break;
        default:
            goto usage;
        }
    }
    if (!url_base || !ca || !token_file || !key || conns < 1 || conns > MAX_CONNS || !(secs > 0) ||
        per_thread < 0 || (strcmp(op, "encrypt") && strcmp(op, "sign") && strcmp(op, "healthz")))
        goto usage;
    FILE *f = fopen(token_file, "r");
    char tok[512] = "";
    if (!f || !fgets(tok, sizeof tok, f)) {
        fprintf(stderr, "transit_load: cannot read the token file %s\n", token_file);
        return 2;
    }
    fclose(f);
    tok[strcspn(tok, "\r\n")] = '\0';
    snprintf(token_hdr, sizeof token_hdr, "X-Vault-Token: %s", tok);
    char *b64 = b64_random(strcmp(op, "encrypt") ? 32 : 1024);
    size_t blen = strlen(b64) + 32;
    body = malloc(blen);
    if (!body)
        return 2;
    snprintf(body, blen, "{\"%s\":\"%s\"}", strcmp(op, "encrypt") ? "input" : "plaintext", b64);
    free(b64);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_t th[MAX_CONNS];
    double t0 = now_s();
    unsigned started = 0;
    for (; started < conns; started++)
        if (pthread_create(&th[started], NULL, worker, NULL) != 0)
            break;
    if (!per_thread) {
        struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
        nanosleep(&ts, NULL);
        atomic_store(&stop, true);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double el = now_s() - t0;
    long okc = atomic_load(&ok_n), badc = atomic_load(&bad_n);
    printf("transit_load: %s, %u connections: %ld ok, %ld failed in %.2f s = %.0f ops/s\n", op,
           started, okc, badc, el, (double)okc / el);
    curl_global_cleanup();
    free(body);
    return badc || started < conns ? 1 : 0;
usage:
    fprintf(stderr, "usage: transit_load -s URL -C CA -t TOKEN_FILE -k KEY [-o encrypt|sign|healthz] "
                    "[-c CONNS] [-d SECONDS | -n REQUESTS]\n");
    return 2;
}
