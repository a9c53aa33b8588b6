/* Fuzz target: mt_python_modules_effective over arbitrary --python-allow /
 * --python-deny values (the input split at its first NUL), and
 * mt_python_modules_valid / _has over arbitrary stored lists. Whatever the
 * input, a list that is accepted must be canonical and hold "mesatee". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "python_modules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 2);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    buf[size + 1] = 0;
    const char *allow = buf, *deny = buf + strlen(buf) + 1;
    char *out = NULL;
    mt_err e;
    mt_err_clear(&e);
    if (mt_python_modules_effective(allow, deny, &out, &e) == MT_OK) {
        if (!out || !mt_python_modules_valid(out) || !mt_python_modules_has(out, "mesatee"))
            abort();
        free(out);
    } else if (out) {
        abort();
    }
    if (mt_python_modules_valid(buf) && !mt_python_modules_has(buf, "mesatee"))
        abort();
    (void)mt_python_modules_has(buf, deny);
    free(buf);
    return 0;
}
