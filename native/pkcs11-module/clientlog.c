#include "clientlog.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* As ntls-client's log (src/client/client-log.ts): rotated past 1 MiB, two old files kept. */
#define LOG_MAX_BYTES (1024 * 1024)

static const char *const MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static const char *text_of(log_line line) {
  switch (line) {
  case LOG_CONNECT_FAILED: return "Failed connect. Reason: RC_GENERAL_ERROR";
  case LOG_HANDSHAKE_FAILED: return "Failed handshake. Reason: RC_GENERAL_ERROR";
  case LOG_READ_FAILED: return "Failed reading command buffer. Reason: RC_GENERAL_ERROR";
  }
  return "Failed connect. Reason: RC_GENERAL_ERROR";
}

static void rotate(const char *path) {
  char older[PATH_MAX + 48], old[PATH_MAX + 48];
  snprintf(older, sizeof older, "%s.2", path);
  snprintf(old, sizeof old, "%s.1", path);
  unlink(older);
  rename(old, older);
  rename(path, old);
}

void client_log(const char *folder, log_line line) {
  char dir[PATH_MAX], path[PATH_MAX + 32];
  if (snprintf(dir, sizeof dir, "%s/logs", folder) >= (int)sizeof dir) return;
  snprintf(path, sizeof path, "%s/ntls-client.log", dir);
  mkdir(folder, 0700);
  mkdir(dir, 0750);

  time_t now = time(NULL);
  struct tm local;
  localtime_r(&now, &local);
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  char *dot = strchr(host, '.');
  if (dot) *dot = '\0';

  /* "2012 Feb 29 12:05:01 myLuna  local5 info  NTLS [1234]: info : 0xc0000002 : <text>" */
  char text[512];
  int n = snprintf(text, sizeof text, "%d %s %02d %02d:%02d:%02d %s  local5 info  NTLS [%d]: info : 0xc0000002 : %s\n",
                   local.tm_year + 1900, MONTHS[local.tm_mon], local.tm_mday, local.tm_hour, local.tm_min, local.tm_sec,
                   host, (int)getpid(), text_of(line));
  if (n <= 0 || n >= (int)sizeof text) return;

  struct stat st;
  if (stat(path, &st) == 0 && st.st_size > 0 && st.st_size + n > LOG_MAX_BYTES) rotate(path);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return;
  ssize_t written = write(fd, text, (size_t)n);
  (void)written;
  close(fd);
}

void client_say(const char *format, ...) {
  char text[1024];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(text, sizeof text, format, args);
  va_end(args);
  if (n < 0) return;
  if (n >= (int)sizeof text) n = sizeof text - 1;
  /* One write, so lines of several threads do not interleave. */
  char line[1100];
  int m = snprintf(line, sizeof line, "ntls-pkcs11: %.*s\n", n, text);
  if (m > 0) {
    ssize_t written = write(STDERR_FILENO, line, (size_t)(m < (int)sizeof line ? m : (int)sizeof line - 1));
    (void)written;
  }
}
