/* mt_tls_id: SAN lists, the stable level-none TLS identity and operator
 * certificates. Contract in mt_tls_id.h; operator guide in
 * docs/getting-started.md and docs/design.md "Server identity". */
#include "mt_tls_id.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mt_log.h"
#include "mt_util.h"

#define NAME_MAX_LEN 253
#define PEM_FILE_MAX (1024 * 1024)
#define KEY_FILE_MAX (64 * 1024)
#define CHAIN_MAX 16

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

/* A printable, truncated copy of s for messages. */
static void shown(const char *s, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; s[i] && j + 5 < cap && i < 64; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 32 && ch < 127 && ch != '\\')
            out[j++] = (char)ch;
        else
            j += (size_t)snprintf(out + j, cap - j, "\\x%02x", ch);
    }
    out[j] = '\0';
    if (strlen(s) > 64 && j + 4 < cap)
        memcpy(out + j, "...", 4);
}

/* 1: IPv4, 2: IPv6 (canonical text in canon), 0: not an address. */
static int ip_parse(const char *s, char *canon, size_t cap)
{
    unsigned char buf[16];
    char tmp[64];
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']' && n - 2 < sizeof tmp) {
        memcpy(tmp, s + 1, n - 2);
        tmp[n - 2] = '\0';
        s = tmp;
    }
    if (inet_pton(AF_INET, s, buf) == 1)
        return inet_ntop(AF_INET, buf, canon, (socklen_t)cap) ? 1 : 0;
    if (inet_pton(AF_INET6, s, buf) == 1)
        return inet_ntop(AF_INET6, buf, canon, (socklen_t)cap) ? 2 : 0;
    return 0;
}

static bool dns_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    const char *label = s;
    bool all_digits = true;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t ll = (size_t)(p - label);
            if (ll == 0 || ll > 63 || label[0] == '-' || p[-1] == '-')
                return false;
            if (*p == '\0')
                break;
            label = p + 1;
            all_digits = true;
            continue;
        }
        unsigned char ch = (unsigned char)*p;
        if (!isascii(ch) || !(isalnum(ch) || ch == '-'))
            return false;
        if (!isdigit(ch))
            all_digits = false;
    }
    /* "10.0.0.300" is a mistyped address, not a name (no numeric top label) */
    return !all_digits;
}

mt_status mt_tls_san_check(const char *name, mt_err *err)
{
    char canon[64], show[300];
    if (!name || !*name)
        return mt_err_set(err, MT_EINVAL, "TLS name is empty: give a DNS name or an IP address");
    if (ip_parse(name, canon, sizeof canon) || dns_name_ok(name))
        return MT_OK;
    shown(name, show, sizeof show);
    return mt_err_set(err, MT_EINVAL,
                      "'%s' is neither a DNS host name (letters, digits, '-' and dots, labels of "
                      "1-63 characters) nor an IPv4/IPv6 address",
                      show);
}

/* Appends "DNS:name" or "IP:addr" for one checked name unless present. */
static mt_status san_add(const char *name, char *out, size_t cap, size_t *count, mt_err *err)
{
    mt_status st = mt_tls_san_check(name, err);
    if (st != MT_OK)
        return st;
    char entry[NAME_MAX_LEN + 8], canon[64];
    if (ip_parse(name, canon, sizeof canon)) {
        snprintf(entry, sizeof entry, "IP:%s", canon);
    } else {
        size_t n = strlen(name);
        memcpy(entry, "DNS:", 4);
        for (size_t i = 0; i <= n; i++)
            entry[4 + i] = (char)tolower((unsigned char)name[i]);
    }
    /* duplicate? compare whole comma-separated entries */
    size_t el = strlen(entry);
    for (const char *p = out; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == el && !memcmp(p, entry, el))
            return MT_OK;
        p = e ? e + 1 : p + l;
    }
    if (*count >= MT_TLS_SAN_MAX)
        return mt_err_set(err, MT_EINVAL, "more than %d TLS names", MT_TLS_SAN_MAX);
    size_t used = strlen(out);
    if (used + el + 2 > cap)
        return mt_err_set(err, MT_EINVAL, "the TLS names are longer than %zu bytes", cap - 1);
    if (used)
        out[used++] = ',';
    memcpy(out + used, entry, el + 1);
    (*count)++;
    return MT_OK;
}

/* The host part of a listen address, or "" when absent/unparsable. */
static void listen_host(const char *listen, char *host, size_t cap)
{
    host[0] = '\0';
    if (!listen)
        return;
    const char *h = listen, *end;
    if (listen[0] == '[') {
        h = listen + 1;
        end = strchr(h, ']');
    } else {
        end = strrchr(listen, ':');
        if (end && strchr(listen, ':') != end)
            end = NULL; /* bare IPv6 without brackets: not a listen address */
    }
    if (!end || (size_t)(end - h) >= cap)
        return;
    memcpy(host, h, (size_t)(end - h));
    host[end - h] = '\0';
}

mt_status mt_tls_san_list(const char *const *names, size_t n, const char *listen, char *out,
                          size_t cap, mt_err *err)
{
    if (!out || cap == 0 || (n && !names))
        return mt_err_set(err, MT_EINVAL, "mt_tls_san_list: bad argument");
    out[0] = '\0';
    size_t count = 0;
    mt_status st = MT_OK;
    if (n == 0) {
        char host[256];
        listen_host(listen ? listen : "127.0.0.1:7443", host, sizeof host);
        char canon[64];
        bool wildcard = !strcmp(host, "") || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") ||
                        (ip_parse(host, canon, sizeof canon) == 2 && !strcmp(canon, "::"));
        if (!wildcard && (st = san_add(host, out, cap, &count, err)) != MT_OK)
            return st;
        char hn[256];
        if (gethostname(hn, sizeof hn) == 0) {
            hn[sizeof hn - 1] = '\0';
            if (mt_tls_san_check(hn, NULL) == MT_OK)
                (void)san_add(hn, out, cap, &count, NULL);
        }
        if ((st = san_add("localhost", out, cap, &count, err)) != MT_OK ||
            (st = san_add("127.0.0.1", out, cap, &count, err)) != MT_OK)
            return st;
        return MT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = names[i];
        if (!v)
            return mt_err_set(err, MT_EINVAL, "TLS name is empty: give a DNS name or an IP address");
        size_t len = strlen(v);
        if (len > MT_TLS_SAN_TEXT_MAX)
            return mt_err_set(err, MT_EINVAL, "a TLS name list is longer than %d bytes",
                              MT_TLS_SAN_TEXT_MAX);
        char buf[MT_TLS_SAN_TEXT_MAX + 1];
        memcpy(buf, v, len + 1);
        char *save = NULL, *tok;
        bool any = false;
        /* empty items ("a,,b", ",") are errors: strtok_r would skip them */
        if (len == 0 || buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,"))
            return mt_err_set(err, MT_EINVAL,
                              "TLS name list has an empty item: give DNS names or IP addresses "
                              "separated by commas");
        for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ' || *tok == '\t')
                tok++;
            size_t tl = strlen(tok);
            while (tl && (tok[tl - 1] == ' ' || tok[tl - 1] == '\t'))
                tok[--tl] = '\0';
            if ((st = san_add(tok, out, cap, &count, err)) != MT_OK)
                return st;
            any = true;
        }
        if (!any)
            return mt_err_set(err, MT_EINVAL, "TLS name is empty: give a DNS name or an IP address");
    }
    return MT_OK;
}

bool mt_tls_cert_san(X509 *cert, char *out, size_t cap)
{
    if (!cap)
        return false;
    out[0] = '\0';
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!gens)
        return true;
    bool ok = true;
    size_t used = 0;
    for (int i = 0; ok && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char entry[NAME_MAX_LEN + 8];
        if (g->type == GEN_DNS) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
            int l = ASN1_STRING_length(g->d.dNSName);
            if (l <= 0 || l > NAME_MAX_LEN)
                continue;
            memcpy(entry, "DNS:", 4);
            for (int k = 0; k < l; k++)
                entry[4 + k] = (char)tolower(d[k]);
            entry[4 + l] = '\0';
        } else if (g->type == GEN_IPADD) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
            int l = ASN1_STRING_length(g->d.iPAddress);
            char a[64];
            if ((l != 4 && l != 16) || !inet_ntop(l == 4 ? AF_INET : AF_INET6, d, a, sizeof a))
                continue;
            snprintf(entry, sizeof entry, "IP:%s", a);
        } else {
            continue;
        }
        size_t el = strlen(entry);
        if (used + el + 2 > cap) {
            ok = false;
            break;
        }
        if (used)
            out[used++] = ',';
        memcpy(out + used, entry, el + 1);
        used += el;
    }
    GENERAL_NAMES_free(gens);
    return ok;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Splits a copy of s at commas into at most max sorted entries; count or -1. */
static int san_split(const char *s, char *copy, size_t cap, const char **items, int max)
{
    size_t n = strlen(s);
    if (n >= cap)
        return -1;
    memcpy(copy, s, n + 1);
    int k = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (k >= max)
            return -1;
        items[k++] = t;
    }
    qsort(items, (size_t)k, sizeof *items, cmp_str);
    return k;
}

bool mt_tls_san_equal(const char *a, const char *b)
{
    char ca[MT_TLS_SAN_TEXT_MAX], cb[MT_TLS_SAN_TEXT_MAX];
    const char *ia[MT_TLS_SAN_MAX * 4], *ib[MT_TLS_SAN_MAX * 4];
    int na = san_split(a, ca, sizeof ca, ia, MT_TLS_SAN_MAX * 4);
    int nb = san_split(b, cb, sizeof cb, ib, MT_TLS_SAN_MAX * 4);
    if (na < 0 || nb < 0 || na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (strcmp(ia[i], ib[i]) != 0)
            return false;
    return true;
}

void mt_tls_fingerprint(X509 *cert, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    memcpy(out, "sha256:", 8);
    if (!cert || X509_digest(cert, EVP_sha256(), md, &ml) != 1 || ml != 32) {
        memcpy(out + 7, "?", 2);
        return;
    }
    mt_hex_encode(md, 32, out + 7);
}

/* ------------------------------------------------------------------------ */
/* Files                                                                     */
/* ------------------------------------------------------------------------ */

/* Reads a regular file (not following a final symlink unless follow) of at
 * most max bytes; *mode its permission bits. MT_ENOTFOUND when absent. */
static mt_status read_file(const char *path, size_t max, bool follow, char **out, size_t *len,
                           unsigned *mode, mt_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
    if (fd < 0) {
        if (errno == ENOENT)
            return mt_err_set(err, MT_ENOTFOUND, "%s does not exist", path);
        return mt_err_set(err, MT_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    mt_status rc = MT_OK;
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        rc = mt_err_set(err, MT_EIO, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = mt_err_set(err, MT_EINVAL, "%s is not a regular file", path);
    } else if ((unsigned long long)st.st_size > max) {
        rc = mt_err_set(err, MT_EINVAL, "%s is larger than %zu bytes: not a PEM file", path,
                        max);
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
    } else {
        size_t off = 0, want = (size_t)st.st_size;
        while (off < want) {
            ssize_t r = read(fd, buf + off, want - off);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                rc = mt_err_set(err, MT_EIO, "cannot read %s: %s", path, strerror(errno));
                break;
            }
            if (r == 0)
                break;
            off += (size_t)r;
        }
        buf[off] = '\0';
        *len = off;
        *mode = (unsigned)(st.st_mode & 07777);
    }
    close(fd);
    if (rc != MT_OK) {
        if (buf)
            mt_wipe(buf, (size_t)st.st_size + 1);
        free(buf);
        return rc;
    }
    *out = buf;
    return MT_OK;
}

static void free_secret_text(char *buf, size_t len)
{
    if (buf) {
        mt_wipe(buf, len);
        free(buf);
    }
}

/* No passphrase prompts: an encrypted key fails to load. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Parses a PEM private key from text; the message names path. */
static mt_status parse_key(const char *path, const char *text, size_t len, EVP_PKEY **out,
                           mt_err *err)
{
    *out = NULL;
    if (strstr(text, "ENCRYPTED"))
        return mt_err_set(err, MT_EINVAL,
                          "%s holds an encrypted private key; the server starts unattended: "
                          "give it the key without a passphrase (mode 0600)",
                          path);
    BIO *b = BIO_new_mem_buf(text, (int)len);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, no_password, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    if (!k)
        return mt_err_set(err, MT_EINVAL,
                          "%s is not a PEM private key (no readable \"BEGIN PRIVATE KEY\" block)",
                          path);
    *out = k;
    return MT_OK;
}

static char *pem_of(EVP_PKEY *key, X509 *cert, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL;
    bool ok = b && (key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1
                        : PEM_write_bio_X509(b, cert) == 1);
    char *data = NULL;
    long n = ok ? BIO_get_mem_data(b, &data) : 0;
    if (ok && n > 0 && (out = malloc((size_t)n + 1))) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
        *len = (size_t)n;
    }
    if (b && data && n > 0)
        OPENSSL_cleanse(data, (size_t)n);
    BIO_free(b);
    ERR_clear_error();
    return out;
}

static void time_text(const ASN1_TIME *t, char out[32])
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        snprintf(out, 32, "?");
        return;
    }
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Seconds from now until notAfter (negative when expired). */
static long long secs_left(X509 *cert)
{
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(cert)) != 1)
        return -1;
    return (long long)days * 86400 + secs;
}

/* ------------------------------------------------------------------------ */
/* Level none: the stable identity                                          */
/* ------------------------------------------------------------------------ */

/* Loads tls/server-key.pem, or makes and saves a new key; *created says which. */
static mt_status self_key(const char *path, EVP_PKEY **out, bool *created, mt_err *err)
{
    char *text = NULL;
    size_t len = 0;
    unsigned mode = 0;
    *created = false;
    mt_status st = read_file(path, KEY_FILE_MAX, false, &text, &len, &mode, err);
    if (st == MT_OK) {
        if (mode & 077) {
            free_secret_text(text, len);
            return mt_err_set(err, MT_EPERM,
                              "%s has mode %03o and is open to group/other; run `chmod 600 %s`",
                              path, mode & 0777, path);
        }
        st = parse_key(path, text, len, out, NULL);
        free_secret_text(text, len);
        if (st != MT_OK)
            return mt_err_set(err, st,
                              "%s is not a usable private key: restore it from a backup, or "
                              "move it away to make a new identity (clients then need the new "
                              "server-cert.pem)",
                              path);
        return MT_OK;
    }
    if (st != MT_ENOTFOUND)
        return st;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k) {
        ERR_clear_error();
        return mt_err_set(err, MT_EINTERNAL, "making the TLS key failed in OpenSSL");
    }
    text = pem_of(k, NULL, &len);
    if (!text) {
        EVP_PKEY_free(k);
        return mt_err_set(err, MT_ENOMEM, "cannot encode the TLS key");
    }
    st = mt_file_write_atomic(path, text, len, 0600, err);
    free_secret_text(text, len);
    if (st != MT_OK) {
        EVP_PKEY_free(k);
        return st;
    }
    *out = k;
    *created = true;
    return MT_OK;
}

/* Loads tls/server-cert.pem; NULL (with the reason in why) when it cannot be reused. */
static X509 *self_cert(const char *path, EVP_PKEY *key, const char *san, char *why, size_t cap)
{
    char *text = NULL;
    size_t len = 0;
    unsigned mode = 0;
    mt_err e;
    mt_err_clear(&e);
    mt_status st = read_file(path, PEM_FILE_MAX, false, &text, &len, &mode, &e);
    if (st != MT_OK) {
        snprintf(why, cap, "%s", st == MT_ENOTFOUND ? "there was none" : e.msg);
        return NULL;
    }
    BIO *b = BIO_new_mem_buf(text, (int)len);
    X509 *c = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    free(text);
    ERR_clear_error();
    char have[MT_TLS_SAN_TEXT_MAX];
    if (!c) {
        snprintf(why, cap, "the file held no readable certificate");
    } else if (X509_check_private_key(c, key) != 1) {
        snprintf(why, cap, "the certificate there belongs to another key (the server last ran "
                           "at another level or with --tls-cert, or the key was replaced)");
    } else if (!mt_tls_cert_san(c, have, sizeof have) || !mt_tls_san_equal(have, san)) {
        snprintf(why, cap, "the names changed from %.1000s to %.1000s", have, san);
    } else if (secs_left(c) < (long long)MT_TLS_ID_RENEW_DAYS * 86400) {
        char t[32];
        time_text(X509_get0_notAfter(c), t);
        snprintf(why, cap, "the certificate expires on %s (less than %d days left)", t,
                 MT_TLS_ID_RENEW_DAYS);
    } else {
        ERR_clear_error();
        return c;
    }
    ERR_clear_error();
    X509_free(c);
    return NULL;
}

mt_status mt_tls_id_self(mt_tee *tee, const char *data_dir, const char *san, EVP_PKEY **key,
                         X509 **cert, mt_err *err)
{
    if (!tee || !data_dir || !san || !key || !cert)
        return mt_err_set(err, MT_EINVAL, "mt_tls_id_self: NULL argument");
    *key = NULL;
    *cert = NULL;
    char dir[PATH_MAX], kpath[PATH_MAX + 32], cpath[PATH_MAX + 32];
    if (snprintf(dir, sizeof dir, "%s/tls", data_dir) >= (int)sizeof dir)
        return mt_err_set(err, MT_EINVAL, "data directory path too long");
    snprintf(kpath, sizeof kpath, "%s/server-key.pem", dir);
    snprintf(cpath, sizeof cpath, "%s/server-cert.pem", dir);
    mt_status st = mt_mkdirs(dir, 0700, err);
    if (st != MT_OK)
        return st;
    if (chmod(dir, 0700) != 0)
        return mt_err_set(err, MT_EIO, "cannot set mode 0700 on %s: %s", dir, strerror(errno));
    EVP_PKEY *k = NULL;
    bool created = false;
    if ((st = self_key(kpath, &k, &created, err)) != MT_OK)
        return st;
    char why[2300] = "";
    X509 *c = self_cert(cpath, k, san, why, sizeof why);
    char fp[72], until[32];
    if (c) {
        mt_tls_fingerprint(c, fp);
        time_text(X509_get0_notAfter(c), until);
        mt_info("TLS identity: reusing %s and its certificate %s (%s; valid until %s)", kpath, fp,
                san, until);
        *key = k;
        *cert = c;
        return MT_OK;
    }
    if ((st = mt_tee_tls_cert_for_key(tee, k, MT_TLS_ID_DAYS, &c, err)) != MT_OK) {
        EVP_PKEY_free(k);
        return st;
    }
    size_t len = 0;
    char *pem = pem_of(NULL, c, &len);
    st = pem ? mt_file_write_atomic(cpath, pem, len, 0644, err)
             : mt_err_set(err, MT_ENOMEM, "cannot encode the certificate");
    free(pem);
    if (st != MT_OK) {
        EVP_PKEY_free(k);
        X509_free(c);
        return st;
    }
    mt_tls_fingerprint(c, fp);
    time_text(X509_get0_notAfter(c), until);
    if (created)
        mt_info("TLS identity: created a new key %s (mode 0600; back it up with the data "
                "directory) and self-signed certificate %s for %s, valid until %s; clients "
                "verify the server with %s (--ca)",
                kpath, fp, san, until, cpath);
    else
        mt_warn("TLS identity: issued a new certificate %s (%s, valid until %s) for the key %s "
                "because %s. Clients that pinned the old certificate must fetch %s again "
                "(they will report that the server's certificate changed)",
                fp, san, until, kpath, why, cpath);
    *key = k;
    *cert = c;
    return MT_OK;
}

/* ------------------------------------------------------------------------ */
/* Operator certificate and key                                              */
/* ------------------------------------------------------------------------ */

/* Reads every PEM certificate of path: the first into *leaf, the rest into *chain. */
static mt_status read_certs(const char *path, X509 **leaf, STACK_OF(X509) **chain, mt_err *err)
{
    *leaf = NULL;
    *chain = NULL;
    char *text = NULL;
    size_t len = 0;
    unsigned mode = 0;
    mt_status st = read_file(path, PEM_FILE_MAX, true, &text, &len, &mode, err);
    if (st != MT_OK)
        return st == MT_ENOTFOUND ? mt_err_set(err, MT_EINVAL, "--tls-cert %s does not exist", path)
                                  : st;
    BIO *b = BIO_new_mem_buf(text, (int)len);
    STACK_OF(X509) *sk = sk_X509_new_null();
    int n = 0;
    if (!b || !sk) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    ERR_clear_error();
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
            break;
        if (n >= CHAIN_MAX || !sk_X509_push(sk, x)) {
            X509_free(x);
            st = mt_err_set(err, MT_EINVAL, "%s holds more than %d certificates", path,
                            CHAIN_MAX);
            goto out;
        }
        n++;
    }
    unsigned long e = ERR_peek_last_error();
    bool clean_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    ERR_clear_error();
    if (n == 0) {
        st = mt_err_set(err, MT_EINVAL,
                        "%s holds no PEM certificate (expected \"BEGIN CERTIFICATE\" blocks: "
                        "the server's first, then its issuers)",
                        path);
        goto out;
    }
    if (!clean_end) {
        st = mt_err_set(err, MT_EINVAL,
                        "%s: certificate %d is damaged or not a PEM certificate", path, n + 1);
        goto out;
    }
    if (strstr(text, "PRIVATE KEY")) {
        st = mt_err_set(err, MT_EINVAL,
                        "%s also holds a private key: keep the key in its own file (mode 0600) "
                        "for --tls-key",
                        path);
        goto out;
    }
    *leaf = sk_X509_shift(sk);
    if (sk_X509_num(sk) > 0) {
        *chain = sk;
        sk = NULL;
    }
out:
    sk_X509_pop_free(sk, X509_free);
    BIO_free(b);
    free(text);
    return st;
}

mt_status mt_tls_id_operator(const char *cert_file, const char *key_file, const char *want_san,
                             EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain, mt_err *err)
{
    if (!cert_file || !key_file || !key || !cert || !chain)
        return mt_err_set(err, MT_EINVAL, "give both --tls-cert FILE and --tls-key FILE");
    *key = NULL;
    *cert = NULL;
    *chain = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *sk = NULL;
    EVP_PKEY *k = NULL;
    char *text = NULL;
    size_t len = 0;
    unsigned mode = 0;
    mt_status st = read_certs(cert_file, &leaf, &sk, err);
    if (st != MT_OK)
        return st;
    st = read_file(key_file, KEY_FILE_MAX, true, &text, &len, &mode, err);
    if (st == MT_ENOTFOUND)
        st = mt_err_set(err, MT_EINVAL, "--tls-key %s does not exist", key_file);
    if (st != MT_OK)
        goto out;
    if (mode & 007) {
        st = mt_err_set(err, MT_EPERM,
                        "--tls-key %s has mode %03o: every user can read the private key; "
                        "run `chmod 600` on it (or 640 with a group of the server's user only)",
                        key_file, mode & 0777);
        goto out;
    }
    if ((st = parse_key(key_file, text, len, &k, err)) != MT_OK)
        goto out;
    char t[32];
    if (X509_check_private_key(leaf, k) != 1) {
        st = mt_err_set(err, MT_EINVAL,
                        "the key in %s does not belong to the certificate in %s (the server's own "
                        "certificate must come first)",
                        key_file, cert_file);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0) {
        time_text(X509_get0_notAfter(leaf), t);
        st = mt_err_set(err, MT_EINVAL,
                        "the certificate in %s expired on %s: get a new one from your CA", cert_file,
                        t);
        goto out;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0) {
        time_text(X509_get0_notBefore(leaf), t);
        st = mt_err_set(err, MT_EINVAL,
                        "the certificate in %s is not valid before %s (check the clock)",
                        cert_file, t);
        goto out;
    }
    if (X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0) != 1) {
        st = mt_err_set(err, MT_EINVAL,
                        "the certificate in %s may not be used by a TLS server (its key usage "
                        "excludes serverAuth)",
                        cert_file);
        goto out;
    }
    for (int i = 0; sk && i < sk_X509_num(sk); i++) {
        X509 *child = i == 0 ? leaf : sk_X509_value(sk, i - 1);
        if (X509_check_issued(sk_X509_value(sk, i), child) != X509_V_OK) {
            st = mt_err_set(err, MT_EINVAL,
                            "%s: certificate %d did not issue certificate %d (put the server's "
                            "first, then each issuer in order)",
                            cert_file, i + 2, i + 1);
            goto out;
        }
        if (X509_cmp_current_time(X509_get0_notAfter(sk_X509_value(sk, i))) <= 0) {
            time_text(X509_get0_notAfter(sk_X509_value(sk, i)), t);
            st = mt_err_set(err, MT_EINVAL, "%s: certificate %d (an issuer) expired on %s",
                            cert_file, i + 2, t);
            goto out;
        }
    }
    char have[MT_TLS_SAN_TEXT_MAX], fp[72];
    if (!mt_tls_cert_san(leaf, have, sizeof have) || !have[0])
        mt_warn("TLS identity: the certificate in %s has no DNS or IP subject alternative name; "
                "clients verify the server's name against those only and will refuse it",
                cert_file);
    if (want_san && *want_san) {
        char copy[MT_TLS_SAN_TEXT_MAX];
        snprintf(copy, sizeof copy, "%s", want_san);
        char *save = NULL;
        for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
            bool ip = !strncmp(e, "IP:", 3);
            const char *v = strchr(e, ':') + 1;
            int r = ip ? X509_check_ip_asc(leaf, v, 0) : X509_check_host(leaf, v, 0, 0, NULL);
            if (r != 1)
                mt_warn("TLS identity: --tls-san %s is not a name of the certificate in %s "
                        "(it names %s); clients using that name will refuse the server",
                        v, cert_file, have[0] ? have : "nothing");
        }
        ERR_clear_error();
    }
    long long left = secs_left(leaf);
    mt_tls_fingerprint(leaf, fp);
    time_text(X509_get0_notAfter(leaf), t);
    if (left < (long long)MT_TLS_ID_RENEW_DAYS * 86400)
        mt_warn("TLS identity: the certificate in %s expires on %s; renew it and send SIGHUP",
                cert_file, t);
    mt_info("TLS identity: operator certificate %s from %s (%d issuer certificate(s); names %s; "
            "valid until %s), key %s",
            fp, cert_file, sk ? sk_X509_num(sk) : 0, have[0] ? have : "none", t, key_file);
    *key = k;
    *cert = leaf;
    *chain = sk;
    k = NULL;
    leaf = NULL;
    sk = NULL;
out:
    free_secret_text(text, len);
    EVP_PKEY_free(k);
    X509_free(leaf);
    sk_X509_pop_free(sk, X509_free);
    ERR_clear_error();
    return st;
}
