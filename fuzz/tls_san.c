/* Fuzz target: the server's TLS name lists (mt_tls_san_list, the reader of
 * --tls-san values and of the listen address for the defaults). Input: the
 * first line is the listen address, each further line one --tls-san value.
 * Invariants: a refusal says why; an accepted list is non-empty, every entry
 * is "DNS:<checked name>" or "IP:<address>", no entry repeats, and the list
 * equals itself as a set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_tls_id.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_VALUES 40

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    const char *values[MAX_VALUES];
    size_t n = 0;
    char *listen = text, *p = strchr(text, '\n');
    if (p) {
        *p++ = '\0';
        while (p && n < MAX_VALUES) {
            values[n++] = p;
            p = strchr(p, '\n');
            if (p)
                *p++ = '\0';
        }
    }
    char out[MT_TLS_SAN_TEXT_MAX];
    mt_err err;
    mt_err_clear(&err);
    if (mt_tls_san_list(values, n, listen, out, sizeof out, &err) != MT_OK) {
        if (!err.msg[0])
            abort();
        free(text);
        return 0;
    }
    if (!out[0] || !mt_tls_san_equal(out, out))
        abort();
    char copy[MT_TLS_SAN_TEXT_MAX];
    memcpy(copy, out, sizeof copy);
    char *save = NULL;
    int count = 0;
    for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        const char *v = !strncmp(e, "DNS:", 4) ? e + 4 : !strncmp(e, "IP:", 3) ? e + 3 : NULL;
        if (!v || mt_tls_san_check(v, NULL) != MT_OK)
            abort();
        /* no repeats */
        size_t el = strlen(e);
        const char *q = out;
        int seen = 0;
        while ((q = strstr(q, e))) {
            if ((q == out || q[-1] == ',') && (q[el] == ',' || q[el] == '\0'))
                seen++;
            q += el;
        }
        if (seen != 1)
            abort();
        count++;
    }
    if (count < 1 || count > MT_TLS_SAN_MAX)
        abort();
    free(text);
    return 0;
}
