// ECDSA over a digest the caller computed (CKM_ECDSA, and long multi-part ECDSA_SHAxxx input),
// signed and verified by OpenSSL's EVP_PKEY_sign / EVP_PKEY_verify through native/ecdsa (an
// N-API addon built at `npm install`): node:crypto only signs messages it hashes itself.
// OpenSSL's ECDSA is constant time on the secret values. Each KeyObject is parsed into an
// EVP_PKEY once and kept while the KeyObject lives.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KeyObject } from 'node:crypto';
import { NtlsError } from '../../errors/ntls-error.js';
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';

/** An EVP_PKEY held by the addon (an N-API external). */
type NativeKey = object & { readonly nativeKey: unique symbol };

interface EcdsaAddon {
  privateKey(pkcs8: Buffer): NativeKey;
  publicKey(spki: Buffer): NativeKey;
  sign(key: NativeKey, digest: Buffer): Buffer;
  verify(key: NativeKey, digest: Buffer, signature: Buffer): boolean;
}

const ADDON = 'native/ecdsa/build/Release/ecdsa.node';

export class EcdsaAddonMissingError extends NtlsError {
  declare readonly code: 'NTLS_ERR_NATIVE_ADDON';
  constructor(readonly file: string) {
    super('NTLS_ERR_NATIVE_ADDON', `${file} is not built`, { hint: 'run `npm install` (it builds native/ with node-gyp)' });
  }
}

let addon: EcdsaAddon | undefined;

/** The addon, from the package root: ../../../ from src/hsm/mechanisms, one more from dist/. */
function ecdsaAddon(): EcdsaAddon {
  if (addon) return addon;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 6; up++) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) {
      addon = createRequire(import.meta.url)(candidate) as EcdsaAddon;
      return addon;
    }
    dir = dirname(dir);
  }
  throw new EcdsaAddonMissingError(ADDON);
}

const nativeKeys = new WeakMap<KeyObject, NativeKey>();

function nativeKey(object: KeyObject): NativeKey {
  let key = nativeKeys.get(object);
  if (!key) {
    const native = ecdsaAddon();
    key = object.type === 'private'
      ? native.privateKey(object.export({ format: 'der', type: 'pkcs8' }))
      : native.publicKey(object.export({ format: 'der', type: 'spki' }));
    nativeKeys.set(object, key);
  }
  return key;
}

/** r||s, each the width of the group order, over `digest` (truncated to the order's bit length). */
export function signDigest(privateKey: KeyObject, digest: Buffer): Buffer {
  const key = nativeKey(privateKey);
  try {
    return ecdsaAddon().sign(key, digest);
  } catch (error) {
    throw new Pkcs11Error(CKR.FUNCTION_FAILED, (error as Error).message);
  }
}

/** Whether r||s (its length already checked) is a signature of `digest` under `publicKey`. */
export function verifyDigest(publicKey: KeyObject, digest: Buffer, signature: Buffer): boolean {
  return ecdsaAddon().verify(nativeKey(publicKey), digest, signature);
}
