/*
 * The module's link to the relay: a unix socket the relay listens on, or a relay the module
 * starts itself on a socket pair (stdin/stdout, as p11-kit's `remote: |command`). Over it the
 * p11-kit RPC transport (docs/p11kit-rpc.md §1-2): the version byte, then frames of a 12-byte
 * header (call code, options length, body length) and the body. Every wait is bounded by the
 * receive timeout; a failure closes the link and is told once (client log + stderr).
 */
#ifndef NTLS_LINK_H
#define NTLS_LINK_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "pkcs11-v3.h"
#include "wire.h"

/* The protocol version the module offers: 2 (v2 mechanism framing, C_InitToken2). */
#define LINK_PROTOCOL_VERSION 2
/* Room the request writer keeps in front of the body for the frame header. */
#define FRAME_HEADER 12

typedef struct {
  int fd;           /* -1 when down */
  pid_t relay;      /* the relay this module started, 0 if none */
  int version;      /* negotiated */
  uint32_t next_code;
  wire_writer answer; /* the last answer's body */
} link_t;

void link_init(link_t *link);

/* Connects (or starts the relay) and exchanges the version byte. CKR_OK or CKR_DEVICE_ERROR. */
CK_RV link_open(link_t *link, const module_config *config);

/*
 * Sends `request` (a body written after FRAME_HEADER reserved bytes) and reads the answer's
 * body into link->answer. CKR_OK, or CKR_DEVICE_ERROR with the link closed. `call` names the
 * call for the stderr line.
 */
CK_RV link_exchange(link_t *link, wire_writer *request, const module_config *config, const char *call);

/* Closes the link; `reap` waits (bounded) for the relay this module started. */
void link_close(link_t *link, int reap);

/* In a forked child: forgets the parent's link without touching it. */
void link_forget(link_t *link);

#endif
