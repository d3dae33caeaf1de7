/*
 * The PKCS#11 declarations the module builds on: the OASIS 2.40 headers that pkcs11js ships
 * (CK_FUNCTION_LIST, the types and constants), and the PKCS#11 3.0 additions they lack,
 * written here from the 3.0 specification: the interface calls, the 3.0 function list, and
 * the few 3.0 constants and parameter structures the module reads.
 */
#ifndef NTLS_PKCS11_V3_H
#define NTLS_PKCS11_V3_H

#include "pkcs11.h"

/* --- constants of PKCS#11 3.0 (and 2.40 ones the 2.40 header leaves out) ---------------- */

#define NTLS_CKM_EC_EDWARDS_KEY_PAIR_GEN 0x00001055UL
#define NTLS_CKM_EDDSA 0x00001057UL
#define NTLS_CKM_AES_KEY_WRAP_KWP 0x0000210BUL
#define NTLS_CKR_OPERATION_CANCEL_FAILED 0x00000202UL
#define NTLS_CKF_END_OF_MESSAGE 0x00000001UL
#define NTLS_CKF_FIND_OBJECTS 0x00000040UL

/* CK_EDDSA_PARAMS (3.0 §6.3.15): prehash flag and context for CKM_EDDSA. */
typedef struct NTLS_CK_EDDSA_PARAMS {
  CK_BBOOL phFlag;
  CK_ULONG ulContextDataLen;
  CK_BYTE_PTR pContextData;
} NTLS_CK_EDDSA_PARAMS;

/*
 * CK_GCM_PARAMS as PKCS#11 2.40 errata 1 and 3.0 spell it has ulIvBits; the original 2.40 text
 * (and applications written to it, Java's SunPKCS11 on its first try) has no ulIvBits.
 */
typedef struct NTLS_CK_GCM_PARAMS_NO_IVBITS {
  CK_BYTE_PTR pIv;
  CK_ULONG ulIvLen;
  CK_BYTE_PTR pAAD;
  CK_ULONG ulAADLen;
  CK_ULONG ulTagBits;
} NTLS_CK_GCM_PARAMS_NO_IVBITS;

/* --- interfaces (3.0 §5.4) ---------------------------------------------------------------- */

typedef struct CK_INTERFACE {
  CK_CHAR *pInterfaceName;
  CK_VOID_PTR pFunctionList;
  CK_FLAGS flags;
} CK_INTERFACE;

typedef CK_INTERFACE *CK_INTERFACE_PTR;
typedef CK_INTERFACE_PTR *CK_INTERFACE_PTR_PTR;

/* The functions PKCS#11 3.0 adds, in the order of CK_FUNCTION_LIST_3_0. */
#define NTLS_V3_FUNCTIONS(X) \
  X(C_GetInterfaceList, (CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)) \
  X(C_GetInterface, (CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)) \
  X(C_LoginUser, (CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen)) \
  X(C_SessionCancel, (CK_SESSION_HANDLE hSession, CK_FLAGS flags)) \
  X(C_MessageEncryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)) \
  X(C_EncryptMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pPlaintext, CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext, CK_ULONG_PTR pulCiphertextLen)) \
  X(C_EncryptMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen)) \
  X(C_EncryptMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pPlaintextPart, CK_ULONG ulPlaintextPartLen, CK_BYTE_PTR pCiphertextPart, CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags)) \
  X(C_MessageEncryptFinal, (CK_SESSION_HANDLE hSession)) \
  X(C_MessageDecryptInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)) \
  X(C_DecryptMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pCiphertext, CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext, CK_ULONG_PTR pulPlaintextLen)) \
  X(C_DecryptMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen)) \
  X(C_DecryptMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pCiphertextPart, CK_ULONG ulCiphertextPartLen, CK_BYTE_PTR pPlaintextPart, CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags)) \
  X(C_MessageDecryptFinal, (CK_SESSION_HANDLE hSession)) \
  X(C_MessageSignInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)) \
  X(C_SignMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)) \
  X(C_SignMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen)) \
  X(C_SignMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)) \
  X(C_MessageSignFinal, (CK_SESSION_HANDLE hSession)) \
  X(C_MessageVerifyInit, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)) \
  X(C_VerifyMessage, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)) \
  X(C_VerifyMessageBegin, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen)) \
  X(C_VerifyMessageNext, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)) \
  X(C_MessageVerifyFinal, (CK_SESSION_HANDLE hSession))

#define NTLS_DECLARE_V3(name, args) \
  extern CK_RV name args; \
  typedef CK_RV(*CK_##name) args;
NTLS_V3_FUNCTIONS(NTLS_DECLARE_V3)
#undef NTLS_DECLARE_V3

/* CK_FUNCTION_LIST_3_0: the 2.40 list, then the 3.0 functions. */
#define CK_PKCS11_FUNCTION_INFO(name) CK_##name name;
typedef struct CK_FUNCTION_LIST_3_0 {
  CK_VERSION version;
#include "pkcs11f.h"
#define NTLS_MEMBER_V3(name, args) CK_##name name;
  NTLS_V3_FUNCTIONS(NTLS_MEMBER_V3)
#undef NTLS_MEMBER_V3
} CK_FUNCTION_LIST_3_0;
#undef CK_PKCS11_FUNCTION_INFO

#endif
