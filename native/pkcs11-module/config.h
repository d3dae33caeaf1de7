/*
 * The module's configuration (docs/client.md, "The PKCS#11 module"): the ntls-client config
 * folder ($NTLS_CLIENT_HOME, else $XDG_CONFIG_HOME/ntls-client, else ~/.config/ntls-client),
 * its optional pkcs11-module.conf (`relay:`, `server:`, `timeout:`), client.json's
 * receiveTimeout, and $NTLS_PKCS11_RELAY over the file's `relay:`.
 */
#ifndef NTLS_CONFIG_H
#define NTLS_CONFIG_H

#include <limits.h>

#define MODULE_CONFIG_FILE "pkcs11-module.conf"
#define RELAY_ENV "NTLS_PKCS11_RELAY"
#define DEFAULT_TIMEOUT_SECONDS 30

typedef enum {
  RELAY_OWN,     /* start `ntls-client p11-relay` on a pipe (the default) */
  RELAY_COMMAND, /* `|command`: start that command on a pipe */
  RELAY_SOCKET,  /* `unix:path=PATH`: a relay already listening there */
} relay_mode;

typedef struct {
  char folder[PATH_MAX];
  relay_mode mode;
  /* The command (RELAY_COMMAND) or the socket path (RELAY_SOCKET). */
  char relay[PATH_MAX + 256];
  /* Where the relay setting came from, for messages: the file or the variable. */
  char relay_origin[PATH_MAX + 32];
  /* `server:` for the module's own relay (empty: client.json's first server). */
  char server[128];
  /* Receive timeout, seconds; 0 waits for ever. */
  int timeout_seconds;
  /* Why loading failed, and what to do: one line. */
  char error[PATH_MAX + 512];
} module_config;

/* Loads the configuration; returns 0, or -1 with config->error set. */
int config_load(module_config *config);

#endif
