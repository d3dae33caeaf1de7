// C_GetInfo, slots, tokens and mechanisms; partitions as the HSM administrator sees them.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CKF, CKM, CKR, CKU } from '../../src/pkcs11/constants.js';
import { HsmAdminError } from '../../src/hsm/index.js';
import { Logger } from '../../src/log/logger.js';
import { type Hsm, CO_PIN, RO, RW, SO_PIN, openHsm, readyHsm, removeHome, rv, tempHome } from './support.js';

let home: string;
let hsm: Hsm;
let slot: number;

beforeEach(async () => {
  home = tempHome();
  ({ hsm, slot } = await readyHsm(home));
});
afterEach(async () => {
  hsm.close();
  removeHome(home);
});

describe('C_GetInfo / C_GetSlotList / C_GetSlotInfo / C_GetTokenInfo', () => {
  it('describes the library', async () => {
    const info = hsm.application('a').C_GetInfo();
    expect(info.cryptokiVersion).toEqual({ major: 2, minor: 40 });
    expect(info.manufacturerId).toBe('NTLS');
  });

  it('lists one slot per partition, each with its token present', async () => {
    const second = await hsm.createPartition({ label: 'second', soPin: SO_PIN });
    const app = hsm.application('a');
    expect(app.C_GetSlotList(true)).toEqual([slot, second.slotId]);
    expect((await app.C_GetSlotInfo(second.slotId)).flags & CKF.TOKEN_PRESENT).toBe(CKF.TOKEN_PRESENT);
    expect(await rv(() => app.C_GetSlotInfo(4242))).toBe(CKR.SLOT_ID_INVALID);
    expect(await rv(() => app.C_GetTokenInfo(4242))).toBe(CKR.SLOT_ID_INVALID);
  });

  it('token info: label, serial, flags, session counts', async () => {
    const app = hsm.application('a');
    const info = await app.C_GetTokenInfo(slot);
    expect(info.label).toBe('test');
    expect(info.serialNumber).toMatch(/^\d{12}$/);
    expect(info.flags & (CKF.TOKEN_INITIALIZED | CKF.USER_PIN_INITIALIZED | CKF.LOGIN_REQUIRED | CKF.RNG))
      .toBe(CKF.TOKEN_INITIALIZED | CKF.USER_PIN_INITIALIZED | CKF.LOGIN_REQUIRED | CKF.RNG);
    expect(info.utcTime).toMatch(/^\d{16}$/);
    await app.C_OpenSession(slot, RO);
    await app.C_OpenSession(slot, RW);
    expect([(await app.C_GetTokenInfo(slot)).sessionCount, (await app.C_GetTokenInfo(slot)).rwSessionCount]).toEqual([2, 1]);
  });
});

describe('C_GetMechanismList / C_GetMechanismInfo', () => {
  it('lists the mechanisms with their flags', async () => {
    const app = hsm.application('a');
    const list = app.C_GetMechanismList(slot);
    for (const m of [CKM.RSA_PKCS_KEY_PAIR_GEN, CKM.ECDSA_SHA256, CKM.EDDSA, CKM.AES_GCM, CKM.SHA256, CKM.SHA256_HMAC, CKM.AES_KEY_WRAP]) {
      expect(list).toContain(m);
    }
    const info = app.C_GetMechanismInfo(slot, CKM.ECDSA_SHA256);
    expect(info.flags & (CKF.SIGN | CKF.VERIFY)).toBe(CKF.SIGN | CKF.VERIFY);
    expect(await rv(() => app.C_GetMechanismInfo(slot, 0x7fff0000))).toBe(CKR.MECHANISM_INVALID);
    expect(await rv(() => app.C_GetMechanismList(4242))).toBe(CKR.SLOT_ID_INVALID);
  });
});

describe('partitions (HSM administrator)', () => {
  it('are limited in number by configuration', async () => {
    hsm.close();
    hsm = await openHsm(home, { maxPartitions: 2 });
    await hsm.createPartition({ label: 'two' });
    const error = await hsm.createPartition({ label: 'three' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HsmAdminError);
    expect((error as HsmAdminError).code).toBe('NTLS_ERR_PARTITION_LIMIT');
  });

  it('have unique slots and serials, and survive restart', async () => {
    const b = await hsm.createPartition({ label: 'b' });
    const c = await hsm.createPartition({ label: 'c', soPin: SO_PIN });
    const before = hsm.listPartitions();
    expect(new Set(before.map((p) => p.serial)).size).toBe(3);
    expect(before.map((p) => p.slotId)).toEqual([slot, b.slotId, c.slotId]);
    hsm.close();
    hsm = await openHsm(home);
    expect(hsm.listPartitions()).toEqual(before);
  });

  it('deletion ends the partition\'s sessions and removes it from the store', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    await hsm.deletePartition(slot);
    expect(await rv(() => app.C_GetSessionInfo(s))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(app.C_GetSlotList(true)).toEqual([]);
    await expect(hsm.deletePartition(slot)).rejects.toThrow(HsmAdminError);
    hsm.close();
    hsm = await openHsm(home);
    expect(hsm.listPartitions()).toEqual([]);
  });

  it('labels longer than 32 bytes are refused', async () => {
    const error = await hsm.createPartition({ label: 'x'.repeat(33) }).catch((e: unknown) => e);
    expect((error as HsmAdminError).code).toBe('NTLS_ERR_LABEL_INVALID');
  });

  it('"Found N partitions on HSM." is logged at open (debug)', async () => {
    await hsm.createPartition({ label: 'b' });
    hsm.close();
    const logger = new Logger({ debug: true });
    const lines: string[] = [];
    logger.onLine((line) => lines.push(line));
    hsm = await openHsm(home, { logger });
    expect(lines.some((l) => l.endsWith('Found 2 partitions on HSM.'))).toBe(true);
  });

  it('a first start\'s partition (initialPartition) is made before "Found N partitions on HSM." counts: 1, not 0; a later open makes none', async () => {
    const fresh = tempHome();
    try {
      const logger = new Logger({ debug: true });
      const found: string[] = [];
      logger.onLine((line) => { if (line.includes('partitions on HSM.')) found.push(line.slice(line.indexOf(']: ') + 3)); });
      for (const open of ['first', 'again']) {
        const opened = await openHsm(fresh, { logger, initialPartition: 'default' });
        expect(opened.listPartitions().map((p) => p.name), open).toEqual(['default']);
        opened.close();
      }
      expect(found).toEqual(['debug : 0 : Found 1 partitions on HSM.', 'debug : 0 : Found 1 partitions on HSM.']);
    } finally {
      removeHome(fresh);
    }
  });
});

describe('settings', () => {
  it('a KDF cost that is not a power of two, or crossed PIN bounds, are refused before the store is opened', async () => {
    hsm.close();
    await expect(openHsm(home, { kdf: { cost: 3000 } })).rejects.toBeInstanceOf(RangeError);
    await expect(openHsm(home, { pinPolicy: { minLength: 20, maxLength: 10 } })).rejects.toBeInstanceOf(RangeError);
    hsm = await openHsm(home);
  });
});

describe('partitions created at the same time', () => {
  it('get distinct slots and ids', async () => {
    const made = await Promise.all([1, 2, 3].map((n) => hsm.createPartition({ label: `p${n}`, soPin: SO_PIN })));
    expect(new Set(made.map((p) => p.slotId)).size).toBe(3);
    hsm.close();
    hsm = await openHsm(home);
    expect(hsm.listPartitions().length).toBe(4);
  });
});
