// A store with no room left (the disk of the home full): a call that would write a token object
// answers CKR_DEVICE_MEMORY with the guide's device-error line, nothing of it stays in memory or
// on disk, the keys already there go on working, and once there is room again calls write as
// before. SQLite's max_page_count stands in for the full disk: SQLite reports both as SQLITE_FULL.
// A store that refuses every write (query_only: as a full disk refuses the journal's growth, or a
// database that went down) still counts wrong PINs: in memory, and the lock comes as before.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type Database from 'better-sqlite3';
import { Logger } from '../../src/log/logger.js';
import { CKA, CKF, CKK, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import type { Template } from '../../src/pkcs11/attributes.js';
import { CO_PIN, RW, SO_PIN, mech, openHsm, readyHsm, removeHome, rv, tempHome, text, type Hsm } from '../hsm/support.js';

let home: string;
beforeEach(() => {
  home = tempHome();
});
afterEach(() => removeHome(home));

/** The store's SQLite connection (private to the store; a test reaches it to take the room away). */
function databaseOf(hsm: Hsm): Database.Database {
  return (hsm.device.store as unknown as { db: Database.Database }).db;
}

const aesKey = (label: string, token = true): Template => [
  { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }, { type: CKA.VALUE_LEN, value: 32 },
  { type: CKA.TOKEN, value: token }, { type: CKA.ENCRYPT, value: true }, { type: CKA.DECRYPT, value: true },
  // A long label: the row needs pages of its own.
  { type: CKA.LABEL, value: text(label.padEnd(3000, '.')) },
];

async function labels(app: ReturnType<Hsm['application']>, session: number): Promise<string[]> {
  await app.C_FindObjectsInit(session, [{ type: CKA.TOKEN, value: true }]);
  const handles = await app.C_FindObjects(session, 100);
  await app.C_FindObjectsFinal(session);
  const found: string[] = [];
  for (const h of handles) {
    const { attributes } = await app.C_GetAttributeValue(session, h, [{ type: CKA.LABEL }]);
    found.push((attributes[0]!.value as Buffer).toString().replace(/\.+$/, ''));
  }
  return found.sort();
}

describe('a full store', () => {
  it('CKR_DEVICE_MEMORY and the guide\'s line for a token write; nothing of it stays; the rest is served; room again: writes again', async () => {
    const logger = new Logger({ debug: true });
    const lines: string[] = [];
    logger.onLine((line) => lines.push(line));
    const { hsm, slot } = await readyHsm(home, { logger });
    const app = hsm.application('full');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    const kept = await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), aesKey('kept'));

    const db = databaseOf(hsm);
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    const from = lines.length;
    expect(await rv(() => app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), aesKey('refused')))).toBe(CKR.DEVICE_MEMORY);
    expect(await rv(() => app.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: text('data'.padEnd(3000, '.')) },
    ]))).toBe(CKR.DEVICE_MEMORY);
    expect(lines.slice(from).filter((l) => /Fail to retrieve container list : LUNA_RET_DEVICE_ERROR$/.test(l))).toHaveLength(2);

    // What was there is found and used; a session key needs no room on disk.
    expect(await labels(app, s)).toEqual(['kept']);
    const session = await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), aesKey('session', false));
    for (const key of [kept, session]) {
      await app.C_EncryptInit(s, mech(CKM.AES_CBC_PAD, { kind: 'bytes', value: Buffer.alloc(16) }), key);
      expect((await app.C_Encrypt(s, text('still served'))).length).toBe(16);
    }

    db.pragma('max_page_count = 1073741823');
    await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), aesKey('after'));
    expect(await labels(app, s)).toEqual(['after', 'kept']);
    hsm.close();

    // On disk: the same, none of the refused writes.
    const reopened = await openHsm(home);
    const again = reopened.application('again');
    const s2 = await again.C_OpenSession(slot, RW);
    await again.C_Login(s2, CKU.USER, CO_PIN);
    expect(await labels(again, s2)).toEqual(['after', 'kept']);
    reopened.close();
  });

  it('a wrong PIN the store cannot count is CKR_PIN_INCORRECT, counted in memory: the lock comes after maxFailedLogins, for the right PIN too, and is stored once the store takes it', async () => {
    const { hsm, slot } = await readyHsm(home, { pinPolicy: { maxFailedLogins: 3 } });
    const app = hsm.application('guess');
    const s = await app.C_OpenSession(slot, RW);
    const db = databaseOf(hsm);
    db.pragma('query_only = ON');
    // The right PIN with no failure behind it writes nothing: it still logs in.
    await app.C_Login(s, CKU.USER, CO_PIN);
    await app.C_Logout(s);
    // Answered as the wrong PINs they are (before: CKR_DEVICE_ERROR, or CKR_DEVICE_MEMORY on a
    // full disk, and so not audited as failed logins), and counted where partition show reads.
    for (let i = 0; i < 3; i++) expect(await rv(() => app.C_Login(s, CKU.USER, `wrong-pin-${i}`))).toBe(CKR.PIN_INCORRECT);
    expect(hsm.partition(slot).failures('co')).toBe(3);
    // Before, each wrong PIN cost nothing here and this logged in: a guess without end.
    expect(await rv(() => app.C_Login(s, CKU.USER, CO_PIN))).toBe(CKR.PIN_LOCKED);
    expect(await rv(() => app.C_Login(s, CKU.USER, 'wrong-pin-x'))).toBe(CKR.PIN_LOCKED);
    expect(hsm.getTokenInfo(slot).flags & CKF.USER_PIN_LOCKED).toBe(CKF.USER_PIN_LOCKED);

    db.pragma('query_only = OFF');
    expect(await rv(() => app.C_Login(s, CKU.USER, CO_PIN))).toBe(CKR.PIN_LOCKED);
    await app.C_CloseSession(s);
    hsm.close();
    // The lock reached the store: a restart keeps it; the SO unlocks as for any lock.
    const reopened = await openHsm(home, { pinPolicy: { maxFailedLogins: 3 } });
    const again = reopened.application('again');
    const s2 = await again.C_OpenSession(slot, RW);
    expect(await rv(() => again.C_Login(s2, CKU.USER, CO_PIN))).toBe(CKR.PIN_LOCKED);
    await again.C_Login(s2, CKU.SO, SO_PIN);
    await again.C_InitPIN(s2, CO_PIN);
    await again.C_Logout(s2);
    await again.C_Login(s2, CKU.USER, CO_PIN);
    reopened.close();
  });
});
