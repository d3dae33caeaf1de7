#include "wire.h"

#include <stdlib.h>
#include <string.h>

void wire_writer_reset(wire_writer *w) {
  w->len = 0;
  w->failed = 0;
}

void wire_writer_free(wire_writer *w) {
  free(w->data);
  w->data = NULL;
  w->len = w->cap = 0;
  w->failed = 0;
}

unsigned char *wire_reserve(wire_writer *w, size_t n) {
  if (w->failed) return NULL;
  if (n > SIZE_MAX / 2 - w->len) {
    w->failed = 1;
    return NULL;
  }
  if (w->len + n > w->cap) {
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n) cap *= 2;
    unsigned char *grown = realloc(w->data, cap);
    if (!grown) {
      w->failed = 1;
      return NULL;
    }
    w->data = grown;
    w->cap = cap;
  }
  unsigned char *at = w->data + w->len;
  w->len += n;
  return at;
}

void wire_put_byte(wire_writer *w, uint8_t v) {
  unsigned char *p = wire_reserve(w, 1);
  if (p) p[0] = v;
}

void wire_put_u32(wire_writer *w, uint32_t v) {
  unsigned char *p = wire_reserve(w, 4);
  if (!p) return;
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

void wire_put_u64(wire_writer *w, uint64_t v) {
  wire_put_u32(w, (uint32_t)(v >> 32));
  wire_put_u32(w, (uint32_t)v);
}

void wire_put_raw(wire_writer *w, const void *data, size_t n) {
  if (n == 0) return;
  unsigned char *p = wire_reserve(w, n);
  if (p) memcpy(p, data, n);
}

void wire_put_array(wire_writer *w, const void *data, size_t n) {
  if (data == NULL) {
    wire_put_u32(w, WIRE_NULL_ARRAY);
    return;
  }
  if (n >= WIRE_MAX_ARRAY) {
    w->failed = 1;
    return;
  }
  wire_put_u32(w, (uint32_t)n);
  wire_put_raw(w, data, n);
}

void wire_put_string(wire_writer *w, const char *s) {
  wire_put_array(w, s, strlen(s));
}

void wire_reader_init(wire_reader *r, const unsigned char *data, size_t len) {
  r->data = data;
  r->len = len;
  r->pos = 0;
  r->failed = 0;
}

static int need(wire_reader *r, size_t n) {
  if (r->failed || r->len - r->pos < n) {
    r->failed = 1;
    return 0;
  }
  return 1;
}

uint8_t wire_get_byte(wire_reader *r) {
  if (!need(r, 1)) return 0;
  return r->data[r->pos++];
}

uint32_t wire_get_u32(wire_reader *r) {
  if (!need(r, 4)) return 0;
  const unsigned char *p = r->data + r->pos;
  r->pos += 4;
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

uint64_t wire_get_u64(wire_reader *r) {
  uint64_t hi = wire_get_u32(r);
  uint64_t lo = wire_get_u32(r);
  return (hi << 32) | lo;
}

int wire_get_array(wire_reader *r, const unsigned char **data, uint32_t *n) {
  uint32_t len = wire_get_u32(r);
  if (r->failed) return 0;
  if (len == WIRE_NULL_ARRAY) {
    *data = NULL;
    *n = 0;
    return 1;
  }
  if (len >= WIRE_MAX_ARRAY || !need(r, len)) {
    r->failed = 1;
    return 0;
  }
  *data = r->data + r->pos;
  *n = len;
  r->pos += len;
  return 1;
}

int wire_count_fits(const wire_reader *r, uint32_t count, size_t item_size) {
  return !r->failed && (uint64_t)count * item_size <= r->len - r->pos;
}
