/* ks_nv: rollback detection of the KeyStore state at level tpm2 with a TPM
 * NV counter (issue 10). Contract in ks_internal.h ("TPM NV counter"). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ks_internal.h"
#include "mt_log.h"
#include "tee_tpm2.h"

/* The TPM increment, with the test-only fault injection
 * (MESATEE_TEST_KS_NV_FAIL_INCREMENTS=n: the first n increments fail).
 * Callers hold the KeyStore lock (or run at open, alone). */
static mt_status nv_increment(mt_tee *tee, uint32_t idx, uint64_t *v, mt_err *err)
{
    static unsigned failed;
    const char *f = getenv("MESATEE_TEST_KS_NV_FAIL_INCREMENTS");
    if (f && *f >= '1' && *f <= '9' && failed < (unsigned)strtoul(f, NULL, 10)) {
        failed++;
        return mt_err_set(err, MT_EIO, "TPM2_NV_Increment failed (injected test fault)");
    }
    uint32_t i = idx;
    return mt_tee_tpm2_counter(tee, MT_TPM2_NV_INCREMENT, &i, v, err);
}

/* A state recording `pending` may be on disk while the TPM counter is below
 * it: bring the counter to it before any other state is written. */
static mt_status nv_complete(mt_tee *tee, uint32_t idx, uint64_t *tpm, uint64_t *pending,
                             mt_err *err)
{
    uint32_t i = idx;
    uint64_t v = 0;
    mt_err e;
    mt_err_clear(&e);
    mt_status rc = mt_tee_tpm2_counter(tee, MT_TPM2_NV_READ, &i, &v, &e);
    if (!rc && v + 1 == *pending)
        rc = nv_increment(tee, idx, &v, &e);
    if (rc)
        return mt_err_set(err, MT_EUNAVAIL,
                          "KeyStore state not changed: the TPM NV counter 0x%08x owes the last "
                          "change's increment to %" PRIu64 " and still cannot take it; no change "
                          "is saved until it does (check the TPM, retry or restart): %.60s",
                          (unsigned)idx, *pending, e.msg);
    if (v != *pending)
        return mt_err_set(err, MT_ECONFLICT,
                          "KeyStore state not changed: TPM NV counter 0x%08x is %" PRIu64
                          ", the last saved state records %" PRIu64
                          ": something else moves the counter; restart the daemon",
                          (unsigned)idx, v, *pending);
    mt_info("KeyStore: completed the TPM NV counter increment of the last change (%" PRIu64 ")",
            v);
    *tpm = v;
    *pending = 0;
    return MT_OK;
}

mt_status ks_nv_before_save(mt_tee *tee, uint32_t *idx, uint64_t *tpm, uint64_t *pending,
                            uint64_t *next, mt_err *err)
{
    if (*idx == 0) {
        uint32_t i = MT_TPM2_NV_KEYSTORE_BASE;
        uint64_t v = 0;
        mt_status rc = mt_tee_tpm2_counter(tee, MT_TPM2_NV_DEFINE, &i, &v, err);
        if (rc)
            return mt_err_prefix(err, rc, "KeyStore rollback counter: ");
        *idx = i;
        *tpm = v;
        *pending = 0;
        mt_info("KeyStore: TPM NV counter 0x%08x defined (value %" PRIu64 "): every change of "
                "the KeyStore state increments it, and a state older than it is refused at start",
                (unsigned)i, v);
    }
    if (*pending) {
        mt_status rc = nv_complete(tee, *idx, tpm, pending, err);
        if (rc)
            return rc;
    }
    if (*tpm == UINT64_MAX)
        return mt_err_set(err, MT_EINTERNAL, "the TPM NV counter is at its maximum");
    *next = *tpm + 1;
    return MT_OK;
}

void ks_nv_after_save(mt_tee *tee, uint32_t idx, uint64_t *tpm, uint64_t *pending,
                      uint64_t saved)
{
    uint64_t v = 0;
    mt_err e;
    mt_err_clear(&e);
    /* test-only fault injection (it_keystore_rollback_tpm2): the process dies
     * between the write of the state and the increment */
    const char *crash = getenv("MESATEE_TEST_KS_NV_CRASH_BEFORE_INCREMENT");
    if (crash && !strcmp(crash, "1"))
        _exit(98);
    if (nv_increment(tee, idx, &v, &e)) {
        /* the state is written with saved = TPM + 1: the next save completes
         * the increment before writing anything (or refuses), the next start
         * completes it (ks_nv_check) */
        *pending = saved;
        mt_warn("KeyStore: the state was saved but the TPM NV counter 0x%08x was not "
                "incremented (%s); the next change completes it first (and is refused while it "
                "cannot), the next start completes it",
                (unsigned)idx, e.msg);
        return;
    }
    *tpm = v;
    *pending = 0;
    if (v != saved)
        mt_warn("KeyStore: TPM NV counter 0x%08x is %" PRIu64 ", the saved state records %" PRIu64
                ": something else incremented it; the next start will refuse this state",
                (unsigned)idx, v, saved);
}

mt_status ks_nv_check(mt_tee *tee, const char *path, uint32_t idx, uint64_t state_value,
                      uint64_t *tpm, mt_err *err)
{
    uint32_t i = idx;
    uint64_t v = 0;
    mt_status rc = mt_tee_tpm2_counter(tee, MT_TPM2_NV_READ, &i, &v, err);
    if (rc == MT_ENOTFOUND || rc == MT_ECONFLICT)
        return mt_err_set(err, MT_ECONFLICT,
                          "%s names TPM NV counter 0x%08x, which this TPM lacks (cleared, "
                          "undefined, or another machine's state): a rollback cannot be ruled "
                          "out; restore the data directory of this TPM",
                          path, (unsigned)idx);
    if (rc)
        return mt_err_prefix(err, rc, "KeyStore rollback counter: ");
    if (state_value < v)
        return mt_err_set(err, MT_ECONFLICT,
                          "%s is older than this TPM's NV counter 0x%08x (state %" PRIu64
                          ", TPM %" PRIu64 "): an older copy was put back (rollback). Nothing "
                          "was changed. Put back the newest keystore.sealed and its store",
                          path, (unsigned)idx, state_value, v);
    if (state_value > v + 1)
        return mt_err_set(err, MT_ECONFLICT,
                          "%s is ahead of this TPM's NV counter 0x%08x (%" PRIu64 " > %" PRIu64
                          " + 1): the counter was redefined or this is another TPM; restore the "
                          "data directory of this TPM",
                          path, (unsigned)idx, state_value, v);
    if (state_value == v + 1) { /* a change saved before its increment: finish it */
        if ((rc = nv_increment(tee, idx, &v, err)))
            return mt_err_prefix(err, rc, "KeyStore rollback counter: ");
        if (v != state_value)
            return mt_err_set(err, MT_ECONFLICT,
                              "TPM NV counter 0x%08x moved to %" PRIu64 ", not %" PRIu64
                              ": another process increments it",
                              (unsigned)idx, v, state_value);
        mt_info("KeyStore: completed the TPM NV counter increment of the last change (%" PRIu64
                ")",
                v);
    }
    *tpm = v;
    return MT_OK;
}
