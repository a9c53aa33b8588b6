/* Unit tests for mt_tee: levels, sealing.key handling, sealing-key
 * derivation, TLS identity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_tee.h"
#include "mt_util.h"

static char g_dir[64];
static char g_key_path[128];

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/mt_tee_test.XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_key_path, sizeof g_key_path, "%s/sealing.key", g_dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(g_key_path);
    rmdir(g_dir);
    return 0;
}

static void test_bad_level(void **state)
{
    (void)state;
    mt_tee *t = (mt_tee *)1;
    mt_err e;
    const char *bad[] = {"sgx2", "tpm1.2", "", "SOFT", "soft ", "none\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mt_tee_open(bad[i], g_dir, &t, &e), MT_EINVAL);
        assert_null(t);
        assert_non_null(strstr(e.msg, "none, soft, tpm2, sev-snp, tdx and sgx"));
    }
    /* A hardware level that this machine lacks fails before any file is made. */
    struct stat sb;
    if (stat("/sys/kernel/config/tsm/report", &sb) != 0) {
        assert_int_equal(mt_tee_open("tdx", g_dir, &t, &e), MT_EUNAVAIL);
        assert_null(t);
        assert_non_null(strstr(e.msg, "not exercised on hardware here"));
    }
    assert_int_equal(mt_tee_open(NULL, g_dir, &t, &e), MT_EINVAL);
    assert_int_equal(mt_tee_open("none", NULL, &t, &e), MT_EINVAL);
    mt_tee_free(NULL);
}

static void test_levels_and_sealing(void **state)
{
    (void)state;
    mt_err e;
    mt_tee *none = NULL, *none2 = NULL, *soft = NULL;
    assert_int_equal(access(g_key_path, F_OK), -1);
    assert_int_equal(mt_tee_open("none", g_dir, &none, &e), MT_OK);
    /* sealing.key created: 32 bytes, 0600 */
    struct stat st;
    assert_int_equal(stat(g_key_path, &st), 0);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_string_equal(mt_tee_level(none), "none");
    assert_string_equal(mt_tee_measurement(none), "");

    assert_int_equal(mt_tee_open("soft", g_dir, &soft, &e), MT_OK);
    assert_string_equal(mt_tee_level(soft), "soft");
    assert_int_equal(strlen(mt_tee_measurement(soft)), 64);
    /* process hardening took effect */
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(rl.rlim_cur, 0);

    /* measurement = SHA-256 of our own executable */
    uint8_t *exe = NULL;
    size_t exe_len = 0;
    assert_int_equal(mt_file_read("/proc/self/exe", 1u << 30, &exe, &exe_len, &e), MT_OK);
    uint8_t md[32];
    unsigned int ml;
    assert_int_equal(EVP_Digest(exe, exe_len, md, &ml, EVP_sha256(), NULL), 1);
    free(exe);
    char hex[65];
    mt_hex_encode(md, 32, hex);
    assert_string_equal(mt_tee_measurement(soft), hex);

    /* determinism across opens (same sealing.key), per label and level */
    uint8_t a[32], a2[32], b[32], s[32];
    assert_int_equal(mt_tee_open("none", g_dir, &none2, &e), MT_OK);
    assert_int_equal(mt_tee_sealing_key(none, "file-keys/v1", a, &e), MT_OK);
    assert_int_equal(mt_tee_sealing_key(none2, "file-keys/v1", a2, &e), MT_OK);
    assert_memory_equal(a, a2, 32);
    assert_int_equal(mt_tee_sealing_key(none, "file-keys/v2", b, &e), MT_OK);
    assert_memory_not_equal(a, b, 32);
    assert_int_equal(mt_tee_sealing_key(soft, "file-keys/v1", s, &e), MT_OK);
    assert_memory_not_equal(a, s, 32);

    /* matches the documented HKDF derivation, computed independently */
    uint8_t secret[32];
    FILE *f = fopen(g_key_path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(secret, 1, 32, f), 32);
    fclose(f);
    uint8_t info[200];
    size_t il = 0;
    memcpy(info, "soft", 4);
    il = 4;
    info[il++] = 0;
    memcpy(info + il, hex, 64);
    il += 64;
    info[il++] = 0;
    memcpy(info + il, "file-keys/v1", 12);
    il += 12;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    assert_non_null(pc);
    uint8_t ref[32];
    size_t rl2 = 32;
    assert_int_equal(EVP_PKEY_derive_init(pc), 1);
    assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(pc, EVP_sha256()), 1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_salt(pc, (const unsigned char *)"mesatee-seal-v1", 15),
                     1);
    assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(pc, secret, 32), 1);
    assert_int_equal(EVP_PKEY_CTX_add1_hkdf_info(pc, info, (int)il), 1);
    assert_int_equal(EVP_PKEY_derive(pc, ref, &rl2), 1);
    EVP_PKEY_CTX_free(pc);
    assert_memory_equal(ref, s, 32);

    /* bad labels */
    char lbl[300];
    memset(lbl, 'x', sizeof lbl - 1);
    lbl[sizeof lbl - 1] = '\0';
    assert_int_equal(mt_tee_sealing_key(none, "", a, &e), MT_EINVAL);
    assert_int_equal(mt_tee_sealing_key(none, lbl, a, &e), MT_EINVAL);
    assert_int_equal(mt_tee_sealing_key(none, NULL, a, &e), MT_EINVAL);

    mt_tee_free(none);
    mt_tee_free(none2);
    mt_tee_free(soft);

    /* a different platform secret gives different keys */
    unlink(g_key_path);
    assert_int_equal(mt_tee_open("none", g_dir, &none, &e), MT_OK);
    assert_int_equal(mt_tee_sealing_key(none, "file-keys/v1", a2, &e), MT_OK);
    assert_memory_not_equal(a, a2, 32);
    mt_tee_free(none);
}

static void test_sealing_key_refusals(void **state)
{
    (void)state;
    mt_err e;
    mt_tee *t = NULL;
    assert_int_equal(mt_tee_open("none", g_dir, &t, &e), MT_OK);
    mt_tee_free(t);
    t = NULL;
    /* group/other permissions */
    const int modes[] = {0640, 0604, 0644, 0660, 0602};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(g_key_path, (mode_t)modes[i]), 0);
        assert_int_equal(mt_tee_open("none", g_dir, &t, &e), MT_EPERM);
        assert_null(t);
        assert_non_null(strstr(e.msg, "chmod 600"));
    }
    assert_int_equal(chmod(g_key_path, 0600), 0);
    /* wrong size */
    int fd = open(g_key_path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    assert_int_equal(mt_tee_open("soft", g_dir, &t, &e), MT_EINVAL);
    assert_non_null(strstr(e.msg, "33 bytes"));
    assert_int_equal(truncate(g_key_path, 0), 0);
    assert_int_equal(mt_tee_open("none", g_dir, &t, &e), MT_EINVAL);
    /* a symlink or a directory is refused */
    unlink(g_key_path);
    assert_int_equal(symlink("/etc/hostname", g_key_path), 0);
    assert_int_not_equal(mt_tee_open("none", g_dir, &t, &e), MT_OK);
    unlink(g_key_path);
    assert_int_equal(mkdir(g_key_path, 0700), 0);
    assert_int_equal(mt_tee_open("none", g_dir, &t, &e), MT_EPERM);
    rmdir(g_key_path);
    /* data dir created when absent */
    char sub[160], subkey[200];
    snprintf(sub, sizeof sub, "%s/new/dir", g_dir);
    snprintf(subkey, sizeof subkey, "%s/sealing.key", sub);
    assert_int_equal(mt_tee_open("none", sub, &t, &e), MT_OK);
    mt_tee_free(t);
    unlink(subkey);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/new", g_dir);
    rmdir(sub);
}

static bool has_ext_text(X509 *cert, int nid, const char *want)
{
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    if (idx < 0)
        return false;
    X509_EXTENSION *ext = X509_get_ext(cert, idx);
    BIO *b = BIO_new(BIO_s_mem());
    X509V3_EXT_print(b, ext, 0, 0);
    char buf[512] = {0};
    BIO_read(b, buf, sizeof buf - 1);
    BIO_free(b);
    return strstr(buf, want) != NULL;
}

static void test_tls_identity(void **state)
{
    (void)state;
    mt_err e;
    mt_tee *t = NULL;
    assert_int_equal(mt_tee_open("none", g_dir, &t, &e), MT_OK);
    EVP_PKEY *key = NULL, *key2 = NULL;
    X509 *cert = NULL, *cert2 = NULL;
    assert_int_equal(mt_tee_tls_identity(t, &key, &cert, &e), MT_OK);
    assert_int_equal(mt_tee_tls_identity(t, &key2, &cert2, &e), MT_OK);

    /* PEM round trip: the certificate parses */
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, cert), 1);
    X509 *parsed = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(parsed);

    /* P-256 key, matching the certificate, self-signed with ECDSA-SHA256 */
    assert_int_equal(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
    char group[64];
    size_t gl;
    assert_int_equal(
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl),
        1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_check_private_key(parsed, key), 1);
    assert_int_equal(X509_check_private_key(parsed, key2), 0);
    EVP_PKEY *pub = X509_get0_pubkey(parsed);
    assert_int_equal(X509_verify(parsed, pub), 1);
    assert_int_equal(X509_verify(parsed, X509_get0_pubkey(cert2)), 0);
    /* self-issued; X509_check_issued would add KEYUSAGE_NO_CERTSIGN for a leaf */
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(parsed), X509_get_subject_name(parsed)), 0);
    assert_int_equal(X509_check_issued(parsed, parsed), X509_V_ERR_KEYUSAGE_NO_CERTSIGN);
    assert_int_equal(X509_get_signature_nid(parsed), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_get_version(parsed), 2);

    /* names, validity, serial */
    char cn[64];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(parsed), NID_commonName, cn,
                                          sizeof cn) > 0);
    assert_string_equal(cn, "mesatee");
    int days = 0, secs = 0;
    assert_int_equal(
        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(parsed), X509_get0_notAfter(parsed)), 1);
    assert_int_equal(days, 90);
    assert_int_equal(secs, 60);
    assert_true(X509_cmp_current_time(X509_get0_notBefore(parsed)) < 0);
    const ASN1_INTEGER *sn = X509_get0_serialNumber(parsed);
    assert_int_equal(sn->length, 16);
    assert_int_equal(ASN1_INTEGER_cmp(sn, X509_get0_serialNumber(cert2)) != 0, 1);

    /* extensions */
    uint32_t flags = X509_get_extension_flags(parsed);
    assert_false(flags & EXFLAG_CA);
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(parsed, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(bc->ca, 0);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    assert_true(X509_get_key_usage(parsed) & KU_DIGITAL_SIGNATURE);
    assert_false(X509_get_key_usage(parsed) & KU_KEY_CERT_SIGN);
    assert_true(X509_get_extended_key_usage(parsed) & XKU_SSL_SERVER);
    assert_true(has_ext_text(parsed, NID_subject_alt_name, "DNS:localhost"));
    assert_true(has_ext_text(parsed, NID_subject_alt_name, "IP Address:127.0.0.1"));
    assert_int_equal(X509_check_host(parsed, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(parsed, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_host(parsed, "example.com", 0, 0, NULL), 0);

    X509_free(parsed);
    X509_free(cert);
    X509_free(cert2);
    EVP_PKEY_free(key);
    EVP_PKEY_free(key2);
    assert_int_equal(mt_tee_tls_identity(t, NULL, &cert, &e), MT_EINVAL);
    mt_tee_free(t);
    unlink(g_key_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_level),
        cmocka_unit_test(test_levels_and_sealing),
        cmocka_unit_test(test_sealing_key_refusals),
        cmocka_unit_test(test_tls_identity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
