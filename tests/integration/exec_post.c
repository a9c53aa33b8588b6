/* exec_post: a test client of the executor API (src/gateway/executor_api.c)
 * that speaks its mutually attested TLS with a soft-level identity of its
 * own, so integration tests can send the API what no well-behaved executor
 * sends (garbage bodies, wrong routes, lying Content-Length, names of other
 * executors). Not installed; used by it_executor_api_garbage.sh.
 *
 *   exec_post DATA_DIR id
 *       prints {"measurement": M, "soft_platform_key": K} for the policy
 *   exec_post DATA_DIR post POLICY HOST:PORT PATH BODYFILE
 *       POSTs the file's bytes to PATH; prints "HTTP <status>" and the body
 *   exec_post DATA_DIR raw POLICY HOST:PORT FILE
 *       sends the file's bytes as they are after the handshake (a whole
 *       request, head included); prints whatever comes back
 * Exit: 0 when an answer was read (whatever its status), 1 otherwise. */
#include <netdb.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "mt_atls.h"
#include "mt_err.h"
#include "mt_policy.h"
#include "mt_tee.h"
#include "mt_util.h"

static int die(const char *what, const mt_err *err)
{
    fprintf(stderr, "exec_post: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    return 1;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    for (size_t r; b && (r = fread(b + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

static int conn(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host)
        return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai) || !ai)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    struct timeval tv = {30, 0};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return die("usage: exec_post DATA_DIR id | post POLICY HOST:PORT PATH BODY | raw "
                   "POLICY HOST:PORT FILE",
                   NULL);
    bool id = !strcmp(argv[2], "id"), post = !strcmp(argv[2], "post"),
         raw = !strcmp(argv[2], "raw");
    if (!id && !(post && argc == 7) && !(raw && argc == 6))
        return die("bad arguments", NULL);
    mt_err err;
    mt_err_clear(&err);
    mt_tee *tee = NULL;
    const char *cfg = "exec_post-test-client\n";
    const char *files[] = {NULL};
    if (mt_mkdirs(argv[1], 0700, &err) || mt_tee_open("soft", argv[1], &tee, &err) ||
        mt_tee_set_config(tee, (const uint8_t *)cfg, strlen(cfg), files, &err))
        return die("TEE identity", &err);
    if (id) {
        char meas[65], pk[65];
        mt_tee_soft_ids(tee, meas, pk);
        printf("{\"measurement\":\"%s\",\"soft_platform_key\":\"%s\"}\n", meas, pk);
        mt_tee_free(tee);
        return 0;
    }
    mt_policy *pol = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    SSL_CTX *ctx = NULL;
    if (mt_policy_load(argv[3], &pol, &err) || mt_tee_tls_identity(tee, &key, &cert, &err) ||
        mt_atls_ctx_new(false, key, cert, pol, &ctx, &err))
        return die("attested TLS context", &err);
    size_t blen = 0;
    unsigned char *body = slurp(post ? argv[6] : argv[5], &blen);
    if (!body)
        return die("cannot read the body file", NULL);
    int fd = conn(argv[4]);
    if (fd < 0)
        return die("cannot connect", NULL);
    SSL *ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)
        return die("handshake refused", NULL);
    if (post) {
        char head[1024];
        int hn = snprintf(head, sizeof head,
                          "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                          argv[5], blen);
        if (hn <= 0 || (size_t)hn >= sizeof head || mt_atls_write(ssl, head, (size_t)hn, &err))
            return die("write", &err);
    }
    if (blen && mt_atls_write(ssl, body, blen, &err))
        return die("write", &err);
    free(body);
    /* the answer, whole, until the server closes */
    size_t cap = 1 << 16, n = 0;
    char *ans = malloc(cap + 1);
    for (int r; ans && (r = SSL_read(ssl, ans + n, (int)(cap - n))) > 0;) {
        n += (size_t)r;
        if (n == cap) {
            char *na = realloc(ans, (cap *= 2) + 1);
            if (!na)
                return die("out of memory", NULL);
            ans = na;
        }
    }
    if (!ans || !n)
        return die("no answer", NULL);
    ans[n] = 0;
    int status = 0;
    char *eoh = strstr(ans, "\r\n\r\n");
    if (sscanf(ans, "HTTP/1.%*d %d", &status) != 1 || !eoh)
        return die("not an HTTP answer", NULL);
    printf("HTTP %d\n%s\n", status, eoh + 4);
    free(ans);
    SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    EVP_PKEY_free(key);
    X509_free(cert);
    mt_policy_free(pol);
    mt_tee_free(tee);
    return 0;
}
