/* Fuzz target: the worker's job decoder (mt_wjob_decode), the one reader of
 * the parent -> worker message. Checks decoded invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "job_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_wjob j;
    mt_err err;
    if (mt_wjob_decode((const char *)data, size, &j, &err) != MT_OK) {
        if (err.msg[0] == 0)
            abort(); /* every refusal must say why */
        return 0;
    }
    if (!j.function || !j.task_id || j.n_inputs > MT_JOB_MAX_SLOTS ||
        j.n_outputs > MT_JOB_MAX_SLOTS)
        abort();
    for (size_t i = 0; i < j.n_inputs; i++) {
        const mt_wjob_io *io = &j.inputs[i];
        if (!mt_job_slot_valid(io->slot) || ((io->fd < 0) == (io->url == NULL)))
            abort();
        if (io->url && strncmp(io->url, "https://", 8) != 0)
            abort();
    }
    for (size_t i = 0; i < j.n_outputs; i++)
        if (!mt_job_slot_valid(j.outputs[i].slot) || j.outputs[i].fd <= MT_JOB_FIRST_FD ||
            j.outputs[i].fd > MT_JOB_MAX_FD)
            abort();
    mt_wjob_free(&j);
    return 0;
}
