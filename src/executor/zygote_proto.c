/* zygote_proto: readers and writers of the zygote messages (zygote_proto.h). */
#include "zygote_proto.h"

#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}
static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The checks both directions share. */
static mt_status req_check(const mt_zyg_req *r, mt_err *err)
{
    if (r->flags & ~(MT_ZYG_LOCK_EARLY | MT_ZYG_AWAIT_KILL))
        return mt_err_set(err, MT_EINVAL, "zygote request: unknown flags");
    if (r->mem_bytes < MT_ZYG_MIN_MEM || r->mem_bytes > MT_ZYG_MAX_MEM)
        return mt_err_set(err, MT_EINVAL, "zygote request: mem_bytes out of range");
    if (r->cpu_seconds < 1 || r->cpu_seconds > 366u * 86400u)
        return mt_err_set(err, MT_EINVAL, "zygote request: cpu_seconds out of range");
    if (r->n_data > MT_ZYG_MAX_DATA_FDS)
        return mt_err_set(err, MT_EINVAL, "zygote request: too many data fds");
    unsigned prev = MT_JOB_FIRST_FD;
    for (uint32_t i = 0; i < r->n_data; i++) {
        if (r->target[i] <= prev || r->target[i] > MT_JOB_MAX_FD)
            return mt_err_set(err, MT_EINVAL,
                              "zygote request: target fd %u not increasing or out of range", i);
        prev = r->target[i];
    }
    return MT_OK;
}

size_t mt_zyg_req_encode(const mt_zyg_req *req, uint8_t *buf, size_t cap)
{
    if (req_check(req, NULL) != MT_OK || cap < MT_ZYG_REQ_HEAD + 2 * (size_t)req->n_data)
        return 0;
    put32(buf, MT_ZYG_MAGIC);
    put32(buf + 4, req->flags);
    put64(buf + 8, req->mem_bytes);
    put32(buf + 16, req->cpu_seconds);
    put32(buf + 20, req->n_data);
    for (uint32_t i = 0; i < req->n_data; i++)
        put16(buf + MT_ZYG_REQ_HEAD + 2 * i, req->target[i]);
    return MT_ZYG_REQ_HEAD + 2 * (size_t)req->n_data;
}

mt_status mt_zyg_req_decode(const uint8_t *buf, size_t len, mt_zyg_req *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    if (!buf || len < MT_ZYG_REQ_HEAD)
        return mt_err_set(err, MT_EINVAL, "zygote request: shorter than its header");
    if (get32(buf) != MT_ZYG_MAGIC)
        return mt_err_set(err, MT_EINVAL, "zygote request: bad magic");
    out->flags = get32(buf + 4);
    out->mem_bytes = get64(buf + 8);
    out->cpu_seconds = get32(buf + 16);
    uint32_t n = get32(buf + 20);
    if (n > MT_ZYG_MAX_DATA_FDS)
        return mt_err_set(err, MT_EINVAL, "zygote request: too many data fds");
    if (len != MT_ZYG_REQ_HEAD + 2 * (size_t)n)
        return mt_err_set(err, MT_EINVAL, "zygote request: length does not match n_data");
    out->n_data = n;
    for (uint32_t i = 0; i < n; i++)
        out->target[i] = get16(buf + MT_ZYG_REQ_HEAD + 2 * i);
    mt_status st = req_check(out, err);
    if (st != MT_OK)
        memset(out, 0, sizeof *out);
    return st;
}

void mt_zyg_report_encode(const mt_zyg_report *r, uint8_t out[MT_ZYG_REPORT_LEN])
{
    put32(out, r->type);
    put32(out + 4, (uint32_t)r->pid);
    put32(out + 8, (uint32_t)r->status);
    put32(out + 12, 0);
    put64(out + 16, r->utime_us);
    put64(out + 24, r->stime_us);
    put64(out + 32, r->maxrss_kb);
}

mt_status mt_zyg_report_decode(const uint8_t *buf, size_t len, mt_zyg_report *out, mt_err *err)
{
    memset(out, 0, sizeof *out);
    if (!buf || len != MT_ZYG_REPORT_LEN)
        return mt_err_set(err, MT_EINVAL, "zygote report: wrong length");
    out->type = get32(buf);
    out->pid = (int32_t)get32(buf + 4);
    out->status = (int32_t)get32(buf + 8);
    out->utime_us = get64(buf + 16);
    out->stime_us = get64(buf + 24);
    out->maxrss_kb = get64(buf + 32);
    if (out->type != MT_ZYG_STARTED && out->type != MT_ZYG_EXITED && out->type != MT_ZYG_USAGE)
        return mt_err_set(err, MT_EINVAL, "zygote report: unknown type");
    if (out->pid <= 0 || get32(buf + 12) != 0)
        return mt_err_set(err, MT_EINVAL, "zygote report: bad pid or padding");
    if (out->type == MT_ZYG_STARTED &&
        (out->status || out->utime_us || out->stime_us || out->maxrss_kb))
        return mt_err_set(err, MT_EINVAL, "zygote report: 'started' with exit fields");
    if (out->type == MT_ZYG_USAGE && (out->status || out->stime_us))
        return mt_err_set(err, MT_EINVAL, "zygote report: 'usage' with a status or stime");
    return MT_OK;
}
