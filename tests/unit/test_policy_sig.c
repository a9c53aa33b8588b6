/* Unit tests of auditor signatures over policy files (mt_policy_sig) and of
 * the tpm2 rules of the policy (tpm2_aks, tpm2_ek_ca). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mt_policy.h"
#include "mt_policy_sig.h"
#include "mt_util.h"

static const char POLICY[] =
    "{\"mesatee_policy\": 1, \"allowed_kinds\": [\"soft\"],\n"
    " \"measurements\": {\"gateway\": {\"measurement\": [\"" /* 32 bytes */
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"]}},\n"
    " \"soft_platform_keys\": [\"" /* 32 bytes */
    "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\"]}\n";

static EVP_PKEY *g_k[3];
static char g_dir[256];

/* PEM public keys of the given auditors, concatenated. */
static char *pubs_pem(const int *idx, size_t n)
{
    BIO *b = BIO_new(BIO_s_mem());
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(PEM_write_bio_PUBKEY(b, g_k[idx[i]]), 1);
    char *p = NULL;
    long len = BIO_get_mem_data(b, &p);
    char *out = calloc(1, (size_t)len + 1);
    memcpy(out, p, (size_t)len);
    BIO_free(b);
    return out;
}

/* Signs POLICY (or other bytes) by auditors idx, returning the .sig text. */
static char *sign_by(const char *policy, const int *idx, size_t n)
{
    char *sig = NULL;
    for (size_t i = 0; i < n; i++) {
        char *next = NULL;
        mt_err err;
        mt_status st = mt_policy_sig_sign((const uint8_t *)policy, strlen(policy), g_k[idx[i]],
                                          (const uint8_t *)sig, sig ? strlen(sig) : 0, &next, &err);
        if (st != MT_OK)
            fail_msg("sign: %s", err.msg);
        free(sig);
        sig = next;
    }
    return sig;
}

static mt_status verify(const char *policy, const char *sig, const char *pubs, unsigned thr,
                        mt_err *err)
{
    return mt_policy_sig_verify((const uint8_t *)policy, strlen(policy), (const uint8_t *)sig,
                                sig ? strlen(sig) : 0, (const uint8_t *)pubs, strlen(pubs), thr,
                                err);
}

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        if (!(g_k[i] = EVP_EC_gen("P-256")))
            return -1;
    snprintf(g_dir, sizeof g_dir, "/tmp/mt-polsig-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        EVP_PKEY_free(g_k[i]);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_sign_verify(void **state)
{
    (void)state;
    int ab[] = {0, 1}, a[] = {0}, abc[] = {0, 1, 2};
    char *sig = sign_by(POLICY, ab, 2);
    char *pub_ab = pubs_pem(ab, 2), *pub_abc = pubs_pem(abc, 3), *pub_a = pubs_pem(a, 1);
    mt_err err;
    assert_int_equal(verify(POLICY, sig, pub_ab, 0, &err), MT_OK);
    assert_int_equal(verify(POLICY, sig, pub_a, 0, &err), MT_OK);
    /* all three required, only two signed; a threshold of two passes */
    assert_int_equal(verify(POLICY, sig, pub_abc, 0, &err), MT_EAUTH);
    assert_non_null(strstr(err.msg, "2 of 3"));
    assert_non_null(strstr(err.msg, "no signature"));
    assert_int_equal(verify(POLICY, sig, pub_abc, 2, &err), MT_OK);
    assert_int_equal(verify(POLICY, sig, pub_abc, 4, &err), MT_EINVAL);
    /* re-signing replaces the auditor's line rather than adding one */
    char *again = sign_by(POLICY, a, 1);
    char *both = NULL;
    assert_int_equal(mt_policy_sig_sign((const uint8_t *)POLICY, strlen(POLICY), g_k[0],
                                        (const uint8_t *)sig, strlen(sig), &both, &err),
                     MT_OK);
    mt_policy_sigs s;
    assert_int_equal(mt_policy_sig_parse((const uint8_t *)both, strlen(both), &s, &err), MT_OK);
    assert_int_equal(s.n, 2);
    free(both);
    free(again);
    free(sig);
    free(pub_ab);
    free(pub_abc);
    free(pub_a);
}

static void test_tampered_and_missing(void **state)
{
    (void)state;
    int ab[] = {0, 1}, c[] = {2};
    char *sig = sign_by(POLICY, ab, 2);
    char *pub_ab = pubs_pem(ab, 2), *pub_c = pubs_pem(c, 1);
    mt_err err;
    /* one byte of the policy changed (even whitespace): refused */
    char *tampered = strdup(POLICY);
    tampered[strlen(tampered) - 2] = ' ';
    assert_int_equal(verify(tampered, sig, pub_ab, 0, &err), MT_EAUTH);
    assert_non_null(strstr(err.msg, "does not verify"));
    /* a trailing newline added */
    char *longer = malloc(strlen(POLICY) + 2);
    sprintf(longer, "%s\n", POLICY);
    assert_int_equal(verify(longer, sig, pub_ab, 1, &err), MT_EAUTH);
    /* no .sig at all, and a .sig by someone else */
    assert_int_equal(verify(POLICY, NULL, pub_ab, 0, &err), MT_EAUTH);
    assert_non_null(strstr(err.msg, "no auditor signatures"));
    assert_int_equal(verify(POLICY, sig, pub_c, 0, &err), MT_EAUTH);
    /* a signature byte flipped */
    char *bad = strdup(sig);
    char *sp = strchr(strchr(bad, '\n') + 1, ' ');
    sp[10] = sp[10] == 'A' ? 'B' : 'A';
    assert_int_not_equal(verify(POLICY, bad, pub_ab, 0, &err), MT_OK);
    free(bad);
    free(tampered);
    free(longer);
    free(sig);
    free(pub_ab);
    free(pub_c);
}

static void test_parse_errors(void **state)
{
    (void)state;
    int a[] = {0};
    char *sig = sign_by(POLICY, a, 1);
    mt_policy_sigs s;
    mt_err err;
    const char *bad[] = {
        "",
        "mesatee-policy-sig-v2\n",
        "mesatee-policy-sig-v1", /* no newline */
        "mesatee-policy-sig-v1\n\n",
        "mesatee-policy-sig-v1\nzz\n",
        "mesatee-policy-sig-v1\n00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff "
        "!!!!\n",
        "mesatee-policy-sig-v1\n00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff "
        "AAAA AAAA\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mt_policy_sig_parse((const uint8_t *)bad[i], strlen(bad[i]), &s, &err),
                         MT_EINVAL);
    /* the same auditor twice */
    const char *line = strchr(sig, '\n') + 1;
    char *twice = malloc(strlen(sig) + strlen(line) + 1);
    sprintf(twice, "%s%s", sig, line);
    assert_int_equal(mt_policy_sig_parse((const uint8_t *)twice, strlen(twice), &s, &err),
                     MT_EINVAL);
    assert_non_null(strstr(err.msg, "twice"));
    /* a NUL inside */
    char *nul = strdup(sig);
    nul[30] = '\0';
    assert_int_equal(mt_policy_sig_parse((const uint8_t *)nul, strlen(sig), &s, &err), MT_EINVAL);
    /* not a P-256 key file */
    mt_status st = mt_policy_sig_verify((const uint8_t *)POLICY, strlen(POLICY),
                                        (const uint8_t *)sig, strlen(sig), (const uint8_t *)"x", 1,
                                        0, &err);
    assert_int_equal(st, MT_EINVAL);
    /* a non-P-256 signing key is refused */
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    char *out = NULL;
    assert_int_equal(mt_policy_sig_sign((const uint8_t *)POLICY, strlen(POLICY), rsa, NULL, 0,
                                        &out, &err),
                     MT_EINVAL);
    EVP_PKEY_free(rsa);
    free(nul);
    free(twice);
    free(sig);
}

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

/* mt_policy_load_signed: PATH.sig next to the policy. */
static void test_load_signed(void **state)
{
    (void)state;
    int ab[] = {0, 1}, a[] = {0};
    char pol[300], sigp[310], keys[300];
    snprintf(pol, sizeof pol, "%s/p.json", g_dir);
    snprintf(sigp, sizeof sigp, "%s.sig", pol);
    snprintf(keys, sizeof keys, "%s/auditors.pem", g_dir);
    write_file(pol, POLICY);
    char *pubs = pubs_pem(ab, 2);
    write_file(keys, pubs);
    mt_policy *p = NULL;
    mt_err err;
    unlink(sigp);
    assert_int_equal(mt_policy_load_signed(pol, keys, 0, &p, &err), MT_EAUTH);
    assert_non_null(strstr(err.msg, "not signed as required"));
    assert_null(p);
    char *sig = sign_by(POLICY, a, 1);
    write_file(sigp, sig);
    assert_int_equal(mt_policy_load_signed(pol, keys, 0, &p, &err), MT_EAUTH);
    assert_int_equal(mt_policy_load_signed(pol, keys, 1, &p, &err), MT_OK);
    mt_policy_free(p);
    free(sig);
    sig = sign_by(POLICY, ab, 2);
    write_file(sigp, sig);
    assert_int_equal(mt_policy_load_signed(pol, keys, 0, &p, &err), MT_OK);
    mt_policy_free(p);
    /* tampered after signing */
    write_file(pol, "{\"mesatee_policy\": 1, \"allowed_kinds\": [\"soft\"]}\n");
    assert_int_equal(mt_policy_load_signed(pol, keys, 0, &p, &err), MT_EAUTH);
    /* without signers: plain load (and this policy lacks measurements) */
    assert_int_equal(mt_policy_load_signed(pol, NULL, 0, &p, &err), MT_EINVAL);
    free(sig);
    free(pubs);
}

/* The tpm2 rules: a pinned AK (SHA-256 of claims.public_key) or an EK CA. */
static void test_tpm2_rules(void **state)
{
    (void)state;
    mt_attest_claims *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->kind = MT_ATTEST_TPM2;
    memcpy(c->public_key, "an AK SPKI", 10);
    c->public_key_len = 10;
    uint8_t h[32];
    unsigned int hl = 0;
    assert_int_equal(EVP_Digest(c->public_key, 10, h, &hl, EVP_sha256(), NULL), 1);
    char hex[65];
    mt_hex_encode(h, 32, hex);
    uint8_t pcr[32] = {0x23};
    memcpy(c->measurements[0].name, "pcr23", 6);
    memcpy(c->measurements[0].value, pcr, 32);
    c->measurements[0].len = 32;
    c->n_measurements = 1;
    char pcrhex[65];
    mt_hex_encode(pcr, 32, pcrhex);
    char doc[1024];
    mt_policy *p = NULL;
    mt_err err;
    /* tpm2 allowed without a pin: refused at parse */
    snprintf(doc, sizeof doc,
             "{\"mesatee_policy\":1,\"allowed_kinds\":[\"tpm2\"],\"measurements\":{\"gateway\":"
             "{\"pcr23\":[\"%s\"]}}}",
             pcrhex);
    assert_int_equal(mt_policy_parse(doc, strlen(doc), &p, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "tpm2_aks"));
    snprintf(doc, sizeof doc,
             "{\"mesatee_policy\":1,\"allowed_kinds\":[\"tpm2\"],\"min_level\":\"tpm2\","
             "\"measurements\":{\"gateway\":{\"pcr23\":[\"%s\"]}},\"tpm2_aks\":[\"%s\"]}",
             pcrhex, hex);
    assert_int_equal(mt_policy_parse(doc, strlen(doc), &p, &err), MT_OK);
    assert_null(mt_policy_collateral(p));
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_OK);
    c->public_key[0] ^= 1; /* another AK */
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_EPERM);
    assert_non_null(strstr(err.msg, "policy rule 'tpm2_aks' failed"));
    c->public_key[0] ^= 1;
    c->measurements[0].value[5] ^= 1; /* another PCR value */
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_EPERM);
    assert_non_null(strstr(err.msg, "measurements.gateway.pcr23"));
    c->measurements[0].value[5] ^= 1;
    c->public_key_len = 0;
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_EPERM);
    c->public_key_len = 10;
    mt_policy_free(p);
    /* bad AK hex; an EK CA file that does not exist */
    snprintf(doc, sizeof doc,
             "{\"mesatee_policy\":1,\"allowed_kinds\":[\"tpm2\"],\"measurements\":{\"gateway\":"
             "{\"pcr23\":[\"%s\"]}},\"tpm2_aks\":[\"xyz\"]}",
             pcrhex);
    assert_int_equal(mt_policy_parse(doc, strlen(doc), &p, &err), MT_EINVAL);
    snprintf(doc, sizeof doc,
             "{\"mesatee_policy\":1,\"allowed_kinds\":[\"tpm2\"],\"measurements\":{\"gateway\":"
             "{\"pcr23\":[\"%s\"]}},\"tpm2_ek_ca\":\"%s/absent.pem\"}",
             pcrhex, g_dir);
    assert_int_equal(mt_policy_parse(doc, strlen(doc), &p, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "tpm2_ek_ca"));
    /* An EK CA alone (no pinned AK, no enrolment): refused at load. Before
     * issue 8 this policy loaded and accepted any AK whose evidence carried
     * a (public) EK certificate chaining to the CA. */
    char ca[300];
    snprintf(ca, sizeof ca, "%s/ca.pem", g_dir);
    BIO *b = BIO_new_file(ca, "w");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"ek ca", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, g_k[0]);
    X509_sign(x, g_k[0], EVP_sha256());
    PEM_write_bio_X509(b, x);
    BIO_free(b);
    X509_free(x);
    snprintf(doc, sizeof doc,
             "{\"mesatee_policy\":1,\"allowed_kinds\":[\"tpm2\"],\"measurements\":{\"gateway\":"
             "{\"pcr23\":[\"%s\"]}},\"tpm2_ek_ca\":\"%s\"}",
             pcrhex, ca);
    assert_int_equal(mt_policy_parse(doc, strlen(doc), &p, &err), MT_EINVAL);
    assert_null(p);
    assert_non_null(strstr(err.msg, "'tpm2_ek_ca' alone establishes no trust"));
    /* A pinned policy: claims that say "EK chain checked" do not make an
     * unpinned AK acceptable. */
    snprintf(doc, sizeof doc,
             "{\"mesatee_policy\":1,\"allowed_kinds\":[\"tpm2\"],\"measurements\":{\"gateway\":"
             "{\"pcr23\":[\"%s\"]}},\"tpm2_aks\":[\"%s\"]}",
             pcrhex, hex);
    assert_int_equal(mt_policy_parse(doc, strlen(doc), &p, &err), MT_OK);
    c->public_key[0] ^= 1;
    c->checked |= MT_ATTEST_CHECKED_EK_CHAIN;
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_EPERM);
    assert_non_null(strstr(err.msg, "policy rule 'tpm2_aks' failed"));
    mt_policy_free(p);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_verify),  cmocka_unit_test(test_tampered_and_missing),
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_load_signed),
        cmocka_unit_test(test_tpm2_rules),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
