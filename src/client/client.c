/* libmesatee: client handle, HTTP transport (libcurl, TLS 1.3 only), typed
 * REST calls, key files and file encryption helpers. Contract: mesatee.h. */
#include "mesatee.h"
#include "client_internal.h"
#include "client_tls.h"
#include "client_testing.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mt_atls.h"
#include "mt_err.h"
#include "mt_ff.h"
#include "mt_policy.h"
#include "mt_ratls.h"
#include "mt_secmem.h"
#include "mt_util.h"

#define CLIENT_ERR_MAX 1024
#define CLIENT_MAX_RESPONSE MESATEE_MAX_RESPONSE_BYTES /* JSON answers; downloads stream */
#define CLIENT_DEFAULT_STALL_S 60L
#define CLIENT_LONG_POLL_S 25L /* ?wait= of one task poll (server maximum: 60 s) */
#define CLIENT_CONNECT_TIMEOUT_S 10L
/* What a request of mesatee_task_wait may run past the wait's deadline: the
 * answer to a hold that ends by the deadline is still taken */
#define CLIENT_DEADLINE_MARGIN_MS 1000
#define CLIENT_KEY_FILE_MAX 256

_Static_assert(MT_FF_KEY_LEN == 32, "file keys are 32 bytes");
_Static_assert(MT_ID_LEN == 32, "ids are 32 hex characters");

enum { ATT_OFF = 0, ATT_POLICY = 1, ATT_CAPTURE = 2 };

struct mesatee_client {
    char *base;          /* "https://host:port", no trailing slash */
    char *ca_file;
    char *token;
    bool insecure;
    bool verify_host;
    long timeout_s;
    int http_status;
    int curl_rc; /* CURLcode of the last request's transfer (mesatee_task_wait) */
    long wait_reconnect_s; /* mesatee_client_set_wait_reconnect; 0 = default */
    CURL *curl;
    /* curl holds request()'s per-configuration options (request_options):
     * every setter of what they depend on, and mesatee_client_attest (which
     * resets the handle), clears it; a failed setopt leaves it false */
    bool curl_ready;
    /* The connections curl keeps alive were opened (and verified) under
     * another TLS trust or server identity (trust_changed): request() replaces
     * the handle, and with it its connection pool, before the next transfer.
     * curl's own reuse check cannot see it in policy mode (its TLS settings
     * are the same for every policy). */
    bool pool_stale;
    bool testing_keep_pool; /* mesatee_testing_keep_connections (test builds only) */
    bool req_sent; /* the last transfer got past connect and TLS (prereq_cb let it send) */
    /* mt_mono_ms() by which the next request must end (mesatee_task_wait's
     * deadline plus CLIENT_DEADLINE_MARGIN_MS); 0: only the handle's limits.
     * request() caps that request's transfer and connect timeouts with it
     * and restores the handle's own afterwards. */
    int64_t req_deadline;
    char errmsg[CLIENT_ERR_MAX];
    /* Attestation (see "Attested TLS" below). */
    mt_policy *policy;
    char *policy_path;
    char *policy_signers; /* PEM auditor keys; NULL: policy signatures not required */
    unsigned policy_threshold;
    int att_mode;        /* ATT_OFF, ATT_POLICY (enforce), ATT_CAPTURE (attest show) */
    bool att_done, att_ok; /* the connection being opened: set by the verify callback */
    /* Generation of the trust configuration (trust_changed): verify_cb stamps
     * the SSL of a connection it accepted with it, and prereq_cb sends only
     * on a connection stamped with the current one (att_verdict_idx). */
    uintptr_t att_gen;
    bool att_refused;      /* prereq_cb refused the connection of this transfer */
    char att_msg[CLIENT_ERR_MAX];
    char *att_claims;    /* JSON of the last verified claims */
    uint8_t *att_cert;   /* ATT_CAPTURE: the server's leaf certificate (DER) */
    size_t att_cert_len;
    int err_status;      /* status of errmsg (mesatee_client_errcode) */
    mesatee_progress_fn progress; /* mesatee_client_set_progress; NULL: off */
    void *progress_ud;
    /* --tls-server-name: the name in the URL (SNI, verification), while the
     * connection goes to the address of base (CURLOPT_CONNECT_TO). */
    char *tls_name_base;           /* "https://NAME:PORT"; NULL = base */
    struct curl_slist *connect_to; /* "NAME:PORT:HOST:PORT" */
    /* What the last verified handshake saw, to explain a failure (client_tls.h). */
    uint8_t *seen_leaf;
    size_t seen_leaf_len;
    int seen_verr;
    bool seen_any;
};

/* ======================================================================== */
/* Errors                                                                    */

static _Thread_local char tl_errmsg[CLIENT_ERR_MAX];
static _Thread_local int tl_err_status;

/* Records a message in c (or the thread's slot when c is NULL); returns st. */
__attribute__((format(printf, 3, 4))) static int set_err(mesatee_client *c, int st,
                                                         const char *fmt, ...)
{
    char *buf = c ? c->errmsg : tl_errmsg;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, CLIENT_ERR_MAX, fmt, ap);
    va_end(ap);
    *(c ? &c->err_status : &tl_err_status) = st;
    return st;
}

static void clear_err(mesatee_client *c)
{
    (c ? c->errmsg : tl_errmsg)[0] = '\0';
    *(c ? &c->err_status : &tl_err_status) = MESATEE_OK;
}

/* Maps a library-internal mt_status to the public status. */
static int from_mt(mt_status st)
{
    switch (st) {
    case MT_OK: return MESATEE_OK;
    case MT_EINVAL: return MESATEE_EINVAL;
    case MT_EAUTH: return MESATEE_EAUTH;
    case MT_EPERM: return MESATEE_EPERM;
    case MT_ENOTFOUND: return MESATEE_ENOTFOUND;
    case MT_ECONFLICT: return MESATEE_ECONFLICT;
    case MT_ETOOBIG: return MESATEE_ETOOBIG;
    case MT_EQUOTA: return MESATEE_EQUOTA;
    case MT_ECRYPTO: return MESATEE_ECRYPTO;
    case MT_EIO: return MESATEE_EIO;
    case MT_ENOMEM: return MESATEE_ENOMEM;
    case MT_EINTERNAL:
    case MT_EUNAVAIL: return MESATEE_ESERVER;
    }
    return MESATEE_ESERVER;
}

MESATEE_API const char *mesatee_status_name(int status)
{
    switch (status) {
    case MESATEE_OK: return "ok";
    case MESATEE_EINVAL: return "invalid_argument";
    case MESATEE_EAUTH: return "unauthenticated";
    case MESATEE_EPERM: return "permission_denied";
    case MESATEE_ENOTFOUND: return "not_found";
    case MESATEE_ECONFLICT: return "conflict";
    case MESATEE_ETOOBIG: return "too_large";
    case MESATEE_EQUOTA: return "quota_exceeded";
    case MESATEE_ECRYPTO: return "crypto_failed";
    case MESATEE_EIO: return "io_error";
    case MESATEE_ENOMEM: return "out_of_memory";
    case MESATEE_ENET: return "network_error";
    case MESATEE_ESERVER: return "server_error";
    case MESATEE_ETIMEOUT: return "timeout";
    case MESATEE_EATTEST: return "attestation_failed";
    }
    return "unknown";
}

MESATEE_API const char *mesatee_version(void)
{
    return MESATEE_VERSION_STRING;
}

MESATEE_API size_t mesatee_key_bytes(void)
{
    return MT_FF_KEY_LEN;
}

MESATEE_API size_t mesatee_id_chars(void)
{
    return MT_ID_LEN;
}

MESATEE_API void mesatee_free(void *p)
{
    free(p);
}

/* Heap copy of s into *out (if out is non-NULL). Returns false on ENOMEM. */
static bool give_string(const char *s, char **out)
{
    if (!out)
        return true;
    *out = s ? strdup(s) : NULL;
    return !s || *out;
}

static void reset_out(char **p)
{
    if (p)
        *p = NULL;
}

/* ======================================================================== */
/* Handle                                                                    */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    mt_secmem_install_json(); /* passwords, tokens and keys in jansson's heap */
}

/* Checks "https://HOST[:PORT][/]" and returns the base without a trailing
 * slash, or NULL with the thread's message set. */
static char *parse_server_url(const char *url)
{
    static const char scheme[] = "https://";
    if (!url || !*url) {
        set_err(NULL, MESATEE_EINVAL, "server URL is empty");
        return NULL;
    }
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        set_err(NULL, MESATEE_EINVAL, "server URL '%.200s' must start with https://", url);
        return NULL;
    }
    size_t len = strlen(url);
    if (len > 1024) {
        set_err(NULL, MESATEE_EINVAL, "server URL is too long");
        return NULL;
    }
    if (url[len - 1] == '/')
        len--;
    const char *host = url + sizeof scheme - 1;
    size_t hlen = len - (size_t)(host - url);
    if (hlen == 0) {
        set_err(NULL, MESATEE_EINVAL, "server URL '%.200s' has no host", url);
        return NULL;
    }
    const char *port = NULL;
    size_t i = 0;
    if (host[0] == '[') { /* IPv6 literal */
        for (i = 1; i < hlen && host[i] != ']'; i++)
            if (!strchr("0123456789abcdefABCDEF:.", host[i]))
                break;
        if (i >= hlen || host[i] != ']' || i == 1) {
            set_err(NULL, MESATEE_EINVAL, "server URL '%.200s' has a bad IPv6 address", url);
            return NULL;
        }
        i++;
    } else {
        for (; i < hlen && host[i] != ':'; i++) {
            char ch = host[i];
            bool okc = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                       (ch >= '0' && ch <= '9') || ch == '-' || ch == '.';
            if (!okc) {
                set_err(NULL, MESATEE_EINVAL,
                        "server URL '%.200s' must be https://HOST[:PORT] without path, query "
                        "or user name (bad character '%c')",
                        url, (ch > 32 && ch < 127) ? ch : '?');
                return NULL;
            }
        }
        if (i == 0) {
            set_err(NULL, MESATEE_EINVAL, "server URL '%.200s' has no host", url);
            return NULL;
        }
    }
    if (i < hlen) {
        if (host[i] != ':') {
            set_err(NULL, MESATEE_EINVAL, "server URL '%.200s' must be https://HOST[:PORT]", url);
            return NULL;
        }
        port = host + i + 1;
        size_t plen = hlen - i - 1;
        unsigned long p = 0;
        bool ok = plen > 0 && plen <= 5;
        for (size_t k = 0; ok && k < plen; k++) {
            if (port[k] < '0' || port[k] > '9')
                ok = false;
            else
                p = p * 10 + (unsigned long)(port[k] - '0');
        }
        if (!ok || p == 0 || p > 65535) {
            set_err(NULL, MESATEE_EINVAL, "server URL '%.200s' has a bad port", url);
            return NULL;
        }
    }
    char *base = strndup(url, len);
    if (!base)
        set_err(NULL, MESATEE_ENOMEM, "out of memory");
    return base;
}

/* Trust generations: unique in the process, never 0 (no verdict). */
static atomic_uintptr_t att_gen_last;

static uintptr_t next_att_gen(void)
{
    uintptr_t g = atomic_fetch_add(&att_gen_last, 1) + 1;
    return g ? g : atomic_fetch_add(&att_gen_last, 1) + 1;
}

/* What decides whether a server is trusted (CA file, insecure, hostname
 * check, policy) or which server it is (TLS server name) changed: no
 * connection opened before is used again (pool_stale: request() replaces the
 * handle), a verdict given before is void (att_gen), and the options are set
 * again (curl_ready). */
static void trust_changed(mesatee_client *c)
{
    c->pool_stale = true;
    c->curl_ready = false;
    c->att_ok = false;
    c->att_gen = next_att_gen();
}

/* A new easy handle for c when its connections must not be reused: curl
 * closes the old handle's connections with it. */
static int renew_handle(mesatee_client *c)
{
    if (!c->pool_stale)
        return MESATEE_OK;
    if (c->testing_keep_pool) { /* tests of the generation check on its own */
        c->pool_stale = false;
        return MESATEE_OK;
    }
    CURL *h = curl_easy_init();
    if (!h)
        return set_err(c, MESATEE_ENOMEM, "out of memory (new connection handle)");
    curl_easy_cleanup(c->curl);
    c->curl = h;
    c->pool_stale = false;
    c->curl_ready = false;
    return MESATEE_OK;
}

#ifdef MT_CLIENT_TESTING
int mesatee_testing_keep_connections(mesatee_client *c, int keep)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    c->testing_keep_pool = keep != 0;
    return MESATEE_OK;
}
#endif

MESATEE_API mesatee_client *mesatee_client_new(const char *server_url)
{
    clear_err(NULL);
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        set_err(NULL, MESATEE_ENET, "libcurl initialisation failed: %s",
                curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    char *base = parse_server_url(server_url);
    if (!base)
        return NULL;
    mesatee_client *c = calloc(1, sizeof *c);
    if (!c || !(c->curl = curl_easy_init())) {
        free(c);
        free(base);
        set_err(NULL, MESATEE_ENOMEM, "out of memory (client handle)");
        return NULL;
    }
    c->base = base;
    c->verify_host = true;
    c->att_gen = next_att_gen();
    return c;
}

MESATEE_API void mesatee_client_free(mesatee_client *c)
{
    if (!c)
        return;
    if (c->token) {
        mt_wipe(c->token, strlen(c->token));
        free(c->token);
    }
    curl_easy_cleanup(c->curl);
    mt_policy_free(c->policy);
    free(c->policy_path);
    free(c->policy_signers);
    free(c->att_claims);
    free(c->att_cert);
    free(c->ca_file);
    free(c->tls_name_base);
    curl_slist_free_all(c->connect_to);
    free(c->seen_leaf);
    free(c->base);
    free(c);
}

MESATEE_API int mesatee_client_set_ca_file(mesatee_client *c, const char *path)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    clear_err(c);
    if (!path || !*path)
        return set_err(c, MESATEE_EINVAL, "CA file path is empty");
    if (access(path, R_OK) != 0)
        return set_err(c, MESATEE_EIO, "cannot read CA file %s: %s", path, strerror(errno));
    char *copy = strdup(path);
    if (!copy)
        return set_err(c, MESATEE_ENOMEM, "out of memory");
    free(c->ca_file);
    c->ca_file = copy;
    trust_changed(c);
    return MESATEE_OK;
}

/* "host" and "port" of base ("https://HOST[:PORT]"; IPv6 keeps its brackets). */
static void base_host_port(const char *base, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *h = base + strlen("https://");
    const char *end = h[0] == '[' ? strchr(h, ']') : strchr(h, ':');
    if (h[0] == '[' && end)
        end++;
    if (!end)
        end = h + strlen(h);
    snprintf(host, hcap, "%.*s", (int)(end - h), h);
    snprintf(port, pcap, "%s", *end == ':' ? end + 1 : "443");
}

MESATEE_API int mesatee_client_set_tls_server_name(mesatee_client *c, const char *name)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    clear_err(c);
    if (name && !client_tls_name_ok(name)) {
        char shown[72];
        size_t k = 0;
        for (const char *p = name; *p && k < 64; p++)
            shown[k++] = (*p > 32 && *p < 127) ? *p : '?';
        shown[k] = '\0';
        return set_err(c, MESATEE_EINVAL,
                       "TLS server name '%s%s' is neither a DNS host name nor an IP address",
                       shown, strlen(name) > 64 ? "..." : "");
    }
    char *nb = NULL;
    struct curl_slist *ct = NULL;
    if (name) {
        char host[300], port[8], entry[700];
        base_host_port(c->base, host, sizeof host, port, sizeof port);
        bool v6 = client_tls_name_is_v6(name);
        size_t n = strlen(name) + 32;
        if (!(nb = malloc(n)))
            return set_err(c, MESATEE_ENOMEM, "out of memory");
        snprintf(nb, n, "https://%s%s%s:%s", v6 ? "[" : "", name, v6 ? "]" : "", port);
        snprintf(entry, sizeof entry, "%s%s%s:%s:%s:%s", v6 ? "[" : "", name, v6 ? "]" : "",
                 port, host, port);
        if (!(ct = curl_slist_append(NULL, entry))) {
            free(nb);
            return set_err(c, MESATEE_ENOMEM, "out of memory");
        }
    }
    free(c->tls_name_base);
    curl_slist_free_all(c->connect_to);
    c->tls_name_base = nb;
    c->connect_to = ct;
    trust_changed(c); /* another identity; the handle points at the old CONNECT_TO list */
    return MESATEE_OK;
}

/* The base URL requests use: the TLS server name's when set. */
static const char *req_base(const mesatee_client *c)
{
    return c->tls_name_base ? c->tls_name_base : c->base;
}

MESATEE_API int mesatee_client_set_insecure_skip_verify(mesatee_client *c, int on)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    c->insecure = on != 0;
    trust_changed(c); /* an unverified connection must not serve a verified client */
    return MESATEE_OK;
}

MESATEE_API int mesatee_client_set_verify_hostname(mesatee_client *c, int on)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    c->verify_host = on != 0;
    trust_changed(c);
    return MESATEE_OK;
}

MESATEE_API int mesatee_client_set_token(mesatee_client *c, const char *token)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    clear_err(c);
    char *copy = NULL;
    if (token) {
        for (const char *p = token; *p; p++)
            if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127)
                return set_err(c, MESATEE_EINVAL, "token contains a space or control character");
        if (!*token)
            return set_err(c, MESATEE_EINVAL, "token is empty");
        if (!(copy = strdup(token)))
            return set_err(c, MESATEE_ENOMEM, "out of memory");
    }
    if (c->token) {
        mt_wipe(c->token, strlen(c->token));
        free(c->token);
    }
    c->token = copy;
    return MESATEE_OK;
}

MESATEE_API const char *mesatee_client_token(const mesatee_client *c)
{
    return c ? c->token : NULL;
}

MESATEE_API int mesatee_client_set_timeout(mesatee_client *c, long seconds)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (seconds < 0)
        return set_err(c, MESATEE_EINVAL, "timeout must be >= 0 seconds");
    c->timeout_s = seconds;
    c->curl_ready = false;
    return MESATEE_OK;
}

MESATEE_API int mesatee_client_set_progress(mesatee_client *c, mesatee_progress_fn fn,
                                            void *userdata)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    c->progress = fn;
    c->progress_ud = userdata;
    c->curl_ready = false;
    return MESATEE_OK;
}

/* libcurl's transfer-info callback: forwards the byte counts; never aborts. */
static int on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    mesatee_client *c = ud;
    mesatee_progress p = {.up_now = ulnow > 0 ? (uint64_t)ulnow : 0,
                          .up_total = ultotal > 0 ? (uint64_t)ultotal : 0,
                          .down_now = dlnow > 0 ? (uint64_t)dlnow : 0,
                          .down_total = dltotal > 0 ? (uint64_t)dltotal : 0};
    c->progress(&p, c->progress_ud);
    return 0;
}

MESATEE_API int mesatee_client_set_wait_reconnect(mesatee_client *c, long seconds)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (seconds < 0)
        return set_err(c, MESATEE_EINVAL, "reconnect time must be >= 0 seconds");
    c->wait_reconnect_s = seconds;
    return MESATEE_OK;
}

MESATEE_API const char *mesatee_client_errmsg(const mesatee_client *c)
{
    return c ? c->errmsg : tl_errmsg;
}

MESATEE_API int mesatee_client_errcode(const mesatee_client *c)
{
    return c ? c->err_status : tl_err_status;
}

MESATEE_API int mesatee_client_http_status(const mesatee_client *c)
{
    return c ? c->http_status : 0;
}

/* ======================================================================== */
/* Transport                                                                 */

typedef struct membuf {
    char *data;
    size_t len, cap;
    bool too_big;
} membuf;

static bool membuf_append(membuf *b, const void *p, size_t n)
{
    if (b->len + n > CLIENT_MAX_RESPONSE) {
        b->too_big = true;
        return false;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > (size_t)CLIENT_MAX_RESPONSE + 1)
            cap = (size_t)CLIENT_MAX_RESPONSE + 1; /* never more than the limit allows */
        char *d = mt_secmem_realloc(b->data, cap); /* may hold a token */
        if (!d)
            return false;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

/* Where the response body goes: memory, or a file for 2xx answers. */
typedef struct sink {
    CURL *curl;
    membuf mem;
    FILE *file; /* NULL: everything to mem */
    bool file_error;
} sink;

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    size_t n = size * nmemb;
    if (s->file) {
        long code = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 && code < 300) {
            if (fwrite(ptr, 1, n, s->file) != n) {
                s->file_error = true;
                return 0;
            }
            return n;
        }
    }
    return membuf_append(&s->mem, ptr, n) ? n : 0;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    FILE *f = ud;
    size_t n = fread(buf, 1, size * nitems, f);
    if (n == 0 && ferror(f))
        return CURL_READFUNC_ABORT;
    return n;
}

/* A request body: none, memory, or a file streamed with its size. */
typedef struct body {
    const char *content_type;
    const void *mem;
    size_t mem_len;
    FILE *file;
    uint64_t file_len;
} body;

/* A status the server reported: its own I/O, memory and internal failures are
 * MESATEE_ESERVER (MESATEE_EIO/ENOMEM mean local failures). */
static int from_server(mt_status st)
{
    if (st == MT_EIO || st == MT_ENOMEM)
        return MESATEE_ESERVER;
    return from_mt(st);
}

/* The server's error.code name, through mt_err's one table. */
static bool status_from_code_name(const char *name, int *out)
{
    mt_status st;
    if (!mt_status_from_name(name, &st) || st == MT_OK)
        return false;
    *out = from_server(st);
    return true;
}

static int status_from_http(long http)
{
    return from_server(mt_status_from_http(http < 0 || http > 999 ? 0 : (int)http));
}

/* Copies at most max printable bytes of s into out (others become '?'). */
static void printable(const char *s, size_t n, char *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < max; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n' || ch == '\r')
            break;
        out[k++] = (ch >= 32 && ch < 127) || ch >= 0x80 ? (char)ch : '?';
    }
    out[k] = '\0';
}

/* Turns a non-2xx answer into a status and "HTTP <n> <code>: <message>". */
static int error_from_response(mesatee_client *c, long http, const membuf *b)
{
    int st = status_from_http(http);
    if (b->data && b->len) {
        json_error_t jerr;
        json_t *root = json_loadb(b->data, b->len, 0, &jerr);
        json_t *e = root ? json_object_get(root, "error") : NULL;
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (code || msg) {
            if (code)
                status_from_code_name(code, &st);
            set_err(c, st, "HTTP %ld %s: %s", http, code ? code : mesatee_status_name(st),
                    msg ? msg : "(no message)");
            json_decref(root);
            return st;
        }
        json_decref(root);
        char text[200];
        printable(b->data, b->len, text, sizeof text);
        return set_err(c, st, "HTTP %ld: %s", http, text);
    }
    return set_err(c, st, "HTTP %ld (%s, no error message)", http, mesatee_status_name(st));
}

/* Message for a transfer that got no (complete) HTTP answer. */
static int error_from_curl(mesatee_client *c, CURLcode rc, const char *errbuf, const char *url)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    /* no connection, no handshake: not an attestation failure */
    bool connected = rc != CURLE_COULDNT_CONNECT && rc != CURLE_COULDNT_RESOLVE_HOST;
    if (c->att_mode == ATT_POLICY && !c->att_ok && connected)
        return set_err(c, MESATEE_EATTEST, "%s",
                       c->att_msg[0] ? c->att_msg
                                     : "the server was not attested: the TLS handshake ended "
                                       "before its certificate was verified");
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        return set_err(c, MESATEE_ENET, "cannot resolve the server's host in %s: %s", c->base,
                       detail);
    case CURLE_COULDNT_CONNECT:
        return set_err(c, MESATEE_ENET, "cannot connect to %s (is the server running?): %s",
                       c->base, detail);
    case CURLE_OPERATION_TIMEDOUT:
        return set_err(c, MESATEE_ENET, "request to %s timed out: %s", url, detail);
    case CURLE_PEER_FAILED_VERIFICATION:
#if LIBCURL_VERSION_NUM < 0x073e00
    case CURLE_SSL_CACERT:
#endif
    {
        char host[300], port[8], msg[CLIENT_ERR_MAX];
        base_host_port(req_base(c), host, sizeof host, port, sizeof port);
        if (host[0] == '[') { /* the certificate names the address without brackets */
            memmove(host, host + 1, strlen(host));
            host[strcspn(host, "]")] = '\0';
        }
        client_tls_seen seen = {
            .leaf = c->seen_any ? c->seen_leaf : NULL,
            .leaf_len = c->seen_leaf_len,
            .verr = c->seen_verr,
            .host = host,
            .ca_file = c->ca_file,
        };
        client_tls_explain(&seen, detail, msg, sizeof msg);
        return set_err(c, MESATEE_ENET, "%s", msg);
    }
    case CURLE_SSL_CACERT_BADFILE:
        return set_err(c, MESATEE_EIO,
                       "TLS: cannot use the CA file %s: %s (it must hold PEM certificates)",
                       c->ca_file ? c->ca_file : "(system store)", detail);
    case CURLE_SSL_CONNECT_ERROR:
        return set_err(c, MESATEE_ENET,
                       "TLS handshake with %s failed (TLS 1.3 is required): %s", c->base,
                       detail);
    default:
        return set_err(c, MESATEE_ENET, "request to %s failed: %s", url, detail);
    }
}

/* curl_easy_setopt(h, opt, val), keeping in e the first option libcurl
 * refused (request_options, attest_options). */
#define OPT(e, h, opt, val)                                                                       \
    do {                                                                                          \
        CURLcode opt_rc_ = curl_easy_setopt((h), (opt), (val));                                   \
        if ((e) == CURLE_OK)                                                                      \
            (e) = opt_rc_;                                                                        \
    } while (0)

/* ======================================================================== */
/* What a verified handshake saw (to explain failures, client_tls.h)        */
/*                                                                           */
/* Without a policy, curl verifies the chain and the name itself; a verify  */
/* callback that only records the server's certificate and the first chain  */
/* error (and returns curl's verdict unchanged) lets a failure be explained: */
/* chain error = unknown CA / changed pin / expired; no chain error but a   */
/* failed verification = the name.                                           */

static pthread_once_t seen_once = PTHREAD_ONCE_INIT;
static int seen_idx = -1;
static bool seen_usable; /* libcurl uses OpenSSL: its SSL_CTX is ours to hook */

static void seen_init_once(void)
{
    seen_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    seen_usable = seen_idx >= 0 && vi && vi->ssl_version &&
                  strncmp(vi->ssl_version, "OpenSSL", 7) == 0;
}

static int seen_verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    mesatee_client *c = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), seen_idx) : NULL;
    if (!c)
        return preverify_ok;
    if (!c->seen_any) {
        X509 *leaf = X509_STORE_CTX_get0_cert(xs);
        uint8_t *der = NULL;
        int dl = leaf ? i2d_X509(leaf, &der) : -1;
        if (dl > 0) {
            free(c->seen_leaf);
            if ((c->seen_leaf = malloc((size_t)dl))) {
                memcpy(c->seen_leaf, der, (size_t)dl);
                c->seen_leaf_len = (size_t)dl;
                c->seen_any = true;
            }
        }
        OPENSSL_free(der);
    }
    if (!preverify_ok && c->seen_verr == X509_V_OK)
        c->seen_verr = X509_STORE_CTX_get_error(xs);
    return preverify_ok;
}

static CURLcode seen_ctx_cb(CURL *curl, void *sslctx, void *ud)
{
    (void)curl;
    SSL_CTX *ctx = sslctx;
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT); /* decrypted records wiped once read */
    if (SSL_CTX_set_ex_data(ctx, seen_idx, ud) != 1)
        return CURLE_OK; /* only the explanation is lost */
    SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), seen_verify_cb);
    return CURLE_OK;
}

/* Installs the recorder on h for a verified (CA or system store) transfer
 * (options: when h gets request()'s options, see request_options). */
static void seen_setup(mesatee_client *c, CURL *h, bool options)
{
    pthread_once(&seen_once, seen_init_once);
    c->seen_any = false;
    c->seen_verr = X509_V_OK;
    c->seen_leaf_len = 0;
    if (!seen_usable || !options)
        return;
    curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, seen_ctx_cb);
    curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, c);
}

/* ======================================================================== */
/* Attested TLS                                                              */
/*                                                                           */
/* With a policy, the server's certificate is verified INSIDE the handshake: */
/* the SSL_CTX gets SSL_VERIFY_PEER and verify_cb, which checks the RA-TLS   */
/* evidence (mt_ratls) and the policy (mt_policy) on the leaf and aborts the */
/* handshake on failure, so no request byte reaches an unverified server. A  */
/* CURLOPT_PREREQFUNCTION gate refuses to send on a connection whose SSL   */
/* does not carry the callback's verdict for the current trust generation   */
/* (att_gen): a kept-alive connection verified under an earlier policy, or  */
/* opened with verification off, never carries a request (curl's own reuse */
/* check sees the same TLS settings for every policy).                      */
/* TLS session resumption is off (a resumed session skips verification).    */

static pthread_once_t att_once = PTHREAD_ONCE_INIT;
static int att_idx = -1;
static int att_verdict_idx = -1; /* SSL ex data: the att_gen it was verified for */

static CURLcode attest_options(mesatee_client *c, CURL *h);

static void att_init_once(void)
{
    att_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    att_verdict_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* Verifies the leaf certificate for c (policy mode) or records it (capture
 * mode). Returns 1 to continue the handshake. */
static int attest_leaf(mesatee_client *c, SSL *ssl, X509 *leaf)
{
    if (!leaf) {
        snprintf(c->att_msg, sizeof c->att_msg, "the server presents no certificate");
        return 0;
    }
    if (c->att_mode == ATT_CAPTURE) {
        uint8_t *der = NULL;
        int dl = i2d_X509(leaf, &der);
        if (dl <= 0) {
            snprintf(c->att_msg, sizeof c->att_msg, "the server's certificate cannot be encoded");
            return 0;
        }
        free(c->att_cert);
        c->att_cert = malloc((size_t)dl);
        if (c->att_cert)
            memcpy(c->att_cert, der, (size_t)dl);
        c->att_cert_len = c->att_cert ? (size_t)dl : 0;
        OPENSSL_free(der);
        return 1; /* attest show: nothing is sent; verified after the handshake */
    }
    int ok = 0;
    mt_attest_claims *claims = malloc(sizeof *claims);
    mt_ratls_info info;
    mt_err err;
    mt_err_clear(&err);
    int64_t now = mt_now();
    mt_status pst;
    mt_policy_pending *pend = NULL;
    /* Verified first: a certificate seen before is not parsed again
     * (mt_vcache.h); MT_ENOTFOUND is "no evidence extension". This runs in
     * the handshake's verify callback: the server's CertificateVerify (TLS
     * 1.3 only, CURLOPT_SSLVERSION) proves it holds the key, so the
     * self-signature is not checked (MT_RATLS_PEER_PROVES_KEY); att_claims
     * are used only once the handshake completed, and the verified-peer
     * cache remembers the certificate only then (mt_atls_info_cb). */
    if (!claims) {
        snprintf(c->att_msg, sizeof c->att_msg, "out of memory verifying the server");
    } else if ((pst = mt_policy_verify_peer(c->policy, leaf,
                                            MT_RATLS_FORM_CCC | MT_RATLS_FORM_LEGACY |
                                                MT_RATLS_PEER_PROVES_KEY,
                                            now, claims, &info, &pend, &err)) == MT_ENOTFOUND) {
        snprintf(c->att_msg, sizeof c->att_msg,
                 "server %s refused: it presents no attestation evidence (level none) and the "
                 "policy %s needs at least level soft; pass --insecure only to talk to a server "
                 "at level none",
                 c->base, c->policy_path);
    } else if (pst != MT_OK) {
        if (pst == MT_EPERM)
            snprintf(c->att_msg, sizeof c->att_msg, "server %s refused by policy %s: %s", c->base,
                     c->policy_path, err.msg);
        else
            snprintf(c->att_msg, sizeof c->att_msg, "server %s refused: its attestation evidence "
                     "does not verify: %s", c->base, err.msg);
    } else {
        free(c->att_claims);
        c->att_claims = mt_policy_claims_json(claims, &info);
        ok = c->att_claims != NULL;
        if (!ok)
            snprintf(c->att_msg, sizeof c->att_msg, "out of memory verifying the server");
    }
    mt_atls_hold_pending(ssl, ok ? pend : NULL);
    if (!ok)
        mt_policy_pending_free(pend);
    free(claims);
    return ok;
}

static int verify_cb(int preverify_ok, X509_STORE_CTX *xs)
{
    (void)preverify_ok; /* the chain is self-signed; trust comes from the evidence */
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    mesatee_client *c = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), att_idx) : NULL;
    if (!c)
        return 0;
    if (X509_STORE_CTX_get_error_depth(xs) > 0) {
        X509_STORE_CTX_set_error(xs, X509_V_OK);
        return 1; /* issuers above the leaf do not matter: the leaf carries the evidence */
    }
    if (!c->att_done) {
        c->att_done = true;
        c->att_ok = attest_leaf(c, ssl, X509_STORE_CTX_get_current_cert(xs)) == 1;
        /* this connection's verdict, for the trust it was verified under */
        if (c->att_ok && c->att_mode == ATT_POLICY &&
            (att_verdict_idx < 0 ||
             SSL_set_ex_data(ssl, att_verdict_idx, (void *)c->att_gen) != 1)) {
            snprintf(c->att_msg, sizeof c->att_msg, "out of memory verifying the server");
            c->att_ok = false;
        }
    }
    if (c->att_ok)
        X509_STORE_CTX_set_error(xs, X509_V_OK);
    return c->att_ok ? 1 : 0;
}

static CURLcode ssl_ctx_cb(CURL *curl, void *sslctx, void *ud)
{
    (void)curl;
    mesatee_client *c = ud;
    SSL_CTX *ctx = sslctx;
    if (att_idx < 0 || SSL_CTX_set_ex_data(ctx, att_idx, c) != 1)
        return CURLE_SSL_CERTPROBLEM;
    c->att_done = c->att_ok = false; /* a new connection: verify again */
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT); /* decrypted records wiped once read */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    SSL_CTX_set_info_callback(ctx, mt_atls_info_cb); /* the cache entry, once proven */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return CURLE_OK;
}

static int prereq_cb(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                     int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    mesatee_client *c = ud;
    /* curl calls this after connect and TLS verification, right before the
     * request goes out: the server exists there (req_sent). The pretransfer
     * time cannot tell: libcurl >= 8.21 sets it for transfers that failed
     * before sending too (a refused connect, a cut handshake). */
    if (c->att_mode != ATT_POLICY) {
        c->req_sent = true;
        return CURL_PREREQFUNC_OK;
    }
    /* the connection this transfer uses, new or kept alive: its own verdict */
    struct curl_tlssessioninfo *ti = NULL;
    SSL *ssl = NULL;
    if (curl_easy_getinfo(c->curl, CURLINFO_TLS_SSL_PTR, &ti) == CURLE_OK && ti &&
        ti->backend == CURLSSLBACKEND_OPENSSL)
        ssl = ti->internals;
    uintptr_t verdict = ssl && att_verdict_idx >= 0
                            ? (uintptr_t)SSL_get_ex_data(ssl, att_verdict_idx)
                            : 0;
    if (verdict != 0 && verdict == c->att_gen) {
        c->req_sent = true;
        return CURL_PREREQFUNC_OK;
    }
    c->att_refused = true;
    snprintf(c->att_msg, sizeof c->att_msg,
             "server %s refused: the connection was not verified under the current policy %s "
             "(nothing was sent)",
             c->base, c->policy_path ? c->policy_path : "(none)");
    return CURL_PREREQFUNC_ABORT;
}

/* Installs the handshake verification on handle h, for one transfer;
 * options: also the options that stay on h (attest_options; request()'s
 * handle has them from request_options). */
static void attest_setup(mesatee_client *c, CURL *h, int mode, bool options)
{
    pthread_once(&att_once, att_init_once);
    c->att_mode = mode;
    c->att_msg[0] = '\0';
    c->att_refused = false;
    if (options)
        (void)attest_options(c, h); /* mesatee_client_attest: its gate is att_ok */
}

/* The options of attest_setup that stay on the handle; the first option
 * libcurl refused, else CURLE_OK. */
static CURLcode attest_options(mesatee_client *c, CURL *h)
{
    pthread_once(&att_once, att_init_once);
    CURLcode e = CURLE_OK;
    /* Our verify_cb decides; curl's own chain and name checks are off. */
    OPT(e, h, CURLOPT_SSL_VERIFYPEER, 0L);
    OPT(e, h, CURLOPT_SSL_VERIFYHOST, 0L);
    OPT(e, h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    OPT(e, h, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
    OPT(e, h, CURLOPT_SSL_CTX_DATA, c);
    OPT(e, h, CURLOPT_PREREQFUNCTION, prereq_cb);
    OPT(e, h, CURLOPT_PREREQDATA, c);
    return e;
}

MESATEE_API int mesatee_client_set_policy_file(mesatee_client *c, const char *path)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    clear_err(c);
    if (!path) {
        mt_policy_free(c->policy);
        c->policy = NULL;
        free(c->policy_path);
        c->policy_path = NULL;
        trust_changed(c);
        return MESATEE_OK;
    }
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);
    if (!vi || !vi->ssl_version || strncmp(vi->ssl_version, "OpenSSL", 7) != 0)
        return set_err(c, MESATEE_EINVAL,
                       "attested TLS needs libcurl built with OpenSSL (this one uses %s)",
                       vi && vi->ssl_version ? vi->ssl_version : "no TLS");
    mt_policy *p = NULL;
    mt_err err;
    mt_err_clear(&err);
    mt_status st =
        mt_policy_load_signed(path, c->policy_signers, c->policy_threshold, &p, &err);
    if (st != MT_OK)
        return set_err(c,
                       st == MT_EAUTH                         ? MESATEE_EATTEST
                       : st == MT_EIO || st == MT_ENOTFOUND ? MESATEE_EIO
                                                              : MESATEE_EINVAL,
                       "%s", err.msg);
    char *copy = strdup(path);
    if (!copy) {
        mt_policy_free(p);
        return set_err(c, MESATEE_ENOMEM, "out of memory");
    }
    mt_policy_free(c->policy);
    free(c->policy_path);
    c->policy = p;
    c->policy_path = copy;
    trust_changed(c); /* never reuse a connection verified under the old policy */
    return MESATEE_OK;
}

MESATEE_API int mesatee_client_set_policy_signers(mesatee_client *c, const char *signers_pem_path,
                                                  unsigned threshold)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    clear_err(c);
    char *copy = NULL;
    if (signers_pem_path && !(copy = strdup(signers_pem_path)))
        return set_err(c, MESATEE_ENOMEM, "out of memory");
    free(c->policy_signers);
    c->policy_signers = copy;
    c->policy_threshold = threshold;
    return MESATEE_OK;
}

MESATEE_API int mesatee_client_attest(mesatee_client *c, char **json_out)
{
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    clear_err(c);
    if (c->insecure)
        return set_err(c, MESATEE_EINVAL,
                       "attestation is not checked with insecure verification switched on");
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *h = c->curl;
    c->curl_ready = false; /* the handle gets this check's options */
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, req_base(c));
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
    curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L); /* handshake only: no request is sent */
    curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CLIENT_CONNECT_TIMEOUT_S);
    attest_setup(c, h, c->policy ? ATT_POLICY : ATT_CAPTURE, true);
    free(c->att_claims);
    c->att_claims = NULL;
    free(c->att_cert);
    c->att_cert = NULL;
    c->att_cert_len = 0;
    CURLcode rc = curl_easy_perform(h);
    int st = MESATEE_OK;
    if (rc != CURLE_OK) {
        st = error_from_curl(c, rc, errbuf, c->base);
        goto out;
    }
    if (c->att_mode == ATT_POLICY) {
        if (!c->att_ok) { /* the gate: never report success without the callback's verdict */
            st = set_err(c, MESATEE_EATTEST, "%s", c->att_msg[0] ? c->att_msg : "not attested");
            goto out;
        }
        json_t *o = json_loads(c->att_claims, 0, NULL);
        if (o) {
            json_object_set_new(o, "policy", json_string(c->policy_path));
            json_object_set_new(o, "policy_satisfied", json_true());
        }
        char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(o);
        if (!s || !give_string(s, json_out))
            st = set_err(c, MESATEE_ENOMEM, "out of memory");
        free(s);
        goto out;
    }
    if (!c->att_cert) {
        st = set_err(c, MESATEE_ENET, "the server sent no certificate");
        goto out;
    }
    if (!mt_ratls_cert_has_evidence(c->att_cert, c->att_cert_len,
                                    MT_RATLS_FORM_CCC | MT_RATLS_FORM_LEGACY)) {
        if (!give_string("{\"kind\":\"none\",\"level\":1,\"evidence\":false}", json_out))
            st = set_err(c, MESATEE_ENOMEM, "out of memory");
        goto out;
    }
    mt_attest_claims *claims = malloc(sizeof *claims);
    mt_ratls_info info;
    mt_err err;
    mt_err_clear(&err);
    if (!claims) {
        st = set_err(c, MESATEE_ENOMEM, "out of memory");
    } else if (mt_ratls_verify_cert(c->att_cert, c->att_cert_len,
                                    MT_RATLS_FORM_CCC | MT_RATLS_FORM_LEGACY, NULL, mt_now(),
                                    claims, &info, &err) != MT_OK) {
        st = set_err(c, MESATEE_EATTEST, "server %s: its attestation evidence does not verify: %s",
                     c->base, err.msg);
    } else {
        char *s = mt_policy_claims_json(claims, &info);
        if (!s || !give_string(s, json_out))
            st = set_err(c, MESATEE_ENOMEM, "out of memory");
        free(s);
    }
    free(claims);
out:
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_reset(h);
    c->att_mode = ATT_OFF;
    c->att_done = c->att_ok = false; /* that connection is closed (FORBID_REUSE) */
    /* the handle lost request()'s options (curl_easy_reset); the next
     * request verifies the server anew, on a connection of its own */
    c->pool_stale = true;
    return st;
}

/* Sets h's transfer and connect timeouts: the handle's own (timeout_s, else
 * none for the transfer; CLIENT_CONNECT_TIMEOUT_S, or timeout_s when
 * shorter, for the connect), each capped at cap_ms when cap_ms > 0. */
static CURLcode time_limits(const mesatee_client *c, CURL *h, int64_t cap_ms)
{
    long connect_s = CLIENT_CONNECT_TIMEOUT_S;
    if (c->timeout_s > 0 && c->timeout_s < connect_s)
        connect_s = c->timeout_s;
    CURLcode e = CURLE_OK;
    if (cap_ms <= 0) { /* in seconds, as set: libcurl may refuse a huge timeout_s */
        OPT(e, h, CURLOPT_TIMEOUT, c->timeout_s > 0 ? c->timeout_s : 0L);
        OPT(e, h, CURLOPT_CONNECTTIMEOUT, connect_s);
        return e;
    }
    int64_t total = cap_ms, connect = cap_ms;
    if (c->timeout_s > 0 && c->timeout_s <= INT64_MAX / 1000 && c->timeout_s * 1000 < total)
        total = (int64_t)c->timeout_s * 1000;
    if ((int64_t)connect_s * 1000 < connect)
        connect = (int64_t)connect_s * 1000;
    OPT(e, h, CURLOPT_TIMEOUT_MS, (long)total);
    OPT(e, h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    return e;
}

/* Puts on h, reset, the options of request() that depend only on the
 * handle's configuration (the connection, TLS verification, timeouts,
 * progress): set once, not for every request (each curl_easy_reset and
 * setopt allocates), and again after a setter changed what they depend on
 * (c->curl_ready). What varies per request is set by request() each time.
 * Returns the first option libcurl refused (then h must not be used as it
 * is), else CURLE_OK. */
static CURLcode request_options(mesatee_client *c, CURL *h)
{
    curl_easy_reset(h);
    CURLcode e = CURLE_OK;
    /* libcurl's default since 7.50.2, said here because every call's latency
     * depends on it: a request's TLS records must not wait for an ACK */
    OPT(e, h, CURLOPT_TCP_NODELAY, 1L);
    OPT(e, h, CURLOPT_CONNECT_TO, c->connect_to);
    OPT(e, h, CURLOPT_PROTOCOLS_STR, "https");
    OPT(e, h, CURLOPT_FOLLOWLOCATION, 0L);
    OPT(e, h, CURLOPT_NOSIGNAL, 1L);
    OPT(e, h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
    OPT(e, h, CURLOPT_SSL_VERIFYPEER, c->insecure ? 0L : 1L);
    OPT(e, h, CURLOPT_SSL_VERIFYHOST, c->insecure || !c->verify_host ? 0L : 2L);
    if (!c->insecure && c->policy) {
        CURLcode ae = attest_options(c, h);
        e = e == CURLE_OK ? ae : e;
    } else if (c->ca_file) {
        OPT(e, h, CURLOPT_CAINFO, c->ca_file);
        OPT(e, h, CURLOPT_CAPATH, NULL); /* pin: only this file */
    }
    if (!c->insecure && !c->policy)
        seen_setup(c, h, true);
    /* every mode: prereq_cb marks that a request reached a server (req_sent) */
    OPT(e, h, CURLOPT_PREREQFUNCTION, prereq_cb);
    OPT(e, h, CURLOPT_PREREQDATA, c);
    if (c->timeout_s <= 0) {
        OPT(e, h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        OPT(e, h, CURLOPT_LOW_SPEED_TIME, CLIENT_DEFAULT_STALL_S);
    }
    CURLcode le = time_limits(c, h, 0);
    e = e == CURLE_OK ? le : e;
    OPT(e, h, CURLOPT_USERAGENT, "libmesatee/" MESATEE_VERSION_STRING);
    OPT(e, h, CURLOPT_WRITEFUNCTION, on_write);
    if (c->progress) {
        OPT(e, h, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
        OPT(e, h, CURLOPT_XFERINFODATA, c);
        OPT(e, h, CURLOPT_NOPROGRESS, 0L);
    }
    return e;
}

/* Performs one request. The response body of a 2xx answer goes to out_file
 * when non-NULL, else to *resp_out (heap string; may be NULL). On non-2xx
 * answers *resp_out still receives the body. */
static int request(mesatee_client *c, const char *method, const char *path, const body *in,
                   FILE *out_file, char **resp_out)
{
    reset_out(resp_out);
    clear_err(c);
    c->http_status = 0;
    c->curl_rc = CURLE_OK;
    if (!method || !path || path[0] != '/')
        return set_err(c, MESATEE_EINVAL, "request path must start with '/'");
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p <= 32 || (unsigned char)*p >= 127 || *p == '#')
            return set_err(c, MESATEE_EINVAL, "request path contains a bad character");
    bool is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;
    if (!is_get && !is_post && strcmp(method, "PUT") != 0 && strcmp(method, "DELETE") != 0)
        return set_err(c, MESATEE_EINVAL, "unsupported HTTP method '%.16s'", method);
    c->req_sent = false;
    c->att_refused = false;
    int rst = renew_handle(c); /* no connection of an earlier trust is reused */
    if (rst != MESATEE_OK)
        return rst;

    size_t url_len = strlen(req_base(c)) + strlen(path) + 1;
    char *url = malloc(url_len);
    char *auth = NULL;
    struct curl_slist *hdrs = NULL;
    sink s = {.curl = c->curl, .file = out_file};
    char errbuf[CURL_ERROR_SIZE] = "";
    int st = MESATEE_OK;
    bool capped = false; /* this request has c->req_deadline's limits */
    if (!url) {
        st = set_err(c, MESATEE_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(url, url_len, "%s%s", req_base(c), path);

    CURL *h = c->curl;
    if (!c->curl_ready) {
        CURLcode oe = request_options(c, h);
        if (oe != CURLE_OK) { /* set again by the next request, never used half set */
            st = set_err(c, MESATEE_EINVAL, "libcurl refused the client's settings: %s",
                         curl_easy_strerror(oe));
            goto out;
        }
        c->curl_ready = true;
    }
    /* per request: what the last one may have set */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    if (c->req_deadline > 0) { /* at least 1 ms: 0 would mean no limit */
        capped = true;
        int64_t left = c->req_deadline - mt_mono_ms();
        if (left > INT_MAX) /* libcurl may refuse more (24 days) */
            left = INT_MAX;
        if (time_limits(c, h, left > 1 ? left : 1) != CURLE_OK) {
            st = set_err(c, MESATEE_EINVAL, "libcurl refused the request's time limit");
            goto out;
        }
    }
    c->att_mode = ATT_OFF;
    if (!c->insecure && c->policy)
        attest_setup(c, h, ATT_POLICY, false);
    if (!c->insecure && !c->policy)
        seen_setup(c, h, false);

    struct curl_slist *t;
    if (c->token) {
        size_t alen = strlen(c->token) + sizeof "Authorization: Bearer ";
        if (!(auth = malloc(alen))) {
            st = set_err(c, MESATEE_ENOMEM, "out of memory");
            goto out;
        }
        snprintf(auth, alen, "Authorization: Bearer %s", c->token);
        if (!(t = curl_slist_append(hdrs, auth)))
            goto nomem;
        hdrs = t;
    }
    if (!(t = curl_slist_append(hdrs, "Expect:")))
        goto nomem;
    hdrs = t;
    if (in && in->content_type) {
        char ct[96];
        snprintf(ct, sizeof ct, "Content-Type: %s", in->content_type);
        if (!(t = curl_slist_append(hdrs, ct)))
            goto nomem;
        hdrs = t;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, NULL);
    curl_easy_setopt(h, CURLOPT_READDATA, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
    if (is_get) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (in && in->file) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, in->file);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)in->file_len);
    } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, in && in->mem ? in->mem : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(in && in->mem ? in->mem_len : 0));
    }
    if (!is_get && !is_post)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

    CURLcode rc = curl_easy_perform(h);
    long http = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http);
    c->http_status = (int)http;
    c->curl_rc = (int)rc;
    /* req_sent: set by prereq_cb only when it let the request go out */
    if (rc != CURLE_OK) {
        if (c->att_refused)
            st = set_err(c, MESATEE_EATTEST, "%s", c->att_msg);
        else if (s.mem.too_big)
            st = set_err(c, MESATEE_ESERVER, "response from %s is larger than %u bytes", url,
                         CLIENT_MAX_RESPONSE);
        else if (s.file_error)
            st = set_err(c, MESATEE_EIO, "cannot write the downloaded content: %s",
                         strerror(errno));
        else if (rc == CURLE_WRITE_ERROR)
            st = set_err(c, MESATEE_ENOMEM, "out of memory reading the response");
        else if (rc == CURLE_ABORTED_BY_CALLBACK || rc == CURLE_READ_ERROR)
            st = set_err(c, MESATEE_EIO, "cannot read the file to upload");
        else
            st = error_from_curl(c, rc, errbuf, url);
        goto out;
    }
    if (http < 200 || http >= 300)
        st = error_from_response(c, http, &s.mem);
    if (resp_out) {
        *resp_out = s.mem.data ? s.mem.data : strdup("");
        s.mem.data = NULL;
        if (!*resp_out)
            goto nomem;
    }
    goto out;
nomem:
    st = set_err(c, MESATEE_ENOMEM, "out of memory");
out:
    curl_slist_free_all(hdrs);
    /* the handle keeps no pointer into this call (freed or on its stack) */
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c->curl, CURLOPT_READDATA, NULL);
    if (capped) /* the next request has the handle's own limits again */
        time_limits(c, c->curl, 0);
    if (auth) {
        mt_wipe(auth, strlen(auth));
        free(auth);
    }
    mt_secmem_free(s.mem.data); /* a login answer holds a token */
    free(url);
    return st;
}

static int call_json(mesatee_client *c, const char *method, const char *path,
                     const char *json_body, char **json_out)
{
    body b = {.content_type = "application/json", .mem = json_body,
              .mem_len = json_body ? strlen(json_body) : 0};
    return request(c, method, path, json_body ? &b : NULL, NULL, json_out);
}

MESATEE_API int mesatee_call(mesatee_client *c, const char *method, const char *path,
                             const char *json_body, char **json_out)
{
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    return call_json(c, method, path, json_body, json_out);
}

/* ======================================================================== */
/* Typed calls                                                               */

/* Dumps a jansson value (consumed) into a compact heap string. */
static char *dump_consume(json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return s;
}

/* Extracts the string field of the answer into *out (if out is non-NULL). */
static int pick_field(mesatee_client *c, const char *resp, const char *field, char **out)
{
    if (!out)
        return MESATEE_OK;
    json_t *root = resp ? json_loads(resp, 0, NULL) : NULL;
    const char *v = json_string_value(json_object_get(root, field));
    int st = MESATEE_OK;
    if (!v)
        st = set_err(c, MESATEE_ESERVER, "server answer has no string field '%s'", field);
    else if (!(*out = strdup(v)))
        st = set_err(c, MESATEE_ENOMEM, "out of memory");
    json_decref(root);
    return st;
}

/* POSTs the (consumed) JSON value and extracts field into *field_out. */
static int post_pick(mesatee_client *c, const char *path, json_t *req, const char *field,
                     char **field_out, char **json_out)
{
    reset_out(field_out);
    reset_out(json_out);
    if (!c) {
        json_decref(req);
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    }
    char *reqs = dump_consume(req);
    if (!reqs)
        return set_err(c, MESATEE_ENOMEM, "out of memory (request)");
    char *resp = NULL;
    int st = call_json(c, "POST", path, reqs, &resp);
    mt_wipe(reqs, strlen(reqs)); /* may hold a password or a key */
    free(reqs);
    if (st == MESATEE_OK && field)
        st = pick_field(c, resp, field, field_out);
    if (json_out && (st == MESATEE_OK || c->http_status >= 400)) {
        *json_out = resp;
        resp = NULL;
    }
    mt_secmem_free(resp); /* a login answer holds a token */
    return st;
}

static int check_id(mesatee_client *c, const char *what, const char *id)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!id || !mt_id_valid(id))
        return set_err(c, MESATEE_EINVAL, "invalid %s id '%.64s' (expected %d lower-case hex "
                       "characters)", what, id ? id : "", MT_ID_LEN);
    return MESATEE_OK;
}

MESATEE_API int mesatee_login(mesatee_client *c, const char *username, const char *password,
                              char **token_out, char **json_out)
{
    reset_out(token_out);
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!username || !password)
        return set_err(c, MESATEE_EINVAL, "user name and password are required");
    json_t *req = json_pack("{s:s, s:s}", "username", username, "password", password);
    if (!req)
        return set_err(c, MESATEE_EINVAL, "user name and password must be UTF-8");
    char *token = NULL;
    int st = post_pick(c, "/v1/auth/login", req, "token", &token, json_out);
    if (st == MESATEE_OK)
        st = mesatee_client_set_token(c, token);
    if (st == MESATEE_OK && !give_string(token, token_out))
        st = set_err(c, MESATEE_ENOMEM, "out of memory");
    if (token) {
        mt_wipe(token, strlen(token));
        free(token);
    }
    return st;
}

MESATEE_API int mesatee_logout(mesatee_client *c, char **json_out)
{
    int st = post_pick(c, "/v1/auth/logout", json_object(), NULL, NULL, json_out);
    if (st == MESATEE_OK)
        mesatee_client_set_token(c, NULL);
    return st;
}

MESATEE_API int mesatee_user_add(mesatee_client *c, const char *username, const char *password,
                                 const char *role, char **json_out)
{
    reset_out(json_out);
    if (c && (!username || !password))
        return set_err(c, MESATEE_EINVAL, "user name and password are required");
    json_t *req = c ? json_pack("{s:s, s:s, s:s}", "username", username, "password", password,
                                "role", role ? role : "user")
                    : NULL;
    if (c && !req)
        return set_err(c, MESATEE_EINVAL, "user name, password and role must be UTF-8");
    return post_pick(c, "/v1/users", req, NULL, NULL, json_out);
}

MESATEE_API int mesatee_upload_bytes(mesatee_client *c, const uint8_t *buf, size_t len,
                                     char **url_out, char **json_out)
{
    reset_out(url_out);
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!buf && len)
        return set_err(c, MESATEE_EINVAL, "buffer is NULL");
    body b = {.content_type = "application/octet-stream", .mem = buf ? (const void *)buf : "",
              .mem_len = len};
    char *resp = NULL;
    int st = request(c, "POST", "/v1/objects", &b, NULL, &resp);
    if (st == MESATEE_OK)
        st = pick_field(c, resp, "url", url_out);
    if (json_out)
        *json_out = resp;
    else
        free(resp);
    return st;
}

MESATEE_API int mesatee_upload_file(mesatee_client *c, const char *path, char **url_out,
                                    char **json_out)
{
    reset_out(url_out);
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!path)
        return set_err(c, MESATEE_EINVAL, "file path is NULL");
    FILE *f = fopen(path, "rbe");
    if (!f)
        return set_err(c, MESATEE_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return set_err(c, MESATEE_EIO, "%s is not a regular file", path);
    }
    body b = {.content_type = "application/octet-stream", .file = f,
              .file_len = (uint64_t)sb.st_size};
    char *resp = NULL;
    int st = request(c, "POST", "/v1/objects", &b, NULL, &resp);
    fclose(f);
    if (st == MESATEE_OK)
        st = pick_field(c, resp, "url", url_out);
    if (json_out)
        *json_out = resp;
    else
        free(resp);
    return st;
}

MESATEE_API int mesatee_file_register_input(mesatee_client *c, const char *url,
                                            const uint8_t key[32], const char *sha256_hex,
                                            const char *name, char **id_out, char **json_out)
{
    reset_out(id_out);
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!url || !key)
        return set_err(c, MESATEE_EINVAL, "url and key are required");
    char hex[65];
    mt_hex_encode(key, 32, hex);
    json_t *req = json_pack("{s:s, s:s}", "url", url, "key", hex);
    mt_wipe(hex, sizeof hex);
    if (req && sha256_hex)
        json_object_set_new(req, "sha256", json_string(sha256_hex));
    if (req && name)
        json_object_set_new(req, "name", json_string(name));
    if (!req)
        return set_err(c, MESATEE_EINVAL, "url must be UTF-8");
    return post_pick(c, "/v1/files/inputs", req, "file_id", id_out, json_out);
}

MESATEE_API int mesatee_file_register_output(mesatee_client *c, const uint8_t key[32],
                                             const char *name, char **id_out, char **json_out)
{
    return mesatee_file_register_output_ex(c, key, name, 0, id_out, json_out);
}

MESATEE_API int mesatee_file_register_output_ex(mesatee_client *c, const uint8_t key[32],
                                                const char *name, unsigned flags,
                                                char **id_out, char **json_out)
{
    reset_out(id_out);
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!key)
        return set_err(c, MESATEE_EINVAL, "key is required");
    if (flags & ~MESATEE_ALLOW_KEY_REUSE)
        return set_err(c, MESATEE_EINVAL, "unknown flags 0x%x", flags & ~MESATEE_ALLOW_KEY_REUSE);
    char hex[65];
    mt_hex_encode(key, 32, hex);
    json_t *req = json_pack("{s:s}", "key", hex);
    mt_wipe(hex, sizeof hex);
    if (req && name)
        json_object_set_new(req, "name", json_string(name));
    if (req && (flags & MESATEE_ALLOW_KEY_REUSE))
        json_object_set_new(req, "allow_key_reuse", json_true());
    if (!req)
        return set_err(c, MESATEE_ENOMEM, "out of memory");
    return post_pick(c, "/v1/files/outputs", req, "file_id", id_out, json_out);
}

MESATEE_API int mesatee_file_register_fusion(mesatee_client *c, const char *const *owners,
                                             size_t n_owners, const char *name, char **id_out,
                                             char **json_out)
{
    reset_out(id_out);
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!owners || n_owners < 2)
        return set_err(c, MESATEE_EINVAL, "a fusion file needs at least 2 owners");
    json_t *arr = json_array(), *req = json_object();
    for (size_t i = 0; arr && i < n_owners; i++)
        if (!owners[i] || json_array_append_new(arr, json_string(owners[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    if (!arr || !req || json_object_set_new(req, "owners", arr) != 0) {
        json_decref(req);
        return set_err(c, MESATEE_EINVAL, "owner names must be non-NULL UTF-8");
    }
    if (name)
        json_object_set_new(req, "name", json_string(name));
    return post_pick(c, "/v1/files/fusion", req, "file_id", id_out, json_out);
}

/* Reads the mt_ff header of a local file. MESATEE_OK with *h filled. */
static int read_ff_header(mesatee_client *c, const char *path, mt_ff_header *h)
{
    uint8_t buf[MT_FF_HEADER_MAX];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return set_err(c, MESATEE_EIO, "cannot open %s: %s", path, strerror(errno));
    size_t got = 0;
    while (got < sizeof buf) {
        ssize_t n = read(fd, buf + got, sizeof buf - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    mt_err err;
    mt_err_clear(&err);
    if (mt_ff_header_parse(buf, got, h, &err) != MT_OK)
        return set_err(c, MESATEE_ECRYPTO, "%s is not a mesatee encrypted file: %s", path,
                       err.msg);
    return MESATEE_OK;
}

static int download(mesatee_client *c, const char *file_id, const char *out_path,
                    unsigned flags);

MESATEE_API int mesatee_file_download(mesatee_client *c, const char *file_id,
                                      const char *out_path)
{
    return mesatee_file_download_ex(c, file_id, out_path, 0);
}

#define DOWNLOAD_NO_BINDING_CHECK 0x100u /* internal: the caller checks the full binding */

MESATEE_API int mesatee_file_download_ex(mesatee_client *c, const char *file_id,
                                         const char *out_path, unsigned flags)
{
    if (flags & ~MESATEE_ALLOW_UNBOUND)
        return set_err(c, MESATEE_EINVAL, "unknown flags 0x%x", flags & ~MESATEE_ALLOW_UNBOUND);
    return download(c, file_id, out_path, flags);
}

/* GET /v1/files/{id}/content into out_path; checks the header's file
 * binding unless flags has DOWNLOAD_NO_BINDING_CHECK. */
static int download(mesatee_client *c, const char *file_id, const char *out_path,
                    unsigned flags)
{
    int st = check_id(c, "file", file_id);
    if (st != MESATEE_OK)
        return st;
    if (!out_path)
        return set_err(c, MESATEE_EINVAL, "output path is NULL");
    size_t tlen = strlen(out_path) + MT_TMPFILE_EXTRA;
    char *tmp = malloc(tlen);
    if (!tmp)
        return set_err(c, MESATEE_ENOMEM, "out of memory");
    int fd = -1;
    mt_err terr;
    if (mt_tmpfile_open(out_path, 0600, tmp, tlen, &fd, &terr) != MT_OK) {
        free(tmp);
        return set_err(c, MESATEE_EIO, "%s", terr.msg);
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        st = set_err(c, MESATEE_EIO, "cannot create %s: %s", tmp, strerror(errno));
        mt_tmpfile_discard(fd, tmp);
        free(tmp);
        return st;
    }
    char path[96];
    snprintf(path, sizeof path, "/v1/files/%s/content", file_id);
    st = request(c, "GET", path, NULL, f, NULL);
    if (st == MESATEE_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        st = set_err(c, MESATEE_EIO, "cannot write %s: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && st == MESATEE_OK)
        st = set_err(c, MESATEE_EIO, "cannot write %s: %s", tmp, strerror(errno));
    /* The content must be the output written for this file: the server (the
     * host) could serve another output's ciphertext. */
    if (st == MESATEE_OK && !(flags & DOWNLOAD_NO_BINDING_CHECK)) {
        mt_ff_header h;
        uint8_t want[16];
        st = read_ff_header(c, tmp, &h);
        if (st == MESATEE_OK && mt_hex_decode(file_id, want, sizeof want, NULL) != MT_OK)
            st = set_err(c, MESATEE_EINVAL, "file id %s is not hex", file_id);
        if (st == MESATEE_OK && h.bound && memcmp(h.binding.file_id, want, sizeof want) != 0)
            st = set_err(c, MESATEE_ECRYPTO,
                         "refusing the content of file %s: it is the output written for "
                         "another file (copied or substituted by the server)",
                         file_id);
        else if (st == MESATEE_OK && !h.bound && !(flags & MESATEE_ALLOW_UNBOUND))
            st = set_err(c, MESATEE_ECRYPTO,
                         "refusing the content of file %s: it is not bound to any task output "
                         "(an unbound mt_ff version 1 file: substituted, or written by a server "
                         "older than format version 2; --allow-unbound accepts the latter)",
                         file_id);
    }
    if (st == MESATEE_OK && mt_tmpfile_publish(-1, tmp, out_path, &terr) != MT_OK)
        st = set_err(c, MESATEE_EIO, "%s", terr.msg);
    if (st != MESATEE_OK)
        unlink(tmp);
    free(tmp);
    return st;
}

/* POSTs a caller-provided JSON document (validated locally first). */
static int post_doc(mesatee_client *c, const char *path, const char *doc, const char *what,
                    const char *field, char **field_out, char **json_out)
{
    reset_out(field_out);
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!doc)
        return set_err(c, MESATEE_EINVAL, "%s is NULL", what);
    json_error_t jerr;
    json_t *v = json_loads(doc, JSON_REJECT_DUPLICATES, &jerr);
    if (!v || !json_is_object(v)) {
        json_decref(v);
        if (!v)
            return set_err(c, MESATEE_EINVAL, "%s is not valid JSON: line %d column %d: %s",
                           what, jerr.line, jerr.column, jerr.text);
        return set_err(c, MESATEE_EINVAL, "%s must be a JSON object", what);
    }
    return post_pick(c, path, v, field, field_out, json_out);
}

MESATEE_API int mesatee_function_register(mesatee_client *c, const char *spec_json,
                                          char **id_out, char **json_out)
{
    return post_doc(c, "/v1/functions", spec_json, "function description", "function_id",
                    id_out, json_out);
}

MESATEE_API int mesatee_task_create(mesatee_client *c, const char *spec_json, char **id_out,
                                    char **json_out)
{
    return post_doc(c, "/v1/tasks", spec_json, "task description", "task_id", id_out,
                    json_out);
}

/* POST /v1/tasks/{id}/<verb> with body (NULL = {}). */
static int task_verb(mesatee_client *c, const char *task_id, const char *verb,
                     const char *doc, char **json_out)
{
    reset_out(json_out);
    int st = check_id(c, "task", task_id);
    if (st != MESATEE_OK)
        return st;
    char path[96];
    snprintf(path, sizeof path, "/v1/tasks/%s/%s", task_id, verb);
    if (doc)
        return post_doc(c, path, doc, "assignment", NULL, NULL, json_out);
    /* no document: "{}" as it is (what post_doc would parse and dump again) */
    char *resp = NULL;
    st = call_json(c, "POST", path, "{}", &resp);
    if (json_out && (st == MESATEE_OK || c->http_status >= 400)) {
        *json_out = resp;
        resp = NULL;
    }
    mt_secmem_free(resp);
    return st;
}

MESATEE_API int mesatee_task_assign(mesatee_client *c, const char *task_id,
                                    const char *assign_json, char **json_out)
{
    if (c && !assign_json) {
        reset_out(json_out);
        return set_err(c, MESATEE_EINVAL, "assignment is NULL");
    }
    return task_verb(c, task_id, "assign", assign_json, json_out);
}

MESATEE_API int mesatee_task_approve(mesatee_client *c, const char *task_id, char **json_out)
{
    return task_verb(c, task_id, "approve", NULL, json_out);
}

MESATEE_API int mesatee_task_invoke(mesatee_client *c, const char *task_id, char **json_out)
{
    return task_verb(c, task_id, "invoke", NULL, json_out);
}

MESATEE_API int mesatee_task_cancel(mesatee_client *c, const char *task_id, char **json_out)
{
    return task_verb(c, task_id, "cancel", NULL, json_out);
}

MESATEE_API int mesatee_task_get(mesatee_client *c, const char *task_id, char **json_out)
{
    reset_out(json_out);
    int st = check_id(c, "task", task_id);
    if (st != MESATEE_OK)
        return st;
    char path[64];
    snprintf(path, sizeof path, "/v1/tasks/%s", task_id);
    return call_json(c, "GET", path, NULL, json_out);
}

/* GET /v1/tasks/{id}?wait=Ns: the server holds the answer until the task is
 * final or N seconds passed (an older server answers at once). */
static int task_get_wait(mesatee_client *c, const char *task_id, long wait_s, char **json_out)
{
    reset_out(json_out);
    char path[80];
    snprintf(path, sizeof path, "/v1/tasks/%s?wait=%lds", task_id, wait_s);
    return call_json(c, "GET", path, NULL, json_out);
}

/* The ?wait= of the next long poll of mesatee_task_wait: up to
 * CLIENT_LONG_POLL_S, within the wait's deadline (mt_mono_ms) and the
 * handle's own request timeout; 0 (a plain GET) when under a second is left. */
static long long_poll_s(const mesatee_client *c, int64_t deadline)
{
    int64_t left = deadline - mt_mono_ms();
    long wait_s = left / 1000 >= CLIENT_LONG_POLL_S ? CLIENT_LONG_POLL_S : (long)(left / 1000);
    if (c->timeout_s > 0 && wait_s > c->timeout_s - 2)
        wait_s = c->timeout_s - 2; /* within the handle's own request timeout */
    return wait_s < 1 ? 0 : wait_s;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* True when the failed poll looks like a server that is stopping, restarting
 * or briefly unreachable (connection refused, reset or timed out, 502-504),
 * not like a server that refuses us (TLS verification, attestation, 4xx). */
static bool wait_transient(const mesatee_client *c, int st)
{
    if (st == MESATEE_ESERVER)
        return c->http_status == 502 || c->http_status == 503 || c->http_status == 504;
    /* attested TLS: a connection cut before the certificate was judged (no
     * verdict, att_msg empty) is a stopping server, not a refusal */
    if (st == MESATEE_EATTEST && c->att_msg[0])
        return false;
    if (st != MESATEE_ENET && st != MESATEE_EATTEST)
        return false;
    switch ((CURLcode)c->curl_rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR: /* cut during the handshake by a stopping server */
        return true;
    default:
        return false;
    }
}

MESATEE_API /* The longest timeout mesatee_task_wait takes (about 68 years: its
 * deadline in ms plus the per-request margin stays far from overflow). */
#define CLIENT_WAIT_MAX_S 2147483647

int mesatee_task_wait(mesatee_client *c, const char *task_id, long timeout_s,
                                  char status_out[16], char **json_out)
{
    reset_out(json_out);
    if (status_out)
        status_out[0] = '\0';
    int st = check_id(c, "task", task_id);
    if (st != MESATEE_OK)
        return st;
    if (timeout_s < 0 || timeout_s > CLIENT_WAIT_MAX_S)
        return set_err(c, MESATEE_EINVAL,
                       "timeout must be 0 (none) to %d seconds", CLIENT_WAIT_MAX_S);
    int64_t started = mt_mono_ms();
    int64_t deadline = timeout_s ? started + (int64_t)timeout_s * 1000 : INT64_MAX;
    long delay = 100;
    bool seen = false;       /* the server answered once: it exists at this address */
    int64_t gone_since = -1; /* first failed poll of the current outage */
    int64_t gone_asked = -1; /* when that poll was sent: no answer since */
    /* this poll's ?wait= (0: a plain GET). The first poll is a long poll
     * already: the server answers it at once when the task is final, so a
     * plain GET first would only cost a request per wait (issue 13). */
    long wait_s = long_poll_s(c, deadline);
    for (;;) {
        char *resp = NULL;
        int64_t asked = mt_mono_ms();
        /* every request ends by the deadline (and a margin for the answer
         * to a hold that ends by it): a server that stopped answering or
         * trickles its answer cannot keep the wait past its timeout */
        c->req_deadline = timeout_s ? deadline + CLIENT_DEADLINE_MARGIN_MS : 0;
        st = wait_s ? task_get_wait(c, task_id, wait_s, &resp)
                    : mesatee_task_get(c, task_id, &resp);
        c->req_deadline = 0;
        if (st != MESATEE_OK) {
            free(resp);
            if (timeout_s && (CURLcode)c->curl_rc == CURLE_OPERATION_TIMEDOUT &&
                mt_mono_ms() >= deadline)
                return set_err(c, MESATEE_ETIMEOUT,
                               "no answer from the server about task %s within the %ld s "
                               "timeout",
                               task_id, timeout_s);
            if (wait_s && st == MESATEE_ESERVER && c->http_status == 503) {
                /* too many waiters held (or a stop): a plain GET next, at
                 * once after a first poll (as if it had been a plain GET) */
                wait_s = 0;
                if (seen) {
                    sleep_ms(delay);
                    delay = delay * 2 > 1000 ? 1000 : delay * 2;
                }
                continue;
            }
            bool transient = wait_transient(c, st);
            /* the first poll is a hold already: a server killed or restarted
             * during it (connection cut, 502/504 from a proxy) after the
             * request reached it has been seen at this address, as a quick
             * first poll answered before would have shown */
            if (transient && c->req_sent)
                seen = true;
            if (!seen || !transient)
                return st;
            /* the server went away (stopping, restarting): poll again until
             * the timeout, or MESATEE_WAIT_RECONNECT_S without one */
            int64_t now = mt_mono_ms();
            if (gone_since < 0) {
                gone_since = now;
                gone_asked = asked;
            }
            long window = c->wait_reconnect_s ? c->wait_reconnect_s
                          : timeout_s         ? 0
                                              : MESATEE_WAIT_RECONNECT_S;
            int64_t limit = deadline;
            if (window && gone_since + (int64_t)window * 1000 < limit)
                limit = gone_since + (int64_t)window * 1000;
            if (now + delay > limit) {
                char why[CLIENT_ERR_MAX];
                snprintf(why, sizeof why, "%s", c->errmsg);
                return set_err(c, MESATEE_ENET,
                               "the server went away while waiting for task %s and did not "
                               "come back: no answer for %lld s (%s)",
                               task_id, (long long)((now - gone_asked + 999) / 1000), why);
            }
            sleep_ms(delay);
            delay = delay * 2 > 2000 ? 2000 : delay * 2;
            /* the next hold ends by the deadline: not the length of the
             * poll that failed (taken when more time was left) */
            wait_s = long_poll_s(c, deadline);
            continue;
        }
        seen = true;
        gone_since = gone_asked = -1;
        json_t *root = json_loads(resp, 0, NULL);
        const char *status = json_string_value(json_object_get(root, "status"));
        const char *answer_id = json_string_value(json_object_get(root, "task_id"));
        if (!status) {
            json_decref(root);
            free(resp);
            return set_err(c, MESATEE_ESERVER, "task answer has no 'status' field");
        }
        if (!answer_id || strcmp(answer_id, task_id) != 0) {
            json_decref(root);
            free(resp);
            return set_err(c, MESATEE_ESERVER,
                           "the server answered the wait for task %s about another task "
                           "('task_id' differs or is missing): protocol error",
                           task_id);
        }
        bool final = strcmp(status, "finished") == 0 || strcmp(status, "failed") == 0 ||
                     strcmp(status, "canceled") == 0;
        if (status_out)
            snprintf(status_out, 16, "%s", status);
        char last[16];
        snprintf(last, sizeof last, "%s", status);
        json_decref(root);
        if (c->progress) {
            mesatee_progress p = {.task_status = last,
                                  .waited_s = (long)((mt_mono_ms() - started) / 1000)};
            c->progress(&p, c->progress_ud);
        }
        bool timed_out = !final && mt_mono_ms() + delay > deadline;
        if (final || timed_out) {
            if (json_out)
                *json_out = resp;
            else
                free(resp);
            if (timed_out)
                return set_err(c, MESATEE_ETIMEOUT,
                               "task %s is still '%s' after %ld s", task_id, last, timeout_s);
            return MESATEE_OK;
        }
        free(resp);
        /* Long poll (the server holds the answer, GET /v1/tasks/{id}?wait=):
         * an answer that came back early and not final is from a server
         * without it (or one stopping): poll with backoff as before. */
        bool early = wait_s && mt_mono_ms() - asked < wait_s * 500;
        wait_s = long_poll_s(c, deadline);
        if (early || !wait_s) {
            sleep_ms(delay);
            if (delay < 1000)
                delay = delay * 2 > 1000 ? 1000 : delay * 2;
        }
    }
}

MESATEE_API int mesatee_audit_list(mesatee_client *c, uint64_t after, unsigned limit,
                                   char **json_out)
{
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    char path[96];
    if (limit)
        snprintf(path, sizeof path, "/v1/audit?after=%llu&limit=%u", (unsigned long long)after,
                 limit);
    else
        snprintf(path, sizeof path, "/v1/audit?after=%llu", (unsigned long long)after);
    return call_json(c, "GET", path, NULL, json_out);
}

MESATEE_API int mesatee_audit_checkpoint(mesatee_client *c, int64_t entries, char **json_out)
{
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    char path[96];
    if (entries >= 0)
        snprintf(path, sizeof path, "/v1/audit/checkpoint?entries=%lld", (long long)entries);
    else
        snprintf(path, sizeof path, "/v1/audit/checkpoint");
    return call_json(c, "GET", path, NULL, json_out);
}

/* Paging (mesatee.h "Paging of the list routes"). */
#define CLIENT_LIST_MAX_ENTRIES 1000000
#define CLIENT_CURSOR_MAX 160

MESATEE_API int mesatee_list_page(mesatee_client *c, const char *path, unsigned limit,
                                  const char *cursor, char **json_out)
{
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!path || path[0] != '/' || strchr(path, '?') || strlen(path) > 200)
        return set_err(c, MESATEE_EINVAL, "list path must start with '/' and carry no query");
    if (limit > 1000)
        return set_err(c, MESATEE_EINVAL, "page limit %u is over 1000", limit);
    size_t cl = cursor ? strlen(cursor) : 0;
    if (cursor && (cl == 0 || cl > CLIENT_CURSOR_MAX || strspn(cursor, "0123456789abcdef") != cl))
        return set_err(c, MESATEE_EINVAL,
                       "not a cursor: pass the next_cursor of the previous page unchanged");
    char q[512];
    int n = snprintf(q, sizeof q, "%s%s", path, limit || cursor ? "?" : "");
    if (limit)
        n += snprintf(q + n, sizeof q - (size_t)n, "limit=%u%s", limit, cursor ? "&" : "");
    if (cursor)
        snprintf(q + n, sizeof q - (size_t)n, "cursor=%s", cursor);
    return call_json(c, "GET", q, NULL, json_out);
}

MESATEE_API int mesatee_list_all(mesatee_client *c, const char *path, const char *key,
                                 char **json_out)
{
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!key || !*key)
        return set_err(c, MESATEE_EINVAL, "list key is empty");
    json_t *all = json_array();
    if (!all)
        return set_err(c, MESATEE_ENOMEM, "out of memory");
    char cursor[CLIENT_CURSOR_MAX + 1] = "";
    int st = MESATEE_OK;
    for (;;) {
        char *page = NULL;
        st = mesatee_list_page(c, path, 1000, cursor[0] ? cursor : NULL, &page);
        if (st != MESATEE_OK) {
            if (json_out && page)
                *json_out = page; /* the error body, as mesatee_call gives it */
            else
                free(page);
            break;
        }
        json_t *doc = json_loads(page, 0, NULL);
        free(page);
        json_t *arr = json_object_get(doc, key);
        json_t *next = json_object_get(doc, "next_cursor");
        if (!json_is_array(arr) || !next || !(json_is_null(next) || json_is_string(next))) {
            json_decref(doc);
            st = set_err(c, MESATEE_ESERVER,
                         "list answer of %s has no '%s' array or no next_cursor", path, key);
            break;
        }
        if (json_array_size(all) + json_array_size(arr) > CLIENT_LIST_MAX_ENTRIES) {
            json_decref(doc);
            st = set_err(c, MESATEE_ESERVER,
                         "list %s has more than %d entries; page it with mesatee_list_page",
                         path, CLIENT_LIST_MAX_ENTRIES);
            break;
        }
        json_array_extend(all, arr);
        const char *nc = json_string_value(next);
        if (!nc) {
            json_decref(doc);
            break;
        }
        if (strlen(nc) > CLIENT_CURSOR_MAX || !strcmp(nc, cursor)) {
            json_decref(doc);
            st = set_err(c, MESATEE_ESERVER, "list %s: the server repeated a cursor", path);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", nc);
        json_decref(doc);
    }
    if (st == MESATEE_OK && json_out) {
        json_t *res = json_pack("{s:o, s:n}", key, all, "next_cursor");
        all = NULL;
        if (!res || !(*json_out = json_dumps(res, JSON_COMPACT)))
            st = set_err(c, MESATEE_ENOMEM, "out of memory");
        json_decref(res);
    }
    json_decref(all);
    return st;
}

/* ======================================================================== */
/* Keys and file encryption                                                  */

MESATEE_API int mesatee_key_generate(uint8_t key[32])
{
    clear_err(NULL);
    if (!key)
        return set_err(NULL, MESATEE_EINVAL, "key buffer is NULL");
    mt_err err;
    mt_status st = mt_random(key, 32, &err);
    if (st != MT_OK)
        return set_err(NULL, from_mt(st), "cannot generate a key: %s", err.msg);
    return MESATEE_OK;
}

MESATEE_API void mesatee_key_to_hex(const uint8_t key[32], char hex[65])
{
    if (key && hex)
        mt_hex_encode(key, 32, hex);
}

MESATEE_API int mesatee_key_from_hex(const char *hex, uint8_t key[32])
{
    clear_err(NULL);
    if (!hex || !key)
        return set_err(NULL, MESATEE_EINVAL, "key is NULL");
    mt_err err;
    if (mt_hex_decode(hex, key, 32, &err) != MT_OK) {
        mt_wipe(key, 32);
        return set_err(NULL, MESATEE_EINVAL, "a key is 64 hex characters: %s", err.msg);
    }
    return MESATEE_OK;
}

MESATEE_API int mesatee_key_write_file(const uint8_t key[32], const char *path)
{
    clear_err(NULL);
    if (!key || !path)
        return set_err(NULL, MESATEE_EINVAL, "key and path are required");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return set_err(NULL, MESATEE_ECONFLICT,
                           "key file %s exists already; not overwriting a key", path);
        return set_err(NULL, MESATEE_EIO, "cannot create key file %s: %s", path,
                       strerror(errno));
    }
    char line[66];
    mt_hex_encode(key, 32, line);
    line[64] = '\n';
    line[65] = '\0';
    int st = MESATEE_OK;
    /* fchmod: the umask may have removed bits but never adds any; be exact. */
    if (fchmod(fd, 0600) != 0 || write(fd, line, 65) != 65 || fsync(fd) != 0)
        st = set_err(NULL, MESATEE_EIO, "cannot write key file %s: %s", path, strerror(errno));
    mt_wipe(line, sizeof line);
    if (close(fd) != 0 && st == MESATEE_OK)
        st = set_err(NULL, MESATEE_EIO, "cannot write key file %s: %s", path, strerror(errno));
    if (st != MESATEE_OK)
        unlink(path);
    else
        mt_fsync_parent_dir(path, NULL);
    return st;
}

MESATEE_API int mesatee_key_read_file(const char *path, uint8_t key[32])
{
    clear_err(NULL);
    if (!key || !path)
        return set_err(NULL, MESATEE_EINVAL, "key and path are required");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return set_err(NULL, MESATEE_EIO, "cannot open key file %s: %s", path, strerror(errno));
    struct stat sb;
    char buf[CLIENT_KEY_FILE_MAX + 1];
    ssize_t n = 0;
    int st = MESATEE_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = set_err(NULL, MESATEE_EIO, "key file %s is not a regular file", path);
    } else if (sb.st_mode & 077) {
        st = set_err(NULL, MESATEE_EPERM,
                     "key file %s may be accessed by group or others (mode %04o); "
                     "run: chmod 600 %s",
                     path, (unsigned)(sb.st_mode & 07777), path);
    } else {
        size_t got = 0;
        while (got < sizeof buf - 1) {
            n = read(fd, buf + got, sizeof buf - 1 - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (n < 0) {
            st = set_err(NULL, MESATEE_EIO, "cannot read key file %s: %s", path,
                         strerror(errno));
        } else {
            buf[got] = '\0';
            if (got > 0 && buf[got - 1] == '\n')
                buf[--got] = '\0';
            if (got > 0 && buf[got - 1] == '\r')
                buf[--got] = '\0';
            mt_err err;
            if (got != 64)
                st = set_err(NULL, MESATEE_EINVAL,
                             "key file %s must hold exactly 64 hex characters (found %s%zu)",
                             path, got >= CLIENT_KEY_FILE_MAX ? "at least " : "", got);
            else if (mt_hex_decode(buf, key, 32, &err) != MT_OK)
                st = set_err(NULL, MESATEE_EINVAL, "key file %s: %s", path, err.msg);
        }
    }
    mt_wipe(buf, sizeof buf);
    close(fd);
    if (st != MESATEE_OK)
        mt_wipe(key, 32);
    return st;
}

MESATEE_API int mesatee_file_encrypt(const uint8_t key[32], const char *in_path,
                                     const char *out_path)
{
    clear_err(NULL);
    if (!key || !in_path || !out_path)
        return set_err(NULL, MESATEE_EINVAL, "key, input and output paths are required");
    mt_err err;
    mt_err_clear(&err);
    mt_status st = mt_ff_encrypt_file(key, in_path, out_path, &err);
    if (st != MT_OK)
        return set_err(NULL, from_mt(st), "%s", err.msg[0] ? err.msg : "encryption failed");
    return MESATEE_OK;
}

MESATEE_API int mesatee_file_decrypt_output(const uint8_t key[32], const char *in_path,
                                            const char *out_path, const char *task_id,
                                            const char *slot, const char *file_id,
                                            unsigned flags)
{
    clear_err(NULL);
    if (!key || !in_path || !out_path || !task_id || !slot || !file_id)
        return set_err(NULL, MESATEE_EINVAL,
                       "key, paths, task id, slot and file id are required");
    if (flags & ~MESATEE_ALLOW_UNBOUND)
        return set_err(NULL, MESATEE_EINVAL, "unknown flags 0x%x", flags & ~MESATEE_ALLOW_UNBOUND);
    mt_err err;
    mt_err_clear(&err);
    mt_ff_binding b;
    if (mt_ff_binding_make(task_id, slot, file_id, &b, &err) != MT_OK)
        return set_err(NULL, MESATEE_EINVAL, "%s", err.msg);
    mt_ff_header h;
    int st = read_ff_header(NULL, in_path, &h);
    if (st != MESATEE_OK)
        return st;
    /* An unbound file is accepted only when asked; a bound one must match
     * (the reader checks the header it authenticates, not this first read). */
    bool check = h.bound || !(flags & MESATEE_ALLOW_UNBOUND);
    mt_status ms = mt_ff_decrypt_file_bound(key, in_path, out_path, check ? &b : NULL, &err);
    if (ms != MT_OK)
        return set_err(NULL, from_mt(ms), "%s", err.msg[0] ? err.msg : "decryption failed");
    return MESATEE_OK;
}

MESATEE_API int mesatee_task_output_download(mesatee_client *c, const char *task_id,
                                             const char *slot, const char *file_id,
                                             const uint8_t key[32], const char *out_path,
                                             unsigned flags)
{
    int st = check_id(c, "task", task_id);
    if (st != MESATEE_OK)
        return st;
    if (!slot || !key || !out_path)
        return set_err(c, MESATEE_EINVAL, "slot, key and output path are required");
    if (flags & ~MESATEE_ALLOW_UNBOUND)
        return set_err(c, MESATEE_EINVAL, "unknown flags 0x%x", flags & ~MESATEE_ALLOW_UNBOUND);
    size_t n = strlen(out_path) + 48;
    char *tmp = malloc(n);
    if (!tmp)
        return set_err(c, MESATEE_ENOMEM, "out of memory");
    uint8_t rnd[6];
    char rhex[13];
    if (mt_random(rnd, sizeof rnd, NULL) != MT_OK) {
        free(tmp);
        return set_err(c, MESATEE_EIO, "no randomness for a temporary file name");
    }
    mt_hex_encode(rnd, sizeof rnd, rhex);
    snprintf(tmp, n, "%s.enc.%ld.%s", out_path, (long)getpid(), rhex);
    st = download(c, file_id, tmp, DOWNLOAD_NO_BINDING_CHECK);
    if (st == MESATEE_OK) {
        st = mesatee_file_decrypt_output(key, tmp, out_path, task_id, slot, file_id,
                                         flags & MESATEE_ALLOW_UNBOUND);
        if (st != MESATEE_OK)
            set_err(c, st, "%s", mesatee_client_errmsg(NULL));
    }
    unlink(tmp);
    free(tmp);
    return st;
}

MESATEE_API int mesatee_file_sha256(const char *path, char hex[65])
{
    clear_err(NULL);
    if (!path || !hex)
        return set_err(NULL, MESATEE_EINVAL, "path and output buffer are required");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return set_err(NULL, MESATEE_EIO, "cannot open %s: %s", path, strerror(errno));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(1 << 20), d[32];
    unsigned int dl = 0;
    bool good = md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    while (good) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            good = n == 0;
            break;
        }
        good = EVP_DigestUpdate(md, buf, (size_t)n) == 1;
    }
    good = good && EVP_DigestFinal_ex(md, d, &dl) == 1 && dl == 32;
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    if (!good)
        return set_err(NULL, MESATEE_EIO, "cannot hash %s", path);
    mt_hex_encode(d, 32, hex);
    return MESATEE_OK;
}

MESATEE_API int mesatee_file_decrypt(const uint8_t key[32], const char *in_path,
                                     const char *out_path)
{
    clear_err(NULL);
    if (!key || !in_path || !out_path)
        return set_err(NULL, MESATEE_EINVAL, "key, input and output paths are required");
    mt_err err;
    mt_err_clear(&err);
    mt_status st = mt_ff_decrypt_file(key, in_path, out_path, &err);
    if (st != MT_OK)
        return set_err(NULL, from_mt(st), "%s", err.msg[0] ? err.msg : "decryption failed");
    return MESATEE_OK;
}

/* ======================================================================== */
/* User lifecycle and built-in schemas (issue 9)                            */

/* A user name as the server accepts it ([a-z0-9_.-]{1,64}): it goes into
 * the path unescaped. */
static int check_username(mesatee_client *c, const char *name)
{
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    size_t n = name ? strlen(name) : 0;
    bool ok = n >= 1 && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
             name[i] == '_' || name[i] == '.' || name[i] == '-';
    if (!ok)
        return set_err(c, MESATEE_EINVAL, "invalid user name (use 1 to 64 of [a-z0-9_.-])");
    return MESATEE_OK;
}

static int user_call(mesatee_client *c, const char *method, const char *name, const char *verb,
                     char **json_out)
{
    reset_out(json_out);
    int st = check_username(c, name);
    if (st != MESATEE_OK)
        return st;
    char path[128];
    snprintf(path, sizeof path, "/v1/users/%s%s%s", name, verb ? "/" : "", verb ? verb : "");
    return call_json(c, method, path, strcmp(method, "GET") ? "{}" : NULL, json_out);
}

MESATEE_API int mesatee_whoami(mesatee_client *c, char **json_out)
{
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    return call_json(c, "GET", "/v1/users/me", NULL, json_out);
}

MESATEE_API int mesatee_user_show(mesatee_client *c, const char *username, char **json_out)
{
    return user_call(c, "GET", username, NULL, json_out);
}

MESATEE_API int mesatee_user_disable(mesatee_client *c, const char *username, char **json_out)
{
    return user_call(c, "POST", username, "disable", json_out);
}

MESATEE_API int mesatee_user_enable(mesatee_client *c, const char *username, char **json_out)
{
    return user_call(c, "POST", username, "enable", json_out);
}

MESATEE_API int mesatee_user_delete(mesatee_client *c, const char *username, char **json_out)
{
    reset_out(json_out);
    int st = check_username(c, username);
    if (st != MESATEE_OK)
        return st;
    char path[96];
    snprintf(path, sizeof path, "/v1/users/%s", username);
    return call_json(c, "DELETE", path, NULL, json_out);
}

MESATEE_API int mesatee_user_change_password(mesatee_client *c, const char *old_password,
                                             const char *new_password, char **json_out)
{
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    if (!old_password || !new_password)
        return set_err(c, MESATEE_EINVAL, "the old and the new password are required");
    json_t *req = json_pack("{s:s, s:s}", "old_password", old_password, "new_password",
                            new_password);
    if (!req)
        return set_err(c, MESATEE_EINVAL, "passwords must be UTF-8");
    return post_pick(c, "/v1/users/me/password", req, NULL, NULL, json_out);
}

MESATEE_API int mesatee_user_reset_password(mesatee_client *c, const char *username,
                                            const char *new_password, char **json_out)
{
    reset_out(json_out);
    int st = check_username(c, username);
    if (st != MESATEE_OK)
        return st;
    if (!new_password)
        return set_err(c, MESATEE_EINVAL, "the new password is required");
    json_t *req = json_pack("{s:s}", "password", new_password);
    if (!req)
        return set_err(c, MESATEE_EINVAL, "the password must be UTF-8");
    char path[128];
    snprintf(path, sizeof path, "/v1/users/%s/password", username);
    return post_pick(c, path, req, NULL, NULL, json_out);
}

MESATEE_API int mesatee_builtins(mesatee_client *c, char **json_out)
{
    reset_out(json_out);
    if (!c)
        return set_err(NULL, MESATEE_EINVAL, "client handle is NULL");
    return call_json(c, "GET", "/v1/builtins", NULL, json_out);
}

/* ======================================================================== */
/* Internal to libmesatee (client_internal.h)                                */

int mt_client_set_err(mesatee_client *c, int st, const char *msg)
{
    return set_err(c, st, "%s", msg);
}

int mt_client_set_errf(mesatee_client *c, int st, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return set_err(c, st, "%s", msg);
}
