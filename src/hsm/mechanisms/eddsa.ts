// Ed25519 (PKCS#11 3.0 CKK_EC_EDWARDS): key-pair generation and pure EdDSA. Ed25519ph and
// Ed25519ctx (CK_EDDSA_PARAMS with phFlag or a context) are not offered.

import { generateKeyPair, sign, verify, type KeyObject } from 'node:crypto';
import { CKA, CKK, CKM, CKO, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import type {
  DerivedAttributes, GeneratedKeyPair, KeyMaterial, KeyPairRequest, StreamingOperation,
} from './contract.js';
import { curveFromParams, ED25519 } from './curves.js';
import { octetString } from '../../pkcs11/der.js';
import { requireNoParameter } from './digest.js';
import type { MechanismEntry } from './entry.js';
import { asymmetricKey, base64url, generatedKeyPair } from './keys.js';
import { WholeMessage } from './message.js';

const SIGNATURE_LENGTH = 64;

export function edwardsPublicAttributes(object: KeyObject, params: Buffer = ED25519.params): DerivedAttributes {
  const point = base64url(object.export({ format: 'jwk' }).x);
  return new Map<number, number | boolean | Buffer>([[CKA.EC_PARAMS, params], [CKA.EC_POINT, octetString(point)]]);
}

export function edwardsPrivateAttributes(params: Buffer = ED25519.params): DerivedAttributes {
  return new Map<number, number | boolean | Buffer>([[CKA.EC_PARAMS, params]]);
}

async function generateEdwardsKeyPair(mechanism: Mechanism, request: KeyPairRequest): Promise<GeneratedKeyPair> {
  requireNoParameter(mechanism);
  if (!request.ecParams) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE);
  if (curveFromParams(request.ecParams) !== ED25519) throw new Pkcs11Error(CKR.CURVE_NOT_SUPPORTED);
  const params = Buffer.from(request.ecParams); // reported back as the caller spelled it
  return generatedKeyPair(CKK.EC_EDWARDS, (done) => generateKeyPair('ed25519', {}, done), (publicKey) => ({
    publicAttributes: edwardsPublicAttributes(publicKey, params),
    privateAttributes: edwardsPrivateAttributes(params),
  }));
}

function eddsaSigner(mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> {
  requireNoParameter(mechanism);
  const key = asymmetricKey(material, CKK.EC_EDWARDS, CKO.PRIVATE_KEY);
  const input = new WholeMessage();
  return {
    dispose() { input.release(); },
    async update(data) { input.add(data); },
    final() {
      return new Promise((resolve, reject) => {
        sign(null, input.take(), key, (error, signature) => {
          if (error) reject(new Pkcs11Error(CKR.FUNCTION_FAILED, error.message));
          else resolve(signature);
        });
      });
    },
  };
}

function eddsaVerifier(mechanism: Mechanism, material: KeyMaterial): StreamingOperation<Buffer, boolean> {
  requireNoParameter(mechanism);
  const key = asymmetricKey(material, CKK.EC_EDWARDS, CKO.PUBLIC_KEY);
  const input = new WholeMessage();
  return {
    dispose() { input.release(); },
    async update(data) { input.add(data); },
    async final(signature) {
      if (signature.length !== SIGNATURE_LENGTH) throw new Pkcs11Error(CKR.SIGNATURE_LEN_RANGE);
      return new Promise<boolean>((resolve) => {
        verify(null, input.take(), key, signature, (error, valid) => resolve(!error && valid));
      });
    },
  };
}

export const eddsaEntries: MechanismEntry[] = [
  { type: CKM.EC_EDWARDS_KEY_PAIR_GEN, minKeySize: 255, maxKeySize: 255, generateKeyPair: generateEdwardsKeyPair },
  { type: CKM.EDDSA, minKeySize: 255, maxKeySize: 255, sign: eddsaSigner, verify: eddsaVerifier },
];
