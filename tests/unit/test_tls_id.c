/* Unit tests of mt_tls_id (src/tee/mt_tls_id.c): TLS names (checks, lists,
 * defaults, comparison), the stable level-none identity (created once,
 * reused, reissued for new names, another key or a near end, refused when
 * its key is open to others or damaged) and the operator's files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_tee.h"
#include "mt_tls_id.h"
#include "mt_util.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tls-id-test.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_san_check(void **state)
{
    (void)state;
    static const char *const good[] = {"localhost", "mesatee.example.org", "a-b.c9", "10.0.0.1",
                                       "::1", "fe80::1", "[::1]", "XN--BCHER-KVA.example", NULL};
    static const char *const bad[] = {"",        "a b",      "-a.example", "a-.example",
                                      "a..b",    ".a",       "a.",         "under_score",
                                      "1.2.3.999", "10.0.0", "host:443",   "a/b",
                                      "*.example", "é.example", "\x01", NULL};
    mt_err err;
    for (int i = 0; good[i]; i++)
        if (mt_tls_san_check(good[i], &err) != MT_OK)
            fail_msg("'%s' refused: %s", good[i], err.msg);
    for (int i = 0; bad[i]; i++) {
        mt_err_clear(&err);
        if (mt_tls_san_check(bad[i], &err) != MT_EINVAL)
            fail_msg("'%s' accepted", bad[i]);
        assert_true(err.msg[0] != '\0');
    }
    char label[80];
    memset(label, 'a', 64);
    strcpy(label + 64, ".x");
    assert_int_equal(mt_tls_san_check(label, &err), MT_EINVAL);
    memset(label, 'a', 63);
    strcpy(label + 63, ".x"); /* 63-byte label: fine */
    assert_int_equal(mt_tls_san_check(label, &err), MT_OK);
    assert_int_equal(mt_tls_san_check(NULL, &err), MT_EINVAL);
    /* the message shows control bytes escaped */
    assert_int_equal(mt_tls_san_check("a\x01" "b", &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "a\\x01b"));
}

static void test_san_list(void **state)
{
    (void)state;
    char out[MT_TLS_SAN_TEXT_MAX];
    mt_err err;
    const char *v1[] = {"Mesatee.Example.ORG, 10.0.0.1", "::0001", "mesatee.example.org"};
    assert_int_equal(mt_tls_san_list(v1, 3, NULL, out, sizeof out, &err), MT_OK);
    assert_string_equal(out, "DNS:mesatee.example.org,IP:10.0.0.1,IP:::1");
    /* defaults: listen host (unless a wildcard), host name, localhost, 127.0.0.1 */
    assert_int_equal(mt_tls_san_list(NULL, 0, "10.1.2.3:7443", out, sizeof out, &err), MT_OK);
    assert_true(!strncmp(out, "IP:10.1.2.3,", 12));
    assert_non_null(strstr(out, "DNS:localhost"));
    assert_non_null(strstr(out, "IP:127.0.0.1"));
    char hn[256];
    if (gethostname(hn, sizeof hn) == 0 && mt_tls_san_check(hn, NULL) == MT_OK) {
        for (char *p = hn; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        char want[300];
        snprintf(want, sizeof want, "DNS:%s", hn);
        assert_non_null(strstr(out, want));
    }
    assert_int_equal(mt_tls_san_list(NULL, 0, "0.0.0.0:7443", out, sizeof out, &err), MT_OK);
    assert_null(strstr(out, "0.0.0.0"));
    assert_int_equal(mt_tls_san_list(NULL, 0, "[::]:7443", out, sizeof out, &err), MT_OK);
    assert_null(strstr(out, "IP:::,"));
    assert_int_equal(mt_tls_san_list(NULL, 0, "[fd00::5]:7443", out, sizeof out, &err), MT_OK);
    assert_true(!strncmp(out, "IP:fd00::5,", 11));
    assert_int_equal(mt_tls_san_list(NULL, 0, "srv.example:1", out, sizeof out, &err), MT_OK);
    assert_true(!strncmp(out, "DNS:srv.example,", 16));
    /* 127.0.0.1 listen: no duplicate */
    assert_int_equal(mt_tls_san_list(NULL, 0, "127.0.0.1:0", out, sizeof out, &err), MT_OK);
    assert_non_null(strstr(out, "IP:127.0.0.1"));
    assert_null(strstr(strstr(out, "IP:127.0.0.1") + 1, "IP:127.0.0.1"));
    /* garbage */
    const char *e1[] = {"a.example,,b.example"}, *e2[] = {","}, *e3[] = {"  "},
               *e4[] = {"ok.example", "bad name"}, *e5[] = {NULL};
    assert_int_equal(mt_tls_san_list(e1, 1, NULL, out, sizeof out, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "empty item"));
    assert_int_equal(mt_tls_san_list(e2, 1, NULL, out, sizeof out, &err), MT_EINVAL);
    assert_int_equal(mt_tls_san_list(e3, 1, NULL, out, sizeof out, &err), MT_EINVAL);
    assert_int_equal(mt_tls_san_list(e4, 2, NULL, out, sizeof out, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "'bad name'"));
    assert_int_equal(mt_tls_san_list(e5, 1, NULL, out, sizeof out, &err), MT_EINVAL);
    char many[40 * 12] = "";
    for (int i = 0; i < 33; i++) {
        char one[16];
        snprintf(one, sizeof one, "%sh%d.x", i ? "," : "", i);
        strcat(many, one);
    }
    const char *m[] = {many};
    assert_int_equal(mt_tls_san_list(m, 1, NULL, out, sizeof out, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "more than 32"));
    char small[16];
    const char *v2[] = {"mesatee.example.org"};
    assert_int_equal(mt_tls_san_list(v2, 1, NULL, small, sizeof small, &err), MT_EINVAL);
}

static void test_san_equal(void **state)
{
    (void)state;
    assert_true(mt_tls_san_equal("DNS:a,IP:1.2.3.4", "IP:1.2.3.4,DNS:a"));
    assert_true(mt_tls_san_equal("", ""));
    assert_false(mt_tls_san_equal("DNS:a", "DNS:a,DNS:b"));
    assert_false(mt_tls_san_equal("DNS:a,DNS:c", "DNS:a,DNS:b"));
}

static char *read_text(const char *path)
{
    uint8_t *b = NULL;
    size_t n = 0;
    mt_err err;
    return mt_file_read(path, 1 << 20, &b, &n, &err) == MT_OK ? (char *)b : NULL;
}

static void test_self_identity(void **state)
{
    (void)state;
    mt_tee *tee = NULL;
    mt_err err;
    char data[300], kpath[340], cpath[340];
    snprintf(data, sizeof data, "%s/self", dir);
    snprintf(kpath, sizeof kpath, "%s/tls/server-key.pem", data);
    snprintf(cpath, sizeof cpath, "%s/tls/server-cert.pem", data);
    assert_int_equal(mt_tee_open("none", data, &tee, &err), MT_OK);
    const char *san = "DNS:mesatee.example.org,IP:10.0.0.1";
    assert_int_equal(mt_tee_set_tls_san(tee, san, &err), MT_OK);

    EVP_PKEY *k1 = NULL, *k2 = NULL;
    X509 *c1 = NULL, *c2 = NULL;
    assert_int_equal(mt_tls_id_self(tee, data, san, &k1, &c1, &err), MT_OK);
    struct stat st;
    assert_int_equal(stat(kpath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char have[MT_TLS_SAN_TEXT_MAX];
    assert_true(mt_tls_cert_san(c1, have, sizeof have));
    assert_string_equal(have, san);
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(c1)), 1);
    assert_true(days >= MT_TLS_ID_DAYS - 1);

    /* again: the same key and certificate */
    assert_int_equal(mt_tls_id_self(tee, data, san, &k2, &c2, &err), MT_OK);
    assert_int_equal(X509_cmp(c1, c2), 0);
    assert_int_equal(EVP_PKEY_eq(k1, k2), 1);
    X509_free(c2);
    EVP_PKEY_free(k2);

    /* other names: a new certificate, the same key */
    const char *san2 = "DNS:mesatee.example.org";
    assert_int_equal(mt_tee_set_tls_san(tee, san2, &err), MT_OK);
    assert_int_equal(mt_tls_id_self(tee, data, san2, &k2, &c2, &err), MT_OK);
    assert_int_not_equal(X509_cmp(c1, c2), 0);
    assert_int_equal(EVP_PKEY_eq(k1, k2), 1);
    assert_true(mt_tls_cert_san(c2, have, sizeof have));
    assert_string_equal(have, san2);
    X509_free(c2);
    EVP_PKEY_free(k2);

    /* a certificate near its end: reissued */
    X509 *shortc = NULL;
    assert_int_equal(mt_tee_tls_cert_for_key(tee, k1, 5, &shortc, &err), MT_OK);
    FILE *f = fopen(cpath, "w");
    assert_non_null(f);
    PEM_write_X509(f, shortc);
    fclose(f);
    assert_int_equal(mt_tls_id_self(tee, data, san2, &k2, &c2, &err), MT_OK);
    assert_int_not_equal(X509_cmp(shortc, c2), 0);
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(c2)), 1);
    assert_true(days >= MT_TLS_ID_DAYS - 1);
    X509_free(shortc);
    X509_free(c2);
    EVP_PKEY_free(k2);
    assert_int_equal(mt_tee_tls_cert_for_key(tee, k1, 0, &shortc, &err), MT_EINVAL);

    /* a key open to others is refused, a damaged key is refused and kept */
    assert_int_equal(chmod(kpath, 0640), 0);
    assert_int_equal(mt_tls_id_self(tee, data, san2, &k2, &c2, &err), MT_EPERM);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_null(k2);
    assert_int_equal(chmod(kpath, 0600), 0);
    char *saved = read_text(kpath);
    assert_non_null(saved);
    f = fopen(kpath, "w");
    assert_non_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(mt_tls_id_self(tee, data, san2, &k2, &c2, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "not a usable private key"));
    char *now = read_text(kpath);
    assert_non_null(strstr(now, "AAAA"));
    free(now);
    f = fopen(kpath, "w");
    fputs(saved, f);
    fclose(f);
    free(saved);

    /* a new key (the old one removed): a new identity */
    assert_int_equal(unlink(kpath), 0);
    assert_int_equal(mt_tls_id_self(tee, data, san2, &k2, &c2, &err), MT_OK);
    assert_int_not_equal(EVP_PKEY_eq(k1, k2), 1);
    X509_free(c2);
    EVP_PKEY_free(k2);

    X509_free(c1);
    EVP_PKEY_free(k1);
    mt_tee_free(tee);
}

static void write_pem(const char *path, EVP_PKEY *k, X509 *c, int mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (k)
        PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    if (c)
        PEM_write_X509(f, c);
    fclose(f);
    assert_int_equal(chmod(path, (mode_t)mode), 0);
}

static void test_operator_files(void **state)
{
    (void)state;
    mt_tee *tee = NULL;
    mt_err err;
    char data[300], cert[340], key[340], key2[340];
    snprintf(data, sizeof data, "%s/op", dir);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(key2, sizeof key2, "%s/key2.pem", dir);
    assert_int_equal(mt_tee_open("none", data, &tee, &err), MT_OK);
    EVP_PKEY *k = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    X509 *c = NULL;
    assert_int_equal(mt_tee_tls_cert_for_key(tee, k, 30, &c, &err), MT_OK);
    write_pem(cert, NULL, c, 0644);
    write_pem(key, k, NULL, 0600);
    write_pem(key2, other, NULL, 0600);

    EVP_PKEY *ok = NULL;
    X509 *oc = NULL;
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(mt_tls_id_operator(cert, key, "DNS:localhost,DNS:not-there.example", &ok,
                                        &oc, &chain, &err),
                     MT_OK);
    assert_int_equal(X509_cmp(oc, c), 0);
    assert_null(chain); /* one certificate: no chain */
    EVP_PKEY_free(ok);
    X509_free(oc);

    assert_int_equal(mt_tls_id_operator(cert, key2, NULL, &ok, &oc, &chain, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "does not belong to the certificate"));
    assert_null(ok);
    assert_null(oc);
    assert_int_equal(chmod(key, 0604), 0);
    assert_int_equal(mt_tls_id_operator(cert, key, NULL, &ok, &oc, &chain, &err), MT_EPERM);
    assert_int_equal(chmod(key, 0640), 0); /* group-readable (ssl-cert style) is allowed */
    assert_int_equal(mt_tls_id_operator(cert, key, NULL, &ok, &oc, &chain, &err), MT_OK);
    EVP_PKEY_free(ok);
    X509_free(oc);
    assert_int_equal(mt_tls_id_operator(key, key, NULL, &ok, &oc, &chain, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "holds no PEM certificate"));
    write_pem(key2, NULL, c, 0600); /* a certificate where the key should be */
    assert_int_equal(mt_tls_id_operator(cert, key2, NULL, &ok, &oc, &chain, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "is not a PEM private key"));
    assert_int_equal(mt_tls_id_operator(NULL, key, NULL, &ok, &oc, &chain, &err), MT_EINVAL);
    char missing[360];
    snprintf(missing, sizeof missing, "%s/none.pem", dir);
    assert_int_equal(mt_tls_id_operator(missing, key, NULL, &ok, &oc, &chain, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "does not exist"));
    /* a directory instead of a file */
    assert_int_equal(mt_tls_id_operator(dir, key, NULL, &ok, &oc, &chain, &err), MT_EINVAL);

    X509_free(c);
    EVP_PKEY_free(k);
    EVP_PKEY_free(other);
    mt_tee_free(tee);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_san_check),
        cmocka_unit_test(test_san_list),
        cmocka_unit_test(test_san_equal),
        cmocka_unit_test(test_self_identity),
        cmocka_unit_test(test_operator_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
