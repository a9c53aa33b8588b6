/* Fuzz target: the scheduler's reader of a remote executor's report
 * (mt_rreport_decode), bytes that arrive over the executor API. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "job_codec.h"
#include "mt_util.h"
#include "remote_job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_rreport r;
    mt_err err;
    mt_err_clear(&err);
    if (mt_rreport_decode((const char *)data, size, &r, &err) != MT_OK) {
        if (err.msg[0] == 0 || r.root)
            abort(); /* a refusal says why and leaves nothing behind */
        return 0;
    }
    if (!mt_id_valid(r.task_id))
        abort();
    const char *slot;
    json_t *o;
    json_object_foreach(r.outputs, slot, o) {
        const char *sha = json_string_value(json_object_get(o, "sha256"));
        if (!mt_job_slot_valid(slot) || !json_is_string(json_object_get(o, "ciphertext")) ||
            !sha || strlen(sha) != 64 || json_integer_value(json_object_get(o, "size")) < 0)
            abort();
    }
    mt_rreport_free(&r);
    return 0;
}
