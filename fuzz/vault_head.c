/* Fuzz target: the gateway's Vault-client head rewriting (mt_vault_head.h):
 * arbitrary bytes ending in CRLF CRLF, NUL-terminated, never crash; a
 * rewritten head ends in CRLF CRLF, is NUL-terminated, and when the original
 * was a strictly well-formed head the rewritten one is too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_http_head.h"
#include "mt_vault_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memchr(data, 0, size)) /* the filter hands over NUL-free heads only in practice */
        return 0;
    char *head = malloc(size + 5);
    if (!head)
        return 0;
    memcpy(head, data, size);
    memcpy(head + size, "\r\n\r\n", 5);
    size_t n = size + 4;
    char *out = NULL;
    size_t on = 0;
    if (mt_vault_head_rewrite(head, n, &out, &on)) {
        if (on < 4 || memcmp(out + on - 4, "\r\n\r\n", 4) || out[on] != '\0')
            abort();
        mt_http_head a, b;
        if (mt_http_head_parse(head, n, &a) && strcmp(a.method, "LIST") &&
            !mt_http_head_parse(out, on, &b))
            abort();
        free(out);
    }
    free(head);
    return 0;
}
