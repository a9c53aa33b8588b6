/* The KeyStore release policy at levels sev-snp, tdx and sgx (issue 10),
 * checked against claims from real recorded evidence: each report / quote
 * in ../shared/testvectors/attestation is verified with the existing
 * verifiers (mt_attest_verify and its collateral), then the release policy
 * mt_keystore_hw_policy builds for that level must accept the evidence's
 * own measurement and refuse another one, naming the measurement. Skipped
 * (with a message) when the vectors are absent. This is the policy side
 * only: the KeyStore at these levels is NOT exercised on hardware. */
#include "test_attest_util.c"

#include "mt_keystore.h"
#include "mt_policy.h"

#define AT_VCEK "2025-01-01T00:00:00Z"
#define AT_QVL "2025-06-20T00:00:00Z"

static void verify(mt_attest_kind kind, const char *rel, const tv_item *coll, const char *at,
                   mt_attest_claims *c)
{
    size_t n = 0;
    uint8_t *ev = tv_read(rel, &n);
    mt_attest_collateral *co = coll ? tv_coll(coll) : NULL;
    mt_err err;
    memset(c, 0, sizeof *c);
    if (mt_attest_verify(kind, ev, n, co, tv_time(at), c, &err) != MT_OK)
        fail_msg("%s: %s", rel, err.msg);
    mt_attest_collateral_free(co);
    free(ev);
}

/* The release policy of level allowing `allowed` accepts c; one allowing
 * only `other` (same length, one nibble changed) refuses it with a message
 * naming the claim and the evidence's measurement.
 * refused_by: the recorded evidence is refused as it is by this rule of the
 * default release policy (debug guest, or a TCB status other than
 * UpToDate: the KeyStore never releases to those); the measurement rule is
 * then checked on a copy of the claims with debug off, TCB UpToDate and no
 * advisories. */
static void check_level(const char *level, const mt_attest_claims *real, const char *claim,
                        size_t len, const char *refused_by)
{
    mt_attest_claims *c = malloc(sizeof *c);
    memcpy(c, real, sizeof *c);
    if (refused_by) {
        const char *allow_real[] = {NULL};
        char rh[2 * MT_ATTEST_VALUE_MAX + 1];
        const mt_attest_measurement *rm = mt_attest_claims_measurement(real, claim);
        assert_non_null(rm);
        mt_hex_encode(rm->value, rm->len, rh);
        allow_real[0] = rh;
        mt_policy *rp = NULL;
        mt_err rerr;
        assert_int_equal(mt_keystore_hw_policy(level, allow_real, 1, NULL, &rp, &rerr), MT_OK);
        assert_int_equal(mt_policy_check(rp, real, 0, &rerr), MT_EPERM);
        char r[96];
        snprintf(r, sizeof r, "policy rule '%s' failed", refused_by);
        tv_assert_msg(&rerr, r);
        mt_policy_free(rp);
        c->debug = false;
        c->tcb_status = MT_TCB_UP_TO_DATE;
        c->n_advisories = 0;
    }
    const mt_attest_measurement *m = mt_attest_claims_measurement(c, claim);
    assert_non_null(m);
    assert_int_equal(m->len, len);
    char hex[2 * MT_ATTEST_VALUE_MAX + 1], other[2 * MT_ATTEST_VALUE_MAX + 1];
    mt_hex_encode(m->value, m->len, hex);
    snprintf(other, sizeof other, "%s", hex);
    other[5] = other[5] == '0' ? '1' : '0';
    mt_policy *p = NULL;
    mt_err err;
    const char *allow[] = {other, hex};
    if (mt_keystore_hw_policy(level, allow, 2, NULL, &p, &err) != MT_OK)
        fail_msg("%s policy: %s", level, err.msg);
    if (mt_policy_check(p, c, 0, &err) != MT_OK)
        fail_msg("%s: the release policy refused its allowed %s %s: %s", level, claim, hex,
                 err.msg);
    mt_policy_free(p);
    const char *only_other[] = {other};
    assert_int_equal(mt_keystore_hw_policy(level, only_other, 1, NULL, &p, &err), MT_OK);
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_EPERM);
    char want[160];
    snprintf(want, sizeof want, "measurements.gateway.%s", claim);
    tv_assert_msg(&err, want);
    snprintf(want, sizeof want, "%.64s", hex); /* the message names the measurement */
    tv_assert_msg(&err, want);
    mt_policy_free(p);
    /* A value of the other length (64 vs 96 hex) is not a measurement of
     * this level. */
    char wrong[97];
    memset(wrong, 'a', sizeof wrong - 1);
    wrong[len == 48 ? 64 : 96] = '\0';
    const char *bad[] = {wrong};
    assert_int_equal(mt_keystore_hw_policy(level, bad, 1, NULL, &p, &err), MT_EINVAL);
    assert_null(p);
    free(c);
}

static void test_snp(void **state)
{
    (void)state;
    TV_REQUIRE();
    static const tv_item coll[] = {{MT_COLL_AMD_VCEK, "sev-snp/gosevguest-milan-vcek.der"},
                                   {MT_COLL_AMD_CHAIN, "sev-snp/amd-ask-ark-milan-vcek.pem"},
                                   {0, NULL}};
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_SEV_SNP, "sev-snp/gosevguest-milan-report.bin", coll, AT_VCEK, c);
    check_level("sev-snp", c, "measurement", 48, "allow_debug"); /* a debug guest */
    free(c);
}

static void test_tdx(void **state)
{
    (void)state;
    TV_REQUIRE();
    static const tv_item coll[] = {
        {MT_COLL_DCAP_BUNDLE, "tdx/dcapqvl-tdx-quote-collateral.json"}, {0, NULL}};
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", coll, AT_QVL, c);
    check_level("tdx", c, "mrtd", 48, NULL);
    free(c);
}

static void test_sgx(void **state)
{
    (void)state;
    TV_REQUIRE();
    static const tv_item coll[] = {
        {MT_COLL_DCAP_BUNDLE, "sgx-dcap/dcapqvl-sgx-quote-collateral.json"}, {0, NULL}};
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_SGX, "sgx-dcap/dcapqvl-sgx-quote.dat", coll, AT_QVL, c);
    check_level("sgx", c, "mrenclave", 32, "accepted_tcb_statuses");
    free(c);
}

/* Evidence of another kind never satisfies a level's release policy. */
static void test_wrong_kind(void **state)
{
    (void)state;
    TV_REQUIRE();
    static const tv_item coll[] = {
        {MT_COLL_DCAP_BUNDLE, "tdx/dcapqvl-tdx-quote-collateral.json"}, {0, NULL}};
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", coll, AT_QVL, c);
    const mt_attest_measurement *m = mt_attest_claims_measurement(c, "mrtd");
    assert_non_null(m);
    char hex[97];
    mt_hex_encode(m->value, m->len, hex);
    const char *allow[] = {hex};
    mt_policy *p = NULL;
    mt_err err;
    assert_int_equal(mt_keystore_hw_policy("sev-snp", allow, 1, NULL, &p, &err), MT_OK);
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_EPERM);
    mt_policy_free(p);
    free(c);
}

/* Garbage: levels, counts and measurement lengths the builder refuses; the
 * release-policy document (what auditors sign) checks lengths per level. */
static void test_garbage(void **state)
{
    (void)state;
    mt_policy *p = NULL;
    mt_err err;
    char h64[65], h96[97];
    memset(h64, 'b', 64);
    h64[64] = '\0';
    memset(h96, 'c', 96);
    h96[96] = '\0';
    const char *one64[] = {h64}, *one96[] = {h96}, *upper[] = {"ABCD"}, *nul[] = {NULL};
    assert_int_equal(mt_keystore_hw_policy("soft", one64, 1, NULL, &p, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_hw_policy("nitro", one64, 1, NULL, &p, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_hw_policy("sgx", one64, 0, NULL, &p, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_hw_policy("sgx", one96, 1, NULL, &p, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_hw_policy("tdx", one64, 1, NULL, &p, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_hw_policy("sev-snp", upper, 1, NULL, &p, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_hw_policy("sev-snp", nul, 1, NULL, &p, &err), MT_EINVAL);
    assert_int_equal(mt_keystore_hw_policy("tdx", one96, 1, NULL, &p, &err), MT_OK);
    mt_policy_free(p);
    p = NULL;
    assert_int_not_equal(mt_keystore_hw_policy("tdx", one96, 1, "/nonexistent-coll", &p, &err),
                         MT_OK);
    assert_null(p);
    char doc[512];
    static const struct {
        const char *level;
        const char *meas;
        mt_status want;
    } cases[] = {
        {"sev-snp", "96", MT_OK}, {"sev-snp", "64", MT_EINVAL}, {"tdx", "96", MT_OK},
        {"tdx", "64", MT_EINVAL}, {"sgx", "64", MT_OK},         {"sgx", "96", MT_EINVAL},
        {"soft", "96", MT_EINVAL}, {"tpm2", "96", MT_EINVAL},   {"nitro", "64", MT_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(doc, sizeof doc,
                 "{\"mesatee_release_policy\":1,\"level\":\"%s\",\"measurements\":[\"%s\"],"
                 "\"soft_platform_keys\":[],\"tpm2_aks\":[],\"seq\":2}",
                 cases[i].level, cases[i].meas[0] == '9' ? h96 : h64);
        mt_status st = mt_keystore_parse_release_doc(doc, strlen(doc), &err);
        if (st != cases[i].want)
            fail_msg("level %s, %s hex: got %s (%s)", cases[i].level, cases[i].meas,
                     mt_status_name(st), err.msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snp),
        cmocka_unit_test(test_tdx),
        cmocka_unit_test(test_sgx),
        cmocka_unit_test(test_wrong_kind),
        cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
