/* python_modules: the operator's allow-list of the modules a "python"
 * function may import (docs/python-functions.md, "What a function may
 * import"). The built-in table (mt_bschema_python_modules) is the default;
 * `mesatee serve --python-allow MOD,..` adds to it and `--python-deny MOD,..`
 * removes from it. The result is one canonical text, the names sorted and
 * joined with ',', which the daemon stores in every python task as the
 * server-set argument "python_modules": it is thereby covered by the task's
 * declaration MAC and by every participant's approval (integrity.c), shown by
 * `task show`, and it is what the worker enforces (python_fn.c). A task
 * whose list differs from the server's current one fails before it runs
 * (sched.c build_job): participants approved that list, the operator now
 * wants another one; the task must be created and approved again.
 *
 * Names are Python identifiers of 1..64 bytes; the text is at most
 * MT_PYTHON_MODULES_MAX bytes. Errors name the option and the module (the
 * operator's own input). Thread-safety: reentrant; no state. */
#ifndef MT_PYTHON_MODULES_H
#define MT_PYTHON_MODULES_H

#include <stdbool.h>
#include <stddef.h>

#include "mt_err.h"

#define MT_PYTHON_MODULES_MAX 4096
/* The server-set task argument holding the list. */
#define MT_PYTHON_MODULES_ARG "python_modules"

/* The effective list: the built-in table, plus allow, minus deny (each NULL
 * or a ','-separated list of names; empty items are skipped). *out is the
 * canonical text (heap; the caller frees). MT_EINVAL "--python-allow: ..." /
 * "--python-deny: ..." for a bad name, a denied name that is not in the list,
 * denying "mesatee", or a name both allowed and denied; MT_ETOOBIG when the
 * text is longer than MT_PYTHON_MODULES_MAX. */
mt_status mt_python_modules_effective(const char *allow, const char *deny, char **out,
                                      mt_err *err);

/* Whether text is a canonical list (sorted, unique, valid names, holds
 * "mesatee", at most MT_PYTHON_MODULES_MAX bytes). The worker checks the
 * argument with it before it trusts it. */
bool mt_python_modules_valid(const char *text);

/* Whether name (a top-level module) is in the canonical list text. */
bool mt_python_modules_has(const char *text, const char *name);

#endif
