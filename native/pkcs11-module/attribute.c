#include "attribute.h"

#include <stdlib.h>
#include <string.h>

typedef enum { KIND_BYTES = 0, KIND_BYTE, KIND_ULONG, KIND_DATE, KIND_ATTRIBUTES, KIND_MECHANISMS } attribute_kind;

#define UNAVAILABLE ((CK_ULONG)-1)

/* p11-kit 0.24.1's map_attribute_to_value_type, as ntls's codec has it (attributes.ts). */
static attribute_kind kind_of(CK_ATTRIBUTE_TYPE type) {
  switch (type) {
  case CKA_TOKEN: case CKA_PRIVATE: case CKA_TRUSTED: case CKA_SENSITIVE: case CKA_ENCRYPT:
  case CKA_DECRYPT: case CKA_WRAP: case CKA_UNWRAP: case CKA_SIGN: case CKA_SIGN_RECOVER:
  case CKA_VERIFY: case CKA_VERIFY_RECOVER: case CKA_DERIVE: case CKA_EXTRACTABLE: case CKA_LOCAL:
  case CKA_NEVER_EXTRACTABLE: case CKA_ALWAYS_SENSITIVE: case CKA_MODIFIABLE: case CKA_COPYABLE:
  case CKA_SECONDARY_AUTH: case CKA_ALWAYS_AUTHENTICATE: case CKA_WRAP_WITH_TRUSTED:
  case CKA_RESET_ON_INIT: case CKA_HAS_RESET: case CKA_COLOR:
    return KIND_BYTE;
  case CKA_CLASS: case CKA_CERTIFICATE_TYPE: case CKA_CERTIFICATE_CATEGORY:
  case CKA_JAVA_MIDP_SECURITY_DOMAIN: case CKA_KEY_TYPE: case CKA_MODULUS_BITS: case CKA_PRIME_BITS:
  case CKA_SUBPRIME_BITS: case CKA_VALUE_BITS: case CKA_VALUE_LEN: case CKA_KEY_GEN_MECHANISM:
  case CKA_AUTH_PIN_FLAGS: case CKA_HW_FEATURE_TYPE: case CKA_PIXEL_X: case CKA_PIXEL_Y:
  case CKA_RESOLUTION: case CKA_CHAR_ROWS: case CKA_CHAR_COLUMNS: case CKA_BITS_PER_PIXEL:
  case CKA_MECHANISM_TYPE:
    return KIND_ULONG;
  case CKA_WRAP_TEMPLATE: case CKA_UNWRAP_TEMPLATE:
    return KIND_ATTRIBUTES;
  case CKA_ALLOWED_MECHANISMS:
    return KIND_MECHANISMS;
  case CKA_START_DATE: case CKA_END_DATE:
    return KIND_DATE;
  default:
    return KIND_BYTES;
  }
}

static CK_RV write_attribute(wire_writer *w, const CK_ATTRIBUTE *a, int nested) {
  if (a->type > 0xffffffffUL) return CKR_ATTRIBUTE_TYPE_INVALID;
  wire_put_u32(w, (uint32_t)a->type);
  if (a->ulValueLen == UNAVAILABLE) {
    wire_put_byte(w, 0);
    return CKR_OK;
  }
  if (a->pValue == NULL && a->ulValueLen != 0) return CKR_ARGUMENTS_BAD;
  if (a->ulValueLen >= WIRE_MAX_ARRAY) return CKR_ATTRIBUTE_VALUE_INVALID;
  wire_put_byte(w, 1);
  wire_put_u32(w, (uint32_t)a->ulValueLen);
  switch (kind_of(a->type)) {
  case KIND_BYTE:
    if (a->ulValueLen != sizeof(CK_BBOOL)) return CKR_ATTRIBUTE_VALUE_INVALID;
    wire_put_byte(w, *(const CK_BYTE *)a->pValue);
    return CKR_OK;
  case KIND_ULONG:
    if (a->ulValueLen != sizeof(CK_ULONG)) return CKR_ATTRIBUTE_VALUE_INVALID;
    wire_put_u64(w, *(const CK_ULONG *)a->pValue);
    return CKR_OK;
  case KIND_DATE:
    if (a->ulValueLen != 0 && a->ulValueLen != sizeof(CK_DATE)) return CKR_ATTRIBUTE_VALUE_INVALID;
    wire_put_array(w, a->ulValueLen ? a->pValue : "", a->ulValueLen);
    return CKR_OK;
  case KIND_ATTRIBUTES: {
    /* Templates nest once (the server refuses deeper, as p11-kit 0.26.3 does). */
    if (nested || a->ulValueLen % sizeof(CK_ATTRIBUTE) != 0) return CKR_ATTRIBUTE_VALUE_INVALID;
    CK_ULONG n = a->ulValueLen / sizeof(CK_ATTRIBUTE);
    const CK_ATTRIBUTE *inner = a->pValue;
    wire_put_u32(w, (uint32_t)n);
    for (CK_ULONG i = 0; i < n; i++) {
      CK_RV rv = write_attribute(w, &inner[i], 1);
      if (rv != CKR_OK) return rv;
    }
    return CKR_OK;
  }
  case KIND_MECHANISMS: {
    if (a->ulValueLen % sizeof(CK_MECHANISM_TYPE) != 0) return CKR_ATTRIBUTE_VALUE_INVALID;
    CK_ULONG n = a->ulValueLen / sizeof(CK_MECHANISM_TYPE);
    const CK_MECHANISM_TYPE *list = a->pValue;
    wire_put_u32(w, (uint32_t)n);
    for (CK_ULONG i = 0; i < n; i++) wire_put_u64(w, list[i]);
    return CKR_OK;
  }
  case KIND_BYTES:
    /* An empty value travels as an empty array: the NULL marker would mean "length only". */
    wire_put_array(w, a->ulValueLen ? a->pValue : "", a->ulValueLen);
    return CKR_OK;
  }
  return CKR_ATTRIBUTE_TYPE_INVALID;
}

CK_RV attributes_write(wire_writer *w, const CK_ATTRIBUTE *template, CK_ULONG count) {
  if (template == NULL && count != 0) return CKR_ARGUMENTS_BAD;
  if (count > 0xffffffffUL) return CKR_ARGUMENTS_BAD;
  wire_put_u32(w, (uint32_t)count);
  for (CK_ULONG i = 0; i < count; i++) {
    CK_RV rv = write_attribute(w, &template[i], 0);
    if (rv != CKR_OK) return rv;
  }
  return CKR_OK;
}

CK_RV attribute_requests_write(wire_writer *w, const CK_ATTRIBUTE *template, CK_ULONG count) {
  if (template == NULL || count == 0 || count > 0xffffffffUL) return CKR_ARGUMENTS_BAD;
  wire_put_u32(w, (uint32_t)count);
  for (CK_ULONG i = 0; i < count; i++) {
    if (template[i].type > 0xffffffffUL) return CKR_ATTRIBUTE_TYPE_INVALID;
    wire_put_u32(w, (uint32_t)template[i].type);
    /* Room 0 asks for the size only. */
    CK_ULONG room = template[i].pValue == NULL ? 0 : template[i].ulValueLen;
    wire_put_u32(w, room > 0xfffffffeUL ? 0xfffffffeu : (uint32_t)room);
  }
  return CKR_OK;
}

static const char NO_MEMORY[] = "no memory";

/*
 * One answered attribute into the caller's `into` (type already checked). `length` is the
 * declared ulValueLen; the value follows by kind. A value that is not there (size answer) sets
 * the length only. Returns 0 for a malformed answer, *problem saying why when it is not plain
 * truncation (NO_MEMORY when memory ran out).
 */
static int read_value(wire_reader *r, CK_ATTRIBUTE *into, CK_ATTRIBUTE_TYPE type, uint32_t length, int nested, int *too_small,
                      const char **problem) {
  switch (kind_of(type)) {
  case KIND_BYTE: {
    CK_BYTE v = wire_get_byte(r);
    if (r->failed) return 0;
    if (into->pValue == NULL) into->ulValueLen = length;
    else if (length == 0) into->ulValueLen = 0;
    else if (into->ulValueLen < sizeof v) into->ulValueLen = UNAVAILABLE, *too_small = 1;
    else *(CK_BYTE *)into->pValue = v, into->ulValueLen = sizeof v;
    return 1;
  }
  case KIND_ULONG: {
    uint64_t v = wire_get_u64(r);
    if (r->failed) return 0;
    if (into->pValue == NULL) into->ulValueLen = length;
    else if (length == 0) into->ulValueLen = 0;
    else if (into->ulValueLen < sizeof(CK_ULONG)) into->ulValueLen = UNAVAILABLE, *too_small = 1;
    else memcpy(into->pValue, &(CK_ULONG){(CK_ULONG)v}, sizeof(CK_ULONG)), into->ulValueLen = sizeof(CK_ULONG);
    return 1;
  }
  case KIND_BYTES:
  case KIND_DATE: {
    const unsigned char *data;
    uint32_t n;
    if (!wire_get_array(r, &data, &n)) return 0;
    if (data == NULL || into->pValue == NULL) {
      /* The size answer (NULL array), or a caller asking for the size. */
      if (data != NULL) length = n;
      if (into->pValue == NULL || length == 0) into->ulValueLen = length;
      else into->ulValueLen = UNAVAILABLE, *too_small = 1;
      return 1;
    }
    if (n > length) {
      *problem = "a value longer than its declared length";
      return 0;
    }
    if (into->ulValueLen < n) {
      into->ulValueLen = UNAVAILABLE;
      *too_small = 1;
      return 1;
    }
    memcpy(into->pValue, data, n);
    into->ulValueLen = n;
    return 1;
  }
  case KIND_MECHANISMS: {
    uint32_t n = wire_get_u32(r);
    if (!wire_count_fits(r, n, 8)) return 0;
    CK_ULONG bytes = (CK_ULONG)n * sizeof(CK_MECHANISM_TYPE);
    if (into->pValue == NULL) {
      into->ulValueLen = n ? bytes : length;
      r->pos += (size_t)n * 8;
      return 1;
    }
    if (into->ulValueLen < bytes || (n == 0 && into->ulValueLen < length)) {
      into->ulValueLen = UNAVAILABLE;
      *too_small = 1;
      r->pos += (size_t)n * 8;
      return 1;
    }
    CK_MECHANISM_TYPE *list = into->pValue;
    for (uint32_t i = 0; i < n; i++) list[i] = (CK_MECHANISM_TYPE)wire_get_u64(r);
    into->ulValueLen = bytes;
    return !r->failed;
  }
  case KIND_ATTRIBUTES: {
    if (nested) {
      *problem = "an attribute array nested in a nested template";
      return 0;
    }
    uint32_t n = wire_get_u32(r);
    if (!wire_count_fits(r, n, 5)) return 0;
    CK_ULONG bytes = (CK_ULONG)n * sizeof(CK_ATTRIBUTE);
    if (into->pValue == NULL || into->ulValueLen < bytes || (n == 0 && into->ulValueLen < length)) {
      /* Only the size is wanted, or the array does not fit: read past the inner attributes. */
      for (uint32_t i = 0; i < n; i++) {
        CK_ATTRIBUTE_TYPE inner_type = wire_get_u32(r);
        uint8_t valid = wire_get_byte(r);
        if (r->failed) return 0;
        if (!valid) continue;
        uint32_t inner_length = wire_get_u32(r);
        CK_ATTRIBUTE scratch = {inner_type, NULL, 0};
        int ignored = 0;
        if (r->failed || !read_value(r, &scratch, inner_type, inner_length, 1, &ignored, problem)) return 0;
      }
      if (into->pValue == NULL) into->ulValueLen = n ? bytes : length;
      else into->ulValueLen = UNAVAILABLE, *too_small = 1;
      return 1;
    }
    /*
     * The caller's array: each inner attribute goes to the entry of its type (the caller's
     * second and third calls), else to its own place, which then gets the type and a size only.
     */
    CK_ATTRIBUTE *inner = into->pValue;
    CK_ULONG slots = into->ulValueLen / sizeof(CK_ATTRIBUTE);
    /*
     * An entry takes one answer: once answered its ulValueLen no longer says its room (it may be
     * CK_UNAVAILABLE_INFORMATION), so a type answered twice would write past the caller's buffer.
     */
    unsigned char *answered = n ? calloc(slots, 1) : NULL;
    if (n && !answered) {
      *problem = NO_MEMORY;
      return 0;
    }
    int ok = 1;
    for (uint32_t i = 0; ok && i < n; i++) {
      CK_ATTRIBUTE_TYPE inner_type = wire_get_u32(r);
      uint8_t valid = wire_get_byte(r);
      if (r->failed) {
        ok = 0;
        break;
      }
      CK_ULONG at = i;
      for (CK_ULONG j = 0; j < slots; j++) {
        if (inner[j].type == inner_type) {
          at = j;
          break;
        }
      }
      if (answered[at]) {
        *problem = "an attribute twice in a nested template";
        ok = 0;
        break;
      }
      answered[at] = 1;
      CK_ATTRIBUTE *target = &inner[at];
      if (target->type != inner_type) {
        target->type = inner_type;
        target->pValue = NULL;
      }
      if (!valid) {
        target->ulValueLen = UNAVAILABLE;
        continue;
      }
      uint32_t inner_length = wire_get_u32(r);
      ok = !r->failed && read_value(r, target, inner_type, inner_length, 1, too_small, problem);
    }
    free(answered);
    if (ok) into->ulValueLen = bytes;
    return ok;
  }
  }
  return 0;
}

CK_RV attributes_read_into(wire_reader *r, CK_ATTRIBUTE *template, CK_ULONG count, int *too_small, const char **problem) {
  *problem = NULL;
  uint32_t n = wire_get_u32(r);
  if (!r->failed && n != count) {
    *problem = "another number of attributes than asked for";
    return CKR_DEVICE_ERROR;
  }
  for (uint32_t i = 0; !r->failed && i < n; i++) {
    CK_ATTRIBUTE_TYPE type = wire_get_u32(r);
    uint8_t valid = wire_get_byte(r);
    if (r->failed) break;
    if (type != template[i].type) {
      *problem = "attributes other than those asked for";
      return CKR_DEVICE_ERROR;
    }
    if (!valid) {
      template[i].ulValueLen = UNAVAILABLE;
      continue;
    }
    uint32_t length = wire_get_u32(r);
    if (r->failed) break;
    if (!read_value(r, &template[i], type, length, 0, too_small, problem)) {
      if (*problem == NO_MEMORY) return CKR_HOST_MEMORY;
      r->failed = 1;
      return CKR_DEVICE_ERROR;
    }
  }
  return r->failed ? CKR_DEVICE_ERROR : CKR_OK;
}
