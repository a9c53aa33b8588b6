/* Fuzz target: if the bytes are a valid module without imports, instantiate
 * it under small limits (fuel, memory, table, call depth, value stack) and
 * call every exported function with zero arguments. Traps are fine; crashes,
 * hangs and sanitizer reports are not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_wasm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.fuel = 20000;
    lim.max_memory_pages = 16;
    lim.max_table_elems = 1000;
    lim.max_call_depth = 200;
    lim.max_stack_slots = 1u << 16;
    mt_wasm_module *m = NULL;
    mt_err e;
    if (mt_wasm_module_new(data, size, &lim, &m, &e) != MT_OK)
        return 0;
    mt_wasm_store *s = mt_wasm_store_new(&lim);
    mt_wasm_instance *inst = NULL;
    if (s && mt_wasm_instantiate(s, m, NULL, NULL, &inst, &e) == MT_OK) {
        for (size_t i = 0; i < mt_wasm_module_num_exports(m); i++) {
            const char *name;
            size_t nlen;
            uint8_t kind;
            mt_wasm_extern x;
            if (!mt_wasm_module_export(m, i, &name, &nlen, &kind) ||
                kind != MT_WASM_EXTERN_FUNC ||
                mt_wasm_instance_export(inst, name, nlen, &x, &e) != MT_OK)
                continue;
            const uint8_t *p, *r;
            size_t np, nr;
            mt_wasm_func_type(x.of.func, &p, &np, &r, &nr);
            mt_wasm_val *args = calloc(np + nr + 1, sizeof *args);
            if (!args)
                break;
            for (size_t k = 0; k < np; k++)
                args[k].type = p[k];
            mt_wasm_store_set_fuel(s, lim.fuel);
            (void)mt_wasm_func_call(s, x.of.func, args, np, args + np, nr, &e);
            free(args);
        }
    }
    mt_wasm_store_free(s);
    mt_wasm_module_free(m);
    return 0;
}
