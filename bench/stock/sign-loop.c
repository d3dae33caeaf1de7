/*
 * sign-loop: a stock PKCS#11 application that signs in a loop, for benchmarks and tests.
 *
 * It dlopens the module named on the command line (p11-kit-client.so, SoftHSM2, ...) and, in
 * each of N forked processes: C_Initialize, finds the slot by token label, opens a session,
 * logs in as user, finds the private key by label, then signs as applications do, C_SignInit +
 * C_Sign each time. The processes are set up one by one, start together, sign through a warm-up,
 * then count the signatures completed in a shared window of S seconds, and go on signing for a
 * short cool-down (not counted) so that the servers' processes are still busy, and alive, when a
 * caller reads their CPU as the window closes.
 *
 * With --threads T (above 1) each process is a threaded application: C_Initialize with
 * CKF_OS_LOCKING_OK, one login, then T threads each signing on a session of its own (the first
 * on the session that logged in, the others opened after the login).
 *
 *   sign-loop --module PATH --token LABEL --pin PIN --key LABEL --mechanism ecdsa|rsa-pkcs
 *             [--seconds S] [--warmup W] [--cooldown C] [--processes N] [--threads T] [--timeout T]
 *
 *   ecdsa     CKM_ECDSA over a 32-byte digest (what bookworm's p11-kit client passes for P-256)
 *   rsa-pkcs  CKM_RSA_PKCS over a SHA-256 DigestInfo
 *
 * stdout, one JSON object a line:
 *   {"event":"measuring"}      the window opens (every process set up and warmed)
 *   {"event":"measured"}       the window closes
 *   {"event":"result",...}     signatures, elapsed, signatures/s, the processes' CPU in the window
 * A line on stderr names every failure with its CKR code; the exit status is then non-zero.
 * Every wait is bounded: set-up and each call within --timeout seconds (default 30).
 *
 * Built with the system's cc against pkcs11js's PKCS#11 headers (bench/stock/sign-loop.ts).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pkcs11.h"

#define MAX_PROCESSES 256
#define MAX_THREADS 64

struct options {
  const char *module;
  const char *token;
  const char *pin;
  const char *key;
  const char *mechanism;
  double seconds;
  double warmup;
  double cooldown;
  int processes;
  int threads;
  int timeout;
};

/* Written by the parent before the start, read by every process. */
struct window {
  int64_t start_ns;
  int64_t end_ns;
  int64_t stop_ns;
};

/* What each process reports, in memory shared with the parent. */
struct tally {
  uint64_t signatures;
  int64_t cpu_us;
  int64_t max_signature_ns;
  uint64_t signature_bytes;
  int finished;
};

static const struct { CK_RV rv; const char *name; } ckr_names[] = {
  {CKR_OK, "CKR_OK"}, {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"}, {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
  {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"}, {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
  {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"}, {CKR_CANT_LOCK, "CKR_CANT_LOCK"},
  {CKR_DATA_INVALID, "CKR_DATA_INVALID"}, {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
  {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"}, {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
  {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"}, {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
  {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"}, {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
  {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"}, {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
  {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"}, {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
  {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"}, {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
  {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"}, {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"}, {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
  {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"}, {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
  {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"}, {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
  {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"}, {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
  {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"}, {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
  {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"}, {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
  {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"}, {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
  {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
};

static const char *ckr_name(CK_RV rv) {
  for (size_t i = 0; i < sizeof ckr_names / sizeof ckr_names[0]; i++)
    if (ckr_names[i].rv == rv) return ckr_names[i].name;
  return "CKR_?";
}

/* A failed call: one line naming the call and its CKR code, and the process ends. */
static void fail_rv(int process, const char *call, CK_RV rv) {
  fprintf(stderr, "sign-loop: process %d: %s failed: CKR 0x%lx (%s)\n", process, call, (unsigned long)rv, ckr_name(rv));
  _exit(2);
}

static void fail(int process, const char *what) {
  fprintf(stderr, "sign-loop: process %d: %s\n", process, what);
  _exit(2);
}

#define CALL(process, f, args)                             \
  do {                                                     \
    CK_RV rv_ = functions->f args;                         \
    if (rv_ != CKR_OK) fail_rv(process, #f, rv_);          \
  } while (0)

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int64_t cpu_us(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return (int64_t)usage.ru_utime.tv_sec * 1000000 + usage.ru_utime.tv_usec
       + (int64_t)usage.ru_stime.tv_sec * 1000000 + usage.ru_stime.tv_usec;
}

static void sleep_until(int64_t deadline_ns) {
  struct timespec t = { .tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000 };
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR) {}
}

/* The token's label as CK_TOKEN_INFO holds it: 32 bytes, blank padded. */
static int label_matches(const CK_UTF8CHAR label[32], const char *wanted) {
  size_t n = strlen(wanted);
  if (n > 32 || memcmp(label, wanted, n) != 0) return 0;
  for (size_t i = n; i < 32; i++) if (label[i] != ' ') return 0;
  return 1;
}

/* The data: a 32-byte digest (ECDSA), or a SHA-256 DigestInfo around it (RSA PKCS #1 v1.5). */
static const CK_BYTE sha256_digest_info[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                             0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

/* One signing loop (a process's, or one of its threads'): its session, its data, what it counted. */
struct signing {
  int process;
  int thread;
  int threaded;
  CK_FUNCTION_LIST_PTR functions;
  CK_SESSION_HANDLE session;
  CK_OBJECT_HANDLE key;
  CK_MECHANISM mechanism;
  CK_BYTE data[sizeof sha256_digest_info + 32];
  CK_ULONG data_length;
  /* The first signature's length: every later one must have it. */
  CK_ULONG signature_length;
  const struct window *window;
  /* The process's only loop reads the process's CPU as it crosses the window's edges. */
  int sample_cpu;
  int64_t cpu_start;
  int64_t cpu_end;
  uint64_t count;
  int64_t max_signature_ns;
};

static void fail_signing(const struct signing *s, const char *call, CK_RV rv) {
  if (!s->threaded) fail_rv(s->process, call, rv);
  fprintf(stderr, "sign-loop: process %d thread %d: %s failed: CKR 0x%lx (%s)\n", s->process, s->thread, call,
          (unsigned long)rv, ckr_name(rv));
  _exit(2);
}

static void prepare_data(struct signing *s, const char *mechanism) {
  CK_BYTE *digest;
  s->mechanism.pParameter = NULL_PTR;
  s->mechanism.ulParameterLen = 0;
  if (strcmp(mechanism, "ecdsa") == 0) {
    s->mechanism.mechanism = CKM_ECDSA;
    digest = s->data;
    s->data_length = 32;
  } else {
    s->mechanism.mechanism = CKM_RSA_PKCS;
    memcpy(s->data, sha256_digest_info, sizeof sha256_digest_info);
    digest = s->data + sizeof sha256_digest_info;
    s->data_length = sizeof s->data;
  }
  for (int i = 0; i < 32; i++) digest[i] = (CK_BYTE)(s->process * 31 + s->thread * 131 + i);
}

/* C_SignInit + C_Sign, as applications sign; answers the signature's length. */
static CK_ULONG sign_once(const struct signing *s) {
  CK_BYTE signature[1024];
  CK_ULONG signature_length = sizeof signature;
  CK_RV rv = s->functions->C_SignInit(s->session, (CK_MECHANISM_PTR)&s->mechanism, s->key);
  if (rv != CKR_OK) fail_signing(s, "C_SignInit", rv);
  rv = s->functions->C_Sign(s->session, (CK_BYTE_PTR)s->data, s->data_length, signature, &signature_length);
  if (rv != CKR_OK) fail_signing(s, "C_Sign", rv);
  return signature_length;
}

/* Signs until the window's cool-down ends, counting the signatures completed in the window. */
static void *sign_window(void *arg) {
  struct signing *s = arg;
  int64_t start = s->window->start_ns, end = s->window->end_ns, stop = s->window->stop_ns;
  uint64_t count = 0;
  int64_t max_signature = 0;
  s->cpu_start = -1;
  s->cpu_end = -1;
  for (;;) {
    int64_t before = now_ns();
    if (before >= stop) break;
    if (s->sample_cpu && s->cpu_start < 0 && before >= start) s->cpu_start = cpu_us();
    if (s->sample_cpu && s->cpu_end < 0 && before >= end) s->cpu_end = cpu_us();
    CK_ULONG signature_length = sign_once(s);
    int64_t after = now_ns();
    if (signature_length != s->signature_length) {
      fprintf(stderr, "sign-loop: process %d thread %d: C_Sign answered a signature of another length\n", s->process, s->thread);
      _exit(2);
    }
    if (after >= start && after < end) {
      count++;
      if (after - before > max_signature) max_signature = after - before;
    }
  }
  if (s->sample_cpu && s->cpu_end < 0) s->cpu_end = cpu_us();
  s->count = count;
  s->max_signature_ns = max_signature;
  return NULL;
}

/* One process: set up, report ready, wait for the start, sign until the window closes. */
static void signer(int process, const struct options *o, int ready_fd, int go_fd,
                   const struct window *window, struct tally *tally) {
  alarm((unsigned)o->timeout);
  void *library = dlopen(o->module, RTLD_NOW | RTLD_LOCAL);
  if (library == NULL) {
    fprintf(stderr, "sign-loop: process %d: cannot load %s: %s\n", process, o->module, dlerror());
    _exit(2);
  }
  CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(library, "C_GetFunctionList");
  if (get == NULL) fail(process, "the module has no C_GetFunctionList");
  CK_FUNCTION_LIST_PTR functions = NULL;
  CK_RV rv = get(&functions);
  if (rv != CKR_OK) fail_rv(process, "C_GetFunctionList", rv);

  /* A threaded application tells the module to lock with the system's primitives. */
  CK_C_INITIALIZE_ARGS os_locking = {NULL_PTR, NULL_PTR, NULL_PTR, NULL_PTR, CKF_OS_LOCKING_OK, NULL_PTR};
  CALL(process, C_Initialize, (o->threads > 1 ? &os_locking : NULL_PTR));
  CK_SLOT_ID slots[64];
  CK_ULONG slot_count = 64;
  CALL(process, C_GetSlotList, (CK_TRUE, slots, &slot_count));
  CK_SLOT_ID slot = 0;
  int found = 0;
  for (CK_ULONG i = 0; i < slot_count && !found; i++) {
    CK_TOKEN_INFO info;
    CALL(process, C_GetTokenInfo, (slots[i], &info));
    if (label_matches(info.label, o->token)) {
      slot = slots[i];
      found = 1;
    }
  }
  if (!found) {
    fprintf(stderr, "sign-loop: process %d: no token labelled \"%s\" among %lu slot(s): CKR 0x%lx (CKR_TOKEN_NOT_PRESENT)\n",
            process, o->token, (unsigned long)slot_count, (unsigned long)CKR_TOKEN_NOT_PRESENT);
    _exit(2);
  }
  CK_SESSION_HANDLE session;
  CALL(process, C_OpenSession, (slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL_PTR, NULL_PTR, &session));
  rv = functions->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)o->pin, strlen(o->pin));
  if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) fail_rv(process, "C_Login", rv);

  CK_OBJECT_CLASS private_key = CKO_PRIVATE_KEY;
  CK_ATTRIBUTE template[] = {
    {CKA_CLASS, &private_key, sizeof private_key},
    {CKA_LABEL, (void *)o->key, strlen(o->key)},
  };
  CK_OBJECT_HANDLE key;
  CK_ULONG key_count = 0;
  CALL(process, C_FindObjectsInit, (session, template, 2));
  CALL(process, C_FindObjects, (session, &key, 1, &key_count));
  CALL(process, C_FindObjectsFinal, (session));
  if (key_count == 0) {
    fprintf(stderr, "sign-loop: process %d: no private key labelled \"%s\" on token \"%s\"\n", process, o->key, o->token);
    _exit(2);
  }

  /* A session per thread: the first is the one that logged in; the login holds for the others. */
  struct signing signings[MAX_THREADS];
  for (int t = 0; t < o->threads; t++) {
    struct signing *s = &signings[t];
    memset(s, 0, sizeof *s);
    s->process = process;
    s->thread = t;
    s->threaded = o->threads > 1;
    s->functions = functions;
    s->session = session;
    if (t > 0) CALL(process, C_OpenSession, (slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL_PTR, NULL_PTR, &s->session));
    s->key = key;
    s->window = window;
    s->sample_cpu = o->threads == 1;
    prepare_data(s, o->mechanism);
    /* One signature before the start, so that a wrong key or mechanism fails during set-up. */
    s->signature_length = sign_once(s);
  }
  tally->signature_bytes = signings[0].signature_length;

  if (write(ready_fd, "r", 1) != 1) fail(process, "cannot report ready to the parent");
  close(ready_fd);
  char byte;
  /* The parent closes the go pipe once the window is set: read() answers 0 then. */
  while (read(go_fd, &byte, 1) < 0 && errno == EINTR) {}
  close(go_fd);

  alarm((unsigned)((window->stop_ns - now_ns()) / 1000000000) + (unsigned)o->timeout + 1);
  int64_t cpu_start, cpu_end;
  if (o->threads == 1) {
    sign_window(&signings[0]);
    cpu_start = signings[0].cpu_start;
    cpu_end = signings[0].cpu_end;
  } else {
    /* The threads sign; this one reads the process's CPU (every thread's) at the window's edges. */
    pthread_t threads[MAX_THREADS];
    for (int t = 0; t < o->threads; t++)
      if (pthread_create(&threads[t], NULL, sign_window, &signings[t]) != 0) fail(process, "cannot start a signing thread");
    sleep_until(window->start_ns);
    cpu_start = cpu_us();
    sleep_until(window->end_ns);
    cpu_end = cpu_us();
    for (int t = 0; t < o->threads; t++) pthread_join(threads[t], NULL);
  }
  uint64_t count = 0;
  int64_t max_signature = 0;
  for (int t = 0; t < o->threads; t++) {
    count += signings[t].count;
    if (signings[t].max_signature_ns > max_signature) max_signature = signings[t].max_signature_ns;
  }
  tally->signatures = count;
  tally->cpu_us = cpu_start < 0 ? 0 : cpu_end - cpu_start;
  tally->max_signature_ns = max_signature;
  alarm((unsigned)o->timeout);
  for (int t = o->threads - 1; t >= 1; t--) CALL(process, C_CloseSession, (signings[t].session));
  CALL(process, C_CloseSession, (session));
  CALL(process, C_Finalize, (NULL_PTR));
  tally->finished = 1;
  _exit(0);
}

static pid_t children[MAX_PROCESSES];
static int child_count;

static void kill_children(void) {
  for (int i = 0; i < child_count; i++) if (children[i] > 0) kill(children[i], SIGKILL);
  for (int i = 0; i < child_count; i++) if (children[i] > 0) waitpid(children[i], NULL, 0);
}

/* A child that ended: fine only when it finished its work and exited 0. */
static void check_exit(pid_t pid, int status, int must_have_finished, const struct tally *tallies) {
  int index = -1;
  for (int i = 0; i < child_count; i++) if (children[i] == pid) index = i;
  if (index < 0) return;
  children[index] = 0;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && (!must_have_finished || tallies[index].finished)) return;
  if (WIFSIGNALED(status))
    fprintf(stderr, "sign-loop: process %d ended by signal %d%s\n", index, WTERMSIG(status),
            WTERMSIG(status) == SIGALRM ? " (a call took longer than --timeout)" : "");
  else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    fprintf(stderr, "sign-loop: process %d exited before the window\n", index);
  kill_children();
  exit(2);
}

static void usage(const char *why) {
  fprintf(stderr, "sign-loop: %s\n"
                  "usage: sign-loop --module PATH --token LABEL --pin PIN --key LABEL --mechanism ecdsa|rsa-pkcs\n"
                  "                 [--seconds S] [--warmup W] [--cooldown C] [--processes N] [--threads T] [--timeout T]\n", why);
  exit(64);
}

static void print_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
    else putchar(*s);
  }
  putchar('"');
}

int main(int argc, char **argv) {
  struct options o = {NULL, NULL, NULL, NULL, NULL, 5, 1, 0.25, 1, 1, 30};
  static const struct option long_options[] = {
    {"module", required_argument, NULL, 'm'}, {"token", required_argument, NULL, 't'},
    {"pin", required_argument, NULL, 'p'}, {"key", required_argument, NULL, 'k'},
    {"mechanism", required_argument, NULL, 'M'}, {"seconds", required_argument, NULL, 's'},
    {"warmup", required_argument, NULL, 'w'}, {"cooldown", required_argument, NULL, 'c'}, {"processes", required_argument, NULL, 'n'},
    {"threads", required_argument, NULL, 'h'}, {"timeout", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
  };
  int c;
  while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
    switch (c) {
      case 'm': o.module = optarg; break;
      case 't': o.token = optarg; break;
      case 'p': o.pin = optarg; break;
      case 'k': o.key = optarg; break;
      case 'M': o.mechanism = optarg; break;
      case 's': o.seconds = atof(optarg); break;
      case 'w': o.warmup = atof(optarg); break;
      case 'c': o.cooldown = atof(optarg); break;
      case 'n': o.processes = atoi(optarg); break;
      case 'h': o.threads = atoi(optarg); break;
      case 'T': o.timeout = atoi(optarg); break;
      default: usage("unknown option");
    }
  }
  if (optind != argc) usage("unexpected argument");
  if (!o.module || !o.token || !o.pin || !o.key || !o.mechanism) usage("--module, --token, --pin, --key and --mechanism are required");
  if (strcmp(o.mechanism, "ecdsa") != 0 && strcmp(o.mechanism, "rsa-pkcs") != 0) usage("--mechanism is ecdsa or rsa-pkcs");
  if (!(o.seconds > 0 && o.seconds <= 3600)) usage("--seconds is a number of seconds above 0 (at most 3600)");
  if (!(o.warmup >= 0 && o.warmup <= 600)) usage("--warmup is a number of seconds from 0 to 600");
  if (!(o.cooldown >= 0 && o.cooldown <= 600)) usage("--cooldown is a number of seconds from 0 to 600");
  if (o.processes < 1 || o.processes > MAX_PROCESSES) usage("--processes is 1 to 256");
  if (o.threads < 1 || o.threads > MAX_THREADS) usage("--threads is 1 to 64");
  if (o.timeout < 1 || o.timeout > 3600) usage("--timeout is 1 to 3600 seconds");

  struct window *window = mmap(NULL, sizeof *window, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  struct tally *tallies = mmap(NULL, sizeof *tallies * (size_t)o.processes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (window == MAP_FAILED || tallies == MAP_FAILED) { perror("sign-loop: mmap"); return 2; }
  memset(tallies, 0, sizeof *tallies * (size_t)o.processes);
  int ready[2], go[2];
  if (pipe(ready) != 0 || pipe(go) != 0) { perror("sign-loop: pipe"); return 2; }
  fflush(NULL);

  /*
   * The processes are set up one after the other (each within --timeout): SoftHSM2 processes
   * that C_Initialize and C_Login at the same moment on one token folder trip over each other.
   */
  for (int i = 0; i < o.processes; i++) {
    pid_t pid = fork();
    if (pid < 0) { perror("sign-loop: fork"); kill_children(); return 2; }
    if (pid == 0) {
      close(ready[0]);
      close(go[1]);
      signer(i, &o, ready[1], go[0], window, tallies + i);
    }
    children[child_count++] = pid;
    int64_t setup_deadline = now_ns() + (int64_t)o.timeout * 1000000000;
    for (int ready_now = 0; !ready_now;) {
      int status;
      pid_t ended;
      while ((ended = waitpid(-1, &status, WNOHANG)) > 0) check_exit(ended, status, 1, tallies);
      if (now_ns() > setup_deadline) {
        fprintf(stderr, "sign-loop: process %d not set up within %d s\n", i, o.timeout);
        kill_children();
        return 2;
      }
      struct pollfd p = {ready[0], POLLIN, 0};
      char byte;
      if (poll(&p, 1, 100) > 0 && read(ready[0], &byte, 1) == 1) ready_now = 1;
    }
  }
  close(ready[1]);
  close(go[0]);

  int64_t start = now_ns() + (int64_t)(o.warmup * 1e9);
  window->start_ns = start;
  window->end_ns = start + (int64_t)(o.seconds * 1e9);
  window->stop_ns = window->end_ns + (int64_t)(o.cooldown * 1e9);
  close(go[1]);
  sleep_until(window->start_ns);
  printf("{\"event\":\"measuring\"}\n");
  fflush(stdout);
  sleep_until(window->end_ns);
  printf("{\"event\":\"measured\"}\n");
  fflush(stdout);

  int64_t finish_deadline = window->stop_ns + (int64_t)o.timeout * 1000000000;
  for (;;) {
    int status;
    pid_t ended = waitpid(-1, &status, WNOHANG);
    if (ended > 0) { check_exit(ended, status, 1, tallies); continue; }
    if (ended < 0 && errno == ECHILD) break;
    if (now_ns() > finish_deadline) {
      fprintf(stderr, "sign-loop: processes still running %d s after the window\n", o.timeout);
      kill_children();
      return 2;
    }
    usleep(10000);
  }

  uint64_t signatures = 0;
  int64_t cpu = 0, max_signature = 0;
  for (int i = 0; i < o.processes; i++) {
    signatures += tallies[i].signatures;
    cpu += tallies[i].cpu_us;
    if (tallies[i].max_signature_ns > max_signature) max_signature = tallies[i].max_signature_ns;
  }
  double elapsed = (double)(window->end_ns - window->start_ns) / 1e9;
  printf("{\"event\":\"result\",\"module\":");
  print_string(o.module);
  printf(",\"token\":");
  print_string(o.token);
  printf(",\"key\":");
  print_string(o.key);
  printf(",\"mechanism\":\"%s\",\"processes\":%d,\"threads\":%d,\"signatures\":%llu,\"elapsedSeconds\":%.6f,"
         "\"signaturesPerSecond\":%.1f,\"cpuSeconds\":%.6f,\"maxSignatureMs\":%.3f,\"signatureBytes\":%llu,\"perProcess\":[",
         o.mechanism, o.processes, o.threads, (unsigned long long)signatures, elapsed, (double)signatures / elapsed,
         (double)cpu / 1e6, (double)max_signature / 1e6, (unsigned long long)tallies[0].signature_bytes);
  for (int i = 0; i < o.processes; i++) printf("%s%llu", i ? "," : "", (unsigned long long)tallies[i].signatures);
  printf("]}\n");
  fflush(stdout);
  return 0;
}
