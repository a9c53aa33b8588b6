/* builtin_echo: returns its "message" argument. No inputs, no outputs. */
#include <stdlib.h>
#include <string.h>

#include "mt_builtin.h"

mt_status mt_builtin_echo(mt_bctx *ctx, char **ret, mt_err *err)
{
    *ret = NULL;
    const char *msg = mt_bctx_arg(ctx, "message");
    if (!msg)
        return mt_err_set(err, MT_EINVAL, "echo needs a string argument 'message'");
    if (!(*ret = strdup(msg)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_bctx_log(ctx, "echo: returned %zu bytes", strlen(msg));
    return MT_OK;
}
