/* Fuzz target: the policy signature file reader (mt_policy_sig_parse), then
 * a verification of a fixed policy against whatever parsed with a fixed
 * auditor key (never valid: the signature must fail cleanly). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mt_policy_sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char PUB[] = "-----BEGIN PUBLIC KEY-----\n"
                          "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqIfuPFTB9YbYCF1tOk+8L11C2W4S\n"
                          "vOjRSjoDtZNVfp0KCH0Bt8iVCY0kk1KeaSFrPiMgZMlsNtaU6TIjNqMnZQ==\n"
                          "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mt_err err;
    static mt_policy_sigs s;
    if (mt_policy_sig_parse(data, size, &s, &err) != MT_OK)
        return 0;
    static const uint8_t policy[] = "{\"mesatee_policy\":1}";
    if (mt_policy_sig_verify(policy, sizeof policy - 1, data, size, (const uint8_t *)PUB,
                             sizeof PUB - 1, 1, &err) == MT_OK)
        __builtin_trap(); /* no input can sign for that key */
    return 0;
}
