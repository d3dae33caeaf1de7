// Test-side shorthand for driving the Mechanisms contract in one call per operation.

import { CKK, CKO, Pkcs11Error } from '../../../src/pkcs11/constants.js';
import type { Mechanism, MechanismParameter } from '../../../src/pkcs11/mechanism.js';
import { softwareMechanisms as m } from '../../../src/hsm/mechanisms/index.js';
import type { KeyMaterial, StreamingOperation } from '../../../src/hsm/mechanisms/contract.js';

export const hex = (value: string): Buffer => Buffer.from(value.replace(/\s+/g, ''), 'hex');

export function mech(type: number, parameter: MechanismParameter | null = null): Mechanism {
  return { type, parameter };
}

export function bytes(value: Buffer): MechanismParameter {
  return { kind: 'bytes', value };
}

export function secret(keyType: number, value: Buffer): KeyMaterial {
  return { objectClass: CKO.SECRET_KEY, keyType, der: value };
}

export const aes = (value: Buffer | string): KeyMaterial => secret(CKK.AES, typeof value === 'string' ? hex(value) : value);

/** Feeds `chunks` through update() and collects update and final output. */
export async function drive(operation: StreamingOperation<void, Buffer>, ...chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = [];
  for (const chunk of chunks) {
    const part = await operation.update(chunk);
    if (part) out.push(part);
  }
  out.push(await operation.final());
  return Buffer.concat(out);
}

export async function verifyWith(operation: StreamingOperation<Buffer, boolean>, signature: Buffer, ...chunks: Buffer[]): Promise<boolean> {
  for (const chunk of chunks) await operation.update(chunk);
  return operation.final(signature);
}

export const encrypt = (mechanism: Mechanism, key: KeyMaterial, ...chunks: Buffer[]) => drive(m.encrypt(mechanism, key), ...chunks);
export const decrypt = (mechanism: Mechanism, key: KeyMaterial, ...chunks: Buffer[]) => drive(m.decrypt(mechanism, key), ...chunks);
export const sign = (mechanism: Mechanism, key: KeyMaterial, ...chunks: Buffer[]) => drive(m.sign(mechanism, key), ...chunks);
export const verify = (mechanism: Mechanism, key: KeyMaterial, signature: Buffer, ...chunks: Buffer[]) => verifyWith(m.verify(mechanism, key), signature, ...chunks);
export const digest = (mechanism: Mechanism, ...chunks: Buffer[]) => drive(m.digest(mechanism), ...chunks);

/** The CKR_ code a call fails with (sync throw or rejection), or null if it succeeds. */
export async function rvOf(action: () => unknown): Promise<number | null> {
  try {
    await action();
    return null;
  } catch (error) {
    if (error instanceof Pkcs11Error) return error.rv;
    throw error;
  }
}

export { m as mechanisms };
