/* Tests of the policy requirements a relying party can state (issue 8,
 * item 4): required_checks (TCB, revocation, QE identity, chip id, EK
 * chain), exact SEV-SNP VMPL and guest policy bits, expected report data /
 * nonce / user data. Each is shown to pass on recorded evidence that
 * satisfies it and to fail closed, naming its rule, on evidence that cannot.
 * Vectors from ../shared/testvectors/attestation; skipped when absent. */
#include "test_attest_util.c"

#include <unistd.h>

#include "mt_policy.h"

#define AT_QVL_SGX "2025-06-20T00:00:00Z"
#define AT_VCEK "2025-01-01T00:00:00Z"
#define AT_GA "2023-09-18T15:03:31Z"
#define AT_BETA_DEBUG "2022-10-12T13:50:07Z"

/* A policy that accepts exactly these claims (their kind, first
 * measurement, TCB status and advisories, debug allowed), plus extra JSON
 * members (starting with ','). */
static mt_status policy_for(const mt_attest_claims *c, const char *extra, mt_policy **out,
                            mt_err *err)
{
    char m[2 * MT_ATTEST_VALUE_MAX + 1], adv[MT_ATTEST_MAX_ADVISORIES * 28] = "";
    mt_hex_encode(c->measurements[0].value, c->measurements[0].len, m);
    for (size_t i = 0; i < c->n_advisories; i++) {
        size_t l = strlen(adv);
        snprintf(adv + l, sizeof adv - l, "%s\"%s\"", i ? "," : "", c->advisories[i]);
    }
    const char *kind = mt_attest_kind_name(c->kind);
    char *doc = malloc(16384);
    snprintf(doc, 16384,
             "{\"mesatee_policy\":1,\"allowed_kinds\":[\"%s\"],\"min_level\":\"soft\","
             "\"measurements\":{\"gateway\":{\"%s\":[\"%s\"]}},\"allow_debug\":true,"
             "\"accepted_tcb_statuses\":[\"%s\"],\"accepted_advisories\":[%s]%s}",
             kind, c->measurements[0].name, m, mt_attest_tcb_status_name(c->tcb_status), adv,
             extra);
    mt_status st = mt_policy_parse(doc, strlen(doc), out, err);
    free(doc);
    return st;
}

/* Checks claims against policy_for(c, extra): MT_OK when rule is NULL,
 * else MT_EPERM naming rule (and want in the message when given). */
static void expect(const mt_attest_claims *c, const char *extra, const char *rule,
                   const char *want)
{
    mt_policy *p = NULL;
    mt_err err;
    if (policy_for(c, extra, &p, &err) != MT_OK)
        fail_msg("policy with %s: %s", extra, err.msg);
    mt_status st = mt_policy_check(p, c, 0, &err);
    mt_policy_free(p);
    if (!rule) {
        if (st != MT_OK)
            fail_msg("with %s: expected MT_OK, got %s", extra, err.msg);
        return;
    }
    if (st != MT_EPERM)
        fail_msg("with %s: expected rule '%s' to fail, got %s", extra, rule, mt_status_name(st));
    char r[96];
    snprintf(r, sizeof r, "policy rule '%s' failed", rule);
    tv_assert_msg(&err, r);
    if (want)
        tv_assert_msg(&err, want);
}

static void verify(mt_attest_kind kind, const char *rel, const tv_item *coll, const char *at,
                   mt_attest_claims *c)
{
    size_t n = 0;
    uint8_t *ev = tv_read(rel, &n);
    mt_attest_collateral *co = coll ? tv_coll(coll) : NULL;
    mt_err err;
    if (mt_attest_verify(kind, ev, n, co, tv_time(at), c, &err) != MT_OK)
        fail_msg("%s: %s", rel, err.msg);
    mt_attest_collateral_free(co);
    free(ev);
}

static const tv_item SGX_COLL[] = {
    {MT_COLL_DCAP_BUNDLE, "sgx-dcap/dcapqvl-sgx-quote-collateral.json"}, {0, NULL}};

static void test_required_checks_dcap(void **state)
{
    (void)state;
    TV_REQUIRE();
    mt_attest_claims *c = malloc(sizeof *c), *bare = malloc(sizeof *bare);
    verify(MT_ATTEST_SGX, "sgx-dcap/dcapqvl-sgx-quote.dat", SGX_COLL, AT_QVL_SGX, c);
    /* With the full collateral the verifier reports TCB, revocation and QE
     * identity as checked: a policy requiring them is satisfied. */
    assert_int_equal(c->checked & 7u, 7u);
    expect(c, ",\"required_checks\":{\"sgx\":[\"tcb\",\"revocation\",\"qe_identity\"]}", NULL,
           NULL);
    expect(c, ",\"required_checks\":{\"all\":[\"tcb\"],\"tdx\":[\"chip_id\"]}", NULL, NULL);
    /* The same quote without collateral: every requirement fails closed. */
    verify(MT_ATTEST_SGX, "sgx-dcap/dcapqvl-sgx-quote.dat", NULL, AT_QVL_SGX, bare);
    assert_int_equal(bare->checked, 0);
    expect(bare, ",\"required_checks\":{\"sgx\":[\"tcb\"]}", "required_checks", "'tcb'");
    expect(bare, ",\"required_checks\":{\"sgx\":[\"revocation\"]}", "required_checks",
           "'revocation'");
    expect(bare, ",\"required_checks\":{\"all\":[\"qe_identity\"]}", "required_checks",
           "'qe_identity'");
    expect(bare, "", NULL, NULL); /* nothing required: the old behaviour */
    /* A check the kind can never provide fails closed too. */
    expect(c, ",\"required_checks\":{\"sgx\":[\"chip_id\"]}", "required_checks", "'chip_id'");
    expect(c, ",\"required_checks\":{\"all\":[\"ek_chain\"]}", "required_checks", "'ek_chain'");
    free(c);
    free(bare);
}

/* The one path (mt_policy_verify_evidence) takes the collateral from the
 * policy's collateral_dir: with it the requirements hold, without it the
 * same policy fails closed. */
static void test_required_checks_one_path(void **state)
{
    (void)state;
    TV_REQUIRE();
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_SGX, "sgx-dcap/dcapqvl-sgx-quote.dat", SGX_COLL, AT_QVL_SGX, c);
    char dir[64] = "/tmp/mt-polreq-XXXXXX", link[128], extra[256];
    assert_non_null(mkdtemp(dir));
    snprintf(link, sizeof link, "%s/collateral.json", dir);
    char *target = tv_path("sgx-dcap/dcapqvl-sgx-quote-collateral.json");
    assert_int_equal(symlink(target, link), 0);
    free(target);
    size_t n = 0;
    uint8_t *ev = tv_read("sgx-dcap/dcapqvl-sgx-quote.dat", &n);
    mt_policy *p = NULL;
    mt_err err;
    snprintf(extra, sizeof extra,
             ",\"collateral_dir\":\"%s\",\"required_checks\":{\"sgx\":[\"tcb\",\"revocation\","
             "\"qe_identity\"]}",
             dir);
    assert_int_equal(policy_for(c, extra, &p, &err), MT_OK);
    if (mt_policy_verify_evidence(p, MT_ATTEST_SGX, ev, n, tv_time(AT_QVL_SGX), c, &err) != MT_OK)
        fail_msg("one path with collateral_dir: %s", err.msg);
    mt_policy_free(p);
    assert_int_equal(
        policy_for(c, ",\"required_checks\":{\"sgx\":[\"revocation\"]}", &p, &err), MT_OK);
    assert_int_equal(mt_policy_verify_evidence(p, MT_ATTEST_SGX, ev, n, tv_time(AT_QVL_SGX), c,
                                               &err),
                     MT_EPERM);
    tv_assert_msg(&err, "policy rule 'required_checks' failed");
    mt_policy_free(p);
    unlink(link);
    rmdir(dir);
    free(ev);
    free(c);
}

static void test_snp_vmpl_and_policy_bits(void **state)
{
    (void)state;
    TV_REQUIRE();
    static const tv_item coll[] = {{MT_COLL_AMD_VCEK, "sev-snp/gosevguest-milan-vcek.der"},
                                   {MT_COLL_AMD_CHAIN, "sev-snp/amd-ask-ark-milan-vcek.pem"},
                                   {0, NULL}};
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_SEV_SNP, "sev-snp/gosevguest-milan-report.bin", coll, AT_VCEK, c);
    /* The recorded report: VMPL 0, guest policy 0xb0000 (SMT, reserved bit
     * 17, DEBUG), chip id checked against the VCEK. */
    tv_assert_svn(c, "vmpl", 0);
    tv_assert_svn(c, "policy", 0xb0000);
    expect(c, ",\"snp_vmpl\":0", NULL, NULL);
    expect(c, ",\"snp_vmpl\":1", "snp_vmpl", "VMPL 0, not 1");
    expect(c, ",\"snp_policy_forbidden\":[\"migrate_ma\",\"single_socket\"]", NULL, NULL);
    expect(c, ",\"snp_policy_forbidden\":[\"debug\"]", "snp_policy_forbidden", "0x80000");
    expect(c, ",\"snp_policy_forbidden\":[\"smt\"]", "snp_policy_forbidden", "0x10000");
    expect(c, ",\"snp_policy_required\":[\"smt\",\"bit17\"]", NULL, NULL);
    expect(c, ",\"snp_policy_required\":[\"single_socket\"]", "snp_policy_required", "0x100000");
    expect(c, ",\"required_checks\":{\"sev-snp\":[\"chip_id\"]}", NULL, NULL);
    expect(c, ",\"required_checks\":{\"sev-snp\":[\"revocation\"]}", "required_checks",
           "'revocation'");
    expect(c, ",\"required_checks\":{\"sev-snp\":[\"tcb\"]}", "required_checks", "'tcb'");
    /* Report data: exact, or a prefix followed by zeros. */
    expect(c, ",\"expected_report_data\":\"0102030405\"", NULL, NULL);
    expect(c, ",\"expected_report_data\":\"01020304\"", "expected_report_data", NULL);
    expect(c, ",\"expected_report_data\":\"0102030406\"", "expected_report_data", NULL);
    /* SNP has no nonce or user data field: expecting one fails closed. */
    expect(c, ",\"expected_nonce\":\"0102030405\"", "expected_nonce", "no nonce");
    expect(c, ",\"expected_user_data\":\"01\"", "expected_user_data", "no user data");
    /* A VMPL the evidence does not state fails closed. */
    c->n_svns = 0;
    expect(c, ",\"snp_vmpl\":0", "snp_vmpl", "no VMPL");
    expect(c, ",\"snp_policy_forbidden\":[\"debug\"]", "snp_policy", "no guest policy");
    free(c);
}

static void test_expected_nitro(void **state)
{
    (void)state;
    TV_REQUIRE();
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_NITRO, "nitro/evervault-beta-debug-attestation-doc.bin", NULL, AT_BETA_DEBUG,
           c);
    /* user_data "hello, world!", no nonce. */
    expect(c, ",\"expected_user_data\":\"68656c6c6f2c20776f726c6421\"", NULL, NULL);
    expect(c, ",\"expected_user_data\":\"68656c6c6f2c20776f726c64\"", "expected_user_data",
           "other user data");
    expect(c, ",\"expected_report_data\":\"68656c6c6f2c20776f726c6421\"", NULL, NULL);
    expect(c, ",\"expected_nonce\":\"00\"", "expected_nonce", "no nonce");
    /* SNP-only rules do not apply to other kinds. */
    expect(c, ",\"snp_vmpl\":2,\"snp_policy_required\":[\"single_socket\"]", NULL, NULL);
    /* The GA document carries a 256-byte nonce: the policy (or the CLI's
     * --expect-nonce through mt_policy_set_expected) demands it exactly. */
    size_t n = 0, dl = 0;
    uint8_t *b64 = tv_read("nitro/evervault-ga-attestation-doc.b64", &n), *doc = NULL;
    while (n && (b64[n - 1] == '\n' || b64[n - 1] == '\r'))
        b64[--n] = 0;
    assert_int_equal(mt_b64_decode((const char *)b64, &doc, &dl, NULL), MT_OK);
    mt_err err;
    if (mt_attest_verify(MT_ATTEST_NITRO, doc, dl, NULL, tv_time(AT_GA), c, &err) != MT_OK)
        fail_msg("GA document: %s", err.msg);
    assert_int_equal(c->nonce_len, 256);
    char *hex = malloc(2 * 256 + 64), *extra = malloc(2 * 256 + 64);
    mt_hex_encode(c->nonce, 256, hex);
    snprintf(extra, 2 * 256 + 64, ",\"expected_nonce\":\"%s\"", hex);
    expect(c, extra, NULL, NULL);
    extra[strlen(extra) - 2] ^= 1; /* the last hex digit */
    expect(c, extra, "expected_nonce", "another nonce");
    hex[2 * 255] = 0; /* a prefix is not enough for a nonce */
    snprintf(extra, 2 * 256 + 64, ",\"expected_nonce\":\"%s\"", hex);
    expect(c, extra, "expected_nonce", NULL);
    free(extra);
    free(hex);
    free(doc);
    free(b64);
    free(c);
}

static void test_set_expected(void **state)
{
    (void)state;
    TV_REQUIRE();
    static const tv_item coll[] = {{MT_COLL_AMD_VCEK, "sev-snp/gosevguest-milan-vcek.der"},
                                   {MT_COLL_AMD_CHAIN, "sev-snp/amd-ask-ark-milan-vcek.pem"},
                                   {0, NULL}};
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_SEV_SNP, "sev-snp/gosevguest-milan-report.bin", coll, AT_VCEK, c);
    mt_policy *p = NULL;
    mt_err err;
    assert_int_equal(policy_for(c, "", &p, &err), MT_OK);
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_OK);
    assert_int_equal(mt_policy_set_expected(p, MT_POLICY_EXPECT_REPORT_DATA, "ff", &err), MT_OK);
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_EPERM);
    tv_assert_msg(&err, "policy rule 'expected_report_data' failed");
    assert_int_equal(mt_policy_set_expected(p, MT_POLICY_EXPECT_REPORT_DATA, "01020304050000",
                                            &err),
                     MT_OK);
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_OK);
    /* Bad values are refused, the previous expectation stays. */
    assert_int_equal(mt_policy_set_expected(p, MT_POLICY_EXPECT_REPORT_DATA, "0g", &err),
                     MT_EINVAL);
    assert_int_equal(mt_policy_set_expected(p, MT_POLICY_EXPECT_REPORT_DATA, "abc", &err),
                     MT_EINVAL);
    char big[2 * 65 + 1];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(mt_policy_set_expected(p, MT_POLICY_EXPECT_REPORT_DATA, big, &err),
                     MT_EINVAL);
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_OK);
    assert_int_equal(mt_policy_set_expected(p, MT_POLICY_EXPECT_NONCE, "01", &err), MT_OK);
    assert_int_equal(mt_policy_check(p, c, 0, &err), MT_EPERM);
    tv_assert_msg(&err, "policy rule 'expected_nonce' failed");
    mt_policy_free(p);
    free(c);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *extra, *want;
    } bad[] = {
        {",\"required_checks\":{\"sgx\":[\"tbc\"]}", "unknown check 'tbc'"},
        {",\"required_checks\":{\"sgx2\":[\"tcb\"]}", "required_checks.sgx2"},
        {",\"required_checks\":{\"sgx\":\"tcb\"}", "required_checks.sgx"},
        {",\"snp_vmpl\":4", "snp_vmpl"},
        {",\"snp_vmpl\":-1", "snp_vmpl"},
        {",\"snp_policy_forbidden\":[\"smt\"],\"snp_policy_required\":[\"smt\"]", "same bit"},
        {",\"snp_policy_forbidden\":[\"bit64\"]", "unknown SNP policy bit"},
        {",\"snp_policy_required\":[\"turbo\"]", "unknown SNP policy bit"},
        {",\"expected_report_data\":\"0\"", "expected_report_data"},
        {",\"expected_nonce\":\"zz\"", "expected_nonce"},
        {",\"expected_user_data\":\"\"", "expected_user_data"},
    };
    mt_attest_claims c;
    memset(&c, 0, sizeof c);
    c.kind = MT_ATTEST_SGX;
    snprintf(c.measurements[0].name, sizeof c.measurements[0].name, "mrenclave");
    c.measurements[0].len = 32;
    c.n_measurements = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mt_policy *p = NULL;
        mt_err err;
        if (policy_for(&c, bad[i].extra, &p, &err) != MT_EINVAL)
            fail_msg("accepted: %s", bad[i].extra);
        assert_null(p);
        tv_assert_msg(&err, bad[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_required_checks_dcap),
        cmocka_unit_test(test_required_checks_one_path),
        cmocka_unit_test(test_snp_vmpl_and_policy_bits),
        cmocka_unit_test(test_expected_nitro),
        cmocka_unit_test(test_set_expected),
        cmocka_unit_test(test_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
