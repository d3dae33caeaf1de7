// The key types the convenience layer and the CLI name ("ec-p256", "aes-256", ...): how each is
// generated, and which mechanism signs or encrypts with it when the caller does not say.
import { CKA, CKG, CKK, CKM, CKO } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import { ClientError } from './errors.js';
import type { TemplateEntry } from './template.js';

export const KEY_TYPES = ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384', 'ec-p521', 'ed25519', 'aes-128', 'aes-192', 'aes-256'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** DER of the named curves' OIDs (CKA_EC_PARAMS). */
export const EC_PARAMS = {
  'P-256': Buffer.from('06082a8648ce3d030107', 'hex'),
  'P-384': Buffer.from('06052b81040022', 'hex'),
  'P-521': Buffer.from('06052b81040023', 'hex'),
  'Ed25519': Buffer.from('06032b6570', 'hex'),
} as const;

export interface KeyGenerationOptions {
  label: string;
  /** CKA_ID (default: a key pair gets its public key's key identifier, RFC 5280 method 1; a secret key none). */
  id?: Buffer;
  /** Token object, kept across sessions (default true). */
  token?: boolean;
  /** CKA_EXTRACTABLE of the private or secret key (default false). */
  extractable?: boolean;
}

export type KeyGeneration =
  | { pair: true; mechanism: Mechanism; publicTemplate: TemplateEntry[]; privateTemplate: TemplateEntry[] }
  | { pair: false; mechanism: Mechanism; template: TemplateEntry[] };

export function isKeyType(value: string): value is KeyType {
  return (KEY_TYPES as readonly string[]).includes(value);
}

export function keyGeneration(type: KeyType, options: KeyGenerationOptions): KeyGeneration {
  const common: TemplateEntry[] = [
    { type: CKA.TOKEN, value: options.token ?? true },
    { type: CKA.LABEL, value: options.label },
    ...(options.id ? [{ type: CKA.ID, value: options.id }] : []),
  ];
  const secret: TemplateEntry[] = [
    { type: CKA.PRIVATE, value: true }, { type: CKA.SENSITIVE, value: true },
    { type: CKA.EXTRACTABLE, value: options.extractable ?? false },
  ];
  const [family, size] = type.split('-') as [string, string | undefined];
  switch (family) {
    case 'rsa':
      return {
        pair: true,
        mechanism: { type: CKM.RSA_PKCS_KEY_PAIR_GEN, parameter: null },
        publicTemplate: [...common, { type: CKA.MODULUS_BITS, value: Number(size) }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          { type: CKA.VERIFY, value: true }, { type: CKA.ENCRYPT, value: true }],
        privateTemplate: [...common, ...secret, { type: CKA.SIGN, value: true }, { type: CKA.DECRYPT, value: true }],
      };
    case 'ec': {
      const curve = ({ p256: 'P-256', p384: 'P-384', p521: 'P-521' } as const)[size as 'p256' | 'p384' | 'p521'];
      return {
        pair: true,
        mechanism: { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
        publicTemplate: [...common, { type: CKA.EC_PARAMS, value: EC_PARAMS[curve] }, { type: CKA.VERIFY, value: true }],
        privateTemplate: [...common, ...secret, { type: CKA.SIGN, value: true }, { type: CKA.DERIVE, value: true }],
      };
    }
    case 'ed25519':
      return {
        pair: true,
        mechanism: { type: CKM.EC_EDWARDS_KEY_PAIR_GEN, parameter: null },
        publicTemplate: [...common, { type: CKA.EC_PARAMS, value: EC_PARAMS.Ed25519 }, { type: CKA.VERIFY, value: true }],
        privateTemplate: [...common, ...secret, { type: CKA.SIGN, value: true }],
      };
    default:
      return {
        pair: false,
        mechanism: { type: CKM.AES_KEY_GEN, parameter: null },
        template: [...common, ...secret, { type: CKA.VALUE_LEN, value: Number(size) / 8 },
          { type: CKA.ENCRYPT, value: true }, { type: CKA.DECRYPT, value: true }, { type: CKA.WRAP, value: true }, { type: CKA.UNWRAP, value: true }],
      };
  }
}

/** What a key is, as read from its attributes; enough to pick default mechanisms. */
export interface KeyDescription {
  handle: number;
  objectClass: number;
  keyType: number;
  /** For EC keys: CKA_EC_PARAMS. */
  ecParams?: Buffer;
}

/** The signing mechanism used when none is named: SHA-256 (or the curve's size) with the key's algorithm. */
export function defaultSignMechanism(key: KeyDescription): Mechanism {
  switch (key.keyType) {
    case CKK.RSA: return { type: CKM.SHA256_RSA_PKCS, parameter: null };
    case CKK.EC: {
      if (key.ecParams?.equals(EC_PARAMS['P-384'])) return { type: CKM.ECDSA_SHA384, parameter: null };
      if (key.ecParams?.equals(EC_PARAMS['P-521'])) return { type: CKM.ECDSA_SHA512, parameter: null };
      return { type: CKM.ECDSA_SHA256, parameter: null };
    }
    case CKK.EC_EDWARDS: return { type: CKM.EDDSA, parameter: null };
    case CKK.GENERIC_SECRET: return { type: CKM.SHA256_HMAC, parameter: null };
    case CKK.SHA_1_HMAC: return { type: CKM.SHA_1_HMAC, parameter: null };
    case CKK.SHA224_HMAC: return { type: CKM.SHA224_HMAC, parameter: null };
    case CKK.SHA256_HMAC: return { type: CKM.SHA256_HMAC, parameter: null };
    case CKK.SHA384_HMAC: return { type: CKM.SHA384_HMAC, parameter: null };
    case CKK.SHA512_HMAC: return { type: CKM.SHA512_HMAC, parameter: null };
  }
  throw new ClientError('NTLS_ERR_ARGUMENT', `object ${key.handle} is not a key that signs`, 'name a signing key (RSA, EC, Ed25519 or HMAC)');
}

export const OAEP_SHA256: Mechanism = {
  type: CKM.RSA_PKCS_OAEP,
  parameter: { kind: 'oaep', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, source: 0, sourceData: null },
};

export const KEY_CLASSES = { public: CKO.PUBLIC_KEY, private: CKO.PRIVATE_KEY, secret: CKO.SECRET_KEY } as const;
