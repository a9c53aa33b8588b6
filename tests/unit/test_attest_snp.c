/* SEV-SNP verifier against the real reports in testvectors/attestation/sev-snp
 * (see its PROVENANCE.md): expected claims, published negative cases, byte
 * flips in every field that matters, expiry at today's date. */
#include "test_attest_util.c"

#include "mt_attest_int.h"
#include "mt_dcap_coll.h"

#define SNP "sev-snp/"
/* Inside every VCEK's validity; the VLEK needs its own window. */
#define AT_VCEK "2025-01-01T00:00:00Z"
#define AT_VLEK "2025-06-01T00:00:00Z"
#define TODAY "2026-11-23T00:00:00Z"

typedef struct snp_case {
    const char *report, *vcek, *chain;
    bool hex;
} snp_case;

static const snp_case GOSEV = {SNP "gosevguest-milan-report.bin", SNP "gosevguest-milan-vcek.der",
                               SNP "amd-ask-ark-milan-vcek.pem", false};
static const snp_case VIRTEE = {SNP "virtee-milan-report.hex", SNP "virtee-milan-vcek.der",
                                SNP "amd-ask-ark-milan-vcek.pem", true};
static const snp_case TRUSTEE = {SNP "trustee-report.bin", SNP "trustee-vcek.der",
                                 SNP "amd-ask-ark-milan-vcek.pem", false};
static const snp_case VLEK = {SNP "trustee-vlek-report.bin", SNP "trustee-vlek.der",
                              SNP "amd-asvk-ark-milan-vlek.pem", false};

/* The report bytes of a case (hex text decoded). */
static uint8_t *load_report(const snp_case *sc, size_t *len)
{
    uint8_t *raw = tv_read(sc->report, len);
    if (!sc->hex)
        return raw;
    size_t n = *len;
    while (n && (raw[n - 1] == '\n' || raw[n - 1] == '\r' || raw[n - 1] == ' '))
        n--;
    raw[n] = 0;
    uint8_t *bin = malloc(n / 2);
    assert_non_null(bin);
    tv_hex((const char *)raw, bin, n / 2);
    free(raw);
    *len = n / 2;
    return bin;
}

/* Verifies a case, with the report optionally altered at one offset. */
static mt_status run_case(const snp_case *sc, const char *vcek, const char *chain, int64_t at,
                          long flip_off, mt_attest_claims *cl, mt_err *err)
{
    size_t len;
    uint8_t *rep = load_report(sc, &len);
    if (flip_off >= 0)
        rep[flip_off] ^= 0x01;
    tv_item items[] = {{MT_COLL_AMD_VCEK, vcek ? vcek : sc->vcek},
                       {MT_COLL_AMD_CHAIN, chain ? chain : sc->chain},
                       {0, NULL}};
    mt_attest_collateral *c = tv_coll(items);
    mt_status st = mt_attest_verify(MT_ATTEST_SEV_SNP, rep, len, c, at, cl, err);
    mt_attest_collateral_free(c);
    free(rep);
    return st;
}

static void expect_ok(const snp_case *sc, const char *at, mt_attest_claims *cl)
{
    mt_err err = {0};
    mt_status st = run_case(sc, NULL, NULL, tv_time(at), -1, cl, &err);
    if (st != MT_OK)
        fail_msg("%s: expected success, got %s: %s", sc->report, mt_status_name(st), err.msg);
    assert_int_equal(cl->kind, MT_ATTEST_SEV_SNP);
    tv_print_claims(sc->report, cl);
}

static void test_gosevguest(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(&GOSEV, AT_VCEK, &cl);
    assert_string_equal(cl.product, "Milan-B0");
    assert_string_equal(cl.endorsement, "VCEK");
    tv_assert_svn(&cl, "version", 2);
    tv_assert_svn(&cl, "policy", 0xb0000);
    tv_assert_svn(&cl, "vmpl", 0);
    tv_assert_svn(&cl, "tcb.bootloader", 2);
    tv_assert_svn(&cl, "tcb.tee", 0);
    tv_assert_svn(&cl, "tcb.snp", 5);
    tv_assert_svn(&cl, "tcb.microcode", 0x44);
    tv_assert_svn(&cl, "reported_tcb", 0x4405000000000002ull);
    tv_assert_meas(&cl, "measurement",
                   "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31"
                   "a5a608eb0cf2e4872b01");
    uint8_t rd[64] = {1, 2, 3, 4, 5};
    assert_int_equal(cl.report_data_len, 64);
    assert_memory_equal(cl.report_data, rd, 64);
    assert_true(cl.debug); /* policy 0xb0000 has bit 19 (DEBUG) set */
    assert_int_equal(cl.tcb_status, MT_TCB_NOT_EVALUATED);
    assert_true(cl.checked & MT_ATTEST_CHECKED_CHIP_ID);
    const mt_attest_measurement *chip = mt_attest_claims_measurement(&cl, "chip_id");
    assert_non_null(chip);
    assert_int_equal(chip->value[0], 0x3a);
    assert_int_equal(chip->value[63], 0x5d);
}

static void test_virtee(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(&VIRTEE, AT_VCEK, &cl);
    assert_string_equal(cl.product, "Milan-B0");
    tv_assert_svn(&cl, "policy", 0x30000);
    tv_assert_svn(&cl, "tcb.bootloader", 3);
    tv_assert_svn(&cl, "tcb.snp", 8);
    tv_assert_svn(&cl, "tcb.microcode", 0x73);
    tv_assert_meas(&cl, "measurement",
                   "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c"
                   "60bd95b9c480cd81841f");
    uint8_t rd[64];
    tv_hex("d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be0"
           "63fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd",
           rd, 64);
    assert_memory_equal(cl.report_data, rd, 64);
    assert_false(cl.debug);
}

static void test_trustee(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(&TRUSTEE, AT_VCEK, &cl);
    tv_assert_svn(&cl, "guest_svn", 4);
    tv_assert_svn(&cl, "policy", 0x3001f);
    /* current_tcb differs; the VCEK matches reported_tcb. */
    tv_assert_svn(&cl, "reported_tcb", 0x7308000000000003ull);
    tv_assert_svn(&cl, "current_tcb", 0xce08000000000003ull);
    tv_assert_meas(&cl, "measurement",
                   "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e6"
                   "92e6be917f9050d3d38c");
    uint8_t rd[64] = {0};
    tv_hex("ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2", rd, 32);
    assert_memory_equal(cl.report_data, rd, 64);
    assert_int_equal(cl.signer_len, 48); /* ID block: id_key_digest set */
    assert_int_equal(cl.signer[0], 0x03);
    assert_false(cl.debug);
}

static void test_vlek(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    expect_ok(&VLEK, AT_VLEK, &cl);
    assert_string_equal(cl.endorsement, "VLEK");
    assert_string_equal(cl.product, "Milan");
    tv_assert_svn(&cl, "version", 3);
    tv_assert_svn(&cl, "vmpl", 1);
    tv_assert_svn(&cl, "cpuid_family", 0x19);
    tv_assert_svn(&cl, "cpuid_model", 1);
    tv_assert_svn(&cl, "cpuid_stepping", 1);
    tv_assert_meas(&cl, "measurement",
                   "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5c"
                   "eeb5a493df2a570d7bf0");
    assert_false(cl.checked & MT_ATTEST_CHECKED_CHIP_ID); /* MASK_CHIP_ID */
}

/* Published negative case: the known-bad VCEKs do not chain to the ASK. */
static void test_invalid_vceks(void **state)
{
    TV_REQUIRE();
    const char *bad[] = {SNP "trustee-vcek-invalid-legacy.der", SNP "trustee-vcek-invalid-new.der"};
    for (size_t i = 0; i < 2; i++) {
        mt_attest_claims cl;
        mt_err err = {0};
        assert_int_equal(run_case(&TRUSTEE, bad[i], NULL, tv_time(AT_VCEK), -1, &cl, &err),
                         MT_EAUTH);
        tv_assert_msg(&err, "VCEK -> ASK -> ARK-Milan: certificate chain does not verify");
        tv_assert_msg(&err, "certificate signature failure");
        assert_int_equal(cl.n_measurements, 0); /* claims zeroed on failure */
    }
}

/* Expired collateral at today's date: the AWS VLEK lived 2024-12-10 .. 2025-12-10. */
static void test_vlek_expired_today(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    mt_err err = {0};
    assert_int_equal(run_case(&VLEK, NULL, NULL, tv_time(TODAY), -1, &cl, &err), MT_EAUTH);
    tv_assert_msg(&err, "certificate has expired");
    tv_assert_msg(&err, "CN=SEV-VLEK");
    tv_assert_msg(&err, "2025-12-10T22:14:21Z");
    /* And before it was issued. */
    assert_int_equal(run_case(&VLEK, NULL, NULL, tv_time("2024-01-01T00:00:00Z"), -1, &cl, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "certificate is not yet valid");
}

/* A flip in any signed field breaks the report signature (or an earlier check). */
static void test_flips(void **state)
{
    TV_REQUIRE();
    static const struct {
        long off;
        const char *what, *msg;
    } flips[] = {
        {0x08, "policy", "VCEK signature over the report does not verify"},
        {0x50, "report_data", "VCEK signature over the report does not verify"},
        {0x8f, "report_data end", "VCEK signature over the report does not verify"},
        {0x90, "measurement", "VCEK signature over the report does not verify"},
        {0xbf, "measurement end", "VCEK signature over the report does not verify"},
        {0xc0, "host_data", "VCEK signature over the report does not verify"},
        {0x180, "reported_tcb bootloader", "reported_tcb bootloader SPL 3 does not match"},
        {0x187, "reported_tcb microcode", "does not match the VCEK's microcode SPL"},
        {0x1a0, "chip_id", "chip_id does not match the VCEK hwID"},
        {0x38, "current_tcb", "VCEK signature over the report does not verify"},
        {0x2a0, "signature r", "VCEK signature over the report does not verify"},
        {0x2e8, "signature s", "VCEK signature over the report does not verify"},
        {0x2d0, "signature r padding", "signature padding is not zero"},
        {0x34, "signature_algo", "signature algorithm 0 is not 1"},
        {0x00, "version 2 -> 3", "VCEK signature over the report does not verify"},
        {0x01, "version 2 -> 258", "unsupported SNP report version 258"},
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        mt_attest_claims cl;
        mt_err err = {0};
        mt_status st = run_case(&GOSEV, NULL, NULL, tv_time(AT_VCEK), flips[i].off, &cl, &err);
        if (st == MT_OK)
            fail_msg("flip of %s accepted", flips[i].what);
        if (!strstr(err.msg, flips[i].msg))
            fail_msg("flip of %s: expected \"%s\", got \"%s\"", flips[i].what, flips[i].msg,
                     err.msg);
    }
}

/* A flipped byte in the VCEK certificate breaks the chain. */
static void test_cert_flip(void **state)
{
    TV_REQUIRE();
    size_t vlen, rlen;
    uint8_t *vcek = tv_read(GOSEV.vcek, &vlen);
    uint8_t *rep = load_report(&GOSEV, &rlen);
    size_t offs[] = {vlen - 1, vlen / 2};
    for (size_t i = 0; i < 2; i++) {
        vcek[offs[i]] ^= 0x01;
        tv_item items[] = {{MT_COLL_AMD_CHAIN, GOSEV.chain}, {0, NULL}};
        mt_attest_collateral *c = tv_coll(items);
        assert_int_equal(mt_attest_collateral_add(c, MT_COLL_AMD_VCEK, vcek, vlen, NULL), MT_OK);
        mt_attest_claims cl;
        mt_err err = {0};
        assert_int_not_equal(mt_attest_verify(MT_ATTEST_SEV_SNP, rep, rlen, c, tv_time(AT_VCEK),
                                              &cl, &err),
                             MT_OK);
        tv_assert_msg(&err, "certificate chain does not verify");
        tv_assert_msg(&err, "certificate signature failure (depth 0, CN=SEV-VCEK)");
        mt_attest_collateral_free(c);
        vcek[offs[i]] ^= 0x01;
    }
    free(vcek);
    free(rep);
}

/* Wrong or missing collateral. */
static void test_wrong_collateral(void **state)
{
    TV_REQUIRE();
    mt_attest_claims cl;
    mt_err err = {0};
    /* Another chip's VCEK. */
    assert_int_equal(run_case(&GOSEV, VIRTEE.vcek, NULL, tv_time(AT_VCEK), -1, &cl, &err),
                     MT_EAUTH);
    /* A VLEK report with a VCEK, and a VCEK report with the VLEK. */
    assert_int_equal(run_case(&VLEK, GOSEV.vcek, SNP "amd-ask-ark-milan-vcek.pem",
                              tv_time(AT_VLEK), -1, &cl, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "signed by a VLEK but the certificate is CN=SEV-VCEK");
    /* VLEK with the ASK chain instead of the ASVK one. */
    assert_int_equal(run_case(&VLEK, NULL, SNP "amd-ask-ark-milan-vcek.pem", tv_time(AT_VLEK), -1,
                              &cl, &err),
                     MT_EAUTH);
    /* Milan VCEK with the Genoa chain. */
    assert_int_equal(run_case(&GOSEV, NULL, SNP "amd-ask-ark-genoa-vcek.pem", tv_time(AT_VCEK),
                              -1, &cl, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "ARK-Genoa: certificate chain does not verify");
    /* The Turin VCEK chains to ARK-Turin, but is not this chip's key. */
    assert_int_equal(run_case(&GOSEV, SNP "virtee-turin-vcek.der", SNP "amd-ask-ark-turin-vcek.pem",
                              tv_time(AT_VCEK), -1, &cl, &err),
                     MT_EAUTH);
    fprintf(stderr, "    Turin VCEK on a Milan report: %s\n", err.msg);
    assert_null(strstr(err.msg, "chain does not verify"));
    /* An unpinned root: a chain holding only the ASK. */
    size_t n;
    uint8_t *pem = tv_read(GOSEV.chain, &n);
    char *second = strstr((char *)pem + 10, "-----BEGIN CERTIFICATE-----");
    assert_non_null(second);
    *second = 0;
    size_t rlen;
    uint8_t *rep = load_report(&GOSEV, &rlen);
    tv_item items[] = {{MT_COLL_AMD_VCEK, GOSEV.vcek}, {0, NULL}};
    mt_attest_collateral *c = tv_coll(items);
    assert_int_equal(
        mt_attest_collateral_add(c, MT_COLL_AMD_CHAIN, pem, strlen((char *)pem), NULL), MT_OK);
    assert_int_equal(mt_attest_verify(MT_ATTEST_SEV_SNP, rep, rlen, c, tv_time(AT_VCEK), &cl, &err),
                     MT_EAUTH);
    tv_assert_msg(&err, "no pinned ARK");
    mt_attest_collateral_free(c);
    /* No collateral at all. */
    assert_int_equal(mt_attest_verify(MT_ATTEST_SEV_SNP, rep, rlen, NULL, tv_time(AT_VCEK), &cl,
                                      &err),
                     MT_EINVAL);
    tv_assert_msg(&err, "no VCEK certificate was given");
    /* Truncated report. */
    assert_int_equal(mt_attest_verify(MT_ATTEST_SEV_SNP, rep, rlen - 1, NULL, tv_time(AT_VCEK),
                                      &cl, &err),
                     MT_EINVAL);
    tv_assert_msg(&err, "SNP report is 1183 bytes");
    free(rep);
    free(pem);
}

/* ---- the handle remembers a verified VCEK/VLEK chain (issue 13) ---------- */

/* The report of sc with byte off XORed with x (off < 0: unchanged), verified
 * with handle c at `at`. */
static mt_status verify_in(mt_attest_collateral *c, const snp_case *sc, long off, uint8_t x,
                           const char *at, mt_attest_claims *cl, mt_err *err)
{
    size_t len;
    uint8_t *rep = load_report(sc, &len);
    if (off >= 0)
        rep[off] ^= x;
    mt_err_clear(err);
    mt_status st = mt_attest_verify(MT_ATTEST_SEV_SNP, rep, len, c, tv_time(at), cl, err);
    free(rep);
    return st;
}

/* Warm handle and fresh handle agree: status, message, claims byte for byte. */
static void same_as_fresh(mt_attest_collateral *warm, const snp_case *sc, long off, uint8_t x,
                          const char *at)
{
    tv_item items[] = {{MT_COLL_AMD_VCEK, sc->vcek}, {MT_COLL_AMD_CHAIN, sc->chain}, {0, NULL}};
    mt_attest_collateral *fresh = tv_coll(items);
    mt_attest_claims *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    mt_err ea, eb;
    mt_status sa = verify_in(fresh, sc, off, x, at, a, &ea);
    mt_status sb = verify_in(warm, sc, off, x, at, b, &eb);
    if (sa != sb || strcmp(ea.msg, eb.msg) != 0)
        fail_msg("%s byte %ld at %s: fresh handle %s \"%s\", warm handle %s \"%s\"", sc->report,
                 off, at, mt_status_name(sa), ea.msg, mt_status_name(sb), eb.msg);
    if (memcmp(a, b, sizeof *a) != 0)
        fail_msg("%s at %s: the warm handle's claims differ", sc->report, at);
    mt_attest_collateral_free(fresh);
    free(a);
    free(b);
}

static void test_warm_chain(void **state)
{
    TV_REQUIRE();
    static const struct {
        const snp_case *sc;
        const char *at;
    } cases[] = {{&GOSEV, AT_VCEK}, {&VIRTEE, AT_VCEK}, {&TRUSTEE, AT_VCEK}, {&VLEK, AT_VLEK}};
    static const char *const times[] = {
        TODAY,     "2024-01-01T00:00:00Z", "2060-01-01T00:00:00Z", "2010-01-01T00:00:00Z",
        AT_VLEK,   AT_VCEK,
    };
    static const struct {
        long off;
        uint8_t x;
    } flips[] = {{0x08, 1}, {0x50, 1}, {0x90, 1}, {0x180, 1}, {0x187, 1}, {0x1a0, 1},
                 {0x2a0, 1}, {0x2e8, 1}, {0x48, 0x04} /* VCEK <-> VLEK */};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const snp_case *sc = cases[i].sc;
        tv_item items[] = {{MT_COLL_AMD_VCEK, sc->vcek}, {MT_COLL_AMD_CHAIN, sc->chain},
                           {0, NULL}};
        mt_attest_collateral *c = tv_coll(items);
        mt_attest_claims cl;
        mt_err err;
        assert_int_equal(verify_in(c, sc, -1, 0, cases[i].at, &cl, &err), MT_OK);
        mt_dcap_cache_stats st;
        mt_dcap_cache_stats_get(mt_attest_coll_dcap_cache(c), &st);
        assert_int_equal(st.pck_stored, 1);
        assert_int_equal(st.pck_hits, 0);
        same_as_fresh(c, sc, -1, 0, cases[i].at);
        mt_dcap_cache_stats_get(mt_attest_coll_dcap_cache(c), &st);
        assert_int_equal(st.pck_hits, 1); /* the chain was not verified again */
        for (size_t t = 0; t < sizeof times / sizeof times[0]; t++)
            same_as_fresh(c, sc, -1, 0, times[t]);
        for (size_t f = 0; f < sizeof flips / sizeof flips[0]; f++) {
            assert_int_not_equal(verify_in(c, sc, flips[f].off, flips[f].x, cases[i].at, &cl,
                                           &err),
                                 MT_OK);
            same_as_fresh(c, sc, flips[f].off, flips[f].x, cases[i].at);
        }
        /* New collateral: nothing remembered about the old items is used. */
        char *genoa = tv_path(SNP "amd-ask-ark-genoa-vcek.pem");
        assert_int_equal(mt_attest_collateral_add_file(c, MT_COLL_AMD_CHAIN, genoa, &err), MT_OK);
        free(genoa);
        assert_int_not_equal(verify_in(c, sc, -1, 0, cases[i].at, &cl, &err), MT_OK);
        mt_attest_collateral_free(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gosevguest),   cmocka_unit_test(test_virtee),
        cmocka_unit_test(test_trustee),      cmocka_unit_test(test_vlek),
        cmocka_unit_test(test_invalid_vceks), cmocka_unit_test(test_vlek_expired_today),
        cmocka_unit_test(test_flips),        cmocka_unit_test(test_cert_flip),
        cmocka_unit_test(test_wrong_collateral), cmocka_unit_test(test_warm_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
