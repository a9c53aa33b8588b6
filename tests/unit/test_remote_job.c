/* Unit tests of mt_rjob_decode, the remote executor's reader of the job
 * document claimed from the scheduler. The old reader took fields loosely
 * (negative limits became huge unsigned ones, unknown keys and repeated slots
 * passed, an input with both ciphertext and url used one of them). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "remote_job.h"

#define K64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define H64 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID "cccccccccccccccccccccccccccccccc"

/* A job document with the given limits, module, inputs and outputs JSON. */
static char *doc(char *buf, size_t cap, const char *type, const char *limits, const char *module,
                 const char *inputs, const char *outputs)
{
    snprintf(buf, cap,
             "{\"task_id\":\"" ID "\",\"executor_type\":\"%s\",\"function\":\"psi\","
             "\"arguments\":{\"a\":\"1\"},\"limits\":%s,\"module\":%s,\"inputs\":%s,"
             "\"outputs\":%s}",
             type, limits, module, inputs, outputs);
    return buf;
}

#define LIM "{\"mem_bytes\":1024,\"cpu_seconds\":5,\"wall_ms\":100}"
#define IN_A "{\"slot\":\"a\",\"key\":\"" K64 "\",\"ciphertext\":\"AAEC\",\"sha256\":\"" H64 "\"}"
#define OUT_R "{\"slot\":\"r\",\"key\":\"" K64 "\",\"file_id\":\"" ID "\"}"

static void test_accepts(void **state)
{
    (void)state;
    char b[2048];
    mt_rjob j;
    mt_err err = {0};
    doc(b, sizeof b, "builtin", LIM, "null",
        "[" IN_A ",{\"slot\":\"b\",\"key\":\"" K64 "\",\"url\":\"https://h/x\"}]", "[" OUT_R "]");
    assert_int_equal(mt_rjob_decode(b, strlen(b), &j, &err), MT_OK);
    assert_string_equal(j.task_id, ID);
    assert_int_equal(j.n_inputs, 2);
    assert_int_equal(j.inputs[0].ciphertext_len, 3);
    assert_string_equal(j.inputs[0].sha256, H64);
    assert_null(j.inputs[0].url);
    assert_string_equal(j.inputs[1].url, "https://h/x");
    assert_string_equal(j.outputs[0].file_id, ID);
    assert_int_equal(j.mem_bytes, 1024);
    assert_int_equal(j.wall_ms, 100);
    assert_false(j.has_module);
    mt_rjob_free(&j);
}

static void refused(const char *b, const char *why)
{
    mt_rjob j;
    mt_err err = {0};
    assert_int_equal(mt_rjob_decode(b, strlen(b), &j, &err), MT_EINVAL);
    if (!strstr(err.msg, why))
        fail_msg("message '%s' lacks '%s'", err.msg, why);
    assert_null(j.root);
    /* messages name fields, never values */
    assert_null(strstr(err.msg, K64));
}

static void test_refusals(void **state)
{
    (void)state;
    char b[2048];
    refused(doc(b, sizeof b, "builtin", "{\"mem_bytes\":-1,\"cpu_seconds\":5,\"wall_ms\":1}",
                "null", "[]", "[]"),
            "mem_bytes");
    refused(doc(b, sizeof b, "builtin", "{\"mem_bytes\":1,\"cpu_seconds\":5,\"wall_ms\":1,\"x\":1}",
                "null", "[]", "[]"),
            "'x'");
    refused(doc(b, sizeof b, "builtin", LIM, "null", "[" IN_A "," IN_A "]", "[]"),
            "slot repeated");
    refused(doc(b, sizeof b, "builtin", LIM, "null",
                "[{\"slot\":\"a\",\"key\":\"" K64 "\",\"ciphertext\":\"AA==\",\"url\":\"https://x/\"}]",
                "[]"),
            "exactly one of");
    refused(doc(b, sizeof b, "builtin", LIM, "null",
                "[{\"slot\":\"a\",\"key\":\"" K64 "\",\"url\":\"file:///etc/passwd\"}]", "[]"),
            "https://");
    refused(doc(b, sizeof b, "builtin", LIM, "null", "[]",
                "[{\"slot\":\"../r\",\"key\":\"" K64 "\"}]"),
            "invalid slot name");
    refused(doc(b, sizeof b, "builtin", LIM, "null", "[]", "[{\"slot\":\"r\",\"key\":\"zz\"}]"),
            "key");
    refused(doc(b, sizeof b, "wasm", LIM, "null", "[]", "[]"), "a wasm or python job has a module");
    refused(doc(b, sizeof b, "python", LIM, "null", "[]", "[]"),
            "a wasm or python job has a module");
    refused(doc(b, sizeof b, "builtin", LIM,
                "{\"key\":\"" K64 "\",\"ciphertext\":\"AA==\"}", "[]", "[]"),
            "a wasm or python job has a module");
    refused(doc(b, sizeof b, "native", LIM, "null", "[]", "[]"), "executor_type");
    refused(doc(b, sizeof b, "builtin", LIM, "null",
                "[{\"slot\":\"a\",\"key\":\"" K64 "\",\"ciphertext\":\"!!\"}]", "[]"),
            "base64");
    refused("[1,2]", "expected a JSON object");
}

/* KeyStore keys in the claimed job (docs/keystore.md, "Keys in tasks"). */
static void test_keys(void **state)
{
    (void)state;
    char b[2048], k[2600];
    mt_rjob j;
    mt_err err = {0};
    doc(b, sizeof b, "builtin", LIM, "null", "[]", "[]");
    b[strlen(b) - 1] = 0;
    snprintf(k, sizeof k, "%s,\"keys\":[{\"arg\":\"a\",\"type\":\"ecdsa-p256\",\"version\":2,"
             "\"der\":\"300102\"}]}", b);
    assert_int_equal(mt_rjob_decode(k, strlen(k), &j, &err), MT_OK);
    assert_int_equal(j.n_keys, 1);
    assert_string_equal(j.keys[0].arg, "a");
    assert_string_equal(j.keys[0].type, "ecdsa-p256");
    assert_int_equal(j.keys[0].version, 2);
    assert_int_equal(j.keys[0].der_len, 3);
    assert_memory_equal(j.keys[0].der, "\x30\x01\x02", 3);
    mt_rjob_free(&j);
    static const char *const bad[][2] = {
        {"[]", "1 to 4 keys"},
        {"[{\"arg\":\"zz\",\"type\":\"t\",\"version\":1,\"der\":\"00\"}]", "no argument"},
        {"[{\"arg\":\"a\",\"type\":\"t\",\"version\":0,\"der\":\"00\"}]", "version"},
        {"[{\"arg\":\"a\",\"type\":\"t\",\"version\":1,\"der\":\"0g\"}]", "hex"},
        {"[{\"arg\":\"a\",\"type\":\"t\",\"version\":1,\"der\":\"000\"}]", "hex"},
        {"[{\"arg\":\"a\",\"type\":\"t\",\"version\":1,\"der\":\"00\"},"
         "{\"arg\":\"a\",\"type\":\"t\",\"version\":1,\"der\":\"00\"}]", "twice"},
        {"[{\"arg\":\"a\",\"type\":\"t\",\"version\":1,\"der\":\"00\",\"x\":1}]", "'x'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(k, sizeof k, "%s,\"keys\":%s}", b, bad[i][0]);
        refused(k, bad[i][1]);
    }
}

/* The scheduler's reader of the executor's report. */
static void test_report(void **state)
{
    (void)state;
    const char *ok = "{\"task_id\":\"" ID "\",\"ok\":true,\"metering\":{\"cpu_ms\":7,\"key_signs\":2},"
                     "\"outputs\":{\"r\":{\"ciphertext\":\"AAEC\",\"sha256\":\"" H64
                     "\",\"size\":3}}}";
    mt_rreport r;
    mt_err err = {0};
    assert_int_equal(mt_rreport_decode(ok, strlen(ok), &r, &err), MT_OK);
    assert_true(r.ok);
    assert_int_equal(r.cpu_ms, 7);
    assert_int_equal(r.key_signs, 2);
    assert_non_null(json_object_get(r.outputs, "r"));
    mt_rreport_free(&r);
    const char *at_max = "{\"task_id\":\"" ID "\",\"metering\":{\"key_signs\":4294967296}}";
    assert_int_equal(mt_rreport_decode(at_max, strlen(at_max), &r, &err), MT_OK);
    assert_int_equal(r.key_signs, MT_JOB_KEY_SIGNS_MAX);
    mt_rreport_free(&r);
    const char *bad[] = {
        "{\"task_id\":\"" ID "\",\"metering\":{\"cpu_ms\":-5}}",
        "{\"task_id\":\"" ID "\",\"metering\":{\"evil\":1}}",
        "{\"task_id\":\"" ID "\",\"metering\":{\"key_signs\":-1}}",
        "{\"task_id\":\"" ID "\",\"metering\":{\"key_signs\":\"1\"}}",
        /* above MT_JOB_KEY_SIGNS_MAX (2^32) per task */
        "{\"task_id\":\"" ID "\",\"metering\":{\"key_signs\":4294967297}}",
        "{\"task_id\":\"" ID "\",\"metering\":{\"key_signs\":9223372036854775807}}",
        "{\"task_id\":\"nope\"}",
        "{\"task_id\":\"" ID "\",\"outputs\":{\"../x\":{\"ciphertext\":\"\","
        "\"sha256\":\"" H64 "\",\"size\":0}}}",
        "{\"task_id\":\"" ID "\",\"outputs\":{\"r\":{\"ciphertext\":\"\","
        "\"sha256\":\"xyz\",\"size\":0}}}",
        "{\"task_id\":\"" ID "\",\"outputs\":{\"r\":{\"ciphertext\":\"\","
        "\"sha256\":\"" H64 "\",\"size\":0,\"more\":1}}}",
        "{\"task_id\":\"" ID "\",\"log\":7}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mt_rreport_decode(bad[i], strlen(bad[i]), &r, &err), MT_EINVAL);
        assert_null(r.root);
    }
}

#define SEC "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define SECU "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"

/* Leases (issue 14): the job's "lease", the report's "fence", the renewal,
 * its answer and the executor's health. */
static void test_lease_in_job_and_report(void **state)
{
    (void)state;
    char b[2048], d[2300];
    mt_rjob j;
    mt_err err = {0};
    doc(b, sizeof b, "builtin", LIM, "null", "[]", "[]");
    b[strlen(b) - 1] = 0; /* reopen the object */
    snprintf(d, sizeof d, "%s,\"lease\":{\"fence\":7,\"ms\":2000,\"secret\":\"" SEC "\"}}", b);
    assert_int_equal(mt_rjob_decode(d, strlen(d), &j, &err), MT_OK);
    assert_int_equal(j.lease_fence, 7);
    assert_int_equal(j.lease_ms, 2000);
    assert_string_equal(j.lease_secret, SEC);
    mt_rjob_free(&j);
    const char *bad[] = {"{\"fence\":0,\"ms\":2000}", "{\"fence\":1,\"ms\":99}",
                         "{\"fence\":1,\"ms\":3600001}", "{\"fence\":1}",
                         "{\"fence\":1,\"ms\":2000,\"x\":1}", "{\"fence\":-1,\"ms\":2000}",
                         "{\"fence\":9007199254740993,\"ms\":2000}", "[]",
                         /* the lease secret: required, 64 lower-case hex */
                         "{\"fence\":1,\"ms\":2000}",
                         "{\"fence\":1,\"ms\":2000,\"secret\":\"abc\"}",
                         "{\"fence\":1,\"ms\":2000,\"secret\":\"" SECU "\"}",
                         "{\"fence\":1,\"ms\":2000,\"secret\":7}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(d, sizeof d, "%s,\"lease\":%s}", b, bad[i]);
        refused(d, "lease");
    }
    const char *rep = "{\"task_id\":\"" ID "\",\"fence\":3}";
    mt_rreport r;
    assert_int_equal(mt_rreport_decode(rep, strlen(rep), &r, &err), MT_OK);
    assert_int_equal(r.fence, 3);
    assert_null(r.lease_secret);
    mt_rreport_free(&r);
    const char *reps = "{\"task_id\":\"" ID "\",\"fence\":3,\"lease_secret\":\"" SEC "\"}";
    assert_int_equal(mt_rreport_decode(reps, strlen(reps), &r, &err), MT_OK);
    assert_string_equal(r.lease_secret, SEC);
    mt_rreport_free(&r);
    const char *bad_sec[] = {"{\"task_id\":\"" ID "\",\"fence\":3,\"lease_secret\":\"x\"}",
                             "{\"task_id\":\"" ID "\",\"fence\":3,\"lease_secret\":\"" SECU "\"}",
                             "{\"task_id\":\"" ID "\",\"fence\":3,\"lease_secret\":1}"};
    for (size_t i = 0; i < sizeof bad_sec / sizeof bad_sec[0]; i++) {
        assert_int_equal(mt_rreport_decode(bad_sec[i], strlen(bad_sec[i]), &r, &err), MT_EINVAL);
        assert_null(r.root);
    }
    const char *rep0 = "{\"task_id\":\"" ID "\",\"fence\":0}";
    assert_int_equal(mt_rreport_decode(rep0, strlen(rep0), &r, &err), MT_EINVAL);
    assert_null(r.root);
}

static void test_renewal(void **state)
{
    (void)state;
    mt_rrenew q;
    mt_err err = {0};
    const char *ok = "{\"task_id\":\"" ID "\",\"fence\":12,\"secret\":\"" SEC "\"}";
    assert_int_equal(mt_rrenew_decode(ok, strlen(ok), &q, &err), MT_OK);
    assert_string_equal(q.task_id, ID);
    assert_int_equal(q.fence, 12);
    assert_string_equal(q.secret, SEC);
    const char *bad[] = {"{\"task_id\":\"" ID "\"}", "{\"task_id\":\"x\",\"fence\":1}",
                         "{\"task_id\":\"" ID "\",\"fence\":0}",
                         "{\"task_id\":\"" ID "\",\"fence\":\"1\"}",
                         "{\"task_id\":\"" ID "\",\"fence\":1,\"more\":1}", "7", "", "{",
                         "{\"task_id\":\"" ID "\",\"fence\":1}",
                         "{\"task_id\":\"" ID "\",\"fence\":1,\"secret\":\"" SECU "\"}",
                         "{\"task_id\":\"" ID "\",\"fence\":1,\"secret\":\"00\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        assert_int_not_equal(mt_rrenew_decode(bad[i], strlen(bad[i]), &q, &err), MT_OK);
        assert_true(err.msg[0] != 0);
    }
    char big[MT_RLEASE_MAX_BYTES + 16];
    memset(big, ' ', sizeof big);
    memcpy(big, ok, strlen(ok));
    assert_int_equal(mt_rrenew_decode(big, sizeof big, &q, &err), MT_ETOOBIG);

    mt_rrenew_answer a;
    const char *ans = "{\"lease_ms\":2000,\"cancel\":true}";
    assert_int_equal(mt_rrenew_answer_decode(ans, strlen(ans), &a, &err), MT_OK);
    assert_int_equal(a.lease_ms, 2000);
    assert_true(a.cancel);
    const char *bad_ans[] = {"{\"lease_ms\":5}", "{\"cancel\":true}",
                             "{\"lease_ms\":2000,\"cancel\":1}",
                             "{\"lease_ms\":2000,\"extra\":false}"};
    for (size_t i = 0; i < sizeof bad_ans / sizeof bad_ans[0]; i++)
        assert_int_equal(mt_rrenew_answer_decode(bad_ans[i], strlen(bad_ans[i]), &a, &err),
                         MT_EINVAL);
}

/* Raw transfers: the query's reader and writer agree; every malformed part
 * is refused with a reason that never quotes it. */
static void test_xfer(void **state)
{
    (void)state;
    mt_err err;
    mt_rxfer x, y;
    memset(&x, 0, sizeof x);
    snprintf(x.task_id, sizeof x.task_id, "0123456789abcdef0123456789abcdef");
    x.fence = 42;
    memset(x.secret, 'a', 64);
    snprintf(x.slot, sizeof x.slot, "in put&=?%%");
    char q[512];
    assert_true(mt_rxfer_format(&x, q, sizeof q));
    assert_int_equal(mt_rxfer_parse(q, strlen(q), &y, &err), MT_OK);
    assert_string_equal(y.task_id, x.task_id);
    assert_int_equal(y.fence, 42);
    assert_string_equal(y.secret, x.secret);
    assert_string_equal(y.slot, x.slot);
    x.slot[0] = 0; /* the module */
    assert_true(mt_rxfer_format(&x, q, sizeof q));
    assert_int_equal(mt_rxfer_parse(q, strlen(q), &y, &err), MT_OK);
    assert_string_equal(y.slot, "");
    assert_false(mt_rxfer_format(&x, q, 40)); /* does not fit */
    const char *S = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const char *T = "0123456789abcdef0123456789abcdef";
    char bad[16][400];
    int n = 0;
    snprintf(bad[n++], 400, "fence=1&task=%s&secret=%s&slot=", T, S);   /* order */
    snprintf(bad[n++], 400, "task=%sX&fence=1&secret=%s&slot=", T, S);  /* id length */
    snprintf(bad[n++], 400, "task=%s&fence=0&secret=%s&slot=", T, S);   /* fence 0 */
    snprintf(bad[n++], 400, "task=%s&fence=01&secret=%s&slot=", T, S);  /* leading zero */
    snprintf(bad[n++], 400, "task=%s&fence=9007199254740993&secret=%s&slot=", T, S); /* > 2^53 */
    snprintf(bad[n++], 400, "task=%s&fence=-1&secret=%s&slot=", T, S);
    snprintf(bad[n++], 400, "task=%s&fence=1&secret=%.63s&slot=", T, S); /* secret length */
    snprintf(bad[n++], 400, "task=%s&fence=1&secret=%s&slot=6", T, S);   /* odd hex */
    snprintf(bad[n++], 400, "task=%s&fence=1&secret=%s&slot=2f", T, S);  /* '/' */
    snprintf(bad[n++], 400, "task=%s&fence=1&secret=%s&slot=0a", T, S);  /* control */
    snprintf(bad[n++], 400, "task=%s&fence=1&secret=%s&slot=41&x=1", T, S); /* trailing */
    snprintf(bad[n++], 400, "task=%s&fence=1&secret=%s", T, S);          /* no slot */
    snprintf(bad[n++], 400, "task=%s&fence=1&secret=%s&slot=4G", T, S);  /* not hex */
    snprintf(bad[n++], 400, "task=%s&fence=1&secret=%s&slot=610062", T, S); /* NUL inside */
    snprintf(bad[n++], 400, "task=%s&fence=1&secret=%s&slot=41", "0123456789ABCDEF0123456789abcdef", S);
    for (int i = 0; i < n; i++) {
        mt_err_clear(&err);
        assert_int_equal(mt_rxfer_parse(bad[i], strlen(bad[i]), &y, &err), MT_EINVAL);
        assert_non_null(strstr(err.msg, "transfer: "));
        assert_null(strstr(err.msg, S));
    }
    /* the query of a 128-byte slot fits 512 bytes; 129 bytes of slot do not parse */
    memset(x.slot, 'z', 128);
    x.slot[128] = 0;
    assert_true(mt_rxfer_format(&x, q, sizeof q));
    assert_int_equal(mt_rxfer_parse(q, strlen(q), &y, &err), MT_OK);
    char big[700];
    snprintf(big, sizeof big, "%s7a", q);
    assert_int_equal(mt_rxfer_parse(big, strlen(big), &y, &err), MT_EINVAL);
}

/* Streamed inputs in the job document and uploaded outputs in the report. */
static void test_stream_forms(void **state)
{
    (void)state;
    mt_err err;
    const char *K = "0000000000000000000000000000000000000000000000000000000000000000";
    char doc[2048];
    snprintf(doc, sizeof doc,
             "{\"task_id\":\"0123456789abcdef0123456789abcdef\",\"executor_type\":\"builtin\","
             "\"function\":\"psi\",\"arguments\":{},\"limits\":{\"mem_bytes\":1,"
             "\"cpu_seconds\":1,\"wall_ms\":1},\"module\":null,\"inputs\":[{\"slot\":\"a\","
             "\"key\":\"%s\",\"stream\":true,\"size\":5}],\"outputs\":[]}",
             K);
    mt_rjob j;
    assert_int_equal(mt_rjob_decode(doc, strlen(doc), &j, &err), MT_OK);
    assert_true(j.inputs[0].stream);
    assert_int_equal(j.inputs[0].size, 5);
    assert_null(j.inputs[0].ciphertext);
    mt_rjob_free(&j);
    const char *bad[] = {"\"stream\":false,\"size\":5", "\"stream\":true",
                         "\"stream\":true,\"size\":-1", "\"size\":5,\"url\":\"https://x\"",
                         "\"stream\":true,\"size\":5,\"ciphertext\":\"\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(doc, sizeof doc,
                 "{\"task_id\":\"0123456789abcdef0123456789abcdef\",\"executor_type\":"
                 "\"builtin\",\"function\":\"psi\",\"arguments\":{},\"limits\":{"
                 "\"mem_bytes\":1,\"cpu_seconds\":1,\"wall_ms\":1},\"module\":null,"
                 "\"inputs\":[{\"slot\":\"a\",\"key\":\"%s\",%s}],\"outputs\":[]}",
                 K, bad[i]);
        assert_int_equal(mt_rjob_decode(doc, strlen(doc), &j, &err), MT_EINVAL);
    }
    const char *H = "1111111111111111111111111111111111111111111111111111111111111111";
    snprintf(doc, sizeof doc,
             "{\"task_id\":\"0123456789abcdef0123456789abcdef\",\"ok\":true,\"outputs\":"
             "{\"r\":{\"uploaded\":true,\"sha256\":\"%s\",\"size\":1000000000000}}}",
             H);
    mt_rreport r;
    assert_int_equal(mt_rreport_decode(doc, strlen(doc), &r, &err), MT_OK);
    mt_rreport_free(&r);
    snprintf(doc, sizeof doc,
             "{\"task_id\":\"0123456789abcdef0123456789abcdef\",\"ok\":true,\"outputs\":"
             "{\"r\":{\"uploaded\":false,\"sha256\":\"%s\",\"size\":1}}}",
             H);
    assert_int_equal(mt_rreport_decode(doc, strlen(doc), &r, &err), MT_EINVAL);
    snprintf(doc, sizeof doc,
             "{\"task_id\":\"0123456789abcdef0123456789abcdef\",\"ok\":true,\"outputs\":"
             "{\"r\":{\"uploaded\":true,\"ciphertext\":\"\",\"sha256\":\"%s\","
             "\"size\":0}}}",
             H);
    assert_int_equal(mt_rreport_decode(doc, strlen(doc), &r, &err), MT_EINVAL);
    snprintf(doc, sizeof doc,
             "{\"task_id\":\"0123456789abcdef0123456789abcdef\",\"ok\":true,\"outputs\":"
             "{\"r\":{\"sha256\":\"%s\",\"size\":1000000000000}}}",
             H); /* no ciphertext and not uploaded */
    assert_int_equal(mt_rreport_decode(doc, strlen(doc), &r, &err), MT_EINVAL);
}

static void test_health(void **state)
{
    (void)state;
    mt_rhello h;
    mt_err err = {0};
    assert_int_equal(mt_rhello_decode("", 0, &h, &err), MT_OK);
    assert_false(h.present);
    const char *ok = "{\"executor\":\"host-1:a_b.c\",\"slots\":4,\"busy\":2,\"tasks_run\":9,"
                     "\"tasks_failed\":1,\"last_error\":\"lease lost\"}";
    assert_int_equal(mt_rhello_decode(ok, strlen(ok), &h, &err), MT_OK);
    assert_true(h.present);
    assert_string_equal(h.executor, "host-1:a_b.c");
    assert_int_equal(h.slots, 4);
    assert_int_equal(h.busy, 2);
    assert_int_equal(h.tasks_run, 9);
    assert_string_equal(h.last_error, "lease lost");
    const char *bad[] = {
        "{\"executor\":\"a b\",\"slots\":1,\"busy\":0}",
        "{\"executor\":\"a\\\"}\",\"slots\":1,\"busy\":0}",
        "{\"executor\":\"\",\"slots\":1,\"busy\":0}",
        "{\"executor\":\"a\",\"slots\":0,\"busy\":0}",
        "{\"executor\":\"a\",\"slots\":2,\"busy\":3}",
        "{\"executor\":\"a\",\"slots\":1025,\"busy\":0}",
        "{\"executor\":\"a\",\"slots\":1,\"busy\":0,\"last_error\":\"x\\ny\"}",
        "{\"executor\":\"a\",\"slots\":1,\"busy\":0,\"tasks_run\":-1}",
        "{\"executor\":\"a\",\"slots\":1,\"busy\":0,\"who\":1}",
        "{\"executor\":\"a\",\"slots\":1}",
        "null",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mt_rhello_decode(bad[i], strlen(bad[i]), &h, &err), MT_EINVAL);
        assert_false(h.present);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_report),
        cmocka_unit_test(test_lease_in_job_and_report),
        cmocka_unit_test(test_renewal),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_xfer),
        cmocka_unit_test(test_stream_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
