// Signing mechanisms by name, for --mechanism: "SHA256_RSA_PKCS", "CKM_ECDSA_SHA256",
// "sha256-rsa-pkcs-pss" all work. PSS mechanisms get the parameters that go with their hash.
import { CKG, CKM, type CkmName } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import { ClientError } from './errors.js';

const PSS: Partial<Record<CkmName, { hashAlg: number; mgf: number; saltLength: number }>> = {
  SHA1_RSA_PKCS_PSS: { hashAlg: CKM.SHA_1, mgf: CKG.MGF1_SHA1, saltLength: 20 },
  SHA224_RSA_PKCS_PSS: { hashAlg: CKM.SHA224, mgf: CKG.MGF1_SHA224, saltLength: 28 },
  SHA256_RSA_PKCS_PSS: { hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, saltLength: 32 },
  SHA384_RSA_PKCS_PSS: { hashAlg: CKM.SHA384, mgf: CKG.MGF1_SHA384, saltLength: 48 },
  SHA512_RSA_PKCS_PSS: { hashAlg: CKM.SHA512, mgf: CKG.MGF1_SHA512, saltLength: 64 },
};

const SIGNING: readonly CkmName[] = [
  'RSA_PKCS', 'SHA1_RSA_PKCS', 'SHA224_RSA_PKCS', 'SHA256_RSA_PKCS', 'SHA384_RSA_PKCS', 'SHA512_RSA_PKCS',
  'SHA1_RSA_PKCS_PSS', 'SHA224_RSA_PKCS_PSS', 'SHA256_RSA_PKCS_PSS', 'SHA384_RSA_PKCS_PSS', 'SHA512_RSA_PKCS_PSS',
  'ECDSA', 'ECDSA_SHA1', 'ECDSA_SHA224', 'ECDSA_SHA256', 'ECDSA_SHA384', 'ECDSA_SHA512', 'EDDSA',
  'SHA_1_HMAC', 'SHA224_HMAC', 'SHA256_HMAC', 'SHA384_HMAC', 'SHA512_HMAC',
];

export const SIGNING_MECHANISM_NAMES = SIGNING.map((n) => n.toLowerCase().replace(/_/g, '-'));

export function signingMechanism(name: string): Mechanism {
  const key = name.trim().toUpperCase().replace(/^CKM_/, '').replace(/-/g, '_') as CkmName;
  if (!SIGNING.includes(key)) {
    throw new ClientError('NTLS_ERR_ARGUMENT', `"${name}" is not a signing mechanism this command knows`, `use one of ${SIGNING_MECHANISM_NAMES.join(', ')}`);
  }
  const pss = PSS[key];
  return { type: CKM[key], parameter: pss ? { kind: 'pss', ...pss } : null };
}
