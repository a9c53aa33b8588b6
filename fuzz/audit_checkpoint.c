/* Fuzz target for mt_core_audit_checkpoint_parse (src/core/audit.c): a held
 * checkpoint file is outside bytes. The first byte picks the reader: even,
 * the checkpoint document; odd, the GET /v1/audit/checkpoint query string.
 * Either accepts (with consistent fields) or refuses; never crashes, leaks
 * or reads out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_decode.h"
#include "mt_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *b = data + 1;
    size_t n = size - 1;
    mt_err err;
    if ((data[0] & 1) == 0) {
        mt_audit_checkpoint cp;
        if (mt_core_audit_checkpoint_parse(b, n, &cp, &err) == MT_OK &&
            (strlen(cp.head) != 64 || strlen(cp.key_id) != 64 ||
             (cp.cluster_key_id[0] && strlen(cp.cluster_key_id) != 64)))
            abort();
        return 0;
    }
    char *q = malloc(n + 1);
    if (!q)
        return 0;
    memcpy(q, b, n);
    q[n] = '\0';
    bool has;
    int64_t entries;
    if (dec_checkpoint_query_parse(q, &has, &entries, &err) == MT_OK && has && entries < 0)
        abort();
    free(q);
    return 0;
}
