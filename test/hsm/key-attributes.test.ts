// Every attribute PKCS#11 says a key of a class always has, read on a key made each way a key
// comes to exist in the software HSM (generated, imported, unwrapped, derived, copied,
// restored from a backup): each reads with CKR_OK, and CKA_KEY_GEN_MECHANISM is the generating
// mechanism on generated keys and CK_UNAVAILABLE_INFORMATION on every other.

import { generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CKA, CKD, CKK, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import type { Application } from '../../src/token/index.js';
import { CO_PIN, RW, mech, readyHsm, removeHome, tempHome, type Hsm } from './support.js';

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
/** CK_UNAVAILABLE_INFORMATION as the model hands a CK_ULONG attribute to the codec. */
const UNAVAILABLE = -1;
const t = (type: number, value: unknown) => ({ type, value: value as never });

const COMMON_KEY = [CKA.CLASS, CKA.TOKEN, CKA.PRIVATE, CKA.MODIFIABLE, CKA.LABEL, CKA.COPYABLE, CKA.DESTROYABLE, CKA.KEY_TYPE, CKA.ID,
  CKA.START_DATE, CKA.END_DATE, CKA.DERIVE, CKA.LOCAL, CKA.KEY_GEN_MECHANISM, CKA.ALLOWED_MECHANISMS];
const ALWAYS: Record<number, number[]> = {
  [CKO.PUBLIC_KEY]: [...COMMON_KEY, CKA.SUBJECT, CKA.ENCRYPT, CKA.VERIFY, CKA.VERIFY_RECOVER, CKA.WRAP, CKA.TRUSTED, CKA.WRAP_TEMPLATE,
    CKA.PUBLIC_KEY_INFO],
  [CKO.PRIVATE_KEY]: [...COMMON_KEY, CKA.SUBJECT, CKA.SENSITIVE, CKA.DECRYPT, CKA.SIGN, CKA.SIGN_RECOVER, CKA.UNWRAP, CKA.EXTRACTABLE,
    CKA.ALWAYS_SENSITIVE, CKA.NEVER_EXTRACTABLE, CKA.WRAP_WITH_TRUSTED, CKA.UNWRAP_TEMPLATE, CKA.ALWAYS_AUTHENTICATE, CKA.PUBLIC_KEY_INFO],
  [CKO.SECRET_KEY]: [...COMMON_KEY, CKA.SENSITIVE, CKA.ENCRYPT, CKA.DECRYPT, CKA.SIGN, CKA.VERIFY, CKA.WRAP, CKA.UNWRAP, CKA.EXTRACTABLE,
    CKA.ALWAYS_SENSITIVE, CKA.NEVER_EXTRACTABLE, CKA.CHECK_VALUE, CKA.WRAP_WITH_TRUSTED, CKA.TRUSTED, CKA.WRAP_TEMPLATE, CKA.UNWRAP_TEMPLATE],
};

let home: string;
let hsm: Hsm;
let slot: number;
let app: Application;
let s: number;

beforeEach(async () => {
  home = tempHome();
  ({ hsm, slot } = await readyHsm(home));
  app = hsm.application('a');
  s = await app.C_OpenSession(slot, RW);
  await app.C_Login(s, CKU.USER, CO_PIN);
});
afterEach(() => {
  hsm.close();
  removeHome(home);
});

interface Made {
  handle: number;
  objectClass: number;
  local: boolean;
  keyGenMechanism: number;
}

const aesTemplate = [t(CKA.VALUE_LEN, 32), t(CKA.EXTRACTABLE, true), t(CKA.TOKEN, true)];
const ecPair = () => app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, P256), t(CKA.TOKEN, true)],
  [t(CKA.TOKEN, true), t(CKA.DERIVE, true), t(CKA.EXTRACTABLE, true)]);

/** Each way a key comes to exist, and what CKA_LOCAL and CKA_KEY_GEN_MECHANISM must read on it. */
const WAYS: Array<[string, () => Promise<Made[]>]> = [
  ['generated secret key', async () => [{ handle: await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), aesTemplate), objectClass: CKO.SECRET_KEY, local: true, keyGenMechanism: CKM.AES_KEY_GEN }]],
  ['generated key pair', async () => {
    const pair = await ecPair();
    return [
      { handle: pair.publicKey, objectClass: CKO.PUBLIC_KEY, local: true, keyGenMechanism: CKM.EC_KEY_PAIR_GEN },
      { handle: pair.privateKey, objectClass: CKO.PRIVATE_KEY, local: true, keyGenMechanism: CKM.EC_KEY_PAIR_GEN },
    ];
  }],
  ['imported (C_CreateObject) keys', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = privateKey.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
    const octet = Buffer.concat([Buffer.from([4, point.length]), point]);
    void publicKey;
    const secret = await app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE, Buffer.alloc(16, 3))]);
    const pub = await app.C_CreateObject(s, [t(CKA.CLASS, CKO.PUBLIC_KEY), t(CKA.KEY_TYPE, CKK.EC), t(CKA.EC_PARAMS, P256), t(CKA.EC_POINT, octet)]);
    const priv = await app.C_CreateObject(s, [t(CKA.CLASS, CKO.PRIVATE_KEY), t(CKA.KEY_TYPE, CKK.EC), t(CKA.EC_PARAMS, P256),
      t(CKA.VALUE, Buffer.from(jwk.d!, 'base64url'))]);
    return [
      { handle: secret, objectClass: CKO.SECRET_KEY, local: false, keyGenMechanism: UNAVAILABLE },
      { handle: pub, objectClass: CKO.PUBLIC_KEY, local: false, keyGenMechanism: UNAVAILABLE },
      { handle: priv, objectClass: CKO.PRIVATE_KEY, local: false, keyGenMechanism: UNAVAILABLE },
    ];
  }],
  ['unwrapped keys', async () => {
    const kek = await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), aesTemplate);
    const secret = await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), aesTemplate);
    const pair = await ecPair();
    const kw = mech(CKM.AES_KEY_WRAP_PAD);
    const secretBack = await app.C_UnwrapKey(s, kw, kek, await app.C_WrapKey(s, kw, kek, secret), [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES)]);
    const privBack = await app.C_UnwrapKey(s, kw, kek, await app.C_WrapKey(s, kw, kek, pair.privateKey), [t(CKA.CLASS, CKO.PRIVATE_KEY), t(CKA.KEY_TYPE, CKK.EC)]);
    return [
      { handle: secretBack, objectClass: CKO.SECRET_KEY, local: false, keyGenMechanism: UNAVAILABLE },
      { handle: privBack, objectClass: CKO.PRIVATE_KEY, local: false, keyGenMechanism: UNAVAILABLE },
    ];
  }],
  ['derived key', async () => {
    const a = await ecPair();
    const b = await ecPair();
    const [point] = (await app.C_GetAttributeValue(s, b.publicKey, [{ type: CKA.EC_POINT }])).attributes;
    const raw = (point!.value as Buffer).subarray(2);
    const ecdh = mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: raw });
    const k = await app.C_DeriveKey(s, ecdh, a.privateKey, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE_LEN, 16)]);
    return [{ handle: k, objectClass: CKO.SECRET_KEY, local: false, keyGenMechanism: UNAVAILABLE }];
  }],
  ['copied keys keep what the original reads', async () => {
    const generated = await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), aesTemplate);
    const imported = await app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE, Buffer.alloc(16, 3))]);
    return [
      { handle: await app.C_CopyObject(s, generated, []), objectClass: CKO.SECRET_KEY, local: true, keyGenMechanism: CKM.AES_KEY_GEN },
      { handle: await app.C_CopyObject(s, imported, []), objectClass: CKO.SECRET_KEY, local: false, keyGenMechanism: UNAVAILABLE },
    ];
  }],
  ['restored keys (backup of generated and imported keys, restored into the partition)', async () => {
    await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [...aesTemplate, t(CKA.LABEL, Buffer.from('gen'))]);
    await app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE, Buffer.alloc(16, 3)), t(CKA.TOKEN, true),
      t(CKA.LABEL, Buffer.from('imp'))]);
    await ecPair();
    const backup = await hsm.device.exportObjects(slot, { role: 'co', pin: CO_PIN });
    // A backup made before this token recorded them: the attributes the spec always has are gone.
    for (const o of backup) for (const type of [CKA.LOCAL, CKA.KEY_GEN_MECHANISM, CKA.ALLOWED_MECHANISMS, CKA.SUBJECT, CKA.ALWAYS_AUTHENTICATE]) {
      if (!(o.attributes.get(CKA.LABEL) as Buffer).equals(Buffer.from('gen')) || type !== CKA.KEY_GEN_MECHANISM) o.attributes.delete(type);
    }
    await hsm.device.importObjects(slot, { role: 'co', pin: CO_PIN }, backup, 'replace');
    const found: Made[] = [];
    await app.C_FindObjectsInit(s, []);
    for (const h of await app.C_FindObjects(s, 100)) {
      const [cls, label] = (await app.C_GetAttributeValue(s, h, [{ type: CKA.CLASS }, { type: CKA.LABEL }])).attributes;
      const gen = (label!.value as Buffer).equals(Buffer.from('gen'));
      found.push({ handle: h, objectClass: cls!.value as number, local: false, keyGenMechanism: gen ? CKM.AES_KEY_GEN : UNAVAILABLE });
    }
    await app.C_FindObjectsFinal(s);
    expect(found).toHaveLength(4);
    return found;
  }],
];

describe('the attributes every key of a class has, for every way a key comes to exist', () => {
  it.each(WAYS)('%s', async (_name, make) => {
    for (const key of await make()) {
      const types = ALWAYS[key.objectClass]!;
      const read = await app.C_GetAttributeValue(s, key.handle, types.map((type) => ({ type })));
      const missing = read.attributes.filter((a) => a.value === null && a.length === null).map((a) => `0x${a.type.toString(16)}`);
      const sensitive = key.objectClass !== CKO.PUBLIC_KEY;
      // Only the key's value may be withheld; none of these is.
      expect({ class: key.objectClass, missing }).toEqual({ class: key.objectClass, missing: [] });
      expect(read.rv).toBe(CKR.OK);
      const value = (type: number) => read.attributes[types.indexOf(type)]!.value;
      expect(value(CKA.KEY_GEN_MECHANISM)).toBe(key.keyGenMechanism);
      if (!_name.startsWith('restored')) expect(value(CKA.LOCAL)).toBe(key.local);
      if (sensitive) expect(typeof value(CKA.ALWAYS_SENSITIVE)).toBe('boolean');
      expect(value(CKA.ALLOWED_MECHANISMS)).toEqual([]);
    }
  });

  it('CKA_CHECK_VALUE of an AES key is the first three bytes of AES-ECB over a zero block; a wrong one at import is refused', async () => {
    const value = Buffer.alloc(16, 3);
    const { createCipheriv } = await import('node:crypto');
    const c = createCipheriv('aes-128-ecb', value, null);
    c.setAutoPadding(false);
    const kcv = c.update(Buffer.alloc(16)).subarray(0, 3);
    const h = await app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE, value), t(CKA.CHECK_VALUE, kcv)]);
    expect((await app.C_GetAttributeValue(s, h, [{ type: CKA.CHECK_VALUE }])).attributes[0]!.value).toEqual(kcv);
    await expect(app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE, value), t(CKA.CHECK_VALUE, Buffer.from('abc'))]))
      .rejects.toMatchObject({ rv: CKR.ATTRIBUTE_VALUE_INVALID });
  });

  it('a key found by CKA_KEY_GEN_MECHANISM = CK_UNAVAILABLE_INFORMATION is an imported one', async () => {
    const imported = await app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE, Buffer.alloc(16, 3))]);
    await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 16)]);
    await app.C_FindObjectsInit(s, [t(CKA.KEY_GEN_MECHANISM, UNAVAILABLE)]);
    expect(await app.C_FindObjects(s, 10)).toEqual([imported]);
  });
});
