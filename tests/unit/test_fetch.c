/* Tests of untrusted_fetch: file:// root checks (and the race-free open),
 * schemes, size limit, the outbound address policy (refused before any
 * connect; only loopback listeners are used: no traffic leaves the host). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "untrusted_fetch.h"

static char root[256], outside[256];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    strcpy(root, "/tmp/mt_fetch_XXXXXX");
    strcpy(outside, "/tmp/mt_fetch_out_XXXXXX");
    assert_non_null(mkdtemp(root));
    assert_non_null(mkdtemp(outside));
    char p[512];
    snprintf(p, sizeof p, "%s/sub", root);
    mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/sub/data", root);
    put(p, "ciphertext");
    snprintf(p, sizeof p, "%s/secret", outside);
    put(p, "host secret");
    char l[512];
    snprintf(l, sizeof l, "%s/link", root);
    snprintf(p, sizeof p, "%s/secret", outside);
    assert_int_equal(symlink(p, l), 0);
    snprintf(l, sizeof l, "%s/inlink", root);
    snprintf(p, sizeof p, "%s/sub/data", root);
    assert_int_equal(symlink(p, l), 0);
    snprintf(l, sizeof l, "%s/dirlink", root);
    assert_int_equal(symlink(outside, l), 0);
    return 0;
}

static int teardown(void **state)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", root, outside);
    return system(cmd) == 0 ? 0 : -1;
}

/* Fetches "file://" base suffix under root. */
static mt_status get(const char *base, const char *suffix, size_t max, char **text, mt_err *err)
{
    char url[1024];
    snprintf(url, sizeof url, "file://%s%s", base, suffix);
    uint8_t *out = NULL;
    size_t len = 0;
    mt_status st = untrusted_fetch(url, root, max, &out, &len, err);
    if (text)
        *text = (char *)out;
    else
        free(out);
    return st;
}

static void test_file_ok(void **state)
{
    char *t;
    mt_err err = {0};
    assert_int_equal(get(root, "/sub/data", 100, &t, &err), MT_OK);
    assert_string_equal(t, "ciphertext");
    free(t);
    assert_int_equal(get(root, "/sub/data", 10, &t, &err), MT_OK);
    free(t);
    assert_int_equal(get(root, "/sub/data", 9, NULL, &err), MT_ETOOBIG);
    assert_true(untrusted_fetch_url_supported("file:///x"));
    assert_true(untrusted_fetch_url_supported("https://example.org/x"));
    assert_false(untrusted_fetch_url_supported("http://example.org/x"));
    /* the fd variant */
    char url[600];
    snprintf(url, sizeof url, "file://%s/sub/data", root);
    int fd;
    uint64_t size;
    assert_int_equal(untrusted_fetch_open_file(url, root, &fd, &size, &err), MT_OK);
    assert_int_equal(size, 10);
    close(fd);
}

static void test_file_refused(void **state)
{
    mt_err err = {0};
    assert_int_equal(get(outside, "/secret", 100, NULL, &err), MT_EPERM);
    assert_non_null(strstr(err.msg, "outside"));
    assert_int_equal(get(root, "/sub/../sub/data", 100, NULL, &err), MT_EPERM);
    assert_int_equal(get(root, "/../etc/passwd", 100, NULL, &err), MT_EPERM);
    assert_int_equal(get(root, "/link", 100, NULL, &err), MT_EPERM);    /* out */
    assert_int_equal(get(root, "/inlink", 100, NULL, &err), MT_EPERM);  /* in */
    assert_non_null(strstr(err.msg, "symbolic link"));
    assert_int_equal(get(root, "/dirlink/secret", 100, NULL, &err), MT_EPERM);
    assert_int_equal(get(root, "/sub", 100, NULL, &err), MT_EPERM);  /* a dir */
    assert_int_equal(get(root, "/absent", 100, NULL, &err), MT_ENOTFOUND);
    assert_int_equal(get("/etc/passwd", "", 100, NULL, &err), MT_EPERM);
    assert_int_equal(get(root, "/sub/data%00", 100, NULL, &err), MT_EINVAL);
    /* no root configured: file:// refused */
    char url[600];
    snprintf(url, sizeof url, "file://%s/sub/data", root);
    uint8_t *out;
    size_t len;
    assert_int_equal(untrusted_fetch(url, NULL, 100, &out, &len, &err), MT_EPERM);
    assert_null(out);
}

static void test_schemes(void **state)
{
    const char *bad[] = {"http://127.0.0.1/x", "ftp://127.0.0.1/x", "gopher://x", "data:,x",
                         "/etc/passwd", "HTTPS://127.0.0.1/x", "", NULL};
    for (int i = 0; bad[i]; i++) {
        uint8_t *out;
        size_t len;
        mt_err err = {0};
        assert_int_equal(untrusted_fetch(bad[i], root, 100, &out, &len, &err), MT_EINVAL);
        assert_non_null(strstr(err.msg, "unsupported"));
    }
}

static void test_https_unreachable(void **state)
{
    uint8_t *out;
    size_t len;
    mt_err err = {0};
    /* port 9 on loopback: refused by the policy; the reason is the one class */
    assert_int_equal(untrusted_fetch("https://127.0.0.1:9/object", NULL, 100, &out, &len, &err),
                     MT_EIO);
    assert_null(out);
    assert_string_equal(err.msg, "fetch failed");
}

/* ---- outbound policy: refused before connecting (issue 8, item 12) ---- */

typedef struct listener {
    int fd, port;
    pthread_t th;
    atomic_int accepted;
    atomic_bool stop;
} listener;

static void *accept_loop(void *arg)
{
    listener *l = arg;
    while (!atomic_load(&l->stop)) {
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        if (poll(&p, 1, 50) == 1) {
            int c = accept(l->fd, NULL, NULL);
            if (c >= 0) {
                atomic_fetch_add(&l->accepted, 1);
                close(c); /* the TLS handshake fails: fine */
            }
        }
    }
    return NULL;
}

static void listener_start(listener *l)
{
    memset(l, 0, sizeof *l);
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(l->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(l->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l->fd, 16), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(l->fd, (struct sockaddr *)&a, &al), 0);
    l->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&l->th, NULL, accept_loop, l), 0);
}

/* Stops the listener; returns how many connections it ever received
 * (including any still queued). */
static int listener_stop(listener *l)
{
    atomic_store(&l->stop, true);
    pthread_join(l->th, NULL);
    int c;
    while ((c = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0 || errno == EINTR)
        if (c >= 0) {
            atomic_fetch_add(&l->accepted, 1);
            close(c);
        }
    close(l->fd);
    return atomic_load(&l->accepted);
}

static mt_status fetch_detail(const char *url, const char *allow, char *detail, size_t cap,
                              mt_err *err)
{
    uint8_t *out = NULL;
    size_t len = 0;
    detail[0] = 0;
    untrusted_fetch_opts o = {.allow = allow, .detail = detail, .detail_cap = cap};
    mt_status st = untrusted_fetch_ex(url, &o, 1000, &out, &len, err);
    free(out);
    return st;
}

static void test_https_policy_refuses_before_connect(void **state)
{
    listener l;
    listener_start(&l);
    char url[128], detail[512];
    mt_err err = {0};
    const char *host[] = {"127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "127.1",
                          "2130706433", NULL};
    for (int i = 0; host[i]; i++) {
        snprintf(url, sizeof url, "https://%s:%d/object", host[i], l.port);
        assert_int_equal(fetch_detail(url, NULL, detail, sizeof detail, &err), MT_EIO);
        assert_string_equal(err.msg, "fetch failed");
        if (!strstr(detail, "refused by the outbound fetch policy"))
            fail_msg("%s: not refused by the policy: %s", url, detail);
    }
    /* private and link-local addresses: refused in the socket callback, so no
     * packet is ever sent to them */
    const char *priv[] = {"https://10.0.0.1/", "https://192.168.1.1/", "https://172.16.0.1/",
                          "https://100.64.0.1/", "https://169.254.169.254/latest/meta-data/",
                          "https://[fd00::1]/", "https://[fe80::1]/", "https://[::1]/",
                          "https://0.0.0.0/", NULL};
    for (int i = 0; priv[i]; i++) {
        assert_int_equal(fetch_detail(priv[i], NULL, detail, sizeof detail, &err), MT_EIO);
        assert_string_equal(err.msg, "fetch failed");
        if (!strstr(detail, "refused by the outbound fetch policy"))
            fail_msg("%s: not refused by the policy: %s", priv[i], detail);
    }
    assert_int_equal(listener_stop(&l), 0); /* the listener never saw a connection */

    /* the allow-list lets the operator reach a named block: the connection is
     * made (and fails in TLS), with the same generic reason */
    listener_start(&l);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/object", l.port);
    assert_int_equal(fetch_detail(url, "192.0.2.0/24,127.0.0.0/8", detail, sizeof detail, &err),
                     MT_EIO);
    assert_string_equal(err.msg, "fetch failed");
    assert_null(strstr(detail, "refused by the outbound fetch policy"));
    assert_true(listener_stop(&l) >= 1);
}

static int allowed(const char *ip, const char *allow)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &a->sin_addr), 1);
    }
    return untrusted_fetch_addr_allowed((struct sockaddr *)&ss, allow);
}

static void test_addr_policy(void **state)
{
    const char *deny[] = {"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.31.255.255",
                          "192.168.0.1", "100.64.0.1", "100.127.255.254", "169.254.1.1",
                          "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255",
                          "240.0.0.1", "192.0.2.5", "198.18.0.1", "::", "::1",
                          "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "fc00::1",
                          "fd12:3456::1", "fe80::1", "febf::1", "ff02::1", "2001:db8::1",
                          "64:ff9b::a00:1", "2002:7f00:1::1", "2002:c0a8:101::1", NULL};
    for (int i = 0; deny[i]; i++)
        if (allowed(deny[i], NULL))
            fail_msg("%s should be refused", deny[i]);
    const char *ok[] = {"1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "192.169.0.1",
                        "2606:4700::1111", "::ffff:1.1.1.1", "64:ff9b::808:808", NULL};
    for (int i = 0; ok[i]; i++)
        if (!allowed(ok[i], NULL))
            fail_msg("%s should be allowed", ok[i]);
    /* the allow-list overrides the deny list, exactly for its blocks */
    assert_true(allowed("10.1.2.3", "10.0.0.0/8"));
    assert_false(allowed("10.1.2.3", "10.0.0.0/16"));
    assert_true(allowed("10.0.2.3", "192.0.2.0/24, 10.0.0.0/16") == 0 ||
                allowed("10.0.2.3", "10.0.0.0/16"));
    assert_true(allowed("fd00::5", "fd00::/8"));
    assert_false(allowed("fd00::5", "10.0.0.0/8"));
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    assert_false(untrusted_fetch_addr_allowed((struct sockaddr *)&u, NULL));
    mt_err err = {0};
    assert_int_equal(untrusted_fetch_allow_check("10.0.0.0/8,fd00::/8,192.0.2.1", &err), MT_OK);
    assert_int_equal(untrusted_fetch_allow_check(NULL, &err), MT_OK);
    const char *bad[] = {"10.0.0.0/33", "fd00::/129", "example.org", "10.0.0.0/", "10.0.0/8",
                         "10.0.0.0/-1", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(untrusted_fetch_allow_check(bad[i], &err), MT_EINVAL);
}

/* ---- file:// race: a symlink swapped in under the root is never followed ---- */

typedef struct swapper {
    char a[512], b[512];
    atomic_bool stop;
    atomic_long swaps;
} swapper;

static void *swap_loop(void *arg)
{
    swapper *s = arg;
    while (!atomic_load(&s->stop))
        if (syscall(SYS_renameat2, AT_FDCWD, s->a, AT_FDCWD, s->b, RENAME_EXCHANGE) == 0)
            atomic_fetch_add(&s->swaps, 1);
    return NULL;
}

static void test_file_symlink_swap(void **state)
{
    char p[600], q[600];
    /* root/race is a real directory holding "ciphertext"; root/racelink is a
     * symlink to the outside directory, whose "data" is the host's secret */
    snprintf(p, sizeof p, "%s/race", root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/race/data", root);
    put(p, "ciphertext");
    snprintf(p, sizeof p, "%s/data", outside);
    put(p, "host secret");
    snprintf(q, sizeof q, "%s/racelink", root);
    assert_int_equal(symlink(outside, q), 0);

    /* the open helper itself, both paths: an intermediate symlink is refused */
    int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(rootfd >= 0);
    for (int walk = 0; walk < 2; walk++) {
        int fd = untrusted_fetch_test_open_beneath(rootfd, "racelink/data", walk);
        assert_int_equal(fd, -1);
        assert_int_equal(errno, ELOOP);
        fd = untrusted_fetch_test_open_beneath(rootfd, "inlink", walk); /* last component */
        assert_int_equal(fd, -1);
        fd = untrusted_fetch_test_open_beneath(rootfd, "race/data", walk);
        assert_true(fd >= 0);
        close(fd);
    }
    close(rootfd);

    /* a concurrent swap of race <-> racelink: every open either reads the
     * real file or fails; it never reads through the symlink */
    swapper s = {0};
    snprintf(s.a, sizeof s.a, "%s/race", root);
    snprintf(s.b, sizeof s.b, "%s/racelink", root);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, swap_loop, &s), 0);
    int ok = 0, refused = 0;
    for (int i = 0; i < 4000; i++) {
        char *t = NULL;
        mt_err err = {0};
        mt_status st = get(root, "/race/data", 100, &t, &err);
        if (st == MT_OK) {
            if (strcmp(t, "ciphertext") != 0)
                fail_msg("read through a swapped-in symlink: '%s'", t);
            ok++;
        } else {
            refused++;
        }
        free(t);
    }
    atomic_store(&s.stop, true);
    pthread_join(th, NULL);
    print_message("symlink swap: %d opens, %d refused, %ld swaps\n", ok, refused,
                  atomic_load(&s.swaps));
    assert_true(atomic_load(&s.swaps) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_ok),
        cmocka_unit_test(test_file_refused),
        cmocka_unit_test(test_schemes),
        cmocka_unit_test(test_https_unreachable),
        cmocka_unit_test(test_https_policy_refuses_before_connect),
        cmocka_unit_test(test_addr_policy),
        cmocka_unit_test(test_file_symlink_swap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
