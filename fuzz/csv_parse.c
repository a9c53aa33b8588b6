/* Fuzz target: the built-ins' CSV reader (mt_csv_parse) and writer.
 * The first byte picks the mode (bit 0: no header); the rest is the CSV.
 * A parsed table must be rectangular with line numbers that never go down,
 * and writing it back with mt_sbuf_csv_field must parse to the same table. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "builtin_csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_table(const mt_csv *t, mt_sbuf *b, bool with_header)
{
    for (size_t r = 0; r < t->n_rows + 1; r++) {
        if (r == 0 && !with_header)
            continue;
        for (size_t c = 0; c < t->n_cols; c++) {
            const char *s = r == 0 ? t->header[c] : mt_csv_cell(t, r - 1, c);
            if (c)
                mt_sbuf_put(b, ",", 1);
            if (t->n_cols == 1 && !*s)
                mt_sbuf_puts(b, "\"\"");
            else
                mt_sbuf_csv_field(b, s, strlen(s));
        }
        mt_sbuf_put(b, "\r\n", 2);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    mt_csv_opts o = {.slot = "fuzz", .no_header = data[0] & 1, .max_record = 4096,
                     .max_cols = 64};
    mt_csv *t = NULL;
    mt_err err;
    if (mt_csv_parse(data + 1, size - 1, &o, &t, &err) != MT_OK) {
        if (t || !strstr(err.msg, "input 'fuzz'"))
            abort();
        return 0;
    }
    if (t->n_cols == 0 || t->n_cols > 64)
        abort();
    for (size_t r = 0; r < t->n_rows; r++) {
        if (r > 0 && t->line[r] <= t->line[r - 1])
            abort();
        for (size_t c = 0; c < t->n_cols; c++)
            if (!mt_csv_cell(t, r, c))
                abort();
    }
    mt_sbuf b = {0};
    write_table(t, &b, !o.no_header);
    if (b.oom)
        abort();
    mt_csv *u = NULL;
    o.max_record = 1u << 20; /* quoting can make records longer */
    if (b.len == 0) { /* no_header and zero rows cannot happen: parse failed above */
        abort();
    }
    if (mt_csv_parse((const uint8_t *)b.p, b.len, &o, &u, &err) != MT_OK)
        abort();
    if (u->n_cols != t->n_cols || u->n_rows != t->n_rows)
        abort();
    for (size_t c = 0; c < t->n_cols; c++)
        if (strcmp(u->header[c], t->header[c]))
            abort();
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
        if (strcmp(u->cells[i], t->cells[i]))
            abort();
    mt_csv_free(u);
    mt_csv_free(t);
    mt_sbuf_free(&b);
    return 0;
}
