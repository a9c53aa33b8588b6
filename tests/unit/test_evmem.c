/* Tests of mt_evmem: libevent's blocks are wiped when libevent frees them.
 *
 * What is checked goes through the allocator's own hooks (mt_evmem_counts and
 * mt_secmem's observer, which sees each block after its wipe and before
 * free()), never by reading freed memory: a request body spread over several
 * evbuffer chains, pulled up into one (the originals freed), drained, grown
 * and freed, and an event_base whose fd map grows by realloc, release every
 * block they allocated through the wiping free, all zero. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_evmem.h"
#include "mt_secmem.h"

typedef struct {
    size_t blocks; /* blocks released through mt_secmem_free */
    size_t dirty;  /* of which not all zero after the wipe */
} wipe_seen;

static void observe(const void *p, size_t n, void *arg)
{
    wipe_seen *w = arg;
    const unsigned char *b = p;
    w->blocks++;
    for (size_t i = 0; i < n; i++)
        if (b[i]) {
            w->dirty++;
            break;
        }
}

#define PIECE 3000 /* one chain each */
#define PIECES 4

/* PIECE bytes of a recognisable secret (never all zero). */
static void marker(uint8_t *out, size_t i)
{
    static const char m[] = "password=correct-horse-battery-staple;";
    for (size_t k = 0; k < PIECE; k++)
        out[k] = (uint8_t)m[(k + i * PIECE) % (sizeof m - 1)];
}

static void nop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void test_evbuffer_wiped(void **state)
{
    (void)state;
    /* a buffer libevent allocated before the allocator was installed (plain
     * malloc): released correctly, and wiped, after it */
    struct evbuffer *early = evbuffer_new();
    assert_non_null(early);
    uint8_t piece[PIECE];
    marker(piece, 0);
    assert_int_equal(evbuffer_add(early, piece, sizeof piece), 0);

    mt_evmem_install();
    mt_evmem_install(); /* once: later calls do nothing */
    wipe_seen w = {0};
    mt_secmem_set_observer(observe, &w);
    size_t a0, r0, a1, r1;
    mt_evmem_counts(&a0, &r0);

    /* a request body as the network delivers it: one chain per read */
    struct evbuffer *body = evbuffer_new();
    assert_non_null(body);
    for (size_t i = 0; i < PIECES; i++) {
        struct evbuffer *rd = evbuffer_new();
        assert_non_null(rd);
        marker(piece, i);
        assert_int_equal(evbuffer_add(rd, piece, sizeof piece), 0);
        assert_int_equal(evbuffer_add_buffer(body, rd), 0); /* moves the chain */
        evbuffer_free(rd);
    }
    assert_true(evbuffer_peek(body, -1, NULL, NULL, 0) >= PIECES);
    /* pullup copies the chains into one and frees them */
    const uint8_t *flat = evbuffer_pullup(body, -1);
    assert_non_null(flat);
    assert_int_equal(evbuffer_peek(body, -1, NULL, NULL, 0), 1);
    for (size_t i = 0; i < PIECES; i++) {
        marker(piece, i);
        assert_memory_equal(flat + i * PIECE, piece, PIECE);
    }
    size_t after_pullup = w.blocks;
    assert_true(after_pullup >= PIECES); /* the original chains, wiped */
    assert_int_equal(w.dirty, 0);
    /* drain part, grow past the chain, read out, free */
    assert_int_equal(evbuffer_drain(body, PIECE + 7), 0);
    assert_int_equal(evbuffer_expand(body, 64 << 10), 0);
    assert_int_equal(evbuffer_add(body, piece, sizeof piece), 0);
    uint8_t out[PIECE];
    assert_int_equal(evbuffer_remove(body, out, sizeof out), (int)sizeof out);
    evbuffer_free(body);

    /* an event_base whose fd map grows (libevent reallocs it) */
    struct event_base *base = event_base_new();
    assert_non_null(base);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int high = dup2(fds[0], 200);
    assert_int_equal(high, 200);
    struct event *e1 = event_new(base, fds[0], EV_READ | EV_PERSIST, nop_cb, NULL);
    struct event *e2 = event_new(base, high, EV_READ | EV_PERSIST, nop_cb, NULL);
    assert_non_null(e1);
    assert_non_null(e2);
    assert_int_equal(event_add(e1, NULL), 0);
    assert_int_equal(event_add(e2, NULL), 0);
    assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 0);
    event_free(e1);
    event_free(e2);
    event_base_free(base);
    close(high);
    close(fds[0]);
    close(fds[1]);

    /* every block libevent allocated since went back through the wiping
     * free (allocated == released), and each was all zero before free() */
    mt_evmem_counts(&a1, &r1);
    assert_true(a1 - a0 > 0);
    assert_int_equal(a1 - a0, r1 - r0);
    assert_int_equal(w.blocks, r1 - r0);
    assert_int_equal(w.dirty, 0);

    /* the early buffer (malloc'd blocks) goes through the same wipe */
    size_t before = w.blocks;
    evbuffer_free(early);
    assert_true(w.blocks >= before + 2); /* the evbuffer and its chain */
    assert_int_equal(w.dirty, 0);
    mt_secmem_set_observer(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evbuffer_wiped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
