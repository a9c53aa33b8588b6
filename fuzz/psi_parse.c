/* Fuzz target: the PSI id-list parser and intersection (mt_psi_compute).
 * The input is split at the first 0x00 byte into two id lists; the result
 * must be sorted strictly, newline-terminated and contained in both lists,
 * and the general path (MT_PSI_GENERAL) must give the same status and
 * bytes as the default one (the fast path for ids of 16 hex digits, when
 * it applies). With scratch (mt_psi_input.scratch: copies of the lists, as
 * the worker passes its buffers) the default path gives the same again,
 * and a fast path that gives up (MT_PSI_FAST_ONLY: MT_EUNAVAIL) leaves the
 * lists byte for byte as they were (psi_parse_inplace puts them back). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_builtin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* True if id (len bytes) is a line of list (after CR stripping). */
static int contains(const uint8_t *list, size_t n, const uint8_t *id, size_t len)
{
    size_t pos = 0;
    while (pos < n) {
        const uint8_t *s = list + pos, *nl = memchr(s, '\n', n - pos);
        size_t l = nl ? (size_t)(nl - s) : n - pos;
        pos += l + (nl ? 1 : 0);
        if (nl && l && s[l - 1] == '\r')
            l--;
        if (l == len && memcmp(s, id, len) == 0)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *z = memchr(data, 0, size);
    size_t la = z ? (size_t)(z - data) : size;
    mt_psi_input in[2] = {{"a", data, la, NULL}, {"b", z ? z + 1 : data + size, z ? size - la - 1 : 0, NULL}};
    uint8_t *out;
    size_t len, count;
    mt_err err;
    uint8_t *gout;
    size_t glen, gcount;
    mt_err gerr;
    mt_status st = mt_psi_compute(in, 2, 1, &out, &len, &count, &err);
    mt_status gst = mt_psi_compute_ex(in, 2, 2, MT_PSI_GENERAL, &gout, &glen, &gcount, &gerr);
    if (st != gst || (st == MT_OK && (glen != len || gcount != count ||
                                      (len && memcmp(out, gout, len) != 0))))
        abort(); /* the two paths differ */
    free(gout);
    /* with scratch: copies, 8-byte aligned as the worker's buffers */
    mt_psi_input sc[2];
    uint8_t *cp[2];
    for (int i = 0; i < 2; i++) {
        if (!(cp[i] = malloc(in[i].len + 1)))
            abort();
        memcpy(cp[i], in[i].data, in[i].len);
        sc[i] = (mt_psi_input){in[i].slot, cp[i], in[i].len, cp[i]};
    }
    mt_status fst = mt_psi_compute_ex(sc, 2, 3, MT_PSI_FAST_ONLY, &gout, &glen, &gcount, &gerr);
    if (fst == MT_OK)
        free(gout);
    else if (fst != MT_EUNAVAIL || memcmp(cp[0], in[0].data, in[0].len) != 0 ||
             memcmp(cp[1], in[1].data, in[1].len) != 0)
        abort(); /* the fast path gave up and the lists were not put back */
    if (fst == MT_OK) { /* (overwritten: fresh copies) */
        for (int i = 0; i < 2; i++)
            memcpy(cp[i], in[i].data, in[i].len);
    }
    mt_status sst = mt_psi_compute(sc, 2, 4, &gout, &glen, &gcount, &gerr);
    if (sst != st || (st == MT_OK && (glen != len || gcount != count ||
                                      (len && memcmp(out, gout, len) != 0))))
        abort(); /* with scratch, not the same */
    if (sst == MT_OK)
        free(gout);
    free(cp[0]);
    free(cp[1]);
    if (st != MT_OK)
        return 0;
    size_t pos = 0, seen = 0;
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    while (pos < len) {
        const uint8_t *s = out + pos, *nl = memchr(s, '\n', len - pos);
        if (!nl)
            abort(); /* every id ends with a newline */
        size_t l = (size_t)(nl - s);
        if (l == 0 || !contains(in[0].data, in[0].len, s, l) ||
            !contains(in[1].data, in[1].len, s, l))
            abort();
        if (prev) {
            size_t m = prev_len < l ? prev_len : l;
            int c = memcmp(prev, s, m);
            if (c > 0 || (c == 0 && prev_len >= l))
                abort(); /* strictly increasing */
        }
        prev = s;
        prev_len = l;
        pos += l + 1;
        seen++;
    }
    if (seen != count)
        abort();
    free(out);
    return 0;
}
