/* cli_config: reader of the CLI's settings file; contract in cli_config.h. */
#include "cli_config.h"

#include <stdlib.h>
#include <string.h>

const char *const cli_config_keys[CLI_CONFIG_NKEYS] = {"server", "ca", "token_file", "output",
                                                       "tls_server_name"};

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

void cli_config_clear(cli_config *c)
{
    for (int i = 0; i < CLI_CONFIG_NKEYS; i++) {
        free(c->value[i]);
        c->value[i] = NULL;
        c->line[i] = 0;
    }
    c->error_line = 0;
}

/* [*b, *e) trimmed of blanks (and a trailing CR) on both sides. */
static void trim(const char **b, const char **e)
{
    while (*b < *e && is_blank(**b))
        (*b)++;
    while (*e > *b && (is_blank((*e)[-1]) || (*e)[-1] == '\r'))
        (*e)--;
}

static mt_status parse_line(const char *b, const char *e, int lineno, cli_config *out,
                            mt_err *err)
{
    trim(&b, &e);
    if (b == e || *b == '#')
        return MT_OK;
    const char *eq = memchr(b, '=', (size_t)(e - b));
    if (!eq)
        return mt_err_set(err, MT_EINVAL, "expected 'key = value'");
    const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
    trim(&kb, &ke);
    trim(&vb, &ve);
    size_t klen = (size_t)(ke - kb);
    int k = -1;
    for (int i = 0; i < CLI_CONFIG_NKEYS; i++)
        if (strlen(cli_config_keys[i]) == klen && memcmp(cli_config_keys[i], kb, klen) == 0)
            k = i;
    if (k < 0)
        return mt_err_set(err, MT_EINVAL,
                          "unknown key '%.*s' (known keys: server, ca, token_file, output, "
                          "tls_server_name)",
                          (int)(klen > 64 ? 64 : klen), kb);
    if (out->value[k])
        return mt_err_set(err, MT_EINVAL, "key '%s' is set twice (first on line %d)",
                          cli_config_keys[k], out->line[k]);
    if (vb == ve)
        return mt_err_set(err, MT_EINVAL, "key '%s' has an empty value",
                          cli_config_keys[k]);
    if (!(out->value[k] = strndup(vb, (size_t)(ve - vb))))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    out->line[k] = lineno;
    return MT_OK;
}

mt_status cli_config_parse(const char *text, size_t len, cli_config *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    if (len > CLI_CONFIG_MAX_BYTES)
        return mt_err_set(err, MT_EINVAL, "the file is larger than %d bytes",
                          CLI_CONFIG_MAX_BYTES);
    if (memchr(text, '\0', len))
        return mt_err_set(err, MT_EINVAL, "the file contains a NUL byte: not a text file");
    const char *p = text, *end = text + len;
    int lineno = 0;
    while (p < end) {
        lineno++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        mt_status rc;
        if ((size_t)(e - p) > CLI_CONFIG_MAX_LINE)
            rc = mt_err_set(err, MT_EINVAL, "line longer than %d bytes", CLI_CONFIG_MAX_LINE);
        else
            rc = parse_line(p, e, lineno, out, err);
        if (rc) {
            cli_config_clear(out);
            out->error_line = lineno;
            return rc;
        }
        p = nl ? nl + 1 : end;
    }
    return MT_OK;
}
