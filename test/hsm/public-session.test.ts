// Keys in a read-write public session (nobody logged in), issue 15 item 7: a token key is
// refused even when CKA_PRIVATE is false (its value is sealed under the partition key, which
// only a login opens: docs/hsm.md, "Key generation in a public session"); session keys that are
// not private, and public token objects, are made and used.

import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CKA, CKK, CKM, CKO, CKR } from '../../src/pkcs11/constants.js';
import type { Application } from '../../src/token/index.js';
import { RW, mech, readyHsm, removeHome, rv, tempHome, type Hsm } from './support.js';

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const t = (type: number, value: unknown) => ({ type, value: value as never });

let home: string;
let hsm: Hsm;
let app: Application;
let s: number;

beforeEach(async () => {
  home = tempHome();
  let slot: number;
  ({ hsm, slot } = await readyHsm(home));
  app = hsm.application('public');
  s = await app.C_OpenSession(slot, RW);
});
afterEach(() => {
  hsm.close();
  removeHome(home);
});

async function objectCount(): Promise<number> {
  await app.C_FindObjectsInit(s, []);
  const found = await app.C_FindObjects(s, 100);
  await app.C_FindObjectsFinal(s);
  return found.length;
}

const pair = (token: boolean) => app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN),
  [t(CKA.EC_PARAMS, P256), t(CKA.TOKEN, token), t(CKA.PRIVATE, false)],
  [t(CKA.TOKEN, token), t(CKA.PRIVATE, false), t(CKA.SIGN, true)]);

describe('key generation in a read-write public session', () => {
  it('a token key pair is CKR_USER_NOT_LOGGED_IN even with CKA_PRIVATE false on both keys, and leaves nothing behind', async () => {
    const before = await objectCount();
    expect(await rv(() => pair(true))).toBe(CKR.USER_NOT_LOGGED_IN);
    expect(await rv(() => app.C_GenerateKeyPair(s, mech(CKM.RSA_PKCS_KEY_PAIR_GEN), [t(CKA.MODULUS_BITS, 2048), t(CKA.TOKEN, true), t(CKA.PRIVATE, false)],
      [t(CKA.TOKEN, true), t(CKA.PRIVATE, false)]))).toBe(CKR.USER_NOT_LOGGED_IN);
    expect(await objectCount()).toBe(before);
  });

  it('a token secret key is CKR_USER_NOT_LOGGED_IN even with CKA_PRIVATE false', async () => {
    expect(await rv(() => app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.TOKEN, true), t(CKA.PRIVATE, false)]))).toBe(CKR.USER_NOT_LOGGED_IN);
    expect(await rv(() => app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE, Buffer.alloc(16, 1)),
      t(CKA.TOKEN, true), t(CKA.PRIVATE, false)]))).toBe(CKR.USER_NOT_LOGGED_IN);
  });

  it('a session key pair with CKA_PRIVATE false is made and signs; its public key may become a token object', async () => {
    const keys = await pair(false);
    await app.C_SignInit(s, mech(CKM.ECDSA), keys.privateKey);
    expect(await app.C_Sign(s, createHash('sha256').update('public').digest())).toHaveLength(64);
    const copy = await app.C_CopyObject(s, keys.publicKey, [t(CKA.TOKEN, true)]);
    expect((await app.C_GetAttributeValue(s, copy, [{ type: CKA.TOKEN }])).attributes[0]!.value).toBe(true);
  });

  it('a private session key pair (the default) needs the Crypto Officer', async () => {
    expect(await rv(() => app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, P256)], []))).toBe(CKR.USER_NOT_LOGGED_IN);
  });
});
