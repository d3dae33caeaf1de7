#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int folder_from_environment(module_config *c) {
  const char *home = getenv("NTLS_CLIENT_HOME");
  const char *xdg = getenv("XDG_CONFIG_HOME");
  int n;
  if (home && *home) {
    n = snprintf(c->folder, sizeof c->folder, "%s", home);
  } else if (xdg && *xdg) {
    n = snprintf(c->folder, sizeof c->folder, "%s/ntls-client", xdg);
  } else {
    const char *user_home = getenv("HOME");
    struct passwd pw, *found = NULL;
    char scratch[4096];
    if ((!user_home || !*user_home) && getpwuid_r(getuid(), &pw, scratch, sizeof scratch, &found) == 0 && found)
      user_home = found->pw_dir;
    if (!user_home || !*user_home) {
      snprintf(c->error, sizeof c->error, "no config folder: HOME is not set; set NTLS_CLIENT_HOME to the ntls-client config folder");
      return -1;
    }
    n = snprintf(c->folder, sizeof c->folder, "%s/.config/ntls-client", user_home);
  }
  if (n < 0 || (size_t)n >= sizeof c->folder) {
    snprintf(c->error, sizeof c->error, "the config folder's path is too long; set NTLS_CLIENT_HOME to a shorter one");
    return -1;
  }
  return 0;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
  return s;
}

/* A relay address: `|command`, `unix:path=PATH`, or an absolute socket path. */
static int parse_relay(module_config *c, const char *value, const char *origin) {
  snprintf(c->relay_origin, sizeof c->relay_origin, "%s", origin);
  if (value[0] == '\0') {
    c->mode = RELAY_OWN;
    return 0;
  }
  const char *what = NULL;
  if (value[0] == '|') {
    c->mode = RELAY_COMMAND;
    what = value + 1;
    while (isspace((unsigned char)*what)) what++;
  } else if (strncmp(value, "unix:path=", 10) == 0) {
    c->mode = RELAY_SOCKET;
    what = value + 10;
  } else if (value[0] == '/') {
    c->mode = RELAY_SOCKET;
    what = value;
  }
  if (what == NULL || *what == '\0') {
    snprintf(c->error, sizeof c->error,
             "%s: relay \"%s\" is neither |command nor unix:path=SOCKET; write e.g. \"unix:path=/run/user/1000/ntls.sock\" or \"|ntls-client p11-relay --server hsm1\"",
             origin, value);
    return -1;
  }
  if (strlen(what) >= sizeof c->relay) {
    snprintf(c->error, sizeof c->error, "%s: relay is too long", origin);
    return -1;
  }
  snprintf(c->relay, sizeof c->relay, "%s", what);
  return 0;
}

static int read_module_file(module_config *c) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/%s", c->folder, MODULE_CONFIG_FILE);
  FILE *f = fopen(path, "re");
  if (!f) {
    if (errno == ENOENT) return 0;
    snprintf(c->error, sizeof c->error, "%s cannot be read (%s); check its permissions", path, strerror(errno));
    return -1;
  }
  char line[PATH_MAX + 512];
  int number = 0;
  int result = 0;
  while (result == 0 && fgets(line, sizeof line, f)) {
    number++;
    char *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    char *text = trim(line);
    if (*text == '\0') continue;
    char *colon = strchr(text, ':');
    if (!colon) {
      snprintf(c->error, sizeof c->error, "%s line %d: \"%s\" is not \"key: value\"; see docs/client.md", path, number, text);
      result = -1;
      break;
    }
    *colon = '\0';
    char *key = trim(text);
    char *value = trim(colon + 1);
    char origin[PATH_MAX + 96];
    snprintf(origin, sizeof origin, "%s line %d", path, number);
    if (strcmp(key, "relay") == 0) {
      result = parse_relay(c, value, origin);
    } else if (strcmp(key, "server") == 0) {
      if (strlen(value) >= sizeof c->server || strchr(value, ' ')) {
        snprintf(c->error, sizeof c->error, "%s: server \"%s\" is not a server name of client.json", origin, value);
        result = -1;
      } else {
        snprintf(c->server, sizeof c->server, "%s", value);
      }
    } else if (strcmp(key, "timeout") == 0) {
      char *end;
      errno = 0;
      long seconds = strtol(value, &end, 10);
      if (*value == '\0' || *end != '\0' || errno || seconds < 0 || seconds > 3600) {
        snprintf(c->error, sizeof c->error, "%s: timeout \"%s\" is not a number of seconds 0-3600", origin, value);
        result = -1;
      } else {
        c->timeout_seconds = (int)seconds;
      }
    } else {
      snprintf(c->error, sizeof c->error, "%s: unknown setting \"%s\" (known: relay, server, timeout)", origin, key);
      result = -1;
    }
  }
  fclose(f);
  return result;
}

/*
 * client.json's top-level receiveTimeout, the default for the module's own timeout. The file
 * is ntls-client's (validated by it); only this one number is looked for.
 */
static void read_receive_timeout(module_config *c) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/client.json", c->folder);
  FILE *f = fopen(path, "re");
  if (!f) return;
  char text[65536];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  const char *at = strstr(text, "\"receiveTimeout\"");
  if (!at) return;
  at += strlen("\"receiveTimeout\"");
  while (isspace((unsigned char)*at)) at++;
  if (*at++ != ':') return;
  while (isspace((unsigned char)*at)) at++;
  char *end;
  long seconds = strtol(at, &end, 10);
  if (end != at && seconds >= 0 && seconds <= 3600) c->timeout_seconds = (int)seconds;
}

int config_load(module_config *c) {
  memset(c, 0, sizeof *c);
  c->mode = RELAY_OWN;
  c->timeout_seconds = DEFAULT_TIMEOUT_SECONDS;
  if (folder_from_environment(c) != 0) return -1;
  read_receive_timeout(c);
  if (read_module_file(c) != 0) return -1;
  const char *env = getenv(RELAY_ENV);
  if (env && *env) {
    char value[PATH_MAX + 256];
    snprintf(value, sizeof value, "%s", env);
    if (parse_relay(c, trim(value), RELAY_ENV) != 0) return -1;
  }
  return 0;
}
