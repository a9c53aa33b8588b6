/* kernels: see kernels.h. Written for this benchmark (in the spirit of
 * CoreMark's list/matrix/state mix, not derived from its code). */
#include "kernels.h"

#include <stddef.h>

/* CRC-16/CCITT over a 32-bit value, used to fold results together. */
static uint16_t crc16(uint32_t v, uint16_t crc)
{
    for (int i = 0; i < 4; i++) {
        crc ^= (uint16_t)((v >> (8 * i)) & 0xFF) << 8;
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* ---- list -------------------------------------------------------------- */

#define LIST_N 512
typedef struct node {
    struct node *next;
    int32_t key, val;
} node;
static node pool[LIST_N];

static node *list_build(uint32_t seed)
{
    node *head = NULL;
    for (int i = 0; i < LIST_N; i++) {
        pool[i].key = (int32_t)(lcg(&seed) & 0xFFFF);
        pool[i].val = i;
        pool[i].next = head;
        head = &pool[i];
    }
    return head;
}

static node *list_reverse(node *h)
{
    node *prev = NULL;
    while (h) {
        node *n = h->next;
        h->next = prev;
        prev = h;
        h = n;
    }
    return prev;
}

static node *list_find(node *h, int32_t key)
{
    for (; h; h = h->next)
        if (h->key == key)
            return h;
    return NULL;
}

/* Bottom-up merge sort of a singly linked list by key (then val). */
static node *list_sort(node *list)
{
    for (size_t k = 1;; k *= 2) {
        node *p = list, *tail = NULL;
        list = NULL;
        size_t merges = 0;
        while (p) {
            merges++;
            node *q = p;
            size_t ps = 0, qs = k;
            while (ps < k && q) {
                ps++;
                q = q->next;
            }
            while (ps > 0 || (qs > 0 && q)) {
                node *e;
                if (ps == 0) {
                    e = q;
                    q = q->next;
                    qs--;
                } else if (qs == 0 || !q || p->key < q->key ||
                           (p->key == q->key && p->val <= q->val)) {
                    e = p;
                    p = p->next;
                    ps--;
                } else {
                    e = q;
                    q = q->next;
                    qs--;
                }
                if (tail)
                    tail->next = e;
                else
                    list = e;
                tail = e;
            }
            p = q;
        }
        tail->next = NULL;
        if (merges <= 1)
            return list;
    }
}

uint32_t k_list(uint32_t iters)
{
    uint16_t crc = 0;
    for (uint32_t it = 0; it < iters; it++) {
        node *h = list_build(it * 7919u + 1);
        int32_t found = 0;
        for (int32_t k = 0; k < 64; k++) {
            node *n = list_find(h, (int32_t)((k * 1031 + (int32_t)it) & 0xFFFF));
            found += n ? n->val : -1;
        }
        h = list_reverse(h);
        h = list_sort(h);
        uint32_t acc = 0;
        for (node *n = h; n; n = n->next)
            acc = acc * 31u + (uint32_t)n->key;
        crc = crc16(acc, crc16((uint32_t)found, crc));
    }
    return crc;
}

/* ---- matrix -------------------------------------------------------------- */

#define MAT_N 32
static int16_t ma[MAT_N * MAT_N], mb[MAT_N * MAT_N];
static int32_t mc[MAT_N * MAT_N];

uint32_t k_matrix(uint32_t iters)
{
    uint16_t crc = 0;
    uint32_t seed = 42;
    for (int i = 0; i < MAT_N * MAT_N; i++) {
        ma[i] = (int16_t)(lcg(&seed) & 0xFF);
        mb[i] = (int16_t)((lcg(&seed) & 0xFF) - 128);
    }
    for (uint32_t it = 0; it < iters; it++) {
        int16_t c = (int16_t)(it & 0x7F);
        for (int i = 0; i < MAT_N * MAT_N; i++)
            ma[i] = (int16_t)(ma[i] + c);
        /* matrix x constant */
        uint32_t s1 = 0;
        for (int i = 0; i < MAT_N * MAT_N; i++) {
            mc[i] = (int32_t)ma[i] * c;
            s1 += (uint32_t)mc[i];
        }
        /* matrix x matrix */
        uint32_t s2 = 0;
        for (int i = 0; i < MAT_N; i++)
            for (int j = 0; j < MAT_N; j++) {
                int32_t acc = 0;
                for (int k = 0; k < MAT_N; k++)
                    acc += (int32_t)ma[i * MAT_N + k] * mb[k * MAT_N + j];
                mc[i * MAT_N + j] = acc;
                s2 += (uint32_t)acc;
            }
        /* bit extraction from the product */
        uint32_t s3 = 0;
        for (int i = 0; i < MAT_N * MAT_N; i++)
            s3 += ((uint32_t)mc[i] >> 2) & 0xF;
        for (int i = 0; i < MAT_N * MAT_N; i++)
            ma[i] = (int16_t)(ma[i] - c);
        crc = crc16(s1 ^ s2 ^ s3, crc);
    }
    return crc;
}

/* ---- state machine --------------------------------------------------------- */

#define TEXT_N 2048
static char text[TEXT_N];

enum { S_START, S_INT, S_FRAC, S_EXP, S_EXPSIGN, S_EXPINT, S_BAD, S_NSTATES };

static void text_build(uint32_t seed)
{
    static const char *const toks[] = {"5012", "1.25", "-874", "+122", "3.1e10", "1.e-9",
                                       "x3f",  "-.5",  "6e",   "1e+7", "--",     "0.0001"};
    size_t p = 0;
    while (p + 8 < TEXT_N) {
        const char *t = toks[lcg(&seed) % 12];
        while (*t && p + 2 < TEXT_N)
            text[p++] = *t++;
        text[p++] = ',';
    }
    text[p] = 0;
}

static int classify(const char **s, uint32_t *transitions)
{
    int st = S_START;
    for (; **s && **s != ','; (*s)++) {
        char c = **s;
        int prev = st;
        switch (st) {
        case S_START:
            st = (c >= '0' && c <= '9') || c == '+' || c == '-' ? S_INT : c == '.' ? S_FRAC : S_BAD;
            break;
        case S_INT:
            st = c >= '0' && c <= '9'   ? S_INT
                 : c == '.'             ? S_FRAC
                 : c == 'e' || c == 'E' ? S_EXP
                                        : S_BAD;
            break;
        case S_FRAC:
            st = c >= '0' && c <= '9' ? S_FRAC : c == 'e' || c == 'E' ? S_EXP : S_BAD;
            break;
        case S_EXP:
            st = c == '+' || c == '-' ? S_EXPSIGN : c >= '0' && c <= '9' ? S_EXPINT : S_BAD;
            break;
        case S_EXPSIGN:
        case S_EXPINT:
            st = c >= '0' && c <= '9' ? S_EXPINT : S_BAD;
            break;
        default:
            break;
        }
        if (st != prev)
            (*transitions)++;
    }
    if (**s == ',')
        (*s)++;
    return st;
}

uint32_t k_state(uint32_t iters)
{
    uint16_t crc = 0;
    for (uint32_t it = 0; it < iters; it++) {
        text_build(it + 1);
        uint32_t count[S_NSTATES] = {0}, transitions = 0;
        const char *s = text;
        while (*s)
            count[classify(&s, &transitions)]++;
        for (int i = 0; i < S_NSTATES; i++)
            crc = crc16(count[i], crc);
        crc = crc16(transitions, crc);
    }
    return crc;
}

uint32_t k_mix(uint32_t iters)
{
    uint16_t crc = 0;
    for (uint32_t it = 0; it < iters; it++) {
        crc = crc16(k_list(4), crc);
        crc = crc16(k_matrix(2), crc);
        crc = crc16(k_state(2), crc);
    }
    return crc;
}

/* ---- fib, sieve, sha256 -------------------------------------------------- */

uint32_t k_fib(uint32_t n)
{
    return n < 2 ? n : k_fib(n - 1) + k_fib(n - 2);
}

#define SIEVE_N 1000000
static uint8_t composite[SIEVE_N + 1];

uint32_t k_sieve(uint32_t iters)
{
    uint32_t count = 0;
    for (uint32_t it = 0; it < iters; it++) {
        for (uint32_t i = 0; i <= SIEVE_N; i++)
            composite[i] = 0;
        count = 0;
        for (uint32_t i = 2; i <= SIEVE_N; i++) {
            if (composite[i])
                continue;
            count++;
            for (uint32_t j = i * 2; j <= SIEVE_N; j += i)
                composite[j] = 1;
        }
    }
    return count;
}

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 =
            hh + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

#define SHA_BUF 16384
static uint8_t shabuf[SHA_BUF];

/* SHA-256 of the buffer (a multiple of 64 bytes, padded as the standard says). */
static void sha256(const uint8_t *p, size_t len, uint32_t h[8])
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    for (int i = 0; i < 8; i++)
        h[i] = iv[i];
    size_t i = 0;
    for (; i + 64 <= len; i += 64)
        sha256_block(h, p + i);
    uint8_t last[64] = {0};
    last[0] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int k = 0; k < 8; k++)
        last[63 - k] = (uint8_t)(bits >> (8 * k));
    sha256_block(h, last);
}

uint32_t k_sha256(uint32_t iters)
{
    uint32_t seed = 7, h[8] = {0};
    for (size_t i = 0; i < SHA_BUF; i++)
        shabuf[i] = (uint8_t)lcg(&seed);
    for (uint32_t it = 0; it < iters; it++) {
        sha256(shabuf, SHA_BUF, h);
        for (int k = 0; k < 8; k++) /* chain: the digest goes into the next input */
            shabuf[(it * 32 + (uint32_t)k * 4) % SHA_BUF] ^= (uint8_t)h[k];
    }
    return h[0] ^ h[7];
}

/* ---- f64 matrix multiply: C = A x B on 64x64 doubles, repeated ---- */
#define FMAT_N 64
static double fa[FMAT_N * FMAT_N], fb[FMAT_N * FMAT_N], fc[FMAT_N * FMAT_N];

uint32_t k_fmatmul(uint32_t iters)
{
    uint32_t seed = 7;
    for (int i = 0; i < FMAT_N * FMAT_N; i++) {
        fa[i] = (double)(lcg(&seed) & 0xFFF) / 4096.0 - 0.5;
        fb[i] = (double)(lcg(&seed) & 0xFFF) / 1024.0 + 0.25;
    }
    uint32_t sum = 0;
    for (uint32_t it = 0; it < iters; it++) {
        for (int i = 0; i < FMAT_N; i++)
            for (int j = 0; j < FMAT_N; j++) {
                double acc = 0.0;
                for (int k = 0; k < FMAT_N; k++)
                    acc += fa[i * FMAT_N + k] * fb[k * FMAT_N + j];
                fc[i * FMAT_N + j] = acc;
            }
        /* feed the product back (scaled) so no iteration can be skipped */
        double tr = 0.0;
        for (int i = 0; i < FMAT_N; i++)
            tr += fc[i * FMAT_N + i];
        fa[it % (FMAT_N * FMAT_N)] = tr / (double)(FMAT_N * FMAT_N);
        sum = sum * 31u + (uint32_t)(int32_t)(tr * 16.0);
    }
    return sum;
}
