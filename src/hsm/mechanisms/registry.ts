// The mechanism table, built once at load: C_GetMechanismList reads it, every operation
// dispatches through it. Flags come from the handlers an entry has, so they cannot disagree.

import { CKF, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { MechanismDescription } from './contract.js';
import { aesEntries } from './aes.js';
import { cmacEntries } from './cmac.js';
import { des3Entries } from './des3.js';
import { digestEntries } from './digest.js';
import { ecEntries } from './ec.js';
import { eddsaEntries } from './eddsa.js';
import type { MechanismEntry } from './entry.js';
import { hmacEntries } from './hmac.js';
import { rsaEntries } from './rsa.js';

function flagsOf(entry: MechanismEntry): number {
  let flags = entry.extraFlags ?? 0;
  if (entry.sign) flags |= CKF.SIGN;
  if (entry.verify) flags |= CKF.VERIFY;
  if (entry.encrypt) flags |= CKF.ENCRYPT;
  if (entry.decrypt) flags |= CKF.DECRYPT;
  if (entry.digest) flags |= CKF.DIGEST;
  if (entry.generateKey) flags |= CKF.GENERATE;
  if (entry.generateKeyPair) flags |= CKF.GENERATE_KEY_PAIR;
  if (entry.derive) flags |= CKF.DERIVE;
  if (entry.wraps) flags |= CKF.WRAP | CKF.UNWRAP;
  return flags;
}

const allEntries: MechanismEntry[] = [
  ...rsaEntries, ...digestEntries, ...hmacEntries, ...ecEntries, ...eddsaEntries, ...aesEntries, ...des3Entries, ...cmacEntries,
].sort((a, b) => a.type - b.type);

const table: ReadonlyMap<number, MechanismEntry> = new Map(allEntries.map((entry) => [entry.type, entry]));

export const mechanismInfos: readonly MechanismDescription[] = Object.freeze(allEntries.map((entry) => Object.freeze({
  type: entry.type, minKeySize: entry.minKeySize, maxKeySize: entry.maxKeySize, flags: flagsOf(entry),
})));

/** Mechanisms whose C_xxxUpdate is not allowed (PKCS#11 lists them as single-part only). */
export const singlePartMechanisms: ReadonlySet<number> = new Set(
  allEntries.filter((entry) => entry.singlePart).map((entry) => entry.type),
);

/** The entry for a CKM_ value, or CKR_MECHANISM_INVALID. */
export function entryFor(type: number): MechanismEntry {
  const entry = table.get(type);
  if (!entry) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
  return entry;
}

/** The handler `pick` selects, or CKR_MECHANISM_INVALID when the mechanism does not do that. */
export function handlerFor<T>(type: number, pick: (entry: MechanismEntry) => T | undefined): T {
  const handler = pick(entryFor(type));
  if (!handler) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
  return handler;
}
