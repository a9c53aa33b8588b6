/* mt_tee: TEE provider for the "none" and "soft" levels. See mt_tee.h and
 * docs/formats.md (sealing.key, sealing-key derivation). */
#include "mt_tee.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include "mt_log.h"
#include "mt_ratls.h"
#include "mt_tee_soft.h"
#include "mt_util.h"
#include "tee_hw.h"
#include "tee_tpm2.h"

#define SEAL_SECRET_LEN 32
#define SEAL_SALT "mesatee-seal-v1"
#define SEAL_LABEL_MAX 256
#define CERT_DAYS 90
/* OpenSSL secure heap (locked, not dumped) for every private key of the
 * process: the platform key, the TLS keys, the handshakes' ephemeral keys. */
#define SECURE_HEAP_BYTES (256 * 1024)
#define SECURE_HEAP_MIN 16
#define TRACER_CHECK_S 2 /* period of the debugger check while running */

struct mt_tee {
    char level[8];
    pthread_mutex_t lock; /* one evidence producer call at a time (renewal) */
    mt_tee_snapshot *snap; /* level tpm2: files measured before the TPM was opened */
    char ev_meas[65];      /* level tpm2: evidence measurement extended into the PCR */
    mt_tee_hw *hw;         /* levels sev-snp, tdx, sgx (tee_hw.h) */
    char measurement[65]; /* hex SHA-256, "" for none */
    uint8_t *secret;      /* SEAL_SECRET_LEN bytes in its own page (secret_page_new) */
    size_t secret_page;   /* size of that mapping */
    /* above none: the debugger watch thread (tracer_watch) */
    pthread_t watch;
    bool watching, stop;
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_cond;
    mt_tee_soft *soft; /* level soft: platform key, evidence (mt_tee_soft.h) */
    mt_tpm2_attester *tpm2; /* level tpm2: TPM attester (tee_tpm2.h) */
    char *tls_san; /* subjectAltName of new certificates ("DNS:a,IP:b"); NULL = default */
};

/* ------------------------------------------------------------------------ */
/* Platform secret: <data_dir>/sealing.key                                   */
/* ------------------------------------------------------------------------ */

/* Reads an existing sealing.key into out. MT_ENOTFOUND if absent; refuses
 * anything but a regular 32-byte file without group/other permissions. */
static mt_status secret_read(const char *path, uint8_t out[SEAL_SECRET_LEN], mt_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return mt_err_set(err, MT_ENOTFOUND, "%s is absent", path);
        return mt_err_set(err, MT_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    mt_status rc = MT_OK;
    if (fstat(fd, &st) != 0) {
        rc = mt_err_set(err, MT_EIO, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = mt_err_set(err, MT_EPERM, "%s is not a regular file; refusing to use it", path);
    } else if (st.st_mode & 077) {
        rc = mt_err_set(err, MT_EPERM,
                        "%s has mode %03o and is open to group/other; run `chmod 600 %s`", path,
                        (unsigned)(st.st_mode & 0777), path);
    } else if (st.st_size != SEAL_SECRET_LEN) {
        rc = mt_err_set(err, MT_EINVAL,
                        "%s is %lld bytes, expected %d; it is damaged or not a sealing key "
                        "(restore it from backup: data sealed under it depends on it)",
                        path, (long long)st.st_size, SEAL_SECRET_LEN);
    } else {
        size_t off = 0;
        while (off < SEAL_SECRET_LEN) {
            ssize_t n = read(fd, out + off, SEAL_SECRET_LEN - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = mt_err_set(err, MT_EIO, "cannot read %s", path);
                break;
            }
            off += (size_t)n;
        }
    }
    close(fd);
    if (rc != MT_OK)
        mt_wipe(out, SEAL_SECRET_LEN);
    return rc;
}

/* Loads the platform secret, creating it (0600, crash-safely) if absent. */
static mt_status secret_load(const char *data_dir, uint8_t out[SEAL_SECRET_LEN], mt_err *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/sealing.key", data_dir) >= (int)sizeof path)
        return mt_err_set(err, MT_EINVAL, "data directory path too long");
    mt_status st = secret_read(path, out, err);
    if (st != MT_ENOTFOUND)
        return st;
    if ((st = mt_mkdirs(data_dir, 0700, err)) != MT_OK)
        return st;
    uint8_t fresh[SEAL_SECRET_LEN];
    if ((st = mt_random(fresh, sizeof fresh, err)) != MT_OK)
        return st;
    st = mt_file_write_atomic(path, fresh, sizeof fresh, 0600, err);
    mt_wipe(fresh, sizeof fresh);
    if (st != MT_OK)
        return st;
    mt_info("created a new platform sealing key at %s (mode 0600); back it up: sealed data "
            "cannot be recovered without it",
            path);
    /* Re-read: whatever is on disk now is the key every process will use. */
    return secret_read(path, out, err);
}

/* ------------------------------------------------------------------------ */
/* Soft level: measurement and process hardening                             */
/* ------------------------------------------------------------------------ */

static mt_status measure_self(char out[65], mt_err *err)
{
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mt_err_set(err, MT_EIO, "cannot open /proc/self/exe to measure the binary: %s",
                          strerror(errno));
    mt_status st = MT_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(1 << 16);
    if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory while measuring the binary");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 16);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = mt_err_set(err, MT_EIO, "reading /proc/self/exe failed: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
            st = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
            goto out;
        }
    }
    uint8_t digest[32];
    unsigned int dl = 0;
    if (EVP_DigestFinal_ex(md, digest, &dl) != 1 || dl != 32) {
        st = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
        goto out;
    }
    mt_hex_encode(digest, 32, out);
out:
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    return st;
}

/* The pid of the process tracing this one (TracerPid in /proc/self/status):
 * 0 when none, -1 when it cannot be read. */
static long tracer_pid(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (!f)
        return -1;
    char line[256];
    long pid = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "TracerPid: %ld", &pid) == 1)
            break;
    fclose(f);
    return pid;
}

/* Writes "pid N (comm)" of the tracer into out. */
static void tracer_name(long pid, char *out, size_t cap)
{
    char path[64], comm[64] = "?";
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    FILE *f = fopen(path, "re");
    if (f) {
        if (fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    snprintf(out, cap, "pid %ld (%s)", pid, comm);
}

/* Locks (mlock) and excludes from core dumps (MADV_DONTDUMP) len bytes at
 * the page-aligned p; warns once when RLIMIT_MEMLOCK is too small. */
static void lock_pages(void *p, size_t len)
{
    static bool warned;
    if (madvise(p, len, MADV_DONTDUMP) != 0)
        mt_warn("madvise(MADV_DONTDUMP) on secret pages failed: %s", strerror(errno));
    if (mlock(p, len) != 0 && !warned) {
        warned = true;
        struct rlimit rl = {0, 0};
        getrlimit(RLIMIT_MEMLOCK, &rl);
        mt_warn("cannot lock secret pages in memory (mlock: %s; RLIMIT_MEMLOCK %llu bytes): "
                "secrets may be swapped out; raise the limit (ulimit -l, LimitMEMLOCK= in the "
                "systemd unit) or grant CAP_IPC_LOCK",
                strerror(errno), (unsigned long long)rl.rlim_cur);
    }
}

/* A zeroed, page-aligned mapping of at least len bytes for a secret, locked
 * and not dumped (lock_pages). NULL when out of memory. */
static uint8_t *secret_page_new(size_t len, size_t *mapped)
{
    long ps = sysconf(_SC_PAGESIZE);
    size_t sz = ps > 0 ? (len + (size_t)ps - 1) / (size_t)ps * (size_t)ps : 4096;
    void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    lock_pages(p, sz);
    *mapped = sz;
    return p;
}

static void secret_page_free(uint8_t *p, size_t mapped)
{
    if (!p)
        return;
    mt_wipe(p, mapped);
    munlock(p, mapped);
    munmap(p, mapped);
}

/* Not dumpable (also keeps same-user processes from attaching a debugger
 * later), no core files, no tracer attached now, and the OpenSSL secure heap
 * (mlocked, MADV_DONTDUMP) for private keys. MT_EPERM when traced. */
static mt_status harden_process(mt_err *err)
{
    long tp = tracer_pid();
    if (tp != 0) {
        char who[128] = "an unknown process (/proc/self/status unreadable)";
        if (tp > 0)
            tracer_name(tp, who, sizeof who);
        return mt_err_set(err, MT_EPERM,
                          "refusing to start: a debugger or tracer is attached to this process "
                          "(%s, TracerPid in /proc/self/status); above level none the daemon "
                          "does not run traced (use --level none to debug)",
                          who);
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return mt_err_set(err, MT_EINTERNAL, "prctl(PR_SET_DUMPABLE, 0) failed: %s",
                          strerror(errno));
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return mt_err_set(err, MT_EINTERNAL, "setrlimit(RLIMIT_CORE, 0) failed: %s",
                          strerror(errno));
    if (!CRYPTO_secure_malloc_initialized()) {
        int r = CRYPTO_secure_malloc_init(SECURE_HEAP_BYTES, SECURE_HEAP_MIN);
        if (r == 0)
            mt_warn("the OpenSSL secure heap could not be set up: private keys live in the "
                    "ordinary heap (not locked in memory)");
        else if (r == 2) {
            getrlimit(RLIMIT_MEMLOCK, &rl);
            mt_warn("the OpenSSL secure heap for private keys is not locked in memory "
                    "(RLIMIT_MEMLOCK %llu bytes is too small for %d KiB?): keys may be swapped "
                    "out; raise the limit (ulimit -l, LimitMEMLOCK=) or grant CAP_IPC_LOCK",
                    (unsigned long long)rl.rlim_cur, SECURE_HEAP_BYTES / 1024);
        }
        ERR_clear_error();
    }
    return MT_OK;
}

/* Watch thread: checks TracerPid every TRACER_CHECK_S seconds and logs an
 * error each time a tracer appears (root can still attach to a non-dumpable
 * process). It does not stop the daemon: the operator decides. */
static void *tracer_watch(void *arg)
{
    mt_tee *t = arg;
    long seen = 0;
    pthread_mutex_lock(&t->watch_lock);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += TRACER_CHECK_S;
        pthread_cond_timedwait(&t->watch_cond, &t->watch_lock, &ts);
        if (t->stop)
            break;
        long tp = tracer_pid();
        if (tp > 0 && tp != seen) {
            char who[128];
            tracer_name(tp, who, sizeof who);
            mt_error("SECURITY: a debugger or tracer (%s) attached to this mesatee process at "
                     "level %s: it can read keys and data in memory; treat this host as "
                     "compromised and restart the daemon",
                     who, t->level);
        }
        seen = tp > 0 ? tp : 0;
    }
    pthread_mutex_unlock(&t->watch_lock);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Open / free / accessors                                                   */
/* ------------------------------------------------------------------------ */

mt_status mt_tee_open(const char *level, const char *data_dir, mt_tee **out, mt_err *err)
{
    if (!out)
        return mt_err_set(err, MT_EINVAL, "mt_tee_open: NULL argument");
    *out = NULL;
    static const char *const levels[] = {"none", "soft", "tpm2", "sev-snp", "tdx", "sgx", NULL};
    bool known = false;
    for (int i = 0; level && levels[i]; i++)
        known |= strcmp(level, levels[i]) == 0;
    if (!known)
        return mt_err_set(err, MT_EINVAL,
                          "unknown TEE level \"%.32s\": valid levels are none, soft, tpm2, "
                          "sev-snp, tdx and sgx",
                          level ? level : "(null)");
    bool hw = !strcmp(level, "sev-snp") || !strcmp(level, "tdx") || !strcmp(level, "sgx");
    if (!data_dir || !*data_dir)
        return mt_err_set(err, MT_EINVAL, "mt_tee_open: data directory is empty");
    mt_tee *t = calloc(1, sizeof *t);
    if (!t)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    snprintf(t->level, sizeof t->level, "%s", level);
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->watch_lock, NULL);
    pthread_cond_init(&t->watch_cond, NULL);
    mt_status st;
    if (strcmp(level, "none") != 0) {
        if ((st = harden_process(err)) != MT_OK ||
            (st = measure_self(t->measurement, err)) != MT_OK)
            goto fail;
    }
    if (!(t->secret = secret_page_new(SEAL_SECRET_LEN, &t->secret_page))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory for the sealing secret");
        goto fail;
    }
    /* Hardware levels: fail before making any file when the interface is absent. */
    if (hw && (st = mt_tee_hw_open(level, NULL, NULL, NULL, &t->hw, err)) != MT_OK)
        goto fail;
    if ((st = secret_load(data_dir, t->secret, err)) != MT_OK)
        goto fail;
    if (strcmp(level, "soft") == 0 && (st = mt_tee_soft_open(data_dir, &t->soft, err)) != MT_OK)
        goto fail;
    /* tpm2: the files are measured before the TCTI module is loaded, so the
     * evidence measurement equals `mesatee measure --level tpm2`. */
    if (strcmp(level, "tpm2") == 0 && ((st = mt_tee_snapshot_take(&t->snap, err)) != MT_OK ||
                                       (st = mt_tee_tpm2_open(t->measurement, &t->tpm2, err)) !=
                                           MT_OK))
        goto fail;
    /* The "none" warning is the gateway's, logged at every start. */
    if (strcmp(level, "none") != 0) {
        if (pthread_create(&t->watch, NULL, tracer_watch, t) != 0) {
            st = mt_err_set(err, MT_EINTERNAL, "cannot start the debugger watch thread");
            goto fail;
        }
        t->watching = true;
    }
    if (strcmp(level, "soft") == 0)
        mt_info("TEE level soft: measurement sha256:%s (daemon executable); process not dumpable, "
                "no core files, secrets locked in memory, no debugger attached (checked every "
                "%d s)", t->measurement, TRACER_CHECK_S);
    *out = t;
    return MT_OK;
fail:
    mt_tee_free(t);
    return st;
}

void mt_tee_free(mt_tee *tee)
{
    if (!tee)
        return;
    if (tee->watching) {
        pthread_mutex_lock(&tee->watch_lock);
        tee->stop = true;
        pthread_cond_signal(&tee->watch_cond);
        pthread_mutex_unlock(&tee->watch_lock);
        pthread_join(tee->watch, NULL);
    }
    pthread_cond_destroy(&tee->watch_cond);
    pthread_mutex_destroy(&tee->watch_lock);
    secret_page_free(tee->secret, tee->secret_page);
    mt_tee_soft_free(tee->soft);
    mt_tpm2_attester_free(tee->tpm2);
    mt_tee_snapshot_free(tee->snap);
    mt_tee_hw_free(tee->hw);
    free(tee->tls_san);
    pthread_mutex_destroy(&tee->lock);
    mt_wipe(tee, sizeof *tee);
    free(tee);
}

const char *mt_tee_level(const mt_tee *tee)
{
    return tee ? tee->level : "";
}

const char *mt_tee_measurement(const mt_tee *tee)
{
    return tee ? tee->measurement : "";
}

/* ------------------------------------------------------------------------ */
/* Sealing keys                                                              */
/* ------------------------------------------------------------------------ */

/* HKDF-SHA256(secret, salt, info = level || 0 || meas || 0 || label). */
static mt_status seal_derive(mt_tee *tee, const char *level, const char *meas, const char *label,
                             uint8_t out[32], mt_err *err)
{
    if (!tee || !label || !out)
        return mt_err_set(err, MT_EINVAL, "mt_tee_sealing_key: NULL argument");
    size_t ll = strnlen(label, SEAL_LABEL_MAX + 1);
    if (ll == 0 || ll > SEAL_LABEL_MAX)
        return mt_err_set(err, MT_EINVAL, "sealing label must be 1 to %d bytes", SEAL_LABEL_MAX);
    /* info = level || 0 || measurement || 0 || label */
    size_t lv = strnlen(level, sizeof tee->level - 1),
           ms = strnlen(meas, sizeof tee->measurement - 1);
    uint8_t info[sizeof tee->level + sizeof tee->measurement + SEAL_LABEL_MAX + 2];
    size_t il = 0;
    memcpy(info + il, level, lv);
    il += lv;
    info[il++] = 0;
    memcpy(info + il, meas, ms);
    il += ms;
    info[il++] = 0;
    memcpy(info + il, label, ll);
    il += ll;

    mt_status st = MT_OK;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, tee->secret, SEAL_SECRET_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (char *)SEAL_SALT,
                                          sizeof SEAL_SALT - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, il),
        OSSL_PARAM_construct_end(),
    };
    if (!kctx || EVP_KDF_derive(kctx, out, 32, params) != 1) {
        mt_wipe(out, 32);
        st = mt_err_set(err, MT_EINTERNAL, "HKDF-SHA256 unavailable in OpenSSL");
    }
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return st;
}

mt_status mt_tee_sealing_key(mt_tee *tee, const char *label, uint8_t out[32], mt_err *err)
{
    return seal_derive(tee, tee ? tee->level : "", tee ? tee->measurement : "", label, out,
                       err);
}

mt_status mt_tee_legacy_sealing_key(mt_tee *tee, const char *meas_hex, const char *label,
                                    uint8_t out[32], mt_err *err)
{
    if (!tee || !meas_hex || strlen(meas_hex) != 64 ||
        strspn(meas_hex, "0123456789abcdef") != 64)
        return mt_err_set(err, MT_EINVAL,
                          "legacy measurement: expected 64 lowercase hex characters (sha256sum "
                          "of the old mesatee binary)");
    if (!strcmp(tee->level, "none"))
        return mt_err_set(err, MT_EINVAL, "level none seals to no measurement");
    return seal_derive(tee, tee->level, meas_hex, label, out, err);
}

void mt_tee_evidence_measurement(const mt_tee *tee, char out[65])
{
    char pk[65];
    out[0] = '\0';
    if (!tee)
        return;
    if (tee->soft)
        mt_tee_soft_ids(tee, out, pk);
    else if (tee->tpm2)
        snprintf(out, 65, "%s", tee->ev_meas);
}

mt_status mt_tee_platform_key(mt_tee *tee, const char *label, uint8_t out[32], mt_err *err)
{
    /* level "" and measurement "*": never those of a sealing key */
    return seal_derive(tee, "", "*", label, out, err);
}

/* ------------------------------------------------------------------------ */
/* TLS identity                                                              */
/* ------------------------------------------------------------------------ */

static bool cert_add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* A random positive 128-bit serial number. */
static bool cert_set_serial(X509 *cert)
{
    uint8_t raw[16];
    if (mt_random(raw, sizeof raw, NULL) != MT_OK)
        return false;
    raw[0] &= 0x7f; /* positive in DER */
    raw[0] |= 0x40; /* non-zero, full length */
    BIGNUM *bn = BN_bin2bn(raw, sizeof raw, NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    bool ok = ai && X509_set_serialNumber(cert, ai) == 1;
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok;
}

/* Adds the RA-TLS extension (tag, evidence, claims) to cert. */
static mt_status add_ratls_ext(X509 *cert, uint64_t tag, const uint8_t *ev, size_t evl,
                               const uint8_t *claims, size_t cl, mt_err *err)
{
    uint8_t *ext = NULL;
    size_t el = 0;
    mt_status st = mt_ratls_ext_encode(tag, ev, evl, claims, cl, &ext, &el, err);
    if (st != MT_OK)
        return st;
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(MT_RATLS_OID, 1);
    X509_EXTENSION *xe = NULL;
    if (!os || !oid || ASN1_OCTET_STRING_set(os, ext, (int)el) != 1 ||
        !(xe = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, os)) || X509_add_ext(cert, xe, -1) != 1)
        st = mt_err_set(err, MT_EINTERNAL, "adding the RA-TLS extension failed in OpenSSL");
    X509_EXTENSION_free(xe);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(os);
    free(ext);
    return st;
}

/* Levels tpm2, sev-snp, tdx, sgx: evidence whose report data is
 * SHA-256(claims) || 32 zero bytes, claims = {"pubkey-hash": [1, SHA-256(SPKI)]}. */
static mt_status add_hw_evidence(mt_tee *tee, X509 *cert, EVP_PKEY *k, mt_err *err)
{
    uint8_t *spki = NULL, *ev = NULL;
    int sl = i2d_PUBKEY(k, &spki);
    uint8_t h[32], claims[160], rd[64] = {0};
    size_t cl = 0, evl = 0;
    unsigned int hl = 0;
    uint64_t tag = MT_RATLS_TAG_TPM2;
    mt_status st = MT_OK;
    if (sl <= 0 || EVP_Digest(spki, (size_t)sl, h, &hl, EVP_sha256(), NULL) != 1) {
        st = mt_err_set(err, MT_EINTERNAL, "hashing the TLS public key failed");
        goto out;
    }
    if ((st = mt_ratls_claims_encode(h, NULL, 0, claims, sizeof claims, &cl, err)) != MT_OK)
        goto out;
    if (EVP_Digest(claims, cl, rd, &hl, EVP_sha256(), NULL) != 1) {
        st = mt_err_set(err, MT_EINTERNAL, "SHA-256 failed in OpenSSL");
        goto out;
    }
    st = tee->tpm2 ? mt_tpm2_attester_quote(tee->tpm2, rd, sizeof rd, &ev, &evl, err)
                   : mt_tee_hw_evidence(tee->hw, rd, &tag, &ev, &evl, err);
    if (st == MT_OK)
        st = add_ratls_ext(cert, tag, ev, evl, claims, cl, err);
out:
    free(ev);
    OPENSSL_free(spki);
    ERR_clear_error();
    return st;
}

#define DEFAULT_TLS_SAN "DNS:localhost,IP:127.0.0.1"

mt_status mt_tee_set_tls_san(mt_tee *tee, const char *san, mt_err *err)
{
    if (!tee)
        return mt_err_set(err, MT_EINVAL, "mt_tee_set_tls_san: NULL argument");
    char *copy = NULL;
    if (san && *san && !(copy = strdup(san)))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    pthread_mutex_lock(&tee->lock);
    free(tee->tls_san);
    tee->tls_san = copy;
    pthread_mutex_unlock(&tee->lock);
    return MT_OK;
}

/* A self-signed certificate for k (CN=mesatee, SANs of tee, valid days),
 * with evidence above level none when evidence is true. */
static mt_status make_cert(mt_tee *tee, EVP_PKEY *k, unsigned days, bool evidence, X509 **cert,
                           mt_err *err)
{
    *cert = NULL;
    X509 *c = X509_new();
    X509_NAME *name = c ? X509_get_subject_name(c) : NULL;
    pthread_mutex_lock(&tee->lock);
    char *san = strdup(tee->tls_san ? tee->tls_san : DEFAULT_TLS_SAN);
    pthread_mutex_unlock(&tee->lock);
    bool ok = san && k && c && name && X509_set_version(c, 2) == 1 && cert_set_serial(c) &&
              X509_gmtime_adj(X509_getm_notBefore(c), -60) &&
              X509_gmtime_adj(X509_getm_notAfter(c), (long)days * 86400) &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"mesatee",
                                         -1, -1, 0) == 1 &&
              X509_set_issuer_name(c, name) == 1 && X509_set_pubkey(c, k) == 1 &&
              cert_add_ext(c, NID_basic_constraints, "critical,CA:FALSE") &&
              cert_add_ext(c, NID_key_usage, "critical,digitalSignature") &&
              cert_add_ext(c, NID_ext_key_usage, "serverAuth") &&
              cert_add_ext(c, NID_subject_key_identifier, "hash") &&
              cert_add_ext(c, NID_subject_alt_name, san);
    free(san);
    mt_status est = MT_OK;
    if (ok && evidence && (tee->soft || tee->tpm2 || tee->hw)) {
        pthread_mutex_lock(&tee->lock);
        est = tee->soft ? mt_tee_soft_add_evidence(tee->soft, c, k, err)
                        : add_hw_evidence(tee, c, k, err);
        pthread_mutex_unlock(&tee->lock);
    }
    ok = ok && est == MT_OK && X509_sign(c, k, EVP_sha256()) > 0;
    ERR_clear_error();
    if (!ok) {
        X509_free(c);
        if (est != MT_OK)
            return est;
        return mt_err_set(err, MT_EINTERNAL, "making the TLS certificate failed in OpenSSL");
    }
    *cert = c;
    return MT_OK;
}

mt_status mt_tee_tls_identity(mt_tee *tee, EVP_PKEY **key, X509 **cert, mt_err *err)
{
    if (!tee || !key || !cert)
        return mt_err_set(err, MT_EINVAL, "mt_tee_tls_identity: NULL argument");
    *key = NULL;
    *cert = NULL;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k) {
        ERR_clear_error();
        return mt_err_set(err, MT_EINTERNAL, "making the TLS key failed in OpenSSL");
    }
    X509 *c = NULL;
    mt_status st = make_cert(tee, k, CERT_DAYS, true, &c, err);
    if (st != MT_OK) {
        EVP_PKEY_free(k);
        return st;
    }
    *key = k;
    *cert = c;
    return MT_OK;
}

mt_status mt_tee_tls_identity_for_key(mt_tee *tee, EVP_PKEY *key, X509 **cert, mt_err *err)
{
    if (!tee || !key || !cert)
        return mt_err_set(err, MT_EINVAL, "mt_tee_tls_identity_for_key: NULL argument");
    *cert = NULL;
    if (!strcmp(tee->level, "none"))
        return mt_err_set(err, MT_EINVAL, "evidence for an existing key needs an attested level");
    return make_cert(tee, key, CERT_DAYS, true, cert, err);
}

mt_status mt_tee_tls_cert_for_key(mt_tee *tee, EVP_PKEY *key, unsigned days, X509 **cert,
                                  mt_err *err)
{
    if (!tee || !key || !cert || days == 0)
        return mt_err_set(err, MT_EINVAL, "mt_tee_tls_cert_for_key: bad argument");
    if (strcmp(tee->level, "none") != 0)
        return mt_err_set(err, MT_EINVAL,
                          "a long-lived certificate is for level none only; attested levels "
                          "make fresh RA-TLS certificates");
    return make_cert(tee, key, days, false, cert, err);
}

/* ------------------------------------------------------------------------ */
/* Soft-level evidence configuration (see mt_tee_soft.h)                    */
/* ------------------------------------------------------------------------ */

mt_status mt_tee_set_config(mt_tee *tee, const uint8_t *config, size_t len,
                            const char *const *extra_files, mt_err *err)
{
    if (!tee)
        return mt_err_set(err, MT_EINVAL, "mt_tee_set_config: NULL argument");
    if (tee->tpm2 && tee->snap) {
        uint8_t m[32], pcr[32];
        char pcr_hex[65];
        mt_status st = mt_tee_snapshot_measure(tee->snap, config, len, extra_files, m, err);
        pthread_mutex_lock(&tee->lock);
        if (st == MT_OK)
            st = mt_tpm2_attester_extend(tee->tpm2, m, true, err);
        pthread_mutex_unlock(&tee->lock);
        if (st != MT_OK)
            return st;
        mt_hex_encode(m, 32, tee->ev_meas);
        mt_tpm2_expected_pcr(m, pcr);
        mt_hex_encode(pcr, 32, pcr_hex);
        mt_info("TEE level tpm2: evidence measurement %s extended into PCR %u (after reset): "
                "pcr%u = %s (`mesatee measure --level tpm2` recomputes it)",
                tee->ev_meas, mt_tpm2_attester_pcr(tee->tpm2), mt_tpm2_attester_pcr(tee->tpm2),
                pcr_hex);
        return MT_OK;
    }
    if (!tee->soft)
        return MT_OK;
    return mt_tee_soft_set_config(tee->soft, config, len, extra_files, err);
}

mt_status mt_tee_sign(mt_tee *tee, const uint8_t *msg, size_t len, uint8_t **sig,
                      size_t *sig_len, uint8_t **spki, size_t *spki_len, mt_err *err)
{
    *sig = NULL;
    *sig_len = 0;
    if (spki) {
        *spki = NULL;
        *spki_len = 0;
    }
    if (!tee || (!msg && len))
        return mt_err_set(err, MT_EINVAL, "mt_tee_sign: NULL argument");
    EVP_PKEY *key = NULL;
    bool owned = false;
    const EVP_MD *md = NULL;
    if (tee->soft) {
        key = mt_tee_soft_platform_key(tee->soft);
        md = EVP_sha256();
    } else {
        uint8_t seed[32];
        mt_status st = mt_tee_platform_key(tee, "signing-key/v1", seed, err);
        if (st != MT_OK)
            return st;
        key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof seed);
        mt_wipe(seed, sizeof seed);
        owned = true;
    }
    if (!key)
        return mt_err_set(err, MT_EINTERNAL, "no signing key");
    mt_status st = MT_OK;
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    size_t sl = 0;
    uint8_t *s = NULL;
    if (!mc || EVP_DigestSignInit(mc, NULL, md, NULL, key) != 1 ||
        EVP_DigestSign(mc, NULL, &sl, msg, len) != 1 || !(s = malloc(sl ? sl : 1)) ||
        EVP_DigestSign(mc, s, &sl, msg, len) != 1) {
        free(s);
        s = NULL;
        st = mt_err_set(err, MT_EINTERNAL, "signing failed");
    }
    EVP_MD_CTX_free(mc);
    if (st == MT_OK && spki) {
        uint8_t *der = NULL;
        int dl = i2d_PUBKEY(key, &der);
        if (dl <= 0 || !(*spki = malloc((size_t)dl))) {
            st = mt_err_set(err, MT_ENOMEM, "encoding the public key failed");
        } else {
            memcpy(*spki, der, (size_t)dl);
            *spki_len = (size_t)dl;
        }
        OPENSSL_free(der);
    }
    if (owned)
        EVP_PKEY_free(key);
    if (st != MT_OK) {
        free(s);
        return st;
    }
    *sig = s;
    *sig_len = sl;
    return MT_OK;
}

void mt_tee_soft_ids(const mt_tee *tee, char measurement[65], char platform_key[65])
{
    measurement[0] = platform_key[0] = '\0';
    if (!tee || !tee->soft)
        return;
    mt_hex_encode(mt_tee_soft_measurement(tee->soft), 32, measurement);
    mt_tee_soft_platform_key_id(tee->soft, platform_key);
}

/* Level tpm2: the TPM attester (tee_tpm2.h); NULL at other levels. */
mt_tpm2_attester *mt_tee_tpm2(const mt_tee *tee)
{
    return tee ? tee->tpm2 : NULL;
}

mt_status mt_tee_tpm2_counter(mt_tee *tee, mt_tpm2_nv_op op, uint32_t *index, uint64_t *value,
                              mt_err *err)
{
    if (!tee || !tee->tpm2)
        return mt_err_set(err, MT_EUNAVAIL, "the TPM NV counter needs level tpm2");
    pthread_mutex_lock(&tee->lock);
    mt_status st = mt_tpm2_nv_counter(tee->tpm2, op, index, value, err);
    pthread_mutex_unlock(&tee->lock);
    return st;
}
