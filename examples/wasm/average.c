/* Private average over N parties: each party registers an encrypted input
 * holding one number (e.g. a salary); the task returns only the count and
 * the mean. Input slots "p1".."p16" (declare as many as needed, optional
 * ones may stay unassigned); at least the task argument min_parties (default
 * 3) must be present, so that no single value can be recovered from the
 * mean of two.
 *
 *   clang --target=wasm32-wasi -O2 -I sdk/wasm -Wl,--strip-all average.c -o average.wasm */
#include <stdio.h>

#include "mesatee.h"

int main(void)
{
    long long min_parties = mt_arg_int("min_parties", 3);
    double sum = 0;
    int n = 0;
    for (int i = 1; i <= 16; i++) {
        char slot[8];
        snprintf(slot, sizeof slot, "p%d", i);
        size_t len;
        char *s = mt_input_read_all(slot, &len);
        if (!s)
            continue; /* slot not declared or not assigned */
        char *end;
        double v = strtod(s, &end);
        while (*end == '\n' || *end == ' ' || *end == '\r' || *end == '\t')
            end++;
        if (end == s || *end) {
            fprintf(stderr, "input '%s' is not a number\n", slot);
            return 2;
        }
        free(s);
        sum += v;
        n++;
    }
    if (n < min_parties) {
        fprintf(stderr, "only %d parties gave a value; at least %lld are needed\n", n, min_parties);
        return 3;
    }
    char out[96];
    snprintf(out, sizeof out, "parties=%d mean=%.2f", n, sum / n);
    mt_set_result(out);
    return 0;
}
