// Bulk symmetric work on the event loop every client shares: a long input goes through in slices,
// so another client's call is answered while a 4 MiB triple-DES MAC is being made, and the result
// is what one piece would give.
import { createCipheriv, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKK, CKM, CKO, CKU } from '../../src/pkcs11/constants.js';
import { CO_PIN, RW, mech, readyHsm, removeHome, tempHome, type Hsm } from './support.js';

let home: string;
let hsm: Hsm;
let slot: number;

beforeAll(async () => {
  home = tempHome();
  ({ hsm, slot } = await readyHsm(home));
});
afterAll(() => {
  hsm.close();
  removeHome(home);
});

describe('bulk symmetric input', () => {
  it('another application is answered between the slices of a 4 MiB DES3-CMAC; the MAC and an AES-CBC ciphertext are those of one piece', async () => {
    const a = hsm.application('bulk-a');
    const b = hsm.application('bulk-b');
    const sa = await a.C_OpenSession(slot, RW);
    const sb = await b.C_OpenSession(slot, RW);
    await a.C_Login(sa, CKU.USER, CO_PIN);
    const des3Value = randomBytes(24);
    const des3 = await a.C_CreateObject(sa, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.DES3 }, { type: CKA.TOKEN, value: false },
      { type: CKA.VALUE, value: des3Value }, { type: CKA.SIGN, value: true },
    ]);
    const aesValue = randomBytes(32);
    const aes = await a.C_CreateObject(sa, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }, { type: CKA.TOKEN, value: false },
      { type: CKA.VALUE, value: aesValue }, { type: CKA.ENCRYPT, value: true },
    ]);
    const data = randomBytes(4 * 1024 * 1024);

    await a.C_SignInit(sa, mech(CKM.DES3_CMAC), des3);
    const order: string[] = [];
    const mac = a.C_Sign(sa, data).then((out) => { order.push('mac'); return out; });
    const random = (async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      await b.C_GenerateRandom(sb, 16);
      order.push('random');
    })();
    await Promise.all([mac, random]);
    expect(order).toEqual(['random', 'mac']);
    await a.C_SignInit(sa, mech(CKM.DES3_CMAC), des3);
    await a.C_SignUpdate(sa, data.subarray(0, 1000));
    await a.C_SignUpdate(sa, data.subarray(1000));
    expect(await a.C_SignFinal(sa)).toEqual(await mac);

    const iv = randomBytes(16);
    await a.C_EncryptInit(sa, mech(CKM.AES_CBC, { kind: 'bytes', value: iv }), aes);
    const sealed = await a.C_Encrypt(sa, data);
    const cipher = createCipheriv('aes-256-cbc', aesValue, iv).setAutoPadding(false);
    expect(sealed.equals(Buffer.concat([cipher.update(data), cipher.final()]))).toBe(true);
    a.finalize();
    b.finalize();
  });
});
