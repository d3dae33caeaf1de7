// Sessions, login and PINs, as a PKCS#11 conformance suite: each call's success path and its
// CKR_ error paths. Two applications never share sessions or login state.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CKF, CKM, CKR, CKS, CKU, CKO, CKA } from '../../src/pkcs11/constants.js';
import { CKU_CRYPTO_USER } from '../../src/token/index.js';
import { type Hsm, CO_PIN, CU_PIN, RO, RW, SO_PIN, openHsm, readyHsm, removeHome, rv, tempHome, text } from './support.js';

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

describe('C_OpenSession / C_CloseSession / C_CloseAllSessions / C_GetSessionInfo', () => {
  it('opens read-only and read-write sessions with distinct handles', async () => {
    const app = hsm.application('a');
    const ro = await app.C_OpenSession(slot, RO);
    const rw = await app.C_OpenSession(slot, RW);
    expect(ro).not.toBe(rw);
    expect(app.C_GetSessionInfo(ro)).toEqual({ slotId: slot, state: CKS.RO_PUBLIC_SESSION, flags: CKF.SERIAL_SESSION, deviceError: 0 });
    expect(app.C_GetSessionInfo(rw).state).toBe(CKS.RW_PUBLIC_SESSION);
    expect(app.C_GetSessionInfo(rw).flags).toBe(RW);
    expect(hsm.getTokenInfo(slot).sessionCount).toBe(2);
    expect(hsm.getTokenInfo(slot).rwSessionCount).toBe(1);
  });

  it('finalize() closes every session of the application; the view can be used again', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    app.finalize();
    expect(await rv(() => app.C_GetSessionInfo(s))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(hsm.getTokenInfo(slot).sessionCount).toBe(0);
    // C_Finalize then C_Initialize on the same connection
    const t = await app.C_OpenSession(slot, RW);
    expect(app.C_GetSessionInfo(t).state).toBe(CKS.RW_PUBLIC_SESSION);
    expect(hsm.application('a')).toBe(app);
    // but not once another view has taken its id
    app.finalize();
    const other = hsm.application('a');
    expect(other).not.toBe(app);
    expect(await rv(() => app.C_OpenSession(slot, RW))).toBe(CKR.CRYPTOKI_NOT_INITIALIZED);
  });

  it('requires CKF_SERIAL_SESSION', async () => {
    expect(await rv(() => hsm.application('a').C_OpenSession(slot, CKF.RW_SESSION))).toBe(CKR.SESSION_PARALLEL_NOT_SUPPORTED);
  });

  it('rejects an unknown slot', async () => {
    expect(await rv(() => hsm.application('a').C_OpenSession(999, RW))).toBe(CKR.SLOT_ID_INVALID);
  });

  it('refuses a session on an uninitialised token', async () => {
    const { slotId } = await hsm.createPartition({ label: 'blank' });
    expect(await rv(() => hsm.application('a').C_OpenSession(slotId, RW))).toBe(CKR.TOKEN_NOT_RECOGNIZED);
  });

  it('closes a session; its handle is then invalid', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_CloseSession(s);
    expect(await rv(() => app.C_CloseSession(s))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(await rv(() => app.C_GetSessionInfo(s))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(await rv(() => app.C_Login(s, CKU.USER, CO_PIN))).toBe(CKR.SESSION_HANDLE_INVALID);
  });

  it('closes all sessions of the application on a slot, and logs it out', async () => {
    const app = hsm.application('a');
    const s1 = await app.C_OpenSession(slot, RW);
    const s2 = await app.C_OpenSession(slot, RO);
    await app.C_Login(s1, CKU.USER, CO_PIN);
    const other = hsm.application('b');
    const t = await other.C_OpenSession(slot, RW);
    await app.C_CloseAllSessions(slot);
    expect(await rv(() => app.C_GetSessionInfo(s2))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(other.C_GetSessionInfo(t).state).toBe(CKS.RW_PUBLIC_SESSION);
    const s3 = await app.C_OpenSession(slot, RW);
    expect(app.C_GetSessionInfo(s3).state).toBe(CKS.RW_PUBLIC_SESSION);
    expect(await rv(() => app.C_CloseAllSessions(12345))).toBe(CKR.SLOT_ID_INVALID);
  });

  it('destroys session objects with their session', async () => {
    const app = hsm.application('a');
    const s1 = await app.C_OpenSession(slot, RW);
    const s2 = await app.C_OpenSession(slot, RW);
    const h = await app.C_CreateObject(s1, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.LABEL, value: text('tmp') }]);
    expect((await app.C_GetAttributeValue(s2, h, [{ type: CKA.LABEL }])).rv).toBe(CKR.OK);
    await app.C_CloseSession(s1);
    expect(await rv(() => app.C_GetAttributeValue(s2, h, [{ type: CKA.LABEL }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
  });
});

describe('C_Login / C_Logout', () => {
  it('logs the Crypto Officer in: user-function states', async () => {
    const app = hsm.application('a');
    const ro = await app.C_OpenSession(slot, RO);
    const rw = await app.C_OpenSession(slot, RW);
    await app.C_Login(ro, CKU.USER, CO_PIN);
    expect(app.C_GetSessionInfo(ro).state).toBe(CKS.RO_USER_FUNCTIONS);
    expect(app.C_GetSessionInfo(rw).state).toBe(CKS.RW_USER_FUNCTIONS);
    await app.C_Logout(rw);
    expect(app.C_GetSessionInfo(ro).state).toBe(CKS.RO_PUBLIC_SESSION);
  });

  it('logs the SO in: RW SO functions', async () => {
    const app = hsm.application('a');
    const rw = await app.C_OpenSession(slot, RW);
    await app.C_Login(rw, CKU.SO, SO_PIN);
    expect(app.C_GetSessionInfo(rw).state).toBe(CKS.RW_SO_FUNCTIONS);
  });

  it('CKR_PIN_INCORRECT for a wrong PIN', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    expect(await rv(() => app.C_Login(s, CKU.USER, 'wrong-pin'))).toBe(CKR.PIN_INCORRECT);
    expect(await rv(() => app.C_Login(s, CKU.SO, 'wrong-pin'))).toBe(CKR.PIN_INCORRECT);
    expect(app.C_GetSessionInfo(s).state).toBe(CKS.RW_PUBLIC_SESSION);
  });

  it('CKR_USER_ALREADY_LOGGED_IN and CKR_USER_ANOTHER_ALREADY_LOGGED_IN', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    expect(await rv(() => app.C_Login(s, CKU.USER, CO_PIN))).toBe(CKR.USER_ALREADY_LOGGED_IN);
    expect(await rv(() => app.C_Login(s, CKU.SO, SO_PIN))).toBe(CKR.USER_ANOTHER_ALREADY_LOGGED_IN);
    expect(await rv(() => app.C_Login(s, CKU_CRYPTO_USER, CU_PIN))).toBe(CKR.USER_ANOTHER_ALREADY_LOGGED_IN);
  });

  it('CKR_SESSION_READ_ONLY_EXISTS: no SO login while a read-only session is open', async () => {
    const app = hsm.application('a');
    const rw = await app.C_OpenSession(slot, RW);
    await app.C_OpenSession(slot, RO);
    expect(await rv(() => app.C_Login(rw, CKU.SO, SO_PIN))).toBe(CKR.SESSION_READ_ONLY_EXISTS);
  });

  it('CKR_SESSION_READ_WRITE_SO_EXISTS: no read-only session while the SO is logged in', async () => {
    const app = hsm.application('a');
    const rw = await app.C_OpenSession(slot, RW);
    await app.C_Login(rw, CKU.SO, SO_PIN);
    expect(await rv(() => app.C_OpenSession(slot, RO))).toBe(CKR.SESSION_READ_WRITE_SO_EXISTS);
  });

  it('CKR_USER_TYPE_INVALID for an unknown user type', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    expect(await rv(() => app.C_Login(s, 7, CO_PIN))).toBe(CKR.USER_TYPE_INVALID);
  });

  it('CKU_CONTEXT_SPECIFIC with no key operation waiting has nothing to authenticate', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    expect(await rv(() => app.C_Login(s, CKU.CONTEXT_SPECIFIC, CO_PIN))).toBe(CKR.USER_NOT_LOGGED_IN);
    await app.C_Login(s, CKU.USER, CO_PIN);
    expect(await rv(() => app.C_Login(s, CKU.CONTEXT_SPECIFIC, CO_PIN))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    // A digest is no key operation.
    await app.C_DigestInit(s, { type: CKM.SHA256, parameter: null });
    expect(await rv(() => app.C_Login(s, CKU.CONTEXT_SPECIFIC, CO_PIN))).toBe(CKR.OPERATION_NOT_INITIALIZED);
  });

  it('CKA_ALWAYS_AUTHENTICATE: decryption and multi-part signing wait for the context-specific login too; the Crypto User gives its own PIN', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    const pair = await app.C_GenerateKeyPair(s, { type: CKM.RSA_PKCS_KEY_PAIR_GEN, parameter: null },
      [{ type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.TOKEN, value: true }],
      [{ type: CKA.TOKEN, value: true }, { type: CKA.ALWAYS_AUTHENTICATE, value: true }]);
    const oaep = { type: CKM.RSA_PKCS, parameter: null };
    await app.C_EncryptInit(s, oaep, pair.publicKey);
    const encrypted = await app.C_Encrypt(s, text('secret'));
    await app.C_DecryptInit(s, oaep, pair.privateKey);
    expect(await rv(() => app.C_Decrypt(s, encrypted))).toBe(CKR.USER_NOT_LOGGED_IN);
    await app.C_DecryptInit(s, oaep, pair.privateKey);
    await app.C_Login(s, CKU.CONTEXT_SPECIFIC, CO_PIN);
    expect((await app.C_Decrypt(s, encrypted)).toString()).toBe('secret');
    const sha = { type: CKM.SHA256_RSA_PKCS, parameter: null };
    await app.C_SignInit(s, sha, pair.privateKey);
    expect(await rv(() => app.C_SignUpdate(s, text('part')))).toBe(CKR.USER_NOT_LOGGED_IN);
    await app.C_SignInit(s, sha, pair.privateKey);
    await app.C_Login(s, CKU.CONTEXT_SPECIFIC, CO_PIN);
    await app.C_SignUpdate(s, text('part one, '));
    await app.C_SignUpdate(s, text('part two'));
    expect(await app.C_SignFinal(s)).toHaveLength(256);
    // The Crypto User re-authenticates with the Crypto User's PIN; the Crypto Officer's is wrong for it.
    const cu = hsm.application('cu');
    const c = await cu.C_OpenSession(slot, RW);
    await cu.C_Login(c, CKU_CRYPTO_USER, CU_PIN);
    await cu.C_SignInit(c, sha, pair.privateKey);
    expect(await rv(() => cu.C_Login(c, CKU.CONTEXT_SPECIFIC, CO_PIN))).toBe(CKR.PIN_INCORRECT);
    await cu.C_Login(c, CKU.CONTEXT_SPECIFIC, CU_PIN);
    expect(await cu.C_Sign(c, text('by the crypto user'))).toHaveLength(256);
  });

  it('CKR_USER_PIN_NOT_INITIALIZED before C_InitPIN', async () => {
    const { slotId } = await hsm.createPartition({ label: 'fresh', soPin: SO_PIN });
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slotId, RW);
    expect(await rv(() => app.C_Login(s, CKU.USER, CO_PIN))).toBe(CKR.USER_PIN_NOT_INITIALIZED);
    expect(await rv(() => app.C_Login(s, CKU_CRYPTO_USER, CU_PIN))).toBe(CKR.USER_PIN_NOT_INITIALIZED);
    expect(hsm.getTokenInfo(slotId).flags & CKF.USER_PIN_INITIALIZED).toBe(0);
  });

  it('C_Logout when nobody is logged in: CKR_USER_NOT_LOGGED_IN', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    expect(await rv(() => app.C_Logout(s))).toBe(CKR.USER_NOT_LOGGED_IN);
  });

  it('closing the last session logs the application out', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    await app.C_CloseSession(s);
    const t = await app.C_OpenSession(slot, RW);
    expect(app.C_GetSessionInfo(t).state).toBe(CKS.RW_PUBLIC_SESSION);
  });

  it('logout destroys the application\'s private session objects', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    const h = await app.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.PRIVATE, value: true }, { type: CKA.VALUE, value: text('x') }]);
    await app.C_Logout(s);
    await app.C_Login(s, CKU.USER, CO_PIN);
    expect(await rv(() => app.C_GetAttributeValue(s, h, [{ type: CKA.VALUE }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
  });
});

describe('the partition key in memory', () => {
  it('is held while some application is logged in, and wiped when the last one logs out', async () => {
    const partition = hsm.partition(slot);
    expect(partition.partitionKey).toBeNull();
    const a = hsm.application('a');
    const b = hsm.application('b');
    const sa = await a.C_OpenSession(slot, RW);
    const sb = await b.C_OpenSession(slot, RW);
    await a.C_Login(sa, CKU.USER, CO_PIN);
    await b.C_Login(sb, CKU_CRYPTO_USER, CU_PIN);
    const key = partition.partitionKey!;
    expect(key.length).toBe(32);
    await a.C_Logout(sa);
    expect(partition.partitionKey).toBe(key);
    await b.C_CloseSession(sb);
    expect(partition.partitionKey).toBeNull();
    expect(key.equals(Buffer.alloc(32))).toBe(true);
  });
});

describe('two applications are isolated', () => {
  it('do not share login state', async () => {
    const a = hsm.application('a');
    const b = hsm.application('b');
    const sa = await a.C_OpenSession(slot, RW);
    const sb = await b.C_OpenSession(slot, RW);
    await a.C_Login(sa, CKU.USER, CO_PIN);
    expect(b.C_GetSessionInfo(sb).state).toBe(CKS.RW_PUBLIC_SESSION);
    // b may log in as SO although a is logged in as user: login state is per application.
    await b.C_Login(sb, CKU.SO, SO_PIN);
    expect(a.C_GetSessionInfo(sa).state).toBe(CKS.RW_USER_FUNCTIONS);
  });

  it('cannot use each other\'s session handles', async () => {
    const a = hsm.application('a');
    const b = hsm.application('b');
    const sa = await a.C_OpenSession(slot, RW);
    expect(await rv(() => b.C_GetSessionInfo(sa))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(await rv(() => b.C_CloseSession(sa))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(await rv(() => b.C_Login(sa, CKU.USER, CO_PIN))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(await rv(() => b.C_FindObjectsInit(sa, []))).toBe(CKR.SESSION_HANDLE_INVALID);
  });

  it('do not see each other\'s session objects', async () => {
    const a = hsm.application('a');
    const b = hsm.application('b');
    const sa = await a.C_OpenSession(slot, RW);
    const sb = await b.C_OpenSession(slot, RW);
    const h = await a.C_CreateObject(sa, [{ type: CKA.CLASS, value: CKO.DATA }]);
    expect(await rv(() => b.C_GetAttributeValue(sb, h, [{ type: CKA.CLASS }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
    await b.C_FindObjectsInit(sb, [{ type: CKA.CLASS, value: CKO.DATA }]);
    expect(await b.C_FindObjects(sb, 10)).toEqual([]);
  });

  it('see each other\'s token objects, private ones only when logged in', async () => {
    const a = hsm.application('a');
    const b = hsm.application('b');
    const sa = await a.C_OpenSession(slot, RW);
    const sb = await b.C_OpenSession(slot, RW);
    await a.C_Login(sa, CKU.USER, CO_PIN);
    const h = await a.C_CreateObject(sa, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: true }]);
    expect(await rv(() => b.C_GetAttributeValue(sb, h, [{ type: CKA.CLASS }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
    await b.C_Login(sb, CKU.USER, CO_PIN);
    expect((await b.C_GetAttributeValue(sb, h, [{ type: CKA.CLASS }])).attributes[0]!.value).toBe(CKO.DATA);
  });
});

describe('C_InitToken', () => {
  it('initialises a blank partition with the SO PIN and label', async () => {
    const { slotId } = await hsm.createPartition();
    expect(hsm.getTokenInfo(slotId).flags & CKF.TOKEN_INITIALIZED).toBe(0);
    await hsm.application('a').C_InitToken(slotId, SO_PIN, 'fresh label'.padEnd(32, ' '));
    const info = hsm.getTokenInfo(slotId);
    expect(info.label).toBe('fresh label');
    expect(info.flags & CKF.TOKEN_INITIALIZED).toBe(CKF.TOKEN_INITIALIZED);
  });

  it('re-initialising needs the SO PIN, and erases every object and the CO PIN', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    await app.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: true }]);
    expect(await rv(() => app.C_InitToken(slot, SO_PIN, 'x'))).toBe(CKR.SESSION_EXISTS);
    await app.C_CloseSession(s);
    expect(await rv(() => app.C_InitToken(slot, 'not-the-so-pin', 'x'))).toBe(CKR.PIN_INCORRECT);
    await app.C_InitToken(slot, SO_PIN, 'again');
    expect(hsm.listPartitions()[0]!.tokenObjects).toBe(0);
    expect(hsm.getTokenInfo(slot).flags & CKF.USER_PIN_INITIALIZED).toBe(0);
  });

  it('CKR_PIN_LEN_RANGE for a blank token, CKR_PIN_INCORRECT (counted) for a short wrong SO PIN, CKR_SLOT_ID_INVALID', async () => {
    const app = hsm.application('a');
    // An initialised token judges the SO PIN first, whatever its length (issue 15: the attempt counts).
    expect(await rv(() => app.C_InitToken(slot, 'abc', 'x'))).toBe(CKR.PIN_INCORRECT);
    expect((await app.C_GetTokenInfo(slot)).flags & CKF.SO_PIN_COUNT_LOW).toBe(CKF.SO_PIN_COUNT_LOW);
    const { slotId: blank } = await hsm.createPartition({ label: 'blank' });
    expect(await rv(() => app.C_InitToken(blank, 'abc', 'x'))).toBe(CKR.PIN_LEN_RANGE);
    expect(await rv(() => app.C_InitToken(77, SO_PIN, 'x'))).toBe(CKR.SLOT_ID_INVALID);
  });
});

describe('C_InitPIN / C_SetPIN', () => {
  it('C_InitPIN needs the SO', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    expect(await rv(() => app.C_InitPIN(s, 'new-co-pin'))).toBe(CKR.USER_NOT_LOGGED_IN);
    await app.C_Login(s, CKU.USER, CO_PIN);
    expect(await rv(() => app.C_InitPIN(s, 'new-co-pin'))).toBe(CKR.USER_NOT_LOGGED_IN);
    await app.C_Logout(s);
    await app.C_Login(s, CKU.SO, SO_PIN);
    expect(await rv(() => app.C_InitPIN(s, 'short'))).toBe(CKR.PIN_LEN_RANGE);
    await app.C_InitPIN(s, 'new-co-pin');
    await app.C_Logout(s);
    expect(await rv(() => app.C_Login(s, CKU.USER, CO_PIN))).toBe(CKR.PIN_INCORRECT);
    await app.C_Login(s, CKU.USER, 'new-co-pin');
  });

  it('C_SetPIN changes the logged-in user\'s PIN, and keys stay usable', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    expect(await rv(() => app.C_SetPIN(s, 'wrong-old-pin', 'changed-pin'))).toBe(CKR.PIN_INCORRECT);
    expect(await rv(() => app.C_SetPIN(s, CO_PIN, 'tiny'))).toBe(CKR.PIN_LEN_RANGE);
    await app.C_SetPIN(s, CO_PIN, 'changed-pin');
    await app.C_Logout(s);
    await app.C_Login(s, CKU.USER, 'changed-pin');
  });

  it('C_SetPIN in a public session changes the CO PIN; read-only sessions cannot', async () => {
    const app = hsm.application('a');
    const ro = await app.C_OpenSession(slot, RO);
    expect(await rv(() => app.C_SetPIN(ro, CO_PIN, 'changed-pin'))).toBe(CKR.SESSION_READ_ONLY);
    const rw = await app.C_OpenSession(slot, RW);
    await app.C_SetPIN(rw, CO_PIN, 'changed-pin');
    await app.C_Login(rw, CKU.USER, 'changed-pin');
  });
});

describe('PIN policy and lockout', () => {
  it('locks a role after the configured bad logins, shows the flags, and keeps the lock across restart', async () => {
    hsm.close();
    hsm = await openHsm(home, { pinPolicy: { maxFailedLogins: 3 } });
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    expect(await rv(() => app.C_Login(s, CKU.USER, 'bad-pin-1'))).toBe(CKR.PIN_INCORRECT);
    expect(hsm.getTokenInfo(slot).flags & CKF.USER_PIN_COUNT_LOW).toBe(CKF.USER_PIN_COUNT_LOW);
    expect(await rv(() => app.C_Login(s, CKU.USER, 'bad-pin-2'))).toBe(CKR.PIN_INCORRECT);
    expect(hsm.getTokenInfo(slot).flags & CKF.USER_PIN_FINAL_TRY).toBe(CKF.USER_PIN_FINAL_TRY);
    expect(await rv(() => app.C_Login(s, CKU.USER, 'bad-pin-3'))).toBe(CKR.PIN_INCORRECT);
    expect(hsm.getTokenInfo(slot).flags & CKF.USER_PIN_LOCKED).toBe(CKF.USER_PIN_LOCKED);
    expect(await rv(() => app.C_Login(s, CKU.USER, CO_PIN))).toBe(CKR.PIN_LOCKED);

    hsm.close();
    hsm = await openHsm(home, { pinPolicy: { maxFailedLogins: 3 } });
    const again = hsm.application('a');
    const t = await again.C_OpenSession(slot, RW);
    expect(hsm.getTokenInfo(slot).flags & CKF.USER_PIN_LOCKED).toBe(CKF.USER_PIN_LOCKED);
    expect(await rv(() => again.C_Login(t, CKU.USER, CO_PIN))).toBe(CKR.PIN_LOCKED);

    // The SO resets the CO PIN, which unlocks the role.
    await again.C_Login(t, CKU.SO, SO_PIN);
    await again.C_InitPIN(t, CO_PIN);
    await again.C_Logout(t);
    await again.C_Login(t, CKU.USER, CO_PIN);
    expect(hsm.getTokenInfo(slot).flags & (CKF.USER_PIN_LOCKED | CKF.USER_PIN_COUNT_LOW)).toBe(0);
  });

  it('a good login resets the count', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await rv(() => app.C_Login(s, CKU.SO, 'bad-so-pin'));
    expect(hsm.getTokenInfo(slot).flags & CKF.SO_PIN_COUNT_LOW).toBe(CKF.SO_PIN_COUNT_LOW);
    await app.C_Login(s, CKU.SO, SO_PIN);
    expect(hsm.getTokenInfo(slot).flags & CKF.SO_PIN_COUNT_LOW).toBe(0);
  });

  it('reports the length bounds in the token info', async () => {
    hsm.close();
    hsm = await openHsm(home, { pinPolicy: { minLength: 10, maxLength: 20 } });
    const info = hsm.getTokenInfo(slot);
    expect([info.minPinLen, info.maxPinLen]).toEqual([10, 20]);
    expect(await rv(() => hsm.createPartition({ soPin: 'x'.repeat(21) }))).toBe(CKR.PIN_LEN_RANGE);
  });
});

describe('Crypto User (CKU_CRYPTO_USER = 0x80000001)', () => {
  it('logs in with its own PIN and sees private objects', async () => {
    const co = hsm.application('co');
    const s = await co.C_OpenSession(slot, RW);
    await co.C_Login(s, CKU.USER, CO_PIN);
    const h = await co.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: true }, { type: CKA.VALUE, value: text('v') }]);
    const cu = hsm.application('cu');
    const t = await cu.C_OpenSession(slot, RW);
    expect(await rv(() => cu.C_Login(t, CKU_CRYPTO_USER, 'not-the-cu-pin'))).toBe(CKR.PIN_INCORRECT);
    await cu.C_Login(t, CKU_CRYPTO_USER, CU_PIN);
    expect(cu.C_GetSessionInfo(t).state).toBe(CKS.RW_USER_FUNCTIONS);
    expect((await cu.C_GetAttributeValue(t, h, [{ type: CKA.VALUE }])).attributes[0]!.value).toEqual(text('v'));
    // but creates, changes and destroys nothing
    expect(await rv(() => cu.C_CreateObject(t, [{ type: CKA.CLASS, value: CKO.DATA }]))).toBe(CKR.ACTION_PROHIBITED);
    expect(await rv(() => cu.C_DestroyObject(t, h))).toBe(CKR.ACTION_PROHIBITED);
    expect(await rv(() => cu.C_SetAttributeValue(t, h, [{ type: CKA.LABEL, value: text('x') }]))).toBe(CKR.ACTION_PROHIBITED);
  });

  it('only the SO or the CO may set its PIN', async () => {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    expect(await rv(() => app.CA_InitCryptoUserPIN(s, 'another-cu'))).toBe(CKR.USER_NOT_LOGGED_IN);
    await app.C_Login(s, CKU.USER, CO_PIN);
    await app.CA_InitCryptoUserPIN(s, 'another-cu');
  });
});
