/*
 * CK_MECHANISM on the wire (docs/p11kit-rpc.md §5), encoded exactly as ntls's codec
 * (src/protocol/p11kit/mechanisms.ts) decodes it: the parameter structures of PSS, OAEP, ECDH1,
 * AES/DES IVs, CTR, GCM, MAC_GENERAL lengths and DH public values field by field, any other
 * parameter as its bytes; framed the legacy way (protocol versions 0 and 1) or the v2 way.
 */
#ifndef NTLS_MECHANISM_H
#define NTLS_MECHANISM_H

#include "pkcs11-v3.h"
#include "wire.h"

/* Mechanism type standing for a NULL CK_MECHANISM_PTR (p11-kit 0.25.3). */
#define NTLS_NULL_MECHANISM 0xffffffffu

/*
 * Writes an `M` argument. Returns CKR_OK, CKR_MECHANISM_PARAM_INVALID for a parameter that
 * does not have its structure's size (or that the server would misread), CKR_MECHANISM_INVALID
 * for a type beyond 32 bits. A NULL pParameter or a length of 0 is no parameter.
 */
CK_RV mechanism_write(wire_writer *w, const CK_MECHANISM *mechanism, int version);

#endif
