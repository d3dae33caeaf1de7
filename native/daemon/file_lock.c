// flock(2) for the daemon's home: the running daemon holds an exclusive lock on its pid file, so
// the kernel itself says whether a daemon lives (the lock goes when the process ends, however it
// ends: kill -9 included, and before it is reaped) and a pid reused by another program misleads
// nothing. Wrapped by src/daemon/home-lock.ts.
#include <errno.h>
#include <node_api.h>
#include <string.h>
#include <sys/file.h>

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

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

// tryLock(fd, exclusive) -> true when taken, false when another open file holds it (never waits).
static napi_value try_lock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  int32_t fd;
  bool exclusive;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "tryLock(fd, exclusive)");
    return NULL;
  }
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_bool(env, argv[1], &exclusive));
  int rc;
  do {
    rc = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EWOULDBLOCK) return throw_errno(env, "flock", errno);
  CHECK(napi_get_boolean(env, rc == 0, &result));
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  CHECK(napi_create_function(env, "tryLock", NAPI_AUTO_LENGTH, try_lock, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "tryLock", fn));
  return exports;
}
