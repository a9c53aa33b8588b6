/* worker_spawn: the clean start shared by every posix_spawn of a worker
 * executable (spawned worker, zygote, benchmark anchor). Internal to the
 * executor module.
 *
 * mt_worker_spawn_init initialises *fa and *at (the caller destroys both
 * after posix_spawn) so that the child starts with an empty signal mask and
 * every signal at its default action, stdin and stdout opened on /dev/null,
 * stderr the write end of the worker stderr relay (worker_stderr.h: what the
 * child writes there reaches the daemon's log only marked, escaped and
 * rate-capped; /dev/null when the relay could not be made), and `chan`
 * duplicated onto MT_JOB_FIRST_FD. The caller adds any further file actions
 * (more dup2s, then the closefrom of everything above its range). `chan`
 * must not be 0, 1, 2 or MT_JOB_FIRST_FD; it is not closed here.
 * Return values of the posix_spawn* setup calls are not checked (as before:
 * they only fail on ENOMEM/EINVAL, and posix_spawn then reports the error). */
#ifndef MT_WORKER_SPAWN_H
#define MT_WORKER_SPAWN_H

#include <spawn.h>

void mt_worker_spawn_init(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at, int chan);

#endif
