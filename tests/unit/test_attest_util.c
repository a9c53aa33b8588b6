/* Helpers shared by the attestation tests, #included by each test_attest_*.c
 * (not compiled on its own): locating and reading the recorded test vectors,
 * skipping when they are absent, times, hex, collateral sets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "mt_attest.h"
#include "mt_util.h"

#define TV_UNUSED __attribute__((unused))

/* The test-vector directory, or NULL when ../shared is absent. */
static TV_UNUSED const char *tv_dir(void)
{
    const char *env = getenv("MESATEE_TESTVECTORS");
    static const char *compiled = MT_TESTVECTORS;
    struct stat sb;
    if (env && *env && stat(env, &sb) == 0 && S_ISDIR(sb.st_mode))
        return env;
    if (stat(compiled, &sb) == 0 && S_ISDIR(sb.st_mode))
        return compiled;
    return NULL;
}

/* Skips the current test with a message when the vectors are absent. */
#define TV_REQUIRE()                                                                       \
    do {                                                                                   \
        if (!tv_dir()) {                                                                   \
            fprintf(stderr, "SKIP: attestation test vectors not found (set "               \
                            "MESATEE_TESTVECTORS or MT_SHARED_DIR to ../shared)\n");       \
            skip();                                                                        \
        }                                                                                  \
    } while (0)

static TV_UNUSED char *tv_path(const char *rel)
{
    const char *d = tv_dir();
    size_t n = strlen(d) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", d, rel);
    return p;
}

/* Whole file (fails the test if unreadable). */
static TV_UNUSED uint8_t *tv_read(const char *rel, size_t *len)
{
    char *path = tv_path(rel);
    uint8_t *buf = NULL;
    mt_err err;
    if (mt_file_read(path, 1u << 20, &buf, len, &err) != MT_OK)
        fail_msg("cannot read %s: %s", path, err.msg);
    free(path);
    return buf;
}

static TV_UNUSED int64_t tv_time(const char *rfc3339)
{
    int64_t t = 0;
    assert_int_equal(mt_attest_time_parse(rfc3339, &t, NULL), MT_OK);
    return t;
}

static TV_UNUSED void tv_hex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(mt_hex_decode(hex, out, n, NULL), MT_OK);
}

typedef struct tv_item {
    mt_attest_coll_item item;
    const char *rel;
} tv_item;

/* A collateral set from files, terminated by {0, NULL}. */
static TV_UNUSED mt_attest_collateral *tv_coll(const tv_item *items)
{
    mt_attest_collateral *c = mt_attest_collateral_new();
    assert_non_null(c);
    for (; items && items->rel; items++) {
        char *p = tv_path(items->rel);
        mt_err err;
        if (mt_attest_collateral_add_file(c, items->item, p, &err) != MT_OK)
            fail_msg("collateral %s: %s", p, err.msg);
        free(p);
    }
    return c;
}

/* Asserts that a measurement exists with the given hex value. */
static TV_UNUSED void tv_assert_meas(const mt_attest_claims *c, const char *name,
                                     const char *hex)
{
    const mt_attest_measurement *m = mt_attest_claims_measurement(c, name);
    if (!m)
        fail_msg("measurement %s missing", name);
    char got[2 * MT_ATTEST_VALUE_MAX + 1];
    mt_hex_encode(m->value, m->len, got);
    if (strcmp(got, hex) != 0)
        fail_msg("measurement %s: expected %s, got %s", name, hex, got);
}

static TV_UNUSED void tv_assert_svn(const mt_attest_claims *c, const char *name,
                                    uint64_t want)
{
    uint64_t v = 0;
    if (!mt_attest_claims_svn(c, name, &v))
        fail_msg("svn %s missing", name);
    if (v != want)
        fail_msg("svn %s: expected %llu, got %llu", name, (unsigned long long)want,
                 (unsigned long long)v);
}

/* Asserts that err's message contains want. */
static TV_UNUSED void tv_assert_msg(const mt_err *err, const char *want)
{
    if (!strstr(err->msg, want))
        fail_msg("expected an error containing \"%s\", got \"%s\"", want, err->msg);
}

/* Prints a claims summary (for the report). */
static TV_UNUSED void tv_print_claims(const char *label, const mt_attest_claims *c)
{
    char rd[129];
    mt_hex_encode(c->report_data, 64, rd);
    fprintf(stderr, "[%s] kind=%s product=%s endorsement=%s tcb=%s debug=%d checked=0x%x\n",
            label, mt_attest_kind_name(c->kind), c->product, c->endorsement,
            mt_attest_tcb_status_name(c->tcb_status), c->debug, c->checked);
    for (size_t i = 0; i < c->n_advisories; i++)
        fprintf(stderr, "    advisory %s\n", c->advisories[i]);
    fprintf(stderr, "    report_data %s\n", rd);
}
