/* p11_defs: what the module needs from PKCS#11 3.0 beyond Debian's p11-kit
 * pkcs11.h (libp11-kit-dev 0.24, a 2.40 header): the interface structure,
 * the 3.0 function list and the types of the 3.0 functions, written from
 * the OASIS PKCS#11 3.0 base specification (section 5.x, "CK_INTERFACE",
 * "CK_FUNCTION_LIST_3_0"). The first 68 entries of the 3.0 list are those
 * of the 2.40 list in the same order, so a 2.40 caller can use it as is.
 * Also used by tests/unit/test_p11_randcall.c. */
#ifndef MT_P11_DEFS_H
#define MT_P11_DEFS_H

#include <p11-kit/pkcs11.h>

#ifndef CKF_INTERFACE_FORK_SAFE
#define CKF_INTERFACE_FORK_SAFE 0x00000001UL
#endif
#ifndef CKF_FIND_OBJECTS
#define CKF_FIND_OBJECTS 0x00000040UL
#endif
#ifndef CKR_OPERATION_CANCEL_FAILED
#define CKR_OPERATION_CANCEL_FAILED 0x00000202UL
#endif

/* Mechanism flags of the message-based functions, per-message parameters
 * of AES-GCM and its IV generators (PKCS#11 3.0 base 5.2, current
 * mechanisms 2.12.x). */
#ifndef CKF_MESSAGE_ENCRYPT
#define CKF_MESSAGE_ENCRYPT 0x00000002UL
#define CKF_MESSAGE_DECRYPT 0x00000004UL
#define CKF_MESSAGE_SIGN 0x00000008UL
#define CKF_MESSAGE_VERIFY 0x00000010UL
#define CKF_MULTI_MESSAGE 0x00000020UL
#endif
#ifndef CKF_END_OF_MESSAGE
#define CKF_END_OF_MESSAGE 0x00000001UL
#endif
#ifndef CKG_NO_GENERATE
#define CKG_NO_GENERATE 0x00000000UL
#define CKG_GENERATE 0x00000001UL
#define CKG_GENERATE_COUNTER 0x00000002UL
#define CKG_GENERATE_RANDOM 0x00000003UL
#define CKG_GENERATE_COUNTER_XOR 0x00000004UL
#endif

typedef struct p11_gcm_message_params {
    CK_BYTE *pIv;
    CK_ULONG ulIvLen;
    CK_ULONG ulIvFixedBits;
    CK_ULONG ivGenerator; /* CK_GENERATOR_FUNCTION */
    CK_BYTE *pTag;
    CK_ULONG ulTagBits;
} p11_gcm_message_params;

typedef struct p11_interface {
    CK_UTF8CHAR *pInterfaceName;
    void *pFunctionList;
    CK_FLAGS flags;
} p11_interface;

typedef CK_RV (*p11_fn_get_interface_list)(p11_interface *list, CK_ULONG *count);
typedef CK_RV (*p11_fn_get_interface)(CK_UTF8CHAR *name, CK_VERSION *version,
                                      p11_interface **iface, CK_FLAGS flags);
typedef CK_RV (*p11_fn_login_user)(CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR *pin,
                                   CK_ULONG pin_len, CK_UTF8CHAR *username,
                                   CK_ULONG username_len);
typedef CK_RV (*p11_fn_session_cancel)(CK_SESSION_HANDLE s, CK_FLAGS flags);
typedef CK_RV (*p11_fn_msg_init)(CK_SESSION_HANDLE s, CK_MECHANISM *mech, CK_OBJECT_HANDLE key);
typedef CK_RV (*p11_fn_msg_crypt)(CK_SESSION_HANDLE s, void *param, CK_ULONG param_len,
                                  CK_BYTE *aad, CK_ULONG aad_len, CK_BYTE *in, CK_ULONG in_len,
                                  CK_BYTE *out, CK_ULONG *out_len);
typedef CK_RV (*p11_fn_msg_crypt_begin)(CK_SESSION_HANDLE s, void *param, CK_ULONG param_len,
                                        CK_BYTE *aad, CK_ULONG aad_len);
typedef CK_RV (*p11_fn_msg_crypt_next)(CK_SESSION_HANDLE s, void *param, CK_ULONG param_len,
                                       CK_BYTE *in, CK_ULONG in_len, CK_BYTE *out,
                                       CK_ULONG *out_len, CK_FLAGS flags);
typedef CK_RV (*p11_fn_msg_final)(CK_SESSION_HANDLE s);
typedef CK_RV (*p11_fn_sign_msg)(CK_SESSION_HANDLE s, void *param, CK_ULONG param_len,
                                 CK_BYTE *data, CK_ULONG data_len, CK_BYTE *sig,
                                 CK_ULONG *sig_len);
typedef CK_RV (*p11_fn_sign_msg_begin)(CK_SESSION_HANDLE s, void *param, CK_ULONG param_len);
typedef CK_RV (*p11_fn_verify_msg)(CK_SESSION_HANDLE s, void *param, CK_ULONG param_len,
                                   CK_BYTE *data, CK_ULONG data_len, CK_BYTE *sig,
                                   CK_ULONG sig_len);

/* CK_FUNCTION_LIST_3_0: version, the 2.40 functions, then the 3.0 ones. */
typedef struct p11_function_list_3_0 {
    CK_VERSION version;
    CK_C_Initialize C_Initialize;
    CK_C_Finalize C_Finalize;
    CK_C_GetInfo C_GetInfo;
    CK_C_GetFunctionList C_GetFunctionList;
    CK_C_GetSlotList C_GetSlotList;
    CK_C_GetSlotInfo C_GetSlotInfo;
    CK_C_GetTokenInfo C_GetTokenInfo;
    CK_C_GetMechanismList C_GetMechanismList;
    CK_C_GetMechanismInfo C_GetMechanismInfo;
    CK_C_InitToken C_InitToken;
    CK_C_InitPIN C_InitPIN;
    CK_C_SetPIN C_SetPIN;
    CK_C_OpenSession C_OpenSession;
    CK_C_CloseSession C_CloseSession;
    CK_C_CloseAllSessions C_CloseAllSessions;
    CK_C_GetSessionInfo C_GetSessionInfo;
    CK_C_GetOperationState C_GetOperationState;
    CK_C_SetOperationState C_SetOperationState;
    CK_C_Login C_Login;
    CK_C_Logout C_Logout;
    CK_C_CreateObject C_CreateObject;
    CK_C_CopyObject C_CopyObject;
    CK_C_DestroyObject C_DestroyObject;
    CK_C_GetObjectSize C_GetObjectSize;
    CK_C_GetAttributeValue C_GetAttributeValue;
    CK_C_SetAttributeValue C_SetAttributeValue;
    CK_C_FindObjectsInit C_FindObjectsInit;
    CK_C_FindObjects C_FindObjects;
    CK_C_FindObjectsFinal C_FindObjectsFinal;
    CK_C_EncryptInit C_EncryptInit;
    CK_C_Encrypt C_Encrypt;
    CK_C_EncryptUpdate C_EncryptUpdate;
    CK_C_EncryptFinal C_EncryptFinal;
    CK_C_DecryptInit C_DecryptInit;
    CK_C_Decrypt C_Decrypt;
    CK_C_DecryptUpdate C_DecryptUpdate;
    CK_C_DecryptFinal C_DecryptFinal;
    CK_C_DigestInit C_DigestInit;
    CK_C_Digest C_Digest;
    CK_C_DigestUpdate C_DigestUpdate;
    CK_C_DigestKey C_DigestKey;
    CK_C_DigestFinal C_DigestFinal;
    CK_C_SignInit C_SignInit;
    CK_C_Sign C_Sign;
    CK_C_SignUpdate C_SignUpdate;
    CK_C_SignFinal C_SignFinal;
    CK_C_SignRecoverInit C_SignRecoverInit;
    CK_C_SignRecover C_SignRecover;
    CK_C_VerifyInit C_VerifyInit;
    CK_C_Verify C_Verify;
    CK_C_VerifyUpdate C_VerifyUpdate;
    CK_C_VerifyFinal C_VerifyFinal;
    CK_C_VerifyRecoverInit C_VerifyRecoverInit;
    CK_C_VerifyRecover C_VerifyRecover;
    CK_C_DigestEncryptUpdate C_DigestEncryptUpdate;
    CK_C_DecryptDigestUpdate C_DecryptDigestUpdate;
    CK_C_SignEncryptUpdate C_SignEncryptUpdate;
    CK_C_DecryptVerifyUpdate C_DecryptVerifyUpdate;
    CK_C_GenerateKey C_GenerateKey;
    CK_C_GenerateKeyPair C_GenerateKeyPair;
    CK_C_WrapKey C_WrapKey;
    CK_C_UnwrapKey C_UnwrapKey;
    CK_C_DeriveKey C_DeriveKey;
    CK_C_SeedRandom C_SeedRandom;
    CK_C_GenerateRandom C_GenerateRandom;
    CK_C_GetFunctionStatus C_GetFunctionStatus;
    CK_C_CancelFunction C_CancelFunction;
    CK_C_WaitForSlotEvent C_WaitForSlotEvent;
    /* 3.0 */
    p11_fn_get_interface_list C_GetInterfaceList;
    p11_fn_get_interface C_GetInterface;
    p11_fn_login_user C_LoginUser;
    p11_fn_session_cancel C_SessionCancel;
    p11_fn_msg_init C_MessageEncryptInit;
    p11_fn_msg_crypt C_EncryptMessage;
    p11_fn_msg_crypt_begin C_EncryptMessageBegin;
    p11_fn_msg_crypt_next C_EncryptMessageNext;
    p11_fn_msg_final C_MessageEncryptFinal;
    p11_fn_msg_init C_MessageDecryptInit;
    p11_fn_msg_crypt C_DecryptMessage;
    p11_fn_msg_crypt_begin C_DecryptMessageBegin;
    p11_fn_msg_crypt_next C_DecryptMessageNext;
    p11_fn_msg_final C_MessageDecryptFinal;
    p11_fn_msg_init C_MessageSignInit;
    p11_fn_sign_msg C_SignMessage;
    p11_fn_sign_msg_begin C_SignMessageBegin;
    p11_fn_sign_msg C_SignMessageNext;
    p11_fn_msg_final C_MessageSignFinal;
    p11_fn_msg_init C_MessageVerifyInit;
    p11_fn_verify_msg C_VerifyMessage;
    p11_fn_sign_msg_begin C_VerifyMessageBegin;
    p11_fn_verify_msg C_VerifyMessageNext;
    p11_fn_msg_final C_MessageVerifyFinal;
} p11_function_list_3_0;

/* The two 3.0 entry points the module exports besides C_GetFunctionList. */
CK_RV C_GetInterfaceList(p11_interface *list, CK_ULONG *count);
CK_RV C_GetInterface(CK_UTF8CHAR *name, CK_VERSION *version, p11_interface **iface,
                     CK_FLAGS flags);

#endif
