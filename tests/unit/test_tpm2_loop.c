/* Full-loop test of level tpm2: starts two software TPMs (swtpm_setup with EK
 * certificates from a local CA made in a temp dir, then `swtpm socket` on
 * free loopback ports), runs the attester (src/tee/tee_tpm2.c) against them
 * and verifies its evidence with the verifier (src/attest/mt_tpm2.c):
 * enrollment by credential activation, quote, claims; negatives: wrong
 * nonce, wrong PCR, AK of another TPM, replayed activation answer.
 * Skips when swtpm/swtpm_setup are not installed or mesatee was built
 * without libtss2. Every swtpm it starts is stopped, and the temp dir
 * removed, even when a check fails (group teardown). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "mt_attest.h"
#include "mt_policy.h"
#include "mt_tee.h"
#include "mt_tpm2.h"
#include "mt_util.h"
#include "tee_tpm2.h"

typedef struct swtpm {
    pid_t pid;
    int port;
    char tcti[96];
} swtpm;

typedef struct fixture {
    char dir[64];
    swtpm a, b;
    uint8_t *ca; /* issuer + root PEM */
    size_t ca_len;
    mt_tpm2_attester *ta, *tb;
} fixture;

static fixture F;
static const char *skip_reason;

/* ---- processes ----------------------------------------------------------- */

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        return false;
    char *copy = strdup(path), *save = NULL;
    bool found = false;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", d, prog);
        found = access(p, X_OK) == 0;
    }
    free(copy);
    return found;
}

/* Runs argv with output to dir/log; true on exit status 0. */
static bool run(char *const argv[])
{
    char log[128];
    snprintf(log, sizeof log, "%s/log", F.dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A port p such that p and p+1 are free on 127.0.0.1 right now. */
static int free_port_pair(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int s1 = socket(AF_INET, SOCK_STREAM, 0), s2 = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof a;
        int port = -1;
        if (bind(s1, (struct sockaddr *)&a, sizeof a) == 0 &&
            getsockname(s1, (struct sockaddr *)&a, &al) == 0) {
            port = ntohs(a.sin_port);
            a.sin_port = htons((uint16_t)(port + 1));
            if (port >= 65535 || bind(s2, (struct sockaddr *)&a, sizeof a) != 0)
                port = -1;
        }
        close(s1);
        close(s2);
        if (port > 0)
            return port;
    }
    return -1;
}

static bool port_open(int port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

/* Manufactures a TPM in dir/name (EK certificates from the shared local CA)
 * and starts `swtpm socket` on free ports. */
static bool swtpm_start(const char *name, swtpm *t)
{
    char state[128], conf[128], dirarg[160];
    snprintf(state, sizeof state, "%s/%s", F.dir, name);
    snprintf(conf, sizeof conf, "%s/setup.conf", F.dir);
    if (mkdir(state, 0700) != 0)
        return false;
    char *setup[] = {"swtpm_setup",
                     "--tpm2",
                     "--tpmstate",
                     state,
                     "--create-ek-cert",
                     "--create-platform-cert",
                     "--lock-nvram",
                     "--overwrite",
                     "--config",
                     conf,
                     NULL};
    if (!run(setup))
        return false;
    snprintf(dirarg, sizeof dirarg, "dir=%s", state);
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = free_port_pair();
        if (port < 0)
            return false;
        char server[96], ctrl[96], log[160];
        snprintf(server, sizeof server, "type=tcp,port=%d,bindaddr=127.0.0.1", port);
        snprintf(ctrl, sizeof ctrl, "type=tcp,port=%d,bindaddr=127.0.0.1", port + 1);
        snprintf(log, sizeof log, "file=%s/%s.log", F.dir, name);
        pid_t pid = fork();
        if (pid == 0) {
            int fd = open("/dev/null", O_RDWR);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            execlp("swtpm", "swtpm", "socket", "--tpm2", "--tpmstate", dirarg, "--server", server,
                   "--ctrl", ctrl, "--flags", "not-need-init,startup-clear", "--log", log,
                   (char *)NULL);
            _exit(127);
        }
        if (pid < 0)
            return false;
        for (int i = 0; i < 100; i++) { /* up to 5 s */
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid)
                break; /* exited: port taken meanwhile? try another */
            if (port_open(port)) {
                t->pid = pid;
                t->port = port;
                snprintf(t->tcti, sizeof t->tcti, "swtpm:host=127.0.0.1,port=%d", port);
                return true;
            }
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return false;
}

static void swtpm_stop(swtpm *t)
{
    if (t->pid > 0) {
        kill(t->pid, SIGTERM);
        waitpid(t->pid, NULL, 0);
        t->pid = 0;
    }
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static bool write_file(const char *name, const char *text)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", F.dir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        return false;
    fputs(text, f);
    return fclose(f) == 0;
}

static bool read_ca(void)
{
    char p1[160], p2[160];
    snprintf(p1, sizeof p1, "%s/ca/issuercert.pem", F.dir);
    snprintf(p2, sizeof p2, "%s/ca/swtpm-localca-rootca-cert.pem", F.dir);
    uint8_t *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    if (mt_file_read(p1, 65536, &a, &al, NULL) != MT_OK ||
        mt_file_read(p2, 65536, &b, &bl, NULL) != MT_OK) {
        free(a);
        return false;
    }
    F.ca = malloc(al + bl);
    memcpy(F.ca, a, al);
    memcpy(F.ca + al, b, bl);
    F.ca_len = al + bl;
    free(a);
    free(b);
    return true;
}

static int group_teardown(void **state);

static int group_setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    if (!in_path("swtpm") || !in_path("swtpm_setup") || !in_path("swtpm_localca")) {
        skip_reason = "swtpm, swtpm_setup or swtpm_localca not installed (Debian: swtpm "
                      "swtpm-tools)";
        return 0;
    }
    snprintf(F.dir, sizeof F.dir, "/tmp/mt-tpm2-XXXXXX");
    if (!mkdtemp(F.dir)) {
        skip_reason = "cannot create a temp dir";
        return 0;
    }
    char text[1024];
    snprintf(text, sizeof text,
             "create_certs_tool = swtpm_localca\ncreate_certs_tool_config = %s/localca.conf\n"
             "create_certs_tool_options = %s/localca.options\nactive_pcr_banks = sha256\n",
             F.dir, F.dir);
    bool ok = write_file("setup.conf", text);
    snprintf(text, sizeof text,
             "statedir = %s/ca\nsigningkey = %s/ca/signkey.pem\nissuercert = %s/ca/issuercert.pem\n"
             "certserial = %s/ca/certserial\n",
             F.dir, F.dir, F.dir, F.dir);
    ok = ok && write_file("localca.conf", text) &&
         write_file("localca.options", "--platform-manufacturer mesatee\n--platform-version 2.1\n"
                                       "--platform-model test\n");
    char ca[128];
    snprintf(ca, sizeof ca, "%s/ca", F.dir);
    ok = ok && mkdir(ca, 0700) == 0;
    if (!ok || !swtpm_start("tpm-a", &F.a) || !swtpm_start("tpm-b", &F.b) || !read_ca()) {
        fprintf(stderr, "swtpm setup failed; see the log in %s (kept)\n", F.dir);
        F.dir[0] = 0; /* keep it for diagnosis */
        group_teardown(state);
        return -1;
    }
    mt_err err;
    mt_status st = mt_tpm2_attester_open(F.a.tcti, MT_TPM2_DEFAULT_PCR, &F.ta, &err);
    if (st == MT_EUNAVAIL && strstr(err.msg, "without libtss2")) {
        skip_reason = "mesatee was built without libtss2 (install libtss2-dev)";
        return 0;
    }
    if (st != MT_OK || mt_tpm2_attester_open(F.b.tcti, MT_TPM2_DEFAULT_PCR, &F.tb, &err) != MT_OK) {
        fprintf(stderr, "attester open failed: %s\n", err.msg);
        group_teardown(state);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mt_tpm2_attester_free(F.ta);
    mt_tpm2_attester_free(F.tb);
    swtpm_stop(&F.a);
    swtpm_stop(&F.b);
    free(F.ca);
    if (F.dir[0])
        nftw(F.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

#define REQUIRE_SWTPM()                                                                            \
    do {                                                                                           \
        if (skip_reason) {                                                                         \
            fprintf(stderr, "SKIP: %s\n", skip_reason);                                            \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- helpers ------------------------------------------------------------- */

/* Enrolls the AK of `ak_tpm` against the EK certificate of `ek_tpm`, asking
 * `answer_tpm` to activate. Returns the status of the whole exchange. */
static mt_status enroll(mt_tpm2_attester *ek_tpm, mt_tpm2_attester *ak_tpm,
                        mt_tpm2_attester *answer_tpm, mt_err *err)
{
    const uint8_t *ek, *ak, *blob, *sec;
    size_t ekl, akl, bl, sl, al = 0;
    uint8_t answer[64];
    assert_int_equal(mt_tpm2_attester_ek_cert(ek_tpm, &ek, &ekl, err), MT_OK);
    mt_tpm2_attester_ak_public(ak_tpm, &ak, &akl);
    mt_tpm2_enroll *e = NULL;
    mt_status st = mt_tpm2_enroll_begin(ek, ekl, F.ca, F.ca_len, mt_now(), ak, akl, &e, err);
    if (st != MT_OK)
        return st;
    mt_tpm2_enroll_challenge(e, &blob, &bl, &sec, &sl);
    st = mt_tpm2_attester_activate(answer_tpm, blob, bl, sec, sl, answer, &al, err);
    if (st == MT_OK)
        st = mt_tpm2_enroll_finish(e, answer, al, err);
    /* A second answer (a replay) is never accepted. */
    if (st == MT_OK)
        assert_int_equal(mt_tpm2_enroll_finish(e, answer, al, NULL), MT_EAUTH);
    mt_tpm2_enroll_free(e);
    return st;
}

static mt_attest_collateral *coll_for(mt_tpm2_attester *t)
{
    const uint8_t *ak;
    size_t akl;
    mt_tpm2_attester_ak_public(t, &ak, &akl);
    mt_attest_collateral *c = mt_attest_collateral_new();
    assert_non_null(c);
    assert_int_equal(mt_attest_collateral_add(c, MT_COLL_TPM2_AK, ak, akl, NULL), MT_OK);
    return c;
}

static void sha256(const char *s, uint8_t out[32])
{
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL), 1);
}

/* ---- tests --------------------------------------------------------------- */

static void test_enroll(void **state)
{
    (void)state;
    REQUIRE_SWTPM();
    mt_err err;
    if (enroll(F.ta, F.ta, F.ta, &err) != MT_OK)
        fail_msg("enrollment of TPM A: %s", err.msg);
    if (enroll(F.tb, F.tb, F.tb, &err) != MT_OK)
        fail_msg("enrollment of TPM B: %s", err.msg);
    /* The AK is deterministic: reopening TPM A gives the same AK (the old
     * handle is closed first: without a resource manager swtpm has 3
     * transient object slots). */
    const uint8_t *a1, *a2;
    size_t l1, l2;
    mt_tpm2_attester_ak_public(F.ta, &a1, &l1);
    uint8_t before[512];
    assert_true(l1 <= sizeof before);
    memcpy(before, a1, l1);
    mt_tpm2_attester_free(F.ta);
    F.ta = NULL;
    assert_int_equal(mt_tpm2_attester_open(F.a.tcti, MT_TPM2_DEFAULT_PCR, &F.ta, &err), MT_OK);
    mt_tpm2_attester_ak_public(F.ta, &a2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(before, a2, l1);
    /* TPM A and TPM B have different AKs. */
    mt_tpm2_attester_ak_public(F.tb, &a1, &l1);
    assert_true(l1 != l2 || memcmp(a1, a2, l1) != 0);
}

static void test_ak_of_other_tpm(void **state)
{
    (void)state;
    REQUIRE_SWTPM();
    mt_err err;
    /* TPM A's EK certificate with TPM B's AK: A refuses (no object of that
     * name is loaded), and B cannot decrypt a seed made for A's EK. */
    assert_int_equal(enroll(F.ta, F.tb, F.ta, &err), MT_EAUTH);
    fprintf(stderr, "A answers for B's AK: %s\n", err.msg);
    assert_int_equal(enroll(F.ta, F.tb, F.tb, &err), MT_EAUTH);
    fprintf(stderr, "B answers for A's EK: %s\n", err.msg);
    /* B's evidence against the AK pinned for A. */
    uint8_t rd[64] = {1};
    uint8_t *ev = NULL;
    size_t el = 0;
    assert_int_equal(mt_tpm2_attester_quote(F.tb, rd, sizeof rd, &ev, &el, &err), MT_OK);
    mt_attest_collateral *ca = coll_for(F.ta), *cb = coll_for(F.tb);
    mt_attest_claims c;
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, ev, el, ca, mt_now(), &c, &err), MT_EAUTH);
    assert_non_null(strstr(err.msg, "not the pinned AK"));
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, ev, el, cb, mt_now(), &c, &err), MT_OK);
    free(ev);
    mt_attest_collateral_free(ca);
    mt_attest_collateral_free(cb);
}

static void test_quote_loop(void **state)
{
    (void)state;
    REQUIRE_SWTPM();
    mt_err err;
    uint8_t meas[32], expected[32], rd[64];
    sha256("mesatee daemon measurement (test)", meas);
    mt_tpm2_expected_pcr(meas, expected);
    for (size_t i = 0; i < sizeof rd; i++)
        rd[i] = (uint8_t)(0xa0 + i);
    if (mt_tpm2_attester_extend(F.ta, meas, true, &err) != MT_OK)
        fail_msg("extend: %s", err.msg);
    uint8_t *ev = NULL;
    size_t el = 0;
    if (mt_tpm2_attester_quote(F.ta, rd, sizeof rd, &ev, &el, &err) != MT_OK)
        fail_msg("quote: %s", err.msg);
    mt_attest_collateral *coll = coll_for(F.ta);
    mt_attest_claims c;
    if (mt_attest_verify(MT_ATTEST_TPM2, ev, el, coll, mt_now(), &c, &err) != MT_OK)
        fail_msg("verify: %s", err.msg);
    assert_int_equal(c.kind, MT_ATTEST_TPM2);
    assert_string_equal(c.endorsement, "AK");
    /* A pin is not an EK check: only a policy's enrolment record sets it. */
    assert_int_equal(c.checked & MT_ATTEST_CHECKED_EK_CHAIN, 0);
    assert_int_equal(c.report_data_len, 64);
    assert_memory_equal(c.report_data, rd, 64);
    const mt_attest_measurement *m = mt_attest_claims_measurement(&c, "pcr23");
    assert_non_null(m);
    assert_memory_equal(m->value, expected, 32);
    assert_non_null(mt_attest_claims_measurement(&c, "pcr0"));
    assert_non_null(mt_attest_claims_measurement(&c, "pcr7"));
    assert_null(mt_attest_claims_measurement(&c, "pcr16"));

    /* Wrong nonce: the evidence carries other report data than the quote. */
    mt_tpm2_evidence parsed;
    assert_int_equal(mt_tpm2_evidence_parse(ev, el, &parsed, &err), MT_OK);
    uint8_t *bad = malloc(el);
    memcpy(bad, ev, el);
    size_t rd_off = (size_t)(parsed.report_data - ev);
    bad[rd_off + 5] ^= 1;
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, bad, el, coll, mt_now(), &c, &err), MT_EAUTH);
    assert_non_null(strstr(err.msg, "report data"));
    /* ... and a fresh quote for other report data is not this verifier's. */
    uint8_t rd2[64];
    memcpy(rd2, rd, 64);
    rd2[0] ^= 0xff;
    uint8_t *ev2 = NULL;
    size_t el2 = 0;
    assert_int_equal(mt_tpm2_attester_quote(F.ta, rd2, 64, &ev2, &el2, &err), MT_OK);
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, ev2, el2, coll, mt_now(), &c, &err), MT_OK);
    assert_memory_not_equal(c.report_data, rd, 64);

    /* Wrong PCR value in the evidence: pcrDigest mismatch. */
    memcpy(bad, ev, el);
    bad[el - 1] ^= 1; /* last byte of the last PCR value (pcr23) */
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, bad, el, coll, mt_now(), &c, &err), MT_EAUTH);
    assert_non_null(strstr(err.msg, "pcrDigest"));
    /* Another measurement extended: the evidence verifies, but pcr23 is not
     * the expected value, so a policy on the measurement rejects it. */
    uint8_t other[32];
    sha256("a changed daemon", other);
    assert_int_equal(mt_tpm2_attester_extend(F.ta, other, true, &err), MT_OK);
    free(ev2);
    assert_int_equal(mt_tpm2_attester_quote(F.ta, rd, 64, &ev2, &el2, &err), MT_OK);
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, ev2, el2, coll, mt_now(), &c, &err), MT_OK);
    m = mt_attest_claims_measurement(&c, "pcr23");
    assert_non_null(m);
    assert_memory_not_equal(m->value, expected, 32);
    /* Extending without reset accumulates. */
    assert_int_equal(mt_tpm2_attester_extend(F.ta, meas, false, &err), MT_OK);
    free(ev2);
    assert_int_equal(mt_tpm2_attester_quote(F.ta, rd, 64, &ev2, &el2, &err), MT_OK);
    assert_int_equal(mt_attest_verify(MT_ATTEST_TPM2, ev2, el2, coll, mt_now(), &c, &err), MT_OK);
    m = mt_attest_claims_measurement(&c, "pcr23");
    assert_memory_not_equal(m->value, expected, 32);
    /* Report data over 64 bytes is refused. */
    uint8_t big[65] = {0};
    free(ev2);
    ev2 = NULL;
    assert_int_equal(mt_tpm2_attester_quote(F.ta, big, sizeof big, &ev2, &el2, &err), MT_EINVAL);
    free(bad);
    free(ev);
    mt_attest_collateral_free(coll);
}

/* Enrolment as `mesatee attest tpm-enroll` does it (mt_tpm2_attester_enrol):
 * a signed record for TPM A's AK, a policy trusting its enroller, A's quote
 * accepted with the EK chain established, B's quote refused; B cannot be
 * enrolled under A's EK certificate. */
static void test_enrol_record(void **state)
{
    (void)state;
    REQUIRE_SWTPM();
    mt_err err;
    EVP_PKEY *enroller = EVP_EC_gen("P-256");
    assert_non_null(enroller);
    char *rec = NULL;
    if (mt_tpm2_attester_enrol(F.ta, NULL, 0, F.ca, F.ca_len, mt_now(), enroller, &rec, &err) !=
        MT_OK)
        fail_msg("enrol TPM A: %s", err.msg);
    const uint8_t *ek_a;
    size_t ek_al;
    assert_int_equal(mt_tpm2_attester_ek_cert(F.ta, &ek_a, &ek_al, &err), MT_OK);
    char *rec_b = NULL;
    assert_int_equal(
        mt_tpm2_attester_enrol(F.tb, ek_a, ek_al, F.ca, F.ca_len, mt_now(), enroller, &rec_b, &err),
        MT_EAUTH);
    assert_null(rec_b);
    char rp[160], cp[160];
    snprintf(rp, sizeof rp, "%s/rec.json", F.dir);
    snprintf(cp, sizeof cp, "%s/ek-ca.pem", F.dir);
    assert_int_equal(mt_file_write_atomic(rp, rec, strlen(rec), 0644, &err), MT_OK);
    assert_int_equal(mt_file_write_atomic(cp, F.ca, F.ca_len, 0644, &err), MT_OK);
    unsigned char *spki = NULL;
    int sl = i2d_PUBKEY(enroller, &spki);
    uint8_t eh[32], meas[32], expected[32];
    unsigned int hl = 0;
    assert_int_equal(EVP_Digest(spki, (size_t)sl, eh, &hl, EVP_sha256(), NULL), 1);
    OPENSSL_free(spki);
    char ehex[65], phex[65];
    mt_hex_encode(eh, 32, ehex);
    sha256("enrolled daemon", meas);
    mt_tpm2_expected_pcr(meas, expected);
    mt_hex_encode(expected, 32, phex);
    char doc[1024];
    snprintf(doc, sizeof doc,
             "{\"mesatee_policy\":1,\"allowed_kinds\":[\"tpm2\"],\"min_level\":\"tpm2\","
             "\"measurements\":{\"gateway\":{\"pcr23\":[\"%s\"]}},\"tpm2_ek_ca\":\"%s\","
             "\"tpm2_enrollers\":[\"%s\"],\"tpm2_enrolments\":[\"%s\"],"
             "\"required_checks\":{\"tpm2\":[\"ek_chain\"]}}",
             phex, cp, ehex, rp);
    mt_policy *p = NULL;
    if (mt_policy_parse(doc, strlen(doc), &p, &err) != MT_OK)
        fail_msg("policy: %s", err.msg);
    uint8_t rd[64] = {7};
    uint8_t *ev = NULL;
    size_t el = 0;
    mt_attest_claims *c = malloc(sizeof *c);
    assert_int_equal(mt_tpm2_attester_extend(F.ta, meas, true, &err), MT_OK);
    assert_int_equal(mt_tpm2_attester_quote(F.ta, rd, sizeof rd, &ev, &el, &err), MT_OK);
    if (mt_policy_verify_evidence(p, MT_ATTEST_TPM2, ev, el, mt_now(), c, &err) != MT_OK)
        fail_msg("TPM A's quote, enrolled: %s", err.msg);
    assert_int_equal(c->checked & MT_ATTEST_CHECKED_EK_CHAIN, MT_ATTEST_CHECKED_EK_CHAIN);
    free(ev);
    ev = NULL;
    /* TPM B, same measurement, same EK CA: its AK is not enrolled. */
    assert_int_equal(mt_tpm2_attester_extend(F.tb, meas, true, &err), MT_OK);
    assert_int_equal(mt_tpm2_attester_quote(F.tb, rd, sizeof rd, &ev, &el, &err), MT_OK);
    assert_int_equal(mt_policy_verify_evidence(p, MT_ATTEST_TPM2, ev, el, mt_now(), c, &err),
                     MT_EPERM);
    assert_non_null(strstr(err.msg, "policy rule 'tpm2_aks' failed"));
    free(ev);
    free(c);
    mt_policy_free(p);
    free(rec);
    EVP_PKEY_free(enroller);
}

static void test_open_errors(void **state)
{
    (void)state;
    REQUIRE_SWTPM();
    mt_tpm2_attester *t = NULL;
    mt_err err;
    assert_int_equal(mt_tpm2_attester_open(F.a.tcti, 3, &t, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "out of range"));
    /* A port where nothing listens (the ctrl port of A + 2 is very likely free). */
    char tcti[96];
    int port = free_port_pair();
    snprintf(tcti, sizeof tcti, "swtpm:host=127.0.0.1,port=%d", port);
    assert_int_not_equal(mt_tpm2_attester_open(tcti, MT_TPM2_DEFAULT_PCR, &t, &err), MT_OK);
    fprintf(stderr, "unreachable TPM: %s\n", err.msg);
    assert_null(t);
}

/* mt_tee at level tpm2 (TPM B, via MESATEE_TPM2_TCTI): the daemon's
 * measurement lands in PCR 23 and the tee's attester quotes it. Runs last:
 * it takes over TPM B's object slots. */
static void test_tee_level(void **state)
{
    (void)state;
    REQUIRE_SWTPM();
    mt_tpm2_attester_free(F.tb);
    F.tb = NULL;
    setenv("MESATEE_TPM2_TCTI", F.b.tcti, 1);
    setenv("MESATEE_TPM2_PCR", "5", 1);
    char data[128];
    snprintf(data, sizeof data, "%s/data", F.dir);
    mt_tee *tee = NULL;
    mt_err err;
    assert_int_equal(mt_tee_open("tpm2", data, &tee, &err), MT_EINVAL);
    assert_non_null(strstr(err.msg, "MESATEE_TPM2_PCR"));
    setenv("MESATEE_TPM2_PCR", "23", 1);
    if (mt_tee_open("tpm2", data, &tee, &err) != MT_OK)
        fail_msg("mt_tee_open(tpm2): %s", err.msg);
    assert_string_equal(mt_tee_level(tee), "tpm2");
    uint8_t meas[32], expected[32], key[32];
    assert_int_equal(mt_hex_decode(mt_tee_measurement(tee), meas, 32, NULL), MT_OK);
    mt_tpm2_expected_pcr(meas, expected);
    assert_int_equal(mt_tee_sealing_key(tee, "file-keys/v1", key, &err), MT_OK);
    mt_tpm2_attester *a = mt_tee_tpm2(tee);
    assert_non_null(a);
    uint8_t *ev = NULL;
    size_t el = 0;
    assert_int_equal(
        mt_tpm2_attester_quote(a, (const uint8_t *)"tls-spki-hash", 13, &ev, &el, &err), MT_OK);
    mt_attest_collateral *coll = coll_for(a);
    mt_attest_claims c;
    if (mt_attest_verify(MT_ATTEST_TPM2, ev, el, coll, mt_now(), &c, &err) != MT_OK)
        fail_msg("verify: %s", err.msg);
    const mt_attest_measurement *m = mt_attest_claims_measurement(&c, "pcr23");
    assert_non_null(m);
    assert_memory_equal(m->value, expected, 32);
    free(ev);
    mt_attest_collateral_free(coll);
    mt_tee_free(tee);
    unsetenv("MESATEE_TPM2_TCTI");
    unsetenv("MESATEE_TPM2_PCR");
}

/* The KeyStore's NV counter (issue 10, rollback detection): defined at the
 * first free index, monotonic, read back; an undefined index is
 * MT_ENOTFOUND; an ordinary NV index (the EK certificate's) is not taken for
 * a counter (MT_ECONFLICT); a second define takes the next index. */
static void test_nv_counter(void **state)
{
    (void)state;
    REQUIRE_SWTPM();
    mt_err err;
    uint32_t idx = MT_TPM2_NV_KEYSTORE_BASE, idx2 = MT_TPM2_NV_KEYSTORE_BASE;
    uint64_t v0 = 0, v = 0;
    if (mt_tpm2_nv_counter(F.ta, MT_TPM2_NV_DEFINE, &idx, &v0, &err) != MT_OK)
        fail_msg("define: %s", err.msg);
    assert_int_equal(idx, MT_TPM2_NV_KEYSTORE_BASE);
    assert_int_equal(mt_tpm2_nv_counter(F.ta, MT_TPM2_NV_READ, &idx, &v, &err), MT_OK);
    assert_true(v == v0);
    assert_int_equal(mt_tpm2_nv_counter(F.ta, MT_TPM2_NV_INCREMENT, &idx, &v, &err), MT_OK);
    assert_true(v == v0 + 1);
    assert_int_equal(mt_tpm2_nv_counter(F.ta, MT_TPM2_NV_INCREMENT, &idx, &v, &err), MT_OK);
    assert_int_equal(mt_tpm2_nv_counter(F.ta, MT_TPM2_NV_READ, &idx, &v, &err), MT_OK);
    assert_true(v == v0 + 2);
    /* the base is taken: the next define uses the next index */
    assert_int_equal(mt_tpm2_nv_counter(F.ta, MT_TPM2_NV_DEFINE, &idx2, &v, &err), MT_OK);
    assert_int_equal(idx2, MT_TPM2_NV_KEYSTORE_BASE + 1);
    /* the other TPM has none of them */
    assert_int_equal(mt_tpm2_nv_counter(F.tb, MT_TPM2_NV_READ, &idx, &v, &err), MT_ENOTFOUND);
    assert_non_null(strstr(err.msg, "not defined"));
    uint32_t none = MT_TPM2_NV_KEYSTORE_BASE + 9;
    assert_int_equal(mt_tpm2_nv_counter(F.ta, MT_TPM2_NV_INCREMENT, &none, &v, &err),
                     MT_ENOTFOUND);
    uint32_t ek = MT_TPM2_NV_EK_RSA_CERT;
    assert_int_equal(mt_tpm2_nv_counter(F.ta, MT_TPM2_NV_READ, &ek, &v, &err), MT_ECONFLICT);
    assert_non_null(strstr(err.msg, "not a counter"));
    assert_int_equal(mt_tpm2_nv_counter(NULL, MT_TPM2_NV_READ, &idx, &v, &err), MT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enroll),     cmocka_unit_test(test_ak_of_other_tpm),
        cmocka_unit_test(test_quote_loop), cmocka_unit_test(test_enrol_record),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_nv_counter),
        cmocka_unit_test(test_tee_level),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
