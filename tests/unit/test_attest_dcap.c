/* SGX and TDX DCAP verifier against the real quotes and collateral in
 * testvectors/attestation/{sgx-dcap,tdx} (see their PROVENANCE.md). */
#include "test_attest_util.c"

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>

#include "mt_attest_int.h"
#include "mt_dcap_coll.h"
#include "mt_util.h"
#include "mt_x5.h"

#define TODAY "2026-11-23T00:00:00Z"
#define AT_QVL_SGX "2025-06-20T00:00:00Z" /* 2025-06-19T10:56:11Z .. 2025-07-19T10:01:18Z */
#define AT_QVL_TDX "2025-06-20T00:00:00Z" /* 2025-06-19T10:32:27Z .. 2025-07-19T10:00:35Z */
#define AT_QVL_OUTDATED "2026-02-19T00:00:00Z"
#define AT_GOTDX "2023-07-01T00:00:00Z"
#define AT_GOTDX_V5 "2026-02-03T00:00:00Z"

static const tv_item QVL_SGX_COLL[] = {
    {MT_COLL_DCAP_BUNDLE, "sgx-dcap/dcapqvl-sgx-quote-collateral.json"}, {0, NULL}};
static const tv_item QVL_TDX_COLL[] = {
    {MT_COLL_DCAP_BUNDLE, "tdx/dcapqvl-tdx-quote-collateral.json"}, {0, NULL}};
static const tv_item QVL_OUTDATED_COLL[] = {
    {MT_COLL_DCAP_BUNDLE, "tdx/dcapqvl-tdx-quote-outdated-collateral.json"}, {0, NULL}};
static const tv_item GOTDX_COLL[] = {
    {MT_COLL_TCB_INFO, "tdx/gotdxguest-tcbinfo-response.json"},
    {MT_COLL_TCB_INFO_CHAIN, "tdx/gotdxguest-tcbinfo-issuer-chain.pem"},
    {MT_COLL_QE_IDENTITY, "tdx/gotdxguest-qeidentity-response.json"},
    {MT_COLL_PCK_CRL, "tdx/gotdxguest-pckcrl.der"},
    {MT_COLL_ROOT_CRL, "tdx/gotdxguest-rootcrl.der"},
    {0, NULL}};
static const tv_item GOTDX_V5_COLL[] = {
    {MT_COLL_TCB_INFO, "tdx/gotdxguest-tcbinfo-response-v5.json"},
    {MT_COLL_TCB_INFO_CHAIN, "tdx/gotdxguest-tcbinfo-issuer-chain.pem"},
    {0, NULL}};

/* go-tdx-guest appended "\nextra bytes(only for testing purpose)\n" to its
 * v4 quote; the quote by its own length fields is the first 4935 bytes. The
 * raw file is rejected (test_tdx_gotdx_trailing); the others use the quote. */
#define GOTDX_V4 "tdx/gotdxguest-quote-v4-spr-e4.dat"
static size_t own_len(const char *file, size_t len)
{
    return strcmp(file, GOTDX_V4) == 0 && len > 4935 ? 4935 : len;
}

/* The newer Intel SGX TCB Signing chain (valid to 2032), from a 2026 bundle:
 * the 2018 one in gotdxguest-tcbinfo-issuer-chain.pem expired 2025-05-21. */
static mt_attest_collateral *gotdx_v5_coll(bool with_qe)
{
    size_t n;
    uint8_t *b = tv_read("tdx/dcapqvl-tdx-quote-outdated-collateral.json", &n);
    json_error_t je;
    json_t *j = json_loadb((const char *)b, n, 0, &je);
    assert_non_null(j);
    const char *chain = json_string_value(json_object_get(j, "tcb_info_issuer_chain"));
    assert_non_null(chain);
    tv_item items[] = {{MT_COLL_TCB_INFO, "tdx/gotdxguest-tcbinfo-response-v5.json"},
                       {with_qe ? MT_COLL_QE_IDENTITY : 0, with_qe ? "tdx/gotdxguest-qeidentity-response.json" : NULL},
                       {0, NULL}};
    mt_attest_collateral *c = tv_coll(items);
    assert_int_equal(mt_attest_collateral_add(c, MT_COLL_TCB_INFO_CHAIN, (const uint8_t *)chain,
                                              strlen(chain), NULL),
                     MT_OK);
    json_decref(j);
    free(b);
    return c;
}

/* Verifies a quote file with a collateral list; `mut` may alter the quote. */
static mt_status run(mt_attest_kind kind, const char *quote, const tv_item *coll, const char *at,
                     long off, int setval, mt_attest_claims *cl, mt_err *err)
{
    size_t len;
    uint8_t *q = tv_read(quote, &len);
    len = own_len(quote, len);
    if (off >= 0)
        q[off] = setval >= 0 ? (uint8_t)setval : (uint8_t)(q[off] ^ 0x01);
    mt_attest_collateral *c = coll ? tv_coll(coll) : NULL;
    mt_status st = mt_attest_verify(kind, q, len, c, tv_time(at), cl, err);
    mt_attest_collateral_free(c);
    free(q);
    return st;
}

static void expect_ok(mt_attest_kind kind, const char *quote, const tv_item *coll, const char *at,
                      mt_attest_claims *cl)
{
    mt_err err = {0};
    mt_status st = run(kind, quote, coll, at, -1, -1, cl, &err);
    if (st != MT_OK)
        fail_msg("%s: expected success, got %s: %s", quote, mt_status_name(st), err.msg);
    tv_print_claims(quote, cl);
}

static void expect_fail(mt_attest_kind kind, const char *quote, const tv_item *coll,
                        const char *at, long off, int setval, mt_status want, const char *msg)
{
    mt_attest_claims cl;
    mt_err err = {0};
    mt_status st = run(kind, quote, coll, at, off, setval, &cl, &err);
    if (st == MT_OK)
        fail_msg("%s (byte 0x%lx): expected failure \"%s\", but it verified", quote, off, msg);
    if (want != MT_OK && st != want)
        fail_msg("%s: expected %s, got %s: %s", quote, mt_status_name(want), mt_status_name(st),
                 err.msg);
    tv_assert_msg(&err, msg);
}

static void assert_rd_prefix(const mt_attest_claims *cl, const char *hex)
{
    char got[129];
    mt_hex_encode(cl->report_data, 64, got);
    if (strncmp(got, hex, strlen(hex)) != 0)
        fail_msg("report_data: expected %s..., got %s", hex, got);
}

static void assert_meas_prefix(const mt_attest_claims *cl, const char *name, const char *hex)
{
    const mt_attest_measurement *m = mt_attest_claims_measurement(cl, name);
    assert_non_null(m);
    char got[129];
    mt_hex_encode(m->value, m->len, got);
    if (strncmp(got, hex, strlen(hex)) != 0)
        fail_msg("%s: expected %s..., got %s", name, hex, got);
}

/* ---- SGX ----------------------------------------------------------------- */

static void test_sgx_qvl(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(MT_ATTEST_SGX, "sgx-dcap/dcapqvl-sgx-quote.dat", QVL_SGX_COLL, AT_QVL_SGX, &cl);
    assert_int_equal(cl.kind, MT_ATTEST_SGX);
    tv_assert_meas(&cl, "mrenclave", "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb");
    tv_assert_meas(&cl, "mrsigner", "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6");
    tv_assert_meas(&cl, "fmspc", "00a067110000");
    assert_int_equal(cl.signer_len, 32);
    uint8_t rd[64] = "Hello, world!";
    assert_memory_equal(cl.report_data, rd, 64);
    assert_false(cl.debug);
    const mt_attest_measurement *attr = mt_attest_claims_measurement(&cl, "attributes");
    assert_int_equal(attr->value[0], 0x05); /* INIT | MODE64BIT, DEBUG clear */
    tv_assert_svn(&cl, "isv_prod_id", 0);
    tv_assert_svn(&cl, "isv_svn", 0);
    tv_assert_svn(&cl, "pck.pcesvn", 13);
    tv_assert_svn(&cl, "qe.isv_svn", 10);
    tv_assert_svn(&cl, "qe_tcb_status", MT_TCB_UP_TO_DATE);
    assert_int_equal(cl.tcb_status, MT_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
    assert_int_equal(cl.n_advisories, 2);
    assert_true(mt_attest_claims_has_advisory(&cl, "INTEL-SA-00289"));
    assert_true(mt_attest_claims_has_advisory(&cl, "INTEL-SA-00615"));
    assert_int_equal(cl.checked, MT_ATTEST_CHECKED_TCB | MT_ATTEST_CHECKED_REVOCATION |
                                     MT_ATTEST_CHECKED_QE_IDENTITY);
    assert_string_equal(cl.product, "SGX FMSPC 00a067110000");
}

static void test_sgx_occlum(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(MT_ATTEST_SGX, "sgx-dcap/trustee-occlum-quote.dat", NULL, TODAY, &cl);
    tv_assert_meas(&cl, "mrenclave", "8f173e4613ff05c52aaf04162d234edae8c9977eae47eb2299ae16a553011c68");
    tv_assert_meas(&cl, "mrsigner", "83d719e77deaca1470f6baf62a4d774303c899db69020f9c70ee1dfc08c7ce9e");
    tv_assert_meas(&cl, "fmspc", "00606a000000");
    uint8_t rd[64] = "test";
    assert_memory_equal(cl.report_data, rd, 64);
    assert_true(cl.debug); /* attributes 07..: a DEBUG enclave */
    assert_int_equal(cl.tcb_status, MT_TCB_NOT_EVALUATED);
    assert_int_equal(cl.checked, 0);
}

/* Flipping a byte of each field that matters in the SGX quote. */
static void test_sgx_flips(void **state)
{
    TV_REQUIRE();
    const char *Q = "sgx-dcap/dcapqvl-sgx-quote.dat";
    static const struct {
        long off;
        const char *msg;
    } f[] = {
        {112, "attestation key signature over the quote does not verify"},      /* MRENCLAVE */
        {176, "attestation key signature over the quote does not verify"},      /* MRSIGNER */
        {368, "attestation key signature over the quote does not verify"},      /* report_data */
        {96, "attestation key signature over the quote does not verify"},       /* attributes */
        {48 + 258, "attestation key signature over the quote does not verify"}, /* isv_svn */
        {8, "attestation key signature over the quote does not verify"},        /* qe_svn */
        {436, "attestation key signature over the quote does not verify"},      /* signature */
        {436 + 64, "QE report data does not bind the attestation key"},         /* att key */
        {436 + 128 + 100, "PCK signature over the QE report does not verify"}, /* QE report */
        {436 + 128 + 384, "PCK signature over the QE report does not verify"}, /* QE sig */
        {436 + 128 + 384 + 64 + 2, "QE report data does not bind"},             /* auth data */
        {20, "QE vendor id is not Intel's"},
        {2, "unsupported attestation key type"},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        expect_fail(MT_ATTEST_SGX, Q, QVL_SGX_COLL, AT_QVL_SGX, f[i].off, -1, MT_OK, f[i].msg);
}

/* ---- TDX ----------------------------------------------------------------- */

static void test_tdx_qvl(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", QVL_TDX_COLL, AT_QVL_TDX, &cl);
    assert_int_equal(cl.kind, MT_ATTEST_TDX);
    assert_meas_prefix(&cl, "mrtd", "91eb2b44d141d4ec");
    assert_rd_prefix(&cl, "9a9d48e7");
    assert_rd_prefix(&cl, "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481"
                          "601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20");
    assert_int_equal(cl.tcb_status, MT_TCB_UP_TO_DATE);
    assert_int_equal(cl.n_advisories, 0);
    assert_int_equal(cl.checked, MT_ATTEST_CHECKED_TCB | MT_ATTEST_CHECKED_REVOCATION |
                                     MT_ATTEST_CHECKED_QE_IDENTITY);
    tv_assert_svn(&cl, "tdx_module.major", 1);
    assert_false(cl.debug);
    assert_non_null(mt_attest_claims_measurement(&cl, "rtmr3"));
}

/* PROVENANCE: PCK SGX component 8 = 3 while every level needs >= 5. */
static void test_tdx_outdated_rejected(void **state)
{
    TV_REQUIRE();
    expect_fail(MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote-outdated.dat", QVL_OUTDATED_COLL,
                AT_QVL_OUTDATED, -1, -1, MT_EAUTH, "no TCB level of the TCB info matches");
    /* Without collateral its signatures and chain still verify. */
    mt_attest_claims cl;
    expect_ok(MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote-outdated.dat", NULL, AT_QVL_OUTDATED, &cl);
    assert_meas_prefix(&cl, "mrtd", "273828c46252fcbd");
    assert_rd_prefix(&cl, "d2142b64");
    uint8_t zero[32] = {0};
    assert_memory_equal(cl.report_data + 32, zero, 32);
    const mt_attest_measurement *comps = mt_attest_claims_measurement(&cl, "pck.tcb_components");
    assert_int_equal(comps->value[7], 3);
    tv_assert_svn(&cl, "quote_version", 5);
}

/* The SPR E4 platform's PCK components (3,3,2,2,2,1,0,2) are below both
 * levels of the 2023 TCB info (5,5,2,2,3,1,0,3): no level matches, so the
 * TCB evaluation rejects it, as for dcapqvl-tdx-quote-outdated. Everything
 * else (signatures, PCK chain with both CRLs, QE identity) verifies. */
static const tv_item GOTDX_NO_TCB[] = {
    {MT_COLL_QE_IDENTITY, "tdx/gotdxguest-qeidentity-response.json"},
    {MT_COLL_QE_IDENTITY_CHAIN, "tdx/gotdxguest-tcbinfo-issuer-chain.pem"},
    {MT_COLL_PCK_CRL, "tdx/gotdxguest-pckcrl.der"},
    {MT_COLL_ROOT_CRL, "tdx/gotdxguest-rootcrl.der"},
    {0, NULL}};

static void test_tdx_gotdx_v4(void **state)
{
    TV_REQUIRE();
    expect_fail(MT_ATTEST_TDX, GOTDX_V4, GOTDX_COLL, AT_GOTDX, -1, -1, MT_EAUTH,
                "no TCB level of the TCB info matches the platform (PCK SGX components "
                "03030202020100020000000000000000, PCESVN 11");
    mt_attest_claims cl;
    expect_ok(MT_ATTEST_TDX, GOTDX_V4, GOTDX_NO_TCB, AT_GOTDX, &cl);
    assert_meas_prefix(&cl, "mrtd", "6363b8043668a3ad");
    assert_rd_prefix(&cl, "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1e"
                          "ed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113");
    tv_assert_meas(&cl, "fmspc", "50806f000000");
    assert_int_equal(cl.checked, MT_ATTEST_CHECKED_REVOCATION | MT_ATTEST_CHECKED_QE_IDENTITY);
    assert_int_equal(cl.tcb_status, MT_TCB_NOT_EVALUATED);
    tv_assert_svn(&cl, "qe_tcb_status", MT_TCB_UP_TO_DATE);
    tv_assert_svn(&cl, "tdx_module.major", 0); /* TDX 1.0: no module rule */
}

/* go-tdx-guest's tamper recipes (byte offset -> value -> failure). */
static void test_tdx_gotdx_tamper(void **state)
{
    TV_REQUIRE();
    const char *Q = "tdx/gotdxguest-quote-v4-spr-e4.dat";
    expect_fail(MT_ATTEST_TDX, Q, GOTDX_COLL, AT_GOTDX, 0x00, 3, MT_EINVAL,
                "unsupported TDX quote version 3");
    /* sig_data_len 0x10cb -> 0x1010: the inner sizes no longer add up. */
    expect_fail(MT_ATTEST_TDX, Q, GOTDX_COLL, AT_GOTDX, 0x278, 0x10, MT_EINVAL,
                "does not fill the 3978 bytes of signature data left");
    expect_fail(MT_ATTEST_TDX, Q, GOTDX_COLL, AT_GOTDX, 0x279, 0x32, MT_EINVAL,
                "quote signature data length 13003 exceeds the 4299 bytes left");
    expect_fail(MT_ATTEST_TDX, Q, GOTDX_NO_TCB, AT_GOTDX, 0x1E, 0x32, MT_EAUTH,
                "attestation key signature over the quote does not verify");
    expect_fail(MT_ATTEST_TDX, Q, GOTDX_NO_TCB, AT_GOTDX, 0x3C, 0x32, MT_EAUTH,
                "attestation key signature over the quote does not verify");
    expect_fail(MT_ATTEST_TDX, Q, GOTDX_NO_TCB, AT_GOTDX, 0xB77, 0x32, MT_EAUTH,
                "certificate signature failure (depth 0");
    expect_fail(MT_ATTEST_TDX, Q, GOTDX_NO_TCB, AT_GOTDX, 0xF5F, 0x32, MT_EAUTH,
                "certificate signature failure (depth 1");
    expect_fail(MT_ATTEST_TDX, Q, GOTDX_NO_TCB, AT_GOTDX, 0x1329, 0x32, MT_EAUTH,
                "does not end in the pinned Intel SGX Root CA");
}

static void test_tdx_gotdx_trailing(void **state)
{
    TV_REQUIRE();
    size_t len;
    uint8_t *q = tv_read(GOTDX_V4, &len);
    assert_int_equal(len, 4974);
    mt_attest_claims cl;
    mt_err err = {0};
    assert_int_equal(mt_attest_verify(MT_ATTEST_TDX, q, len, NULL, tv_time(AT_GOTDX), &cl, &err),
                     MT_EINVAL);
    tv_assert_msg(&err, "quote has 39 trailing bytes that are not zero");
    free(q);
}

static void test_tdx_gotdx_v5(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    mt_err err = {0};
    size_t len;
    uint8_t *q = tv_read("tdx/gotdxguest-quote-v5.dat", &len);
    mt_attest_collateral *c = gotdx_v5_coll(false);
    mt_status st = mt_attest_verify(MT_ATTEST_TDX, q, len, c, tv_time(AT_GOTDX_V5), &cl, &err);
    mt_attest_collateral_free(c);
    if (st != MT_OK)
        fail_msg("gotdxguest v5: %s", err.msg);
    tv_print_claims("tdx/gotdxguest-quote-v5.dat", &cl);
    assert_meas_prefix(&cl, "mrtd", "7348651a34b2d2d3");
    assert_rd_prefix(&cl, "945eaacf");
    assert_int_equal(cl.checked, MT_ATTEST_CHECKED_TCB); /* QE identity and CRLs expired: not given */
    tv_assert_svn(&cl, "tdx_module.major", 1);           /* TDX 1.5: module rule applies */
    assert_non_null(mt_attest_claims_measurement(&cl, "mrservicetd"));
    /* The 2023 QE identity is expired at that time. */
    c = gotdx_v5_coll(true);
    assert_int_equal(mt_attest_verify(MT_ATTEST_TDX, q, len, c, tv_time(AT_GOTDX_V5), &cl, &err),
                     MT_EAUTH);
    mt_attest_collateral_free(c);
    free(q);
    tv_assert_msg(&err, "QE identity expired at 2023-07-08T07:24:59Z, verification time 2026-02-03T00:00:00Z");
    /* With the 2018 TCB Signing chain, which expired 2025-05-21. */
    expect_fail(MT_ATTEST_TDX, "tdx/gotdxguest-quote-v5.dat", GOTDX_V5_COLL, AT_GOTDX_V5, -1, -1,
                MT_EAUTH, "certificate has expired (depth 0, CN=Intel SGX TCB Signing");
}

/* Quotes without collateral: signatures, binding and PCK chain only. */
static void test_tdx_no_collateral(void **state)
{
    TV_REQUIRE();
    static const struct {
        const char *file, *mrtd, *rd;
        bool debug;
    } q[] = {
        {"tdx/trustee-tdx-quote-4.dat", "705ee9381b8633a9", "7c71fe2c", true},
        {"tdx/trustee-tdx-quote-5.dat", "dfba221b", "6d6ab13b", false},
        {"tdx/trustee-tdx-quote-6.dat", "21e8dead", "26cae1c7", false},
        {"tdx/ccel/cos-113-tdx-quote.dat", "dae67181d3d65e07", "00000000000000000000", false},
        {"tpm2/azure-tdx-vtpm/td-quote.bin", "024a32b070383331", "9734504f", false},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        mt_attest_claims cl;
        expect_ok(MT_ATTEST_TDX, q[i].file, NULL, TODAY, &cl);
        assert_meas_prefix(&cl, "mrtd", q[i].mrtd);
        assert_rd_prefix(&cl, q[i].rd);
        assert_int_equal(cl.debug, q[i].debug);
        assert_int_equal(cl.tcb_status, MT_TCB_NOT_EVALUATED);
    }
    /* trustee-4 has FMSPC 50806f000000: evaluate it with the 2023 TCB info. */
    mt_attest_claims cl;
    tv_item tcb[] = {{MT_COLL_TCB_INFO, "tdx/gotdxguest-tcbinfo-response.json"},
                     {MT_COLL_TCB_INFO_CHAIN, "tdx/gotdxguest-tcbinfo-issuer-chain.pem"},
                     {0, NULL}};
    mt_err err = {0};
    mt_status st = run(MT_ATTEST_TDX, "tdx/trustee-tdx-quote-4.dat", tcb, AT_GOTDX, -1, -1, &cl, &err);
    fprintf(stderr, "    trustee-tdx-quote-4 with the 2023 TCB info: %s %s\n",
            st == MT_OK ? mt_attest_tcb_status_name(cl.tcb_status) : "rejected:", st == MT_OK ? "" : err.msg);
    if (st == MT_OK)
        assert_int_not_equal(cl.tcb_status, MT_TCB_NOT_EVALUATED);
}

static void test_tdx_flips(void **state)
{
    TV_REQUIRE();
    const char *Q = "tdx/dcapqvl-tdx-quote.dat";
    static const long offs[] = {
        48 + 0,   /* tee_tcb_svn */
        48 + 16,  /* mrseam */
        48 + 120, /* td_attributes (DEBUG) */
        184,      /* MRTD */
        48 + 328, /* RTMR0 */
        48 + 472, /* RTMR3 */
        568,      /* report_data */
        631,      /* report_data end */
        636,      /* signature */
    };
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++)
        expect_fail(MT_ATTEST_TDX, Q, QVL_TDX_COLL, AT_QVL_TDX, offs[i], -1, MT_EAUTH,
                    "attestation key signature over the quote does not verify");
    /* The trailing padding is zero; a non-zero byte there is rejected. */
    expect_fail(MT_ATTEST_TDX, Q, QVL_TDX_COLL, AT_QVL_TDX, 5000, -1, MT_EINVAL,
                "trailing bytes that are not zero");
}

/* ---- collateral ------------------------------------------------------------ */

/* A copy of a bundle with one JSON string value edited (first occurrence of
 * `from` replaced by `to`, same length). */
static mt_attest_collateral *edited_bundle(const char *rel, const char *from, const char *to)
{
    size_t n;
    uint8_t *b = tv_read(rel, &n);
    char *p = strstr((char *)b, from);
    assert_non_null(p);
    assert_int_equal(strlen(from), strlen(to));
    memcpy(p, to, strlen(to));
    mt_attest_collateral *c = mt_attest_collateral_new();
    assert_int_equal(mt_attest_collateral_add(c, MT_COLL_DCAP_BUNDLE, b, n, NULL), MT_OK);
    free(b);
    return c;
}

static mt_status run_coll(const char *quote, mt_attest_kind kind, mt_attest_collateral *c,
                          const char *at, mt_err *err)
{
    size_t len;
    uint8_t *q = tv_read(quote, &len);
    mt_attest_claims cl;
    mt_status st = mt_attest_verify(kind, q, len, c, tv_time(at), &cl, err);
    if (st != MT_EAUTH)
        fprintf(stderr, "    run_coll: %s\n", err->msg);
    free(q);
    mt_attest_collateral_free(c);
    return st;
}

static void test_collateral_tamper(void **state)
{
    TV_REQUIRE();
    const char *Q = "sgx-dcap/dcapqvl-sgx-quote.dat", *B = "sgx-dcap/dcapqvl-sgx-quote-collateral.json";
    mt_err err = {0};
    /* TCB info: a changed TCB level status breaks its signature. */
    assert_int_equal(run_coll(Q, MT_ATTEST_SGX,
                              edited_bundle(B, "\\\"tcbEvaluationDataNumber\\\":17",
                                            "\\\"tcbEvaluationDataNumber\\\":18"),
                              AT_QVL_SGX, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "TCB info signature does not verify");
    /* TCB info signature bytes. */
    assert_int_equal(run_coll(Q, MT_ATTEST_SGX, edited_bundle(B, "\"tcb_info_signature\": \"9a", "\"tcb_info_signature\": \"9b"),
                              AT_QVL_SGX, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "TCB info signature does not verify");
    /* QE identity. */
    assert_int_equal(run_coll(Q, MT_ATTEST_SGX, edited_bundle(B, "\"qe_identity_signature\": \"f1", "\"qe_identity_signature\": \"f2"),
                              AT_QVL_SGX, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "QE identity signature does not verify");
    /* PCK CRL signature (last hex digit of the DER). */
    {
        size_t n;
        uint8_t *b = tv_read(B, &n);
        char *p = strstr((char *)b, "\"pck_crl\": \"");
        assert_non_null(p);
        char *end = strchr(p + 12, '"');
        end[-1] = end[-1] == '0' ? '1' : '0';
        mt_attest_collateral *c = mt_attest_collateral_new();
        assert_int_equal(mt_attest_collateral_add(c, MT_COLL_DCAP_BUNDLE, b, n, NULL), MT_OK);
        free(b);
        assert_int_equal(run_coll(Q, MT_ATTEST_SGX, c, AT_QVL_SGX, &err), MT_EAUTH);
        tv_assert_msg(&err, "CRL signature failure");
    }
    /* The TDX bundle for the SGX quote. */
    expect_fail(MT_ATTEST_SGX, Q, QVL_TDX_COLL, AT_QVL_SGX, -1, -1, MT_EAUTH, "");
    /* The 2026 bundle (FMSPC 90c06f000000) for the dcap-qvl TDX quote (b0c06f000000). */
    expect_fail(MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", QVL_OUTDATED_COLL, AT_QVL_OUTDATED, -1,
                -1, MT_EAUTH, "TCB info is for FMSPC 90c06f000000, the PCK certificate has b0c06f000000");
    /* Kind mismatch. */
    expect_fail(MT_ATTEST_SGX, "tdx/dcapqvl-tdx-quote.dat", NULL, TODAY, -1, -1, MT_EINVAL,
                "quote is a TDX quote, not SGX");
    /* Only one of the two CRLs. */
    tv_item one_crl[] = {{MT_COLL_PCK_CRL, "tdx/gotdxguest-pckcrl.der"}, {0, NULL}};
    expect_fail(MT_ATTEST_TDX, "tdx/gotdxguest-quote-v4-spr-e4.dat", one_crl, AT_GOTDX, -1, -1,
                MT_EINVAL, "give both the PCK CRL and the root CA CRL");
}

/* Expired collateral at today's date. */
static void test_expired_today(void **state)
{
    TV_REQUIRE();
    expect_fail(MT_ATTEST_SGX, "sgx-dcap/dcapqvl-sgx-quote.dat", QVL_SGX_COLL, TODAY, -1, -1,
                MT_EAUTH, "expired");
    expect_fail(MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", QVL_TDX_COLL, TODAY, -1, -1, MT_EAUTH,
                "expired");
    expect_fail(MT_ATTEST_TDX, GOTDX_V4, GOTDX_NO_TCB, TODAY, -1, -1,
                MT_EAUTH, "expired");
    /* TCB info alone (no CRLs): its own nextUpdate. */
    size_t len;
    uint8_t *q = tv_read("tdx/gotdxguest-quote-v5.dat", &len);
    mt_attest_collateral *c = gotdx_v5_coll(false);
    mt_attest_claims cl;
    mt_err err = {0};
    assert_int_equal(mt_attest_verify(MT_ATTEST_TDX, q, len, c, tv_time(TODAY), &cl, &err), MT_EAUTH);
    tv_assert_msg(&err, "TCB info expired at 2026-03-03T");
    mt_attest_collateral_free(c);
    free(q);
    /* Just after the window of the dcap-qvl TDX collateral. */
    expect_fail(MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", QVL_TDX_COLL, "2025-07-19T10:16:03Z",
                -1, -1, MT_EAUTH, "expired");
}


/* ---- verification cache of a collateral handle (mt_dcap_cache) ------------- */

/* Verifies a quote file (byte `off` set to setval, or flipped when setval < 0;
 * off < 0: unchanged) with the handle c, which the caller keeps. */
static mt_status verify_with(mt_attest_collateral *c, mt_attest_kind kind, const char *quote,
                             long off, int setval, const char *at, mt_attest_claims *cl,
                             mt_err *err)
{
    size_t len;
    uint8_t *q = tv_read(quote, &len);
    len = own_len(quote, len);
    if (off >= 0)
        q[off] = setval >= 0 ? (uint8_t)setval : (uint8_t)(q[off] ^ 0x01);
    mt_err_clear(err);
    mt_status st = mt_attest_verify(kind, q, len, c, tv_time(at), cl, err);
    free(q);
    return st;
}

static mt_dcap_cache_stats cache_stats(const mt_attest_collateral *c)
{
    mt_dcap_cache_stats s;
    mt_dcap_cache_stats_get(mt_attest_coll_dcap_cache(c), &s);
    return s;
}

/* The outcome with the warm handle equals the outcome with a fresh one:
 * same status, same message, and on success the same claims, byte for byte. */
static void assert_same_as_fresh(mt_attest_collateral *warm, const tv_item *items,
                                 mt_attest_kind kind, const char *quote, long off, int setval,
                                 const char *at)
{
    mt_attest_claims *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    mt_err ea, eb;
    mt_attest_collateral *fresh = tv_coll(items);
    mt_status sa = verify_with(fresh, kind, quote, off, setval, at, a, &ea);
    mt_status sb = verify_with(warm, kind, quote, off, setval, at, b, &eb);
    mt_attest_collateral_free(fresh);
    if (sa != sb || strcmp(ea.msg, eb.msg) != 0)
        fail_msg("%s byte %ld at %s: fresh handle gave %s \"%s\", warm handle %s \"%s\"", quote,
                 off, at, mt_status_name(sa), ea.msg, mt_status_name(sb), eb.msg);
    if (memcmp(a, b, sizeof *a) != 0)
        fail_msg("%s at %s: the warm handle's claims differ from a fresh handle's", quote, at);
    free(a);
    free(b);
}

static const struct {
    mt_attest_kind kind;
    const char *quote;
    const tv_item *coll;
    const char *at;
} CACHE_CASES[] = {
    {MT_ATTEST_SGX, "sgx-dcap/dcapqvl-sgx-quote.dat", QVL_SGX_COLL, AT_QVL_SGX},
    {MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", QVL_TDX_COLL, AT_QVL_TDX},
    {MT_ATTEST_TDX, GOTDX_V4, GOTDX_NO_TCB, AT_GOTDX},       /* PCS items, DER CRLs */
    {MT_ATTEST_TDX, "tdx/trustee-tdx-quote-4.dat", NULL, TODAY}, /* empty handle */
};
#define N_CACHE_CASES (sizeof CACHE_CASES / sizeof CACHE_CASES[0])

/* (a) A second and third verification with the same handle return the claims
 * of the first (and of a fresh handle), and come from the cache. */
static void test_cache_same_claims(void **state)
{
    TV_REQUIRE();
    for (size_t i = 0; i < N_CACHE_CASES; i++) {
        mt_attest_collateral *c = tv_coll(CACHE_CASES[i].coll);
        mt_attest_claims *first = malloc(sizeof *first), *again = malloc(sizeof *again);
        assert_non_null(first);
        assert_non_null(again);
        mt_err err;
        assert_int_equal(verify_with(c, CACHE_CASES[i].kind, CACHE_CASES[i].quote, -1, -1,
                                     CACHE_CASES[i].at, first, &err),
                         MT_OK);
        mt_dcap_cache_stats s1 = cache_stats(c);
        assert_int_equal(s1.pck_hits, 0);
        assert_int_equal(s1.pck_stored, 1);
        assert_int_equal(s1.qe_hits, 0);
        for (int k = 0; k < 2; k++) {
            assert_int_equal(verify_with(c, CACHE_CASES[i].kind, CACHE_CASES[i].quote, -1, -1,
                                         CACHE_CASES[i].at, again, &err),
                             MT_OK);
            assert_memory_equal(first, again, sizeof *first);
        }
        mt_dcap_cache_stats s2 = cache_stats(c);
        assert_int_equal(s2.pck_hits, 2);
        assert_int_equal(s2.pck_stored, 1);
        assert_int_equal(s2.qe_hits, 2); /* QE report and attestation key remembered */
        assert_int_equal(s2.chain_verified, s1.chain_verified); /* no issuer chain again */
        assert_int_equal(s2.chain_hits, 2 * s1.chain_verified);
        assert_same_as_fresh(c, CACHE_CASES[i].coll, CACHE_CASES[i].kind, CACHE_CASES[i].quote,
                             -1, -1, CACHE_CASES[i].at);
        free(first);
        free(again);
        mt_attest_collateral_free(c);
    }
}

/* (b) With a warm handle, a verification at a time outside the collateral's
 * windows fails exactly as with a fresh handle, and the handle still
 * verifies at the good time afterwards. */
static void test_cache_expiry(void **state)
{
    TV_REQUIRE();
    static const char *const times[] = {
        TODAY,                  /* everything expired */
        "2025-07-19T10:16:03Z", /* TCB info / QE identity expired, certificates valid */
        "2025-06-19T00:00:00Z", /* before the dcap-qvl TCB info was issued */
        "2023-08-01T00:00:00Z", /* after the go-tdx-guest collateral */
        "2060-01-01T00:00:00Z", /* after the Intel root */
        "2010-01-01T00:00:00Z", /* before every certificate */
    };
    for (size_t i = 0; i < N_CACHE_CASES; i++) {
        mt_attest_collateral *c = tv_coll(CACHE_CASES[i].coll);
        mt_attest_claims cl;
        mt_err err;
        assert_int_equal(verify_with(c, CACHE_CASES[i].kind, CACHE_CASES[i].quote, -1, -1,
                                     CACHE_CASES[i].at, &cl, &err),
                         MT_OK);
        for (size_t t = 0; t < sizeof times / sizeof times[0]; t++) {
            if (strcmp(times[t], CACHE_CASES[i].at) == 0)
                continue;
            assert_same_as_fresh(c, CACHE_CASES[i].coll, CACHE_CASES[i].kind,
                                 CACHE_CASES[i].quote, -1, -1, times[t]);
            assert_same_as_fresh(c, CACHE_CASES[i].coll, CACHE_CASES[i].kind,
                                 CACHE_CASES[i].quote, -1, -1, CACHE_CASES[i].at);
        }
        mt_attest_collateral_free(c);
    }
    /* The recorded collateral fails at today's date whether warm or not. */
    mt_attest_collateral *c = tv_coll(QVL_TDX_COLL);
    mt_attest_claims cl;
    mt_err err;
    assert_int_equal(verify_with(c, MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", -1, -1,
                                 AT_QVL_TDX, &cl, &err),
                     MT_OK);
    assert_int_equal(verify_with(c, MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", -1, -1,
                                 "2025-07-19T10:16:03Z", &cl, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "expired");
    assert_int_equal(cl.tcb_status, MT_TCB_NOT_EVALUATED); /* zeroed on failure */
    assert_int_equal(verify_with(c, MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", -1, -1, TODAY,
                                 &cl, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "expired");
    mt_attest_collateral_free(c);
}

/* (c) With a warm handle, tampered evidence is rejected exactly as with a
 * fresh one, and does not disturb what the handle remembers. */
static void test_cache_tamper(void **state)
{
    TV_REQUIRE();
    static const struct {
        size_t c;
        long off;
        int val;
    } t[] = {
        /* dcap-qvl SGX: body, signature, attestation key, QE report, QE
         * signature, auth data, QE vendor, PCK chain (leaf, intermediate, root). */
        {0, 112, -1}, {0, 368, -1}, {0, 436, -1}, {0, 436 + 64, -1},
        {0, 436 + 128 + 100, -1}, {0, 436 + 128 + 384, -1}, {0, 436 + 128 + 384 + 64 + 2, -1},
        {0, 20, -1}, {0, 1200, -1}, {0, 2500, -1}, {0, 4000, -1},
        /* dcap-qvl TDX: MRTD, RTMR3, report_data, signature, padding. */
        {1, 184, -1}, {1, 48 + 472, -1}, {1, 568, -1}, {1, 636, -1}, {1, 5000, -1},
        /* go-tdx-guest recipes: signatures, PCK leaf, intermediate, root. */
        {2, 0x1E, 0x32}, {2, 0x3C, 0x32}, {2, 0xB77, 0x32}, {2, 0xF5F, 0x32}, {2, 0x1329, 0x32},
        {2, 0x278, 0x10},
    };
    mt_attest_collateral *warm[3];
    for (size_t i = 0; i < 3; i++) {
        warm[i] = tv_coll(CACHE_CASES[i].coll);
        mt_attest_claims cl;
        mt_err err;
        assert_int_equal(verify_with(warm[i], CACHE_CASES[i].kind, CACHE_CASES[i].quote, -1, -1,
                                     CACHE_CASES[i].at, &cl, &err),
                         MT_OK);
    }
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t k = t[i].c;
        mt_attest_claims cl;
        mt_err err;
        if (verify_with(warm[k], CACHE_CASES[k].kind, CACHE_CASES[k].quote, t[i].off, t[i].val,
                        CACHE_CASES[k].at, &cl, &err) == MT_OK)
            fail_msg("%s byte 0x%lx: tampered quote verified with a warm handle",
                     CACHE_CASES[k].quote, t[i].off);
        assert_same_as_fresh(warm[k], CACHE_CASES[k].coll, CACHE_CASES[k].kind,
                             CACHE_CASES[k].quote, t[i].off, t[i].val, CACHE_CASES[k].at);
    }
    for (size_t i = 0; i < 3; i++) {
        /* The tampered quotes with the remembered QE report and attestation
         * key (body, signature, report_data changes) took that path. */
        assert_true(cache_stats(warm[i]).qe_hits >= 1);
        assert_same_as_fresh(warm[i], CACHE_CASES[i].coll, CACHE_CASES[i].kind,
                             CACHE_CASES[i].quote, -1, -1, CACHE_CASES[i].at);
        mt_attest_collateral_free(warm[i]);
    }
}

/* Changing an item of a warm handle forgets what was verified with the old
 * one: a tampered TCB info is caught, the good one verifies again. */
static void test_cache_reset_on_add(void **state)
{
    TV_REQUIRE();
    const char *Q = "sgx-dcap/dcapqvl-sgx-quote.dat", *B = "sgx-dcap/dcapqvl-sgx-quote-collateral.json";
    size_t n;
    uint8_t *good = tv_read(B, &n);
    uint8_t *bad = malloc(n);
    assert_non_null(bad);
    memcpy(bad, good, n);
    char *p = strstr((char *)bad, "\\\"tcbEvaluationDataNumber\\\":17");
    assert_non_null(p);
    p[strlen("\\\"tcbEvaluationDataNumber\\\":17") - 1] = '8';
    mt_attest_collateral *c = tv_coll(QVL_SGX_COLL);
    mt_attest_claims cl;
    mt_err err;
    assert_int_equal(verify_with(c, MT_ATTEST_SGX, Q, -1, -1, AT_QVL_SGX, &cl, &err), MT_OK);
    assert_int_equal(mt_attest_collateral_add(c, MT_COLL_DCAP_BUNDLE, bad, n, &err), MT_OK);
    assert_int_equal(cache_stats(c).pck_entries, 0);
    assert_int_equal(verify_with(c, MT_ATTEST_SGX, Q, -1, -1, AT_QVL_SGX, &cl, &err), MT_EAUTH);
    tv_assert_msg(&err, "TCB info signature does not verify");
    assert_int_equal(mt_attest_collateral_add(c, MT_COLL_DCAP_BUNDLE, good, n, &err), MT_OK);
    assert_int_equal(verify_with(c, MT_ATTEST_SGX, Q, -1, -1, AT_QVL_SGX, &cl, &err), MT_OK);
    assert_int_equal(cl.checked, MT_ATTEST_CHECKED_TCB | MT_ATTEST_CHECKED_REVOCATION |
                                     MT_ATTEST_CHECKED_QE_IDENTITY);
    mt_attest_collateral_free(c);
    free(good);
    free(bad);
}

/* The PCK cache is bounded: the last byte of the certification data (a NUL
 * after the PEM chain, covered by no signature) varied 24 times gives 24
 * chain keys; the cache keeps MT_DCAP_PCK_SLOTS, and every quote verifies. */
static void test_cache_bounded(void **state)
{
    TV_REQUIRE();
    const char *Q = "sgx-dcap/dcapqvl-sgx-quote.dat";
    size_t len;
    uint8_t *q = tv_read(Q, &len);
    assert_int_equal(q[len - 1], 0);
    assert_int_equal(q[len - 2], '\n');
    mt_attest_collateral *c = tv_coll(QVL_SGX_COLL);
    mt_attest_claims *ref = malloc(sizeof *ref), *cl = malloc(sizeof *cl);
    assert_non_null(ref);
    assert_non_null(cl);
    mt_err err;
    assert_int_equal(mt_attest_verify(MT_ATTEST_SGX, q, len, c, tv_time(AT_QVL_SGX), ref, &err),
                     MT_OK);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 24; i++) {
            q[len - 1] = (uint8_t)('a' + i);
            if (mt_attest_verify(MT_ATTEST_SGX, q, len, c, tv_time(AT_QVL_SGX), cl, &err) != MT_OK)
                fail_msg("variant %d: %s", i, err.msg);
            assert_memory_equal(ref, cl, sizeof *ref);
        }
    }
    mt_dcap_cache_stats s = cache_stats(c);
    assert_int_equal(s.pck_entries, MT_DCAP_PCK_SLOTS);
    assert_int_equal(s.pck_stored, 1 + 2 * 24); /* FIFO over 24 keys: every lookup misses */
    assert_int_equal(s.pck_hits, 0);
    q[len - 1] = 'x'; /* still in the cache from the second round */
    assert_int_equal(mt_attest_verify(MT_ATTEST_SGX, q, len, c, tv_time(AT_QVL_SGX), cl, &err),
                     MT_OK);
    assert_int_equal(cache_stats(c).pck_hits, 1);
    free(ref);
    free(cl);
    mt_attest_collateral_free(c);
    free(q);
}

/* The handle's chain slots hold Intel PCK chains (SGX/TDX) and AMD SEV-SNP
 * chains. An SGX quote whose certification data is exactly what the SNP
 * verifier hashes for its key (label, signing-key kind, lengths, VCEK and
 * AMD chain) must not take the verified SNP chain: the DCAP key hashes a
 * label of its own and lookups match the slot's kind. */
static void test_cache_cross_kind(void **state)
{
    (void)state;
    TV_REQUIRE();
    size_t vl, cl, ql, rl;
    uint8_t *v = tv_read("sev-snp/gosevguest-milan-vcek.der", &vl);
    uint8_t *ch = tv_read("sev-snp/amd-ask-ark-milan-vcek.pem", &cl);
    uint8_t *rep = tv_read("sev-snp/gosevguest-milan-report.bin", &rl);
    uint8_t *quote = tv_read("sgx-dcap/dcapqvl-sgx-quote.dat", &ql);
    /* mt_snp.c chain_key's input for a VCEK-signed report */
    static const char label[] = "mesatee SEV-SNP chain v1";
    size_t hl = sizeof label + 1 + 16, pl = hl + vl + cl;
    uint8_t *pre = calloc(1, pl);
    assert_non_null(pre);
    memcpy(pre, label, sizeof label);
    for (int i = 0; i < 8; i++) {
        pre[sizeof label + 1 + i] = (uint8_t)((uint64_t)vl >> (8 * i));
        pre[sizeof label + 9 + i] = (uint8_t)((uint64_t)cl >> (8 * i));
    }
    memcpy(pre + hl, v, vl);
    memcpy(pre + hl + vl, ch, cl);
    /* The quote with its certification data replaced by pre (lengths fixed). */
    mt_dcap_quote q;
    mt_err err = {0};
    assert_int_equal(mt_dcap_quote_parse(quote, ql, &q, &err), MT_OK);
    size_t cd = (size_t)(q.cert_data - quote), nl = cd + pl;
    uint8_t *nq = malloc(nl);
    assert_non_null(nq);
    memcpy(nq, quote, cd);
    memcpy(nq + cd, pre, pl);
    uint32_t u = (uint32_t)pl;
    memcpy(nq + cd - 4, &u, 4);
    u = (uint32_t)(nl - q.signed_len - 4);
    memcpy(nq + q.signed_len, &u, 4);
    assert_int_equal(mt_dcap_quote_parse(nq, nl, &q, &err), MT_OK);
    assert_int_equal(q.cert_len, pl);

    const tv_item items[] = {{MT_COLL_AMD_VCEK, "sev-snp/gosevguest-milan-vcek.der"},
                             {MT_COLL_AMD_CHAIN, "sev-snp/amd-ask-ark-milan-vcek.pem"},
                             {MT_COLL_DCAP_BUNDLE, "sgx-dcap/dcapqvl-sgx-quote-collateral.json"},
                             {0, NULL}};
    mt_attest_collateral *c = tv_coll(items);
    int64_t at = tv_time("2025-01-01T00:00:00Z");
    mt_attest_claims *cls = malloc(sizeof *cls);
    assert_non_null(cls);
    /* The SNP chain verifies and is remembered. */
    if (mt_attest_verify(MT_ATTEST_SEV_SNP, rep, rl, c, at, cls, &err) != MT_OK)
        fail_msg("SNP report: %s", err.msg);
    mt_dcap_cache_stats s0 = cache_stats(c);
    assert_int_equal(s0.pck_stored, 1);
    assert_int_equal(s0.pck_hits, 0);
    /* The SGX quote does not find it: it fails as on a fresh handle. */
    for (int k = 0; k < 2; k++) {
        mt_attest_collateral *fresh = k ? tv_coll(items) : NULL;
        mt_err e2 = {0};
        mt_status st = mt_attest_verify(MT_ATTEST_SGX, nq, nl, k ? fresh : c, at, cls, &e2);
        assert_int_not_equal(st, MT_OK);
        if (k)
            assert_string_equal(e2.msg, err.msg);
        else
            err = e2;
        mt_attest_collateral_free(fresh);
    }
    mt_dcap_cache_stats s1 = cache_stats(c);
    assert_int_equal(s1.pck_hits, 0);
    assert_int_equal(s1.qe_hits, 0);
    assert_int_equal(s1.pck_stored, 1);
    /* The SNP chain is still there for SNP reports. */
    if (mt_attest_verify(MT_ATTEST_SEV_SNP, rep, rl, c, at, cls, &err) != MT_OK)
        fail_msg("SNP report again: %s", err.msg);
    assert_int_equal(cache_stats(c).pck_hits, 1);
    mt_attest_collateral_free(c);
    free(cls);
    free(nq);
    free(pre);
    free(quote);
    free(rep);
    free(ch);
    free(v);
}

/* The slots' kind on its own: under one key, a chain put by one verifier is
 * not found, nor given a QE report, by the other; both can live side by side. */
static void test_cache_slot_kind(void **state)
{
    (void)state;
    TV_REQUIRE();
    size_t vl;
    uint8_t *v = tv_read("sev-snp/gosevguest-milan-vcek.der", &vl);
    const uint8_t *p = v;
    X509 *a = d2i_X509(NULL, &p, (long)vl);
    assert_non_null(a);
    X509 *b = X509_dup(a);
    assert_non_null(b);
    EVP_PKEY *ak = EVP_EC_gen("P-256");
    assert_non_null(ak);
    uint8_t key[32], rep[384], sig[64], att[64];
    memset(key, 0x5a, sizeof key);
    memset(rep, 1, sizeof rep);
    memset(sig, 2, sizeof sig);
    memset(att, 3, sizeof att);
    mt_dcap_cache *c = mt_dcap_cache_new();
    assert_non_null(c);
    mt_dcap_pck snp = {.leaf = a, .root = a, .hi = 200}, got = {0};
    mt_dcap_pck intel = {.leaf = b, .root = b, .hi = 200};
    EVP_PKEY *gk = NULL;

    mt_dcap_cache_pck_put(c, MT_DCAP_CHAIN_AMD_SNP, key, &snp, 100, 200);
    assert_false(mt_dcap_cache_pck_get(c, MT_DCAP_CHAIN_INTEL_PCK, key, 150, &got));
    mt_dcap_cache_qe_put(c, MT_DCAP_CHAIN_INTEL_PCK, key, rep, sig, att, ak); /* no such chain */
    assert_false(mt_dcap_cache_qe_get(c, MT_DCAP_CHAIN_INTEL_PCK, key, rep, sig, att, &gk));
    assert_false(mt_dcap_cache_qe_get(c, MT_DCAP_CHAIN_AMD_SNP, key, rep, sig, att, &gk));
    assert_null(gk);

    mt_dcap_cache_pck_put(c, MT_DCAP_CHAIN_INTEL_PCK, key, &intel, 100, 200);
    mt_dcap_cache_qe_put(c, MT_DCAP_CHAIN_INTEL_PCK, key, rep, sig, att, ak);
    mt_dcap_cache_stats st;
    mt_dcap_cache_stats_get(c, &st);
    assert_int_equal(st.pck_entries, 2); /* the SNP chain was not replaced */
    assert_true(mt_dcap_cache_pck_get(c, MT_DCAP_CHAIN_AMD_SNP, key, 150, &got));
    assert_ptr_equal(got.leaf, a);
    X509_free(got.leaf);
    X509_free(got.root);
    assert_true(mt_dcap_cache_pck_get(c, MT_DCAP_CHAIN_INTEL_PCK, key, 150, &got));
    assert_ptr_equal(got.leaf, b);
    X509_free(got.leaf);
    X509_free(got.root);
    assert_false(mt_dcap_cache_qe_get(c, MT_DCAP_CHAIN_AMD_SNP, key, rep, sig, att, &gk));
    assert_true(mt_dcap_cache_qe_get(c, MT_DCAP_CHAIN_INTEL_PCK, key, rep, sig, att, &gk));
    assert_ptr_equal(gk, ak);
    EVP_PKEY_free(gk);
    mt_dcap_cache_stats_get(c, &st);
    assert_int_equal(st.pck_hits, 2);
    assert_int_equal(st.qe_hits, 1);

    mt_dcap_cache_free(c);
    EVP_PKEY_free(ak);
    X509_free(b);
    X509_free(a);
    free(v);
}

typedef struct {
    const mt_attest_collateral *c;
    const uint8_t *q;
    size_t len;
    int64_t at;
    const mt_attest_claims *ref;
    int failures;
} cache_thread_arg;

static void *cache_thread(void *p)
{
    cache_thread_arg *a = p;
    mt_attest_claims *cl = malloc(sizeof *cl);
    for (int i = 0; cl && i < 20; i++) {
        mt_err err;
        if (mt_attest_verify(MT_ATTEST_TDX, a->q, a->len, a->c, a->at, cl, &err) != MT_OK ||
            memcmp(cl, a->ref, sizeof *cl) != 0)
            a->failures++;
    }
    if (!cl)
        a->failures++;
    free(cl);
    return NULL;
}

/* One handle shared by threads from its first use (they race to publish). */
static void test_cache_threads(void **state)
{
    TV_REQUIRE();
    size_t len;
    uint8_t *q = tv_read("tdx/dcapqvl-tdx-quote.dat", &len);
    mt_attest_claims *ref = malloc(sizeof *ref);
    assert_non_null(ref);
    mt_attest_collateral *fresh = tv_coll(QVL_TDX_COLL);
    mt_err err;
    assert_int_equal(mt_attest_verify(MT_ATTEST_TDX, q, len, fresh, tv_time(AT_QVL_TDX), ref, &err),
                     MT_OK);
    mt_attest_collateral_free(fresh);
    mt_attest_collateral *c = tv_coll(QVL_TDX_COLL);
    pthread_t th[4];
    cache_thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (cache_thread_arg){c, q, len, tv_time(AT_QVL_TDX), ref, 0};
        assert_int_equal(pthread_create(&th[i], NULL, cache_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(a[i].failures, 0);
    }
    mt_dcap_cache_stats s = cache_stats(c);
    assert_int_equal(s.pck_hits + s.pck_stored, 80);
    assert_int_equal(s.pck_entries, 1);
    mt_attest_collateral_free(c);
    free(ref);
    free(q);
}

/* ---- issue 8, item 3: TCB info / QE identity signer role ------------------
 * Test PKI made at run time (no private key is committed): a test root
 * standing in for the pinned Intel SGX Root CA (mt_dcap_coll_evaluate takes
 * the root as an argument; the production pin stays in mt_dcap.c), a TCB
 * Signing certificate under it, and a PCK-style chain root -> "PCK Platform
 * CA" -> "PCK Certificate" whose key signs a TCB info claiming UpToDate. */

typedef struct tpki {
    EVP_PKEY *root_key, *tcb_key, *ca_key, *pck_key;
    X509 *root, *tcb, *ca, *pck, *pck_named, *tcb_direct_pck_cn, *tcb_ca, *tcb_sgxext;
} tpki;

static X509 *tcert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                   const char *bc, const char *ku, bool sgx_ext)
{
    X509 *x = X509_new();
    assert_non_null(x);
    static long serial = 100;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    ASN1_TIME_set(X509_getm_notBefore(x), 1577836800); /* 2020-01-01 */
    ASN1_TIME_set(X509_getm_notAfter(x), 2208988800);  /* 2040-01-01 */
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"Intel Corporation",
                               -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : nm);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_nconf_nid(NULL, &ctx, NID_basic_constraints, bc);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    e = X509V3_EXT_nconf_nid(NULL, &ctx, NID_key_usage, ku);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    if (sgx_ext) { /* the PCK SGX extension, an empty SEQUENCE will do */
        static const unsigned char seq[] = {0x30, 0x00};
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(os, seq, sizeof seq);
        ASN1_OBJECT *o = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
        e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
        assert_non_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        ASN1_OBJECT_free(o);
        ASN1_OCTET_STRING_free(os);
    }
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

static void tpki_make(tpki *k)
{
    k->root_key = EVP_EC_gen("P-256");
    k->tcb_key = EVP_EC_gen("P-256");
    k->ca_key = EVP_EC_gen("P-256");
    k->pck_key = EVP_EC_gen("P-256");
    assert_true(k->root_key && k->tcb_key && k->ca_key && k->pck_key);
    const char *ee = "critical,digitalSignature,nonRepudiation";
    k->root = tcert("Intel SGX Root CA", k->root_key, NULL, k->root_key, "critical,CA:TRUE",
                    "critical,keyCertSign,cRLSign", false);
    k->tcb = tcert("Intel SGX TCB Signing", k->tcb_key, k->root, k->root_key, "critical,CA:FALSE",
                   ee, false);
    k->ca = tcert("Intel SGX PCK Platform CA", k->ca_key, k->root, k->root_key,
                  "critical,CA:TRUE,pathlen:0", "critical,keyCertSign,cRLSign", false);
    k->pck = tcert("Intel SGX PCK Certificate", k->pck_key, k->ca, k->ca_key, "critical,CA:FALSE",
                   ee, true);
    /* The right name, but under the PCK CA, not the root. */
    k->pck_named = tcert("Intel SGX TCB Signing", k->pck_key, k->ca, k->ca_key,
                         "critical,CA:FALSE", ee, false);
    /* Directly under the root, but named as a PCK certificate. */
    k->tcb_direct_pck_cn = tcert("Intel SGX PCK Certificate", k->tcb_key, k->root, k->root_key,
                                 "critical,CA:FALSE", ee, false);
    /* The right name under the root, but a CA / with the PCK SGX extension. */
    k->tcb_ca = tcert("Intel SGX TCB Signing", k->tcb_key, k->root, k->root_key,
                      "critical,CA:TRUE", "critical,digitalSignature,keyCertSign", false);
    k->tcb_sgxext = tcert("Intel SGX TCB Signing", k->tcb_key, k->root, k->root_key,
                          "critical,CA:FALSE", ee, true);
}

static void tpki_free(tpki *k)
{
    X509 *c[] = {k->root, k->tcb, k->ca, k->pck, k->pck_named, k->tcb_direct_pck_cn, k->tcb_ca,
                 k->tcb_sgxext};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        X509_free(c[i]);
    EVP_PKEY_free(k->root_key);
    EVP_PKEY_free(k->tcb_key);
    EVP_PKEY_free(k->ca_key);
    EVP_PKEY_free(k->pck_key);
}

/* PEM of the given certificates, in order (malloc'd). */
static char *tpem(X509 *const *c, size_t n, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    for (size_t i = 0; i < n; i++)
        assert_int_equal(PEM_write_bio_X509(b, c[i]), 1);
    char *p;
    long l = BIO_get_mem_data(b, &p);
    char *out = malloc((size_t)l + 1);
    memcpy(out, p, (size_t)l);
    out[l] = 0;
    *len = (size_t)l;
    BIO_free(b);
    return out;
}

/* {"<member>": raw, "signature": hex(r||s of ECDSA-SHA256(raw))} signed by key. */
static char *tsigned(const char *member, const char *raw, EVP_PKEY *key)
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    uint8_t der[80], rs[64];
    size_t dl = sizeof der;
    assert_int_equal(EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(mc, der, &dl, (const uint8_t *)raw, strlen(raw)), 1);
    EVP_MD_CTX_free(mc);
    const uint8_t *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)dl);
    assert_non_null(sig);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32), 32);
    ECDSA_SIG_free(sig);
    char hex[129];
    mt_hex_encode(rs, 64, hex);
    size_t n = strlen(raw) + strlen(member) + 200;
    char *out = malloc(n);
    snprintf(out, n, "{\"%s\":%s,\"signature\":\"%s\"}", member, raw, hex);
    return out;
}

/* A TCB info for FMSPC 00606a000000 whose only level (all SVNs 0) is UpToDate. */
static char *tcb_info_uptodate(void)
{
    char comps[400] = "";
    for (int i = 0; i < 16; i++)
        strcat(comps, i ? ",{\"svn\":0}" : "{\"svn\":0}");
    char *raw = malloc(1024);
    snprintf(raw, 1024,
             "{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"2025-06-01T00:00:00Z\","
             "\"nextUpdate\":\"2025-07-01T00:00:00Z\",\"fmspc\":\"00606a000000\","
             "\"pceId\":\"0000\",\"tcbType\":0,\"tcbEvaluationDataNumber\":17,"
             "\"tcbLevels\":[{\"tcb\":{\"sgxtcbcomponents\":[%s],\"pcesvn\":0},"
             "\"tcbDate\":\"2025-01-01T00:00:00Z\",\"tcbStatus\":\"UpToDate\"}]}",
             comps);
    return raw;
}

/* Evaluates TCB info (tcb_raw) and/or QE identity (qe_raw), each signed by
 * key with issuer chain c[0..n), for platform p against the test root. */
static mt_status teval_full(const tpki *k, const char *tcb_raw, const char *qe_raw,
                            EVP_PKEY *key, X509 *const *c, size_t n, const mt_dcap_platform *p,
                            int64_t at, mt_attest_claims *cl, mt_err *err)
{
    size_t pl;
    char *pem = tpem(c, n, &pl);
    mt_attest_collateral *coll = mt_attest_collateral_new();
    assert_non_null(coll);
    for (int qe = 0; qe < 2; qe++) {
        const char *raw = qe ? qe_raw : tcb_raw;
        if (!raw)
            continue;
        char *doc = tsigned(qe ? "enclaveIdentity" : "tcbInfo", raw, key);
        assert_int_equal(mt_attest_collateral_add(coll,
                                                  qe ? MT_COLL_QE_IDENTITY : MT_COLL_TCB_INFO,
                                                  (const uint8_t *)doc, strlen(doc), err),
                         MT_OK);
        assert_int_equal(mt_attest_collateral_add(coll,
                                                  qe ? MT_COLL_QE_IDENTITY_CHAIN
                                                     : MT_COLL_TCB_INFO_CHAIN,
                                                  (const uint8_t *)pem, pl, err),
                         MT_OK);
        free(doc);
    }
    mt_dcap_state *s = NULL;
    assert_int_equal(mt_dcap_state_get(coll, &s, err), MT_OK);
    uint8_t fp[32];
    assert_true(mt_x5_fingerprint(k->root, fp));
    memset(cl, 0, sizeof *cl);
    mt_status st = mt_dcap_coll_evaluate(s, k->root, fp, p, at, cl, err);
    mt_dcap_state_put(s);
    mt_attest_collateral_free(coll);
    free(pem);
    return st;
}

static const uint8_t tfmspc[6] = {0x00, 0x60, 0x6a, 0x00, 0x00, 0x00};

static mt_status teval(const tpki *k, bool qe, const char *raw, EVP_PKEY *key, X509 *const *c,
                       size_t n, int64_t at, mt_attest_claims *cl, mt_err *err)
{
    mt_dcap_platform p;
    memset(&p, 0, sizeof p);
    memcpy(p.fmspc, tfmspc, 6);
    return teval_full(k, qe ? NULL : raw, qe ? raw : NULL, key, c, n, &p, at, cl, err);
}

/* '"INTEL-SA-%05d"' for first..first+count-1, comma-separated, into out. */
static void tadv(char *out, size_t cap, int first, int count)
{
    size_t o = 0;
    out[0] = 0;
    for (int i = 0; i < count; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s\"INTEL-SA-%05d\"", i ? "," : "", first + i);
}

/* TDX TCB info (module TDX_01) and TD_QE identity, all SVNs and identities 0,
 * UpToDate, with the given advisories per level. */
static void tdx_docs(char **tcb, char **qe, int t0, int tn, int m0, int mn, int q0, int qn)
{
    char comps[400] = "", ta[1200], ma[1200], qa[1200];
    for (int i = 0; i < 16; i++)
        strcat(comps, i ? ",{\"svn\":0}" : "{\"svn\":0}");
    tadv(ta, sizeof ta, t0, tn);
    tadv(ma, sizeof ma, m0, mn);
    tadv(qa, sizeof qa, q0, qn);
    char z48[97], z16[33], f16[33];
    memset(z48, '0', 96);
    z48[96] = 0;
    memset(z16, '0', 32);
    z16[32] = 0;
    memset(f16, 'F', 32);
    f16[32] = 0;
    *tcb = malloc(8192);
    *qe = malloc(4096);
    snprintf(*tcb, 8192,
             "{\"id\":\"TDX\",\"version\":3,\"issueDate\":\"2025-06-01T00:00:00Z\","
             "\"nextUpdate\":\"2025-07-01T00:00:00Z\",\"fmspc\":\"00606a000000\","
             "\"pceId\":\"0000\",\"tcbType\":0,\"tcbEvaluationDataNumber\":17,"
             "\"tdxModuleIdentities\":[{\"id\":\"TDX_01\",\"mrsigner\":\"%s\","
             "\"attributes\":\"0000000000000000\",\"attributesMask\":\"FFFFFFFFFFFFFFFF\","
             "\"tcbLevels\":[{\"tcb\":{\"isvsvn\":0},\"tcbStatus\":\"UpToDate\","
             "\"advisoryIDs\":[%s]}]}],"
             "\"tcbLevels\":[{\"tcb\":{\"sgxtcbcomponents\":[%s],\"pcesvn\":0,"
             "\"tdxtcbcomponents\":[%s]},\"tcbStatus\":\"UpToDate\",\"advisoryIDs\":[%s]}]}",
             z48, ma, comps, comps, ta);
    snprintf(*qe, 4096,
             "{\"id\":\"TD_QE\",\"version\":2,\"issueDate\":\"2025-06-01T00:00:00Z\","
             "\"nextUpdate\":\"2025-07-01T00:00:00Z\",\"miscselect\":\"00000000\","
             "\"miscselectMask\":\"FFFFFFFF\",\"attributes\":\"%s\",\"attributesMask\":\"%s\","
             "\"mrsigner\":\"%.64s\",\"isvprodid\":0,\"tcbLevels\":[{\"tcb\":{\"isvsvn\":0},"
             "\"tcbStatus\":\"UpToDate\",\"advisoryIDs\":[%s]}]}",
             z16, f16, z48, qa);
}

/* More advisories than the claims hold fail the verification instead of being
 * dropped (a dropped one would pass accepted_advisories). */
static void test_advisories_overflow(void **state)
{
    (void)state;
    tpki k;
    tpki_make(&k);
    const int64_t at = tv_time("2025-06-20T00:00:00Z");
    X509 *good[] = {k.tcb, k.root};
    mt_dcap_platform p;
    memset(&p, 0, sizeof p);
    memcpy(p.fmspc, tfmspc, 6);
    p.tdx = true;
    p.tee_tcb_svn[1] = 1; /* module TDX_01 */
    mt_attest_claims cl;
    mt_err err;
    char *tcb, *qe;
    /* 32 + 32 distinct, and the QE's one repeats a platform one: 64, all kept. */
    tdx_docs(&tcb, &qe, 1, 32, 33, 32, 1, 1);
    if (teval_full(&k, tcb, qe, k.tcb_key, good, 2, &p, at, &cl, &err) != MT_OK)
        fail_msg("64 advisories: %s", err.msg);
    assert_int_equal(cl.n_advisories, MT_ATTEST_MAX_ADVISORIES);
    assert_true(mt_attest_claims_has_advisory(&cl, "INTEL-SA-00064"));
    free(tcb);
    free(qe);
    /* A 65th (from the QE identity): refused, not dropped. */
    tdx_docs(&tcb, &qe, 1, 32, 33, 32, 65, 1);
    assert_int_equal(teval_full(&k, tcb, qe, k.tcb_key, good, 2, &p, at, &cl, &err), MT_EAUTH);
    tv_assert_msg(&err, "more than 64 advisories");
    free(tcb);
    free(qe);
    tpki_free(&k);
}

static void test_tcb_signer_role(void **state)
{
    (void)state;
    tpki k;
    tpki_make(&k);
    const int64_t at = tv_time("2025-06-20T00:00:00Z");
    char *raw = tcb_info_uptodate();
    mt_attest_claims cl;
    mt_err err;

    /* Control: the TCB Signing certificate under the root: UpToDate. */
    X509 *good[] = {k.tcb, k.root};
    if (teval(&k, false, raw, k.tcb_key, good, 2, at, &cl, &err) != MT_OK)
        fail_msg("TCB Signing certificate refused: %s", err.msg);
    assert_int_equal(cl.tcb_status, MT_TCB_UP_TO_DATE);

    /* The attack: a PCK key (chain PCK -> PCK Platform CA -> root) signs
     * "UpToDate". It chains to the root; before issue 8 it was accepted. */
    X509 *pck[] = {k.pck, k.ca, k.root};
    assert_int_equal(teval(&k, false, raw, k.pck_key, pck, 3, at, &cl, &err), MT_EAUTH);
    tv_assert_msg(&err, "TCB info is not signed by the Intel SGX TCB Signing certificate");
    assert_int_equal(cl.tcb_status, MT_TCB_NOT_EVALUATED);

    /* The right name under the PCK CA (not directly under the root). */
    X509 *named[] = {k.pck_named, k.ca, k.root};
    assert_int_equal(teval(&k, false, raw, k.pck_key, named, 3, at, &cl, &err), MT_EAUTH);
    tv_assert_msg(&err, "not issued directly by the pinned Intel SGX Root CA");

    /* Directly under the root but another name; the right name but a CA, or
     * carrying the PCK SGX extension. */
    X509 *other_cn[] = {k.tcb_direct_pck_cn, k.root};
    assert_int_equal(teval(&k, false, raw, k.tcb_key, other_cn, 2, at, &cl, &err), MT_EAUTH);
    tv_assert_msg(&err, "not signed by the Intel SGX TCB Signing certificate");
    X509 *ca[] = {k.tcb_ca, k.root};
    assert_int_equal(teval(&k, false, raw, k.tcb_key, ca, 2, at, &cl, &err), MT_EAUTH);
    tv_assert_msg(&err, "does not have the TCB Signing role");
    X509 *sgxext[] = {k.tcb_sgxext, k.root};
    assert_int_equal(teval(&k, false, raw, k.tcb_key, sgxext, 2, at, &cl, &err), MT_EAUTH);
    tv_assert_msg(&err, "does not have the TCB Signing role");

    /* QE identity: the same rule (a real QE identity re-signed, when the
     * test vectors are present). */
    if (tv_dir()) {
        size_t n;
        uint8_t *b = tv_read("sgx-dcap/dcapqvl-sgx-quote-collateral.json", &n);
        json_t *j = json_loadb((const char *)b, n, 0, NULL);
        assert_non_null(j);
        const char *qe = json_string_value(json_object_get(j, "qe_identity"));
        assert_non_null(qe);
        assert_int_equal(teval(&k, true, qe, k.pck_key, pck, 3, at, &cl, &err), MT_EAUTH);
        tv_assert_msg(&err, "QE identity is not signed by the Intel SGX TCB Signing certificate");
        /* With the TCB Signing certificate it gets past the signer checks
         * (and fails later, on the zero platform's QE report). */
        mt_status st = teval(&k, true, qe, k.tcb_key, good, 2, at, &cl, &err);
        assert_int_equal(st, MT_EAUTH);
        tv_assert_msg(&err, "QE report MRSIGNER or ISVPRODID does not match");
        json_decref(j);
        free(b);
    }
    free(raw);
    tpki_free(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgx_qvl),          cmocka_unit_test(test_sgx_occlum),
        cmocka_unit_test(test_sgx_flips),        cmocka_unit_test(test_tdx_qvl),
        cmocka_unit_test(test_tdx_outdated_rejected), cmocka_unit_test(test_tdx_gotdx_v4),
        cmocka_unit_test(test_tdx_gotdx_tamper), cmocka_unit_test(test_tdx_gotdx_v5), cmocka_unit_test(test_tdx_gotdx_trailing),
        cmocka_unit_test(test_tdx_no_collateral), cmocka_unit_test(test_tdx_flips),
        cmocka_unit_test(test_collateral_tamper), cmocka_unit_test(test_expired_today),
        cmocka_unit_test(test_cache_same_claims), cmocka_unit_test(test_cache_expiry),
        cmocka_unit_test(test_cache_tamper),      cmocka_unit_test(test_cache_reset_on_add),
        cmocka_unit_test(test_cache_bounded),     cmocka_unit_test(test_cache_threads),
        cmocka_unit_test(test_cache_cross_kind),  cmocka_unit_test(test_cache_slot_kind),
        cmocka_unit_test(test_tcb_signer_role), cmocka_unit_test(test_advisories_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
