// The software HSM's mechanisms on node:crypto: the Mechanisms contract (contract.ts) served
// from the registry table.

import { randomBytes } from 'node:crypto';
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanisms } from './contract.js';
import { describeKey } from './describe.js';
import type { MechanismEntry } from './entry.js';
import { handlerFor, mechanismInfos } from './registry.js';
import { unwrapKey, wrapKey } from './wrap.js';

const pick = {
  generateKeyPair: (entry: MechanismEntry) => entry.generateKeyPair,
  generateKey: (entry: MechanismEntry) => entry.generateKey,
  sign: (entry: MechanismEntry) => entry.sign,
  verify: (entry: MechanismEntry) => entry.verify,
  encrypt: (entry: MechanismEntry) => entry.encrypt,
  decrypt: (entry: MechanismEntry) => entry.decrypt,
  digest: (entry: MechanismEntry) => entry.digest,
  derive: (entry: MechanismEntry) => entry.derive,
};

export const softwareMechanisms: Mechanisms = {
  list: () => mechanismInfos,
  generateKeyPair: (mechanism, request) => handlerFor(mechanism.type, pick.generateKeyPair)(mechanism, request),
  generateKey: (mechanism, request) => handlerFor(mechanism.type, pick.generateKey)(mechanism, request),
  describeKey,
  sign: (mechanism, key) => handlerFor(mechanism.type, pick.sign)(mechanism, key),
  verify: (mechanism, key) => handlerFor(mechanism.type, pick.verify)(mechanism, key),
  encrypt: (mechanism, key) => handlerFor(mechanism.type, pick.encrypt)(mechanism, key),
  decrypt: (mechanism, key) => handlerFor(mechanism.type, pick.decrypt)(mechanism, key),
  digest: (mechanism) => handlerFor(mechanism.type, pick.digest)(mechanism),
  wrapKey,
  unwrapKey,
  deriveKey: (mechanism, baseKey, keyType, valueLength) => handlerFor(mechanism.type, pick.derive)(mechanism, baseKey, keyType, valueLength),
  random(length) {
    if (!Number.isInteger(length) || length < 0) return Promise.reject(new Pkcs11Error(CKR.ARGUMENTS_BAD));
    return new Promise((resolve, reject) => {
      randomBytes(length, (error, bytes) => (error ? reject(new Pkcs11Error(CKR.FUNCTION_FAILED)) : resolve(bytes)));
    });
  },
};

export type * from './contract.js';
export { singlePartMechanisms } from './registry.js';
export { MESSAGE_LIMIT, RETAIN_LIMIT, operationMemory } from './message.js';
export {
  ecPrivateKeyDer, ecPublicKeyDer, ed25519PrivateKeyDer, rsaPrivateKeyDer, rsaPublicKeyDer,
  type RsaPrivateComponents,
} from './key-import.js';
