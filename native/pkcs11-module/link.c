#define _GNU_SOURCE
#include "link.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clientlog.h"

extern char **environ;

#ifndef NTLS_NODE
#define NTLS_NODE "node"
#endif

/*
 * Bounds of an answer: the relay passes on no frame over 64 MiB (the daemon's largest
 * datapath.maxFrameBytes); options are a module name. A larger length is refused before
 * anything is read or allocated for it.
 */
#define MAX_ANSWER_BODY (64u * 1024 * 1024)
#define MAX_ANSWER_OPTIONS (64u * 1024)
/* The options of the answers a relay makes up after its link to the server ended (src/client/relay.ts). */
#define LINK_LOST_OPTIONS "ntls:link-lost"
/* Time a relay the module started gets to start node and open its link, beyond the timeout. */
#define START_GRACE_MS 10000

void link_init(link_t *link) {
  memset(link, 0, sizeof *link);
  link->fd = -1;
  link->next_code = 1;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline `ms` from now; -1 (no deadline) for ms <= 0. */
static int64_t deadline_in(int64_t ms) {
  return ms > 0 ? now_ms() + ms : -1;
}

static int wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int timeout = -1;
    if (deadline >= 0) {
      int64_t left = deadline - now_ms();
      if (left <= 0) return IO_TIMEOUT;
      timeout = left > 60000 ? 60000 : (int)left;
    }
    struct pollfd p = {fd, events, 0};
    int n = poll(&p, 1, timeout);
    if (n > 0) return IO_OK;
    if (n < 0 && errno != EINTR) return IO_CLOSED;
  }
}

static int send_all(int fd, const unsigned char *data, size_t len, int64_t deadline) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int w = wait_for(fd, POLLOUT, deadline);
      if (w != IO_OK) return w;
      continue;
    }
    return IO_CLOSED;
  }
  return IO_OK;
}

static int recv_all(int fd, unsigned char *data, size_t len, int64_t deadline) {
  while (len > 0) {
    ssize_t n = recv(fd, data, len, 0);
    if (n > 0) {
      data += n;
      len -= (size_t)n;
      continue;
    }
    if (n == 0) return IO_CLOSED;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int w = wait_for(fd, POLLIN, deadline);
      if (w != IO_OK) return w;
      continue;
    }
    return IO_CLOSED;
  }
  return IO_OK;
}

static int timeout_ms(const module_config *config) {
  return config->timeout_seconds * 1000;
}

/* The package's ntls-client script, from where this library lies (native/pkcs11-module/build/Release/). */
static int own_relay_script(char *out, size_t size) {
  Dl_info info;
  if (!dladdr((void *)own_relay_script, &info) || !info.dli_fname) return -1;
  char path[PATH_MAX];
  if (!realpath(info.dli_fname, path)) return -1;
  char *dir = path;
  for (int i = 0; i < 5; i++) dir = dirname(dir);
  return snprintf(out, size, "%s/dist/src/cli/ntls-client.js", dir) < (int)size ? 0 : -1;
}

static pid_t spawn_relay(const module_config *config, int child_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, child_fd, STDOUT_FILENO);
  /* A host without stderr (a daemon that closed it) gives the relay /dev/null for its lines. */
  if (fcntl(STDERR_FILENO, F_GETFD) < 0) posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_init(&attr);
  /* The host application's signal mask and ignored signals are not the relay's. */
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = 0;
  int rc;
  if (config->mode == RELAY_COMMAND) {
    char command[PATH_MAX + 300];
    snprintf(command, sizeof command, "exec %s", config->relay);
    char *argv[] = {"/bin/sh", "-c", command, NULL};
    rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, environ);
  } else {
    char script[PATH_MAX + 64];
    if (own_relay_script(script, sizeof script) != 0) {
      rc = ENOENT;
    } else {
      char *argv[10];
      int n = 0;
      const char *node = access(NTLS_NODE, X_OK) == 0 ? NTLS_NODE : "node";
      argv[n++] = (char *)node;
      argv[n++] = script;
      argv[n++] = "p11-relay";
      argv[n++] = "--config-dir";
      argv[n++] = (char *)config->folder;
      if (config->server[0]) {
        argv[n++] = "--server";
        argv[n++] = (char *)config->server;
      }
      argv[n] = NULL;
      rc = posix_spawnp(&pid, node, &actions, &attr, argv, environ);
    }
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    errno = rc;
    return -1;
  }
  return pid;
}

static void describe_relay(const module_config *config, char *out, size_t size) {
  switch (config->mode) {
  case RELAY_SOCKET: snprintf(out, size, "the relay socket %s (%s)", config->relay, config->relay_origin); break;
  case RELAY_COMMAND: snprintf(out, size, "the relay command \"%s\" (%s)", config->relay, config->relay_origin); break;
  case RELAY_OWN: snprintf(out, size, "ntls-client p11-relay --config-dir %s", config->folder); break;
  }
}

static int connect_socket(const char *path) {
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof address.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(address.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  while (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    if (errno == EINTR) continue;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

CK_RV link_open(link_t *link, const module_config *config) {
  char relay[2 * PATH_MAX + 700];
  describe_relay(config, relay, sizeof relay);
  int fd;
  if (config->mode == RELAY_SOCKET) {
    fd = connect_socket(config->relay);
    if (fd < 0) {
      int saved = errno;
      client_log(config->folder, LOG_CONNECT_FAILED);
      client_say("cannot reach %s: %s; start `ntls-client p11-relay --listen %s`, or fix the relay setting", relay, strerror(saved), config->relay);
      return CKR_DEVICE_ERROR;
    }
  } else {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      client_log(config->folder, LOG_CONNECT_FAILED);
      client_say("cannot make a socket pair for the relay: %s", strerror(errno));
      return CKR_DEVICE_ERROR;
    }
    /* A host that closed its stdin or stdout may get 0 or 1 here: the relay's end must not be one. */
    int child_fd = pair[1];
    if (child_fd <= STDERR_FILENO) child_fd = fcntl(pair[1], F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    pid_t pid = child_fd < 0 ? -1 : spawn_relay(config, child_fd);
    int saved = errno;
    if (child_fd != pair[1] && child_fd >= 0) close(child_fd);
    close(pair[1]);
    if (pid < 0) {
      close(pair[0]);
      client_log(config->folder, LOG_CONNECT_FAILED);
      client_say("cannot start %s: %s; check that ntls is installed (node on PATH) or set %s", relay, strerror(saved), RELAY_ENV);
      return CKR_DEVICE_ERROR;
    }
    fd = pair[0];
    link->relay = pid;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  link->fd = fd;

  /* The version byte: the relay answers with the server's once its link is up. */
  int64_t deadline = config->timeout_seconds > 0 ? deadline_in(timeout_ms(config) + (link->relay ? START_GRACE_MS : 0)) : -1;
  unsigned char offer = LINK_PROTOCOL_VERSION, answer = 0;
  int io = send_all(fd, &offer, 1, deadline);
  if (io == IO_OK) io = recv_all(fd, &answer, 1, deadline);
  if (io != IO_OK) {
    link_close(link, 1);
    client_log(config->folder, LOG_CONNECT_FAILED);
    if (io == IO_TIMEOUT)
      client_say("no answer from the server through %s within %d s; check the server and the network, or raise the timeout", relay, config->timeout_seconds);
    else
      client_say("the link through %s ended before the server answered: the server is down, refused this client, or the relay is misconfigured (the relay's own line says which)", relay);
    return CKR_DEVICE_ERROR;
  }
  if (answer > LINK_PROTOCOL_VERSION) {
    link_close(link, 1);
    client_log(config->folder, LOG_HANDSHAKE_FAILED);
    client_say("the server through %s answered protocol version %u to an offer of %u: not an ntls server", relay, answer, LINK_PROTOCOL_VERSION);
    return CKR_DEVICE_ERROR;
  }
  link->version = answer;
  return CKR_OK;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int64_t link_deadline(const module_config *config) {
  return deadline_in(timeout_ms(config));
}

int link_deadline_passed(int64_t deadline) {
  return deadline >= 0 && now_ms() >= deadline;
}

uint32_t link_next_code(link_t *link) {
  uint32_t code = link->next_code++;
  if (link->next_code == 0) link->next_code = 1;
  return code;
}

int link_send(link_t *link, wire_writer *request, uint32_t code, int64_t deadline) {
  if (link->fd < 0) return IO_CLOSED;
  unsigned char *h = request->data;
  uint32_t header[3] = {code, 0, (uint32_t)(request->len - FRAME_HEADER)};
  for (int i = 0; i < 3; i++) {
    h[i * 4] = (unsigned char)(header[i] >> 24);
    h[i * 4 + 1] = (unsigned char)(header[i] >> 16);
    h[i * 4 + 2] = (unsigned char)(header[i] >> 8);
    h[i * 4 + 3] = (unsigned char)header[i];
  }
  return send_all(link->fd, request->data, request->len, deadline);
}

/*
 * The next frame from what was read and, when that holds no whole frame, from the socket: one
 * poll and one read per chunk, whatever is there (frames of several calls may come together).
 */
int link_read(link_t *link, int64_t deadline, uint32_t *code, wire_writer *body, const char **what) {
  wire_writer *in = &link->in;
  for (;;) {
    size_t have = in->len - link->in_start, need = FRAME_HEADER;
    if (have >= FRAME_HEADER) {
      const unsigned char *h = in->data + link->in_start;
      uint32_t options = be32(h + 4), length = be32(h + 8);
      if (options > MAX_ANSWER_OPTIONS || length > MAX_ANSWER_BODY) {
        *what = "the answer was not a p11-kit frame for this call";
        return IO_CLOSED;
      }
      need = FRAME_HEADER + (size_t)options + length;
      /* The relay answers so once its own link to the server is gone: this link ends here too. */
      if (have >= need && options == sizeof LINK_LOST_OPTIONS - 1 && memcmp(h + FRAME_HEADER, LINK_LOST_OPTIONS, options) == 0) {
        *what = "the link closed";
        return IO_CLOSED;
      }
      if (have >= need) {
        *code = be32(h);
        wire_writer_reset(body);
        wire_put_raw(body, h + FRAME_HEADER + options, length);
        if (body->failed) {
          *what = "no memory for the answer";
          return IO_CLOSED;
        }
        link->in_start += need;
        if (link->in_start == in->len) in->len = link->in_start = 0;
        return IO_OK;
      }
    }
    if (link->in_start > 0) {
      memmove(in->data, in->data + link->in_start, have);
      in->len = have;
      link->in_start = 0;
    }
    size_t room = need - have < 16384 ? 16384 : need - have;
    if (!wire_reserve(in, room)) {
      *what = "no memory for the answer";
      return IO_CLOSED;
    }
    in->len = have;
    int w = wait_for(link->fd, POLLIN, deadline);
    if (w != IO_OK) return w;
    ssize_t n = recv(link->fd, in->data + have, in->cap - have, 0);
    if (n == 0) return IO_CLOSED;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      return IO_CLOSED;
    }
    in->len = have + (size_t)n;
  }
}

void link_tell_failure(const module_config *config, const char *call, int io, const char *what) {
  client_log(config->folder, LOG_READ_FAILED);
  if (io == IO_TIMEOUT)
    client_say("%s: no answer within %d s; the link to the server is closed (sessions on it are gone); check the server, or raise the timeout", call, config->timeout_seconds);
  else
    client_say("%s: %s; the link to the server is gone (sessions on it are gone), the next call links again", call, what);
}

CK_RV link_exchange(link_t *link, wire_writer *request, wire_writer *answer, const module_config *config, const char *call) {
  if (link->fd < 0) return CKR_DEVICE_ERROR;
  if (request->failed || request->len < FRAME_HEADER) return CKR_HOST_MEMORY;
  uint32_t code = link_next_code(link), got = 0;
  int64_t deadline = link_deadline(config);
  const char *what = "the link closed";
  int io = link_send(link, request, code, deadline);
  if (io == IO_OK) io = link_read(link, deadline, &got, answer, &what);
  if (io == IO_OK && got != code) {
    what = "the answer was not a p11-kit frame for this call";
    io = IO_CLOSED;
  }
  if (io == IO_OK) return CKR_OK;
  link_close(link, 1);
  link_tell_failure(config, call, io, what);
  return CKR_DEVICE_ERROR;
}

void link_shutdown(link_t *link) {
  if (link->fd >= 0) shutdown(link->fd, SHUT_RDWR);
}

/*
 * Waits up to `ms` for the relay to end; true when it has (or is not ours to wait for). A relay
 * ends a few milliseconds after its stdin closes: checking every millisecond keeps C_Finalize
 * from waiting up to 10 ms more than that in every program (a process per signature pays it each
 * time).
 */
static int reaped(pid_t pid, int ms) {
  int64_t until = now_ms() + ms;
  for (;;) {
    pid_t r = waitpid(pid, NULL, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return 1;
    if (now_ms() >= until) return 0;
    struct timespec pause = {0, 1000 * 1000};
    nanosleep(&pause, NULL);
  }
}

void link_close(link_t *link, int reap) {
  if (link->fd >= 0) close(link->fd);
  link->fd = -1;
  link->in.len = link->in_start = 0;
  if (link->relay > 0) {
    /* The relay ends when its stdin does; a relay that lingers is ended. */
    if (reap && !reaped(link->relay, 300)) {
      kill(link->relay, SIGTERM);
      if (!reaped(link->relay, 2000)) {
        kill(link->relay, SIGKILL);
        reaped(link->relay, 2000);
      }
    }
    link->relay = 0;
  }
}

void link_forget(link_t *link) {
  if (link->fd >= 0) close(link->fd);
  link->fd = -1;
  link->relay = 0;
  wire_writer_free(&link->in);
  link->in_start = 0;
}
