/* Fuzz target for mt_backup_read (src/core/backup_archive.c): a backup
 * archive given to `mesatee restore` is outside bytes. The reader either
 * accepts a well-formed archive (then every entry name it handed out is a
 * valid relative path, sizes add up) or refuses; it never crashes, leaks or
 * reads out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    uint64_t bytes, cur;
    uint32_t entries;
    bool open;
} seen;

static mt_status sink(void *ctx, const mt_backup_entry *e, bool begin, const uint8_t *d,
                      size_t n, bool end, mt_err *err)
{
    (void)d;
    (void)err;
    seen *s = ctx;
    if (!mt_backup_name_valid(e->name, strlen(e->name)) || e->mode > 0777)
        abort();
    if (begin) {
        if (s->open)
            abort();
        s->open = true;
        s->cur = 0;
        return MT_OK;
    }
    if (!s->open)
        abort();
    s->cur += n;
    if (s->cur > e->size)
        abort();
    if (end) {
        if (s->cur != e->size)
            abort();
        s->open = false;
        s->entries++;
        s->bytes += s->cur;
    }
    return MT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seen s = {0};
    mt_backup_info info;
    mt_err err;
    if (mt_backup_read_mem(data, size, sink, &s, &info, &err) == MT_OK &&
        (s.open || s.entries != info.entries || s.bytes != info.bytes ||
         strlen(info.sha256) != 64))
        abort();
    return 0;
}
