/* mt_snp: SEV-SNP report parser and verifier; see mt_snp.h. */
#include "mt_snp.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "mt_attest_int.h"
#include "mt_dcap_coll.h"
#include "mt_rd.h"
#include "mt_util.h"
#include "mt_x5.h"

/* ---- parser -------------------------------------------------------------- */

/* True if n bytes at p are all zero. */
static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

mt_status mt_snp_report_parse(const uint8_t *buf, size_t len, mt_snp_report *o, mt_err *err)
{
    memset(o, 0, sizeof *o);
    if (len != MT_SNP_REPORT_LEN)
        return mt_err_set(err, MT_EINVAL, "SNP report is %zu bytes, expected %d", len,
                          MT_SNP_REPORT_LEN);
    mt_rd r;
    mt_rd_init(&r, buf, len);
    o->version = mt_rd_u32le(&r);
    o->guest_svn = mt_rd_u32le(&r);
    o->policy = mt_rd_u64le(&r);
    mt_rd_bytes(&r, o->family_id, 16);
    mt_rd_bytes(&r, o->image_id, 16);
    o->vmpl = mt_rd_u32le(&r);
    o->sig_algo = mt_rd_u32le(&r);
    o->current_tcb = mt_rd_u64le(&r);
    o->platform_info = mt_rd_u64le(&r);
    o->flags = mt_rd_u32le(&r);
    mt_rd_skip(&r, 4);
    mt_rd_bytes(&r, o->report_data, 64);
    mt_rd_bytes(&r, o->measurement, 48);
    mt_rd_bytes(&r, o->host_data, 32);
    mt_rd_bytes(&r, o->id_key_digest, 48);
    mt_rd_bytes(&r, o->author_key_digest, 48);
    mt_rd_bytes(&r, o->report_id, 32);
    mt_rd_bytes(&r, o->report_id_ma, 32);
    o->reported_tcb = mt_rd_u64le(&r); /* 0x180 */
    o->cpuid_fam = mt_rd_u8(&r);
    o->cpuid_mod = mt_rd_u8(&r);
    o->cpuid_step = mt_rd_u8(&r);
    mt_rd_skip(&r, 0x1A0 - 0x18B);
    mt_rd_bytes(&r, o->chip_id, 64); /* 0x1A0 */
    o->committed_tcb = mt_rd_u64le(&r);
    o->current_build = mt_rd_u8(&r);
    o->current_minor = mt_rd_u8(&r);
    o->current_major = mt_rd_u8(&r);
    mt_rd_skip(&r, 1);
    o->committed_build = mt_rd_u8(&r);
    o->committed_minor = mt_rd_u8(&r);
    o->committed_major = mt_rd_u8(&r);
    mt_rd_skip(&r, 1);
    o->launch_tcb = mt_rd_u64le(&r); /* 0x1F0 */
    mt_rd_skip(&r, MT_SNP_SIGNED_LEN - 0x1F8);
    mt_rd_bytes(&r, o->sig_r, 72);
    mt_rd_bytes(&r, o->sig_s, 72);
    const uint8_t *tail = mt_rd_take(&r, MT_SNP_REPORT_LEN - 0x330);
    if (!mt_rd_ok(&r) || mt_rd_left(&r) != 0)
        return mt_err_set(err, MT_EINVAL, "SNP report is truncated");
    if (o->version < 2 || o->version > 5)
        return mt_err_set(err, MT_EINVAL, "unsupported SNP report version %u (expected 2 to 5)",
                          o->version);
    if (o->version < 3) {
        o->cpuid_fam = o->cpuid_mod = o->cpuid_step = 0;
    }
    if (o->sig_algo != 1)
        return mt_err_set(err, MT_EINVAL,
                          "SNP report signature algorithm %u is not 1 (ECDSA P-384 SHA-384)",
                          o->sig_algo);
    unsigned sk = MT_SNP_SIGNING_KEY(o->flags);
    if (sk > 1)
        return mt_err_set(err, MT_EINVAL,
                          "SNP report signing key %u is neither VCEK (0) nor VLEK (1)", sk);
    if (!all_zero(o->sig_r + 48, 24) || !all_zero(o->sig_s + 48, 24) ||
        !all_zero(tail, MT_SNP_REPORT_LEN - 0x330))
        return mt_err_set(err, MT_EINVAL, "SNP report signature padding is not zero");
    return MT_OK;
}

/* ---- trust anchors --------------------------------------------------------- */

/* SHA-256 of the DER ARK certificates published by AMD KDS (cert_chain). */
static const struct {
    const char *product;
    const char *fp;
} ark_pins[] = {
    {"Milan", "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"},
    {"Genoa", "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1"},
    {"Turin", "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"},
};

#define OID_AMD "1.3.6.1.4.1.3704.1."

/* Reads a VCEK extension holding a DER INTEGER. */
static bool ext_uint(X509 *cert, const char *oid, uint64_t *out)
{
    const uint8_t *v;
    size_t n;
    if (!mt_x5_ext(cert, oid, &v, &n))
        return false;
    mt_rd r;
    mt_der d;
    mt_rd_init(&r, v, n);
    return mt_der_next(&r, &d) && mt_rd_left(&r) == 0 && mt_der_uint(&d, out);
}

/* The key of a verified chain in the handle's chain slots: SHA-256 over a
 * label, the signing-key kind, and the lengths and bytes of both items. The
 * slots are the DCAP verifier's too: they are looked up by kind
 * (MT_DCAP_CHAIN_AMD_SNP, never matching its MT_DCAP_CHAIN_INTEL_PCK) and its
 * keys hash a label of their own (mt_dcap.c pck_key), so neither verifier
 * takes the other's chain whatever bytes a quote or report carries. */
static bool chain_key(bool vlek, const uint8_t *v, size_t vl, const uint8_t *c, size_t cl,
                      uint8_t key[32])
{
    static const char label[] = "mesatee SEV-SNP chain v1";
    uint8_t hdr[sizeof label + 1 + 16];
    memcpy(hdr, label, sizeof label);
    hdr[sizeof label] = vlek;
    for (int i = 0; i < 8; i++) {
        hdr[sizeof label + 1 + i] = (uint8_t)((uint64_t)vl >> (8 * i));
        hdr[sizeof label + 9 + i] = (uint8_t)((uint64_t)cl >> (8 * i));
    }
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    bool ok = mc && EVP_DigestInit_ex(mc, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(mc, hdr, sizeof hdr) == 1 && EVP_DigestUpdate(mc, v, vl) == 1 &&
              EVP_DigestUpdate(mc, c, cl) == 1 && EVP_DigestFinal_ex(mc, key, NULL) == 1;
    EVP_MD_CTX_free(mc);
    return ok;
}

/* ---- verifier ------------------------------------------------------------ */

mt_status mt_snp_verify(const uint8_t *ev, size_t len, const mt_attest_collateral *coll,
                        int64_t at, mt_attest_claims *claims, mt_err *err)
{
    mt_snp_report rep;
    mt_status st = mt_snp_report_parse(ev, len, &rep, err);
    if (st != MT_OK)
        return st;
    bool remember = false;
    int64_t memo_lo = 0;
    bool vlek = MT_SNP_SIGNING_KEY(rep.flags) == 1;
    const char *kname = vlek ? "VLEK" : "VCEK";
    const char *caname = vlek ? "ASVK" : "ASK";

    size_t vlen, clen;
    const uint8_t *vbuf = mt_attest_coll_get(coll, MT_COLL_AMD_VCEK, &vlen);
    const uint8_t *cbuf = mt_attest_coll_get(coll, MT_COLL_AMD_CHAIN, &clen);
    if (!vbuf)
        return mt_err_set(err, MT_EINVAL,
                          "SNP report is signed by a %s but no %s certificate was given", kname,
                          kname);
    if (!cbuf)
        return mt_err_set(err, MT_EINVAL, "no AMD %s/ARK certificate chain was given", caname);

    STACK_OF(X509) *leafs = NULL, *chain = NULL, *untrusted = NULL;
    EVP_PKEY *pk = NULL;
    X509 *leaf = NULL, *ark = NULL;
    const char *ark_product = NULL;
    /* The chain, or the same VCEK/VLEK and chain bytes verified before with
     * this handle inside their window (mt_dcap_coll.h: the handle's chain
     * slots, under a key of their own). */
    mt_dcap_cache *cache = mt_attest_coll_dcap_cache(coll);
    mt_dcap_pck memo = {0};
    uint8_t key[32];
    bool keyed = cache && chain_key(vlek, vbuf, vlen, cbuf, clen, key);
    if (keyed && mt_dcap_cache_pck_get(cache, MT_DCAP_CHAIN_AMD_SNP, key, at, &memo)) {
        leaf = memo.leaf;
        ark = memo.root;
        char fp[65];
        mt_hex_encode(memo.root_fp, 32, fp); /* the ARK's, taken when it was remembered */
        for (size_t k = 0; k < sizeof ark_pins / sizeof ark_pins[0]; k++)
            if (strcmp(fp, ark_pins[k].fp) == 0)
                ark_product = ark_pins[k].product;
        if (!ark_product) { /* only pinned roots are remembered */
            st = mt_err_set(err, MT_EINTERNAL, "remembered AMD chain has no pinned ARK");
            goto out;
        }
        mt_attest_claims_until(claims, memo.hi);
        goto chain_ok;
    }
    if ((st = mt_x5_load_certs(vbuf, vlen, kname, &leafs, err)) != MT_OK)
        goto out;
    if ((st = mt_x5_load_certs(cbuf, clen, "AMD certificate chain", &chain, err)) != MT_OK)
        goto out;
    leaf = sk_X509_value(leafs, 0);

    /* Find the pinned ARK among the given chain; everything else is untrusted. */
    untrusted = sk_X509_new_null();
    if (!untrusted) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        bool pinned = false;
        for (size_t k = 0; k < sizeof ark_pins / sizeof ark_pins[0]; k++) {
            if (mt_x5_is_pinned(c, ark_pins[k].fp)) {
                ark = c;
                ark_product = ark_pins[k].product;
                pinned = true;
            }
        }
        if (!pinned)
            sk_X509_push(untrusted, c);
    }
    if (!ark) {
        st = mt_err_set(err, MT_EAUTH,
                        "AMD certificate chain holds no pinned ARK (Milan, Genoa or Turin)");
        goto out;
    }

    /* The leaf's kind must match the report's signing key. */
    char cn[64];
    mt_x5_cn(leaf, cn, sizeof cn);
    if (strcmp(cn, vlek ? "SEV-VLEK" : "SEV-VCEK") != 0) {
        st = mt_err_set(err, MT_EAUTH, "report is signed by a %s but the certificate is CN=%s",
                        kname, cn);
        goto out;
    }
    char what[64];
    snprintf(what, sizeof what, "%s -> %s -> ARK-%s", kname, caname, ark_product);
    if ((st = mt_x5_verify_chain(leaf, untrusted, ark, NULL, at, what, err)) != MT_OK)
        goto out;
    {
        int64_t lo = 0, hi = 0, lo2 = 0, hi2 = 0;
        bool known = mt_x5_validity(untrusted, leaf, NULL, &lo, &hi) &&
                     mt_x5_validity(NULL, ark, NULL, &lo2, &hi2);
        hi = hi < hi2 ? hi : hi2;
        lo = lo > lo2 ? lo : lo2;
        mt_attest_claims_until(claims, known ? hi : at);
        memo.hi = known ? hi : at;
        if (known && lo < hi) {
            remember = keyed && mt_x5_fingerprint(ark, memo.root_fp);
            memo_lo = lo;
        }
    }

    /* The intermediate must be the right kind too (ASVK for a VLEK). */
    {
        X509 *ca = NULL;
        for (int i = 0; i < sk_X509_num(untrusted); i++)
            if (X509_check_issued(sk_X509_value(untrusted, i), leaf) == X509_V_OK)
                ca = sk_X509_value(untrusted, i);
        char cacn[64], want[64];
        mt_x5_cn(ca, cacn, sizeof cacn);
        snprintf(want, sizeof want, vlek ? "SEV-VLEK-%s" : "SEV-%s", ark_product);
        if (!ca || strcmp(cacn, want) != 0) {
            st = mt_err_set(err, MT_EAUTH, "%s is issued by CN=%s, expected CN=%s", kname, cacn,
                            want);
            goto out;
        }
    }

    if (remember) { /* put takes its own references of leafs' and chain's */
        memo.leaf = leaf;
        memo.root = ark;
        mt_dcap_cache_pck_put(cache, MT_DCAP_CHAIN_AMD_SNP, key, &memo, memo_lo, memo.hi);
        memo.leaf = memo.root = NULL;
    }
chain_ok:;
    /* Product family from the certificate, matching the ARK. */
    const uint8_t *pv;
    size_t pn;
    char product[64] = "";
    if (mt_x5_ext(leaf, OID_AMD "2", &pv, &pn)) {
        mt_rd r;
        mt_der d;
        mt_rd_init(&r, pv, pn);
        if (mt_der_next(&r, &d) && d.tag == 0x16 && d.len < sizeof product &&
            mt_rd_left(&r) == 0 && d.len > 0 && !memchr(d.val, 0, d.len)) {
            memcpy(product, d.val, d.len);
            product[d.len] = 0;
        } else {
            st = mt_err_set(err, MT_EAUTH, "%s productName extension is malformed", kname);
            goto out;
        }
    }
    if (!product[0]) /* VLEKs carry no productName; the chain names the family. */
        snprintf(product, sizeof product, "%s", ark_product);
    if (strncmp(product, ark_product, strlen(ark_product)) != 0) {
        st = mt_err_set(err, MT_EAUTH, "%s product '%s' does not match ARK-%s", kname, product,
                        ark_product);
        goto out;
    }
    bool turin = strcmp(ark_product, "Turin") == 0;

    /* reported_tcb must equal the TCB the VCEK/VLEK was issued for. */
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(rep.reported_tcb >> (8 * i));
    struct {
        const char *oid, *name;
        uint8_t val;
    } tcb[] = {
        {OID_AMD "3.1", "bootloader", turin ? t[1] : t[0]},
        {OID_AMD "3.2", "tee", turin ? t[2] : t[1]},
        {OID_AMD "3.3", "snp", turin ? t[3] : t[6]},
        {OID_AMD "3.8", "microcode", t[7]},
        {OID_AMD "3.9", "fmc", t[0]},
    };
    size_t ntcb = turin ? 5 : 4;
    for (size_t i = 0; i < ntcb; i++) {
        uint64_t v;
        if (!ext_uint(leaf, tcb[i].oid, &v)) {
            st = mt_err_set(err, MT_EAUTH, "%s lacks the %s SPL extension %s", kname,
                            tcb[i].name, tcb[i].oid);
            goto out;
        }
        if (v != tcb[i].val) {
            st = mt_err_set(err, MT_EAUTH,
                            "reported_tcb %s SPL %u does not match the %s's %s SPL %llu", tcb[i].name,
                            tcb[i].val, kname, tcb[i].name, (unsigned long long)v);
            goto out;
        }
    }

    /* chip_id must equal hwID for a VCEK (unless the guest masked it). */
    bool chip_checked = false;
    if (!vlek && !all_zero(rep.chip_id, 64)) {
        const uint8_t *hw;
        size_t hn;
        if (!mt_x5_ext(leaf, OID_AMD "4", &hw, &hn)) {
            st = mt_err_set(err, MT_EAUTH, "VCEK lacks the hwID extension");
            goto out;
        }
        if (hn == 66 && hw[0] == 0x04 && hw[1] == 64) { /* tolerate an OCTET STRING wrapper */
            hw += 2;
            hn = 64;
        }
        if (hn == 0 || hn > 64 || memcmp(hw, rep.chip_id, hn) != 0 ||
            !all_zero(rep.chip_id + hn, 64 - hn)) {
            st = mt_err_set(err, MT_EAUTH, "report chip_id does not match the VCEK hwID");
            goto out;
        }
        chip_checked = true;
    }

    /* The report signature. */
    EVP_PKEY *lk = X509_get0_pubkey(leaf);
    if (!lk || EVP_PKEY_get_base_id(lk) != EVP_PKEY_EC || EVP_PKEY_get_bits(lk) != 384) {
        st = mt_err_set(err, MT_EAUTH, "%s key is not ECDSA P-384", kname);
        goto out;
    }
    if (!mt_x5_ecdsa_verify_cert(leaf, EVP_sha384(), ev, MT_SNP_SIGNED_LEN, rep.sig_r,
                                 rep.sig_s, 48, true)) {
        st = mt_err_set(err, MT_EAUTH, "%s signature over the report does not verify", kname);
        goto out;
    }

    /* Claims. */
    snprintf(claims->product, sizeof claims->product, "%s", product);
    snprintf(claims->endorsement, sizeof claims->endorsement, "%s", kname);
    mt_attest_claims_add_meas(claims, "measurement", rep.measurement, 48);
    mt_attest_claims_add_meas(claims, "host_data", rep.host_data, 32);
    mt_attest_claims_add_meas(claims, "id_key_digest", rep.id_key_digest, 48);
    mt_attest_claims_add_meas(claims, "author_key_digest", rep.author_key_digest, 48);
    mt_attest_claims_add_meas(claims, "family_id", rep.family_id, 16);
    mt_attest_claims_add_meas(claims, "image_id", rep.image_id, 16);
    mt_attest_claims_add_meas(claims, "chip_id", rep.chip_id, 64);
    if (rep.flags & 1u)
        memcpy(claims->signer, rep.author_key_digest, 48);
    else
        memcpy(claims->signer, rep.id_key_digest, 48);
    claims->signer_len = all_zero(claims->signer, 48) ? 0 : 48;
    mt_attest_claims_add_svn(claims, "version", rep.version);
    mt_attest_claims_add_svn(claims, "guest_svn", rep.guest_svn);
    mt_attest_claims_add_svn(claims, "vmpl", rep.vmpl);
    mt_attest_claims_add_svn(claims, "policy", rep.policy);
    mt_attest_claims_add_svn(claims, "platform_info", rep.platform_info);
    mt_attest_claims_add_svn(claims, "reported_tcb", rep.reported_tcb);
    mt_attest_claims_add_svn(claims, "current_tcb", rep.current_tcb);
    mt_attest_claims_add_svn(claims, "committed_tcb", rep.committed_tcb);
    mt_attest_claims_add_svn(claims, "launch_tcb", rep.launch_tcb);
    for (size_t i = 0; i < ntcb; i++) {
        char nm[MT_ATTEST_NAME_MAX];
        snprintf(nm, sizeof nm, "tcb.%s", tcb[i].name);
        mt_attest_claims_add_svn(claims, nm, tcb[i].val);
    }
    if (rep.version >= 3) {
        mt_attest_claims_add_svn(claims, "cpuid_family", rep.cpuid_fam);
        mt_attest_claims_add_svn(claims, "cpuid_model", rep.cpuid_mod);
        mt_attest_claims_add_svn(claims, "cpuid_stepping", rep.cpuid_step);
    }
    claims->tcb_status = MT_TCB_NOT_EVALUATED;
    claims->debug = (rep.policy & MT_SNP_POLICY_DEBUG) != 0;
    memcpy(claims->report_data, rep.report_data, 64);
    claims->report_data_len = 64;
    claims->checked = chip_checked ? MT_ATTEST_CHECKED_CHIP_ID : 0;
    st = MT_OK;
out:
    X509_free(memo.leaf);
    X509_free(memo.root);
    EVP_PKEY_free(pk);
    sk_X509_free(untrusted);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_pop_free(leafs, X509_free);
    return st;
}
