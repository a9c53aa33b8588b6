/* Unit tests of the hardware evidence producers (src/tee/tee_hw.c), which
 * were NOT exercised on SEV-SNP, TDX or SGX hardware here. What can be tested
 * without it: the configfs-tsm flow against a fake directory tree (the root is
 * a parameter), with recorded SNP reports and TDX quotes as outblob, verified
 * with mt_attest at their pinned times; the /dev/sev-guest request encoding
 * and response parsing; Gramine's /dev/attestation flow against a fake tree
 * with a recorded SGX quote; and the start-up errors of levels sev-snp, tdx
 * and sgx on this machine. */
#include "test_attest_util.c"

#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include "mt_ratls.h"
#include "mt_tee.h"
#include "tee_hw.h"

#define AT_VCEK "2025-01-01T00:00:00Z"
#define AT_QVL "2025-06-20T00:00:00Z"

static char g_root[PATH_MAX];

static void put_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[PATH_MAX + 64];
    int n = snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < sizeof p);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void put_str(const char *dir, const char *name, const char *s)
{
    put_file(dir, name, s, strlen(s));
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_root, sizeof g_root, "%s/mt-tee-hw-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(g_root) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    return system(cmd) == 0 ? 0 : -1;
}

/* A fake configfs-tsm entry: generation 7, the given provider and outblob. */
static void fake_entry(const char *entry, const char *provider, const uint8_t *out, size_t len)
{
    char dir[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s", g_root, entry);
    assert_int_equal(mkdir(dir, 0700), 0);
    put_str(dir, "generation", "7\n");
    put_str(dir, "provider", provider);
    put_file(dir, "outblob", out, len);
}

/* Simulates the kernel: our inblob write bumps generation by one (or, with
 * ud non-NULL, another writer bumps it again). */
static void bump_gen(const char *entry_dir, void *ud)
{
    put_str(entry_dir, "generation", ud ? "9\n" : "8\n");
}

static uint8_t *snp_report(size_t *len)
{
    uint8_t *r = tv_read("sev-snp/gosevguest-milan-report.bin", len);
    assert_int_equal(*len, MT_SNP_REPORT_LEN);
    return r;
}

static void verify_snp(const uint8_t *rep, size_t len)
{
    tv_item items[] = {{MT_COLL_AMD_VCEK, "sev-snp/gosevguest-milan-vcek.der"},
                       {MT_COLL_AMD_CHAIN, "sev-snp/amd-ask-ark-milan-vcek.pem"},
                       {0, NULL}};
    mt_attest_collateral *c = tv_coll(items);
    mt_attest_claims cl;
    mt_err err;
    mt_status st = mt_attest_verify(MT_ATTEST_SEV_SNP, rep, len, c, tv_time(AT_VCEK), &cl, &err);
    if (st != MT_OK)
        fail_msg("SNP outblob does not verify: %s", err.msg);
    assert_int_equal(cl.kind, MT_ATTEST_SEV_SNP);
    mt_attest_collateral_free(c);
}

/* configfs-tsm, SNP: the outblob is the recorded report, verified by mt_attest. */
static void test_tsm_snp_recorded(void **state)
{
    (void)state;
    TV_REQUIRE();
    size_t len = 0;
    uint8_t *rep = snp_report(&len);
    fake_entry("snp", "sev_guest\n", rep, len);
    put_str(g_root, "snp/auxblob", "");
    uint8_t in[64];
    for (int i = 0; i < 64; i++)
        in[i] = (uint8_t)i;
    mt_tsm_report r;
    mt_err err;
    mt_status st = mt_tsm_get_report(g_root, "snp", "sev_guest", in, bump_gen, NULL, &r, &err);
    if (st != MT_OK)
        fail_msg("tsm: %s", err.msg);
    assert_string_equal(r.provider, "sev_guest");
    assert_int_equal(r.generation, 8);
    assert_null(r.auxblob); /* empty auxblob: no certificate table */
    assert_int_equal(r.outblob_len, len);
    assert_memory_equal(r.outblob, rep, len);
    verify_snp(r.outblob, r.outblob_len);
    /* inblob holds exactly our 64 bytes */
    size_t il = 0;
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/snp/inblob", g_root);
    uint8_t *ib = NULL;
    assert_int_equal(mt_file_read(p, 1024, &ib, &il, &err), MT_OK);
    assert_int_equal(il, 64);
    assert_memory_equal(ib, in, 64);
    free(ib);
    mt_tsm_report_clear(&r);
    free(rep);
}

/* configfs-tsm, TDX: the outblob is a recorded DCAP quote. */
static void test_tsm_tdx_recorded(void **state)
{
    (void)state;
    TV_REQUIRE();
    size_t len = 0;
    uint8_t *q = tv_read("tdx/dcapqvl-tdx-quote.dat", &len);
    fake_entry("tdx", "tdx_guest", q, len);
    put_str(g_root, "tdx/auxblob", "aux");
    uint8_t in[64] = {1};
    mt_tsm_report r;
    mt_err err;
    assert_int_equal(mt_tsm_get_report(g_root, "tdx", "tdx_guest", in, bump_gen, NULL, &r, &err),
                     MT_OK);
    assert_int_equal(r.auxblob_len, 3);
    mt_attest_claims cl;
    mt_status st = mt_attest_verify(MT_ATTEST_TDX, r.outblob, r.outblob_len, NULL,
                                    tv_time(AT_QVL), &cl, &err);
    if (st != MT_OK)
        fail_msg("TDX outblob does not verify: %s", err.msg);
    assert_int_equal(cl.kind, MT_ATTEST_TDX);
    mt_tsm_report_clear(&r);
    free(q);
}

static void test_tsm_errors(void **state)
{
    (void)state;
    uint8_t in[64] = {0}, blob[4] = {1, 2, 3, 4};
    mt_tsm_report r;
    mt_err err;
    /* missing root: the start-up message */
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/absent", g_root);
    assert_int_equal(mt_tsm_get_report(missing, "x", NULL, in, NULL, NULL, &r, &err),
                     MT_EUNAVAIL);
    assert_non_null(strstr(err.msg, "configfs-tsm not available"));
    assert_non_null(strstr(err.msg, "not exercised on hardware here"));
    /* another writer between our write and our read */
    fake_entry("race", "sev_guest", blob, sizeof blob);
    assert_int_equal(mt_tsm_get_report(g_root, "race", NULL, in, bump_gen, (void *)1, &r, &err),
                     MT_ECONFLICT);
    assert_non_null(strstr(err.msg, "another process"));
    assert_null(r.outblob);
    /* generation not bumped at all (a kernel that did not take our write) */
    fake_entry("stale", "sev_guest", blob, sizeof blob);
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/stale", g_root);
    assert_int_equal(mt_tsm_get_report(g_root, "stale", NULL, in, NULL, NULL, &r, &err),
                     MT_ECONFLICT);
    /* wrong provider */
    fake_entry("prov", "tdx_guest", blob, sizeof blob);
    assert_int_equal(mt_tsm_get_report(g_root, "prov", "sev_guest", in, bump_gen, NULL, &r, &err),
                     MT_EUNAVAIL);
    assert_non_null(strstr(err.msg, "tdx_guest"));
    /* empty outblob; missing generation; bad generation */
    fake_entry("empty", "sev_guest", blob, 0);
    assert_int_equal(mt_tsm_get_report(g_root, "empty", NULL, in, bump_gen, NULL, &r, &err),
                     MT_EIO);
    snprintf(dir, sizeof dir, "%s/nogen", g_root);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_not_equal(mt_tsm_get_report(g_root, "nogen", NULL, in, NULL, NULL, &r, &err),
                         MT_OK);
    fake_entry("badgen", "sev_guest", blob, sizeof blob);
    put_str(g_root, "badgen/generation", "x7");
    assert_int_equal(mt_tsm_get_report(g_root, "badgen", NULL, in, NULL, NULL, &r, &err), MT_EIO);
    /* entry names with a slash are refused */
    assert_int_equal(mt_tsm_get_report(g_root, "a/b", NULL, in, NULL, NULL, &r, &err),
                     MT_EINVAL);
}

/* /dev/sev-guest: the request layout and the MSG_REPORT_RSP reader. */
static void test_sev_guest_encoding(void **state)
{
    (void)state;
    uint8_t ud[64], req[MT_SNP_REPORT_REQ_LEN];
    for (int i = 0; i < 64; i++)
        ud[i] = (uint8_t)(0xa0 + i);
    memset(req, 0xee, sizeof req);
    mt_snp_report_req_encode(ud, 0x01020304u, req);
    assert_memory_equal(req, ud, 64);
    static const uint8_t vmpl_le[4] = {4, 3, 2, 1};
    assert_memory_equal(req + 64, vmpl_le, 4);
    for (size_t i = 68; i < sizeof req; i++)
        assert_int_equal(req[i], 0);

    uint8_t *resp = calloc(1, MT_SNP_REPORT_RESP_LEN);
    assert_non_null(resp);
    const uint8_t *rep = NULL;
    mt_err err;
    resp[4] = MT_SNP_REPORT_LEN & 0xff;
    resp[5] = MT_SNP_REPORT_LEN >> 8;
    if (tv_dir()) {
        size_t len = 0;
        uint8_t *r = snp_report(&len);
        memcpy(resp + 32, r, len);
        free(r);
    }
    assert_int_equal(mt_snp_report_resp_parse(resp, MT_SNP_REPORT_RESP_LEN, &rep, &err), MT_OK);
    assert_ptr_equal(rep, resp + 32);
    if (tv_dir())
        verify_snp(rep, MT_SNP_REPORT_LEN);
    resp[0] = 0x16; /* firmware status: invalid parameter */
    assert_int_equal(mt_snp_report_resp_parse(resp, MT_SNP_REPORT_RESP_LEN, &rep, &err), MT_EIO);
    assert_null(rep);
    resp[0] = 0;
    resp[4] = 0; /* report_size 1024 */
    assert_int_equal(mt_snp_report_resp_parse(resp, MT_SNP_REPORT_RESP_LEN, &rep, &err),
                     MT_EINVAL);
    resp[4] = MT_SNP_REPORT_LEN & 0xff;
    assert_int_equal(mt_snp_report_resp_parse(resp, 32 + MT_SNP_REPORT_LEN - 1, &rep, &err),
                     MT_EINVAL);
    free(resp);
    uint8_t *r = NULL, *certs = NULL;
    size_t cl = 0;
    char dev[PATH_MAX + 16];
    snprintf(dev, sizeof dev, "%s/no-sev-guest", g_root);
    assert_int_equal(mt_sev_guest_ext_report(dev, ud, &r, &certs, &cl, &err), MT_EUNAVAIL);
    assert_non_null(strstr(err.msg, "not exercised on hardware here"));
}

/* Gramine /dev/attestation against a fake tree with a recorded SGX quote. */
static void test_gramine_fake(void **state)
{
    (void)state;
    TV_REQUIRE();
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/attestation", g_root);
    assert_int_equal(mkdir(dir, 0700), 0);
    uint8_t ud[64] = "Hello, world!", *q = NULL;
    size_t len = 0, ql = 0;
    mt_err err;
    assert_int_equal(mt_gramine_quote(dir, ud, &q, &ql, &err), MT_EUNAVAIL); /* no type */
    assert_non_null(strstr(err.msg, "not exercised on hardware here"));
    put_str(dir, "attestation_type", "epid\n");
    assert_int_equal(mt_gramine_quote(dir, ud, &q, &ql, &err), MT_EUNAVAIL);
    assert_non_null(strstr(err.msg, "'epid'"));
    put_str(dir, "attestation_type", "dcap\n");
    uint8_t *rec = tv_read("sgx-dcap/dcapqvl-sgx-quote.dat", &len);
    put_file(dir, "quote", rec, len);
    mt_status st = mt_gramine_quote(dir, ud, &q, &ql, &err);
    if (st != MT_OK)
        fail_msg("gramine: %s", err.msg);
    assert_int_equal(ql, len);
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/user_report_data", dir);
    uint8_t *w = NULL;
    size_t wl = 0;
    assert_int_equal(mt_file_read(p, 1024, &w, &wl, &err), MT_OK);
    assert_int_equal(wl, 64);
    assert_memory_equal(w, ud, 64);
    mt_attest_claims cl;
    st = mt_attest_verify(MT_ATTEST_SGX, q, ql, NULL, tv_time(AT_QVL), &cl, &err);
    if (st != MT_OK)
        fail_msg("SGX quote from the fake /dev/attestation does not verify: %s", err.msg);
    assert_memory_equal(cl.report_data, ud, 64); /* the recorded quote bound "Hello, world!" */
    /* the level producer over the same tree: an SGX quote under tag 60000 */
    mt_tee_hw *hw = NULL;
    assert_int_equal(mt_tee_hw_open("sgx", NULL, NULL, dir, &hw, &err), MT_OK);
    uint64_t tag = 0;
    uint8_t *ev = NULL;
    size_t evl = 0;
    assert_int_equal(mt_tee_hw_evidence(hw, ud, &tag, &ev, &evl, &err), MT_OK);
    assert_int_equal(tag, MT_RATLS_TAG_QUOTE);
    assert_int_equal(evl, len);
    free(ev);
    mt_tee_hw_free(hw);
    /* a quote too short */
    free(q);
    q = NULL;
    put_file(dir, "quote", rec, 10);
    assert_int_equal(mt_gramine_quote(dir, ud, &q, &ql, &err), MT_EIO);
    free(w);
    free(q);
    free(rec);
}

/* The SNP level producer over a fake configfs tree: tag and report. */
static void test_hw_snp_producer_fake(void **state)
{
    (void)state;
    TV_REQUIRE();
    char root[PATH_MAX + 16];
    snprintf(root, sizeof root, "%s/tsm-snp", g_root);
    assert_int_equal(mkdir(root, 0700), 0);
    mt_tee_hw *hw = NULL;
    mt_err err;
    assert_int_equal(mt_tee_hw_open("sev-snp", root, NULL, NULL, &hw, &err), MT_OK);
    uint8_t rd[64] = {0}, *ev = NULL;
    uint64_t tag = 0;
    size_t evl = 0;
    /* The producer makes its own entry; a fake tree has no files in it. */
    assert_int_not_equal(mt_tee_hw_evidence(hw, rd, &tag, &ev, &evl, &err), MT_OK);
    assert_non_null(strstr(err.msg, "not exercised on hardware here"));
    mt_tee_hw_free(hw);
}

/* On this machine (no TEE) the hardware levels fail at start, clearly. */
static void test_levels_fail_here(void **state)
{
    (void)state;
    struct stat sb;
    if (stat(MT_TSM_ROOT, &sb) == 0 || stat(MT_SEV_GUEST_DEV, &sb) == 0 ||
        stat(MT_GRAMINE_ATTEST_ROOT, &sb) == 0) {
        fprintf(stderr, "SKIP: this machine has a TEE interface\n");
        skip();
    }
    mt_tee *t = NULL;
    mt_err err;
    assert_int_equal(mt_tee_open("tdx", g_root, &t, &err), MT_EUNAVAIL);
    assert_string_equal(err.msg, "configfs-tsm not available: /sys/kernel/config/tsm/report "
                                 "missing; this producer was not exercised on hardware here");
    assert_null(t);
    assert_int_equal(mt_tee_open("sev-snp", g_root, &t, &err), MT_EUNAVAIL);
    assert_non_null(strstr(err.msg, "configfs-tsm not available: /sys/kernel/config/tsm/report "
                                    "missing"));
    assert_non_null(strstr(err.msg, "/dev/sev-guest"));
    assert_int_equal(mt_tee_open("sgx", g_root, &t, &err), MT_EUNAVAIL);
    assert_non_null(strstr(err.msg, "/dev/attestation/attestation_type missing"));
    assert_non_null(strstr(err.msg, "not exercised on hardware here"));
    assert_int_equal(mt_tee_open("sgx2", g_root, &t, &err), MT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tsm_snp_recorded),  cmocka_unit_test(test_tsm_tdx_recorded),
        cmocka_unit_test(test_tsm_errors),        cmocka_unit_test(test_sev_guest_encoding),
        cmocka_unit_test(test_gramine_fake),      cmocka_unit_test(test_hw_snp_producer_fake),
        cmocka_unit_test(test_levels_fail_here),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
