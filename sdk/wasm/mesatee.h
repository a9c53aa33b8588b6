/* mesatee.h: the SDK for mesatee functions written in C and compiled to
 * WebAssembly (executor type "wasm"). Header only; no library to link.
 *
 *   clang --target=wasm32-wasi -O2 -I sdk/wasm -Wl,--strip-all fn.c -o fn.wasm
 *   mesatee function register --name fn --wasm fn.wasm --input-slot a ...
 *
 * The function is an ordinary C program: main() runs once per task inside
 * the platform's sandboxed worker. It reaches the world only through the
 * calls below (module "mesatee") and a small WASI subset (printf/puts and
 * fprintf(stderr) go to the task log line by line, argv holds "main" then
 * "name=value" for each task argument, exit()/a non-zero return from main
 * fails the task, getentropy()/arc4random come from the platform's RNG,
 * clock_gettime()/time() work only when the task argument wasm_clock is
 * "1"). There are no files, no network and no environment variables.
 *
 * Inputs are decrypted by the platform; outputs are encrypted under each
 * output owner's key as they are written: the function never sees a key.
 * Limits come from task arguments: wasm_fuel (instructions, default 10^10),
 * wasm_memory_mb (default 256). See docs/wasm-functions.md. */
#ifndef MESATEE_WASM_SDK_H
#define MESATEE_WASM_SDK_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__wasm__)
#error "mesatee.h is for functions compiled with clang --target=wasm32-wasi"
#endif

#define MT_IMPORT(name) __attribute__((import_module("mesatee"), import_name(#name)))

/* ---- the raw host calls (pointers are addresses in this module's memory) ---- */

/* Value of task argument name: copies at most cap bytes (no NUL added) and
 * returns the full length, or -1 when the argument is absent. */
MT_IMPORT(arg_get)
int32_t mesatee_arg_get(const char *name, size_t name_len, char *buf, size_t cap);
/* Input slot by name: a handle >= 0, or -1 when no file is assigned to it.
 * Opening again rewinds it. */
MT_IMPORT(input_open) int32_t mesatee_input_open(const char *slot, size_t slot_len);
/* Plaintext size of an input in bytes (-2: bad handle). */
MT_IMPORT(input_size) int64_t mesatee_input_size(int32_t h);
/* Reads up to cap bytes; returns the count, 0 at the end (-2: bad handle). */
MT_IMPORT(input_read) int32_t mesatee_input_read(int32_t h, void *buf, size_t cap);
/* Output slot by name: a handle >= 0, or -1 when no file is assigned to it. */
MT_IMPORT(output_open) int32_t mesatee_output_open(const char *slot, size_t slot_len);
/* Appends len bytes to an output (encrypted by the platform); returns len
 * (-2: bad handle). */
MT_IMPORT(output_write) int32_t mesatee_output_write(int32_t h, const void *buf, size_t len);
/* Appends one line to the task log (non-printable bytes shown as '?'). Never
 * log secrets: every participant reads the log. */
MT_IMPORT(log) void mesatee_log(const char *msg, size_t len);
/* Sets the task's return value (UTF-8, at most 64 KiB; visible to every
 * participant). Returns 0, or -3 when too long or not UTF-8. */
MT_IMPORT(set_result) int32_t mesatee_set_result(const char *buf, size_t len);
/* Signature of data by the KeyStore key named by the task argument wasm_key
 * (docs/keystore.md, "Keys in tasks"): its length; -1 no key, -2 cap too small (512
 * suffices), -3 signing failed. */
MT_IMPORT(key_sign)
int32_t mesatee_key_sign(const void *data, size_t len, void *sig, size_t cap);

/* ---- convenience wrappers ---------------------------------------------------- */

/* Argument as a NUL-terminated string in buf (truncated to cap-1 bytes);
 * returns buf, or NULL when absent. */
static inline char *mt_arg(const char *name, char *buf, size_t cap)
{
    int32_t n = mesatee_arg_get(name, strlen(name), buf, cap ? cap - 1 : 0);
    if (n < 0 || cap == 0)
        return NULL;
    buf[(size_t)n < cap - 1 ? (size_t)n : cap - 1] = 0;
    return buf;
}

/* Integer argument, or dflt when absent or not a number. */
static inline long long mt_arg_int(const char *name, long long dflt)
{
    char buf[32], *end;
    if (!mt_arg(name, buf, sizeof buf))
        return dflt;
    long long v = strtoll(buf, &end, 10);
    return end == buf || *end ? dflt : v;
}

static inline int32_t mt_input_open(const char *slot)
{
    return mesatee_input_open(slot, strlen(slot));
}

/* A whole input as a NUL-terminated heap buffer (free() it); *len gets its
 * size. NULL when the slot has no file or memory runs out. */
static inline char *mt_input_read_all(const char *slot, size_t *len)
{
    int32_t h = mt_input_open(slot);
    if (h < 0)
        return NULL;
    int64_t size = mesatee_input_size(h);
    if (size < 0 || (uint64_t)size >= SIZE_MAX)
        return NULL;
    char *buf = (char *)malloc((size_t)size + 1);
    if (!buf)
        return NULL;
    size_t got = 0;
    int32_t n;
    while (got < (size_t)size && (n = mesatee_input_read(h, buf + got, (size_t)size - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    if (len)
        *len = got;
    return buf;
}

static inline int32_t mt_output_open(const char *slot)
{
    return mesatee_output_open(slot, strlen(slot));
}

static inline int mt_output_write(int32_t h, const void *buf, size_t len)
{
    return mesatee_output_write(h, buf, len) == (int32_t)len ? 0 : -1;
}

static inline int mt_output_puts(int32_t h, const char *s)
{
    return mt_output_write(h, s, strlen(s));
}

static inline void mt_log(const char *msg)
{
    mesatee_log(msg, strlen(msg));
}

static inline int mt_set_result(const char *s)
{
    return mesatee_set_result(s, strlen(s)) == 0 ? 0 : -1;
}

#endif
