// The guide's "NTLS CRASH AND BURN" for native faults. SIGSEGV, SIGILL and SIGBUS (the guide's),
// SIGFPE, SIGABRT (V8's fatal errors, running out of heap among them, call abort()) and SIGTRAP
// (V8's immediate crash) end a Node.js process before any JavaScript can run, so the handler is native: it writes the stack dump file
// ntls_bt_<YYYY-MM-DD>_<HH:MM:SS> in the log folder and the guide's line in lunalogs, then lets the
// signal end the process as it would have (status 128 + signal, a core where enabled).
//
// Everything the handler does is async-signal-safe: open, write, close, time, sigaction, raise,
// and number formatting by hand; the strings it writes (the log line's host, pid and text, the
// dump's context) are prepared by JavaScript at install time, and the local time is computed from
// a UTC offset JavaScript refreshes. backtrace_symbols_fd does not allocate; backtrace is called
// once at install so that its library is loaded before any fault.
//
// A SIGSEGV that V8's WebAssembly trap handler recognises (an out-of-bounds access by wasm code,
// which V8 turns into a JavaScript exception) is passed to it first, as Node's own handler does.
// Wrapped by src/datapath/native-crash-handler.ts.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <limits.h>
#include <node_api.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)
#define TEXT_BYTES 4096

static char dump_directory[PATH_MAX];
static char log_file[PATH_MAX];
/** Between the timestamp and the dump's path: " host  local5 crit  NTLS [pid]: info : 0 : ... saved to ". */
static char line_saved[TEXT_BYTES];
/** Between the timestamp and the newline, when no dump could be written. */
static char line_unsaved[TEXT_BYTES];
/** Written at the head of the dump: the process as JavaScript described it. */
static char context[TEXT_BYTES];
static volatile sig_atomic_t utc_offset_seconds;
static volatile sig_atomic_t echo_to_stderr;
static bool installed;
static char alternate_stack[64 * 1024];

typedef bool (*wasm_trap_handler)(int, siginfo_t *, void *);
static wasm_trap_handler try_wasm_trap;

static const int fatal_signals[] = { SIGSEGV, SIGILL, SIGBUS, SIGFPE, SIGABRT, SIGTRAP };

// --- async-signal-safe formatting ---------------------------------------------------------------

static size_t append(char *out, size_t at, size_t size, const char *text) {
  while (*text && at + 1 < size) out[at++] = *text++;
  out[at] = '\0';
  return at;
}

static size_t append_unsigned(char *out, size_t at, size_t size, uint64_t value, unsigned base, int width) {
  char digits[32];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[value % base];
    value /= base;
  } while (value && n < 32);
  while (n < width && n < 32) digits[n++] = '0';
  while (n > 0 && at + 1 < size) out[at++] = digits[--n];
  out[at] = '\0';
  return at;
}

static void write_all(int fd, const char *text, size_t length) {
  while (length > 0) {
    ssize_t written = write(fd, text, length);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;
    text += written;
    length -= (size_t) written;
  }
}

struct civil { int64_t year; unsigned month, day, hour, minute, second; };

// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
static struct civil local_time(time_t now) {
  int64_t t = (int64_t) now + utc_offset_seconds;
  int64_t days = t / 86400, rest = t % 86400;
  if (rest < 0) { rest += 86400; days--; }
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  unsigned doe = (unsigned) (days - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  struct civil c;
  c.day = doy - (153 * mp + 2) / 5 + 1;
  c.month = mp < 10 ? mp + 3 : mp - 9;
  c.year = (int64_t) yoe + era * 400 + (c.month <= 2);
  c.hour = (unsigned) (rest / 3600);
  c.minute = (unsigned) (rest / 60 % 60);
  c.second = (unsigned) (rest % 60);
  return c;
}

static const char *const month_names[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/** "2012 Feb 29 12:05:01", as lunalogs lines begin (src/log/format.ts). */
static size_t append_log_time(char *out, size_t at, size_t size, struct civil c) {
  at = append_unsigned(out, at, size, (uint64_t) c.year, 10, 4);
  at = append(out, at, size, " ");
  at = append(out, at, size, month_names[(c.month - 1) % 12]);
  at = append(out, at, size, " ");
  at = append_unsigned(out, at, size, c.day, 10, 2);
  at = append(out, at, size, " ");
  at = append_unsigned(out, at, size, c.hour, 10, 2);
  at = append(out, at, size, ":");
  at = append_unsigned(out, at, size, c.minute, 10, 2);
  at = append(out, at, size, ":");
  return append_unsigned(out, at, size, c.second, 10, 2);
}

/** "ntls_bt_2012-02-29_12:05:01", the guide's dump name (src/datapath/crash-handler.ts). */
static size_t append_dump_name(char *out, size_t at, size_t size, struct civil c) {
  at = append(out, at, size, "ntls_bt_");
  at = append_unsigned(out, at, size, (uint64_t) c.year, 10, 4);
  at = append(out, at, size, "-");
  at = append_unsigned(out, at, size, c.month, 10, 2);
  at = append(out, at, size, "-");
  at = append_unsigned(out, at, size, c.day, 10, 2);
  at = append(out, at, size, "_");
  at = append_unsigned(out, at, size, c.hour, 10, 2);
  at = append(out, at, size, ":");
  at = append_unsigned(out, at, size, c.minute, 10, 2);
  at = append(out, at, size, ":");
  return append_unsigned(out, at, size, c.second, 10, 2);
}

static const char *signal_name(int signal) {
  switch (signal) {
    case SIGSEGV: return "SIGSEGV";
    case SIGILL: return "SIGILL";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGTRAP: return "SIGTRAP";
    default: return "signal";
  }
}

static void write_log_line(const char *line, size_t length) {
  int fd = open(log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd >= 0) {
    write_all(fd, line, length);
    close(fd);
  }
  if (echo_to_stderr) write_all(STDERR_FILENO, line, length);
}

// --- the handler --------------------------------------------------------------------------------

static void on_fatal_signal(int signal, siginfo_t *info, void *ucontext) {
  int saved_errno = errno;
  if (signal == SIGSEGV && try_wasm_trap != NULL && try_wasm_trap(signal, info, ucontext)) {
    errno = saved_errno;
    return;
  }
  // From here on a second fault (in this handler) ends the process the default way.
  struct sigaction fallback;
  memset(&fallback, 0, sizeof fallback);
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) sigaction(fatal_signals[i], &fallback, NULL);

  struct civil now = local_time(time(NULL));
  char path[PATH_MAX + 64];
  size_t at = append(path, 0, sizeof path, dump_directory);
  append_dump_name(path, at, sizeof path, now);

  char line[TEXT_BYTES + PATH_MAX + 64];
  size_t length = append_log_time(line, 0, sizeof line, now);

  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) {
    length = append(line, length, sizeof line, line_unsaved);
    length = append(line, length, sizeof line, "\n");
    write_log_line(line, length);
    raise(signal);
    return;
  }
  char head[512];
  size_t h = append(head, 0, sizeof head, "NTLS stack dump\nsignal ");
  h = append_unsigned(head, h, sizeof head, (uint64_t) signal, 10, 1);
  h = append(head, h, sizeof head, " (");
  h = append(head, h, sizeof head, signal_name(signal));
  h = append(head, h, sizeof head, "), si_code ");
  h = append_unsigned(head, h, sizeof head, (uint64_t) (uint32_t) info->si_code, 10, 1);
  if (info->si_code <= 0) {
    // Sent by a process (kill, raise), not raised by a fault.
    h = append(head, h, sizeof head, ", sent by pid ");
    h = append_unsigned(head, h, sizeof head, (uint64_t) info->si_pid, 10, 1);
  } else {
    h = append(head, h, sizeof head, ", fault address 0x");
    h = append_unsigned(head, h, sizeof head, (uint64_t) (uintptr_t) info->si_addr, 16, 1);
  }
  h = append(head, h, sizeof head, "\n");
  write_all(fd, head, h);
  write_all(fd, context, strlen(context));
  write_all(fd, "\nnative stack:\n", 15);
  // The line goes out before the walk of the stack: if the walk faults in turn, the line and the
  // dump's head are there.
  length = append(line, length, sizeof line, line_saved);
  length = append(line, length, sizeof line, path);
  length = append(line, length, sizeof line, "\n");
  write_log_line(line, length);
  void *frames[64];
  int depth = backtrace(frames, 64);
  backtrace_symbols_fd(frames, depth, fd);
  close(fd);
  // Pending until the handler returns; the default action then ends the process by this signal.
  raise(signal);
}

// --- JavaScript entry points --------------------------------------------------------------------

static bool string_argument(napi_env env, napi_value value, char *out, size_t size) {
  size_t length;
  if (napi_get_value_string_utf8(env, value, out, size, &length) != napi_ok) return false;
  return length + 1 < size;
}

static napi_value named_string(napi_env env, napi_value object, const char *name, char *out, size_t size) {
  napi_value value;
  CHECK(napi_get_named_property(env, object, name, &value));
  if (!string_argument(env, value, out, size)) {
    napi_throw_type_error(env, NULL, name);
    return NULL;
  }
  return value;
}

// install({ dumpDirectory, logFile, lineSaved, lineUnsaved, context, utcOffsetSeconds, echo }):
// points the handler at this log; the first call installs it for the fatal signals above.
static napi_value install(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], value;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "install(options)");
    return NULL;
  }
  if (!named_string(env, argv[0], "dumpDirectory", dump_directory, sizeof dump_directory - 1)) return NULL;
  size_t n = strlen(dump_directory);
  if (n == 0 || dump_directory[n - 1] != '/') append(dump_directory, n, sizeof dump_directory, "/");
  if (!named_string(env, argv[0], "logFile", log_file, sizeof log_file)) return NULL;
  if (!named_string(env, argv[0], "lineSaved", line_saved, sizeof line_saved)) return NULL;
  if (!named_string(env, argv[0], "lineUnsaved", line_unsaved, sizeof line_unsaved)) return NULL;
  if (!named_string(env, argv[0], "context", context, sizeof context)) return NULL;
  int32_t offset;
  bool echo;
  CHECK(napi_get_named_property(env, argv[0], "utcOffsetSeconds", &value));
  CHECK(napi_get_value_int32(env, value, &offset));
  CHECK(napi_get_named_property(env, argv[0], "echo", &value));
  CHECK(napi_get_value_bool(env, value, &echo));
  utc_offset_seconds = offset;
  echo_to_stderr = echo;
  if (installed) return NULL;

  // Loads what backtrace needs now, not in the handler.
  void *warm[2];
  backtrace(warm, 2);
  try_wasm_trap = (wasm_trap_handler) dlsym(RTLD_DEFAULT, "_ZN2v829TryHandleWebAssemblyTrapPosixEiP9siginfo_tPv");
  stack_t stack;
  memset(&stack, 0, sizeof stack);
  stack.ss_sp = alternate_stack;
  stack.ss_size = sizeof alternate_stack;
  // A stack overflow leaves no stack to run the handler on: it runs on this one.
  sigaltstack(&stack, NULL);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_fatal_signal;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
    if (sigaction(fatal_signals[i], &action, NULL) != 0) {
      napi_throw_error(env, NULL, strerror(errno));
      return NULL;
    }
  }
  installed = true;
  return NULL;
}

// setUtcOffset(seconds): the local time's offset, refreshed by JavaScript (daylight saving).
static napi_value set_utc_offset(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t offset;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "setUtcOffset(seconds)");
    return NULL;
  }
  CHECK(napi_get_value_int32(env, argv[0], &offset));
  utc_offset_seconds = offset;
  return NULL;
}

// faultForTest(): a real invalid memory access, for the test of the handler (NTLS_FAULT_INJECTION).
static napi_value fault_for_test(napi_env env, napi_callback_info info) {
  (void) env;
  (void) info;
  // Both volatile: the compiler may drop a plain store through a null pointer, not this one.
  volatile int *volatile nowhere = NULL;
  *nowhere = 1;
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  CHECK(napi_create_function(env, "install", NAPI_AUTO_LENGTH, install, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "install", fn));
  CHECK(napi_create_function(env, "setUtcOffset", NAPI_AUTO_LENGTH, set_utc_offset, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "setUtcOffset", fn));
  CHECK(napi_create_function(env, "faultForTest", NAPI_AUTO_LENGTH, fault_for_test, NULL, &fn));
  CHECK(napi_set_named_property(env, exports, "faultForTest", fn));
  return exports;
}
