/* wasm_fn: executor type "wasm": registration check and the run of a module
 * with the mesatee host API and a small WASI subset (see wasm_fn.h). */
#include "wasm_fn.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mt_executor.h"
#include "mt_util.h"
#include "mt_wasm.h"

#define WASI_ESUCCESS 0
#define WASI_EACCES 2
#define WASI_EBADF 8
#define WASI_EINVAL 28
#define WASI_ESPIPE 70
#define MAX_IOVS 1024
#define LINE_MAX_BYTES 1000
/* Host-call fuel (docs/wasm-functions.md, "Fuel"): every call costs
 * HOST_CALL_FUEL, plus 1 per HOST_BYTES_PER_UNIT bytes it copies, scans or
 * compares, plus HOST_IOV_FUEL per iovec and HOST_LOG_LINE_FUEL per log line
 * it makes, HOST_RANDOM_FUEL for a random_get of 1 byte or more (the DRBG's
 * cost per request) and HOST_SYSCALL_FUEL for a clock read that is a system
 * call (the CPU-time clocks; the others are read in user space). Each call charges all of it before
 * doing the work it pays for, whatever the outcome: with too little fuel left it does nothing and
 * traps. */
#define HOST_CALL_FUEL 10
#define HOST_BYTES_PER_UNIT 16
#define HOST_IOV_FUEL 1
#define HOST_LOG_LINE_FUEL 8
#define HOST_RANDOM_FUEL 128
#define HOST_SYSCALL_FUEL 64

/* Per-run state of the host functions. */
typedef struct hctx {
    mt_bctx *ctx;
    mt_wasm_store *s;
    mt_wasm_memory *mem; /* the module's exported memory (after instantiation) */
    size_t *in_pos;      /* read cursor per input */
    bool clock;
    bool exited, fuel_out;
    uint32_t exit_code;
    char *result;
    size_t result_len;
    char line[2][LINE_MAX_BYTES + 1]; /* partial lines of fd 1 and 2 */
    size_t line_len[2];
    char **argv; /* "main", "name=value"... */
    size_t argc, argv_bytes;
} hctx;

/* ---- helpers ------------------------------------------------------------- */

/* The module's memory range [ptr, ptr+len), or NULL with err set. */
static uint8_t *gmem(hctx *h, uint32_t ptr, uint64_t len, const char *fn, mt_err *err)
{
    static uint8_t empty[1];
    size_t size = 0;
    uint8_t *base = h->mem ? mt_wasm_memory_data(h->mem, &size) : NULL;
    if ((uint64_t)ptr + len > size) {
        mt_err_set(err, MT_EINVAL, "%s: pointer range %u+%llu is outside the module's memory", fn,
                   ptr, (unsigned long long)len);
        return NULL;
    }
    return base ? base + ptr : empty;
}

/* Charges cost fuel units (a call's own HOST_CALL_FUEL or its extra units). */
static mt_status charge_units(hctx *h, uint64_t cost, mt_err *err)
{
    uint64_t f = mt_wasm_store_fuel(h->s);
    if (f < cost) {
        mt_wasm_store_set_fuel(h->s, 0);
        h->fuel_out = true;
        return mt_err_set(err, MT_EQUOTA, "fuel exhausted");
    }
    mt_wasm_store_set_fuel(h->s, f - cost);
    return MT_OK;
}

/* Charges the fuel of a host call that copies, scans or compares n bytes. */
static mt_status charge(hctx *h, uint64_t n, mt_err *err)
{
    return charge_units(h, HOST_CALL_FUEL + n / HOST_BYTES_PER_UNIT, err);
}

/* The bytes input_open / output_open touch for a guest name of len bytes
 * matched against n slots: the name's copy and each slot's strcmp (at most
 * len + 1 bytes each); a name too long for any slot is not read. */
static uint64_t slot_scan_bytes(uint32_t len, size_t n)
{
    return len < 129 ? ((uint64_t)n + 1) * (len + 1) : 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4); /* the engine requires a little-endian host */
}

static void put_u64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* Copies a guest name into buf (NUL-terminated, at most cap-1 bytes, no NUL
 * inside). Returns false when it does not fit or holds a NUL. */
static bool gname(const uint8_t *p, uint32_t len, char *buf, size_t cap)
{
    if (len >= cap || memchr(p, 0, len))
        return false;
    memcpy(buf, p, len);
    buf[len] = 0;
    return true;
}

/* Appends one log line made of guest bytes: control characters and bytes
 * outside printable ASCII become '?'. */
static void log_bytes(mt_bctx *ctx, const char *prefix, const uint8_t *p, size_t len)
{
    char line[LINE_MAX_BYTES + 1];
    if (len > LINE_MAX_BYTES)
        len = LINE_MAX_BYTES;
    for (size_t i = 0; i < len; i++)
        line[i] = (p[i] >= 0x20 && p[i] < 0x7f) || p[i] == '\t' ? (char)p[i] : '?';
    line[len] = 0;
    mt_bctx_log(ctx, "%s%s", prefix, line);
}

/* True if p[0..len) is UTF-8 without NUL (what a JSON string can carry). */
static bool utf8_ok(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        uint8_t c = p[i];
        size_t n;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else
            return false;
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

#define ARG_I32(k) (args[k].of.i32)
#define RET_I32(v) (results[0].of.i32 = (uint32_t)(int32_t)(v))
#define HOSTFN(name)                                                                               \
    static mt_status name(void *env, mt_wasm_store *s, const mt_wasm_val *args,                    \
                          mt_wasm_val *results, mt_err *err)

/* ---- module "mesatee" ---------------------------------------------------- */

HOSTFN(h_arg_get)
{
    (void)s;
    hctx *h = env;
    uint32_t nlen = ARG_I32(1), cap = ARG_I32(3);
    const uint8_t *np = gmem(h, ARG_I32(0), nlen, "mesatee.arg_get", err);
    uint8_t *buf = gmem(h, ARG_I32(2), cap, "mesatee.arg_get", err);
    if (!np || !buf)
        return err->code;
    char name[65];
    /* the name (at most 64 bytes) is looked up before the charge: the value's
     * length is what the call costs */
    const char *v = gname(np, nlen, name, sizeof name) ? mt_bctx_arg(h->ctx, name) : NULL;
    size_t len = v ? strlen(v) : 0;
    mt_status st = charge(h, (nlen < sizeof name ? nlen : 0) + len, err);
    if (st != MT_OK)
        return st;
    if (!v) {
        RET_I32(-1);
        return MT_OK;
    }
    memcpy(buf, v, len < cap ? len : cap);
    RET_I32(len);
    return MT_OK;
}

HOSTFN(h_input_open)
{
    (void)s;
    hctx *h = env;
    uint32_t len = ARG_I32(1);
    const uint8_t *p = gmem(h, ARG_I32(0), len, "mesatee.input_open", err);
    if (!p)
        return err->code;
    char slot[129];
    mt_status st = charge(h, slot_scan_bytes(len, h->ctx->n_inputs), err);
    if (st != MT_OK)
        return st;
    RET_I32(-1);
    if (gname(p, len, slot, sizeof slot))
        for (size_t i = 0; i < h->ctx->n_inputs; i++)
            if (!strcmp(h->ctx->inputs[i].slot, slot)) {
                h->in_pos[i] = 0;
                RET_I32(i);
                break;
            }
    return MT_OK;
}

HOSTFN(h_input_size)
{
    (void)s;
    hctx *h = env;
    uint32_t hd = ARG_I32(0);
    mt_status st = charge(h, 0, err);
    if (st == MT_OK)
        results[0].of.i64 = hd < h->ctx->n_inputs ? (uint64_t)h->ctx->inputs[hd].len : (uint64_t)-2;
    return st;
}

HOSTFN(h_input_read)
{
    (void)s;
    hctx *h = env;
    uint32_t hd = ARG_I32(0), cap = ARG_I32(2);
    uint8_t *buf = gmem(h, ARG_I32(1), cap, "mesatee.input_read", err);
    if (!buf)
        return err->code;
    if (hd >= h->ctx->n_inputs) {
        RET_I32(-2);
        return charge(h, 0, err);
    }
    const mt_bctx_input *in = &h->ctx->inputs[hd];
    size_t n = in->len - h->in_pos[hd];
    if (n > cap)
        n = cap;
    if (n > INT32_MAX)
        n = INT32_MAX;
    mt_status st = charge(h, n, err);
    if (st != MT_OK)
        return st;
    memcpy(buf, in->data + h->in_pos[hd], n);
    h->in_pos[hd] += n;
    RET_I32(n);
    return MT_OK;
}

HOSTFN(h_output_open)
{
    (void)s;
    hctx *h = env;
    uint32_t len = ARG_I32(1);
    const uint8_t *p = gmem(h, ARG_I32(0), len, "mesatee.output_open", err);
    if (!p)
        return err->code;
    char slot[129];
    mt_status st = charge(h, slot_scan_bytes(len, h->ctx->n_outputs), err);
    if (st != MT_OK)
        return st;
    RET_I32(-1);
    if (gname(p, len, slot, sizeof slot))
        for (size_t i = 0; i < h->ctx->n_outputs; i++)
            if (!strcmp(h->ctx->outputs[i].slot, slot)) {
                RET_I32(i);
                break;
            }
    return MT_OK;
}

HOSTFN(h_output_write)
{
    (void)s;
    hctx *h = env;
    uint32_t hd = ARG_I32(0), len = ARG_I32(2);
    const uint8_t *p = gmem(h, ARG_I32(1), len, "mesatee.output_write", err);
    if (!p)
        return err->code;
    if (hd >= h->ctx->n_outputs || len > INT32_MAX) {
        RET_I32(-2);
        return charge(h, 0, err);
    }
    mt_status st = charge(h, len, err);
    if (st == MT_OK)
        st = mt_bctx_output_write(h->ctx, hd, p, len, err);
    RET_I32(len);
    return st;
}

HOSTFN(h_log)
{
    (void)s;
    (void)results;
    hctx *h = env;
    uint32_t len = ARG_I32(1);
    const uint8_t *p = gmem(h, ARG_I32(0), len, "mesatee.log", err);
    if (!p)
        return err->code;
    mt_status st = charge(h, HOST_LOG_LINE_FUEL * HOST_BYTES_PER_UNIT + (uint64_t)len, err);
    if (st != MT_OK)
        return st;
    log_bytes(h->ctx, "", p, len);
    return MT_OK;
}

HOSTFN(h_set_result)
{
    (void)s;
    hctx *h = env;
    uint32_t len = ARG_I32(1);
    const uint8_t *p = gmem(h, ARG_I32(0), len, "mesatee.set_result", err);
    if (!p)
        return err->code;
    /* the scan and the copy cost len, paid before either, valid or not */
    mt_status st = charge(h, len, err);
    if (st != MT_OK)
        return st;
    if (len > MT_WASM_FN_MAX_RESULT || !utf8_ok(p, len)) {
        RET_I32(-3);
        return MT_OK;
    }
    char *r = malloc((size_t)len + 1);
    if (!r)
        return mt_err_set(err, MT_ENOMEM, "mesatee.set_result: out of memory");
    memcpy(r, p, len);
    r[len] = 0;
    free(h->result);
    h->result = r;
    h->result_len = len;
    RET_I32(0);
    return MT_OK;
}

/* ---- module "wasi_snapshot_preview1" -------------------------------------- */

HOSTFN(w_args_sizes_get)
{
    (void)s;
    hctx *h = env;
    uint8_t *a = gmem(h, ARG_I32(0), 4, "wasi.args_sizes_get", err);
    uint8_t *b = gmem(h, ARG_I32(1), 4, "wasi.args_sizes_get", err);
    if (!a || !b)
        return err->code;
    put_u32(a, (uint32_t)h->argc);
    put_u32(b, (uint32_t)h->argv_bytes);
    RET_I32(WASI_ESUCCESS);
    return charge(h, 0, err);
}

HOSTFN(w_args_get)
{
    (void)s;
    hctx *h = env;
    uint8_t *av = gmem(h, ARG_I32(0), 4ULL * h->argc, "wasi.args_get", err);
    uint8_t *buf = gmem(h, ARG_I32(1), h->argv_bytes, "wasi.args_get", err);
    if (!av || !buf)
        return err->code;
    mt_status st = charge(h, 4ULL * h->argc + h->argv_bytes, err);
    if (st != MT_OK)
        return st;
    uint32_t off = ARG_I32(1);
    for (size_t i = 0; i < h->argc; i++) {
        size_t l = strlen(h->argv[i]) + 1;
        put_u32(av + 4 * i, off);
        memcpy(buf, h->argv[i], l);
        buf += l;
        off += (uint32_t)l;
    }
    RET_I32(WASI_ESUCCESS);
    return MT_OK;
}

HOSTFN(w_environ_sizes_get)
{
    (void)s;
    hctx *h = env;
    uint8_t *a = gmem(h, ARG_I32(0), 4, "wasi.environ_sizes_get", err);
    uint8_t *b = gmem(h, ARG_I32(1), 4, "wasi.environ_sizes_get", err);
    if (!a || !b)
        return err->code;
    put_u32(a, 0);
    put_u32(b, 0);
    RET_I32(WASI_ESUCCESS);
    return charge(h, 0, err);
}

HOSTFN(w_environ_get)
{
    (void)s;
    (void)args;
    RET_I32(WASI_ESUCCESS);
    return charge(env, 0, err);
}

/* Feeds bytes written to fd 1 or 2 into the log, one line per '\n' and per
 * LINE_MAX_BYTES without one. */
static void line_feed(hctx *h, int k, const uint8_t *p, size_t n)
{
    static const char *const prefix[2] = {"", "stderr: "};
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' || h->line_len[k] == LINE_MAX_BYTES) {
            log_bytes(h->ctx, prefix[k], (const uint8_t *)h->line[k], h->line_len[k]);
            h->line_len[k] = 0;
            if (p[i] == '\n')
                continue;
        }
        h->line[k][h->line_len[k]++] = (char)p[i];
    }
}

/* The number of log lines line_feed would make from p[0..n) with a partial
 * line of *cur bytes pending; advances *cur as line_feed would. */
static uint64_t line_count(const uint8_t *p, size_t n, size_t *cur)
{
    uint64_t lines = 0;
    while (n) {
        const uint8_t *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) : n; /* bytes before the next '\n' */
        if (seg) {
            /* a full line followed by one more byte is logged first */
            size_t t = *cur + seg;
            lines += (t - 1) / LINE_MAX_BYTES;
            *cur = t - (t - 1) / LINE_MAX_BYTES * LINE_MAX_BYTES;
        }
        if (!nl)
            break;
        lines++; /* the '\n' logs the pending line, empty or not */
        *cur = 0;
        p = nl + 1;
        n -= seg + 1;
    }
    return lines;
}

static void line_flush(hctx *h)
{
    for (int k = 0; k < 2; k++)
        if (h->line_len[k]) {
            line_feed(h, k, (const uint8_t *)"\n", 1);
        }
}

HOSTFN(w_fd_write)
{
    (void)s;
    hctx *h = env;
    uint32_t fd = ARG_I32(0), n = ARG_I32(2);
    if ((fd != 1 && fd != 2) || n > MAX_IOVS) {
        RET_I32(fd != 1 && fd != 2 ? WASI_EBADF : WASI_EINVAL);
        return charge(h, 0, err);
    }
    const uint8_t *iov = gmem(h, ARG_I32(1), 8ULL * n, "wasi.fd_write", err);
    uint8_t *nw = gmem(h, ARG_I32(3), 4, "wasi.fd_write", err);
    if (!iov || !nw)
        return err->code;
    /* Charge and check every range first, then count the log lines and charge
     * them, then log: each part of the cost is paid before the work it pays
     * for (the iovecs before they are read, the bytes before they are
     * scanned, the lines before they are logged). */
    mt_status st = charge_units(h, HOST_CALL_FUEL + (uint64_t)n * HOST_IOV_FUEL, err);
    if (st != MT_OK)
        return st;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t ptr, len;
        memcpy(&ptr, iov + 8 * i, 4);
        memcpy(&len, iov + 8 * i + 4, 4);
        if (!gmem(h, ptr, len, "wasi.fd_write", err))
            return err->code;
        total += len;
    }
    if (total > INT32_MAX) { /* the same range named many times */
        RET_I32(WASI_EINVAL);
        return MT_OK;
    }
    if ((st = charge_units(h, total / HOST_BYTES_PER_UNIT, err)) != MT_OK)
        return st;
    int k = fd == 2;
    uint64_t lines = 0;
    size_t cur = h->line_len[k];
    for (uint32_t pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < n; i++) {
            uint32_t ptr, len;
            memcpy(&ptr, iov + 8 * i, 4);
            memcpy(&len, iov + 8 * i + 4, 4);
            const uint8_t *p = gmem(h, ptr, len, "wasi.fd_write", err); /* checked above */
            if (pass == 0)
                lines += line_count(p, len, &cur);
            else
                line_feed(h, k, p, len);
        }
        if (pass == 0 && (st = charge_units(h, lines * HOST_LOG_LINE_FUEL, err)) != MT_OK)
            return st;
    }
    put_u32(nw, (uint32_t)total);
    RET_I32(WASI_ESUCCESS);
    return MT_OK;
}

HOSTFN(w_fd_read)
{
    (void)s;
    hctx *h = env;
    if (ARG_I32(0) != 0) {
        RET_I32(WASI_EBADF);
        return charge(h, 0, err);
    }
    uint8_t *nr = gmem(h, ARG_I32(3), 4, "wasi.fd_read", err);
    if (!nr)
        return err->code;
    put_u32(nr, 0); /* stdin is empty */
    RET_I32(WASI_ESUCCESS);
    return charge(h, 0, err);
}

HOSTFN(w_fd_close)
{
    (void)s;
    RET_I32(ARG_I32(0) <= 2 ? WASI_ESUCCESS : WASI_EBADF);
    return charge(env, 0, err);
}

HOSTFN(w_fd_seek)
{
    (void)s;
    RET_I32(ARG_I32(0) <= 2 ? WASI_ESPIPE : WASI_EBADF);
    return charge(env, 0, err);
}

HOSTFN(w_fd_fdstat_get)
{
    (void)s;
    hctx *h = env;
    uint32_t fd = ARG_I32(0);
    if (fd > 2) {
        RET_I32(WASI_EBADF);
        return charge(h, 0, err);
    }
    uint8_t *p = gmem(h, ARG_I32(1), 24, "wasi.fd_fdstat_get", err);
    if (!p)
        return err->code;
    memset(p, 0, 24);
    p[0] = 2;                                        /* character device */
    put_u64(p + 8, fd == 0 ? (1u << 1) : (1u << 6)); /* fd_read / fd_write */
    RET_I32(WASI_ESUCCESS);
    return charge(h, 0, err);
}

HOSTFN(w_fd_prestat)
{
    (void)s;
    (void)args;
    RET_I32(WASI_EBADF); /* no preopened directories: no files at all */
    return charge(env, 0, err);
}

HOSTFN(w_proc_exit)
{
    (void)s;
    (void)results;
    hctx *h = env;
    h->exited = true;
    h->exit_code = ARG_I32(0);
    return mt_err_set(err, MT_EINVAL, "proc_exit(%u)", h->exit_code);
}

HOSTFN(w_random_get)
{
    (void)s;
    hctx *h = env;
    uint32_t len = ARG_I32(1);
    uint8_t *p = gmem(h, ARG_I32(0), len, "wasi.random_get", err);
    if (!p)
        return err->code;
    mt_status st = charge_units(
        h, HOST_CALL_FUEL + (len ? HOST_RANDOM_FUEL : 0) + len / HOST_BYTES_PER_UNIT, err);
    if (st != MT_OK)
        return st;
    if (len && mt_random(p, len, err) != MT_OK)
        return err->code;
    RET_I32(WASI_ESUCCESS);
    return MT_OK;
}

HOSTFN(w_sched_yield)
{
    (void)s;
    (void)args;
    RET_I32(WASI_ESUCCESS);
    return charge(env, 0, err);
}

/* Clock id -> POSIX clock, or -1. */
static int wasi_clock(uint32_t id)
{
    switch (id) {
    case 0:
        return CLOCK_REALTIME;
    case 1:
        return CLOCK_MONOTONIC;
    case 2:
        return CLOCK_PROCESS_CPUTIME_ID;
    case 3:
        return CLOCK_THREAD_CPUTIME_ID;
    default:
        return -1;
    }
}

HOSTFN(w_clock_time_get)
{
    (void)s;
    hctx *h = env;
    int c = wasi_clock(ARG_I32(0));
    if (!h->clock || c < 0) {
        RET_I32(h->clock ? WASI_EINVAL : WASI_EACCES);
        return charge(h, 0, err);
    }
    uint8_t *p = gmem(h, ARG_I32(2), 8, "wasi.clock_time_get", err);
    if (!p)
        return err->code;
    bool sys = c == CLOCK_PROCESS_CPUTIME_ID || c == CLOCK_THREAD_CPUTIME_ID;
    mt_status st = charge_units(h, HOST_CALL_FUEL + (sys ? HOST_SYSCALL_FUEL : 0), err);
    if (st != MT_OK)
        return st;
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0) {
        RET_I32(WASI_EINVAL);
        return MT_OK;
    }
    put_u64(p, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
    RET_I32(WASI_ESUCCESS);
    return MT_OK;
}

HOSTFN(w_clock_res_get)
{
    (void)s;
    hctx *h = env;
    if (!h->clock || wasi_clock(ARG_I32(0)) < 0) {
        RET_I32(h->clock ? WASI_EINVAL : WASI_EACCES);
        return charge(h, 0, err);
    }
    uint8_t *p = gmem(h, ARG_I32(1), 8, "wasi.clock_res_get", err);
    if (!p)
        return err->code;
    put_u64(p, 1000); /* 1 us */
    RET_I32(WASI_ESUCCESS);
    return charge(h, 0, err);
}

/* key_sign(data, len, sig, cap) -> i32: the signature of data[0..len) by
 * the KeyStore key that the task argument wasm_key names (docs/keystore.md, "Keys in tasks"),
 * its length; -1 no key (argument absent), -2 cap too small (512 always
 * suffices for the KeyStore's key types), -3 signing failed. */
HOSTFN(h_key_sign)
{
    (void)s;
    hctx *h = env;
    uint32_t len = ARG_I32(1), cap = ARG_I32(3);
    const uint8_t *data = gmem(h, ARG_I32(0), len, "mesatee.key_sign", err);
    uint8_t *buf = gmem(h, ARG_I32(2), cap, "mesatee.key_sign", err);
    if (!data || !buf)
        return err->code;
    mt_status st = charge(h, len, err);
    if (st != MT_OK)
        return st;
    const mt_bctx_key *k = mt_bctx_key_find(h->ctx, "wasm_key");
    if (!k) {
        RET_I32(-1);
        return MT_OK;
    }
    uint8_t *sig = NULL;
    size_t n = 0;
    mt_err serr;
    if (mt_bctx_key_sign(k, data, len, &sig, &n, &serr) != MT_OK) {
        mt_bctx_log(h->ctx, "mesatee.key_sign: %s", serr.msg);
        RET_I32(-3);
        return MT_OK;
    }
    h->ctx->key_signs++; /* metered: a signature was made, whether or not it fits */
    if (n > cap) {
        RET_I32(-2);
    } else {
        memcpy(buf, sig, n);
        RET_I32(n);
    }
    free(sig);
    return MT_OK;
}

/* ---- the import table ------------------------------------------------------ */

typedef struct host_import {
    const char *module, *name;
    const char *params, *results; /* 'i' i32, 'I' i64 */
    mt_wasm_host_fn fn;
} host_import;

static const char M[] = "mesatee", W[] = "wasi_snapshot_preview1";
static const host_import imports[] = {
    {M, "arg_get", "iiii", "i", h_arg_get},
    {M, "input_open", "ii", "i", h_input_open},
    {M, "input_size", "i", "I", h_input_size},
    {M, "input_read", "iii", "i", h_input_read},
    {M, "output_open", "ii", "i", h_output_open},
    {M, "output_write", "iii", "i", h_output_write},
    {M, "log", "ii", "", h_log},
    {M, "set_result", "ii", "i", h_set_result},
    {M, "key_sign", "iiii", "i", h_key_sign},
    {W, "args_get", "ii", "i", w_args_get},
    {W, "args_sizes_get", "ii", "i", w_args_sizes_get},
    {W, "environ_get", "ii", "i", w_environ_get},
    {W, "environ_sizes_get", "ii", "i", w_environ_sizes_get},
    {W, "fd_write", "iiii", "i", w_fd_write},
    {W, "fd_read", "iiii", "i", w_fd_read},
    {W, "fd_close", "i", "i", w_fd_close},
    {W, "fd_seek", "iIii", "i", w_fd_seek},
    {W, "fd_fdstat_get", "ii", "i", w_fd_fdstat_get},
    {W, "fd_prestat_get", "ii", "i", w_fd_prestat},
    {W, "fd_prestat_dir_name", "iii", "i", w_fd_prestat},
    {W, "proc_exit", "i", "", w_proc_exit},
    {W, "random_get", "ii", "i", w_random_get},
    {W, "sched_yield", "", "i", w_sched_yield},
    {W, "clock_time_get", "iIi", "i", w_clock_time_get},
    {W, "clock_res_get", "ii", "i", w_clock_res_get},
};

static const host_import *find_import(const char *module, size_t mlen, const char *name,
                                      size_t nlen)
{
    for (size_t i = 0; i < sizeof imports / sizeof imports[0]; i++) {
        const host_import *hi = &imports[i];
        if (strlen(hi->module) == mlen && !memcmp(hi->module, module, mlen) &&
            strlen(hi->name) == nlen && !memcmp(hi->name, name, nlen))
            return hi;
    }
    return NULL;
}

static size_t types_of(const char *sig, uint8_t *out)
{
    size_t n = 0;
    for (; sig[n]; n++)
        out[n] = sig[n] == 'I' ? MT_WASM_I64 : MT_WASM_I32;
    return n;
}

static mt_status resolve(void *env, const char *module, size_t mlen, const char *name, size_t nlen,
                         mt_wasm_extern *out, mt_err *err)
{
    hctx *h = env;
    const host_import *hi = find_import(module, mlen, name, nlen);
    if (!hi)
        return mt_err_set(err, MT_ENOTFOUND, "import %.*s.%.*s is not provided", (int)mlen, module,
                          (int)nlen, name);
    uint8_t p[8], r[2];
    size_t np = types_of(hi->params, p), nr = types_of(hi->results, r);
    out->kind = MT_WASM_EXTERN_FUNC;
    return mt_wasm_func_new_host(h->s, p, np, r, nr, hi->fn, h, &out->of.func, err);
}

/* ---- registration check ------------------------------------------------------ */

mt_status mt_wasm_fn_check(const uint8_t *module, size_t len, mt_err *err)
{
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.max_module_bytes = MT_WASM_FN_MAX_MODULE;
    mt_wasm_module *m = NULL;
    mt_status st = mt_wasm_module_new(module, len, &lim, &m, err);
    if (st != MT_OK)
        return st;
    for (size_t i = 0; i < mt_wasm_module_num_imports(m); i++) {
        const char *mod, *name;
        size_t ml, nl;
        uint8_t kind;
        mt_wasm_module_import(m, i, &mod, &ml, &name, &nl, &kind);
        if (kind != MT_WASM_EXTERN_FUNC || !find_import(mod, ml, name, nl)) {
            st = mt_err_set(err, MT_EINVAL,
                            "wasm: import %zu (%.*s.%.*s) is not part of the mesatee host API "
                            "(no files, network or other WASI calls; see docs/wasm-functions.md)",
                            i, (int)(ml > 64 ? 64 : ml), mod, (int)(nl > 64 ? 64 : nl), name);
            goto out;
        }
    }
    bool has_start = false, has_mem = false;
    for (size_t i = 0; i < mt_wasm_module_num_exports(m); i++) {
        const char *name;
        size_t nl;
        uint8_t kind;
        mt_wasm_module_export(m, i, &name, &nl, &kind);
        if (nl == 6 && !memcmp(name, "_start", 6) && kind == MT_WASM_EXTERN_FUNC)
            has_start = true;
        if (nl == 6 && !memcmp(name, "memory", 6) && kind == MT_WASM_EXTERN_MEMORY)
            has_mem = true;
    }
    if (!has_start || !has_mem)
        st = mt_err_set(err, MT_EINVAL,
                        "wasm: the module must export a function \"_start\" and its memory "
                        "as \"memory\" (build it with clang --target=wasm32-wasi)");
out:
    mt_wasm_module_free(m);
    return st;
}

/* ---- run ------------------------------------------------------------------- */

/* Integer task argument within [lo, hi], or dflt when absent. */
static mt_status arg_u64(const mt_bctx *ctx, const char *name, uint64_t dflt, uint64_t lo,
                         uint64_t hi, uint64_t *out, mt_err *err)
{
    const char *v = mt_bctx_arg(ctx, name);
    *out = dflt;
    if (!v)
        return MT_OK;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || x < lo || x > hi)
        return mt_err_set(err, MT_EINVAL, "argument %s must be a number from %llu to %llu", name,
                          (unsigned long long)lo, (unsigned long long)hi);
    *out = x;
    return MT_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* argv = "main", then "name=value" for each task argument, sorted. */
static mt_status build_argv(hctx *h, mt_err *err)
{
    size_t n = h->ctx->args ? json_object_size(h->ctx->args) : 0;
    if (!(h->argv = calloc(n + 1, sizeof *h->argv)) || !(h->argv[0] = strdup("main")))
        return mt_err_set(err, MT_ENOMEM, "out of memory");
    h->argc = 1;
    const char *k;
    json_t *v;
    if (h->ctx->args)
        json_object_foreach((json_t *)h->ctx->args, k, v)
        {
            const char *sv = json_string_value(v);
            size_t l = strlen(k) + 2 + (sv ? strlen(sv) : 0);
            char *a = malloc(l);
            if (!a)
                return mt_err_set(err, MT_ENOMEM, "out of memory");
            snprintf(a, l, "%s=%s", k, sv ? sv : "");
            h->argv[h->argc++] = a;
        }
    qsort(h->argv + 1, h->argc - 1, sizeof *h->argv, cmp_str);
    for (size_t i = 0; i < h->argc; i++)
        h->argv_bytes += strlen(h->argv[i]) + 1;
    return MT_OK;
}

mt_status mt_wasm_fn_run(mt_bctx *ctx, const uint8_t *module, size_t len, char **ret,
                         uint64_t *fuel_used, mt_err *err)
{
    *ret = NULL;
    *fuel_used = 0;
    hctx h = {.ctx = ctx};
    mt_wasm_module *m = NULL;
    uint64_t fuel, mem_mb;
    mt_status st;
    mt_err e;
    mt_err_clear(&e);
    if ((st = arg_u64(ctx, "wasm_fuel", MT_WASM_FN_DEFAULT_FUEL, 1, MT_WASM_FN_MAX_FUEL, &fuel,
                      err)) != MT_OK ||
        (st = arg_u64(ctx, "wasm_memory_mb", MT_WASM_FN_DEFAULT_MEM_MB, 1, MT_WASM_FN_MAX_MEM_MB,
                      &mem_mb, err)) != MT_OK)
        return st;
    const char *clk = mt_bctx_arg(ctx, "wasm_clock");
    h.clock = clk && !strcmp(clk, "1");
    mt_wasm_limits lim;
    mt_wasm_limits_default(&lim);
    lim.fuel = fuel;
    lim.max_memory_pages = (uint32_t)(mem_mb * 16);
    lim.max_module_bytes = MT_WASM_FN_MAX_MODULE;
    if ((st = mt_wasm_module_new(module, len, &lim, &m, &e)) != MT_OK) {
        mt_err_set(err, st, "wasm module rejected: %s", e.msg);
        return st;
    }
    if (!(h.s = mt_wasm_store_new(&lim)) ||
        !(h.in_pos = calloc(ctx->n_inputs + 1, sizeof *h.in_pos))) {
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = build_argv(&h, err)) != MT_OK)
        goto out;
    mt_wasm_instance *inst;
    mt_wasm_extern mem, start;
    if ((st = mt_wasm_instantiate(h.s, m, resolve, &h, &inst, &e)) != MT_OK) {
        if (st == MT_ETOOBIG)
            mt_err_set(err, st, "wasm: %s (memory cap %llu MiB: raise wasm_memory_mb)", e.msg,
                       (unsigned long long)mem_mb);
        else
            mt_err_set(err, st, "wasm: instantiation failed: %s", e.msg);
        goto out;
    }
    if (mt_wasm_instance_export(inst, "memory", 6, &mem, &e) != MT_OK ||
        mem.kind != MT_WASM_EXTERN_MEMORY ||
        mt_wasm_instance_export(inst, "_start", 6, &start, &e) != MT_OK ||
        start.kind != MT_WASM_EXTERN_FUNC) {
        st = mt_err_set(err, MT_EINVAL, "wasm: the module must export \"memory\" and \"_start\"");
        goto out;
    }
    const uint8_t *pt, *rt;
    size_t np, nr;
    mt_wasm_func_type(start.of.func, &pt, &np, &rt, &nr);
    if (np || nr) {
        st = mt_err_set(err, MT_EINVAL, "wasm: \"_start\" must take and return nothing");
        goto out;
    }
    h.mem = mem.of.memory;
    st = mt_wasm_func_call(h.s, start.of.func, NULL, 0, NULL, 0, &e);
    line_flush(&h);
    if (st != MT_OK && h.exited)
        st = MT_OK;
    if (st != MT_OK) {
        if (h.fuel_out || mt_wasm_store_trap(h.s) == MT_WASM_TRAP_FUEL)
            mt_err_set(err, MT_EQUOTA,
                       "wasm: fuel exhausted after %llu instructions (task argument wasm_fuel; "
                       "the cap is %llu)",
                       (unsigned long long)fuel, (unsigned long long)MT_WASM_FN_MAX_FUEL);
        else
            mt_err_set(err, st, "wasm: %s", e.msg);
        goto out;
    }
    if (h.exit_code != 0) {
        st = mt_err_set(err, MT_EINVAL, "wasm: the module exited with status %u", h.exit_code);
        goto out;
    }
    *ret = h.result ? h.result : strdup("");
    h.result = NULL;
    if (!*ret)
        st = mt_err_set(err, MT_ENOMEM, "out of memory");
out:
    if (h.s) {
        uint64_t left = mt_wasm_store_fuel(h.s);
        *fuel_used = left <= fuel ? fuel - left : 0;
    }
    mt_wasm_store_free(h.s);
    mt_wasm_module_free(m);
    free(h.in_pos);
    free(h.result);
    for (size_t i = 0; h.argv && i < h.argc; i++)
        free(h.argv[i]);
    free(h.argv);
    return st;
}

/* ---- the daemon's view (mt_executor.h) ------------------------------------- */

/* mt_executor_wasm_check runs mt_wasm_fn_check in a sandboxed worker: see
 * executor.c. */

size_t mt_executor_wasm_max_bytes(void)
{
    return MT_WASM_FN_MAX_MODULE;
}
