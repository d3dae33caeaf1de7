// The PKCS#11 passthrough backend on a real module: SoftHSM2 (Debian softhsm2) in module host
// processes, and a faulty module built here from test/fixtures/faulty-pkcs11 (SoftHSM2 whose
// C_Sign aborts on "crash..." and never returns on "hang..."). Isolation between applications
// is checked call by call, as the module itself sees a single application.
import { execFileSync } from 'node:child_process';
import { constants, createCipheriv, createECDH, createHash, createPublicKey, publicEncrypt, randomBytes, verify } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PassthroughDevice, PassthroughStartError } from '../../src/hsm/index.js';
import { TokensUnderTest } from '../support/tokens.js';

type PassthroughHsm = TokensUnderTest<PassthroughDevice>;
import { Catalogue } from '../../src/log/catalogue.js';
import { Logger } from '../../src/log/logger.js';
import { CKA, CKD, CKF, CKG, CKK, CKM, CKO, CKR, CKS, CKU } from '../../src/pkcs11/constants.js';
import { repoRoot, sleep } from '../support/daemon.js';
import { SOFTHSM_MODULE, SoftHsm, type SoftHsmToken } from '../support/softhsm.js';
import { rv } from './support.js';

const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const ECDSA = { type: CKM.ECDSA, parameter: null };
const digest = Buffer.alloc(32, 7);

let softhsm: SoftHsm;
let alpha: SoftHsmToken;
let beta: SoftHsmToken;
let faultyModule: string;
const messages: string[] = [];
const logger = new Logger({ debug: true });
logger.onLine((_line, message) => messages.push(message.id));

beforeAll(() => {
  softhsm = new SoftHsm();
  // Module hosts inherit the environment: this is where SoftHSM2 finds its tokens.
  process.env.SOFTHSM2_CONF = softhsm.conf;
  alpha = softhsm.initToken('alpha', 'alpha-so', 'alpha-user');
  beta = softhsm.initToken('beta', 'beta-so', 'beta-user');
  faultyModule = join(softhsm.dir, 'faulty.so');
  const fixture = join(repoRoot, 'test/fixtures/faulty-pkcs11');
  execFileSync('cc', ['-shared', '-fPIC', '-Wall', '-Werror', '-I', join(repoRoot, 'node_modules/pkcs11js/includes/pkcs11'),
    '-o', faultyModule, join(fixture, 'faulty.c'), '-ldl']);
});

afterAll(() => {
  softhsm?.remove();
});

const open = async (module = SOFTHSM_MODULE, callTimeoutMs = 10_000) => new TokensUnderTest(await PassthroughDevice.open({
  module, callTimeoutMs, logger,
  tokens: [
    { partition: 'alpha-partition', label: null, serial: alpha.serial, pin: null },
    { partition: 'beta-partition', label: 'beta', serial: null, pin: null },
  ],
}));

async function ecKeyPair(app: ReturnType<PassthroughHsm['application']>, session: number, label: string, token = true) {
  return app.C_GenerateKeyPair(session, { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
    [{ type: CKA.EC_PARAMS, value: P256 }, { type: CKA.TOKEN, value: token }, { type: CKA.VERIFY, value: true }, { type: CKA.LABEL, value: Buffer.from(label) }],
    [{ type: CKA.TOKEN, value: token }, { type: CKA.SIGN, value: true }, { type: CKA.PRIVATE, value: true }, { type: CKA.LABEL, value: Buffer.from(label) }]);
}

async function find(app: ReturnType<PassthroughHsm['application']>, session: number, template: { type: number; value: Buffer | number | boolean }[] = []) {
  await app.C_FindObjectsInit(session, template);
  const found = await app.C_FindObjects(session, 1000);
  await app.C_FindObjectsFinal(session);
  return found;
}

describe('passthrough on SoftHSM2', () => {
  let hsm: PassthroughHsm;
  beforeAll(async () => { hsm = await open(); });
  afterAll(async () => { await hsm?.close(); });

  it('serves the mapped tokens as partitions in configuration order, found by serial or label', () => {
    const partitions = hsm.listPartitions();
    expect(partitions.map((p) => [p.slotId, p.name, p.serial])).toEqual([[0, 'alpha-partition', alpha.serial], [1, 'beta-partition', beta.serial]]);
    expect(partitions.every((p) => p.initialized)).toBe(true);
  });

  it("lists the module's mechanisms only: CKM_ECDSA yes, CKM_ECDSA_SHA256 (not in SoftHSM2 2.6) no", async () => {
    const app = hsm.application('mechanisms');
    const list = app.C_GetMechanismList(0);
    expect(list).toContain(CKM.ECDSA);
    expect(list).not.toContain(CKM.ECDSA_SHA256);
    expect(await rv(() => app.C_GetMechanismInfo(0, CKM.ECDSA_SHA256))).toBe(CKR.MECHANISM_INVALID);
    expect(await rv(() => app.C_GetTokenInfo(2))).toBe(CKR.SLOT_ID_INVALID);
  });

  it('keeps login state per client although the module has one', async () => {
    const a = hsm.application('a');
    const b = hsm.application('b');
    const sa = await a.C_OpenSession(0, RW);
    const sb = await b.C_OpenSession(0, RW);
    await a.C_Login(sa, CKU.USER, 'alpha-user');
    expect((a.C_GetSessionInfo(sa)).state).toBe(CKS.RW_USER_FUNCTIONS);
    expect((b.C_GetSessionInfo(sb)).state).toBe(CKS.RW_PUBLIC_SESSION);

    const pair = await ecKeyPair(a, sa, 'a-key');
    // The module is logged in (for a), yet b sees no private object and cannot use a's key.
    const seenByB = await find(b, sb, [{ type: CKA.LABEL, value: Buffer.from('a-key') }]);
    expect(seenByB).toEqual([pair.publicKey]);
    expect(await rv(() => b.C_SignInit(sb, ECDSA, pair.privateKey))).toBe(CKR.KEY_HANDLE_INVALID);
    expect(await rv(() => b.C_GetAttributeValue(sb, pair.privateKey, [{ type: CKA.LABEL }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
    // Nor may b make a private object while not logged in: the module would have taken it.
    expect(await rv(() => b.C_CreateObject(sb, [
      { type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: true }, { type: CKA.LABEL, value: Buffer.from('b-private') },
    ]))).toBe(CKR.USER_NOT_LOGGED_IN);
    expect(await find(a, sa, [{ type: CKA.LABEL, value: Buffer.from('b-private') }])).toEqual([]);

    // b's login is checked against the PIN the module took.
    expect(await rv(() => b.C_Login(sb, CKU.USER, 'wrong-pin'))).toBe(CKR.PIN_INCORRECT);
    expect(await rv(() => b.C_Login(sb, CKU.SO, 'alpha-so'))).toBe(CKR.USER_ANOTHER_ALREADY_LOGGED_IN);
    await b.C_Login(sb, CKU.USER, 'alpha-user');
    expect(await rv(() => b.C_Login(sb, CKU.USER, 'alpha-user'))).toBe(CKR.USER_ALREADY_LOGGED_IN);
    const seenNow = await find(b, sb, [{ type: CKA.LABEL, value: Buffer.from('a-key') }]);
    expect(seenNow.sort()).toEqual([pair.publicKey, pair.privateKey].sort());

    // a logs out: b stays logged in and signs; a's view loses the private key.
    await a.C_Logout(sa);
    expect((a.C_GetSessionInfo(sa)).state).toBe(CKS.RW_PUBLIC_SESSION);
    expect(await rv(() => a.C_SignInit(sa, ECDSA, pair.privateKey))).toBe(CKR.KEY_HANDLE_INVALID);
    await b.C_SignInit(sb, ECDSA, pair.privateKey);
    expect((await b.C_Sign(sb, digest)).length).toBe(64);

    // Session handles are per client.
    expect(await rv(() => a.C_GetSessionInfo(sb))).toBe(CKR.SESSION_HANDLE_INVALID);
    expect(await rv(() => b.C_CloseSession(sa))).toBe(CKR.SESSION_HANDLE_INVALID);

    // b closes its last session: logged out; nobody is, so the module logs out and a wrong PIN is the module's to refuse.
    await b.C_CloseSession(sb);
    expect(await rv(() => a.C_Login(sa, CKU.USER, 'wrong-pin'))).toBe(CKR.PIN_INCORRECT);
    await a.C_Login(sa, CKU.USER, 'alpha-user');
    // SoftHSM2 renumbers private objects after its logout: its own semantics, passed through.
    for (const handle of await find(a, sa, [{ type: CKA.LABEL, value: Buffer.from('a-key') }])) await a.C_DestroyObject(sa, handle);
    expect(await find(a, sa, [{ type: CKA.LABEL, value: Buffer.from('a-key') }])).toEqual([]);
    a.finalize();
    b.finalize();
  });

  it("hides one client's session objects from the other, and they go with the session", async () => {
    const a = hsm.application('a2');
    const b = hsm.application('b2');
    const sa = await a.C_OpenSession(1, RW);
    const sb = await b.C_OpenSession(1, RW);
    await a.C_Login(sa, CKU.USER, 'beta-user');
    await b.C_Login(sb, CKU.USER, 'beta-user');
    const secret = await a.C_GenerateKey(sa, { type: CKM.AES_KEY_GEN, parameter: null },
      [{ type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: false }, { type: CKA.ENCRYPT, value: true }, { type: CKA.LABEL, value: Buffer.from('session-secret') }]);
    expect(await find(a, sa, [{ type: CKA.LABEL, value: Buffer.from('session-secret') }])).toEqual([secret]);
    expect(await find(b, sb, [{ type: CKA.LABEL, value: Buffer.from('session-secret') }])).toEqual([]);
    expect(await rv(() => b.C_EncryptInit(sb, { type: CKM.AES_ECB, parameter: null }, secret))).toBe(CKR.KEY_HANDLE_INVALID);
    const attributes = await a.C_GetAttributeValue(sa, secret, [{ type: CKA.KEY_TYPE }, { type: CKA.VALUE }, { type: CKA.TOKEN, length: null }]);
    expect(attributes.rv).toBe(CKR.ATTRIBUTE_SENSITIVE);
    expect(attributes.attributes[0]).toMatchObject({ value: CKK.AES, length: 8 });
    expect(attributes.attributes[1]).toMatchObject({ value: null, length: null });
    expect(attributes.attributes[2]).toMatchObject({ value: null, length: 1 });
    a.finalize();
    b.finalize();
  });

  it('first logins at once: one goes to the module, the others are checked against it', async () => {
    const apps = ['c1', 'c2', 'c3', 'c4'].map((id) => hsm.application(id));
    const sessions = await Promise.all(apps.map(async (a) => a.C_OpenSession(1, RW)));
    const results = await Promise.all(apps.map((a, i) => rv(() => a.C_Login(sessions[i]!, CKU.USER, 'beta-user'))));
    expect(results).toEqual([CKR.OK, CKR.OK, CKR.OK, CKR.OK]);
    for (const a of apps) a.finalize();
  });

  it('wrong PINs the module cannot see (it is logged in) are counted: hsm.maxFailedLogins, then CKR_PIN_LOCKED', async () => {
    const strict = new TokensUnderTest(await PassthroughDevice.open({
      module: SOFTHSM_MODULE, callTimeoutMs: 10_000, logger, maxFailedLogins: 3,
      tokens: [{ partition: 'strict', label: 'beta', serial: null, pin: null }],
    }));
    try {
      const owner = strict.application('owner');
      const guesser = strict.application('guesser');
      const so = await owner.C_OpenSession(0, RW);
      const sg = await guesser.C_OpenSession(0, RW);
      await owner.C_Login(so, CKU.USER, 'beta-user');
      expect(await rv(() => guesser.C_Login(sg, CKU.USER, 'guess-1'))).toBe(CKR.PIN_INCORRECT);
      expect(await rv(() => guesser.C_Login(sg, CKU.USER, 'guess-2'))).toBe(CKR.PIN_INCORRECT);
      expect(await rv(() => guesser.C_Login(sg, CKU.USER, 'guess-3'))).toBe(CKR.PIN_LOCKED);
      // Locked while the module stays logged in, even with the right PIN.
      expect(await rv(() => guesser.C_Login(sg, CKU.USER, 'beta-user'))).toBe(CKR.PIN_LOCKED);
      // Once nobody is logged in, the module checks again (and counts, if it does).
      await owner.C_Logout(so);
      await guesser.C_Login(sg, CKU.USER, 'beta-user');
      owner.finalize();
      guesser.finalize();
    } finally {
      await strict.close();
    }
  });

  it('answers a length query without spending the operation: one signature, as PKCS#11 says', async () => {
    const a = hsm.application('lengths');
    const s = await a.C_OpenSession(1, RW);
    await a.C_Login(s, CKU.USER, 'beta-user');
    const pair = await ecKeyPair(a, s, 'lengths', false);
    await a.C_SignInit(s, ECDSA, pair.privateKey);
    expect(await rv(() => a.C_Sign(s, digest, null))).toBe(CKR.OK);
    const short = await rv(() => a.C_Sign(s, digest, 10));
    expect(short).toBe(CKR.BUFFER_TOO_SMALL);
    const signature = await a.C_Sign(s, digest, 64);
    expect(signature.length).toBe(64);
    await a.C_VerifyInit(s, ECDSA, pair.publicKey);
    await a.C_Verify(s, digest, signature);
    await a.C_VerifyInit(s, ECDSA, pair.publicKey);
    expect(await rv(() => a.C_Verify(s, Buffer.alloc(32, 8), signature))).toBe(CKR.SIGNATURE_INVALID);
    a.finalize();
  });
});

describe('the module\'s mechanisms with their parameters, checked against node:crypto', () => {
  let hsm: PassthroughHsm;
  let app: ReturnType<PassthroughHsm['application']>;
  let s: number;
  beforeAll(async () => {
    hsm = await open();
    app = hsm.application('mechanisms-with-parameters');
    s = await app.C_OpenSession(1, RW);
    await app.C_Login(s, CKU.USER, 'beta-user');
  });
  afterAll(async () => {
    app?.finalize();
    await hsm?.close();
  });

  const aesKey = async (value: Buffer, extra: { type: number; value: boolean }[] = []) => app.C_CreateObject(s, [
    { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }, { type: CKA.TOKEN, value: false },
    { type: CKA.VALUE, value }, { type: CKA.ENCRYPT, value: true }, { type: CKA.DECRYPT, value: true }, ...extra,
  ]);

  it('AES-GCM (iv, aad, tag bits) and AES-CBC-PAD, single and multi-part', async () => {
    const raw = randomBytes(32);
    const key = await aesKey(raw);
    const iv = randomBytes(12);
    const aad = Buffer.from('header');
    const plain = Buffer.from('the quick brown fox jumps over the lazy dog');
    await app.C_EncryptInit(s, { type: CKM.AES_GCM, parameter: { kind: 'gcm', iv, aad, tagBits: 128 } }, key);
    const sealed = await app.C_Encrypt(s, plain);
    const cipher = createCipheriv('aes-256-gcm', raw, iv);
    cipher.setAAD(aad);
    expect(sealed).toEqual(Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]));
    await app.C_DecryptInit(s, { type: CKM.AES_GCM, parameter: { kind: 'gcm', iv, aad, tagBits: 128 } }, key);
    expect(await app.C_Decrypt(s, sealed)).toEqual(plain);

    const cbcIv = randomBytes(16);
    await app.C_EncryptInit(s, { type: CKM.AES_CBC_PAD, parameter: { kind: 'bytes', value: cbcIv } }, key);
    const head = await app.C_EncryptUpdate(s, plain.subarray(0, 20));
    const tail = await app.C_EncryptUpdate(s, plain.subarray(20));
    const last = await app.C_EncryptFinal(s);
    const cbc = Buffer.concat([head, tail, last]);
    const reference = createCipheriv('aes-256-cbc', raw, cbcIv);
    expect(cbc).toEqual(Buffer.concat([reference.update(plain), reference.final()]));
  });

  it('RSA: PSS signatures and OAEP (SHA-1, what SoftHSM2 takes) against node:crypto', async () => {
    const pair = await app.C_GenerateKeyPair(s, { type: CKM.RSA_PKCS_KEY_PAIR_GEN, parameter: null },
      [{ type: CKA.MODULUS_BITS, value: 2048 }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) }, { type: CKA.TOKEN, value: false },
        { type: CKA.VERIFY, value: true }, { type: CKA.ENCRYPT, value: true }],
      [{ type: CKA.TOKEN, value: false }, { type: CKA.SIGN, value: true }, { type: CKA.DECRYPT, value: true }]);
    const read = await app.C_GetAttributeValue(s, pair.publicKey, [{ type: CKA.MODULUS }, { type: CKA.PUBLIC_EXPONENT }]);
    const publicKey = createPublicKey({ key: {
      kty: 'RSA', n: (read.attributes[0]!.value as Buffer).toString('base64url'), e: (read.attributes[1]!.value as Buffer).toString('base64url'),
    }, format: 'jwk' });
    const hash = createHash('sha256').update('message').digest();
    await app.C_SignInit(s, { type: CKM.RSA_PKCS_PSS, parameter: { kind: 'pss', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, saltLength: 32 } }, pair.privateKey);
    const pss = await app.C_Sign(s, hash);
    expect(verify('sha256', Buffer.from('message'), { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, pss)).toBe(true);
    const secret = randomBytes(32);
    const oaep = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, secret);
    await app.C_DecryptInit(s, { type: CKM.RSA_PKCS_OAEP, parameter: { kind: 'oaep', hashAlg: CKM.SHA_1, mgf: CKG.MGF1_SHA1, source: 0, sourceData: null } }, pair.privateKey);
    expect(await app.C_Decrypt(s, oaep)).toEqual(secret);
  });

  it('ECDH (CKD_NULL with the peer\'s point) derives the secret node:crypto derives', async () => {
    const pair = await ecKeyPair(app, s, 'ecdh', false);
    await app.C_SetAttributeValue(s, pair.privateKey, [{ type: CKA.DERIVE, value: true }]).catch(() => undefined);
    const point = (await app.C_GetAttributeValue(s, pair.publicKey, [{ type: CKA.EC_POINT }])).attributes[0]!.value as Buffer;
    const peer = createECDH('prime256v1');
    const peerPoint = peer.generateKeys();
    // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point.
    const ours = point.subarray(point.length - 65);
    const derived = await app.C_DeriveKey(s, { type: CKM.ECDH1_DERIVE, parameter: { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: peerPoint } }, pair.privateKey,
      [{ type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.GENERIC_SECRET }, { type: CKA.TOKEN, value: false },
        { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true }, { type: CKA.VALUE_LEN, value: 32 }]);
    const value = (await app.C_GetAttributeValue(s, derived, [{ type: CKA.VALUE }])).attributes[0]!.value as Buffer;
    expect(value).toEqual(peer.computeSecret(ours));
  });

  it('AES key wrap: wrap and unwrap round trip, digests and random', async () => {
    const kek = await aesKey(randomBytes(32), [{ type: CKA.WRAP, value: true }, { type: CKA.UNWRAP, value: true }]);
    const raw = randomBytes(16);
    const inner = await aesKey(raw, [{ type: CKA.EXTRACTABLE, value: true }]);
    const wrapped = await app.C_WrapKey(s, { type: CKM.AES_KEY_WRAP, parameter: null }, kek, inner);
    expect(wrapped.length).toBe(24);
    const back = await app.C_UnwrapKey(s, { type: CKM.AES_KEY_WRAP, parameter: null }, kek, wrapped, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }, { type: CKA.TOKEN, value: false },
      { type: CKA.ENCRYPT, value: true }, { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true },
    ]);
    expect((await app.C_GetAttributeValue(s, back, [{ type: CKA.VALUE }])).attributes[0]!.value).toEqual(raw);

    await app.C_DigestInit(s, { type: CKM.SHA256, parameter: null });
    await app.C_DigestUpdate(s, Buffer.from('hello '));
    await app.C_DigestUpdate(s, Buffer.from('world'));
    expect(await app.C_DigestFinal(s)).toEqual(createHash('sha256').update('hello world').digest());
    expect((await app.C_GenerateRandom(s, 48)).length).toBe(48);
  });
});

describe('a module that cannot be used is a start-up failure', () => {
  it('a module path that does not load', async () => {
    messages.length = 0;
    const error = await open('/nonexistent/libnothing.so').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PassthroughStartError);
    expect(messages).toContain(Catalogue.tokenInterfaceInitFailed.id);
  });

  it('a token that is not there', async () => {
    messages.length = 0;
    const error = await PassthroughDevice.open({
      module: SOFTHSM_MODULE, callTimeoutMs: 10_000, logger,
      tokens: [{ partition: 'ghost', label: 'no-such-token', serial: null, pin: null }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PassthroughStartError);
    expect((error as PassthroughStartError).rv).toBe(CKR.TOKEN_NOT_PRESENT);
    expect(messages).toContain(Catalogue.tokenInterfaceInitFailed.id);
  });
});

describe('a module that crashes or hangs', () => {
  let hsm: PassthroughHsm;
  beforeAll(async () => { hsm = await open(faultyModule, 1500); });
  afterAll(async () => { await hsm?.close(); });

  async function signer(id: string, slot: number, pin: string) {
    const app = hsm.application(id);
    const session = await app.C_OpenSession(slot, RW);
    await app.C_Login(session, CKU.USER, pin);
    const pair = await ecKeyPair(app, session, id, false);
    return { app, session, key: pair.privateKey };
  }

  async function waitForRestart(slot: number): Promise<void> {
    const app = hsm.application('probe');
    for (let i = 0; i < 100; i++) {
      if (await rv(() => app.C_GetTokenInfo(slot)) === CKR.OK) return;
      await sleep(100);
    }
    throw new Error('the module host did not come back');
  }

  it('a crash is a device error for that partition only; the host comes back', async () => {
    const victim = await signer('victim', 0, 'alpha-user');
    const bystander = await signer('bystander', 1, 'beta-user');
    messages.length = 0;
    await victim.app.C_SignInit(victim.session, ECDSA, victim.key);
    expect(await rv(() => victim.app.C_Sign(victim.session, Buffer.from('crash'.padEnd(32, '!'))))).toBe(CKR.DEVICE_ERROR);
    expect(messages).toEqual([Catalogue.containerListFailed.id, Catalogue.systemContainersLoadFailed.id]);
    // The other partition goes on answering.
    await bystander.app.C_SignInit(bystander.session, ECDSA, bystander.key);
    expect((await bystander.app.C_Sign(bystander.session, digest)).length).toBe(64);
    // The crashed partition's sessions are gone; once its host is back, it is usable again.
    await waitForRestart(0);
    expect(await rv(() => victim.app.C_GetSessionInfo(victim.session))).toBe(CKR.SESSION_HANDLE_INVALID);
    const again = await signer('victim-again', 0, 'alpha-user');
    await again.app.C_SignInit(again.session, ECDSA, again.key);
    expect((await again.app.C_Sign(again.session, digest)).length).toBe(64);
  });

  it('a hang is a device error after the call timeout, and other partitions answer meanwhile', async () => {
    const victim = await signer('hung', 0, 'alpha-user');
    const bystander = await signer('bystander-2', 1, 'beta-user');
    messages.length = 0;
    await victim.app.C_SignInit(victim.session, ECDSA, victim.key);
    const started = Date.now();
    const hung = rv(() => victim.app.C_Sign(victim.session, Buffer.from('hang'.padEnd(32, '!'))));
    let hungAnswered = false;
    void hung.then(() => { hungAnswered = true; });
    await bystander.app.C_SignInit(bystander.session, ECDSA, bystander.key);
    expect((await bystander.app.C_Sign(bystander.session, digest)).length).toBe(64);
    expect(hungAnswered).toBe(false); // the bystander signed while the hung call was still waiting
    expect(await hung).toBe(CKR.DEVICE_ERROR);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(messages).toEqual([Catalogue.containerListFailed.id, Catalogue.systemContainersLoadFailed.id]);
    await waitForRestart(0);
  });
});
