/* Fuzz target: the gateway's request-head reader (mt_http_head_parse):
 * arbitrary bytes ending in CRLF CRLF, NUL-terminated, never crash, and an
 * accepted head's fields lie inside it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *head = malloc(size + 5);
    if (!head)
        return 0;
    memcpy(head, data, size);
    memcpy(head + size, "\r\n\r\n", 5);
    size_t n = size + 4;
    mt_http_head h;
    if (mt_http_head_parse(head, n, &h)) {
        if (h.target < head || h.target + h.target_len > head + n || h.cl_end > n || h.ex_end > n ||
            (h.auth && h.auth + h.auth_len > head + n))
            abort();
    }
    free(head);
    return 0;
}
