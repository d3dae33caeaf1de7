/*
 * The primitive encodings of the p11-kit RPC protocol (docs/p11kit-rpc.md §3): big-endian
 * uint32, CK_ULONG as big-endian uint64, byte arrays as a uint32 length then the bytes, with
 * 0xffffffff for a NULL pointer. A writer grows its buffer; a reader never reads past the end
 * and remembers the first failure, so a caller checks once after reading a whole answer.
 */
#ifndef NTLS_WIRE_H
#define NTLS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_NULL_ARRAY 0xffffffffu
/* p11-kit refuses byte arrays of this length or more, in both directions. */
#define WIRE_MAX_ARRAY 0x7fffffffu

typedef struct {
  unsigned char *data;
  size_t len;
  size_t cap;
  int failed; /* out of memory, or a value the wire cannot carry */
} wire_writer;

typedef struct {
  const unsigned char *data;
  size_t len;
  size_t pos;
  int failed; /* truncated or malformed */
} wire_reader;

void wire_writer_reset(wire_writer *w);
void wire_writer_free(wire_writer *w);
/* Room for n more bytes at the end; NULL (and failed set) when memory runs out. */
unsigned char *wire_reserve(wire_writer *w, size_t n);
void wire_put_byte(wire_writer *w, uint8_t v);
void wire_put_u32(wire_writer *w, uint32_t v);
void wire_put_u64(wire_writer *w, uint64_t v);
void wire_put_raw(wire_writer *w, const void *data, size_t n);
/* A byte array; data NULL writes the NULL marker. */
void wire_put_array(wire_writer *w, const void *data, size_t n);
void wire_put_string(wire_writer *w, const char *s);

void wire_reader_init(wire_reader *r, const unsigned char *data, size_t len);
uint8_t wire_get_byte(wire_reader *r);
uint32_t wire_get_u32(wire_reader *r);
uint64_t wire_get_u64(wire_reader *r);
/*
 * A byte array: sets *data (NULL for the NULL marker) and *n; the bytes stay in the reader's
 * buffer. Returns 0 on failure.
 */
int wire_get_array(wire_reader *r, const unsigned char **data, uint32_t *n);
/* True when a count of items each at least item_size bytes can fit in what remains. */
int wire_count_fits(const wire_reader *r, uint32_t count, size_t item_size);

#endif
