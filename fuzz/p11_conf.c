/* Fuzz target: the PKCS#11 module's configuration reader (p11_conf_parse).
 * Invariants: a refusal says why and leaves no values; an accepted file has a
 * server, a token label of at most 32 bytes, a timeout in 1..3600, never both
 * policy and ca, and only trimmed one-line values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p11_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_value(const char *v)
{
    if (!v)
        return;
    size_t n = strlen(v);
    if (n == 0 || n > P11_CONF_MAX_LINE || strchr(v, '\n') || strchr(v, '\r') || v[0] == ' ' ||
        v[n - 1] == ' ' || v[0] == '\t' || v[n - 1] == '\t')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    p11_conf c;
    mt_err err;
    mt_err_clear(&err);
    if (p11_conf_parse((const char *)data, size, &c, &err) != MT_OK) {
        if (!err.msg[0] || c.server || c.policy || c.ca || c.user || c.token_label ||
            c.policy_signers || c.tls_server_name)
            abort();
        return 0;
    }
    if (!c.server || strncmp(c.server, "https://", 8) || !c.token_label ||
        strlen(c.token_label) > 32 || c.timeout < 1 || c.timeout > 3600 || (c.policy && c.ca) ||
        (c.policy_signers && !c.policy))
        abort();
    check_value(c.server);
    check_value(c.policy);
    check_value(c.policy_signers);
    check_value(c.ca);
    check_value(c.tls_server_name);
    check_value(c.user);
    p11_conf_clear(&c);
    p11_conf_clear(&c); /* twice: a no-op */
    return 0;
}
