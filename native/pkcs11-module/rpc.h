/*
 * One PKCS#11 call over the link, the way every forwarded function is written:
 *
 *   rpc_call c;
 *   CK_RV rv = rpc_begin(&c, CALL_C_SIGN, session);   // initialised? lock, link, call id, signature
 *   if (rv != CKR_OK) return rv;
 *   rpc_put_ulong(&c, session); rpc_put_bytes(&c, data, len); rpc_put_output(&c, out, out_len);
 *   rv = rpc_run(&c);                                 // frame out, answer in, ERROR answers
 *   if (rv == CKR_OK) rv = rpc_get_output(&c, out, out_len);
 *   return rpc_end(&c, rv);                           // malformed answer check, unlock
 *
 * Each call has its own request and answer buffers; the calls of several threads are in flight
 * on the one link at once (sessions and login state belong to it on the server), and rpc_end
 * must follow every rpc_begin that succeeded.
 */
#ifndef NTLS_RPC_H
#define NTLS_RPC_H

#include "pkcs11-v3.h"
#include "wire.h"

/* Call ids of the p11-kit RPC call table (docs/p11kit-rpc.md §6). */
enum {
  CALL_ERROR = 0, CALL_C_INITIALIZE = 1, CALL_C_FINALIZE = 2, CALL_C_GET_INFO = 3, CALL_C_GET_SLOT_LIST = 4,
  CALL_C_GET_SLOT_INFO = 5, CALL_C_GET_TOKEN_INFO = 6, CALL_C_GET_MECHANISM_LIST = 7, CALL_C_GET_MECHANISM_INFO = 8,
  CALL_C_INIT_TOKEN = 9, CALL_C_OPEN_SESSION = 10, CALL_C_CLOSE_SESSION = 11, CALL_C_CLOSE_ALL_SESSIONS = 12,
  CALL_C_GET_SESSION_INFO = 13, CALL_C_INIT_PIN = 14, CALL_C_SET_PIN = 15, CALL_C_GET_OPERATION_STATE = 16,
  CALL_C_SET_OPERATION_STATE = 17, CALL_C_LOGIN = 18, CALL_C_LOGOUT = 19, CALL_C_CREATE_OBJECT = 20,
  CALL_C_COPY_OBJECT = 21, CALL_C_DESTROY_OBJECT = 22, CALL_C_GET_OBJECT_SIZE = 23, CALL_C_GET_ATTRIBUTE_VALUE = 24,
  CALL_C_SET_ATTRIBUTE_VALUE = 25, CALL_C_FIND_OBJECTS_INIT = 26, CALL_C_FIND_OBJECTS = 27, CALL_C_FIND_OBJECTS_FINAL = 28,
  CALL_C_ENCRYPT_INIT = 29, CALL_C_ENCRYPT = 30, CALL_C_ENCRYPT_UPDATE = 31, CALL_C_ENCRYPT_FINAL = 32,
  CALL_C_DECRYPT_INIT = 33, CALL_C_DECRYPT = 34, CALL_C_DECRYPT_UPDATE = 35, CALL_C_DECRYPT_FINAL = 36,
  CALL_C_DIGEST_INIT = 37, CALL_C_DIGEST = 38, CALL_C_DIGEST_UPDATE = 39, CALL_C_DIGEST_KEY = 40,
  CALL_C_DIGEST_FINAL = 41, CALL_C_SIGN_INIT = 42, CALL_C_SIGN = 43, CALL_C_SIGN_UPDATE = 44, CALL_C_SIGN_FINAL = 45,
  CALL_C_SIGN_RECOVER_INIT = 46, CALL_C_SIGN_RECOVER = 47, CALL_C_VERIFY_INIT = 48, CALL_C_VERIFY = 49,
  CALL_C_VERIFY_UPDATE = 50, CALL_C_VERIFY_FINAL = 51, CALL_C_VERIFY_RECOVER_INIT = 52, CALL_C_VERIFY_RECOVER = 53,
  CALL_C_DIGEST_ENCRYPT_UPDATE = 54, CALL_C_DECRYPT_DIGEST_UPDATE = 55, CALL_C_SIGN_ENCRYPT_UPDATE = 56,
  CALL_C_DECRYPT_VERIFY_UPDATE = 57, CALL_C_GENERATE_KEY = 58, CALL_C_GENERATE_KEY_PAIR = 59, CALL_C_WRAP_KEY = 60,
  CALL_C_UNWRAP_KEY = 61, CALL_C_DERIVE_KEY = 62, CALL_C_SEED_RANDOM = 63, CALL_C_GENERATE_RANDOM = 64,
  CALL_C_WAIT_FOR_SLOT_EVENT = 65, CALL_C_LOGIN_USER = 66, CALL_C_SESSION_CANCEL = 67,
  CALL_C_INIT_TOKEN2 = 88,
  CALL_COUNT = 90,
};

/* No session to check (calls on a slot, or on nothing). */
#define RPC_NO_SESSION ((CK_SESSION_HANDLE)-1)

typedef struct {
  int id;
  CK_RV rv;            /* the first local failure while writing arguments */
  unsigned generation; /* the link it runs on */
  int version;         /* that link's protocol version */
  wire_writer request; /* FRAME_HEADER reserved bytes, then the body */
  wire_writer body;    /* the answer's body */
  wire_reader answer;
  int answered;          /* answer holds the call's own answer or the server's ERROR for it */
  const char *malformed; /* why the answer was refused, told on stderr by rpc_end */
} rpc_call;

CK_RV rpc_begin(rpc_call *c, int id, CK_SESSION_HANDLE session);
CK_RV rpc_run(rpc_call *c);
CK_RV rpc_end(rpc_call *c, CK_RV rv);

/* The negotiated protocol version of the link the call runs on. */
int rpc_version(void);

/* Arguments. Each records a local failure in c->rv instead of writing. */
void rpc_put_ulong(rpc_call *c, CK_ULONG v);
void rpc_put_byte(rpc_call *c, CK_BYTE v);
/* `ay`: input bytes (NULL with length 0 is no data). */
void rpc_put_bytes(rpc_call *c, const void *data, CK_ULONG len);
/* `fy`: the caller's output buffer: NULL asks for the length; empty is told apart from NULL. */
void rpc_put_output(rpc_call *c, const void *out, const CK_ULONG *out_len);
/* `fu`: room for CK_ULONGs; NULL asks for the count. */
void rpc_put_ulong_output(rpc_call *c, const void *out, const CK_ULONG *count);
void rpc_put_mechanism(rpc_call *c, const CK_MECHANISM *mechanism);
void rpc_put_template(rpc_call *c, const CK_ATTRIBUTE *template, CK_ULONG count);
void rpc_put_attribute_requests(rpc_call *c, const CK_ATTRIBUTE *template, CK_ULONG count);
/* `z` (bytes up to the first NUL, at most max) and `s` (exactly size bytes). */
void rpc_put_string(rpc_call *c, const void *text, size_t max);
void rpc_put_space_string(rpc_call *c, const void *text, size_t size);

/*
 * Answers. They return CKR_OK, CKR_BUFFER_TOO_SMALL, or CKR_DEVICE_ERROR for a malformed one;
 * rpc_end also refuses an answer with bytes after the values read.
 */
CK_RV rpc_get_ulong(rpc_call *c, CK_ULONG *v);
CK_RV rpc_get_output(rpc_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len);
CK_RV rpc_get_ulong_output(rpc_call *c, CK_ULONG_PTR out, CK_ULONG_PTR count);
CK_RV rpc_get_space_string(rpc_call *c, CK_UTF8CHAR *into, size_t size);
CK_RV rpc_get_version(rpc_call *c, CK_VERSION *v);
/* Refuses the answer: CKR_DEVICE_ERROR, and rpc_end tells `what` (the first reason) on stderr. */
CK_RV rpc_malformed(rpc_call *c, const char *what);

/* Sessions opened on the current link (handle -> slot), so handles of a lost link are refused. */
void sessions_add(const rpc_call *c, CK_SESSION_HANDLE session, CK_SLOT_ID slot);
void sessions_remove(CK_SESSION_HANDLE session);
void sessions_remove_slot(CK_SLOT_ID slot);

/* Checks the module is initialised in this process (no lock taken). */
CK_RV module_ready(void);

#endif
