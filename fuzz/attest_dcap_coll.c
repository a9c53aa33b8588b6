/* Fuzz target: DCAP collateral readers: the raw-JSON member scanner, TCB
 * info / QE identity PCS responses and the QuoteCollateralV3 bundle. */
#include <stddef.h>
#include <stdint.h>

#include "mt_attest.h"
#include "mt_dcap_coll.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    const char *v;
    size_t vl;
    if (mt_dcap_json_member((const char *)data, size, "tcbInfo", &v, &vl))
        (void)mt_dcap_tcb_info_check(v, vl, &err);
    (void)mt_dcap_tcb_info_check((const char *)data, size, &err);
    static const mt_attest_coll_item items[] = {MT_COLL_DCAP_BUNDLE, MT_COLL_TCB_INFO,
                                                MT_COLL_QE_IDENTITY, MT_COLL_PCK_CRL};
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        mt_attest_collateral *c = mt_attest_collateral_new();
        mt_dcap_coll dc;
        if (c && mt_attest_collateral_add(c, items[i], data, size, &err) == MT_OK &&
            mt_dcap_coll_load(c, &dc, &err) == MT_OK)
            mt_dcap_coll_clear(&dc);
        mt_attest_collateral_free(c);
    }
    return 0;
}
