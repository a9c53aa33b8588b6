/* Unit tests of the attestation readers that need no test vectors: times,
 * kind names, the bounds-checked reader, DER, CBOR, COSE, JSON spans,
 * collateral handling, and malformed evidence of every kind. */
#include "test_attest_util.c"

#include "mt_cbor.h"
#include "mt_cose.h"
#include "mt_dcap.h"
#include "mt_dcap_coll.h"
#include "mt_nitro.h"
#include "mt_rd.h"
#include "mt_snp.h"
#include "mt_tpm2.h"
#include "mt_x5.h"

static void test_time(void **state)
{
    int64_t t;
    assert_int_equal(mt_attest_time_parse("1970-01-01T00:00:00Z", &t, NULL), MT_OK);
    assert_int_equal(t, 0);
    assert_int_equal(mt_attest_time_parse("2025-06-19T10:56:11Z", &t, NULL), MT_OK);
    assert_int_equal(t, 1750330571);
    assert_int_equal(mt_attest_time_parse("2023-09-18T15:03:30.860Z", &t, NULL), MT_OK);
    assert_int_equal(t, 1695049410);
    mt_err err;
    assert_int_equal(mt_attest_time_parse("2025-06-19 10:56:11Z", &t, &err), MT_EINVAL);
    assert_int_equal(mt_attest_time_parse("2025-13-19T10:56:11Z", &t, &err), MT_EINVAL);
    assert_int_equal(mt_attest_time_parse("2025-06-19T10:56:11+02:00", &t, &err), MT_EINVAL);
    assert_int_equal(mt_attest_time_parse(NULL, &t, &err), MT_EINVAL);
    /* Impossible dates are refused rather than normalised (issue 8, item 5). */
    static const char *const bad[] = {
        "2025-02-31T00:00:00Z", "2025-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
        "2025-04-31T00:00:00Z", "2025-06-00T00:00:00Z", "2025-06-19T24:00:00Z",
        "2025-06-19T10:60:00Z", "2025-06-19T10:56:60Z", "2025-12-31T23:58:60Z",
        "2025-06-19T10:56:61Z", "2025-00-19T10:56:11Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (mt_attest_time_parse(bad[i], &t, &err) != MT_EINVAL)
            fail_msg("'%s' was accepted as %lld", bad[i], (long long)t);
    /* Leap days and the leap second are real. */
    assert_int_equal(mt_attest_time_parse("2024-02-29T12:00:00Z", &t, NULL), MT_OK);
    assert_int_equal(t, 1709208000);
    assert_int_equal(mt_attest_time_parse("2000-02-29T00:00:00Z", &t, NULL), MT_OK);
    assert_int_equal(mt_attest_time_parse("2016-12-31T23:59:60Z", &t, NULL), MT_OK);
    assert_int_equal(t, 1483228800); /* = 2017-01-01T00:00:00Z */
    assert_int_equal(mt_attest_time_parse("2025-01-31T23:59:59Z", &t, NULL), MT_OK);
}

static void test_names(void **state)
{
    mt_attest_kind k;
    assert_int_equal(mt_attest_kind_parse("tdx", &k, NULL), MT_OK);
    assert_int_equal(k, MT_ATTEST_TDX);
    assert_string_equal(mt_attest_kind_name(MT_ATTEST_SEV_SNP), "sev-snp");
    mt_err err;
    assert_int_equal(mt_attest_kind_parse("tpm2", &k, &err), MT_OK);
    assert_int_equal(k, MT_ATTEST_TPM2);
    assert_int_equal(mt_attest_kind_parse("tpm1.2", &k, &err), MT_EINVAL);
    assert_string_equal(mt_attest_tcb_status_name(MT_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED),
                        "ConfigurationAndSWHardeningNeeded");
}

static void test_rd_der(void **state)
{
    const uint8_t b[] = {1, 2, 3};
    mt_rd r;
    mt_rd_init(&r, b, sizeof b);
    assert_int_equal(mt_rd_u16le(&r), 0x0201);
    assert_int_equal(mt_rd_u16le(&r), 0); /* short: fails, zero */
    assert_false(mt_rd_ok(&r));
    assert_int_equal(mt_rd_left(&r), 0);
    /* DER: long length beyond the buffer. */
    const uint8_t der[] = {0x30, 0x82, 0xff, 0xff, 0x00};
    mt_der d;
    mt_rd_init(&r, der, sizeof der);
    assert_false(mt_der_next(&r, &d));
    const uint8_t oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};
    char txt[64];
    assert_true(mt_der_oid_text(oid, sizeof oid, txt, sizeof txt));
    assert_string_equal(txt, "1.2.840.113741.1.13.1");
    const uint8_t bad_oid[] = {0x2a, 0x86};
    assert_false(mt_der_oid_text(bad_oid, sizeof bad_oid, txt, sizeof txt));
    const uint8_t i9[] = {0x02, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    mt_rd_init(&r, i9, sizeof i9);
    uint64_t v;
    assert_true(mt_der_next(&r, &d));
    assert_false(mt_der_uint(&d, &v)); /* over 64 bits */
    mt_pck_ext px;
    mt_err err;
    assert_int_equal(mt_dcap_pck_ext_parse(i9, sizeof i9, &px, &err), MT_EINVAL);
}

static void test_cbor(void **state)
{
    mt_rd r;
    uint8_t mt;
    uint64_t arg;
    const uint8_t indef[] = {0x9f, 0x01, 0xff};
    mt_rd_init(&r, indef, sizeof indef);
    assert_false(mt_cbor_head(&r, &mt, &arg));
    /* Deep nesting is refused. */
    uint8_t deep[64];
    memset(deep, 0x81, sizeof deep);
    deep[63] = 0x00;
    mt_rd_init(&r, deep, sizeof deep);
    assert_false(mt_cbor_skip(&r));
    /* A huge array count with no bytes behind it. */
    const uint8_t huge[] = {0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    mt_rd_init(&r, huge, sizeof huge);
    assert_false(mt_cbor_skip(&r));
    const uint8_t neg[] = {0x38, 0x22};
    int64_t v;
    mt_rd_init(&r, neg, sizeof neg);
    assert_true(mt_cbor_int(&r, &v));
    assert_int_equal(v, -35);
    uint8_t h[9];
    assert_int_equal(mt_cbor_put_head(h, MT_CBOR_BSTR, 300), 3);
    assert_int_equal(h[0], 0x59);
    /* COSE: wrong tag, wrong arity, bad alg. */
    mt_cose_sign1 m;
    mt_err err;
    const uint8_t tag17[] = {0xd1, 0x84, 0x40, 0xa0, 0x40, 0x40};
    assert_int_equal(mt_cose_sign1_parse(tag17, sizeof tag17, &m, &err), MT_EINVAL);
    tv_assert_msg(&err, "COSE tag 17 is not 18");
    const uint8_t three[] = {0x83, 0x40, 0xa0, 0x40};
    assert_int_equal(mt_cose_sign1_parse(three, sizeof three, &m, &err), MT_EINVAL);
    const uint8_t es256[] = {0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x40, 0x40};
    assert_int_equal(mt_cose_sign1_parse(es256, sizeof es256, &m, &err), MT_EINVAL);
    tv_assert_msg(&err, "COSE algorithm -7 is not ES384");
}

static void test_json_member(void **state)
{
    const char *doc = "{\"a\": [1, {\"x\": \"}\"}], \"tcbInfo\" : {\"k\":\"v\\\"}\"} , \"z\":null}";
    const char *v;
    size_t n;
    assert_true(mt_dcap_json_member(doc, strlen(doc), "tcbInfo", &v, &n));
    assert_int_equal(n, strlen("{\"k\":\"v\\\"}\"}"));
    assert_memory_equal(v, "{\"k\":\"v\\\"}\"}", n);
    assert_false(mt_dcap_json_member(doc, strlen(doc), "missing", &v, &n));
    assert_false(mt_dcap_json_member("{\"tcbInfo\": {", 13, "tcbInfo", &v, &n));
    mt_err err;
    assert_int_equal(mt_dcap_tcb_info_check("{\"id\":\"SGX\",\"version\":2}", 24, &err), MT_EINVAL);
    tv_assert_msg(&err, "TCB info version 2 is not supported");
}

static void test_collateral(void **state)
{
    mt_attest_collateral *c = mt_attest_collateral_new();
    assert_non_null(c);
    mt_err err;
    assert_int_equal(mt_attest_collateral_add(c, 99, (const uint8_t *)"x", 1, &err), MT_EINVAL);
    assert_int_equal(mt_attest_collateral_add(c, MT_COLL_AMD_VCEK, NULL, 0, &err), MT_EINVAL);
    assert_int_equal(mt_attest_collateral_load_dir(c, "/nonexistent-dir", &err), MT_ENOTFOUND);
    /* A bundle that is not JSON. */
    assert_int_equal(mt_attest_collateral_add(c, MT_COLL_DCAP_BUNDLE, (const uint8_t *)"{", 1, &err),
                     MT_OK);
    mt_dcap_coll dc;
    assert_int_equal(mt_dcap_coll_load(c, &dc, &err), MT_EINVAL);
    mt_attest_collateral_free(c);
    mt_attest_collateral_free(NULL);
}

/* Malformed evidence of each kind fails cleanly with MT_EINVAL. */
static void test_malformed(void **state)
{
    uint8_t buf[MT_SNP_REPORT_LEN] = {0};
    mt_attest_claims cl;
    mt_err err;
    assert_int_equal(mt_attest_verify(MT_ATTEST_SEV_SNP, buf, sizeof buf, NULL, 0, &cl, &err),
                     MT_EINVAL);
    tv_assert_msg(&err, "unsupported SNP report version 0");
    buf[0] = 2;
    buf[0x34] = 1;
    buf[0x48] = 2 << 2; /* signing key 2 */
    assert_int_equal(mt_attest_verify(MT_ATTEST_SEV_SNP, buf, sizeof buf, NULL, 0, &cl, &err),
                     MT_EINVAL);
    tv_assert_msg(&err, "neither VCEK (0) nor VLEK (1)");
    uint8_t q[64] = {4, 0, 2, 0, 0x81};
    assert_int_equal(mt_attest_verify(MT_ATTEST_TDX, q, sizeof q, NULL, 0, &cl, &err), MT_EINVAL);
    tv_assert_msg(&err, "truncated in its report body");
    assert_int_equal(mt_attest_verify(MT_ATTEST_NITRO, q, sizeof q, NULL, 0, &cl, &err), MT_EINVAL);
    assert_int_equal(mt_attest_verify(MT_ATTEST_NITRO, q, 0, NULL, 0, &cl, &err), MT_EINVAL);
    assert_int_equal(mt_attest_verify(99, q, sizeof q, NULL, 0, &cl, &err), MT_EINVAL);
    static uint8_t big[70000];
    assert_int_equal(mt_attest_verify(MT_ATTEST_SGX, big, sizeof big, NULL, 0, &cl, &err), MT_EINVAL);
    tv_assert_msg(&err, "over the 65536-byte limit");
}

/* ---- crafted Nitro documents (issue 8, item 2) ----------------------------- */

typedef struct cb {
    uint8_t b[8192];
    size_t n;
} cb;

static void cb_head(cb *c, uint8_t major, uint64_t arg)
{
    assert_true(c->n + 9 <= sizeof c->b);
    c->n += mt_cbor_put_head(c->b + c->n, major, arg);
}

static void cb_str(cb *c, uint8_t major, const void *p, size_t n)
{
    cb_head(c, major, n);
    assert_true(c->n + n <= sizeof c->b);
    memcpy(c->b + c->n, p, n);
    c->n += n;
}

static void cb_tstr(cb *c, const char *s) { cb_str(c, MT_CBOR_TSTR, s, strlen(s)); }

/* "pcrs": {first..first+count-1: 48 bytes} */
static void cb_pcrs(cb *c, unsigned first, unsigned count)
{
    uint8_t v[48];
    memset(v, 0x5a, sizeof v);
    cb_tstr(c, "pcrs");
    cb_head(c, MT_CBOR_MAP, count);
    for (unsigned i = 0; i < count; i++) {
        cb_head(c, MT_CBOR_UINT, first + i);
        cb_str(c, MT_CBOR_BSTR, v, sizeof v);
    }
}

/* The required fields other than pcrs (5 entries). */
static void cb_required(cb *c)
{
    const uint8_t der[4] = {0x30, 0x02, 0x05, 0x00};
    cb_tstr(c, "module_id");
    cb_tstr(c, "i-0123456789abcdef0-enc0123456789abcd");
    cb_tstr(c, "digest");
    cb_tstr(c, "SHA384");
    cb_tstr(c, "timestamp");
    cb_head(c, MT_CBOR_UINT, 1700000000000ull);
    cb_tstr(c, "certificate");
    cb_str(c, MT_CBOR_BSTR, der, sizeof der);
    cb_tstr(c, "cabundle");
    cb_head(c, MT_CBOR_ARRAY, 1);
    cb_str(c, MT_CBOR_BSTR, der, sizeof der);
}

/* COSE_Sign1 [h'{1: -35}', {}, payload, 96-byte signature] around p. */
static void cb_cose(cb *out, const cb *p)
{
    const uint8_t prot[] = {0xa1, 0x01, 0x38, 0x22};
    uint8_t sig[96] = {0};
    out->n = 0;
    cb_head(out, MT_CBOR_TAG, 18);
    cb_head(out, MT_CBOR_ARRAY, 4);
    cb_str(out, MT_CBOR_BSTR, prot, sizeof prot);
    cb_head(out, MT_CBOR_MAP, 0);
    cb_str(out, MT_CBOR_BSTR, p->b, p->n);
    cb_str(out, MT_CBOR_BSTR, sig, sizeof sig);
}

static void test_nitro_crafted(void **state)
{
    static mt_nitro_doc d;
    static cb c, env;
    mt_err err;
    mt_attest_claims cl;

    /* Well-formed shape: parses (the certificates are not, so verify fails later). */
    c.n = 0;
    cb_head(&c, MT_CBOR_MAP, 6);
    cb_required(&c);
    cb_pcrs(&c, 0, MT_NITRO_MAX_PCRS);
    assert_int_equal(mt_nitro_doc_parse(c.b, c.n, &d, &err), MT_OK);
    assert_int_equal(d.n_pcrs, MT_NITRO_MAX_PCRS);

    /* 32 PCRs, then "pcrs" again with 32 more: the old reader appended the
     * second map after the first (pcr[32..63]), overwriting n_pcrs and the
     * pointers behind the array. Now: a clean error, before any value of the
     * repeated key is read, and before any signature check. */
    c.n = 0;
    cb_head(&c, MT_CBOR_MAP, 7);
    cb_required(&c);
    cb_pcrs(&c, 0, MT_NITRO_MAX_PCRS);
    cb_pcrs(&c, 0, MT_NITRO_MAX_PCRS);
    assert_int_equal(mt_nitro_doc_parse(c.b, c.n, &d, &err), MT_EINVAL);
    tv_assert_msg(&err, "repeats a key");
    cb_cose(&env, &c);
    assert_int_equal(mt_attest_verify(MT_ATTEST_NITRO, env.b, env.n, NULL, 0, &cl, &err),
                     MT_EINVAL);
    tv_assert_msg(&err, "repeats a key");

    /* The same with distinct PCR indexes in the second map (1 + 32 entries). */
    c.n = 0;
    cb_head(&c, MT_CBOR_MAP, 7);
    cb_required(&c);
    cb_pcrs(&c, 0, 1);
    cb_pcrs(&c, 0, MT_NITRO_MAX_PCRS);
    assert_int_equal(mt_nitro_doc_parse(c.b, c.n, &d, &err), MT_EINVAL);

    /* More PCRs than fit, and a PCR index out of range. */
    c.n = 0;
    cb_head(&c, MT_CBOR_MAP, 6);
    cb_required(&c);
    cb_pcrs(&c, 0, MT_NITRO_MAX_PCRS + 1);
    assert_int_equal(mt_nitro_doc_parse(c.b, c.n, &d, &err), MT_EINVAL);
    tv_assert_msg(&err, "pcrs is not a map of 1 to 32");
    c.n = 0;
    cb_head(&c, MT_CBOR_MAP, 6);
    cb_required(&c);
    cb_pcrs(&c, 1, MT_NITRO_MAX_PCRS);
    assert_int_equal(mt_nitro_doc_parse(c.b, c.n, &d, &err), MT_EINVAL);

    /* A repeated PCR index inside one map. */
    c.n = 0;
    cb_head(&c, MT_CBOR_MAP, 6);
    cb_required(&c);
    cb_tstr(&c, "pcrs");
    cb_head(&c, MT_CBOR_MAP, 2);
    uint8_t v[48] = {0};
    for (int i = 0; i < 2; i++) {
        cb_head(&c, MT_CBOR_UINT, 3);
        cb_str(&c, MT_CBOR_BSTR, v, sizeof v);
    }
    assert_int_equal(mt_nitro_doc_parse(c.b, c.n, &d, &err), MT_EINVAL);

    /* A repeated optional key, the second time with a value the first would
     * have accepted; an integer key encoded two ways is still one key. */
    c.n = 0;
    cb_head(&c, MT_CBOR_MAP, 8);
    cb_required(&c);
    cb_pcrs(&c, 0, 1);
    cb_tstr(&c, "user_data");
    cb_str(&c, MT_CBOR_BSTR, "a", 1);
    cb_tstr(&c, "user_data");
    cb_str(&c, MT_CBOR_BSTR, "b", 1);
    assert_int_equal(mt_nitro_doc_parse(c.b, c.n, &d, &err), MT_EINVAL);
    tv_assert_msg(&err, "repeats a key");
    const uint8_t dup_int[] = {0xa2, 0x01, 0x00, 0x18, 0x01, 0x00};
    mt_rd r;
    mt_rd_init(&r, dup_int, sizeof dup_int);
    assert_false(mt_cbor_map_unique(&r));
    assert_int_equal(r.off, 0); /* not consumed */
    const uint8_t two[] = {0xa2, 0x01, 0x00, 0x61, 0x01, 0x00};
    mt_rd_init(&r, two, sizeof two);
    assert_true(mt_cbor_map_unique(&r));

    /* Trailing bytes after the map. */
    c.n = 0;
    cb_head(&c, MT_CBOR_MAP, 6);
    cb_required(&c);
    cb_pcrs(&c, 0, 2);
    cb_head(&c, MT_CBOR_UINT, 0);
    assert_int_equal(mt_nitro_doc_parse(c.b, c.n, &d, &err), MT_EINVAL);
    tv_assert_msg(&err, "trailing bytes");

    /* A COSE protected header with alg repeated under two encodings of key 1. */
    const uint8_t prot2[] = {0x84, 0x47, 0xa2, 0x01, 0x38, 0x22, 0x18, 0x01, 0x26,
                             0xa0, 0x40, 0x40};
    mt_cose_sign1 m;
    assert_int_equal(mt_cose_sign1_parse(prot2, sizeof prot2, &m, &err), MT_EINVAL);
    tv_assert_msg(&err, "distinct keys");
}

/* ---- PCK SGX extensions: repeated items and deeper OIDs (issue 8 class) ---- */

typedef struct derb {
    uint8_t b[2048];
    size_t n;
} derb;

/* Appends tag, short or 2-byte length, content. */
static void der_put(derb *d, uint8_t tag, const uint8_t *c, size_t n)
{
    assert_true(n < 65536 && d->n + 4 + n <= sizeof d->b);
    d->b[d->n++] = tag;
    if (n < 128) {
        d->b[d->n++] = (uint8_t)n;
    } else {
        d->b[d->n++] = 0x82;
        d->b[d->n++] = (uint8_t)(n >> 8);
        d->b[d->n++] = (uint8_t)n;
    }
    memcpy(d->b + d->n, c, n);
    d->n += n;
}

/* SEQUENCE { OID 1.2.840.113741.1.13.1.<arcs>, value } appended to d. */
static void sgx_item(derb *d, const uint8_t *arcs, size_t na, uint8_t vtag, const uint8_t *v,
                     size_t vn)
{
    static const uint8_t base[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};
    uint8_t oid[16];
    memcpy(oid, base, sizeof base);
    memcpy(oid + sizeof base, arcs, na);
    derb it = {.n = 0};
    der_put(&it, 0x06, oid, sizeof base + na);
    der_put(&it, vtag, v, vn);
    der_put(d, 0x30, it.b, it.n);
}

/* The extension with the TCB of 16 components + pcesvn (+ extra), optional
 * repeats: rep_fmspc adds a second FMSPC, rep_comp a second component 1,
 * deep adds the component .2.1.5. */
static size_t pck_ext(uint8_t *out, bool rep_fmspc, bool rep_comp, bool deep)
{
    derb tcb = {.n = 0}, top = {.n = 0}, all = {.n = 0};
    for (uint8_t k = 1; k <= 17; k++) {
        uint8_t arcs[2] = {2, k}, v = k == 17 ? 9 : k;
        sgx_item(&tcb, arcs, 2, 0x02, &v, 1);
    }
    if (rep_comp) {
        uint8_t arcs[2] = {2, 1}, v = 200;
        sgx_item(&tcb, arcs, 2, 0x02, &v, 1);
    }
    if (deep) {
        uint8_t arcs[3] = {2, 1, 5}, v = 201;
        sgx_item(&tcb, arcs, 3, 0x02, &v, 1);
    }
    uint8_t ppid[16] = {1}, pceid[2] = {0, 0}, fmspc[6] = {0, 0x60, 0x6a, 0, 0, 0},
            fmspc2[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint8_t a1[1] = {1}, a2[1] = {2}, a3[1] = {3}, a4[1] = {4};
    sgx_item(&top, a1, 1, 0x04, ppid, 16);
    sgx_item(&top, a2, 1, 0x30, tcb.b, tcb.n);
    sgx_item(&top, a3, 1, 0x04, pceid, 2);
    sgx_item(&top, a4, 1, 0x04, fmspc, 6);
    if (rep_fmspc)
        sgx_item(&top, a4, 1, 0x04, fmspc2, 6);
    der_put(&all, 0x30, top.b, top.n);
    memcpy(out, all.b, all.n);
    return all.n;
}

static void test_pck_ext_repeats(void **state)
{
    (void)state;
    uint8_t der[2048];
    mt_pck_ext px;
    mt_err err;
    size_t n = pck_ext(der, false, false, false);
    assert_int_equal(mt_dcap_pck_ext_parse(der, n, &px, &err), MT_OK);
    assert_int_equal(px.comp[0], 1);
    assert_int_equal(px.pcesvn, 9);
    assert_int_equal(px.fmspc[1], 0x60);
    /* A second FMSPC used to replace the first silently. */
    n = pck_ext(der, true, false, false);
    assert_int_equal(mt_dcap_pck_ext_parse(der, n, &px, &err), MT_EINVAL);
    /* A second component 1 (SVN 200) likewise. */
    n = pck_ext(der, false, true, false);
    assert_int_equal(mt_dcap_pck_ext_parse(der, n, &px, &err), MT_EINVAL);
    /* A deeper OID .2.1.5 was read by sscanf as component 1. */
    n = pck_ext(der, false, false, true);
    assert_int_equal(mt_dcap_pck_ext_parse(der, n, &px, &err), MT_EINVAL);
}

/* A tpm2-tools PCR dump that selects one bank twice: the second value of
 * PCR 0 used to overwrite the first silently. */
static void test_tpm2_tools_repeated_bank(void **state)
{
    (void)state;
    uint8_t b[4 + 16 * 8 + 4 + 4 + 8 * 66];
    memset(b, 0, sizeof b);
    size_t o = 0;
    b[o] = 2; /* count (u32le) */
    o += 4;
    for (int i = 0; i < 16; i++, o += 8) {
        if (i < 2) {
            b[o] = 0x0b; /* SHA-256, u16le */
            b[o + 2] = 3;
            b[o + 3] = 0x01; /* PCR 0 */
        }
    }
    b[o] = 1; /* one digest list */
    o += 4;
    b[o] = 2; /* two digests */
    o += 4;
    for (int k = 0; k < 8; k++, o += 66)
        if (k < 2) {
            b[o] = 32;
            memset(b + o + 2, k ? 0xbb : 0xaa, 32);
        }
    assert_int_equal(o, sizeof b);
    static mt_tpm2_pcrs pcrs;
    mt_err err;
    assert_int_equal(mt_tpm2_pcrs_parse_tools(b, sizeof b, &pcrs, &err), MT_EINVAL);
    tv_assert_msg(&err, "selects bank 0x000b twice");
    b[4 + 8] = 0x0c; /* the second selection is SHA-384: a digest of the wrong size */
    assert_int_equal(mt_tpm2_pcrs_parse_tools(b, sizeof b, &pcrs, &err), MT_EINVAL);
    b[4 + 8] = 0; /* one bank: one digest too many */
    b[4 + 8 + 2] = 0;
    b[4 + 8 + 3] = 0;
    b[0] = 1;
    assert_int_equal(mt_tpm2_pcrs_parse_tools(b, sizeof b, &pcrs, &err), MT_EINVAL);
}

/* An extension present twice is ambiguous: mt_x5_ext treats it as absent
 * (its callers then fail closed). */
static void test_x5_ext_repeated(void **state)
{
    (void)state;
    X509 *x = X509_new();
    assert_non_null(x);
    static const unsigned char v1[] = {0x02, 0x01, 0x05}, v2[] = {0x02, 0x01, 0x07};
    const unsigned char *vals[] = {v1, v2};
    const uint8_t *got;
    size_t gl;
    ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.3704.1.3.1", 1);
    for (int i = 0; i < 2; i++) {
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(os, vals[i], 3);
        X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
        assert_non_null(e);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
        bool found = mt_x5_ext(x, "1.3.6.1.4.1.3704.1.3.1", &got, &gl);
        if (i == 0) {
            assert_true(found);
            assert_int_equal(gl, 3);
            assert_int_equal(got[2], 5);
        } else {
            assert_false(found);
        }
    }
    ASN1_OBJECT_free(o);
    X509_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),      cmocka_unit_test(test_names),
        cmocka_unit_test(test_rd_der),    cmocka_unit_test(test_cbor),
        cmocka_unit_test(test_json_member), cmocka_unit_test(test_collateral),
        cmocka_unit_test(test_malformed), cmocka_unit_test(test_nitro_crafted),
        cmocka_unit_test(test_pck_ext_repeats), cmocka_unit_test(test_tpm2_tools_repeated_bank),
        cmocka_unit_test(test_x5_ext_repeated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
