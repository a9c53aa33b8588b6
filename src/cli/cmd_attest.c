/* cmd_attest: `mesatee attest show|verify|verify-evidence|tpm-enroll`. show and verify
 * do a TLS handshake only (mesatee_client_attest): no request and no token
 * reach the server. verify-evidence checks recorded evidence offline with
 * mt_attest (and, with --policy, the policy). `mesatee policy sign` adds an
 * auditor's signature to POLICY.sig (mt_policy_sig.h). See docs/cli.md and
 * docs/attestation.md. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mt_keystore.h"
#include "mt_attest.h"
#include "mt_policy.h"
#include "mt_policy_sig.h"
#include "mt_ratls.h"
#include "mt_tpm2.h"
#include "mt_util.h"
#ifdef MT_CLI_HAVE_SERVER
#include "tee_tpm2.h"
#endif

#define EVIDENCE_FILE_MAX (1024u * 1024u)

/* Prints a claims JSON document: as is for --output json, else one
 * "key: value" line per top-level field. */
static void print_claims(const cli_ctx *ctx, const char *json)
{
    if (ctx->json) {
        printf("%s\n", json);
        return;
    }
    json_t *o = json_loads(json, 0, NULL);
    if (!o) {
        printf("%s\n", json);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS |
                                                               JSON_ENCODE_ANY);
        printf("%-18s %s\n", k, json_is_string(v) ? json_string_value(v) : s ? s : "?");
        free(s);
    }
    json_decref(o);
}

int cli_cmd_attest_show(cli_ctx *ctx)
{
    /* Show what the server claims; a policy, if configured, is not applied
     * here (use `attest verify`), so a first contact can be inspected. */
    if (mesatee_client_set_policy_file(ctx->client, NULL) != 0)
        return cli_fail("%s", mesatee_client_errmsg(ctx->client));
    char *json = NULL;
    int st = mesatee_client_attest(ctx->client, &json);
    if (st != MESATEE_OK)
        return cli_fail("%s", mesatee_client_errmsg(ctx->client));
    print_claims(ctx, json);
    mesatee_free(json);
    return CLI_OK;
}

int cli_cmd_attest_verify(cli_ctx *ctx)
{
    if (!ctx->policy.value)
        return cli_usage_error(ctx, "missing --policy FILE (or MESATEE_POLICY)");
    if (ctx->insecure)
        return cli_usage_error(ctx, "--insecure switches verification off; it cannot be used "
                                    "with attest verify");
    char *json = NULL;
    int st = mesatee_client_attest(ctx->client, &json);
    if (st != MESATEE_OK)
        return cli_fail("%s", mesatee_client_errmsg(ctx->client));
    print_claims(ctx, json);
    mesatee_free(json);
    return CLI_OK;
}

/* verify-evidence: without --policy, the evidence alone (mt_attest_verify
 * or mt_ratls_verify_cert with --collateral). With --policy (signed as
 * --policy-signers requires), exactly what a live client evaluates:
 * mt_policy_verify_cert / mt_policy_verify_evidence with the policy's own
 * collateral, so --collateral is refused there. */
int cli_cmd_attest_verify_evidence(cli_ctx *ctx)
{
    const char *kind_s = cli_opt_get(ctx, "kind"), *at_s = cli_opt_get(ctx, "at");
    const char *coll_dir = cli_opt_get(ctx, "collateral");
    const char *policy = ctx->policy.value;
    static const char *const expect_opts[MT_POLICY_EXPECT_N] = {
        "expect-report-data", "expect-nonce", "expect-user-data"};
    if (policy && !*policy)
        policy = NULL;
    if (!kind_s)
        return cli_usage_error(ctx, "missing --kind");
    if (policy && coll_dir)
        return cli_usage_error(ctx, "--collateral cannot be used with --policy: the policy's "
                                    "'collateral_dir' is what a live client uses, so name the "
                                    "directory there");
    for (int i = 0; i < MT_POLICY_EXPECT_N; i++)
        if (!policy && cli_opt_get(ctx, expect_opts[i]))
            return cli_usage_error(ctx, "--%s needs --policy FILE", expect_opts[i]);
    unsigned threshold = 0;
    if (cli_policy_threshold(ctx, &threshold) != CLI_OK)
        return CLI_USAGE;
    bool is_cert = !strcmp(kind_s, "ratls-cert");
    mt_attest_kind kind = MT_ATTEST_SGX;
    mt_err err;
    mt_err_clear(&err);
    if (!is_cert && mt_attest_kind_parse(kind_s, &kind, &err) != MT_OK)
        return cli_usage_error(ctx, "--kind: %s, or ratls-cert", err.msg);
    int64_t at = mt_now();
    if (at_s && strcmp(at_s, "now") != 0 && mt_attest_time_parse(at_s, &at, &err) != MT_OK)
        return cli_usage_error(ctx, "--at must be an RFC 3339 UTC time such as "
                                    "2024-01-01T00:00:00Z, or 'now': %s",
                               err.msg);
    int rc = CLI_FAIL;
    uint8_t *ev = NULL;
    size_t len = 0;
    mt_attest_collateral *coll = NULL;
    mt_policy *pol = NULL;
    mt_attest_claims *claims = calloc(1, sizeof *claims);
    mt_ratls_info info;
    char *json = NULL;
    if (!claims) {
        rc = cli_fail("out of memory");
        goto out;
    }
    if (mt_file_read(ctx->pos[0], EVIDENCE_FILE_MAX, &ev, &len, &err) != MT_OK) {
        rc = cli_fail("cannot read %s: %s", ctx->pos[0], err.msg);
        goto out;
    }
    if (coll_dir) {
        if (!(coll = mt_attest_collateral_new())) {
            rc = cli_fail("out of memory");
            goto out;
        }
        if (mt_attest_collateral_load_dir(coll, coll_dir, &err) != MT_OK) {
            rc = cli_fail("collateral %s: %s", coll_dir, err.msg);
            goto out;
        }
    }
    if (policy && mt_policy_load_signed(policy, ctx->policy_signers.value, threshold, &pol,
                                        &err) != MT_OK) {
        rc = cli_fail("%s", err.msg);
        goto out;
    }
    for (int i = 0; pol && i < MT_POLICY_EXPECT_N; i++) {
        const char *hx = cli_opt_get(ctx, expect_opts[i]);
        if (hx && mt_policy_set_expected(pol, (mt_policy_expect)i, hx, &err) != MT_OK) {
            rc = cli_usage_error(ctx, "--%s: %s", expect_opts[i], err.msg);
            goto out;
        }
    }
    mt_status st;
    if (pol)
        st = is_cert ? mt_policy_verify_cert(pol, ev, len, MT_RATLS_FORM_CCC | MT_RATLS_FORM_LEGACY,
                                             at, claims, &info, &err)
                     : mt_policy_verify_evidence(pol, kind, ev, len, at, claims, &err);
    else
        st = is_cert ? mt_ratls_verify_cert(ev, len, MT_RATLS_FORM_CCC | MT_RATLS_FORM_LEGACY,
                                            coll, at, claims, &info, &err)
                     : mt_attest_verify(kind, ev, len, coll, at, claims, &err);
    if (st == MT_EPERM && pol) {
        rc = cli_fail("%s: refused by policy %s: %s", ctx->pos[0], policy, err.msg);
        goto out;
    }
    if (st != MT_OK) {
        rc = cli_fail("%s: evidence does not verify (%s): %s", ctx->pos[0], mt_status_name(st),
                      err.msg);
        goto out;
    }
    if (!(json = mt_policy_claims_json(claims, is_cert ? &info : NULL))) {
        rc = cli_fail("out of memory");
        goto out;
    }
    print_claims(ctx, json);
    rc = CLI_OK;
out:
    free(json);
    free(claims);
    mt_policy_free(pol);
    mt_attest_collateral_free(coll);
    free(ev);
    return rc;
}

int cli_policy_threshold(cli_ctx *ctx, unsigned *out)
{
    *out = 0;
    const char *v = ctx->policy_threshold.value;
    if (!v)
        return CLI_OK;
    char *end = NULL;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || v[0] == '-' || n > MT_POLICY_SIG_MAX)
        return cli_usage_error(ctx, "%s must be a number from 0 (every auditor) to %d",
                               ctx->policy_threshold.source, MT_POLICY_SIG_MAX);
    if (!ctx->policy_signers.value)
        return cli_usage_error(ctx, "%s needs --policy-signers FILE (or MESATEE_POLICY_SIGNERS)",
                               ctx->policy_threshold.source);
    *out = (unsigned)n;
    return CLI_OK;
}

/* `mesatee policy sign --key AUDITOR.pem POLICY`: ECDSA P-256/SHA-256 over
 * the exact bytes of POLICY, added to (or replacing this auditor's line in)
 * POLICY.sig. */
int cli_cmd_policy_sign(cli_ctx *ctx)
{
    const char *key_path = cli_opt_get(ctx, "key");
    const char *policy = ctx->pos[0];
    if (!key_path)
        return cli_usage_error(ctx, "missing --key AUDITOR.pem (an ECDSA P-256 private key, PEM)");
    int rc = CLI_FAIL;
    uint8_t *pol = NULL, *old = NULL, *kb = NULL;
    size_t pl = 0, ol = 0, kl = 0;
    char *text = NULL, sig_path[4200];
    EVP_PKEY *key = NULL;
    mt_err err;
    mt_err_clear(&err);
    if (snprintf(sig_path, sizeof sig_path, "%s.sig", policy) >= (int)sizeof sig_path) {
        rc = cli_usage_error(ctx, "policy path too long");
        goto out;
    }
    if (mt_file_read(policy, MT_POLICY_MAX_BYTES, &pol, &pl, &err) != MT_OK) {
        rc = cli_fail("cannot read policy %s: %s", policy, err.msg);
        goto out;
    }
    /* The policy must be one an auditor can mean: it parses (a client
     * attestation policy, or a KeyStore release-policy change document from
     * `mesatee admin release draft`). */
    mt_policy *parsed = NULL;
    mt_err kerr;
    mt_err_clear(&kerr);
    bool release_doc = strstr((const char *)pol, "\"mesatee_release_policy\"") != NULL;
    if (release_doc && mt_keystore_parse_release_doc((const char *)pol, pl, &kerr) != MT_OK) {
        rc = cli_fail("%s: %s (fix it before signing)", policy, kerr.msg);
        goto out;
    }
    if (!release_doc && mt_policy_parse((const char *)pol, pl, &parsed, &err) != MT_OK) {
        rc = cli_fail("%s: %s (fix it before signing)", policy, err.msg);
        goto out;
    }
    mt_policy_free(parsed);
    if (mt_file_read(key_path, 16 * 1024, &kb, &kl, &err) != MT_OK) {
        rc = cli_fail("cannot read auditor key %s: %s", key_path, err.msg);
        goto out;
    }
    BIO *b = BIO_new_mem_buf(kb, (int)kl);
    key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (!key) {
        rc = cli_fail("%s is not a PEM private key (make one with `openssl genpkey -algorithm EC "
                      "-pkeyopt ec_paramgen_curve:P-256 -out %s`)",
                      key_path, key_path);
        goto out;
    }
    mt_status st = mt_file_read(sig_path, MT_POLICY_SIG_FILE_MAX, &old, &ol, &err);
    if (st != MT_OK && st != MT_ENOTFOUND) {
        rc = cli_fail("cannot read %s: %s", sig_path, err.msg);
        goto out;
    }
    if (mt_policy_sig_sign(pol, pl, key, old, st == MT_OK ? ol : 0, &text, &err) != MT_OK) {
        rc = cli_fail("%s: %s", sig_path, err.msg);
        goto out;
    }
    if (mt_file_write_atomic(sig_path, text, strlen(text), 0644, &err) != MT_OK) {
        rc = cli_fail("cannot write %s: %s", sig_path, err.msg);
        goto out;
    }
    if (ctx->json)
        rc = cli_json_print(json_pack("{s:s}", "signed", sig_path));
    else
        rc = (printf("%s\n", sig_path), CLI_OK);
out:
    EVP_PKEY_free(key);
    if (kb) {
        mt_wipe(kb, kl);
        free(kb);
    }
    free(text);
    free(old);
    free(pol);
    return rc;
}

/* Reads a PEM private key; NULL (message in err) when it is not one. */
static EVP_PKEY *read_private_key(const char *path, mt_err *err)
{
    uint8_t *kb = NULL;
    size_t kl = 0;
    if (mt_file_read(path, 16 * 1024, &kb, &kl, err) != MT_OK)
        return NULL;
    BIO *b = BIO_new_mem_buf(kb, (int)kl);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    mt_wipe(kb, kl);
    free(kb);
    if (!key)
        mt_err_set(err, MT_EINVAL, "not a PEM private key");
    return key;
}

/* Verifies the record just made (as a policy would) and prints the values a
 * policy lists. */
static int print_record(cli_ctx *ctx, const char *out_path, const char *record, EVP_PKEY *key,
                        const uint8_t *ca, size_t cal)
{
    mt_tpm2_record r;
    mt_err err;
    mt_err_clear(&err);
    uint8_t eh[32];
    unsigned char *spki = NULL;
    int sl = i2d_PUBKEY(key, &spki);
    unsigned int hl = 0;
    if (sl <= 0 || EVP_Digest(spki, (size_t)sl, eh, &hl, EVP_sha256(), NULL) != 1 ||
        mt_tpm2_record_verify((const uint8_t *)record, strlen(record),
                              (const uint8_t (*)[32])eh, 1, ca, cal, &r, &err) != MT_OK) {
        OPENSSL_free(spki);
        return cli_fail("the record just written does not verify: %s", err.msg);
    }
    OPENSSL_free(spki);
    char akh[65], enh[65];
    mt_hex_encode(r.ak_sha256, 32, akh);
    mt_hex_encode(r.enroller_sha256, 32, enh);
    if (ctx->json) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "record", out_path, "tpm2_ak", akh,
                              "tpm2_enroller", enh);
        char *js = o ? json_dumps(o, JSON_COMPACT) : NULL;
        printf("%s\n", js ? js : "{}");
        free(js);
        json_decref(o);
    } else {
        printf("record         %s\ntpm2_ak        %s\ntpm2_enroller  %s\n", out_path, akh, enh);
    }
    return CLI_OK;
}

/* A JSON object file (at most 64 KiB); NULL with a message printed. */
static json_t *read_json_file(const char *path, const char *what)
{
    uint8_t *b = NULL;
    size_t n = 0;
    mt_err err;
    if (mt_file_read(path, 64 * 1024, &b, &n, &err) != MT_OK) {
        cli_fail("cannot read %s %s: %s", what, path, err.msg);
        return NULL;
    }
    json_error_t je;
    json_t *o = json_loadb((const char *)b, n, 0, &je);
    free(b);
    if (!json_is_object(o)) {
        json_decref(o);
        cli_fail("%s %s is not a JSON object", what, path);
        return NULL;
    }
    return o;
}

/* Member key of o as hex bytes (1..max) in a new buffer; false if absent or
 * malformed. */
static bool json_hex_get(json_t *o, const char *key, size_t max, uint8_t **out, size_t *len)
{
    const char *s = json_string_value(json_object_get(o, key));
    size_t n = s ? strlen(s) : 0;
    if (!n || n % 2 || n / 2 > max || !(*out = malloc(n / 2)))
        return false;
    if (mt_hex_decode(s, *out, n / 2, NULL) != MT_OK) {
        free(*out);
        *out = NULL;
        return false;
    }
    *len = n / 2;
    return true;
}

/* Writes a JSON object of one or two hex members (k2 NULL: one). */
/* The path a command wrote: the path, or {"out":PATH} with --output json. */
static int print_written(const cli_ctx *ctx, const char *path)
{
    if (ctx->json)
        return cli_json_print(json_pack("{s:s}", "out", path));
    printf("%s\n", path);
    return CLI_OK;
}

static int write_hex_json(const char *path, int mode, const char *k1, const uint8_t *v1,
                          size_t l1, const char *k2, const uint8_t *v2, size_t l2)
{
    json_t *o = json_object();
    const char *keys[2] = {k1, k2};
    const uint8_t *vals[2] = {v1, v2};
    size_t lens[2] = {l1, l2};
    for (int i = 0; o && i < 2 && keys[i]; i++) {
        char *h = malloc(2 * lens[i] + 1);
        if (!h) {
            json_decref(o);
            o = NULL;
            break;
        }
        mt_hex_encode(vals[i], lens[i], h);
        json_object_set_new(o, keys[i], json_string(h));
        free(h);
    }
    char *js = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    mt_err err;
    int rc = CLI_OK;
    if (!js)
        rc = cli_fail("out of memory");
    else if (mt_file_write_atomic(path, js, strlen(js), mode, &err) != MT_OK)
        rc = cli_fail("cannot write %s: %s", path, err.msg);
    free(js);
    return rc;
}

/* `mesatee attest tpm-challenge REQUEST --ek-ca CA.pem --state STATE --out
 * CHALLENGE` (on the enroller's machine): checks the EK certificate of the
 * request and the AK attributes, makes the credential-activation challenge,
 * keeps its secret in STATE (0600). */
int cli_cmd_attest_tpm_challenge(cli_ctx *ctx)
{
    const char *ca_path = cli_opt_get(ctx, "ek-ca"), *state = cli_opt_get(ctx, "state");
    const char *out_path = cli_opt_get(ctx, "out");
    if (!ca_path || !state || !out_path)
        return cli_usage_error(ctx, "needs --ek-ca CA.pem, --state STATE (kept private) and "
                                    "--out CHALLENGE.json");
    int rc = CLI_FAIL;
    uint8_t *ca = NULL, *ak = NULL, *ek = NULL;
    size_t cal = 0, akl = 0, ekl = 0;
    char *saved = NULL;
    mt_tpm2_enroll *e = NULL;
    mt_err err;
    mt_err_clear(&err);
    json_t *req = read_json_file(ctx->pos[0], "enrolment request");
    if (!req)
        goto out;
    if (!json_hex_get(req, "ak_public", MT_TPM2_AK_PUBLIC_MAX, &ak, &akl) ||
        !json_hex_get(req, "ek_cert", MT_TPM2_EK_CERT_MAX, &ek, &ekl)) {
        rc = cli_fail("%s: needs hex members ak_public and ek_cert (`mesatee attest "
                      "tpm-request`)",
                      ctx->pos[0]);
        goto out;
    }
    if (mt_file_read(ca_path, 1024 * 1024, &ca, &cal, &err) != MT_OK) {
        rc = cli_fail("cannot read EK CA bundle %s: %s", ca_path, err.msg);
        goto out;
    }
    if (mt_tpm2_enroll_begin(ek, ekl, ca, cal, mt_now(), ak, akl, &e, &err) != MT_OK) {
        rc = cli_fail("enrolment refused: %s", err.msg);
        goto out;
    }
    if (mt_tpm2_enroll_save(e, &saved, &err) != MT_OK) {
        rc = cli_fail("%s", err.msg);
        goto out;
    }
    if (mt_file_write_atomic(state, saved, strlen(saved), 0600, &err) != MT_OK) {
        rc = cli_fail("cannot write %s: %s", state, err.msg);
        goto out;
    }
    const uint8_t *blob, *sec;
    size_t bl, sl;
    mt_tpm2_enroll_challenge(e, &blob, &bl, &sec, &sl);
    if ((rc = write_hex_json(out_path, 0644, "credential_blob", blob, bl, "encrypted_secret", sec,
                             sl)) != CLI_OK)
        goto out;
    rc = print_written(ctx, out_path);
out:
    if (saved) {
        mt_wipe(saved, strlen(saved));
        free(saved);
    }
    mt_tpm2_enroll_free(e);
    json_decref(req);
    free(ca);
    free(ak);
    free(ek);
    return rc;
}

/* tpm-enroll --state STATE --answer ANSWER --key K --out RECORD: checks the
 * TPM's answer against the saved challenge, signs the record, removes STATE. */
static int tpm_enroll_finish(cli_ctx *ctx)
{
    const char *state = cli_opt_get(ctx, "state"), *answer = cli_opt_get(ctx, "answer");
    const char *key_path = cli_opt_get(ctx, "key"), *out_path = cli_opt_get(ctx, "out");
    const char *ca_path = cli_opt_get(ctx, "ek-ca");
    if (!state || !answer || !key_path || !out_path)
        return cli_usage_error(ctx, "with --state: needs --answer ANSWER.json, --key "
                                    "ENROLLER.pem and --out RECORD.json");
    if (cli_opt_get(ctx, "tpm2-tcti") || cli_opt_get(ctx, "ek-cert"))
        return cli_usage_error(ctx, "--state finishes an enrolment made by tpm-challenge: no "
                                    "--tpm2-tcti or --ek-cert");
    int rc = CLI_FAIL;
    uint8_t *sb = NULL, *ans = NULL, *ca = NULL;
    size_t sbl = 0, al = 0, cal = 0;
    char *record = NULL;
    EVP_PKEY *key = NULL;
    mt_tpm2_enroll *e = NULL;
    mt_err err;
    mt_err_clear(&err);
    json_t *a = read_json_file(answer, "activation answer");
    if (!a)
        goto out;
    if (!json_hex_get(a, "answer", 64, &ans, &al)) {
        rc = cli_fail("%s: needs a hex member answer (`mesatee attest tpm-activate`)", answer);
        goto out;
    }
    if (mt_file_read(state, 64 * 1024, &sb, &sbl, &err) != MT_OK ||
        mt_tpm2_enroll_load(sb, sbl, &e, &err) != MT_OK) {
        rc = cli_fail("enrolment state %s: %s", state, err.msg);
        goto out;
    }
    if (ca_path && mt_file_read(ca_path, 1024 * 1024, &ca, &cal, &err) != MT_OK) {
        rc = cli_fail("cannot read EK CA bundle %s: %s", ca_path, err.msg);
        goto out;
    }
    if (!(key = read_private_key(key_path, &err))) {
        rc = cli_fail("enroller key %s: %s", key_path, err.msg);
        goto out;
    }
    mt_status st = mt_tpm2_enroll_finish(e, ans, al, &err);
    if (remove(state) != 0) /* one answer per challenge, whatever it was */
        fprintf(stderr, "mesatee: warning: cannot remove %s: remove it by hand\n", state);
    if (st != MT_OK) {
        rc = cli_fail("enrolment failed: %s", err.msg);
        goto out;
    }
    if (mt_tpm2_enroll_record(e, key, &record, &err) != MT_OK) {
        rc = cli_fail("enrolment failed: %s", err.msg);
        goto out;
    }
    if (mt_file_write_atomic(out_path, record, strlen(record), 0644, &err) != MT_OK) {
        rc = cli_fail("cannot write %s: %s", out_path, err.msg);
        goto out;
    }
    rc = print_record(ctx, out_path, record, key, ca, cal);
out:
    if (sb) {
        mt_wipe(sb, sbl);
        free(sb);
    }
    json_decref(a);
    mt_tpm2_enroll_free(e);
    EVP_PKEY_free(key);
    free(record);
    free(ans);
    free(ca);
    return rc;
}

/* `mesatee attest tpm-request --out REQUEST [--tpm2-tcti T]` (on the TPM
 * host): the AK public area and the EK certificate, nothing secret. */
int cli_cmd_attest_tpm_request(cli_ctx *ctx)
{
    const char *out_path = cli_opt_get(ctx, "out"), *tcti = cli_opt_get(ctx, "tpm2-tcti");
    if (!out_path)
        return cli_usage_error(ctx, "needs --out REQUEST.json");
#ifndef MT_CLI_HAVE_SERVER
    (void)tcti;
    return cli_fail("this mesatee was built without the TEE library: tpm-request is unavailable");
#else
    mt_tpm2_attester *t = NULL;
    mt_err err;
    mt_err_clear(&err);
    const uint8_t *ak, *ek;
    size_t akl, ekl;
    int rc = CLI_FAIL;
    if (mt_tpm2_attester_open(tcti, MT_TPM2_DEFAULT_PCR, &t, &err) != MT_OK ||
        mt_tpm2_attester_ek_cert(t, &ek, &ekl, &err) != MT_OK) {
        rc = cli_fail("%s", err.msg);
        goto out;
    }
    mt_tpm2_attester_ak_public(t, &ak, &akl);
    if ((rc = write_hex_json(out_path, 0644, "ak_public", ak, akl, "ek_cert", ek, ekl)) == CLI_OK)
        rc = print_written(ctx, out_path);
out:
    mt_tpm2_attester_free(t);
    return rc;
#endif
}

/* `mesatee attest tpm-activate CHALLENGE --out ANSWER [--tpm2-tcti T]` (on
 * the TPM host): ActivateCredential; the TPM answers only for its own EK and
 * a loaded AK of the challenge's name. */
int cli_cmd_attest_tpm_activate(cli_ctx *ctx)
{
    const char *out_path = cli_opt_get(ctx, "out"), *tcti = cli_opt_get(ctx, "tpm2-tcti");
    if (!out_path)
        return cli_usage_error(ctx, "needs --out ANSWER.json");
#ifndef MT_CLI_HAVE_SERVER
    (void)tcti;
    return cli_fail("this mesatee was built without the TEE library: tpm-activate is unavailable");
#else
    mt_tpm2_attester *t = NULL;
    uint8_t *blob = NULL, *sec = NULL, answer[64];
    size_t bl = 0, sl = 0, al = 0;
    mt_err err;
    mt_err_clear(&err);
    int rc = CLI_FAIL;
    json_t *c = read_json_file(ctx->pos[0], "challenge");
    if (!c)
        goto out;
    if (!json_hex_get(c, "credential_blob", 1024, &blob, &bl) ||
        !json_hex_get(c, "encrypted_secret", 1024, &sec, &sl)) {
        rc = cli_fail("%s: needs hex members credential_blob and encrypted_secret", ctx->pos[0]);
        goto out;
    }
    if (mt_tpm2_attester_open(tcti, MT_TPM2_DEFAULT_PCR, &t, &err) != MT_OK ||
        mt_tpm2_attester_activate(t, blob, bl, sec, sl, answer, &al, &err) != MT_OK) {
        rc = cli_fail("%s", err.msg);
        goto out;
    }
    if ((rc = write_hex_json(out_path, 0600, "answer", answer, al, NULL, NULL, 0)) == CLI_OK)
        rc = print_written(ctx, out_path);
out:
    mt_wipe(answer, sizeof answer);
    mt_tpm2_attester_free(t);
    json_decref(c);
    free(blob);
    free(sec);
    return rc;
#endif
}

/* `mesatee attest tpm-enroll --ek-ca CA.pem --key ENROLLER.pem --out RECORD`:
 * credential activation against the TPM at --tpm2-tcti (MESATEE_TPM2_TCTI,
 * default device:/dev/tpmrm0); on success writes the signed enrolment
 * record and prints the AK and enroller hashes a policy lists. */
static int tpm_enroll_finish(cli_ctx *ctx);

int cli_cmd_attest_tpm_enroll(cli_ctx *ctx)
{
    const char *ca_path = cli_opt_get(ctx, "ek-ca"), *key_path = cli_opt_get(ctx, "key");
    const char *out_path = cli_opt_get(ctx, "out"), *tcti = cli_opt_get(ctx, "tpm2-tcti");
    const char *ek_path = cli_opt_get(ctx, "ek-cert");
    if (cli_opt_get(ctx, "state") || cli_opt_get(ctx, "answer"))
        return tpm_enroll_finish(ctx);
    if (!ca_path || !key_path || !out_path)
        return cli_usage_error(ctx, "needs --ek-ca CA.pem (the TPM vendors' EK CA bundle), --key "
                                    "ENROLLER.pem (ECDSA P-256 private key) and --out RECORD.json");
#ifndef MT_CLI_HAVE_SERVER
    (void)tcti;
    (void)ek_path;
    return cli_fail("this mesatee was built without the TEE library: tpm-enroll is unavailable");
#else
    int rc = CLI_FAIL;
    uint8_t *ca = NULL, *ek = NULL;
    size_t cal = 0, ekl = 0;
    char *record = NULL;
    EVP_PKEY *key = NULL;
    mt_tpm2_attester *a = NULL;
    mt_err err;
    mt_err_clear(&err);
    if (mt_file_read(ca_path, 1024 * 1024, &ca, &cal, &err) != MT_OK) {
        rc = cli_fail("cannot read EK CA bundle %s: %s", ca_path, err.msg);
        goto out;
    }
    if (ek_path && mt_file_read(ek_path, 64 * 1024, &ek, &ekl, &err) != MT_OK) {
        rc = cli_fail("cannot read EK certificate %s: %s", ek_path, err.msg);
        goto out;
    }
    if (!(key = read_private_key(key_path, &err))) {
        rc = cli_fail("enroller key %s: %s (make one with `openssl genpkey -algorithm EC -pkeyopt "
                      "ec_paramgen_curve:P-256 -out %s`)",
                      key_path, err.msg, key_path);
        goto out;
    }
    if (mt_tpm2_attester_open(tcti ? tcti : getenv("MESATEE_TPM2_TCTI"), MT_TPM2_DEFAULT_PCR, &a,
                              &err) != MT_OK) {
        rc = cli_fail("%s", err.msg);
        goto out;
    }
    if (mt_tpm2_attester_enrol(a, ek, ekl, ca, cal, mt_now(), key, &record, &err) != MT_OK) {
        rc = cli_fail("enrolment failed: %s", err.msg);
        goto out;
    }
    if (mt_file_write_atomic(out_path, record, strlen(record), 0644, &err) != MT_OK) {
        rc = cli_fail("cannot write %s: %s", out_path, err.msg);
        goto out;
    }
    if ((rc = print_record(ctx, out_path, record, key, ca, cal)) != CLI_OK)
        goto out;
    rc = CLI_OK;
out:
    mt_tpm2_attester_free(a);
    EVP_PKEY_free(key);
    free(record);
    free(ca);
    free(ek);
    return rc;
#endif
}
