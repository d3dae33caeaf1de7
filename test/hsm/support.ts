// Shared set-up for the HSM conformance tests: a fresh home, an HSM with a fast KDF, one
// initialised partition with SO and Crypto Officer PINs, and helpers to read CKR_ codes.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SoftwareHsm, type HsmOptions } from '../../src/hsm/index.js';
import { SoftwareUnderTest } from '../support/tokens.js';
import { singlePartMechanisms, softwareMechanisms } from '../../src/hsm/mechanisms/index.js';
import { CKF, CKU, Pkcs11Error } from '../../src/pkcs11/constants.js';

export const SO_PIN = 'so-secret-1';
export const CO_PIN = 'co-secret-1';
export const CU_PIN = 'cu-secret-1';
/** Tests use a cheap scrypt; the default (N=2^15) is exercised once in store tests. */
export const FAST_KDF = { cost: 1 << 10 };
export const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;
export const RO = CKF.SERIAL_SESSION;

export function tempHome(): string {
  return mkdtempSync(join(tmpdir(), 'ntls-hsm-'));
}

export function removeHome(home: string): void {
  rmSync(home, { recursive: true, force: true });
}

/** The software HSM of a home under the token model. */
export type Hsm = SoftwareUnderTest;

export async function openHsm(home: string, options: Partial<HsmOptions> = {}): Promise<Hsm> {
  return new SoftwareUnderTest(await SoftwareHsm.open({ home, mechanisms: softwareMechanisms, singlePartMechanisms, kdf: FAST_KDF, ...options }));
}

/** The CKR_ code a call ends with: 0 for success. Works for calls that throw and calls that reject. */
export async function rv(call: () => unknown): Promise<number> {
  try {
    await call();
    return 0;
  } catch (error) {
    if (error instanceof Pkcs11Error) return error.rv;
    throw error;
  }
}

/** An HSM with one initialised partition (slot returned), its CO PIN set. */
export async function readyHsm(home: string, options: Partial<HsmOptions> = {}): Promise<{ hsm: Hsm; slot: number }> {
  const hsm = await openHsm(home, options);
  const { slotId } = await hsm.createPartition({ label: 'test', soPin: SO_PIN });
  const admin = hsm.application('setup');
  const s = await admin.C_OpenSession(slotId, RW);
  await admin.C_Login(s, CKU.SO, SO_PIN);
  await admin.C_InitPIN(s, CO_PIN);
  await admin.CA_InitCryptoUserPIN(s, CU_PIN);
  admin.finalize();
  return { hsm, slot: slotId };
}

export const text = (s: string) => Buffer.from(s, 'utf8');
export const mech = (type: number, parameter: import('../../src/pkcs11/mechanism.js').MechanismParameter | null = null) => ({ type, parameter });
