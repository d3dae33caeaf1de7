// Objects and attributes: C_CreateObject, C_DestroyObject, C_GetAttributeValue,
// C_SetAttributeValue, C_FindObjects*, with PKCS#11's template and attribute rules.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CKA, CKC, CKK, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import type { Application as HsmApplication } from '../../src/token/index.js';
import { type Hsm, CO_PIN, RO, RW, SO_PIN, mech, openHsm, readyHsm, removeHome, rv, tempHome, text } from './support.js';

let home: string;
let hsm: Hsm;
let slot: number;
let app: HsmApplication;
let s: number;

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

beforeEach(async () => {
  home = tempHome();
  ({ hsm, slot } = await readyHsm(home));
  app = hsm.application('a');
  s = await app.C_OpenSession(slot, RW);
});
afterEach(async () => {
  hsm.close();
  removeHome(home);
});

const data = (extra: { type: number; value: unknown }[] = []) =>
  [{ type: CKA.CLASS, value: CKO.DATA }, { type: CKA.LABEL, value: text('d') }, ...extra] as { type: number; value: never }[];

function aesTemplate(extra: { type: number; value: unknown }[] = []) {
  return [
    { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES },
    { type: CKA.VALUE, value: Buffer.alloc(32, 7) }, ...extra,
  ] as { type: number; value: never }[];
}

function selfSignedCertificate(dir: string): Buffer {
  const keyFile = join(dir, 'cert.key');
  const certFile = join(dir, 'cert.der');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile,
    '-subj', '/CN=ntls test', '-days', '1', '-outform', 'DER', '-out', certFile], { stdio: 'ignore' });
  return readFileSync(certFile);
}

describe('C_CreateObject', () => {
  it('creates a session data object in a public session', async () => {
    const h = await app.C_CreateObject(s, data([{ type: CKA.VALUE, value: text('hello') }]));
    const out = await app.C_GetAttributeValue(s, h, [{ type: CKA.VALUE }, { type: CKA.TOKEN }, { type: CKA.PRIVATE }, { type: CKA.MODIFIABLE }]);
    expect(out.rv).toBe(CKR.OK);
    expect(out.attributes.map((a) => a.value)).toEqual([text('hello'), false, false, true]);
  });

  it('accepts C-shaped raw values (1-byte CK_BBOOL, 8-byte CK_ULONG)', async () => {
    const ulong = Buffer.alloc(8);
    ulong.writeBigUInt64LE(BigInt(CKO.DATA));
    const h = await app.C_CreateObject(s, [{ type: CKA.CLASS, value: ulong }, { type: CKA.TOKEN, value: Buffer.from([0]) }]);
    expect((await app.C_GetAttributeValue(s, h, [{ type: CKA.CLASS }])).attributes[0]!.value).toBe(CKO.DATA);
  });

  it('CKR_SESSION_READ_ONLY: a token object from a read-only session', async () => {
    const ro = await app.C_OpenSession(slot, RO);
    expect(await rv(() => app.C_CreateObject(ro, data([{ type: CKA.TOKEN, value: true }])))).toBe(CKR.SESSION_READ_ONLY);
    // a session object is fine
    expect(await rv(() => app.C_CreateObject(ro, data()))).toBe(CKR.OK);
  });

  it('CKR_USER_NOT_LOGGED_IN: a private object without the Crypto Officer', async () => {
    expect(await rv(() => app.C_CreateObject(s, data([{ type: CKA.PRIVATE, value: true }])))).toBe(CKR.USER_NOT_LOGGED_IN);
    // keys are private by default
    expect(await rv(() => app.C_CreateObject(s, aesTemplate()))).toBe(CKR.USER_NOT_LOGGED_IN);
  });

  it('template errors: incomplete, inconsistent, value invalid, type invalid, read-only', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    expect(await rv(() => app.C_CreateObject(s, [{ type: CKA.LABEL, value: text('no class') }]))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rv(() => app.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.VALUE, value: Buffer.alloc(16) }]))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rv(() => app.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }]))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rv(() => app.C_CreateObject(s, data([{ type: CKA.LABEL, value: text('other') }])))).toBe(CKR.TEMPLATE_INCONSISTENT);
    expect(await rv(() => app.C_CreateObject(s, aesTemplate([{ type: CKA.VALUE_LEN, value: 32 }])))).toBe(CKR.TEMPLATE_INCONSISTENT);
    expect(await rv(() => app.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.RSA }, { type: CKA.VALUE, value: Buffer.alloc(16) }]))).toBe(CKR.TEMPLATE_INCONSISTENT);
    expect(await rv(() => app.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }, { type: CKA.VALUE, value: Buffer.alloc(15) }]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(await rv(() => app.C_CreateObject(s, [{ type: CKA.CLASS, value: 0x1234 }]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(await rv(() => app.C_CreateObject(s, data([{ type: CKA.TOKEN, value: text('yes') }])))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(await rv(() => app.C_CreateObject(s, data([{ type: 0x7777, value: true }])))).toBe(CKR.ATTRIBUTE_TYPE_INVALID);
    expect(await rv(() => app.C_CreateObject(s, data([{ type: CKA.SIGN, value: true }])))).toBe(CKR.ATTRIBUTE_TYPE_INVALID);
    expect(await rv(() => app.C_CreateObject(s, aesTemplate([{ type: CKA.LOCAL, value: true }])))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    expect(await rv(() => app.C_CreateObject(s, aesTemplate([{ type: CKA.TRUSTED, value: true }])))).toBe(CKR.ATTRIBUTE_READ_ONLY);
  });

  it('imports an AES key: sensitive by default, not local, value length computed', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const h = await app.C_CreateObject(s, aesTemplate([{ type: CKA.TOKEN, value: true }]));
    const out = await app.C_GetAttributeValue(s, h, [
      { type: CKA.VALUE_LEN }, { type: CKA.SENSITIVE }, { type: CKA.EXTRACTABLE }, { type: CKA.LOCAL },
      { type: CKA.ALWAYS_SENSITIVE }, { type: CKA.NEVER_EXTRACTABLE }, { type: CKA.PRIVATE },
    ]);
    expect(out.attributes.map((a) => a.value)).toEqual([32, true, false, false, false, false, true]);
  });

  it('imports an X.509 certificate', async () => {
    const der = selfSignedCertificate(home);
    const h = await app.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.CERTIFICATE_TYPE, value: CKC.X_509 },
      { type: CKA.SUBJECT, value: text('subject') }, { type: CKA.VALUE, value: der }, { type: CKA.ID, value: Buffer.from([1]) },
    ]);
    const out = await app.C_GetAttributeValue(s, h, [{ type: CKA.VALUE }, { type: CKA.ISSUER }, { type: CKA.SERIAL_NUMBER }, { type: CKA.TRUSTED }]);
    expect(out.rv).toBe(CKR.OK);
    expect(out.attributes[0]!.value).toEqual(der);
    // PKCS#11 2.40 4.6.3: CKA_CHECK_VALUE, three bytes of the SHA-1 of the value; CKA_PUBLIC_KEY_INFO, the certificate's SPKI.
    const derived = await app.C_GetAttributeValue(s, h, [{ type: CKA.CHECK_VALUE }, { type: CKA.PUBLIC_KEY_INFO }]);
    expect(derived.rv).toBe(CKR.OK);
    expect(derived.attributes[0]!.value).toEqual(createHash('sha1').update(der).digest().subarray(0, 3));
    expect(derived.attributes[1]!.value).toEqual(new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }));
    expect(await rv(() => app.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.CERTIFICATE_TYPE, value: CKC.X_509 }, { type: CKA.SUBJECT, value: text('x') }]))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rv(() => app.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.SUBJECT, value: text('x') }, { type: CKA.VALUE, value: der }]))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rv(() => app.C_CreateObject(s, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.CERTIFICATE_TYPE, value: CKC.X_509 }, { type: CKA.SUBJECT, value: text('x') }, { type: CKA.VALUE, value: text('not der') }]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
  });

  it('imports an RSA public key and an EC public key from their components', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    const h = await app.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.PUBLIC_KEY }, { type: CKA.KEY_TYPE, value: CKK.RSA },
      { type: CKA.MODULUS, value: Buffer.from(rsa.n!, 'base64url') }, { type: CKA.PUBLIC_EXPONENT, value: Buffer.from(rsa.e!, 'base64url') },
    ]);
    const out = await app.C_GetAttributeValue(s, h, [{ type: CKA.MODULUS_BITS }, { type: CKA.PUBLIC_KEY_INFO }, { type: CKA.VERIFY }]);
    expect(out.attributes[0]!.value).toBe(2048);
    expect(createPublicKey({ key: out.attributes[1]!.value as Buffer, format: 'der', type: 'spki' }).asymmetricKeyType).toBe('rsa');

    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const point = Buffer.concat([Buffer.from([4]), Buffer.from(ec.x!, 'base64url'), Buffer.from(ec.y!, 'base64url')]);
    const e = await app.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.PUBLIC_KEY }, { type: CKA.KEY_TYPE, value: CKK.EC },
      { type: CKA.EC_PARAMS, value: P256 }, { type: CKA.EC_POINT, value: Buffer.concat([Buffer.from([4, 65]), point]) },
    ]);
    expect((await app.C_GetAttributeValue(s, e, [{ type: CKA.EC_PARAMS }])).attributes[0]!.value).toEqual(P256);
    // or from an SPKI alone
    const spki = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'der', type: 'spki' });
    const fromInfo = await app.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.PUBLIC_KEY }, { type: CKA.KEY_TYPE, value: CKK.EC }, { type: CKA.PUBLIC_KEY_INFO, value: spki },
    ]);
    expect((await app.C_GetAttributeValue(s, fromInfo, [{ type: CKA.EC_PARAMS }])).attributes[0]!.value).toEqual(Buffer.from('06052b81040022', 'hex'));
    expect(await rv(() => app.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.PUBLIC_KEY }, { type: CKA.KEY_TYPE, value: CKK.RSA }, { type: CKA.PUBLIC_KEY_INFO, value: spki },
    ]))).toBe(CKR.TEMPLATE_INCONSISTENT);
    // a point not on the curve
    point[10]! ^= 1;
    expect(await rv(() => app.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.PUBLIC_KEY }, { type: CKA.KEY_TYPE, value: CKK.EC },
      { type: CKA.EC_PARAMS, value: P256 }, { type: CKA.EC_POINT, value: point },
    ]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
  });

  it('imports an RSA private key from its components; they read back only when not sensitive', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const b = (v: string | undefined) => Buffer.from(v!, 'base64url');
    const template = (sensitive: boolean) => [
      { type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.KEY_TYPE, value: CKK.RSA },
      { type: CKA.MODULUS, value: b(jwk.n) }, { type: CKA.PUBLIC_EXPONENT, value: b(jwk.e) },
      { type: CKA.PRIVATE_EXPONENT, value: b(jwk.d) }, { type: CKA.PRIME_1, value: b(jwk.p) }, { type: CKA.PRIME_2, value: b(jwk.q) },
      { type: CKA.EXPONENT_1, value: b(jwk.dp) }, { type: CKA.EXPONENT_2, value: b(jwk.dq) }, { type: CKA.COEFFICIENT, value: b(jwk.qi) },
      { type: CKA.SENSITIVE, value: sensitive }, { type: CKA.EXTRACTABLE, value: true }, { type: CKA.TOKEN, value: true },
    ];
    const secret = await app.C_CreateObject(s, template(true));
    const hidden = await app.C_GetAttributeValue(s, secret, [{ type: CKA.MODULUS }, { type: CKA.PRIVATE_EXPONENT }]);
    expect(hidden.rv).toBe(CKR.ATTRIBUTE_SENSITIVE);
    expect(hidden.attributes[0]!.value).toEqual(b(jwk.n));
    expect(hidden.attributes[1]).toEqual({ type: CKA.PRIVATE_EXPONENT, value: null, length: null });

    const open = await app.C_CreateObject(s, template(false));
    const shown = await app.C_GetAttributeValue(s, open, [{ type: CKA.PRIVATE_EXPONENT }, { type: CKA.PRIME_1 }]);
    expect(shown.rv).toBe(CKR.OK);
    expect(shown.attributes[0]!.value).toEqual(b(jwk.d));
    expect(shown.attributes[1]!.value).toEqual(b(jwk.p));
  });

  it('imports EC and Ed25519 private keys that then sign', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const d = Buffer.from(ec.privateKey.export({ format: 'jwk' }).d!, 'base64url');
    const h = await app.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.KEY_TYPE, value: CKK.EC },
      { type: CKA.EC_PARAMS, value: P256 }, { type: CKA.VALUE, value: d },
    ]);
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), h);
    const sig = await app.C_Sign(s, text('message'));
    expect(sig.length).toBe(64);

    const ed = generateKeyPairSync('ed25519');
    const seed = Buffer.from(ed.privateKey.export({ format: 'jwk' }).d!, 'base64url');
    const e = await app.C_CreateObject(s, [
      { type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.KEY_TYPE, value: CKK.EC_EDWARDS },
      { type: CKA.EC_PARAMS, value: Buffer.from('130c656477617264733235353139', 'hex') }, { type: CKA.VALUE, value: seed },
    ]);
    await app.C_SignInit(s, mech(CKM.EDDSA), e);
    expect((await app.C_Sign(s, text('message'))).length).toBe(64);
  });
});

describe('C_DestroyObject', () => {
  it('destroys; the handle is then invalid, also for token objects after restart', async () => {
    const h = await app.C_CreateObject(s, data([{ type: CKA.TOKEN, value: true }]));
    await app.C_DestroyObject(s, h);
    expect(await rv(() => app.C_DestroyObject(s, h))).toBe(CKR.OBJECT_HANDLE_INVALID);
    hsm.close();
    hsm = await openHsm(home);
    expect(hsm.listPartitions()[0]!.tokenObjects).toBe(0);
  });

  it('CKR_ACTION_PROHIBITED when CKA_DESTROYABLE is false', async () => {
    const h = await app.C_CreateObject(s, data([{ type: CKA.DESTROYABLE, value: false }]));
    expect(await rv(() => app.C_DestroyObject(s, h))).toBe(CKR.ACTION_PROHIBITED);
  });

  it('CKR_SESSION_READ_ONLY for a token object in a read-only session', async () => {
    const h = await app.C_CreateObject(s, data([{ type: CKA.TOKEN, value: true }]));
    const ro = await app.C_OpenSession(slot, RO);
    expect(await rv(() => app.C_DestroyObject(ro, h))).toBe(CKR.SESSION_READ_ONLY);
  });

  it('CKR_OBJECT_HANDLE_INVALID for a private object when not logged in', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const h = await app.C_CreateObject(s, data([{ type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: true }]));
    await app.C_Logout(s);
    expect(await rv(() => app.C_DestroyObject(s, h))).toBe(CKR.OBJECT_HANDLE_INVALID);
  });
});

describe('C_GetAttributeValue', () => {
  it('length query, buffer too small, type invalid, sensitive: all reported per attribute', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const h = await app.C_CreateObject(s, aesTemplate([{ type: CKA.LABEL, value: text('twelve bytes') }]));
    const lengths = await app.C_GetAttributeValue(s, h, [{ type: CKA.LABEL, length: null }, { type: CKA.VALUE_LEN, length: null }, { type: CKA.SIGN, length: null }]);
    expect(lengths.rv).toBe(CKR.OK);
    expect(lengths.attributes.map((a) => a.length)).toEqual([12, 8, 1]);
    expect(lengths.attributes.every((a) => a.value === null)).toBe(true);

    const small = await app.C_GetAttributeValue(s, h, [{ type: CKA.LABEL, length: 4 }, { type: CKA.SIGN, length: 1 }]);
    expect(small.rv).toBe(CKR.BUFFER_TOO_SMALL);
    expect(small.attributes[0]).toEqual({ type: CKA.LABEL, value: null, length: null });
    expect(small.attributes[1]!.value).toBe(true);

    const invalid = await app.C_GetAttributeValue(s, h, [{ type: CKA.MODULUS }, { type: CKA.LABEL }]);
    expect(invalid.rv).toBe(CKR.ATTRIBUTE_TYPE_INVALID);
    expect(invalid.attributes[1]!.value).toEqual(text('twelve bytes'));

    const sensitive = await app.C_GetAttributeValue(s, h, [{ type: CKA.VALUE }]);
    expect(sensitive.rv).toBe(CKR.ATTRIBUTE_SENSITIVE);
    expect(sensitive.attributes[0]!.length).toBeNull();
  });

  it('a non-sensitive, extractable secret key reveals its value; an unextractable one does not', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const open = await app.C_CreateObject(s, aesTemplate([{ type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true }, { type: CKA.TOKEN, value: true }]));
    expect((await app.C_GetAttributeValue(s, open, [{ type: CKA.VALUE }])).attributes[0]!.value).toEqual(Buffer.alloc(32, 7));
    const locked = await app.C_CreateObject(s, aesTemplate([{ type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: false }]));
    expect((await app.C_GetAttributeValue(s, locked, [{ type: CKA.VALUE }])).rv).toBe(CKR.ATTRIBUTE_SENSITIVE);
  });

  it('CKR_OBJECT_HANDLE_INVALID and CKR_SESSION_HANDLE_INVALID', async () => {
    expect(await rv(() => app.C_GetAttributeValue(s, 424242, [{ type: CKA.CLASS }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
    expect(await rv(() => app.C_GetAttributeValue(999, 1, [{ type: CKA.CLASS }]))).toBe(CKR.SESSION_HANDLE_INVALID);
  });
});

describe('C_SetAttributeValue', () => {
  it('changes a label and persists it for token objects', async () => {
    const h = await app.C_CreateObject(s, data([{ type: CKA.TOKEN, value: true }]));
    await app.C_SetAttributeValue(s, h, [{ type: CKA.LABEL, value: text('renamed') }]);
    hsm.close();
    hsm = await openHsm(home);
    const again = hsm.application('a');
    const t = await again.C_OpenSession(slot, RO);
    expect((await again.C_GetAttributeValue(t, h, [{ type: CKA.LABEL }])).attributes[0]!.value).toEqual(text('renamed'));
  });

  it('CKR_ACTION_PROHIBITED when CKA_MODIFIABLE is false', async () => {
    const h = await app.C_CreateObject(s, data([{ type: CKA.MODIFIABLE, value: false }]));
    expect(await rv(() => app.C_SetAttributeValue(s, h, [{ type: CKA.LABEL, value: text('x') }]))).toBe(CKR.ACTION_PROHIBITED);
  });

  it('CKR_ATTRIBUTE_READ_ONLY: class, key type, local, value of a key; sensitive and extractable only one way, then read-only', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const h = await app.C_CreateObject(s, aesTemplate([{ type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true }]));
    for (const [type, value] of [[CKA.CLASS, CKO.DATA], [CKA.KEY_TYPE, CKK.GENERIC_SECRET], [CKA.LOCAL, true], [CKA.VALUE, Buffer.alloc(32)], [CKA.TOKEN, true], [CKA.PRIVATE, false]] as const) {
      expect(await rv(() => app.C_SetAttributeValue(s, h, [{ type, value }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    }
    await app.C_SetAttributeValue(s, h, [{ type: CKA.SENSITIVE, value: true }]);
    expect(await rv(() => app.C_SetAttributeValue(s, h, [{ type: CKA.SENSITIVE, value: false }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    await app.C_SetAttributeValue(s, h, [{ type: CKA.EXTRACTABLE, value: false }]);
    expect(await rv(() => app.C_SetAttributeValue(s, h, [{ type: CKA.EXTRACTABLE, value: true }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    // Once set that way they are read-only (PKCS#11 footnotes 11, 12), even given the value they
    // have, in C_SetAttributeValue and C_CopyObject alike (SoftHSM2's p11test testAlwaysNeverAttribute).
    expect(await rv(() => app.C_SetAttributeValue(s, h, [{ type: CKA.SENSITIVE, value: true }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    expect(await rv(() => app.C_SetAttributeValue(s, h, [{ type: CKA.EXTRACTABLE, value: false }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    expect(await rv(() => app.C_CopyObject(s, h, [{ type: CKA.SENSITIVE, value: true }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    const after = await app.C_GetAttributeValue(s, h, [{ type: CKA.ALWAYS_SENSITIVE }, { type: CKA.NEVER_EXTRACTABLE }]);
    expect(after.attributes.map((a) => a.value)).toEqual([false, false]);
    expect(await rv(() => app.C_SetAttributeValue(s, h, [{ type: CKA.MODULUS, value: Buffer.alloc(1) }]))).toBe(CKR.ATTRIBUTE_TYPE_INVALID);
  });

  it('changes are all or nothing', async () => {
    const h = await app.C_CreateObject(s, data());
    expect(await rv(() => app.C_SetAttributeValue(s, h, [{ type: CKA.LABEL, value: text('new') }, { type: CKA.CLASS, value: CKO.CERTIFICATE }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    expect((await app.C_GetAttributeValue(s, h, [{ type: CKA.LABEL }])).attributes[0]!.value).toEqual(text('d'));
  });

  it('the SO manages public objects, and alone sets CKA_TRUSTED', async () => {
    const so = hsm.application('so');
    const t = await so.C_OpenSession(slot, RW);
    await so.C_Login(t, CKU.SO, SO_PIN);
    const der = selfSignedCertificate(home);
    const h = await so.C_CreateObject(t, [
      { type: CKA.CLASS, value: CKO.CERTIFICATE }, { type: CKA.CERTIFICATE_TYPE, value: CKC.X_509 }, { type: CKA.TOKEN, value: true },
      { type: CKA.SUBJECT, value: text('s') }, { type: CKA.VALUE, value: der }, { type: CKA.TRUSTED, value: true },
    ]);
    expect(await rv(() => app.C_SetAttributeValue(s, h, [{ type: CKA.TRUSTED, value: false }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    expect(await rv(() => so.C_CreateObject(t, data([{ type: CKA.PRIVATE, value: true }])))).toBe(CKR.USER_NOT_LOGGED_IN);
  });

  it('a CKA_TRUSTED key is changed by the SO alone: a user turning on its CKA_DECRYPT would decrypt what it wraps', async () => {
    const so = hsm.application('so-trust');
    const t = await so.C_OpenSession(slot, RW);
    await so.C_Login(t, CKU.SO, SO_PIN);
    // The SO's transport key: wraps and unwraps only.
    const transport = await so.C_CreateObject(t, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }, { type: CKA.TOKEN, value: true },
      { type: CKA.PRIVATE, value: false }, { type: CKA.VALUE, value: Buffer.alloc(32, 9) }, { type: CKA.TRUSTED, value: true },
      { type: CKA.ENCRYPT, value: false }, { type: CKA.DECRYPT, value: false }, { type: CKA.WRAP, value: true }, { type: CKA.UNWRAP, value: true },
    ]);
    // Nobody logged in (the key is public), and the Crypto Officer.
    const co = hsm.application('co-trust');
    const c = await co.C_OpenSession(slot, RW);
    await co.C_Login(c, CKU.USER, CO_PIN);
    for (const [user, session] of [[app, s], [co, c]] as const) {
      for (const change of [[{ type: CKA.DECRYPT, value: true }], [{ type: CKA.ENCRYPT, value: true }], [{ type: CKA.LABEL, value: text('mine') }]]) {
        expect(await rv(() => user.C_SetAttributeValue(session, transport, change)), `${session} ${change[0]!.type}`).toBe(CKR.ATTRIBUTE_READ_ONLY);
      }
    }
    // Nor through a copy with other attributes.
    expect(await rv(() => co.C_CopyObject(c, transport, [{ type: CKA.DECRYPT, value: true }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    const read = await app.C_GetAttributeValue(s, transport, [{ type: CKA.DECRYPT }]);
    expect(read.attributes[0]!.value).toBe(false);
    await co.C_CloseSession(c);
    // The SO still manages it.
    await so.C_SetAttributeValue(t, transport, [{ type: CKA.LABEL, value: text('transport') }]);
    await so.C_DestroyObject(t, transport);
    await so.C_CloseSession(t);
  });
});

describe('C_FindObjectsInit / C_FindObjects / C_FindObjectsFinal', () => {
  it('finds by template, in chunks', async () => {
    const handles: number[] = [];
    for (let i = 0; i < 5; i++) handles.push(await app.C_CreateObject(s, data([{ type: CKA.APPLICATION, value: text(`app${i % 2}`) }])));
    await app.C_FindObjectsInit(s, [{ type: CKA.CLASS, value: CKO.DATA }]);
    const first = await app.C_FindObjects(s, 2);
    const rest = await app.C_FindObjects(s, 10);
    expect([...first, ...rest]).toEqual(handles);
    expect(await app.C_FindObjects(s, 10)).toEqual([]);
    await app.C_FindObjectsFinal(s);

    await app.C_FindObjectsInit(s, [{ type: CKA.APPLICATION, value: text('app1') }]);
    expect(await app.C_FindObjects(s, 10)).toEqual([handles[1], handles[3]]);
    await app.C_FindObjectsFinal(s);
  });

  it('an unknown attribute matches nothing; an empty template matches every visible object', async () => {
    await app.C_CreateObject(s, data());
    await app.C_FindObjectsInit(s, [{ type: 0x7777, value: true }]);
    expect(await app.C_FindObjects(s, 10)).toEqual([]);
    await app.C_FindObjectsFinal(s);
    await app.C_FindObjectsInit(s, []);
    expect((await app.C_FindObjects(s, 10)).length).toBe(1);
  });

  it('private objects are found only when logged in; sensitive values never match', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const key = await app.C_CreateObject(s, aesTemplate([{ type: CKA.TOKEN, value: true }]));
    await app.C_FindObjectsInit(s, [{ type: CKA.VALUE, value: Buffer.alloc(32, 7) }]);
    expect(await app.C_FindObjects(s, 10)).toEqual([]);
    await app.C_FindObjectsFinal(s);
    await app.C_FindObjectsInit(s, [{ type: CKA.KEY_TYPE, value: CKK.AES }]);
    expect(await app.C_FindObjects(s, 10)).toEqual([key]);
    await app.C_FindObjectsFinal(s);
    await app.C_Logout(s);
    await app.C_FindObjectsInit(s, [{ type: CKA.KEY_TYPE, value: CKK.AES }]);
    expect(await app.C_FindObjects(s, 10)).toEqual([]);
  });

  it('CKR_OPERATION_ACTIVE and CKR_OPERATION_NOT_INITIALIZED', async () => {
    expect(await rv(() => app.C_FindObjects(s, 1))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    expect(await rv(() => app.C_FindObjectsFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await app.C_FindObjectsInit(s, []);
    expect(await rv(() => app.C_FindObjectsInit(s, []))).toBe(CKR.OPERATION_ACTIVE);
  });
});

describe('stored secrets need the caller\'s own login', () => {
  it('even when another application holds the partition key', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const open = aesTemplate([{ type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: false }, { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true }]);
    const h = await app.C_CreateObject(s, open);
    const other = hsm.application('public');
    const t = await other.C_OpenSession(slot, RW);
    // visible (not private), but its sealed value does not open for a caller without a login
    const read = await other.C_GetAttributeValue(t, h, [{ type: CKA.VALUE }, { type: CKA.LABEL }]);
    expect(read.rv).toBe(CKR.ATTRIBUTE_SENSITIVE);
    expect(await rv(() => other.C_CreateObject(t, open))).toBe(CKR.USER_NOT_LOGGED_IN);
    // a session key needs no store, so no login
    const sessionKey = await other.C_CreateObject(t, aesTemplate([{ type: CKA.PRIVATE, value: false }]));
    await other.C_EncryptInit(t, mech(CKM.AES_ECB), sessionKey);
    expect((await other.C_Encrypt(t, Buffer.alloc(16))).length).toBe(16);
  });
});

describe('C_CopyObject', () => {
  it('copies a session object to a token object, with template changes', async () => {
    const h = await app.C_CreateObject(s, data([{ type: CKA.VALUE, value: text('v') }]));
    const copy = await app.C_CopyObject(s, h, [{ type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: text('copy') }]);
    const out = await app.C_GetAttributeValue(s, copy, [{ type: CKA.TOKEN }, { type: CKA.LABEL }, { type: CKA.VALUE }]);
    expect(out.attributes.map((a) => a.value)).toEqual([true, text('copy'), text('v')]);
  });

  it('a private copy of a data object seals its value; a copy of a key keeps the key', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const h = await app.C_CreateObject(s, data([{ type: CKA.VALUE, value: text('to seal') }]));
    const copy = await app.C_CopyObject(s, h, [{ type: CKA.PRIVATE, value: true }, { type: CKA.TOKEN, value: true }]);
    expect((await app.C_GetAttributeValue(s, copy, [{ type: CKA.VALUE }])).attributes[0]!.value).toEqual(text('to seal'));
    const key = await app.C_CreateObject(s, aesTemplate([{ type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true }]));
    const keyCopy = await app.C_CopyObject(s, key, [{ type: CKA.TOKEN, value: true }]);
    expect((await app.C_GetAttributeValue(s, keyCopy, [{ type: CKA.VALUE }])).attributes[0]!.value).toEqual(Buffer.alloc(32, 7));
  });

  it('error paths: not copyable, loosening a policy, read-only attributes', async () => {
    const fixed = await app.C_CreateObject(s, data([{ type: CKA.COPYABLE, value: false }]));
    expect(await rv(() => app.C_CopyObject(s, fixed, []))).toBe(CKR.ACTION_PROHIBITED);
    const locked = await app.C_CreateObject(s, data([{ type: CKA.MODIFIABLE, value: false }]));
    expect(await rv(() => app.C_CopyObject(s, locked, [{ type: CKA.MODIFIABLE, value: true }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    expect(await rv(() => app.C_CopyObject(s, locked, [{ type: CKA.CLASS, value: CKO.CERTIFICATE }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
    // An unmodifiable wrap-only key: its copy cannot turn on decrypt (a Clulow wrap-then-decrypt),
    // nor change anything else C_SetAttributeValue refuses; tightening and moving to the token can.
    await app.C_Login(s, CKU.USER, CO_PIN);
    const wrapOnly = await app.C_CreateObject(s, aesTemplate([{ type: CKA.WRAP, value: true }, { type: CKA.DECRYPT, value: false },
      { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true }, { type: CKA.MODIFIABLE, value: false }]));
    expect(await rv(() => app.C_SetAttributeValue(s, wrapOnly, [{ type: CKA.DECRYPT, value: true }]))).toBe(CKR.ACTION_PROHIBITED);
    expect(await rv(() => app.C_CopyObject(s, wrapOnly, [{ type: CKA.DECRYPT, value: true }]))).toBe(CKR.ACTION_PROHIBITED);
    expect(await rv(() => app.C_CopyObject(s, wrapOnly, [{ type: CKA.LABEL, value: text('renamed') }]))).toBe(CKR.ACTION_PROHIBITED);
    await app.C_CopyObject(s, wrapOnly, [{ type: CKA.TOKEN, value: true }, { type: CKA.SENSITIVE, value: true }, { type: CKA.EXTRACTABLE, value: false }, { type: CKA.DECRYPT, value: false }]);
    expect(await rv(() => app.C_CopyObject(s, 31337, []))).toBe(CKR.OBJECT_HANDLE_INVALID);
    const ro = await app.C_OpenSession(slot, RO);
    expect(await rv(() => app.C_CopyObject(ro, locked, [{ type: CKA.TOKEN, value: true }]))).toBe(CKR.SESSION_READ_ONLY);
  });
});

describe('private data objects', () => {
  it('C_SetAttributeValue of a private token object\'s value reseals it, and it survives restart', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const h = await app.C_CreateObject(s, data([{ type: CKA.TOKEN, value: true }, { type: CKA.PRIVATE, value: true }, { type: CKA.VALUE, value: text('one') }]));
    await app.C_SetAttributeValue(s, h, [{ type: CKA.VALUE, value: text('two') }]);
    hsm.close();
    hsm = await openHsm(home);
    const again = hsm.application('a');
    const t = await again.C_OpenSession(slot, RW);
    expect(await rv(() => again.C_GetAttributeValue(t, h, [{ type: CKA.VALUE }]))).toBe(CKR.OBJECT_HANDLE_INVALID);
    await again.C_Login(t, CKU.USER, CO_PIN);
    expect((await again.C_GetAttributeValue(t, h, [{ type: CKA.VALUE }])).attributes[0]!.value).toEqual(text('two'));
  });

  it('CKA_ALWAYS_AUTHENTICATE keys are made (the context-specific login they need: test/token/contract.test.ts); it cannot be changed afterwards', async () => {
    await app.C_Login(s, CKU.USER, CO_PIN);
    const pair = await app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN), [{ type: CKA.EC_PARAMS, value: P256 }], [{ type: CKA.ALWAYS_AUTHENTICATE, value: true }]);
    expect((await app.C_GetAttributeValue(s, pair.privateKey, [{ type: CKA.ALWAYS_AUTHENTICATE }])).attributes[0]!.value).toBe(true);
    expect(await rv(() => app.C_SetAttributeValue(s, pair.privateKey, [{ type: CKA.ALWAYS_AUTHENTICATE, value: false }]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
  });
});
