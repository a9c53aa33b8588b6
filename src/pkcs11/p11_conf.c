/* p11_conf: reader of the PKCS#11 module's configuration file (p11_conf.h). */
#include "p11_conf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_util.h"

static const char *const conf_keys[] = {"server", "policy", "policy_signers", "ca",
                                        "tls_server_name", "user", "token_label", "timeout"};
#define NKEYS (sizeof conf_keys / sizeof conf_keys[0])

static char **conf_slot(p11_conf *c, size_t i)
{
    switch (i) {
    case 0: return &c->server;
    case 1: return &c->policy;
    case 2: return &c->policy_signers;
    case 3: return &c->ca;
    case 4: return &c->tls_server_name;
    case 5: return &c->user;
    case 6: return &c->token_label;
    default: return NULL;
    }
}

void p11_conf_clear(p11_conf *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        char **s = conf_slot(c, i);
        if (s) {
            free(*s);
            *s = NULL;
        }
    }
    c->timeout = 0;
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t'; }

/* Parses a timeout value: decimal 1..3600. */
static int parse_timeout(const char *v, long *out)
{
    long n = 0;
    if (!*v)
        return -1;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        n = n * 10 + (*p - '0');
        if (n > 3600)
            return -1;
    }
    if (n < 1)
        return -1;
    *out = n;
    return 0;
}

/* Quotes at most 32 printable bytes of a key for a message. */
static void quote_key(const char *k, size_t n, char out[33])
{
    size_t j = 0;
    for (size_t i = 0; i < n && j < 32; i++)
        out[j++] = (k[i] >= 0x20 && k[i] < 0x7f) ? k[i] : '?';
    out[j] = '\0';
}

mt_status p11_conf_parse(const char *text, size_t len, p11_conf *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return mt_err_set(err, MT_EINVAL, "configuration: no text");
    if (len > P11_CONF_MAX_BYTES)
        return mt_err_set(err, MT_EINVAL, "configuration: larger than %d bytes",
                          P11_CONF_MAX_BYTES);
    if (memchr(text, '\0', len))
        return mt_err_set(err, MT_EINVAL, "configuration: contains a NUL byte");
    int seen_line[NKEYS] = {0};
    size_t pos = 0;
    int line = 0;
    mt_status rc = MT_OK;
    while (pos < len) {
        line++;
        const char *l = text + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - l) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > P11_CONF_MAX_LINE) {
            rc = mt_err_set(err, MT_EINVAL, "configuration line %d: longer than %d bytes", line,
                            P11_CONF_MAX_LINE);
            goto fail;
        }
        if (n && l[n - 1] == '\r')
            n--;
        size_t a = 0;
        while (a < n && is_blank(l[a]))
            a++;
        if (a == n || l[a] == '#')
            continue;
        const char *eq = memchr(l + a, '=', n - a);
        if (!eq) {
            rc = mt_err_set(err, MT_EINVAL, "configuration line %d: expected 'key = value'", line);
            goto fail;
        }
        size_t kend = (size_t)(eq - l);
        while (kend > a && is_blank(l[kend - 1]))
            kend--;
        size_t vb = (size_t)(eq - l) + 1, ve = n;
        while (vb < ve && is_blank(l[vb]))
            vb++;
        while (ve > vb && is_blank(l[ve - 1]))
            ve--;
        size_t ki = NKEYS;
        for (size_t i = 0; i < NKEYS; i++)
            if (strlen(conf_keys[i]) == kend - a && !memcmp(conf_keys[i], l + a, kend - a))
                ki = i;
        char q[33];
        quote_key(l + a, kend - a, q);
        if (ki == NKEYS) {
            rc = mt_err_set(err, MT_EINVAL, "configuration line %d: unknown key '%s'", line, q);
            goto fail;
        }
        if (seen_line[ki]) {
            rc = mt_err_set(err, MT_EINVAL, "configuration line %d: key '%s' already set on line %d",
                            line, q, seen_line[ki]);
            goto fail;
        }
        seen_line[ki] = line;
        if (ve == vb) {
            rc = mt_err_set(err, MT_EINVAL, "configuration line %d: key '%s' has an empty value",
                            line, q);
            goto fail;
        }
        for (size_t i = vb; i < ve; i++)
            if ((unsigned char)l[i] < 0x20 && l[i] != '\t') {
                rc = mt_err_set(err, MT_EINVAL,
                                "configuration line %d: key '%s' has a control character", line, q);
                goto fail;
            }
        char *v = malloc(ve - vb + 1);
        if (!v) {
            rc = mt_err_set(err, MT_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(v, l + vb, ve - vb);
        v[ve - vb] = '\0';
        if (!strcmp(conf_keys[ki], "timeout")) {
            int bad = parse_timeout(v, &out->timeout);
            free(v);
            if (bad) {
                rc = mt_err_set(err, MT_EINVAL,
                                "configuration line %d: timeout must be 1..3600 seconds", line);
                goto fail;
            }
            continue;
        }
        *conf_slot(out, ki) = v;
    }
    if (!out->server) {
        rc = mt_err_set(err, MT_EINVAL, "configuration: 'server' is required");
        goto fail;
    }
    if (strncmp(out->server, "https://", 8) != 0) {
        rc = mt_err_set(err, MT_EINVAL, "configuration line %d: server must be an https:// URL",
                        seen_line[0]);
        goto fail;
    }
    if (out->policy && out->ca) {
        rc = mt_err_set(err, MT_EINVAL,
                        "configuration line %d: 'policy' and 'ca' exclude each other (attested "
                        "TLS replaces CA pinning)",
                        seen_line[3]);
        goto fail;
    }
    if (out->policy_signers && !out->policy) {
        rc = mt_err_set(err, MT_EINVAL, "configuration line %d: 'policy_signers' needs 'policy'",
                        seen_line[2]);
        goto fail;
    }
    if (out->token_label && strlen(out->token_label) > 32) {
        rc = mt_err_set(err, MT_EINVAL,
                        "configuration line %d: token_label is longer than 32 bytes", seen_line[6]);
        goto fail;
    }
    if (!out->token_label && !(out->token_label = mt_strdup("mesatee"))) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto fail;
    }
    if (!out->timeout)
        out->timeout = 30;
    return MT_OK;
fail:
    p11_conf_clear(out);
    return rc;
}

mt_status p11_conf_load(const char *path, p11_conf *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf = NULL;
    size_t n = 0;
    mt_status rc = mt_file_read(path, P11_CONF_MAX_BYTES, &buf, &n, err);
    if (rc != MT_OK)
        return mt_err_prefix(err, rc, "configuration file %s: ", path);
    rc = p11_conf_parse((const char *)buf, n, out, err);
    free(buf);
    if (rc != MT_OK)
        return mt_err_prefix(err, rc, "%s: ", path);
    return MT_OK;
}
