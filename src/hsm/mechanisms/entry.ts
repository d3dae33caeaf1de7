// What each mechanism module contributes to the registry: its key-size range, the operations
// it implements, and flags that are not implied by those operations (EC capabilities).
// The registry derives CKF_SIGN, CKF_ENCRYPT ... from which handlers are present, so the
// list C_GetMechanismInfo reports cannot drift from what dispatch accepts.

import type { Mechanism } from '../../pkcs11/mechanism.js';
import type {
  GeneratedKeyPair, GeneratedSecretKey, KeyMaterial, KeyPairRequest, SecretKeyRequest,
  StreamingOperation,
} from './contract.js';

export interface MechanismEntry {
  type: number;
  minKeySize: number;
  maxKeySize: number;
  extraFlags?: number;
  /** Can wrap/unwrap keys through encrypt/decrypt (CKF_WRAP, CKF_UNWRAP). */
  wraps?: boolean;
  /** C_SignUpdate etc. are not allowed (raw RSA, raw ECDSA, key wrap as a cipher). */
  singlePart?: boolean;
  generateKeyPair?: (mechanism: Mechanism, request: KeyPairRequest) => Promise<GeneratedKeyPair>;
  generateKey?: (mechanism: Mechanism, request: SecretKeyRequest) => Promise<GeneratedSecretKey>;
  sign?: (mechanism: Mechanism, key: KeyMaterial) => StreamingOperation<void, Buffer>;
  verify?: (mechanism: Mechanism, key: KeyMaterial) => StreamingOperation<Buffer, boolean>;
  encrypt?: (mechanism: Mechanism, key: KeyMaterial) => StreamingOperation<void, Buffer>;
  decrypt?: (mechanism: Mechanism, key: KeyMaterial) => StreamingOperation<void, Buffer>;
  digest?: (mechanism: Mechanism) => StreamingOperation<void, Buffer>;
  derive?: (mechanism: Mechanism, baseKey: KeyMaterial, keyType: number, valueLength: number) => Promise<KeyMaterial>;
}
