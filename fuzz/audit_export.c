/* Fuzz target for mt_audit_export_verify (src/core/audit_export.c): an
 * audit export file is outside bytes (kept, copied, handed to auditors).
 * It accepts a consistent export (then its numbers add up) or refuses;
 * never crashes, leaks or reads out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_audit_export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t at[3] = {1, 2, 1000};
    char hash_at[3][65];
    mt_audit_export_info info;
    mt_err err;
    if (mt_audit_export_verify(data, size, at, hash_at, 3, &info, &err) == MT_OK) {
        if (info.last < info.first || info.entries != info.last - info.first + 1 ||
            strlen(info.head) != 64 || strlen(info.anchor) != 64)
            abort();
        for (int i = 0; i < 3; i++)
            if ((at[i] >= info.first && at[i] <= info.last) != (strlen(hash_at[i]) == 64))
                abort();
    }
    return 0;
}
