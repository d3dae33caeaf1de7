// SHA-1/2 as PKCS#11 names them: the digest mechanisms themselves, and the hash table that
// the hash-then-sign, PSS, OAEP, HMAC and ECDH-KDF mechanisms look their hash up in.

import { createHash } from 'node:crypto';
import { CKD, CKG, CKM, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import type { StreamingOperation } from './contract.js';
import type { MechanismEntry } from './entry.js';

export interface HashAlgorithm {
  /** CKM_SHA256 ... */
  mechanism: number;
  /** node:crypto name */
  name: 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
  length: number;
  /** DER DigestInfo up to the hash value, for PKCS#1 v1.5 signatures. */
  digestInfoPrefix: Buffer;
}

const table: HashAlgorithm[] = [
  { mechanism: CKM.SHA_1, name: 'sha1', length: 20, digestInfoPrefix: Buffer.from('3021300906052b0e03021a05000414', 'hex') },
  { mechanism: CKM.SHA224, name: 'sha224', length: 28, digestInfoPrefix: Buffer.from('302d300d06096086480165030402040500041c', 'hex') },
  { mechanism: CKM.SHA256, name: 'sha256', length: 32, digestInfoPrefix: Buffer.from('3031300d060960864801650304020105000420', 'hex') },
  { mechanism: CKM.SHA384, name: 'sha384', length: 48, digestInfoPrefix: Buffer.from('3041300d060960864801650304020205000430', 'hex') },
  { mechanism: CKM.SHA512, name: 'sha512', length: 64, digestInfoPrefix: Buffer.from('3051300d060960864801650304020305000440', 'hex') },
];

const byMechanism = new Map(table.map((hash) => [hash.mechanism, hash]));
const byName = new Map(table.map((hash) => [hash.name, hash]));
const byMgf = new Map<number, HashAlgorithm>([
  [CKG.MGF1_SHA1, byName.get('sha1')!], [CKG.MGF1_SHA224, byName.get('sha224')!],
  [CKG.MGF1_SHA256, byName.get('sha256')!], [CKG.MGF1_SHA384, byName.get('sha384')!],
  [CKG.MGF1_SHA512, byName.get('sha512')!],
]);
const byKdf = new Map<number, HashAlgorithm>([
  [CKD.SHA1_KDF, byName.get('sha1')!], [CKD.SHA224_KDF, byName.get('sha224')!],
  [CKD.SHA256_KDF, byName.get('sha256')!], [CKD.SHA384_KDF, byName.get('sha384')!],
  [CKD.SHA512_KDF, byName.get('sha512')!],
]);

export function hashNamed(name: HashAlgorithm['name']): HashAlgorithm {
  return byName.get(name)!;
}

/** The hash a PSS/OAEP parameter names (CKM_SHA256 ...), or CKR_MECHANISM_PARAM_INVALID. */
export function hashOfParameter(mechanism: number): HashAlgorithm {
  const hash = byMechanism.get(mechanism);
  if (!hash) throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  return hash;
}

/** The hash of an MGF1 parameter (CKG_MGF1_SHA256 ...), or CKR_MECHANISM_PARAM_INVALID. */
export function hashOfMgf(mgf: number): HashAlgorithm {
  const hash = byMgf.get(mgf);
  if (!hash) throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  return hash;
}

/** The hash of an X9.63 KDF (CKD_SHA256_KDF ...), undefined for CKD_NULL and unknown values. */
export function hashOfKdf(kdf: number): HashAlgorithm | undefined {
  return byKdf.get(kdf);
}

/** A mechanism that takes no parameter accepts none, or an empty byte string. */
export function requireNoParameter(mechanism: Mechanism): void {
  const parameter = mechanism.parameter;
  if (parameter && !(parameter.kind === 'bytes' && parameter.value.length === 0)) {
    throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  }
}

function digestOperation(hash: HashAlgorithm): StreamingOperation<void, Buffer> {
  const state = createHash(hash.name);
  return {
    async update(data) { state.update(data); },
    async final() { return state.digest(); },
  };
}

export const digestEntries: MechanismEntry[] = table.map((hash) => ({
  type: hash.mechanism,
  minKeySize: 0,
  maxKeySize: 0,
  digest(mechanism: Mechanism) {
    requireNoParameter(mechanism);
    return digestOperation(hash);
  },
}));
