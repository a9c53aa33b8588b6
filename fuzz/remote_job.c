/* Fuzz target: the remote executor's reader of the job document it claims
 * from the scheduler over the network (mt_rjob_decode). Checks the
 * invariants the executor relies on before it writes files or runs a task. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "job_codec.h"
#include "mt_util.h"
#include "remote_job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_io(const mt_rjob_io *io, int kind)
{
    if (!io->slot || (kind != 2 && !mt_job_slot_valid(io->slot)))
        abort();
    if (kind == 0 && (io->ciphertext == NULL) == (io->url == NULL))
        abort();
    if (kind == 0 && io->url && strncmp(io->url, "https://", 8) != 0)
        abort();
    if (kind == 1 && (io->ciphertext || io->url))
        abort();
    if (kind == 2 && !io->ciphertext)
        abort();
    if ((io->sha256[0] && strlen(io->sha256) != 64) ||
        (io->plain_sha256[0] && strlen(io->plain_sha256) != 64) ||
        (io->file_id[0] && strlen(io->file_id) != 32))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_rjob j;
    mt_err err;
    mt_err_clear(&err);
    if (mt_rjob_decode((const char *)data, size, &j, &err) != MT_OK) {
        if (err.msg[0] == 0 || j.root || j.inputs || j.outputs)
            abort(); /* a refusal says why and leaves nothing behind */
        return 0;
    }
    if (!mt_id_valid(j.task_id) || !j.function[0] || !json_is_object(j.arguments) ||
        j.n_inputs > MT_JOB_MAX_SLOTS || j.n_outputs > MT_JOB_MAX_SLOTS ||
        j.has_module != (strcmp(j.executor_type, "wasm") == 0))
        abort();
    for (size_t i = 0; i < j.n_inputs; i++) {
        check_io(&j.inputs[i], 0);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(j.inputs[i].slot, j.inputs[k].slot))
                abort();
    }
    for (size_t i = 0; i < j.n_outputs; i++)
        check_io(&j.outputs[i], 1);
    if (j.has_module)
        check_io(&j.module, 2);
    mt_rjob_free(&j);
    return 0;
}
