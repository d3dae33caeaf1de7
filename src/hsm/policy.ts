// A partition's policy: what its operator allows beyond this HSM's defaults (`ntls partition
// policy`). Legacy RSA sizes: by default RSA keys are generated from 2048 bits and imported or
// used from 1024; with `legacyRsa` on, generated from 1024 and imported or used from 512 (old
// payment and device keys). The mechanisms can do more; the policy is applied here, per partition.

import { CKA, CKK, CKM, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { AttributeValue } from '../pkcs11/attributes.js';
import type { MechanismInfo } from '../pkcs11/info.js';
import type { PartitionPolicy } from '../store/hsm-store.js';

export interface RsaBits {
  /** Smallest modulus C_GenerateKeyPair makes. */
  generate: number;
  /** Smallest modulus imported (C_CreateObject) or used. */
  use: number;
}

export const RSA_BITS: { standard: RsaBits; legacy: RsaBits } = {
  standard: { generate: 2048, use: 1024 },
  legacy: { generate: 1024, use: 512 },
};

export function rsaBits(policy: PartitionPolicy): RsaBits {
  return policy.legacyRsa ? RSA_BITS.legacy : RSA_BITS.standard;
}

const RSA_MECHANISMS: ReadonlySet<number> = new Set(Object.entries(CKM).filter(([name]) => name.includes('RSA')).map(([, value]) => value));

/** The mechanism table a partition shows (C_GetMechanismInfo): RSA minimum sizes as its policy says. */
export function mechanismTable(base: ReadonlyMap<number, MechanismInfo>, policy: PartitionPolicy): ReadonlyMap<number, MechanismInfo> {
  const bits = rsaBits(policy);
  const table = new Map<number, MechanismInfo>();
  for (const [type, info] of base) {
    if (!RSA_MECHANISMS.has(type)) {
      table.set(type, info);
      continue;
    }
    const floor = type === CKM.RSA_PKCS_KEY_PAIR_GEN ? bits.generate : bits.use;
    table.set(type, { ...info, minKeySize: Math.max(info.minKeySize, floor) });
  }
  return table;
}

/** CKA_MODULUS_BITS of a key pair about to be generated: CKR_KEY_SIZE_RANGE below the partition's minimum. */
export function checkRsaGeneration(policy: PartitionPolicy, bits: number): void {
  if (Number.isInteger(bits) && bits < rsaBits(policy).generate) {
    throw new Pkcs11Error(CKR.KEY_SIZE_RANGE, `RSA keys of ${bits} bits are not generated on this partition${policy.legacyRsa ? '' : ' (ntls partition policy --legacy-rsa on allows 1024)'}`);
  }
}

/** The modulus length in bits of an RSA key's attributes, or null for other keys. */
export function rsaModulusBits(attributes: ReadonlyMap<number, AttributeValue>): number | null {
  if (attributes.get(CKA.KEY_TYPE) !== CKK.RSA) return null;
  const modulus = attributes.get(CKA.MODULUS);
  if (!Buffer.isBuffer(modulus)) return null;
  let i = 0;
  while (i < modulus.length && modulus[i] === 0) i++;
  if (i === modulus.length) return 0;
  return (modulus.length - i - 1) * 8 + (32 - Math.clz32(modulus[i]!));
}

/** An RSA key imported or used: below the partition's minimum it is refused with `rv`. */
export function checkRsaKeySize(policy: PartitionPolicy, attributes: ReadonlyMap<number, AttributeValue>, rv: number): void {
  const bits = rsaModulusBits(attributes);
  if (bits !== null && bits < rsaBits(policy).use) {
    throw new Pkcs11Error(rv, `RSA keys of ${bits} bits are not ${rv === CKR.KEY_SIZE_RANGE ? 'used' : 'imported'} on this partition${policy.legacyRsa ? '' : ' (ntls partition policy --legacy-rsa on allows 512 and more)'}`);
  }
}
