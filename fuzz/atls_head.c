/* Fuzz target: the executor API's HTTP message-head reader
 * (mt_atls_parse_head): arbitrary bytes, NUL-terminated, never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_atls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *head = malloc(size + 1);
    if (!head)
        return 0;
    memcpy(head, data, size);
    head[size] = '\0';
    size_t clen = 0;
    mt_err err;
    (void)mt_atls_parse_head(head, 1 << 20, &clen, &err);
    free(head);
    return 0;
}
