/* Yao's millionaires' problem as a mesatee function: two parties each
 * register their wealth (a decimal integer) as an encrypted input; the task
 * tells both who is richer and nothing else. Input slots "a" and "b"; the
 * return value is "a", "b" or "equal". Neither amount is logged or written.
 *
 *   clang --target=wasm32-wasi -O2 -I sdk/wasm -Wl,--strip-all millionaires.c -o millionaires.wasm
 */
#include <ctype.h>
#include <stdio.h>

#include "mesatee.h"

/* Reads slot as a non-negative integer; exits with an error otherwise. */
static unsigned long long wealth(const char *slot)
{
    size_t len;
    char *s = mt_input_read_all(slot, &len);
    if (!s) {
        fprintf(stderr, "input '%s' is missing\n", slot);
        exit(2);
    }
    char *p = s, *end;
    while (isspace((unsigned char)*p))
        p++;
    unsigned long long v = strtoull(p, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (end == p || *end || *p == '-') {
        fprintf(stderr, "input '%s' is not a non-negative integer\n", slot); /* not its value */
        exit(2);
    }
    free(s);
    return v;
}

int main(void)
{
    unsigned long long a = wealth("a"), b = wealth("b");
    mt_set_result(a > b ? "a" : b > a ? "b" : "equal");
    printf("compared two amounts\n");
    return 0;
}
