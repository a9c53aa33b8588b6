/* Random-call test of libmesatee-pkcs11 (issue 10): dlopens the module
 * named by argv[1] and calls every function of its PKCS#11 3.0 function
 * list, first with fixed arguments whose answers the standard defines
 * (checked), then many times with random handles, NULL pointers, garbage
 * buffers, lengths, mechanisms and templates (pointers are either NULL or
 * point to memory of at least the length passed, as the standard requires
 * of callers). Any crash, sanitizer report or return code outside the
 * standard's list fails the test.
 *
 * Environment: P11_RANDCALL_CONF (config file; default: one written here
 * naming an unreachable server), P11_RANDCALL_PIN (log in first, so that
 * real object handles join the pool: the integration test sets it against a
 * live server), P11_RANDCALL_ITER (iterations, default 200000),
 * P11_RANDCALL_SEED. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11_defs.h"

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static unsigned rndn(unsigned n) { return (unsigned)(rnd() % n); }

/* Every CKR_ value of the 2.40 and 3.0 standards. */
static int rv_known(CK_RV rv)
{
    static const CK_RV ok[] = {
        0x000, 0x001, 0x002, 0x003, 0x005, 0x006, 0x007, 0x008, 0x009, 0x00A, 0x00B, 0x010,
        0x011, 0x012, 0x013, 0x01B, 0x020, 0x021, 0x030, 0x031, 0x032, 0x040, 0x041, 0x050,
        0x051, 0x054, 0x060, 0x062, 0x063, 0x064, 0x065, 0x066, 0x067, 0x068, 0x069, 0x06A,
        0x070, 0x071, 0x082, 0x090, 0x091, 0x0A0, 0x0A1, 0x0A2, 0x0A3, 0x0A4, 0x0B0, 0x0B1,
        0x0B3, 0x0B4, 0x0B5, 0x0B6, 0x0B7, 0x0B8, 0x0C0, 0x0C1, 0x0D0, 0x0D1, 0x0E0, 0x0E1,
        0x0E2, 0x0F0, 0x0F1, 0x0F2, 0x100, 0x101, 0x102, 0x103, 0x104, 0x105, 0x110, 0x111,
        0x112, 0x113, 0x114, 0x115, 0x120, 0x121, 0x130, 0x150, 0x160, 0x170, 0x180, 0x190,
        0x191, 0x1A0, 0x1A1, 0x1B0, 0x1B1, 0x1B2, 0x1B3, 0x1B4, 0x1B5, 0x1B6, 0x1B7, 0x1B8,
        0x200, 0x201, 0x202};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i] == rv)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Pools of arguments                                                        */

#define BUFSZ 8192
static unsigned char bufs[4][BUFSZ];
static CK_SESSION_HANDLE sessions[8];
static size_t nsessions;
static CK_OBJECT_HANDLE objects[64];
static size_t nobjects;

static void *rbuf(int i)
{
    if (rndn(5) == 0)
        return NULL;
    for (size_t k = 0; k < 64; k++)
        bufs[i][rndn(BUFSZ)] = (unsigned char)rnd();
    return bufs[i];
}
static CK_ULONG rlen(void)
{
    switch (rndn(6)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 32;
    case 3: return 256;
    case 4: return rndn(BUFSZ + 1);
    default: return sizeof(CK_ULONG);
    }
}
/* A length that fits what p points to (anything if p is NULL). */
static CK_ULONG rlen_for(const void *p) { return p ? rlen() : (rndn(2) ? 0 : rnd()); }
/* A per-message parameter for C_EncryptMessage / C_DecryptMessage: NULL, a
 * buffer of another size, or a CK_GCM_MESSAGE_PARAMS whose pointers are
 * valid (or NULL) and whose other fields are random or plausible. The
 * module cannot check pointers, so the structure never holds wild ones. */
static p11_gcm_message_params gcm_msg_cell;
static CK_BYTE gcm_iv_cell[16], gcm_tag_cell[16];
static void *rgcmmsg(void *buf, CK_ULONG *len)
{
    switch (rndn(4)) {
    case 0: *len = rndn(2) ? 0 : rnd(); return NULL;
    case 1: *len = rndn(2) ? 32 : 8; return buf; /* never sizeof gcm_msg_cell */
    default: break;
    }
    gcm_msg_cell.pIv = rndn(6) ? gcm_iv_cell : NULL;
    gcm_msg_cell.ulIvLen = rndn(3) ? 12 : rndn(17);
    gcm_msg_cell.ulIvFixedBits = rndn(4) ? 0 : rnd();
    gcm_msg_cell.ivGenerator = rndn(3) ? CKG_GENERATE_RANDOM : rndn(6);
    gcm_msg_cell.pTag = rndn(6) ? gcm_tag_cell : NULL;
    gcm_msg_cell.ulTagBits = rndn(3) ? 128 : rndn(129);
    *len = rndn(8) ? sizeof gcm_msg_cell : rndn(sizeof gcm_msg_cell);
    return &gcm_msg_cell;
}
static CK_ULONG *rulongp(CK_ULONG *cell)
{
    if (rndn(5) == 0)
        return NULL;
    *cell = rlen();
    return cell;
}
static CK_SESSION_HANDLE rsess(void)
{
    if (nsessions && rndn(4) != 0)
        return sessions[rndn((unsigned)nsessions)];
    switch (rndn(3)) {
    case 0: return 0;
    case 1: return rndn(300);
    default: return rnd();
    }
}
static CK_OBJECT_HANDLE robj(void)
{
    if (nobjects && rndn(3) != 0)
        return objects[rndn((unsigned)nobjects)];
    return rndn(2) ? rndn(100) : rnd();
}
static CK_SLOT_ID rslot(void) { return rndn(4) ? 0 : rnd(); }

static const CK_MECHANISM_TYPE mech_pool[] = {
    CKM_ECDSA,         CKM_ECDSA_SHA256,          CKM_ECDSA_SHA384,     CKM_EDDSA,
    CKM_RSA_PKCS,      CKM_SHA256_RSA_PKCS,       CKM_RSA_PKCS_PSS,     CKM_SHA256_RSA_PKCS_PSS,
    CKM_RSA_PKCS_OAEP, CKM_AES_GCM,               CKM_SHA256,           CKM_SHA384,
    CKM_SHA512,        CKM_EC_KEY_PAIR_GEN,       CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_AES_KEY_GEN,   CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_RSA_X_509,      CKM_AES_CBC,
    0x80000001UL};
static CK_MECHANISM mech_cell;
static CK_RSA_PKCS_PSS_PARAMS pss_cell;
static CK_RSA_PKCS_OAEP_PARAMS oaep_cell;
static CK_GCM_PARAMS gcm_cell;
static CK_MECHANISM *rmech(void)
{
    if (rndn(8) == 0)
        return NULL;
    mech_cell.mechanism = rndn(10) ? mech_pool[rndn(sizeof mech_pool / sizeof mech_pool[0])]
                                   : rnd();
    switch (rndn(5)) {
    case 0:
        pss_cell.hashAlg = rndn(2) ? CKM_SHA256 : rnd();
        pss_cell.mgf = rndn(2) ? CKG_MGF1_SHA256 : rnd();
        pss_cell.sLen = rndn(2) ? 32 : rnd();
        mech_cell.pParameter = &pss_cell;
        mech_cell.ulParameterLen = rndn(4) ? sizeof pss_cell : rndn(sizeof pss_cell);
        break;
    case 1:
        oaep_cell.hashAlg = rndn(2) ? CKM_SHA256 : rnd();
        oaep_cell.mgf = rndn(2) ? CKG_MGF1_SHA256 : rnd();
        oaep_cell.source = rndn(2) ? CKZ_DATA_SPECIFIED : rnd();
        oaep_cell.pSourceData = rbuf(3);
        oaep_cell.ulSourceDataLen = rlen_for(oaep_cell.pSourceData);
        mech_cell.pParameter = &oaep_cell;
        mech_cell.ulParameterLen = rndn(4) ? sizeof oaep_cell : rndn(sizeof oaep_cell);
        break;
    case 2:
        gcm_cell.pIv = rbuf(3);
        gcm_cell.ulIvLen = rlen_for(gcm_cell.pIv);
        gcm_cell.ulIvBits = gcm_cell.ulIvLen * 8;
        gcm_cell.pAAD = rbuf(2);
        gcm_cell.ulAADLen = rlen_for(gcm_cell.pAAD);
        gcm_cell.ulTagBits = rndn(2) ? 128 : rnd();
        mech_cell.pParameter = &gcm_cell;
        mech_cell.ulParameterLen = rndn(4) ? sizeof gcm_cell : rndn(sizeof gcm_cell);
        break;
    case 3:
        mech_cell.pParameter = rbuf(3);
        mech_cell.ulParameterLen = rlen_for(mech_cell.pParameter);
        break;
    default:
        mech_cell.pParameter = NULL;
        mech_cell.ulParameterLen = 0;
        break;
    }
    return &mech_cell;
}

static const CK_ATTRIBUTE_TYPE attr_pool[] = {
    CKA_CLASS,        CKA_TOKEN,      CKA_PRIVATE,   CKA_LABEL,        CKA_ID,
    CKA_KEY_TYPE,     CKA_SIGN,       CKA_VERIFY,    CKA_ENCRYPT,      CKA_DECRYPT,
    CKA_EC_PARAMS,    CKA_EC_POINT,   CKA_MODULUS,   CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT,
    CKA_VALUE,        CKA_VALUE_LEN,  CKA_SENSITIVE, CKA_EXTRACTABLE,  CKA_PUBLIC_KEY_INFO,
    CKA_PRIVATE_EXPONENT, CKA_SUBJECT, 0x80001234UL};
static CK_ATTRIBUTE tmpl_cell[8];
static unsigned char tmpl_vals[8][600];
static CK_ATTRIBUTE *rtmpl(CK_ULONG *n)
{
    if (rndn(6) == 0) {
        *n = rndn(2) ? 0 : rndn(5);
        return NULL;
    }
    *n = rndn(9);
    for (CK_ULONG i = 0; i < *n; i++) {
        tmpl_cell[i].type = rndn(10) ? attr_pool[rndn(sizeof attr_pool / sizeof attr_pool[0])]
                                     : rnd();
        if (rndn(5) == 0) {
            tmpl_cell[i].pValue = NULL;
            tmpl_cell[i].ulValueLen = rndn(2) ? 0 : rnd();
            continue;
        }
        tmpl_cell[i].pValue = tmpl_vals[i];
        switch (rndn(4)) {
        case 0: tmpl_cell[i].ulValueLen = 1; tmpl_vals[i][0] = (unsigned char)rndn(2); break;
        case 1: tmpl_cell[i].ulValueLen = sizeof(CK_ULONG); break;
        case 2:
            memcpy(tmpl_vals[i], "randkey", 7);
            tmpl_cell[i].ulValueLen = 7;
            break;
        default: tmpl_cell[i].ulValueLen = rndn(sizeof tmpl_vals[i] + 1); break;
        }
        for (size_t k = 0; k < 4; k++)
            tmpl_vals[i][rndn(sizeof tmpl_vals[i])] = (unsigned char)rnd();
    }
    return tmpl_cell;
}

/* ------------------------------------------------------------------------ */

static p11_function_list_3_0 *F;
static CK_ULONG ul1, ul2;

/* An OAEP ciphertext made under public key object pub decrypts, with the
 * private key of the same label, to what was encrypted. */
static long oaep_backs;
static void oaep_chain_back(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, const CK_BYTE *pt,
                            CK_ULONG ptl, const CK_BYTE *ct, CK_ULONG ctl)
{
    char label[256];
    CK_ATTRIBUTE la[] = {{CKA_LABEL, label, sizeof label - 1}};
    if (F->C_GetAttributeValue(s, pub, la, 1) != CKR_OK)
        return;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE q[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, label, la[0].ulValueLen}};
    CK_OBJECT_HANDLE priv = 0;
    CK_ULONG n = 0;
    if (F->C_FindObjectsInit(s, q, 2) != CKR_OK)
        return;
    F->C_FindObjects(s, &priv, 1, &n);
    F->C_FindObjectsFinal(s);
    if (n != 1)
        return;
    CK_RSA_PKCS_OAEP_PARAMS p = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &p, sizeof p};
    CK_BYTE back[512];
    CK_ULONG bl = sizeof back;
    CK_RV rv = F->C_DecryptInit(s, &m, priv);
    if (rv == CKR_OPERATION_ACTIVE) /* the encrypt op was kept by a size query */
        return;
    CHECK(rv == CKR_OK, "chain: OAEP DecryptInit 0x%lx", rv);
    rv = F->C_Decrypt(s, (CK_BYTE *)ct, ctl, back, &bl);
    CHECK(rv == CKR_OK && bl == ptl && !memcmp(back, pt, ptl),
          "chain: OAEP ciphertext decrypts back: 0x%lx", rv);
    oaep_backs++;
}

/* A coherent chain on a live object: an init that may succeed (mechanism
 * with well-formed parameters), then the data calls with random sizes,
 * including the NULL / short buffer size convention. Returns the last CKR_. */
static long chain_inits, chain_skips;
static const char *chain_pin;
static CK_SESSION_HANDLE chain_s;
static CK_RV call_chain(void)
{
    CK_SESSION_INFO si;
    if (F->C_GetSessionInfo(chain_s, &si) != CKR_OK &&
        F->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &chain_s) != CKR_OK)
        return CKR_OK;
    if (F->C_GetSessionInfo(chain_s, &si) == CKR_OK && si.state == CKS_RW_PUBLIC_SESSION)
        F->C_Login(chain_s, CKU_USER, (CK_UTF8CHAR *)chain_pin, strlen(chain_pin));
    if (nobjects == 0 && F->C_FindObjectsInit(chain_s, NULL, 0) == CKR_OK) {
        CK_ULONG got = 0;
        F->C_FindObjects(chain_s, objects, 64, &got);
        nobjects = got;
        F->C_FindObjectsFinal(chain_s);
    }
    if (!nobjects) {
        chain_skips++;
        return CKR_OK;
    }
    CK_SESSION_HANDLE s = rndn(4) ? chain_s : rsess();
    /* 3.0 C_SessionCancel ends what random calls left active */
    if (rndn(8))
        F->C_SessionCancel(s, CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT | CKF_DIGEST);
    CK_OBJECT_HANDLE o = objects[rndn((unsigned)nobjects)];
    static const CK_MECHANISM_TYPE ms[] = {CKM_ECDSA, CKM_ECDSA_SHA256, CKM_EDDSA, CKM_RSA_PKCS,
                                           CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS_PSS,
                                           CKM_SHA256_RSA_PKCS_PSS, CKM_RSA_PKCS_OAEP, CKM_AES_GCM};
    CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, rndn(2) ? 32 : 222};
    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_BYTE iv[12] = {0};
    CK_GCM_PARAMS gcm = {iv, 12, 96, NULL, 0, 128};
    CK_MECHANISM m = {ms[rndn(sizeof ms / sizeof ms[0])], NULL, 0};
    CK_KEY_TYPE kt = 0;
    CK_OBJECT_CLASS cls = 0;
    CK_ATTRIBUTE ka[] = {{CKA_KEY_TYPE, &kt, sizeof kt}, {CKA_CLASS, &cls, sizeof cls}};
    int kind = (int)rndn(4);
    if (rndn(4) && F->C_GetAttributeValue(chain_s, o, ka, 2) == CKR_OK) {
        /* mostly a mechanism and direction that fit the key */
        static const CK_MECHANISM_TYPE ecm[] = {CKM_ECDSA, CKM_ECDSA_SHA256},
                                       rsam[] = {CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS,
                                                 CKM_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS,
                                                 CKM_RSA_PKCS_OAEP};
        if (kt == CKK_EC)
            m.mechanism = ecm[rndn(2)];
        else if (kt == CKK_EC_EDWARDS)
            m.mechanism = CKM_EDDSA;
        else if (kt == CKK_RSA)
            m.mechanism = rsam[rndn(5)];
        else
            m.mechanism = CKM_AES_GCM;
        if (m.mechanism == CKM_RSA_PKCS_OAEP)
            kind = cls == CKO_PUBLIC_KEY ? 2 : 3;
        else if (m.mechanism == CKM_AES_GCM)
            kind = 2 + (int)rndn(2);
        else
            kind = cls == CKO_PUBLIC_KEY ? 1 : 0;
    }
    if (m.mechanism == CKM_RSA_PKCS_PSS || m.mechanism == CKM_SHA256_RSA_PKCS_PSS)
        m.pParameter = &pss, m.ulParameterLen = sizeof pss;
    else if (m.mechanism == CKM_RSA_PKCS_OAEP)
        m.pParameter = &oaep, m.ulParameterLen = sizeof oaep;
    else if (m.mechanism == CKM_AES_GCM)
        m.pParameter = &gcm, m.ulParameterLen = sizeof gcm;
    static const CK_ULONG lens[] = {0, 1, 20, 28, 32, 48, 51, 64, 100, 256, 300, 512};
    CK_BYTE in[600], out[1024];
    CK_ULONG inl = lens[rndn(sizeof lens / sizeof lens[0])], outl;
    for (CK_ULONG i = 0; i < inl; i++)
        in[i] = (CK_BYTE)rnd();
    if (rndn(3) == 0 && inl == 51) /* a SHA-256 DigestInfo */
        memcpy(in, "\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20", 19);
    CK_RV rv;
    if (kind == 0)
        rv = F->C_SignInit(s, &m, o);
    else if (kind == 1)
        rv = F->C_VerifyInit(s, &m, o);
    else if (kind == 2)
        rv = F->C_EncryptInit(s, &m, o);
    else
        rv = F->C_DecryptInit(s, &m, o);
    if (getenv("P11_RANDCALL_DEBUG"))
        fprintf(stderr, "chain init kind %d mech 0x%lx: 0x%lx\n", kind, m.mechanism, rv);
    if (rv != CKR_OK)
        return rv;
    chain_inits++;
    for (int step = 0; step < 3; step++) {
        outl = rndn(3) == 0 ? rndn(8) : sizeof out;
        CK_BYTE *op = rndn(4) == 0 ? NULL : out;
        if (kind == 0)
            rv = rndn(4) ? F->C_Sign(s, in, inl, op, &outl)
                         : (F->C_SignUpdate(s, in, inl), F->C_SignFinal(s, op, &outl));
        else if (kind == 1)
            rv = rndn(4) ? F->C_Verify(s, in, inl, out, rndn(2) ? 64 : rndn(600))
                         : (F->C_VerifyUpdate(s, in, inl), F->C_VerifyFinal(s, out, 256));
        else if (kind == 2)
            rv = rndn(4) ? F->C_Encrypt(s, in, inl, op, &outl)
                         : (F->C_EncryptUpdate(s, in, inl, out, &outl),
                            outl = sizeof out, F->C_EncryptFinal(s, op, &outl));
        else
            rv = rndn(4) ? F->C_Decrypt(s, in, inl, op, &outl)
                         : (F->C_DecryptUpdate(s, in, inl, out, &outl),
                            outl = sizeof out, F->C_DecryptFinal(s, op, &outl));
        if (!rv_known(rv))
            return rv;
        if (rv == CKR_OK && op && kind == 2 && m.mechanism == CKM_RSA_PKCS_OAEP)
            oaep_chain_back(s, o, in, inl, out, outl);
        if (rv != CKR_BUFFER_TOO_SMALL && !(rv == CKR_OK && !op))
            break;
    }
    /* whatever happened, the session takes a new operation afterwards */
    CK_MECHANISM dm = {CKM_SHA256, NULL, 0};
    if (F->C_DigestInit(s, &dm) == CKR_OPERATION_ACTIVE) {
        CK_SESSION_INFO si;
        if (F->C_GetSessionInfo(s, &si) == CKR_OK) /* an op may stay active only after a size query */
            (void)si;
    } else {
        outl = sizeof out;
        F->C_DigestFinal(s, out, &outl);
    }
    return rv;
}


/* One random call of function number fn; returns its CKR_. */
static CK_RV call_random(unsigned fn)
{
    CK_ULONG n1, n2;
    CK_ATTRIBUTE *t1, *t2;
    CK_SESSION_HANDLE sh;
    CK_OBJECT_HANDLE oh1, oh2;
    void *b0 = rbuf(0), *b1 = rbuf(1);
    switch (fn) {
    case 0: return F->C_GetInfo(b0);
    case 1: return F->C_GetSlotList((CK_BBOOL)rndn(2), b0, rulongp(&ul1));
    case 2: return F->C_GetSlotInfo(rslot(), b0);
    case 3: return F->C_GetTokenInfo(rslot(), b0);
    case 4: return F->C_GetMechanismList(rslot(), b0, rulongp(&ul1));
    case 5: return F->C_GetMechanismInfo(rslot(), mech_pool[rndn(20)], b0);
    case 6: return F->C_InitToken(rslot(), b0, rlen_for(b0), b1);
    case 7: return F->C_InitPIN(rsess(), b0, rlen_for(b0));
    case 8: return F->C_SetPIN(rsess(), b0, rlen_for(b0), b1, rlen_for(b1));
    case 9: {
        CK_RV rv = F->C_OpenSession(rslot(), rndn(4) ? CKF_SERIAL_SESSION | (rndn(2) ? CKF_RW_SESSION : 0) : rnd(),
                                    NULL, NULL, rndn(6) ? &sh : NULL);
        if (rv == CKR_OK && nsessions < 8)
            sessions[nsessions++] = sh;
        return rv;
    }
    case 10: return F->C_CloseSession(rndn(10) ? rsess() : rnd());
    case 11: return F->C_GetSessionInfo(rsess(), b0);
    case 12: return F->C_GetOperationState(rsess(), b0, rulongp(&ul1));
    case 13: return F->C_SetOperationState(rsess(), b0, rlen_for(b0), robj(), robj());
    case 14: return F->C_Login(rsess(), rndn(4), b0, rlen_for(b0));
    case 15: return F->C_Logout(rndn(20) ? rnd() : rsess());
    case 16: t1 = rtmpl(&n1); return F->C_CreateObject(rsess(), t1, n1, rndn(4) ? &oh1 : NULL);
    case 17: t1 = rtmpl(&n1); return F->C_CopyObject(rsess(), robj(), t1, n1, rndn(4) ? &oh1 : NULL);
    case 18: return F->C_DestroyObject(rsess(), robj());
    case 19: return F->C_GetObjectSize(rsess(), robj(), rulongp(&ul1));
    case 20: t1 = rtmpl(&n1); return F->C_GetAttributeValue(rsess(), robj(), t1, n1);
    case 21: t1 = rtmpl(&n1); return F->C_SetAttributeValue(rsess(), robj(), t1, n1);
    case 22: t1 = rtmpl(&n1); return F->C_FindObjectsInit(rsess(), t1, n1);
    case 23: {
        CK_OBJECT_HANDLE found[16];
        CK_ULONG max = rndn(17), got = 0;
        CK_RV rv = F->C_FindObjects(rsess(), rndn(6) ? found : NULL, max, rndn(6) ? &got : NULL);
        for (CK_ULONG i = 0; rv == CKR_OK && i < got && i < max; i++)
            if (nobjects < 64)
                objects[nobjects++] = found[i];
        return rv;
    }
    case 24: return F->C_FindObjectsFinal(rsess());
    case 25: return F->C_EncryptInit(rsess(), rmech(), robj());
    case 26: return F->C_Encrypt(rsess(), b0, rlen_for(b0), b1, rndn(3) ? rulongp(&ul1) : NULL);
    case 27: return F->C_EncryptUpdate(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 28: return F->C_EncryptFinal(rsess(), b1, rulongp(&ul1));
    case 29: return F->C_DecryptInit(rsess(), rmech(), robj());
    case 30: return F->C_Decrypt(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 31: return F->C_DecryptUpdate(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 32: return F->C_DecryptFinal(rsess(), b1, rulongp(&ul1));
    case 33: return F->C_DigestInit(rsess(), rmech());
    case 34: return F->C_Digest(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 35: return F->C_DigestUpdate(rsess(), b0, rlen_for(b0));
    case 36: return F->C_DigestKey(rsess(), robj());
    case 37: return F->C_DigestFinal(rsess(), b1, rulongp(&ul1));
    case 38: return F->C_SignInit(rsess(), rmech(), robj());
    case 39: return F->C_Sign(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 40: return F->C_SignUpdate(rsess(), b0, rlen_for(b0));
    case 41: return F->C_SignFinal(rsess(), b1, rulongp(&ul1));
    case 42: return F->C_SignRecoverInit(rsess(), rmech(), robj());
    case 43: return F->C_SignRecover(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 44: return F->C_VerifyInit(rsess(), rmech(), robj());
    case 45: return F->C_Verify(rsess(), b0, rlen_for(b0), b1, rlen_for(b1));
    case 46: return F->C_VerifyUpdate(rsess(), b0, rlen_for(b0));
    case 47: return F->C_VerifyFinal(rsess(), b1, rlen_for(b1));
    case 48: return F->C_VerifyRecoverInit(rsess(), rmech(), robj());
    case 49: return F->C_VerifyRecover(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 50: return F->C_DigestEncryptUpdate(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 51: return F->C_DecryptDigestUpdate(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 52: return F->C_SignEncryptUpdate(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 53: return F->C_DecryptVerifyUpdate(rsess(), b0, rlen_for(b0), b1, rulongp(&ul1));
    case 54: t1 = rtmpl(&n1); return F->C_GenerateKey(rsess(), rmech(), t1, n1, rndn(5) ? &oh1 : NULL);
    case 55: {
        t1 = rtmpl(&n1);
        CK_ATTRIBUTE copy[8];
        memcpy(copy, t1 ? t1 : tmpl_cell, sizeof copy);
        t2 = rtmpl(&n2);
        return F->C_GenerateKeyPair(rsess(), rmech(), t1 ? copy : NULL, n1, t2, n2,
                                    rndn(5) ? &oh1 : NULL, rndn(5) ? &oh2 : NULL);
    }
    case 56: return F->C_WrapKey(rsess(), rmech(), robj(), robj(), b1, rulongp(&ul1));
    case 57: t1 = rtmpl(&n1); return F->C_UnwrapKey(rsess(), rmech(), robj(), b0, rlen_for(b0), t1, n1, &oh1);
    case 58: t1 = rtmpl(&n1); return F->C_DeriveKey(rsess(), rmech(), robj(), t1, n1, &oh1);
    case 59: return F->C_SeedRandom(rsess(), b0, rlen_for(b0));
    case 60: return F->C_GenerateRandom(rsess(), b0, rndn(4) ? rndn(64) : rlen_for(b0));
    case 61: return F->C_GetFunctionStatus(rsess());
    case 62: return F->C_CancelFunction(rsess());
    case 63: return F->C_WaitForSlotEvent(CKF_DONT_BLOCK, rndn(5) ? (CK_SLOT_ID *)&ul1 : NULL, NULL);
    case 64: return F->C_GetInterfaceList(b0 && rndn(2) ? b0 : NULL, rulongp(&ul2));
    case 65: {
        p11_interface *ifc = NULL;
        CK_VERSION v = {(unsigned char)rndn(4), (unsigned char)rndn(41)};
        return F->C_GetInterface(rndn(2) ? (CK_UTF8CHAR *)"PKCS 11" : rndn(2) ? (CK_UTF8CHAR *)"x" : NULL,
                                 rndn(2) ? &v : NULL, rndn(5) ? &ifc : NULL, rndn(3) ? 0 : rnd());
    }
    case 66: return F->C_LoginUser(rsess(), rndn(4), b0, rlen_for(b0), b1, rlen_for(b1));
    case 67: return F->C_SessionCancel(rsess(), rnd());
    case 68: return F->C_MessageEncryptInit(rsess(), rmech(), robj());
    case 69: {
        CK_ULONG pl;
        void *pm = rgcmmsg(b0, &pl);
        return F->C_EncryptMessage(rsess(), pm, pl, b1, rlen_for(b1), b0, rlen_for(b0), b1, rulongp(&ul1));
    }
    case 70: return F->C_EncryptMessageBegin(rsess(), b0, rlen_for(b0), b1, rlen_for(b1));
    case 71: return F->C_EncryptMessageNext(rsess(), b0, rlen_for(b0), b1, rlen_for(b1), b0, rulongp(&ul1), rnd());
    case 72: return F->C_MessageEncryptFinal(rsess());
    case 73: return F->C_MessageDecryptInit(rsess(), rmech(), robj());
    case 74: {
        CK_ULONG pl;
        void *pm = rgcmmsg(b0, &pl);
        return F->C_DecryptMessage(rsess(), pm, pl, b1, rlen_for(b1), b0, rlen_for(b0), b1, rulongp(&ul1));
    }
    case 75: return F->C_DecryptMessageBegin(rsess(), b0, rlen_for(b0), b1, rlen_for(b1));
    case 76: return F->C_DecryptMessageNext(rsess(), b0, rlen_for(b0), b1, rlen_for(b1), b0, rulongp(&ul1), rnd());
    case 77: return F->C_MessageDecryptFinal(rsess());
    case 78: return F->C_MessageSignInit(rsess(), rmech(), robj());
    case 79: return F->C_SignMessage(rsess(), b0, rlen_for(b0), b1, rlen_for(b1), b0, rulongp(&ul1));
    case 80: return F->C_SignMessageBegin(rsess(), b0, rlen_for(b0));
    case 81: return F->C_SignMessageNext(rsess(), b0, rlen_for(b0), b1, rlen_for(b1), b0, rulongp(&ul1));
    case 82: return F->C_MessageSignFinal(rsess());
    case 83: return F->C_MessageVerifyInit(rsess(), rmech(), robj());
    case 84: return F->C_VerifyMessage(rsess(), b0, rlen_for(b0), b1, rlen_for(b1), b0, rlen_for(b0));
    case 85: return F->C_VerifyMessageBegin(rsess(), b0, rlen_for(b0));
    case 86: return F->C_VerifyMessageNext(rsess(), b0, rlen_for(b0), b1, rlen_for(b1), b0, rlen_for(b0));
    default: return F->C_MessageVerifyFinal(rsess());
    }
}
#define NFUNCS 88

/* The PKCS#11 3.0 message-based AES-GCM functions on key k: the IV and tag
 * the KeyStore chose come back in CK_GCM_MESSAGE_PARAMS and agree with
 * single-part C_Decrypt (nonce || ciphertext || tag); a single-part
 * ciphertext ct (cn bytes, nonce first) decrypts through C_DecryptMessage. */
static void msg_checks(CK_SESSION_HANDLE rw, CK_OBJECT_HANDLE k, const CK_BYTE *ct, CK_ULONG cn)
{
    CK_MECHANISM_INFO mi;
    CHECK(F->C_GetMechanismInfo(0, CKM_AES_GCM, &mi) == CKR_OK &&
              (mi.flags & CKF_MESSAGE_ENCRYPT) && (mi.flags & CKF_MESSAGE_DECRYPT),
          "AES-GCM offers the message-based functions");
    CK_MECHANISM m = {CKM_AES_GCM, NULL, 0}, withp = {CKM_AES_GCM, &mi, 8};
    CHECK(F->C_MessageEncryptInit(rw, &withp, k) == CKR_MECHANISM_PARAM_INVALID,
          "MessageEncryptInit with a parameter");
    CHECK(F->C_MessageEncryptInit(rw, &m, k) == CKR_OK, "MessageEncryptInit");
    CHECK(F->C_MessageEncryptInit(rw, &m, k) == CKR_OPERATION_ACTIVE, "MessageEncryptInit twice");
    CK_BYTE iv[12] = {0}, iv2[12] = {0}, tag[16] = {0}, aad[5] = {9, 8, 7, 6, 5};
    CK_BYTE pt[] = "message-based", out[64], back[64], single[64];
    p11_gcm_message_params gp = {iv, 12, 0, CKG_GENERATE_RANDOM, tag, 128};
    CK_ULONG n = 0;
    CHECK(F->C_EncryptMessage(rw, &gp, sizeof gp, aad, sizeof aad, pt, sizeof pt, NULL, &n) ==
                  CKR_OK && n == sizeof pt,
          "EncryptMessage size query: %lu", n);
    n = 3;
    CHECK(F->C_EncryptMessage(rw, &gp, sizeof gp, aad, sizeof aad, pt, sizeof pt, out, &n) ==
                  CKR_BUFFER_TOO_SMALL && n == sizeof pt,
          "EncryptMessage BUFFER_TOO_SMALL");
    static const p11_gcm_message_params bad[] = {
        {NULL, 12, 0, CKG_GENERATE_RANDOM, NULL, 128}, /* no IV / tag buffers */
        {NULL, 12, 0, CKG_NO_GENERATE, NULL, 128},     /* a caller's IV */
        {NULL, 12, 0, CKG_GENERATE_COUNTER, NULL, 128},
        {NULL, 12, 32, CKG_GENERATE_RANDOM, NULL, 128}, /* fixed IV bits */
        {NULL, 16, 0, CKG_GENERATE_RANDOM, NULL, 128},
        {NULL, 12, 0, CKG_GENERATE_RANDOM, NULL, 96},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        p11_gcm_message_params b = bad[i];
        if (i) {
            b.pIv = iv2;
            b.pTag = tag;
        }
        n = sizeof out;
        CK_RV rv = F->C_EncryptMessage(rw, &b, sizeof b, NULL, 0, pt, sizeof pt, out, &n);
        CHECK(rv == CKR_MECHANISM_PARAM_INVALID, "bad message parameter %zu: 0x%lx", i, rv);
    }
    n = sizeof out;
    CHECK(F->C_EncryptMessage(rw, &gp, sizeof gp - 1, NULL, 0, pt, sizeof pt, out, &n) ==
              CKR_MECHANISM_PARAM_INVALID,
          "short message parameter");
    CHECK(F->C_EncryptMessageBegin(rw, &gp, sizeof gp, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED,
          "EncryptMessageBegin");
    n = sizeof out;
    CK_RV rv = F->C_EncryptMessage(rw, &gp, sizeof gp, aad, sizeof aad, pt, sizeof pt, out, &n);
    CHECK(rv == CKR_OK && n == sizeof pt, "EncryptMessage: 0x%lx", rv);
    CK_BYTE zero[12] = {0};
    CHECK(memcmp(iv, zero, 12) != 0, "the KeyStore's nonce came back in pIv");
    memcpy(iv2, iv, 12);
    CK_ULONG n2 = sizeof back;
    CHECK(F->C_EncryptMessage(rw, &gp, sizeof gp, aad, sizeof aad, pt, sizeof pt, back, &n2) ==
                  CKR_OK && memcmp(iv, iv2, 12) != 0,
          "a second message gets another nonce");
    CHECK(F->C_MessageEncryptFinal(rw) == CKR_OK, "MessageEncryptFinal");
    CHECK(F->C_MessageEncryptFinal(rw) == CKR_OPERATION_NOT_INITIALIZED, "MessageEncryptFinal twice");
    /* the second message, as one single-part ciphertext: nonce || ct || tag */
    memcpy(single, iv, 12);
    memcpy(single + 12, back, n2);
    memcpy(single + 12 + n2, tag, 16);
    CK_GCM_PARAMS sp = {NULL, 0, 0, aad, sizeof aad, 128};
    CK_MECHANISM sm = {CKM_AES_GCM, &sp, sizeof sp};
    CK_BYTE dec[64];
    CK_ULONG dn = sizeof dec;
    CHECK(F->C_DecryptInit(rw, &sm, k) == CKR_OK, "DecryptInit for a message");
    rv = F->C_Decrypt(rw, single, n2 + 28, dec, &dn);
    CHECK(rv == CKR_OK && dn == sizeof pt && !memcmp(dec, pt, dn),
          "C_Decrypt of C_EncryptMessage's nonce, ciphertext and tag: 0x%lx", rv);
    /* C_DecryptMessage of a single-part ciphertext */
    CHECK(F->C_MessageDecryptInit(rw, &m, k) == CKR_OK, "MessageDecryptInit");
    p11_gcm_message_params dp = {(CK_BYTE *)ct, 12, 0, CKG_NO_GENERATE, (CK_BYTE *)ct + cn - 16, 128};
    CK_BYTE aad3[3] = {1, 2, 3};
    dn = sizeof dec;
    rv = F->C_DecryptMessage(rw, &dp, sizeof dp, aad3, sizeof aad3, (CK_BYTE *)ct + 12, cn - 28, dec,
                             &dn);
    CHECK(rv == CKR_OK && dn == cn - 28 && !memcmp(dec, "attack at dawn", 14),
          "C_DecryptMessage of a C_Encrypt ciphertext: 0x%lx", rv);
    CK_BYTE badtag[16];
    memcpy(badtag, ct + cn - 16, 16);
    badtag[0] ^= 1;
    dp.pTag = badtag;
    dn = sizeof dec;
    rv = F->C_DecryptMessage(rw, &dp, sizeof dp, aad3, sizeof aad3, (CK_BYTE *)ct + 12, cn - 28, dec,
                             &dn);
    CHECK(rv == CKR_ENCRYPTED_DATA_INVALID, "C_DecryptMessage with a wrong tag: 0x%lx", rv);
    CHECK(F->C_SessionCancel(rw, CKF_MESSAGE_DECRYPT) == CKR_OK, "SessionCancel of message decrypt");
    CHECK(F->C_DecryptMessage(rw, &dp, sizeof dp, NULL, 0, (CK_BYTE *)ct + 12, cn - 28, dec, &dn) ==
              CKR_OPERATION_NOT_INITIALIZED,
          "C_DecryptMessage after C_SessionCancel");
}

/* Logged in: AES-GCM through transit, tampering and AAD refused. */
static void aes_gcm_checks(void)
{
    CK_SESSION_HANDLE rw;
    CHECK(F->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw) == CKR_OK,
          "RW session");
    char label[32];
    snprintf(label, sizeof label, "randaes%ld", (long)getpid());
    CK_ULONG vlen = 32;
    CK_ATTRIBUTE t[] = {{CKA_LABEL, label, strlen(label)}, {CKA_VALUE_LEN, &vlen, sizeof vlen}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE k = 0;
    CK_RV rv = F->C_GenerateKey(rw, &gen, t, 2, &k);
    CHECK(rv == CKR_OK, "C_GenerateKey AES: 0x%lx", rv);
    if (rv != CKR_OK)
        return;
    objects[nobjects++] = k;
    CK_BYTE iv[12] = {0}, aad[3] = {1, 2, 3};
    CK_GCM_PARAMS gp = {iv, sizeof iv, 96, aad, sizeof aad, 128};
    CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof gp};
    CK_BYTE pt[] = "attack at dawn", ct[64], back[64];
    CK_ULONG n = 0, cn, bn;
    CHECK(F->C_EncryptInit(rw, &m, k) == CKR_OK, "EncryptInit AES-GCM");
    CHECK(F->C_Encrypt(rw, pt, sizeof pt, NULL, &n) == CKR_OK && n == sizeof pt + 28,
          "Encrypt size query: %lu", n);
    n = 4;
    CHECK(F->C_Encrypt(rw, pt, sizeof pt, ct, &n) == CKR_BUFFER_TOO_SMALL && n == sizeof pt + 28,
          "Encrypt BUFFER_TOO_SMALL");
    cn = sizeof ct;
    rv = F->C_Encrypt(rw, pt, sizeof pt, ct, &cn);
    CHECK(rv == CKR_OK && cn == sizeof pt + 28, "Encrypt: 0x%lx", rv);
    CHECK(F->C_DecryptInit(rw, &m, k) == CKR_OK, "DecryptInit");
    bn = sizeof back;
    rv = F->C_Decrypt(rw, ct, cn, back, &bn);
    CHECK(rv == CKR_OK && bn == sizeof pt && !memcmp(back, pt, bn), "Decrypt round trip: 0x%lx",
          rv);
    ct[cn - 1] ^= 1;
    CHECK(F->C_DecryptInit(rw, &m, k) == CKR_OK, "DecryptInit 2");
    bn = sizeof back;
    rv = F->C_Decrypt(rw, ct, cn, back, &bn);
    CHECK(rv == CKR_ENCRYPTED_DATA_INVALID, "tampered ciphertext: 0x%lx", rv);
    ct[cn - 1] ^= 1;
    aad[0] ^= 1;
    CHECK(F->C_DecryptInit(rw, &m, k) == CKR_OK, "DecryptInit 3");
    bn = sizeof back;
    rv = F->C_Decrypt(rw, ct, cn, back, &bn);
    CHECK(rv == CKR_ENCRYPTED_DATA_INVALID, "other associated data: 0x%lx", rv);
    aad[0] ^= 1;
    msg_checks(rw, k, ct, cn);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    CHECK(F->C_SignInit(rw, &ecdsa, k) == CKR_KEY_TYPE_INCONSISTENT, "ECDSA with an AES key");
    CK_BYTE rnd_bytes[48] = {0}, zero[48] = {0};
    CHECK(F->C_GenerateRandom(rw, rnd_bytes, sizeof rnd_bytes) == CKR_OK &&
              memcmp(rnd_bytes, zero, sizeof zero) != 0,
          "GenerateRandom");
    sessions[nsessions++] = rw;
}

/* Logged in: RSA-OAEP (SHA-256, MGF1-SHA-256): encrypt with the public key
 * in the module, decrypt with the private key through transit, the size
 * conventions, tampering and every other parameter refused. */
static void rsa_oaep_checks(void)
{
    CK_SESSION_HANDLE rw;
    CHECK(F->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw) == CKR_OK,
          "RW session (OAEP)");
    char label[32];
    snprintf(label, sizeof label, "randrsa%ld", (long)getpid());
    CK_ULONG bits = 2048;
    CK_BYTE e[] = {1, 0, 1};
    CK_ATTRIBUTE pt_[] = {{CKA_LABEL, label, strlen(label)},
                          {CKA_MODULUS_BITS, &bits, sizeof bits},
                          {CKA_PUBLIC_EXPONENT, e, sizeof e}};
    CK_ATTRIBUTE vt[] = {{CKA_LABEL, label, strlen(label)}};
    CK_MECHANISM gen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    CK_RV rv = F->C_GenerateKeyPair(rw, &gen, pt_, 3, vt, 1, &pub, &priv);
    CHECK(rv == CKR_OK, "C_GenerateKeyPair RSA: 0x%lx", rv);
    if (rv != CKR_OK)
        return;
    objects[nobjects++] = pub;
    objects[nobjects++] = priv;
    CK_BBOOL enc = 0, dec = 0;
    CK_ATTRIBUTE ae[] = {{CKA_ENCRYPT, &enc, 1}}, ad[] = {{CKA_DECRYPT, &dec, 1}};
    CHECK(F->C_GetAttributeValue(rw, pub, ae, 1) == CKR_OK && enc, "CKA_ENCRYPT on RSA public");
    CHECK(F->C_GetAttributeValue(rw, priv, ad, 1) == CKR_OK && dec, "CKA_DECRYPT on RSA private");
    CK_MECHANISM_INFO mi;
    CHECK(F->C_GetMechanismInfo(0, CKM_RSA_PKCS_OAEP, &mi) == CKR_OK &&
              (mi.flags & (CKF_ENCRYPT | CKF_DECRYPT)) == (CKF_ENCRYPT | CKF_DECRYPT),
          "OAEP mechanism info");
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM m = {CKM_RSA_PKCS_OAEP, &op, sizeof op};
    CK_BYTE pt[] = "the quick brown fox", ct[512], back[512];
    CK_ULONG n = 0, cn, bn;
    CHECK(F->C_EncryptInit(rw, &m, pub) == CKR_OK, "EncryptInit OAEP");
    CHECK(F->C_Encrypt(rw, pt, sizeof pt, NULL, &n) == CKR_OK && n == 256,
          "OAEP encrypt size query: %lu", n);
    n = 4;
    CHECK(F->C_Encrypt(rw, pt, sizeof pt, ct, &n) == CKR_BUFFER_TOO_SMALL && n == 256,
          "OAEP encrypt BUFFER_TOO_SMALL");
    cn = sizeof ct;
    rv = F->C_Encrypt(rw, pt, sizeof pt, ct, &cn);
    CHECK(rv == CKR_OK && cn == 256, "OAEP encrypt: 0x%lx", rv);
    CHECK(F->C_DecryptInit(rw, &m, priv) == CKR_OK, "DecryptInit OAEP");
    bn = sizeof back;
    rv = F->C_Decrypt(rw, ct, cn, back, &bn);
    CHECK(rv == CKR_OK && bn == sizeof pt && !memcmp(back, pt, bn), "OAEP round trip: 0x%lx", rv);
    ct[cn / 2] ^= 1;
    CHECK(F->C_DecryptInit(rw, &m, priv) == CKR_OK, "DecryptInit OAEP 2");
    bn = sizeof back;
    rv = F->C_Decrypt(rw, ct, cn, back, &bn);
    CHECK(rv == CKR_ENCRYPTED_DATA_INVALID, "tampered OAEP ciphertext: 0x%lx", rv);
    CHECK(F->C_DecryptInit(rw, &m, priv) == CKR_OK, "DecryptInit OAEP 3");
    bn = sizeof back;
    rv = F->C_Decrypt(rw, ct, cn - 1, back, &bn);
    CHECK(rv == CKR_ENCRYPTED_DATA_LEN_RANGE, "short OAEP ciphertext: 0x%lx", rv);
    CK_BYTE big[191] = {0};
    CHECK(F->C_EncryptInit(rw, &m, pub) == CKR_OK, "EncryptInit OAEP 2");
    cn = sizeof ct;
    rv = F->C_Encrypt(rw, big, sizeof big, ct, &cn);
    CHECK(rv == CKR_DATA_LEN_RANGE, "OAEP plaintext over 190 bytes: 0x%lx", rv);
    CHECK(F->C_DecryptInit(rw, &m, pub) == CKR_KEY_TYPE_INCONSISTENT, "OAEP decrypt with public");
    CHECK(F->C_EncryptInit(rw, &m, priv) == CKR_KEY_TYPE_INCONSISTENT, "OAEP encrypt with private");
    CK_BYTE lab[] = "label";
    CK_RSA_PKCS_OAEP_PARAMS badp[] = {
        {CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0},
        {CKM_SHA256, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0},
        {CKM_SHA384, CKG_MGF1_SHA384, CKZ_DATA_SPECIFIED, NULL, 0},
        {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, lab, sizeof lab},
        {CKM_SHA256, CKG_MGF1_SHA256, 7, NULL, 0}};
    for (size_t i = 0; i < sizeof badp / sizeof badp[0]; i++) {
        CK_MECHANISM bm = {CKM_RSA_PKCS_OAEP, &badp[i], sizeof badp[i]};
        CHECK(F->C_DecryptInit(rw, &bm, priv) == CKR_MECHANISM_PARAM_INVALID,
              "OAEP parameters #%zu refused", i);
    }
    CK_MECHANISM nop = {CKM_RSA_PKCS_OAEP, NULL, 0};
    CHECK(F->C_EncryptInit(rw, &nop, pub) == CKR_MECHANISM_PARAM_INVALID, "OAEP without params");
    sessions[nsessions++] = rw;
}

/* The answers the standard fixes, before and after C_Initialize. */
static void fixed_checks(const char *pin)
{
    CK_INFO info;
    CK_ULONG n = 0;
    CK_SESSION_HANDLE s = 0;
    CHECK(F->C_GetInfo(&info) == CKR_CRYPTOKI_NOT_INITIALIZED, "GetInfo before init");
    CHECK(F->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s) == CKR_CRYPTOKI_NOT_INITIALIZED,
          "OpenSession before init");
    CHECK(F->C_Finalize(NULL) == CKR_CRYPTOKI_NOT_INITIALIZED, "Finalize before init");
    CK_C_INITIALIZE_ARGS bad = {0};
    bad.pReserved = &n;
    CHECK(F->C_Initialize(&bad) == CKR_ARGUMENTS_BAD, "Initialize with pReserved");
    CHECK(F->C_Initialize(NULL) == CKR_OK, "Initialize");
    CHECK(F->C_Initialize(NULL) == CKR_CRYPTOKI_ALREADY_INITIALIZED, "Initialize twice");
    CHECK(F->C_GetInfo(&info) == CKR_OK && info.cryptokiVersion.major == 3, "GetInfo");
    CHECK(F->C_GetInfo(NULL) == CKR_ARGUMENTS_BAD, "GetInfo NULL");
    CHECK(F->C_GetSlotList(CK_TRUE, NULL, &n) == CKR_OK && n == 1, "slot count");
    CK_SLOT_ID slots[1];
    n = 0;
    CHECK(F->C_GetSlotList(CK_TRUE, slots, &n) == CKR_BUFFER_TOO_SMALL && n == 1,
          "slot list BUFFER_TOO_SMALL sets the size");
    CHECK(F->C_GetSlotList(CK_TRUE, NULL, NULL) == CKR_ARGUMENTS_BAD, "slot list NULL count");
    CHECK(F->C_GetMechanismList(0, NULL, &n) == CKR_OK && n > 10, "mechanism count");
    CK_ULONG want = n;
    CK_MECHANISM_TYPE mt[64];
    n = 1;
    CHECK(F->C_GetMechanismList(0, mt, &n) == CKR_BUFFER_TOO_SMALL && n == want,
          "mechanism list BUFFER_TOO_SMALL");
    n = 64;
    CHECK(F->C_GetMechanismList(0, mt, &n) == CKR_OK && n == want, "mechanism list");
    CHECK(F->C_GetMechanismList(7, mt, &n) == CKR_SLOT_ID_INVALID, "bad slot");
    CK_MECHANISM_INFO mi;
    CHECK(F->C_GetMechanismInfo(0, CKM_RSA_X_509, &mi) == CKR_MECHANISM_INVALID,
          "unknown mechanism");
    CHECK(F->C_GetMechanismInfo(0, CKM_ECDSA, &mi) == CKR_OK && (mi.flags & CKF_SIGN),
          "ECDSA info");
    CHECK(F->C_OpenSession(0, 0, NULL, NULL, &s) == CKR_SESSION_PARALLEL_NOT_SUPPORTED,
          "non-serial session");
    CHECK(F->C_OpenSession(0, CKF_SERIAL_SESSION, NULL, NULL, &s) == CKR_OK, "OpenSession");
    CHECK(F->C_CloseSession(s + 1000) == CKR_SESSION_HANDLE_INVALID, "bad session handle");
    CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
    CHECK(F->C_SignInit(s + 1000, &m, 1) == CKR_SESSION_HANDLE_INVALID, "SignInit bad session");
    CHECK(F->C_SignInit(s, NULL, 1) == CKR_ARGUMENTS_BAD, "SignInit NULL mechanism");
    CHECK(F->C_SignInit(s, &m, 1) == CKR_USER_NOT_LOGGED_IN, "SignInit before login");
    CHECK(F->C_Sign(s, (CK_BYTE *)"x", 1, NULL, &n) == CKR_OPERATION_NOT_INITIALIZED,
          "Sign without init");
    CHECK(F->C_Logout(s) == CKR_USER_NOT_LOGGED_IN, "Logout before login");
    CHECK(F->C_Login(s, CKU_SO, (CK_UTF8CHAR *)"x", 1) == CKR_USER_TYPE_INVALID, "SO login");
    CHECK(F->C_InitToken(0, NULL, 0, NULL) == CKR_FUNCTION_NOT_SUPPORTED, "InitToken");
    CHECK(F->C_SeedRandom(s, (CK_BYTE *)"x", 1) == CKR_RANDOM_SEED_NOT_SUPPORTED, "SeedRandom");
    CHECK(F->C_MessageEncryptInit(s, &m, 1) == CKR_MECHANISM_INVALID, "message API with ECDSA");
    CK_MECHANISM gm0 = {CKM_AES_GCM, NULL, 0};
    CHECK(F->C_MessageEncryptInit(s, &gm0, 1) == CKR_USER_NOT_LOGGED_IN, "message API before login");
    CHECK(F->C_MessageSignInit(s, &m, 1) == CKR_USER_NOT_LOGGED_IN, "message-based signing before login");
    CHECK(F->C_SignMessageBegin(s, NULL, 0) == CKR_FUNCTION_NOT_SUPPORTED, "SignMessageBegin");
    CK_OBJECT_HANDLE oh;
    CHECK(F->C_CreateObject(s, NULL, 0, &oh) == CKR_USER_NOT_LOGGED_IN, "CreateObject before login");
    CHECK(F->C_CreateObject(s, NULL, 1, &oh) == CKR_ARGUMENTS_BAD, "CreateObject NULL template");
    CK_MECHANISM dm = {CKM_SHA256, NULL, 0};
    CK_BYTE dg[32];
    n = 31;
    CHECK(F->C_DigestInit(s, &dm) == CKR_OK, "DigestInit");
    CHECK(F->C_Digest(s, (CK_BYTE *)"abc", 3, dg, &n) == CKR_BUFFER_TOO_SMALL && n == 32,
          "Digest BUFFER_TOO_SMALL");
    static const CK_BYTE abc256[4] = {0xba, 0x78, 0x16, 0xbf};
    CHECK(F->C_Digest(s, (CK_BYTE *)"abc", 3, dg, &n) == CKR_OK && n == 32 &&
              !memcmp(dg, abc256, 4),
          "Digest SHA-256 of abc");
    dm.mechanism = CKM_MD5;
    CHECK(F->C_DigestInit(s, &dm) == CKR_MECHANISM_INVALID, "MD5 digest");
    if (pin) {
        CHECK(F->C_Login(s, CKU_USER, (CK_UTF8CHAR *)"wrong-pin", 9) == CKR_PIN_INCORRECT,
              "wrong PIN");
        CK_RV rv = F->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
        CHECK(rv == CKR_OK, "Login: 0x%lx", rv);
        CHECK(F->C_FindObjectsInit(s, NULL, 0) == CKR_OK, "FindObjectsInit");
        CHECK(F->C_FindObjectsInit(s, NULL, 0) == CKR_OPERATION_ACTIVE, "FindObjectsInit twice");
        CK_OBJECT_HANDLE found[64];
        CHECK(F->C_FindObjects(s, found, 64, &n) == CKR_OK && n > 0, "objects after login");
        for (CK_ULONG i = 0; i < n && nobjects < 64; i++)
            objects[nobjects++] = found[i];
        CHECK(F->C_FindObjectsFinal(s) == CKR_OK, "FindObjectsFinal");
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE q[] = {{CKA_CLASS, &cls, sizeof cls}};
        CK_ATTRIBUTE a[] = {{CKA_VALUE, NULL, 0}, {CKA_SENSITIVE, NULL, 0}};
        if (F->C_FindObjectsInit(s, q, 1) == CKR_OK && F->C_FindObjects(s, found, 1, &n) == CKR_OK &&
            n == 1) {
            CHECK(F->C_GetAttributeValue(s, found[0], a, 2) == CKR_ATTRIBUTE_SENSITIVE &&
                      a[0].ulValueLen == CK_UNAVAILABLE_INFORMATION && a[1].ulValueLen == 1,
                  "private value is sensitive");
            CHECK(F->C_DestroyObject(s, found[0]) == CKR_SESSION_READ_ONLY,
                  "DestroyObject in a read-only session");
        }
        F->C_FindObjectsFinal(s);
        aes_gcm_checks();
        rsa_oaep_checks();
    }
    sessions[nsessions++] = s;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODULE.so\n", argv[0]);
        return 2;
    }
    char conf[] = "/tmp/p11-randcall-XXXXXX";
    if (!getenv("P11_RANDCALL_CONF")) {
        int fd = mkstemp(conf);
        const char *text = "# written by test_p11_randcall\nserver = https://127.0.0.1:1\n"
                           "timeout = 2\n";
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
            return 2;
        close(fd);
        setenv("MESATEE_PKCS11_CONF", conf, 1);
    } else {
        setenv("MESATEE_PKCS11_CONF", getenv("P11_RANDCALL_CONF"), 1);
    }
    const char *pin = getenv("P11_RANDCALL_PIN");
    long iters = getenv("P11_RANDCALL_ITER") ? atol(getenv("P11_RANDCALL_ITER")) : 200000;
    if (getenv("P11_RANDCALL_SEED"))
        rng_state = strtoull(getenv("P11_RANDCALL_SEED"), NULL, 0) | 1;

    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    CK_RV (*get_iface)(CK_UTF8CHAR *, CK_VERSION *, p11_interface **, CK_FLAGS);
    CK_RV (*get_list)(CK_FUNCTION_LIST **);
    *(void **)&get_iface = dlsym(lib, "C_GetInterface");
    *(void **)&get_list = dlsym(lib, "C_GetFunctionList");
    CHECK(get_iface && get_list, "module exports C_GetInterface and C_GetFunctionList");
    if (!get_iface || !get_list)
        return 1;
    CK_FUNCTION_LIST *l240 = NULL;
    CHECK(get_list(NULL) == CKR_ARGUMENTS_BAD, "C_GetFunctionList(NULL)");
    CHECK(get_list(&l240) == CKR_OK && l240->version.major == 2 && l240->version.minor == 40,
          "2.40 list");
    p11_interface *ifc = NULL;
    CK_VERSION v30 = {3, 0};
    CHECK(get_iface((CK_UTF8CHAR *)"PKCS 11", &v30, &ifc, 0) == CKR_OK && ifc, "3.0 interface");
    if (!ifc)
        return 1;
    F = ifc->pFunctionList;
    CHECK(F->version.major == 3 && F->version.minor == 0, "3.0 list version");
    CHECK(F->C_Initialize == l240->C_Initialize && F->C_WaitForSlotEvent == l240->C_WaitForSlotEvent,
          "3.0 list starts with the 2.40 list");
    CK_ULONG ni = 0;
    CHECK(F->C_GetInterfaceList(NULL, &ni) == CKR_OK && ni == 2, "interface count");
    CK_VERSION v9 = {9, 9};
    CHECK(get_iface(NULL, &v9, &ifc, 0) != CKR_OK, "no 9.9 interface");

    fixed_checks(pin);
    fprintf(stderr, "fixed checks done (%d failures); %ld random calls\n", failures, iters);
    long unknown = 0, okcalls[NFUNCS] = {0}, chain_ok = 0;
    for (long i = 0; i < iters; i++) {
        if (pin && i % 200 == 0) { /* keep a logged-in session around: deeper paths */
            CK_SESSION_HANDLE s;
            if (nsessions < 8 &&
                F->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) == CKR_OK)
                sessions[nsessions++] = s;
            if (nsessions)
                F->C_Login(sessions[nsessions - 1], CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
        }
        if (pin && rndn(4) == 0) {
            chain_pin = pin;
            CK_RV rv = call_chain();
            if (!rv_known(rv) && unknown++ < 10)
                fprintf(stderr, "FAIL chained call returned unknown 0x%lx\n", rv);
            chain_ok += rv == CKR_OK;
            continue;
        }
        unsigned fn = rndn(NFUNCS);
        CK_RV rv = call_random(fn);
        if (rv == CKR_OK)
            okcalls[fn]++;
        if (!rv_known(rv)) {
            if (unknown++ < 10)
                fprintf(stderr, "FAIL function #%u returned unknown 0x%lx\n", fn, rv);
        }
        if (rndn(5000) == 0) { /* finalize and start again now and then */
            CHECK(F->C_Finalize(NULL) == CKR_OK, "Finalize");
            nsessions = nobjects = 0;
            CHECK(F->C_Initialize(NULL) == CKR_OK, "re-Initialize");
            if (pin) {
                CK_SESSION_HANDLE s;
                if (F->C_OpenSession(0, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) ==
                    CKR_OK) {
                    sessions[nsessions++] = s;
                    F->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
                }
            }
        }
    }
    failures += unknown > 0;
    long total_ok = 0;
    for (unsigned f = 0; f < NFUNCS; f++)
        total_ok += okcalls[f];
    fprintf(stderr, "chains: %ld skipped (no objects), %ld operations started, %ld OAEP round trips\n",
            chain_skips, chain_inits, oaep_backs);
    fprintf(stderr, "%ld calls returned CKR_OK; C_Sign %ld, C_Verify %ld, C_Encrypt %ld, C_Decrypt %ld, "
                    "C_GetAttributeValue %ld; chains ending CKR_OK %ld\n",
            total_ok, okcalls[39], okcalls[45], okcalls[26], okcalls[30], okcalls[20], chain_ok);
    CHECK(F->C_Finalize(NULL) == CKR_OK, "final Finalize");
    if (!getenv("P11_RANDCALL_CONF"))
        unlink(conf);
    fprintf(stderr, "%s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
