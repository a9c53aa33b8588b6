/* client_tls: explanations of failed server verification; contract in
 * client_tls.h. */
#include "client_tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CA_FILE_MAX_CERTS 256

bool client_tls_name_is_v6(const char *name)
{
    unsigned char b[16];
    return name && inet_pton(AF_INET6, name, b) == 1;
}

bool client_tls_name_ok(const char *name)
{
    unsigned char b[16];
    if (!name || !*name)
        return false;
    if (inet_pton(AF_INET, name, b) == 1 || inet_pton(AF_INET6, name, b) == 1)
        return true;
    size_t n = strlen(name);
    if (n > 253)
        return false;
    const char *label = name;
    bool digits = true;
    for (const char *p = name;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t ll = (size_t)(p - label);
            if (ll == 0 || ll > 63 || label[0] == '-' || p[-1] == '-')
                return false;
            if (!*p)
                break;
            label = p + 1;
            digits = true;
            continue;
        }
        unsigned char ch = (unsigned char)*p;
        if (!isascii(ch) || !(isalnum(ch) || ch == '-'))
            return false;
        if (!isdigit(ch))
            digits = false;
    }
    return !digits; /* "10.0.0.300" is a mistyped address */
}

/* "sha256:<64 hex>" of a DER certificate. */
static void fingerprint(X509 *x, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "sha256:", 8);
    if (!x || X509_digest(x, EVP_sha256(), md, &ml) != 1 || ml != 32) {
        memcpy(out + 7, "?", 2);
        return;
    }
    for (unsigned i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 15];
    }
    out[71] = '\0';
}

/* The DNS and IP names of x, "DNS:a, IP:b" (or "no DNS or IP name"). */
static void names_of(X509 *x, char *out, size_t cap)
{
    out[0] = '\0';
    size_t used = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char e[300];
        if (g->type == GEN_DNS) {
            int l = ASN1_STRING_length(g->d.dNSName);
            const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
            int k = 0;
            memcpy(e, "DNS:", 4);
            for (; k < l && k < 253; k++)
                e[4 + k] = (d[k] > 32 && d[k] < 127) ? (char)d[k] : '?';
            e[4 + k] = '\0';
        } else if (g->type == GEN_IPADD) {
            int l = ASN1_STRING_length(g->d.iPAddress);
            char a[64];
            if ((l != 4 && l != 16) ||
                !inet_ntop(l == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(g->d.iPAddress), a,
                           sizeof a))
                continue;
            snprintf(e, sizeof e, "IP:%s", a);
        } else {
            continue;
        }
        int w = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", e);
        if (w < 0 || (size_t)w >= cap - used) {
            out[used] = '\0';
            break;
        }
        used += (size_t)w;
    }
    GENERAL_NAMES_free(gens);
    if (!used)
        snprintf(out, cap, "no DNS or IP name");
}

/* What the CA file holds: pinned server certificates (non-CA) and CAs. */
typedef struct ca_file_info {
    int pins, cas;
    char first_pin[72];
} ca_file_info;

static void read_ca_file(const char *path, X509 *leaf, ca_file_info *info, bool *leaf_pinned)
{
    memset(info, 0, sizeof *info);
    *leaf_pinned = false;
    BIO *b = BIO_new_file(path, "r");
    if (!b)
        return;
    for (int i = 0; i < CA_FILE_MAX_CERTS; i++) {
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
            break;
        if (X509_check_ca(x) > 0) {
            info->cas++;
        } else {
            if (!info->pins++)
                fingerprint(x, info->first_pin);
            if (leaf && X509_cmp(x, leaf) == 0)
                *leaf_pinned = true;
        }
        X509_free(x);
    }
    BIO_free(b);
    ERR_clear_error();
}

static void time_text(const ASN1_TIME *t, char out[32])
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        snprintf(out, 32, "?");
    else
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void client_tls_explain(const client_tls_seen *seen, const char *detail, char *out, size_t cap)
{
    const unsigned char *p = seen->leaf;
    X509 *leaf = p ? d2i_X509(NULL, &p, (long)seen->leaf_len) : NULL;
    char fp[72] = "", names[256] = "", when[32];
    if (leaf) {
        fingerprint(leaf, fp);
        names_of(leaf, names, sizeof names);
    }
    const char *host = seen->host ? seen->host : "?";
    const char *ca = seen->ca_file;
    if (!leaf) {
        snprintf(out, cap, "TLS: the server's certificate is not trusted (%s)", detail);
    } else if (seen->verr == X509_V_OK) {
        /* the chain verified: what failed is the name */
        snprintf(out, cap,
                 "TLS: name mismatch: the server's certificate does not name '%s' (it names %s). "
                 "Use one of those names in the server URL, pass --tls-server-name NAME when "
                 "you must connect by another address, or ask the operator to add '%s' "
                 "(serve --tls-san)",
                 host, names, host);
    } else if (seen->verr == X509_V_ERR_CERT_HAS_EXPIRED) {
        time_text(X509_get0_notAfter(leaf), when);
        snprintf(out, cap,
                 "TLS: the server's certificate (or an issuer's) has expired (server's expires "
                 "%s; %s); the server's operator must renew it",
                 when, fp);
    } else if (seen->verr == X509_V_ERR_CERT_NOT_YET_VALID) {
        time_text(X509_get0_notBefore(leaf), when);
        snprintf(out, cap,
                 "TLS: the server's certificate is not valid before %s: check this machine's "
                 "clock and the server's",
                 when);
    } else {
        const char *why = X509_verify_cert_error_string(seen->verr);
        bool self_signed = X509_check_issued(leaf, leaf) == X509_V_OK;
        ca_file_info info;
        bool pinned = false;
        if (ca)
            read_ca_file(ca, leaf, &info, &pinned);
        else
            memset(&info, 0, sizeof info);
        if (ca && info.pins > 0 && !pinned && (info.cas == 0 || self_signed)) {
            snprintf(out, cap,
                     "TLS: the server's certificate changed: %s pins %s but the server "
                     "presents %s (names %s). If its operator replaced the server's identity, "
                     "get the new certificate over a channel you trust and replace the pinned "
                     "file; otherwise the connection may be intercepted",
                     ca, info.first_pin, fp, names);
        } else if (ca) {
            char issuer[160];
            X509_NAME_oneline(X509_get_issuer_name(leaf), issuer, sizeof issuer);
            snprintf(out, cap,
                     "TLS: unknown CA: the server's certificate %s (issuer %s%s) is not "
                     "issued by a CA in %s (%s). Get the server's certificate or its "
                     "operator's CA certificate over a channel you trust and give it with --ca",
                     fp, issuer, self_signed ? ", self-signed" : "", ca, why);
        } else {
            snprintf(out, cap,
                     "TLS: unknown CA: the server's certificate %s%s is not issued by a CA of "
                     "this system's trust store (%s). Give the server's certificate "
                     "(<data-dir>/tls/server-cert.pem) or its operator's CA certificate with --ca",
                     fp, self_signed ? " (self-signed)" : "", why);
        }
    }
    X509_free(leaf);
    ERR_clear_error();
}
