/* AWS Nitro verifier against the real documents in testvectors/attestation/nitro
 * (see its PROVENANCE.md and specs/): each verifies at its own timestamp,
 * PCRs and bindings as published, flips rejected, expired at today's date. */
#include "test_attest_util.c"

#include <openssl/x509.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define N "nitro/"
#define TODAY "2026-11-23T00:00:00Z"
#define AT_GA "2023-09-18T15:03:31Z"
#define AT_BETA "2022-10-13T08:58:03Z"
#define AT_BETA_DEBUG "2022-10-12T13:50:07Z"
#define AT_CERT "2023-01-18T13:07:20Z"
#define AT_CERT_DEBUG "2023-01-18T15:10:33Z"

static const char ZERO48[] =
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000";

/* The document bytes of a file: raw, base64 text, or embedded in a cert. */
static uint8_t *load_doc(const char *rel, size_t *len)
{
    size_t n;
    uint8_t *raw = tv_read(rel, &n);
    size_t l = strlen(rel);
    if (l > 4 && strcmp(rel + l - 4, ".b64") == 0) {
        while (n && (raw[n - 1] == '\n' || raw[n - 1] == '\r'))
            raw[--n] = 0;
        uint8_t *out = NULL;
        assert_int_equal(mt_b64_decode((const char *)raw, &out, len, NULL), MT_OK);
        free(raw);
        return out;
    }
    if (l > 4 && (strcmp(rel + l - 4, ".der") == 0 || strcmp(rel + l - 4, ".pem") == 0)) {
        /* Evervault beta: hex document = first label of the longest SAN dNSName. */
        X509 *x = NULL;
        const unsigned char *p = raw;
        if (raw[0] == 0x30) {
            x = d2i_X509(NULL, &p, (long)n);
        } else {
            BIO *b = BIO_new_mem_buf(raw, (int)n);
            x = PEM_read_bio_X509(b, NULL, NULL, NULL);
            BIO_free(b);
        }
        assert_non_null(x);
        GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        assert_non_null(gens);
        const char *best = NULL;
        size_t best_len = 0;
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
            if (g->type != GEN_DNS)
                continue;
            size_t gl = (size_t)ASN1_STRING_length(g->d.dNSName);
            if (gl > best_len) {
                best_len = gl;
                best = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
            }
        }
        assert_non_null(best);
        const char *dot = memchr(best, '.', best_len);
        size_t hl = dot ? (size_t)(dot - best) : best_len;
        char *hex = malloc(hl + 1);
        memcpy(hex, best, hl);
        hex[hl] = 0;
        *len = hl / 2;
        uint8_t *out = malloc(*len);
        tv_hex(hex, out, *len);
        free(hex);
        GENERAL_NAMES_free(gens);
        X509_free(x);
        free(raw);
        return out;
    }
    *len = n;
    return raw;
}

static mt_status run(const char *rel, const char *at, long flip, mt_attest_claims *cl, mt_err *err)
{
    size_t len;
    uint8_t *d = load_doc(rel, &len);
    if (flip >= 0)
        d[flip] ^= 0x01;
    mt_status st = mt_attest_verify(MT_ATTEST_NITRO, d, len, NULL, tv_time(at), cl, err);
    free(d);
    return st;
}

static void expect_ok(const char *rel, const char *at, mt_attest_claims *cl)
{
    mt_err err = {0};
    mt_status st = run(rel, at, -1, cl, &err);
    if (st != MT_OK)
        fail_msg("%s: expected success, got %s", rel, err.msg);
    tv_print_claims(rel, cl);
}

/* DER SubjectPublicKeyInfo of a certificate file (DER or PEM). */
static size_t cert_spki(const char *rel, uint8_t *out, size_t cap)
{
    size_t n;
    uint8_t *raw = tv_read(rel, &n);
    X509 *x;
    const unsigned char *p = raw;
    if (raw[0] == 0x30) {
        x = d2i_X509(NULL, &p, (long)n);
    } else {
        BIO *b = BIO_new_mem_buf(raw, (int)n);
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    assert_non_null(x);
    unsigned char *der = NULL;
    int dl = i2d_PUBKEY(X509_get0_pubkey(x), &der);
    assert_true(dl > 0 && (size_t)dl <= cap);
    memcpy(out, der, (size_t)dl);
    OPENSSL_free(der);
    X509_free(x);
    free(raw);
    return (size_t)dl;
}

static void test_ga(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(N "evervault-ga-attestation-doc.b64", AT_GA, &cl);
    assert_int_equal(cl.kind, MT_ATTEST_NITRO);
    assert_string_equal(cl.product, "aws-nitro i-0918f6c55e3b61d89-enc018aa8b8e2285d13");
    assert_int_equal(cl.timestamp, 1695049410860LL);
    assert_true(cl.debug);
    tv_assert_meas(&cl, "pcr0", ZERO48);
    tv_assert_meas(&cl, "pcr1", ZERO48);
    tv_assert_meas(&cl, "pcr2", ZERO48);
    tv_assert_meas(&cl, "pcr8", ZERO48);
    uint8_t spki[512];
    size_t sl = cert_spki(N "evervault-ga-cert.der", spki, sizeof spki);
    assert_int_equal(sl, 91);
    assert_int_equal(cl.user_data_len, 91);
    assert_memory_equal(cl.user_data, spki, 91);
    assert_int_equal(cl.nonce_len, 256);
    assert_int_equal(cl.report_data_len, 0); /* user_data is over 64 bytes */
}

static void test_beta(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(N "evervault-beta-attestation-doc.bin", AT_BETA, &cl);
    assert_false(cl.debug);
    const mt_attest_measurement *m = mt_attest_claims_measurement(&cl, "pcr0");
    char hex[97];
    mt_hex_encode(m->value, 48, hex);
    assert_string_equal(hex, "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936"
                             "332687e6f66fc890ac8cf150142d8b");
    m = mt_attest_claims_measurement(&cl, "pcr8");
    mt_hex_encode(m->value, 48, hex);
    assert_int_equal(strncmp(hex, "8790eb3c", 8), 0);
    assert_int_equal(strcmp(hex + 96 - 9, "6210201cb"), 0);
    assert_int_equal(cl.signer_len, 48); /* PCR8: signing certificate */
    assert_int_equal(cl.user_data_len, 0);
}

static void test_beta_debug(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(N "evervault-beta-debug-attestation-doc.bin", AT_BETA_DEBUG, &cl);
    assert_true(cl.debug);
    tv_assert_meas(&cl, "pcr0", ZERO48);
    assert_int_equal(cl.public_key_len, strlen("my super secret key"));
    assert_memory_equal(cl.public_key, "my super secret key", cl.public_key_len);
    assert_int_equal(cl.user_data_len, strlen("hello, world!"));
    assert_memory_equal(cl.user_data, "hello, world!", cl.user_data_len);
    uint8_t rd[64] = "hello, world!";
    assert_int_equal(cl.report_data_len, 64);
    assert_memory_equal(cl.report_data, rd, 64);
}

/* specs/beta-valid_attestation_doc_in_cert*_time_sensitive.json */
static void test_in_cert(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(N "evervault-beta-nondebug-cert.der", AT_CERT, &cl);
    assert_false(cl.debug);
    tv_assert_meas(&cl, "pcr0", "d265a83faa7b4fa0d73b82b6d06253e894445922937d0ee5a74fe4891da9817611"
                                "a71e71b98e5329232902de3cf419af");
    tv_assert_meas(&cl, "pcr1", "bcdf05fefccaa8e55bf2c8d6dee9e79bbff31e34bf28a99aa19e6b29c37ee80b21"
                                "4a414b7607236edf26fcb78654e63f");
    tv_assert_meas(&cl, "pcr2", "e4f634d24ad83b7f6e49fe283bafdb220f6252fb4a278a858e19d15b7cd0f263b9"
                                "168ed0bacefb4444266df9f9a77f24");
    tv_assert_meas(&cl, "pcr8", "97c5395a83c0d6a04d53ff962663c714c178c24500bf97f78456ed3721d922cf3f"
                                "940614da4bb90107c439bc4a1443ca");
    uint8_t spki[512];
    size_t sl = cert_spki(N "evervault-beta-nondebug-cert.der", spki, sizeof spki);
    assert_int_equal(cl.user_data_len, sl);
    assert_memory_equal(cl.user_data, spki, sl);
    /* The "incorrect PCRs" spec: the document is valid, its PCRs do not match. */
    const mt_attest_measurement *m = mt_attest_claims_measurement(&cl, "pcr0");
    uint8_t zero[48] = {0};
    assert_memory_not_equal(m->value, zero, 48);

    expect_ok(N "evervault-beta-debug-cert.pem", AT_CERT_DEBUG, &cl);
    assert_true(cl.debug);
    tv_assert_meas(&cl, "pcr0", ZERO48);
    tv_assert_meas(&cl, "pcr1", ZERO48);
    tv_assert_meas(&cl, "pcr2", ZERO48);
    tv_assert_meas(&cl, "pcr8", ZERO48);
}

/* At today's date every document's leaf certificate is expired. */
static void test_expired_today(void **state)
{
    TV_REQUIRE();
    const char *docs[] = {N "evervault-ga-attestation-doc.b64", N "evervault-beta-attestation-doc.bin",
                          N "evervault-beta-debug-attestation-doc.bin",
                          N "evervault-beta-nondebug-cert.der", N "evervault-beta-debug-cert.pem"};
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        mt_attest_claims cl;
        mt_err err = {0};
        assert_int_equal(run(docs[i], TODAY, -1, &cl, &err), MT_EAUTH);
        tv_assert_msg(&err, "certificate has expired");
    }
    /* Before the document was made: its timestamp is in the future. */
    mt_attest_claims cl;
    mt_err err = {0};
    assert_int_equal(run(N "evervault-ga-attestation-doc.b64", "2023-09-18T14:00:00Z", -1, &cl, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "is after the verification time");
}

/* Flips: payload (PCRs, user data, timestamp), signature, protected header,
 * certificate; each is rejected. Offsets are found in the document. */
static void test_flips(void **state)
{
    TV_REQUIRE();
    size_t len;
    uint8_t *d = load_doc(N "evervault-beta-debug-attestation-doc.bin", &len);
    /* Locate fields by their CBOR keys. */
    struct {
        const char *key;
        long delta;
        const char *msg;
    } f[] = {
        {"user_data", 11, "COSE ES384 signature over the Nitro document does not verify"},
        {"public_key", 12, "COSE ES384 signature over the Nitro document does not verify"},
        {"timestamp", 17, "COSE ES384 signature over the Nitro document does not verify"},
        {"pcrs", 10, "COSE ES384 signature over the Nitro document does not verify"},
        {"module_id", 12, "COSE ES384 signature over the Nitro document does not verify"},
        {"certificate", 200, ""},
        {"cabundle", 300, ""},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        const uint8_t *k = memmem(d, len, f[i].key, strlen(f[i].key));
        assert_non_null(k);
        long off = (long)(k - d) + f[i].delta;
        mt_attest_claims cl;
        mt_err err = {0};
        mt_status st = run(N "evervault-beta-debug-attestation-doc.bin", AT_BETA_DEBUG, off, &cl, &err);
        if (st == MT_OK)
            fail_msg("flip in %s accepted", f[i].key);
        tv_assert_msg(&err, f[i].msg);
        fprintf(stderr, "    flip in %s: %s\n", f[i].key, err.msg);
    }
    mt_attest_claims cl;
    mt_err err = {0};
    /* Last byte: the signature's s. */
    assert_int_equal(run(N "evervault-beta-debug-attestation-doc.bin", AT_BETA_DEBUG, (long)len - 1,
                         &cl, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "COSE ES384 signature over the Nitro document does not verify");
    /* Protected header alg -35 -> -36 (0x22 -> 0x23). */
    const uint8_t alg[] = {0xa1, 0x01, 0x38, 0x22};
    const uint8_t *a = memmem(d, len, alg, sizeof alg);
    assert_non_null(a);
    assert_int_equal(run(N "evervault-beta-debug-attestation-doc.bin", AT_BETA_DEBUG,
                         (long)(a - d) + 3, &cl, &err),
                     MT_EINVAL);
    tv_assert_msg(&err, "COSE algorithm -36 is not ES384");
    /* Truncated and trailing bytes. */
    assert_int_equal(mt_attest_verify(MT_ATTEST_NITRO, d, len - 1, NULL, tv_time(AT_BETA_DEBUG), &cl,
                                      &err),
                     MT_EINVAL);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, d, len);
    longer[len] = 0;
    assert_int_equal(mt_attest_verify(MT_ATTEST_NITRO, longer, len + 1, NULL, tv_time(AT_BETA_DEBUG),
                                      &cl, &err),
                     MT_EINVAL);
    tv_assert_msg(&err, "1 trailing bytes");
    free(longer);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ga),      cmocka_unit_test(test_beta),
        cmocka_unit_test(test_beta_debug), cmocka_unit_test(test_in_cert),
        cmocka_unit_test(test_expired_today), cmocka_unit_test(test_flips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
