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

/* ---- minimum SVNs and signer-style release (mt_keystore_hw_decide) ------ */

/* The claims' SVN name (must exist). */
static uint64_t svn_of(const mt_attest_claims *c, const char *name)
{
    uint64_t v = 0;
    if (!mt_attest_claims_svn(c, name, &v))
        fail_msg("the evidence has no SVN '%s'", name);
    return v;
}

static char *meas_hex(const mt_attest_claims *c, const char *claim, char *out)
{
    const mt_attest_measurement *m = mt_attest_claims_measurement(c, claim);
    assert_non_null(m);
    mt_hex_encode(m->value, m->len, out);
    return out;
}

/* decide(policy) == want; with MT_EPERM the message holds every `need`
 * (NULL-terminated) and never the text `never` (may be NULL). */
static void decide(const char *pol, const mt_attest_claims *c, mt_status want,
                   const char *const *need, const char *never)
{
    mt_err err;
    mt_err_clear(&err);
    mt_status st = mt_keystore_hw_decide(pol, strlen(pol), c, &err);
    if (st != want)
        fail_msg("policy %s: got %s (%s), expected %s", pol, mt_status_name(st), err.msg,
                 mt_status_name(want));
    for (size_t i = 0; need && need[i]; i++)
        tv_assert_msg(&err, need[i]);
    if (never && strstr(err.msg, never))
        fail_msg("the error echoes input: %s", err.msg);
}

/* For each SVN name: a minimum equal to the evidence's value is met, one
 * above it is refused naming the rule. */
static void check_mins(const char *level, const char *claim, const mt_attest_claims *c,
                       const char *const *names, size_t n)
{
    char hex[2 * MT_ATTEST_VALUE_MAX + 1], pol[1024], rule[96];
    meas_hex(c, claim, hex);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = svn_of(c, names[i]);
        snprintf(pol, sizeof pol,
                 "{\"level\":\"%s\",\"measurements\":[\"%s\"],\"seq\":3,\"min_svns\":{\"%s\":%llu}}",
                 level, hex, names[i], (unsigned long long)v);
        decide(pol, c, MT_OK, NULL, NULL);
        if (v >= 255 && strcmp(names[i], "isv_svn") && strcmp(names[i], "guest_svn"))
            continue; /* a byte already at its top: no higher minimum exists */
        snprintf(pol, sizeof pol,
                 "{\"level\":\"%s\",\"measurements\":[\"%s\"],\"seq\":3,\"min_svns\":{\"%s\":%llu}}",
                 level, hex, names[i], (unsigned long long)v + 1);
        snprintf(rule, sizeof rule, "policy rule 'min_svns.%s' failed", names[i]);
        const char *need[] = {rule, NULL};
        decide(pol, c, MT_EPERM, need, NULL);
    }
}

static void test_snp_min(void **state)
{
    (void)state;
    TV_REQUIRE();
    static const tv_item coll[] = {{MT_COLL_AMD_VCEK, "sev-snp/gosevguest-milan-vcek.der"},
                                   {MT_COLL_AMD_CHAIN, "sev-snp/amd-ask-ark-milan-vcek.pem"},
                                   {0, NULL}};
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_SEV_SNP, "sev-snp/gosevguest-milan-report.bin", coll, AT_VCEK, c);
    /* the recorded guest is a debug one, refused as it is (test_snp); the
     * TCB status is evaluated from collateral, as check_level assumes */
    c->debug = false;
    c->tcb_status = MT_TCB_UP_TO_DATE;
    static const char *const names[] = {"tcb.bootloader", "tcb.tee", "tcb.snp", "tcb.microcode",
                                        "guest_svn"};
    check_mins("sev-snp", "measurement", c, names, sizeof names / sizeof names[0]);
    /* all four reported-TCB components at once, as an operator pins a TCB */
    char hex[97], pol[1024];
    meas_hex(c, "measurement", hex);
    snprintf(pol, sizeof pol,
             "{\"level\":\"sev-snp\",\"measurements\":[\"%s\"],\"seq\":1,\"min_svns\":{"
             "\"tcb.bootloader\":%llu,\"tcb.tee\":%llu,\"tcb.snp\":%llu,\"tcb.microcode\":%llu}}",
             hex, (unsigned long long)svn_of(c, "tcb.bootloader"),
             (unsigned long long)svn_of(c, "tcb.tee"), (unsigned long long)svn_of(c, "tcb.snp"),
             (unsigned long long)svn_of(c, "tcb.microcode"));
    decide(pol, c, MT_OK, NULL, NULL);
    /* SGX names are no SNP minimums */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sev-snp\",\"measurements\":[\"%s\"],\"seq\":1,\"min_svns\":{"
             "\"isv_svn\":1}}",
             hex);
    decide(pol, c, MT_EINVAL, (const char *const[]){"field 'min_svns'", NULL}, NULL);
    free(c);
}

static void test_tdx_min(void **state)
{
    (void)state;
    TV_REQUIRE();
    static const tv_item coll[] = {
        {MT_COLL_DCAP_BUNDLE, "tdx/dcapqvl-tdx-quote-collateral.json"}, {0, NULL}};
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_TDX, "tdx/dcapqvl-tdx-quote.dat", coll, AT_QVL, c);
    /* the per-byte claims equal the TEE_TCB_SVN bytes */
    const mt_attest_measurement *t = mt_attest_claims_measurement(c, "tee_tcb_svn");
    assert_non_null(t);
    assert_int_equal(t->len, 16);
    static const char *const names[] = {
        "tee_tcb_svn.0",  "tee_tcb_svn.1",  "tee_tcb_svn.2",  "tee_tcb_svn.3",
        "tee_tcb_svn.4",  "tee_tcb_svn.5",  "tee_tcb_svn.6",  "tee_tcb_svn.7",
        "tee_tcb_svn.8",  "tee_tcb_svn.9",  "tee_tcb_svn.10", "tee_tcb_svn.11",
        "tee_tcb_svn.12", "tee_tcb_svn.13", "tee_tcb_svn.14", "tee_tcb_svn.15",
        "tdx_module.svn", "tdx_module.major"};
    for (int i = 0; i < 16; i++)
        assert_int_equal(svn_of(c, names[i]), t->value[i]);
    check_mins("tdx", "mrtd", c, names, sizeof names / sizeof names[0]);
    free(c);
}

static void test_sgx_signer(void **state)
{
    (void)state;
    TV_REQUIRE();
    static const tv_item coll[] = {
        {MT_COLL_DCAP_BUNDLE, "sgx-dcap/dcapqvl-sgx-quote-collateral.json"}, {0, NULL}};
    mt_attest_claims *c = malloc(sizeof *c);
    verify(MT_ATTEST_SGX, "sgx-dcap/dcapqvl-sgx-quote.dat", coll, AT_QVL, c);
    /* refused as recorded for its TCB status (test_sgx); the signer rules
     * are checked with that rule met */
    c->tcb_status = MT_TCB_UP_TO_DATE;
    c->n_advisories = 0;
    c->debug = false;
    static const char *const names[] = {"isv_svn", "config_svn"};
    check_mins("sgx", "mrenclave", c, names, 2);
    char enc[65], sig[65], other_enc[65], other_sig[65], pol[1400];
    meas_hex(c, "mrenclave", enc);
    meas_hex(c, "mrsigner", sig);
    snprintf(other_enc, sizeof other_enc, "%s", enc);
    other_enc[7] = other_enc[7] == '0' ? '1' : '0';
    snprintf(other_sig, sizeof other_sig, "%s", sig);
    other_sig[7] = other_sig[7] == '0' ? '1' : '0';
    unsigned long long prod = svn_of(c, "isv_prod_id"), isv = svn_of(c, "isv_svn");
    /* an upgrade: the policy lists only the old enclave, but the signer,
     * product and minimum isv_svn match: released */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mrsigners\":[\"%s\",\"%s\"],"
             "\"isv_prod_ids\":[%llu],\"min_svns\":{\"isv_svn\":%llu},\"seq\":2}",
             other_enc, other_sig, sig, prod, isv);
    decide(pol, c, MT_OK, NULL, NULL);
    /* signer-style alone (no measurement listed) */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[%llu],\"min_svns\":{\"isv_svn\":%llu},\"seq\":2}",
             sig, prod, isv);
    decide(pol, c, MT_OK, NULL, NULL);
    /* security review: a signer and a product id without a minimum isv_svn
     * would release to every older (vulnerable) enclave of the signer; the
     * signer rules stay inert, the refusal says what is missing */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[%llu],\"seq\":2}",
             sig, prod);
    decide(pol, c, MT_EPERM,
           (const char *const[]){"allows no measurement", "signer-style release is inert",
                                 "minimum isv_svn", "--kind min_svn isv_svn=N", NULL},
           NULL);
    /* a minimum of another SVN (config_svn) does not activate it */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[%llu],\"min_svns\":{\"config_svn\":0},\"seq\":2}",
             other_enc, sig, prod);
    decide(pol, c, MT_EPERM,
           (const char *const[]){"measurements.gateway.mrenclave",
                                 "signer-style release is inert", "minimum isv_svn", NULL},
           NULL);
    /* `admin release show` says which (signer_release) */
    const char *st = NULL;
    mt_err err;
    mt_err_clear(&err);
    assert_int_equal(mt_keystore_signer_release(pol, strlen(pol), &st, &err), MT_OK);
    assert_non_null(st);
    assert_non_null(strstr(st, "inert: it needs a minimum isv_svn"));
    /* with the minimum at 0 (any isv_svn, stated explicitly) it releases */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[%llu],\"min_svns\":{\"isv_svn\":0},\"seq\":2}",
             other_enc, sig, prod);
    decide(pol, c, MT_OK, NULL, NULL);
    assert_int_equal(mt_keystore_signer_release(pol, strlen(pol), &st, &err), MT_OK);
    assert_string_equal(st, "active");
    snprintf(pol, sizeof pol, "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"seq\":2}", enc);
    assert_int_equal(mt_keystore_signer_release(pol, strlen(pol), &st, &err), MT_OK);
    assert_null(st);
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"isv_prod_ids\":[1],\"seq\":2}",
             enc);
    assert_int_equal(mt_keystore_signer_release(pol, strlen(pol), &st, &err), MT_OK);
    assert_non_null(strstr(st, "inert: it needs an mrsigner"));
    assert_int_equal(mt_keystore_signer_release("{\"level\":7}", 11, &st, &err), MT_EINVAL);
    /* the same signer, but an older isv_svn than the minimum: refused */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[%llu],\"min_svns\":{\"isv_svn\":%llu},\"seq\":2}",
             other_enc, sig, prod, isv + 1);
    decide(pol, c, MT_EPERM,
           (const char *const[]){"policy rule 'min_svns.isv_svn' failed", NULL}, NULL);
    /* another product of the same signer: refused, naming the rule */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[%llu],\"min_svns\":{\"isv_svn\":0},\"seq\":2}",
             other_enc, sig, (prod + 1) % 65536);
    decide(pol, c, MT_EPERM,
           (const char *const[]){"measurements.gateway.mrenclave", "signer-style release",
                                 "isv_prod_ids", NULL},
           NULL);
    /* another signer: refused by both ways, each named */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[%llu],\"min_svns\":{\"isv_svn\":0},\"seq\":2}",
             other_enc, other_sig, prod);
    decide(pol, c, MT_EPERM,
           (const char *const[]){"measurements.gateway.mrenclave",
                                 "signer-style release: policy rule "
                                 "'measurements.gateway.mrsigner' failed",
                                 NULL},
           NULL);
    /* a signer without any product id releases nothing */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mrsigners\":[\"%s\"],\"seq\":2}",
             other_enc, sig);
    decide(pol, c, MT_EPERM, (const char *const[]){"isv_prod_id", "inert", NULL}, NULL);
    /* the measurement-style release still works beside the signer rules */
    snprintf(pol, sizeof pol,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[%llu],\"seq\":2}",
             enc, other_sig, (prod + 1) % 65536);
    decide(pol, c, MT_OK, NULL, NULL);
    free(c);
}

/* Garbage in the new rules: refused with the field named, the value never
 * echoed; the auditors' draft of a change is the KeyStore's own edit. */
static void test_rules_garbage(void **state)
{
    (void)state;
    mt_attest_claims *c = calloc(1, sizeof *c);
    char h64[65];
    memset(h64, 'b', 64);
    h64[64] = '\0';
    char pol[1024];
    static const struct {
        const char *level, *rules, *field;
    } bad[] = {
        {"tdx", "\"mrsigners\":[\"H\"]", "mrsigners"},
        {"sev-snp", "\"isv_prod_ids\":[1]", "isv_prod_ids"},
        {"sgx", "\"mrsigners\":[\"H\",\"H\"]", "duplicate"},
        {"sgx", "\"mrsigners\":[\"ZZZZ\"]", "mrsigners"},
        {"sgx", "\"isv_prod_ids\":[70000]", "isv_prod_ids"},
        {"sgx", "\"isv_prod_ids\":[-1]", "isv_prod_ids"},
        {"sgx", "\"isv_prod_ids\":[\"1\"]", "isv_prod_ids"},
        {"sgx", "\"isv_prod_ids\":[3,3]", "duplicate"},
        {"sgx", "\"min_svns\":{\"isv_svn\":-1}", "min_svns.isv_svn"},
        {"sgx", "\"min_svns\":{\"isv_svn\":\"1\"}", "min_svns.isv_svn"},
        {"sgx", "\"min_svns\":{\"isv_svn\":70000}", "at most 65535"},
        {"sgx", "\"min_svns\":{\"GARBAGE<script>\":1}", "field 'min_svns'"},
        {"tdx", "\"min_svns\":{\"tee_tcb_svn.16\":1}", "field 'min_svns'"},
        {"tdx", "\"min_svns\":{\"tee_tcb_svn.0\":256}", "at most 255"},
        {"sgx", "\"min_svns\":[1]", "min_svns"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char rules[256];
        const char *r = bad[i].rules;
        size_t k = 0;
        for (; *r && k < sizeof rules - 70; r++) /* H: a well-formed 64-hex value */
            if (*r == 'H') {
                memcpy(rules + k, h64, 64);
                k += 64;
            } else
                rules[k++] = *r;
        rules[k] = '\0';
        snprintf(pol, sizeof pol, "{\"level\":\"%s\",\"measurements\":[],\"seq\":1,%s}",
                 bad[i].level, rules);
        decide(pol, c, MT_EINVAL, (const char *const[]){bad[i].field, NULL}, "GARBAGE");
        /* the same rules in a document auditors would sign */
        snprintf(pol, sizeof pol,
                 "{\"mesatee_release_policy\":1,\"level\":\"%s\",\"measurements\":[],"
                 "\"soft_platform_keys\":[],\"tpm2_aks\":[],\"seq\":2,%s}",
                 bad[i].level, rules);
        mt_err err;
        assert_int_equal(mt_keystore_parse_release_doc(pol, strlen(pol), &err), MT_EINVAL);
    }
    /* values of allow/revoke */
    const struct {
        const char *kind, *value;
        bool allow;
        mt_status want;
    } vals[] = {
        {"mrsigner", "GARBAGE", true, MT_EINVAL},     {"isv_prod_id", "65536", true, MT_EINVAL},
        {"isv_prod_id", "012", true, MT_EINVAL},      {"isv_prod_id", "+1", true, MT_EINVAL},
        {"isv_prod_id", "7", true, MT_OK},            {"min_svn", "isv_svn", true, MT_EINVAL},
        {"min_svn", "isv_svn=", true, MT_EINVAL},     {"min_svn", "isv_svn=1x", true, MT_EINVAL},
        {"min_svn", "isv_svn=4", true, MT_OK},        {"min_svn", "isv_svn=4", false, MT_EINVAL},
        {"min_svn", "isv_svn", false, MT_OK},         {"min_svn", "GARBAGE=1", true, MT_EINVAL},
        {"min_svn", "tcb.snp=300", true, MT_EINVAL},  {"kind<GARBAGE>", "1", true, MT_EINVAL},
        {"measurement", "GARBAGE", true, MT_EINVAL},  {"tpm2_ak", h64, false, MT_OK},
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        mt_err err;
        mt_err_clear(&err);
        mt_status st = mt_keystore_check_value(vals[i].kind, vals[i].allow, vals[i].value, &err);
        if (st != vals[i].want)
            fail_msg("%s %s: got %s", vals[i].kind, vals[i].value, mt_status_name(st));
        if (strstr(err.msg, "GARBAGE"))
            fail_msg("the error echoes input: %s", err.msg);
    }
    free(c);
}

/* The auditors' draft: the KeyStore's own edit, accepted by the document
 * parser, refused when it changes nothing or would strand every node. */
static void test_draft(void **state)
{
    (void)state;
    char enc[65], sig[65], shown[1024];
    memset(enc, 'a', 64);
    enc[64] = '\0';
    memset(sig, 'c', 64);
    sig[64] = '\0';
    snprintf(shown, sizeof shown,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"soft_platform_keys\":[],"
             "\"tpm2_aks\":[],\"seq\":7,\"this_build\":null,"
             "\"release_signers\":{\"keys\":2,\"threshold\":1}}",
             enc);
    char *doc = NULL;
    mt_err err;
    assert_int_equal(mt_keystore_release_draft(shown, strlen(shown), true, "mrsigner", sig, &doc,
                                                &err),
                     MT_OK);
    char want[512];
    snprintf(want, sizeof want,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mesatee_release_policy\":1,"
             "\"mrsigners\":[\"%s\"],\"seq\":8,\"soft_platform_keys\":[],\"tpm2_aks\":[]}\n",
             enc, sig);
    assert_string_equal(doc, want);
    assert_int_equal(mt_keystore_parse_release_doc(doc, strlen(doc), &err), MT_OK);
    free(doc);
    assert_int_equal(mt_keystore_release_draft(shown, strlen(shown), true, "min_svn",
                                                "isv_svn=3", &doc, &err),
                     MT_OK);
    assert_non_null(strstr(doc, "\"min_svns\":{\"isv_svn\":3}"));
    free(doc);
    /* nothing to sign */
    assert_int_equal(mt_keystore_release_draft(shown, strlen(shown), true, "measurement", enc,
                                                &doc, &err),
                     MT_ECONFLICT);
    assert_null(doc);
    /* the last measurement, with no signer-style release: refused */
    assert_int_equal(mt_keystore_release_draft(shown, strlen(shown), false, "measurement", enc,
                                                &doc, &err),
                     MT_ECONFLICT);
    /* with a signer and a product id but no minimum isv_svn the signer rule
     * is inert: the last measurement may not go */
    snprintf(shown, sizeof shown,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[4],\"seq\":7}",
             enc, sig);
    assert_int_equal(mt_keystore_release_draft(shown, strlen(shown), false, "measurement", enc,
                                                &doc, &err),
                     MT_ECONFLICT);
    /* with a signer, a product id and a minimum isv_svn it may go; then
     * none of the three may */
    snprintf(shown, sizeof shown,
             "{\"level\":\"sgx\",\"measurements\":[\"%s\"],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[4],\"min_svns\":{\"isv_svn\":2},\"seq\":7}",
             enc, sig);
    assert_int_equal(mt_keystore_release_draft(shown, strlen(shown), false, "measurement", enc,
                                                &doc, &err),
                     MT_OK);
    free(doc);
    snprintf(shown, sizeof shown,
             "{\"level\":\"sgx\",\"measurements\":[],\"mrsigners\":[\"%s\"],"
             "\"isv_prod_ids\":[4],\"min_svns\":{\"isv_svn\":2},\"seq\":7}",
             sig);
    assert_int_equal(mt_keystore_release_draft(shown, strlen(shown), false, "min_svn", "isv_svn",
                                                &doc, &err),
                     MT_ECONFLICT);
    tv_assert_msg(&err, "signer-style release would become inert");
    assert_int_equal(mt_keystore_release_draft(shown, strlen(shown), false, "mrsigner", sig,
                                                &doc, &err),
                     MT_ECONFLICT);
    assert_int_equal(mt_keystore_release_draft(shown, strlen(shown), false, "isv_prod_id", "4",
                                                &doc, &err),
                     MT_ECONFLICT);
    assert_int_equal(mt_keystore_release_draft(shown, strlen(shown), false, "isv_prod_id", "5",
                                                &doc, &err),
                     MT_ENOTFOUND);
    /* rules of another level, and garbage from the server */
    assert_int_equal(mt_keystore_release_draft("{\"level\":\"soft\",\"measurements\":[],\"seq\":1}",
                                                45, true, "min_svn", "isv_svn=1", &doc, &err),
                     MT_EINVAL);
    assert_int_equal(mt_keystore_release_draft("[1,2]", 5, true, "min_svn", "isv_svn=1", &doc,
                                                &err),
                     MT_EINVAL);
    assert_null(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snp),
        cmocka_unit_test(test_tdx),
        cmocka_unit_test(test_sgx),
        cmocka_unit_test(test_wrong_kind),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_snp_min),
        cmocka_unit_test(test_tdx_min),
        cmocka_unit_test(test_sgx_signer),
        cmocka_unit_test(test_rules_garbage),
        cmocka_unit_test(test_draft),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
