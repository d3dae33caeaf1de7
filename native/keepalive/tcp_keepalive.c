// TCP keepalive probe settings for an open socket. Node's socket.setKeepAlive() sets only the
// idle time (TCP_KEEPIDLE); the daemon also needs TCP_KEEPINTVL and TCP_KEEPCNT from its
// configuration, which only setsockopt(2) reaches. Wrapped by src/datapath/tcp-keepalive.ts.
// getNoDelay reads TCP_NODELAY back, for the tests that keep Nagle off every request path.
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <string.h>
#include <sys/socket.h>

#ifndef TCP_KEEPIDLE
#define TCP_KEEPIDLE TCP_KEEPALIVE /* macOS name of the same option */
#endif

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

// Throws an Error carrying errno and syscall, as Node's own system errors do.
static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  napi_value message, error, errno_value, syscall_value;
  CHECK(napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &message));
  CHECK(napi_create_error(env, NULL, message, &error));
  CHECK(napi_create_int32(env, err, &errno_value));
  CHECK(napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value));
  CHECK(napi_set_named_property(env, error, "errno", errno_value));
  CHECK(napi_set_named_property(env, error, "syscall", syscall_value));
  napi_throw(env, error);
  return NULL;
}

static int set_int(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

static int get_int(int fd, int level, int name, int *value) {
  socklen_t length = sizeof *value;
  return getsockopt(fd, level, name, value, &length);
}

// setKeepAliveProbes(fd, idleSeconds, intervalSeconds, count): enables SO_KEEPALIVE and sets
// TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT.
static napi_value set_keepalive_probes(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t fd, idle, interval, count;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "setKeepAliveProbes(fd, idle, interval, count)");
    return NULL;
  }
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[1], &idle));
  CHECK(napi_get_value_int32(env, argv[2], &interval));
  CHECK(napi_get_value_int32(env, argv[3], &count));
  if (set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1) != 0) return throw_errno(env, "setsockopt SO_KEEPALIVE", errno);
  if (set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle) != 0) return throw_errno(env, "setsockopt TCP_KEEPIDLE", errno);
  if (set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval) != 0) return throw_errno(env, "setsockopt TCP_KEEPINTVL", errno);
  if (set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, count) != 0) return throw_errno(env, "setsockopt TCP_KEEPCNT", errno);
  return NULL;
}

// getKeepAliveProbes(fd) -> { enabled, idle, interval, count }, read back with getsockopt.
static napi_value get_keepalive_probes(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, value;
  int32_t fd;
  int enabled, idle, interval, count;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "getKeepAliveProbes(fd)");
    return NULL;
  }
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (get_int(fd, SOL_SOCKET, SO_KEEPALIVE, &enabled) != 0) return throw_errno(env, "getsockopt SO_KEEPALIVE", errno);
  if (get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle) != 0) return throw_errno(env, "getsockopt TCP_KEEPIDLE", errno);
  if (get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval) != 0) return throw_errno(env, "getsockopt TCP_KEEPINTVL", errno);
  if (get_int(fd, IPPROTO_TCP, TCP_KEEPCNT, &count) != 0) return throw_errno(env, "getsockopt TCP_KEEPCNT", errno);
  CHECK(napi_create_object(env, &result));
  CHECK(napi_get_boolean(env, enabled != 0, &value));
  CHECK(napi_set_named_property(env, result, "enabled", value));
  CHECK(napi_create_int32(env, idle, &value));
  CHECK(napi_set_named_property(env, result, "idle", value));
  CHECK(napi_create_int32(env, interval, &value));
  CHECK(napi_set_named_property(env, result, "interval", value));
  CHECK(napi_create_int32(env, count, &value));
  CHECK(napi_set_named_property(env, result, "count", value));
  return result;
}

// getNoDelay(fd) -> boolean: TCP_NODELAY, read back with getsockopt.
static napi_value get_no_delay(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  int enabled;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "getNoDelay(fd)");
    return NULL;
  }
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (get_int(fd, IPPROTO_TCP, TCP_NODELAY, &enabled) != 0) return throw_errno(env, "getsockopt TCP_NODELAY", errno);
  CHECK(napi_get_boolean(env, enabled != 0, &result));
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  CHECK(napi_create_function(env, "setKeepAliveProbes", NAPI_AUTO_LENGTH, set_keepalive_probes, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "setKeepAliveProbes", fn));
  CHECK(napi_create_function(env, "getKeepAliveProbes", NAPI_AUTO_LENGTH, get_keepalive_probes, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "getKeepAliveProbes", fn));
  CHECK(napi_create_function(env, "getNoDelay", NAPI_AUTO_LENGTH, get_no_delay, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "getNoDelay", fn));
  return exports;
}
