// The token model's semantics on every device: the same PKCS#11 scenarios run through the model
// over the software HSM, over SoftHSM2 behind the module host (the passthrough device), and over
// a mounted USB token image. What the model owns (sessions, login per application, visibility,
// find cursors, output sizing, operation state, last-session logout) must read the same on all.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassthroughDevice, type SoftwareHsm } from '../../src/hsm/index.js';
import { CKA, CKF, CKK, CKM, CKO, CKR, CKS, CKU } from '../../src/pkcs11/constants.js';
import type { Application } from '../../src/token/index.js';
import { CO_PIN, SO_PIN, readyHsm, removeHome, rv, tempHome } from '../hsm/support.js';
import { SOFTHSM_MODULE, SoftHsm } from '../support/softhsm.js';
import { TokensUnderTest } from '../support/tokens.js';
import { TOKEN_PIN, TOKEN_SO_PIN, imageOptions, makeImage } from '../tokens/support.js';
import { openImageHsm } from '../../src/tokens/image.js';

const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;
const RO = CKF.SERIAL_SESSION;
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const ECDSA = { type: CKM.ECDSA, parameter: null };
const SHA256 = { type: CKM.SHA256, parameter: null };

interface DeviceUnderTest {
  tokens: TokensUnderTest<SoftwareHsm | PassthroughDevice>;
  slot: number;
  soPin: string;
  userPin: string;
  done(): Promise<void> | void;
}

const homes: string[] = [];
let softhsm: SoftHsm | undefined;

const devices: Array<[string, () => Promise<DeviceUnderTest>]> = [
  ['software HSM', async () => {
    const home = tempHome();
    homes.push(home);
    const { hsm, slot } = await readyHsm(home);
    return { tokens: hsm, slot, soPin: SO_PIN, userPin: CO_PIN, done: () => hsm.close() };
  }],
  ['SoftHSM2 through the module host', async () => {
    softhsm ??= new SoftHsm();
    process.env.SOFTHSM2_CONF = softhsm.conf;
    const token = softhsm.initToken(`contract-${Date.now() % 100000}`, 'contract-so', 'contract-user');
    const device = await PassthroughDevice.open({
      module: SOFTHSM_MODULE, callTimeoutMs: 10_000,
      tokens: [{ partition: 'contract', label: null, serial: token.serial, pin: null }],
    });
    const tokens = new TokensUnderTest(device);
    return { tokens, slot: 0, soPin: 'contract-so', userPin: 'contract-user', done: () => tokens.close() };
  }],
  ['a mounted token image', async () => {
    const home = tempHome();
    homes.push(home);
    const path = join(home, 'pki.ntlstoken');
    await makeImage(path, 'PKI', '4242');
    const { hsm } = await openImageHsm(path, imageOptions);
    const tokens = new TokensUnderTest(hsm);
    return { tokens, slot: 0, soPin: TOKEN_SO_PIN, userPin: TOKEN_PIN, done: () => tokens.close() };
  }],
];

afterAll(() => {
  for (const home of homes) removeHome(home);
  softhsm?.remove();
});

async function ecKeyPair(app: Application, session: number, label: string, token: boolean) {
  return app.C_GenerateKeyPair(session, { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
    [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.TOKEN, value: token }, { type: CKA.VERIFY, value: true }, { type: CKA.LABEL, value: Buffer.from(label) }],
    [{ type: CKA.TOKEN, value: token }, { type: CKA.SIGN, value: true }, { type: CKA.PRIVATE, value: true }, { type: CKA.SENSITIVE, value: true }, { type: CKA.LABEL, value: Buffer.from(label) }]);
}

async function find(app: Application, session: number, label: string): Promise<number[]> {
  await app.C_FindObjectsInit(session, [{ type: CKA.LABEL, value: Buffer.from(label) }]);
  const found = await app.C_FindObjects(session, 100);
  await app.C_FindObjectsFinal(session);
  return found.sort((a, b) => a - b);
}

/** The public key of a pair, from CKA_EC_POINT, for node:crypto to verify with. */
async function publicKeyOf(app: Application, session: number, handle: number) {
  const { attributes } = await app.C_GetAttributeValue(session, handle, [{ type: CKA.EC_POINT }]);
  const point = attributes[0]!.value as Buffer;
  const raw = point[0] === 0x04 && point.length === 67 ? point.subarray(2) : point;
  const spki = Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), raw]);
  return createPublicKey({ key: spki, format: 'der', type: 'spki' });
}

describe.each(devices)('the token model over %s', (_name, make) => {
  let d: DeviceUnderTest;
  beforeAll(async () => { d = await make(); });
  afterAll(async () => { await d?.done(); });

  it('numbers sessions itself; another application\'s handle is CKR_SESSION_HANDLE_INVALID', async () => {
    const a = d.tokens.application('a1');
    const b = d.tokens.application('b1');
    const ro = await a.C_OpenSession(d.slot, RO);
    const rw = await a.C_OpenSession(d.slot, RW);
    expect(ro).not.toBe(rw);
    expect(a.C_GetSessionInfo(ro)).toEqual({ slotId: d.slot, state: CKS.RO_PUBLIC_SESSION, flags: RO, deviceError: 0 });
    expect(a.C_GetSessionInfo(rw).state).toBe(CKS.RW_PUBLIC_SESSION);
    expect(await rv(() => b.C_GetSessionInfo(rw))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(await rv(() => b.C_CloseSession(ro))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(await rv(() => a.C_OpenSession(d.slot, CKF.RW_SESSION))).toBe(CKR.SESSION_PARALLEL_NOT_SUPPORTED);
    expect(await rv(() => a.C_OpenSession(999, RW))).toBe(CKR.SLOT_ID_INVALID);
    a.finalize();
    b.finalize();
  });

  it('keeps login per application; closing the last session logs the application out', async () => {
    const a = d.tokens.application('a2');
    const b = d.tokens.application('b2');
    const sa = await a.C_OpenSession(d.slot, RW);
    const sb = await b.C_OpenSession(d.slot, RW);
    expect(await rv(() => a.C_Login(sa, CKU.USER, `${d.userPin}-wrong`))).toBe(CKR.PIN_INCORRECT);
    await a.C_Login(sa, CKU.USER, d.userPin);
    expect(await rv(() => a.C_Login(sa, CKU.USER, d.userPin))).toBe(CKR.USER_ALREADY_LOGGED_IN);
    expect(a.C_GetSessionInfo(sa).state).toBe(CKS.RW_USER_FUNCTIONS);
    expect(b.C_GetSessionInfo(sb).state).toBe(CKS.RW_PUBLIC_SESSION);
    expect(await rv(() => b.C_Logout(sb))).toBe(CKR.USER_NOT_LOGGED_IN);
    await a.C_CloseSession(sa);
    const again = await a.C_OpenSession(d.slot, RW);
    expect(a.C_GetSessionInfo(again).state).toBe(CKS.RW_PUBLIC_SESSION);
    a.finalize();
    b.finalize();
  });

  it('a NULL PIN (no protected authentication path) is CKR_ARGUMENTS_BAD at C_Login, C_InitPIN, C_SetPIN and C_InitToken, and never a wrong PIN', async () => {
    // PyKCS11's test_pin.test_null: session.login(None) is C_Login(s, CKU_USER, NULL, 0).
    const a = d.tokens.application('a2n');
    const s = await a.C_OpenSession(d.slot, RW);
    const countLow = async () => (await a.C_GetTokenInfo(d.slot)).flags & CKF.USER_PIN_COUNT_LOW;
    expect(await countLow()).toBe(0);
    expect(await rv(() => a.C_Login(s, CKU.USER, null))).toBe(CKR.ARGUMENTS_BAD);
    expect(await countLow()).toBe(0);
    expect(a.C_GetSessionInfo(s).state).toBe(CKS.RW_PUBLIC_SESSION);
    expect(await rv(() => a.C_SetPIN(s, null, d.userPin))).toBe(CKR.ARGUMENTS_BAD);
    expect(await rv(() => a.C_SetPIN(s, d.userPin, null))).toBe(CKR.ARGUMENTS_BAD);
    await a.C_Login(s, CKU.SO, d.soPin);
    expect(await rv(() => a.C_InitPIN(s, null))).toBe(CKR.ARGUMENTS_BAD);
    await a.C_Logout(s);
    await a.C_Login(s, CKU.USER, d.userPin);
    await a.C_Logout(s);
    await a.C_CloseAllSessions(d.slot);
    expect(await rv(() => a.C_InitToken(d.slot, null, 'never'))).toBe(CKR.ARGUMENTS_BAD);
    a.finalize();
  });

  it('shows a session object to its own application only, and a private object only while logged in', async () => {
    const a = d.tokens.application('a3');
    const b = d.tokens.application('b3');
    const sa = await a.C_OpenSession(d.slot, RW);
    const sb = await b.C_OpenSession(d.slot, RW);
    await a.C_Login(sa, CKU.USER, d.userPin);
    const sessionPair = await ecKeyPair(a, sa, 'contract-session', false);
    expect(await find(a, sa, 'contract-session')).toEqual([sessionPair.publicKey, sessionPair.privateKey].sort((x, y) => x - y));
    expect(await find(b, sb, 'contract-session')).toEqual([]);
    expect(await rv(() => b.C_GetAttributeValue(sb, sessionPair.publicKey, [{ type: CKA.LABEL }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
    const tokenPair = await ecKeyPair(a, sa, 'contract-token', true);
    // b, not logged in, sees the public token key and not the private one.
    expect(await find(b, sb, 'contract-token')).toEqual([tokenPair.publicKey]);
    expect(await rv(() => b.C_SignInit(sb, ECDSA, tokenPair.privateKey))).toBe(CKR.KEY_HANDLE_INVALID);
    // Nor may b make a private object.
    expect(await rv(() => b.C_CreateObject(sb, [
      { type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: false }, { type: CKA.PRIVATE, value: true }, { type: CKA.LABEL, value: Buffer.from('b-private') },
    ]))).toBe(CKR.USER_NOT_LOGGED_IN);
    // Logging out takes a's private session objects away; its public ones stay.
    await a.C_Logout(sa);
    expect(await find(a, sa, 'contract-session')).toEqual([sessionPair.publicKey]);
    await a.C_Login(sa, CKU.USER, d.userPin);
    for (const handle of await find(a, sa, 'contract-token')) await a.C_DestroyObject(sa, handle);
    expect(await find(a, sa, 'contract-token')).toEqual([]);
    a.finalize();
    b.finalize();
  });

  it('retires the handles of private objects at logout: refused logged out and after a new login; found again, they have new handles', async () => {
    // PKCS#11 2.40 C_Logout: the application's handles to private objects become invalid, even
    // if a user logs in again (SoftHSM2's testDestroyObject checks it).
    const a = d.tokens.application('a3r');
    const s = await a.C_OpenSession(d.slot, RW);
    await a.C_Login(s, CKU.USER, d.userPin);
    const pair = await ecKeyPair(a, s, 'contract-retire', true);
    await a.C_Logout(s);
    expect(await rv(() => a.C_GetAttributeValue(s, pair.privateKey, [{ type: CKA.LABEL }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
    await a.C_Login(s, CKU.USER, d.userPin);
    expect(await rv(() => a.C_GetAttributeValue(s, pair.privateKey, [{ type: CKA.LABEL }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
    expect(await rv(() => a.C_SignInit(s, ECDSA, pair.privateKey))).toBe(CKR.KEY_HANDLE_INVALID);
    expect(await rv(() => a.C_DestroyObject(s, pair.privateKey))).toBe(CKR.OBJECT_HANDLE_INVALID);
    // The public key's handle stays; the private key, found again, has a new one that works.
    const found = await find(a, s, 'contract-retire');
    expect(found).toContain(pair.publicKey);
    const privateKey = found.find((h) => h !== pair.publicKey)!;
    expect(found).toHaveLength(2);
    expect(privateKey).not.toBe(pair.privateKey);
    expect(await find(a, s, 'contract-retire')).toEqual(found);
    await a.C_SignInit(s, ECDSA, privateKey);
    const digest = createHash('sha256').update('retired').digest();
    const signature = await a.C_Sign(s, digest);
    expect(verify('sha256', Buffer.from('retired'), { key: await publicKeyOf(a, s, pair.publicKey), dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
    // That handle goes at the next logout too; another application's handles are its own.
    const b = d.tokens.application('b3r');
    const sb = await b.C_OpenSession(d.slot, RW);
    await a.C_Logout(s);
    await a.C_Login(s, CKU.USER, d.userPin);
    expect(await rv(() => a.C_GetAttributeValue(s, privateKey, [{ type: CKA.LABEL }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
    expect((await find(b, sb, 'contract-retire'))).toEqual([pair.publicKey]);
    const [third] = (await find(a, s, 'contract-retire')).filter((h) => h !== pair.publicKey);
    expect([pair.privateKey, privateKey]).not.toContain(third);
    await a.C_DestroyObject(s, third!);
    await a.C_DestroyObject(s, pair.publicKey);
    expect(await find(a, s, 'contract-retire')).toEqual([]);
    a.finalize();
    b.finalize();
  });

  it('keeps one find cursor per session, and refuses a NULL array', async () => {
    const a = d.tokens.application('a4');
    const s = await a.C_OpenSession(d.slot, RO);
    expect(await rv(() => a.C_FindObjects(s, 1))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await a.C_FindObjectsInit(s, []);
    expect(await rv(() => a.C_FindObjectsInit(s, []))).toBe(CKR.OPERATION_ACTIVE);
    expect(await rv(() => a.C_FindObjects(s, null))).toBe(CKR.ARGUMENTS_BAD);
    await a.C_FindObjectsFinal(s);
    expect(await rv(() => a.C_FindObjectsFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    a.finalize();
  });

  it('sizes outputs: a length query and a short buffer give the length; the signature is made once and verifies', async () => {
    const a = d.tokens.application('a5');
    const s = await a.C_OpenSession(d.slot, RW);
    await a.C_Login(s, CKU.USER, d.userPin);
    const pair = await ecKeyPair(a, s, 'contract-sizing', false);
    const data = createHash('sha256').update('contract').digest();
    expect(await rv(() => a.C_Sign(s, data))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await a.C_SignInit(s, ECDSA, pair.privateKey);
    expect(await rv(() => a.C_SignInit(s, ECDSA, pair.privateKey))).toBe(CKR.OPERATION_ACTIVE);
    const query = await a.C_Sign(s, data, null);
    expect(query.length).toBe(64);
    expect(await rv(() => a.C_Sign(s, data, 10))).toBe(CKR.BUFFER_TOO_SMALL);
    const signature = await a.C_Sign(s, data, 64);
    expect(signature).toEqual(query);
    // Raw ECDSA over SHA-256('contract') is an ECDSA-SHA256 signature of 'contract'.
    expect(verify('sha256', Buffer.from('contract'), { key: await publicKeyOf(a, s, pair.publicKey), dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
    expect(await rv(() => a.C_Sign(s, data))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await a.C_VerifyInit(s, ECDSA, pair.publicKey);
    await a.C_Verify(s, data, signature);
    await a.C_VerifyInit(s, ECDSA, pair.publicKey);
    expect(await rv(() => a.C_Verify(s, data, Buffer.alloc(64, 1)))).toBe(CKR.SIGNATURE_INVALID);
    expect(await rv(() => a.C_Verify(s, data, signature))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    a.finalize();
  });

  it('digests in one part and in several, the same; C_Digest during C_DigestUpdate fails and ends the digest; a NULL random buffer is CKR_ARGUMENTS_BAD', async () => {
    const a = d.tokens.application('a6');
    const s = await a.C_OpenSession(d.slot, RO);
    const expected = createHash('sha256').update('one two').digest();
    await a.C_DigestInit(s, SHA256);
    expect(await a.C_Digest(s, Buffer.from('one two'))).toEqual(expected);
    await a.C_DigestInit(s, SHA256);
    await a.C_DigestUpdate(s, Buffer.from('one '));
    // PKCS#11: a C_Digest that fails (other than CKR_BUFFER_TOO_SMALL) terminates the digest (pkcs11test's DigestIntersperse).
    expect(await rv(() => a.C_Digest(s, Buffer.from('x')))).toBe(CKR.OPERATION_ACTIVE);
    expect(await rv(() => a.C_DigestFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await a.C_DigestInit(s, SHA256);
    await a.C_DigestUpdate(s, Buffer.from('one '));
    await a.C_DigestUpdate(s, Buffer.from('two'));
    expect(await a.C_DigestFinal(s)).toEqual(expected);
    expect(await rv(() => a.C_GenerateRandom(s, null))).toBe(CKR.ARGUMENTS_BAD);
    expect((await a.C_GenerateRandom(s, 16)).length).toBe(16);
    a.finalize();
  });

  it('C_Sign and C_Verify during a multi-part operation fail and end it; the next init of that kind works', async () => {
    const a = d.tokens.application('a6s');
    const s = await a.C_OpenSession(d.slot, RW);
    await a.C_Login(s, CKU.USER, d.userPin);
    // SHA256-RSA-PKCS: multi-part on every device (SoftHSM2 2.6 has no CKM_ECDSA_SHA256).
    const pair = await a.C_GenerateKeyPair(s, { type: CKM.RSA_PKCS_KEY_PAIR_GEN, parameter: null },
      [{ type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.VERIFY, value: true }], [{ type: CKA.SIGN, value: true }]);
    const SHA256_RSA = { type: CKM.SHA256_RSA_PKCS, parameter: null };
    await a.C_SignInit(s, SHA256_RSA, pair.privateKey);
    await a.C_SignUpdate(s, Buffer.from('one '));
    expect(await rv(() => a.C_Sign(s, Buffer.from('one two')))).toBe(CKR.OPERATION_ACTIVE);
    expect(await rv(() => a.C_SignFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await a.C_SignInit(s, SHA256_RSA, pair.privateKey);
    const signature = await a.C_Sign(s, Buffer.from('one two'));
    await a.C_VerifyInit(s, SHA256_RSA, pair.publicKey);
    await a.C_VerifyUpdate(s, Buffer.from('one '));
    expect(await rv(() => a.C_Verify(s, Buffer.from('one two'), signature))).toBe(CKR.OPERATION_ACTIVE);
    expect(await rv(() => a.C_VerifyFinal(s, signature))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await a.C_VerifyInit(s, SHA256_RSA, pair.publicKey);
    await a.C_Verify(s, Buffer.from('one two'), signature);
    a.finalize();
  });

  it('C_SessionCancel ends the operation its flags name and a search; one not named goes on, one not active is ignored', async () => {
    const a = d.tokens.application('a6c');
    const s = await a.C_OpenSession(d.slot, RW);
    await a.C_Login(s, CKU.USER, d.userPin);
    const pair = await ecKeyPair(a, s, 'contract-cancel', false);
    const data = Buffer.alloc(32, 1);
    // (One operation at a time: SoftHSM2 runs no two at once in a session.)
    await a.C_SignInit(s, ECDSA, pair.privateKey);
    await a.C_SessionCancel(s, CKF.DIGEST | CKF.VERIFY);
    expect((await a.C_Sign(s, data)).length).toBe(64);
    await a.C_SignInit(s, ECDSA, pair.privateKey);
    await a.C_SessionCancel(s, CKF.SIGN | CKF.VERIFY);
    expect(await rv(() => a.C_Sign(s, data))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await a.C_FindObjectsInit(s, []);
    await a.C_SessionCancel(s, CKF.FIND_OBJECTS);
    expect(await rv(() => a.C_FindObjects(s, 8))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await a.C_VerifyInit(s, ECDSA, pair.publicKey);
    await a.C_SessionCancel(s, CKF.VERIFY);
    expect(await rv(() => a.C_Verify(s, data, Buffer.alloc(64)))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await a.C_FindObjectsInit(s, []);
    await a.C_FindObjectsFinal(s);
    // Whatever the device kept of the cancelled operation, a new one starts.
    await a.C_SignInit(s, ECDSA, pair.privateKey);
    expect((await a.C_Sign(s, data)).length).toBe(64);
    await a.C_SessionCancel(s, 0);
    expect(await rv(() => a.C_SessionCancel(s + 1000, CKF.SIGN))).toBe(CKR.SESSION_HANDLE_INVALID);
    a.finalize();
  });

  it('C_InitToken is refused while any application has a session on the token', async () => {
    const a = d.tokens.application('a7');
    const b = d.tokens.application('b7');
    await b.C_OpenSession(d.slot, RO);
    expect(await rv(() => a.C_InitToken(d.slot, d.soPin, 'again'))).toBe(CKR.SESSION_EXISTS);
    a.finalize();
    b.finalize();
  });

  it('a key of another type or usage is refused by the device, not by a forwarder', async () => {
    const a = d.tokens.application('a8');
    const s = await a.C_OpenSession(d.slot, RW);
    await a.C_Login(s, CKU.USER, d.userPin);
    const pair = await ecKeyPair(a, s, 'contract-usage', false);
    // The public key has no CKA_SIGN.
    const code = await rv(() => a.C_SignInit(s, ECDSA, pair.publicKey));
    expect([CKR.KEY_FUNCTION_NOT_PERMITTED, CKR.KEY_TYPE_INCONSISTENT, CKR.KEY_HANDLE_INVALID]).toContain(code);
    const info = await a.C_GetAttributeValue(s, pair.privateKey, [{ type: CKA.KEY_TYPE }, { type: CKA.VALUE, length: null }]);
    expect(info.attributes[0]!.value).toBe(CKK.EC);
    expect(info.rv).toBe(CKR.ATTRIBUTE_SENSITIVE);
    a.finalize();
  });

  it('triple DES (legacy): a DES3 key is generated and encrypts and decrypts in ECB and CBC-PAD; the device does it, the model forwards it', async () => {
    const a = d.tokens.application('a10');
    const s = await a.C_OpenSession(d.slot, RW);
    await a.C_Login(s, CKU.USER, d.userPin);
    expect(a.C_GetMechanismList(d.slot)).toEqual(expect.arrayContaining([CKM.DES3_KEY_GEN, CKM.DES3_ECB, CKM.DES3_CBC, CKM.DES3_CBC_PAD]));
    const key = await a.C_GenerateKey(s, { type: CKM.DES3_KEY_GEN, parameter: null }, [{ type: CKA.ENCRYPT, value: true }, { type: CKA.DECRYPT, value: true }]);
    expect((await a.C_GetAttributeValue(s, key, [{ type: CKA.KEY_TYPE }])).attributes[0]!.value).toBe(CKK.DES3);
    const ecb = { type: CKM.DES3_ECB, parameter: null };
    const block = Buffer.from('8 bytes!16 bytes');
    await a.C_EncryptInit(s, ecb, key);
    const encrypted = await a.C_Encrypt(s, block);
    expect(encrypted).toHaveLength(16);
    await a.C_DecryptInit(s, ecb, key);
    expect(await a.C_Decrypt(s, encrypted)).toEqual(block);
    const pad = { type: CKM.DES3_CBC_PAD, parameter: { kind: 'bytes' as const, value: Buffer.alloc(8, 7) } };
    await a.C_EncryptInit(s, pad, key);
    const padded = await a.C_Encrypt(s, Buffer.from('eleven byte'));
    expect(padded).toHaveLength(16);
    await a.C_DecryptInit(s, pad, key);
    expect((await a.C_Decrypt(s, padded)).toString()).toBe('eleven byte');
    a.finalize();
  });

  it('CKA_ALWAYS_AUTHENTICATE: each signature needs C_Login(CKU_CONTEXT_SPECIFIC) after C_SignInit, good for one operation; a wrong PIN counts', async () => {
    const a = d.tokens.application('a9');
    const s = await a.C_OpenSession(d.slot, RW);
    // Before any login: a context-specific login is CKR_USER_NOT_LOGGED_IN.
    expect(await rv(() => a.C_Login(s, CKU.CONTEXT_SPECIFIC, d.userPin))).toBe(CKR.USER_NOT_LOGGED_IN);
    await a.C_Login(s, CKU.USER, d.userPin);
    const pair = await a.C_GenerateKeyPair(s, { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
      [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.VERIFY, value: true }],
      [{ type: CKA.SIGN, value: true }, { type: CKA.PRIVATE, value: true }, { type: CKA.ALWAYS_AUTHENTICATE, value: true }]);
    const read = await a.C_GetAttributeValue(s, pair.privateKey, [{ type: CKA.ALWAYS_AUTHENTICATE }]);
    expect(read.attributes[0]!.value).toBe(true);
    const digest = createHash('sha256').update('always authenticate').digest();
    // No operation waits for it yet.
    expect(await rv(() => a.C_Login(s, CKU.CONTEXT_SPECIFIC, d.userPin))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    // Without the context-specific login, C_Sign is CKR_USER_NOT_LOGGED_IN and the operation ends.
    await a.C_SignInit(s, ECDSA, pair.privateKey);
    expect(await rv(() => a.C_Sign(s, digest))).toBe(CKR.USER_NOT_LOGGED_IN);
    expect(await rv(() => a.C_Sign(s, digest))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    // With it: a length query and the signature, one operation.
    await a.C_SignInit(s, ECDSA, pair.privateKey);
    await a.C_Login(s, CKU.CONTEXT_SPECIFIC, d.userPin);
    expect(await a.C_Sign(s, digest, null)).toHaveLength(64);
    const signature = await a.C_Sign(s, digest, 64);
    expect(verify('sha256', Buffer.from('always authenticate'), { key: await publicKeyOf(a, s, pair.publicKey), dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
    // The login was for that operation only.
    await a.C_SignInit(s, ECDSA, pair.privateKey);
    expect(await rv(() => a.C_Sign(s, digest))).toBe(CKR.USER_NOT_LOGGED_IN);
    // A wrong PIN is CKR_PIN_INCORRECT, counted toward the user's lock (the token info says so).
    await a.C_SignInit(s, ECDSA, pair.privateKey);
    expect(await rv(() => a.C_Login(s, CKU.CONTEXT_SPECIFIC, 'wrong-pin-0'))).toBe(CKR.PIN_INCORRECT);
    const flags = (await a.C_GetTokenInfo(d.slot)).flags;
    expect(flags & CKF.USER_PIN_COUNT_LOW).toBe(CKF.USER_PIN_COUNT_LOW);
    await a.C_Login(s, CKU.CONTEXT_SPECIFIC, d.userPin);
    expect(await a.C_Sign(s, digest)).toHaveLength(64);
    // A key without the attribute needs nothing more.
    const plain = await ecKeyPair(a, s, 'contract-plain', false);
    await a.C_SignInit(s, ECDSA, plain.privateKey);
    expect(await a.C_Sign(s, digest)).toHaveLength(64);
    a.finalize();
  });

  // The two below were found by SoftHSM2's own p11test (docs/hsm.md, "Conformance as independent clients see it").
  it('C_WrapKey: a wrap that ended in CKR_BUFFER_TOO_SMALL does not stand in the way of a different wrap (p11test testAesWrapUnwrap)', async () => {
    const a = d.tokens.application('a11');
    const s = await a.C_OpenSession(d.slot, RW);
    await a.C_Login(s, CKU.USER, d.userPin);
    const AES_KEY_GEN = { type: CKM.AES_KEY_GEN, parameter: null };
    const KEY_WRAP = { type: CKM.AES_KEY_WRAP, parameter: null };
    const wrapping = await a.C_GenerateKey(s, AES_KEY_GEN, [{ type: CKA.VALUE_LEN, value: 32 }, { type: CKA.WRAP, value: true }, { type: CKA.UNWRAP, value: true }]);
    const readable = [{ type: CKA.VALUE_LEN, value: 16 }, { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true }];
    const first = await a.C_GenerateKey(s, AES_KEY_GEN, readable);
    const second = await a.C_GenerateKey(s, AES_KEY_GEN, readable);
    const kept = await a.C_GenerateKey(s, AES_KEY_GEN, [{ type: CKA.VALUE_LEN, value: 16 }, { type: CKA.EXTRACTABLE, value: false }]);
    expect(await rv(() => a.C_WrapKey(s, KEY_WRAP, wrapping, first, 0))).toBe(CKR.BUFFER_TOO_SMALL);
    // Before, the first call's kept output made every different wrap CKR_FUNCTION_FAILED.
    expect(await rv(() => a.C_WrapKey(s, KEY_WRAP, wrapping, kept, null))).toBe(CKR.KEY_UNEXTRACTABLE);
    expect(await rv(() => a.C_WrapKey(s, KEY_WRAP, wrapping, first, 0))).toBe(CKR.BUFFER_TOO_SMALL);
    const wrapped = await a.C_WrapKey(s, KEY_WRAP, wrapping, second, 24);
    const back = await a.C_UnwrapKey(s, KEY_WRAP, wrapping, wrapped, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES },
      { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true }]);
    const values = await Promise.all([second, back].map(async (h) => (await a.C_GetAttributeValue(s, h, [{ type: CKA.VALUE }])).attributes[0]!.value));
    expect(values[1]).toEqual(values[0]);
    a.finalize();
  });

  it('C_DigestKey with a handle that names no key is CKR_KEY_HANDLE_INVALID and the digest goes on (p11test testDigestKey)', async () => {
    const a = d.tokens.application('a12');
    const s = await a.C_OpenSession(d.slot, RW);
    await a.C_Login(s, CKU.USER, d.userPin);
    const key = await a.C_GenerateKey(s, { type: CKM.AES_KEY_GEN, parameter: null },
      [{ type: CKA.VALUE_LEN, value: 16 }, { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true }]);
    const value = (await a.C_GetAttributeValue(s, key, [{ type: CKA.VALUE }])).attributes[0]!.value as Buffer;
    await a.C_DigestInit(s, SHA256);
    await a.C_DigestUpdate(s, Buffer.from('key: '));
    expect(await rv(() => a.C_DigestKey(s, 0x7ffffff0))).toBe(CKR.KEY_HANDLE_INVALID);
    await a.C_DigestKey(s, key);
    expect(await a.C_DigestFinal(s)).toEqual(createHash('sha256').update('key: ').update(value).digest());
    a.finalize();
  });

  it('C_Logout ends a digest that took in a key (C_DigestKey), as key operations end; a plain digest goes on', async () => {
    const a = d.tokens.application('a13');
    const s = await a.C_OpenSession(d.slot, RW);
    const plain = await a.C_OpenSession(d.slot, RW);
    await a.C_Login(s, CKU.USER, d.userPin);
    const key = await a.C_GenerateKey(s, { type: CKM.AES_KEY_GEN, parameter: null }, [{ type: CKA.VALUE_LEN, value: 16 }]);
    await a.C_DigestInit(s, SHA256);
    await a.C_DigestKey(s, key);
    await a.C_DigestInit(plain, SHA256);
    await a.C_DigestUpdate(plain, Buffer.from('abc'));
    await a.C_Logout(s);
    // Before, C_DigestFinal still gave the SHA-256 of the sensitive key after the logout.
    expect(await rv(() => a.C_DigestFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    expect(await a.C_DigestFinal(plain)).toEqual(createHash('sha256').update('abc').digest());
    a.finalize();
  });
});
