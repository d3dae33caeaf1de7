// A PIN that already opened a role's credential since start is checked without the KDF; a
// first or wrong PIN still runs it and counts toward the lock; a PIN change, C_InitPIN,
// C_InitToken, a lock and a deleted partition drop what was remembered. KDF runs are counted
// through the HSM's onKdf hook, not timed.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CKR, CKU } from '../../src/pkcs11/constants.js';
import { CKU_CRYPTO_USER } from '../../src/token/roles.js';
import { CO_PIN, CU_PIN, SO_PIN, RW, readyHsm, removeHome, rv, tempHome, type Hsm } from './support.js';

let home: string;
let hsm: Hsm;
let slot: number;
let kdfRuns: number;

beforeEach(async () => {
  home = tempHome();
  kdfRuns = 0;
  ({ hsm, slot } = await readyHsm(home, { onKdf: () => { kdfRuns++; }, pinPolicy: { maxFailedLogins: 3 } }));
  kdfRuns = 0;
});

afterEach(() => {
  hsm.close();
  removeHome(home);
});

/** One application's C_Login then finalize (a process per signature, as scripts do). */
async function loginOnce(pin: string, user: number = CKU.USER): Promise<number> {
  const app = hsm.application(`app-${Math.random()}`);
  const s = await app.C_OpenSession(slot, RW);
  const result = await rv(() => app.C_Login(s, user, pin));
  app.finalize();
  return result;
}

const failures = () => hsm.partition(slot).row.failures;

describe('login cache', () => {
  it('the first login runs the KDF, the next ones with the same PIN do not, and they still open the partition key', async () => {
    expect(await loginOnce(CO_PIN)).toBe(CKR.OK);
    expect(kdfRuns).toBe(1);
    for (let i = 0; i < 5; i++) expect(await loginOnce(CO_PIN)).toBe(CKR.OK);
    expect(kdfRuns).toBe(1);
    // The remembered login really gives the partition key: a token object is created (sealed) and read back.
    const app = hsm.application('keys');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    expect(hsm.partition(slot).partitionKey).not.toBeNull();
    expect(kdfRuns).toBe(1);
    app.finalize();
    expect(hsm.partition(slot).partitionKey).toBeNull();
  });

  it('each role is remembered on its own: the Crypto Officer and the Crypto User pay the KDF once each, the SO (set-up logged in) none', async () => {
    await loginOnce(CO_PIN);
    await loginOnce(CU_PIN, CKU_CRYPTO_USER);
    await loginOnce(SO_PIN, CKU.SO);
    expect(kdfRuns).toBe(2);
    await loginOnce(CU_PIN, CKU_CRYPTO_USER);
    await loginOnce(SO_PIN, CKU.SO);
    await loginOnce(CO_PIN);
    expect(kdfRuns).toBe(2);
    // The Crypto User's PIN is not the Crypto Officer's: the remembered CO PIN does not open the CU role.
    expect(await loginOnce(CO_PIN, CKU_CRYPTO_USER)).toBe(CKR.PIN_INCORRECT);
    expect(kdfRuns).toBe(3);
  });

  it('a wrong PIN after a remembered one still runs the KDF and counts toward the lock; the right one resets the count', async () => {
    await loginOnce(CO_PIN);
    expect(kdfRuns).toBe(1);
    expect(await loginOnce('wrong-pin-1')).toBe(CKR.PIN_INCORRECT);
    expect(kdfRuns).toBe(2);
    expect(failures().co).toBe(1);
    expect(await loginOnce(CO_PIN)).toBe(CKR.OK);
    expect(kdfRuns).toBe(2);
    expect(failures().co).toBe(0);
  });

  it('a lock drops the remembered PIN: after the lock even the right PIN is CKR_PIN_LOCKED', async () => {
    await loginOnce(CO_PIN);
    for (let i = 0; i < 3; i++) expect(await loginOnce('wrong-pin-x')).toBe(CKR.PIN_INCORRECT);
    expect(hsm.device.logins.holds(hsm.partition(slot).id, 'co')).toBe(false);
    expect(await loginOnce(CO_PIN)).toBe(CKR.PIN_LOCKED);
  });

  it('guesses sent at once cannot pass the lock: each is judged after the one before was counted', async () => {
    const guesses = await Promise.all([...Array.from({ length: 10 }, (_, i) => loginOnce(`wrong-pin-${i}`)), loginOnce(CO_PIN)]);
    expect(guesses.filter((r) => r === CKR.PIN_INCORRECT)).toHaveLength(3);
    expect(guesses.slice(3)).toEqual(Array(8).fill(CKR.PIN_LOCKED));
    expect(kdfRuns).toBe(3);
    expect(failures().co).toBe(3);
  });

  it('C_SetPIN drops the remembered PIN: the old one is refused (with the KDF, counted), the new one pays the KDF once', async () => {
    await loginOnce(CO_PIN);
    const app = hsm.application('change');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    await app.C_SetPIN(s, CO_PIN, 'new-co-pin-2');
    app.finalize();
    kdfRuns = 0;
    expect(await loginOnce(CO_PIN)).toBe(CKR.PIN_INCORRECT);
    expect(kdfRuns).toBe(1);
    expect(failures().co).toBe(1);
    expect(await loginOnce('new-co-pin-2')).toBe(CKR.OK);
    expect(await loginOnce('new-co-pin-2')).toBe(CKR.OK);
    expect(kdfRuns).toBe(2);
  });

  it('C_InitPIN by the SO drops the Crypto Officer\'s remembered PIN', async () => {
    await loginOnce(CO_PIN);
    const app = hsm.application('so');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.SO, SO_PIN);
    await app.C_InitPIN(s, 'reset-co-pin');
    app.finalize();
    kdfRuns = 0;
    expect(await loginOnce(CO_PIN)).toBe(CKR.PIN_INCORRECT);
    expect(kdfRuns).toBe(1);
  });

  it('C_InitToken drops every role of the partition', async () => {
    await loginOnce(SO_PIN, CKU.SO);
    const id = hsm.partition(slot).id;
    expect(hsm.device.logins.holds(id, 'so')).toBe(true);
    await hsm.application('init').C_InitToken(slot, SO_PIN, 'again');
    expect(hsm.device.logins.holds(id, 'so')).toBe(false);
    kdfRuns = 0;
    expect(await loginOnce(SO_PIN, CKU.SO)).toBe(CKR.OK);
    expect(kdfRuns).toBe(1);
  });

  it('deleting the partition drops its remembered PINs', async () => {
    await loginOnce(CO_PIN);
    const id = hsm.partition(slot).id;
    expect(hsm.device.logins.holds(id, 'co')).toBe(true);
    await hsm.deletePartition(slot);
    expect(hsm.device.logins.holds(id, 'co')).toBe(false);
  });
});
