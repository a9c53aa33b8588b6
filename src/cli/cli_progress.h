/* cli_progress: one status line on stderr for uploads, downloads and
 * `task wait`, redrawn in place ("\r"), when stderr is a terminal.
 * MESATEE_PROGRESS=1 forces it (e.g. for tests), =0 turns it off.
 *
 * Ownership: the display state is static (one transfer at a time).
 * Thread-safety: single-threaded, like the CLI. */
#ifndef MT_CLI_PROGRESS_H
#define MT_CLI_PROGRESS_H

#include "cli.h"

/* Shows progress of ctx's client requests under the label `what` (e.g.
 * "upload data.mtf") until cli_progress_end; no-op when not wanted. */
void cli_progress_begin(cli_ctx *ctx, const char *what);
/* Ends the line (newline) if one was drawn and detaches the callback. */
void cli_progress_end(cli_ctx *ctx);

#endif
