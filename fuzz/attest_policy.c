/* Fuzz target: the attestation policy reader (mt_policy), then a check of
 * fixed claims against whatever parsed. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mt_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    mt_policy *p = NULL;
    if (mt_policy_parse((const char *)data, size, &p, &err) != MT_OK)
        return 0;
    static mt_attest_claims c;
    memset(&c, 0, sizeof c);
    c.kind = MT_ATTEST_SOFT;
    c.n_measurements = 1;
    memcpy(c.measurements[0].name, "measurement", 12);
    c.measurements[0].len = 32;
    c.signer_len = 32;
    c.timestamp = 1700000000000;
    if (mt_policy_check(p, &c, 1700000000, &err) == MT_OK)
        c.debug = !c.debug;
    c.kind = MT_ATTEST_SGX;
    if (mt_policy_check(p, &c, 1700000000, &err) == MT_OK)
        c.debug = !c.debug;
    mt_policy_free(p);
    return 0;
}
