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
  wire_writer in;   /* bytes read and not yet taken: in.data[in_start, in.len) */
  size_t in_start;
} link_t;

/* What a wait on the link came to. */
enum { IO_OK = 0, IO_TIMEOUT = -1, IO_CLOSED = -2 };

void link_init(link_t *link);

/* Connects (or starts the relay) and exchanges the version byte. CKR_OK or CKR_DEVICE_ERROR. */
CK_RV link_open(link_t *link, const module_config *config);

/*
 * One call alone on the link (nothing else in flight): sends `request` (a body written after
 * FRAME_HEADER reserved bytes) and reads the answer's body into `answer`. CKR_OK, or
 * CKR_DEVICE_ERROR with the link closed and the failure told. `call` names the call for the
 * stderr line.
 */
CK_RV link_exchange(link_t *link, wire_writer *request, wire_writer *answer, const module_config *config, const char *call);

/*
 * The pieces of an exchange when several calls are in flight (module.c keeps them apart: one
 * writer at a time, one reader at a time, answers matched to calls by frame code).
 */
/* A deadline the receive timeout from now (CLOCK_MONOTONIC, ms), -1 for none; whether it passed. */
int64_t link_deadline(const module_config *config);
int link_deadline_passed(int64_t deadline);
uint32_t link_next_code(link_t *link);
/* Sends a frame of `request` (FRAME_HEADER reserved bytes, then the body) under `code`. */
int link_send(link_t *link, wire_writer *request, uint32_t code, int64_t deadline);
/* The next frame: its code, its body into `body`. On IO_CLOSED, *what says why. */
int link_read(link_t *link, int64_t deadline, uint32_t *code, wire_writer *body, const char **what);
/* The client log line and the stderr line for a call whose exchange failed. */
void link_tell_failure(const module_config *config, const char *call, int io, const char *what);
/* Wakes whoever waits on the link (it reads the end) without freeing the descriptor. */
void link_shutdown(link_t *link);

/* Closes the link; `reap` waits (bounded) for the relay this module started. */
void link_close(link_t *link, int reap);

/* In a forked child: forgets the parent's link without touching it. */
void link_forget(link_t *link);

#endif
