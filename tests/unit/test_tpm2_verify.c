/* Tests of the TPM 2.0 verifier (src/attest/mt_tpm2.c, mt_tpm2_azure.c) on
 * the recorded vectors of ../shared/testvectors/attestation/tpm2 (see its
 * PROVENANCE.md): swtpm quote (ECDSA P-256), trustee generic quote (RSASSA),
 * Azure SNP and TDX vTPM evidence (HCL report -> hardware report -> HCLAkPub
 * -> quote). Skips with a message when the vectors are absent. */
#include "test_attest_util.c"

#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <unistd.h>

#include "mt_json.h"
#include "mt_policy.h"
#include "mt_ratls.h"
#include "mt_tpm2.h"
#include "mt_tpm2_azure.h"

#define SW "tpm2/swtpm/"
#define AT_SWTPM "2026-11-24T00:00:00Z" /* EK certs valid from 2026-11-23T02:08:44Z */
#define AT_AZURE "2024-01-01T00:00:00Z" /* VCEK 2023-05-02 .. 2030-05-02 */
#define PCR16 "82fcb92f19183c7e173ec35f12a18d0623151c6394dec7a7ef0aa6ddea74bc09"
#define PCR_DIGEST "b4c9b205fc83c0e6fce0ad31016ca31b97cd5be8f8d3b46a2cf74e35cc187030"
#define ZERO32 "0000000000000000000000000000000000000000000000000000000000000000"

/* ---- helpers ------------------------------------------------------------- */

typedef struct sw_vec {
    uint8_t *msg, *sig, *pub, *pcrs_raw, *name;
    size_t msg_len, sig_len, pub_len, pcrs_len, name_len;
    uint8_t nonce[32];
    mt_tpm2_pcrs pcrs;
    EVP_PKEY *ak;
} sw_vec;

static void sw_load(sw_vec *v)
{
    memset(v, 0, sizeof *v);
    v->msg = tv_read(SW "quote.msg", &v->msg_len);
    v->sig = tv_read(SW "quote.sig", &v->sig_len);
    v->pub = tv_read(SW "ak.tpmt_public", &v->pub_len);
    v->pcrs_raw = tv_read(SW "quote.pcrs", &v->pcrs_len);
    v->name = tv_read(SW "ak.name", &v->name_len);
    size_t nl = 0;
    uint8_t *hex = tv_read(SW "nonce.hex", &nl);
    hex[64] = 0;
    tv_hex((char *)hex, v->nonce, 32);
    free(hex);
    mt_err err;
    if (mt_tpm2_pcrs_parse_tools(v->pcrs_raw, v->pcrs_len, &v->pcrs, &err) != MT_OK)
        fail_msg("quote.pcrs: %s", err.msg);
    mt_tpm2_public p;
    if (mt_tpm2_public_parse(v->pub, v->pub_len, &p, &err) != MT_OK ||
        mt_tpm2_public_key(&p, &v->ak, &err) != MT_OK)
        fail_msg("ak.tpmt_public: %s", err.msg);
}

static void sw_free(sw_vec *v)
{
    free(v->msg);
    free(v->sig);
    free(v->pub);
    free(v->pcrs_raw);
    free(v->name);
    EVP_PKEY_free(v->ak);
}

static mt_tpm2_quote_in sw_in(const sw_vec *v)
{
    mt_tpm2_quote_in in = {.attest = v->msg,
                           .attest_len = v->msg_len,
                           .sig = v->sig,
                           .sig_len = v->sig_len,
                           .ak = v->ak,
                           .pcrs = &v->pcrs,
                           .nonce = v->nonce,
                           .nonce_len = 32};
    return in;
}

static void expect_quote_fail(const mt_tpm2_quote_in *in, mt_status want, const char *msg)
{
    mt_attest_claims c;
    mt_err err = {0};
    mt_status st = mt_tpm2_quote_verify(in, &c, &err);
    if (st != want)
        fail_msg("expected %s (%s), got %s: %s", mt_status_name(want), msg, mt_status_name(st),
                 err.msg);
    tv_assert_msg(&err, msg);
    assert_int_equal(c.n_measurements, 0);
}

/* ---- swtpm recorded quote ----------------------------------------------- */

static void test_swtpm_quote(void **state)
{
    (void)state;
    TV_REQUIRE();
    sw_vec v;
    sw_load(&v);
    /* The parsed quote says what PROVENANCE says. */
    mt_tpm2_quote q;
    mt_err err;
    assert_int_equal(mt_tpm2_quote_parse(v.msg, v.msg_len, &q, &err), MT_OK);
    char hex[129];
    mt_hex_encode(q.pcr_digest, q.pcr_digest_len, hex);
    assert_string_equal(hex, PCR_DIGEST);
    assert_int_equal(q.n_sel, 1);
    assert_int_equal(q.sel[0].hash, MT_TPM2_ALG_SHA256);
    assert_int_equal(q.sel[0].mask, 0x100ffu);
    /* The AK name computed from the public area equals ak.name. */
    uint8_t name[66];
    size_t nl = 0;
    assert_int_equal(mt_tpm2_public_name(v.pub, v.pub_len, name, &nl, &err), MT_OK);
    assert_int_equal(nl, v.name_len);
    assert_memory_equal(name, v.name, nl);
    /* ak.pem and ak.tpmt_public are the same key. */
    size_t pl = 0;
    uint8_t *pem = tv_read(SW "ak.pem", &pl);
    BIO *bio = BIO_new_mem_buf(pem, (int)pl);
    EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    assert_non_null(pk);
    assert_int_equal(EVP_PKEY_eq(pk, v.ak), 1);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    free(pem);

    mt_tpm2_quote_in in = sw_in(&v);
    mt_attest_claims c;
    if (mt_tpm2_quote_verify(&in, &c, &err) != MT_OK)
        fail_msg("swtpm quote: %s", err.msg);
    assert_int_equal(c.kind, MT_ATTEST_TPM2);
    assert_string_equal(c.endorsement, "AK");
    assert_int_equal(c.n_measurements, 9);
    tv_assert_meas(&c, "pcr16", PCR16);
    for (int i = 0; i < 8; i++) {
        char n[8];
        snprintf(n, sizeof n, "pcr%d", i);
        tv_assert_meas(&c, n, ZERO32);
    }
    assert_null(mt_attest_claims_measurement(&c, "pcr17"));
    assert_int_equal(c.nonce_len, 32);
    assert_memory_equal(c.nonce, v.nonce, 32);
    uint64_t fw = 0;
    assert_true(mt_attest_claims_svn(&c, "tpm.firmware_version", &fw));
    tv_print_claims("swtpm", &c);
    sw_free(&v);
}

static void test_swtpm_negative(void **state)
{
    (void)state;
    TV_REQUIRE();
    sw_vec v;
    sw_load(&v);
    mt_tpm2_quote_in in = sw_in(&v);

    /* The published negative: one bit flipped in extraData. */
    size_t tl = 0;
    uint8_t *tampered = tv_read(SW "quote-tampered-nonce.msg", &tl);
    in.attest = tampered;
    in.attest_len = tl;
    expect_quote_fail(&in, MT_EAUTH, "signature does not verify");
    free(tampered);
    in = sw_in(&v);

    /* A valid quote, but not for this verifier's nonce. */
    uint8_t other[32];
    memcpy(other, v.nonce, 32);
    other[31] ^= 1;
    in.nonce = other;
    expect_quote_fail(&in, MT_EAUTH, "does not equal the expected nonce");
    in.nonce_len = 31;
    expect_quote_fail(&in, MT_EAUTH, "does not equal the expected nonce");
    in = sw_in(&v);

    /* A PCR value that is not the one quoted. */
    mt_tpm2_pcrs bad = v.pcrs;
    bad.banks[0].value[16][0] ^= 0x80;
    in.pcrs = &bad;
    expect_quote_fail(&in, MT_EAUTH, "pcrDigest does not match");
    bad = v.pcrs;
    bad.banks[0].present &= ~(1u << 16);
    expect_quote_fail(&in, MT_EINVAL, "no value for it");
    in = sw_in(&v);

    /* Byte flips: signature r and s, the quote's PCR digest, clock. */
    uint8_t sig[128], msg[256];
    size_t offs[] = {6, 10, 40, 41, 70};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        memcpy(sig, v.sig, v.sig_len);
        sig[offs[i]] ^= 1;
        in.sig = sig;
        expect_quote_fail(&in, MT_EAUTH, "signature does not verify");
    }
    in = sw_in(&v);
    size_t moffs[] = {0x30, 0x50, 0x5a, 0x80, 0x90};
    for (size_t i = 0; i < sizeof moffs / sizeof moffs[0]; i++) {
        memcpy(msg, v.msg, v.msg_len);
        msg[moffs[i]] ^= 1;
        in.attest = msg;
        expect_quote_fail(&in, MT_EAUTH, "signature does not verify");
    }
    /* Another key (the trustee AK) is not the signer. */
    in = sw_in(&v);
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    in.ak = rsa;
    expect_quote_fail(&in, MT_EAUTH, "signature does not verify");
    EVP_PKEY_free(rsa);
    /* Malformed: truncation at every length, trailing byte, wrong magic/type. */
    in = sw_in(&v);
    for (size_t n = 0; n < v.msg_len; n++) {
        in.attest_len = n;
        mt_attest_claims c;
        assert_int_equal(mt_tpm2_quote_verify(&in, &c, NULL), MT_EINVAL);
    }
    memcpy(msg, v.msg, v.msg_len);
    msg[v.msg_len] = 0;
    in.attest = msg;
    in.attest_len = v.msg_len + 1;
    expect_quote_fail(&in, MT_EINVAL, "trailing bytes");
    in.attest_len = v.msg_len;
    msg[0] = 0;
    expect_quote_fail(&in, MT_EINVAL, "TPM_GENERATED_VALUE");
    msg[0] = 0xff;
    msg[5] = 0x17; /* 0x8017 = ATTEST_CERTIFY */
    expect_quote_fail(&in, MT_EINVAL, "not a quote");
    in = sw_in(&v);
    for (size_t n = 0; n < v.sig_len; n++) {
        in.sig_len = n;
        mt_attest_claims c;
        assert_int_equal(mt_tpm2_quote_verify(&in, &c, NULL), MT_EINVAL);
    }
    sw_free(&v);
}

/* ---- the mesatee container over the recorded swtpm quote ----------------- */

static uint8_t *sw_container(const sw_vec *v, const uint8_t *ek, size_t ek_len, size_t *len)
{
    static const char rd[] = "verifier-nonce-0001"; /* nonce = SHA-256(rd) */
    mt_tpm2_evidence ev = {.report_data = (const uint8_t *)rd,
                           .report_data_len = sizeof rd - 1,
                           .attest = v->msg,
                           .attest_len = v->msg_len,
                           .sig = v->sig,
                           .sig_len = v->sig_len,
                           .ak_public = v->pub,
                           .ak_public_len = v->pub_len,
                           .ek_cert = ek,
                           .ek_cert_len = ek_len,
                           .pcrs = v->pcrs};
    uint8_t *out = NULL;
    mt_err err;
    if (mt_tpm2_evidence_encode(&ev, &out, len, &err) != MT_OK)
        fail_msg("encode: %s", err.msg);
    return out;
}

static void test_container(void **state)
{
    (void)state;
    TV_REQUIRE();
    sw_vec v;
    sw_load(&v);
    size_t ekl = 0, el = 0;
    uint8_t *ek = tv_read(SW "ek-rsa-cert.der", &ekl);
    uint8_t *ev = sw_container(&v, ek, ekl, &el);
    mt_tpm2_evidence parsed;
    mt_err err;
    assert_int_equal(mt_tpm2_evidence_parse(ev, el, &parsed, &err), MT_OK);
    assert_int_equal(parsed.ek_cert_len, ekl);
    assert_non_null(mt_tpm2_pcrs_get(&parsed.pcrs, MT_TPM2_ALG_SHA256, 16));

    tv_item pin_pem[] = {{MT_COLL_TPM2_AK, SW "ak.pem"}, {0, NULL}};
    tv_item pin_ca[] = {{MT_COLL_TPM2_AK, SW "ak.tpmt_public"},
                        {MT_COLL_TPM2_EK_CA, SW "swtpm-localca-root-cert.pem"},
                        {0, NULL}};
    mt_attest_collateral *c1 = tv_coll(pin_pem), *c2 = tv_coll(pin_ca);
    size_t il = 0;
    uint8_t *issuer = tv_read(SW "swtpm-localca-issuer-cert.pem", &il);
    size_t rl = 0;
    uint8_t *root = tv_read(SW "swtpm-localca-root-cert.pem", &rl);
    uint8_t *bundle = malloc(il + rl);
    memcpy(bundle, issuer, il);
    memcpy(bundle + il, root, rl);

    mt_attest_claims c;
    if (mt_attest_verify(MT_ATTEST_TPM2, ev, el, c1, tv_time(AT_SWTPM), &c, &err) != MT_OK)
        fail_msg("container, pinned SPKI: %s", err.msg);
    assert_int_equal(c.kind, MT_ATTEST_TPM2);
    assert_int_equal(c.report_data_len, 19);
    assert_memory_equal(c.report_data, "verifier-nonce-0001", 19);
    tv_assert_meas(&c, "pcr16", PCR16);
    const mt_attest_measurement *an = mt_attest_claims_measurement(&c, "ak_name");
    assert_non_null(an);
    assert_memory_equal(an->value, v.name, v.name_len);
    assert_int_equal(c.checked & MT_ATTEST_CHECKED_EK_CHAIN, 0);
    assert_true(c.public_key_len > 0);

    /* An EK CA bundle given to the quote verifier is refused, with the
     * full bundle too: the evidence's EK certificate is not bound to its AK,
     * so checking its chain would prove nothing (issue 8, item 1). */
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, ev, el, c2, tv_time(AT_SWTPM), &c, &err),
                     MT_EINVAL);
    tv_assert_msg(&err, "cannot make TPM evidence trustworthy");
    assert_int_equal(mt_attest_collateral_add(c2, MT_COLL_TPM2_EK_CA, bundle, il + rl, &err),
                     MT_OK);
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, ev, el, c2, tv_time(AT_SWTPM), &c, &err),
                     MT_EINVAL);
    assert_int_equal(c.checked, 0);

    /* No pin: refused with a hint. Another AK pinned: refused. */
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, ev, el, NULL, 0, &c, &err), MT_EINVAL);
    tv_assert_msg(&err, "pinned AK");
    EVP_PKEY *other = EVP_EC_gen("P-256");
    unsigned char *spki = NULL;
    int sl = i2d_PUBKEY(other, &spki);
    mt_attest_collateral *c3 = mt_attest_collateral_new();
    assert_int_equal(mt_attest_collateral_add(c3, MT_COLL_TPM2_AK, spki, (size_t)sl, &err), MT_OK);
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, ev, el, c3, 0, &c, &err), MT_EAUTH);
    tv_assert_msg(&err, "not the pinned AK");
    OPENSSL_free(spki);
    EVP_PKEY_free(other);

    /* Report data that does not hash to extraData. */
    uint8_t *bad = malloc(el);
    memcpy(bad, ev, el);
    bad[8] ^= 1; /* first byte of the report data */
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, bad, el, c1, 0, &c, &err), MT_EAUTH);
    tv_assert_msg(&err, "not SHA-256 of the evidence's report data");
    /* Every truncation is malformed; so is a trailing byte. */
    for (size_t n = 1; n < el; n++)
        assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, ev, n, c1, 0, &c, NULL), MT_EINVAL);
    uint8_t *longer = malloc(el + 1);
    memcpy(longer, ev, el);
    longer[el] = 0;
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, longer, el + 1, c1, 0, &c, &err), MT_EINVAL);
    tv_assert_msg(&err, "trailing");
    /* Flip every byte of the last PCR value (PCR16): digest mismatch. */
    memcpy(bad, ev, el);
    bad[el - 1] ^= 1;
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, bad, el, c1, 0, &c, &err), MT_EAUTH);
    tv_assert_msg(&err, "pcrDigest");

    free(longer);
    free(bad);
    free(bundle);
    free(issuer);
    free(root);
    mt_attest_collateral_free(c1);
    mt_attest_collateral_free(c2);
    mt_attest_collateral_free(c3);
    free(ev);
    free(ek);
    sw_free(&v);
}

/* Enrollment against the recorded EK cert: the challenge is well-formed and
 * only the right secret completes it; a non-AK or an unchained EK is refused. */
static void test_enroll_recorded(void **state)
{
    (void)state;
    TV_REQUIRE();
    sw_vec v;
    sw_load(&v);
    size_t ekl = 0, il = 0, rl = 0;
    uint8_t *ek = tv_read(SW "ek-rsa-cert.der", &ekl);
    uint8_t *issuer = tv_read(SW "swtpm-localca-issuer-cert.pem", &il);
    uint8_t *root = tv_read(SW "swtpm-localca-root-cert.pem", &rl);
    uint8_t *bundle = malloc(il + rl);
    memcpy(bundle, issuer, il);
    memcpy(bundle + il, root, rl);
    mt_tpm2_enroll *e = NULL;
    mt_err err;
    if (mt_tpm2_enroll_begin(ek, ekl, bundle, il + rl, tv_time(AT_SWTPM), v.pub, v.pub_len, &e,
                             &err) != MT_OK)
        fail_msg("enroll: %s", err.msg);
    const uint8_t *blob, *sec;
    size_t bl, sl;
    mt_tpm2_enroll_challenge(e, &blob, &bl, &sec, &sl);
    assert_int_equal(bl, 2 + 32 + 2 + 32);
    assert_int_equal(sl, 256);
    uint8_t guess[32] = {0};
    assert_int_equal(mt_tpm2_enroll_finish(e, guess, 32, &err), MT_EAUTH);
    tv_assert_msg(&err, "credential activation failed");
    mt_tpm2_enroll_free(e);
    mt_tpm2_enroll_free(NULL);

    /* The ECC EK certificate: not supported for activation. */
    size_t eccl = 0;
    uint8_t *ecc = tv_read(SW "ek-ecc-cert.der", &eccl);
    assert_int_equal(mt_tpm2_enroll_begin(ecc, eccl, bundle, il + rl, tv_time(AT_SWTPM), v.pub,
                                          v.pub_len, &e, &err),
                     MT_EINVAL);
    tv_assert_msg(&err, "RSA 2048");
    /* Root only (issuer missing). */
    assert_int_equal(
        mt_tpm2_enroll_begin(ek, ekl, root, rl, tv_time(AT_SWTPM), v.pub, v.pub_len, &e, &err),
        MT_EAUTH);
    /* A public area that is not a restricted signing key. */
    uint8_t pub[128];
    memcpy(pub, v.pub, v.pub_len);
    pub[5] &= (uint8_t)~0x01; /* clear restricted (bit 16 of the attributes) */
    assert_int_equal(
        mt_tpm2_enroll_begin(ek, ekl, bundle, il + rl, tv_time(AT_SWTPM), pub, v.pub_len, &e, &err),
        MT_EAUTH);
    tv_assert_msg(&err, "not those of an attestation key");
    assert_null(e);
    free(ecc);
    free(bundle);
    free(issuer);
    free(root);
    free(ek);
    sw_free(&v);
}

/* KDFa against a value computed by hand from its definition (one block). */
static void test_kdfa(void **state)
{
    (void)state;
    uint8_t key[32], out[16], ref[32];
    memset(key, 0x11, sizeof key);
    mt_err err;
    assert_int_equal(mt_tpm2_kdfa(MT_TPM2_ALG_SHA256, key, 32, "STORAGE", (const uint8_t *)"ab", 2,
                                  NULL, 0, out, 128, &err),
                     MT_OK);
    uint8_t in[] = {0, 0, 0, 1, 'S', 'T', 'O', 'R', 'A', 'G', 'E', 0, 'a', 'b', 0, 0, 0, 128};
    unsigned int rl = 0;
    assert_non_null(HMAC(EVP_sha256(), key, 32, in, sizeof in, ref, &rl));
    assert_memory_equal(out, ref, 16);
    assert_int_equal(
        mt_tpm2_kdfa(MT_TPM2_ALG_SHA1 + 1, key, 32, "X", NULL, 0, NULL, 0, out, 128, &err),
        MT_EINVAL);
}

/* ---- JSON-wrapped recorded quotes (trustee, Azure) ------------------------ */

typedef struct jq {
    uint8_t *msg, *sig;
    size_t msg_len, sig_len;
    mt_tpm2_pcrs pcrs;
} jq;

/* Decodes hex (Azure) or base64 (trustee) into a new buffer. */
static uint8_t *dec(const char *s, bool b64, size_t *len)
{
    if (b64) {
        uint8_t *out = NULL;
        assert_int_equal(mt_b64_decode(s, &out, len, NULL), MT_OK);
        return out;
    }
    *len = strlen(s) / 2;
    uint8_t *out = malloc(*len + 1);
    assert_int_equal(mt_hex_decode(s, out, *len, NULL), MT_OK);
    return out;
}

static void jq_load(const json_t *q, bool b64, jq *out)
{
    const char *m = json_string_value(json_object_get(q, "message"));
    const char *s = json_string_value(json_object_get(q, "signature"));
    json_t *pcrs = json_object_get(q, "pcrs");
    assert_non_null(m);
    assert_non_null(s);
    assert_int_equal(json_array_size(pcrs), 24);
    out->msg = dec(m, b64, &out->msg_len);
    out->sig = dec(s, b64, &out->sig_len);
    memset(&out->pcrs, 0, sizeof out->pcrs);
    for (unsigned i = 0; i < 24; i++) {
        uint8_t v[32];
        tv_hex(json_string_value(json_array_get(pcrs, i)), v, 32);
        assert_int_equal(mt_tpm2_pcrs_set(&out->pcrs, MT_TPM2_ALG_SHA256, i, v, 32, NULL), MT_OK);
    }
}

static json_t *tv_json(const char *rel)
{
    size_t n = 0;
    uint8_t *buf = tv_read(rel, &n);
    mt_err err;
    json_t *j = mt_json_parse((const char *)buf, n, 1u << 20, 16, &err);
    if (!j)
        fail_msg("%s: %s", rel, err.msg);
    free(buf);
    return j;
}

#define TRUSTEE_NONCE                                                                              \
    "a04182b506878d4f29b91ee606a71a0d3361ccf1b22db20c98adcaa537bea393ef0e41a18b3569ab678f1497"     \
    "fbc5c12000000000000000000000000000000000"

static void test_trustee_generic(void **state)
{
    (void)state;
    TV_REQUIRE();
    json_t *j = tv_json("tpm2/trustee-generic/tpm_evidence.json");
    jq q;
    jq_load(json_object_get(j, "tpm_quote"), true, &q);
    size_t kl = 0;
    uint8_t *kder = dec(json_string_value(json_object_get(j, "ak_public")), true, &kl);
    const unsigned char *p = kder;
    EVP_PKEY *ak = d2i_PUBKEY(NULL, &p, (long)kl);
    assert_non_null(ak);
    uint8_t nonce[64];
    tv_hex(TRUSTEE_NONCE, nonce, 64);
    mt_tpm2_quote_in in = {.attest = q.msg,
                           .attest_len = q.msg_len,
                           .sig = q.sig,
                           .sig_len = q.sig_len,
                           .ak = ak,
                           .pcrs = &q.pcrs,
                           .nonce = nonce,
                           .nonce_len = 64};
    mt_tpm2_sig s;
    assert_int_equal(mt_tpm2_sig_parse(q.sig, q.sig_len, &s, NULL), MT_OK);
    assert_int_equal(s.alg, MT_TPM2_ALG_RSASSA);
    mt_attest_claims c;
    mt_err err;
    if (mt_tpm2_quote_verify(&in, &c, &err) != MT_OK)
        fail_msg("trustee generic: %s", err.msg);
    assert_int_equal(c.n_measurements, 24);
    tv_assert_meas(&c, "pcr0", ZERO32);
    assert_int_equal(c.report_data_len, 64);
    tv_print_claims("trustee-generic", &c);
    /* Negatives: flipped signature, flipped nonce, changed PCR 17. */
    q.sig[10] ^= 1;
    expect_quote_fail(&in, MT_EAUTH, "signature does not verify");
    q.sig[10] ^= 1;
    nonce[0] ^= 1;
    expect_quote_fail(&in, MT_EAUTH, "expected nonce");
    nonce[0] ^= 1;
    q.pcrs.banks[0].value[17][5] ^= 1;
    expect_quote_fail(&in, MT_EAUTH, "pcrDigest");
    EVP_PKEY_free(ak);
    free(kder);
    free(q.msg);
    free(q.sig);
    json_decref(j);
}

/* Azure SNP: VCEK + chain from vcek.pem (VCEK, ASK, ARK). */
static mt_attest_collateral *azure_snp_coll(void)
{
    size_t n = 0;
    uint8_t *pem = tv_read("tpm2/azure-snp-vtpm/vcek.pem", &n);
    const char *second = strstr((const char *)pem + 1, "-----BEGIN CERTIFICATE-----");
    assert_non_null(second);
    size_t vl = (size_t)((const uint8_t *)second - pem);
    mt_attest_collateral *c = mt_attest_collateral_new();
    assert_int_equal(mt_attest_collateral_add(c, MT_COLL_AMD_VCEK, pem, vl, NULL), MT_OK);
    assert_int_equal(
        mt_attest_collateral_add(c, MT_COLL_AMD_CHAIN, (const uint8_t *)second, n - vl, NULL),
        MT_OK);
    free(pem);
    return c;
}

static void test_azure_snp(void **state)
{
    (void)state;
    TV_REQUIRE();
    size_t hl = 0;
    uint8_t *hcl = tv_read("tpm2/azure-snp-vtpm/hcl-report.bin", &hl);
    json_t *j = tv_json("tpm2/azure-snp-vtpm/tpm-quote-v1.json");
    jq q;
    jq_load(j, false, &q);
    mt_attest_collateral *coll = azure_snp_coll();
    mt_tpm2_azure_in in = {.hcl = hcl,
                           .hcl_len = hl,
                           .coll = coll,
                           .at = tv_time(AT_AZURE),
                           .quote = {.attest = q.msg,
                                     .attest_len = q.msg_len,
                                     .sig = q.sig,
                                     .sig_len = q.sig_len,
                                     .raw_rsassa_hash = MT_TPM2_ALG_SHA256,
                                     .pcrs = &q.pcrs,
                                     .nonce = (const uint8_t *)"challenge",
                                     .nonce_len = 9}};
    mt_attest_claims hw, tpm;
    mt_err err;
    if (mt_tpm2_azure_verify(&in, &hw, &tpm, &err) != MT_OK)
        fail_msg("azure snp: %s", err.msg);
    assert_int_equal(hw.kind, MT_ATTEST_SEV_SNP);
    const mt_attest_measurement *m = mt_attest_claims_measurement(&hw, "measurement");
    assert_non_null(m);
    char mh[97];
    mt_hex_encode(m->value, m->len, mh);
    assert_true(strncmp(mh, "9ac48fca", 8) == 0);
    assert_true(strcmp(mh + 88, "6d17c315") == 0);
    assert_int_equal(tpm.kind, MT_ATTEST_TPM2);
    assert_string_equal(tpm.endorsement, "HCLAkPub");
    tv_assert_meas(&tpm, "pcr0",
                   "f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be");
    assert_int_equal(tpm.report_data_len, 9);
    assert_memory_equal(tpm.report_data, "challenge", 9);
    assert_true(tpm.public_key_len > 256);
    assert_int_equal(tpm.user_data_len, 64);
    tv_print_claims("azure-snp hw", &hw);
    tv_print_claims("azure-snp tpm", &tpm);

    /* Negatives. Wrong nonce: */
    in.quote.nonce = (const uint8_t *)"challengf";
    assert_int_equal(mt_tpm2_azure_verify(&in, &hw, &tpm, &err), MT_EAUTH);
    tv_assert_msg(&err, "expected nonce");
    assert_int_equal(tpm.n_measurements, 0);
    in.quote.nonce = (const uint8_t *)"challenge";
    /* Runtime claims changed (the AK swapped): report_data no longer binds them. */
    uint8_t *bad = malloc(hl);
    memcpy(bad, hcl, hl);
    char *n = memmem(bad, hl, "\"n\":\"", 5);
    assert_non_null(n);
    n[6] = n[6] == 'A' ? 'B' : 'A';
    in.hcl = bad;
    assert_int_equal(mt_tpm2_azure_verify(&in, &hw, &tpm, &err), MT_EAUTH);
    tv_assert_msg(&err, "does not bind the HCL runtime claims");
    /* The SNP report itself changed: its signature fails. */
    memcpy(bad, hcl, hl);
    bad[32 + 0x90] ^= 1; /* measurement */
    assert_int_equal(mt_tpm2_azure_verify(&in, &hw, &tpm, &err), MT_EAUTH);
    /* Non-zero bytes after the report; bad magic; truncation. */
    memcpy(bad, hcl, hl);
    bad[hl - 1] = 1;
    assert_int_equal(mt_tpm2_azure_verify(&in, &hw, &tpm, &err), MT_EINVAL);
    memcpy(bad, hcl, hl);
    bad[0] = 'X';
    assert_int_equal(mt_tpm2_azure_verify(&in, &hw, &tpm, &err), MT_EINVAL);
    in.hcl = hcl;
    for (size_t k = 0; k < 2346; k += 7) { /* report_size is 2346 */
        in.hcl_len = k;
        mt_status kst = mt_tpm2_azure_verify(&in, &hw, &tpm, &err);
        if (kst != MT_EINVAL)
            fail_msg("length %zu: %s", k, err.msg);
    }
    in.hcl_len = hl;
    /* A PCR value changed. */
    q.pcrs.banks[0].value[0][0] ^= 1;
    assert_int_equal(mt_tpm2_azure_verify(&in, &hw, &tpm, &err), MT_EAUTH);
    tv_assert_msg(&err, "pcrDigest");
    free(bad);
    mt_attest_collateral_free(coll);
    free(q.msg);
    free(q.sig);
    json_decref(j);
    free(hcl);
}

/* base64 or base64url, padded or not. */
static uint8_t *dec_b64any(const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *t = malloc(n + 4);
    for (size_t i = 0; i < n; i++)
        t[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (n % 4)
        t[n++] = '=';
    t[n] = 0;
    uint8_t *out = dec(t, true, len);
    free(t);
    return out;
}

/* The trustee bundle evidence-v1.json (its own HCL report, quote and VCEK):
 * report data "challenge" and pcr00 as the trustee test expects. */
static void test_azure_snp_bundle(void **state)
{
    (void)state;
    TV_REQUIRE();
    json_t *j = tv_json("tpm2/azure-snp-vtpm/evidence-v1.json");
    jq q;
    jq_load(json_object_get(j, "tpm_quote"), false, &q);
    size_t hl = 0, vl = 0;
    uint8_t *hcl = dec_b64any(json_string_value(json_object_get(j, "hcl_report")), &hl);
    uint8_t *vcek = dec_b64any(json_string_value(json_object_get(j, "vcek")), &vl);
    mt_attest_collateral *coll = azure_snp_coll(); /* ASK + ARK Milan */
    assert_int_equal(mt_attest_collateral_add(coll, MT_COLL_AMD_VCEK, vcek, vl, NULL), MT_OK);
    mt_tpm2_azure_in in = {.hcl = hcl,
                           .hcl_len = hl,
                           .coll = coll,
                           .at =
                               tv_time("2025-06-01T00:00:00Z"), /* VCEK 2025-01-28 .. 2032-01-28 */
                           .quote = {.attest = q.msg,
                                     .attest_len = q.msg_len,
                                     .sig = q.sig,
                                     .sig_len = q.sig_len,
                                     .raw_rsassa_hash = MT_TPM2_ALG_SHA256,
                                     .pcrs = &q.pcrs,
                                     .nonce = (const uint8_t *)"challenge",
                                     .nonce_len = 9}};
    mt_attest_claims hw, tpm;
    mt_err err;
    if (mt_tpm2_azure_verify(&in, &hw, &tpm, &err) != MT_OK)
        fail_msg("azure snp evidence-v1: %s", err.msg);
    tv_assert_meas(&tpm, "pcr0",
                   "e15c44796beabf46abcec7c57e590942041e47497e4ec27571c8b7664f48dced");
    assert_memory_equal(tpm.report_data, "challenge", 9);
    in.quote.nonce_len = 8;
    assert_int_equal(mt_tpm2_azure_verify(&in, &hw, &tpm, &err), MT_EAUTH);
    mt_attest_collateral_free(coll);
    free(hcl);
    free(vcek);
    free(q.msg);
    free(q.sig);
    json_decref(j);
}

static void test_azure_tdx(void **state)
{
    (void)state;
    TV_REQUIRE();
    size_t hl = 0, ql = 0;
    uint8_t *hcl = tv_read("tpm2/azure-tdx-vtpm/hcl-report.bin", &hl);
    uint8_t *tdq = tv_read("tpm2/azure-tdx-vtpm/td-quote.bin", &ql);
    json_t *j = tv_json("tpm2/azure-tdx-vtpm/tpm-quote-v1.json");
    jq q;
    jq_load(j, false, &q);
    mt_tpm2_azure_in in = {.hcl = hcl,
                           .hcl_len = hl,
                           .td_quote = tdq,
                           .td_quote_len = ql,
                           .at = tv_time(AT_AZURE),
                           .quote = {.attest = q.msg,
                                     .attest_len = q.msg_len,
                                     .sig = q.sig,
                                     .sig_len = q.sig_len,
                                     .raw_rsassa_hash = MT_TPM2_ALG_SHA256,
                                     .pcrs = &q.pcrs,
                                     .nonce = (const uint8_t *)"challenge",
                                     .nonce_len = 9}};
    mt_attest_claims hw, tpm;
    mt_err err;
    if (mt_tpm2_azure_verify(&in, &hw, &tpm, &err) != MT_OK)
        fail_msg("azure tdx: %s", err.msg);
    assert_int_equal(hw.kind, MT_ATTEST_TDX);
    tv_assert_meas(&hw, "mrtd",
                   "024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795"
                   "d1737b66205949d15469dc8c1ba7ab7b");
    assert_int_equal(tpm.kind, MT_ATTEST_TPM2);
    assert_memory_equal(tpm.report_data, "challenge", 9);
    tv_print_claims("azure-tdx tpm", &tpm);
    /* The TDREPORT in the HCL report differs from the quoted TD. */
    uint8_t *bad = malloc(hl);
    memcpy(bad, hcl, hl);
    bad[32 + 528] ^= 1; /* MRTD */
    in.hcl = bad;
    assert_int_equal(mt_tpm2_azure_verify(&in, &hw, &tpm, &err), MT_EAUTH);
    tv_assert_msg(&err, "mrtd differs");
    memcpy(bad, hcl, hl);
    bad[32 + 128] ^= 1; /* report data */
    assert_int_equal(mt_tpm2_azure_verify(&in, &hw, &tpm, &err), MT_EAUTH);
    tv_assert_msg(&err, "report_data differs");
    /* No TD quote. */
    in.hcl = hcl;
    in.td_quote = NULL;
    assert_int_equal(mt_tpm2_azure_verify(&in, &hw, &tpm, &err), MT_EINVAL);
    tv_assert_msg(&err, "TD quote");
    free(bad);
    free(q.msg);
    free(q.sig);
    json_decref(j);
    free(tdq);
    free(hcl);
}

/* ---- AK trust: pins and enrolment records (issue 8, item 1) ------------- */

static char g_tmp[64];

static void tmp_init(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/mt-tpm2-trust-XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
}

static void tmp_done(const char *const *names)
{
    char p[160];
    for (size_t i = 0; names[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", g_tmp, names[i]);
        unlink(p);
    }
    rmdir(g_tmp);
}

/* Writes g_tmp/name; returns the path in out (160 bytes). */
static void tmp_write(const char *name, const void *data, size_t len, char *out)
{
    snprintf(out, 160, "%s/%s", g_tmp, name);
    FILE *f = fopen(out, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void spki_hex(EVP_PKEY *k, char hex[65])
{
    unsigned char *spki = NULL;
    int sl = i2d_PUBKEY(k, &spki);
    uint8_t h[32];
    unsigned int hl = 0;
    assert_true(sl > 0);
    assert_int_equal(EVP_Digest(spki, (size_t)sl, h, &hl, EVP_sha256(), NULL), 1);
    OPENSSL_free(spki);
    mt_hex_encode(h, 32, hex);
}

static void put16(uint8_t *b, size_t *o, unsigned v)
{
    b[(*o)++] = (uint8_t)(v >> 8);
    b[(*o)++] = (uint8_t)v;
}

/* A forgery anyone can make: a software key dressed as an AK (a TPMT_PUBLIC
 * with every AK attribute set), the genuine EK certificate of a real TPM
 * (EK certificates are public), PCR 16 set to whatever the policy expects,
 * and a quote over SHA-256(rd) signed by the software key. The container
 * is well formed and its quote verifies with its own AK. */
static uint8_t *forged_container(const sw_vec *v, const uint8_t *ek, size_t ekl,
                                 const uint8_t *rd, size_t rdl, size_t *len)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    BIGNUM *x = NULL, *y = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y), 1);
    static uint8_t pub[88];
    assert_int_equal(v->pub_len, sizeof pub);
    memcpy(pub, v->pub, sizeof pub);
    assert_true(pub[20] == 0 && pub[21] == 32 && pub[54] == 0 && pub[55] == 32);
    assert_int_equal(BN_bn2binpad(x, pub + 22, 32), 32);
    assert_int_equal(BN_bn2binpad(y, pub + 56, 32), 32);
    BN_free(x);
    BN_free(y);
    uint8_t pcr16[32], extra[32], dig[32];
    tv_hex(PCR16, pcr16, 32);
    unsigned int hl = 0;
    assert_int_equal(EVP_Digest(rd, rdl, extra, &hl, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_Digest(pcr16, 32, dig, &hl, EVP_sha256(), NULL), 1);
    uint8_t att[256], name[34] = {0x00, 0x0b};
    assert_int_equal(EVP_Digest(pub, sizeof pub, name + 2, &hl, EVP_sha256(), NULL), 1);
    size_t o = 0;
    static const uint8_t head[] = {0xff, 0x54, 0x43, 0x47, 0x80, 0x18};
    memcpy(att, head, sizeof head);
    o = sizeof head;
    put16(att, &o, sizeof name);
    memcpy(att + o, name, sizeof name);
    o += sizeof name;
    put16(att, &o, 32);
    memcpy(att + o, extra, 32);
    o += 32;
    memset(att + o, 0x11, 8 + 4 + 4); /* clock, resetCount, restartCount */
    o += 16;
    att[o++] = 1;                    /* safe */
    memset(att + o, 0x22, 8);        /* firmwareVersion */
    o += 8;
    static const uint8_t sel[] = {0, 0, 0, 1, 0x00, 0x0b, 3, 0x00, 0x00, 0x01}; /* sha256: 16 */
    memcpy(att + o, sel, sizeof sel);
    o += sizeof sel;
    put16(att, &o, 32);
    memcpy(att + o, dig, 32);
    o += 32;
    /* TPMT_SIGNATURE: ECDSA, SHA-256, r, s */
    uint8_t der[80], sig[4 + 2 * 34];
    size_t dl = sizeof der, so = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(md, der, &dl, att, o), 1);
    EVP_MD_CTX_free(md);
    const unsigned char *dp = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &dp, (long)dl);
    assert_non_null(es);
    put16(sig, &so, MT_TPM2_ALG_ECDSA);
    put16(sig, &so, MT_TPM2_ALG_SHA256);
    put16(sig, &so, 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig + so, 32), 32);
    so += 32;
    put16(sig, &so, 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + so, 32), 32);
    so += 32;
    ECDSA_SIG_free(es);
    EVP_PKEY_free(k);
    mt_tpm2_evidence ev = {.report_data = rd,
                           .report_data_len = rdl,
                           .attest = att,
                           .attest_len = o,
                           .sig = sig,
                           .sig_len = so,
                           .ak_public = pub,
                           .ak_public_len = sizeof pub,
                           .ek_cert = ek,
                           .ek_cert_len = ekl};
    mt_err err;
    assert_int_equal(mt_tpm2_pcrs_set(&ev.pcrs, MT_TPM2_ALG_SHA256, 16, pcr16, 32, &err), MT_OK);
    uint8_t *out = NULL;
    if (mt_tpm2_evidence_encode(&ev, &out, len, &err) != MT_OK)
        fail_msg("encode: %s", err.msg);
    /* The forgery is well formed: its quote verifies with its own AK. */
    mt_attest_collateral *own = mt_attest_collateral_new();
    mt_attest_claims *c = malloc(sizeof *c);
    assert_int_equal(mt_attest_collateral_add(own, MT_COLL_TPM2_AK, pub, sizeof pub, &err), MT_OK);
    if (mt_attest_verify(MT_ATTEST_TPM2, out, *len, own, 0, c, &err) != MT_OK)
        fail_msg("forged container does not verify with its own AK: %s", err.msg);
    assert_int_equal(c->checked, 0);
    free(c);
    mt_attest_collateral_free(own);
    return out;
}

/* A forged RA-TLS certificate: a fresh TLS key, its pubkey-hash claims, and
 * a forged TPM container over SHA-256(claims) || 32 zero bytes. DER. */
static uint8_t *forged_cert(const sw_vec *v, const uint8_t *ek, size_t ekl, size_t *len)
{
    EVP_PKEY *tls = EVP_EC_gen("P-256");
    unsigned char *spki = NULL;
    int sl = i2d_PUBKEY(tls, &spki);
    uint8_t h[32], claims[160], rd[64] = {0};
    size_t cl = 0, evl = 0, xl = 0;
    unsigned int hl = 0;
    mt_err err;
    assert_int_equal(EVP_Digest(spki, (size_t)sl, h, &hl, EVP_sha256(), NULL), 1);
    OPENSSL_free(spki);
    assert_int_equal(mt_ratls_claims_encode(h, NULL, 0, claims, sizeof claims, &cl, &err), MT_OK);
    assert_int_equal(EVP_Digest(claims, cl, rd, &hl, EVP_sha256(), NULL), 1);
    uint8_t *ev = forged_container(v, ek, ekl, rd, sizeof rd, &evl), *xv = NULL;
    assert_int_equal(
        mt_ratls_ext_encode(MT_RATLS_TAG_TPM2, ev, evl, claims, cl, &xv, &xl, &err), MT_OK);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"forged", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    X509_set_pubkey(x, tls);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(MT_RATLS_OID, 1);
    assert_int_equal(ASN1_OCTET_STRING_set(os, xv, (int)xl), 1);
    X509_EXTENSION *xe = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os);
    assert_int_equal(X509_add_ext(x, xe, -1), 1);
    assert_true(X509_sign(x, tls, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int dl = i2d_X509(x, &der);
    assert_true(dl > 0);
    uint8_t *out = malloc((size_t)dl);
    memcpy(out, der, (size_t)dl);
    *len = (size_t)dl;
    OPENSSL_free(der);
    X509_EXTENSION_free(xe);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(os);
    X509_free(x);
    EVP_PKEY_free(tls);
    free(xv);
    free(ev);
    return out;
}

static mt_policy *policy_or_fail(const char *doc)
{
    mt_policy *p = NULL;
    mt_err err;
    if (mt_policy_parse(doc, strlen(doc), &p, &err) != MT_OK)
        fail_msg("policy refused: %s\n%s", err.msg, doc);
    return p;
}

static void policy_refused(const char *doc, mt_status want, const char *msg)
{
    mt_policy *p = NULL;
    mt_err err;
    mt_status st = mt_policy_parse(doc, strlen(doc), &p, &err);
    if (st != want)
        fail_msg("expected %s, got %s (%s)\n%s", mt_status_name(want), mt_status_name(st),
                 st == MT_OK ? "accepted" : err.msg, doc);
    assert_null(p);
    tv_assert_msg(&err, msg);
}

#define POL_HEAD                                                                                   \
    "{\"mesatee_policy\":1,\"allowed_kinds\":[\"tpm2\"],\"min_level\":\"tpm2\","                \
    "\"measurements\":{\"gateway\":{\"pcr16\":[\"" PCR16 "\"]}}"

/* The forged evidence of the review: a policy with an EK CA and no pinned
 * AK is refused at load, and every policy that loads refuses the forgery,
 * as raw evidence and inside an RA-TLS certificate, through the one path
 * live clients use (mt_policy_verify_cert). */
static void test_forged_ak_refused(void **state)
{
    (void)state;
    TV_REQUIRE();
    tmp_init();
    sw_vec v;
    sw_load(&v);
    size_t ekl = 0, il = 0, rl = 0, fl = 0, gl = 0, cl = 0;
    uint8_t *ek = tv_read(SW "ek-rsa-cert.der", &ekl);
    uint8_t *issuer = tv_read(SW "swtpm-localca-issuer-cert.pem", &il);
    uint8_t *root = tv_read(SW "swtpm-localca-root-cert.pem", &rl);
    char ca[160], rec[160], doc[2048], ak_hex[65], en_hex[65];
    tmp_write("ca.pem", issuer, il, ca);
    FILE *f = fopen(ca, "ab");
    assert_non_null(f);
    assert_int_equal(fwrite(root, 1, rl, f), rl);
    fclose(f);
    static const char rd[] = "any report data";
    uint8_t *forged = forged_container(&v, ek, ekl, (const uint8_t *)rd, sizeof rd - 1, &fl);
    uint8_t *genuine = sw_container(&v, ek, ekl, &gl);
    uint8_t *cert = forged_cert(&v, ek, ekl, &cl);
    mt_attest_claims *c = malloc(sizeof *c);
    mt_err err;

    /* 1. tpm2_ek_ca without pins or enrolments: refused at load. */
    snprintf(doc, sizeof doc, POL_HEAD ",\"tpm2_ek_ca\":\"%s\"}", ca);
    policy_refused(doc, MT_EINVAL, "alone establishes no trust");
    /* ... and with pins, the EK CA would check nothing: refused too. */
    EVP_PKEY *ak = v.ak;
    spki_hex(ak, ak_hex);
    snprintf(doc, sizeof doc, POL_HEAD ",\"tpm2_ek_ca\":\"%s\",\"tpm2_aks\":[\"%s\"]}", ca, ak_hex);
    policy_refused(doc, MT_EINVAL, "alone establishes no trust");

    /* 2. Pinned genuine AK: the forgery is refused, raw and in a cert. */
    snprintf(doc, sizeof doc, POL_HEAD ",\"tpm2_aks\":[\"%s\"]}", ak_hex);
    mt_policy *p = policy_or_fail(doc);
    assert_int_equal(mt_policy_verify_evidence(p, MT_ATTEST_TPM2, forged, fl, 0, c, &err),
                     MT_EPERM);
    tv_assert_msg(&err, "policy rule 'tpm2_aks' failed");
    assert_int_equal(mt_policy_verify_cert(p, cert, cl, MT_RATLS_FORM_CCC, mt_now(), c, NULL, &err),
                     MT_EPERM);
    tv_assert_msg(&err, "policy rule 'tpm2_aks' failed");
    assert_int_equal(c->checked & MT_ATTEST_CHECKED_EK_CHAIN, 0);
    if (mt_policy_verify_evidence(p, MT_ATTEST_TPM2, genuine, gl, tv_time(AT_SWTPM), c, &err) !=
        MT_OK)
        fail_msg("genuine evidence, pinned AK: %s", err.msg);
    assert_int_equal(c->checked & MT_ATTEST_CHECKED_EK_CHAIN, 0); /* a pin is not an EK check */
    mt_policy_free(p);

    /* 3. Enrolment: the genuine AK's record signed by a trusted enroller. */
    EVP_PKEY *enroller = EVP_EC_gen("P-256"), *attacker = EVP_EC_gen("P-256");
    spki_hex(enroller, en_hex);
    char *json = NULL;
    if (mt_tpm2_record_sign(v.pub, v.pub_len, ek, ekl, tv_time(AT_SWTPM), enroller, &json,
                            &err) != MT_OK)
        fail_msg("record: %s", err.msg);
    tmp_write("rec.json", json, strlen(json), rec);
    snprintf(doc, sizeof doc,
             POL_HEAD ",\"tpm2_ek_ca\":\"%s\",\"tpm2_enrollers\":[\"%s\"],"
                      "\"tpm2_enrolments\":[\"%s\"],\"required_checks\":{\"tpm2\":[\"ek_chain\"]}}",
             ca, en_hex, rec);
    p = policy_or_fail(doc);
    assert_int_equal(mt_policy_verify_evidence(p, MT_ATTEST_TPM2, forged, fl, 0, c, &err),
                     MT_EPERM);
    tv_assert_msg(&err, "neither pinned");
    assert_int_equal(mt_policy_verify_cert(p, cert, cl, MT_RATLS_FORM_CCC, mt_now(), c, NULL, &err),
                     MT_EPERM);
    tv_assert_msg(&err, "policy rule 'tpm2_aks' failed");
    if (mt_policy_verify_evidence(p, MT_ATTEST_TPM2, genuine, gl, tv_time(AT_SWTPM), c, &err) !=
        MT_OK)
        fail_msg("genuine evidence, enrolled AK: %s", err.msg);
    assert_int_equal(c->checked & MT_ATTEST_CHECKED_EK_CHAIN, MT_ATTEST_CHECKED_EK_CHAIN);
    char *cj = mt_policy_claims_json(c, NULL);
    assert_non_null(strstr(cj, "\"ek_chain\""));
    free(cj);
    /* mt_policy_check alone (claims without the flag) reaches the same
     * verdict: the record, not the claims, is what counts. */
    c->checked = 0;
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_OK);
    c->public_key[c->public_key_len - 1] ^= 1; /* another AK */
    c->checked = MT_ATTEST_CHECKED_EK_CHAIN;    /* a verifier's word is not enough */
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_EPERM);
    tv_assert_msg(&err, "policy rule 'tpm2_aks' failed");
    mt_policy_free(p);

    /* 4. The attacker enrols the forged AK himself: his key is not trusted. */
    mt_tpm2_evidence fe;
    assert_int_equal(mt_tpm2_evidence_parse(forged, fl, &fe, &err), MT_OK);
    char *fake = NULL;
    assert_int_equal(mt_tpm2_record_sign(fe.ak_public, fe.ak_public_len, ek, ekl,
                                         tv_time(AT_SWTPM), attacker, &fake, &err),
                     MT_OK);
    char frec[160];
    tmp_write("fake.json", fake, strlen(fake), frec);
    snprintf(doc, sizeof doc,
             POL_HEAD ",\"tpm2_enrollers\":[\"%s\"],\"tpm2_enrolments\":[\"%s\",\"%s\"]}", en_hex,
             rec, frec);
    policy_refused(doc, MT_EAUTH, "not a trusted enroller");

    /* 5. Tampered records are refused at load. */
    static const char *const fields[] = {"\"signature\": \"", "\"enrolled_at\": \"2026-",
                                         "\"ak_public\": \"", "\"tpm2_ak\": \""};
    static const char *const why[] = {"signature", "signature", "signature", "tpm2_ak"};
    for (size_t i = 0; i < 4; i++) {
        char *t = strdup(json), *at = strstr(t, fields[i]);
        assert_non_null(at);
        char *ch = at + strlen(fields[i]) + 4;
        *ch = *ch == '1' ? '2' : '1'; /* one hex digit of the third byte */
        char tp[160];
        tmp_write("tampered.json", t, strlen(t), tp);
        snprintf(doc, sizeof doc,
                 POL_HEAD ",\"tpm2_enrollers\":[\"%s\"],\"tpm2_enrolments\":[\"%s\"]}", en_hex,
                 tp);
        mt_policy *q = NULL;
        assert_int_not_equal(mt_policy_parse(doc, strlen(doc), &q, &err), MT_OK);
        assert_null(q);
        tv_assert_msg(&err, why[i]);
        free(t);
    }
    /* An enrolment before the EK certificate was valid: chain fails. */
    char *early = NULL;
    assert_int_equal(mt_tpm2_record_sign(v.pub, v.pub_len, ek, ekl,
                                         tv_time("2026-01-01T00:00:00Z"), enroller, &early, &err),
                     MT_OK);
    char erec[160];
    tmp_write("early.json", early, strlen(early), erec);
    snprintf(doc, sizeof doc,
             POL_HEAD ",\"tpm2_ek_ca\":\"%s\",\"tpm2_enrollers\":[\"%s\"],"
                      "\"tpm2_enrolments\":[\"%s\"]}",
             ca, en_hex, erec);
    policy_refused(doc, MT_EAUTH, "not yet valid");
    /* Enrollers without records, records without enrollers: refused. */
    snprintf(doc, sizeof doc, POL_HEAD ",\"tpm2_enrollers\":[\"%s\"]}", en_hex);
    policy_refused(doc, MT_EINVAL, "needs 'tpm2_enrolments'");
    snprintf(doc, sizeof doc, POL_HEAD ",\"tpm2_enrolments\":[\"%s\"]}", rec);
    policy_refused(doc, MT_EINVAL, "needs 'tpm2_enrollers'");
    /* Pinned AK but the policy requires an EK check: fails closed. */
    snprintf(doc, sizeof doc,
             POL_HEAD ",\"tpm2_aks\":[\"%s\"],\"required_checks\":{\"tpm2\":[\"ek_chain\"]}}",
             ak_hex);
    p = policy_or_fail(doc);
    assert_int_equal(
        mt_policy_verify_evidence(p, MT_ATTEST_TPM2, genuine, gl, tv_time(AT_SWTPM), c, &err),
        MT_EPERM);
    tv_assert_msg(&err, "policy rule 'required_checks' failed");
    mt_policy_free(p);

    /* Enroller keys are ECDSA P-256 only. */
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    char *r384 = NULL;
    assert_int_equal(mt_tpm2_record_sign(v.pub, v.pub_len, ek, ekl, tv_time(AT_SWTPM), p384,
                                         &r384, &err),
                     MT_EINVAL);
    assert_null(r384);
    EVP_PKEY_free(p384);

    /* Split enrolment: the saved state completes only with its secret, once. */
    {
        uint8_t *bnd = malloc(il + rl);
        memcpy(bnd, issuer, il);
        memcpy(bnd + il, root, rl);
        mt_tpm2_enroll *b = NULL, *l = NULL;
        char *st_json = NULL;
        assert_int_equal(mt_tpm2_enroll_begin(ek, ekl, bnd, il + rl, tv_time(AT_SWTPM), v.pub,
                                              v.pub_len, &b, &err),
                         MT_OK);
        assert_int_equal(mt_tpm2_enroll_save(b, &st_json, &err), MT_OK);
        const char *sp = strstr(st_json, "\"secret\":\"");
        assert_non_null(sp);
        uint8_t secret[32];
        char sh[65];
        memcpy(sh, sp + 10, 64);
        sh[64] = 0;
        tv_hex(sh, secret, 32);
        assert_int_equal(mt_tpm2_enroll_load((const uint8_t *)st_json, strlen(st_json), &l, &err),
                         MT_OK);
        char *r2 = NULL;
        assert_int_equal(mt_tpm2_enroll_record(l, enroller, &r2, &err), MT_EAUTH);
        assert_int_equal(mt_tpm2_enroll_finish(l, secret, 32, &err), MT_OK);
        assert_int_equal(mt_tpm2_enroll_finish(l, secret, 32, &err), MT_EAUTH); /* once */
        assert_int_equal(mt_tpm2_enroll_record(l, enroller, &r2, &err), MT_OK);
        mt_tpm2_record rr;
        uint8_t eh[32];
        tv_hex(en_hex, eh, 32);
        assert_int_equal(mt_tpm2_record_verify((const uint8_t *)r2, strlen(r2),
                                               (const uint8_t(*)[32])eh, 1, bnd, il + rl, &rr,
                                               &err),
                         MT_OK);
        assert_true(rr.ek_chain_checked);
        mt_tpm2_enroll_free(l);
        l = NULL;
        /* A wrong secret fails; a malformed state is refused. */
        assert_int_equal(mt_tpm2_enroll_load((const uint8_t *)st_json, strlen(st_json), &l, &err),
                         MT_OK);
        secret[0] ^= 1;
        assert_int_equal(mt_tpm2_enroll_finish(l, secret, 32, &err), MT_EAUTH);
        mt_tpm2_enroll_free(l);
        l = NULL;
        assert_int_equal(mt_tpm2_enroll_load((const uint8_t *)"{\"mesatee_tpm2_enrol_state\":1}",
                                             30, &l, &err),
                         MT_EINVAL);
        assert_null(l);
        /* An answered enrollment is not saved. */
        assert_int_equal(mt_tpm2_enroll_finish(b, secret, 32, &err), MT_EAUTH);
        char *again = NULL;
        assert_int_equal(mt_tpm2_enroll_save(b, &again, &err), MT_EINVAL);
        mt_tpm2_enroll_free(b);
        mt_wipe(st_json, strlen(st_json));
        free(st_json);
        free(r2);
        free(bnd);
    }

    /* 6. No record without a successful activation. */
    size_t bl = il + rl;
    uint8_t *bundle = malloc(bl);
    memcpy(bundle, issuer, il);
    memcpy(bundle + il, root, rl);
    mt_tpm2_enroll *e = NULL;
    assert_int_equal(mt_tpm2_enroll_begin(ek, ekl, bundle, bl, tv_time(AT_SWTPM), v.pub,
                                          v.pub_len, &e, &err),
                     MT_OK);
    char *none = NULL;
    assert_int_equal(mt_tpm2_enroll_record(e, enroller, &none, &err), MT_EAUTH);
    uint8_t guess[32] = {0};
    assert_int_equal(mt_tpm2_enroll_finish(e, guess, 32, &err), MT_EAUTH);
    assert_int_equal(mt_tpm2_enroll_record(e, enroller, &none, &err), MT_EAUTH);
    assert_null(none);
    mt_tpm2_enroll_free(e);

    static const char *const files[] = {"ca.pem",   "rec.json",   "fake.json",
                                        "tampered.json", "early.json", NULL};
    tmp_done(files);
    free(bundle);
    free(early);
    free(fake);
    free(json);
    EVP_PKEY_free(enroller);
    EVP_PKEY_free(attacker);
    free(c);
    free(cert);
    free(genuine);
    free(forged);
    free(issuer);
    free(root);
    free(ek);
    sw_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swtpm_quote), cmocka_unit_test(test_swtpm_negative),
        cmocka_unit_test(test_container),   cmocka_unit_test(test_enroll_recorded),
        cmocka_unit_test(test_kdfa),        cmocka_unit_test(test_trustee_generic),
        cmocka_unit_test(test_azure_snp),   cmocka_unit_test(test_azure_snp_bundle),
        cmocka_unit_test(test_azure_tdx),   cmocka_unit_test(test_forged_ak_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
