/* Unit tests of libmesatee through its public API only: key files, file
 * encryption helpers, URL checks, error messages, and the HTTP/TLS transport
 * against a small in-process TLS server (OpenSSL) with canned answers.
 * libcurl is called directly only to ask what the loaded one accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mesatee.h"

/* ======================================================================== */
/* Temporary directory                                                       */

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/mt-client-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *tpath(const char *leaf)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, leaf);
    return buf[i];
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static bool contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}

/* ======================================================================== */
/* Constants and keys                                                        */

static void test_sizes_and_names(void **state)
{
    (void)state;
    assert_int_equal(mesatee_key_bytes(), 32);
    assert_int_equal(mesatee_id_chars(), 32);
    assert_string_equal(mesatee_status_name(MESATEE_EPERM), "permission_denied");
    assert_string_equal(mesatee_status_name(MESATEE_ENET), "network_error");
    assert_string_equal(mesatee_status_name(999), "unknown");
    assert_string_equal(mesatee_version(), "0.1.0");
    mesatee_free(NULL);
    mesatee_client_free(NULL);
}

static void test_key_file_round_trip(void **state)
{
    (void)state;
    uint8_t k1[32], k2[32], zero[32] = {0};
    assert_int_equal(mesatee_key_generate(k1), MESATEE_OK);
    assert_memory_not_equal(k1, zero, 32);
    const char *p = tpath("key1");
    assert_int_equal(mesatee_key_write_file(k1, p), MESATEE_OK);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(sb.st_size, 65); /* 64 hex + newline */
    assert_int_equal(mesatee_key_read_file(p, k2), MESATEE_OK);
    assert_memory_equal(k1, k2, 32);
    /* never overwrite an existing key */
    uint8_t k3[32];
    assert_int_equal(mesatee_key_generate(k3), MESATEE_OK);
    assert_int_equal(mesatee_key_write_file(k3, p), MESATEE_ECONFLICT);
    assert_true(contains(mesatee_client_errmsg(NULL), "exists"));
    assert_int_equal(mesatee_key_read_file(p, k2), MESATEE_OK);
    assert_memory_equal(k1, k2, 32);
    /* hex helpers */
    char hex[65];
    mesatee_key_to_hex(k1, hex);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(mesatee_key_from_hex(hex, k2), MESATEE_OK);
    assert_memory_equal(k1, k2, 32);
    assert_int_equal(mesatee_key_from_hex("abcd", k2), MESATEE_EINVAL);
}

static void test_key_file_bad(void **state)
{
    (void)state;
    uint8_t key[32];
    const char good[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const char *p = tpath("badkey");

    write_file(p, good, 63, 0600); /* one character short */
    assert_int_equal(mesatee_key_read_file(p, key), MESATEE_EINVAL);
    assert_true(contains(mesatee_client_errmsg(NULL), "64 hex"));

    char nonhex[65];
    memcpy(nonhex, good, 65);
    nonhex[10] = 'g';
    write_file(p, nonhex, 64, 0600);
    assert_int_equal(mesatee_key_read_file(p, key), MESATEE_EINVAL);
    assert_true(contains(mesatee_client_errmsg(NULL), "hex"));

    char two_lines[140];
    snprintf(two_lines, sizeof two_lines, "%s\n%s\n", good, good);
    write_file(p, two_lines, strlen(two_lines), 0600);
    assert_int_equal(mesatee_key_read_file(p, key), MESATEE_EINVAL);

    write_file(p, "", 0, 0600);
    assert_int_equal(mesatee_key_read_file(p, key), MESATEE_EINVAL);

    /* group/world access refused (like ssh private keys) */
    write_file(p, good, 64, 0644);
    assert_int_equal(mesatee_key_read_file(p, key), MESATEE_EPERM);
    assert_true(contains(mesatee_client_errmsg(NULL), "chmod 600"));
    write_file(p, good, 64, 0640);
    assert_int_equal(mesatee_key_read_file(p, key), MESATEE_EPERM);

    /* CRLF and upper case are accepted */
    char crlf[70];
    snprintf(crlf, sizeof crlf, "%s\r\n", good);
    for (char *c = crlf; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    write_file(p, crlf, strlen(crlf), 0400);
    assert_int_equal(mesatee_key_read_file(p, key), MESATEE_OK);
    assert_int_equal(key[0], 0);
    assert_int_equal(key[31], 0x1f);

    assert_int_equal(mesatee_key_read_file(tpath("no-such-key"), key), MESATEE_EIO);
    assert_true(contains(mesatee_client_errmsg(NULL), "no-such-key"));
}

/* ======================================================================== */
/* File encryption                                                           */

static void test_file_encrypt_round_trip_and_tamper(void **state)
{
    (void)state;
    size_t n = 200 * 1024 + 17; /* several segments */
    uint8_t *plain = malloc(n);
    assert_non_null(plain);
    for (size_t i = 0; i < n; i++)
        plain[i] = (uint8_t)(i * 31 + 7);
    const char *pp = tpath("plain"), *cp = tpath("cipher"), *op = tpath("plain.out");
    write_file(pp, plain, n, 0600);
    uint8_t key[32], other[32];
    assert_int_equal(mesatee_key_generate(key), MESATEE_OK);
    assert_int_equal(mesatee_key_generate(other), MESATEE_OK);
    assert_int_equal(mesatee_file_encrypt(key, pp, cp), MESATEE_OK);

    size_t clen = 0, olen = 0;
    uint8_t *ct = read_all(cp, &clen);
    assert_non_null(ct);
    assert_true(clen > n);
    assert_null(memmem(ct, clen, plain, 64)); /* no plaintext in the ciphertext */

    assert_int_equal(mesatee_file_decrypt(key, cp, op), MESATEE_OK);
    uint8_t *back = read_all(op, &olen);
    assert_non_null(back);
    assert_int_equal(olen, n);
    assert_memory_equal(back, plain, n);
    free(back);
    unlink(op);

    /* wrong key */
    assert_int_equal(mesatee_file_decrypt(other, cp, op), MESATEE_ECRYPTO);
    assert_int_equal(access(op, F_OK), -1);

    /* one flipped bit in the middle */
    const char *tp = tpath("tampered");
    ct[clen / 2] ^= 0x01;
    write_file(tp, ct, clen, 0600);
    assert_int_equal(mesatee_file_decrypt(key, tp, op), MESATEE_ECRYPTO);
    assert_true(contains(mesatee_client_errmsg(NULL), "failed"));
    assert_int_equal(access(op, F_OK), -1);
    ct[clen / 2] ^= 0x01;

    /* truncation at a segment boundary and mid-segment */
    write_file(tp, ct, clen - 1, 0600);
    assert_int_equal(mesatee_file_decrypt(key, tp, op), MESATEE_ECRYPTO);
    write_file(tp, ct, 40 + 65536 + 16, 0600);
    assert_int_equal(mesatee_file_decrypt(key, tp, op), MESATEE_ECRYPTO);
    assert_int_equal(access(op, F_OK), -1);

    /* missing input */
    assert_int_not_equal(mesatee_file_encrypt(key, tpath("absent"), cp), MESATEE_OK);
    assert_true(strlen(mesatee_client_errmsg(NULL)) > 0);
    free(ct);
    free(plain);
}

/* SHA-256(label || data)[0..16]. */
static void sha16(const char *label, const void *data, size_t len, uint8_t out[16])
{
    uint8_t md[32];
    unsigned int ml = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    assert_non_null(c);
    assert_int_equal(EVP_DigestInit_ex(c, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_DigestUpdate(c, label, strlen(label)), 1);
    assert_int_equal(EVP_DigestUpdate(c, data, len), 1);
    assert_int_equal(EVP_DigestFinal_ex(c, md, &ml), 1);
    EVP_MD_CTX_free(c);
    memcpy(out, md, 16);
}

/* Writes a one-segment mt_ff version 2 file built from docs/formats.md 1.6
 * alone (not with the library's writer): header(88) || ct || tag. */
static void write_bound(const char *path, const uint8_t key[32], const char *task_hex,
                        const char *slot, const char *file_hex, const char *msg)
{
    uint8_t h[88] = {'M', 'T', 'F', '1', 2, 1, 0, 0, 0, 1, 0, 0}, ct[256], nonce[12];
    sha16("mesatee-ff-key-id", key, 32, h + 12);
    memcpy(h + 28, "\x01\x02\x03\x04\x05\x06\x07", 7);
    for (int i = 0; i < 16; i++) {
        unsigned v;
        assert_int_equal(sscanf(task_hex + 2 * i, "%2x", &v), 1);
        h[40 + i] = (uint8_t)v;
        assert_int_equal(sscanf(file_hex + 2 * i, "%2x", &v), 1);
        h[72 + i] = (uint8_t)v;
    }
    sha16("mesatee-ff-slot", slot, strlen(slot), h + 56);
    memcpy(nonce, h + 28, 7);
    memcpy(nonce + 7, "\x00\x00\x00\x00\x01", 5); /* segment 0, last */
    size_t n = strlen(msg);
    int l = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &l, h, sizeof h), 1);
    assert_int_equal(EVP_EncryptUpdate(c, ct, &l, (const uint8_t *)msg, (int)n), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, ct + n, &l), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, ct + n), 1);
    EVP_CIPHER_CTX_free(c);
    uint8_t buf[512];
    memcpy(buf, h, sizeof h);
    memcpy(buf + sizeof h, ct, n + 16);
    write_file(path, buf, sizeof h + n + 16, 0600);
}

/* Issue 8 item 9: an output is accepted only as the output of its own task,
 * slot and file. */
static void test_decrypt_output_binding(void **state)
{
    (void)state;
    static const char T[] = "0123456789abcdef0123456789abcdef",
                      T2[] = "0123456789abcdef0123456789abcdee",
                      F[] = "000000000000000000000000000000ff";
    uint8_t key[32];
    assert_int_equal(mesatee_key_generate(key), MESATEE_OK);
    const char *bp = tpath("bound"), *op = tpath("out"), *pp = tpath("plain"),
               *up = tpath("unbound");
    write_bound(bp, key, T, "result", F, "the result\n");
    size_t len = 0;
    uint8_t *got;

    /* readable as any mt_ff file; as this output only with its binding */
    assert_int_equal(mesatee_file_decrypt(key, bp, op), MESATEE_OK);
    unlink(op);
    assert_int_equal(mesatee_file_decrypt_output(key, bp, op, T, "result", F, 0), MESATEE_OK);
    got = read_all(op, &len);
    assert_int_equal(len, 11);
    assert_memory_equal(got, "the result\n", 11);
    free(got);
    unlink(op);
    assert_int_equal(mesatee_file_decrypt_output(key, bp, op, T2, "result", F, 0),
                     MESATEE_ECRYPTO);
    assert_true(contains(mesatee_client_errmsg(NULL), "output of another task"));
    assert_int_equal(mesatee_file_decrypt_output(key, bp, op, T, "other", F, 0), MESATEE_ECRYPTO);
    assert_true(contains(mesatee_client_errmsg(NULL), "another output slot"));
    assert_int_equal(mesatee_file_decrypt_output(key, bp, op, T, "result", T, 0), MESATEE_ECRYPTO);
    assert_true(contains(mesatee_client_errmsg(NULL), "another output file"));
    /* ALLOW_UNBOUND never accepts a file bound to something else */
    assert_int_equal(
        mesatee_file_decrypt_output(key, bp, op, T2, "result", F, MESATEE_ALLOW_UNBOUND),
        MESATEE_ECRYPTO);
    assert_int_equal(access(op, F_OK), -1);

    /* an unbound (version 1) file: refused unless asked */
    write_file(pp, "old\n", 4, 0600);
    assert_int_equal(mesatee_file_encrypt(key, pp, up), MESATEE_OK);
    assert_int_equal(mesatee_file_decrypt_output(key, up, op, T, "result", F, 0), MESATEE_ECRYPTO);
    assert_true(contains(mesatee_client_errmsg(NULL), "not bound"));
    assert_int_equal(access(op, F_OK), -1);
    assert_int_equal(
        mesatee_file_decrypt_output(key, up, op, T, "result", F, MESATEE_ALLOW_UNBOUND),
        MESATEE_OK);
    unlink(op);

    /* the binding bytes are authenticated: a header rewritten to pass fails */
    write_bound(bp, key, T2, "result", F, "the result\n");
    got = read_all(bp, &len);
    got[40 + 15] ^= 0x01; /* T2 -> T */
    write_file(bp, got, len, 0600);
    free(got);
    assert_int_equal(mesatee_file_decrypt_output(key, bp, op, T, "result", F, 0), MESATEE_ECRYPTO);
    assert_true(contains(mesatee_client_errmsg(NULL), "failed"));
    assert_int_equal(access(op, F_OK), -1);

    /* bad arguments */
    assert_int_equal(mesatee_file_decrypt_output(key, bp, op, "t1", "result", F, 0),
                     MESATEE_EINVAL);
    assert_int_equal(mesatee_file_decrypt_output(key, bp, op, T, NULL, F, 0), MESATEE_EINVAL);
    char hex[65];
    assert_int_equal(mesatee_file_sha256(pp, hex), MESATEE_OK);
    assert_string_equal(hex, "01d09d19c2139a46aebfb577780d123d7396e97201bc7ead210a2ebff8239dee");
}

/* ======================================================================== */
/* Client handle, URLs, argument checks                                      */

static void test_invalid_urls(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "http://127.0.0.1:7443",
                         "https://",
                         "https://host/path",
                         "https://host:0",
                         "https://host:99999",
                         "https://host:12ab",
                         "https://user@host",
                         "https://host?x=1",
                         "https://ho st",
                         "https://[::1",
                         "ftp://host"};
    assert_null(mesatee_client_new(NULL));
    assert_true(strlen(mesatee_client_errmsg(NULL)) > 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mesatee_client *c = mesatee_client_new(bad[i]);
        if (c)
            fail_msg("URL '%s' was accepted", bad[i]);
        assert_true(contains(mesatee_client_errmsg(NULL), "URL"));
    }
    assert_true(contains(mesatee_client_errmsg(NULL), "https://"));
    const char *good[] = {"https://127.0.0.1:7443", "https://127.0.0.1:7443/",
                          "https://localhost", "https://[::1]:8443"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        mesatee_client *c = mesatee_client_new(good[i]);
        if (!c)
            fail_msg("URL '%s' refused: %s", good[i], mesatee_client_errmsg(NULL));
        assert_string_equal(mesatee_client_errmsg(NULL), "");
        mesatee_client_free(c);
    }
}

static void test_argument_checks(void **state)
{
    (void)state;
    mesatee_client *c = mesatee_client_new("https://127.0.0.1:1");
    assert_non_null(c);
    char *out = (char *)"sentinel";
    assert_int_equal(mesatee_task_get(c, "not-an-id", &out), MESATEE_EINVAL);
    assert_null(out);
    assert_true(contains(mesatee_client_errmsg(c), "invalid task id"));
    assert_int_equal(mesatee_call(c, "GET", "v1/files", NULL, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_call(c, "PATCH", "/v1/files", NULL, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_call(c, "GET", "/v1/files x", NULL, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_function_register(c, "{not json", NULL, NULL), MESATEE_EINVAL);
    assert_true(contains(mesatee_client_errmsg(c), "not valid JSON"));
    assert_int_equal(mesatee_task_create(c, "[1]", NULL, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_client_set_ca_file(c, tpath("no-ca.pem")), MESATEE_EIO);
    assert_int_equal(mesatee_client_set_token(c, "bad token"), MESATEE_EINVAL);
    assert_int_equal(mesatee_client_set_timeout(c, -1), MESATEE_EINVAL);
    const char *one[] = {"alice"};
    assert_int_equal(mesatee_file_register_fusion(c, one, 1, NULL, NULL, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_client_set_token(c, "tok"), MESATEE_OK);
    assert_string_equal(mesatee_client_token(c), "tok");
    assert_int_equal(mesatee_call(NULL, "GET", "/healthz", NULL, NULL), MESATEE_EINVAL);
    assert_true(contains(mesatee_client_errmsg(NULL), "NULL"));
    /* user lifecycle: names go into the path, refused before any request */
    static const char *const bad_names[] = {"", "Bob", "../x", "a/b", "a b", "x?y",
                                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        out = (char *)"sentinel";
        assert_int_equal(mesatee_user_show(c, bad_names[i], &out), MESATEE_EINVAL);
        assert_null(out);
        assert_true(contains(mesatee_client_errmsg(c), "invalid user name"));
        assert_int_equal(mesatee_user_disable(c, bad_names[i], NULL), MESATEE_EINVAL);
        assert_int_equal(mesatee_user_enable(c, bad_names[i], NULL), MESATEE_EINVAL);
        assert_int_equal(mesatee_user_delete(c, bad_names[i], NULL), MESATEE_EINVAL);
        assert_int_equal(mesatee_user_reset_password(c, bad_names[i], "password1", NULL),
                         MESATEE_EINVAL);
    }
    assert_int_equal(mesatee_user_show(c, NULL, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_user_reset_password(c, "bob", NULL, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_user_change_password(c, NULL, "password1", NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_user_change_password(c, "password1", NULL, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_whoami(NULL, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_builtins(NULL, NULL), MESATEE_EINVAL);
    mesatee_client_free(c);
}

static void test_unreachable_server(void **state)
{
    (void)state;
    mesatee_client *c = mesatee_client_new("https://127.0.0.1:1");
    assert_non_null(c);
    char *out = NULL;
    assert_int_equal(mesatee_call(c, "GET", "/healthz", NULL, &out), MESATEE_ENET);
    assert_null(out);
    assert_int_equal(mesatee_client_http_status(c), 0);
    const char *m = mesatee_client_errmsg(c);
    assert_true(contains(m, "cannot connect"));
    assert_true(contains(m, "127.0.0.1:1"));
    char *tok = NULL;
    assert_int_equal(mesatee_login(c, "alice", "pw", &tok, NULL), MESATEE_ENET);
    assert_null(tok);
    assert_null(mesatee_client_token(c));
    mesatee_client_free(c);
}

/* A peer that accepts TCP connections, counts them and answers garbage (no
 * TLS): a mesatee_task_wait against it never reaches a server. */
typedef struct garbage_peer {
    int lfd, port;
    pthread_t th;
    atomic_int conns;
} garbage_peer;

static void *garbage_main(void *arg)
{
    garbage_peer *g = arg;
    for (;;) {
        int fd = accept(g->lfd, NULL, NULL);
        if (fd < 0)
            return NULL; /* shut down by garbage_stop */
        atomic_fetch_add(&g->conns, 1);
        char buf[4096];
        (void)!read(fd, buf, sizeof buf);
        static const char junk[] = "HTTP/1.1 200 OK\r\n\r\ngarbage-not-tls";
        (void)!write(fd, junk, sizeof junk - 1);
        close(fd);
    }
}

static void garbage_start(garbage_peer *g)
{
    memset(g, 0, sizeof *g);
    g->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(g->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(g->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(g->lfd, 16), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(g->lfd, (struct sockaddr *)&a, &al), 0);
    g->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&g->th, NULL, garbage_main, g), 0);
}

static void garbage_stop(garbage_peer *g)
{
    shutdown(g->lfd, SHUT_RDWR); /* wakes the accept */
    pthread_join(g->th, NULL);
    close(g->lfd);
}

/* mesatee_task_wait whose first poll never reached a server (a refused
 * connect; a peer that is no TLS server) fails at once with that error: the
 * reconnect window is only for a server that was reached. libcurl >= 8.21
 * sets the pretransfer time for such failures too, so it must not count as
 * "reached" (req_sent comes from the PREREQFUNCTION). The reconnect window
 * is set short so that a wrong retry ends too, with its own message. */
static void test_wait_never_reached(void **state)
{
    (void)state;
    mesatee_client *c = mesatee_client_new("https://127.0.0.1:1");
    assert_non_null(c);
    assert_int_equal(mesatee_client_set_token(c, "tok"), MESATEE_OK);
    assert_int_equal(mesatee_client_set_wait_reconnect(c, 3), MESATEE_OK);
    char st[16];
    assert_int_equal(mesatee_task_wait(c, "0123456789abcdef0123456789abcdef", 0, st, NULL),
                     MESATEE_ENET);
    const char *m = mesatee_client_errmsg(c);
    if (!contains(m, "cannot connect") || contains(m, "went away"))
        fail_msg("closed port: %s", m);
    mesatee_client_free(c);

    garbage_peer g;
    garbage_start(&g);
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", g.port);
    c = mesatee_client_new(url);
    assert_non_null(c);
    assert_int_equal(mesatee_client_set_token(c, "tok"), MESATEE_OK);
    assert_int_equal(mesatee_client_set_wait_reconnect(c, 3), MESATEE_OK);
    assert_int_equal(mesatee_task_wait(c, "0123456789abcdef0123456789abcdef", 0, st, NULL),
                     MESATEE_ENET);
    m = mesatee_client_errmsg(c);
    if (contains(m, "went away"))
        fail_msg("garbage peer: %s", m);
    mesatee_client_free(c);
    garbage_stop(&g);
    assert_int_equal(atomic_load(&g.conns), 1); /* one poll, no reconnect */
}

/* ======================================================================== */
/* In-process TLS server with canned answers                                 */

typedef struct fake_server {
    int lfd, port;
    SSL_CTX *ctx;
    pthread_t th;
    int n_conns;         /* connections to serve, one request each */
    int status;          /* HTTP status of every answer */
    const char *answer;  /* body of every answer */
    const char *const *answers; /* when set: body of the answer to connection n */
    const int *statuses;        /* when set: status of the answer to connection n */
    int hold_first_ms;          /* connection 0 is answered this long after its request */
    const int *holds;           /* when set: the same for connection n */
    char reqline[8][160];       /* first line of the request of connection n (n < 8) */
    char *req;           /* last request: head + body */
    size_t req_len;
    size_t body_len;     /* body bytes of the last request */
    /* Streamed answers (stream_len > 0): prefix, then stream_len bytes of
     * fill, sent until done or the client goes away; Content-Length only
     * when with_length. */
    const uint8_t *prefix;
    size_t prefix_len;
    uint64_t stream_len;
    char fill;
    bool with_length;
    int trickle_ms;    /* streamed answers: one byte of fill every trickle_ms */
    uint64_t streamed; /* answer bytes the client accepted */
} fake_server;

static char cert_path[512];

/* Self-signed P-256 certificate for 127.0.0.1/localhost; writes it to
 * cert_path and returns the key and certificate. */
static void make_identity(EVP_PKEY **pkey_out, X509 **x_out)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    assert_non_null(pkey);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext =
        X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    *pkey_out = pkey;
    *x_out = x;
}

static void *fake_main(void *arg)
{
    fake_server *s = arg;
    for (int n = 0; n < s->n_conns; n++) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        SSL *ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            size_t cap = 1 << 20, len = 0, head = 0, want = 0;
            char *buf = malloc(cap + 1);
            for (;;) {
                if (len == cap) {
                    cap *= 2;
                    buf = realloc(buf, cap + 1);
                }
                int r = SSL_read(ssl, buf + len, (int)(cap - len));
                if (r <= 0)
                    break;
                len += (size_t)r;
                buf[len] = '\0';
                if (!head) {
                    char *e = strstr(buf, "\r\n\r\n");
                    if (!e)
                        continue;
                    head = (size_t)(e - buf) + 4;
                    char *cl = strcasestr(buf, "\r\nContent-Length:");
                    want = cl && cl < e ? strtoul(cl + 17, NULL, 10) : 0;
                }
                if (len >= head + want)
                    break;
            }
            if (n < 8) {
                size_t l = strcspn(buf, "\r\n");
                snprintf(s->reqline[n], sizeof s->reqline[n], "%.*s", (int)l, buf);
            }
            free(s->req);
            s->req = buf;
            s->req_len = len;
            s->body_len = len >= head ? len - head : 0;
            if (s->stream_len) {
                char hdr[256];
                char len_hdr[64] = "";
                if (s->with_length)
                    snprintf(len_hdr, sizeof len_hdr, "Content-Length: %llu\r\n",
                             (unsigned long long)(s->prefix_len + s->stream_len));
                int h = snprintf(hdr, sizeof hdr,
                                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n%s"
                                 "Connection: close\r\n\r\n",
                                 s->status, len_hdr);
                SSL_write(ssl, hdr, h);
                bool up = s->prefix_len == 0 ||
                          SSL_write(ssl, s->prefix, (int)s->prefix_len) == (int)s->prefix_len;
                static char chunk[1 << 16];
                memset(chunk, s->fill, sizeof chunk);
                for (uint64_t sent = 0; up && sent < s->stream_len;) {
                    int want = s->stream_len - sent > sizeof chunk ? (int)sizeof chunk
                                                                    : (int)(s->stream_len - sent);
                    if (s->trickle_ms > 0) {
                        struct timespec ts = {s->trickle_ms / 1000,
                                              (s->trickle_ms % 1000) * 1000000L};
                        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                            ;
                        want = 1;
                    }
                    int w = SSL_write(ssl, chunk, want);
                    up = w > 0;
                    if (up)
                        sent += (uint64_t)w;
                    s->streamed = sent;
                }
                if (up)
                    SSL_shutdown(ssl);
                SSL_free(ssl);
                close(fd);
                continue;
            }
            char hdr[256];
            const char *answer = s->answers ? s->answers[n] : s->answer;
            size_t blen = strlen(answer);
            int hold = s->holds ? s->holds[n] : n == 0 ? s->hold_first_ms : 0;
            if (hold > 0) {
                struct timespec ts = {hold / 1000, (hold % 1000) * 1000000L};
                while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
                    ;
            }
            int h = snprintf(hdr, sizeof hdr,
                             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                             s->statuses ? s->statuses[n] : s->status, blen);
            SSL_write(ssl, hdr, h);
            if (blen)
                SSL_write(ssl, answer, (int)blen);
            SSL_shutdown(ssl);
        }
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

/* A streamed answer for fake_start_stream. */
typedef struct fake_stream {
    const uint8_t *prefix;
    size_t prefix_len;
    uint64_t len;
    char fill;
    bool with_length;
} fake_stream;

static void fake_start_stream(fake_server *s, int n_conns, int status, const char *answer,
                              int max_tls, const fake_stream *st);

/* Starts a server for n_conns connections. max_tls 0 = TLS 1.3 only. */
static void fake_start(fake_server *s, int n_conns, int status, const char *answer,
                       int max_tls)
{
    fake_start_stream(s, n_conns, status, answer, max_tls, NULL);
}

static void fake_start_stream(fake_server *s, int n_conns, int status, const char *answer,
                              int max_tls, const fake_stream *st)
{
    memset(s, 0, sizeof *s);
    if (st) {
        s->prefix = st->prefix;
        s->prefix_len = st->prefix_len;
        s->stream_len = st->len;
        s->fill = st->fill;
        s->with_length = st->with_length;
    }
    snprintf(cert_path, sizeof cert_path, "%s/server-cert.pem", tmpdir);
    EVP_PKEY *pkey;
    X509 *x;
    make_identity(&pkey, &x);
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    SSL_CTX_set_min_proto_version(s->ctx, max_tls ? TLS1_2_VERSION : TLS1_3_VERSION);
    if (max_tls)
        SSL_CTX_set_max_proto_version(s->ctx, max_tls);
    assert_int_equal(SSL_CTX_use_certificate(s->ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, pkey), 1);
    X509_free(x);
    EVP_PKEY_free(pkey);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    s->n_conns = n_conns;
    s->status = status;
    s->answer = answer;
    assert_int_equal(pthread_create(&s->th, NULL, fake_main, s), 0);
}

static void fake_stop(fake_server *s)
{
    shutdown(s->lfd, SHUT_RDWR);
    close(s->lfd);
    pthread_join(s->th, NULL);
    SSL_CTX_free(s->ctx);
    free(s->req);
}

static mesatee_client *client_for(const fake_server *s, bool pin)
{
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", s->port);
    mesatee_client *c = mesatee_client_new(url);
    assert_non_null(c);
    mesatee_client_set_timeout(c, 10);
    if (pin)
        assert_int_equal(mesatee_client_set_ca_file(c, cert_path), MESATEE_OK);
    return c;
}

/* A hold cut by a transient failure (here a 502 from a proxy, answered
 * 1.5 s after the request) is polled again with a hold that ends by the
 * wait's deadline, not with the length of the failed one (taken when more
 * time was left): --timeout is kept. The 1.5 s only makes the time left
 * drop by a whole second between the two requests (a lower bound, never a
 * limit); the assertion is on the ?wait= the server was asked. */
static void test_wait_retry_within_deadline(void **state)
{
    (void)state;
    fake_server s;
    static const char *const answers[] = {"{\"error\":\"bad gateway\"}",
                                          "{\"task_id\":\"0123456789abcdef0123456789abcdef\","
                                          "\"status\":\"finished\"}"};
    static const int statuses[] = {502, 200};
    fake_start(&s, 2, 200, NULL, 0);
    s.answers = answers;
    s.statuses = statuses;
    s.hold_first_ms = 1500;
    mesatee_client *c = client_for(&s, true);
    char st[16];
    if (mesatee_task_wait(c, "0123456789abcdef0123456789abcdef", 5, st, NULL) != MESATEE_OK)
        fail_msg("task wait: %s", mesatee_client_errmsg(c));
    assert_string_equal(st, "finished");
    mesatee_client_free(c);
    fake_stop(&s);
    const char *q0 = strstr(s.reqline[0], "?wait="), *q1 = strstr(s.reqline[1], "?wait=");
    if (!q0 || !q1)
        fail_msg("requests: '%s', '%s'", s.reqline[0], s.reqline[1]);
    long w0 = strtol(q0 + 6, NULL, 10), w1 = strtol(q1 + 6, NULL, 10);
    if (!(w0 >= 1 && w0 <= 5 && w1 < w0))
        fail_msg("the retry asks for a hold of %ld s after one of %ld s", w1, w0);
}

/* M1: with a timeout, every request of mesatee_task_wait ends by it (plus a
 * margin), whatever the handle's limits: a server that accepted the
 * connection and never answers (a stopped daemon: the kernel completes the
 * TCP handshake), and one that trickles its answer a byte at a time (never
 * slow enough for the stall check), end the wait with MESATEE_ETIMEOUT, not
 * after the connect timeout (10 s, as MESATEE_ENET) or never. The handle
 * has no request timeout (the CLI's default). Without the cap the wait
 * takes the whole trickle (30 s) and fails on its blank answer. Then the
 * handle's own limits hold again: a later request answered after the
 * wait's cap would have passed still succeeds. No duration is asserted. */
static void test_wait_bounded_by_timeout(void **state)
{
    (void)state;
    const char *id = "0123456789abcdef0123456789abcdef";
    char st[16];
    /* a listener that never accepts: connect succeeds, TLS never answers */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 8), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", ntohs(a.sin_port));
    mesatee_client *c = mesatee_client_new(url);
    assert_non_null(c);
    assert_int_equal(mesatee_client_set_token(c, "tok"), MESATEE_OK);
    char *out = NULL;
    int rc = mesatee_task_wait(c, id, 1, st, &out);
    if (rc != MESATEE_ETIMEOUT)
        fail_msg("silent server: %d: %s", rc, mesatee_client_errmsg(c));
    assert_null(out);
    assert_true(contains(mesatee_client_errmsg(c), "no answer from the server"));
    mesatee_client_free(c);
    close(lfd);

    /* a trickled answer: 60 bytes of a 100000-byte body, one every 0.5 s */
    fake_server s;
    fake_stream fs = {(const uint8_t *)"", 0, 60, ' ', true};
    fake_start_stream(&s, 1, 200, "", 0, &fs);
    s.trickle_ms = 500;
    c = client_for(&s, true);
    assert_int_equal(mesatee_client_set_timeout(c, 0), MESATEE_OK);
    assert_int_equal(mesatee_client_set_token(c, "tok"), MESATEE_OK);
    rc = mesatee_task_wait(c, id, 1, st, &out);
    if (rc != MESATEE_ETIMEOUT)
        fail_msg("trickling server: %d: %s", rc, mesatee_client_errmsg(c));
    assert_null(out);
    fake_stop(&s);
    assert_true(s.streamed < s.stream_len); /* cut, not ended by the server */

    mesatee_client_free(c);

    /* a server that took the long poll and stopped answering (a daemon
     * SIGSTOPped while the hold is parked): held 3.5 s, past the wait's cap
     * of 2 s. Then, on the same handle, a request the server answers 2.5 s
     * after the end of that hold (a stale cap of the wait would cut it). */
    static const char *const answers[] = {
        "{\"task_id\":\"0123456789abcdef0123456789abcdef\",\"status\":\"running\"}", "{}"};
    static const int holds[] = {3500, 2500};
    fake_start(&s, 2, 200, NULL, 0);
    s.answers = answers;
    s.holds = holds;
    c = client_for(&s, true);
    assert_int_equal(mesatee_client_set_timeout(c, 0), MESATEE_OK);
    assert_int_equal(mesatee_client_set_token(c, "tok"), MESATEE_OK);
    rc = mesatee_task_wait(c, id, 1, st, &out);
    if (rc != MESATEE_ETIMEOUT)
        fail_msg("server stopped during the hold: %d: %s", rc, mesatee_client_errmsg(c));
    assert_null(out);
    if (mesatee_call(c, "GET", "/healthz", NULL, &out) != MESATEE_OK)
        fail_msg("request after a capped wait: %s", mesatee_client_errmsg(c));
    mesatee_free(out);
    mesatee_client_free(c);
    fake_stop(&s);
}

/* L4: an answer about another task (or without a task_id) ends the wait
 * as a protocol error, never as that task's result. */
static void test_wait_other_task(void **state)
{
    (void)state;
    static const char *const answers[] = {
        "{\"task_id\":\"ffffffffffffffffffffffffffffffff\",\"status\":\"finished\","
        "\"result\":{\"return_value\":\"forged\"}}",
        "{\"status\":\"finished\"}"};
    for (int i = 0; i < 2; i++) {
        fake_server s;
        fake_start(&s, 1, 200, answers[i], 0);
        mesatee_client *c = client_for(&s, true);
        char st[16];
        char *out = NULL;
        int rc = mesatee_task_wait(c, "0123456789abcdef0123456789abcdef", 5, st, &out);
        if (rc != MESATEE_ESERVER || out || st[0])
            fail_msg("answer %d: %d (%s) status '%s'", i, rc, mesatee_client_errmsg(c), st);
        assert_true(contains(mesatee_client_errmsg(c), "another task"));
        assert_false(contains(mesatee_client_errmsg(c), "ffff"));
        mesatee_client_free(c);
        fake_stop(&s);
    }
}

static void test_server_error_message(void **state)
{
    (void)state;
    fake_server s;
    fake_start(&s, 1, 403,
               "{\"error\":{\"code\":\"permission_denied\",\"message\":\"file "
               "3f2a is not owned by you\"}}",
               0);
    mesatee_client *c = client_for(&s, true);
    char *out = NULL;
    assert_int_equal(mesatee_call(c, "GET", "/v1/files/x", NULL, &out), MESATEE_EPERM);
    assert_string_equal(mesatee_client_errmsg(c),
                        "HTTP 403 permission_denied: file 3f2a is not owned by you");
    assert_int_equal(mesatee_client_http_status(c), 403);
    assert_non_null(out); /* the error body is still handed over */
    assert_true(contains(out, "permission_denied"));
    mesatee_free(out);
    assert_true(contains(s.req, "GET /v1/files/x HTTP/1.1"));
    mesatee_client_free(c);
    fake_stop(&s);
}

/* mesatee_list_all follows next_cursor page by page and joins the arrays;
 * a repeated cursor, a missing array and bad arguments are refused. */
static void test_list_paging(void **state)
{
    (void)state;
    static const char *const pages[] = {
        "{\"files\":[{\"n\":1},{\"n\":2}],\"next_cursor\":\"612e31\"}",
        "{\"files\":[{\"n\":3}],\"next_cursor\":\"612e32\"}",
        "{\"files\":[],\"next_cursor\":null}",
    };
    fake_server s;
    fake_start(&s, 3, 200, NULL, 0);
    s.answers = pages;
    mesatee_client *c = client_for(&s, true);
    char *out = NULL;
    assert_int_equal(mesatee_list_all(c, "/v1/files", "files", &out), MESATEE_OK);
    assert_string_equal(out, "{\"files\":[{\"n\":1},{\"n\":2},{\"n\":3}],\"next_cursor\":null}");
    mesatee_free(out);
    assert_true(contains(s.req, "GET /v1/files?limit=1000&cursor=612e32 HTTP/1.1"));
    mesatee_client_free(c);
    fake_stop(&s);

    static const char *const loop[] = {
        "{\"files\":[],\"next_cursor\":\"61\"}",
        "{\"files\":[],\"next_cursor\":\"61\"}",
    };
    fake_start(&s, 2, 200, NULL, 0);
    s.answers = loop;
    c = client_for(&s, true);
    out = NULL;
    assert_int_equal(mesatee_list_all(c, "/v1/files", "files", &out), MESATEE_ESERVER);
    assert_true(contains(mesatee_client_errmsg(c), "repeated a cursor"));
    assert_null(out);
    mesatee_client_free(c);
    fake_stop(&s);

    fake_start(&s, 2, 200, "{\"tasks\":[],\"next_cursor\":null}", 0);
    c = client_for(&s, true);
    assert_int_equal(mesatee_list_all(c, "/v1/files", "files", &out), MESATEE_ESERVER);
    assert_true(contains(mesatee_client_errmsg(c), "no 'files' array"));
    /* one page, with limit and cursor in the query */
    assert_int_equal(mesatee_list_page(c, "/v1/tasks", 7, "abc0", &out), MESATEE_OK);
    assert_true(contains(s.req, "GET /v1/tasks?limit=7&cursor=abc0 HTTP/1.1"));
    mesatee_free(out);
    /* refused before any request */
    assert_int_equal(mesatee_list_page(c, "/v1/tasks", 1001, NULL, &out), MESATEE_EINVAL);
    assert_int_equal(mesatee_list_page(c, "/v1/tasks", 0, "not a cursor", &out), MESATEE_EINVAL);
    assert_int_equal(mesatee_list_page(c, "/v1/tasks", 0, "", &out), MESATEE_EINVAL);
    assert_int_equal(mesatee_list_page(c, "/v1/tasks?x=1", 0, NULL, &out), MESATEE_EINVAL);
    assert_int_equal(mesatee_list_page(c, "v1/tasks", 0, NULL, &out), MESATEE_EINVAL);
    assert_int_equal(mesatee_list_all(c, "/v1/tasks", "", &out), MESATEE_EINVAL);
    assert_null(out);
    mesatee_client_free(c);
    fake_stop(&s);
}

static void test_tls_untrusted_and_pinned(void **state)
{
    (void)state;
    fake_server s;
    fake_start(&s, 2, 200, "{\"token\":\"t0k3n\",\"role\":\"user\"}", 0);
    /* no CA: the self-signed certificate is refused */
    mesatee_client *c = client_for(&s, false);
    assert_int_equal(mesatee_call(c, "GET", "/healthz", NULL, NULL), MESATEE_ENET);
    assert_true(contains(mesatee_client_errmsg(c), "unknown CA"));
    assert_true(contains(mesatee_client_errmsg(c), "system's trust store"));
    assert_false(contains(mesatee_client_errmsg(c), "pin the server"));
    mesatee_client_free(c);
    /* pinned: login works, keeps the token, sends the JSON body */
    c = client_for(&s, true);
    char *tok = NULL, *out = NULL;
    int st = mesatee_login(c, "alice", "secret pw", &tok, &out);
    if (st != MESATEE_OK)
        fail_msg("login: %s", mesatee_client_errmsg(c));
    assert_string_equal(tok, "t0k3n");
    assert_string_equal(mesatee_client_token(c), "t0k3n");
    assert_string_equal(mesatee_client_errmsg(c), "");
    assert_true(contains(out, "\"role\""));
    assert_true(contains(s.req, "POST /v1/auth/login"));
    assert_true(contains(s.req, "\"username\":\"alice\""));
    assert_true(contains(s.req, "\"password\":\"secret pw\""));
    assert_true(contains(s.req, "application/json"));
    mesatee_free(tok);
    mesatee_free(out);
    mesatee_client_free(c);
    fake_stop(&s);
}

/* A self-signed certificate (a CA when ca) with a fresh key, written to path. */
static void write_other_cert(const char *path, bool ca)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(k);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"other", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                                              ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* The client tells a name mismatch, a changed pinned certificate and an
 * unknown CA apart; --tls-server-name verifies a name other than the address. */
static void test_tls_errors_explained(void **state)
{
    (void)state;
    fake_server s;
    fake_start(&s, 4, 200, "ok", 0);
    char url[64], other[600], ca[600];
    snprintf(url, sizeof url, "https://127.0.0.1:%d", s.port);
    snprintf(other, sizeof other, "%s/other-pin.pem", tmpdir);
    snprintf(ca, sizeof ca, "%s/other-ca.pem", tmpdir);
    write_other_cert(other, false);
    write_other_cert(ca, true);

    /* the right certificate, a name it does not carry */
    mesatee_client *c = client_for(&s, true);
    assert_int_equal(mesatee_client_set_tls_server_name(c, "other.example"), MESATEE_OK);
    assert_int_equal(mesatee_call(c, "GET", "/healthz", NULL, NULL), MESATEE_ENET);
    const char *m = mesatee_client_errmsg(c);
    if (!contains(m, "name mismatch: the server's certificate does not name 'other.example' "
                     "(it names IP:127.0.0.1, DNS:localhost)"))
        fail_msg("mismatch: %s", m);
    assert_true(contains(m, "--tls-server-name"));
    /* the name it carries, reached by the address */
    assert_int_equal(mesatee_client_set_tls_server_name(c, "localhost"), MESATEE_OK);
    char *out = NULL;
    if (mesatee_call(c, "GET", "/healthz", NULL, &out) != MESATEE_OK)
        fail_msg("tls server name: %s", mesatee_client_errmsg(c));
    mesatee_free(out);
    assert_true(contains(s.req, "Host: localhost:"));
    mesatee_client_free(c);

    /* a pinned certificate that is not the server's */
    c = mesatee_client_new(url);
    assert_int_equal(mesatee_client_set_ca_file(c, other), MESATEE_OK);
    assert_int_equal(mesatee_call(c, "GET", "/healthz", NULL, NULL), MESATEE_ENET);
    m = mesatee_client_errmsg(c);
    if (!contains(m, "the server's certificate changed: ") || !contains(m, " pins sha256:") ||
        !contains(m, "but the server presents sha256:"))
        fail_msg("changed: %s", m);
    assert_false(contains(m, "pin the server"));
    mesatee_client_free(c);

    /* a CA file that does not vouch for the server */
    c = mesatee_client_new(url);
    assert_int_equal(mesatee_client_set_ca_file(c, ca), MESATEE_OK);
    assert_int_equal(mesatee_call(c, "GET", "/healthz", NULL, NULL), MESATEE_ENET);
    m = mesatee_client_errmsg(c);
    if (!contains(m, "unknown CA: the server's certificate sha256:") || !contains(m, ca))
        fail_msg("unknown CA: %s", m);
    mesatee_client_free(c);
    fake_stop(&s);
}

/* One handle, many requests: request() keeps its per-configuration curl
 * options between requests (request_options), so what one request set (a
 * method, a body) must not reach the next, and a setter (here the CA file)
 * must apply to the next request. */
static void count_progress(const mesatee_progress *p, void *ud)
{
    (void)p;
    ++*(int *)ud;
}

/* The handle keeps request()'s options between requests (and connections
 * alive): every setter of what they depend on must take effect at the next
 * request, in both directions. */
/* Whether the libcurl loaded takes CURLOPT_TIMEOUT seconds (a scratch handle). */
static bool curl_takes_timeout(long seconds)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    bool ok = curl_easy_setopt(h, CURLOPT_TIMEOUT, seconds) == CURLE_OK;
    curl_easy_cleanup(h);
    return ok;
}

static void test_handle_reuse(void **state)
{
    (void)state;
    fake_server s;
    fake_start(&s, 17, 200, "{}", 0);
    char other[600];
    snprintf(other, sizeof other, "%s/reuse-other.pem", tmpdir);
    write_other_cert(other, false);
    mesatee_client *c = client_for(&s, true);
    if (mesatee_call(c, "PUT", "/v1/a", "{\"k\":1}", NULL) != MESATEE_OK)
        fail_msg("PUT: %s", mesatee_client_errmsg(c));
    assert_int_equal(s.body_len, 7);
    if (mesatee_call(c, "GET", "/v1/b", NULL, NULL) != MESATEE_OK)
        fail_msg("GET: %s", mesatee_client_errmsg(c));
    assert_int_equal(s.body_len, 0);
    assert_false(contains(s.req, "Content-Length"));
    if (mesatee_call(c, "POST", "/v1/c", NULL, NULL) != MESATEE_OK)
        fail_msg("POST: %s", mesatee_client_errmsg(c));
    assert_int_equal(s.body_len, 0);
    /* another CA file: the next request verifies with it (and fails) */
    assert_int_equal(mesatee_client_set_ca_file(c, other), MESATEE_OK);
    assert_int_equal(mesatee_call(c, "GET", "/v1/d", NULL, NULL), MESATEE_ENET);
    assert_true(contains(mesatee_client_errmsg(c), "the server's certificate changed"));
    assert_int_equal(mesatee_client_set_ca_file(c, cert_path), MESATEE_OK);
    if (mesatee_call(c, "GET", "/v1/e", NULL, NULL) != MESATEE_OK)
        fail_msg("GET after the CA file: %s", mesatee_client_errmsg(c));
    /* insecure on, then off again (the pinned CA does not match) */
    assert_int_equal(mesatee_client_set_ca_file(c, other), MESATEE_OK);
    assert_int_equal(mesatee_client_set_insecure_skip_verify(c, 1), MESATEE_OK);
    if (mesatee_call(c, "GET", "/v1/f", NULL, NULL) != MESATEE_OK)
        fail_msg("GET with insecure on: %s", mesatee_client_errmsg(c));
    assert_int_equal(mesatee_client_set_insecure_skip_verify(c, 0), MESATEE_OK);
    assert_int_equal(mesatee_call(c, "GET", "/v1/g", NULL, NULL), MESATEE_ENET);
    assert_int_equal(mesatee_client_set_ca_file(c, cert_path), MESATEE_OK);
    if (mesatee_call(c, "GET", "/v1/h", NULL, NULL) != MESATEE_OK)
        fail_msg("GET with the CA file again: %s", mesatee_client_errmsg(c));
    /* a TLS server name the certificate does not carry: the hostname check
     * off, then on again */
    assert_int_equal(mesatee_client_set_tls_server_name(c, "other.example"), MESATEE_OK);
    assert_int_equal(mesatee_call(c, "GET", "/v1/i", NULL, NULL), MESATEE_ENET);
    assert_int_equal(mesatee_client_set_verify_hostname(c, 0), MESATEE_OK);
    if (mesatee_call(c, "GET", "/v1/j", NULL, NULL) != MESATEE_OK)
        fail_msg("GET without the hostname check: %s", mesatee_client_errmsg(c));
    assert_int_equal(mesatee_client_set_verify_hostname(c, 1), MESATEE_OK);
    assert_int_equal(mesatee_call(c, "GET", "/v1/k", NULL, NULL), MESATEE_ENET);
    assert_int_equal(mesatee_client_set_tls_server_name(c, NULL), MESATEE_OK);
    if (mesatee_call(c, "GET", "/v1/k2", NULL, NULL) != MESATEE_OK)
        fail_msg("GET with the URL's name again: %s", mesatee_client_errmsg(c));
    /* a policy (this server has no attestation evidence), then none */
    const char *pol = tpath("reuse-policy.json");
    static const char pol_json[] =
        "{\"mesatee_policy\":1,\"allowed_kinds\":[\"soft\"],\"min_level\":\"soft\","
        "\"measurements\":{\"gateway\":{\"measurement\":"
        "[\"deef35d43432e5ff39c94c549b71fe61f2d30bf4a8a0bc4efc7b64f9f63dd851\"]}},"
        "\"soft_platform_keys\":"
        "[\"ea07c190519b8b5ef8a2a2d58d511711e65c9158e1b07195c578c450bc29da0f\"],"
        "\"max_evidence_age_s\":3600}";
    write_file(pol, pol_json, strlen(pol_json), 0600);
    assert_int_equal(mesatee_client_set_policy_file(c, pol), MESATEE_OK);
    assert_int_equal(mesatee_call(c, "GET", "/v1/l", NULL, NULL), MESATEE_EATTEST);
    assert_true(contains(mesatee_client_errmsg(c), "no attestation evidence"));
    assert_int_equal(mesatee_client_set_policy_file(c, NULL), MESATEE_OK);
    if (mesatee_call(c, "GET", "/v1/m", NULL, NULL) != MESATEE_OK)
        fail_msg("GET without the policy: %s", mesatee_client_errmsg(c));
    /* progress on, then off */
    int calls = 0;
    assert_int_equal(mesatee_client_set_progress(c, count_progress, &calls), MESATEE_OK);
    if (mesatee_call(c, "GET", "/v1/n", NULL, NULL) != MESATEE_OK)
        fail_msg("GET with progress: %s", mesatee_client_errmsg(c));
    assert_true(calls > 0);
    int had = calls;
    assert_int_equal(mesatee_client_set_progress(c, NULL, NULL), MESATEE_OK);
    if (mesatee_call(c, "GET", "/v1/o", NULL, NULL) != MESATEE_OK)
        fail_msg("GET without progress: %s", mesatee_client_errmsg(c));
    assert_int_equal(calls, had);
    /* a timeout libcurl refuses (over INT_MAX ms): every request fails, before
     * connecting, until the timeout is one it takes. libcurl >= 8.15 clamps
     * such a timeout instead, and no setter of the API then gives an option
     * value every libcurl refuses: the step is skipped there (asked of the
     * libcurl loaded, not of a version number) */
    if (curl_takes_timeout(3000000L)) {
        print_message("libcurl %s takes a timeout of 3000000 s: the refused-option step "
                      "is skipped\n",
                      curl_version_info(CURLVERSION_NOW)->version);
    } else {
        assert_int_equal(mesatee_client_set_timeout(c, 3000000L), MESATEE_OK);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(mesatee_call(c, "GET", "/v1/never", NULL, NULL), MESATEE_EINVAL);
            assert_true(contains(mesatee_client_errmsg(c), "libcurl refused"));
        }
    }
    assert_int_equal(mesatee_client_set_timeout(c, 10), MESATEE_OK);
    if (mesatee_call(c, "GET", "/v1/p", NULL, NULL) != MESATEE_OK)
        fail_msg("GET with a timeout again: %s", mesatee_client_errmsg(c));
    mesatee_client_free(c);
    fake_stop(&s);
    assert_string_equal(s.reqline[0], "PUT /v1/a HTTP/1.1");
    assert_string_equal(s.reqline[1], "GET /v1/b HTTP/1.1");
    assert_string_equal(s.reqline[2], "POST /v1/c HTTP/1.1");
    assert_string_equal(s.reqline[4], "GET /v1/e HTTP/1.1");
}

static void test_tls_server_name_garbage(void **state)
{
    (void)state;
    mesatee_client *c = mesatee_client_new("https://127.0.0.1:7443");
    assert_non_null(c);
    static const char *const bad[] = {"",          "a b",         "-x.example", "x-.example",
                                      "a..b",      "under_score", "1.2.3.999",  "[::1]",
                                      "host:443",  "a/b",         "\x01",      NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(mesatee_client_set_tls_server_name(c, bad[i]), MESATEE_EINVAL);
        assert_true(contains(mesatee_client_errmsg(c), "neither a DNS host name nor an IP"));
    }
    char long_label[80];
    memset(long_label, 'a', 64);
    strcpy(long_label + 64, ".example");
    assert_int_equal(mesatee_client_set_tls_server_name(c, long_label), MESATEE_EINVAL);
    assert_int_equal(mesatee_client_set_tls_server_name(c, "mesatee.example.org"), MESATEE_OK);
    assert_int_equal(mesatee_client_set_tls_server_name(c, "::1"), MESATEE_OK);
    assert_int_equal(mesatee_client_set_tls_server_name(c, "10.0.0.1"), MESATEE_OK);
    assert_int_equal(mesatee_client_set_tls_server_name(c, NULL), MESATEE_OK);
    assert_int_equal(mesatee_client_set_tls_server_name(NULL, "a.example"), MESATEE_EINVAL);
    mesatee_client_free(c);
}

static void test_tls12_refused(void **state)
{
    (void)state;
    fake_server s;
    fake_start(&s, 1, 200, "{}", TLS1_2_VERSION);
    mesatee_client *c = client_for(&s, true);
    assert_int_equal(mesatee_call(c, "GET", "/healthz", NULL, NULL), MESATEE_ENET);
    assert_true(contains(mesatee_client_errmsg(c), "TLS"));
    mesatee_client_free(c);
    fake_stop(&s);
}

static void test_bearer_and_upload_stream(void **state)
{
    (void)state;
    fake_server s;
    fake_start(&s, 2, 201, "{\"url\":\"mesatee://objects/abc\",\"size\":300001}", 0);
    mesatee_client *c = client_for(&s, true);
    assert_int_equal(mesatee_client_set_token(c, "tok-123"), MESATEE_OK);
    size_t n = 300001;
    uint8_t *data = malloc(n);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i % 251);
    const char *p = tpath("upload.bin");
    write_file(p, data, n, 0600);
    char *url = NULL;
    int st = mesatee_upload_file(c, p, &url, NULL);
    if (st != MESATEE_OK)
        fail_msg("upload: %s", mesatee_client_errmsg(c));
    assert_string_equal(url, "mesatee://objects/abc");
    assert_int_equal(mesatee_client_http_status(c), 201);
    assert_true(contains(s.req, "POST /v1/objects"));
    assert_true(contains(s.req, "Authorization: Bearer tok-123"));
    assert_true(contains(s.req, "application/octet-stream"));
    assert_int_equal(s.body_len, n);
    assert_memory_equal(s.req + s.req_len - n, data, n);
    mesatee_free(url);
    /* a 2xx answer without the expected field is an error, not a crash */
    char *fid = NULL;
    uint8_t key[32] = {1};
    assert_int_equal(mesatee_file_register_output(c, key, "out", &fid, NULL), MESATEE_ESERVER);
    assert_null(fid);
    assert_true(contains(mesatee_client_errmsg(c), "file_id"));
    assert_true(contains(s.req, "\"key\":\"01000000"));
    free(data);
    mesatee_client_free(c);
    fake_stop(&s);
}

/* ======================================================================== */
/* Bounded memory whatever the server sends                                  */

#if defined(__SANITIZE_ADDRESS__)
#define MT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MT_TEST_ASAN 1
#endif
#endif
#ifdef MT_TEST_ASAN
/* AddressSanitizer keeps freed blocks in a quarantine (256 MiB by default),
 * which the peak-RSS checks below would count as held memory. ASAN_OPTIONS
 * in the environment still wins. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=4";
}
#endif

/* A /proc/self/status field in kB (-1 when unavailable). */
static long proc_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Resets the peak RSS (VmHWM) to the current RSS; false when the kernel
 * does not allow it. */
static bool reset_peak(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok;
}

/* Issue 8 item 6 (client side): a server answering an API call with an
 * endless JSON body (no Content-Length) makes the call fail with a clear
 * error once MESATEE_MAX_RESPONSE_BYTES are held; the client's peak memory
 * stays near that limit, not the 512 MiB the server would send. */
static void test_oversized_json_answer(void **state)
{
    (void)state;
    fake_server s;
    /* one endless number, no length */
    fake_stream fs = {(const uint8_t *)"[", 1, 512ull << 20, '1', false};
    fake_start_stream(&s, 1, 200, "", 0, &fs);
    mesatee_client *c = client_for(&s, true);
    bool peak = reset_peak();
    long base = proc_kb("VmRSS");
    char *out = NULL;
    assert_int_equal(mesatee_call(c, "GET", "/v1/tasks", NULL, &out), MESATEE_ESERVER);
    assert_null(out);
    assert_true(contains(mesatee_client_errmsg(c), "larger than 67108864 bytes"));
    long hwm = proc_kb("VmHWM");
    mesatee_client_free(c);
    fake_stop(&s);
    assert_true(s.streamed < s.stream_len); /* the client stopped reading */
    if (peak && base > 0 && hwm > 0) {
        /* the limit, one copy while the buffer grows, sanitizer overhead */
        print_message("peak RSS +%ld kB for an endless answer\n", hwm - base);
        if (hwm - base > 320 * 1024)
            fail_msg("peak RSS grew by %ld kB for a capped 64 MiB answer", hwm - base);
    } else {
        print_message("peak RSS not measurable here (/proc/self/clear_refs): bound unchecked\n");
    }
}

/* Issue 8 item 6 (client side): a 200 MiB download is streamed to the
 * temporary file as it arrives (peak memory far below its size), its
 * binding is still checked from the file's header, and it is published
 * whole. */
static void test_large_download_streams(void **state)
{
    (void)state;
    static const char T[] = "0123456789abcdef0123456789abcdef",
                      F[] = "000000000000000000000000000000ff";
    uint8_t key[32];
    assert_int_equal(mesatee_key_generate(key), MESATEE_OK);
    const char *hp = tpath("bound-head.enc");
    write_bound(hp, key, T, "out", F, "x");
    size_t plen = 0;
    uint8_t *prefix = read_all(hp, &plen);
    const uint64_t big = 200ull << 20;
    fake_server s;
    fake_stream fs = {prefix, plen, big, 'z', true};
    fake_start_stream(&s, 2, 200, "", 0, &fs);
    mesatee_client *c = client_for(&s, true);
    char out[512];
    snprintf(out, sizeof out, "%s", tpath("download.enc"));
    bool peak = reset_peak();
    long base = proc_kb("VmRSS");
    int st = mesatee_file_download(c, F, out);
    long hwm = proc_kb("VmHWM");
    if (st != MESATEE_OK)
        fail_msg("download: %s", mesatee_client_errmsg(c));
    struct stat sb;
    assert_int_equal(stat(out, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, plen + big);
    if (peak && base > 0 && hwm > 0) {
        print_message("peak RSS +%ld kB for a 200 MiB download\n", hwm - base);
        if (hwm - base > 48 * 1024)
            fail_msg("peak RSS grew by %ld kB for a 200 MiB download", hwm - base);
    } else {
        print_message("peak RSS not measurable here (/proc/self/clear_refs): bound unchecked\n");
    }
    unlink(out);
    /* the same content under another file id: refused after streaming,
     * nothing published, no temporary file left */
    static const char F2[] = "000000000000000000000000000000fe";
    assert_int_equal(mesatee_file_download(c, F2, out), MESATEE_ECRYPTO);
    assert_int_equal(stat(out, &sb), -1);
    mesatee_client_free(c);
    fake_stop(&s);
    free(prefix);
}

/* ======================================================================== */
/* Typed list calls follow the server's paging                              */

#define TID1 "0123456789abcdef0123456789abcdef"
#define TID2 "fedcba9876543210fedcba9876543210"
#define TFILE(id)                                                                              \
    "{\"file_id\":\"" id "\",\"kind\":\"output\",\"name\":\"n\",\"owners\":[\"alice\"]," \
    "\"url\":\"mesatee://objects/x\",\"size\":null,\"sha256\":null,\"written\":false,"  \
    "\"created_at\":\"2026-01-01T00:00:00Z\"}"

static void test_typed_list_pages(void **state)
{
    (void)state;
    static const char *const pages[] = {
        "{\"files\":[" TFILE(TID1) "],\"next_cursor\":\"c/1 +\"}",
        "{\"files\":[" TFILE(TID2) "]}",
    };
    fake_server s;
    fake_start(&s, 2, 200, NULL, 0);
    s.answers = pages;
    mesatee_client *c = client_for(&s, true);
    mesatee_file_info *f = NULL;
    size_t n = 99;
    assert_int_equal(mesatee_file_list(c, &f, &n), MESATEE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].id, TID1);
    assert_string_equal(f[1].id, TID2);
    assert_string_equal(f[1].name, "n");
    mesatee_file_info_free(f, n);
    fake_stop(&s);
    assert_string_equal(s.reqline[0], "GET /v1/files HTTP/1.1");
    assert_string_equal(s.reqline[1], "GET /v1/files?cursor=c%2F1%20%2B HTTP/1.1");
    mesatee_client_free(c);
}

/* A server that repeats its cursor would make the client loop forever. */
static void test_typed_list_repeated_cursor(void **state)
{
    (void)state;
    static const char *const pages[] = {
        "{\"tasks\":[],\"next_cursor\":\"same\"}",
        "{\"tasks\":[],\"next_cursor\":\"same\"}",
    };
    fake_server s;
    fake_start(&s, 2, 200, NULL, 0);
    s.answers = pages;
    mesatee_client *c = client_for(&s, true);
    mesatee_task_info *t = (mesatee_task_info *)&s;
    size_t n = 5;
    assert_int_equal(mesatee_task_list(c, &t, &n), MESATEE_ESERVER);
    assert_null(t);
    assert_int_equal(n, 0);
    assert_non_null(strstr(mesatee_client_errmsg(c), "next_cursor is repeated"));
    fake_stop(&s);
    mesatee_client_free(c);
}

/* A malformed answer and a server error: nothing returned, message says why. */
static void test_typed_get_errors(void **state)
{
    (void)state;
    fake_server s;
    fake_start(&s, 1, 200, "{\"function_id\":\"" TID1 "\",\"owner\":7}", 0);
    mesatee_client *c = client_for(&s, true);
    mesatee_function_info *f = (mesatee_function_info *)&s;
    assert_int_equal(mesatee_function_get_info(c, TID1, &f), MESATEE_ESERVER);
    assert_null(f);
    assert_string_equal(mesatee_client_errmsg(c),
                        "GET /v1/functions/{id}: bad answer: function.owner: expected a string");
    fake_stop(&s);
    assert_string_equal(s.reqline[0], "GET /v1/functions/" TID1 " HTTP/1.1");
    fake_start(&s, 1, 404, "{\"error\":{\"code\":\"not_found\",\"message\":\"no such task\"}}", 0);
    mesatee_client_free(c);
    c = client_for(&s, true);
    mesatee_task_info *t = NULL;
    assert_int_equal(mesatee_task_get_info(c, TID2, &t), MESATEE_ENOTFOUND);
    assert_null(t);
    fake_stop(&s);
    /* no request for bad arguments */
    assert_int_equal(mesatee_task_get_info(c, "x", &t), MESATEE_EINVAL);
    assert_int_equal(mesatee_task_get_info(c, TID1, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_file_list(c, NULL, NULL), MESATEE_EINVAL);
    assert_int_equal(mesatee_file_list(NULL, NULL, NULL), MESATEE_EINVAL);
    mesatee_client_free(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the fake server writes to clients that left */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_and_names),
        cmocka_unit_test(test_typed_list_pages),
        cmocka_unit_test(test_typed_list_repeated_cursor),
        cmocka_unit_test(test_typed_get_errors),
        cmocka_unit_test(test_key_file_round_trip),
        cmocka_unit_test(test_key_file_bad),
        cmocka_unit_test(test_file_encrypt_round_trip_and_tamper),
        cmocka_unit_test(test_decrypt_output_binding),
        cmocka_unit_test(test_invalid_urls),
        cmocka_unit_test(test_argument_checks),
        cmocka_unit_test(test_unreachable_server),
        cmocka_unit_test(test_wait_never_reached),
        cmocka_unit_test(test_wait_retry_within_deadline),
        cmocka_unit_test(test_wait_bounded_by_timeout),
        cmocka_unit_test(test_wait_other_task),
        cmocka_unit_test(test_server_error_message),
        cmocka_unit_test(test_list_paging),
        cmocka_unit_test(test_tls_untrusted_and_pinned),
        cmocka_unit_test(test_tls_errors_explained),
        cmocka_unit_test(test_tls_server_name_garbage),
        cmocka_unit_test(test_handle_reuse),
        cmocka_unit_test(test_tls12_refused),
        cmocka_unit_test(test_bearer_and_upload_stream),
        cmocka_unit_test(test_large_download_streams),
        cmocka_unit_test(test_oversized_json_answer),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
