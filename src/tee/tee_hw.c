/* tee_hw: SEV-SNP, TDX and SGX evidence producers over the Linux interfaces.
 * NOT EXERCISED ON HARDWARE HERE: tested against fake trees and recorded
 * outputs only. See tee_hw.h. */
#include "tee_hw.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mt_ratls.h"

#define BLOB_MAX (64u * 1024u)
#define SNP_CERTS_START (4u * 4096u)
#define SNP_CERTS_MAX (64u * 4096u)

/* ---- small file helpers ------------------------------------------------- */

/* Reads at most max bytes of path into a heap buffer (NUL-terminated, not
 * counted). MT_ENOTFOUND when absent, MT_ETOOBIG over max. */
static mt_status read_all(const char *path, size_t max, uint8_t **out, size_t *len, mt_err *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mt_err_set(err, errno == ENOENT ? MT_ENOTFOUND : MT_EIO, "cannot open %s: %s",
                          path, strerror(errno));
    uint8_t *b = malloc(max + 1);
    size_t n = 0;
    mt_status st = b ? MT_OK : mt_err_set(err, MT_ENOMEM, "out of memory");
    while (st == MT_OK) {
        if (n == max) {
            uint8_t extra;
            ssize_t r = read(fd, &extra, 1);
            if (r > 0)
                st = mt_err_set(err, MT_ETOOBIG, "%s is over %zu bytes", path, max);
            break;
        }
        ssize_t r = read(fd, b + n, max - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            st = mt_err_set(err, MT_EIO, "reading %s failed: %s", path, strerror(errno));
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (st != MT_OK) {
        free(b);
        return st;
    }
    b[n] = 0;
    *out = b;
    *len = n;
    return MT_OK;
}

/* Writes exactly len bytes to an existing (or, in fake trees, new) file. */
static mt_status write_all(const char *path, const uint8_t *buf, size_t len, mt_err *err)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return mt_err_set(err, MT_EIO, "cannot open %s for writing: %s", path, strerror(errno));
    size_t off = 0;
    mt_status st = MT_OK;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            st = mt_err_set(err, MT_EIO, "writing %s failed: %s", path,
                            w < 0 ? strerror(errno) : "short write");
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 && st == MT_OK)
        st = mt_err_set(err, MT_EIO, "writing %s failed: %s", path, strerror(errno));
    return st;
}

/* A decimal u64 file (trailing newline allowed). */
static mt_status read_u64(const char *path, uint64_t *v, mt_err *err)
{
    uint8_t *b = NULL;
    size_t n = 0;
    mt_status st = read_all(path, 32, &b, &n, err);
    if (st != MT_OK)
        return st;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull((char *)b, &end, 10);
    bool ok = n > 0 && b[0] >= '0' && b[0] <= '9' && errno == 0 &&
              (*end == '\0' || (*end == '\n' && end[1] == '\0'));
    free(b);
    if (!ok)
        return mt_err_set(err, MT_EIO, "%s does not hold a decimal number", path);
    *v = x;
    return MT_OK;
}

/* A one-word text file (trailing newline removed) into out. */
static mt_status read_word(const char *path, char *out, size_t cap, mt_err *err)
{
    uint8_t *b = NULL;
    size_t n = 0;
    mt_status st = read_all(path, cap - 1, &b, &n, err);
    if (st != MT_OK)
        return st;
    if (n && b[n - 1] == '\n')
        b[--n] = 0;
    bool ok = strlen((char *)b) == n;
    if (ok)
        memcpy(out, b, n + 1);
    free(b);
    return ok ? MT_OK : mt_err_set(err, MT_EIO, "%s holds binary data", path);
}

/* ---- configfs-tsm ------------------------------------------------------- */

void mt_tsm_report_clear(mt_tsm_report *r)
{
    if (!r)
        return;
    free(r->outblob);
    free(r->auxblob);
    memset(r, 0, sizeof *r);
}

mt_status mt_tsm_get_report(const char *root, const char *entry, const char *provider,
                            const uint8_t inblob[64], mt_tsm_hook hook, void *hook_ud,
                            mt_tsm_report *out, mt_err *err)
{
    static atomic_uint counter;
    if (!out || !inblob)
        return mt_err_set(err, MT_EINVAL, "mt_tsm_get_report: NULL argument");
    memset(out, 0, sizeof *out);
    if (!root)
        root = MT_TSM_ROOT;
    struct stat sb;
    if (stat(root, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return mt_err_set(err, MT_EUNAVAIL, "configfs-tsm not available: %s missing; %s", root,
                          MT_HW_NOT_EXERCISED);
    char dir[PATH_MAX], path[PATH_MAX + 16], name[64];
    if (!entry) {
        snprintf(name, sizeof name, "mesatee-%ld-%u", (long)getpid(),
                 atomic_fetch_add(&counter, 1));
        entry = name;
    }
    if (!*entry || strchr(entry, '/') ||
        snprintf(dir, sizeof dir, "%s/%s", root, entry) >= (int)sizeof dir)
        return mt_err_set(err, MT_EINVAL, "configfs-tsm entry name is invalid");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return mt_err_set(err, MT_EIO, "configfs-tsm: cannot create %s: %s; %s", dir,
                          strerror(errno), MT_HW_NOT_EXERCISED);
    mt_err e;
    mt_err_clear(&e);
    uint64_t gen0 = 0;
    mt_status st;
    snprintf(path, sizeof path, "%s/generation", dir);
    if ((st = read_u64(path, &gen0, &e)) != MT_OK)
        goto fail;
    snprintf(path, sizeof path, "%s/inblob", dir);
    if ((st = write_all(path, inblob, 64, &e)) != MT_OK)
        goto fail;
    if (hook)
        hook(dir, hook_ud);
    snprintf(path, sizeof path, "%s/outblob", dir);
    if ((st = read_all(path, BLOB_MAX, &out->outblob, &out->outblob_len, &e)) != MT_OK)
        goto fail;
    if (out->outblob_len == 0) {
        st = mt_err_set(&e, MT_EIO, "%s is empty", path);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/auxblob", dir);
    st = read_all(path, BLOB_MAX, &out->auxblob, &out->auxblob_len, &e);
    if (st == MT_ENOTFOUND || (st == MT_OK && out->auxblob_len == 0)) {
        free(out->auxblob);
        out->auxblob = NULL;
        out->auxblob_len = 0;
        st = MT_OK;
    }
    if (st != MT_OK)
        goto fail;
    snprintf(path, sizeof path, "%s/provider", dir);
    if ((st = read_word(path, out->provider, sizeof out->provider, &e)) != MT_OK)
        goto fail;
    if (provider && strcmp(provider, out->provider) != 0) {
        st = mt_err_set(&e, MT_EUNAVAIL, "the TSM provider is '%.31s', not '%s'", out->provider,
                        provider);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/generation", dir);
    if ((st = read_u64(path, &out->generation, &e)) != MT_OK)
        goto fail;
    if (out->generation != gen0 + 1) {
        st = mt_err_set(&e, MT_ECONFLICT,
                        "generation went from %llu to %llu across our one write: another "
                        "process wrote to the entry; retry",
                        (unsigned long long)gen0, (unsigned long long)out->generation);
        goto fail;
    }
    if (!hook) /* a fake tree (tests) keeps its files; configfs removes them */
        rmdir(dir);
    return MT_OK;
fail:
    if (!hook)
        rmdir(dir);
    mt_tsm_report_clear(out);
    return mt_err_set(err, st, "configfs-tsm report: %s (%s)", e.msg, MT_HW_NOT_EXERCISED);
}

/* ---- /dev/sev-guest ----------------------------------------------------- */

/* The uapi of <linux/sev-guest.h>, spelled out so the layout is ours to test. */
struct mt_snp_ext_report_req {
    uint8_t data[MT_SNP_REPORT_REQ_LEN]; /* struct snp_report_req */
    uint64_t certs_address;
    uint32_t certs_len;
};
struct mt_snp_guest_request_ioctl {
    uint8_t msg_version;
    uint64_t req_data;
    uint64_t resp_data;
    uint64_t exitinfo2; /* fw_error (low 32 bits), vmm_error (high 32 bits) */
};
_Static_assert(sizeof(struct mt_snp_guest_request_ioctl) == 32, "snp_guest_request_ioctl");
_Static_assert(sizeof(struct mt_snp_ext_report_req) == 112, "snp_ext_report_req");
#define MT_SNP_GET_EXT_REPORT _IOWR('S', 0x2, struct mt_snp_guest_request_ioctl)
#define MT_SNP_VMM_ERR_INVALID_LEN 1u

void mt_snp_report_req_encode(const uint8_t user_data[64], uint32_t vmpl,
                              uint8_t out[MT_SNP_REPORT_REQ_LEN])
{
    memset(out, 0, MT_SNP_REPORT_REQ_LEN);
    memcpy(out, user_data, 64);
    for (int i = 0; i < 4; i++)
        out[64 + i] = (uint8_t)(vmpl >> (8 * i));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

mt_status mt_snp_report_resp_parse(const uint8_t *resp, size_t len, const uint8_t **report,
                                   mt_err *err)
{
    *report = NULL;
    if (!resp || len < 32 + MT_SNP_REPORT_LEN)
        return mt_err_set(err, MT_EINVAL, "SNP report response is %zu bytes, under %d", len,
                          32 + MT_SNP_REPORT_LEN);
    uint32_t status = le32(resp), size = le32(resp + 4);
    if (status != 0)
        return mt_err_set(err, MT_EIO, "SNP firmware answered status 0x%x to the report request",
                          status);
    if (size != MT_SNP_REPORT_LEN)
        return mt_err_set(err, MT_EINVAL, "SNP report response says report_size %u, not %d",
                          size, MT_SNP_REPORT_LEN);
    *report = resp + 32;
    return MT_OK;
}

mt_status mt_sev_guest_ext_report(const char *dev, const uint8_t user_data[64], uint8_t **report,
                                  uint8_t **certs, size_t *certs_len, mt_err *err)
{
    *report = NULL;
    *certs = NULL;
    *certs_len = 0;
    if (!dev)
        dev = MT_SEV_GUEST_DEV;
    int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return mt_err_set(err, errno == ENOENT ? MT_EUNAVAIL : MT_EIO, "cannot open %s: %s; %s",
                          dev, strerror(errno), MT_HW_NOT_EXERCISED);
    uint8_t *resp = calloc(1, MT_SNP_REPORT_RESP_LEN);
    size_t cl = SNP_CERTS_START;
    uint8_t *cb = NULL;
    mt_status st = MT_OK;
    for (;;) {
        free(cb);
        cb = aligned_alloc(4096, cl);
        if (!resp || !cb) {
            st = mt_err_set(err, MT_ENOMEM, "out of memory");
            break;
        }
        memset(cb, 0, cl);
        struct mt_snp_ext_report_req req;
        memset(&req, 0, sizeof req);
        mt_snp_report_req_encode(user_data, 0, req.data);
        req.certs_address = (uint64_t)(uintptr_t)cb;
        req.certs_len = (uint32_t)cl;
        struct mt_snp_guest_request_ioctl io;
        memset(&io, 0, sizeof io);
        io.msg_version = 1;
        io.req_data = (uint64_t)(uintptr_t)&req;
        io.resp_data = (uint64_t)(uintptr_t)resp;
        if (ioctl(fd, MT_SNP_GET_EXT_REPORT, &io) == 0) {
            const uint8_t *r = NULL;
            if ((st = mt_snp_report_resp_parse(resp, MT_SNP_REPORT_RESP_LEN, &r, err)) != MT_OK)
                break;
            if (!(*report = malloc(MT_SNP_REPORT_LEN))) {
                st = mt_err_set(err, MT_ENOMEM, "out of memory");
                break;
            }
            memcpy(*report, r, MT_SNP_REPORT_LEN);
            bool any = false;
            for (size_t i = 0; i < 24 && i < cl; i++)
                any |= cb[i] != 0;
            if (any) {
                *certs = cb;
                *certs_len = cl;
                cb = NULL;
            }
            break;
        }
        uint32_t vmm = (uint32_t)(io.exitinfo2 >> 32);
        if (vmm == MT_SNP_VMM_ERR_INVALID_LEN && req.certs_len > cl && req.certs_len <= SNP_CERTS_MAX) {
            cl = ((size_t)req.certs_len + 4095) & ~(size_t)4095;
            continue; /* the host needs a larger certificate buffer */
        }
        st = mt_err_set(err, MT_EIO, "SNP_GET_EXT_REPORT on %s failed: %s (fw 0x%x, vmm 0x%x); %s",
                        dev, strerror(errno), (unsigned)(io.exitinfo2 & 0xffffffffu), vmm,
                        MT_HW_NOT_EXERCISED);
        break;
    }
    free(cb);
    free(resp);
    close(fd);
    return st;
}

/* ---- Gramine /dev/attestation ------------------------------------------- */

mt_status mt_gramine_quote(const char *root, const uint8_t user_data[64], uint8_t **quote,
                           size_t *len, mt_err *err)
{
    *quote = NULL;
    *len = 0;
    if (!root)
        root = MT_GRAMINE_ATTEST_ROOT;
    char path[PATH_MAX], type[32] = "";
    mt_err e;
    mt_err_clear(&e);
    snprintf(path, sizeof path, "%s/attestation_type", root);
    mt_status st = read_word(path, type, sizeof type, &e);
    if (st == MT_ENOTFOUND)
        return mt_err_set(err, MT_EUNAVAIL,
                          "Gramine attestation not available: %s missing (run under gramine-sgx "
                          "with sgx.remote_attestation = \"dcap\"); %s",
                          path, MT_HW_NOT_EXERCISED);
    if (st != MT_OK)
        return mt_err_set(err, st, "%s (%s)", e.msg, MT_HW_NOT_EXERCISED);
    if (strcmp(type, "dcap") != 0)
        return mt_err_set(err, MT_EUNAVAIL,
                          "Gramine attestation type is '%.31s', not 'dcap' (set "
                          "sgx.remote_attestation = \"dcap\" in the manifest); %s",
                          type, MT_HW_NOT_EXERCISED);
    snprintf(path, sizeof path, "%s/user_report_data", root);
    if ((st = write_all(path, user_data, 64, &e)) == MT_OK) {
        snprintf(path, sizeof path, "%s/quote", root);
        st = read_all(path, BLOB_MAX, quote, len, &e);
        if (st == MT_OK && *len < 48) {
            st = mt_err_set(&e, MT_EIO, "%s returned %zu bytes, too short for a quote", path,
                            *len);
            free(*quote);
            *quote = NULL;
            *len = 0;
        }
    }
    if (st != MT_OK)
        return mt_err_set(err, st, "Gramine quote: %s (%s)", e.msg, MT_HW_NOT_EXERCISED);
    return MT_OK;
}

/* ---- level producers ---------------------------------------------------- */

enum hw_kind { HW_SNP, HW_TDX, HW_SGX };

struct mt_tee_hw {
    enum hw_kind kind;
    bool use_sev_guest; /* SNP without configfs-tsm */
    char tsm_root[PATH_MAX];
    char sev_dev[PATH_MAX];
    char gramine_root[PATH_MAX];
};

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

mt_status mt_tee_hw_open(const char *level, const char *tsm_root, const char *sev_dev,
                         const char *gramine_root, mt_tee_hw **out, mt_err *err)
{
    *out = NULL;
    mt_tee_hw *hw = calloc(1, sizeof *hw);
    if (!hw)
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    snprintf(hw->tsm_root, sizeof hw->tsm_root, "%s", tsm_root ? tsm_root : MT_TSM_ROOT);
    snprintf(hw->sev_dev, sizeof hw->sev_dev, "%s", sev_dev ? sev_dev : MT_SEV_GUEST_DEV);
    snprintf(hw->gramine_root, sizeof hw->gramine_root, "%s",
             gramine_root ? gramine_root : MT_GRAMINE_ATTEST_ROOT);
    mt_status st = MT_OK;
    if (level && !strcmp(level, "sev-snp")) {
        hw->kind = HW_SNP;
        if (!is_dir(hw->tsm_root)) {
            if (access(hw->sev_dev, F_OK) == 0)
                hw->use_sev_guest = true;
            else
                st = mt_err_set(err, MT_EUNAVAIL,
                                "configfs-tsm not available: %s missing, nor is %s; %s",
                                hw->tsm_root, hw->sev_dev, MT_HW_NOT_EXERCISED);
        }
    } else if (level && !strcmp(level, "tdx")) {
        hw->kind = HW_TDX;
        if (!is_dir(hw->tsm_root))
            st = mt_err_set(err, MT_EUNAVAIL, "configfs-tsm not available: %s missing; %s",
                            hw->tsm_root, MT_HW_NOT_EXERCISED);
    } else if (level && !strcmp(level, "sgx")) {
        hw->kind = HW_SGX;
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/attestation_type", hw->gramine_root);
        if (access(p, F_OK) != 0)
            st = mt_err_set(err, MT_EUNAVAIL,
                            "Gramine attestation not available: %s missing (run under "
                            "gramine-sgx); %s",
                            p, MT_HW_NOT_EXERCISED);
    } else {
        st = mt_err_set(err, MT_EINVAL, "no hardware producer for level '%.16s'",
                        level ? level : "(null)");
    }
    if (st != MT_OK) {
        free(hw);
        return st;
    }
    *out = hw;
    return MT_OK;
}

void mt_tee_hw_free(mt_tee_hw *hw)
{
    free(hw);
}

mt_status mt_tee_hw_evidence(mt_tee_hw *hw, const uint8_t report_data[64], uint64_t *tag,
                             uint8_t **ev, size_t *len, mt_err *err)
{
    *ev = NULL;
    *len = 0;
    if (hw->kind == HW_SGX) {
        *tag = MT_RATLS_TAG_QUOTE;
        return mt_gramine_quote(hw->gramine_root, report_data, ev, len, err);
    }
    if (hw->kind == HW_SNP && hw->use_sev_guest) {
        uint8_t *certs = NULL;
        size_t cl = 0;
        mt_status st = mt_sev_guest_ext_report(hw->sev_dev, report_data, ev, &certs, &cl, err);
        free(certs); /* VCEK and chain reach the client through its collateral */
        if (st == MT_OK) {
            *len = MT_SNP_REPORT_LEN;
            *tag = MT_RATLS_TAG_SNP;
        }
        return st;
    }
    mt_tsm_report r;
    mt_status st = mt_tsm_get_report(hw->tsm_root, NULL,
                                     hw->kind == HW_SNP ? "sev_guest" : "tdx_guest", report_data,
                                     NULL, NULL, &r, err);
    if (st != MT_OK)
        return st;
    if (hw->kind == HW_SNP && r.outblob_len != MT_SNP_REPORT_LEN) {
        size_t n = r.outblob_len;
        mt_tsm_report_clear(&r);
        return mt_err_set(err, MT_EIO, "configfs-tsm outblob is %zu bytes, not an SNP report; %s",
                          n, MT_HW_NOT_EXERCISED);
    }
    *tag = hw->kind == HW_SNP ? MT_RATLS_TAG_SNP : MT_RATLS_TAG_QUOTE;
    *ev = r.outblob;
    *len = r.outblob_len;
    r.outblob = NULL;
    mt_tsm_report_clear(&r);
    return MT_OK;
}
