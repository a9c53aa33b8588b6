/* python_fn: functions of executor type "python": Python 3 source run by
 * CPython 3.11 (Debian libpython3.11) embedded in the sandboxed worker.
 * Only mesatee-worker links this module (and libpython); the daemon never
 * embeds Python: it has the source compiled by a worker at registration
 * (mt_executor_python_check) and run by a worker per task.
 *
 * Contract
 * - mt_python_fn_start() initialises an isolated interpreter (no site, no
 *   environment, no user directory, no bytecode writes, no signal handlers;
 *   sys.path = the Debian standard library and dist-packages), installs the
 *   audit hook (messages for refused imports, file writes, reads outside the
 *   installation, sockets, processes) and the built-in module `mesatee`
 *   bound to ctx. Call it before the sandbox closes (it reads the standard
 *   library); then mt_sandbox_lock_python with mt_python_fn_ro_paths().
 *   It also applies python_recursion_limit (task argument, 50..10000,
 *   default 1000) and takes the import allow-list from the task argument
 *   python_modules (the list participants approved, python_modules.h;
 *   refused unless canonical), else the built-in table; that argument is
 *   kept out of argv and mesatee.args.
 * - A payload that starts with a zip signature is a zip of modules
 *   (docs/python-functions.md "Zip payloads"): read by Python's zipfile over
 *   the bytes in memory, entry __main__.py or main.py, the other modules
 *   served from memory by a meta-path finder; names, sizes (declared: 8 MiB
 *   a module, 32 MiB in all), encodings and every module's syntax are
 *   checked by mt_python_fn_check ("python: ENTRY: line L, column C: MSG").
 * - mesatee.key_sign(data) signs with the KeyStore key that the argument
 *   python_key names (ctx->keys); the key is in this process while the
 *   function runs (docs: approve only code you trust with it).
 * - mt_python_fn_check() compiles source (after the sandbox closed):
 *   MT_EINVAL "python: line L, column C: MESSAGE" for a syntax error,
 *   "python: the source is not UTF-8 (byte offset N)" for bad encoding,
 *   MT_ETOOBIG over MT_PYTHON_FN_MAX_SOURCE.
 * - mt_python_fn_run() compiles and runs the module (name
 *   "__mesatee_function__"), then calls entrypoint(argv) (argv[0] "main",
 *   then "name=value" per task argument, sorted) or main(ctx) (ctx = the
 *   `mesatee` module). The return value (str() of it, unless the function
 *   called mesatee.set_result) is the task's result. An exception fails the
 *   task: reason "python: the function raised TYPE (traceback in the log)",
 *   the traceback goes to the log, which every participant reads (the
 *   exception's message may quote data the function handled: docs).
 *   Output writes beyond python_max_output_mb (task argument, default 1024)
 *   raise an exception in the function.
 * - The import allow-list (mt_python_fn_allowed) applies to imports made by
 *   the function's own module: "module X is not allowed in mesatee
 *   functions". It is a message, not the boundary: the OS sandbox is.
 * Thread-safety: one interpreter per process; call from one thread. */
#ifndef MT_PYTHON_FN_H
#define MT_PYTHON_FN_H

#include <stddef.h>
#include <stdint.h>

#include "mt_builtin.h"
#include "mt_err.h"

#define MT_PYTHON_FN_MAX_SOURCE (8u * 1024 * 1024)
#define MT_PYTHON_FN_MAX_RESULT (64u * 1024)

/* Top-level module names a function may import (NULL-terminated). */
const char *const *mt_python_fn_allowed(void);
/* Directories the sandbox lets the interpreter read (NULL-terminated). */
const char *const *mt_python_fn_ro_paths(void);

mt_status mt_python_fn_start(mt_bctx *ctx, mt_err *err);
/* The zygote's init hook for "python" (zygote_server.h): starts the
 * interpreter and imports numpy and pandas (when installed) once, holding no
 * secret and no task state; each forked child then only runs the
 * interpreter's after-fork steps and reseeds the generators in
 * mt_python_fn_start. Never fails: an interpreter that did not start is
 * reported by each python task (other executor types are unaffected). */
mt_status mt_python_fn_zygote_init(mt_err *err);
mt_status mt_python_fn_check(const uint8_t *src, size_t len, mt_err *err);
mt_status mt_python_fn_run(mt_bctx *ctx, const uint8_t *src, size_t len, char **ret,
                           mt_err *err);

#endif
