/* Tests of the `mesatee` binary (MT_CLI_BIN): usage errors (exit 2 with the
 * command's usage), settings precedence (flag > env > config file), config
 * file errors with line numbers, local encrypt/decrypt round trip, and
 * clear failures (exit 1) without a server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MT_CLI_BIN
#error "MT_CLI_BIN must name the mesatee binary"
#endif

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/mt-cli-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *tpath(const char *leaf)
{
    static char buf[64][512]; /* rotating; enough for one test's paths */
    static int i;
    i = (i + 1) % 64;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, leaf);
    return buf[i];
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

typedef struct result {
    int code;
    char *out, *err;
} result;

static void result_free(result *r)
{
    free(r->out);
    free(r->err);
}

/* Runs the binary with argv (NULL-terminated, without argv[0]) and an
 * environment of HOME=tmpdir plus env (NULL-terminated "K=V" list). */
static result run(const char *const *args, const char *const *env)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = MT_CLI_BIN;
    for (int i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char home[300];
    snprintf(home, sizeof home, "HOME=%s", tmpdir);
    const char *envp[32];
    int m = 0;
    envp[m++] = home;
    static char asan[512], ubsan[512]; /* keep sanitizer settings */
    if (getenv("ASAN_OPTIONS")) {
        snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s", getenv("ASAN_OPTIONS"));
        envp[m++] = asan;
    }
    if (getenv("UBSAN_OPTIONS")) {
        snprintf(ubsan, sizeof ubsan, "UBSAN_OPTIONS=%s", getenv("UBSAN_OPTIONS"));
        envp[m++] = ubsan;
    }
    for (int i = 0; env && env[i]; i++)
        envp[m++] = env[i];
    envp[m] = NULL;
    char outp[300], errp[300];
    snprintf(outp, sizeof outp, "%s/stdout", tmpdir);
    snprintf(errp, sizeof errp, "%s/stderr", tmpdir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0)
            _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        execve(MT_CLI_BIN, (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    result r = {.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)};
    r.out = slurp(outp);
    r.err = slurp(errp);
    return r;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void expect(result r, int code, const char *in_out, const char *in_err)
{
    if (r.code != code || (in_out && !strstr(r.out, in_out)) ||
        (in_err && !strstr(r.err, in_err))) {
        fail_msg("exit %d (want %d)\nstdout: %s\nstderr: %s\nwanted stdout~'%s' stderr~'%s'",
                 r.code, code, r.out, r.err, in_out ? in_out : "", in_err ? in_err : "");
    }
}

static void check(const char *const *args, const char *const *env, int code, const char *in_out,
                  const char *in_err)
{
    result r = run(args, env);
    expect(r, code, in_out, in_err);
    result_free(&r);
}

/* ======================================================================== */

static void test_usage_errors(void **state)
{
    (void)state;
    check(ARGS("bogus"), NULL, 2, NULL, "unknown command 'bogus'");
    check(ARGS("user"), NULL, 2, NULL, "usage: mesatee user add");
    check(ARGS("user", "add"), NULL, 2, NULL, "usage: mesatee user add NAME");
    check(ARGS("user", "add", "a", "b"), NULL, 2, NULL, "unexpected argument 'b'");
    check(ARGS("file", "list", "--bogus"), NULL, 2, NULL, "unknown option '--bogus'");
    check(ARGS("file", "encrypt", "--in", "x"), NULL, 2, NULL, "missing --out");
    check(ARGS("file", "encrypt", "--in"), NULL, 2, NULL, "needs a value");
    check(ARGS("task", "show", "nothex"), NULL, 2, NULL, "usage: mesatee task show TASK_ID");
    check(ARGS("task", "wait", "0123456789abcdef0123456789abcdef", "--timeout", "soon"), NULL,
          2, NULL, "--timeout");
    check(ARGS("task", "create", "--function", "0123456789abcdef0123456789abcdef", "--input",
               "noequals"),
          NULL, 2, NULL, "SLOT=USER");
    check(ARGS("user", "add", "bob", "--role", "king"), NULL, 2, NULL, "--role");
    check(ARGS("serve"), NULL, 2, NULL, "missing --data-dir");
    check(ARGS("serve", "--data-dir", "/x", "--level", "sgx2"), NULL, 2, NULL, "--level");
    check(ARGS("serve", "--data-dir", "/x", "--level", "soft", "--tpm2-tcti", "device:/dev/tpm0"),
          NULL, 2, NULL, "--tpm2-tcti is only for --level tpm2");
    check(ARGS("serve", "--data-dir", "/x", "--cert-renew-s", "-1"), NULL, 2, NULL,
          "--cert-renew-s");
    check(ARGS("measure", "--level", "sgx"), NULL, 2, NULL, "measure supports --level soft and tpm2");
    check(ARGS("policy", "sign", "p.json"), NULL, 2, NULL, "missing --key");
    check(ARGS("serve", "--data-dir", "/x", "--workers", "-3"), NULL, 2, NULL, "--workers");
    check(ARGS("audit", "verify"), NULL, 2, NULL, "--data-dir");
    check(ARGS("--output", "xml", "config", "show"), NULL, 2, NULL, "output must be");
    check(ARGS("function", "register", "--name", "f"), NULL, 2, NULL, "--builtin");
    check(ARGS("function", "register", "--name", "f", "--builtin", "echo", "--arg", "=x"), NULL,
          2, NULL, "NAME=DEFAULT");
    check(ARGS("file", "register-fusion", "--owners", "alice"), NULL, 2, NULL,
          "at least 2");
    check(ARGS("--insecure=yes", "file", "list"), NULL, 2, NULL, "takes no value");
    result r = run(ARGS("--help"), NULL);
    expect(r, 0, "usage: mesatee", NULL);
    assert_string_equal(r.err, "");
    result_free(&r);
    check(ARGS("task", "--help"), NULL, 0, "mesatee task wait", NULL);
    check(ARGS("--version"), NULL, 0, "mesatee 0.1.0", NULL);
}

static void test_no_args(void **state)
{
    (void)state;
    const char *argv[] = {NULL};
    check(argv, NULL, 2, NULL, "usage: mesatee");
}

static void test_config_precedence(void **state)
{
    (void)state;
    const char *cfg = tpath("cfg");
    write_text(cfg,
               "# test config\n"
               "server = https://file.example:1\n"
               "\n"
               "  output=json  \n"
               "ca = /file/ca.pem\n",
               0600);
    char envcfg[600];
    snprintf(envcfg, sizeof envcfg, "MESATEE_CONFIG=%s", cfg);
    const char *env_all[] = {envcfg, "MESATEE_SERVER=https://env.example:2", NULL};
    const char *env_file[] = {envcfg, NULL};

    /* flag > env > file */
    check(ARGS("--server", "https://flag.example:3", "config", "show"), env_all, 0,
          "\"server\":{\"value\":\"https://flag.example:3\",\"source\":\"--server\"}", NULL);
    check(ARGS("config", "show"), env_all, 0,
          "\"server\":{\"value\":\"https://env.example:2\",\"source\":\"MESATEE_SERVER\"}",
          NULL);
    char want[700];
    snprintf(want, sizeof want,
             "\"server\":{\"value\":\"https://file.example:1\",\"source\":\"config %s:2\"}",
             cfg);
    check(ARGS("config", "show"), env_file, 0, want, NULL);
    /* output from the file (json above); the flag wins over it */
    check(ARGS("--output", "text", "config", "show"), env_file, 0,
          "ca = /file/ca.pem (config ", NULL);
    /* --config beats MESATEE_CONFIG */
    const char *cfg2 = tpath("cfg2");
    write_text(cfg2, "server = https://other.example\n", 0600);
    check(ARGS("--config", cfg2, "config", "show"), env_file, 0,
          "server = https://other.example (config ", NULL);
    /* default location: $HOME/.config/mesatee/config */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/.config/mesatee", tmpdir);
    char mk[700];
    snprintf(mk, sizeof mk, "mkdir -p '%s'", dir);
    assert_int_equal(system(mk), 0);
    char def[700];
    snprintf(def, sizeof def, "%s/config", dir);
    write_text(def, "server = https://home.example\n", 0600);
    check(ARGS("config", "show"), NULL, 0, "server = https://home.example (config ", NULL);
    unlink(def);
    check(ARGS("config", "show"), NULL, 0, "server = https://127.0.0.1:7443 (default)", NULL);
    /* an absent file named by the environment is fine; by --config it is not */
    const char *env_missing[] = {"MESATEE_CONFIG=/nonexistent/mesatee.conf", NULL};
    check(ARGS("config", "show"), env_missing, 0, "(default)", NULL);
    check(ARGS("--config", "/nonexistent/mesatee.conf", "config", "show"), NULL, 2, NULL,
          "cannot read config file /nonexistent/mesatee.conf");
}

static void test_config_errors(void **state)
{
    (void)state;
    const char *cfg = tpath("badcfg");
    write_text(cfg, "server = https://a.example\n# ok\ncolour = blue\n", 0600);
    char want[600];
    snprintf(want, sizeof want, "%s:3: unknown key 'colour'", cfg);
    check(ARGS("--config", cfg, "config", "show"), NULL, 2, NULL, want);
    write_text(cfg, "server https://a.example\n", 0600);
    snprintf(want, sizeof want, "%s:1: expected 'key = value'", cfg);
    check(ARGS("--config", cfg, "config", "show"), NULL, 2, NULL, want);
    write_text(cfg, "server = https://a.example\nserver = https://b.example\n", 0600);
    snprintf(want, sizeof want, "%s:2: key 'server' is set twice", cfg);
    check(ARGS("--config", cfg, "file", "list"), NULL, 2, NULL, want);
    /* a bad server URL from the config is reported with its source */
    write_text(cfg, "server = http://plain.example\n", 0600);
    check(ARGS("--config", cfg, "file", "list"), NULL, 2, NULL, "must start with https://");
}

static void test_encrypt_decrypt_round_trip(void **state)
{
    (void)state;
    const char *plain = tpath("plain.txt"), *ct = tpath("plain.mtf"), *key = tpath("plain.key"),
               *back = tpath("plain.back");
    write_text(plain, "id,value\n1,secret\n2,also secret\n", 0644);
    check(ARGS("file", "encrypt", "--in", plain, "--out", ct, "--key-out", key), NULL, 0,
          "encrypted", NULL);
    struct stat sb;
    assert_int_equal(stat(key, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char *c = slurp(ct);
    assert_null(strstr(c, "secret"));
    free(c);
    check(ARGS("file", "decrypt", "--in", ct, "--out", back, "--key", key), NULL, 0, "decrypted",
          NULL);
    char *a = slurp(plain), *b = slurp(back);
    assert_string_equal(a, b);
    free(a);
    free(b);
    /* never overwrite a key; nothing written then */
    const char *ct2 = tpath("plain2.mtf");
    check(ARGS("file", "encrypt", "--in", plain, "--out", ct2, "--key-out", key), NULL, 1, NULL,
          "exists");
    assert_int_equal(access(ct2, F_OK), -1);
    /* wrong key: exit 1, output untouched */
    const char *key2 = tpath("other.key"), *ct3 = tpath("other.mtf"), *back2 = tpath("bad.out");
    check(ARGS("--output", "json", "file", "encrypt", "--in", plain, "--out", ct3, "--key-out",
               key2),
          NULL, 0, "\"key_file\"", NULL);
    check(ARGS("file", "decrypt", "--in", ct, "--out", back2, "--key", key2), NULL, 1, NULL,
          "mesatee: ");
    assert_int_equal(access(back2, F_OK), -1);
    /* key readable by others refused */
    assert_int_equal(chmod(key, 0644), 0);
    check(ARGS("file", "decrypt", "--in", ct, "--out", back2, "--key", key), NULL, 1, NULL,
          "chmod 600");
    /* missing input: exit 1, no key left behind */
    const char *key3 = tpath("k3");
    check(ARGS("file", "encrypt", "--in", tpath("absent"), "--out", ct2, "--key-out", key3),
          NULL, 1, NULL, "absent");
    assert_int_equal(access(key3, F_OK), -1);
}

static void test_client_failures(void **state)
{
    (void)state;
    const char *env[] = {"MESATEE_CONFIG=/nonexistent", "MESATEE_SERVER=https://127.0.0.1:1",
                         NULL};
    const char *pw = tpath("pw");
    write_text(pw, "hunter2\n", 0600);
    check(ARGS("login", "--user", "alice", "--password-file", pw), env, 1, NULL,
          "cannot connect to https://127.0.0.1:1");
    check(ARGS("login", "--user", "alice"), env, 2, NULL, "MESATEE_PASSWORD");
    check(ARGS("logout"), env, 1, NULL, "not logged in");
    check(ARGS("file", "list"), env, 1, NULL, "mesatee: cannot connect");
    check(ARGS("--ca", tpath("no-ca.pem"), "file", "list"), env, 1, NULL, "no-ca.pem");
    result r = run(ARGS("--insecure", "file", "list"), env);
    expect(r, 1, NULL, "WARNING: --insecure");
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_args),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_config_precedence),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_encrypt_decrypt_round_trip),
        cmocka_unit_test(test_client_failures),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
