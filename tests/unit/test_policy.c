/* Tests of mt_policy: parsing (each bad field named) and every rule, each
 * shown to pass on matching claims and to fail, naming itself, on claims
 * that break it. Also the recorded Gramine certificate against a policy. */
#include "test_attest_util.c"

#include "mt_policy.h"
#include "mt_ratls.h"

#define MEAS "deef35d43432e5ff39c94c549b71fe61f2d30bf4a8a0bc4efc7b64f9f63dd851"
#define PKEY "ea07c190519b8b5ef8a2a2d58d511711e65c9158e1b07195c578c450bc29da0f"

static const char good_soft[] =
    "{\"mesatee_policy\":1,\"allowed_kinds\":[\"soft\",\"sgx\"],\"min_level\":\"soft\","
    "\"measurements\":{\"gateway\":{\"measurement\":[\"" MEAS "\"]}},"
    "\"soft_platform_keys\":[\"" PKEY "\"],\"max_evidence_age_s\":3600}";

static mt_policy *parse_ok(const char *j)
{
    mt_policy *p = NULL;
    mt_err err;
    if (mt_policy_parse(j, strlen(j), &p, &err) != MT_OK)
        fail_msg("policy: %s", err.msg);
    return p;
}

static void parse_bad(const char *j, const char *want)
{
    mt_policy *p = NULL;
    mt_err err;
    assert_int_equal(mt_policy_parse(j, strlen(j), &p, &err), MT_EINVAL);
    assert_null(p);
    if (!strstr(err.msg, want))
        fail_msg("expected '%s' in: %s", want, err.msg);
}

static void soft_claims(mt_attest_claims *c, int64_t t)
{
    memset(c, 0, sizeof *c);
    c->kind = MT_ATTEST_SOFT;
    uint8_t m[32];
    assert_int_equal(mt_hex_decode(MEAS, m, 32, NULL), MT_OK);
    snprintf(c->measurements[0].name, sizeof c->measurements[0].name, "measurement");
    memcpy(c->measurements[0].value, m, 32);
    c->measurements[0].len = 32;
    c->n_measurements = 1;
    assert_int_equal(mt_hex_decode(PKEY, c->signer, 32, NULL), MT_OK);
    c->signer_len = 32;
    c->timestamp = t * 1000;
}

static void expect_rule(const mt_policy *p, const mt_attest_claims *c, int64_t now,
                        const char *rule)
{
    mt_err err;
    assert_int_equal(mt_policy_check(p, c, now, &err), MT_EPERM);
    char want[96];
    snprintf(want, sizeof want, "policy rule '%s' failed", rule);
    if (!strstr(err.msg, want))
        fail_msg("expected \"%s\" in: %s", want, err.msg);
}

static void test_parse(void **state)
{
    mt_policy *p = parse_ok(good_soft);
    assert_string_equal(mt_policy_role(p), "gateway");
    mt_policy_free(p);
    mt_policy_free(NULL);
    parse_bad("{}", "mesatee_policy");
    parse_bad("{\"mesatee_policy\":2,\"allowed_kinds\":[\"sgx\"]}", "mesatee_policy");
    parse_bad("{\"mesatee_policy\":1,\"allowed_kinds\":[]}", "at least one kind");
    parse_bad("{\"mesatee_policy\":1,\"allowed_kinds\":[\"tpm3\"]}", "unknown kind 'tpm3'");
    parse_bad("{\"mesatee_policy\":1,\"allowed_kinds\":[\"sgx\"],\"min_level\":\"none\","
              "\"measurements\":{\"gateway\":{\"mrenclave\":[\"00\"]}}}",
              "min_level");
    parse_bad("{\"mesatee_policy\":1,\"allowed_kinds\":[\"sgx\"]}", "measurements");
    parse_bad("{\"mesatee_policy\":1,\"allowed_kinds\":[\"sgx\"],"
              "\"measurements\":{\"gateway\":{\"mrenclave\":[\"0g\"]}}}",
              "measurements.gateway.mrenclave");
    parse_bad("{\"mesatee_policy\":1,\"allowed_kinds\":[\"soft\"],"
              "\"measurements\":{\"gateway\":{\"measurement\":[\"00\"]}}}",
              "soft_platform_keys");
    parse_bad("{\"mesatee_policy\":1,\"allowed_kinds\":[\"soft\"],"
              "\"measurements\":{\"gateway\":{\"measurement\":[\"00\"]}},"
              "\"soft_platform_keys\":[\"abcd\"]}",
              "64 hex");
    parse_bad("{\"mesatee_policy\":1,\"allowed_kinds\":[\"sgx\"],"
              "\"measurements\":{\"gateway\":{\"mrenclave\":[\"00\"]}},"
              "\"accepted_tcb_statuses\":[\"Revoked\"]}",
              "accepted_tcb_statuses");
    parse_bad("{\"mesatee_policy\":1,\"allowed_kinds\":[\"sgx\"],\"colour\":1}", "colour");
    parse_bad("{\"mesatee_policy\":1,", "policy");
}

static void test_rules_soft(void **state)
{
    int64_t now = 1800000000;
    mt_policy *p = parse_ok(good_soft);
    mt_attest_claims c;
    mt_err err;
    soft_claims(&c, now - 10);
    assert_int_equal(mt_policy_check(p, &c, now, &err), MT_OK);
    /* measurement */
    c.measurements[0].value[0] ^= 1;
    expect_rule(p, &c, now, "measurements.gateway.measurement");
    soft_claims(&c, now - 10);
    c.n_measurements = 0;
    expect_rule(p, &c, now, "measurements.gateway.measurement");
    /* platform key */
    soft_claims(&c, now - 10);
    c.signer[31] ^= 1;
    expect_rule(p, &c, now, "soft_platform_keys");
    /* age: too old, from the future, none */
    soft_claims(&c, now - 3601);
    expect_rule(p, &c, now, "max_evidence_age_s");
    soft_claims(&c, now + 1000);
    expect_rule(p, &c, now, "max_evidence_age_s");
    soft_claims(&c, now);
    c.timestamp = 0;
    expect_rule(p, &c, now, "max_evidence_age_s");
    /* debug */
    soft_claims(&c, now);
    c.debug = true;
    expect_rule(p, &c, now, "allow_debug");
    /* kind */
    soft_claims(&c, now);
    c.kind = MT_ATTEST_NITRO;
    expect_rule(p, &c, now, "allowed_kinds");
    mt_policy_free(p);
    /* min_level above soft */
    p = parse_ok("{\"mesatee_policy\":1,\"allowed_kinds\":[\"soft\",\"sgx\"],\"min_level\":\"tdx\","
                 "\"measurements\":{\"gateway\":{\"measurement\":[\"" MEAS "\"]}},"
                 "\"soft_platform_keys\":[\"" PKEY "\"]}");
    soft_claims(&c, now);
    expect_rule(p, &c, now, "min_level");
    mt_policy_free(p);
    /* role without expectations */
    p = parse_ok("{\"mesatee_policy\":1,\"role\":\"scheduler\",\"allowed_kinds\":[\"soft\"],"
                 "\"measurements\":{\"gateway\":{\"measurement\":[\"" MEAS "\"]}},"
                 "\"soft_platform_keys\":[\"" PKEY "\"]}");
    expect_rule(p, &c, now, "measurements.scheduler");
    mt_policy_free(p);
}

static void test_rules_sgx(void **state)
{
    int64_t now = 1800000000;
    mt_attest_claims c;
    memset(&c, 0, sizeof c);
    c.kind = MT_ATTEST_SGX;
    snprintf(c.measurements[0].name, MT_ATTEST_NAME_MAX, "mrenclave");
    memset(c.measurements[0].value, 0x11, 32);
    c.measurements[0].len = 32;
    c.n_measurements = 1;
    snprintf(c.svns[0].name, MT_ATTEST_NAME_MAX, "isv_svn");
    c.svns[0].value = 3;
    c.n_svns = 1;
    c.tcb_status = MT_TCB_SW_HARDENING_NEEDED;
    snprintf(c.advisories[0], sizeof c.advisories[0], "INTEL-SA-00615");
    c.n_advisories = 1;
#define base                                                                                       \
        "{\"mesatee_policy\":1,\"allowed_kinds\":[\"sgx\"],\"min_level\":\"sgx\"," \
        "\"measurements\":{\"gateway\":{\"mrenclave\":[\"00\",\"" \
        "1111111111111111111111111111111111111111111111111111111111111111\"]}}," \
        "\"min_svns\":{\"isv_svn\":%d},\"accepted_tcb_statuses\":[%s]," \
        "\"accepted_advisories\":[%s]}"
    char j[1024];
    snprintf(j, sizeof j, base, 3, "\"UpToDate\",\"SWHardeningNeeded\"", "\"INTEL-SA-00615\"");
    mt_policy *p = parse_ok(j);
    mt_err err;
    assert_int_equal(mt_policy_check(p, &c, now, &err), MT_OK);
    c.debug = true;
    expect_rule(p, &c, now, "allow_debug");
    c.debug = false;
    mt_policy_free(p);
    snprintf(j, sizeof j, base, 4, "\"UpToDate\",\"SWHardeningNeeded\"", "\"INTEL-SA-00615\"");
    p = parse_ok(j);
    expect_rule(p, &c, now, "min_svns.isv_svn");
    mt_policy_free(p);
    snprintf(j, sizeof j, base, 3, "\"UpToDate\"", "\"INTEL-SA-00615\"");
    p = parse_ok(j);
    expect_rule(p, &c, now, "accepted_tcb_statuses");
    mt_policy_free(p);
    snprintf(j, sizeof j, base, 3, "\"SWHardeningNeeded\"", "");
    p = parse_ok(j);
    expect_rule(p, &c, now, "accepted_advisories");
    mt_policy_free(p);
#undef base
}

/* The recorded Gramine certificate: verified, then checked by a policy. */
static void test_gramine_policy(void **state)
{
    TV_REQUIRE();
    size_t n;
    uint8_t *pem = tv_read("ra-tls/ccc-gramine-cert.pem", &n);
    mt_attest_claims c;
    mt_ratls_info info;
    mt_err err;
    int64_t at = 1685577600;
    assert_int_equal(mt_ratls_verify_cert(pem, n, MT_RATLS_FORM_CCC, NULL, at, &c, &info, &err),
                     MT_OK);
#define pj                                                                                         \
        "{\"mesatee_policy\":1,\"allowed_kinds\":[\"sgx\"],\"min_level\":\"sgx\"," \
        "\"measurements\":{\"gateway\":{\"mrenclave\":" \
        "[\"0866e7ca11b9f4efe4bf39b2607f4e1299f111920d96d95719080f01b62b7585\"]," \
        "\"mrsigner\":[\"adc53501f21ced9b998e37a7a18e061c63e00315045fa57a49c18ef0a30d02ca\"]}}," \
        "\"allow_debug\":%s,\"accepted_tcb_statuses\":[\"NotEvaluated\"]}"
    char j[1024];
    snprintf(j, sizeof j, pj, "true");
    mt_policy *p = parse_ok(j);
    assert_int_equal(mt_policy_check(p, &c, at, &err), MT_OK);
    mt_policy_free(p);
    /* It is a debug enclave (ATTRIBUTES.DEBUG): refused by default. */
    snprintf(j, sizeof j, pj, "false");
    p = parse_ok(j);
    expect_rule(p, &c, at, "allow_debug");
    mt_policy_free(p);
    char *js = mt_policy_claims_json(&c, &info);
    assert_non_null(js);
    assert_non_null(strstr(js, "\"mrenclave\":\"0866e7ca"));
    assert_non_null(strstr(js, "\"form\":\"ccc\""));
    free(js);
    free(pem);
#undef pj
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_rules_soft),
        cmocka_unit_test(test_rules_sgx),
        cmocka_unit_test(test_gramine_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
