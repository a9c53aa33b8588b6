/* wasm_fn: functions of executor type "wasm": a WebAssembly module run by
 * mt_wasm inside the sandboxed worker with the mesatee host API.
 *
 * Contract
 * - mt_wasm_fn_check() is what the core runs at registration: the module
 *   must decode and validate, import nothing but the host API below (with
 *   the right signatures), export its memory as "memory" and a function
 *   "_start" of type [] -> []. Errors are MT_EINVAL (MT_ETOOBIG for size)
 *   naming the section and offset (from mt_wasm) or the import/export.
 * - mt_wasm_fn_run() runs inside the worker after the sandbox is closed:
 *   decodes the module, instantiates it with the limits taken from the task
 *   arguments (within the platform caps below), calls "_start" and reports
 *   the return value the module set (heap string in *ret), the exit status
 *   and the fuel used. Inputs, outputs, arguments and the log are those of
 *   the built-in context (mt_builtin.h): outputs are encrypted under their
 *   owners' keys by the context's writers as the module writes them.
 *   A trap, fuel exhaustion, a non-zero exit status or a misuse of the host
 *   API fails the task with the reason; the worker never crashes.
 * - Host imports (module "mesatee"; pointers and lengths are i32 offsets in
 *   the module's memory; a pointer range outside it traps):
 *     arg_get(name, name_len, buf, cap) -> i32      value length, -1 absent
 *     input_open(slot, slot_len) -> i32              handle, -1 not assigned
 *     input_size(h) -> i64                           plaintext bytes, -2 bad h
 *     input_read(h, buf, cap) -> i32                 bytes read, 0 at end
 *     output_open(slot, slot_len) -> i32             handle, -1 not assigned
 *     output_write(h, buf, len) -> i32               len, -2 bad handle
 *     log(msg, len)                                  one log line
 *     set_result(buf, len) -> i32                    0, -3 too long/not UTF-8
 *     key_sign(data, len, sig, cap) -> i32           signature length by the
 *                                                    KeyStore key named by the
 *                                                    task argument wasm_key
 *                                                    (docs/keystore.md, "Keys in tasks");
 *                                                    -1 none, -2 cap too small
 *                                                    (512 suffices), -3 failed
 *   and from "wasi_snapshot_preview1": args_get, args_sizes_get (argv[0] is
 *   "main", then "name=value" per task argument, sorted), environ_get,
 *   environ_sizes_get (empty), fd_write (fd 1 and 2 go to the log, line by
 *   line), fd_read (fd 0 at end of file), fd_close, fd_seek, fd_fdstat_get,
 *   fd_prestat_get, fd_prestat_dir_name (no preopened directories),
 *   proc_exit, random_get, sched_yield, clock_time_get and clock_res_get
 *   (ERRNO_ACCES unless the task argument wasm_clock is "1").
 * - Limits from task arguments: wasm_fuel (default 10^10, cap 10^12),
 *   wasm_memory_mb (default 256, cap 1024), wasm_clock ("1" allows clocks),
 *   wasm_key / wasm_key_version (a KeyStore key OWNER/NAME for key_sign).
 * Thread-safety: reentrant (no globals). */
#ifndef MT_WASM_FN_H
#define MT_WASM_FN_H

#include <stddef.h>
#include <stdint.h>

#include "mt_builtin.h"
#include "mt_err.h"

#define MT_WASM_FN_MAX_MODULE (8u * 1024 * 1024) /* bytes of a module */
#define MT_WASM_FN_DEFAULT_FUEL 10000000000ULL
#define MT_WASM_FN_MAX_FUEL 1000000000000ULL
#define MT_WASM_FN_DEFAULT_MEM_MB 256u
#define MT_WASM_FN_MAX_MEM_MB 1024u
#define MT_WASM_FN_MAX_RESULT (64u * 1024)

/* Checks a module at registration (see above). */
mt_status mt_wasm_fn_check(const uint8_t *module, size_t len, mt_err *err);

/* Runs a module (see above). *fuel_used is set also on failure. */
mt_status mt_wasm_fn_run(mt_bctx *ctx, const uint8_t *module, size_t len, char **ret,
                         uint64_t *fuel_used, mt_err *err);

#endif
