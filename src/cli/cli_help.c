/* cli_help: --help, usage lines, man page, bash completion and typo
 * suggestions, all generated from main.c's command and option tables. See
 * cli_help.h. */
#include "cli_help.h"

#include <stdbool.h>
#include <string.h>

#define WRAP_COL 78

/* ======================================================================== */
/* Small helpers                                                             */

static const char *metavar(const cli_opt *o)
{
    return o->metavar && *o->metavar ? o->metavar : "VALUE";
}

static bool is_required(const cli_opt *o)
{
    return o->def && !strcmp(o->def, "required");
}

static bool is_hidden(const cli_cmd *c)
{
    return (c->flags & CLI_HIDDEN) != 0;
}

/* "group sub" or "group" into buf. */
static const char *cmd_name(const cli_cmd *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s", c->group, c->sub ? " " : "", c->sub ? c->sub : "");
    return buf;
}

/* Appends word to a line that wraps at WRAP_COL with an 8-space indent. */
static void wrap_word(FILE *f, size_t *col, const char *word)
{
    size_t n = strlen(word);
    if (*col + 1 + n > WRAP_COL && *col > 8) {
        fputs("\n       ", f);
        *col = 7;
    }
    fprintf(f, " %s", word);
    *col += 1 + n;
}

/* ======================================================================== */
/* --help                                                                    */

void cli_help_usage(FILE *f, const cli_cmd *c)
{
    char name[64], word[160];
    fprintf(f, "usage: mesatee %s", cmd_name(c, name, sizeof name));
    size_t col = strlen("usage: mesatee ") + strlen(name);
    if (c->args_usage && *c->args_usage)
        wrap_word(f, &col, c->args_usage);
    for (const cli_opt *o = c->opts; o && o->name; o++) {
        char arg[120] = "";
        if (o->has_arg)
            snprintf(arg, sizeof arg, " %s", metavar(o));
        if (is_required(o))
            snprintf(word, sizeof word, "--%s%s", o->name, arg);
        else
            snprintf(word, sizeof word, "[--%s%s]%s", o->name, arg, o->repeatable ? "..." : "");
        wrap_word(f, &col, word);
    }
    fputc('\n', f);
}

void cli_help_hint(FILE *f, const cli_cmd *c)
{
    char name[64];
    cli_help_usage(f, c);
    fprintf(f, "Run 'mesatee %s --help' for what each option means.\n",
            cmd_name(c, name, sizeof name));
}

/* Writes text from column col on, wrapping at spaces before WRAP_COL onto
 * lines indented by indent columns. */
static void wrap_text(FILE *f, size_t col, size_t indent, const char *text)
{
    bool line_start = true;
    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        size_t wl = strcspn(p, " ");
        if (!wl)
            break;
        if (!line_start && col + 1 + wl > WRAP_COL) {
            fprintf(f, "\n%*s", (int)indent, "");
            col = indent;
        } else if (!line_start) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, wl, f);
        col += wl;
        p += wl;
        line_start = false;
    }
    fputc('\n', f);
}

/* "  -o, --out FILE" + description + default, aligned at column 32. */
static void print_opt(FILE *f, const cli_opt *o)
{
    char head[160];
    int n =
        snprintf(head, sizeof head, "  %c%c%s--%s%s%s%s", o->short_name ? '-' : ' ',
                 o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
                 o->has_arg ? " " : "", o->has_arg ? metavar(o) : "", o->repeatable ? " ..." : "");
    if (n < 0)
        return;
    fputs(head, f);
    if ((size_t)n >= 31)
        fprintf(f, "\n%32s", "");
    else
        fprintf(f, "%*s", 32 - n, "");
    char text[600];
    snprintf(text, sizeof text, "%s (default: %s)", o->desc ? o->desc : "",
             o->def ? o->def : "none");
    wrap_text(f, 32, 32, text);
}

static void print_global_opts(FILE *f)
{
    fputs("\nglobal options (before or after the command):\n", f);
    for (const cli_opt *o = cli_global_opts(); o->name; o++)
        print_opt(f, o);
}

int cli_help_command(FILE *f, const cli_cmd *c)
{
    cli_help_usage(f, c);
    fputc('\n', f);
    wrap_text(f, 0, 0, c->summary);
    if (c->opts && c->opts->name) {
        fputs("\noptions:\n", f);
        for (const cli_opt *o = c->opts; o->name; o++)
            print_opt(f, o);
    }
    print_global_opts(f);
    fputs("\nExit codes: 0 success, 1 failure, 2 usage error (see docs/cli.md, mesatee(1)).\n", f);
    return ferror(f) ? -1 : 0;
}

int cli_help_group(FILE *f, const char *group)
{
    size_t n;
    const cli_cmd *t = cli_commands(&n);
    fprintf(f, "commands of 'mesatee %s':\n", group);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].group, group) && !is_hidden(&t[i])) {
            fprintf(f, "  %-22s ", t[i].sub ? t[i].sub : t[i].group);
            wrap_text(f, 25, 25, t[i].summary);
        }
    fputc('\n', f);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].group, group) && !is_hidden(&t[i]))
            cli_help_usage(f, &t[i]);
    fprintf(f, "\nRun 'mesatee %s SUBCOMMAND --help' for what each option means.\n", group);
    return ferror(f) ? -1 : 0;
}

int cli_help_top(FILE *f)
{
    size_t n;
    const cli_cmd *t = cli_commands(&n);
    fputs("usage: mesatee [global options] COMMAND [SUBCOMMAND] [arguments] [options]\n"
          "\ncommands:\n",
          f);
    for (size_t i = 0; i < n; i++) {
        char name[64];
        if (is_hidden(&t[i]))
            continue;
        fprintf(f, "  %-26s ", cmd_name(&t[i], name, sizeof name));
        wrap_text(f, 29, 29, t[i].summary);
    }
    print_global_opts(f);
    fputs("\nRun 'mesatee COMMAND --help' for a command's options. See mesatee(1) and "
          "docs/cli.md.\n",
          f);
    return ferror(f) ? -1 : 0;
}

/* ======================================================================== */
/* Did you mean                                                              */

size_t cli_edit_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, 63), lb = strnlen(b, 63);
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *cli_closest(const char *word, const char *const *cands, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1, wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        if (!cands[i])
            continue;
        size_t d = cli_edit_distance(word, cands[i]);
        /* a prefix of a long name is also a likely slip ("--pass" for "--password-file") */
        if (wl >= 3 && !strncmp(cands[i], word, wl) && d > 0)
            d = 1;
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    if (best && best_d > 0 && best_d <= 2 && best_d * 2 < wl + 1)
        return best;
    return NULL;
}

/* ======================================================================== */
/* Man page                                                                  */

/* Writes s escaped for troff running text. */
static void troff_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else if (*s == '\n')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

static void man_opt(FILE *f, const cli_opt *o)
{
    fputs(".TP\n", f);
    if (o->short_name)
        fprintf(f, "\\fB\\-%c\\fR, ", o->short_name);
    fputs("\\fB\\-\\-", f);
    troff_text(f, o->name);
    fputs("\\fR", f);
    if (o->has_arg) {
        fputs(" \\fI", f);
        troff_text(f, metavar(o));
        fputs("\\fR", f);
    }
    if (o->repeatable)
        fputs(" ...", f);
    fputc('\n', f);
    troff_text(f, o->desc ? o->desc : "");
    fputs(" (default: ", f);
    troff_text(f, o->def ? o->def : "none");
    fputs(")\n", f);
}

int cli_cmd_man(cli_ctx *ctx)
{
    (void)ctx;
    FILE *f = stdout;
    size_t n;
    const cli_cmd *t = cli_commands(&n);
    fprintf(f,
            ".\\\" Generated by 'mesatee __man' from the CLI's option table; do not edit.\n"
            ".TH MESATEE 1 \"\" \"mesatee %s\" \"User Commands\"\n",
            mesatee_version());
    fputs(".SH NAME\n"
          "mesatee \\- secure multi-party computing service: daemon and client\n"
          ".SH SYNOPSIS\n"
          ".B mesatee\n"
          "[\\fIglobal options\\fR] \\fICOMMAND\\fR [\\fISUBCOMMAND\\fR] [\\fIarguments\\fR] "
          "[\\fIoptions\\fR]\n"
          ".br\n"
          ".B mesatee\n"
          "\\fICOMMAND\\fR [\\fISUBCOMMAND\\fR] \\fB\\-\\-help\\fR\n"
          ".SH DESCRIPTION\n"
          ".B mesatee\n"
          "is one binary: the daemon (\\fBmesatee serve\\fR) and the client of its REST API.\n"
          "Options may come anywhere after the command; \\fB\\-\\-name=value\\fR and "
          "\\fB\\-\\-name value\\fR both work, short forms take \\fB\\-o value\\fR or "
          "\\fB\\-ovalue\\fR; \\fB\\-\\-\\fR ends the options.\n"
          ".SH GLOBAL OPTIONS\n",
          f);
    for (const cli_opt *o = cli_global_opts(); o->name; o++)
        man_opt(f, o);
    fputs(".SH COMMANDS\n", f);
    for (size_t i = 0; i < n; i++) {
        if (is_hidden(&t[i]))
            continue;
        char name[64];
        fputs(".SS \"", f);
        troff_text(f, cmd_name(&t[i], name, sizeof name));
        if (t[i].args_usage && *t[i].args_usage) {
            fputc(' ', f);
            troff_text(f, t[i].args_usage);
        }
        fputs("\"\n", f);
        troff_text(f, t[i].summary);
        fputc('\n', f);
        for (const cli_opt *o = t[i].opts; o && o->name; o++)
            man_opt(f, o);
    }
    fputs(".SH OUTPUT\n"
          "With \\fB\\-\\-output json\\fR every command prints JSON on standard output "
          "(the server's answer unchanged, one document per line) and every error as one "
          "line on standard error:\n"
          ".PP\n"
          ".nf\n"
          "{\"error\":{\"message\":\"...\",\"code\":\"...\",\"http_status\":403,\"exit_code\":1}}\n"
          ".fi\n"
          ".PP\n"
          "\\fIcode\\fR is the server's error code for HTTP errors, \\fBusage\\fR for a "
          "usage error, libmesatee's status name for a client-side error (\\fBnetwork_error\\fR, "
          "\\fBcrypto_failed\\fR, \\fBattestation_failed\\fR, ...) and \\fBfailed\\fR otherwise; "
          "\\fIhttp_status\\fR is null without an "
          "HTTP answer. Uploads, downloads and \\fBtask wait\\fR report progress on "
          "standard error when it is a terminal.\n"
          ".SH ENVIRONMENT\n"
          ".TP\n.B MESATEE_SERVER\nserver URL (\\fB\\-\\-server\\fR)\n"
          ".TP\n.B MESATEE_CA\nCA or pinned certificate (\\fB\\-\\-ca\\fR)\n"
          ".TP\n.B MESATEE_TOKEN_FILE\ntoken file (\\fB\\-\\-token\\-file\\fR)\n"
          ".TP\n.B MESATEE_OUTPUT\n\\fBtext\\fR or \\fBjson\\fR (\\fB\\-\\-output\\fR)\n"
          ".TP\n.B MESATEE_CONFIG\nconfig file (\\fB\\-\\-config\\fR)\n"
          ".TP\n.B MESATEE_PASSWORD\nlogin password when no \\fB\\-\\-password\\-file\\fR\n"
          ".TP\n.B MESATEE_WORKER\nthe mesatee\\-worker executable\n"
          ".PP\n"
          "Precedence: flag, then environment, then config file, then default.\n"
          ".SH EXIT STATUS\n"
          ".TP\n.B 0\nsuccess\n"
          ".TP\n.B 1\nthe operation failed: server, network, TLS, file or crypto error "
          "(\\fBtask wait\\fR: the task did not finish)\n"
          ".TP\n.B 2\nusage error: unknown command or option, missing or malformed "
          "argument, bad config file\n"
          ".SH FILES\n"
          ".TP\n.I ~/.config/mesatee/config\nclient settings, one \\fIkey\\fR = \\fIvalue\\fR "
          "per line\n"
          ".TP\n.I ~/.config/mesatee/token\nthe login token (mode 0600)\n"
          ".SH SEE ALSO\n"
          "The documentation in docs/cli.md, docs/design.md and docs/attestation.md of the "
          "mesatee sources. Bash completion: \\fBmesatee completion bash\\fR.\n",
          f);
    return fflush(f) == 0 && !ferror(f) ? CLI_OK : cli_fail("cannot write the man page");
}

/* ======================================================================== */
/* Bash completion                                                           */

/* Prints every option of list (long and short forms), filtered by with_arg
 * (-1: all, 0: flags, 1: options with a value). */
static void sh_opts(FILE *f, const cli_opt *list, int with_arg)
{
    for (const cli_opt *o = list; o && o->name; o++) {
        if (with_arg >= 0 && o->has_arg != (with_arg == 1))
            continue;
        fprintf(f, " --%s", o->name);
        if (o->short_name)
            fprintf(f, " -%c", o->short_name);
    }
}

/* Words of a "a|b|c" metavar, space separated; false if it is no choice. */
static bool sh_choices(FILE *f, const cli_opt *o)
{
    const char *m = o->metavar;
    if (!o->has_arg || !m || !strchr(m, '|'))
        return false;
    for (const char *p = m; *p; p++) {
        /* only plain words: "TIME|now" offers "now" */
        if (*p == '|')
            fputc(' ', f);
        else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')
            fputc(*p, f);
    }
    return true;
}

/* Case arm patterns "GROUP SUB" or "GROUP " for command c. */
static void sh_case_key(FILE *f, const cli_cmd *c)
{
    fprintf(f, "        \"%s %s\")", c->group, c->sub ? c->sub : "");
}

int cli_cmd_completion_bash(cli_ctx *ctx)
{
    (void)ctx;
    FILE *f = stdout;
    size_t n;
    const cli_cmd *t = cli_commands(&n);
    const cli_opt *g = cli_global_opts();
    fputs("# bash completion for mesatee; generated by 'mesatee completion bash' from the\n"
          "# CLI's option table. Install to share/bash-completion/completions/mesatee.\n\n",
          f);
    /* groups */
    fputs("_mesatee_groups() { echo \"", f);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || !strcmp(t[j].group, t[i].group);
        if (!seen && !is_hidden(&t[i]))
            fprintf(f, "%s%s", i ? " " : "", t[i].group);
    }
    fputs(" help\"; }\n\n", f); /* `mesatee help COMMAND [SUB]` */
    /* subcommands of each group */
    fputs("_mesatee_subs() {\n    case \"$1\" in\n", f);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || !strcmp(t[j].group, t[i].group);
        if (seen || !t[i].sub)
            continue;
        fprintf(f, "        %s) echo \"", t[i].group);
        bool first = true;
        for (size_t j = i; j < n; j++)
            if (!strcmp(t[j].group, t[i].group) && t[j].sub && !is_hidden(&t[j])) {
                fprintf(f, "%s%s", first ? "" : " ", t[j].sub);
                first = false;
            }
        fputs("\" ;;\n", f);
    }
    fputs("    esac\n}\n\n", f);
    /* options of each command (with_arg: 1 = only those taking a value) */
    for (int with_arg = -1; with_arg <= 1; with_arg += 2) {
        fprintf(f, "_mesatee_%s() {\n    case \"$1 $2\" in\n", with_arg == 1 ? "argopts" : "opts");
        for (size_t i = 0; i < n; i++) {
            sh_case_key(f, &t[i]);
            fputs(" echo \"", f);
            sh_opts(f, t[i].opts, with_arg);
            sh_opts(f, g, with_arg);
            fputs("\" ;;\n", f);
        }
        fputs("        *) echo \"", f);
        sh_opts(f, g, with_arg);
        fputs("\" ;;\n    esac\n}\n\n", f);
    }
    /* choices of an option's value ("$1 $2 $3" = group sub option) */
    fputs("_mesatee_choices() {\n    case \"$1 $2 $3\" in\n", f);
    for (size_t i = 0; i < n; i++)
        for (const cli_opt *o = t[i].opts; o && o->name; o++) {
            if (o->has_arg && (!o->metavar || !strchr(o->metavar, '|'))) {
                /* a command's own option hides a global one of the same name */
                for (const cli_opt *q = g; q->name; q++)
                    if (!strcmp(q->name, o->name))
                        fprintf(f, "        \"%s %s --%s\") return 1 ;;\n", t[i].group,
                                t[i].sub ? t[i].sub : "", o->name);
                continue;
            }
            if (!o->has_arg)
                continue;
            fprintf(f, "        \"%s %s --%s\"", t[i].group, t[i].sub ? t[i].sub : "", o->name);
            if (o->short_name)
                fprintf(f, "|\"%s %s -%c\"", t[i].group, t[i].sub ? t[i].sub : "", o->short_name);
            fputs(") echo \"", f);
            sh_choices(f, o);
            fputs("\" ;;\n", f);
        }
    for (const cli_opt *o = g; o->name; o++) {
        if (!o->has_arg || !o->metavar || !strchr(o->metavar, '|'))
            continue;
        fprintf(f, "        *\" --%s\") echo \"", o->name);
        sh_choices(f, o);
        fputs("\" ;;\n", f);
    }
    fputs("        *) return 1 ;;\n    esac\n}\n\n", f);
    fputs("_mesatee() {\n"
          "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
          "    local i w group='' sub='' skip='' argopts choices\n"
          "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
          "        w=${COMP_WORDS[i]}\n"
          "        if [[ -n $skip ]]; then skip=''; continue; fi\n"
          "        case $w in\n"
          "            --) break ;;\n"
          "            --*=*) ;;\n"
          "            -*) argopts=\" $(_mesatee_argopts \"$group\" \"$sub\") \"\n"
          "                [[ $argopts == *\" $w \"* ]] && skip=1 ;;\n"
          "            *) if [[ -z $group || $group == help ]]; then group=$w\n"
          "               elif [[ -z $sub && -n $(_mesatee_subs \"$group\") ]]; then sub=$w\n"
          "               fi ;;\n"
          "        esac\n"
          "    done\n"
          "    COMPREPLY=()\n"
          "    if [[ $prev == -* && $cur != -* ]]; then\n"
          "        argopts=\" $(_mesatee_argopts \"$group\" \"$sub\") \"\n"
          "        if [[ $argopts == *\" $prev \"* ]]; then\n"
          "            if choices=$(_mesatee_choices \"$group\" \"$sub\" \"$prev\"); then\n"
          "                mapfile -t COMPREPLY < <(compgen -W \"$choices\" -- \"$cur\")\n"
          "            else\n"
          "                mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
          "            fi\n"
          "            return 0\n"
          "        fi\n"
          "    fi\n"
          "    if [[ $cur == -* ]]; then\n"
          "        mapfile -t COMPREPLY < <(compgen -W \"$(_mesatee_opts \"$group\" \"$sub\")\" "
          "-- \"$cur\")\n"
          "    elif [[ -z $group || $group == help ]]; then\n"
          "        mapfile -t COMPREPLY < <(compgen -W \"$(_mesatee_groups)\" -- \"$cur\")\n"
          "    elif [[ -z $sub && -n $(_mesatee_subs \"$group\") ]]; then\n"
          "        mapfile -t COMPREPLY < <(compgen -W \"$(_mesatee_subs \"$group\")\" -- "
          "\"$cur\")\n"
          "    else\n"
          "        mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
          "    fi\n"
          "    return 0\n"
          "}\n"
          "complete -o filenames -F _mesatee mesatee\n",
          f);
    return fflush(f) == 0 && !ferror(f) ? CLI_OK : cli_fail("cannot write the script");
}

/* ======================================================================== */
/* Table check                                                               */

/* Problems of one option list; where names the command. Counts into *bad. */
static void check_opts(const cli_opt *list, const char *where, const char **letters, int *bad)
{
    for (const cli_opt *o = list; o && o->name; o++) {
        const char *why = NULL;
        if (!o->desc || !*o->desc)
            why = "has no description";
        else if (!o->def || !*o->def)
            why = "has no default (give one, or \"required\", \"none\", \"off\")";
        else if (o->has_arg && (!o->metavar || !*o->metavar))
            why = "takes a value but has no metavar";
        else if (!o->has_arg && o->metavar)
            why = "is a flag but has a metavar";
        else if (!o->has_arg && o->repeatable)
            why = "is a flag but marked repeatable";
        else if (o->short_name && !((o->short_name >= 'a' && o->short_name <= 'z') ||
                                    (o->short_name >= 'A' && o->short_name <= 'Z')))
            why = "has a short form that is not a letter";
        if (!why)
            for (const cli_opt *p = list; p < o; p++)
                if (!strcmp(p->name, o->name))
                    why = "is listed twice";
        if (!why && o->short_name) {
            const char **slot = &letters[(unsigned char)o->short_name];
            if (*slot && strcmp(*slot, o->name) != 0)
                why = "uses a short form that means another option elsewhere";
            else
                *slot = o->name;
        }
        if (why) {
            printf("option --%s of %s %s\n", o->name, where, why);
            (*bad)++;
        }
    }
}

int cli_cmd_check_help(cli_ctx *ctx)
{
    (void)ctx;
    size_t n;
    const cli_cmd *t = cli_commands(&n);
    const char *letters[256] = {0};
    int bad = 0;
    check_opts(cli_global_opts(), "the global options", letters, &bad);
    for (size_t i = 0; i < n; i++) {
        char name[64], where[80];
        snprintf(where, sizeof where, "'%s'", cmd_name(&t[i], name, sizeof name));
        if (!t[i].summary || !*t[i].summary) {
            printf("command %s has no summary\n", where);
            bad++;
        }
        if (t[i].args_usage && strstr(t[i].args_usage, "--")) {
            printf("command %s lists options in its positional-arguments usage (they come "
                   "from its option table)\n",
                   where);
            bad++;
        }
        check_opts(t[i].opts, where, letters, &bad);
    }
    if (bad)
        return cli_fail("%d problem(s) in the command table", bad);
    printf("command table ok: %zu commands\n", n);
    return CLI_OK;
}
