/* backup_archive: writer and bounds-checked reader of the backup archive
 * format "mesatee-backup/v1"; see mt_backup.h and docs/formats.md. */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mt_backup.h"
#include "mt_util.h"

#define CHUNK (64u * 1024u)

bool mt_backup_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > MT_BACKUP_NAME_MAX)
        return false;
    size_t comp = 0; /* length of the current component */
    for (size_t i = 0; i <= len; i++) {
        char ch = i < len ? name[i] : '/';
        if (ch == '/') {
            if (comp == 0)
                return false; /* empty component: leading, trailing or "//" */
            const char *c = name + i - comp;
            if ((comp == 1 && c[0] == '.') || (comp == 2 && c[0] == '.' && c[1] == '.'))
                return false;
            comp = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
        comp++;
    }
    return true;
}

static bool level_valid(const char *s, size_t n)
{
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* ======================================================================== */
/* Writer                                                                    */

typedef struct wentry {
    char *name;
    uint32_t mode;
    uint64_t size;
    uint8_t sha[32];
} wentry;

struct mt_backup_writer {
    int fd;
    EVP_MD_CTX *all; /* hash of every byte written */
    wentry *e;
    size_t n, cap;
    uint8_t *buf;
    bool failed;
};

static mt_status w_write(mt_backup_writer *w, const void *data, size_t len, mt_err *err)
{
    const uint8_t *p = data;
    if (EVP_DigestUpdate(w->all, p, len) != 1)
        return mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
    while (len) {
        ssize_t k = write(w->fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return mt_err_set(err, MT_EIO, "writing the backup failed: %s",
                              k < 0 ? strerror(errno) : "no progress");
        p += k;
        len -= (size_t)k;
    }
    return MT_OK;
}

mt_status mt_backup_writer_new(int fd, const char *level, int64_t created,
                               mt_backup_writer **out, mt_err *err)
{
    *out = NULL;
    size_t ll = level ? strlen(level) : 0;
    if (!level_valid(level ? level : "", ll))
        return mt_err_set(err, MT_EINVAL, "backup: bad level name");
    mt_backup_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->all = EVP_MD_CTX_new()) || !(w->buf = malloc(CHUNK)) ||
        EVP_DigestInit_ex(w->all, EVP_sha256(), NULL) != 1) {
        mt_backup_writer_free(w);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    w->fd = fd;
    uint8_t h[8 + 4 + 8 + 1 + 15];
    memcpy(h, MT_BACKUP_MAGIC, 8);
    put_u32(h + 8, MT_BACKUP_VERSION);
    put_u64(h + 12, (uint64_t)(created < 0 ? 0 : created));
    h[20] = (uint8_t)ll;
    memcpy(h + 21, level, ll);
    mt_status rc = w_write(w, h, 21 + ll, err);
    if (rc) {
        mt_backup_writer_free(w);
        return rc;
    }
    *out = w;
    return MT_OK;
}

mt_status mt_backup_writer_add_fd(mt_backup_writer *w, const char *name, uint32_t mode,
                                  int in_fd, uint64_t size, mt_err *err)
{
    size_t nl = strlen(name);
    if (w->failed)
        return mt_err_set(err, MT_EINTERNAL, "backup writer already failed");
    if (!mt_backup_name_valid(name, nl))
        return mt_err_set(err, MT_EINVAL, "backup: cannot store file name '%.80s'", name);
    if (w->n && strcmp(w->e[w->n - 1].name, name) >= 0)
        return mt_err_set(err, MT_EINTERNAL, "backup: entries out of order");
    if (w->n >= MT_BACKUP_MAX_ENTRIES || size > MT_BACKUP_MAX_SIZE)
        return mt_err_set(err, MT_ETOOBIG, "backup: too many files or a file too large");
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 64;
        wentry *ne = realloc(w->e, nc * sizeof *ne);
        if (!ne)
            return mt_err_set(err, MT_ENOMEM, "out of memory");
        w->e = ne;
        w->cap = nc;
    }
    wentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    w->n++;
    e->mode = mode & 0777;
    e->size = size;
    w->failed = true; /* until the entry is complete */
    uint8_t h[1 + 2 + MT_BACKUP_NAME_MAX + 4 + 8];
    h[0] = 'F';
    put_u16(h + 1, (uint16_t)nl);
    memcpy(h + 3, name, nl);
    put_u32(h + 3 + nl, e->mode);
    put_u64(h + 7 + nl, size);
    mt_status rc = w_write(w, h, 15 + nl, err);
    if (rc)
        return rc;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    uint64_t left = size;
    while (!rc && left) {
        size_t want = left < CHUNK ? (size_t)left : CHUNK;
        ssize_t k = read(in_fd, w->buf, want);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            rc = mt_err_set(err, MT_EIO, "reading %.80s failed: %s", name, strerror(errno));
        else if (k == 0)
            rc = mt_err_set(err, MT_EIO, "%.80s shrank while it was copied", name);
        else if (EVP_DigestUpdate(md, w->buf, (size_t)k) != 1)
            rc = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
        else {
            rc = w_write(w, w->buf, (size_t)k, err);
            left -= (uint64_t)k;
        }
    }
    unsigned int dl = 0;
    if (!rc && (EVP_DigestFinal_ex(md, e->sha, &dl) != 1 || dl != 32))
        rc = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
    EVP_MD_CTX_free(md);
    if (!rc)
        w->failed = false;
    return rc;
}

mt_status mt_backup_writer_finish(mt_backup_writer *w, mt_err *err)
{
    if (w->failed)
        return mt_err_set(err, MT_EINTERNAL, "backup writer already failed");
    w->failed = true;
    uint8_t h[1 + 4 + 2 + MT_BACKUP_NAME_MAX + 4 + 8 + 32];
    h[0] = 'M';
    put_u32(h + 1, (uint32_t)w->n);
    mt_status rc = w_write(w, h, 5, err);
    for (size_t i = 0; !rc && i < w->n; i++) {
        size_t nl = strlen(w->e[i].name);
        put_u16(h, (uint16_t)nl);
        memcpy(h + 2, w->e[i].name, nl);
        put_u32(h + 2 + nl, w->e[i].mode);
        put_u64(h + 6 + nl, w->e[i].size);
        memcpy(h + 14 + nl, w->e[i].sha, 32);
        rc = w_write(w, h, 46 + nl, err);
    }
    if (rc)
        return rc;
    uint8_t all[32];
    unsigned int dl = 0;
    if (EVP_DigestFinal_ex(w->all, all, &dl) != 1 || dl != 32)
        return mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
    for (const uint8_t *p = all; p < all + 32;) {
        ssize_t k = write(w->fd, p, (size_t)(all + 32 - p));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return mt_err_set(err, MT_EIO, "writing the backup failed: %s",
                              k < 0 ? strerror(errno) : "no progress");
        p += k;
    }
    w->failed = false;
    return MT_OK;
}

void mt_backup_writer_free(mt_backup_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->e[i].name);
    free(w->e);
    free(w->buf);
    EVP_MD_CTX_free(w->all);
    free(w);
}

/* ======================================================================== */
/* Reader                                                                    */

typedef struct rstate {
    mt_backup_read_fn rd;
    void *rd_ctx;
    EVP_MD_CTX *all;
    uint64_t off; /* bytes consumed so far */
    bool hashing; /* false once the final hash is being read */
    mt_err *err;
} rstate;

/* Reads exactly n bytes (or fails naming what was expected). */
static mt_status r_exact(rstate *r, void *buf, size_t n, const char *what)
{
    uint8_t *p = buf;
    size_t have = 0;
    while (have < n) {
        size_t got = 0;
        mt_status rc = r->rd(r->rd_ctx, p + have, n - have, &got, r->err);
        if (rc)
            return rc;
        if (got == 0)
            return mt_err_set(r->err, MT_EINVAL,
                              "backup archive truncated at byte %llu (reading %s)",
                              (unsigned long long)(r->off + have), what);
        if (got > n - have)
            return mt_err_set(r->err, MT_EINTERNAL, "backup: read function overran");
        have += got;
    }
    if (r->hashing && EVP_DigestUpdate(r->all, p, n) != 1)
        return mt_err_set(r->err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
    r->off += n;
    return MT_OK;
}

typedef struct rentry {
    char name[MT_BACKUP_NAME_MAX + 1];
    uint32_t mode;
    uint64_t size;
    uint8_t sha[32];
} rentry;

static mt_status bad(rstate *r, const char *what)
{
    return mt_err_set(r->err, MT_EINVAL, "not a valid mesatee backup: %s (at byte %llu)", what,
                      (unsigned long long)r->off);
}

/* Reads u16 name_len + name, u32 mode, u64 size into e (validated). */
static mt_status r_head(rstate *r, rentry *e)
{
    uint8_t b[4 + 8];
    mt_status rc = r_exact(r, b, 2, "a name length");
    if (rc)
        return rc;
    size_t nl = (size_t)get_be(b, 2);
    if (nl == 0 || nl > MT_BACKUP_NAME_MAX)
        return bad(r, "file name length out of range");
    if ((rc = r_exact(r, e->name, nl, "a file name")))
        return rc;
    e->name[nl] = '\0';
    if (!mt_backup_name_valid(e->name, nl))
        return bad(r, "invalid file name");
    if ((rc = r_exact(r, b, 12, "a file's mode and size")))
        return rc;
    e->mode = (uint32_t)get_be(b, 4);
    e->size = get_be(b + 4, 8);
    if (e->mode > 0777)
        return bad(r, "file mode out of range");
    if (e->size > MT_BACKUP_MAX_SIZE)
        return bad(r, "file size out of range");
    return MT_OK;
}

mt_status mt_backup_read(mt_backup_read_fn rd, void *rd_ctx, mt_backup_sink sink,
                         void *sink_ctx, mt_backup_info *info, mt_err *err)
{
    mt_backup_info inf;
    memset(&inf, 0, sizeof inf);
    rstate r = {.rd = rd, .rd_ctx = rd_ctx, .hashing = true, .err = err};
    rentry *ents = NULL, cur;
    size_t n = 0, cap = 0;
    uint8_t *buf = malloc(CHUNK);
    EVP_MD_CTX *fmd = EVP_MD_CTX_new();
    mt_status rc = MT_OK;
    if (!buf || !fmd || !(r.all = EVP_MD_CTX_new()) ||
        EVP_DigestInit_ex(r.all, EVP_sha256(), NULL) != 1) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    uint8_t h[21 + 15];
    size_t mgot = 0;
    if ((rc = rd(rd_ctx, h, 8, &mgot, err)))
        goto out;
    while (mgot < 8) { /* a short read is not yet the end */
        size_t k = 0;
        if ((rc = rd(rd_ctx, h + mgot, 8 - mgot, &k, err)))
            goto out;
        if (k == 0 || k > 8 - mgot)
            break;
        mgot += k;
    }
    if (mgot < 8 || memcmp(h, MT_BACKUP_MAGIC, 8)) {
        rc = mt_err_set(err, MT_EINVAL, "not a mesatee backup (no MTBACKUP header)");
        goto out;
    }
    EVP_DigestUpdate(r.all, h, 8);
    r.off = 8;
    if ((rc = r_exact(&r, h + 8, 13, "the header")))
        goto out;
    inf.version = (uint32_t)get_be(h + 8, 4);
    if (inf.version != MT_BACKUP_VERSION) {
        rc = mt_err_set(err, MT_EINVAL,
                        "backup format version %u is not supported (this mesatee reads %u)",
                        inf.version, MT_BACKUP_VERSION);
        goto out;
    }
    uint64_t created = get_be(h + 12, 8);
    if (created > (uint64_t)INT64_MAX) {
        rc = bad(&r, "creation time out of range");
        goto out;
    }
    inf.created = (int64_t)created;
    size_t ll = h[20];
    if (ll == 0 || ll > 15 || (rc = r_exact(&r, inf.level, ll, "the level"))) {
        if (!rc)
            rc = bad(&r, "level length out of range");
        goto out;
    }
    inf.level[ll] = '\0';
    if (!level_valid(inf.level, ll)) {
        rc = bad(&r, "invalid level name");
        goto out;
    }
    bool have_db = false;
    for (;;) {
        uint8_t tag;
        if ((rc = r_exact(&r, &tag, 1, "an entry tag")))
            goto out;
        if (tag == 'M')
            break;
        if (tag != 'F') {
            rc = bad(&r, "unknown entry tag");
            goto out;
        }
        if (n >= MT_BACKUP_MAX_ENTRIES) {
            rc = bad(&r, "too many entries");
            goto out;
        }
        memset(&cur, 0, sizeof cur);
        if ((rc = r_head(&r, &cur)))
            goto out;
        if (n && strcmp(ents[n - 1].name, cur.name) >= 0) {
            rc = bad(&r, "file names out of order or repeated");
            goto out;
        }
        if (!strcmp(cur.name, MT_BACKUP_DB_NAME))
            have_db = true;
        mt_backup_entry e = {cur.name, cur.mode, cur.size};
        if (sink && (rc = sink(sink_ctx, &e, true, NULL, 0, false, err)))
            goto out;
        if (EVP_DigestInit_ex(fmd, EVP_sha256(), NULL) != 1) {
            rc = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
            goto out;
        }
        for (uint64_t left = cur.size; left;) {
            size_t k = left < CHUNK ? (size_t)left : CHUNK;
            if ((rc = r_exact(&r, buf, k, "file data")))
                goto out;
            EVP_DigestUpdate(fmd, buf, k);
            if (sink && (rc = sink(sink_ctx, &e, false, buf, k, false, err)))
                goto out;
            left -= k;
        }
        unsigned int dl = 0;
        if (EVP_DigestFinal_ex(fmd, cur.sha, &dl) != 1 || dl != 32) {
            rc = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
            goto out;
        }
        if (sink && (rc = sink(sink_ctx, &e, false, NULL, 0, true, err)))
            goto out;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            rentry *ne = realloc(ents, nc * sizeof *ne);
            if (!ne) {
                rc = mt_err_set(err, MT_ENOMEM, "out of memory");
                goto out;
            }
            ents = ne;
            cap = nc;
        }
        ents[n++] = cur;
        inf.bytes += cur.size;
    }
    /* manifest */
    uint8_t c4[4];
    if ((rc = r_exact(&r, c4, 4, "the manifest count")))
        goto out;
    if (get_be(c4, 4) != n) {
        rc = bad(&r, "the manifest does not list the archive's files");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rentry m;
        if ((rc = r_head(&r, &m)) || (rc = r_exact(&r, m.sha, 32, "a manifest hash")))
            goto out;
        if (strcmp(m.name, ents[i].name) || m.mode != ents[i].mode || m.size != ents[i].size) {
            rc = bad(&r, "the manifest does not list the archive's files");
            goto out;
        }
        if (!mt_ct_equal(m.sha, ents[i].sha, 32)) {
            rc = mt_err_set(err, MT_EINVAL,
                            "backup damaged: %s does not match its SHA-256 in the manifest",
                            ents[i].name);
            goto out;
        }
    }
    uint8_t want[32], got[32];
    unsigned int dl = 0;
    if (EVP_DigestFinal_ex(r.all, want, &dl) != 1 || dl != 32) {
        rc = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
        goto out;
    }
    r.hashing = false;
    if ((rc = r_exact(&r, got, 32, "the archive hash")))
        goto out;
    if (!mt_ct_equal(want, got, 32)) {
        rc = mt_err_set(err, MT_EINVAL, "backup damaged: the archive hash does not match");
        goto out;
    }
    size_t extra = 0;
    uint8_t one;
    if ((rc = rd(rd_ctx, &one, 1, &extra, err)))
        goto out;
    if (extra) {
        rc = bad(&r, "trailing bytes after the archive hash");
        goto out;
    }
    if (!have_db) {
        rc = mt_err_set(err, MT_EINVAL, "backup holds no " MT_BACKUP_DB_NAME);
        goto out;
    }
    inf.entries = (uint32_t)n;
    mt_hex_encode(want, 32, inf.sha256);
    if (info)
        *info = inf;
out:
    free(ents);
    free(buf);
    EVP_MD_CTX_free(fmd);
    EVP_MD_CTX_free(r.all);
    return rc;
}

typedef struct memsrc {
    const uint8_t *p;
    size_t left;
} memsrc;

static mt_status mem_read(void *ctx, uint8_t *buf, size_t cap, size_t *got, mt_err *err)
{
    (void)err;
    memsrc *m = ctx;
    size_t k = cap < m->left ? cap : m->left;
    if (k)
        memcpy(buf, m->p, k);
    m->p += k;
    m->left -= k;
    *got = k;
    return MT_OK;
}

mt_status mt_backup_read_mem(const uint8_t *buf, size_t len, mt_backup_sink sink,
                             void *sink_ctx, mt_backup_info *info, mt_err *err)
{
    memsrc m = {buf, len};
    return mt_backup_read(mem_read, &m, sink, sink_ctx, info, err);
}
