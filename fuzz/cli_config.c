/* Fuzz target: the CLI's settings-file reader (cli_config_parse). Checks the
 * invariants a caller relies on: a refusal says why and leaves no values; an
 * accepted file yields only non-empty, trimmed values without newlines. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cli_config c;
    mt_err err;
    mt_err_clear(&err);
    if (cli_config_parse((const char *)data, size, &c, &err) != MT_OK) {
        if (err.msg[0] == 0)
            abort(); /* every refusal must say why */
        for (int i = 0; i < CLI_CONFIG_NKEYS; i++)
            if (c.value[i])
                abort();
        return 0;
    }
    for (int i = 0; i < CLI_CONFIG_NKEYS; i++) {
        const char *v = c.value[i];
        if (!v)
            continue;
        size_t n = strlen(v);
        if (n == 0 || n > CLI_CONFIG_MAX_LINE || strchr(v, '\n') || v[0] == ' ' ||
            v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' ||
            c.line[i] < 1)
            abort();
    }
    cli_config_clear(&c);
    return 0;
}
