/*
 * libntls-pkcs11.so: the module's state, its lock, C_Initialize / C_Finalize, the function lists
 * and interfaces, and the machinery of one call over the link (rpc.h). The forwarded calls are
 * in calls.c.
 *
 * Threads: the calls of several threads are in flight on the one link at once, as p11-kit's own
 * client has them: each call writes its frame whole (one writer at a time) under a code of its
 * own, and whichever waiting thread holds the reader's turn reads answers and hands each to the
 * call with its code. A short lock guards the link, the sessions and the waiting calls; nobody
 * holds it while waiting on the socket. An application that gives its own mutex callbacks without
 * CKF_OS_LOCKING_OK gets its calls one at a time under its mutex. Fork: the state remembers the
 * process that initialised it; in a child every call answers CKR_CRYPTOKI_NOT_INITIALIZED until
 * the child calls C_Initialize, which drops the parent's link without touching it and links
 * anew.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attribute.h"
#include "clientlog.h"
#include "config.h"
#include "link.h"
#include "mechanism.h"
#include "rpc.h"

#define EXPORT __attribute__((visibility("default")))

/* Request and answer signatures (docs/p11kit-rpc.md §6), by call id. */
static const struct {
  const char *name;
  const char *request;
  const char *answer;
} CALLS[CALL_COUNT] = {
  [CALL_C_INITIALIZE] = {"C_Initialize", "ayyay", ""},
  [CALL_C_FINALIZE] = {"C_Finalize", "", ""},
  [CALL_C_GET_SLOT_LIST] = {"C_GetSlotList", "yfu", "au"},
  [CALL_C_GET_SLOT_INFO] = {"C_GetSlotInfo", "u", "ssuvv"},
  [CALL_C_GET_TOKEN_INFO] = {"C_GetTokenInfo", "u", "ssssuuuuuuuuuuuvvs"},
  [CALL_C_GET_MECHANISM_LIST] = {"C_GetMechanismList", "ufu", "au"},
  [CALL_C_GET_MECHANISM_INFO] = {"C_GetMechanismInfo", "uu", "uuu"},
  [CALL_C_INIT_TOKEN] = {"C_InitToken", "uayz", ""},
  [CALL_C_OPEN_SESSION] = {"C_OpenSession", "uu", "u"},
  [CALL_C_CLOSE_SESSION] = {"C_CloseSession", "u", ""},
  [CALL_C_CLOSE_ALL_SESSIONS] = {"C_CloseAllSessions", "u", ""},
  [CALL_C_GET_SESSION_INFO] = {"C_GetSessionInfo", "u", "uuuu"},
  [CALL_C_INIT_PIN] = {"C_InitPIN", "uay", ""},
  [CALL_C_SET_PIN] = {"C_SetPIN", "uayay", ""},
  [CALL_C_GET_OPERATION_STATE] = {"C_GetOperationState", "ufy", "ay"},
  [CALL_C_SET_OPERATION_STATE] = {"C_SetOperationState", "uayuu", ""},
  [CALL_C_LOGIN] = {"C_Login", "uuay", ""},
  [CALL_C_LOGOUT] = {"C_Logout", "u", ""},
  [CALL_C_CREATE_OBJECT] = {"C_CreateObject", "uaA", "u"},
  [CALL_C_COPY_OBJECT] = {"C_CopyObject", "uuaA", "u"},
  [CALL_C_DESTROY_OBJECT] = {"C_DestroyObject", "uu", ""},
  [CALL_C_GET_OBJECT_SIZE] = {"C_GetObjectSize", "uu", "u"},
  [CALL_C_GET_ATTRIBUTE_VALUE] = {"C_GetAttributeValue", "uufA", "aAu"},
  [CALL_C_SET_ATTRIBUTE_VALUE] = {"C_SetAttributeValue", "uuaA", ""},
  [CALL_C_FIND_OBJECTS_INIT] = {"C_FindObjectsInit", "uaA", ""},
  [CALL_C_FIND_OBJECTS] = {"C_FindObjects", "ufu", "au"},
  [CALL_C_FIND_OBJECTS_FINAL] = {"C_FindObjectsFinal", "u", ""},
  [CALL_C_ENCRYPT_INIT] = {"C_EncryptInit", "uMu", ""},
  [CALL_C_ENCRYPT] = {"C_Encrypt", "uayfy", "ay"},
  [CALL_C_ENCRYPT_UPDATE] = {"C_EncryptUpdate", "uayfy", "ay"},
  [CALL_C_ENCRYPT_FINAL] = {"C_EncryptFinal", "ufy", "ay"},
  [CALL_C_DECRYPT_INIT] = {"C_DecryptInit", "uMu", ""},
  [CALL_C_DECRYPT] = {"C_Decrypt", "uayfy", "ay"},
  [CALL_C_DECRYPT_UPDATE] = {"C_DecryptUpdate", "uayfy", "ay"},
  [CALL_C_DECRYPT_FINAL] = {"C_DecryptFinal", "ufy", "ay"},
  [CALL_C_DIGEST_INIT] = {"C_DigestInit", "uM", ""},
  [CALL_C_DIGEST] = {"C_Digest", "uayfy", "ay"},
  [CALL_C_DIGEST_UPDATE] = {"C_DigestUpdate", "uay", ""},
  [CALL_C_DIGEST_KEY] = {"C_DigestKey", "uu", ""},
  [CALL_C_DIGEST_FINAL] = {"C_DigestFinal", "ufy", "ay"},
  [CALL_C_SIGN_INIT] = {"C_SignInit", "uMu", ""},
  [CALL_C_SIGN] = {"C_Sign", "uayfy", "ay"},
  [CALL_C_SIGN_UPDATE] = {"C_SignUpdate", "uay", ""},
  [CALL_C_SIGN_FINAL] = {"C_SignFinal", "ufy", "ay"},
  [CALL_C_SIGN_RECOVER_INIT] = {"C_SignRecoverInit", "uMu", ""},
  [CALL_C_SIGN_RECOVER] = {"C_SignRecover", "uayfy", "ay"},
  [CALL_C_VERIFY_INIT] = {"C_VerifyInit", "uMu", ""},
  [CALL_C_VERIFY] = {"C_Verify", "uayay", ""},
  [CALL_C_VERIFY_UPDATE] = {"C_VerifyUpdate", "uay", ""},
  [CALL_C_VERIFY_FINAL] = {"C_VerifyFinal", "uay", ""},
  [CALL_C_VERIFY_RECOVER_INIT] = {"C_VerifyRecoverInit", "uMu", ""},
  [CALL_C_VERIFY_RECOVER] = {"C_VerifyRecover", "uayfy", "ay"},
  [CALL_C_DIGEST_ENCRYPT_UPDATE] = {"C_DigestEncryptUpdate", "uayfy", "ay"},
  [CALL_C_DECRYPT_DIGEST_UPDATE] = {"C_DecryptDigestUpdate", "uayfy", "ay"},
  [CALL_C_SIGN_ENCRYPT_UPDATE] = {"C_SignEncryptUpdate", "uayfy", "ay"},
  [CALL_C_DECRYPT_VERIFY_UPDATE] = {"C_DecryptVerifyUpdate", "uayfy", "ay"},
  [CALL_C_GENERATE_KEY] = {"C_GenerateKey", "uMaA", "u"},
  [CALL_C_GENERATE_KEY_PAIR] = {"C_GenerateKeyPair", "uMaAaA", "uu"},
  [CALL_C_WRAP_KEY] = {"C_WrapKey", "uMuufy", "ay"},
  [CALL_C_UNWRAP_KEY] = {"C_UnwrapKey", "uMuayaA", "u"},
  [CALL_C_DERIVE_KEY] = {"C_DeriveKey", "uMuaA", "u"},
  [CALL_C_SEED_RANDOM] = {"C_SeedRandom", "uay", ""},
  [CALL_C_GENERATE_RANDOM] = {"C_GenerateRandom", "ufy", "ay"},
  [CALL_C_LOGIN_USER] = {"C_LoginUser", "uuayay", ""},
  [CALL_C_SESSION_CANCEL] = {"C_SessionCancel", "uu", ""},
  [CALL_C_INIT_TOKEN2] = {"C_InitToken2", "uays", ""},
};

static const unsigned char HANDSHAKE[] = "PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1";

/* After a failed attempt to link, calls fail at once for this long before the next attempt. */
#define RELINK_PAUSE_SECONDS 1

/* The application's mutex, when it gives its callbacks without CKF_OS_LOCKING_OK: whole calls under it. */
typedef struct {
  CK_C_INITIALIZE_ARGS app;
  void *app_mutex;
  int use_app;
} call_lock;

/* Sessions of the current link: open addressing, handle -> slot. */
typedef struct {
  CK_SESSION_HANDLE *handles; /* 0 = empty, RPC_NO_SESSION = removed */
  CK_SLOT_ID *slots;
  size_t size, used;
} session_table;

/* A call waiting for its answer: the reader of the moment hands it over. */
typedef struct waiter {
  uint32_t code;
  int done;          /* the answer's body is in *body */
  wire_writer *body;
  struct waiter *next;
} waiter;

/* Under state_lock, except `initialized` (atomics) and what the reader's turn owns. */
static struct {
  int initialized; /* read without the lock: atomics */
  pid_t pid;       /* the process that initialised */
  call_lock lock;
  module_config config;
  link_t link;
  unsigned generation; /* counts links; a call belongs to the link it began on */
  int broken;          /* the link failed: its calls end, and it closes when the last has */
  int in_flight;       /* calls between rpc_begin and rpc_end */
  int reading;         /* a thread has the reader's turn */
  int64_t heard_until; /* the receive timeout from the last answer read (link_deadline) */
  wire_writer scratch; /* the reader's: the frame just read */
  waiter *waiters;
  time_t relink_after;
  session_table sessions;
} g;

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
/* One frame on the socket at a time. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;
/* An answer handed over, the reader's turn free, the link broken, or the last call ended. */
static pthread_cond_t changed;

/* Serialises C_Initialize and C_Finalize; made anew in a forked child. */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t setup_once = PTHREAD_ONCE_INIT;

static void make_changed(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&changed, &attr);
  pthread_condattr_destroy(&attr);
}

/* A parent's thread may have held any of them at the fork: the child has one thread. */
static void in_child_after_fork(void) {
  pthread_mutex_init(&init_lock, NULL);
  pthread_mutex_init(&state_lock, NULL);
  pthread_mutex_init(&write_lock, NULL);
  make_changed();
}

static void setup(void) {
  make_changed();
  pthread_atfork(NULL, NULL, in_child_after_fork);
}

static int is_initialized(void) {
  return __atomic_load_n(&g.initialized, __ATOMIC_ACQUIRE) && g.pid == getpid();
}

CK_RV module_ready(void) {
  return is_initialized() ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* --- the application's lock ------------------------------------------------------------------- */

static CK_RV lock_create(call_lock *l, const CK_C_INITIALIZE_ARGS *args) {
  l->use_app = args && args->CreateMutex && !(args->flags & CKF_OS_LOCKING_OK);
  if (!l->use_app) return CKR_OK;
  l->app = *args;
  return l->app.CreateMutex(&l->app_mutex) == CKR_OK ? CKR_OK : CKR_CANT_LOCK;
}

static void lock_destroy(call_lock *l) {
  if (l->use_app) l->app.DestroyMutex(l->app_mutex);
}

static CK_RV lock_take(call_lock *l) {
  if (!l->use_app) return CKR_OK;
  return l->app.LockMutex(l->app_mutex) == CKR_OK ? CKR_OK : CKR_CANT_LOCK;
}

static void lock_give(call_lock *l) {
  if (l->use_app) l->app.UnlockMutex(l->app_mutex);
}

/* --- sessions of the link ------------------------------------------------------------------ */

static size_t slot_of(const session_table *t, CK_SESSION_HANDLE h) {
  return (size_t)(h * 0x9E3779B97F4A7C15ull >> 20) & (t->size - 1);
}

static void sessions_clear(void) {
  free(g.sessions.handles);
  free(g.sessions.slots);
  memset(&g.sessions, 0, sizeof g.sessions);
}

static int sessions_has(CK_SESSION_HANDLE h) {
  const session_table *t = &g.sessions;
  if (t->size == 0 || h == 0 || h == RPC_NO_SESSION) return 0;
  for (size_t i = slot_of(t, h), n = 0; n < t->size; i = (i + 1) & (t->size - 1), n++) {
    if (t->handles[i] == h) return 1;
    if (t->handles[i] == 0) return 0;
  }
  return 0;
}

static void sessions_insert(session_table *t, CK_SESSION_HANDLE h, CK_SLOT_ID slot) {
  size_t i = slot_of(t, h);
  while (t->handles[i] != 0 && t->handles[i] != RPC_NO_SESSION) i = (i + 1) & (t->size - 1);
  if (t->handles[i] == 0) t->used++;
  t->handles[i] = h;
  t->slots[i] = slot;
}

/* A table sized for the live sessions (removed ones are dropped on the way). */
static void sessions_rebuild(void) {
  session_table old = g.sessions, fresh = {0};
  size_t live = 0;
  for (size_t i = 0; i < old.size; i++) live += old.handles[i] != 0 && old.handles[i] != RPC_NO_SESSION;
  fresh.size = 64;
  while (fresh.size < (live + 1) * 4) fresh.size *= 2;
  fresh.handles = calloc(fresh.size, sizeof *fresh.handles);
  fresh.slots = calloc(fresh.size, sizeof *fresh.slots);
  if (!fresh.handles || !fresh.slots) {
    free(fresh.handles);
    free(fresh.slots);
    return;
  }
  for (size_t i = 0; i < old.size; i++)
    if (old.handles[i] != 0 && old.handles[i] != RPC_NO_SESSION) sessions_insert(&fresh, old.handles[i], old.slots[i]);
  free(old.handles);
  free(old.slots);
  g.sessions = fresh;
}

/* A session opened by a call on a link that has since failed is not added: that link is gone. */
void sessions_add(const rpc_call *c, CK_SESSION_HANDLE h, CK_SLOT_ID slot) {
  pthread_mutex_lock(&state_lock);
  if (h != 0 && h != RPC_NO_SESSION && c->generation == g.generation && !g.broken && !sessions_has(h)) {
    if ((g.sessions.used + 1) * 2 > g.sessions.size) sessions_rebuild();
    if (g.sessions.size != 0) sessions_insert(&g.sessions, h, slot);
  }
  pthread_mutex_unlock(&state_lock);
}

void sessions_remove(CK_SESSION_HANDLE h) {
  pthread_mutex_lock(&state_lock);
  session_table *t = &g.sessions;
  for (size_t i = t->size ? slot_of(t, h) : 0, n = 0; n < t->size; i = (i + 1) & (t->size - 1), n++) {
    if (t->handles[i] == h) {
      t->handles[i] = RPC_NO_SESSION; /* a tombstone keeps probe chains whole; `used` counts it until a rebuild */
      break;
    }
    if (t->handles[i] == 0) break;
  }
  pthread_mutex_unlock(&state_lock);
}

void sessions_remove_slot(CK_SLOT_ID slot) {
  pthread_mutex_lock(&state_lock);
  session_table *t = &g.sessions;
  for (size_t i = 0; i < t->size; i++)
    if (t->handles[i] != 0 && t->handles[i] != RPC_NO_SESSION && t->slots[i] == slot) t->handles[i] = RPC_NO_SESSION;
  pthread_mutex_unlock(&state_lock);
}

/* --- one call ---------------------------------------------------------------------------- */

static CK_RV initialize_remote(void);

/*
 * The link, up, for a new call (state_lock held). A failed link's calls end at once (its socket
 * is shut), and the last of them closes it; then it links again, at most once per
 * RELINK_PAUSE_SECONDS after a failed attempt.
 */
static CK_RV ensure_link(void) {
  while (g.broken) pthread_cond_wait(&changed, &state_lock);
  /* C_Finalize may have run meanwhile. */
  if (!is_initialized()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (g.link.fd >= 0) return CKR_OK;
  time_t now = time(NULL);
  if (now < g.relink_after) return CKR_DEVICE_ERROR;
  CK_RV rv = link_open(&g.link, &g.config);
  if (rv == CKR_OK) rv = initialize_remote();
  if (rv != CKR_OK) {
    g.relink_after = time(NULL) + RELINK_PAUSE_SECONDS;
  } else {
    g.generation++;
    g.heard_until = 0;
  }
  return rv;
}

/* The link failed under `call` (state_lock held): told once, its sessions forgotten, its calls woken. */
static void link_failed(const char *call, int io, const char *what) {
  if (g.broken) return;
  g.broken = 1;
  link_shutdown(&g.link);
  sessions_clear();
  link_tell_failure(&g.config, call, io, what);
  pthread_cond_broadcast(&changed);
}

static void begin_message(rpc_call *c, int id) {
  c->id = id;
  c->rv = CKR_OK;
  wire_reserve(&c->request, FRAME_HEADER);
  wire_put_u32(&c->request, (uint32_t)id);
  wire_put_string(&c->request, CALLS[id].request);
}

CK_RV rpc_begin(rpc_call *c, int id, CK_SESSION_HANDLE session) {
  memset(c, 0, sizeof *c);
  if (!is_initialized()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (lock_take(&g.lock) != CKR_OK) return CKR_CANT_LOCK;
  pthread_mutex_lock(&state_lock);
  CK_RV rv = ensure_link();
  if (rv == CKR_OK && session != RPC_NO_SESSION && !sessions_has(session)) rv = CKR_SESSION_HANDLE_INVALID;
  if (rv == CKR_OK) {
    g.in_flight++;
    c->generation = g.generation;
    c->version = g.link.version;
  }
  pthread_mutex_unlock(&state_lock);
  if (rv != CKR_OK) {
    lock_give(&g.lock);
    return rv;
  }
  begin_message(c, id);
  return CKR_OK;
}

/* The answer in c->body: the call's own, or the server's CK_RV for it. */
static CK_RV read_answer(rpc_call *c) {
  wire_reader *r = &c->answer;
  wire_reader_init(r, c->body.data, c->body.len);
  uint32_t id = wire_get_u32(r);
  const unsigned char *signature;
  uint32_t length;
  if (!wire_get_array(r, &signature, &length) || signature == NULL) return rpc_malformed(c, "no call id and signature");
  if (id == CALL_ERROR) {
    /* The call failed on the server: its CK_RV (CKR_OK there is a protocol failure). */
    if (length != 1 || signature[0] != 'u') return rpc_malformed(c, "an ERROR without its CK_RV");
    uint64_t code = wire_get_u64(r);
    if (r->failed) return rpc_malformed(c, "an ERROR without its CK_RV");
    if (code == CKR_OK) return rpc_malformed(c, "an ERROR carrying CKR_OK");
    c->answered = 1;
    return (CK_RV)code;
  }
  const char *want = CALLS[c->id].answer;
  if (id != (uint32_t)c->id || length != strlen(want) || memcmp(signature, want, length) != 0)
    return rpc_malformed(c, "the call id or signature of another call");
  c->answered = 1;
  return CKR_OK;
}

CK_RV rpc_malformed(rpc_call *c, const char *what) {
  if (!c->malformed) c->malformed = what;
  return CKR_DEVICE_ERROR;
}

/* The answer's last checks (cut short, bytes left over) and the stderr line of a refused answer. */
static CK_RV finish_answer(rpc_call *c, CK_RV rv) {
  if (c->answered && c->answer.failed) rpc_malformed(c, "values cut short, or a length beyond its end");
  else if (c->answered && rv != CKR_DEVICE_ERROR && rv != CKR_HOST_MEMORY && c->answer.pos != c->answer.len) rpc_malformed(c, "bytes after its last value");
  if (!c->malformed) return rv;
  client_say("%s: the server's answer is malformed (%s); the call answers CKR_DEVICE_ERROR", CALLS[c->id].name, c->malformed);
  return CKR_DEVICE_ERROR;
}

/*
 * When a call in flight gives up: the receive timeout after its request went, or after the last
 * answer the link brought, whichever is later. The server answers a link's calls in order, so a
 * call queued behind long ones (a key generation) waits while answers keep coming.
 */
static int64_t give_up_at(int64_t sent_deadline) {
  if (sent_deadline < 0 || g.heard_until < 0) return -1;
  return sent_deadline > g.heard_until ? sent_deadline : g.heard_until;
}

static void wait_until(int64_t deadline_ms) {
  if (deadline_ms < 0) {
    pthread_cond_wait(&changed, &state_lock);
    return;
  }
  struct timespec at = {(time_t)(deadline_ms / 1000), (long)(deadline_ms % 1000) * 1000000};
  pthread_cond_timedwait(&changed, &state_lock, &at);
}

static waiter *waiter_of(uint32_t code) {
  for (waiter *w = g.waiters; w; w = w->next)
    if (w->code == code && !w->done) return w;
  return NULL;
}

static void forget_waiter(const waiter *gone) {
  for (waiter **w = &g.waiters; *w; w = &(*w)->next)
    if (*w == gone) {
      *w = gone->next;
      return;
    }
}

/*
 * Reads frames and hands each to its call until this call's answer is in (state_lock held on
 * entry and on return, not while reading). IO_OK, or why the link failed.
 */
static int read_for_all(waiter *self, int64_t deadline, const char **what) {
  g.reading = 1;
  int io = IO_OK;
  while (!self->done) {
    int64_t until = give_up_at(deadline);
    pthread_mutex_unlock(&state_lock);
    uint32_t code = 0;
    io = link_read(&g.link, until, &code, &g.scratch, what);
    pthread_mutex_lock(&state_lock);
    if (io != IO_OK) break;
    g.heard_until = link_deadline(&g.config);
    waiter *w = waiter_of(code);
    if (!w) {
      *what = "the answer was not a p11-kit frame for this call";
      io = IO_CLOSED;
      break;
    }
    wire_writer answer = *w->body;
    *w->body = g.scratch;
    g.scratch = answer;
    w->done = 1;
    if (w != self) pthread_cond_broadcast(&changed);
  }
  g.reading = 0;
  pthread_cond_broadcast(&changed); /* another call may take the reader's turn */
  return io;
}

static CK_RV exchange(rpc_call *c) {
  const char *name = CALLS[c->id].name, *what = "the link closed";
  int64_t deadline = link_deadline(&g.config);
  waiter self = {0, 0, &c->body, NULL};
  pthread_mutex_lock(&state_lock);
  if (g.broken || c->generation != g.generation) {
    pthread_mutex_unlock(&state_lock);
    return CKR_DEVICE_ERROR;
  }
  self.code = link_next_code(&g.link);
  self.next = g.waiters;
  g.waiters = &self;
  pthread_mutex_unlock(&state_lock);

  /* The link stays open while this call is in flight (only the last call of a failed link closes it). */
  pthread_mutex_lock(&write_lock);
  int io = link_send(&g.link, &c->request, self.code, deadline);
  pthread_mutex_unlock(&write_lock);

  pthread_mutex_lock(&state_lock);
  while (io == IO_OK && !self.done && !g.broken) {
    if (!g.reading) {
      io = read_for_all(&self, deadline, &what);
    } else {
      wait_until(give_up_at(deadline));
      if (!self.done && link_deadline_passed(give_up_at(deadline))) io = IO_TIMEOUT;
    }
  }
  if (io != IO_OK) link_failed(name, io, what);
  forget_waiter(&self);
  pthread_mutex_unlock(&state_lock);
  return self.done ? read_answer(c) : CKR_DEVICE_ERROR;
}

CK_RV rpc_run(rpc_call *c) {
  if (c->rv != CKR_OK) return c->rv;
  if (c->request.failed) return CKR_HOST_MEMORY;
  return exchange(c);
}

CK_RV rpc_end(rpc_call *c, CK_RV rv) {
  rv = finish_answer(c, rv);
  wire_writer_free(&c->request);
  wire_writer_free(&c->body);
  pthread_mutex_lock(&state_lock);
  if (--g.in_flight == 0) {
    if (g.broken) {
      link_close(&g.link, 1);
      g.broken = 0;
    }
    pthread_cond_broadcast(&changed);
  }
  pthread_mutex_unlock(&state_lock);
  lock_give(&g.lock);
  return rv;
}

int rpc_version(void) {
  return __atomic_load_n(&g.link.version, __ATOMIC_RELAXED);
}

/* One call alone on the link (state_lock held, nothing in flight): C_Initialize, C_Finalize. */
static CK_RV exchange_alone(rpc_call *c) {
  CK_RV rv = c->request.failed ? CKR_HOST_MEMORY
    : link_exchange(&g.link, &c->request, &c->body, &g.config, CALLS[c->id].name);
  if (rv == CKR_OK) rv = finish_answer(c, read_answer(c));
  wire_writer_free(&c->request);
  wire_writer_free(&c->body);
  return rv;
}

/* C_Initialize on the server, first call of every link (the handshake p11-kit's server checks). */
static CK_RV initialize_remote(void) {
  rpc_call c;
  memset(&c, 0, sizeof c);
  begin_message(&c, CALL_C_INITIALIZE);
  rpc_put_bytes(&c, HANDSHAKE, sizeof HANDSHAKE - 1);
  rpc_put_byte(&c, 0);
  rpc_put_bytes(&c, "", 1);
  CK_RV rv = exchange_alone(&c);
  if (rv != CKR_OK && g.link.fd >= 0) {
    link_close(&g.link, 1);
    client_log(g.config.folder, LOG_HANDSHAKE_FAILED);
    client_say("the server refused C_Initialize (0x%lx); check that it is an ntls server", (unsigned long)rv);
  }
  return rv == CKR_OK ? CKR_OK : CKR_DEVICE_ERROR;
}

/* --- arguments ------------------------------------------------------------------------------ */

void rpc_put_ulong(rpc_call *c, CK_ULONG v) {
  wire_put_u64(&c->request, v);
  (void)c;
}

void rpc_put_byte(rpc_call *c, CK_BYTE v) {
  wire_put_byte(&c->request, v);
  (void)c;
}

void rpc_put_bytes(rpc_call *c, const void *data, CK_ULONG len) {
  if (data == NULL) {
    if (len != 0 && c->rv == CKR_OK) c->rv = CKR_ARGUMENTS_BAD;
    wire_put_byte(&c->request, 0);
    wire_put_u32(&c->request, 0);
    return;
  }
  if (len >= WIRE_MAX_ARRAY) {
    if (c->rv == CKR_OK) c->rv = CKR_DATA_LEN_RANGE;
    return;
  }
  wire_put_byte(&c->request, 1);
  wire_put_array(&c->request, data, len);
}

void rpc_put_output(rpc_call *c, const void *out, const CK_ULONG *out_len) {
  if (out_len == NULL) {
    if (c->rv == CKR_OK) c->rv = CKR_ARGUMENTS_BAD;
    return;
  }
  if (out == NULL) {
    wire_put_u32(&c->request, 0);
  } else if (*out_len == 0) {
    /* A buffer of 0 bytes (p11-kit 0.25 on); protocol 0 cannot say it and asks for the length. */
    wire_put_u32(&c->request, c->version >= 1 ? 0xffffffffu : 0);
  } else {
    wire_put_u32(&c->request, *out_len >= 0xfffffffeUL ? 0xfffffffeu : (uint32_t)*out_len);
  }
}

void rpc_put_ulong_output(rpc_call *c, const void *out, const CK_ULONG *count) {
  if (count == NULL) {
    if (c->rv == CKR_OK) c->rv = CKR_ARGUMENTS_BAD;
    return;
  }
  wire_put_u32(&c->request, out == NULL ? 0 : *count >= 0xfffffffeUL ? 0xfffffffeu : (uint32_t)*count);
}

void rpc_put_mechanism(rpc_call *c, const CK_MECHANISM *mechanism) {
  CK_RV rv = mechanism_write(&c->request, mechanism, c->version);
  if (rv != CKR_OK && c->rv == CKR_OK) c->rv = rv;
}

void rpc_put_template(rpc_call *c, const CK_ATTRIBUTE *template, CK_ULONG count) {
  CK_RV rv = attributes_write(&c->request, template, count);
  if (rv != CKR_OK && c->rv == CKR_OK) c->rv = rv;
}

void rpc_put_attribute_requests(rpc_call *c, const CK_ATTRIBUTE *template, CK_ULONG count) {
  CK_RV rv = attribute_requests_write(&c->request, template, count);
  if (rv != CKR_OK && c->rv == CKR_OK) c->rv = rv;
}

void rpc_put_string(rpc_call *c, const void *text, size_t max) {
  size_t n = text ? strnlen(text, max) : 0;
  wire_put_array(&c->request, text ? text : "", n);
  (void)c;
}

void rpc_put_space_string(rpc_call *c, const void *text, size_t size) {
  unsigned char padded[64];
  memset(padded, ' ', sizeof padded);
  if (text) memcpy(padded, text, size);
  wire_put_array(&c->request, padded, size);
  (void)c;
}

/* --- answers --------------------------------------------------------------------------------- */

CK_RV rpc_get_ulong(rpc_call *c, CK_ULONG *v) {
  uint64_t value = wire_get_u64(&c->answer);
  if (c->answer.failed) return CKR_DEVICE_ERROR;
  if (v) *v = (CK_ULONG)value;
  return CKR_OK;
}

CK_RV rpc_get_output(rpc_call *c, CK_BYTE_PTR out, CK_ULONG_PTR out_len) {
  wire_reader *r = &c->answer;
  uint8_t valid = wire_get_byte(r);
  if (!valid) {
    /* The length only: the answer to a length query, or the buffer was too small. */
    uint32_t length = wire_get_u32(r);
    if (r->failed) return CKR_DEVICE_ERROR;
    *out_len = length;
    return out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
  }
  const unsigned char *data;
  uint32_t n;
  if (!wire_get_array(r, &data, &n)) return CKR_DEVICE_ERROR;
  if (out == NULL) {
    *out_len = n;
    return CKR_OK;
  }
  if (*out_len < n) {
    *out_len = n;
    return CKR_BUFFER_TOO_SMALL;
  }
  if (n) memcpy(out, data, n);
  *out_len = n;
  return CKR_OK;
}

CK_RV rpc_get_ulong_output(rpc_call *c, CK_ULONG_PTR out, CK_ULONG_PTR count) {
  wire_reader *r = &c->answer;
  uint8_t valid = wire_get_byte(r);
  uint32_t n = wire_get_u32(r);
  if (r->failed) return CKR_DEVICE_ERROR;
  if (!valid) {
    *count = n;
    return out ? CKR_BUFFER_TOO_SMALL : CKR_OK;
  }
  if (!wire_count_fits(r, n, 8)) return rpc_malformed(c, "a count beyond its end");
  if (out == NULL || *count < n) {
    r->pos += (size_t)n * 8;
    CK_RV rv = out == NULL ? CKR_OK : CKR_BUFFER_TOO_SMALL;
    *count = n;
    return rv;
  }
  for (uint32_t i = 0; i < n; i++) out[i] = (CK_ULONG)wire_get_u64(r);
  *count = n;
  return CKR_OK;
}

CK_RV rpc_get_space_string(rpc_call *c, CK_UTF8CHAR *into, size_t size) {
  const unsigned char *data;
  uint32_t n;
  if (!wire_get_array(&c->answer, &data, &n)) return CKR_DEVICE_ERROR;
  if (data == NULL || n != size) return rpc_malformed(c, "a text field not of its size");
  memcpy(into, data, size);
  return CKR_OK;
}

CK_RV rpc_get_version(rpc_call *c, CK_VERSION *v) {
  v->major = wire_get_byte(&c->answer);
  v->minor = wire_get_byte(&c->answer);
  return c->answer.failed ? CKR_DEVICE_ERROR : CKR_OK;
}

/* --- C_Initialize, C_Finalize, C_GetInfo ------------------------------------------------------ */

static void drop_state(int reap) {
  if (reap) link_close(&g.link, 1);
  else link_forget(&g.link);
  wire_writer_free(&g.link.in);
  wire_writer_free(&g.scratch);
  sessions_clear();
  g.broken = g.in_flight = g.reading = 0;
  g.waiters = NULL;
}

EXPORT CK_RV C_Initialize(CK_VOID_PTR pInitArgs) {
  pthread_once(&setup_once, setup);
  const CK_C_INITIALIZE_ARGS *args = pInitArgs;
  if (args) {
    if (args->pReserved != NULL) return CKR_ARGUMENTS_BAD;
    int given = !!args->CreateMutex + !!args->DestroyMutex + !!args->LockMutex + !!args->UnlockMutex;
    if (given != 0 && given != 4) return CKR_ARGUMENTS_BAD;
  }
  pthread_mutex_lock(&init_lock);
  if (is_initialized()) {
    pthread_mutex_unlock(&init_lock);
    return CKR_CRYPTOKI_ALREADY_INITIALIZED;
  }
  if (__atomic_load_n(&g.initialized, __ATOMIC_ACQUIRE)) {
    /* A forked child: the parent's link is the parent's; drop it without a word on it. */
    __atomic_store_n(&g.initialized, 0, __ATOMIC_RELEASE);
    drop_state(0);
  }
  CK_RV rv = CKR_OK;
  if (config_load(&g.config) != 0) {
    client_log(g.config.folder[0] ? g.config.folder : ".", LOG_CONNECT_FAILED);
    client_say("%s", g.config.error);
    rv = CKR_DEVICE_ERROR;
  }
  if (rv == CKR_OK) rv = lock_create(&g.lock, args);
  if (rv == CKR_OK) {
    pthread_mutex_lock(&state_lock);
    link_init(&g.link);
    g.relink_after = 0;
    rv = link_open(&g.link, &g.config);
    if (rv == CKR_OK) rv = initialize_remote();
    if (rv == CKR_OK) g.generation++;
    else drop_state(1);
    g.heard_until = 0;
    pthread_mutex_unlock(&state_lock);
    if (rv != CKR_OK) lock_destroy(&g.lock);
  }
  if (rv == CKR_OK) {
    g.pid = getpid();
    __atomic_store_n(&g.initialized, 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&init_lock);
  return rv;
}

EXPORT CK_RV C_Finalize(CK_VOID_PTR pReserved) {
  if (pReserved != NULL) return CKR_ARGUMENTS_BAD;
  pthread_mutex_lock(&init_lock);
  if (!is_initialized()) {
    pthread_mutex_unlock(&init_lock);
    return CKR_CRYPTOKI_NOT_INITIALIZED;
  }
  lock_take(&g.lock);
  pthread_mutex_lock(&state_lock);
  __atomic_store_n(&g.initialized, 0, __ATOMIC_RELEASE);
  /* Calls still under way end first (each within the receive timeout); no new one starts. */
  while (g.in_flight > 0) pthread_cond_wait(&changed, &state_lock);
  if (g.link.fd >= 0) {
    rpc_call c;
    memset(&c, 0, sizeof c);
    begin_message(&c, CALL_C_FINALIZE);
    exchange_alone(&c);
  }
  drop_state(1);
  pthread_mutex_unlock(&state_lock);
  lock_give(&g.lock);
  lock_destroy(&g.lock);
  pthread_mutex_unlock(&init_lock);
  return CKR_OK;
}

static void pad(CK_UTF8CHAR *field, size_t size, const char *text) {
  memset(field, ' ', size);
  memcpy(field, text, strnlen(text, size));
}

EXPORT CK_RV C_GetInfo(CK_INFO_PTR pInfo) {
  if (!is_initialized()) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (pInfo == NULL) return CKR_ARGUMENTS_BAD;
  memset(pInfo, 0, sizeof *pInfo);
  pInfo->cryptokiVersion.major = 3;
  pInfo->cryptokiVersion.minor = 0;
  pad(pInfo->manufacturerID, sizeof pInfo->manufacturerID, "ntls");
  pad(pInfo->libraryDescription, sizeof pInfo->libraryDescription, "ntls PKCS#11 client module");
  pInfo->libraryVersion.major = 0;
  pInfo->libraryVersion.minor = 1;
  return CKR_OK;
}

/* --- function lists and interfaces ---------------------------------------------------------- */

#define CK_PKCS11_FUNCTION_INFO(name) name,
#define NTLS_NAME_ONLY(name, args) name,
static CK_FUNCTION_LIST functions_2_40 = {
  {2, 40},
#include "pkcs11f.h"
};
static CK_FUNCTION_LIST_3_0 functions_3_0 = {
  {3, 0},
#include "pkcs11f.h"
  NTLS_V3_FUNCTIONS(NTLS_NAME_ONLY)
};
#undef NTLS_NAME_ONLY
#undef CK_PKCS11_FUNCTION_INFO

static CK_CHAR INTERFACE_NAME[] = "PKCS 11";
static CK_INTERFACE interfaces[] = {
  {INTERFACE_NAME, &functions_3_0, 0},
  {INTERFACE_NAME, &functions_2_40, 0},
};
#define INTERFACE_COUNT (sizeof interfaces / sizeof interfaces[0])

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList) {
  if (ppFunctionList == NULL) return CKR_ARGUMENTS_BAD;
  *ppFunctionList = &functions_2_40;
  return CKR_OK;
}

EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount) {
  if (pulCount == NULL) return CKR_ARGUMENTS_BAD;
  if (pInterfacesList == NULL) {
    *pulCount = INTERFACE_COUNT;
    return CKR_OK;
  }
  if (*pulCount < INTERFACE_COUNT) {
    *pulCount = INTERFACE_COUNT;
    return CKR_BUFFER_TOO_SMALL;
  }
  memcpy(pInterfacesList, interfaces, sizeof interfaces);
  *pulCount = INTERFACE_COUNT;
  return CKR_OK;
}

EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags) {
  if (ppInterface == NULL) return CKR_ARGUMENTS_BAD;
  if (pInterfaceName != NULL && strcmp((const char *)pInterfaceName, (const char *)INTERFACE_NAME) != 0) return CKR_ARGUMENTS_BAD;
  for (size_t i = 0; i < INTERFACE_COUNT; i++) {
    const CK_VERSION *version = interfaces[i].pFunctionList;
    if (pVersion && (pVersion->major != version->major || pVersion->minor != version->minor)) continue;
    if ((interfaces[i].flags & flags) != flags) continue;
    *ppInterface = &interfaces[i];
    return CKR_OK;
  }
  return CKR_ARGUMENTS_BAD;
}
