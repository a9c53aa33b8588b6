/* cli_help: everything the CLI prints ABOUT itself, generated from the one
 * command and option table in main.c (the table the parser uses): `--help`
 * texts and usage lines, the mesatee(1) man page (troff), the bash
 * completion script, and "did you mean" suggestions for typos.
 *
 * Ownership: returns pointers into the static tables or caller buffers only.
 * Errors: the printers return 0, or -1 if writing to f failed.
 * Thread-safety: single-threaded (the CLI is). */
#ifndef MT_CLI_HELP_H
#define MT_CLI_HELP_H

#include <stddef.h>
#include <stdio.h>

#include "cli.h"

/* The tables (main.c). */
const cli_cmd *cli_commands(size_t *n);
const cli_opt *cli_global_opts(void);

/* "usage: mesatee GROUP SUB ARGS [--opt X]..." (wrapped). */
void cli_help_usage(FILE *f, const cli_cmd *c);
/* `mesatee GROUP SUB --help`: usage, summary, every option with its
 * description and default, the global options. */
int cli_help_command(FILE *f, const cli_cmd *c);
/* `mesatee GROUP --help`: the group's commands with their usage. */
int cli_help_group(FILE *f, const char *group);
/* `mesatee --help`: every command and the global options. */
int cli_help_top(FILE *f);
/* One short line pointing at --help (after a usage error). */
void cli_help_hint(FILE *f, const cli_cmd *c);

/* Levenshtein distance of a and b (each at most 63 bytes considered). */
size_t cli_edit_distance(const char *a, const char *b);
/* The candidate nearest to word if it is close enough to be a typo (distance
 * <= 2 and less than half the word), else NULL. */
const char *cli_closest(const char *word, const char *const *cands, size_t n);

/* Hidden command `mesatee __man`: the troff source of mesatee(1). */
int cli_cmd_man(cli_ctx *ctx);
/* `mesatee completion bash`: the bash completion script. */
int cli_cmd_completion_bash(cli_ctx *ctx);

/* Hidden command `mesatee __check-help`: checks that every command has a
 * summary and every option a description, a default and a metavar, and that
 * each short form means one option everywhere; names each problem (exit 1). */
int cli_cmd_check_help(cli_ctx *ctx);

#endif
