/* untrusted_spool: see untrusted_spool.h. File layout (docs/formats.md
 * "Audit spool file"), all integers big-endian:
 *   header  "MTASPOOL" | u32 version (1) | id[16] | hmac[32]
 *           hmac = HMAC(k, "mesatee-audit-spool-header/v1" NUL | magic | version | id)
 *   record  u32 L | body[L] | mac[32]
 *           body = i64 time | i32 status | u8 la | actor[la] | u8 lb | action[lb]
 *                  | u8 lc | object[lc]          (L = 15 + la + lb + lc exactly)
 *           mac  = HMAC(k, "mesatee-audit-spool/v1" NUL | id | u64 index | prev[32]
 *                          | u32 L | body)
 *   prev is the previous record's mac (the header's hmac for index 0);
 *   k = HMAC(audit_key, "mesatee-audit-spool-key/v1"). */
#include "untrusted_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mt_util.h"

#define DOM_KEY "mesatee-audit-spool-key/v1"
#define DOM_HDR "mesatee-audit-spool-header/v1"
#define DOM_REC "mesatee-audit-spool/v1"
#define REC_MAX (MT_SPOOL_REC_OVERHEAD + MT_SPOOL_BODY_MAX)

struct mt_spool {
    char *path;
    uint8_t key[32];
    uint64_t cap;
    bool known;   /* the file's state below was loaded or written by us */
    bool exists;  /* a file with a header is there */
    uint8_t id[16];
    uint8_t last_mac[32];
    uint64_t records;
    uint64_t bytes;
};

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

void mt_spool_key(const uint8_t audit_key[32], uint8_t out[32])
{
    unsigned int ol = 32;
    if (!HMAC(EVP_sha256(), audit_key, 32, (const uint8_t *)DOM_KEY, sizeof DOM_KEY - 1, out, &ol))
        abort(); /* HMAC-SHA256 over a constant cannot fail short of a broken library */
}

static bool hmac_parts(const uint8_t key[32], const uint8_t *a, size_t al, const uint8_t *b,
                       size_t bl, uint8_t out[32])
{
    bool ok = false;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t ol = 0;
    if (ctx && EVP_MAC_init(ctx, key, 32, params) == 1 && EVP_MAC_update(ctx, a, al) == 1 &&
        (bl == 0 || EVP_MAC_update(ctx, b, bl) == 1) && EVP_MAC_final(ctx, out, &ol, 32) == 1 &&
        ol == 32)
        ok = true;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok;
}

static bool header_mac(const uint8_t key[32], const uint8_t hdr28[28], uint8_t out[32])
{
    uint8_t m[sizeof DOM_HDR + 28];
    memcpy(m, DOM_HDR, sizeof DOM_HDR); /* with its NUL */
    memcpy(m + sizeof DOM_HDR, hdr28, 28);
    return hmac_parts(key, m, sizeof m, NULL, 0, out);
}

/* rec points at u32 L | body (4 + L bytes). */
static bool record_mac(const uint8_t key[32], const uint8_t id[16], uint64_t index,
                       const uint8_t prev[32], const uint8_t *rec, size_t rec_len, uint8_t out[32])
{
    uint8_t m[sizeof DOM_REC + 16 + 8 + 32];
    memcpy(m, DOM_REC, sizeof DOM_REC);
    memcpy(m + sizeof DOM_REC, id, 16);
    put64(m + sizeof DOM_REC + 16, index);
    memcpy(m + sizeof DOM_REC + 24, prev, 32);
    return hmac_parts(key, m, sizeof m, rec, rec_len, out);
}

static size_t cut(const char *s, size_t max)
{
    size_t n = 0;
    while (s && s[n] && n < max)
        n++;
    return n;
}

/* Encodes one record (u32 L | body) into out (REC_MAX bytes at least);
 * returns its length without the MAC. */
static size_t encode_body(const mt_spool_rec *r, uint8_t *out)
{
    size_t la = cut(r->actor, MT_SPOOL_ACTOR_MAX), lb = cut(r->action, MT_SPOOL_ACTION_MAX),
           lc = cut(r->object, MT_SPOOL_OBJECT_MAX);
    size_t L = MT_SPOOL_BODY_MIN + la + lb + lc;
    uint8_t *p = out;
    put32(p, (uint32_t)L);
    p += 4;
    put64(p, (uint64_t)r->time);
    p += 8;
    put32(p, (uint32_t)r->status);
    p += 4;
    *p++ = (uint8_t)la;
    memcpy(p, r->actor, la);
    p += la;
    *p++ = (uint8_t)lb;
    memcpy(p, r->action, lb);
    p += lb;
    *p++ = (uint8_t)lc;
    memcpy(p, r->object, lc);
    p += lc;
    return (size_t)(p - out);
}

static mt_status damaged(mt_err *err, const char *what)
{
    return mt_err_set(err, MT_ECRYPTO, "audit spool damaged: %s", what);
}

/* One length-prefixed string of at most max bytes, no NUL inside. */
static bool take_str(const uint8_t **p, const uint8_t *end, size_t max, char *out)
{
    if (*p >= end)
        return false;
    size_t l = **p;
    (*p)++;
    if (l > max || (size_t)(end - *p) < l || memchr(*p, 0, l))
        return false;
    memcpy(out, *p, l);
    out[l] = '\0';
    *p += l;
    return true;
}

mt_status mt_spool_parse(const uint8_t *buf, size_t len, const uint8_t spool_key[32],
                         mt_spool_rec **recs, size_t *n, uint8_t id[16], uint8_t last_mac[32],
                         mt_err *err)
{
    *recs = NULL;
    *n = 0;
    if (len < MT_SPOOL_HEADER_LEN)
        return damaged(err, "shorter than its header (truncated)");
    if (memcmp(buf, MT_SPOOL_MAGIC, 8))
        return damaged(err, "not an audit spool (bad magic)");
    if (get32(buf + 8) != MT_SPOOL_VERSION)
        return damaged(err, "unknown version");
    uint8_t prev[32];
    if (!header_mac(spool_key, buf, prev))
        return mt_err_set(err, MT_EINTERNAL, "HMAC failed");
    if (CRYPTO_memcmp(prev, buf + 28, 32))
        return damaged(err, "header MAC does not match (written under another key, or edited)");
    size_t cap = 0, cnt = 0;
    mt_spool_rec *out = NULL;
    size_t off = MT_SPOOL_HEADER_LEN;
    mt_status rc = MT_OK;
    while (off < len) {
        size_t left = len - off;
        if (left < 4) {
            rc = damaged(err, "a record is cut short (truncated)");
            break;
        }
        uint32_t L = get32(buf + off);
        if (L < MT_SPOOL_BODY_MIN || L > MT_SPOOL_BODY_MAX) {
            rc = damaged(err, "a record has an impossible length");
            break;
        }
        if (left - 4 < (size_t)L + 32) {
            rc = damaged(err, "a record is cut short (truncated)");
            break;
        }
        uint8_t mac[32];
        if (!record_mac(spool_key, buf + 12, (uint64_t)cnt, prev, buf + off, 4 + (size_t)L, mac)) {
            rc = mt_err_set(err, MT_EINTERNAL, "HMAC failed");
            break;
        }
        if (CRYPTO_memcmp(mac, buf + off + 4 + L, 32)) {
            rc = damaged(err, "a record's MAC does not match (edited, reordered or removed)");
            break;
        }
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            mt_spool_rec *nr = realloc(out, nc * sizeof *nr);
            if (!nr) {
                rc = mt_err_set(err, MT_ENOMEM, "out of memory");
                break;
            }
            out = nr;
            cap = nc;
        }
        mt_spool_rec *r = &out[cnt];
        memset(r, 0, sizeof *r);
        const uint8_t *p = buf + off + 4, *end = p + L;
        r->time = (int64_t)get64(p);
        r->status = (int32_t)get32(p + 8);
        p += 12;
        if (!take_str(&p, end, MT_SPOOL_ACTOR_MAX, r->actor) ||
            !take_str(&p, end, MT_SPOOL_ACTION_MAX, r->action) ||
            !take_str(&p, end, MT_SPOOL_OBJECT_MAX, r->object) || p != end) {
            /* authenticated, yet malformed: only our key could have made it */
            rc = damaged(err, "a record's fields do not fit its length");
            break;
        }
        memcpy(prev, mac, 32);
        cnt++;
        off += 4 + (size_t)L + 32;
    }
    if (rc) {
        free(out);
        return rc;
    }
    if (id)
        memcpy(id, buf + 12, 16);
    if (last_mac)
        memcpy(last_mac, prev, 32);
    *recs = out;
    *n = cnt;
    return MT_OK;
}

mt_status mt_spool_image(const uint8_t spool_key[32], const uint8_t id[16],
                         const mt_spool_rec *recs, size_t n, uint8_t **out, size_t *len,
                         mt_err *err)
{
    *out = NULL;
    *len = 0;
    if (n > (SIZE_MAX - MT_SPOOL_HEADER_LEN) / REC_MAX)
        return mt_err_set(err, MT_ETOOBIG, "too many records");
    uint8_t *b = malloc(MT_SPOOL_HEADER_LEN + n * REC_MAX);
    if (!b)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    memcpy(b, MT_SPOOL_MAGIC, 8);
    put32(b + 8, MT_SPOOL_VERSION);
    memcpy(b + 12, id, 16);
    uint8_t prev[32];
    if (!header_mac(spool_key, b, prev)) {
        free(b);
        return mt_err_set(err, MT_EINTERNAL, "HMAC failed");
    }
    memcpy(b + 28, prev, 32);
    size_t off = MT_SPOOL_HEADER_LEN;
    for (size_t i = 0; i < n; i++) {
        size_t rl = encode_body(&recs[i], b + off);
        if (!record_mac(spool_key, id, (uint64_t)i, prev, b + off, rl, b + off + rl)) {
            free(b);
            return mt_err_set(err, MT_EINTERNAL, "HMAC failed");
        }
        memcpy(prev, b + off + rl, 32);
        off += rl + 32;
    }
    *out = b;
    *len = off;
    return MT_OK;
}

mt_status mt_spool_open(const char *path, const uint8_t audit_key[32], uint64_t cap_bytes,
                        mt_spool **out, mt_err *err)
{
    *out = NULL;
    if (cap_bytes < MT_SPOOL_HEADER_LEN + REC_MAX)
        return mt_err_set(err, MT_EINVAL, "the audit spool cap must be at least %u bytes",
                          (unsigned)(MT_SPOOL_HEADER_LEN + REC_MAX));
    mt_spool *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    mt_spool_key(audit_key, s->key);
    s->cap = cap_bytes;
    *out = s;
    return MT_OK;
}

void mt_spool_free(mt_spool *s)
{
    if (!s)
        return;
    mt_wipe(s->key, sizeof s->key);
    free(s->path);
    free(s);
}

uint64_t mt_spool_records(const mt_spool *s)
{
    return s ? s->records : 0;
}

uint64_t mt_spool_bytes(const mt_spool *s)
{
    return s ? s->bytes : 0;
}

uint64_t mt_spool_cap(const mt_spool *s)
{
    return s ? s->cap : 0;
}

/* Reads the whole file (at most cap + one record: a longer one is refused
 * before it is read). *absent when there is none. */
static mt_status read_file(const mt_spool *s, uint8_t **buf, size_t *len, bool *absent,
                           mt_err *err)
{
    *buf = NULL;
    *len = 0;
    *absent = false;
    int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            *absent = true;
            return MT_OK;
        }
        return mt_err_set(err, MT_EIO, "cannot open the audit spool %s: %s", s->path,
                          strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return damaged(err, "not a regular file");
    }
    if ((uint64_t)st.st_size > s->cap + REC_MAX) {
        close(fd);
        return damaged(err, "larger than the spool cap allows");
    }
    size_t n = (size_t)st.st_size;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(b);
        return mt_err_set(err, MT_EIO, "cannot read the audit spool %s", s->path);
    }
    *buf = b;
    *len = n;
    return MT_OK;
}

mt_status mt_spool_load(mt_spool *s, mt_spool_rec **recs, size_t *n, mt_err *err)
{
    *recs = NULL;
    *n = 0;
    uint8_t *buf;
    size_t len;
    bool absent;
    mt_status rc = read_file(s, &buf, &len, &absent, err);
    if (rc)
        return rc;
    if (absent) {
        if (s->known && s->exists)
            return damaged(err, "the file was removed (records missing)");
        s->known = true;
        s->exists = false;
        s->records = s->bytes = 0;
        return MT_OK;
    }
    uint8_t id[16], last[32];
    rc = mt_spool_parse(buf, len, s->key, recs, n, id, last, err);
    free(buf);
    if (rc)
        return rc;
    if (s->known) {
        /* everything this process wrote must still be there, unchanged
         * (the id and chained MACs pin it; a longer file would need our key) */
        bool same = s->exists && !memcmp(id, s->id, 16) && *n == s->records &&
                    !CRYPTO_memcmp(last, s->last_mac, 32) && len == s->bytes;
        if (!same) {
            bool shorter = s->exists && *n < s->records;
            free(*recs);
            *recs = NULL;
            *n = 0;
            return damaged(err, shorter ? "records this daemon wrote are missing (truncated)"
                                        : "it differs from what this daemon wrote (records "
                                          "missing or replaced)");
        }
    }
    s->known = true;
    s->exists = true;
    memcpy(s->id, id, 16);
    memcpy(s->last_mac, last, 32);
    s->records = *n;
    s->bytes = len;
    return MT_OK;
}

static mt_status write_all(int fd, const uint8_t *b, size_t n, const char *path, mt_err *err)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, b + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return mt_err_set(err, MT_EIO, "cannot write the audit spool %s: %s", path,
                              w < 0 ? strerror(errno) : "short write");
        off += (size_t)w;
    }
    return MT_OK;
}

mt_status mt_spool_append(mt_spool *s, const mt_spool_rec *recs, size_t n, mt_err *err)
{
    if (n == 0)
        return MT_OK;
    if (!s->known)
        return mt_err_set(err, MT_EINTERNAL, "audit spool: append before load");
    size_t hdr = s->exists ? 0 : MT_SPOOL_HEADER_LEN;
    if (n > (SIZE_MAX - hdr) / REC_MAX)
        return mt_err_set(err, MT_ETOOBIG, "the audit spool is full");
    uint8_t *b = malloc(hdr + n * REC_MAX);
    if (!b)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    uint8_t id[16], prev[32];
    size_t off = 0;
    if (!s->exists) {
        mt_status rc = mt_random(id, sizeof id, err);
        if (rc) {
            free(b);
            return rc;
        }
        memcpy(b, MT_SPOOL_MAGIC, 8);
        put32(b + 8, MT_SPOOL_VERSION);
        memcpy(b + 12, id, 16);
        if (!header_mac(s->key, b, prev)) {
            free(b);
            return mt_err_set(err, MT_EINTERNAL, "HMAC failed");
        }
        memcpy(b + 28, prev, 32);
        off = MT_SPOOL_HEADER_LEN;
    } else {
        memcpy(id, s->id, 16);
        memcpy(prev, s->last_mac, 32);
    }
    for (size_t i = 0; i < n; i++) {
        size_t rl = encode_body(&recs[i], b + off);
        if (!record_mac(s->key, id, s->records + i, prev, b + off, rl, b + off + rl)) {
            free(b);
            return mt_err_set(err, MT_EINTERNAL, "HMAC failed");
        }
        memcpy(prev, b + off + rl, 32);
        off += rl + 32;
    }
    uint64_t base = s->exists ? s->bytes : 0;
    if (base + off > s->cap) {
        free(b);
        return mt_err_set(err, MT_ETOOBIG,
                          "the audit spool is full (%llu of %llu bytes; serve "
                          "--audit-spool-max-kib)",
                          (unsigned long long)base, (unsigned long long)s->cap);
    }
    int flags = O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (s->exists ? O_APPEND : O_CREAT | O_EXCL);
    int fd = open(s->path, flags, 0600);
    if (fd < 0) {
        free(b);
        return mt_err_set(err, MT_EIO, "cannot open the audit spool %s: %s", s->path,
                          strerror(errno));
    }
    mt_status rc = write_all(fd, b, off, s->path, err);
    if (!rc && fsync(fd))
        rc = mt_err_set(err, MT_EIO, "cannot fsync the audit spool %s: %s", s->path,
                        strerror(errno));
    if (rc) {
        /* all or nothing: cut what was written (the cut is what the next
         * load sees; a crash before it leaves a cut record, refused) */
        if (s->exists) {
            if (ftruncate(fd, (off_t)base) == 0)
                (void)fsync(fd);
        } else {
            (void)unlink(s->path);
        }
        close(fd);
        free(b);
        return rc;
    }
    close(fd);
    free(b);
    if (!s->exists) {
        if ((rc = mt_fsync_parent_dir(s->path, err))) {
            (void)unlink(s->path);
            return rc;
        }
        memcpy(s->id, id, 16);
        s->exists = true;
    }
    memcpy(s->last_mac, prev, 32);
    s->records += n;
    s->bytes = base + off;
    return MT_OK;
}

mt_status mt_spool_reset(mt_spool *s, const mt_spool_rec *recs, size_t n, mt_err *err)
{
    mt_status rc;
    if (n == 0) {
        if (unlink(s->path) && errno != ENOENT)
            return mt_err_set(err, MT_EIO, "cannot remove the audit spool %s: %s", s->path,
                              strerror(errno));
        if ((rc = mt_fsync_parent_dir(s->path, err)))
            return rc;
        s->known = true;
        s->exists = false;
        s->records = s->bytes = 0;
        return MT_OK;
    }
    uint8_t id[16], *img;
    size_t len;
    if ((rc = mt_random(id, sizeof id, err)) ||
        (rc = mt_spool_image(s->key, id, recs, n, &img, &len, err)))
        return rc;
    rc = mt_file_write_atomic(s->path, img, len, 0600, err);
    if (!rc) {
        /* the last MAC is the image's tail */
        memcpy(s->last_mac, img + len - 32, 32);
        memcpy(s->id, id, 16);
        s->known = true;
        s->exists = true;
        s->records = n;
        s->bytes = len;
    }
    free(img);
    return rc;
}

mt_status mt_spool_quarantine(mt_spool *s, char *moved, size_t cap, mt_err *err)
{
    char to[4096];
    int k = snprintf(to, sizeof to, "%s.refused-%lld", s->path, (long long)mt_now());
    if (k < 0 || (size_t)k >= sizeof to)
        return mt_err_set(err, MT_EINVAL, "audit spool path too long");
    if (rename(s->path, to) && errno != ENOENT)
        return mt_err_set(err, MT_EIO, "cannot move the refused audit spool %s aside: %s",
                          s->path, strerror(errno));
    mt_status rc = mt_fsync_parent_dir(s->path, err);
    if (moved && cap)
        snprintf(moved, cap, "%s", to);
    s->known = true;
    s->exists = false;
    s->records = s->bytes = 0;
    return rc;
}
