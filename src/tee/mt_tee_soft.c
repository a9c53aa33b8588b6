/* mt_tee_soft: soft-level platform key, measurement and evidence; see
 * mt_tee_soft.h and docs/attestation.md ("Soft level"). */
#include "mt_tee_soft.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_log.h"
#include "mt_ratls.h"
#include "mt_soft.h"
#include "mt_tee.h"
#include "mt_util.h"

#define KEY_FILE "platform-key.pem"
#define KEY_FILE_MAX 4096
#define MEAS_MAX_FILES 256
#define MEAS_CONFIG_MAX (1024u * 1024u)
static const char MEAS_CONTEXT[] = "mesatee-soft-measurement-v1";

struct mt_tee_soft {
    EVP_PKEY *key;
    uint8_t spki[MT_SOFT_KEY_MAX];
    size_t spki_len;
    uint8_t measurement[32];
};

/* ---- measurement -------------------------------------------------------- */

typedef struct mfile {
    dev_t dev;
    ino_t ino;
    uint8_t digest[32];
} mfile;

/* SHA-256 of a whole file; records its device and inode. */
static mt_status hash_file(const char *path, mfile *out, mt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mt_err_set(err, MT_EIO, "cannot open %s to measure it: %s", path, strerror(errno));
    struct stat st;
    mt_status rc = MT_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(1 << 16);
    unsigned int dl = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = mt_err_set(err, MT_EIO, "%s is not a regular file; cannot measure it", path);
        goto out;
    }
    if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = mt_err_set(err, MT_ENOMEM, "out of memory while measuring %s", path);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = mt_err_set(err, MT_EIO, "reading %s failed: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)n);
    }
    if (EVP_DigestFinal_ex(md, out->digest, &dl) != 1 || dl != 32) {
        rc = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
        goto out;
    }
    out->dev = st.st_dev;
    out->ino = st.st_ino;
out:
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    return rc;
}

static int cmp_digest(const void *a, const void *b)
{
    return memcmp(((const mfile *)a)->digest, ((const mfile *)b)->digest, 32);
}

static bool seen_file(const mfile *f, size_t n, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].dev == dev && f[i].ino == ino)
            return true;
    return false;
}

struct mt_tee_snapshot {
    mfile *f;
    size_t n; /* the executable, then the libraries sorted by digest */
};

void mt_tee_snapshot_free(mt_tee_snapshot *s)
{
    if (!s)
        return;
    free(s->f);
    free(s);
}

mt_status mt_tee_snapshot_take(mt_tee_snapshot **out, mt_err *err)
{
    *out = NULL;
    mt_tee_snapshot *s = calloc(1, sizeof *s);
    mfile *f = calloc(MEAS_MAX_FILES, sizeof *f);
    if (!s || !f) {
        free(s);
        free(f);
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    }
    s->f = f;
    size_t n = 0;
    mt_status st = hash_file("/proc/self/exe", &f[n], err);
    if (st != MT_OK)
        goto out;
    n++;
    /* Shared objects mapped executable, from /proc/self/maps. */
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps) {
        st = mt_err_set(err, MT_EIO, "cannot read /proc/self/maps: %s", strerror(errno));
        goto out;
    }
    size_t first_lib = n;
    char line[PATH_MAX + 256];
    while (fgets(line, sizeof line, maps)) {
        char perms[8] = "";
        char *path = strchr(line, '/');
        if (sscanf(line, "%*s %7s", perms) != 1 || perms[2] != 'x' || !path)
            continue;
        path[strcspn(path, "\n")] = '\0';
        if (strstr(path, " (deleted)")) {
            st = mt_err_set(err, MT_EIO,
                            "loaded file %s was replaced since this process started (an upgrade?); "
                            "restart mesatee so the measurement describes the files on disk",
                            path);
            break;
        }
        struct stat sb;
        if (stat(path, &sb) != 0 || seen_file(f, n, sb.st_dev, sb.st_ino))
            continue;
        if (n >= MEAS_MAX_FILES) {
            st = mt_err_set(err, MT_ETOOBIG, "more than %d mapped files to measure",
                            MEAS_MAX_FILES);
            break;
        }
        if ((st = hash_file(path, &f[n], err)) != MT_OK)
            break;
        n++;
    }
    fclose(maps);
    if (st != MT_OK)
        goto out;
    /* Independent of load addresses and paths: libraries by content hash. */
    qsort(f + first_lib, n - first_lib, sizeof *f, cmp_digest);
    s->n = n;
out:
    if (st != MT_OK) {
        mt_tee_snapshot_free(s);
        return st;
    }
    *out = s;
    return MT_OK;
}

mt_status mt_tee_snapshot_measure(const mt_tee_snapshot *snap, const uint8_t *config, size_t len,
                                  const char *const *extra_files, uint8_t out[32], mt_err *err)
{
    if (!snap || !out || (len && !config) || len > MEAS_CONFIG_MAX)
        return mt_err_set(err, MT_EINVAL, "mt_tee_snapshot_measure: bad argument");
    mfile *f = calloc(MEAS_MAX_FILES, sizeof *f);
    if (!f)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    memcpy(f, snap->f, snap->n * sizeof *f);
    size_t n = snap->n;
    mt_status st = MT_OK;
    for (const char *const *e = extra_files; e && *e; e++) {
        if (n >= MEAS_MAX_FILES) {
            st = mt_err_set(err, MT_ETOOBIG, "more than %d files to measure", MEAS_MAX_FILES);
            goto out;
        }
        if ((st = hash_file(*e, &f[n], err)) != MT_OK)
            goto out;
        n++;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t be[8];
    unsigned int dl = 0;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, MEAS_CONTEXT, sizeof MEAS_CONTEXT) == 1;
    for (int i = 0; i < 4; i++)
        be[i] = (uint8_t)((uint32_t)n >> (24 - 8 * i));
    ok = ok && EVP_DigestUpdate(md, be, 4) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(md, f[i].digest, 32) == 1;
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    ok = ok && EVP_DigestUpdate(md, be, 8) == 1 && (!len || EVP_DigestUpdate(md, config, len) == 1) &&
         EVP_DigestFinal_ex(md, out, &dl) == 1 && dl == 32;
    EVP_MD_CTX_free(md);
    if (!ok)
        st = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
out:
    free(f);
    return st;
}

mt_status mt_tee_measure_soft(const uint8_t *config, size_t len, const char *const *extra_files,
                              uint8_t out[32], mt_err *err)
{
    if (!out || (len && !config) || len > MEAS_CONFIG_MAX)
        return mt_err_set(err, MT_EINVAL, "mt_tee_measure_soft: bad argument");
    mt_tee_snapshot *snap = NULL;
    mt_status st = mt_tee_snapshot_take(&snap, err);
    if (st == MT_OK)
        st = mt_tee_snapshot_measure(snap, config, len, extra_files, out, err);
    mt_tee_snapshot_free(snap);
    return st;
}

/* ---- platform key ------------------------------------------------------- */

static mt_status key_read(const char *path, EVP_PKEY **out, mt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return mt_err_set(err, MT_ENOTFOUND, "%s is absent", path);
        return mt_err_set(err, MT_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    char buf[KEY_FILE_MAX + 1];
    size_t off = 0;
    mt_status rc = MT_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = mt_err_set(err, MT_EPERM, "%s is not a regular file; refusing to use it", path);
    } else if (st.st_mode & 077) {
        rc = mt_err_set(err, MT_EPERM, "%s has mode %03o and is open to group/other; run `chmod "
                                       "600 %s`",
                        path, (unsigned)(st.st_mode & 0777), path);
    } else {
        for (;;) {
            ssize_t n = read(fd, buf + off, KEY_FILE_MAX - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = mt_err_set(err, MT_EIO, "cannot read %s: %s", path, strerror(errno));
                break;
            }
            if (n == 0)
                break;
            off += (size_t)n;
            if (off == KEY_FILE_MAX) {
                rc = mt_err_set(err, MT_EINVAL, "%s is over %d bytes; not a platform key", path,
                                KEY_FILE_MAX);
                break;
            }
        }
    }
    close(fd);
    if (rc == MT_OK) {
        BIO *b = BIO_new_mem_buf(buf, (int)off);
        EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        char group[32] = "";
        size_t gl = 0;
        if (!k || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
            EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &gl) != 1 ||
            strcmp(group, "prime256v1") != 0) {
            EVP_PKEY_free(k);
            rc = mt_err_set(err, MT_EINVAL,
                            "%s is not a PEM P-256 private key; restore it from backup (clients "
                            "pin it), or move it away to make a new one and re-pin",
                            path);
        } else {
            *out = k;
        }
        ERR_clear_error();
    }
    mt_wipe(buf, sizeof buf);
    return rc;
}

static mt_status key_load(const char *data_dir, EVP_PKEY **out, mt_err *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", data_dir, KEY_FILE) >= (int)sizeof path)
        return mt_err_set(err, MT_EINVAL, "data directory path too long");
    mt_status st = key_read(path, out, err);
    if (st != MT_ENOTFOUND)
        return st;
    if ((st = mt_mkdirs(data_dir, 0700, err)) != MT_OK)
        return st;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    BIO *b = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long pl = 0;
    if (!k || !b || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1 ||
        (pl = BIO_get_mem_data(b, &pem)) <= 0) {
        EVP_PKEY_free(k);
        BIO_free(b);
        return mt_err_set(err, MT_EINTERNAL, "making the platform key failed in OpenSSL");
    }
    st = mt_file_write_atomic(path, (const uint8_t *)pem, (size_t)pl, 0600, err);
    OPENSSL_cleanse(pem, (size_t)pl);
    BIO_free(b);
    EVP_PKEY_free(k);
    if (st != MT_OK)
        return st;
    mt_info("created a new soft-level platform key at %s (mode 0600); clients pin it: back it "
            "up",
            path);
    return key_read(path, out, err);
}

/* ---- open / free -------------------------------------------------------- */

mt_status mt_tee_soft_open(const char *data_dir, mt_tee_soft **out, mt_err *err)
{
    *out = NULL;
    mt_tee_soft *s = calloc(1, sizeof *s);
    if (!s)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    mt_status st = key_load(data_dir, &s->key, err);
    if (st == MT_OK) {
        uint8_t *p = NULL;
        int n = i2d_PUBKEY(s->key, &p);
        if (n <= 0 || (size_t)n > sizeof s->spki)
            st = mt_err_set(err, MT_EINTERNAL, "encoding the platform public key failed");
        else {
            memcpy(s->spki, p, (size_t)n);
            s->spki_len = (size_t)n;
        }
        OPENSSL_free(p);
    }
    if (st == MT_OK)
        st = mt_tee_measure_soft(NULL, 0, NULL, s->measurement, err);
    if (st != MT_OK) {
        mt_tee_soft_free(s);
        return st;
    }
    *out = s;
    return MT_OK;
}

void mt_tee_soft_free(mt_tee_soft *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->key);
    mt_wipe(s, sizeof *s);
    free(s);
}

mt_status mt_tee_soft_set_config(mt_tee_soft *s, const uint8_t *config, size_t len,
                                 const char *const *extra_files, mt_err *err)
{
    return mt_tee_measure_soft(config, len, extra_files, s->measurement, err);
}

const uint8_t *mt_tee_soft_measurement(const mt_tee_soft *s) { return s->measurement; }

void mt_tee_soft_platform_key_id(const mt_tee_soft *s, char out[65])
{
    uint8_t h[32];
    unsigned int hl = 0;
    if (EVP_Digest(s->spki, s->spki_len, h, &hl, EVP_sha256(), NULL) != 1)
        memset(h, 0, sizeof h);
    mt_hex_encode(h, 32, out);
}

EVP_PKEY *mt_tee_soft_platform_key(const mt_tee_soft *s)
{
    return s ? s->key : NULL;
}

/* ---- evidence ----------------------------------------------------------- */

/* ECDSA P-256/SHA-256 over msg as raw r||s. */
static bool sign_raw(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t dl = sizeof der;
    bool ok = mc && EVP_DigestSignInit(mc, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestSign(mc, der, &dl, msg, len) == 1;
    EVP_MD_CTX_free(mc);
    const uint8_t *p = der;
    ECDSA_SIG *s = ok ? d2i_ECDSA_SIG(NULL, &p, (long)dl) : NULL;
    ok = s && BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32) == 32 &&
         BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32) == 32;
    ECDSA_SIG_free(s);
    return ok;
}

mt_status mt_tee_soft_add_evidence(mt_tee_soft *s, X509 *cert, EVP_PKEY *tls_key, mt_err *err)
{
    uint8_t *spki = NULL, *ext = NULL;
    int sl = i2d_PUBKEY(tls_key, &spki);
    uint8_t h[32], claims[160], ev[MT_SOFT_EVIDENCE_MAX];
    size_t cl = 0, evl = 0, el = 0;
    unsigned int hl = 0;
    mt_status st = MT_OK;
    ASN1_OCTET_STRING *os = NULL;
    ASN1_OBJECT *oid = NULL;
    X509_EXTENSION *xe = NULL;
    if (sl <= 0 || EVP_Digest(spki, (size_t)sl, h, &hl, EVP_sha256(), NULL) != 1) {
        st = mt_err_set(err, MT_EINTERNAL, "hashing the TLS public key failed");
        goto out;
    }
    if ((st = mt_ratls_claims_encode(h, NULL, 0, claims, sizeof claims, &cl, err)) != MT_OK)
        goto out;
    mt_soft_evidence e;
    memset(&e, 0, sizeof e);
    e.time = mt_now();
    memcpy(e.measurement, s->measurement, 32);
    if (EVP_Digest(claims, cl, e.report_data, &hl, EVP_sha256(), NULL) != 1) {
        st = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
        goto out;
    }
    memcpy(e.platform_key, s->spki, s->spki_len);
    e.platform_key_len = s->spki_len;
    uint8_t tbs[MT_SOFT_EVIDENCE_MAX];
    size_t tl = 0;
    if ((st = mt_soft_evidence_encode(&e, 0, tbs, sizeof tbs, &tl, err)) != MT_OK)
        goto out;
    if (!sign_raw(s->key, tbs, tl, e.signature)) {
        st = mt_err_set(err, MT_EINTERNAL, "signing the soft evidence failed in OpenSSL");
        goto out;
    }
    if ((st = mt_soft_evidence_encode(&e, 1, ev, sizeof ev, &evl, err)) != MT_OK ||
        (st = mt_ratls_ext_encode(MT_RATLS_TAG_SOFT, ev, evl, claims, cl, &ext, &el, err)) != MT_OK)
        goto out;
    os = ASN1_OCTET_STRING_new();
    oid = OBJ_txt2obj(MT_RATLS_OID, 1);
    if (!os || !oid || ASN1_OCTET_STRING_set(os, ext, (int)el) != 1 ||
        !(xe = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os)) || X509_add_ext(cert, xe, -1) != 1)
        st = mt_err_set(err, MT_EINTERNAL, "adding the RA-TLS extension failed in OpenSSL");
out:
    X509_EXTENSION_free(xe);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(os);
    free(ext);
    OPENSSL_free(spki);
    ERR_clear_error();
    return st;
}
