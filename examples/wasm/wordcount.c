/* Word count over an encrypted document: input slot "doc" (text), output
 * slot "counts" (one "word<TAB>count" line per distinct word, most frequent
 * first, ties in byte order), encrypted by the platform under the output
 * owner's key. Words are runs of ASCII letters and digits, lower-cased. The
 * task argument top (default 0 = all) limits the lines written. The return
 * value is "words=N distinct=M"; the log says nothing about the content.
 *
 *   clang --target=wasm32-wasi -O2 -I sdk/wasm -Wl,--strip-all wordcount.c -o wordcount.wasm */
#include <ctype.h>
#include <stdio.h>

#include "mesatee.h"

typedef struct entry {
    char *word;
    unsigned long count;
} entry;

static entry *table;
static size_t cap, used;

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void grow(void);

static void add(const char *w, size_t n)
{
    if (2 * (used + 1) > cap)
        grow();
    size_t i = hash(w, n) & (cap - 1);
    while (table[i].word) {
        if (strlen(table[i].word) == n && !memcmp(table[i].word, w, n)) {
            table[i].count++;
            return;
        }
        i = (i + 1) & (cap - 1);
    }
    table[i].word = strndup(w, n);
    if (!table[i].word)
        exit(4);
    table[i].count = 1;
    used++;
}

static void grow(void)
{
    size_t ncap = cap ? cap * 2 : 1024;
    entry *old = table, *t = calloc(ncap, sizeof *t);
    if (!t)
        exit(4);
    size_t ocap = cap;
    table = t;
    cap = ncap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].word) {
            size_t j = hash(old[i].word, strlen(old[i].word)) & (cap - 1);
            while (table[j].word)
                j = (j + 1) & (cap - 1);
            table[j] = old[i];
        }
    free(old);
}

static int by_count(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->word, y->word);
}

int main(void)
{
    size_t len;
    char *doc = mt_input_read_all("doc", &len);
    if (!doc) {
        fprintf(stderr, "input 'doc' is missing\n");
        return 2;
    }
    unsigned long words = 0;
    for (size_t i = 0; i < len;) {
        if (!isalnum((unsigned char)doc[i])) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && isalnum((unsigned char)doc[j])) {
            doc[j] = (char)tolower((unsigned char)doc[j]);
            j++;
        }
        add(doc + i, j - i);
        words++;
        i = j;
    }
    free(doc);
    entry *list = calloc(used ? used : 1, sizeof *list);
    if (!list)
        return 4;
    size_t n = 0;
    for (size_t i = 0; i < cap; i++)
        if (table[i].word)
            list[n++] = table[i];
    qsort(list, n, sizeof *list, by_count);
    long long top = mt_arg_int("top", 0);
    int32_t out = mt_output_open("counts");
    if (out < 0) {
        fprintf(stderr, "output 'counts' is not assigned\n");
        return 2;
    }
    for (size_t i = 0; i < n && (top <= 0 || (long long)i < top); i++) {
        char line[160];
        int l = snprintf(line, sizeof line, "%.120s\t%lu\n", list[i].word, list[i].count);
        if (mt_output_write(out, line, (size_t)l) != 0)
            return 5;
    }
    char res[64];
    snprintf(res, sizeof res, "words=%lu distinct=%zu", words, n);
    mt_set_result(res);
    printf("counted the words of the document\n");
    return 0;
}
