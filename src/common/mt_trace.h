/* mt_trace: per-task stage timestamps, for the breakdown of one task's
 * path from the invoke request to the waiting client (issue 13,
 * bench/faas/trace.sh, docs/operations.md "Tracing the per-task path").
 *
 * Off unless the daemon runs with MESATEE_TRACE_TASKS=1 (read once). When
 * on, each mark is one log line at info level:
 *     trace task TASK_ID STAGE MONOTONIC_US
 * (CLOCK_MONOTONIC, which every process of the machine shares, so the
 * worker's own stamps line up with the daemon's). Lines carry only task ids,
 * fixed stage names and times: no input bytes. When off, a mark costs one
 * atomic load. Thread-safety: any thread. */
#ifndef MT_TRACE_H
#define MT_TRACE_H

#include <stdbool.h>
#include <stdint.h>

bool mt_trace_on(void);
/* CLOCK_MONOTONIC in microseconds. */
int64_t mt_trace_now_us(void);
/* Marks stage for task_id now / at mono_us. Nothing when tracing is off or
 * task_id is NULL. */
void mt_trace_mark(const char *task_id, const char *stage);
void mt_trace_mark_at(const char *task_id, const char *stage, int64_t mono_us);
/* Marks each "name=US" of pairs ("a=1,b=2": another process's stamps,
 * e.g. the worker's) as stage prefix+name. Only names of 1-24 characters
 * [a-z_] and 1-18 decimal digits are taken; parsing stops at the first pair
 * of any other shape (nothing of it is logged). Returns the number of pairs
 * read, or -1 when it stopped at a malformed one; with tracing off it only
 * parses. */
int mt_trace_mark_pairs(const char *task_id, const char *prefix, const char *pairs);
/* The task id of an invoke request's path ("/v1/tasks/ID/invoke", optionally
 * after "POST "), copied into id (33 bytes); false for any other path. */
bool mt_trace_invoke_id(const char *path, char id[33]);

#endif
