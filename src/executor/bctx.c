/* bctx: the context a built-in sees inside the worker (see mt_builtin.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mt_builtin.h"

const char *mt_bctx_arg(const mt_bctx *ctx, const char *name)
{
    if (!ctx->args)
        return NULL;
    return json_string_value(json_object_get(ctx->args, name));
}

const mt_bctx_input *mt_bctx_input_find(const mt_bctx *ctx, const char *slot)
{
    for (size_t i = 0; i < ctx->n_inputs; i++)
        if (strcmp(ctx->inputs[i].slot, slot) == 0)
            return &ctx->inputs[i];
    return NULL;
}

const mt_bctx_key *mt_bctx_key_find(const mt_bctx *ctx, const char *arg)
{
    for (size_t i = 0; i < ctx->n_keys; i++)
        if (strcmp(ctx->keys[i].arg, arg) == 0)
            return &ctx->keys[i];
    return NULL;
}

mt_status mt_bctx_output_write(mt_bctx *ctx, size_t idx, const void *buf, size_t len,
                               mt_err *err)
{
    if (idx >= ctx->n_outputs)
        return mt_err_set(err, MT_EINTERNAL, "built-in wrote to output %zu of %zu", idx,
                          ctx->n_outputs);
    mt_bctx_output *o = &ctx->outputs[idx];
    if (len == 0)
        return MT_OK;
    mt_status st = mt_ff_writer_write(o->writer, buf, len, err);
    if (st != MT_OK)
        return st;
    o->plain_bytes += len;
    return MT_OK;
}

void mt_bctx_log(mt_bctx *ctx, const char *fmt, ...)
{
    if (ctx->log_truncated)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t l = strlen(line);
    if (ctx->log_len + l + 1 > MT_BCTX_LOG_MAX) {
        ctx->log_truncated = true;
        static const char mark[] = "[log truncated]\n";
        if (ctx->log_len + sizeof mark - 1 <= MT_BCTX_LOG_MAX) {
            memcpy(ctx->log + ctx->log_len, mark, sizeof mark - 1);
            ctx->log_len += sizeof mark - 1;
        }
        ctx->log[ctx->log_len] = 0;
        return;
    }
    memcpy(ctx->log + ctx->log_len, line, l);
    ctx->log_len += l;
    ctx->log[ctx->log_len++] = '\n';
    ctx->log[ctx->log_len] = 0;
}

void mt_bctx_detail(mt_bctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->detail, sizeof ctx->detail, fmt, ap);
    va_end(ap);
}
