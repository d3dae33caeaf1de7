/*
 * The PKCS#11 functions forwarded to the server, one p11-kit RPC call each (rpc.h shows the
 * shape), and the few answered here: the PKCS#11 3.0 message-based functions (the server has
 * none, and their per-message parameter structures have no encoding on the wire), the legacy
 * parallel functions, and C_WaitForSlotEvent (slots do not come and go).
 */
#include <string.h>

#include "attribute.h"
#include "rpc.h"

#define EXPORT __attribute__((visibility("default")))

/*
 * Arguments refused here, before any call goes out: a NULL mechanism pointer, a NULL template
 * with a count. CKR_CRYPTOKI_NOT_INITIALIZED comes first, then CKR_ARGUMENTS_BAD, as SoftHSM2
 * answers them (the session is not looked at).
 */
static CK_RV arguments_bad(void) {
  CK_RV rv = module_ready();
  return rv != CKR_OK ? rv : CKR_ARGUMENTS_BAD;
}

#define NO_TEMPLATE(template, count) ((template) == NULL && (count) != 0)

/* --- slots and tokens ----------------------------------------------------------------------- */

EXPORT CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount) {
  if (pulCount == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GET_SLOT_LIST, RPC_NO_SESSION);
  if (rv != CKR_OK) return rv;
  rpc_put_byte(&c, tokenPresent ? 1 : 0);
  rpc_put_ulong_output(&c, pSlotList, pulCount);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong_output(&c, pSlotList, pulCount);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo) {
  if (pInfo == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GET_SLOT_INFO, RPC_NO_SESSION);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, slotID);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_space_string(&c, pInfo->slotDescription, sizeof pInfo->slotDescription);
  if (rv == CKR_OK) rv = rpc_get_space_string(&c, pInfo->manufacturerID, sizeof pInfo->manufacturerID);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, &pInfo->flags);
  if (rv == CKR_OK) rv = rpc_get_version(&c, &pInfo->hardwareVersion);
  if (rv == CKR_OK) rv = rpc_get_version(&c, &pInfo->firmwareVersion);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo) {
  if (pInfo == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GET_TOKEN_INFO, RPC_NO_SESSION);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, slotID);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_space_string(&c, pInfo->label, sizeof pInfo->label);
  if (rv == CKR_OK) rv = rpc_get_space_string(&c, pInfo->manufacturerID, sizeof pInfo->manufacturerID);
  if (rv == CKR_OK) rv = rpc_get_space_string(&c, pInfo->model, sizeof pInfo->model);
  if (rv == CKR_OK) rv = rpc_get_space_string(&c, pInfo->serialNumber, sizeof pInfo->serialNumber);
  CK_ULONG *numbers[] = {
    &pInfo->flags, &pInfo->ulMaxSessionCount, &pInfo->ulSessionCount, &pInfo->ulMaxRwSessionCount,
    &pInfo->ulRwSessionCount, &pInfo->ulMaxPinLen, &pInfo->ulMinPinLen, &pInfo->ulTotalPublicMemory,
    &pInfo->ulFreePublicMemory, &pInfo->ulTotalPrivateMemory, &pInfo->ulFreePrivateMemory,
  };
  for (size_t i = 0; rv == CKR_OK && i < sizeof numbers / sizeof numbers[0]; i++) rv = rpc_get_ulong(&c, numbers[i]);
  if (rv == CKR_OK) rv = rpc_get_version(&c, &pInfo->hardwareVersion);
  if (rv == CKR_OK) rv = rpc_get_version(&c, &pInfo->firmwareVersion);
  if (rv == CKR_OK) rv = rpc_get_space_string(&c, pInfo->utcTime, sizeof pInfo->utcTime);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount) {
  if (pulCount == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GET_MECHANISM_LIST, RPC_NO_SESSION);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, slotID);
  rpc_put_ulong_output(&c, pMechanismList, pulCount);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong_output(&c, pMechanismList, pulCount);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo) {
  if (pInfo == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GET_MECHANISM_INFO, RPC_NO_SESSION);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, slotID);
  rpc_put_ulong(&c, type);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, &pInfo->ulMinKeySize);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, &pInfo->ulMaxKeySize);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, &pInfo->flags);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel) {
  if (pLabel == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, rpc_version() >= 1 ? CALL_C_INIT_TOKEN2 : CALL_C_INIT_TOKEN, RPC_NO_SESSION);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, slotID);
  rpc_put_bytes(&c, pPin, ulPinLen);
  /* pLabel is 32 blank-padded bytes; protocol 0 only carries a C string. */
  if (rpc_version() >= 1) rpc_put_space_string(&c, pLabel, 32);
  else rpc_put_string(&c, pLabel, 32);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

/* --- sessions ----------------------------------------------------------------------------------- */

EXPORT CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession) {
  (void)pApplication;
  (void)Notify; /* the server sends no notifications */
  if (phSession == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_OPEN_SESSION, RPC_NO_SESSION);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, slotID);
  rpc_put_ulong(&c, flags);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, phSession);
  if (rv == CKR_OK && *phSession == CK_INVALID_HANDLE) rv = rpc_malformed(&c, "session handle 0, which is no session");
  if (rv == CKR_OK) sessions_add(&c, *phSession, slotID);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_CloseSession(CK_SESSION_HANDLE hSession) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_CLOSE_SESSION, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rv = rpc_run(&c);
  sessions_remove(hSession);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_CloseAllSessions(CK_SLOT_ID slotID) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_CLOSE_ALL_SESSIONS, RPC_NO_SESSION);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, slotID);
  rv = rpc_run(&c);
  if (rv == CKR_OK) sessions_remove_slot(slotID);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo) {
  if (pInfo == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GET_SESSION_INFO, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, &pInfo->slotID);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, &pInfo->state);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, &pInfo->flags);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, &pInfo->ulDeviceError);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_INIT_PIN, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_bytes(&c, pPin, ulPinLen);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_SET_PIN, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_bytes(&c, pOldPin, ulOldLen);
  rpc_put_bytes(&c, pNewPin, ulNewLen);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG_PTR pulOperationStateLen) {
  if (pulOperationStateLen == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GET_OPERATION_STATE, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_output(&c, pOperationState, pulOperationStateLen);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_output(&c, pOperationState, pulOperationStateLen);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, CK_ULONG ulOperationStateLen,
                                 CK_OBJECT_HANDLE hEncryptionKey, CK_OBJECT_HANDLE hAuthenticationKey) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_SET_OPERATION_STATE, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_bytes(&c, pOperationState, ulOperationStateLen);
  rpc_put_ulong(&c, hEncryptionKey);
  rpc_put_ulong(&c, hAuthenticationKey);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_LOGIN, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_ulong(&c, userType);
  rpc_put_bytes(&c, pPin, ulPinLen);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_Logout(CK_SESSION_HANDLE hSession) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_LOGOUT, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

/*
 * Without a username (NULL or empty) C_LoginUser is C_Login. With one it goes to the server as
 * C_LoginUser; ntls's partitions have no named users, and the server answers
 * CKR_FUNCTION_NOT_SUPPORTED for the call it does not have.
 */
EXPORT CK_RV C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
                         CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen) {
  if (pUsername == NULL && ulUsernameLen != 0) return arguments_bad();
  if (pUsername == NULL || ulUsernameLen == 0) return C_Login(hSession, userType, pPin, ulPinLen);
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_LOGIN_USER, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_ulong(&c, userType);
  rpc_put_bytes(&c, pPin, ulPinLen);
  rpc_put_bytes(&c, pUsername, ulUsernameLen);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

static CK_RV session_cancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_SESSION_CANCEL, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_ulong(&c, flags);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags) { return session_cancel(hSession, flags); }

/* --- objects --------------------------------------------------------------------------------------- */

EXPORT CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject) {
  if (phObject == NULL || NO_TEMPLATE(pTemplate, ulCount)) return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_CREATE_OBJECT, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_template(&c, pTemplate, ulCount);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, phObject);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                          CK_OBJECT_HANDLE_PTR phNewObject) {
  if (phNewObject == NULL || NO_TEMPLATE(pTemplate, ulCount)) return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_COPY_OBJECT, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_ulong(&c, hObject);
  rpc_put_template(&c, pTemplate, ulCount);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, phNewObject);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_DESTROY_OBJECT, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_ulong(&c, hObject);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize) {
  if (pulSize == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GET_OBJECT_SIZE, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_ulong(&c, hObject);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, pulSize);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  if (NO_TEMPLATE(pTemplate, ulCount)) return arguments_bad();
  if (ulCount == 0) return module_ready();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GET_ATTRIBUTE_VALUE, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_ulong(&c, hObject);
  rpc_put_attribute_requests(&c, pTemplate, ulCount);
  rv = rpc_run(&c);
  if (rv == CKR_OK) {
    int too_small = 0;
    const char *problem = NULL;
    CK_ULONG result = CKR_OK;
    rv = attributes_read_into(&c.answer, pTemplate, ulCount, &too_small, &problem);
    if (rv == CKR_DEVICE_ERROR && problem) rv = rpc_malformed(&c, problem);
    if (rv == CKR_OK) rv = rpc_get_ulong(&c, &result);
    if (rv == CKR_OK) {
      /* The server's verdict (SENSITIVE, TYPE_INVALID, BUFFER_TOO_SMALL), else what did not fit here. */
      rv = result != CKR_OK ? result : too_small ? CKR_BUFFER_TOO_SMALL : CKR_OK;
    }
  }
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  if (NO_TEMPLATE(pTemplate, ulCount)) return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_SET_ATTRIBUTE_VALUE, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_ulong(&c, hObject);
  rpc_put_template(&c, pTemplate, ulCount);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount) {
  if (NO_TEMPLATE(pTemplate, ulCount)) return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_FIND_OBJECTS_INIT, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_template(&c, pTemplate, ulCount);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount) {
  if (phObject == NULL || pulObjectCount == NULL) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_FIND_OBJECTS, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  /* Room for 0 handles would be a count query: ask for one and keep none. */
  CK_ULONG room = ulMaxObjectCount;
  rpc_put_ulong_output(&c, phObject, &room);
  rv = rpc_run(&c);
  if (rv == CKR_OK) {
    CK_ULONG count = ulMaxObjectCount;
    rv = rpc_get_ulong_output(&c, phObject, &count);
    if (rv == CKR_BUFFER_TOO_SMALL && count == 0) rv = CKR_OK; /* the answer to a room of 0 */
    else if (rv == CKR_BUFFER_TOO_SMALL) rv = rpc_malformed(&c, "more handles than asked for");
    *pulObjectCount = rv == CKR_OK ? count : 0;
  }
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_FIND_OBJECTS_FINAL, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

/* --- cryptographic operations --------------------------------------------------------------------- */

/* C_xxxInit(session, mechanism, key). */
static CK_RV operation_init(int id, CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey) {
  if (pMechanism == NULL) return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, id, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_mechanism(&c, pMechanism);
  rpc_put_ulong(&c, hKey);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

/* The operation (C_SessionCancel flags) a call of an operation works on; 0 for others. */
static CK_FLAGS operation_of(int id) {
  switch (id) {
    case CALL_C_ENCRYPT: case CALL_C_ENCRYPT_UPDATE: case CALL_C_ENCRYPT_FINAL: return CKF_ENCRYPT;
    case CALL_C_DECRYPT: case CALL_C_DECRYPT_UPDATE: case CALL_C_DECRYPT_FINAL: return CKF_DECRYPT;
    case CALL_C_DIGEST: case CALL_C_DIGEST_UPDATE: case CALL_C_DIGEST_FINAL: return CKF_DIGEST;
    case CALL_C_SIGN: case CALL_C_SIGN_UPDATE: case CALL_C_SIGN_FINAL: return CKF_SIGN;
    case CALL_C_VERIFY: case CALL_C_VERIFY_UPDATE: case CALL_C_VERIFY_FINAL: return CKF_VERIFY;
    case CALL_C_SIGN_RECOVER: return CKF_SIGN_RECOVER;
    case CALL_C_VERIFY_RECOVER: return CKF_VERIFY_RECOVER;
    case CALL_C_DIGEST_ENCRYPT_UPDATE: return CKF_DIGEST | CKF_ENCRYPT;
    case CALL_C_DECRYPT_DIGEST_UPDATE: return CKF_DECRYPT | CKF_DIGEST;
    case CALL_C_SIGN_ENCRYPT_UPDATE: return CKF_SIGN | CKF_ENCRYPT;
    case CALL_C_DECRYPT_VERIFY_UPDATE: return CKF_DECRYPT | CKF_VERIFY;
    default: return 0;
  }
}

/*
 * A NULL length pointer, or NULL data with a length, found here: CKR_ARGUMENTS_BAD. PKCS#11 says
 * a failed call ends its operation, so the server is told to end it too (C_SessionCancel; its
 * own answer, a bad session included, changes nothing here).
 */
static CK_RV operation_arguments_bad(int id, CK_SESSION_HANDLE hSession) {
  CK_RV rv = module_ready();
  if (rv != CKR_OK) return rv;
  CK_FLAGS flags = operation_of(id);
  if (flags != 0) (void)session_cancel(hSession, flags);
  return CKR_ARGUMENTS_BAD;
}

/* `uayfy` -> `ay`: input bytes in, output bytes out (single-part operations, updates, dual functions). */
static CK_RV bytes_in_bytes_out(int id, CK_SESSION_HANDLE hSession, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  if (out_len == NULL || (in == NULL && in_len != 0)) return operation_arguments_bad(id, hSession);
  rpc_call c;
  CK_RV rv = rpc_begin(&c, id, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_bytes(&c, in, in_len);
  rpc_put_output(&c, out, out_len);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_output(&c, out, out_len);
  return rpc_end(&c, rv);
}

/* `ufy` -> `ay`: the finals. */
static CK_RV bytes_out(int id, CK_SESSION_HANDLE hSession, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  if (out_len == NULL) return operation_arguments_bad(id, hSession);
  rpc_call c;
  CK_RV rv = rpc_begin(&c, id, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_output(&c, out, out_len);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_output(&c, out, out_len);
  return rpc_end(&c, rv);
}

/* `uay`: input bytes only (updates of sign, verify, digest; verify final; seed). */
static CK_RV bytes_in(int id, CK_SESSION_HANDLE hSession, CK_BYTE_PTR in, CK_ULONG in_len) {
  if (in == NULL && in_len != 0) return operation_arguments_bad(id, hSession);
  rpc_call c;
  CK_RV rv = rpc_begin(&c, id, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_bytes(&c, in, in_len);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_EncryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return operation_init(CALL_C_ENCRYPT_INIT, s, m, k); }
EXPORT CK_RV C_Encrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_ENCRYPT, s, in, n, out, out_n); }
EXPORT CK_RV C_EncryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_ENCRYPT_UPDATE, s, in, n, out, out_n); }
EXPORT CK_RV C_EncryptFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_out(CALL_C_ENCRYPT_FINAL, s, out, out_n); }
EXPORT CK_RV C_DecryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return operation_init(CALL_C_DECRYPT_INIT, s, m, k); }
EXPORT CK_RV C_Decrypt(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_DECRYPT, s, in, n, out, out_n); }
EXPORT CK_RV C_DecryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_DECRYPT_UPDATE, s, in, n, out, out_n); }
EXPORT CK_RV C_DecryptFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_out(CALL_C_DECRYPT_FINAL, s, out, out_n); }
EXPORT CK_RV C_Digest(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_DIGEST, s, in, n, out, out_n); }
EXPORT CK_RV C_DigestUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n) { return bytes_in(CALL_C_DIGEST_UPDATE, s, in, n); }
EXPORT CK_RV C_DigestFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_out(CALL_C_DIGEST_FINAL, s, out, out_n); }
EXPORT CK_RV C_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return operation_init(CALL_C_SIGN_INIT, s, m, k); }
EXPORT CK_RV C_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_SIGN, s, in, n, out, out_n); }
EXPORT CK_RV C_SignUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n) { return bytes_in(CALL_C_SIGN_UPDATE, s, in, n); }
EXPORT CK_RV C_SignFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_out(CALL_C_SIGN_FINAL, s, out, out_n); }
EXPORT CK_RV C_SignRecoverInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return operation_init(CALL_C_SIGN_RECOVER_INIT, s, m, k); }
EXPORT CK_RV C_SignRecover(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_SIGN_RECOVER, s, in, n, out, out_n); }
EXPORT CK_RV C_VerifyInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return operation_init(CALL_C_VERIFY_INIT, s, m, k); }
EXPORT CK_RV C_VerifyUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n) { return bytes_in(CALL_C_VERIFY_UPDATE, s, in, n); }
EXPORT CK_RV C_VerifyFinal(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG n) { return bytes_in(CALL_C_VERIFY_FINAL, s, sig, n); }
EXPORT CK_RV C_VerifyRecoverInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { return operation_init(CALL_C_VERIFY_RECOVER_INIT, s, m, k); }
EXPORT CK_RV C_VerifyRecover(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_VERIFY_RECOVER, s, in, n, out, out_n); }
EXPORT CK_RV C_DigestEncryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_DIGEST_ENCRYPT_UPDATE, s, in, n, out, out_n); }
EXPORT CK_RV C_DecryptDigestUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_DECRYPT_DIGEST_UPDATE, s, in, n, out, out_n); }
EXPORT CK_RV C_SignEncryptUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_SIGN_ENCRYPT_UPDATE, s, in, n, out, out_n); }
EXPORT CK_RV C_DecryptVerifyUpdate(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) { return bytes_in_bytes_out(CALL_C_DECRYPT_VERIFY_UPDATE, s, in, n, out, out_n); }
EXPORT CK_RV C_SeedRandom(CK_SESSION_HANDLE s, CK_BYTE_PTR seed, CK_ULONG n) { return bytes_in(CALL_C_SEED_RANDOM, s, seed, n); }

EXPORT CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism) {
  if (pMechanism == NULL) return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_DIGEST_INIT, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_mechanism(&c, pMechanism);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey) {
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_DIGEST_KEY, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_ulong(&c, hKey);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen) {
  if ((pData == NULL && ulDataLen != 0) || (pSignature == NULL && ulSignatureLen != 0)) return operation_arguments_bad(CALL_C_VERIFY, hSession);
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_VERIFY, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_bytes(&c, pData, ulDataLen);
  rpc_put_bytes(&c, pSignature, ulSignatureLen);
  rv = rpc_run(&c);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData, CK_ULONG ulRandomLen) {
  if (pRandomData == NULL && ulRandomLen != 0) return CKR_ARGUMENTS_BAD;
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GENERATE_RANDOM, hSession);
  if (rv != CKR_OK) return rv;
  CK_ULONG length = ulRandomLen;
  CK_BYTE none;
  rpc_put_ulong(&c, hSession);
  rpc_put_output(&c, pRandomData ? pRandomData : &none, &length);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_output(&c, pRandomData ? pRandomData : &none, &length);
  /* Fewer bytes than asked would leave part of the caller's buffer as it was. */
  if (rv == CKR_OK && length != ulRandomLen) rv = rpc_malformed(&c, "another number of random bytes than asked for");
  return rpc_end(&c, rv);
}

/* --- keys --------------------------------------------------------------------------------------------- */

EXPORT CK_RV C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                           CK_OBJECT_HANDLE_PTR phKey) {
  if (pMechanism == NULL || phKey == NULL || NO_TEMPLATE(pTemplate, ulCount)) return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GENERATE_KEY, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_mechanism(&c, pMechanism);
  rpc_put_template(&c, pTemplate, ulCount);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, phKey);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_ATTRIBUTE_PTR pPublicKeyTemplate,
                               CK_ULONG ulPublicKeyAttributeCount, CK_ATTRIBUTE_PTR pPrivateKeyTemplate,
                               CK_ULONG ulPrivateKeyAttributeCount, CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey) {
  if (pMechanism == NULL || phPublicKey == NULL || phPrivateKey == NULL || NO_TEMPLATE(pPublicKeyTemplate, ulPublicKeyAttributeCount) ||
      NO_TEMPLATE(pPrivateKeyTemplate, ulPrivateKeyAttributeCount))
    return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_GENERATE_KEY_PAIR, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_mechanism(&c, pMechanism);
  rpc_put_template(&c, pPublicKeyTemplate, ulPublicKeyAttributeCount);
  rpc_put_template(&c, pPrivateKeyTemplate, ulPrivateKeyAttributeCount);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, phPublicKey);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, phPrivateKey);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
                       CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen) {
  if (pMechanism == NULL || pulWrappedKeyLen == NULL) return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_WRAP_KEY, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_mechanism(&c, pMechanism);
  rpc_put_ulong(&c, hWrappingKey);
  rpc_put_ulong(&c, hKey);
  rpc_put_output(&c, pWrappedKey, pulWrappedKeyLen);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_output(&c, pWrappedKey, pulWrappedKeyLen);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
                         CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey) {
  if (pMechanism == NULL || phKey == NULL || NO_TEMPLATE(pTemplate, ulAttributeCount)) return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_UNWRAP_KEY, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_mechanism(&c, pMechanism);
  rpc_put_ulong(&c, hUnwrappingKey);
  rpc_put_bytes(&c, pWrappedKey, ulWrappedKeyLen);
  rpc_put_template(&c, pTemplate, ulAttributeCount);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, phKey);
  return rpc_end(&c, rv);
}

EXPORT CK_RV C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey, CK_ATTRIBUTE_PTR pTemplate,
                         CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey) {
  if (pMechanism == NULL || phKey == NULL || NO_TEMPLATE(pTemplate, ulAttributeCount)) return arguments_bad();
  rpc_call c;
  CK_RV rv = rpc_begin(&c, CALL_C_DERIVE_KEY, hSession);
  if (rv != CKR_OK) return rv;
  rpc_put_ulong(&c, hSession);
  rpc_put_mechanism(&c, pMechanism);
  rpc_put_ulong(&c, hBaseKey);
  rpc_put_template(&c, pTemplate, ulAttributeCount);
  rv = rpc_run(&c);
  if (rv == CKR_OK) rv = rpc_get_ulong(&c, phKey);
  return rpc_end(&c, rv);
}

/* --- answered here --------------------------------------------------------------------------------- */

EXPORT CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE hSession) {
  (void)hSession;
  CK_RV rv = module_ready();
  return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_PARALLEL;
}

EXPORT CK_RV C_CancelFunction(CK_SESSION_HANDLE hSession) {
  (void)hSession;
  CK_RV rv = module_ready();
  return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_PARALLEL;
}

EXPORT CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved) {
  (void)pSlot;
  if (pReserved != NULL) return CKR_ARGUMENTS_BAD;
  CK_RV rv = module_ready();
  if (rv != CKR_OK) return rv;
  /* The partitions a client sees change only by the administrator's hand: no events to wait for. */
  return (flags & CKF_DONT_BLOCK) ? CKR_NO_EVENT : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV no_message_functions(void) {
  CK_RV rv = module_ready();
  return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED;
}

EXPORT CK_RV C_MessageEncryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { (void)s, (void)m, (void)k; return no_message_functions(); }
EXPORT CK_RV C_EncryptMessage(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR a, CK_ULONG al, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) {
  (void)s, (void)p, (void)pl, (void)a, (void)al, (void)in, (void)n, (void)out, (void)out_n;
  return no_message_functions();
}
EXPORT CK_RV C_EncryptMessageBegin(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR a, CK_ULONG al) { (void)s, (void)p, (void)pl, (void)a, (void)al; return no_message_functions(); }
EXPORT CK_RV C_EncryptMessageNext(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n, CK_FLAGS f) {
  (void)s, (void)p, (void)pl, (void)in, (void)n, (void)out, (void)out_n, (void)f;
  return no_message_functions();
}
EXPORT CK_RV C_MessageEncryptFinal(CK_SESSION_HANDLE s) { (void)s; return no_message_functions(); }
EXPORT CK_RV C_MessageDecryptInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { (void)s, (void)m, (void)k; return no_message_functions(); }
EXPORT CK_RV C_DecryptMessage(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR a, CK_ULONG al, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n) {
  (void)s, (void)p, (void)pl, (void)a, (void)al, (void)in, (void)n, (void)out, (void)out_n;
  return no_message_functions();
}
EXPORT CK_RV C_DecryptMessageBegin(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR a, CK_ULONG al) { (void)s, (void)p, (void)pl, (void)a, (void)al; return no_message_functions(); }
EXPORT CK_RV C_DecryptMessageNext(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_n, CK_FLAGS f) {
  (void)s, (void)p, (void)pl, (void)in, (void)n, (void)out, (void)out_n, (void)f;
  return no_message_functions();
}
EXPORT CK_RV C_MessageDecryptFinal(CK_SESSION_HANDLE s) { (void)s; return no_message_functions(); }
EXPORT CK_RV C_MessageSignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { (void)s, (void)m, (void)k; return no_message_functions(); }
EXPORT CK_RV C_SignMessage(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sig, CK_ULONG_PTR sig_n) {
  (void)s, (void)p, (void)pl, (void)d, (void)dl, (void)sig, (void)sig_n;
  return no_message_functions();
}
EXPORT CK_RV C_SignMessageBegin(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl) { (void)s, (void)p, (void)pl; return no_message_functions(); }
EXPORT CK_RV C_SignMessageNext(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sig, CK_ULONG_PTR sig_n) {
  (void)s, (void)p, (void)pl, (void)d, (void)dl, (void)sig, (void)sig_n;
  return no_message_functions();
}
EXPORT CK_RV C_MessageSignFinal(CK_SESSION_HANDLE s) { (void)s; return no_message_functions(); }
EXPORT CK_RV C_MessageVerifyInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) { (void)s, (void)m, (void)k; return no_message_functions(); }
EXPORT CK_RV C_VerifyMessage(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sig, CK_ULONG sig_n) {
  (void)s, (void)p, (void)pl, (void)d, (void)dl, (void)sig, (void)sig_n;
  return no_message_functions();
}
EXPORT CK_RV C_VerifyMessageBegin(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl) { (void)s, (void)p, (void)pl; return no_message_functions(); }
EXPORT CK_RV C_VerifyMessageNext(CK_SESSION_HANDLE s, CK_VOID_PTR p, CK_ULONG pl, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR sig, CK_ULONG sig_n) {
  (void)s, (void)p, (void)pl, (void)d, (void)dl, (void)sig, (void)sig_n;
  return no_message_functions();
}
EXPORT CK_RV C_MessageVerifyFinal(CK_SESSION_HANDLE s) { (void)s; return no_message_functions(); }
