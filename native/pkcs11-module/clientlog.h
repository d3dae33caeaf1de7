/*
 * What the module tells when the relay or the server cannot be used: the guide's line in the
 * client log (<config folder>/logs/ntls-client.log, the syslog shape of the daemon's lunalogs,
 * as ntls-client writes it), and the cause with its fix as one line on stderr. Neither ever
 * fails the call that reports.
 */
#ifndef NTLS_CLIENTLOG_H
#define NTLS_CLIENTLOG_H

/* The guide's words for the three stages a link to the relay fails at. */
typedef enum {
  LOG_CONNECT_FAILED,   /* "Failed connect. Reason: RC_GENERAL_ERROR" */
  LOG_HANDSHAKE_FAILED, /* "Failed handshake. Reason: RC_GENERAL_ERROR" */
  LOG_READ_FAILED,      /* "Failed reading command buffer. Reason: RC_GENERAL_ERROR" */
} log_line;

void client_log(const char *folder, log_line line);

/* "ntls-pkcs11: <cause>; <fix>" on stderr. */
void client_say(const char *format, ...) __attribute__((format(printf, 1, 2)));

#endif
