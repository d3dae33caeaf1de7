// A partition's room in the store (hsm.maxPartitionBytes): token objects past it are refused
// with CKR_DEVICE_MEMORY and nothing of the call is kept, C_GetTokenInfo reports the room and
// what is free, destroying gives room back, other partitions are not counted, and a restart
// counts what is stored. One client cannot fill the disk every partition shares. Session objects
// take the same room in memory: one client, without a login, cannot fill the daemon's memory.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CKA, CKK, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import type { Template } from '../../src/pkcs11/attributes.js';
import { CO_PIN, RW, SO_PIN, mech, openHsm, readyHsm, removeHome, rv, tempHome, text } from './support.js';

const ROOM = 64 * 1024;

let home: string;
beforeEach(() => {
  home = tempHome();
});
afterEach(() => removeHome(home));

const data = (label: string, bytes: number, token = true): Template => [
  { type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: token }, { type: CKA.PRIVATE, value: true },
  { type: CKA.LABEL, value: text(label) }, { type: CKA.VALUE, value: Buffer.alloc(bytes, 7) },
];

describe('a partition\'s room', () => {
  it('token objects past hsm.maxPartitionBytes: CKR_DEVICE_MEMORY, nothing kept; the token info says what is free; destroying gives it back', async () => {
    const { hsm, slot } = await readyHsm(home, { maxPartitionBytes: ROOM });
    const app = hsm.application('fill');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    const before = hsm.getTokenInfo(slot);
    expect(before.totalPrivateMemory).toBe(ROOM);
    expect(before.totalPublicMemory).toBe(ROOM);
    expect(before.freePrivateMemory).toBe(ROOM);

    const made: number[] = [];
    let refused = 0;
    for (let i = 0; i < 20 && refused === 0; i++) {
      const r = await rv(async () => made.push(await app.C_CreateObject(s, data(`d${i}`, 8192))));
      if (r !== 0) refused = r;
    }
    expect(refused).toBe(CKR.DEVICE_MEMORY);
    expect(made.length).toBeGreaterThanOrEqual(6);
    expect(made.length).toBeLessThan(8);
    const full = hsm.getTokenInfo(slot);
    expect(full.freePrivateMemory).toBeLessThan(8192);
    expect(full.freePublicMemory).toBe(full.freePrivateMemory);
    await app.C_FindObjectsInit(s, [{ type: CKA.CLASS, value: CKO.DATA }]);
    expect(await app.C_FindObjects(s, 100)).toHaveLength(made.length);
    await app.C_FindObjectsFinal(s);

    // Generated keys, grown attributes and session objects are counted as well.
    expect(await rv(() => app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [
      { type: CKA.TOKEN, value: true }, { type: CKA.VALUE_LEN, value: 32 }, { type: CKA.LABEL, value: text('k'.repeat(8192)) },
    ]))).toBe(CKR.DEVICE_MEMORY);
    expect(await rv(() => app.C_SetAttributeValue(s, made[0]!, [{ type: CKA.LABEL, value: text('x'.repeat(16384)) }]))).toBe(CKR.DEVICE_MEMORY);
    const { attributes } = await app.C_GetAttributeValue(s, made[0]!, [{ type: CKA.LABEL }]);
    expect((attributes[0]!.value as Buffer).toString()).toBe('d0');
    expect(await rv(() => app.C_CreateObject(s, data('in-session', 16384, false)))).toBe(CKR.DEVICE_MEMORY);
    // A change that takes no more room is written.
    await app.C_SetAttributeValue(s, made[0]!, [{ type: CKA.LABEL, value: text('d0') }]);

    await app.C_DestroyObject(s, made.pop()!);
    expect(hsm.getTokenInfo(slot).freePrivateMemory).toBeGreaterThan(full.freePrivateMemory + 8192);
    made.push(await app.C_CreateObject(s, data('again', 8192)));

    // Another partition has its own room.
    const other = await hsm.createPartition({ label: 'other', soPin: SO_PIN });
    const admin = hsm.application('other');
    const so = await admin.C_OpenSession(other.slotId, RW);
    await admin.C_Login(so, CKU.SO, SO_PIN);
    await admin.C_CreateObject(so, [
      { type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: false }, { type: CKA.VALUE, value: Buffer.alloc(8192) },
    ]);
    const used = ROOM - hsm.getTokenInfo(slot).freePrivateMemory;
    hsm.close();

    // After a restart the room is counted from the store.
    const reopened = await openHsm(home, { maxPartitionBytes: ROOM });
    expect(ROOM - reopened.getTokenInfo(slot).freePrivateMemory).toBe(used);
    const again = reopened.application('again');
    const s2 = await again.C_OpenSession(slot, RW);
    await again.C_Login(s2, CKU.USER, CO_PIN);
    expect(await rv(() => again.C_CreateObject(s2, data('over', 8192)))).toBe(CKR.DEVICE_MEMORY);
    reopened.close();
  });

  it('a key pair that does not fit is refused whole', async () => {
    const { hsm, slot } = await readyHsm(home, { maxPartitionBytes: ROOM });
    const app = hsm.application('pair');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    await app.C_CreateObject(s, data('filler', ROOM - 2048));
    const pair = () => app.C_GenerateKeyPair(s, mech(CKM.RSA_PKCS_KEY_PAIR_GEN),
      [{ type: CKA.TOKEN, value: true }, { type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }],
      [{ type: CKA.TOKEN, value: true }, { type: CKA.KEY_TYPE, value: CKK.RSA }]);
    expect(await rv(pair)).toBe(CKR.DEVICE_MEMORY);
    await app.C_FindObjectsInit(s, [{ type: CKA.KEY_TYPE, value: CKK.RSA }]);
    expect(await app.C_FindObjects(s, 10)).toHaveLength(0);
    hsm.close();
  });

  it('session objects take the room in memory, in a public session too; closing the session gives it back', async () => {
    const { hsm, slot } = await readyHsm(home, { maxPartitionBytes: ROOM });
    const app = hsm.application('public');
    const s = await app.C_OpenSession(slot, RW);
    const publicData = (i: number): Template => [
      { type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: false }, { type: CKA.PRIVATE, value: false },
      { type: CKA.LABEL, value: text(`s${i}`) }, { type: CKA.VALUE, value: Buffer.alloc(8192, 1) },
    ];
    let made = 0;
    let refused = 0;
    for (let i = 0; i < 20 && refused === 0; i++) {
      const r = await rv(() => app.C_CreateObject(s, publicData(i)));
      if (r === 0) made++;
      else refused = r;
    }
    expect(refused).toBe(CKR.DEVICE_MEMORY);
    expect(made).toBeGreaterThanOrEqual(6);
    expect(made).toBeLessThan(8);
    expect(hsm.getTokenInfo(slot).freePublicMemory).toBeLessThan(8192);
    // Another application of the partition meets the same room.
    const other = hsm.application('other');
    const o = await other.C_OpenSession(slot, RW);
    expect(await rv(() => other.C_CreateObject(o, publicData(99)))).toBe(CKR.DEVICE_MEMORY);
    await app.C_CloseSession(s);
    expect(hsm.getTokenInfo(slot).freePublicMemory).toBe(ROOM);
    await other.C_CreateObject(o, publicData(100));
    hsm.close();
  });
});
