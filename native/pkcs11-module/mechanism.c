#include "mechanism.h"

#include <string.h>

typedef enum {
  PARAM_BYTES = 0, /* any other mechanism: the parameter's bytes */
  PARAM_PSS,
  PARAM_OAEP,
  PARAM_ECDH1,
  PARAM_AES_IV,
  PARAM_DES_IV,
  PARAM_CTR,
  PARAM_GCM,
  PARAM_MAC_GENERAL,
  PARAM_DH_DERIVE,
  PARAM_EDDSA,
  PARAM_REFUSED, /* parameters whose structure the server does not read: refused, never misread */
} param_kind;

#define VENDOR 0x80000000UL

/*
 * The structured parameters of ntls's codec (SERIALIZERS in mechanisms.ts): p11-kit 0.26's list,
 * and ECDH1_COFACTOR_DERIVE with ECDH1's structure (CK_ECDH1_DERIVE_PARAMS, as PKCS#11 has it).
 */
static const struct {
  CK_MECHANISM_TYPE type;
  param_kind kind;
} STRUCTURED[] = {
  {CKM_RSA_PKCS_PSS, PARAM_PSS}, {CKM_SHA1_RSA_PKCS_PSS, PARAM_PSS}, {CKM_SHA224_RSA_PKCS_PSS, PARAM_PSS},
  {CKM_SHA256_RSA_PKCS_PSS, PARAM_PSS}, {CKM_SHA384_RSA_PKCS_PSS, PARAM_PSS}, {CKM_SHA512_RSA_PKCS_PSS, PARAM_PSS},
  {CKM_RSA_PKCS_OAEP, PARAM_OAEP},
  {CKM_ECDH1_DERIVE, PARAM_ECDH1}, {CKM_ECDH1_COFACTOR_DERIVE, PARAM_ECDH1}, {VENDOR + 0x1001b, PARAM_ECDH1}, {VENDOR + 0x1001e, PARAM_ECDH1},
  {CKM_AES_CBC, PARAM_AES_IV}, {CKM_AES_CBC_PAD, PARAM_AES_IV}, {0x2104, PARAM_AES_IV}, {0x2108, PARAM_AES_IV},
  {0x2106, PARAM_AES_IV}, {0x2105, PARAM_AES_IV}, {0x2107, PARAM_AES_IV}, {CKM_AES_CTS, PARAM_AES_IV},
  {CKM_AES_CTR, PARAM_CTR}, {CKM_AES_GCM, PARAM_GCM},
  {0x122, PARAM_DES_IV}, {0x125, PARAM_DES_IV}, {0x133, PARAM_DES_IV}, {0x136, PARAM_DES_IV},
  {0x153, PARAM_DES_IV}, {0x152, PARAM_DES_IV}, {0x150, PARAM_DES_IV},
  {CKM_SHA_1_HMAC_GENERAL, PARAM_MAC_GENERAL}, {CKM_SHA224_HMAC_GENERAL, PARAM_MAC_GENERAL},
  {CKM_SHA256_HMAC_GENERAL, PARAM_MAC_GENERAL}, {CKM_SHA384_HMAC_GENERAL, PARAM_MAC_GENERAL},
  {CKM_SHA512_HMAC_GENERAL, PARAM_MAC_GENERAL}, {0x4a, PARAM_MAC_GENERAL}, {0x4e, PARAM_MAC_GENERAL},
  {CKM_AES_MAC_GENERAL, PARAM_MAC_GENERAL}, {0x108b, PARAM_MAC_GENERAL}, {0x135, PARAM_MAC_GENERAL},
  {0x137, PARAM_MAC_GENERAL},
  {0x21, PARAM_DH_DERIVE},
  {VENDOR + 0x10031, PARAM_REFUSED}, {VENDOR + 0x70001, PARAM_REFUSED}, {VENDOR + 0x10024, PARAM_REFUSED},
  {VENDOR + 0x20004, PARAM_REFUSED},
};

/*
 * Mechanisms the v2 framing sends with no parameter bytes at all: p11-kit 0.26's
 * mechanism_has_no_parameters, value for value as ntls's codec has it (NO_PARAMETER).
 */
static const CK_MECHANISM_TYPE NO_PARAMETER[] = {
  0x0, 0xa, 0x1, 0x2, 0x3, 0xb, 0x4, 0x5, 0x6, 0x46, 0x40, 0x41, 0x42, 0x7, 0x8, 0xc,
  0x10, 0x2000, 0x11, 0x12, 0x1020,
  0x1040, 0x1041, 0x1042, 0x1043, 0x1044, 0x1045, 0x1046,
  0x20, 0x2001, 0x30, 0x2002, 0x1010,
  0x350, 0x100, 0x110, 0x111, 0x330, 0x1080, 0x1081, 0x1083, 0x108a,
  0x120, 0x130, 0x131, 0x140, 0x300, 0x310, 0x320, 0x340, 0x370, 0x374, 0x1000, 0x1030, 0x1060,
  0x101, 0x121, 0x132, 0x141, 0x301, 0x311, 0x321, 0x331, 0x341,
  0x103, 0x123, 0x134, 0x138, 0x143, 0x303, 0x313, 0x333, 0x343, 0x380, 0x381,
  0x1008, 0x1036, 0x1065,
  0x200, 0x201, 0x210, 0x211, 0x220, 0x221, 0x392, 0x255, 0x256, 0x396, 0x250, 0x251, 0x393,
  0x260, 0x261, 0x394, 0x270, 0x271, 0x395, 0x50, 0x51, 0x53, 0x48, 0x49, 0x4b, 0x4c, 0x4d, 0x4f,
  0x1070, 0x230, 0x231, 0x240, 0x241, 0x400,
  VENDOR + 0x10001, VENDOR + 0x10002, VENDOR + 0x10003, VENDOR + 0x10004, VENDOR + 0x10007, VENDOR + 0x10023,
  VENDOR + 0x10025, VENDOR + 0x10026, VENDOR + 0x10027, VENDOR + 0x10028, VENDOR + 0x1001c, VENDOR + 0x1001f,
};

static param_kind kind_of(CK_MECHANISM_TYPE type) {
  for (size_t i = 0; i < sizeof STRUCTURED / sizeof STRUCTURED[0]; i++)
    if (STRUCTURED[i].type == type) return STRUCTURED[i].kind;
  /*
   * The server reads the bytes of any other mechanism's parameter as they are. CK_EDDSA_PARAMS
   * (pointers inside) cannot travel that way.
   */
  if (type == NTLS_CKM_EDDSA) return PARAM_EDDSA;
  return PARAM_BYTES;
}

static int has_no_parameter(CK_MECHANISM_TYPE type) {
  for (size_t i = 0; i < sizeof NO_PARAMETER / sizeof NO_PARAMETER[0]; i++)
    if (NO_PARAMETER[i] == type) return 1;
  return 0;
}

/* A caller's (pointer, length) pair as a byte array: NULL with a length is refused. */
static CK_RV put_bytes(wire_writer *w, const void *data, CK_ULONG len) {
  if (data == NULL && len != 0) return CKR_MECHANISM_PARAM_INVALID;
  if (len >= WIRE_MAX_ARRAY) return CKR_MECHANISM_PARAM_INVALID;
  wire_put_array(w, data, len);
  return CKR_OK;
}

static CK_RV write_parameter(wire_writer *w, param_kind kind, const void *p, CK_ULONG len) {
  switch (kind) {
  case PARAM_PSS: {
    if (len != sizeof(CK_RSA_PKCS_PSS_PARAMS)) return CKR_MECHANISM_PARAM_INVALID;
    const CK_RSA_PKCS_PSS_PARAMS *pss = p;
    wire_put_u64(w, pss->hashAlg);
    wire_put_u64(w, pss->mgf);
    wire_put_u64(w, pss->sLen);
    return CKR_OK;
  }
  case PARAM_OAEP: {
    if (len != sizeof(CK_RSA_PKCS_OAEP_PARAMS)) return CKR_MECHANISM_PARAM_INVALID;
    const CK_RSA_PKCS_OAEP_PARAMS *oaep = p;
    wire_put_u64(w, oaep->hashAlg);
    wire_put_u64(w, oaep->mgf);
    wire_put_u64(w, oaep->source);
    return put_bytes(w, oaep->pSourceData, oaep->pSourceData ? oaep->ulSourceDataLen : 0);
  }
  case PARAM_ECDH1: {
    if (len != sizeof(CK_ECDH1_DERIVE_PARAMS)) return CKR_MECHANISM_PARAM_INVALID;
    const CK_ECDH1_DERIVE_PARAMS *ecdh = p;
    if (ecdh->pPublicData == NULL || ecdh->ulPublicDataLen == 0) return CKR_MECHANISM_PARAM_INVALID;
    wire_put_u64(w, ecdh->kdf);
    CK_RV rv = put_bytes(w, ecdh->pSharedData, ecdh->pSharedData ? ecdh->ulSharedDataLen : 0);
    if (rv != CKR_OK) return rv;
    return put_bytes(w, ecdh->pPublicData, ecdh->ulPublicDataLen);
  }
  case PARAM_AES_IV:
  case PARAM_DES_IV:
    if (len != (kind == PARAM_AES_IV ? 16u : 8u)) return CKR_MECHANISM_PARAM_INVALID;
    wire_put_array(w, p, len);
    return CKR_OK;
  case PARAM_CTR: {
    if (len != sizeof(CK_AES_CTR_PARAMS)) return CKR_MECHANISM_PARAM_INVALID;
    const CK_AES_CTR_PARAMS *ctr = p;
    wire_put_u64(w, ctr->ulCounterBits);
    wire_put_array(w, ctr->cb, sizeof ctr->cb);
    return CKR_OK;
  }
  case PARAM_GCM: {
    /* Both spellings of CK_GCM_PARAMS, told apart by their size (48 and 40 bytes on LP64). */
    const CK_BYTE *iv, *aad;
    CK_ULONG ivLen, aadLen, tagBits;
    if (len == sizeof(CK_GCM_PARAMS)) {
      const CK_GCM_PARAMS *gcm = p;
      iv = gcm->pIv, ivLen = gcm->ulIvLen, aad = gcm->pAAD, aadLen = gcm->ulAADLen, tagBits = gcm->ulTagBits;
    } else if (len == sizeof(NTLS_CK_GCM_PARAMS_NO_IVBITS)) {
      const NTLS_CK_GCM_PARAMS_NO_IVBITS *gcm = p;
      iv = gcm->pIv, ivLen = gcm->ulIvLen, aad = gcm->pAAD, aadLen = gcm->ulAADLen, tagBits = gcm->ulTagBits;
    } else {
      return CKR_MECHANISM_PARAM_INVALID;
    }
    CK_RV rv = put_bytes(w, iv, iv ? ivLen : 0);
    if (rv != CKR_OK) return rv;
    wire_put_u64(w, (uint64_t)(iv ? ivLen : 0) * 8);
    rv = put_bytes(w, aad, aad ? aadLen : 0);
    if (rv != CKR_OK) return rv;
    wire_put_u64(w, tagBits);
    return CKR_OK;
  }
  case PARAM_MAC_GENERAL:
    if (len != sizeof(CK_MAC_GENERAL_PARAMS)) return CKR_MECHANISM_PARAM_INVALID;
    wire_put_u64(w, *(const CK_MAC_GENERAL_PARAMS *)p);
    return CKR_OK;
  case PARAM_DH_DERIVE:
    if (len == 0) return CKR_MECHANISM_PARAM_INVALID;
    wire_put_array(w, p, len);
    return CKR_OK;
  case PARAM_BYTES:
    return put_bytes(w, p, len);
  case PARAM_EDDSA:
  case PARAM_REFUSED:
    return CKR_MECHANISM_PARAM_INVALID;
  }
  return CKR_MECHANISM_PARAM_INVALID;
}

CK_RV mechanism_write(wire_writer *w, const CK_MECHANISM *m, int version) {
  if (m == NULL) {
    wire_put_u32(w, NTLS_NULL_MECHANISM);
    return CKR_OK;
  }
  if (m->mechanism >= NTLS_NULL_MECHANISM) return CKR_MECHANISM_INVALID;
  param_kind kind = kind_of(m->mechanism);
  int present = m->pParameter != NULL && m->ulParameterLen != 0;
  if (present && kind == PARAM_EDDSA) {
    /* Pure EdDSA without a context is what the server signs: the same as no parameter. */
    const NTLS_CK_EDDSA_PARAMS *eddsa = m->pParameter;
    if (m->ulParameterLen != sizeof(NTLS_CK_EDDSA_PARAMS) || eddsa->phFlag || eddsa->ulContextDataLen != 0)
      return CKR_MECHANISM_PARAM_INVALID;
    present = 0;
  }
  wire_put_u32(w, (uint32_t)m->mechanism);
  if (version >= 2) {
    if (has_no_parameter(m->mechanism)) return CKR_OK;
    if (!present) {
      wire_put_byte(w, 0);
      return CKR_OK;
    }
    wire_put_byte(w, 1);
    return write_parameter(w, kind, m->pParameter, m->ulParameterLen);
  }
  /* Legacy framing: the parameter always follows; a structured one cannot be left out. */
  if (!present) {
    if (kind != PARAM_BYTES && kind != PARAM_EDDSA) return CKR_MECHANISM_PARAM_INVALID;
    wire_put_array(w, NULL, 0);
    return CKR_OK;
  }
  return write_parameter(w, kind, m->pParameter, m->ulParameterLen);
}
