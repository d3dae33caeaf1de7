// ECDSA over a digest the caller already computed (PKCS#11's CKM_ECDSA), on OpenSSL's
// EVP_PKEY_sign / EVP_PKEY_verify: node:crypto only signs messages it hashes itself. The
// OpenSSL is the one Node links in and exports (its headers ship in Node's include folder), so
// nothing is linked here: the symbols resolve against the node binary at load. OpenSSL's ECDSA
// signing is constant time (the nonce multiplication and its inverse), and the nonce is drawn
// from its DRBG mixed with the key and the digest. Keys are parsed once: privateKey(der) and
// publicKey(der) return an external holding the EVP_PKEY (and its contexts, below), freed when
// the external is collected; src/hsm/mechanisms/native-ecdsa.ts keeps one per key. Signatures go in and out as PKCS#11's
// fixed-width r||s; OpenSSL's DER ECDSA-Sig-Value is converted here.
#include <node_api.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>

#define CHECK(call) do { if ((call) != napi_ok) return NULL; } while (0)

static const unsigned char empty_input[1] = {0};

static napi_value fail(napi_env env, const char *code, const char *message) {
  ERR_clear_error();
  napi_throw_error(env, code, message);
  return NULL;
}

// A parsed key and, each made at its first use, a context initialised for signing and one for
// verifying. Making a context looks its algorithm up by name in OpenSSL's tables (about a tenth
// of a P-256 signature); an initialised context signs again and again, a fresh nonce each time.
// Used from the one JavaScript thread of the environment that made it.
typedef struct {
  EVP_PKEY *pkey;
  EVP_PKEY_CTX *sign;
  EVP_PKEY_CTX *verify;
} held_key;

static void free_key(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  held_key *key = data;
  EVP_PKEY_CTX_free(key->sign);
  EVP_PKEY_CTX_free(key->verify);
  EVP_PKEY_free(key->pkey);
  free(key);
}

static int buffer_arg(napi_env env, napi_value value, const unsigned char **data, size_t *length) {
  bool is_buffer = false;
  void *bytes = NULL;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer) return 0;
  if (napi_get_buffer_info(env, value, &bytes, length) != napi_ok) return 0;
  *data = bytes != NULL ? bytes : empty_input;
  return 1;
}

static held_key *key_arg(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return data;
}

// *slot, made and initialised by init (EVP_PKEY_sign_init or EVP_PKEY_verify_init) if not yet;
// NULL when OpenSSL refuses.
static EVP_PKEY_CTX *key_context(EVP_PKEY *pkey, EVP_PKEY_CTX **slot, int (*init)(EVP_PKEY_CTX *)) {
  if (*slot != NULL) return *slot;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
  if (ctx == NULL || init(ctx) != 1) {
    EVP_PKEY_CTX_free(ctx);
    return NULL;
  }
  *slot = ctx;
  return ctx;
}

static napi_value wrap_key(napi_env env, EVP_PKEY *pkey) {
  napi_value external;
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
    EVP_PKEY_free(pkey);
    return fail(env, "ERR_ECDSA_KEY", "not an EC key");
  }
  held_key *key = calloc(1, sizeof *key);
  if (key == NULL) {
    EVP_PKEY_free(pkey);
    return fail(env, "ERR_ECDSA_KEY", "out of memory");
  }
  key->pkey = pkey;
  if (napi_create_external(env, key, free_key, NULL, &external) != napi_ok) {
    free_key(env, key, NULL);
    return NULL;
  }
  return external;
}

// privateKey(pkcs8Der): an external holding the parsed private key.
static napi_value private_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  const unsigned char *der;
  size_t length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !buffer_arg(env, argv[0], &der, &length)) return fail(env, "ERR_INVALID_ARG_TYPE", "privateKey(der: Buffer)");
  const unsigned char *cursor = der;
  EVP_PKEY *key = d2i_AutoPrivateKey(NULL, &cursor, (long)length);
  if (key == NULL) return fail(env, "ERR_ECDSA_KEY", "the DER is not a private key");
  return wrap_key(env, key);
}

// publicKey(spkiDer): an external holding the parsed public key.
static napi_value public_key(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  const unsigned char *der;
  size_t length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || !buffer_arg(env, argv[0], &der, &length)) return fail(env, "ERR_INVALID_ARG_TYPE", "publicKey(der: Buffer)");
  const unsigned char *cursor = der;
  EVP_PKEY *key = d2i_PUBKEY(NULL, &cursor, (long)length);
  if (key == NULL) return fail(env, "ERR_ECDSA_KEY", "the DER is not a public key");
  return wrap_key(env, key);
}

static size_t scalar_width(EVP_PKEY *key) {
  return (size_t)(EVP_PKEY_get_bits(key) + 7) / 8;
}

// sign(key, digest): r||s, each as wide as the group order.
static napi_value sign(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  const unsigned char *digest;
  size_t digest_length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  held_key *key = argc >= 2 ? key_arg(env, argv[0]) : NULL;
  if (key == NULL || !buffer_arg(env, argv[1], &digest, &digest_length)) return fail(env, "ERR_INVALID_ARG_TYPE", "sign(key, digest: Buffer)");

  unsigned char der[160]; // an ECDSA-Sig-Value on P-521 is at most 139 bytes
  size_t der_length = sizeof der;
  EVP_PKEY_CTX *ctx = key_context(key->pkey, &key->sign, EVP_PKEY_sign_init);
  int ok = ctx != NULL && EVP_PKEY_sign(ctx, der, &der_length, digest, digest_length) == 1;
  if (!ok) return fail(env, "ERR_ECDSA_SIGN", "OpenSSL could not sign");

  const unsigned char *cursor = der;
  ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &cursor, (long)der_length);
  if (sig == NULL) return fail(env, "ERR_ECDSA_SIGN", "OpenSSL returned a malformed signature");
  size_t width = scalar_width(key->pkey);
  void *out;
  napi_value result;
  if (napi_create_buffer(env, 2 * width, &out, &result) != napi_ok) {
    ECDSA_SIG_free(sig);
    return NULL;
  }
  ok = BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, (int)width) == (int)width
    && BN_bn2binpad(ECDSA_SIG_get0_s(sig), (unsigned char *)out + width, (int)width) == (int)width;
  ECDSA_SIG_free(sig);
  if (!ok) return fail(env, "ERR_ECDSA_SIGN", "a signature value does not fit the order's width");
  return result;
}

// verify(key, digest, signature): whether r||s is a valid signature of the digest.
// The caller has checked the signature's length (2 × the order's width).
static napi_value verify(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  const unsigned char *digest, *signature;
  size_t digest_length, signature_length;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  held_key *key = argc >= 3 ? key_arg(env, argv[0]) : NULL;
  if (key == NULL || !buffer_arg(env, argv[1], &digest, &digest_length) || !buffer_arg(env, argv[2], &signature, &signature_length)) {
    return fail(env, "ERR_INVALID_ARG_TYPE", "verify(key, digest: Buffer, signature: Buffer)");
  }
  size_t width = scalar_width(key->pkey);
  int valid = 0;
  if (signature_length == 2 * width) {
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(signature, (int)width, NULL);
    BIGNUM *s = BN_bin2bn(signature + width, (int)width, NULL);
    unsigned char *der = NULL;
    int der_length = -1;
    if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
      r = s = NULL; // owned by sig now
      der_length = i2d_ECDSA_SIG(sig, &der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    if (der_length > 0) {
      EVP_PKEY_CTX *ctx = key_context(key->pkey, &key->verify, EVP_PKEY_verify_init);
      valid = ctx != NULL && EVP_PKEY_verify(ctx, der, (size_t)der_length, digest, digest_length) == 1;
    }
    OPENSSL_free(der);
  }
  ERR_clear_error();
  napi_value result;
  CHECK(napi_get_boolean(env, valid, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
    {"privateKey", NULL, private_key, NULL, NULL, NULL, napi_enumerable, NULL},
    {"publicKey", NULL, public_key, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sign", NULL, sign, NULL, NULL, NULL, napi_enumerable, NULL},
    {"verify", NULL, verify, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
