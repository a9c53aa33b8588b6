/* Fuzz target: the zygote's request and report readers (zygote_proto.h), the
 * parsers of the daemon <-> zygote messages. A decoded request re-encodes to
 * the same bytes; every refusal says why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zygote_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_zyg_req q;
    mt_err err = {0};
    if (mt_zyg_req_decode(data, size, &q, &err) == MT_OK) {
        uint8_t b[MT_ZYG_REQ_MAX];
        size_t n = mt_zyg_req_encode(&q, b, sizeof b);
        if (n != size || memcmp(b, data, n) != 0 || q.n_data > MT_ZYG_MAX_DATA_FDS)
            abort();
        for (uint32_t i = 0; i < q.n_data; i++)
            if (q.target[i] <= MT_JOB_FIRST_FD || q.target[i] > MT_JOB_MAX_FD ||
                (i && q.target[i] <= q.target[i - 1]))
                abort();
    } else if (err.msg[0] == 0) {
        abort();
    }
    mt_zyg_report r;
    err.msg[0] = 0;
    if (mt_zyg_report_decode(data, size, &r, &err) == MT_OK) {
        uint8_t b[MT_ZYG_REPORT_LEN];
        mt_zyg_report_encode(&r, b);
        if (size != MT_ZYG_REPORT_LEN || memcmp(b, data, size) != 0 || r.pid <= 0)
            abort();
    } else if (err.msg[0] == 0) {
        abort();
    }
    return 0;
}
