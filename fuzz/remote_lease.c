/* Fuzz target: the small lease and health documents of the executor API
 * (remote_job.h): the renewal the scheduler reads (mt_rrenew_decode), its
 * answer the executor reads (mt_rrenew_answer_decode) and the health body
 * of every claim (mt_rhello_decode), and the query of a raw transfer
 * (mt_rxfer_parse, round-tripped through mt_rxfer_format). Each input goes
 * to all four. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mt_util.h"
#include "remote_job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    mt_err err;
    mt_err_clear(&err);
    mt_rrenew q;
    if (mt_rrenew_decode(s, size, &q, &err) == MT_OK) {
        if (!mt_id_valid(q.task_id) || q.fence < 1 || q.fence > MT_RLEASE_FENCE_MAX)
            abort();
    } else if (!err.msg[0]) {
        abort(); /* a refusal says why */
    }
    mt_err_clear(&err);
    mt_rrenew_answer a;
    if (mt_rrenew_answer_decode(s, size, &a, &err) == MT_OK) {
        if (a.lease_ms < MT_RLEASE_MS_MIN || a.lease_ms > MT_RLEASE_MS_MAX)
            abort();
    } else if (!err.msg[0]) {
        abort();
    }
    mt_err_clear(&err);
    mt_rhello h;
    if (mt_rhello_decode(s, size, &h, &err) == MT_OK) {
        if (h.present && (!h.executor[0] || strlen(h.executor) > MT_RHELLO_NAME_MAX ||
                          h.slots < 1 || h.slots > MT_RHELLO_SLOTS_MAX || h.busy > h.slots ||
                          strlen(h.last_error) > MT_RHELLO_ERROR_MAX))
            abort();
        for (const char *p = h.last_error; *p; p++)
            if (*p < 0x20 || *p > 0x7e)
                abort(); /* it ends up in /metrics */
    } else if (!err.msg[0] || h.present) {
        abort();
    }
    /* the raw transfer's query: what parses formats back to the same bytes */
    mt_err_clear(&err);
    mt_rxfer x;
    if (mt_rxfer_parse(s, size, &x, &err) == MT_OK) {
        char q[600];
        if (!mt_rxfer_format(&x, q, sizeof q) || strlen(q) != size || memcmp(q, s, size) != 0)
            abort();
    } else if (!err.msg[0]) {
        abort();
    }
    return 0;
}
