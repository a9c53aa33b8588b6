/* Fuzz target: arbitrary bytes through the wasm decoder, validator and
 * translator (mt_wasm_module_new). Must never crash, leak or read out of
 * bounds; a rejected module must carry an error message. */
#include <stdint.h>
#include <stdlib.h>

#include "mt_wasm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_wasm_module *m = NULL;
    mt_err e;
    mt_err_clear(&e);
    mt_status st = mt_wasm_module_new(data, size, NULL, &m, &e);
    if (st != MT_OK && (m != NULL || e.msg[0] == 0))
        abort();
    mt_wasm_module_free(m);
    return 0;
}
