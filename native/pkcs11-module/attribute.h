/*
 * CK_ATTRIBUTE on the wire (docs/p11kit-rpc.md §4): uint32 type, a validity byte, uint32
 * ulValueLen, then the value serialized by the kind p11-kit 0.24.1 gives its type (one byte
 * for CK_BBOOLs, uint64 for CK_ULONGs, counted arrays for templates and mechanism lists,
 * byte arrays for everything else). The C values are those of this host (LP64).
 */
#ifndef NTLS_ATTRIBUTE_H
#define NTLS_ATTRIBUTE_H

#include "pkcs11-v3.h"
#include "wire.h"

/* An `aA` argument: a template the application gives. */
CK_RV attributes_write(wire_writer *w, const CK_ATTRIBUTE *template, CK_ULONG count);

/* The `fA` argument of C_GetAttributeValue: types and the room the caller has for each. */
CK_RV attribute_requests_write(wire_writer *w, const CK_ATTRIBUTE *template, CK_ULONG count);

/*
 * The `aA` of C_GetAttributeValue's answer, into the caller's template as PKCS#11 says:
 * lengths for NULL pValues, values where they fit, CK_UNAVAILABLE_INFORMATION where they do
 * not (then *too_small is set). Returns CKR_OK, CKR_HOST_MEMORY, or CKR_DEVICE_ERROR when the
 * answer is malformed or does not match the template asked for (*problem says how, when it is
 * more than being cut short).
 */
CK_RV attributes_read_into(wire_reader *r, CK_ATTRIBUTE *template, CK_ULONG count, int *too_small, const char **problem);

#endif
